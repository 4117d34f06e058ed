//! External auth as Gloo emits it for stock Envoy: Envoy's `envoy.filters.http.ext_authz`
//! filter calling the ext auth server of Settings `extauth` (or of a Gateway's
//! `httpGateway.options.extauth`), and an `ExtAuthzPerRoute` per virtual host, route and
//! weighted destination.
//!
//! Sources: Gloo's open-source plugin (`projects/gloo/pkg/plugins/extauth/{plugin,
//! config_generator}.go`) and the enterprise plugin it is paired with
//! (`config_generator.go`, `sanitize_filter.go`), read at their last public versions:
//!
//! * **Filter.** Named `envoy.filters.http.ext_authz`, in Gloo's `DuringStage(AuthNStage)`:
//!   after the JWT filter of `beforeExtAuth` (`BeforeStage(AuthNStage)`), before the one of
//!   `afterExtAuth` (same stage, later by name). Its config is Gloo's
//!   `GenerateEnvoyConfigForFilter`: `grpc_service.envoy_grpc` to the server upstream's cluster
//!   (with `grpcService.authority`), `timeout` from `requestTimeout` (default 200 ms); or, with
//!   `httpService`, an `http_service` whose `server_uri` is `http://not-used.example.com/` on
//!   that cluster, `path_prefix` without its trailing `/`, `allowedHeaders` (exact) and
//!   `allowedHeadersRegex` as `allowed_headers`, `headersToAdd`, and the response's
//!   `allowedUpstreamHeaders`, `allowedClientHeaders`, `allowedUpstreamHeadersToAppend`;
//!   `failure_mode_allow`, `with_request_body` (`maxRequestBytes` default 4096,
//!   `allowPartialMessage`, `packAsBytes`), `clear_route_cache`, `stat_prefix`,
//!   `status_on_error` (a code Envoy's `StatusCode` knows, else an error),
//!   `transport_api_version: V3` when Settings say `V3` (unset otherwise, as Gloo leaves it),
//!   and `metadata_context_namespaces`: `envoy.filters.http.jwt_authn`, then the sorted
//!   dynamic-metadata namespaces the listener's request transformations write (the
//!   enterprise plugin's config store).
//! * **Per route.** A virtual host without `extauth`, or with `disable: true`, gets
//!   `disabled: true` (auth is opt-in); with `configRef` it gets `check_settings` with the
//!   context extensions Gloo's ext auth server reads: `config_id` (`<namespace>.<name>` of
//!   the AuthConfig), `source_type: virtual_host` and `source_name`
//!   (`<proxy namespace>.<proxy>-<listener>-<virtual host>`); with `customAuth`, its
//!   `contextExtensions`. A route or weighted destination gets nothing without `extauth` (it
//!   inherits), `disabled: true` with `disable: true`, and with `configRef` the same three
//!   keys (`source_type: route` / `weighted_destination`, `source_name` empty). Envoy merges
//!   the context extensions from the virtual host down, and the most specific config decides
//!   whether the filter runs.
//! * **User id header.** Gloo Enterprise's sanitize filter removes Settings' `userIdHeader`
//!   (default `x-user-id`) from requests before auth, so only the auth server sets it. Stock
//!   Envoy has no sanitize filter; gloo emits Envoy's `header_mutation` filter, named as
//!   Gloo names the sanitize filter (`io.solo.filters.http.sanitize`), removing that header,
//!   in Gloo's place for it: `BeforeStage(AuthNStage)`, after the rate limits and the JWT
//!   filter of that stage.
//!
//! Refused (an error on the resource, naming the field): `extauth` with more than one of
//! `disable`, `configRef`, `customAuth`; a `configRef` without a namespace (Gloo looks it up
//! in the namespace `""` and finds nothing) or naming no AuthConfig (Gloo: "list did not find
//! authConfig"); `customAuth.name` and Settings' `namedExtauth` (several ext auth servers need
//! Gloo Enterprise's sanitize filter, which stock Envoy lacks); ext auth settings without an
//! `extauthzServerRef`, naming no Upstream, or with an unknown `statusOnError` (Gloo's
//! `NoServerRefErr`, `ServerNotFound`, `InvalidStatusOnErrorErr`).
//!
//! Deviations, all failing closed: Gloo serves a virtual host that asks for auth on a listener
//! without an ext auth server open (its plugin "does nothing"); gloo does not serve it on
//! that Gateway (an error on the VirtualService). Gloo's ext_authz filter is on every listener
//! once ext auth settings exist; gloo emits it (and the sanitize filter) on listeners with a
//! virtual host, route or weighted destination that asks for auth, as its other filters
//! (the others' requests are not checked either way). Gloo Enterprise strips the user id
//! header on every listener, gloo on those. The server's cluster is made HTTP/2 for the gRPC
//! service even if its Upstream lacks `useHttp2` (Envoy calls it over gRPC).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::config::common::mutation_rules::v3::{
    header_mutation, HeaderMutation as HeaderMutationRule,
};
use envoy_types::pb::envoy::config::core::v3::{
    grpc_service, http_uri, ApiVersion, GrpcService, HeaderValue, HttpUri,
};
use envoy_types::pb::envoy::extensions::filters::http::ext_authz::v3::{
    ext_authz, ext_authz_per_route, AuthorizationRequest, AuthorizationResponse, BufferSettings,
    CheckSettings, ExtAuthz, ExtAuthzPerRoute, HttpService,
};
use envoy_types::pb::envoy::extensions::filters::http::header_mutation::v3::{
    HeaderMutation, Mutations,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpFilter,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    regex_matcher, string_matcher::MatchPattern, ListStringMatcher, RegexMatcher, StringMatcher,
};
use envoy_types::pb::envoy::r#type::v3::{HttpStatus, StatusCode};
use envoy_types::pb::google::protobuf::{Any, Duration as PbDuration};

