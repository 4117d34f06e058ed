//! Access logs: a Gateway's `options.accessLoggingService` as Envoy access logs on every HTTP
//! connection manager and TCP proxy of its listener, as Gloo's `als` plugin does
//! (`ProcessAccessLogPlugins`): a file sink becomes Envoy's file access log, a gRPC service
//! Envoy's HTTP gRPC access log, and the filter Envoy's access log filter of the same shape.
//!
//! What Envoy would refuse (a log without a destination, a file without a path, a gRPC service
//! without a cluster or log name, filters without their required fields) is refused here, naming
//! the field, and rejects the Gateway. OpenTelemetry sinks are not translated yet: the Gateway
//! is served without them, with a warning.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::accesslog::v3::{
    access_log, access_log_filter, comparison_filter, grpc_status_filter,
    AccessLog as EnvoyAccessLog, AccessLogFilter as EnvoyFilter, AndFilter as EnvoyAndFilter,
    ComparisonFilter as EnvoyComparison, DurationFilter as EnvoyDurationFilter,
    GrpcStatusFilter as EnvoyGrpcStatusFilter, HeaderFilter as EnvoyHeaderFilter,
    NotHealthCheckFilter as EnvoyNotHealthCheckFilter, OrFilter as EnvoyOrFilter,
    ResponseFlagFilter as EnvoyResponseFlagFilter, RuntimeFilter as EnvoyRuntimeFilter,
    StatusCodeFilter as EnvoyStatusCodeFilter, TraceableFilter as EnvoyTraceableFilter,
};
use envoy_types::pb::envoy::config::core::v3::{
    data_source, grpc_service, substitution_format_string, ApiVersion, DataSource,
    GrpcService as EnvoyGrpcService, RuntimeUInt32 as EnvoyRuntimeUInt32, SubstitutionFormatString,
    TypedExtensionConfig,
};
use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier as EnvoyHeaderMatchSpecifier,
    HeaderMatcher as EnvoyHeaderMatcher,
};
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{
    file_access_log, FileAccessLog,
};
use envoy_types::pb::envoy::extensions::access_loggers::grpc::v3::{
    CommonGrpcAccessLogConfig, HttpGrpcAccessLogConfig,
};
use envoy_types::pb::envoy::extensions::formatter::metadata::v3::Metadata as MetadataFormatter;
use envoy_types::pb::envoy::extensions::formatter::req_without_query::v3::ReqWithoutQuery;
use envoy_types::pb::envoy::r#type::matcher::v3::{
    regex_matcher, string_matcher::MatchPattern, RegexMatcher as EnvoyRegexMatcher, StringMatcher,
};
use envoy_types::pb::envoy::r#type::v3::{
    fractional_percent::DenominatorType as EnvoyDenominator,
    FractionalPercent as EnvoyFractionalPercent, Int64Range as EnvoyInt64Range,
};

use crate::model::access_log::{
    AccessLog, AccessLogFilter, ComparisonFilter, ComparisonOp, DenominatorType, FileSink,
    FileSinkFormat, FilterSpecifier, GrpcService, GrpcStatus, HeaderMatchSpecifier, HeaderMatcher,
    OutputDestination, RESPONSE_FLAGS,
};
use crate::model::gateway::GatewaySpec;
use crate::model::listener_options::ListenerOptions;
use crate::model::{ObjectMeta, ResourceRef};
use crate::resolve::FieldPath;
use crate::snapshot::ConfigSnapshot;
use crate::xds::pack;

/// Envoy's file access logger, what a `fileSink` becomes.
pub const FILE_ACCESS_LOG: &str = "envoy.access_loggers.file";
/// Envoy's HTTP gRPC access logger, what a `grpcService` becomes (on TCP proxies too, as in
/// Gloo).
pub const HTTP_GRPC_ACCESS_LOG: &str = "envoy.access_loggers.http_grpc";
/// The formatter extension of `%REQ_WITHOUT_QUERY(...)%`, which Gloo adds to every format.
const REQ_WITHOUT_QUERY_FORMATTER: &str = "envoy.formatter.req_without_query";
/// The formatter extension of `%METADATA(...)%`, which Gloo adds to every format.
const METADATA_FORMATTER: &str = "envoy.formatter.metadata";

