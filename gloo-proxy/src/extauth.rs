//! Envoy's ext_authz filter (`envoy.filters.http.ext_authz`), served by gloo-filters'
//! [`ExtAuthzLayer`]: each request is checked with the authorization server named in the
//! filter's `grpc_service`, reached through gloo-proxy's own cluster of that name (HTTP/2,
//! load-balanced and health-checked like any upstream), as Envoy reaches it. Enabled by the
//! `extauth` feature (on by default). gloo-core translates Gloo's `extauth` options and
//! Settings into this filter.
//!
//! Per route, as in Envoy: the most specific `ExtAuthzPerRoute` (a weighted cluster's, else
//! the route's, else its virtual host's) decides whether the filter runs (`disabled`), and the
//! `check_settings.context_extensions` of all of them are merged, the more specific winning per
//! key. A route without any per-route config is checked with no context extensions; a request
//! no route matches is not checked (it gets the router's 404).
//!
//! The check carries the request's normalised path (what the route matched), the downstream
//! addresses and the scheme. Answers the layer gives (a denial, an error refused by the
//! failure mode, `413` for a body over the limit) are local replies: they get the route's
//! response headers, as Envoy's do.
//!
//! Refused, naming the field, rather than served differently: `http_service` (Envoy's HTTP
//! authorization protocol), `envoy_grpc.authority`, a `google_grpc` client,
//! `clear_route_cache`, `allowed_headers` / `disallowed_headers`, `include_peer_certificate`,
//! `include_tls_session`, `encode_raw_headers`, `filter_enabled` / `filter_enabled_metadata`,
//! `deny_at_disable`, `decoder_header_mutation_rules`, `validate_mutations`, `shadow_mode`, and
//! per-route `with_request_body` or `service_override`. Not passed to the server: the JWT
//! filter's dynamic metadata (`metadata_context_namespaces`), which gloo-proxy does not keep;
//! an AuthConfig step that needs it (Gloo's `jwt` step) then fails, so the request is refused,
//! never let through. The `:authority` of the call is the endpoint's address (Envoy sends the
//! cluster name).
//!
//! ```
//! use envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::ExtAuthz;
//! use envoy_types::pb::google::protobuf::Any;
//! use gloo_proxy::extauth::EXT_AUTHZ_TYPE;
//! use gloo_proxy::filter::FilterRegistry;
//! use prost::Message;
//!
//! let registry = FilterRegistry::with_builtins();
//! let factory = registry.get(EXT_AUTHZ_TYPE).expect("registered with the builtins");
//! // A filter without a gRPC service is refused, naming what is missing.
//! let config = Any { type_url: EXT_AUTHZ_TYPE.into(), value: ExtAuthz::default().encode_to_vec() };
//! let refused = factory.layer(&config, None).err().expect("no service");
//! assert!(refused.contains("grpc_service"), "{refused}");
//! ```

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::grpc_service;
use envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::{
    ext_authz, ext_authz_per_route, ExtAuthz as ExtAuthzConfig, ExtAuthzPerRoute,
};
use envoy_types::pb::google::protobuf::Any;
use gloo_filters::ext_authz::{
    BufferSettings, ConnectionInfo, ExtAuthzBody, ExtAuthzLayer, Rejected, DEFAULT_TIMEOUT,
};
use http::{Request, StatusCode};
use prost::Message;
use tower::{Layer, ServiceExt};

use crate::access_log::ResponseFlags;
use crate::body::Body;
use crate::filter::{
    BuiltConfigs, ClusterChannel, FilterFactory, FilterLayer, FilterRegistry, HttpService,
    Upstreams,
};
use crate::proxy::{mark_flagged_local_reply, Downstream, RouteContext};
use crate::router::action::pb_duration;

/// Envoy's ext_authz filter name.
pub const EXT_AUTHZ: &str = "envoy.filters.http.ext_authz";
/// Its config type URL.
pub const EXT_AUTHZ_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz";
/// Its per-route config type URL.
pub const EXT_AUTHZ_PER_ROUTE_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute";

pub(crate) fn register(registry: &mut FilterRegistry) {
    registry.register(
        EXT_AUTHZ_TYPE,
        ExtAuthzFactory {
            upstreams: registry.upstreams().clone(),
            built: BuiltConfigs::new("ext_authz"),
        },
    );
}

