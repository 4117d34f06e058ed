//! Retry options: Gloo's `options/retries/retries.proto` (`retries.options.gloo.solo.io.RetryPolicy`).
//!
//! A route that retries connection failures and 5xx answers up to three times, each attempt
//! limited to 5 seconds, with exponential back-off:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::{Duration, Resource};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gateway.solo.io/v1
//! kind: VirtualService
//! metadata:
//!   name: default
//!   namespace: gloo-system
//! spec:
//!   virtualHost:
//!     domains:
//!     - '*'
//!     routes:
//!     - matchers:
//!       - prefix: /petstore
//!       routeAction:
//!         single:
//!           upstream:
//!             name: default-petstore-8080
//!             namespace: gloo-system
//!       options:
//!         timeout: 20s
//!         retries:
//!           retryOn: connect-failure,5xx
//!           numRetries: 3
//!           perTryTimeout: 5s
//!           retryBackOff:
//!             baseInterval: 0.25s
//!             maxInterval: 2s
//! "#;
//! let parsed = parse_str(yaml, "default.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::VirtualService(vs) = &parsed.resources[0].resource else {
//!     panic!("expected a VirtualService");
//! };
//! let route = &vs.spec.virtual_host.as_ref().ok_or("no virtualHost")?.routes[0];
//! let options = route.options.as_deref().ok_or("no options")?;
//! let retries = options.retries.as_deref().ok_or("no retries")?;
//!
//! assert_eq!(retries.retry_on, "connect-failure,5xx");
//! assert_eq!(retries.num_retries, Some(3));
//! assert_eq!(retries.per_try_timeout, Some(Duration::from_secs(5)));
//! let back_off = retries.retry_back_off.as_ref().ok_or("no retryBackOff")?;
//! assert_eq!(back_off.base_interval, Some(Duration::from_millis(250)));
//! assert_eq!(back_off.max_interval, Some(Duration::from_secs(2)));
//! // The route timeout covers all the attempts together.
//! assert_eq!(options.timeout, Some(Duration::from_secs(20)));
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

use crate::model::Duration;

/// Retry policy for a route or virtual host.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// Conditions to retry on (Envoy `x-envoy-retry-on` values, comma separated).
    #[serde(alias = "retry_on", default, skip_serializing_if = "String::is_empty")]
    pub retry_on: String,
    /// How many times to retry (0 means Envoy's default, 1).
    #[serde(
        alias = "num_retries",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub num_retries: Option<u32>,
    /// Timeout for each attempt.
    #[serde(
        alias = "per_try_timeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub per_try_timeout: Option<Duration>,
    /// Exponential back-off between retries.
    #[serde(
        alias = "retry_back_off",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_back_off: Option<RetryBackOff>,
    /// `priority_predicate` oneof: prefer priorities not tried before.
    #[serde(
        alias = "previous_priorities",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_priorities: Option<PreviousPriorities>,
    /// HTTP status codes that trigger a retry with `retriable-status-codes`.
    #[serde(
        alias = "retriable_status_codes",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub retriable_status_codes: Vec<u32>,
    /// Back-off driven by rate-limit reset headers in the upstream response.
    #[serde(
        alias = "rate_limited_retry_back_off",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rate_limited_retry_back_off: Option<RateLimitedRetryBackOff>,
}

/// Exponential retry back-off.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBackOff {
    /// Base interval (required, at least 1ms).
    #[serde(
        alias = "base_interval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub base_interval: Option<Duration>,
    /// Maximum interval; defaults to 10 times the base interval.
    #[serde(
        alias = "max_interval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_interval: Option<Duration>,
}

/// A response header carrying a rate-limit reset time.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetHeader {
    /// Header name.
    #[serde(default)]
    pub name: String,
    /// How the header's value is written.
    #[serde(default)]
    pub format: ResetHeaderFormat,
}

/// Format of a rate-limit reset header's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResetHeaderFormat {
    /// Seconds to wait.
    #[default]
    Seconds,
    /// A Unix timestamp.
    UnixTimestamp,
}

/// Retry back-off based on rate-limit reset headers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitedRetryBackOff {
    /// The headers to read reset times from.
    #[serde(
        alias = "reset_headers",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub reset_headers: Vec<ResetHeader>,
    /// Maximum back-off interval.
    #[serde(
        alias = "max_interval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_interval: Option<Duration>,
}

/// The previous-priorities retry predicate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviousPriorities {
    /// How often the priority load is updated (Envoy's default is 2).
    #[serde(
        alias = "update_frequency",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub update_frequency: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/content/guides/traffic_management/request_processing/retries/_index.md
    // (the route's `options.retries`; note the docs write `retriable_status_codes` in snake
    // case, which proto3 JSON accepts).
    const DOC: &str = r#"
retryOn: "retriable-status-codes"
retriable_status_codes:
   - 502
   - 503
   - 504
   - 429
retryBackOff:
  baseInterval: "1s"
  maxInterval: "1s"
rateLimitedRetryBackOff:
  maxInterval: "1s"
  resetHeaders:
    - name: "X-RateLimit-Reset"
      format: UNIX_TIMESTAMP
    - name: "Retry-After"
      format: SECONDS
"#;

    #[test]
    fn parses_docs_example_and_round_trips() {
        let r: RetryPolicy = serde_yaml_ng::from_str(DOC).unwrap();
        assert_eq!(r.retry_on, "retriable-status-codes");
        assert_eq!(r.retriable_status_codes, vec![502, 503, 504, 429]);
        let back_off = r.retry_back_off.clone().unwrap();
        assert_eq!(back_off.base_interval, Some(Duration::from_secs(1)));
        let rl = r.rate_limited_retry_back_off.clone().unwrap();
        assert_eq!(rl.reset_headers[0].format, ResetHeaderFormat::UnixTimestamp);
        assert_eq!(rl.reset_headers[1].format, ResetHeaderFormat::Seconds);
        let json = serde_json::to_string(&r).unwrap();
        let back: RetryPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(r, back);
    }

    // docs/content/guides/traffic_management/request_processing/timeout/_index.md
    #[test]
    fn parses_timeout_docs_retries() {
        let r: RetryPolicy = serde_yaml_ng::from_str(
            "retryOn: 'connect-failure'\nnumRetries: 3\nperTryTimeout: '5s'",
        )
        .unwrap();
        assert_eq!(r.num_retries, Some(3));
        assert_eq!(r.per_try_timeout, Some(Duration::from_secs(5)));
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = serde_yaml_ng::from_str::<RetryPolicy>("retryOnn: x").unwrap_err();
        assert!(err.to_string().contains("retryOnn"), "{err}");
    }
}
