//! Envoy's access log filters (`envoy.config.accesslog.v3.AccessLogFilter`): which requests
//! an access log writes.

use envoy_types::pb::envoy::config::accesslog::v3::{
    access_log_filter::FilterSpecifier, comparison_filter::Op, AccessLogFilter, ComparisonFilter,
};
use envoy_types::pb::envoy::r#type::v3::fractional_percent::DenominatorType;

use super::{Entry, ResponseFlags};
use crate::router::matcher::HeaderMatch;

/// A compiled access log filter.
#[derive(Debug, Clone)]
pub enum Filter {
    /// The response code compared with a value.
    StatusCode(Comparison),
    /// The total duration, in milliseconds, compared with a value.
    Duration(Comparison),
    /// Requests that are not health checks (the health check filter marks those).
    NotHealthCheck,
    /// Traced requests: gloo-proxy traces none, so no request.
    Traceable,
    /// A share of the requests, sampled at random.
    Runtime {
        /// How many of each `denominator` requests are written.
        numerator: u64,
        /// 100, 10,000 or 1,000,000.
        denominator: u64,
    },
    /// All of these.
    And(Vec<Filter>),
    /// Any of these.
    Or(Vec<Filter>),
    /// A request header matcher.
    Header(Box<HeaderMatch>),
    /// Requests with any of these response flags (any flag when empty).
    ResponseFlags(ResponseFlags),
    /// The gRPC status is (or, with `exclude`, is not) one of these.
    GrpcStatus {
        /// The statuses, by number.
        statuses: Vec<u32>,
        /// Invert the match.
        exclude: bool,
    },
}

/// A comparison with a runtime value's default (gloo-proxy has no runtime).
#[derive(Debug, Clone, Copy)]
pub struct Comparison {
    op: Op,
    value: u64,
}

impl Comparison {
    fn compile(c: Option<&ComparisonFilter>, at: &str) -> Result<Comparison, String> {
        let c = c.ok_or_else(|| format!("{at}.comparison is required"))?;
        let op =
            Op::try_from(c.op).map_err(|_| format!("{at}.comparison.op {} is unknown", c.op))?;
        let value = c
            .value
            .as_ref()
            .ok_or_else(|| format!("{at}.comparison.value is required"))?;
        Ok(Comparison {
            op,
            value: u64::from(value.default_value),
        })
    }

    fn holds(self, actual: u64) -> bool {
        match self.op {
            Op::Eq => actual == self.value,
            Op::Ge => actual >= self.value,
            Op::Le => actual <= self.value,
            Op::Ne => actual != self.value,
        }
    }
}

impl Filter {
    /// Compiles `filter`; `at` names it in errors.
    pub fn compile(filter: &AccessLogFilter, at: &str) -> Result<Filter, String> {
        let specifier = filter
            .filter_specifier
            .as_ref()
            .ok_or_else(|| format!("{at}: no filter set"))?;
        Ok(match specifier {
            FilterSpecifier::StatusCodeFilter(f) => Filter::StatusCode(Comparison::compile(
                f.comparison.as_ref(),
                &format!("{at}.status_code_filter"),
            )?),
            FilterSpecifier::DurationFilter(f) => Filter::Duration(Comparison::compile(
                f.comparison.as_ref(),
                &format!("{at}.duration_filter"),
            )?),
            FilterSpecifier::NotHealthCheckFilter(_) => Filter::NotHealthCheck,
            FilterSpecifier::TraceableFilter(_) => Filter::Traceable,
            FilterSpecifier::RuntimeFilter(f) => {
                let (numerator, denominator) = match &f.percent_sampled {
                    Some(p) => (
                        u64::from(p.numerator),
                        match DenominatorType::try_from(p.denominator) {
                            Ok(DenominatorType::Hundred) => 100,
                            Ok(DenominatorType::TenThousand) => 10_000,
                            Ok(DenominatorType::Million) => 1_000_000,
                            Err(_) => {
                                return Err(format!(
                                    "{at}.runtime_filter.percent_sampled.denominator {} is unknown",
                                    p.denominator
                                ))
                            }
                        },
                    ),
                    // Envoy's default: 0%.
                    None => (0, 100),
                };
                Filter::Runtime {
                    numerator,
                    denominator,
                }
            }
            FilterSpecifier::AndFilter(f) => {
                Filter::And(Self::all(&f.filters, &format!("{at}.and_filter"))?)
            }
            FilterSpecifier::OrFilter(f) => {
                Filter::Or(Self::all(&f.filters, &format!("{at}.or_filter"))?)
            }
            FilterSpecifier::HeaderFilter(f) => {
                let at = format!("{at}.header_filter.header");
                let header = f
                    .header
                    .as_ref()
                    .ok_or_else(|| format!("{at} is required"))?;
                Filter::Header(Box::new(
                    HeaderMatch::compile(header, &at).map_err(|e| e.to_string())?,
                ))
            }
            FilterSpecifier::ResponseFlagFilter(f) => {
                let mut flags = ResponseFlags::default();
                for (i, name) in f.flags.iter().enumerate() {
                    flags |= ResponseFlags::from_short_name(name).ok_or_else(|| {
                        format!(
                            "{at}.response_flag_filter.flags[{i}]: {name:?} is not a response flag"
                        )
                    })?;
                }
                Filter::ResponseFlags(flags)
            }
            FilterSpecifier::GrpcStatusFilter(f) => Filter::GrpcStatus {
                statuses: f
                    .statuses
                    .iter()
                    .map(|s| {
                        u32::try_from(*s).ok().filter(|s| *s <= 16).ok_or_else(|| {
                            format!("{at}.grpc_status_filter: status {s} is unknown")
                        })
                    })
                    .collect::<Result<_, _>>()?,
                exclude: f.exclude,
            },
            FilterSpecifier::ExtensionFilter(_) => {
                return Err(format!("{at}: extension filters are not supported"))
            }
            FilterSpecifier::MetadataFilter(_) => {
                return Err(format!("{at}: metadata filters are not supported"))
            }
            FilterSpecifier::LogTypeFilter(_) => {
                return Err(format!("{at}: log type filters are not supported"))
            }
        })
    }

