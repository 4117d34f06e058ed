//! JWT verification: Gloo's `options.jwt` / `options.jwtStaged` (virtual host) and route
//! `jwt` / `jwtStaged` / `jwtProvidersStaged`, translated to stock Envoy's
//! `envoy.filters.http.jwt_authn`, so an Envoy fleet and gloo-proxy enforce the same config.
//!
//! Gloo runs JWT in two stages around ext auth: `beforeExtAuth` (also what the deprecated
//! `jwt` field sets) and `afterExtAuth`. Each stage that any virtual host of a listener uses is
//! one `jwt_authn` filter in the connection manager, holding every provider of that stage and
//! one requirement per virtual host (and per route with its own providers):
//!
//! * a provider is named `<virtual host>_<provider>` (`<route>_<provider>` for a route's own);
//! * the requirement is named after the virtual host (or route): the provider alone, or
//!   `requires_any` of them when there are several (a JWT valid for any provider passes);
//!   `validationPolicy: ALLOW_MISSING` adds `allow_missing` to the list (no token passes, a bad
//!   one fails), `ALLOW_MISSING_OR_FAILED` (or the deprecated `allowMissingOrFailedJwt`) adds
//!   `allow_missing_or_failed`;
//! * the virtual host's `typed_per_filter_config` names its requirement; a route with its own
//!   providers names its own; a route with `disable: true` gets `disabled: true`.
//!
//! Provider fields map one to one: `issuer`, `audiences`, `tokenSource.headers` →
//! `from_headers` (`header` / `prefix`), `tokenSource.queryParams` → `from_params`,
//! `keepToken` → `forward`, `claimsToHeaders` → `claim_to_headers`, `clockSkewSeconds`,
//! `jwks.local.key` → `local_jwks` (a JWKS, or one JWK or PEM public key wrapped into a set),
//! `jwks.remote` → `remote_jwks` fetched from the `upstreamRef`'s cluster (cache 5 minutes
//! unless `cacheDuration` says otherwise). The verified payload is kept in dynamic metadata
//! under `principal` (`payload_in_metadata`, Gloo's `PayloadInMetadata` for every provider),
//! where rate limit `metadata` actions read claims (`metadataKey: {key:
//! envoy.filters.http.jwt_authn, path: [{key: principal}, {key: <claim>}]}`, as in Gloo's
//! guide on rate limiting by JWT claims).

use std::collections::{BTreeSet, HashMap};

use envoy_types::pb::envoy::config::core::v3::{data_source, http_uri, DataSource, HttpUri};
use envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::{
    jwt_provider, jwt_requirement, per_route_config, JwtAuthentication, JwtClaimToHeader,
    JwtHeader, JwtProvider, JwtRequirement, JwtRequirementOrList, PerRouteConfig, RemoteJwks,
};
use envoy_types::pb::google::protobuf::Empty;

use super::names::cluster_name;

/// Where every provider's verified payload goes in `envoy.filters.http.jwt_authn`'s dynamic
/// metadata: Gloo's `PayloadInMetadata`.
pub const PAYLOAD_IN_METADATA: &str = "principal";
use super::routes::duration;
use crate::model::jwt::{JwksSourceRef, Provider, ValidationPolicy, VhostExtension};
use crate::model::options::{RouteOptions, VirtualHostOptions};
use crate::model::{ResourceRef, DEFAULT_NAMESPACE};
use crate::resolve::{RouteModel, VirtualHostModel};

/// Envoy's JWT filter name: the stage before ext auth.
pub const JWT_FILTER: &str = "envoy.filters.http.jwt_authn";
/// The filter of Gloo's stage after ext auth (a second `jwt_authn` filter).
pub const JWT_AFTER_EXT_AUTH_FILTER: &str = "envoy.filters.http.jwt_authn.after_ext_auth";

/// How long a remote JWKS is cached unless `cacheDuration` says otherwise (Gloo's default).
const DEFAULT_CACHE_SECONDS: i64 = 300;
/// How long a JWKS fetch may take (Envoy requires a timeout on the `HttpUri`).
const FETCH_TIMEOUT_SECONDS: i64 = 5;

/// One of Gloo's two JWT filter stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// `beforeExtAuth`, and the deprecated `jwt` field.
    BeforeExtAuth,
    /// `afterExtAuth`.
    AfterExtAuth,
}

impl Stage {
    /// Both stages, in filter order.
    pub(crate) const ALL: [Stage; 2] = [Stage::BeforeExtAuth, Stage::AfterExtAuth];

