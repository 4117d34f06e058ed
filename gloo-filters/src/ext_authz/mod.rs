//! Envoy's external authorization HTTP filter (`envoy.filters.http.ext_authz`), the client
//! side, as a tower middleware: each request is described to an
//! `envoy.service.auth.v3.Authorization` gRPC server (Gloo's ext auth server, OPA, or any
//! other), which allows it (possibly changing it) or answers it. Enabled by the `ext-authz`
//! cargo feature.
//!
//! gloo-proxy builds this layer from the Envoy filter config gloo-core translates Gloo's
//! `extauth` options into, and a differential test compares its answers with Envoy 1.40's on
//! the same config, so the behaviour below follows Envoy (`source/extensions/filters/http/
//! ext_authz/ext_authz.cc` and `filters/common/ext_authz/{check_request_utils,
//! ext_authz_grpc_impl}.cc`).
//!
//! # The check request
//!
//! * `attributes.source` / `destination`: the client's and the listener's addresses, from a
//!   [`ConnectionInfo`] (see [`ExtAuthzLayer::connection_info`]).
//! * `attributes.request.time`: now; `request.http`: a random stream `id`, `method`, `path`
//!   (with its query), `host` (`Host`, else the URI's authority), `scheme` (the URI's, else
//!   `https` on TLS and `http` otherwise), `protocol` (`HTTP/1.1`, `HTTP/2`, ...), and
//!   `headers`: every header under its lowercase name, repeated values joined with `,`,
//!   `:authority`, `:path`, `:method` and `:scheme` included and `host` left out (Envoy keeps
//!   it as `:authority`); values are made valid UTF-8 (each invalid byte becomes `!`).
//! * With [`with_request_body`](ExtAuthzLayer::with_request_body) and a request that has a
//!   body (and does not upgrade the connection), the body is buffered first: up to its end,
//!   or, with `allow_partial_message`, until `max_request_bytes` are in. A longer body
//!   without partial messages is answered `413 Payload Too Large`. The check then carries the
//!   first `max_request_bytes` as `body` (UTF-8, invalid bytes as `!`) or `raw_body`
//!   (`pack_as_bytes`), `size` (the bytes buffered) and the header
//!   `x-envoy-auth-partial-body: true|false`. The inner service gets the buffered bytes and
//!   then the rest of the body ([`ExtAuthzBody`]).
//! * `context_extensions` from the layer (Envoy's per-route `check_settings`), and
//!   `metadata_context` from [`metadata_context`](ExtAuthzLayer::metadata_context).
//!
//! The call carries a `grpc-timeout` and is abandoned after
//! [`timeout`](ExtAuthzLayer::timeout) (200 ms by default).
//!
//! # The answer
//!
//! * Status `OK` (or none): the request passes. Its `ok_response` headers are applied in
//!   order, as Envoy 1.40 does (checked by gloo-proxy's differential test): only the
//!   deprecated `append` counts, `true` joining the value to the request's header with `,`
//!   (nothing when the request has none), anything else overwriting, whatever its
//!   `append_action`. `headers_to_remove` are removed (never `host`), query parameters set
//!   and removed (re-serialized by name, as Envoy's `QueryParamsMulti` does). The
//!   `response_headers_to_add` are applied to the response with their `append_action`
//!   (`APPEND_IF_EXISTS_OR_ADD`, the proto's default, adds a value; `OVERWRITE_IF_EXISTS_OR_ADD`
//!   sets; `ADD_IF_ABSENT` and `OVERWRITE_IF_EXISTS` do what they say), the deprecated `append`
//!   winning when set (`true` adds, `false` sets). The response's dynamic metadata reaches
//!   the inner service as [`DynamicMetadata`].
//! * Any other status: the client gets the `denied_response`'s status (default `403`),
//!   headers (with their append actions, as response headers) and body (cut to
//!   [`max_denied_response_body_bytes`](ExtAuthzLayer::max_denied_response_body_bytes) when
//!   set), with `content-type: text/plain` unless the server set one when there is a body.
//! * A failed call (unreachable server, gRPC error, timeout) or an `error_response` is an
//!   error: with [`failure_mode_allow`](ExtAuthzLayer::failure_mode_allow) the request passes
//!   unchanged (marked `x-envoy-auth-failure-mode-allowed: true` with
//!   [`failure_mode_allow_header_add`](ExtAuthzLayer::failure_mode_allow_header_add)),
//!   otherwise the client gets `status_on_error` (default `403`) with an empty body, or the
//!   `error_response`'s status, headers and body.
//!
//! Answers the middleware gives itself carry [`Rejected`] in their extensions.
//!
//! # Where it differs from Envoy
//!
//! * A body that fails while it is buffered is answered `400` (Envoy resets the stream).
//! * Headers Envoy's connection manager adds before its filters run (`x-request-id`,
//!   `x-forwarded-proto`, ...) are in the check only if the server in front of this layer
//!   added them to the request.
//! * Header names or values the server sends that are not valid HTTP are skipped (Envoy
//!   forwards them unless `validate_mutations` is set, which then refuses the response).
//! * Not implemented: Envoy's HTTP (non-gRPC) authorization service, `clear_route_cache`,
//!   `allowed_headers` / `disallowed_headers`, `include_peer_certificate`,
//!   `include_tls_session`, `encode_raw_headers`, `filter_enabled`, `deny_at_disable`,
//!   `decoder_header_mutation_rules` and the ext_authz stats. gloo-proxy refuses configs that
//!   set them.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use gloo_filters::ext_authz::{ExtAuthzBody, ExtAuthzLayer, Rejected};
//! use http_body_util::Full;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Nothing listens on port 9 here: the check fails, and failures are refused with 403.
//! let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
//! let app = service_fn(|_: http::Request<ExtAuthzBody<Full<Bytes>>>| async {
//!     Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"hello"))))
//! });
//! let svc = ExtAuthzLayer::new(channel).layer(app);
//! let response = svc.oneshot(http::Request::new(Full::new(Bytes::new()))).await?;
//! assert_eq!(response.status(), 403);
//! assert!(response.extensions().get::<Rejected>().is_some());
//! # Ok(())
//! # }
//! ```

mod body;
pub(crate) mod check;
mod error;
mod future;
mod layer;
mod service;
#[cfg(test)]
mod tests;

pub use body::ExtAuthzBody;
pub use check::ConnectionInfo;
pub use error::{CheckError, Rejected, RejectedKind};
pub use future::ResponseFuture;
pub use layer::{BufferSettings, ConnectionFn, ExtAuthzLayer, MetadataFn, DEFAULT_TIMEOUT};
pub use service::{DynamicMetadata, ExtAuthz};