use super::names::cluster_name;
use super::routes::duration;
use crate::model::extauth::{
    ApiVersion as GlooApiVersion, ExtAuthExtension, ExtAuthExtensionRef, Settings,
};
use crate::model::gateway::HttpGateway;
use crate::model::options::{RouteOptions, WeightedDestinationOptions};
use crate::model::routing::{Route, RouteDestination, WeightedDestination};
use crate::model::transformation::TransformationStages;
use crate::model::upstream::UpstreamSpec;
use crate::model::{Object, ResourceRef, DEFAULT_NAMESPACE};
use crate::resolve::{RouteModelAction, VirtualHostModel};
use crate::snapshot::ConfigSnapshot;
use crate::xds::pack;

/// Envoy's ext_authz filter name (Gloo's `wellknown.HTTPExternalAuthorization`), also the
/// `typed_per_filter_config` key.
pub const EXT_AUTHZ_FILTER: &str = "envoy.filters.http.ext_authz";
/// The name of the filter that removes the user id header before auth (Gloo Enterprise's
/// sanitize filter name; here Envoy's `header_mutation` filter).
pub const SANITIZE_FILTER: &str = "io.solo.filters.http.sanitize";
/// Gloo's default `userIdHeader`.
pub const DEFAULT_USER_ID_HEADER: &str = "x-user-id";
/// The context extension naming the AuthConfig (`<namespace>.<name>`) for Gloo's ext auth
/// server.
pub const CONFIG_ID: &str = "config_id";
/// The context extension saying what asked for auth (`virtual_host`, `route`,
/// `weighted_destination`).
pub const SOURCE_TYPE: &str = "source_type";
/// The context extension naming the virtual host that asked for auth (empty for routes and
/// weighted destinations).
pub const SOURCE_NAME: &str = "source_name";
/// The JWT filter, whose metadata the check carries (Gloo's `JWTFilterName`).
const JWT_METADATA_NAMESPACE: &str = "envoy.filters.http.jwt_authn";
/// Gloo's `DefaultTimeout` for calls to the server: 200ms.
const DEFAULT_TIMEOUT_NANOS: i32 = 200_000_000;
/// The `server_uri` of an HTTP service, which Envoy requires and does not use (Gloo's
/// `HttpServerUri`).
const HTTP_SERVER_URI: &str = "http://not-used.example.com/";
/// Gloo's default `maxRequestBytes`.
const DEFAULT_MAX_REQUEST_BYTES: u32 = 4096;

