//! Access logging: Gloo's `options/als/als.proto` (`als.options.gloo.solo.io`), set on a Gateway
//! as `options.accessLoggingService`.
//!
//! Each entry of `accessLog` writes one log: to a file (`fileSink`, with Envoy's default format,
//! a text format or a JSON format) or to a gRPC access log service (`grpcService`), optionally
//! only for the requests (or connections) its `filter` selects. gloo translates them into
//! Envoy access logs on every HTTP connection manager and TCP proxy of the Gateway's listener,
//! as Gloo's `als` plugin does; OpenTelemetry sinks (`openTelemetryService`) are carried but
//! not translated yet.
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::access_log::{FileSinkFormat, FilterSpecifier, OutputDestination};
//! use gloo_core::model::Resource;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gateway.solo.io/v1
//! kind: Gateway
//! metadata:
//!   name: gateway-proxy
//!   namespace: gloo-system
//! spec:
//!   bindAddress: '::'
//!   bindPort: 8080
//!   httpGateway: {}
//!   options:
//!     accessLoggingService:
//!       accessLog:
//!       - fileSink:
//!           path: /dev/stdout
//!           jsonFormat:
//!             protocol: '%PROTOCOL%'
//!             duration: '%DURATION%'
//!         filter:
//!           statusCodeFilter:
//!             comparison:
//!               op: GE
//!               value: {defaultValue: 400, runtimeKey: access_log.min_status}
//!       - grpcService:
//!           logName: edge
//!           staticClusterName: access_log_cluster
//! "#;
//! let parsed = parse_str(yaml, "gateway.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::Gateway(gateway) = &parsed.resources[0].resource else {
//!     panic!("expected a Gateway");
//! };
//! let logs = &gateway
//!     .spec
//!     .options
//!     .as_ref()
//!     .and_then(|o| o.access_logging_service.as_ref())
//!     .ok_or("no accessLoggingService")?
//!     .access_log;
//! assert_eq!(logs.len(), 2);
//!
//! let Some(OutputDestination::FileSink(file)) = logs[0].output_destination()? else {
//!     panic!("expected a file sink");
//! };
//! assert_eq!(file.path, "/dev/stdout");
//! let Some(FileSinkFormat::JsonFormat(json)) = file.output_format()? else {
//!     panic!("expected a JSON format");
//! };
//! assert_eq!(json["protocol"], "%PROTOCOL%");
//! let filter = logs[0].filter.as_ref().ok_or("no filter")?;
//! let Some(FilterSpecifier::StatusCode(status)) = filter.filter_specifier()? else {
//!     panic!("expected a status code filter");
//! };
//! let value = status.comparison.as_ref().and_then(|c| c.value.as_ref()).ok_or("no value")?;
//! assert_eq!(value.default_value, Some(400));
//!
//! let Some(OutputDestination::GrpcService(grpc)) = logs[1].output_destination()? else {
//!     panic!("expected a gRPC service");
//! };
//! assert_eq!(grpc.static_cluster_name.as_deref(), Some("access_log_cluster"));
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

use crate::model::cluster::Int64Range;
use crate::model::routing::{OneofError, RegexMatcher};

/// The response flags a [`ResponseFlagFilter`] may name: the list Gloo's proto allows (Envoy's
/// short names, as `%RESPONSE_FLAGS%` logs them).
pub const RESPONSE_FLAGS: &[&str] = &[
    "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC",
    "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM",
];

/// The access logs of a listener (`als.options.gloo.solo.io.AccessLoggingService`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLoggingService {
    /// The logs, each written independently of the others.
    #[serde(alias = "access_log", default, skip_serializing_if = "Vec::is_empty")]
    pub access_log: Vec<AccessLog>,
}

impl AccessLoggingService {
    /// The entries gloo does not apply yet, as `accessLog[N].<field>` paths: OpenTelemetry
    /// sinks. The listener is served without them.
    pub fn unapplied(&self) -> Vec<String> {
        self.access_log
            .iter()
            .enumerate()
            .filter(|(_, log)| {
                matches!(
                    log.output_destination(),
                    Ok(Some(OutputDestination::OpenTelemetryService(_)))
                )
            })
            .map(|(i, _)| format!("accessLog[{i}].openTelemetryService"))
            .collect()
    }
}

