//! Global rate limiting as Gloo emits it, for stock Envoy: the `envoy.filters.http.ratelimit`
//! filter calling the rate limit server of Settings `ratelimitServer`, and Envoy `rate_limits`
//! on virtual hosts and routes built from Gloo's `RateLimitActions`.
//!
//! Sources: Gloo's open-source plugin (`projects/gloo/pkg/plugins/ratelimit/{plugin,util,
//! raw_util}.go`) and the enterprise one it is paired with (`staged_translators.go`):
//!
//! * **Filter.** Domain `custom`, `request_type: both`, `timeout` from `requestTimeout`
//!   (default 100ms), `failure_mode_deny` from `denyOnFail`, `enable_x_ratelimit_headers`
//!   `DRAFT_VERSION_03` when `enableXRatelimitHeaders`, and `rate_limit_service` an
//!   `envoy_grpc` call (with `grpcService.authority`) to the server upstream's cluster,
//!   `transport_api_version: V3`. Five stages, each its own filter: inline actions (domain
//!   `custom`) at `stage: 3` before auth and `stage: 1` after, RateLimitConfig references
//!   (domain `crd`) at `stage: 4` before auth and `stage: 2` after, basic limits (domain
//!   `ingress`) at `stage: 0` after auth. Before auth is Gloo's `BeforeStage(AuthNStage)`
//!   (after local rate limiting, before JWT), after auth `DuringStage(RateLimitStage)` (after
//!   JWT, before the router); within one, `crd` comes before `custom` before `ingress` (see
//!   below). A listener gets the filter of a stage only when one of its virtual hosts or
//!   routes has rate limits in that stage (Gloo's `removeUnusedFilters`, which gloo applies to
//!   every filter).
//! * **Stages of the options.** `ratelimitEarly` → 3, `ratelimitRegular` → 1, `ratelimit` → 3
//!   when Settings `ratelimitServer.rateLimitBeforeAuth`, else 1; `rateLimitEarlyConfigs` → 4,
//!   `rateLimitRegularConfigs` → 2, `rateLimitConfigs` → 4 or 2 likewise.
//! * **Basic rate limits** (`ratelimitBasic`, Gloo's ingress translator, whose enterprise source
//!   is not public: this follows the last open-source version of it, the simple rate limiting
//!   guide and the plugin tests that mock it). Domain `ingress`, `stage: 0`, after auth (they
//!   depend on it). A virtual host or route with them gets two rate limits, scoped by its
//!   Gloo name (a virtual host's `<namespace>.<name>`, a route's
//!   [`RouteModel::gloo_name`](crate::resolve::RouteModel::gloo_name)): `generic_key: <name>`,
//!   `header_value_match` `is-authenticated` (the user id header present), `request_headers`
//!   of that header as `userid`; and `generic_key: <name>`, `header_value_match`
//!   `not-authenticated` (`expect_match: false`), `remote_address`. The user id header is
//!   Settings `extauth.userIdHeader`, else `x-user-id` (what Gloo's ext auth sets; gloo has no
//!   ext auth yet, so until then it is whatever the client sends: put such routes behind
//!   something that sets or strips it). A route needs a name (on it or on a route delegating
//!   to it: Gloo's `MissingNameErr`), and basic limits are refused with `rateLimitBefore
//!   Auth` (Gloo's `RateLimitAuthOrderingConflict`). Gloo puts the Gateway and proxy names
//!   in a route's name; gloo does not (a virtual host is resolved once for all Gateways), so
//!   a route served by several Gateways shares one budget.
//! * **Filter order.** Gloo sorts the filters of one filter stage by name, type URL, then
//!   encoded config, whose first field is the domain: `crd` before `custom` before
//!   `ingress`.
//! * **Rate limits.** Each `rateLimits[]` entry with `actions` is one Envoy `RateLimit`
//!   (`stage`, the actions converted one to one, as Gloo's `ConvertActions`); each entry with
//!   `setActions` is another, its actions preceded by `generic_key:
//!   solo.setDescriptor.uniqueValue` (what marks a set-style descriptor for the server) and its
//!   `request_headers` actions given `skip_if_absent: true` (a set descriptor keeps the headers
//!   that are present). A `limit` override becomes Envoy's `limit.dynamic_metadata`. A route's
//!   `ratelimit` also sets `include_vh_rate_limits` (false unless set), as Gloo's plugin does.
//!   Within a list the tree-style entries come first, then the set-style ones (Gloo's open-source
//!   plugin writes the former, the enterprise plugin appends the latter); Envoy evaluates every
//!   rate limit of the filter's stage, so their order carries no meaning.
//! * **RateLimitConfigs.** Each reference adds the config's `raw.rateLimits`, scoped by a
//!   leading `generic_key: <namespace>.<name>` action (after the set-style marker for
//!   `setActions`), as Gloo's rate limiter translates them. A reference must name an existing,
//!   valid config, with its namespace (Gloo looks an empty one up in the namespace `""`).
//! * **Server config.** [`server_configs`] gives, per domain, the descriptors the rate limit
//!   server must load: Settings `ratelimit.descriptors` / `setDescriptors` for domain `custom`,
//!   the RateLimitConfigs' (scoped the same way) for domain `crd`, the basic limits' for
//!   domain `ingress`.
//!
//! Refused (an error on the resource, naming the field): global limits while no Settings
//! names an existing rate limit server upstream; actions missing a required field (as Gloo's
//! `ConvertActions`), CEL actions and `TOKEN` limits (agentgateway only); references to missing
//! or invalid RateLimitConfigs; global limits on a route that does not route (Gloo: "cannot
//! apply rate limits without a route action"); a Gateway's own `ratelimitServer` (Gloo lets it
//! override the Settings; gloo reads the Settings only); `ratelimitBasic` on a route that does
//! not route (Gloo ignores it there).
//!
//! Deviations (never silently dropping configuration): Gloo's enterprise translator takes only
//! the `setActions` of `ratelimitEarly` / `ratelimitRegular`, gloo also emits their tree-style
//! `actions` at the same stage; Gloo drops a `limit` override, gloo emits it; the server's
//! cluster is made HTTP/2 even if its Upstream lacks `useHttp2` (Envoy calls it over gRPC).