    fn all(filters: &[AccessLogFilter], at: &str) -> Result<Vec<Filter>, String> {
        filters
            .iter()
            .enumerate()
            .map(|(i, f)| Filter::compile(f, &format!("{at}.filters[{i}]")))
            .collect()
    }

    /// Whether the entry is written.
    pub fn admits(&self, entry: &Entry<'_>) -> bool {
        match self {
            Filter::StatusCode(c) => c.holds(u64::from(entry.status)),
            Filter::Duration(c) => c.holds(entry.duration.as_millis() as u64),
            Filter::NotHealthCheck => !entry.health_check,
            Filter::Traceable => false,
            Filter::Runtime {
                numerator,
                denominator,
            } => fastrand::u64(0..*denominator) < *numerator,
            Filter::And(all) => all.iter().all(|f| f.admits(entry)),
            Filter::Or(any) => any.iter().any(|f| f.admits(entry)),
            Filter::Header(m) => entry.request.as_ref().is_some_and(|r| m.matches(r)),
            Filter::ResponseFlags(flags) => {
                if flags.is_empty() {
                    !entry.flags.is_empty()
                } else {
                    entry.flags.intersects(*flags)
                }
            }
            Filter::GrpcStatus { statuses, exclude } => {
                let found = statuses.contains(&entry.grpc_status());
                found != *exclude
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use envoy_types::pb::envoy::config::accesslog::v3::{
        AndFilter, DurationFilter, GrpcStatusFilter, NotHealthCheckFilter, OrFilter,
        ResponseFlagFilter, RuntimeFilter, StatusCodeFilter, TraceableFilter,
    };
    use envoy_types::pb::envoy::config::core::v3::RuntimeUInt32;
    use envoy_types::pb::envoy::r#type::v3::FractionalPercent;

    use super::*;
    use crate::proxy::Downstream;

    fn filter(specifier: FilterSpecifier) -> AccessLogFilter {
        AccessLogFilter {
            filter_specifier: Some(specifier),
        }
    }

    fn comparison(op: Op, value: u32) -> Option<ComparisonFilter> {
        Some(ComparisonFilter {
            op: op as i32,
            value: Some(RuntimeUInt32 {
                default_value: value,
                runtime_key: "key".into(),
            }),
        })
    }

    fn admits(f: &AccessLogFilter, entry: &Entry<'_>) -> bool {
        Filter::compile(f, "filter").unwrap().admits(entry)
    }

    #[test]
    fn filters_admit_what_envoys_admit() {
        let headers = http::HeaderMap::new();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("14"));
        let downstream = Downstream {
            remote: "127.0.0.1:1".parse().unwrap(),
            peer: "127.0.0.1:1".parse().unwrap(),
            local: "127.0.0.1:2".parse().unwrap(),
            scheme: "http",
            client_certificate: None,
        };
        let mut entry = Entry {
            start: SystemTime::UNIX_EPOCH,
            duration: Duration::from_millis(250),
            request_duration: None,
            response_duration: None,
            protocol: Some(http::Version::HTTP_2),
            request: None,
            status: 200,
            response_headers: &headers,
            response_trailers: Some(&trailers),
            flags: ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED,
            bytes_received: 0,
            bytes_sent: 0,
            upstream_host: None,
            upstream_cluster: None,
            route_name: None,
            downstream: &downstream,
            health_check: false,
        };
        let status = |op, v| {
            filter(FilterSpecifier::StatusCodeFilter(StatusCodeFilter {
                comparison: comparison(op, v),
            }))
        };
        let duration = |op, v| {
            filter(FilterSpecifier::DurationFilter(DurationFilter {
                comparison: comparison(op, v),
            }))
        };
        assert!(admits(&status(Op::Eq, 200), &entry));
        assert!(!admits(&status(Op::Ne, 200), &entry));
        assert!(!admits(&status(Op::Ge, 400), &entry));
        assert!(admits(&duration(Op::Ge, 250), &entry));
        assert!(!admits(&duration(Op::Le, 249), &entry));
        let both = |a, b| {
            filter(FilterSpecifier::AndFilter(AndFilter {
                filters: vec![a, b],
            }))
        };
        let either = |a, b| {
            filter(FilterSpecifier::OrFilter(OrFilter {
                filters: vec![a, b],
            }))
        };
        assert!(!admits(
            &both(status(Op::Eq, 200), duration(Op::Ge, 300)),
            &entry
        ));
        assert!(admits(
            &either(status(Op::Eq, 500), duration(Op::Ge, 200)),
            &entry
        ));
        // No health checks and no tracing in gloo-proxy.
        let not_health_check = filter(FilterSpecifier::NotHealthCheckFilter(
            NotHealthCheckFilter {},
        ));
        assert!(admits(&not_health_check, &entry));
        entry.health_check = true;
        assert!(!admits(&not_health_check, &entry));
        entry.health_check = false;
        assert!(!admits(
            &filter(FilterSpecifier::TraceableFilter(TraceableFilter {})),
            &entry
        ));
        // Response flags: any of the listed ones, or any flag at all when none is listed.
        let flags = |names: &[&str]| {
            filter(FilterSpecifier::ResponseFlagFilter(ResponseFlagFilter {
                flags: names.iter().map(|n| n.to_string()).collect(),
            }))
        };
        assert!(admits(&flags(&["UH", "URX"]), &entry));
        assert!(!admits(&flags(&["UH"]), &entry));
        assert!(admits(&flags(&[]), &entry));
        assert!(Filter::compile(&flags(&["XX"]), "f").is_err());
        // gRPC status: the trailers' first, then the headers', then one from the HTTP status.
        let grpc = |statuses: Vec<i32>, exclude| {
            filter(FilterSpecifier::GrpcStatusFilter(GrpcStatusFilter {
                statuses,
                exclude,
            }))
        };
        assert!(admits(&grpc(vec![14], false), &entry));
        assert!(!admits(&grpc(vec![14], true), &entry));
        entry.response_trailers = None;
        entry.status = 404;
        assert!(
            admits(&grpc(vec![12], false), &entry),
            "404 is UNIMPLEMENTED"
        );
        // Sampling: 0% and 100%.
        let runtime = |numerator| {
            filter(FilterSpecifier::RuntimeFilter(RuntimeFilter {
                runtime_key: "sample".into(),
                percent_sampled: Some(FractionalPercent {
                    numerator,
                    denominator: 0,
                }),
                use_independent_randomness: true,
            }))
        };
        assert!((0..50).all(|_| !admits(&runtime(0), &entry)));
        assert!((0..50).all(|_| admits(&runtime(100), &entry)));
        // A header filter on a request that could not be read admits nothing.
        let header = filter(FilterSpecifier::HeaderFilter(
            envoy_types::pb::envoy::config::accesslog::v3::HeaderFilter {
                header: Some(envoy_types::pb::envoy::config::route::v3::HeaderMatcher {
                    name: "x-any".into(),
                    header_match_specifier: Some(
                        envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier::PresentMatch(false),
                    ),
                    invert_match: true,
                    ..Default::default()
                }),
            },
        ));
        assert!(!admits(&header, &entry));
        assert!(Filter::compile(&AccessLogFilter::default(), "f").is_err());
    }
}
