//! Envoy's health check filter (`envoy.filters.http.health_check`): requests whose headers
//! match the filter's are health checks. Without pass-through mode the proxy answers them
//! itself (200, once the request has arrived in full); with it, they go on as usual. Either
//! way they are marked, so access logs with a `not_health_check_filter` leave them out.
//!
//! Gloo's `healthCheck: {path: /envoy-hc}` on a Gateway is this filter matching `:path`.

use std::sync::Arc;

use envoy_types::pb::envoy::extensions::filters::http::health_check::v3::HealthCheck as HealthCheckConfig;
use envoy_types::pb::google::protobuf::Any;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::decode;
use crate::access_log::StreamFacts;
use crate::body::Body;
use crate::filter::{FilterFactory, FilterLayer, HttpService};
use crate::proxy::LocalReply;
use crate::router::matcher::HeaderMatch;

/// Envoy's health check filter name.
pub const HEALTH_CHECK: &str = "envoy.filters.http.health_check";

pub(super) struct HealthCheck;

#[derive(Debug)]
struct Compiled {
    headers: Vec<HeaderMatch>,
    pass_through: bool,
}

impl Compiled {
    fn matches(&self, req: &Request<Body>) -> bool {
        crate::proxy::headers_match(
            &self.headers,
            req.method(),
            req.uri(),
            req.headers(),
            req.extensions(),
        )
    }
}

impl FilterFactory for HealthCheck {
    fn layer(&self, config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
        if per_route.is_some() {
            return Err("the health check filter has no per-route config".into());
        }
        let config: HealthCheckConfig = decode(config)?;
        let pass_through = config
            .pass_through_mode
            .as_ref()
            .ok_or("pass_through_mode is required")?
            .value;
        if config.cache_time.is_some() {
            return Err("cache_time is not supported".into());
        }
        if !config.cluster_min_healthy_percentages.is_empty() {
            return Err("cluster_min_healthy_percentages is not supported".into());
        }
        let headers = config
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                HeaderMatch::compile(h, &format!("headers[{i}]")).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let compiled = Arc::new(Compiled {
            headers,
            pass_through,
        });
        Ok(Some(FilterLayer::from_fn(move |inner: HttpService| {
            let compiled = compiled.clone();
            HttpService::new(tower::service_fn(move |req: Request<Body>| {
                let compiled = compiled.clone();
                let inner = inner.clone();
                async move {
                    if !compiled.matches(&req) {
                        return inner.oneshot(req).await;
                    }
                    let mut response = if compiled.pass_through {
                        inner.oneshot(req).await?
                    } else {
                        // Envoy answers once the whole request has arrived.
                        let _ = req.into_body().collect().await;
                        let mut response = crate::proxy::local_reply(StatusCode::OK, "");
                        response.extensions_mut().insert(LocalReply);
                        response
                    };
                    StreamFacts::of(&mut response).health_check = true;
                    Ok(response)
                }
            }))
        })))
    }
}