/// One access log: where it is written and which requests it logs
/// (`als.options.gloo.solo.io.AccessLog`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLog {
    /// `OutputDestination` oneof: write to a file.
    #[serde(alias = "file_sink", default, skip_serializing_if = "Option::is_none")]
    pub file_sink: Option<FileSink>,
    /// `OutputDestination` oneof: send to a gRPC access log service.
    #[serde(
        alias = "grpc_service",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub grpc_service: Option<GrpcService>,
    /// `OutputDestination` oneof: send to an OpenTelemetry collector. Accepted and carried;
    /// not translated yet (the Gateway is served without it, with a warning).
    #[serde(
        alias = "open_telemetry_service",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub open_telemetry_service: Option<serde_json::Value>,
    /// Log only what this filter selects (everything when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<AccessLogFilter>,
}

/// The member of [`AccessLog`]'s `OutputDestination` oneof that is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutputDestination<'a> {
    /// `fileSink`.
    FileSink(&'a FileSink),
    /// `grpcService`.
    GrpcService(&'a GrpcService),
    /// `openTelemetryService`.
    OpenTelemetryService(&'a serde_json::Value),
}

impl AccessLog {
    /// Where this log is written, or an error if more than one destination is set.
    pub fn output_destination(&self) -> Result<Option<OutputDestination<'_>>, OneofError> {
        OneofError::check(
            "OutputDestination",
            &[
                ("fileSink", self.file_sink.is_some()),
                ("grpcService", self.grpc_service.is_some()),
                (
                    "openTelemetryService",
                    self.open_telemetry_service.is_some(),
                ),
            ],
        )?;
        Ok(if let Some(f) = &self.file_sink {
            Some(OutputDestination::FileSink(f))
        } else if let Some(g) = &self.grpc_service {
            Some(OutputDestination::GrpcService(g))
        } else {
            self.open_telemetry_service
                .as_ref()
                .map(OutputDestination::OpenTelemetryService)
        })
    }
}

/// A log written to a file (`als.options.gloo.solo.io.FileSink`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileSink {
    /// The file Envoy writes to, on the proxy's file system (`/dev/stdout` for its output).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// `output_format` oneof: a text format of Envoy command operators (`%START_TIME%` ...).
    /// Empty means Envoy's default format.
    #[serde(
        alias = "string_format",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub string_format: Option<String>,
    /// `output_format` oneof: one JSON object per entry, shaped like this object (values are
    /// command operators; nested objects are allowed).
    #[serde(
        alias = "json_format",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub json_format: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The member of [`FileSink`]'s `output_format` oneof that is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FileSinkFormat<'a> {
    /// `stringFormat`.
    StringFormat(&'a str),
    /// `jsonFormat`.
    JsonFormat(&'a serde_json::Map<String, serde_json::Value>),
}

impl FileSink {
    /// The format of the log's lines, or an error if both formats are set.
    pub fn output_format(&self) -> Result<Option<FileSinkFormat<'_>>, OneofError> {
        OneofError::check(
            "output_format",
            &[
                ("stringFormat", self.string_format.is_some()),
                ("jsonFormat", self.json_format.is_some()),
            ],
        )?;
        Ok(if let Some(s) = &self.string_format {
            Some(FileSinkFormat::StringFormat(s))
        } else {
            self.json_format.as_ref().map(FileSinkFormat::JsonFormat)
        })
    }
}

/// A log sent to a gRPC access log service (`als.options.gloo.solo.io.GrpcService`), Envoy's
/// `envoy.service.accesslog.v3.AccessLogService`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcService {
    /// The log's name, which the service receives with every batch (required).
    #[serde(alias = "log_name", default, skip_serializing_if = "String::is_empty")]
    pub log_name: String,
    /// `service_ref` oneof: the Envoy cluster of the service (required): an Upstream's cluster
    /// (`<name>_<namespace>`) or one from Envoy's bootstrap.
    #[serde(
        alias = "static_cluster_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub static_cluster_name: Option<String>,
    /// Request headers logged besides the ones Envoy always logs.
    #[serde(
        alias = "additional_request_headers_to_log",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub additional_request_headers_to_log: Vec<String>,
    /// Response headers logged besides the ones Envoy always logs.
    #[serde(
        alias = "additional_response_headers_to_log",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub additional_response_headers_to_log: Vec<String>,
    /// Response trailers logged besides the ones Envoy always logs.
    #[serde(
        alias = "additional_response_trailers_to_log",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub additional_response_trailers_to_log: Vec<String>,
    /// Filter state objects to log, by key.
    #[serde(
        alias = "filter_state_objects_to_log",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub filter_state_objects_to_log: Vec<String>,
}

/// Which requests (or connections) an access log records (`als.options.gloo.solo.io.AccessLogFilter`):
/// exactly one of its members, which may combine others (`andFilter`, `orFilter`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLogFilter {
    /// `filter_specifier` oneof: by response status code.
    #[serde(
        alias = "status_code_filter",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub status_code_filter: Option<StatusCodeFilter>,
    /// `filter_specifier` oneof: by total duration.
    #[serde(
        alias = "duration_filter",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub duration_filter: Option<DurationFilter>,
    /// `filter_specifier` oneof: everything but health checks.
    #[serde(
        alias = "not_health_check_filter",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_health_check_filter: Option<NotHealthCheckFilter>,
    /// `filter_specifier` oneof: requests selected for tracing.
    #[serde(
        alias = "traceable_filter",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub traceable_filter: Option<TraceableFilter>,
    /// `filter_specifier` oneof: a runtime-controlled random sample.
    #[serde(
        alias = "runtime_filter",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub runtime_filter: Option<RuntimeFilter>,
    /// `filter_specifier` oneof: what all of its filters select.
    #[serde(alias = "and_filter", default, skip_serializing_if = "Option::is_none")]
    pub and_filter: Option<AndFilter>,
    /// `filter_specifier` oneof: what any of its filters selects.
    #[serde(alias = "or_filter", default, skip_serializing_if = "Option::is_none")]
    pub or_filter: Option<OrFilter>,
    /// `filter_specifier` oneof: by a request header.
    #[serde(
        alias = "header_filter",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub header_filter: Option<HeaderFilter>,
    /// `filter_specifier` oneof: by Envoy response flags.
    #[serde(
        alias = "response_flag_filter",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub response_flag_filter: Option<ResponseFlagFilter>,
    /// `filter_specifier` oneof: by gRPC status.
    #[serde(
        alias = "grpc_status_filter",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub grpc_status_filter: Option<GrpcStatusFilter>,
}