// ----- settings and server ------------------------------------------------------------------

/// The `extauth` of the first Settings (in namespace/name order) that has one.
pub(crate) fn global_settings(snapshot: &ConfigSnapshot) -> Option<&Settings> {
    snapshot
        .settings
        .values()
        .find_map(|e| e.object.spec.extauth.as_ref())
}

/// The header an ext auth server with `settings` puts the user id in: their `userIdHeader`,
/// else [`DEFAULT_USER_ID_HEADER`].
pub(crate) fn user_id_header(settings: Option<&Settings>) -> String {
    settings
        .and_then(|s| s.user_id_header.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_USER_ID_HEADER.to_string())
}

/// The ext auth settings of a listener: its `httpGateway.options.extauth`, else the
/// Settings' (Gloo's `GenerateListenerExtAuthzConfig`).
fn listener_settings<'a>(
    snapshot: &'a ConfigSnapshot,
    http: Option<&'a HttpGateway>,
) -> Option<&'a Settings> {
    http.and_then(|h| h.options.as_ref())
        .and_then(|o| o.extauth.as_ref())
        .or_else(|| global_settings(snapshot))
}

/// What Gloo refuses in ext auth settings, each problem starting with `path`.
pub(crate) fn settings_problems(
    snapshot: &ConfigSnapshot,
    settings: &Settings,
    path: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    match &settings.extauthz_server_ref {
        None => problems.push(format!(
            "{path}.extauthzServerRef: no extauth server reference configured"
        )),
        Some(reference) => {
            let upstream = reference.resolved(DEFAULT_NAMESPACE);
            if !snapshot.upstreams.contains_key(&upstream) {
                problems.push(format!(
                    "{path}.extauthzServerRef: extauth server upstream {upstream} not found"
                ));
            }
        }
    }
    if let Some(code) = settings.status_on_error.filter(|c| *c != 0) {
        if status_code(code).is_none() {
            problems.push(format!(
                "{path}.statusOnError: invalid statusOnError code: {code}"
            ));
        }
    }
    problems
}

/// `code` when Envoy's `envoy.type.v3.StatusCode` names it.
fn status_code(code: u32) -> Option<StatusCode> {
    i32::try_from(code)
        .ok()
        .and_then(|c| StatusCode::try_from(c).ok())
        .filter(|c| *c != StatusCode::Empty)
}

/// An ext auth server a listener can call.
pub(crate) struct Server<'a> {
    settings: &'a Settings,
    upstream: ResourceRef,
}

/// The ext auth server of a listener, when its settings are usable.
pub(crate) fn server<'a>(
    snapshot: &'a ConfigSnapshot,
    http: Option<&'a HttpGateway>,
) -> Option<Server<'a>> {
    let settings = listener_settings(snapshot, http)?;
    if !settings_problems(snapshot, settings, "").is_empty() {
        return None;
    }
    let upstream = settings
        .extauthz_server_ref
        .as_ref()?
        .resolved(DEFAULT_NAMESPACE);
    Some(Server { settings, upstream })
}

/// Every upstream an ext auth server is called on over gRPC (their clusters are HTTP/2).
fn grpc_server_upstreams(snapshot: &ConfigSnapshot) -> BTreeSet<ResourceRef> {
    let global = global_settings(snapshot).into_iter();
    let gateways = snapshot.gateways.values().filter_map(|g| {
        g.object
            .spec
            .http_gateway
            .as_ref()
            .and_then(|h| h.options.as_ref())
            .and_then(|o| o.extauth.as_ref())
    });
    global
        .chain(gateways)
        .filter(|s| s.http_service.is_none())
        .filter_map(|s| s.extauthz_server_ref.as_ref())
        .map(|r| r.resolved(DEFAULT_NAMESPACE))
        .collect()
}

