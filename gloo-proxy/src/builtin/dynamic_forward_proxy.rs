//! Envoy's dynamic forward proxy filter (`envoy.filters.http.dynamic_forward_proxy`), as Gloo
//! emits it for a Gateway's `dynamicForwardProxy` option: a route's `PerRouteConfig` rewrites
//! the request's `Host` (to a literal, or to another header's value when the request has
//! it) before the route's dynamic forward proxy cluster resolves that host and sends the
//! request there (see the cluster side in `upstream::dynamic`). Without a per-route config
//! the request goes to the host it names.

use envoy_types::pb::envoy::extensions::filters::http::dynamic_forward_proxy::v3::{
    filter_config::ImplementationSpecifier, per_route_config::HostRewriteSpecifier, FilterConfig,
    PerRouteConfig,
};
use envoy_types::pb::google::protobuf::Any;
use http::{header, HeaderName, HeaderValue, Request};
use tower::ServiceExt;

use super::decode;
use crate::body::Body;
use crate::filter::{FilterFactory, FilterLayer, HttpService};

/// Envoy's dynamic forward proxy filter name.
pub const DYNAMIC_FORWARD_PROXY: &str = "envoy.filters.http.dynamic_forward_proxy";

const CONFIG_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig";
const PER_ROUTE_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.dynamic_forward_proxy.v3.PerRouteConfig";

pub(super) struct DynamicForwardProxyFilter;

/// Where a route takes the request's new `Host` from.
#[derive(Clone)]
enum Rewrite {
    Literal(HeaderValue),
    Header(HeaderName),
}

impl FilterFactory for DynamicForwardProxyFilter {
    fn layer(&self, config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
        if config.type_url != CONFIG_TYPE {
            return Err(format!("expected {CONFIG_TYPE}, got {}", config.type_url));
        }
        let config: FilterConfig = decode(config)?;
        match config.implementation_specifier {
            Some(ImplementationSpecifier::DnsCacheConfig(_)) => {}
            Some(ImplementationSpecifier::SubClusterConfig(_)) => {
                return Err("sub_cluster_config is not supported".into())
            }
            None => return Err("dns_cache_config is required".into()),
        }
        if config.allow_dynamic_host_from_filter_state {
            return Err("allow_dynamic_host_from_filter_state is not supported".into());
        }
        let Some(per_route) = per_route else {
            return Ok(None);
        };
        if per_route.type_url != PER_ROUTE_TYPE {
            return Err(format!(
                "per-route config: expected {PER_ROUTE_TYPE}, got {}",
                per_route.type_url
            ));
        }
        let per_route: PerRouteConfig = decode(per_route)?;
        let rewrite = match per_route.host_rewrite_specifier {
            None => return Ok(None),
            Some(HostRewriteSpecifier::HostRewriteLiteral(host)) if host.is_empty() => {
                return Ok(None)
            }
            Some(HostRewriteSpecifier::HostRewriteLiteral(host)) => Rewrite::Literal(
                HeaderValue::from_str(&host)
                    .map_err(|_| format!("host_rewrite_literal: invalid host {host:?}"))?,
            ),
            Some(HostRewriteSpecifier::HostRewriteHeader(name)) if name.is_empty() => {
                return Ok(None)
            }
            Some(HostRewriteSpecifier::HostRewriteHeader(name)) => Rewrite::Header(
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("host_rewrite_header: invalid header name {name:?}"))?,
            ),
        };
        Ok(Some(FilterLayer::from_fn(move |inner: HttpService| {
            let rewrite = rewrite.clone();
            HttpService::new(inner.map_request(move |mut req: Request<Body>| {
                let host = match &rewrite {
                    Rewrite::Literal(v) => Some(v.clone()),
                    Rewrite::Header(name) => req.headers().get(name).cloned(),
                };
                if let Some(host) = host {
                    req.headers_mut().insert(header::HOST, host);
                }
                req
            }))
        })))
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::extensions::common::dynamic_forward_proxy::v3::DnsCacheConfig;
    use prost::Message;

    use super::*;

    fn config() -> Any {
        Any {
            type_url: CONFIG_TYPE.into(),
            value: FilterConfig {
                implementation_specifier: Some(ImplementationSpecifier::DnsCacheConfig(
                    DnsCacheConfig {
                        name: "cache".into(),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }
            .encode_to_vec(),
        }
    }

    fn per_route(rewrite: HostRewriteSpecifier) -> Any {
        Any {
            type_url: PER_ROUTE_TYPE.into(),
            value: PerRouteConfig {
                host_rewrite_specifier: Some(rewrite),
            }
            .encode_to_vec(),
        }
    }

    async fn host_seen(layer: FilterLayer, req: Request<Body>) -> Option<String> {
        let echo = HttpService::new(tower::service_fn(|req: Request<Body>| async move {
            let host = req
                .headers()
                .get(header::HOST)
                .map(|h| h.to_str().unwrap_or_default().to_string());
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::from(
                host.unwrap_or_default(),
            )))
        }));
        let response = layer.layer(echo).oneshot(req).await.ok()?;
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .ok()?;
        Some(String::from_utf8_lossy(&body.to_bytes()).into_owned())
    }

    fn request(headers: &[(&str, &str)]) -> Request<Body> {
        let mut req = Request::new(Body::empty());
        for (k, v) in headers {
            req.headers_mut().insert(
                HeaderName::from_bytes(k.as_bytes()).expect("a header name"),
                HeaderValue::from_str(v).expect("a header value"),
            );
        }
        req
    }

    #[tokio::test]
    async fn routes_rewrite_the_host_to_a_literal_or_to_a_header_when_present() {
        let f = DynamicForwardProxyFilter;
        let literal = f
            .layer(
                &config(),
                Some(&per_route(HostRewriteSpecifier::HostRewriteLiteral(
                    "example.org:8080".into(),
                ))),
            )
            .expect("a valid config")
            .expect("a rewrite");
        let seen = host_seen(literal, request(&[("host", "client.example")])).await;
        assert_eq!(seen.as_deref(), Some("example.org:8080"));

        let from_header = f
            .layer(
                &config(),
                Some(&per_route(HostRewriteSpecifier::HostRewriteHeader(
                    "x-rewrite-me".into(),
                ))),
            )
            .expect("a valid config")
            .expect("a rewrite");
        let seen = host_seen(
            from_header.clone(),
            request(&[
                ("host", "client.example"),
                ("x-rewrite-me", "target.example"),
            ]),
        )
        .await;
        assert_eq!(seen.as_deref(), Some("target.example"));
        // Without the header the request keeps its own host.
        let seen = host_seen(from_header, request(&[("host", "client.example")])).await;
        assert_eq!(seen.as_deref(), Some("client.example"));
    }

    #[test]
    fn no_per_route_config_no_layer_and_bad_configs_are_refused() {
        let f = DynamicForwardProxyFilter;
        assert!(matches!(f.layer(&config(), None), Ok(None)));
        let empty = Any {
            type_url: CONFIG_TYPE.into(),
            value: FilterConfig::default().encode_to_vec(),
        };
        let refused = f.layer(&empty, None).err().unwrap_or_default();
        assert!(
            refused.contains("dns_cache_config is required"),
            "{refused}"
        );
        let bad = per_route(HostRewriteSpecifier::HostRewriteHeader("bad header".into()));
        let refused = f.layer(&config(), Some(&bad)).err().unwrap_or_default();
        assert!(refused.contains("host_rewrite_header"), "{refused}");
    }
}