/// Where a Gateway's access logging service is, for messages.
const PATH: &str = "spec.options.accessLoggingService";

// ----- validation ---------------------------------------------------------------------------

/// What Gloo (or Envoy) refuses in a Gateway's `options.accessLoggingService`, each problem
/// naming its field under `spec.options.accessLoggingService`.
pub(crate) fn problems(spec: &GatewaySpec) -> Vec<String> {
    let Some(service) = service(spec.options.as_ref()) else {
        return Vec::new();
    };
    let root = FieldPath::Root(PATH);
    let mut out = Vec::new();
    for (i, log) in service.access_log.iter().enumerate() {
        check_log(log, &FieldPath::FieldIndex(&root, "accessLog", i), &mut out);
    }
    out
}

fn service(
    options: Option<&ListenerOptions>,
) -> Option<&crate::model::access_log::AccessLoggingService> {
    options.and_then(|o| o.access_logging_service.as_ref())
}

fn check_log(log: &AccessLog, at: &FieldPath<'_>, out: &mut Vec<String>) {
    match log.output_destination() {
        Err(e) => out.push(format!("{at}: {e}")),
        Ok(None) => out.push(format!(
            "{at}: no destination: set one of fileSink, grpcService, openTelemetryService"
        )),
        Ok(Some(OutputDestination::FileSink(file))) => {
            check_file(file, &FieldPath::Field(at, "fileSink"), out)
        }
        Ok(Some(OutputDestination::GrpcService(grpc))) => {
            check_grpc(grpc, &FieldPath::Field(at, "grpcService"), out)
        }
        // Not translated; warned about as unapplied.
        Ok(Some(OutputDestination::OpenTelemetryService(_))) => {}
    }
    if let Some(filter) = &log.filter {
        check_filter(filter, &FieldPath::Field(at, "filter"), out);
    }
}

fn check_file(file: &FileSink, at: &FieldPath<'_>, out: &mut Vec<String>) {
    if file.path.is_empty() {
        out.push(format!(
            "{at}.path: required (the file the log is written to)"
        ));
    }
    if let Err(e) = file.output_format() {
        out.push(format!("{at}: {e}"));
    }
}

fn check_grpc(grpc: &GrpcService, at: &FieldPath<'_>, out: &mut Vec<String>) {
    if grpc
        .static_cluster_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        out.push(format!(
            "{at}.staticClusterName: required (the cluster of the access log service)"
        ));
    }
    if grpc.log_name.is_empty() {
        out.push(format!(
            "{at}.logName: required (the service receives it with every batch of entries)"
        ));
    }
}

fn check_filter(filter: &AccessLogFilter, at: &FieldPath<'_>, out: &mut Vec<String>) {
    let specifier = match filter.filter_specifier() {
        Err(e) => return out.push(format!("{at}: {e}")),
        Ok(None) => {
            return out.push(format!(
                "{at}: no filter: set one of {}",
                AccessLogFilter::MEMBERS.join(", ")
            ))
        }
        Ok(Some(specifier)) => specifier,
    };
    match specifier {
        FilterSpecifier::StatusCode(f) => check_comparison(
            f.comparison.as_ref(),
            &FieldPath::Field(&FieldPath::Field(at, "statusCodeFilter"), "comparison"),
            out,
        ),
        FilterSpecifier::Duration(f) => check_comparison(
            f.comparison.as_ref(),
            &FieldPath::Field(&FieldPath::Field(at, "durationFilter"), "comparison"),
            out,
        ),
        FilterSpecifier::NotHealthCheck(_) | FilterSpecifier::Traceable(_) => {}
        FilterSpecifier::Runtime(f) => {
            if f.runtime_key.is_empty() {
                out.push(format!(
                    "{at}.runtimeFilter.runtimeKey: required (the runtime key of the sampled percentage)"
                ));
            }
        }
        FilterSpecifier::And(f) => {
            check_filters(&f.filters, &FieldPath::Field(at, "andFilter"), out)
        }
        FilterSpecifier::Or(f) => check_filters(&f.filters, &FieldPath::Field(at, "orFilter"), out),
        FilterSpecifier::Header(f) => {
            let at = FieldPath::Field(&FieldPath::Field(at, "headerFilter"), "header");
            match &f.header {
                None => out.push(format!("{at}: required (the header condition)")),
                Some(header) => check_header(header, &at, out),
            }
        }
        FilterSpecifier::ResponseFlag(f) => {
            for (i, flag) in f.flags.iter().enumerate() {
                if !RESPONSE_FLAGS.contains(&flag.as_str()) {
                    out.push(format!(
                        "{at}.responseFlagFilter.flags[{i}]: {flag:?} is not a response flag (one of {})",
                        RESPONSE_FLAGS.join(", ")
                    ));
                }
            }
        }
        // Status names are checked when the Gateway is read.
        FilterSpecifier::GrpcStatus(_) => {}
    }
}