/// The upstream a cluster is built from: an ext auth server's is HTTP/2 when it is called over
/// gRPC, whatever its `useHttp2` says.
pub(crate) fn cluster_upstream(
    snapshot: &ConfigSnapshot,
    reference: &ResourceRef,
    upstream: &Arc<Object<UpstreamSpec>>,
) -> Arc<Object<UpstreamSpec>> {
    if upstream.spec.use_http2 == Some(true) || !grpc_server_upstreams(snapshot).contains(reference)
    {
        return upstream.clone();
    }
    let mut grpc = upstream.as_ref().clone();
    grpc.spec.use_http2 = Some(true);
    Arc::new(grpc)
}

// ----- which objects ask for auth -----------------------------------------------------------

/// Whether an `extauth` option asks for auth (`configRef` or `customAuth`).
fn asks(extension: Option<&ExtAuthExtension>) -> bool {
    matches!(
        extension.map(ExtAuthExtension::spec),
        Some(Ok(Some(
            ExtAuthExtensionRef::ConfigRef(_) | ExtAuthExtensionRef::CustomAuth(_)
        )))
    )
}

/// The weighted destinations a route sends to (its own, or its upstream group's).
fn weighted_destinations<'a>(
    snapshot: &'a ConfigSnapshot,
    action: &'a crate::model::routing::RouteAction,
) -> &'a [WeightedDestination] {
    match action.destination() {
        Ok(Some(RouteDestination::Multi(m))) => &m.destinations,
        Ok(Some(RouteDestination::UpstreamGroup(g))) => snapshot
            .upstream_groups
            .get(&g.resolved(DEFAULT_NAMESPACE))
            .map_or(&[], |group| group.object.spec.destinations.as_slice()),
        _ => &[],
    }
}

/// Whether a resolved virtual host, one of its routes, or one of their weighted destinations
/// asks for auth.
pub(crate) fn host_uses(snapshot: &ConfigSnapshot, host: &VirtualHostModel) -> bool {
    asks(host.options.extauth.as_deref())
        || host.routes.iter().any(|r| {
            asks(r.options.extauth.as_deref())
                || match &r.action {
                    RouteModelAction::Route(action) => weighted_destinations(snapshot, action)
                        .iter()
                        .any(|w| asks(w.options.as_ref().and_then(|o| o.extauth.as_ref()))),
                    _ => false,
                }
        })
}

/// Whether a virtual host's own per-filter config names it (`configRef` on the host):
/// only then does its translation depend on the listener and proxy names.
fn host_names_source(host: &VirtualHostModel) -> bool {
    matches!(
        host.options.extauth.as_deref().map(ExtAuthExtension::spec),
        Some(Ok(Some(ExtAuthExtensionRef::ConfigRef(_))))
    )
}

// ----- the listener -------------------------------------------------------------------------

/// What a listener's virtual hosts need to know about its ext_authz filter: `None` without
/// the filter; the `source_name` prefix (`<proxy namespace>.<proxy>-<listener>`) with it.
pub(crate) type ListenerAuth = Option<Arc<str>>;

/// A listener's [`ListenerAuth`]: the filter is there when the listener has a usable server
/// and one of its virtual hosts asks for auth.
pub(crate) fn listener_auth(
    snapshot: &ConfigSnapshot,
    http: Option<&HttpGateway>,
    hosts: &[Arc<VirtualHostModel>],
    proxy: &str,
    listener: &str,
) -> ListenerAuth {
    server(snapshot, http)?;
    if !hosts.iter().any(|h| host_uses(snapshot, h)) {
        return None;
    }
    Some(format!("{DEFAULT_NAMESPACE}.{proxy}-{listener}").into())
}

/// The part of a listener's [`ListenerAuth`] a virtual host's translation depends on (it is
/// cached under it): only hosts with their own `configRef` carry the source name.
pub(crate) fn host_key(auth: &ListenerAuth, host: &VirtualHostModel) -> ListenerAuth {
    match auth {
        Some(prefix) if host_names_source(host) => Some(prefix.clone()),
        Some(_) => Some(Arc::from("")),
        None => None,
    }
}

