//! Envoy's HTTP local rate limit filter (`envoy.filters.http.local_ratelimit`), served by
//! gloo-filters' [`LocalRateLimitLayer`]: the same token buckets an axum app can `.layer()`,
//! configured from the Envoy resource gloo-core translates Gloo's `httpLocalRatelimit` and
//! `ratelimit.localRatelimit` options into. Enabled by the `ratelimit` feature (on by
//! default).
//!
//! As in Envoy, the most specific config is used whole (a route's, else its virtual host's,
//! else the listener's), and each config object has one budget: every route without an
//! override of its own shares the listener's bucket, and every route of a virtual host
//! without its own shares the virtual host's (the filter stacks build one layer per object).
//! `local_rate_limit_per_downstream_connection` gives each downstream connection its own
//! bucket instead.
//!
//! ```
//! use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
//! use envoy_types::pb::envoy::r#type::v3::TokenBucket;
//! use envoy_types::pb::google::protobuf::{Any, Duration};
//! use gloo_proxy::filter::FilterRegistry;
//! use gloo_proxy::ratelimit::{LOCAL_RATELIMIT, LOCAL_RATELIMIT_TYPE};
//! use prost::Message;
//!
//! let registry = FilterRegistry::with_builtins();
//! let factory = registry.get(LOCAL_RATELIMIT).expect("registered with the builtins");
//! // No bucket (or a filter not enabled): the filter does nothing on that route.
//! let empty = Any { type_url: LOCAL_RATELIMIT_TYPE.into(), value: LocalRateLimit::default().encode_to_vec() };
//! assert!(factory.layer(&empty, None).unwrap().is_none());
//! // A bucket of 0 tokens is refused, naming the field.
//! let bad = LocalRateLimit {
//!     token_bucket: Some(TokenBucket { max_tokens: 0, tokens_per_fill: None,
//!         fill_interval: Some(Duration { seconds: 1, nanos: 0 }) }),
//!     ..Default::default()
//! };
//! let bad = Any { type_url: LOCAL_RATELIMIT_TYPE.into(), value: bad.encode_to_vec() };
//! let refused = factory.layer(&bad, None).err().expect("a bucket of 0 tokens is refused");
//! assert!(refused.contains("max_tokens"), "{refused}");
//! ```

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::XRateLimitHeadersRfcVersion;
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::google::protobuf::Any;
use gloo_filters::ratelimit::{
    KeyExtractor, KeyFn, LocalRateLimitLayer, RateLimited, RequestHead, TokenBucket,
};
use http::StatusCode;
use prost::Message;
use tower::{Layer, ServiceExt};

use crate::access_log::ResponseFlags;
use crate::builtin::all_or_nothing;
use crate::filter::{FilterFactory, FilterLayer, FilterRegistry, HttpService};
use crate::proxy::{mark_flagged_local_reply, Downstream};
use crate::router::action::pb_duration;

/// Envoy's HTTP local rate limit filter name.
pub const LOCAL_RATELIMIT: &str = "envoy.filters.http.local_ratelimit";
/// Its config type URL.
pub const LOCAL_RATELIMIT_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

pub(crate) fn register(registry: &mut FilterRegistry) {
    registry.register(LOCAL_RATELIMIT, LocalRateLimitFactory);
}

/// Builds [`LocalRateLimitLayer`]s from `LocalRateLimit` configs.
struct LocalRateLimitFactory;

impl FilterFactory for LocalRateLimitFactory {
    fn layer(&self, config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
        // The most specific config is used whole, as in Envoy.
        let any = per_route.unwrap_or(config);
        if any.type_url.is_empty() && any.value.is_empty() {
            // Listed without a config (or registered everywhere): nothing to limit.
            return Ok(None);
        }
        if any.type_url != LOCAL_RATELIMIT_TYPE {
            return Err(format!(
                "expected {LOCAL_RATELIMIT_TYPE}, got {}",
                any.type_url
            ));
        }
        let cfg = LocalRateLimit::decode(any.value.as_slice())
            .map_err(|e| format!("cannot decode {}: {e}", any.type_url))?;
        // What this filter does not implement is refused, never silently ignored.
        let unsupported = [
            ("descriptors", !cfg.descriptors.is_empty()),
            ("rate_limits", !cfg.rate_limits.is_empty()),
            (
                "local_cluster_rate_limit",
                cfg.local_cluster_rate_limit.is_some(),
            ),
            (
                "response_headers_to_add",
                !cfg.response_headers_to_add.is_empty(),
            ),
            (
                "request_headers_to_add_when_not_enforced",
                !cfg.request_headers_to_add_when_not_enforced.is_empty(),
            ),
        ];
        if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(format!("{field} is not supported"));
        }
        // Envoy's default when a share is unset: 0%.
        let enabled =
            all_or_nothing(cfg.filter_enabled.as_ref(), "filter_enabled")?.unwrap_or(false);
        let enforced =
            all_or_nothing(cfg.filter_enforced.as_ref(), "filter_enforced")?.unwrap_or(false);
        // A bucket is validated even where the filter is off, as Envoy validates every config.
        let Some(tb) = cfg.token_bucket.as_ref() else {
            return Ok(None);
        };
        let fill_interval = tb
            .fill_interval
            .as_ref()
            .map(pb_duration)
            .ok_or("token_bucket.fill_interval: required")?;
        let tokens_per_fill = tb.tokens_per_fill.as_ref().map_or(1, |v| v.value);
        let bucket = TokenBucket::new(tb.max_tokens, tokens_per_fill, fill_interval)
            .map_err(|e| format!("token_bucket: {e}"))?;
        if !enabled {
            return Ok(None);
        }
        let x_ratelimit_headers =
            match XRateLimitHeadersRfcVersion::try_from(cfg.enable_x_ratelimit_headers) {
                Ok(XRateLimitHeadersRfcVersion::Off) => false,
                Ok(XRateLimitHeadersRfcVersion::DraftVersion03) => true,
                Err(_) => {
                    return Err(format!(
                        "enable_x_ratelimit_headers: unknown version {}",
                        cfg.enable_x_ratelimit_headers
                    ))
                }
            };
        let mut layer = LocalRateLimitLayer::new(bucket)
            .enforce(enforced)
            .x_ratelimit_headers(x_ratelimit_headers)
            .retry_after(cfg.enable_retry_after_header);
        if let Some(code) = cfg.status.as_ref().map(|s| s.code).filter(|c| *c != 0) {
            let status = u16::try_from(code)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .ok_or_else(|| format!("status: invalid HTTP status {code}"))?;
            layer = layer.status(status);
        }
        Ok(Some(if cfg.local_rate_limit_per_downstream_connection {
            // One bucket per connection: its (client, local) address pair names it.
            filter_layer(layer.key_extractor(KeyFn::new(|head: &RequestHead<'_>| {
                head.extensions()
                    .get::<Downstream>()
                    .map(|d| (d.remote, d.local))
            })))
        } else {
            filter_layer(layer)
        }))
    }
}

/// The layer as a gloo-proxy filter: its refusals are marked as local replies, so they get
/// the route's response headers like every other local answer.
fn filter_layer<X>(layer: LocalRateLimitLayer<X>) -> FilterLayer
where
    X: KeyExtractor + Clone + Send + Sync + 'static,
    X::Key: Send + Sync,
{
    FilterLayer::from_fn(move |inner: HttpService| {
        HttpService::new(layer.layer(inner).map_response(|r| {
            mark_flagged_local_reply::<RateLimited>(r, ResponseFlags::RATE_LIMITED)
        }))
    })
}