/// The filters of an `andFilter` or `orFilter` (at `at`): at least two, each valid.
fn check_filters(filters: &[AccessLogFilter], at: &FieldPath<'_>, out: &mut Vec<String>) {
    if filters.len() < 2 {
        out.push(format!(
            "{at}.filters: needs at least 2 filters, found {}",
            filters.len()
        ));
    }
    for (i, filter) in filters.iter().enumerate() {
        check_filter(filter, &FieldPath::FieldIndex(at, "filters", i), out);
    }
}

fn check_comparison(
    comparison: Option<&ComparisonFilter>,
    at: &FieldPath<'_>,
    out: &mut Vec<String>,
) {
    let Some(comparison) = comparison else {
        return out.push(format!("{at}: required"));
    };
    match &comparison.value {
        None => out.push(format!("{at}.value: required")),
        Some(value) if value.runtime_key.is_empty() => out.push(format!(
            "{at}.value.runtimeKey: required (the runtime key that may override defaultValue)"
        )),
        Some(_) => {}
    }
}

fn check_header(header: &HeaderMatcher, at: &FieldPath<'_>, out: &mut Vec<String>) {
    if header.name.is_empty() {
        out.push(format!("{at}.name: required"));
    } else if header.name.contains(['\0', '\r', '\n']) {
        out.push(format!("{at}.name: invalid header name {:?}", header.name));
    }
    match header.header_match_specifier() {
        Err(e) => out.push(format!("{at}: {e}")),
        Ok(Some(HeaderMatchSpecifier::SafeRegex(regex))) => {
            if regex.regex.is_empty() {
                out.push(format!("{at}.safeRegexMatch.regex: required"));
            } else if let Err(e) = crate::resolve::parse_regex(&regex.regex) {
                out.push(format!("{at}.safeRegexMatch.regex: {e}"));
            }
        }
        Ok(Some(HeaderMatchSpecifier::Prefix(""))) => {
            out.push(format!("{at}.prefixMatch: must not be empty"))
        }
        Ok(Some(HeaderMatchSpecifier::Suffix(""))) => {
            out.push(format!("{at}.suffixMatch: must not be empty"))
        }
        Ok(_) => {}
    }
}

/// The `(index, cluster)` of each gRPC sink of a Gateway's access logs that names a cluster.
fn grpc_clusters(spec: &GatewaySpec) -> impl Iterator<Item = (usize, &str)> {
    service(spec.options.as_ref())
        .into_iter()
        .flat_map(|service| service.access_log.iter().enumerate())
        .filter_map(|(i, log)| match log.output_destination() {
            Ok(Some(OutputDestination::GrpcService(grpc))) => grpc
                .static_cluster_name
                .as_deref()
                .filter(|name| !name.is_empty())
                .map(|name| (i, name)),
            _ => None,
        })
}

/// Whether `cluster` is the cluster of the Upstream with this metadata (`<name>_<namespace>`,
/// [`super::names::object_cluster_name`]), compared without writing the name out.
fn is_cluster_of(cluster: &str, metadata: &ObjectMeta) -> bool {
    cluster
        .strip_prefix(metadata.name.as_str())
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|namespace| namespace == metadata.namespace())
}