/// The member of [`AccessLogFilter`]'s `filter_specifier` oneof that is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FilterSpecifier<'a> {
    /// `statusCodeFilter`.
    StatusCode(&'a StatusCodeFilter),
    /// `durationFilter`.
    Duration(&'a DurationFilter),
    /// `notHealthCheckFilter`.
    NotHealthCheck(&'a NotHealthCheckFilter),
    /// `traceableFilter`.
    Traceable(&'a TraceableFilter),
    /// `runtimeFilter`.
    Runtime(&'a RuntimeFilter),
    /// `andFilter`.
    And(&'a AndFilter),
    /// `orFilter`.
    Or(&'a OrFilter),
    /// `headerFilter`.
    Header(&'a HeaderFilter),
    /// `responseFlagFilter`.
    ResponseFlag(&'a ResponseFlagFilter),
    /// `grpcStatusFilter`.
    GrpcStatus(&'a GrpcStatusFilter),
}

impl AccessLogFilter {
    /// The JSON names of the `filter_specifier` members, in proto order.
    pub const MEMBERS: &'static [&'static str] = &[
        "statusCodeFilter",
        "durationFilter",
        "notHealthCheckFilter",
        "traceableFilter",
        "runtimeFilter",
        "andFilter",
        "orFilter",
        "headerFilter",
        "responseFlagFilter",
        "grpcStatusFilter",
    ];

    /// The filter that is set, or an error if more than one is.
    pub fn filter_specifier(&self) -> Result<Option<FilterSpecifier<'_>>, OneofError> {
        OneofError::check(
            "filter_specifier",
            &[
                ("statusCodeFilter", self.status_code_filter.is_some()),
                ("durationFilter", self.duration_filter.is_some()),
                (
                    "notHealthCheckFilter",
                    self.not_health_check_filter.is_some(),
                ),
                ("traceableFilter", self.traceable_filter.is_some()),
                ("runtimeFilter", self.runtime_filter.is_some()),
                ("andFilter", self.and_filter.is_some()),
                ("orFilter", self.or_filter.is_some()),
                ("headerFilter", self.header_filter.is_some()),
                ("responseFlagFilter", self.response_flag_filter.is_some()),
                ("grpcStatusFilter", self.grpc_status_filter.is_some()),
            ],
        )?;
        Ok(if let Some(f) = &self.status_code_filter {
            Some(FilterSpecifier::StatusCode(f))
        } else if let Some(f) = &self.duration_filter {
            Some(FilterSpecifier::Duration(f))
        } else if let Some(f) = &self.not_health_check_filter {
            Some(FilterSpecifier::NotHealthCheck(f))
        } else if let Some(f) = &self.traceable_filter {
            Some(FilterSpecifier::Traceable(f))
        } else if let Some(f) = &self.runtime_filter {
            Some(FilterSpecifier::Runtime(f))
        } else if let Some(f) = &self.and_filter {
            Some(FilterSpecifier::And(f))
        } else if let Some(f) = &self.or_filter {
            Some(FilterSpecifier::Or(f))
        } else if let Some(f) = &self.header_filter {
            Some(FilterSpecifier::Header(f))
        } else if let Some(f) = &self.response_flag_filter {
            Some(FilterSpecifier::ResponseFlag(f))
        } else {
            self.grpc_status_filter
                .as_ref()
                .map(FilterSpecifier::GrpcStatus)
        })
    }
}

/// Compares a number with a runtime value (`als.options.gloo.solo.io.ComparisonFilter`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComparisonFilter {
    /// The comparison (`EQ` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<ComparisonOp>,
    /// What the number is compared with (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<RuntimeUInt32>,
}

/// A comparison (`ComparisonFilter.Op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ComparisonOp {
    /// Equal.
    #[default]
    Eq,
    /// Greater than or equal.
    Ge,
    /// Less than or equal.
    Le,
}

/// A number Envoy's runtime can override (`solo.io.envoy.config.core.v3.RuntimeUInt32`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeUInt32 {
    /// The value when the runtime has none for the key.
    #[serde(
        alias = "default_value",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_value: Option<u32>,
    /// The runtime key that overrides the value (required).
    #[serde(
        alias = "runtime_key",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub runtime_key: String,
}

/// Logs by response status code (`als.options.gloo.solo.io.StatusCodeFilter`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusCodeFilter {
    /// How the status code is compared (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<ComparisonFilter>,
}

/// Logs by total request duration in milliseconds (`als.options.gloo.solo.io.DurationFilter`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DurationFilter {
    /// How the duration is compared (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<ComparisonFilter>,
}

/// Logs everything but health check requests (`als.options.gloo.solo.io.NotHealthCheckFilter`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotHealthCheckFilter {}

/// Logs requests selected for tracing (`als.options.gloo.solo.io.TraceableFilter`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TraceableFilter {}

/// Logs a random sample whose size the runtime controls (`als.options.gloo.solo.io.RuntimeFilter`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeFilter {
    /// The runtime key of the sampled percentage (required).
    #[serde(
        alias = "runtime_key",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub runtime_key: String,
    /// The sampled percentage when the runtime has none for the key.
    #[serde(
        alias = "percent_sampled",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub percent_sampled: Option<FractionalPercent>,
    /// Draw a random number per request instead of using the request id.
    #[serde(
        alias = "use_independent_randomness",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub use_independent_randomness: Option<bool>,
}

/// A fraction `numerator / denominator` (`solo.io.envoy.type.v3.FractionalPercent`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FractionalPercent {
    /// The numerator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerator: Option<u32>,
    /// The denominator (`HUNDRED` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<DenominatorType>,
}

