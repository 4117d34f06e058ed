//! A web application firewall: ModSecurity v3 (libmodsecurity) with the OWASP Core Rule Set,
//! as a tower middleware. This is Gloo's `options.waf`, served by envoy-gloo's
//! `io.solo.filters.http.modsecurity` filter. It needs the `waf` cargo feature and the system
//! libmodsecurity (Debian: `apt-get install libmodsecurity-dev modsecurity-crs`).
//!
//! # Rules
//!
//! [`WafRules::compile`] loads Gloo's [`RuleSet`]s, in order, into one ModSecurity rule set.
//! Within a rule set, the files are loaded first, then the `*.conf` files of the directory
//! (in name order, without subdirectories), then the inline `rule_str`. Rule syntax is
//! checked by ModSecurity's own parser. A [`ConfigError`] names the rule set and part it
//! refused, e.g. `rule_sets[2].rule_str: Rules error. File: <<reference missing or not
//! informed>>. Line: 1. Column: 33. syntax error, unexpected ","`. Compile once per
//! configuration: the rules sit behind an `Arc` that every exchange and every layer built
//! from them shares.
//!
//! Gloo's `coreRuleSet` is two rule sets: its settings (`customSettingsString` as
//! `rule_str`, or `customSettingsFile` as a file), then the CRS rules directory. Debian
//! installs them at [`CRS_SETUP_FILE`] and [`CRS_RULES_DIR`]. libmodsecurity's own defaults
//! apply. Nothing is enforced without `SecRuleEngine On`. Request bodies are inspected unless
//! the rules say `SecRequestBodyAccess Off`. Response bodies are inspected only with
//! `SecResponseBodyAccess On`, and only for the `SecResponseBodyMimeType` types.
//!
//! # An exchange
//!
//! The layer runs ModSecurity's phases in order:
//!
//! 1. The connection, request line and headers (phase 1) when the request arrives. A request
//!    with no body (or any request with [`request_headers_only`]) also gets phase 2 at once,
//!    and its body then streams to the inner service uninspected.
//! 2. Otherwise the body is buffered up to [`max_body_bytes`] (1 MiB by default, Envoy's
//!    buffer limit) and phase 2 inspects it. A larger body is answered `413` with
//!    `Payload Too Large`, as Envoy answers a request that overflows a buffering filter.
//!    When the whole body has already arrived with the head (a small form), phases 1 and 2
//!    are evaluated together, one after the other; phase 1 never waits for a body still to
//!    come.
//! 3. The inner service is called. Its response status, headers and body (phases 3 and 4)
//!    are inspected the same way. A response body over the limit has only its head inspected,
//!    and the rest streams on (ModSecurity's `ProcessPartial`). With
//!    [`response_headers_only`], the body is not inspected and streams through.
//!
//! If a rule intervenes (`deny`, `drop`, `redirect`, ...), the exchange stops. The answer
//! has the rule's status (403 for the CRS's anomaly scoring), `text/plain`, and the
//! [`custom_intervention_message`] as its body, or envoy-gloo's
//! [`DEFAULT_INTERVENTION_MESSAGE`]. A `redirect` also gets a `location` header. An
//! intervention during the response replaces the response. The answer carries the
//! [`Intervention`] (with ModSecurity's log line) and [`WafReply`] in its extensions.
//!
//! Every call into libmodsecurity runs on the WAF's own evaluation threads (one kept to each
//! CPU, in Linux's lowest-priority `SCHED_IDLE` class), so rule evaluation never stalls the
//! async workers, nor takes a core from them; a worker's evaluations run on its own CPU's
//! thread whenever that can be soon, where the request is still in the caches. A benign
//! request takes two trips there: the request (phases 1 and 2), then the response (phases 3
//! and 4). Only a request whose body is still arriving when its head is evaluated takes a
//! third trip (phase 2, once the body is in).
//! Each trip costs two thread wake-ups (an evaluation thread's, then the runtime's), which is
//! most of what the layer adds to libmodsecurity's own cost (the alternatives measured are in
//! `waf/blocking.rs`). If an evaluation cannot complete, the layer fails closed with a
//! `500` answer.
//!
//! ModSecurity sees the client and server addresses from a [`Connection`] in the request's
//! extensions. Without one, it uses a `SocketAddr` extension as the client address.
//!
//! # Audit logs
//!
//! With [`audit_log`] set to [`AuditLogAction::Always`], or to
//! [`AuditLogAction::RelevantOnly`] when a rule logged a message or intervened, the answer
//! carries an [`AuditLog`] in its extensions. It is a JSON document shaped like
//! ModSecurity's JSON audit log, with the connection, request line and headers, response
//! status and headers, and one entry per rule message (`ruleId`, `msg`, `data`, `severity`,
//! `tags`, ...). The same JSON is logged with `tracing` at `INFO` under the target
//! `gloo_filters::waf::audit`. As in Gloo, ModSecurity's own audit engine (`SecAuditEngine`,
//! `SecAuditLog`, ...) is never run, whatever the rules say.
//!
//! # Differences from envoy-gloo
//!
//! * The audit log is assembled from what the filter saw and from ModSecurity's rule messages,
//!   because libmodsecurity's C API does not hand out its own. So `SecAuditLogParts` and
//!   `SecAuditLogRelevantStatus` are not honoured, and "relevant" means a rule logged or
//!   intervened. Bodies are not included.
//! * Phase 5 (logging) rules do not run (envoy-gloo's filter state would run them lazily when
//!   the access log is written).
//! * A response body over the buffer limit is inspected in part, not refused.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//!
//! use bytes::Bytes;
//! use gloo_filters::waf::{RuleSet, WafBody, WafLayer, WafRules};
//! use http::{Request, Response, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rules = WafRules::compile([RuleSet::rules(
//!     r#"SecRuleEngine On
//!        SecRule REQUEST_HEADERS:User-Agent "scammer" "deny,status:403,id:107,phase:1,msg:'blocked scammer'""#,
//! )])?;
//! let layer = WafLayer::new(rules).custom_intervention_message("ModSecurity intervention!");
//! let svc = layer.layer(service_fn(|_: Request<WafBody<Full<Bytes>>>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
//! }));
//!
//! let ok = svc.clone().oneshot(Request::new(Full::new(Bytes::new()))).await?;
//! assert_eq!(ok.status(), StatusCode::OK);
//!
//! let scammer = Request::builder()
//!     .header("user-agent", "scammer")
//!     .body(Full::new(Bytes::new()))?;
//! let refused = svc.oneshot(scammer).await?;
//! assert_eq!(refused.status(), StatusCode::FORBIDDEN);
//! assert_eq!(refused.into_body().collect().await?.to_bytes(), "ModSecurity intervention!");
//! # Ok(())
//! # }
//! ```
//!
//! [`request_headers_only`]: WafLayer::request_headers_only
//! [`response_headers_only`]: WafLayer::response_headers_only
//! [`max_body_bytes`]: WafLayer::max_body_bytes
//! [`custom_intervention_message`]: WafLayer::custom_intervention_message
//! [`audit_log`]: WafLayer::audit_log

mod audit;
pub(crate) mod blocking;
mod config;
mod error;
pub(crate) mod exchange;
mod ffi;
mod future;
mod layer;
pub(crate) mod service;

pub use self::audit::AuditLog;
pub use self::config::{
    AuditLogAction, RuleSet, WafRules, WeakWafRules, CRS_RULES_DIR, CRS_SETUP_FILE,
};
pub use self::error::ConfigError;
pub use self::exchange::{Connection, Intervention, DEFAULT_INTERVENTION_MESSAGE};
pub use self::future::ResponseFuture;
pub use self::layer::WafLayer;
pub use self::service::{Waf, WafBody, WafReply};

/// How many evaluations are queued for the WAF's evaluation threads and not started yet, for
/// every layer of the process. The threads run at the lowest CPU priority, so this grows when
/// the rest of the process (or the machine) keeps every core busy: the WAF's backlog, worth a
/// gauge and an alert.
///
/// ```
/// // Nothing has been evaluated in this process.
/// assert_eq!(gloo_filters::waf::evaluations_waiting(), 0);
/// ```
pub fn evaluations_waiting() -> usize {
    blocking::waiting()
}

#[cfg(test)]
mod tests;
