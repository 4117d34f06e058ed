//! Envoy's JWT filter (`envoy.filters.http.jwt_authn`), served by gloo-filters'
//! [`JwtAuthentication`]: the same verifier an axum app can `.layer()`, configured from the
//! Envoy resource gloo-core translates Gloo's `jwt` / `jwtStaged` / `jwtProvidersStaged`
//! options into. Enabled by the `jwt` feature (on by default).
//!
//! As gloo-core emits it, the connection manager's config holds the providers and a
//! `requirement_map`; each virtual host or route names its requirement in
//! `typed_per_filter_config` (or disables the filter there). A route without a requirement is
//! not checked, as in Envoy. One [`JwtAuthentication`] is built per filter config and shared
//! by every route of the listener, so remote JWKS are fetched and cached once. Remote JWKS
//! are fetched through the `http_uri.cluster` named in the config, as Envoy fetches them.
//!
//! What the filter does not implement is refused, naming the field: route `rules`,
//! `filter_state_rules`, and the provider fields `subjects`, `require_expiration`,
//! `max_lifetime`, `from_cookies` and `clear_route_cache`.
//!
//! ```
//! use envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::{
//!     per_route_config::RequirementSpecifier, JwtAuthentication, PerRouteConfig,
//! };
//! use envoy_types::pb::google::protobuf::Any;
//! use gloo_proxy::filter::FilterRegistry;
//! use gloo_proxy::jwt::{JWT_AUTHN_PER_ROUTE_TYPE, JWT_AUTHN_TYPE};
//! use prost::Message;
//!
//! let registry = FilterRegistry::with_builtins();
//! let factory = registry.get(JWT_AUTHN_TYPE).expect("registered with the builtins");
//! let config = Any { type_url: JWT_AUTHN_TYPE.into(), value: JwtAuthentication::default().encode_to_vec() };
//! // Without a requirement (the listener's own layer), nothing is checked.
//! assert!(factory.layer(&config, None).unwrap().is_none());
//! // A route naming a requirement the config does not have is refused.
//! let route = PerRouteConfig {
//!     requirement_specifier: Some(RequirementSpecifier::RequirementName("nope".into())),
//! };
//! let route = Any { type_url: JWT_AUTHN_PER_ROUTE_TYPE.into(), value: route.encode_to_vec() };
//! let refused = factory.layer(&config, Some(&route)).err().expect("unknown requirement");
//! assert!(refused.contains("nope"), "{refused}");
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{data_source, http_uri};
use envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::{
    jwt_provider, jwt_requirement, per_route_config, JwtAuthentication as JwtConfig,
    JwtProvider as ProviderConfig, JwtRequirement as RequirementConfig, PerRouteConfig,
};
use envoy_types::pb::google::protobuf::Any;
use gloo_filters::jwt::{
    jwks_from_response, HyperJwksFetcher, JwksFetchError, JwksFetcher, JwksFuture, JwksRequest,
    JwtAuthentication, JwtProvider, JwtRejected, JwtRequirement, RemoteJwks,
};
use http::Request;
use prost::Message;
use tower::{Layer, ServiceExt};

use crate::body::Body;
use crate::filter::{
    BuiltConfigs, FilterFactory, FilterLayer, FilterRegistry, HttpService, Upstreams,
};
use crate::proxy::mark_local_reply;
use crate::router::action::pb_duration;

/// Envoy's JWT filter name.
pub const JWT_AUTHN: &str = "envoy.filters.http.jwt_authn";
/// Its config type URL.
pub const JWT_AUTHN_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";
/// Its per-route config type URL.
pub const JWT_AUTHN_PER_ROUTE_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig";

pub(crate) fn register(registry: &mut FilterRegistry) {
    let factory = JwtAuthnFactory {
        fetcher: ClusterJwksFetcher {
            upstreams: registry.upstreams().clone(),
            direct: HyperJwksFetcher::new(),
        },
        built: BuiltConfigs::new("JWT"),
    };
    registry.register(JWT_AUTHN_TYPE, factory);
}

/// Builds [`JwtAuthentication`] layers from `JwtAuthentication` configs.
struct JwtAuthnFactory {
    fetcher: ClusterJwksFetcher,
    /// One verifier per filter config (by its encoding), shared by every route, so keys are
    /// parsed and fetched once per config.
    built: BuiltConfigs<Built>,
}

#[derive(Clone)]
struct Built {
    authentication: JwtAuthentication,
    requirements: Arc<HashMap<String, RequirementConfig>>,
}

