//! The HTTP filters gloo-proxy implements itself, as Envoy does: fault injection
//! (`envoy.filters.http.fault`) and CORS (`envoy.filters.http.cors`), both configured per
//! route through `typed_per_filter_config` as Gloo emits them; the compressor (gzip), health
//! check and buffer filters of Gloo's `gzip`, `healthCheck` and `buffer` options; gRPC-Web
//! ([`GrpcWebLayer`], on every listener Gloo translates unless disabled); and Envoy's header
//! mutation filter (`envoy.filters.http.header_mutation`), in the one shape gloo-core emits it
//! (request headers removed before auth, so only the ext auth server sets the user id header);
//! and Envoy's dynamic forward proxy filter (`envoy.filters.http.dynamic_forward_proxy`: a
//! route's host rewrite, before its dynamic forward proxy cluster resolves the host).
//!
//! They are in [`FilterRegistry::with_builtins`] (and so in every
//! [`ProxyServer`](crate::gateway::ProxyServer)):
//!
//! ```
//! use std::convert::Infallible;
//! use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
//!     fault_abort, FaultAbort, HttpFault,
//! };
//! use envoy_types::pb::google::protobuf::Any;
//! use gloo_proxy::body::Body;
//! use gloo_proxy::builtin::FAULT;
//! use gloo_proxy::filter::{FilterRegistry, HttpService};
//! use prost::Message;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = FilterRegistry::with_builtins();
//! let fault = registry.get(FAULT).expect("a built-in filter");
//! // Gloo's `faults.abort` on a route: every request (no percentage given) is answered 503.
//! let abort = HttpFault {
//!     abort: Some(FaultAbort {
//!         error_type: Some(fault_abort::ErrorType::HttpStatus(503)),
//!         ..Default::default()
//!     }),
//!     ..Default::default()
//! };
//! let per_route = Any {
//!     type_url: "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault".into(),
//!     value: abort.encode_to_vec(),
//! };
//! let layer = fault.layer(&Any::default(), Some(&per_route))?.expect("a fault to inject");
//!
//! let upstream = HttpService::new(tower::service_fn(|_: http::Request<Body>| async {
//!     Ok::<_, Infallible>(http::Response::new(Body::from("from the upstream")))
//! }));
//! let response = layer.layer(upstream).oneshot(http::Request::new(Body::empty())).await?;
//! assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::fault_delay::FaultDelaySecifier;
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{fault_abort, HttpFault};
use envoy_types::pb::envoy::r#type::v3::{fractional_percent::DenominatorType, FractionalPercent};
use envoy_types::pb::google::protobuf::Any;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use prost::Message;
use tower::ServiceExt;

use crate::body::Body;
use crate::filter::{FilterFactory, FilterLayer, FilterRegistry, HttpService};
use crate::router::action::pb_duration;
use crate::router::matcher::StringMatchCase;

/// Envoy's fault filter name.
pub const FAULT: &str = "envoy.filters.http.fault";
/// Envoy's CORS filter name.
pub const CORS: &str = "envoy.filters.http.cors";

/// The config type URL of Envoy's header mutation filter.
pub const HEADER_MUTATION_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation";

mod buffer;
mod compressor;
mod dynamic_forward_proxy;
mod grpc_web;
mod health_check;

pub use buffer::BUFFER;
pub use compressor::COMPRESSOR;
pub use dynamic_forward_proxy::DYNAMIC_FORWARD_PROXY;
pub use grpc_web::{
    grpc_message, grpc_status_of, has_grpc_content_type, is_grpc_web_request, GrpcWeb,
    GrpcWebLayer, GRPC_WEB, GRPC_WEB_TYPE,
};
pub(crate) use grpc_web::{is_grpc_content_type, is_grpc_web_content_type, message_of};
pub use health_check::HEALTH_CHECK;