/// The Upstream whose cluster is `cluster`, if one is.
pub(crate) fn upstream_of_cluster<'a>(
    snapshot: &'a ConfigSnapshot,
    cluster: &str,
) -> Option<(
    &'a ResourceRef,
    &'a crate::model::Object<crate::model::upstream::UpstreamSpec>,
)> {
    snapshot
        .upstreams
        .iter()
        .find(|(_, entry)| is_cluster_of(cluster, &entry.object.metadata))
        .map(|(reference, entry)| (reference, entry.object.as_ref()))
}

/// Warnings about the clusters a Gateway's gRPC access logs name: one that is no Upstream's
/// (it must then come from Envoy's bootstrap, which gloo cannot see), and an Upstream's that is
/// not HTTP/2 (Envoy's gRPC client needs it).
pub(crate) fn cluster_warnings(snapshot: &ConfigSnapshot, spec: &GatewaySpec) -> Vec<String> {
    grpc_clusters(spec)
        .filter_map(|(i, cluster)| {
            let at = format!("{PATH}.accessLog[{i}].grpcService.staticClusterName");
            match upstream_of_cluster(snapshot, cluster) {
                None => Some(format!(
                    "{at}: no Upstream has the cluster {cluster:?} (an Upstream's cluster is `<name>_<namespace>`); unless Envoy's bootstrap defines it, Envoy drops these logs"
                )),
                Some((reference, upstream)) if upstream.spec.use_http2 != Some(true) => {
                    Some(format!(
                        "{at}: Upstream {reference} does not set useHttp2, and Envoy sends access logs to it over gRPC, which needs HTTP/2"
                    ))
                }
                Some(_) => None,
            }
        })
        .collect()
}

/// Adds the Upstreams whose clusters a listener's gRPC access logs send to (no route may
/// reference them, and only referenced Upstreams get clusters).
pub(crate) fn collect_upstreams(
    snapshot: &ConfigSnapshot,
    spec: &GatewaySpec,
    into: &mut BTreeSet<ResourceRef>,
) {
    for (_, cluster) in grpc_clusters(spec) {
        if let Some((reference, _)) = upstream_of_cluster(snapshot, cluster) {
            into.insert(reference.clone());
        }
    }
}

// ----- translation --------------------------------------------------------------------------

/// The Envoy access logs of a listener with these options, in order. An entry validation
/// refuses is left out (a Gateway never accepted is served as far as it can be, and Envoy would
/// refuse the whole listener for it), as are OpenTelemetry sinks.
pub(crate) fn access_logs(options: Option<&ListenerOptions>) -> Vec<EnvoyAccessLog> {
    let Some(service) = service(options) else {
        return Vec::new();
    };
    service.access_log.iter().filter_map(access_log).collect()
}

fn access_log(log: &AccessLog) -> Option<EnvoyAccessLog> {
    let mut problems = Vec::new();
    check_log(log, &FieldPath::Root(""), &mut problems);
    if !problems.is_empty() {
        return None;
    }
    let (name, config) = match log.output_destination().ok()?? {
        OutputDestination::FileSink(file) => (FILE_ACCESS_LOG, pack(&file_access_log(file))),
        OutputDestination::GrpcService(grpc) => {
            (HTTP_GRPC_ACCESS_LOG, pack(&grpc_access_log(grpc)))
        }
        OutputDestination::OpenTelemetryService(_) => return None,
    };
    Some(EnvoyAccessLog {
        name: name.to_string(),
        filter: log.filter.as_ref().and_then(filter),
        config_type: Some(access_log::ConfigType::TypedConfig(config)),
    })
}