use std::collections::BTreeSet;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{grpc_service, ApiVersion, GrpcService};
use envoy_types::pb::envoy::config::ratelimit::v3::RateLimitServiceConfig;
use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use envoy_types::pb::envoy::config::route::v3::rate_limit::{self, action, Action as EnvoyAction};
use envoy_types::pb::envoy::config::route::v3::{
    HeaderMatcher as EnvoyHeaderMatcher, RateLimit, RouteAction,
};
use envoy_types::pb::envoy::extensions::filters::http::ratelimit::v3::{
    rate_limit::XRateLimitHeadersRfcVersion, RateLimit as RateLimitFilter,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{regex_matcher, RegexMatcher};
use envoy_types::pb::envoy::r#type::metadata::v3::{metadata_key, MetadataKey as EnvoyMetadataKey};
use envoy_types::pb::google::protobuf::{BoolValue, Duration as PbDuration, UInt32Value};

use super::names::cluster_name;
use super::routes::duration;
use crate::model::options::{RouteOptions, VirtualHostOptions};
use crate::model::ratelimit::{
    Action, ActionRef, Descriptor, HeaderMatchSpecifierRef, HeaderMatcher, IngressRateLimit,
    MetadataKey, MetadataSource, RateLimitActions, RateLimitConfigRef, RateLimitConfigRefs,
    RateLimitConfigSpec, ServerRateLimitConfig, Settings, SimpleDescriptor,
};
use crate::model::upstream::UpstreamSpec;
use crate::model::{Object, ResourceRef, DEFAULT_NAMESPACE};
use crate::resolve::{RouteModel, VirtualHostModel};
use crate::snapshot::ConfigSnapshot;

/// Envoy's rate limit filter name (Gloo's `wellknown.HTTPRateLimit`), for every stage.
pub const RATELIMIT_FILTER: &str = "envoy.filters.http.ratelimit";
/// The domain of the filters for inline actions (Gloo's `CustomDomain`), and of the Settings'
/// descriptors in [`server_configs`].
pub const CUSTOM_DOMAIN: &str = "custom";
/// The domain of the filters for RateLimitConfig references (Gloo's `ConfigCrdDomain`), and
/// of the RateLimitConfigs' descriptors in [`server_configs`].
pub const CRD_DOMAIN: &str = "crd";
/// The domain of the filter for basic rate limits (`ratelimitBasic`, Gloo's `IngressDomain`),
/// and of their descriptors in [`server_configs`].
pub const INGRESS_DOMAIN: &str = "ingress";
/// The descriptor value of an authenticated request in basic rate limits.
const AUTHENTICATED: &str = "is-authenticated";
/// The descriptor value of an anonymous request in basic rate limits.
const ANONYMOUS: &str = "not-authenticated";
/// The descriptor key of Envoy's `header_value_match` action.
const HEADER_MATCH: &str = "header_match";
/// The descriptor key of the user id in basic rate limits.
const USER_ID: &str = "userid";
/// The descriptor key of Envoy's `remote_address` action.
const REMOTE_ADDRESS: &str = "remote_address";
/// The generic key value that marks a set-style descriptor (Gloo's `SetDescriptorValue`).
pub const SET_DESCRIPTOR_VALUE: &str = "solo.setDescriptor.uniqueValue";
/// The descriptor key of Envoy's `generic_key` action.
const GENERIC_KEY: &str = "generic_key";
/// Gloo's `RequestType`: internal and external requests alike.
const REQUEST_TYPE: &str = "both";
/// Gloo's `DefaultTimeout` for calls to the server: 100ms.
const DEFAULT_TIMEOUT_NANOS: i32 = 100_000_000;

/// One of the five rate limit filter stages: Gloo's inline actions (domain `custom`) and
/// RateLimitConfig references (domain `crd`), each before or after auth, and basic rate limits
/// (domain `ingress`), after auth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Gloo's `CustomStageBeforeAuth` (3): inline actions before JWT / ext auth.
    Early,
    /// Gloo's `CustomStage` (1): inline actions after auth.
    Regular,
    /// Gloo's `CrdRateLimitStageBeforeAuth` (4): RateLimitConfigs before auth.
    CrdEarly,
    /// Gloo's `CrdRateLimitStage` (2): RateLimitConfigs after auth.
    CrdRegular,
    /// Gloo's `IngressRateLimitStage` (0): basic rate limits, after auth (they depend on it).
    Ingress,
}

impl Stage {
    /// The stages whose filters run before auth, in filter order: Gloo sorts filters of one
    /// stage by name, type URL and then encoded config, whose first field is the domain, so
    /// `crd` (3 bytes) comes before `custom` (6) and `ingress` (7).
    pub(crate) const BEFORE_AUTH: [Stage; 2] = [Stage::CrdEarly, Stage::Early];
    /// The stages whose filters run after auth, in filter order (sorted as above).
    pub(crate) const AFTER_AUTH: [Stage; 3] = [Stage::CrdRegular, Stage::Regular, Stage::Ingress];

    /// The `stage` number of the filter and of its rate limits.
    pub(crate) fn number(self) -> u32 {
        match self {
            Stage::Early => 3,
            Stage::Regular => 1,
            Stage::CrdEarly => 4,
            Stage::CrdRegular => 2,
            Stage::Ingress => 0,
        }
    }

    /// The domain the filter of this stage calls.
    fn domain(self) -> &'static str {
        match self {
            Stage::Early | Stage::Regular => CUSTOM_DOMAIN,
            Stage::CrdEarly | Stage::CrdRegular => CRD_DOMAIN,
            Stage::Ingress => INGRESS_DOMAIN,
        }
    }
}

/// The global rate limits a virtual host or route sets, per option.
#[derive(Clone, Copy, Default)]
struct Global<'a> {
    ratelimit: &'a [RateLimitActions],
    early: &'a [RateLimitActions],
    regular: &'a [RateLimitActions],
    configs: &'a [RateLimitConfigRef],
    early_configs: &'a [RateLimitConfigRef],
    regular_configs: &'a [RateLimitConfigRef],
    basic: Option<&'a IngressRateLimit>,
}