/// Builds [`ExtAuthzLayer`]s from `ExtAuthz` configs.
struct ExtAuthzFactory {
    upstreams: Upstreams,
    /// The layer of each filter config (by its encoding), before per-route settings.
    built: BuiltConfigs<ExtAuthzLayer<ClusterChannel>>,
}

impl FilterFactory for ExtAuthzFactory {
    fn layer(&self, config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
        self.layer_merged(config, per_route.as_slice())
    }

    fn layer_merged(
        &self,
        config: &Any,
        per_route: &[&Any],
    ) -> Result<Option<FilterLayer>, String> {
        if config.type_url.is_empty() && config.value.is_empty() {
            // Registered everywhere or listed without a config: no server to ask.
            return Ok(None);
        }
        if config.type_url != EXT_AUTHZ_TYPE {
            return Err(format!(
                "expected {EXT_AUTHZ_TYPE}, got {}",
                config.type_url
            ));
        }
        let mut layer = self.built(config)?;
        // Envoy: the most specific config decides whether the filter runs; the context
        // extensions are merged from the least specific down.
        let mut context_extensions: HashMap<String, String> = HashMap::new();
        let mut disabled = false;
        for any in per_route {
            if any.type_url != EXT_AUTHZ_PER_ROUTE_TYPE {
                return Err(format!(
                    "per-route config: expected {EXT_AUTHZ_PER_ROUTE_TYPE}, got {}",
                    any.type_url
                ));
            }
            let route = ExtAuthzPerRoute::decode(any.value.as_slice())
                .map_err(|e| format!("cannot decode {}: {e}", any.type_url))?;
            match route.r#override {
                Some(ext_authz_per_route::Override::Disabled(true)) => disabled = true,
                Some(ext_authz_per_route::Override::Disabled(false)) | None => {
                    return Err("per-route config: set disabled: true or check_settings".to_string())
                }
                Some(ext_authz_per_route::Override::CheckSettings(settings)) => {
                    disabled = false;
                    if settings.with_request_body.is_some() {
                        return Err(
                            "per-route check_settings.with_request_body: not supported".into()
                        );
                    }
                    if settings.service_override.is_some() {
                        return Err(
                            "per-route check_settings.service_override: not supported".into()
                        );
                    }
                    if settings.disable_request_body_buffering {
                        return Err(
                            "per-route check_settings.disable_request_body_buffering: not supported".into(),
                        );
                    }
                    context_extensions.extend(settings.context_extensions);
                }
            }
        }
        if disabled {
            return Ok(None);
        }
        layer = layer.context_extensions(context_extensions);
        Ok(Some(FilterLayer::from_fn(move |inner: HttpService| {
            let authz = HttpService::new(
                layer
                    .layer(inner.clone().map_request(into_proxy_body))
                    .map_response(|r| {
                        mark_flagged_local_reply::<Rejected>(
                            r,
                            ResponseFlags::UNAUTHORIZED_EXTERNAL_SERVICE,
                        )
                    }),
            );
            HttpService::new(tower::service_fn(move |mut req: Request<Body>| {
                // A request no route matched is not checked (Envoy skips the check without a
                // route); the others are checked on the path the route matched.
                let routed = req.extensions().get::<RouteContext>().map(|ctx| {
                    let current = req.uri().path_and_query().map(|p| p.as_str());
                    (current != Some(ctx.path())).then(|| ctx.path().to_string())
                });
                let checked = match routed {
                    Some(Some(path)) => {
                        set_path(&mut req, &path);
                        true
                    }
                    Some(None) => true,
                    None => false,
                };
                let service = if checked {
                    authz.clone()
                } else {
                    inner.clone()
                };
                service.oneshot(req)
            }))
        })))
    }
}

impl ExtAuthzFactory {
    /// The layer of `config` (decoded and checked once).
    fn built(&self, config: &Any) -> Result<ExtAuthzLayer<ClusterChannel>, String> {
        self.built.get_or_build(config, || {
            let decoded = ExtAuthzConfig::decode(config.value.as_slice())
                .map_err(|e| format!("cannot decode {}: {e}", config.type_url))?;
            self.build(decoded)
        })
    }