/// Gloo's `copyFileSettings`: the path, and the format with Gloo's two formatter extensions
/// when one is set. An empty `stringFormat` is no format: Envoy's default.
fn file_access_log(file: &FileSink) -> FileAccessLog {
    use substitution_format_string::Format;
    let format = match file.output_format() {
        Ok(Some(FileSinkFormat::StringFormat(text))) if !text.is_empty() => {
            Some(Format::TextFormatSource(DataSource {
                specifier: Some(data_source::Specifier::InlineString(text.to_string())),
                ..Default::default()
            }))
        }
        Ok(Some(FileSinkFormat::JsonFormat(json))) => {
            Some(Format::JsonFormat(super::pb_struct(json)))
        }
        _ => None,
    };
    FileAccessLog {
        path: file.path.clone(),
        access_log_format: format.map(|format| {
            file_access_log::AccessLogFormat::LogFormat(SubstitutionFormatString {
                format: Some(format),
                formatters: vec![
                    TypedExtensionConfig {
                        name: REQ_WITHOUT_QUERY_FORMATTER.to_string(),
                        typed_config: Some(pack(&ReqWithoutQuery {})),
                    },
                    TypedExtensionConfig {
                        name: METADATA_FORMATTER.to_string(),
                        typed_config: Some(pack(&MetadataFormatter {})),
                    },
                ],
                ..Default::default()
            })
        }),
    }
}