fn refs(r: Option<&RateLimitConfigRefs>) -> &[RateLimitConfigRef] {
    r.map_or(&[], |r| &r.refs)
}

/// The global limits of a virtual host's or a route's options (the two types name these
/// fields alike).
macro_rules! global_of {
    ($o:expr) => {
        Global {
            ratelimit: $o.ratelimit.as_deref().map_or(&[], |r| &r.rate_limits),
            early: $o
                .ratelimit_early
                .as_deref()
                .map_or(&[], |r| &r.rate_limits),
            regular: $o
                .ratelimit_regular
                .as_deref()
                .map_or(&[], |r| &r.rate_limits),
            configs: refs($o.rate_limit_configs.as_ref()),
            early_configs: refs($o.rate_limit_early_configs.as_ref()),
            regular_configs: refs($o.rate_limit_regular_configs.as_ref()),
            basic: $o.ratelimit_basic.as_deref(),
        }
    };
}

impl<'a> Global<'a> {
    fn of_host(o: &'a VirtualHostOptions) -> Self {
        global_of!(o)
    }

    fn of_route(o: &'a RouteOptions) -> Self {
        global_of!(o)
    }

    /// The inline lists with their option name and stage.
    fn lists(self, before_auth: bool) -> [(&'static str, Stage, &'a [RateLimitActions]); 3] {
        [
            (
                "ratelimit",
                if before_auth {
                    Stage::Early
                } else {
                    Stage::Regular
                },
                self.ratelimit,
            ),
            ("ratelimitEarly", Stage::Early, self.early),
            ("ratelimitRegular", Stage::Regular, self.regular),
        ]
    }

    /// The RateLimitConfig references with their option name and stage.
    fn config_lists(
        self,
        before_auth: bool,
    ) -> [(&'static str, Stage, &'a [RateLimitConfigRef]); 3] {
        [
            (
                "rateLimitConfigs",
                if before_auth {
                    Stage::CrdEarly
                } else {
                    Stage::CrdRegular
                },
                self.configs,
            ),
            ("rateLimitEarlyConfigs", Stage::CrdEarly, self.early_configs),
            (
                "rateLimitRegularConfigs",
                Stage::CrdRegular,
                self.regular_configs,
            ),
        ]
    }

    fn uses(self, stage: Stage, before_auth: bool) -> bool {
        (stage == Stage::Ingress && self.basic.is_some())
            || self
                .lists(before_auth)
                .iter()
                .any(|(_, s, list)| *s == stage && !list.is_empty())
            || self
                .config_lists(before_auth)
                .iter()
                .any(|(_, s, list)| *s == stage && !list.is_empty())
    }

    fn any(self) -> bool {
        self.basic.is_some()
            || !(self.ratelimit.is_empty()
                && self.early.is_empty()
                && self.regular.is_empty()
                && self.configs.is_empty()
                && self.early_configs.is_empty()
                && self.regular_configs.is_empty())
    }

    /// Gloo's rate limits: the basic ones (scoped by `basic_name`, when there is one), then
    /// per inline list the tree-style entries, then the set-style ones; then per
    /// RateLimitConfig reference, its entries (Gloo's `crdTranslator`).
    fn rate_limits(self, snapshot: &ConfigSnapshot, basic_name: Option<&str>) -> Vec<RateLimit> {
        let before_auth = before_auth(snapshot);
        let mut out = Vec::new();
        if let (Some(_), Some(name)) = (self.basic, basic_name) {
            out.extend(basic_rate_limits(name, &user_id_header(snapshot)));
        }
        for (_, stage, list) in self.lists(before_auth) {
            out.extend(
                list.iter()
                    .filter(|e| !e.actions.is_empty())
                    .map(|e| rate_limit(stage, e, &e.actions, &[])),
            );
            out.extend(
                list.iter()
                    .filter(|e| !e.set_actions.is_empty())
                    .map(|e| rate_limit(stage, e, &e.set_actions, &[SET_DESCRIPTOR_VALUE])),
            );
        }
        for (_, stage, list) in self.config_lists(before_auth) {
            for reference in list {
                let Some(config) = usable_config(snapshot, reference) else {
                    continue; // Refused where it is referenced.
                };
                let key = config_key(&reference.to_resource_ref());
                for e in config.raw.iter().flat_map(|r| r.rate_limits.iter()) {
                    if !e.actions.is_empty() {
                        out.push(rate_limit(stage, e, &e.actions, &[&key]));
                    }
                    if !e.set_actions.is_empty() {
                        out.push(rate_limit(
                            stage,
                            e,
                            &e.set_actions,
                            &[SET_DESCRIPTOR_VALUE, &key],
                        ));
                    }
                }
            }
        }
        out
    }
}

/// The `generic_key` value that scopes a RateLimitConfig's descriptors on the server:
/// `<namespace>.<name>`.
fn config_key(reference: &ResourceRef) -> String {
    format!(
        "{}.{}",
        reference.namespace.as_deref().unwrap_or_default(),
        reference.name
    )
}

/// The referenced RateLimitConfig when it exists and is valid. A reference without namespace
/// finds nothing, as in Gloo (which looks it up in the namespace `""`).
fn usable_config<'s>(
    snapshot: &'s ConfigSnapshot,
    reference: &RateLimitConfigRef,
) -> Option<&'s RateLimitConfigSpec> {
    reference.namespace.as_ref()?;
    let entry = snapshot
        .rate_limit_configs
        .get(&reference.to_resource_ref())?;
    entry
        .object
        .spec
        .validate()
        .is_empty()
        .then_some(&entry.object.spec)
}

/// The rate limit server as Settings configure it: the `ratelimitServer` of the first Settings
/// (in namespace/name order) that has one.
pub(crate) struct Server<'a> {
    /// Its `ratelimitServer`.
    pub(crate) settings: &'a Settings,
    /// The upstream (namespace defaulting to `gloo-system`).
    pub(crate) upstream: ResourceRef,
}