impl FilterFactory for JwtAuthnFactory {
    fn layer(&self, config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
        if config.type_url.is_empty() && config.value.is_empty() {
            // Registered everywhere or listed without a config: no providers, nothing to do.
            return Ok(None);
        }
        if config.type_url != JWT_AUTHN_TYPE {
            return Err(format!(
                "expected {JWT_AUTHN_TYPE}, got {}",
                config.type_url
            ));
        }
        let built = self.built(config)?;
        let Some(per_route) = per_route else {
            // Envoy checks a request only when a rule or a per-route config requires it.
            return Ok(None);
        };
        if per_route.type_url != JWT_AUTHN_PER_ROUTE_TYPE {
            return Err(format!(
                "per-route config: expected {JWT_AUTHN_PER_ROUTE_TYPE}, got {}",
                per_route.type_url
            ));
        }
        let route = PerRouteConfig::decode(per_route.value.as_slice())
            .map_err(|e| format!("cannot decode {}: {e}", per_route.type_url))?;
        let name = match route.requirement_specifier {
            None | Some(per_route_config::RequirementSpecifier::Disabled(true)) => return Ok(None),
            Some(per_route_config::RequirementSpecifier::Disabled(false)) => {
                return Err("per-route config: set requirement_name or disabled: true".into())
            }
            Some(per_route_config::RequirementSpecifier::RequirementName(name)) => name,
        };
        let requirement = built.requirements.get(&name).ok_or_else(|| {
            format!("per-route config: requirement {name:?} is not in the requirement_map")
        })?;
        let requirement = requirement_of(requirement, &format!("requirement_map[{name:?}]"))?;
        let layer = built
            .authentication
            .layer(requirement)
            .map_err(|e| format!("requirement_map[{name:?}]: {e}"))?;
        Ok(Some(FilterLayer::from_fn(move |inner: HttpService| {
            HttpService::new(
                layer
                    .layer(inner)
                    .map_response(mark_local_reply::<JwtRejected>),
            )
        })))
    }
}

impl JwtAuthnFactory {
    /// The verifier of `config`, built once.
    fn built(&self, config: &Any) -> Result<Built, String> {
        self.built.get_or_build(config, || {
            let decoded = JwtConfig::decode(config.value.as_slice())
                .map_err(|e| format!("cannot decode {}: {e}", config.type_url))?;
            self.build(decoded)
        })
    }

    fn build(&self, config: JwtConfig) -> Result<Built, String> {
        // What this filter does not implement is refused, never silently ignored.
        let unsupported = [
            ("rules", !config.rules.is_empty()),
            ("filter_state_rules", config.filter_state_rules.is_some()),
        ];
        if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(format!(
                "{field} is not supported (name a requirement_map entry per route instead)"
            ));
        }
        let mut builder = JwtAuthentication::builder()
            .fetcher(self.fetcher.clone())
            .bypass_cors_preflight(config.bypass_cors_preflight)
            .strip_failure_response(config.strip_failure_response);
        let mut providers: Vec<_> = config.providers.into_iter().collect();
        providers.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, provider) in providers {
            let provider =
                provider_of(&provider).map_err(|e| format!("providers[{name:?}].{e}"))?;
            builder = builder.provider(name, provider);
        }
        let authentication = builder.build().map_err(|e| e.to_string())?;
        Ok(Built {
            authentication,
            requirements: Arc::new(config.requirement_map.into_iter().collect()),
        })
    }
}