/// Gloo's `copyGrpcSettings`.
fn grpc_access_log(grpc: &GrpcService) -> HttpGrpcAccessLogConfig {
    HttpGrpcAccessLogConfig {
        common_config: Some(CommonGrpcAccessLogConfig {
            log_name: grpc.log_name.clone(),
            grpc_service: Some(EnvoyGrpcService {
                target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                    grpc_service::EnvoyGrpc {
                        cluster_name: grpc.static_cluster_name.clone().unwrap_or_default(),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }),
            transport_api_version: ApiVersion::V3 as i32,
            filter_state_objects_to_log: grpc.filter_state_objects_to_log.clone(),
            ..Default::default()
        }),
        additional_request_headers_to_log: grpc.additional_request_headers_to_log.clone(),
        additional_response_headers_to_log: grpc.additional_response_headers_to_log.clone(),
        additional_response_trailers_to_log: grpc.additional_response_trailers_to_log.clone(),
    }
}

/// A Gloo access log filter as Envoy's (the same structure; Gloo copies it field for field).
fn filter(filter: &AccessLogFilter) -> Option<EnvoyFilter> {
    use access_log_filter::FilterSpecifier as F;
    let specifier = match filter.filter_specifier().ok()?? {
        FilterSpecifier::StatusCode(f) => F::StatusCodeFilter(EnvoyStatusCodeFilter {
            comparison: f.comparison.as_ref().map(comparison),
        }),
        FilterSpecifier::Duration(f) => F::DurationFilter(EnvoyDurationFilter {
            comparison: f.comparison.as_ref().map(comparison),
        }),
        FilterSpecifier::NotHealthCheck(_) => F::NotHealthCheckFilter(EnvoyNotHealthCheckFilter {}),
        FilterSpecifier::Traceable(_) => F::TraceableFilter(EnvoyTraceableFilter {}),
        FilterSpecifier::Runtime(f) => F::RuntimeFilter(EnvoyRuntimeFilter {
            runtime_key: f.runtime_key.clone(),
            percent_sampled: f.percent_sampled.as_ref().map(|p| EnvoyFractionalPercent {
                numerator: p.numerator.unwrap_or(0),
                denominator: match p.denominator.unwrap_or_default() {
                    DenominatorType::Hundred => EnvoyDenominator::Hundred,
                    DenominatorType::TenThousand => EnvoyDenominator::TenThousand,
                    DenominatorType::Million => EnvoyDenominator::Million,
                } as i32,
            }),
            use_independent_randomness: f.use_independent_randomness.unwrap_or(false),
        }),
        FilterSpecifier::And(f) => F::AndFilter(EnvoyAndFilter {
            filters: f.filters.iter().filter_map(self::filter).collect(),
        }),
        FilterSpecifier::Or(f) => F::OrFilter(EnvoyOrFilter {
            filters: f.filters.iter().filter_map(self::filter).collect(),
        }),
        FilterSpecifier::Header(f) => F::HeaderFilter(EnvoyHeaderFilter {
            header: f.header.as_ref().map(header_matcher),
        }),
        FilterSpecifier::ResponseFlag(f) => F::ResponseFlagFilter(EnvoyResponseFlagFilter {
            flags: f.flags.clone(),
        }),
        FilterSpecifier::GrpcStatus(f) => F::GrpcStatusFilter(EnvoyGrpcStatusFilter {
            statuses: f
                .statuses
                .iter()
                .map(|status| grpc_status(*status) as i32)
                .collect(),
            exclude: f.exclude.unwrap_or(false),
        }),
    };
    Some(EnvoyFilter {
        filter_specifier: Some(specifier),
    })
}

fn comparison(c: &ComparisonFilter) -> EnvoyComparison {
    use comparison_filter::Op;
    EnvoyComparison {
        op: match c.op.unwrap_or_default() {
            ComparisonOp::Eq => Op::Eq,
            ComparisonOp::Ge => Op::Ge,
            ComparisonOp::Le => Op::Le,
        } as i32,
        value: c.value.as_ref().map(|v| EnvoyRuntimeUInt32 {
            default_value: v.default_value.unwrap_or(0),
            runtime_key: v.runtime_key.clone(),
        }),
    }
}

/// An Envoy-style header matcher as Envoy's, its string matches written as a `string_match`
/// (the one-field matches Gloo's proto copies are deprecated in Envoy).
fn header_matcher(h: &HeaderMatcher) -> EnvoyHeaderMatcher {
    let string_match = |pattern: MatchPattern| {
        EnvoyHeaderMatchSpecifier::StringMatch(StringMatcher {
            match_pattern: Some(pattern),
            ignore_case: false,
        })
    };
    let specifier = match h.header_match_specifier() {
        Ok(Some(HeaderMatchSpecifier::Exact(v))) => {
            Some(string_match(MatchPattern::Exact(v.to_string())))
        }
        Ok(Some(HeaderMatchSpecifier::SafeRegex(r))) => {
            Some(string_match(MatchPattern::SafeRegex(EnvoyRegexMatcher {
                regex: r.regex.clone(),
                #[allow(deprecated)]
                engine_type: None::<regex_matcher::EngineType>,
            })))
        }
        Ok(Some(HeaderMatchSpecifier::Range(r))) => {
            Some(EnvoyHeaderMatchSpecifier::RangeMatch(EnvoyInt64Range {
                start: r.start.unwrap_or(0),
                end: r.end.unwrap_or(0),
            }))
        }
        Ok(Some(HeaderMatchSpecifier::Present(v))) => {
            Some(EnvoyHeaderMatchSpecifier::PresentMatch(v))
        }
        Ok(Some(HeaderMatchSpecifier::Prefix(v))) => {
            Some(string_match(MatchPattern::Prefix(v.to_string())))
        }
        Ok(Some(HeaderMatchSpecifier::Suffix(v))) => {
            Some(string_match(MatchPattern::Suffix(v.to_string())))
        }
        // No match: the header must be present. (Validation refuses several.)
        Ok(None) | Err(_) => None,
    };
    EnvoyHeaderMatcher {
        name: h.name.clone(),
        invert_match: h.invert_match.unwrap_or(false),
        header_match_specifier: specifier,
        ..Default::default()
    }
}

fn grpc_status(status: GrpcStatus) -> grpc_status_filter::Status {
    use grpc_status_filter::Status as S;
    match status {
        GrpcStatus::Ok => S::Ok,
        GrpcStatus::Canceled => S::Canceled,
        GrpcStatus::Unknown => S::Unknown,
        GrpcStatus::InvalidArgument => S::InvalidArgument,
        GrpcStatus::DeadlineExceeded => S::DeadlineExceeded,
        GrpcStatus::NotFound => S::NotFound,
        GrpcStatus::AlreadyExists => S::AlreadyExists,
        GrpcStatus::PermissionDenied => S::PermissionDenied,
        GrpcStatus::ResourceExhausted => S::ResourceExhausted,
        GrpcStatus::FailedPrecondition => S::FailedPrecondition,
        GrpcStatus::Aborted => S::Aborted,
        GrpcStatus::OutOfRange => S::OutOfRange,
        GrpcStatus::Unimplemented => S::Unimplemented,
        GrpcStatus::Internal => S::Internal,
        GrpcStatus::Unavailable => S::Unavailable,
        GrpcStatus::DataLoss => S::DataLoss,
        GrpcStatus::Unauthenticated => S::Unauthenticated,
    }
}