    /// The connection manager filter of this stage.
    pub(crate) fn filter_name(self) -> &'static str {
        match self {
            Stage::BeforeExtAuth => JWT_FILTER,
            Stage::AfterExtAuth => JWT_AFTER_EXT_AUTH_FILTER,
        }
    }

    /// A virtual host's providers for this stage.
    fn of_host(self, options: &VirtualHostOptions) -> Option<&VhostExtension> {
        match self {
            Stage::BeforeExtAuth => options.jwt.as_deref().or_else(|| {
                options
                    .jwt_staged
                    .as_ref()
                    .and_then(|s| s.before_ext_auth.as_ref())
            }),
            Stage::AfterExtAuth => options
                .jwt_staged
                .as_ref()
                .and_then(|s| s.after_ext_auth.as_ref()),
        }
    }

    /// A route's own providers for this stage.
    fn providers_of_route(self, options: &RouteOptions) -> Option<&VhostExtension> {
        let staged = options.jwt_providers_staged.as_ref()?;
        match self {
            Stage::BeforeExtAuth => staged.before_ext_auth.as_ref(),
            Stage::AfterExtAuth => staged.after_ext_auth.as_ref(),
        }
    }

    /// Whether a route switches this stage off.
    fn disabled_on_route(self, options: &RouteOptions) -> bool {
        let staged = options.jwt_staged.as_ref();
        let disable = match self {
            Stage::BeforeExtAuth => options.jwt.as_ref().and_then(|j| j.disable).or_else(|| {
                staged
                    .and_then(|s| s.before_ext_auth.as_ref())
                    .and_then(|r| r.disable)
            }),
            Stage::AfterExtAuth => staged
                .and_then(|s| s.after_ext_auth.as_ref())
                .and_then(|r| r.disable),
        };
        disable == Some(true)
    }
}

/// Whether any virtual host or route of a listener sets JWT providers for `stage`.
fn stage_used(stage: Stage, hosts: &[std::sync::Arc<VirtualHostModel>]) -> bool {
    hosts.iter().any(|h| {
        stage.of_host(&h.options).is_some()
            || h.routes
                .iter()
                .any(|r| stage.providers_of_route(&r.options).is_some())
    })
}

/// The connection manager's filter config for `stage`, or `None` when nothing uses it.
pub(crate) fn filter_config(
    stage: Stage,
    hosts: &[std::sync::Arc<VirtualHostModel>],
) -> Option<JwtAuthentication> {
    if !stage_used(stage, hosts) {
        return None;
    }
    let mut config = JwtAuthentication::default();
    for host in hosts {
        if let Some(extension) = stage.of_host(&host.options) {
            add_requirement(&mut config, &host.name, extension);
        }
        for route in &host.routes {
            if let Some(extension) = stage.providers_of_route(&route.options) {
                add_requirement(&mut config, &route.name, extension);
            }
        }
    }
    Some(config)
}

/// Adds `owner`'s providers and its requirement.
fn add_requirement(config: &mut JwtAuthentication, owner: &str, extension: &VhostExtension) {
    let mut names = Vec::with_capacity(extension.providers.len());
    for (name, provider) in &extension.providers {
        let full = format!("{owner}_{name}");
        config
            .providers
            .insert(full.clone(), provider_config(provider));
        names.push(full);
    }
    config.requirement_map.insert(
        owner.to_string(),
        requirement(names, extension.effective_validation_policy()),
    );
}

fn requirement(providers: Vec<String>, policy: ValidationPolicy) -> JwtRequirement {
    use jwt_requirement::RequiresType;
    let mut any: Vec<JwtRequirement> = providers
        .into_iter()
        .map(|p| JwtRequirement {
            requires_type: Some(RequiresType::ProviderName(p)),
        })
        .collect();
    match policy {
        ValidationPolicy::RequireValid => {}
        ValidationPolicy::AllowMissing => any.push(JwtRequirement {
            requires_type: Some(RequiresType::AllowMissing(Empty {})),
        }),
        ValidationPolicy::AllowMissingOrFailed => any.push(JwtRequirement {
            requires_type: Some(RequiresType::AllowMissingOrFailed(Empty {})),
        }),
    }
    if any.len() == 1 {
        if let Some(only) = any.pop() {
            return only;
        }
    }
    JwtRequirement {
        requires_type: Some(RequiresType::RequiresAny(JwtRequirementOrList {
            requirements: any,
        })),
    }
}