/// The sanitize and ext_authz filters of a listener (none without a server or without a
/// virtual host asking for auth).
pub(crate) fn http_filters(
    snapshot: &ConfigSnapshot,
    http: Option<&HttpGateway>,
    hosts: &[Arc<VirtualHostModel>],
) -> Option<(HttpFilter, HttpFilter)> {
    let server = server(snapshot, http)?;
    if !hosts.iter().any(|h| host_uses(snapshot, h)) {
        return None;
    }
    let user_id_header = user_id_header(Some(server.settings));
    let sanitize = HeaderMutation {
        mutations: Some(Mutations {
            request_mutations: vec![HeaderMutationRule {
                action: Some(header_mutation::Action::Remove(user_id_header)),
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let filter = |name: &str, config: Any| HttpFilter {
        name: name.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    };
    Some((
        filter(SANITIZE_FILTER, pack(&sanitize)),
        filter(
            EXT_AUTHZ_FILTER,
            pack(&filter_config(&server, metadata_namespaces(hosts))),
        ),
    ))
}

/// The dynamic-metadata namespaces the request transformations of `hosts` write, sorted.
fn metadata_namespaces(hosts: &[Arc<VirtualHostModel>]) -> BTreeSet<String> {
    fn add(stages: Option<&TransformationStages>, into: &mut BTreeSet<String>) {
        let Some(stages) = stages else { return };
        for stage in [&stages.early, &stages.regular].into_iter().flatten() {
            for m in &stage.request_transforms {
                let values = m
                    .request_transformation
                    .as_ref()
                    .and_then(|t| t.transformation_template.as_ref())
                    .map_or(&[][..], |t| t.dynamic_metadata_values.as_slice());
                into.extend(
                    values
                        .iter()
                        .filter_map(|v| v.metadata_namespace.clone())
                        .filter(|n| !n.is_empty()),
                );
            }
        }
    }
    let mut out = BTreeSet::new();
    for host in hosts {
        add(host.options.staged_transformations.as_deref(), &mut out);
        for route in &host.routes {
            add(route.options.staged_transformations.as_deref(), &mut out);
        }
    }
    out
}

fn exact(pattern: &str) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(MatchPattern::Exact(pattern.to_string())),
        ignore_case: false,
    }
}

fn list_matcher(exact_patterns: &[String], regexes: &[String]) -> Option<ListStringMatcher> {
    if exact_patterns.is_empty() && regexes.is_empty() {
        return None;
    }
    let mut patterns: Vec<StringMatcher> = exact_patterns.iter().map(|p| exact(p)).collect();
    patterns.extend(regexes.iter().map(|r| StringMatcher {
        match_pattern: Some(MatchPattern::SafeRegex(RegexMatcher {
            regex: r.clone(),
            #[allow(deprecated)]
            engine_type: None::<regex_matcher::EngineType>,
        })),
        ignore_case: false,
    }));
    Some(ListStringMatcher { patterns })
}

/// Gloo's `GenerateEnvoyConfigForFilter`.
fn filter_config(server: &Server<'_>, namespaces: BTreeSet<String>) -> ExtAuthz {
    let settings = server.settings;
    let cluster = cluster_name(&server.upstream);
    let timeout = settings.request_timeout.as_ref().map_or(
        PbDuration {
            seconds: 0,
            nanos: DEFAULT_TIMEOUT_NANOS,
        },
        duration,
    );
    let services = match &settings.http_service {
        None => ext_authz::Services::GrpcService(GrpcService {
            target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                grpc_service::EnvoyGrpc {
                    cluster_name: cluster,
                    authority: settings
                        .grpc_service
                        .as_ref()
                        .and_then(|g| g.authority.clone())
                        .unwrap_or_default(),
                    ..Default::default()
                },
            )),
            timeout: Some(timeout),
            ..Default::default()
        }),
        Some(http) => ext_authz::Services::HttpService(HttpService {
            server_uri: Some(HttpUri {
                uri: HTTP_SERVER_URI.to_string(),
                http_upstream_type: Some(http_uri::HttpUpstreamType::Cluster(cluster)),
                timeout: Some(timeout),
            }),
            path_prefix: http
                .path_prefix
                .as_deref()
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_string(),
            #[allow(deprecated)] // Gloo sets the request's `allowed_headers`, Envoy honours them.
            authorization_request: http.request.as_ref().map(|r| AuthorizationRequest {
                // Gloo combines both lists, and sets the (possibly empty) matcher whenever a
                // request is given.
                allowed_headers: Some(
                    list_matcher(&r.allowed_headers, &r.allowed_headers_regex).unwrap_or_default(),
                ),
                headers_to_add: r
                    .headers_to_add
                    .iter()
                    .map(|(k, v)| HeaderValue {
                        key: k.clone(),
                        value: v.clone(),
                        ..Default::default()
                    })
                    .collect(),
            }),
            authorization_response: http.response.as_ref().map(|r| AuthorizationResponse {
                allowed_upstream_headers: list_matcher(&r.allowed_upstream_headers, &[]),
                allowed_client_headers: list_matcher(&r.allowed_client_headers, &[]),
                allowed_upstream_headers_to_append: list_matcher(
                    &r.allowed_upstream_headers_to_append,
                    &[],
                ),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let mut metadata_context_namespaces = vec![JWT_METADATA_NAMESPACE.to_string()];
    metadata_context_namespaces.extend(namespaces);
    ExtAuthz {
        services: Some(services),
        failure_mode_allow: settings.failure_mode_allow.unwrap_or(false),
        with_request_body: settings.request_body.as_ref().map(|b| BufferSettings {
            max_request_bytes: b
                .max_request_bytes
                .filter(|m| *m > 0)
                .unwrap_or(DEFAULT_MAX_REQUEST_BYTES),
            allow_partial_message: b.allow_partial_message.unwrap_or(false),
            pack_as_bytes: b.pack_as_bytes.unwrap_or(false),
        }),
        clear_route_cache: settings.clear_route_cache.unwrap_or(false),
        stat_prefix: settings.stat_prefix.clone().unwrap_or_default(),
        status_on_error: settings
            .status_on_error
            .and_then(status_code)
            .map(|code| HttpStatus { code: code as i32 }),
        transport_api_version: match settings.transport_api_version {
            Some(GlooApiVersion::V3) => ApiVersion::V3 as i32,
            None => ApiVersion::Auto as i32,
        },
        metadata_context_namespaces,
        ..Default::default()
    }
}

// ----- per-route configs --------------------------------------------------------------------

fn disabled() -> Any {
    pack(&ExtAuthzPerRoute {
        r#override: Some(ext_authz_per_route::Override::Disabled(true)),
    })
}

fn check_settings(context_extensions: HashMap<String, String>) -> Any {
    pack(&ExtAuthzPerRoute {
        r#override: Some(ext_authz_per_route::Override::CheckSettings(
            CheckSettings {
                context_extensions,
                ..Default::default()
            },
        )),
    })
}

/// `<namespace>.<name>` of an AuthConfig reference (Gloo's `ResourceRef.Key()`).
fn config_id(reference: &ResourceRef) -> String {
    format!(
        "{}.{}",
        reference.namespace.as_deref().unwrap_or_default(),
        reference.name
    )
}

/// The enterprise plugin's `buildFilterConfig`: the three context extensions.
fn config_ref(reference: &ResourceRef, source_type: &str, source_name: &str) -> Any {
    check_settings(HashMap::from([
        (CONFIG_ID.to_string(), config_id(reference)),
        (SOURCE_TYPE.to_string(), source_type.to_string()),
        (SOURCE_NAME.to_string(), source_name.to_string()),
    ]))
}

/// A route's or weighted destination's per-filter config: nothing without `extauth` (it
/// inherits), disabled with `disable: true`, its check settings otherwise.
fn child_config(extension: Option<&ExtAuthExtension>, source_type: &str) -> Option<Any> {
    match extension?.spec() {
        Ok(Some(ExtAuthExtensionRef::Disable(true))) => Some(disabled()),
        Ok(Some(ExtAuthExtensionRef::ConfigRef(r))) => Some(config_ref(r, source_type, "")),
        Ok(Some(ExtAuthExtensionRef::CustomAuth(c))) => Some(check_settings(
            c.context_extensions.clone().into_iter().collect(),
        )),
        _ => None,
    }
}

/// Adds a virtual host's ext_authz config when its listener has the filter: disabled
/// unless it asks for auth (auth is opt-in).
pub(crate) fn host_per_filter(
    host: &VirtualHostModel,
    auth: &ListenerAuth,
    out: &mut HashMap<String, Any>,
) {
    let Some(prefix) = auth else { return };
    let config = match host.options.extauth.as_deref().map(ExtAuthExtension::spec) {
        Some(Ok(Some(ExtAuthExtensionRef::ConfigRef(r)))) => {
            config_ref(r, "virtual_host", &format!("{prefix}-{}", host.name))
        }
        Some(Ok(Some(ExtAuthExtensionRef::CustomAuth(c)))) => {
            check_settings(c.context_extensions.clone().into_iter().collect())
        }
        _ => disabled(),
    };
    out.insert(EXT_AUTHZ_FILTER.to_string(), config);
}

/// Adds a route's ext_authz config when its listener has the filter.
pub(crate) fn route_per_filter(
    options: &RouteOptions,
    auth: &ListenerAuth,
    out: &mut HashMap<String, Any>,
) {
    if auth.is_none() {
        return;
    }
    if let Some(config) = child_config(options.extauth.as_deref(), "route") {
        out.insert(EXT_AUTHZ_FILTER.to_string(), config);
    }
}

/// Adds a weighted destination's ext_authz config when its listener has the filter.
pub(crate) fn weighted_per_filter(
    options: Option<&WeightedDestinationOptions>,
    auth: &ListenerAuth,
    out: &mut HashMap<String, Any>,
) {
    if auth.is_none() {
        return;
    }
    if let Some(config) = child_config(
        options.and_then(|o| o.extauth.as_ref()),
        "weighted_destination",
    ) {
        out.insert(EXT_AUTHZ_FILTER.to_string(), config);
    }
}

/// Adds the ext auth servers' upstreams of a listener that has the filter (their clusters are
/// what the filter calls).
pub(crate) fn collect_upstreams(
    snapshot: &ConfigSnapshot,
    http: Option<&HttpGateway>,
    hosts: &[Arc<VirtualHostModel>],
    into: &mut BTreeSet<ResourceRef>,
) {
    if let Some(server) = server(snapshot, http) {
        if hosts.iter().any(|h| host_uses(snapshot, h)) {
            into.insert(server.upstream);
        }
    }
}

// ----- validation ---------------------------------------------------------------------------

/// What gloo refuses in one `extauth` option on its own, each problem naming the field under
/// `path` (the path of the options).
pub(crate) fn validate(
    extension: Option<&ExtAuthExtension>,
    path: impl std::fmt::Display,
) -> Vec<String> {
    let Some(extension) = extension else {
        return Vec::new();
    };
    match extension.spec() {
        Err(e) => vec![format!("{path}.extauth: {e}")],
        Ok(Some(ExtAuthExtensionRef::ConfigRef(r))) if r.namespace.as_deref().unwrap_or_default().is_empty() => vec![format!(
            "{path}.extauth.configRef: AuthConfig {:?} needs its namespace (Gloo looks a reference without one up in the namespace \"\" and finds nothing)",
            r.name
        )],
        Ok(Some(ExtAuthExtensionRef::CustomAuth(c))) if c.name.as_deref().is_some_and(|n| !n.is_empty()) => vec![format!(
            "{path}.extauth.customAuth.name: named ext auth servers (Settings namedExtauth) need Gloo Enterprise's sanitize filter, which stock Envoy lacks; gloo does not enforce them yet, so this is rejected rather than served without auth"
        )],
        _ => Vec::new(),
    }
}

/// The error for an `extauth` option whose `configRef` names no AuthConfig (Gloo: "list did
/// not find authConfig"), checked on every run: AuthConfigs change on their own.
pub(crate) fn check(
    snapshot: &ConfigSnapshot,
    extension: Option<&ExtAuthExtension>,
    path: impl std::fmt::Display,
) -> Option<String> {
    let Ok(Some(ExtAuthExtensionRef::ConfigRef(r))) = extension?.spec() else {
        return None;
    };
    let namespace = r.namespace.as_deref().filter(|n| !n.is_empty())?;
    let reference = ResourceRef::new(namespace, r.name.clone());
    (!snapshot.auth_configs.contains_key(&reference))
        .then(|| format!("{path}.extauth.configRef: list did not find authConfig {reference}"))
}

/// [`validate`] for a route's options and its weighted destinations under `path` (the
/// route's path).
pub(crate) fn validate_route(route: &Route, path: impl std::fmt::Display) -> Vec<String> {
    let mut problems = validate(
        route.options.as_deref().and_then(|o| o.extauth.as_deref()),
        format_args!("{path}.options"),
    );
    if let Ok(Some(crate::model::routing::RouteActionRef::Route(action))) = route.action() {
        if let Ok(Some(RouteDestination::Multi(m))) = action.destination() {
            for (i, w) in m.destinations.iter().enumerate() {
                problems.extend(validate(
                    w.options.as_ref().and_then(|o| o.extauth.as_ref()),
                    format_args!("{path}.routeAction.multi.destinations[{i}].options"),
                ));
            }
        }
    }
    problems
}

/// [`check`] for routes (of a VirtualService or RouteTable) under `path`, with their
/// weighted destinations.
pub(crate) fn check_routes(snapshot: &ConfigSnapshot, routes: &[Route], path: &str) -> Vec<String> {
    let mut errors = Vec::new();
    for (i, route) in routes.iter().enumerate() {
        if let Some(e) = check(
            snapshot,
            route.options.as_deref().and_then(|o| o.extauth.as_deref()),
            format_args!("{path}[{i}].options"),
        ) {
            errors.push(e);
        }
        if let Ok(Some(crate::model::routing::RouteActionRef::Route(action))) = route.action() {
            if let Ok(Some(RouteDestination::Multi(m))) = action.destination() {
                for (j, w) in m.destinations.iter().enumerate() {
                    errors.extend(check(
                        snapshot,
                        w.options.as_ref().and_then(|o| o.extauth.as_ref()),
                        format_args!("{path}[{i}].routeAction.multi.destinations[{j}].options"),
                    ));
                }
            }
        }
    }
    errors
}

/// [`check`] for a VirtualService's virtual host and routes.
pub(crate) fn check_virtual_service(
    snapshot: &ConfigSnapshot,
    spec: &crate::model::virtual_service::VirtualServiceSpec,
) -> Vec<String> {
    let Some(vh) = &spec.virtual_host else {
        return Vec::new();
    };
    let mut errors: Vec<String> = check(
        snapshot,
        vh.options.as_ref().and_then(|o| o.extauth.as_deref()),
        "spec.virtualHost.options",
    )
    .into_iter()
    .collect();
    errors.extend(check_routes(
        snapshot,
        &vh.routes,
        "spec.virtualHost.routes",
    ));
    errors
}

/// Everything wrong with one `extauth` option (static and every-run problems), under `path`:
/// what refuses the VirtualHostOption, RouteOption or UpstreamGroup that sets it.
pub(crate) fn problems(
    snapshot: &ConfigSnapshot,
    extension: Option<&ExtAuthExtension>,
    path: &str,
) -> Vec<String> {
    let mut problems = validate(extension, path);
    problems.extend(check(snapshot, extension, path));
    problems
}

/// What gloo refuses in a Settings' ext auth fields.
pub(crate) fn validate_settings(
    snapshot: &ConfigSnapshot,
    spec: &crate::model::settings::SettingsSpec,
) -> Vec<String> {
    let mut problems = match &spec.extauth {
        Some(settings) => settings_problems(snapshot, settings, "spec.extauth"),
        None => Vec::new(),
    };
    if !spec.named_extauth.is_empty() {
        problems.push(
            "spec.namedExtauth: several ext auth servers need Gloo Enterprise's sanitize filter, which stock Envoy lacks; gloo does not serve them yet".to_string(),
        );
    }
    problems
}