    #[allow(deprecated)]
    fn build(&self, config: ExtAuthzConfig) -> Result<ExtAuthzLayer<ClusterChannel>, String> {
        // What this filter does not implement is refused, never silently ignored.
        let unsupported = [
            ("clear_route_cache", config.clear_route_cache),
            ("allowed_headers", config.allowed_headers.is_some()),
            ("disallowed_headers", config.disallowed_headers.is_some()),
            ("include_peer_certificate", config.include_peer_certificate),
            ("include_tls_session", config.include_tls_session),
            ("encode_raw_headers", config.encode_raw_headers),
            ("filter_enabled", config.filter_enabled.is_some()),
            (
                "filter_enabled_metadata",
                config.filter_enabled_metadata.is_some(),
            ),
            ("deny_at_disable", config.deny_at_disable.is_some()),
            (
                "decoder_header_mutation_rules",
                config.decoder_header_mutation_rules.is_some(),
            ),
            ("validate_mutations", config.validate_mutations),
            ("shadow_mode", config.shadow_mode),
            (
                "typed_metadata_context_namespaces",
                !config.typed_metadata_context_namespaces.is_empty(),
            ),
        ];
        if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(format!("{field}: not supported"));
        }
        let grpc = match config.services {
            Some(ext_authz::Services::GrpcService(grpc)) => grpc,
            Some(ext_authz::Services::HttpService(_)) => {
                return Err(
                    "http_service: Envoy's HTTP authorization service is not supported; use grpc_service"
                        .into(),
                )
            }
            None => return Err("grpc_service: required".into()),
        };
        let cluster = match grpc.target_specifier {
            Some(grpc_service::TargetSpecifier::EnvoyGrpc(envoy)) => {
                if !envoy.authority.is_empty() {
                    return Err("grpc_service.envoy_grpc.authority: not supported".into());
                }
                envoy.cluster_name
            }
            Some(grpc_service::TargetSpecifier::GoogleGrpc(_)) => {
                return Err("grpc_service.google_grpc: not supported; use envoy_grpc".into())
            }
            None => return Err("grpc_service: set envoy_grpc".into()),
        };
        if cluster.is_empty() {
            return Err("grpc_service.envoy_grpc.cluster_name: required".into());
        }
        let timeout = grpc
            .timeout
            .as_ref()
            .map(pb_duration)
            .filter(|t| !t.is_zero())
            .unwrap_or(DEFAULT_TIMEOUT);
        let mut layer = ExtAuthzLayer::new(ClusterChannel::new(&self.upstreams, &cluster))
            .timeout(timeout)
            .failure_mode_allow(config.failure_mode_allow)
            .failure_mode_allow_header_add(config.failure_mode_allow_header_add)
            .max_denied_response_body_bytes(config.max_denied_response_body_bytes)
            .connection_info(connection_info);
        if let Some(status) = config
            .status_on_error
            .as_ref()
            .map(|s| s.code)
            .filter(|c| *c != 0)
        {
            let status = u16::try_from(status)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(|| format!("status_on_error: invalid HTTP status {status}"))?;
            layer = layer.status_on_error(status);
        }
        if let Some(body) = &config.with_request_body {
            layer = layer.with_request_body(
                BufferSettings::new(body.max_request_bytes)
                    .allow_partial_message(body.allow_partial_message)
                    .pack_as_bytes(body.pack_as_bytes),
            );
        }
        Ok(layer)
    }
}

/// The downstream connection of a request, from the proxy's [`Downstream`].
fn connection_info(extensions: &http::Extensions) -> ConnectionInfo {
    extensions
        .get::<Downstream>()
        .map(|d| ConnectionInfo {
            source: Some(d.remote),
            destination: Some(d.local),
            tls: d.scheme == "https",
        })
        .unwrap_or_default()
}