/// The denominator of a [`FractionalPercent`] (`FractionalPercent.DenominatorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DenominatorType {
    /// 100.
    #[default]
    Hundred,
    /// 10,000.
    TenThousand,
    /// 1,000,000.
    Million,
}

/// Logs what all of its filters select (`als.options.gloo.solo.io.AndFilter`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AndFilter {
    /// The filters (at least two).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<AccessLogFilter>,
}

/// Logs what any of its filters selects (`als.options.gloo.solo.io.OrFilter`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrFilter {
    /// The filters (at least two).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<AccessLogFilter>,
}

/// Logs requests whose headers match (`als.options.gloo.solo.io.HeaderFilter`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderFilter {
    /// The header condition (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderMatcher>,
}

/// A request header condition in Envoy's form (`solo.io.envoy.config.route.v3.HeaderMatcher`),
/// with at most one of its `header_match_specifier` members; with none, the header must be
/// present.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderMatcher {
    /// The header's name (required).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `header_match_specifier` oneof: the value equals this.
    #[serde(
        alias = "exact_match",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exact_match: Option<String>,
    /// `header_match_specifier` oneof: the whole value matches this RE2 regex.
    #[serde(
        alias = "safe_regex_match",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub safe_regex_match: Option<RegexMatcher>,
    /// `header_match_specifier` oneof: the value is an integer in this range.
    #[serde(
        alias = "range_match",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub range_match: Option<Int64Range>,
    /// `header_match_specifier` oneof: the header is present (or, false, absent).
    #[serde(
        alias = "present_match",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub present_match: Option<bool>,
    /// `header_match_specifier` oneof: the value starts with this (not empty).
    #[serde(
        alias = "prefix_match",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub prefix_match: Option<String>,
    /// `header_match_specifier` oneof: the value ends with this (not empty).
    #[serde(
        alias = "suffix_match",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub suffix_match: Option<String>,
    /// Invert the result of the match.
    #[serde(
        alias = "invert_match",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub invert_match: Option<bool>,
}

