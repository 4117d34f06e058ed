//! Between the limiter's types and Envoy's rate limit protos, both ways: the service reads
//! requests and writes responses, the client writes requests and reads responses.

use std::time::Duration;

use envoy_types::pb::envoy::extensions::common::ratelimit::v3 as common;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::{
    Entry, RateLimitOverride,
};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{
    self, rate_limit, DescriptorStatus as PbStatus,
};
use envoy_types::pb::envoy::service::ratelimit::v3::{
    RateLimitRequest as PbRequest, RateLimitResponse as PbResponse,
};
use envoy_types::pb::google::protobuf::{Duration as PbDuration, UInt64Value};
use tonic::Status;

use crate::ratelimit::global::{
    Code, DescriptorStatus, RateLimit, RateLimitDescriptor, RateLimitRequest, RateLimitResponse,
    Unit,
};

/// A `ShouldRateLimit` request as the limiter reads it; a unit it does not know, or negative
/// hits, is `INVALID_ARGUMENT`, naming the descriptor.
pub(crate) fn from_proto(request: PbRequest) -> Result<RateLimitRequest, Status> {
    let mut out = RateLimitRequest::new(request.domain).hits_addend(request.hits_addend);
    for (i, d) in request.descriptors.into_iter().enumerate() {
        out = out.descriptor(descriptor_from_proto(i, d)?);
    }
    Ok(out)
}

fn descriptor_from_proto(
    index: usize,
    d: common::RateLimitDescriptor,
) -> Result<RateLimitDescriptor, Status> {
    if d.is_negative_hits {
        // Refilling budgets is not something the fixed-window counters do; refused rather
        // than counted the wrong way.
        return Err(Status::invalid_argument(format!(
            "descriptors[{index}].is_negative_hits: not supported"
        )));
    }
    let mut out = RateLimitDescriptor::new();
    for entry in d.entries {
        out = out.entry(entry.key, entry.value);
    }
    if let Some(limit) = d.limit {
        let unit = Unit::from_envoy_value(limit.unit).ok_or_else(|| {
            Status::invalid_argument(format!(
                "descriptors[{index}].limit.unit: unknown unit {}",
                limit.unit
            ))
        })?;
        out = out.limit_override(RateLimit::new(limit.requests_per_unit, unit));
    }
    if let Some(hits) = d.hits_addend {
        out = out.hits_addend(hits.value);
    }
    Ok(out)
}

/// The request Envoy's filter sends for the limiter's request.
pub(crate) fn request_to_proto(request: RateLimitRequest) -> PbRequest {
    PbRequest {
        domain: request.domain,
        descriptors: request
            .descriptors
            .into_iter()
            .map(|d| common::RateLimitDescriptor {
                entries: d
                    .entries
                    .into_iter()
                    .map(|e| Entry {
                        key: e.key,
                        value: e.value,
                    })
                    .collect(),
                limit: d.limit.map(|l| RateLimitOverride {
                    requests_per_unit: l.requests_per_unit(),
                    unit: l.unit().envoy_value(),
                }),
                hits_addend: d.hits_addend.map(|value| UInt64Value { value }),
                is_negative_hits: false,
            })
            .collect(),
        hits_addend: request.hits_addend,
    }
}

fn code(code: Code) -> i32 {
    match code {
        Code::Ok => rate_limit_response::Code::Ok as i32,
        Code::OverLimit => rate_limit_response::Code::OverLimit as i32,
    }
}

/// Envoy's reading of a code: only `OVER_LIMIT` refuses (`UNKNOWN` counts as `OK`).
fn code_from_proto(code: i32) -> Code {
    if code == rate_limit_response::Code::OverLimit as i32 {
        Code::OverLimit
    } else {
        Code::Ok
    }
}

fn status_to_proto(status: &DescriptorStatus) -> PbStatus {
    PbStatus {
        code: code(status.code),
        current_limit: status
            .current_limit
            .as_ref()
            .map(|limit| rate_limit_response::RateLimit {
                name: limit.get_name().unwrap_or_default().to_owned(),
                requests_per_unit: limit.requests_per_unit(),
                unit: limit.unit().envoy_value(),
            }),
        limit_remaining: status.limit_remaining,
        duration_until_reset: status.duration_until_reset.map(|d| PbDuration {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: 0,
        }),
        ..Default::default()
    }
}

