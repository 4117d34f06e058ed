//! Filters served to a stock Envoy as its external processing service
//! (`envoy.service.ext_proc.v3.ExternalProcessor`), so an Envoy fleet gets them through its
//! `envoy.filters.http.ext_proc` filter.
//!
//! One server, [`ExtProc`], runs the gRPC side for any [`Processor`]: each gRPC stream is one
//! HTTP exchange, an [`Exchange`] that gets Envoy's messages in order. Two processors are
//! shipped:
//!
//! * [`WafProcessor`] (feature `extproc-waf`) runs the same WAF as
//!   [`WafLayer`](crate::waf::WafLayer), with the same rules and settings: for the same request
//!   it gives the same answer (status, body and `content-type`). `tests/waf_extproc_envoy.rs`
//!   checks this request for request behind Envoy 1.40.
//! * [`TransformProcessor`] (feature `extproc-transform`) runs Gloo's transformations with the
//!   [`TransformationLayer`](crate::transform::TransformationLayer)'s own steps, for Envoy
//!   fleets that cannot load envoy-gloo's `io.solo.transformation` filter.
//!   `tests/transform_extproc_envoy.rs` checks behind Envoy 1.40 that the client gets the same
//!   status, headers and body as through the layer.
//!
//! # The WAF
//!
//! ## Configuring Envoy
//!
//! ```yaml
//! http_filters:
//! - name: envoy.filters.http.ext_proc
//!   typed_config:
//!     "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
//!     grpc_service: {envoy_grpc: {cluster_name: waf}}   # an HTTP/2 cluster to this service
//!     failure_mode_allow: false        # fail closed: no WAF, no request
//!     processing_mode:
//!       request_header_mode: SEND
//!       response_header_mode: SEND
//!       request_body_mode: BUFFERED    # NONE with requestHeadersOnly
//!       response_body_mode: BUFFERED   # NONE with responseHeadersOnly
//!     request_attributes: [source.address, destination.address, request.protocol]
//!     metadata_options:                # to get the audit log into the access log
//!       receiving_namespaces: {untyped: [io.solo.filters.http.modsecurity]}
//! - name: envoy.filters.http.router
//! ```
//!
//! * The request body is inspected when Envoy sends it (`BUFFERED`: Envoy holds it up to its
//!   buffer limit and answers `413` beyond, as gloo's layer does; `BUFFERED_PARTIAL`: the part
//!   Envoy sends; `STREAMED`: the chunks, gathered up to the layer's limit, inspected at the
//!   end of the stream). With `NONE` (Envoy says so in `protocol_config`), or with
//!   `requestHeadersOnly`, phase 2 runs with the headers.
//! * `request_attributes` give ModSecurity the client and server addresses (`REMOTE_ADDR`,
//!   ...) and the HTTP version. Without them it sees `0.0.0.0:0` and HTTP/1.1.
//! * An intervention is an `immediate_response` with the rule's status, the configured
//!   message and `content-type: text/plain` (a `redirect` adds `location`).
//! * Audit logs are returned as dynamic metadata `io.solo.filters.http.modsecurity:audit_log`,
//!   Gloo's `DYNAMIC_METADATA` location. Envoy keeps it when `metadata_options` lists that
//!   namespace, and it can then be logged with
//!   `%DYNAMIC_METADATA(io.solo.filters.http.modsecurity:audit_log)%`. They are also traced
//!   under `gloo_filters::waf::audit`.
//! * If an exchange cannot be evaluated, the processor answers `500`. If the stream itself
//!   fails, Envoy's `failure_mode_allow: false` refuses the request.
//!
//! ## Example
//!
//! ```
//! # #[cfg(feature = "extproc-waf")] {
//! use gloo_filters::extproc::WafProcessor;
//! use gloo_filters::waf::{RuleSet, WafLayer, WafRules};
//!
//! let rules = WafRules::compile([RuleSet::rules("SecRuleEngine On")])?;
//! let processor = WafProcessor::new(WafLayer::new(rules).custom_intervention_message("blocked"));
//! // Serve it with tonic:
//! let _server = processor.into_server(); // ExternalProcessorServer<ExtProc<WafProcessor>>
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Transformations
//!
//! ## Configuring Envoy
//!
//! ```yaml
//! http_filters:
//! - name: envoy.filters.http.ext_proc
//!   typed_config:
//!     "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
//!     grpc_service:
//!       envoy_grpc: {cluster_name: transformation}   # an HTTP/2 cluster to this service
//!       initial_metadata:                            # which config (optional, see below)
//!       - {key: x-gloo-transformation, value: regular}
//!     failure_mode_allow: false
//!     allow_mode_override: true        # bodies only when a transformation reads them
//!     processing_mode:
//!       request_header_mode: SEND
//!       response_header_mode: SEND
//!       request_body_mode: NONE
//!       response_body_mode: NONE
//!     mutation_rules: {allow_all_routing: true}   # templates may set :authority, :method
//!     response_attributes: [response.code_details] # for response matchers on the details
//!     metadata_options:                # to keep what templates put in dynamic metadata
//!       receiving_namespaces: {untyped: [io.solo.transformation]}
//! - name: envoy.filters.http.router
//! ```
//!
//! * **Processing mode.** The processor asks for bodies only when the transformation chosen
//!   for the exchange reads them, as the layer buffers them only then: its answer to the
//!   request headers carries a `mode_override` with `request_body_mode: BUFFERED` when the
//!   request transformation needs the body (else `NONE`) and `response_header_mode: SKIP`
//!   when no response transformation can apply; its answer to the response headers asks for
//!   `response_body_mode: BUFFERED` only when the chosen response transformation needs it.
//!   Envoy honours this with `allow_mode_override: true` (and, if `allowed_override_modes` is
//!   set, with these modes listed). Without it, configure `BUFFERED` bodies statically:
//!   bodies that no transformation reads are then answered with "continue", unchanged.
//!   `STREAMED` and `BUFFERED_PARTIAL` are not supported for transformed bodies.
//! * **Changes** go back as header mutations (each header whose values changed is set,
//!   removed headers are removed; `:path`, `:method`, `:authority` and `:status` as
//!   pseudo-headers) and, for buffered bodies, body mutations. Envoy's default
//!   `mutation_rules` ignore changes to `:authority`, `host`, `:method` and `:scheme`:
//!   `allow_all_routing: true` lets templates change them as they do in envoy-gloo (and
//!   `allow_envoy: true` for `x-envoy-*` headers). A body made by a template for a message
//!   that had none (`GET` with a body template) is added with `CONTINUE_AND_REPLACE`; Envoy
//!   then drops `content-length` and the body goes chunked.
//! * **Failures** answer as the layer does: a failed request transformation is an
//!   `immediate_response` `400 bad request: <what failed>` (`text/plain`, details
//!   `transformation_filter_error`), a request body over the layer's `max_body_bytes` is
//!   `413 payload too large`. A failed response transformation turns the response into
//!   `400 bad request: <what failed>` keeping its other headers (envoy-gloo's
//!   `responseError`): by mutations, the body replaced (`CONTINUE_AND_REPLACE` when the
//!   transformation did not read it).
//! * **Per route, and the early and regular stages.** Envoy's ext_proc filter sends nothing
//!   of the route to the processor, so the config is chosen by name, from the gRPC initial
//!   metadata key `x-gloo-transformation` ([`TRANSFORMATION_CONFIG_KEY`]), among those added
//!   with [`TransformProcessor::named`] (streams naming none get the default of
//!   [`TransformProcessor::new`]). Set it per filter in `grpc_service.initial_metadata`, and
//!   per route with `ExtProcPerRoute`:
//!   ```yaml
//!   typed_per_filter_config:
//!     envoy.filters.http.ext_proc:
//!       "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute
//!       overrides:
//!         grpc_initial_metadata: [{key: x-gloo-transformation, value: route-a}]
//!   ```
//!   (`ExtProcPerRoute.disabled: true` turns the transformation off on a route, and
//!   `overrides.processing_mode` can fix the modes for it). Gloo's early and regular stages
//!   are two ext_proc filters in envoy-gloo's order (the early one before ext_authz and rate
//!   limiting, the regular one after them), each naming its stage's config, e.g.
//!   `early/route-a` and `regular/route-a`. Route or cluster metadata cannot select the
//!   config: `metadata_options.forwarding_namespaces` forwards only dynamic metadata (a filter
//!   before ext_proc that sets dynamic metadata could name it, which this processor does not
//!   read).
//!
//! The dynamic metadata a template renders (`dynamic_metadata_values`) goes back as the
//! answer's `dynamic_metadata`, which Envoy keeps for the namespaces its
//! `metadata_options.receiving_namespaces.untyped` lists (envoy-gloo's
//! `io.solo.transformation` unless a value names its own).
//!
//! Deviations from envoy-gloo's filter: `clear_route_cache` is not returned to Envoy (Envoy's
//! route cache is cleared by ext_proc after header mutations anyway, per its
//! `route_cache_action`); Envoy, not the processor, enforces its buffer limit on buffered
//! bodies (`413` for requests, `500` for responses) before the processor sees them; response
//! trailers are not sent to the processor.
//!
//! ## Example
//!
//! ```
//! # #[cfg(feature = "extproc-transform")] {
//! use gloo_filters::extproc::TransformProcessor;
//! use gloo_filters::transform::{
//!     RequestMatch, TransformationLayer, TransformationTemplate, Transformations,
//! };
//!
//! let regular = TransformationLayer::new(Transformations::new().request_transform(
//!     RequestMatch::new()
//!         .request_transformation(TransformationTemplate::new().header("x-stage", "regular")),
//! ))?;
//! let processor = TransformProcessor::without_default().named("regular", regular);
//! let _server = processor.into_server(); // ExternalProcessorServer<ExtProc<TransformProcessor>>
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod pb;
mod server;
#[cfg(feature = "extproc-transform")]
mod transform;
#[cfg(feature = "extproc-waf")]
mod waf;

pub use self::server::{Exchange, ExtProc, Processor};
#[cfg(feature = "extproc-transform")]
pub use self::transform::{TransformExchange, TransformProcessor, TRANSFORMATION_CONFIG_KEY};
#[cfg(feature = "extproc-waf")]
pub use self::waf::{WafExchange, WafProcessor, AUDIT_LOG_KEY, AUDIT_LOG_NAMESPACE};