/// The member of [`HeaderMatcher`]'s `header_match_specifier` oneof that is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HeaderMatchSpecifier<'a> {
    /// `exactMatch`.
    Exact(&'a str),
    /// `safeRegexMatch`.
    SafeRegex(&'a RegexMatcher),
    /// `rangeMatch`.
    Range(&'a Int64Range),
    /// `presentMatch`.
    Present(bool),
    /// `prefixMatch`.
    Prefix(&'a str),
    /// `suffixMatch`.
    Suffix(&'a str),
}

impl HeaderMatcher {
    /// The kind of match that is set, or an error if more than one is.
    pub fn header_match_specifier(&self) -> Result<Option<HeaderMatchSpecifier<'_>>, OneofError> {
        OneofError::check(
            "header_match_specifier",
            &[
                ("exactMatch", self.exact_match.is_some()),
                ("safeRegexMatch", self.safe_regex_match.is_some()),
                ("rangeMatch", self.range_match.is_some()),
                ("presentMatch", self.present_match.is_some()),
                ("prefixMatch", self.prefix_match.is_some()),
                ("suffixMatch", self.suffix_match.is_some()),
            ],
        )?;
        Ok(if let Some(v) = &self.exact_match {
            Some(HeaderMatchSpecifier::Exact(v))
        } else if let Some(v) = &self.safe_regex_match {
            Some(HeaderMatchSpecifier::SafeRegex(v))
        } else if let Some(v) = &self.range_match {
            Some(HeaderMatchSpecifier::Range(v))
        } else if let Some(v) = self.present_match {
            Some(HeaderMatchSpecifier::Present(v))
        } else if let Some(v) = &self.prefix_match {
            Some(HeaderMatchSpecifier::Prefix(v))
        } else {
            self.suffix_match
                .as_deref()
                .map(HeaderMatchSpecifier::Suffix)
        })
    }
}

/// Logs requests with any of the given Envoy response flags, or with any flag when none are
/// given (`als.options.gloo.solo.io.ResponseFlagFilter`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponseFlagFilter {
    /// The flags, each one of [`RESPONSE_FLAGS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// Logs gRPC requests by their status (`als.options.gloo.solo.io.GrpcStatusFilter`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcStatusFilter {
    /// The statuses to log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<GrpcStatus>,
    /// Log every status but these instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<bool>,
}

/// A gRPC status (`GrpcStatusFilter.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GrpcStatus {
    /// 0.
    #[default]
    Ok,
    /// 1.
    Canceled,
    /// 2.
    Unknown,
    /// 3.
    InvalidArgument,
    /// 4.
    DeadlineExceeded,
    /// 5.
    NotFound,
    /// 6.
    AlreadyExists,
    /// 7.
    PermissionDenied,
    /// 8.
    ResourceExhausted,
    /// 9.
    FailedPrecondition,
    /// 10.
    Aborted,
    /// 11.
    OutOfRange,
    /// 12.
    Unimplemented,
    /// 13.
    Internal,
    /// 14.
    Unavailable,
    /// 15.
    DataLoss,
    /// 16.
    Unauthenticated,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<S: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(s: &S) {
        let json = serde_json::to_string(s).unwrap();
        let back: S = serde_json::from_str(&json).unwrap();
        assert_eq!(s, &back);
    }

    #[test]
    fn parses_every_filter_and_round_trips() {
        let service: AccessLoggingService = serde_yaml_ng::from_str(
            r#"
accessLog:
- grpcService:
    logName: edge
    staticClusterName: als
    additionalRequestHeadersToLog: [x-user]
    filterStateObjectsToLog: [envoy.tcp_proxy.cluster]
  filter:
    orFilter:
      filters:
      - durationFilter: {comparison: {op: LE, value: {defaultValue: 10, runtimeKey: k}}}
      - notHealthCheckFilter: {}
      - traceableFilter: {}
      - runtimeFilter:
          runtimeKey: sample
          percentSampled: {numerator: 5, denominator: TEN_THOUSAND}
          useIndependentRandomness: true
      - andFilter:
          filters:
          - headerFilter: {header: {name: x-debug, safeRegexMatch: {regex: 'on|yes'}}}
          - responseFlagFilter: {flags: [UH, NR]}
          - grpcStatusFilter: {statuses: [CANCELED, DEADLINE_EXCEEDED], exclude: true}
"#,
        )
        .unwrap();
        let log = &service.access_log[0];
        let Ok(Some(FilterSpecifier::Or(or))) = log.filter.as_ref().unwrap().filter_specifier()
        else {
            panic!("expected an or filter");
        };
        assert_eq!(or.filters.len(), 5);
        let Ok(Some(FilterSpecifier::Runtime(runtime))) = or.filters[3].filter_specifier() else {
            panic!("expected a runtime filter");
        };
        assert_eq!(
            runtime.percent_sampled.as_ref().unwrap().denominator,
            Some(DenominatorType::TenThousand)
        );
        let Ok(Some(FilterSpecifier::And(and))) = or.filters[4].filter_specifier() else {
            panic!("expected an and filter");
        };
        let Ok(Some(FilterSpecifier::GrpcStatus(grpc))) = and.filters[2].filter_specifier() else {
            panic!("expected a gRPC status filter");
        };
        assert_eq!(
            grpc.statuses,
            [GrpcStatus::Canceled, GrpcStatus::DeadlineExceeded]
        );
        round_trip(&service);
    }

    #[test]
    fn oneofs_report_what_is_set() {
        let log: AccessLog =
            serde_yaml_ng::from_str("fileSink: {path: /a}\ngrpcService: {logName: x}").unwrap();
        assert_eq!(
            log.output_destination().unwrap_err().to_string(),
            "only one of fileSink, grpcService may be set, found both (oneof `OutputDestination`)"
        );
        let filter: AccessLogFilter =
            serde_yaml_ng::from_str("traceableFilter: {}\nnotHealthCheckFilter: {}").unwrap();
        assert_eq!(
            filter.filter_specifier().unwrap_err().set,
            ["notHealthCheckFilter", "traceableFilter"]
        );
        let header: HeaderMatcher =
            serde_yaml_ng::from_str("name: a\nexactMatch: b\nprefixMatch: c").unwrap();
        assert!(header.header_match_specifier().is_err());
    }

    #[test]
    fn only_open_telemetry_sinks_are_unapplied() {
        let service: AccessLoggingService = serde_yaml_ng::from_str(
            "accessLog:\n- fileSink: {path: /a}\n- openTelemetryService: {logName: otel}\n- fileSink: {path: /b}\n  openTelemetryService: {}\n",
        )
        .unwrap();
        assert_eq!(service.unapplied(), ["accessLog[1].openTelemetryService"]);
    }

    #[test]
    fn unknown_names_are_rejected() {
        let err = serde_yaml_ng::from_str::<GrpcStatusFilter>("statuses: [CANCELLED]").unwrap_err();
        assert!(err.to_string().contains("CANCELLED"), "{err}");
        let err = serde_yaml_ng::from_str::<FileSink>("path: /a\nformat: x").unwrap_err();
        assert!(err.to_string().contains("format"), "{err}");
    }
}