pub(crate) fn register(registry: &mut FilterRegistry) {
    registry.register(FAULT, Fault);
    registry.register(HEALTH_CHECK, health_check::HealthCheck);
    registry.register(BUFFER, buffer::BufferFilter);
    registry.register(COMPRESSOR, compressor::CompressorFilter);
    registry.register_for_grpc_web(GRPC_WEB, grpc_web::GrpcWebFilter);
    registry.register(CORS, Cors);
    registry.register(HEADER_MUTATION_TYPE, HeaderMutationFactory);
    registry.register(
        DYNAMIC_FORWARD_PROXY,
        dynamic_forward_proxy::DynamicForwardProxyFilter,
    );
    #[cfg(feature = "extauth")]
    crate::extauth::register(registry);
    #[cfg(feature = "ratelimit")]
    crate::ratelimit::register(registry);
    #[cfg(feature = "ratelimit")]
    crate::global_ratelimit::register(registry);
    #[cfg(feature = "jwt")]
    crate::jwt::register(registry);
    #[cfg(feature = "transform")]
    crate::transform::register(registry);
    #[cfg(feature = "waf")]
    crate::waf::register(registry);
    #[cfg(feature = "aws-lambda")]
    crate::aws_lambda::register(registry);
}

fn decode<M: Message + Default>(any: &Any) -> Result<M, String> {
    M::decode(any.value.as_slice()).map_err(|e| format!("cannot decode {}: {e}", any.type_url))
}

/// A sampled percentage, as a fraction of a million.
pub(crate) fn per_million(p: Option<&FractionalPercent>) -> u32 {
    let Some(p) = p else { return 1_000_000 };
    let scale = match DenominatorType::try_from(p.denominator) {
        Ok(DenominatorType::Hundred) => 10_000,
        Ok(DenominatorType::TenThousand) => 100,
        _ => 1,
    };
    p.numerator.saturating_mul(scale).min(1_000_000)
}

/// A runtime share that must be all (`Some(true)`) or nothing (`Some(false)`); `None` when it
/// is not set (each filter has its own default). Gloo emits only 100%; a partial share would
/// need sampling per request, which these filters do not do, so it is refused (naming
/// `field`) rather than approximated.
#[cfg(feature = "ratelimit")]
pub(crate) fn all_or_nothing(
    p: Option<&RuntimeFractionalPercent>,
    field: &str,
) -> Result<Option<bool>, String> {
    let Some(share) = p.and_then(|p| p.default_value.as_ref()) else {
        return Ok(None);
    };
    match per_million(Some(share)) {
        0 => Ok(Some(false)),
        1_000_000 => Ok(Some(true)),
        n => Err(format!(
            "{field}: {}% of requests is not supported (only 0% or 100%)",
            f64::from(n) / 10_000.0
        )),
    }
}

fn sampled(per_million: u32) -> bool {
    per_million >= 1_000_000 || fastrand::u32(0..1_000_000) < per_million
}

/// Fault injection: a delay and/or an abort, each for a share of requests.
struct Fault;

#[derive(Debug, Clone)]
struct FaultConfig {
    delay: Option<(Duration, u32)>,
    abort: Option<(StatusCode, u32, String)>,
}

impl FilterFactory for Fault {
    fn layer(&self, config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
        let fault: HttpFault = decode(per_route.unwrap_or(config))?;
        let delay = fault
            .delay
            .as_ref()
            .and_then(|d| match &d.fault_delay_secifier {
                Some(FaultDelaySecifier::FixedDelay(t)) => {
                    Some((pb_duration(t), per_million(d.percentage.as_ref())))
                }
                _ => None,
            });
        let abort = match fault.abort.as_ref() {
            Some(a) => match &a.error_type {
                Some(fault_abort::ErrorType::HttpStatus(code)) => {
                    let status = u16::try_from(*code)
                        .ok()
                        .and_then(|c| StatusCode::from_u16(c).ok())
                        .ok_or_else(|| format!("invalid abort status {code}"))?;
                    let body = if a.response_body.is_empty() {
                        "fault filter abort".to_string()
                    } else {
                        a.response_body.clone()
                    };
                    Some((status, per_million(a.percentage.as_ref()), body))
                }
                _ => None,
            },
            None => None,
        };
        if delay.is_none() && abort.is_none() {
            return Ok(None);
        }
        let cfg = Arc::new(FaultConfig { delay, abort });
        Ok(Some(FilterLayer::from_fn(move |inner: HttpService| {
            let cfg = cfg.clone();
            HttpService::new(tower::service_fn(move |req: Request<Body>| {
                let cfg = cfg.clone();
                let inner = inner.clone();
                async move {
                    use crate::access_log::{ResponseFlags, StreamFacts};
                    let mut flags = ResponseFlags::default();
                    if let Some((delay, share)) = cfg.delay {
                        if sampled(share) {
                            tokio::time::sleep(delay).await;
                            flags |= ResponseFlags::DELAY_INJECTED;
                        }
                    }
                    if let Some((status, share, body)) = &cfg.abort {
                        if sampled(*share) {
                            let mut r = Response::new(Body::from(body.clone()));
                            *r.status_mut() = *status;
                            r.extensions_mut().insert(crate::proxy::LocalReply);
                            r.headers_mut().insert(
                                header::CONTENT_TYPE,
                                HeaderValue::from_static("text/plain"),
                            );
                            flags |= ResponseFlags::FAULT_INJECTED;
                            return Ok(StreamFacts::flag(r, flags));
                        }
                    }
                    let response = inner.oneshot(req).await?;
                    Ok(if flags.is_empty() {
                        response
                    } else {
                        StreamFacts::flag(response, flags)
                    })
                }
            }))
        })))
    }
}