/// A descriptor status as the filter reads it. A `current_limit` whose unit is `UNKNOWN` (or
/// not an Envoy unit) is dropped: it has no window to report. A negative duration is 0.
fn status_from_proto(status: PbStatus) -> DescriptorStatus {
    DescriptorStatus {
        code: code_from_proto(status.code),
        current_limit: status.current_limit.and_then(|limit| {
            let unit = Unit::from_envoy_value(limit.unit)?;
            let out = RateLimit::new(limit.requests_per_unit, unit);
            Some(if limit.name.is_empty() {
                out
            } else {
                out.name(limit.name)
            })
        }),
        limit_remaining: status.limit_remaining,
        duration_until_reset: status.duration_until_reset.map(|d| {
            Duration::new(
                u64::try_from(d.seconds).unwrap_or(0),
                u32::try_from(d.nanos).unwrap_or(0).min(999_999_999),
            )
        }),
    }
}

/// The response the service sends for the limiter's answer.
pub(crate) fn to_proto(response: &RateLimitResponse) -> PbResponse {
    PbResponse {
        overall_code: code(response.overall_code),
        statuses: response.statuses.iter().map(status_to_proto).collect(),
        ..Default::default()
    }
}

/// The limiter's answer read from a service's response.
pub(crate) fn response_from_proto(response: PbResponse) -> RateLimitResponse {
    RateLimitResponse {
        overall_code: code_from_proto(response.overall_code),
        statuses: response
            .statuses
            .into_iter()
            .map(status_from_proto)
            .collect(),
    }
}

// The unit enum is used through `Unit::envoy_value`; keep the generated one referenced so a
// renumbering in envoy-types breaks the build here rather than on the wire.
const _: () = {
    assert!(rate_limit::Unit::Second as i32 == Unit::Second.envoy_value());
    assert!(rate_limit::Unit::Minute as i32 == Unit::Minute.envoy_value());
    assert!(rate_limit::Unit::Hour as i32 == Unit::Hour.envoy_value());
    assert!(rate_limit::Unit::Day as i32 == Unit::Day.envoy_value());
    assert!(rate_limit::Unit::Week as i32 == Unit::Week.envoy_value());
    assert!(rate_limit::Unit::Month as i32 == Unit::Month.envoy_value());
    assert!(rate_limit::Unit::Year as i32 == Unit::Year.envoy_value());
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_and_a_response_survive_the_wire_both_ways() {
        let request = RateLimitRequest::new("edge")
            .hits_addend(2)
            .descriptor(
                RateLimitDescriptor::new()
                    .entry("user", "alice")
                    .entry("plan", "gold")
                    .hits_addend(5),
            )
            .descriptor(
                RateLimitDescriptor::new()
                    .entry("ip", "192.0.2.7")
                    .limit_override(RateLimit::new(3, Unit::Week)),
            );
        let back = from_proto(request_to_proto(request.clone())).expect("valid");
        assert_eq!(back, request);

        let response = RateLimitResponse {
            overall_code: Code::OverLimit,
            statuses: vec![
                DescriptorStatus {
                    code: Code::OverLimit,
                    current_limit: Some(RateLimit::new(10, Unit::Hour).name("per-user")),
                    limit_remaining: 0,
                    duration_until_reset: Some(Duration::from_secs(42)),
                },
                DescriptorStatus {
                    code: Code::Ok,
                    current_limit: None,
                    limit_remaining: u32::MAX,
                    duration_until_reset: None,
                },
            ],
        };
        assert_eq!(response_from_proto(to_proto(&response)), response);
    }

    #[test]
    fn envoy_reads_unknown_codes_as_ok_and_drops_limits_without_a_window() {
        let response = response_from_proto(PbResponse {
            overall_code: rate_limit_response::Code::Unknown as i32,
            statuses: vec![PbStatus {
                code: 7,
                current_limit: Some(rate_limit_response::RateLimit {
                    name: String::new(),
                    requests_per_unit: 5,
                    unit: rate_limit::Unit::Unknown as i32,
                }),
                limit_remaining: 4,
                duration_until_reset: Some(PbDuration {
                    seconds: -3,
                    nanos: 0,
                }),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(response.overall_code, Code::Ok);
        assert_eq!(response.statuses[0].code, Code::Ok);
        assert_eq!(response.statuses[0].current_limit, None);
        assert_eq!(response.statuses[0].limit_remaining, 4);
        assert_eq!(
            response.statuses[0].duration_until_reset,
            Some(Duration::ZERO)
        );
    }
}