/// Points the request at the normalised path it was routed on, keeping any absolute-form
/// scheme and authority.
fn set_path(req: &mut Request<Body>, path: &str) {
    let Ok(path) = http::uri::PathAndQuery::try_from(path) else {
        return;
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(path);
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

/// The proxy's body again: the original one untouched, the buffered one boxed.
fn into_proxy_body(req: Request<ExtAuthzBody<Body>>) -> Request<Body> {
    req.map(|body| body.into_original().unwrap_or_else(Body::new))
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::{grpc_service::EnvoyGrpc, GrpcService};
    use envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::{
        CheckSettings, HttpService,
    };

    use super::*;

    fn any<M: Message>(type_url: &str, message: &M) -> Any {
        Any {
            type_url: type_url.into(),
            value: message.encode_to_vec(),
        }
    }

    fn grpc(cluster: &str) -> ExtAuthzConfig {
        ExtAuthzConfig {
            services: Some(ext_authz::Services::GrpcService(GrpcService {
                target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(EnvoyGrpc {
                    cluster_name: cluster.into(),
                    ..Default::default()
                })),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn factory() -> ExtAuthzFactory {
        ExtAuthzFactory {
            upstreams: Upstreams::default(),
            built: BuiltConfigs::new("ext_authz"),
        }
    }

    fn disabled() -> Any {
        any(
            EXT_AUTHZ_PER_ROUTE_TYPE,
            &ExtAuthzPerRoute {
                r#override: Some(ext_authz_per_route::Override::Disabled(true)),
            },
        )
    }

    fn check_settings(settings: CheckSettings) -> Any {
        any(
            EXT_AUTHZ_PER_ROUTE_TYPE,
            &ExtAuthzPerRoute {
                r#override: Some(ext_authz_per_route::Override::CheckSettings(settings)),
            },
        )
    }

    #[test]
    fn the_most_specific_config_decides_whether_the_filter_runs() {
        let factory = factory();
        let config = any(EXT_AUTHZ_TYPE, &grpc("extauth_gloo-system"));
        let settings = check_settings(CheckSettings {
            context_extensions: [("k".to_string(), "v".to_string())].into(),
            ..Default::default()
        });
        // No per-route config: checked (Envoy's filter is on unless a route says otherwise).
        assert!(factory.layer_merged(&config, &[]).unwrap().is_some());
        assert!(factory.layer(&config, Some(&disabled())).unwrap().is_none());
        // A route's settings switch back on what its virtual host switched off...
        assert!(factory
            .layer_merged(&config, &[&disabled(), &settings])
            .unwrap()
            .is_some());
        // ...and a weighted cluster's `disabled` switches it off again.
        assert!(factory
            .layer_merged(&config, &[&disabled(), &settings, &disabled()])
            .unwrap()
            .is_none());
    }

    #[test]
    fn what_the_filter_does_not_implement_is_refused_naming_the_field() {
        let factory = factory();
        let refused = |config: ExtAuthzConfig| {
            factory
                .layer(&any(EXT_AUTHZ_TYPE, &config), None)
                .expect_err("refused")
        };
        let http = ExtAuthzConfig {
            services: Some(ext_authz::Services::HttpService(HttpService::default())),
            ..Default::default()
        };
        assert!(refused(http).starts_with("http_service:"));
        let mut authority = grpc("c");
        if let Some(ext_authz::Services::GrpcService(g)) = &mut authority.services {
            g.target_specifier = Some(grpc_service::TargetSpecifier::EnvoyGrpc(EnvoyGrpc {
                cluster_name: "c".into(),
                authority: "auth.example".into(),
                ..Default::default()
            }));
        }
        assert!(refused(authority).starts_with("grpc_service.envoy_grpc.authority"));
        assert_eq!(
            refused(ExtAuthzConfig {
                clear_route_cache: true,
                ..grpc("c")
            }),
            "clear_route_cache: not supported"
        );
        assert_eq!(
            refused(grpc("")),
            "grpc_service.envoy_grpc.cluster_name: required"
        );
        assert_eq!(refused(ExtAuthzConfig::default()), "grpc_service: required");
        let config = any(EXT_AUTHZ_TYPE, &grpc("c"));
        let per_route = check_settings(CheckSettings {
            disable_request_body_buffering: true,
            ..Default::default()
        });
        assert!(factory
            .layer(&config, Some(&per_route))
            .expect_err("refused")
            .contains("disable_request_body_buffering"));
        let not_disabled = any(
            EXT_AUTHZ_PER_ROUTE_TYPE,
            &ExtAuthzPerRoute {
                r#override: Some(ext_authz_per_route::Override::Disabled(false)),
            },
        );
        assert!(factory.layer(&config, Some(&not_disabled)).is_err());
        let wrong = any("type.googleapis.com/other", &ExtAuthzPerRoute::default());
        assert!(factory
            .layer(&config, Some(&wrong))
            .expect_err("refused")
            .contains("expected"));
    }
}