fn provider_of(config: &ProviderConfig) -> Result<JwtProvider, String> {
    let unsupported = [
        ("subjects", config.subjects.is_some()),
        ("require_expiration", config.require_expiration),
        ("max_lifetime", config.max_lifetime.is_some()),
        ("from_cookies", !config.from_cookies.is_empty()),
        ("clear_route_cache", config.clear_route_cache),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(format!("{field}: not supported"));
    }
    let mut provider = match &config.jwks_source_specifier {
        Some(jwt_provider::JwksSourceSpecifier::LocalJwks(source)) => match &source.specifier {
            Some(data_source::Specifier::InlineString(jwks)) => JwtProvider::local_jwks(jwks),
            Some(data_source::Specifier::InlineBytes(jwks)) => JwtProvider::local_jwks(
                String::from_utf8(jwks.clone())
                    .map_err(|_| "local_jwks.inline_bytes: not UTF-8".to_string())?,
            ),
            _ => {
                return Err("local_jwks: only inline_string and inline_bytes are supported".into())
            }
        },
        Some(jwt_provider::JwksSourceSpecifier::RemoteJwks(remote)) => {
            let uri = remote
                .http_uri
                .as_ref()
                .ok_or("remote_jwks.http_uri: required")?;
            let mut jwks = RemoteJwks::new(uri.uri.clone());
            if let Some(http_uri::HttpUpstreamType::Cluster(cluster)) = &uri.http_upstream_type {
                jwks = jwks.cluster(cluster.clone());
            }
            if let Some(timeout) = uri.timeout.as_ref() {
                jwks = jwks.timeout(pb_duration(timeout));
            }
            if let Some(cache) = remote.cache_duration.as_ref() {
                jwks = jwks.cache_duration(pb_duration(cache));
            }
            if let Some(fetch) = remote.async_fetch.as_ref() {
                jwks = jwks.async_fetch(true);
                if let Some(d) = fetch.failed_refetch_duration.as_ref() {
                    jwks = jwks.failed_refetch_duration(pb_duration(d));
                }
            }
            JwtProvider::remote_jwks(jwks)
        }
        None => return Err("jwks_source_specifier: set local_jwks or remote_jwks".into()),
    };
    provider = provider
        .issuer(config.issuer.clone())
        .audiences(config.audiences.iter().cloned())
        .forward(config.forward)
        .clock_skew_seconds(config.clock_skew_seconds)
        .pad_forward_payload_header(config.pad_forward_payload_header);
    for header in &config.from_headers {
        provider = provider.from_header(header.name.clone(), header.value_prefix.clone());
    }
    for param in &config.from_params {
        provider = provider.from_param(param.clone());
    }
    if !config.forward_payload_header.is_empty() {
        provider = provider.forward_payload_header(config.forward_payload_header.clone());
    }
    if !config.payload_in_metadata.is_empty() {
        // The rate limit filter's `metadata` action reads it.
        provider = provider.payload_in_metadata(config.payload_in_metadata.clone());
    }
    for claim in &config.claim_to_headers {
        provider = provider.claim_to_header(claim.claim_name.clone(), claim.header_name.clone());
    }
    Ok(provider)
}

fn requirement_of(config: &RequirementConfig, path: &str) -> Result<JwtRequirement, String> {
    use jwt_requirement::RequiresType;
    Ok(match &config.requires_type {
        Some(RequiresType::ProviderName(name)) => JwtRequirement::provider_name(name.clone()),
        Some(RequiresType::ProviderAndAudiences(p)) => JwtRequirement::provider_and_audiences(
            p.provider_name.clone(),
            p.audiences.iter().cloned(),
        ),
        Some(RequiresType::RequiresAny(list)) => JwtRequirement::requires_any(
            list.requirements
                .iter()
                .enumerate()
                .map(|(i, r)| requirement_of(r, &format!("{path}.requires_any[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(RequiresType::RequiresAll(list)) => JwtRequirement::requires_all(
            list.requirements
                .iter()
                .enumerate()
                .map(|(i, r)| requirement_of(r, &format!("{path}.requires_all[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(RequiresType::AllowMissing(_)) => JwtRequirement::allow_missing(),
        Some(RequiresType::AllowMissingOrFailed(_)) => JwtRequirement::allow_missing_or_failed(),
        Some(RequiresType::ExtractOnlyWithoutValidation(_)) => {
            return Err(format!(
                "{path}.extract_only_without_validation: not supported"
            ))
        }
        None => return Err(format!("{path}: empty requirement")),
    })
}

/// Fetches a remote JWKS through the cluster its `http_uri` names, as Envoy does (straight
/// from the URI's host when it names none).
#[derive(Clone)]
struct ClusterJwksFetcher {
    upstreams: Upstreams,
    direct: HyperJwksFetcher,
}

impl JwksFetcher for ClusterJwksFetcher {
    fn fetch(&self, request: &JwksRequest) -> JwksFuture {
        let Some(cluster) = request.cluster().map(str::to_string) else {
            return self.direct.fetch(request);
        };
        let upstreams = self.upstreams.clone();
        let uri = request.uri().clone();
        Box::pin(async move {
            let mut get = Request::new(Body::empty());
            *get.uri_mut() = uri.clone();
            let response = upstreams
                .send(&cluster, get)
                .await
                .map_err(JwksFetchError::new)?;
            jwks_from_response(&uri, response).await
        })
    }
}