/// The configured rate limit server, if its upstream exists.
pub(crate) fn server(snapshot: &ConfigSnapshot) -> Option<Server<'_>> {
    let settings = server_settings(snapshot)?;
    let reference = settings.ratelimit_server_ref.as_ref()?;
    let upstream = reference.resolved(DEFAULT_NAMESPACE);
    snapshot
        .upstreams
        .contains_key(&upstream)
        .then_some(Server { settings, upstream })
}

/// The `ratelimitServer` of the first Settings (in namespace/name order) that has one.
fn server_settings(snapshot: &ConfigSnapshot) -> Option<&Settings> {
    snapshot
        .settings
        .values()
        .find_map(|e| e.object.spec.ratelimit_server.as_ref())
}

/// Settings `ratelimitServer.rateLimitBeforeAuth` (false without a server).
pub(crate) fn before_auth(snapshot: &ConfigSnapshot) -> bool {
    server_settings(snapshot)
        .and_then(|s| s.rate_limit_before_auth)
        .unwrap_or(false)
}

/// Whether a virtual host or any of its routes has rate limits in `stage`.
fn host_uses(host: &VirtualHostModel, stage: Stage, before_auth: bool) -> bool {
    Global::of_host(&host.options).uses(stage, before_auth)
        || host
            .routes
            .iter()
            .any(|r| Global::of_route(&r.options).uses(stage, before_auth))
}

/// The connection manager's rate limit filter for `stage`: `None` without a server or when no
/// virtual host of the listener has rate limits in that stage.
pub(crate) fn filter_config(
    snapshot: &ConfigSnapshot,
    stage: Stage,
    hosts: &[Arc<VirtualHostModel>],
) -> Option<RateLimitFilter> {
    let server = server(snapshot)?;
    let before_auth = server.settings.rate_limit_before_auth.unwrap_or(false);
    if !hosts.iter().any(|h| host_uses(h, stage, before_auth)) {
        return None;
    }
    Some(filter(&server, stage))
}

/// Gloo's `GenerateEnvoyConfigForFilterWith`.
fn filter(server: &Server<'_>, stage: Stage) -> RateLimitFilter {
    let settings = server.settings;
    RateLimitFilter {
        domain: stage.domain().to_string(),
        stage: stage.number(),
        request_type: REQUEST_TYPE.to_string(),
        timeout: Some(settings.request_timeout.as_ref().map_or(
            PbDuration {
                seconds: 0,
                nanos: DEFAULT_TIMEOUT_NANOS,
            },
            duration,
        )),
        failure_mode_deny: settings.deny_on_fail.unwrap_or(false),
        enable_x_ratelimit_headers: if settings.enable_x_ratelimit_headers.unwrap_or(false) {
            XRateLimitHeadersRfcVersion::DraftVersion03 as i32
        } else {
            XRateLimitHeadersRfcVersion::Off as i32
        },
        rate_limit_service: Some(RateLimitServiceConfig {
            grpc_service: Some(GrpcService {
                target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                    grpc_service::EnvoyGrpc {
                        cluster_name: cluster_name(&server.upstream),
                        authority: settings
                            .grpc_service
                            .as_ref()
                            .and_then(|g| g.authority.clone())
                            .unwrap_or_default(),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }),
            transport_api_version: ApiVersion::V3 as i32,
        }),
        ..Default::default()
    }
}

/// A virtual host's `rate_limits`.
pub(crate) fn host_rate_limits(
    host: &VirtualHostModel,
    snapshot: &ConfigSnapshot,
) -> Vec<RateLimit> {
    let global = Global::of_host(&host.options);
    if !global.any() {
        return Vec::new();
    }
    global.rate_limits(snapshot, Some(&host_basic_name(host)))
}

/// Gloo's name of a virtual host in its Proxy, `<namespace>.<virtual service>`: what scopes
/// its basic rate limits.
fn host_basic_name(host: &VirtualHostModel) -> String {
    config_key(&host.source)
}

/// Sets a route's `rate_limits`, and `include_vh_rate_limits` when it has `ratelimit` (false
/// unless set, as Gloo's plugin writes it; Envoy still honours the deprecated field).
#[allow(deprecated)]
pub(crate) fn apply_to_route(
    action: &mut RouteAction,
    route: &RouteModel,
    snapshot: &ConfigSnapshot,
) {
    let options = &route.options;
    let global = Global::of_route(options);
    if !global.any() && options.ratelimit.is_none() {
        return;
    }
    action.rate_limits = global.rate_limits(snapshot, route.gloo_name.as_deref());
    action.include_vh_rate_limits = options.ratelimit.as_ref().map(|r| BoolValue {
        value: r.include_vh_rate_limits.unwrap_or(false),
    });
}

/// One Envoy rate limit: `generic_key` actions for each of `keys` (the set-style marker, a
/// RateLimitConfig's scope), then `actions` (with `skip_if_absent` on `request_headers` in a
/// set-style one, as Gloo's `ConvertActions` does).
fn rate_limit(
    stage: Stage,
    entry: &RateLimitActions,
    actions: &[Action],
    keys: &[&str],
) -> RateLimit {
    let set = keys.contains(&SET_DESCRIPTOR_VALUE);
    let mut converted: Vec<EnvoyAction> = Vec::with_capacity(actions.len() + keys.len());
    converted.extend(keys.iter().map(|k| generic_key(k)));
    converted.extend(actions.iter().filter_map(|a| convert_action(a, set)));
    RateLimit {
        stage: Some(UInt32Value {
            value: stage.number(),
        }),
        actions: converted,
        limit: entry
            .limit
            .as_ref()
            .and_then(|l| l.dynamic_metadata.as_ref())
            .map(|d| rate_limit::Override {
                override_specifier: Some(
                    rate_limit::r#override::OverrideSpecifier::DynamicMetadata(
                        rate_limit::r#override::DynamicMetadata {
                            metadata_key: d.metadata_key.as_ref().map(metadata_key),
                        },
                    ),
                ),
            }),
        ..Default::default()
    }
}

/// The header with the authenticated user id: the global ext auth settings' `userIdHeader`
/// (the Settings whose `extauth` the sanitize filter strips), else
/// [`DEFAULT_USER_ID_HEADER`](super::extauth::DEFAULT_USER_ID_HEADER).
pub(crate) fn user_id_header(snapshot: &ConfigSnapshot) -> String {
    super::extauth::user_id_header(super::extauth::global_settings(snapshot))
}

