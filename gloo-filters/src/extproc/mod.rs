//! Filters served to a stock Envoy as its external processing service
//! (`envoy.service.ext_proc.v3.ExternalProcessor`), so an Envoy fleet gets them through its
//! `envoy.filters.http.ext_proc` filter. Enabled by the `extproc-waf` cargo feature.
//!
//! [`WafProcessor`] runs the same WAF as [`WafLayer`](crate::waf::WafLayer), with the same
//! rules and settings: for the same request it gives the same answer (status, body and
//! `content-type`). `tests/waf_extproc_envoy.rs` checks this request for request behind Envoy
//! 1.40.
//!
//! # Configuring Envoy
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
//! # Example
//!
//! ```
//! use gloo_filters::extproc::WafProcessor;
//! use gloo_filters::waf::{RuleSet, WafLayer, WafRules};
//!
//! let rules = WafRules::compile([RuleSet::rules("SecRuleEngine On")])?;
//! let processor = WafProcessor::new(WafLayer::new(rules).custom_intervention_message("blocked"));
//! // Serve it with tonic:
//! let _server = processor.into_server(); // ExternalProcessorServer<WafProcessor>
//! # Ok::<(), gloo_filters::waf::ConfigError>(())
//! ```

mod waf;

pub use self::waf::{WafProcessor, AUDIT_LOG_KEY, AUDIT_LOG_NAMESPACE};