/// CORS: answers preflights and adds the allow headers to responses for allowed origins.
struct Cors;

#[derive(Debug)]
struct CorsConfig {
    origins: Vec<StringMatchCase>,
    methods: Option<HeaderValue>,
    headers: Option<HeaderValue>,
    expose: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    credentials: bool,
}

fn enabled(p: Option<&RuntimeFractionalPercent>) -> bool {
    p.and_then(|p| p.default_value.as_ref())
        .is_none_or(|v| per_million(Some(v)) > 0)
}

fn header_value(s: &str) -> Result<Option<HeaderValue>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(s)
        .map(Some)
        .map_err(|_| format!("invalid header value {s:?}"))
}

impl FilterFactory for Cors {
    fn layer(&self, _config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
        let Some(per_route) = per_route else {
            return Ok(None);
        };
        let policy: CorsPolicy = decode(per_route)?;
        if !enabled(policy.filter_enabled.as_ref()) {
            return Ok(None);
        }
        let cfg = Arc::new(CorsConfig {
            origins: policy
                .allow_origin_string_match
                .iter()
                .map(|m| {
                    StringMatchCase::compile(m, "cors.allow_origin_string_match")
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<_, _>>()?,
            methods: header_value(&policy.allow_methods)?,
            headers: header_value(&policy.allow_headers)?,
            expose: header_value(&policy.expose_headers)?,
            max_age: header_value(&policy.max_age)?,
            credentials: policy.allow_credentials.as_ref().is_some_and(|b| b.value),
        });
        Ok(Some(FilterLayer::from_fn(move |inner: HttpService| {
            let cfg = cfg.clone();
            HttpService::new(tower::service_fn(move |req: Request<Body>| {
                let cfg = cfg.clone();
                let inner = inner.clone();
                async move {
                    let origin = req.headers().get(header::ORIGIN).cloned();
                    let allowed = origin.as_ref().filter(|o| {
                        o.to_str()
                            .is_ok_and(|o| cfg.origins.iter().any(|m| m.matches(o)))
                    });
                    let Some(origin) = allowed.cloned() else {
                        return inner.oneshot(req).await;
                    };
                    let preflight = req.method() == Method::OPTIONS
                        && req
                            .headers()
                            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
                    if preflight {
                        let mut r = Response::new(Body::empty());
                        let h = r.headers_mut();
                        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                        if let Some(v) = &cfg.methods {
                            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v.clone());
                        }
                        if let Some(v) = &cfg.headers {
                            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
                        }
                        if let Some(v) = &cfg.expose {
                            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
                        }
                        if let Some(v) = &cfg.max_age {
                            h.insert(header::ACCESS_CONTROL_MAX_AGE, v.clone());
                        }
                        if cfg.credentials {
                            h.insert(
                                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                                HeaderValue::from_static("true"),
                            );
                        }
                        return Ok(r);
                    }
                    let mut r = inner.oneshot(req).await?;
                    let h = r.headers_mut();
                    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                    if let Some(v) = &cfg.expose {
                        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
                    }
                    if cfg.credentials {
                        h.insert(
                            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                            HeaderValue::from_static("true"),
                        );
                    }
                    Ok(r)
                }
            }))
        })))
    }
}

/// Envoy's header mutation filter, as far as gloo-core emits it: request headers removed on
/// every request. Anything else it can say (appending headers, removing by matcher, response,
/// trailer and query parameter mutations, per-route configs) is refused, naming the field.
struct HeaderMutationFactory;

impl FilterFactory for HeaderMutationFactory {
    fn layer(&self, config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
        use envoy_types::pb::envoy::config::common::mutation_rules::v3::header_mutation::Action;
        use envoy_types::pb::envoy::extensions::filters::http::header_mutation::v3::HeaderMutation;
        if per_route.is_some() {
            return Err("per-route header mutations are not supported".into());
        }
        let config: HeaderMutation = decode(config)?;
        if config.most_specific_header_mutations_wins {
            return Err("most_specific_header_mutations_wins: not supported".into());
        }
        let Some(mutations) = config.mutations else {
            return Ok(None);
        };
        let unsupported = [
            (
                "response_mutations",
                !mutations.response_mutations.is_empty(),
            ),
            (
                "query_parameter_mutations",
                !mutations.query_parameter_mutations.is_empty(),
            ),
            (
                "request_trailers_mutations",
                !mutations.request_trailers_mutations.is_empty(),
            ),
            (
                "response_trailers_mutations",
                !mutations.response_trailers_mutations.is_empty(),
            ),
        ];
        if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(format!("mutations.{field}: not supported"));
        }
        let mut remove = Vec::with_capacity(mutations.request_mutations.len());
        for (i, m) in mutations.request_mutations.iter().enumerate() {
            match &m.action {
                Some(Action::Remove(name)) => remove.push(
                    header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        format!(
                            "mutations.request_mutations[{i}].remove: invalid header name {name:?}"
                        )
                    })?,
                ),
                _ => {
                    return Err(format!(
                        "mutations.request_mutations[{i}]: only remove is supported"
                    ))
                }
            }
        }
        if remove.is_empty() {
            return Ok(None);
        }
        let remove: Arc<[header::HeaderName]> = remove.into();
        Ok(Some(FilterLayer::from_fn(move |inner: HttpService| {
            let remove = remove.clone();
            HttpService::new(inner.map_request(move |mut req: Request<Body>| {
                for name in remove.iter() {
                    req.headers_mut().remove(name);
                }
                req
            }))
        })))
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::common::mutation_rules::v3::{
        header_mutation::Action, HeaderMutation as Rule,
    };
    use envoy_types::pb::envoy::extensions::filters::http::header_mutation::v3::{
        HeaderMutation, Mutations,
    };

    use super::*;

    fn config(mutations: Mutations) -> Any {
        Any {
            type_url: HEADER_MUTATION_TYPE.into(),
            value: HeaderMutation {
                mutations: Some(mutations),
                ..Default::default()
            }
            .encode_to_vec(),
        }
    }

    #[tokio::test]
    async fn header_mutation_removes_request_headers_and_refuses_the_rest() {
        let layer = HeaderMutationFactory
            .layer(
                &config(Mutations {
                    request_mutations: vec![Rule {
                        action: Some(Action::Remove("x-user-id".into())),
                    }],
                    ..Default::default()
                }),
                None,
            )
            .unwrap()
            .expect("a layer");
        let seen = HttpService::new(tower::service_fn(|req: Request<Body>| async move {
            let has = req.headers().contains_key("x-user-id");
            Ok(Response::new(Body::from(if has {
                "kept"
            } else {
                "removed"
            })))
        }));
        let request = Request::builder()
            .header("x-user-id", "mallory")
            .body(Body::empty())
            .unwrap();
        let response = layer.layer(seen).oneshot(request).await.unwrap();
        use http_body_util::BodyExt;
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "removed");

        let refused = HeaderMutationFactory
            .layer(
                &config(Mutations {
                    response_mutations: vec![Rule {
                        action: Some(Action::Remove("x".into())),
                    }],
                    ..Default::default()
                }),
                None,
            )
            .expect_err("refused");
        assert_eq!(refused, "mutations.response_mutations: not supported");
        let refused = HeaderMutationFactory
            .layer(
                &config(Mutations {
                    request_mutations: vec![Rule {
                        action: Some(Action::Append(Default::default())),
                    }],
                    ..Default::default()
                }),
                None,
            )
            .expect_err("refused");
        assert_eq!(
            refused,
            "mutations.request_mutations[0]: only remove is supported"
        );
    }
}