/// Gloo's basic rate limits of the virtual host or route named `name` (its
/// `BasicRateLimitTranslator.GenerateResourceConfig`, at stage 0): an authenticated request
/// (the user id header present) gives `(generic_key, <name>), (header_match,
/// is-authenticated), (userid, <user id>)`, an anonymous one `(generic_key, <name>),
/// (header_match, not-authenticated), (remote_address, <client address>)`. Both rate limits
/// are always emitted; the server's descriptors decide which have a limit.
fn basic_rate_limits(name: &str, user_id_header: &str) -> [RateLimit; 2] {
    let present = || EnvoyHeaderMatcher {
        name: user_id_header.to_string(),
        header_match_specifier: Some(HeaderMatchSpecifier::PresentMatch(true)),
        ..Default::default()
    };
    let header_value_match = |value: &str, expect: bool| EnvoyAction {
        action_specifier: Some(action::ActionSpecifier::HeaderValueMatch(
            action::HeaderValueMatch {
                descriptor_value: value.to_string(),
                expect_match: Some(BoolValue { value: expect }),
                headers: vec![present()],
                ..Default::default()
            },
        )),
    };
    let stage = Some(UInt32Value {
        value: Stage::Ingress.number(),
    });
    [
        RateLimit {
            stage,
            actions: vec![
                generic_key(name),
                header_value_match(AUTHENTICATED, true),
                EnvoyAction {
                    action_specifier: Some(action::ActionSpecifier::RequestHeaders(
                        action::RequestHeaders {
                            header_name: user_id_header.to_string(),
                            descriptor_key: USER_ID.to_string(),
                            skip_if_absent: false,
                        },
                    )),
                },
            ],
            ..Default::default()
        },
        RateLimit {
            stage,
            actions: vec![
                generic_key(name),
                header_value_match(ANONYMOUS, false),
                EnvoyAction {
                    action_specifier: Some(action::ActionSpecifier::RemoteAddress(
                        action::RemoteAddress {},
                    )),
                },
            ],
            ..Default::default()
        },
    ]
}