fn provider_config(provider: &Provider) -> JwtProvider {
    let source = provider.token_source.as_ref();
    JwtProvider {
        issuer: provider.issuer.clone().unwrap_or_default(),
        audiences: provider.audiences.clone(),
        from_headers: source
            .map(|s| {
                s.headers
                    .iter()
                    .map(|h| JwtHeader {
                        name: h.header.clone().unwrap_or_default(),
                        value_prefix: h.prefix.clone().unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        from_params: source.map(|s| s.query_params.clone()).unwrap_or_default(),
        forward: provider.keep_token.unwrap_or(false),
        claim_to_headers: provider
            .claims_to_headers
            .iter()
            .map(|c| JwtClaimToHeader {
                header_name: c.header.clone().unwrap_or_default(),
                claim_name: c.claim.clone().unwrap_or_default(),
                ..Default::default()
            })
            .collect(),
        clock_skew_seconds: provider.clock_skew_seconds.unwrap_or(0),
        payload_in_metadata: PAYLOAD_IN_METADATA.to_string(),
        jwks_source_specifier: jwks_source(provider),
        ..Default::default()
    }
}

fn jwks_source(provider: &Provider) -> Option<jwt_provider::JwksSourceSpecifier> {
    match provider.jwks.as_ref()?.source().ok()?? {
        JwksSourceRef::Local(local) => {
            let key = local_jwks(local.key.as_deref().unwrap_or_default()).ok()?;
            Some(jwt_provider::JwksSourceSpecifier::LocalJwks(DataSource {
                specifier: Some(data_source::Specifier::InlineString(key)),
                ..Default::default()
            }))
        }
        JwksSourceRef::Remote(remote) => {
            let cluster = remote.upstream_ref.as_ref().map(jwks_cluster)?;
            Some(jwt_provider::JwksSourceSpecifier::RemoteJwks(RemoteJwks {
                http_uri: Some(HttpUri {
                    uri: remote.url.clone().unwrap_or_default(),
                    timeout: Some(envoy_types::pb::google::protobuf::Duration {
                        seconds: FETCH_TIMEOUT_SECONDS,
                        nanos: 0,
                    }),
                    http_upstream_type: Some(http_uri::HttpUpstreamType::Cluster(cluster)),
                }),
                cache_duration: Some(remote.cache_duration.as_ref().map(duration).unwrap_or(
                    envoy_types::pb::google::protobuf::Duration {
                        seconds: DEFAULT_CACHE_SECONDS,
                        nanos: 0,
                    },
                )),
                ..Default::default()
            }))
        }
    }
}

/// The upstream a remote JWKS is fetched from (namespace defaulting to `gloo-system`).
fn jwks_upstream(upstream: &ResourceRef) -> ResourceRef {
    upstream.resolved(DEFAULT_NAMESPACE)
}

fn jwks_cluster(upstream: &ResourceRef) -> String {
    cluster_name(&jwks_upstream(upstream))
}

/// A local key as Envoy's `local_jwks` wants it: a JWKS as is, one JWK or PEM public key
/// wrapped into a set (the PEM converted to a JWK, as Gloo does).
pub(crate) fn local_jwks(key: &str) -> Result<String, String> {
    let trimmed = key.trim();
    if trimmed.starts_with("-----BEGIN") {
        let jwk = super::jwk::pem_to_jwk(trimmed)?;
        return Ok(serde_json::json!({ "keys": [jwk] }).to_string());
    }
    let value: serde_json::Value =
        serde_json::from_str(trimmed).map_err(|e| format!("not a JWK or JWKS: {e}"))?;
    let Some(object) = value.as_object() else {
        return Err("not a JWK or JWKS: expected a JSON object".to_string());
    };
    if let Some(keys) = object.get("keys") {
        if !keys.is_array() {
            return Err("not a JWKS: `keys` must be an array".to_string());
        }
        return Ok(trimmed.to_string());
    }
    if !object.contains_key("kty") {
        return Err("not a JWK: `kty` is required".to_string());
    }
    Ok(serde_json::json!({ "keys": [value] }).to_string())
}

/// What Gloo refuses in a set of providers, each problem naming its field under `path`.
pub(crate) fn validate(extension: &VhostExtension, path: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if extension.providers.is_empty() {
        problems.push(format!(
            "{path}.providers: at least one provider is required"
        ));
    }
    for (name, provider) in &extension.providers {
        let at = format!("{path}.providers.{name}");
        match provider.jwks.as_ref().map(|j| j.source()) {
            None | Some(Ok(None)) => problems.push(format!("{at}.jwks: set one of remote, local")),
            Some(Err(e)) => problems.push(format!("{at}.jwks: {e}")),
            Some(Ok(Some(JwksSourceRef::Local(local)))) => {
                if let Err(e) = local_jwks(local.key.as_deref().unwrap_or_default()) {
                    problems.push(format!("{at}.jwks.local.key: {e}"));
                }
            }
            Some(Ok(Some(JwksSourceRef::Remote(remote)))) => {
                match remote.url.as_deref() {
                    None | Some("") => problems.push(format!("{at}.jwks.remote.url: required")),
                    Some(url) if !is_absolute_url(url) => problems.push(format!(
                        "{at}.jwks.remote.url: {url:?} is not an absolute URL"
                    )),
                    Some(_) => {}
                }
                if remote
                    .upstream_ref
                    .as_ref()
                    .is_none_or(|r| r.name.is_empty())
                {
                    problems.push(format!("{at}.jwks.remote.upstreamRef: required"));
                }
            }
        }
        for (i, source) in provider
            .token_source
            .iter()
            .flat_map(|s| s.headers.iter())
            .enumerate()
        {
            if source.header.as_deref().is_none_or(str::is_empty) {
                problems.push(format!("{at}.tokenSource.headers[{i}].header: required"));
            }
        }
        for (i, claim) in provider.claims_to_headers.iter().enumerate() {
            if claim.claim.as_deref().is_none_or(str::is_empty) {
                problems.push(format!("{at}.claimsToHeaders[{i}].claim: required"));
            }
            if claim.header.as_deref().is_none_or(str::is_empty) {
                problems.push(format!("{at}.claimsToHeaders[{i}].header: required"));
            }
        }
    }
    problems
}

/// `http(s)://host...`: Envoy fetches the JWKS from this URL's host and path.
fn is_absolute_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}

/// Every JWT extension a virtual host's options set, with its field path.
pub(crate) fn host_extensions<'a>(
    options: &'a VirtualHostOptions,
    path: &str,
) -> Vec<(String, &'a VhostExtension)> {
    let mut out = Vec::new();
    if let Some(j) = options.jwt.as_deref() {
        out.push((format!("{path}.jwt"), j));
    }
    if let Some(s) = &options.jwt_staged {
        if let Some(j) = &s.before_ext_auth {
            out.push((format!("{path}.jwtStaged.beforeExtAuth"), j));
        }
        if let Some(j) = &s.after_ext_auth {
            out.push((format!("{path}.jwtStaged.afterExtAuth"), j));
        }
    }
    out
}

/// Every set of providers a route's options set, with its field path.
pub(crate) fn route_extensions(
    options: &RouteOptions,
    path: impl std::fmt::Display,
) -> Vec<(String, &VhostExtension)> {
    let mut out = Vec::new();
    if let Some(s) = &options.jwt_providers_staged {
        if let Some(j) = &s.before_ext_auth {
            out.push((format!("{path}.jwtProvidersStaged.beforeExtAuth"), j));
        }
        if let Some(j) = &s.after_ext_auth {
            out.push((format!("{path}.jwtProvidersStaged.afterExtAuth"), j));
        }
    }
    out
}

/// The per-filter configs of a virtual host: its requirement, for each stage it uses.
pub(crate) fn host_per_filter(
    host: &VirtualHostModel,
    into: &mut HashMap<String, envoy_types::pb::google::protobuf::Any>,
) {
    for stage in Stage::ALL {
        if stage.of_host(&host.options).is_some() {
            into.insert(
                stage.filter_name().to_string(),
                crate::xds::pack(&per_route(
                    per_route_config::RequirementSpecifier::RequirementName(host.name.clone()),
                )),
            );
        }
    }
}

/// The per-filter configs of a route: its own requirement, or `disabled`.
pub(crate) fn route_per_filter(
    route: &RouteModel,
    into: &mut HashMap<String, envoy_types::pb::google::protobuf::Any>,
) {
    for stage in Stage::ALL {
        let specifier = if stage.disabled_on_route(&route.options) {
            per_route_config::RequirementSpecifier::Disabled(true)
        } else if stage.providers_of_route(&route.options).is_some() {
            per_route_config::RequirementSpecifier::RequirementName(route.name.clone())
        } else {
            continue;
        };
        into.insert(
            stage.filter_name().to_string(),
            crate::xds::pack(&per_route(specifier)),
        );
    }
}

fn per_route(specifier: per_route_config::RequirementSpecifier) -> PerRouteConfig {
    PerRouteConfig {
        requirement_specifier: Some(specifier),
    }
}

/// The upstreams serving the remote JWKS of a virtual host and its routes.
pub(crate) fn collect_upstreams(host: &VirtualHostModel, into: &mut BTreeSet<ResourceRef>) {
    let mut add = |extension: &VhostExtension| {
        for provider in extension.providers.values() {
            if let Some(Ok(Some(JwksSourceRef::Remote(remote)))) =
                provider.jwks.as_ref().map(|j| j.source())
            {
                if let Some(upstream) = &remote.upstream_ref {
                    into.insert(jwks_upstream(upstream));
                }
            }
        }
    };
    for stage in Stage::ALL {
        if let Some(extension) = stage.of_host(&host.options) {
            add(extension);
        }
        for route in &host.routes {
            if let Some(extension) = stage.providers_of_route(&route.options) {
                add(extension);
            }
        }
    }
}
