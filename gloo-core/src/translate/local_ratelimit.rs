//! Local rate limiting as Gloo's `local_ratelimit` plugin emits it
//! (`projects/gloo/pkg/plugins/local_ratelimit/{plugin,utils}.go`): Envoy's
//! `envoy.filters.http.local_ratelimit` in the connection manager, with the listener's
//! `httpLocalRatelimit.defaultLimit`, and a `typed_per_filter_config` override on every virtual
//! host and route that sets its own `localRatelimit`.
//!
//! Every config Gloo writes (filter and overrides alike) has `stat_prefix:
//! http_local_ratelimit`, `stage: 3`, and the listener's `localRateLimitPerDownstreamConnection`
//! and `enableXRatelimitHeaders` copied in (a per-route config replaces the listener's whole
//! config, so the flags would otherwise fall back to false). A config with a bucket gets
//! `filter_enabled` and `filter_enforced` at 100%; one without (the connection manager's filter
//! when the listener sets no default) gets neither, which Envoy reads as disabled (Gloo: "Do NOT
//! set filter enabled and enforced if the token bucket is not found. This causes it to rate
//! limit all requests to zero").

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::XRateLimitHeadersRfcVersion;
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::envoy::r#type::v3::{
    fractional_percent::DenominatorType, FractionalPercent, TokenBucket as EnvoyTokenBucket,
};
use envoy_types::pb::google::protobuf::UInt32Value;

use super::routes::duration;
use crate::model::gateway::HttpGateway;
use crate::model::ratelimit::{LocalRateLimitSettings, TokenBucket};
use crate::resolve::VirtualHostModel;

/// Gloo's `HTTPFilterStatPrefix`.
pub(crate) const STAT_PREFIX: &str = "http_local_ratelimit";

/// Gloo's `CustomStageBeforeAuth`: the `stage` of every local rate limit config it writes.
pub(crate) const STAGE: u32 = 3;

/// The listener settings copied into every local rate limit config of its virtual hosts and
/// routes. Part of the virtual host cache key: a Gateway edit that changes them must
/// re-translate the virtual hosts that carry overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub(crate) struct ListenerFlags {
    /// `localRateLimitPerDownstreamConnection`.
    per_connection: bool,
    /// `enableXRatelimitHeaders`.
    x_ratelimit_headers: bool,
}

impl ListenerFlags {
    /// The flags of a listener's `httpLocalRatelimit` (false when unset, as in Gloo).
    pub(crate) fn of(settings: Option<&LocalRateLimitSettings>) -> Self {
        ListenerFlags {
            per_connection: settings
                .and_then(|s| s.local_rate_limit_per_downstream_connection)
                .unwrap_or(false),
            x_ratelimit_headers: settings
                .and_then(|s| s.enable_x_ratelimit_headers)
                .unwrap_or(false),
        }
    }
}

/// The `httpLocalRatelimit` of an HTTP gateway.
pub(crate) fn settings(http: Option<&HttpGateway>) -> Option<&LocalRateLimitSettings> {
    http.and_then(|h| h.options.as_ref())
        .and_then(|o| o.http_local_ratelimit.as_ref())
}

/// Whether a virtual host or any of its routes sets its own local bucket.
pub(crate) fn host_uses(host: &VirtualHostModel) -> bool {
    host.options.local_ratelimit().bucket().is_some()
        || host
            .routes
            .iter()
            .any(|r| r.options.local_ratelimit().bucket().is_some())
}

/// Whether the connection manager needs the filter: the listener has a default bucket, or one
/// of its virtual hosts or routes has its own (Gloo with `removeUnusedFilters`, which gloo
/// applies to every filter). A listener that only sets the flags gets no filter, as in Gloo.
pub(crate) fn listener_needs_filter(
    settings: Option<&LocalRateLimitSettings>,
    hosts: &[std::sync::Arc<VirtualHostModel>],
) -> bool {
    settings.is_some_and(|s| s.default_limit.as_ref().is_some_and(TokenBucket::is_valid))
        || hosts.iter().any(|h| host_uses(h))
}

fn hundred_percent() -> RuntimeFractionalPercent {
    RuntimeFractionalPercent {
        default_value: Some(FractionalPercent {
            numerator: 100,
            denominator: DenominatorType::Hundred as i32,
        }),
        ..Default::default()
    }
}

/// Gloo's `toEnvoyTokenBucket`: `tokens_per_fill` only when set (Envoy's default is 1), the
/// fill interval defaulting to 1s. `None` for a bucket validation refuses (never translated).
fn token_bucket(bucket: &TokenBucket) -> Option<EnvoyTokenBucket> {
    if !bucket.is_valid() {
        return None;
    }
    Some(EnvoyTokenBucket {
        max_tokens: bucket.max_tokens.unwrap_or(1),
        tokens_per_fill: bucket.tokens_per_fill.map(|value| UInt32Value { value }),
        fill_interval: Some(duration(&bucket.fill_interval_or_default())),
    })
}

/// Gloo's `GenerateHTTPFilter`: the config of the connection manager's filter (with the
/// listener's default bucket) or of a virtual host / route override (with its own).
pub(crate) fn config(flags: ListenerFlags, bucket: Option<&TokenBucket>) -> LocalRateLimit {
    let token_bucket = bucket.and_then(token_bucket);
    let enabled = token_bucket.is_some();
    LocalRateLimit {
        stat_prefix: STAT_PREFIX.to_string(),
        token_bucket,
        stage: STAGE,
        // Without a bucket these stay unset: at 100% Envoy would refuse every request.
        filter_enabled: enabled.then(hundred_percent),
        filter_enforced: enabled.then(hundred_percent),
        local_rate_limit_per_downstream_connection: flags.per_connection,
        enable_x_ratelimit_headers: if flags.x_ratelimit_headers {
            XRateLimitHeadersRfcVersion::DraftVersion03 as i32
        } else {
            XRateLimitHeadersRfcVersion::Off as i32
        },
        ..Default::default()
    }
}