/// The server descriptors of basic rate limits scoped by `name` (Gloo's
/// `GenerateServerConfig`): under `generic_key: <name>`, `header_match: not-authenticated` →
/// `remote_address` with the anonymous limit, `header_match: is-authenticated` → `userid`
/// with the authorized limit (each only when set).
fn basic_descriptor(name: &str, basic: &IngressRateLimit) -> Descriptor {
    let level = |value: &str, key: &str, limit: &crate::model::ratelimit::RateLimit| Descriptor {
        key: Some(HEADER_MATCH.to_string()),
        value: Some(value.to_string()),
        descriptors: vec![Descriptor {
            key: Some(key.to_string()),
            rate_limit: Some(limit.clone()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut descriptors = Vec::new();
    if let Some(limit) = &basic.anonymous_limits {
        descriptors.push(level(ANONYMOUS, REMOTE_ADDRESS, limit));
    }
    if let Some(limit) = &basic.authorized_limits {
        descriptors.push(level(AUTHENTICATED, USER_ID, limit));
    }
    Descriptor {
        key: Some(GENERIC_KEY.to_string()),
        value: Some(name.to_string()),
        descriptors,
        ..Default::default()
    }
}

fn generic_key(value: &str) -> EnvoyAction {
    EnvoyAction {
        action_specifier: Some(action::ActionSpecifier::GenericKey(action::GenericKey {
            descriptor_value: value.to_string(),
            ..Default::default()
        })),
    }
}

/// Gloo's `convertAction`. `None` for what validation refuses (never translated).
fn convert_action(a: &Action, set: bool) -> Option<EnvoyAction> {
    use action::ActionSpecifier as S;
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let specifier = match a.action().ok()?? {
        ActionRef::SourceCluster => S::SourceCluster(action::SourceCluster {}),
        ActionRef::DestinationCluster => S::DestinationCluster(action::DestinationCluster {}),
        ActionRef::RequestHeaders(h) => S::RequestHeaders(action::RequestHeaders {
            header_name: s(&h.header_name),
            descriptor_key: s(&h.descriptor_key),
            // Gloo: "necessary for the set actions to work; not all request headers may be
            // present".
            skip_if_absent: set,
        }),
        ActionRef::RemoteAddress => S::RemoteAddress(action::RemoteAddress {}),
        ActionRef::GenericKey(g) => return Some(generic_key(g.descriptor_value.as_deref()?)),
        ActionRef::HeaderValueMatch(h) => S::HeaderValueMatch(action::HeaderValueMatch {
            descriptor_value: s(&h.descriptor_value),
            expect_match: h.expect_match.map(|value| BoolValue { value }),
            headers: h.headers.iter().map(header_matcher).collect(),
            ..Default::default()
        }),
        ActionRef::Metadata(m) => S::Metadata(action::MetaData {
            descriptor_key: s(&m.descriptor_key),
            metadata_key: m.metadata_key.as_ref().map(metadata_key),
            default_value: s(&m.default_value),
            source: match m.source.unwrap_or_default() {
                MetadataSource::Dynamic => action::meta_data::Source::Dynamic as i32,
                MetadataSource::RouteEntry => action::meta_data::Source::RouteEntry as i32,
            },
            ..Default::default()
        }),
        // Refused by validation (Gloo: "Unknown action type").
        ActionRef::Cel(_) => return None,
    };
    Some(EnvoyAction {
        action_specifier: Some(specifier),
    })
}

fn metadata_key(k: &MetadataKey) -> EnvoyMetadataKey {
    EnvoyMetadataKey {
        key: k.key.clone().unwrap_or_default(),
        path: k
            .path
            .iter()
            .map(|p| metadata_key::PathSegment {
                segment: Some(metadata_key::path_segment::Segment::Key(
                    p.key.clone().unwrap_or_default(),
                )),
            })
            .collect(),
    }
}

/// Gloo's `convertHeader`: the (deprecated, still accepted) one-field Envoy matchers.
#[allow(deprecated)]
fn header_matcher(h: &HeaderMatcher) -> EnvoyHeaderMatcher {
    let specifier = match h.header_match_specifier().ok().flatten() {
        Some(HeaderMatchSpecifierRef::Exact(v)) => {
            Some(HeaderMatchSpecifier::ExactMatch(v.to_string()))
        }
        Some(HeaderMatchSpecifierRef::Regex(v)) => {
            Some(HeaderMatchSpecifier::SafeRegexMatch(RegexMatcher {
                regex: v.to_string(),
                engine_type: None::<regex_matcher::EngineType>,
            }))
        }
        Some(HeaderMatchSpecifierRef::Range(r)) => Some(HeaderMatchSpecifier::RangeMatch(
            envoy_types::pb::envoy::r#type::v3::Int64Range {
                start: r.start.unwrap_or(0),
                end: r.end.unwrap_or(0),
            },
        )),
        Some(HeaderMatchSpecifierRef::Present(v)) => Some(HeaderMatchSpecifier::PresentMatch(v)),
        Some(HeaderMatchSpecifierRef::Prefix(v)) => {
            Some(HeaderMatchSpecifier::PrefixMatch(v.to_string()))
        }
        Some(HeaderMatchSpecifierRef::Suffix(v)) => {
            Some(HeaderMatchSpecifier::SuffixMatch(v.to_string()))
        }
        None => None,
    };
    EnvoyHeaderMatcher {
        name: h.name.clone().unwrap_or_default(),
        invert_match: h.invert_match.unwrap_or(false),
        header_match_specifier: specifier,
        ..Default::default()
    }
}

/// Adds the rate limit server's upstream when the virtual host or one of its routes has global
/// rate limits (its cluster is what the filter calls).
pub(crate) fn collect_upstreams(
    snapshot: &ConfigSnapshot,
    host: &VirtualHostModel,
    into: &mut BTreeSet<ResourceRef>,
) {
    let uses = Global::of_host(&host.options).any()
        || host
            .routes
            .iter()
            .any(|r| Global::of_route(&r.options).any());
    if uses {
        if let Some(server) = server(snapshot) {
            into.insert(server.upstream);
        }
    }
}

/// The upstream a cluster is built from: the rate limit server's is always HTTP/2 (Envoy calls
/// it over gRPC), whatever its `useHttp2` says.
pub(crate) fn cluster_upstream(
    snapshot: &ConfigSnapshot,
    reference: &ResourceRef,
    upstream: &Arc<Object<UpstreamSpec>>,
) -> Arc<Object<UpstreamSpec>> {
    let is_server = server(snapshot).is_some_and(|s| &s.upstream == reference);
    if !is_server || upstream.spec.use_http2 == Some(true) {
        return upstream.clone();
    }
    let mut grpc = upstream.as_ref().clone();
    grpc.spec.use_http2 = Some(true);
    Arc::new(grpc)
}

// ----- validation ---------------------------------------------------------------------------

/// What Gloo refuses in the rate limit actions of a virtual host's options, each problem
/// naming its field under `path`.
pub(crate) fn validate_host(options: &VirtualHostOptions, path: &str) -> Vec<String> {
    validate(Global::of_host(options), path)
}

/// What Gloo refuses in the rate limit actions of a route's options.
pub(crate) fn validate_route(options: &RouteOptions, path: impl std::fmt::Display) -> Vec<String> {
    validate(Global::of_route(options), path)
}

fn validate(global: Global<'_>, path: impl std::fmt::Display) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(basic) = global.basic {
        problems.extend(basic.validate().into_iter().map(|p| format!("{path}.{p}")));
    }
    for (name, _, list) in global.lists(false) {
        for (i, entry) in list.iter().enumerate() {
            let at = format!("{path}.{name}.rateLimits[{i}]");
            for problem in entry.validate() {
                // `RateLimitActions::validate` names fields from `rateLimits`.
                let rest = problem.strip_prefix("rateLimits").unwrap_or(&problem);
                problems.push(format!("{at}{rest}"));
            }
            for (field, actions) in [
                ("actions", &entry.actions),
                ("setActions", &entry.set_actions),
            ] {
                for (j, a) in actions.iter().enumerate() {
                    if matches!(a.action(), Ok(Some(ActionRef::Cel(_)))) {
                        problems.push(format!(
                            "{at}.{field}[{j}].cel: CEL actions are for agentgateway only; Envoy has no such rate limit action"
                        ));
                    }
                }
            }
            if entry.limit.as_ref().is_some_and(|l| {
                l.dynamic_metadata
                    .as_ref()
                    .and_then(|d| d.metadata_key.as_ref())
                    .is_none_or(|k| k.key.as_deref().unwrap_or_default().is_empty())
            }) {
                problems.push(format!(
                    "{at}.limit.dynamicMetadata.metadataKey.key: required"
                ));
            }
            if entry.r#type == Some(crate::model::ratelimit::LimitType::Token) {
                problems.push(format!(
                    "{at}.type: TOKEN limits are for agentgateway only; Envoy counts requests"
                ));
            }
        }
    }
    problems
}

fn fields(global: Global<'_>) -> Vec<&'static str> {
    let basic = ("ratelimitBasic", global.basic.is_none());
    let inline = [
        ("ratelimit.rateLimits", global.ratelimit.is_empty()),
        ("ratelimitEarly.rateLimits", global.early.is_empty()),
        ("ratelimitRegular.rateLimits", global.regular.is_empty()),
    ];
    let configs = global
        .config_lists(false)
        .map(|(name, _, list)| (name, list.is_empty()));
    [basic]
        .into_iter()
        .chain(inline)
        .chain(configs)
        .filter(|(_, empty)| !empty)
        .map(|(name, _)| name)
        .collect()
}

/// The errors for RateLimitConfig references under `path` that name no usable config (Gloo's
/// `ConfigNotFoundErr` / `ReferencedConfigErr`), checked on every run.
fn missing_configs(snapshot: &ConfigSnapshot, global: Global<'_>, path: &str) -> Vec<String> {
    let mut errors = Vec::new();
    for (name, _, list) in global.config_lists(false) {
        for (i, reference) in list.iter().enumerate() {
            if usable_config(snapshot, reference).is_some() {
                continue;
            }
            let namespace = reference.namespace.as_deref().unwrap_or_default();
            let at = format!("{path}.{name}.refs[{i}]");
            let found = reference.namespace.is_some()
                && snapshot
                    .rate_limit_configs
                    .contains_key(&reference.to_resource_ref());
            errors.push(if found {
                format!(
                    "{at}: failed to process RateLimitConfig resource with name [{}] in namespace [{namespace}]: it is invalid (see its status)",
                    reference.name
                )
            } else {
                format!(
                    "{at}: could not find RateLimitConfig resource with name [{}] in namespace [{namespace}]",
                    reference.name
                )
            });
        }
    }
    errors
}

/// Every-run checks of a virtual host's options under `path`: a rate limit server for its
/// global limits, and the RateLimitConfigs it references.
pub(crate) fn check_host(
    snapshot: &ConfigSnapshot,
    options: &VirtualHostOptions,
    path: &str,
) -> Vec<String> {
    check(snapshot, Global::of_host(options), path)
}

/// Every-run checks of a route's options under `path` (see [`check_host`]).
pub(crate) fn check_route(
    snapshot: &ConfigSnapshot,
    options: &RouteOptions,
    path: &str,
) -> Vec<String> {
    check(snapshot, Global::of_route(options), path)
}

fn check(snapshot: &ConfigSnapshot, global: Global<'_>, path: &str) -> Vec<String> {
    if !global.any() {
        return Vec::new();
    }
    let mut errors = if server(snapshot).is_none() {
        without_server(fields(global), path)
    } else {
        Vec::new()
    };
    errors.extend(missing_configs(snapshot, global, path));
    if global.basic.is_some() && before_auth(snapshot) {
        // Gloo's `RateLimitAuthOrderingConflict`.
        errors.push(format!(
            "{path}.ratelimitBasic: rate limiting specified to happen before auth, but auth-based rate limits provided in the virtual host (Settings spec.ratelimitServer.rateLimitBeforeAuth is true)"
        ));
    }
    errors
}

/// The errors for global rate limits on a route that does not route (redirect, direct
/// response): Envoy has rate limits on route actions only (Gloo: "cannot apply rate limits
/// without a route action").
pub(crate) fn without_route_action(options: &RouteOptions, path: &str) -> Vec<String> {
    fields(Global::of_route(options))
        .into_iter()
        .map(|field| format!("{path}.{field}: cannot apply rate limits without a route action"))
        .collect()
}

/// The errors for global rate limits set under `path` while no rate limit server can serve
/// them (checked on every run: Settings and Upstreams change on their own).
fn without_server(fields: Vec<&'static str>, path: &str) -> Vec<String> {
    fields
        .into_iter()
        .map(|field| {
            format!(
                "{path}.{field}: no rate limit server to enforce it: Settings spec.ratelimitServer.ratelimitServerRef is not set or names no Upstream"
            )
        })
        .collect()
}

/// What Gloo refuses in a Settings' rate limit fields, each problem naming its field.
pub(crate) fn validate_settings(
    snapshot: &ConfigSnapshot,
    spec: &crate::model::settings::SettingsSpec,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(service) = &spec.ratelimit {
        problems.extend(service.validate().into_iter().map(|p| format!("spec.{p}")));
    }
    if let Some(reference) = spec
        .ratelimit_server
        .as_ref()
        .and_then(|s| s.ratelimit_server_ref.as_ref())
    {
        let upstream = reference.resolved(DEFAULT_NAMESPACE);
        if !snapshot.upstreams.contains_key(&upstream) {
            // Gloo's `ServerNotFound`.
            problems.push(format!(
                "spec.ratelimitServer.ratelimitServerRef: upstream {upstream} not found"
            ));
        }
    }
    problems
}

// ----- server config ------------------------------------------------------------------------

/// The descriptors a rate limit server must load, one entry per domain (none for a domain
/// without descriptors), from a snapshot:
///
/// * `custom`: the Settings' `ratelimit.descriptors` and `setDescriptors` (Gloo's
///   `ServiceSettings`), for the inline actions. Several Settings have theirs concatenated in
///   namespace/name order.
/// * `crd`: every RateLimitConfig's `raw` descriptors, scoped by its name as the actions gloo
///   writes for its references are: its descriptors nested under `generic_key: <namespace>.<name>`,
///   and that entry added to each of its set descriptors.
/// * `ingress`: the basic rate limits (`ratelimitBasic`) of every virtual host and route the
///   proxies serve, each under `generic_key: <its Gloo name>` (a virtual host's
///   `<namespace>.<name>`, a route's [`RouteModel::gloo_name`](crate::resolve::RouteModel::gloo_name)),
///   then `header_match: not-authenticated` → `remote_address` with `anonymousLimits`, and
///   `header_match: is-authenticated` → `userid` with `authorizedLimits`, as Gloo's rate
///   limit server loads them. (This resolves the snapshot's virtual hosts; a
///   [`Translation`](super::Translation) carries the same list, computed from its own.)
///
/// What fails validation ([`ServiceSettings::validate`](crate::model::ratelimit::ServiceSettings::validate),
/// [`RateLimitConfigSpec::validate`], reported on the resource by translation) is left out, as
/// the server would refuse it; a [`Translation`](super::Translation) uses its last good version
/// instead, as the virtual hosts that use it keep theirs.
///
/// ```
/// use gloo_core::source::{ConfigSource, MemorySource};
/// use gloo_core::snapshot::ConfigSnapshot;
/// use gloo_core::status::Reports;
///
/// let source = MemorySource::new("example");
/// source.set_yaml(r#"
/// apiVersion: gloo.solo.io/v1
/// kind: Settings
/// metadata: {name: default, namespace: gloo-system}
/// spec:
///   ratelimit:
///     descriptors:
///     - key: generic_key
///       value: per-minute
///       rateLimit: {requestsPerUnit: 1, unit: MINUTE}
/// "#);
/// let snapshot = ConfigSnapshot::from_source(&source.subscribe().borrow(), &mut Reports::default());
/// let configs = gloo_core::translate::rate_limit_server_configs(&snapshot);
/// assert_eq!(configs[0].domain.as_deref(), Some("custom"));
/// assert_eq!(configs[0].descriptors[0].value.as_deref(), Some("per-minute"));
/// ```
pub fn server_configs(snapshot: &ConfigSnapshot) -> Vec<ServerRateLimitConfig> {
    let models = crate::resolve::resolve(
        snapshot,
        &mut crate::resolve::ResolveCache::default(),
        &mut crate::status::Reports::default(),
    );
    let mut sources = LastGoodLimits::default();
    sources.update(snapshot);
    sources.server_configs(&models)
}

/// The rate limit server's sources of a run of snapshots: each Settings' `ratelimit` and each
/// RateLimitConfig that validates, and for one that does not (Rejected, reported by
/// translation), its last good version, as the virtual hosts that use it keep theirs serving.
/// A source no longer in the snapshot is forgotten. A translator keeps one.
#[derive(Debug, Default)]
pub(crate) struct LastGoodLimits {
    settings: std::collections::BTreeMap<ResourceRef, crate::model::ratelimit::ServiceSettings>,
    configs: std::collections::BTreeMap<ResourceRef, crate::model::ratelimit::RawRateLimitConfig>,
}

impl LastGoodLimits {
    /// Takes `snapshot`'s sources (see the type's docs).
    pub(crate) fn update(&mut self, snapshot: &ConfigSnapshot) {
        let mut settings = std::collections::BTreeMap::new();
        for (reference, entry) in &snapshot.settings {
            let Some(service) = &entry.object.spec.ratelimit else {
                continue;
            };
            let good = if service.validate().is_empty() {
                Some(service.clone())
            } else {
                self.settings.remove(reference)
            };
            if let Some(good) = good {
                settings.insert(reference.clone(), good);
            }
        }
        let mut configs = std::collections::BTreeMap::new();
        for (reference, entry) in &snapshot.rate_limit_configs {
            let spec = &entry.object.spec;
            let good = match (&spec.raw, spec.validate().is_empty()) {
                (Some(raw), true) => Some(raw.clone()),
                (None, true) => None,
                (_, false) => self.configs.remove(reference),
            };
            if let Some(good) = good {
                configs.insert(reference.clone(), good);
            }
        }
        self.settings = settings;
        self.configs = configs;
    }

    /// The server configs of these sources and of the resolved proxies' basic limits.
    pub(crate) fn server_configs(
        &self,
        models: &std::collections::BTreeMap<String, crate::resolve::ProxyModel>,
    ) -> Vec<ServerRateLimitConfig> {
        let mut custom = ServerRateLimitConfig {
            domain: Some(CUSTOM_DOMAIN.to_string()),
            ..Default::default()
        };
        for service in self.settings.values() {
            custom
                .descriptors
                .extend(service.descriptors.iter().cloned());
            custom
                .set_descriptors
                .extend(service.set_descriptors.iter().cloned());
        }
        let mut crd = ServerRateLimitConfig {
            domain: Some(CRD_DOMAIN.to_string()),
            ..Default::default()
        };
        for (reference, raw) in &self.configs {
            let key = config_key(reference);
            if !raw.descriptors.is_empty() {
                crd.descriptors.push(Descriptor {
                    key: Some(GENERIC_KEY.to_string()),
                    value: Some(key.clone()),
                    descriptors: raw.descriptors.clone(),
                    ..Default::default()
                });
            }
            crd.set_descriptors
                .extend(raw.set_descriptors.iter().map(|set| {
                    let mut scoped = set.clone();
                    scoped.simple_descriptors.insert(
                        0,
                        SimpleDescriptor {
                            key: Some(GENERIC_KEY.to_string()),
                            value: Some(key.clone()),
                        },
                    );
                    scoped
                }));
        }
        server_configs_with(custom, crd, models)
    }
}

/// `custom` and `crd`, then the `ingress` domain of the resolved proxies' basic limits.
fn server_configs_with(
    custom: ServerRateLimitConfig,
    crd: ServerRateLimitConfig,
    models: &std::collections::BTreeMap<String, crate::resolve::ProxyModel>,
) -> Vec<ServerRateLimitConfig> {
    // One descriptor per name: a virtual host served by several Gateways (or proxies) is the
    // same virtual host, with the same limits.
    let mut basic = std::collections::BTreeMap::new();
    for listener in models.values().flat_map(|m| m.listeners.iter()) {
        for config in listener.http_route_configs() {
            for host in config.virtual_hosts {
                if let Some(limits) = host.options.ratelimit_basic.as_deref() {
                    let name = host_basic_name(host);
                    basic
                        .entry(name.clone())
                        .or_insert_with(|| basic_descriptor(&name, limits));
                }
                for route in &host.routes {
                    let (Some(limits), Some(name), crate::resolve::RouteModelAction::Route(_)) = (
                        route.options.ratelimit_basic.as_deref(),
                        route.gloo_name.as_ref(),
                        &route.action,
                    ) else {
                        continue;
                    };
                    basic
                        .entry(name.clone())
                        .or_insert_with(|| basic_descriptor(name, limits));
                }
            }
        }
    }
    let ingress = ServerRateLimitConfig {
        domain: Some(INGRESS_DOMAIN.to_string()),
        descriptors: basic.into_values().collect(),
        ..Default::default()
    };
    [custom, crd, ingress]
        .into_iter()
        .filter(|c| !(c.descriptors.is_empty() && c.set_descriptors.is_empty()))
        .collect()
}

/// [`check_host`] and [`check_route`] for a VirtualService's virtual host and routes.
pub(crate) fn check_virtual_service(
    snapshot: &ConfigSnapshot,
    spec: &crate::model::virtual_service::VirtualServiceSpec,
) -> Vec<String> {
    super::check_virtual_service_options(
        spec,
        |options, path| check_host(snapshot, options, path),
        |options, path| check_route(snapshot, options, path),
    )
}

/// [`check_route`] for routes (of a VirtualService or RouteTable) under `path`.
pub(crate) fn check_routes(
    snapshot: &ConfigSnapshot,
    routes: &[crate::model::routing::Route],
    path: &str,
) -> Vec<String> {
    super::check_route_options(routes, path, |options, path| {
        check_route(snapshot, options, path)
    })
}
