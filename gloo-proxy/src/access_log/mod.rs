//! Access logs as Envoy writes them: the connection manager's `access_log` list, each a file
//! (`envoy.access_loggers.file`) written in a [format](format::Format) or a gRPC access log
//! service (`envoy.access_loggers.http_grpc`) reached through a cluster, behind an optional
//! filter (Envoy's `AccessLogFilter`: status code, duration, header, response flags, gRPC
//! status, sampling, and their combinations).
//!
//! A request is written when its answer has been sent in full (or the client went away), so
//! the entry has the bytes sent and the whole duration, as Envoy's does.
//!
//! ```
//! use envoy_types::pb::envoy::config::accesslog::v3::{access_log, AccessLog};
//! use envoy_types::pb::envoy::extensions::access_loggers::file::v3::FileAccessLog;
//! use gloo_proxy::access_log::AccessLogs;
//! use prost::Message;
//!
//! let path = std::env::temp_dir().join(format!("gloo-doc-{}.log", std::process::id()));
//! let file = FileAccessLog {
//!     path: path.display().to_string(),
//!     ..Default::default()
//! };
//! let log = AccessLog {
//!     name: "envoy.access_loggers.file".into(),
//!     config_type: Some(access_log::ConfigType::TypedConfig(
//!         envoy_types::pb::google::protobuf::Any {
//!             type_url: "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog".into(),
//!             value: file.encode_to_vec(),
//!         },
//!     )),
//!     ..Default::default()
//! };
//! let logs = AccessLogs::compile(&[log], &Default::default()).unwrap();
//! assert_eq!(logs.map(|l| l.len()), Some(1));
//! # let _ = std::fs::remove_file(path);
//! ```

mod filter;
pub mod format;
mod grpc;
mod sink;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use envoy_types::pb::envoy::config::accesslog::v3::{access_log, AccessLog as EnvoyAccessLog};
use envoy_types::pb::envoy::config::core::v3::{data_source, substitution_format_string};
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{
    file_access_log::AccessLogFormat, FileAccessLog,
};
use envoy_types::pb::envoy::extensions::access_loggers::grpc::v3::HttpGrpcAccessLogConfig;
use http::{HeaderMap, Method, Response, Version};
use http_body::{Body as _, Frame};
use prost::Message;

use crate::body::{Body, BoxError};
use crate::proxy::Downstream;
use crate::router::matcher::RequestView;
use filter::Filter;
use format::Format;
use sink::FileSink;

const FILE_TYPE: &str = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";
const GRPC_TYPE: &str =
    "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig";

/// The access logs of one connection manager.
#[derive(Debug, Default)]
pub struct AccessLogs(Vec<AccessLog>);

/// One access log: where, how, and which requests.
#[derive(Debug)]
struct AccessLog {
    filter: Option<Filter>,
    sink: Sink,
}

#[derive(Debug)]
enum Sink {
    File { format: Format, file: Arc<FileSink> },
    Grpc(grpc::GrpcSink),
}

impl AccessLogs {
    /// Compiles a connection manager's `access_log` list; `None` when it is empty. Files are
    /// opened (created, appended to) now, so one that cannot be is an error; several logs to
    /// one path share it. gRPC logs reach their cluster through `upstreams`.
    pub fn compile(
        logs: &[EnvoyAccessLog],
        upstreams: &crate::filter::Upstreams,
    ) -> Result<Option<Arc<AccessLogs>>, String> {
        let mut compiled = Vec::with_capacity(logs.len());
        for (i, log) in logs.iter().enumerate() {
            let at = format!("access_log[{i}]");
            let any = match &log.config_type {
                Some(access_log::ConfigType::TypedConfig(any)) => any,
                None => return Err(format!("{at} ({:?}): no typed_config", log.name)),
            };
            let filter = log
                .filter
                .as_ref()
                .map(|f| Filter::compile(f, &format!("{at}.filter")))
                .transpose()?;
            let sink = match any.type_url.as_str() {
                FILE_TYPE => {
                    let file = FileAccessLog::decode(any.value.as_slice())
                        .map_err(|e| format!("{at}: invalid FileAccessLog: {e}"))?;
                    if file.path.is_empty() {
                        return Err(format!("{at}: path is empty"));
                    }
                    let format = file_format(&file).map_err(|e| format!("{at}: {e}"))?;
                    let file = FileSink::open(&file.path).map_err(|e| format!("{at}: {e}"))?;
                    Sink::File { format, file }
                }
                GRPC_TYPE => {
                    let config = HttpGrpcAccessLogConfig::decode(any.value.as_slice())
                        .map_err(|e| format!("{at}: invalid HttpGrpcAccessLogConfig: {e}"))?;
                    Sink::Grpc(
                        grpc::GrpcSink::new(&config, upstreams).map_err(|e| format!("{at}: {e}"))?,
                    )
                }
                other => {
                    return Err(format!(
                        "{at} ({:?}): access logger {other} is not supported (files and gRPC access log services only)",
                        log.name
                    ))
                }
            };
            compiled.push(AccessLog { filter, sink });
        }
        Ok((!compiled.is_empty()).then(|| Arc::new(AccessLogs(compiled))))
    }

    /// How many access logs there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// No logs, shared: what a listener that traces but logs nothing records its requests
    /// with (their entries end its spans).
    pub(crate) fn none() -> Arc<AccessLogs> {
        static NONE: std::sync::OnceLock<Arc<AccessLogs>> = std::sync::OnceLock::new();
        NONE.get_or_init(Arc::default).clone()
    }

    /// Writes the entry of a request the HTTP/1 codec refused before it could be read (a
    /// malformed or oversized head), answered `status`: Envoy logs such a request with `DPE`
    /// and nothing of the request itself.
    pub fn write_refused(&self, downstream: &Downstream, status: u16) {
        let no_headers = HeaderMap::new();
        self.write(&Entry {
            start: SystemTime::now(),
            duration: Duration::ZERO,
            request_duration: None,
            response_duration: Some(Duration::ZERO),
            protocol: Some(Version::HTTP_11),
            request: None,
            status,
            response_headers: &no_headers,
            response_trailers: None,
            flags: ResponseFlags::DOWNSTREAM_PROTOCOL_ERROR,
            bytes_received: 0,
            bytes_sent: 0,
            upstream_host: None,
            upstream_cluster: None,
            route_name: None,
            downstream,
            health_check: false,
        });
    }

    /// Writes `entry` to every log whose filter admits it.
    pub fn write(&self, entry: &Entry<'_>) {
        for log in &self.0 {
            if log.filter.as_ref().is_none_or(|f| f.admits(entry)) {
                match &log.sink {
                    Sink::File { format, file } => file.write(format.render(entry)),
                    Sink::Grpc(service) => service.write(entry),
                }
            }
        }
    }
}

#[allow(deprecated)] // the deprecated format fields are still Envoy's to honour
fn file_format(file: &FileAccessLog) -> Result<Format, String> {
    match &file.access_log_format {
        None => Ok(Format::default_format()),
        Some(AccessLogFormat::Format(text)) if text.is_empty() => Ok(Format::default_format()),
        Some(AccessLogFormat::Format(text)) => Format::text(text),
        Some(AccessLogFormat::JsonFormat(s)) | Some(AccessLogFormat::TypedJsonFormat(s)) => {
            Format::json(&crate::config::struct_to_json(s))
        }
        Some(AccessLogFormat::LogFormat(f)) => {
            if f.omit_empty_values {
                return Err("log_format.omit_empty_values is not supported".into());
            }
            for formatter in &f.formatters {
                // The command operators these add (REQ_WITHOUT_QUERY; METADATA, which is
                // refused by the parser) are known without them.
                if !matches!(
                    formatter.name.as_str(),
                    "envoy.formatter.req_without_query" | "envoy.formatter.metadata"
                ) {
                    return Err(format!(
                        "log_format.formatters: {:?} is not supported",
                        formatter.name
                    ));
                }
            }
            match &f.format {
                None => Ok(Format::default_format()),
                Some(substitution_format_string::Format::TextFormat(text)) => Format::text(text),
                Some(substitution_format_string::Format::TextFormatSource(source)) => match &source
                    .specifier
                {
                    Some(data_source::Specifier::InlineString(text)) => Format::text(text),
                    Some(data_source::Specifier::InlineBytes(bytes)) => Format::text(
                        std::str::from_utf8(bytes)
                            .map_err(|_| "log_format.text_format_source is not UTF-8")?,
                    ),
                    Some(data_source::Specifier::Filename(name)) => {
                        let text = std::fs::read_to_string(name)
                            .map_err(|e| format!("log_format.text_format_source {name:?}: {e}"))?;
                        Format::text(&text)
                    }
                    _ => Err("log_format.text_format_source: unsupported source".into()),
                },
                Some(substitution_format_string::Format::JsonFormat(s)) => {
                    Format::json(&crate::config::struct_to_json(s))
                }
            }
        }
    }
}

/// Envoy's response flags: why a request did not get the upstream's answer in full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseFlags(u32);

/// Envoy's short names, in the order Envoy writes them.
const FLAG_NAMES: [&str; 27] = [
    "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC",
    "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF",
];

macro_rules! flags {
    ($($name:ident = $short:literal: $doc:literal,)*) => {
        impl ResponseFlags {
            $(
                #[doc = $doc]
                pub const $name: ResponseFlags = ResponseFlags(1 << flag_index($short));
            )*
        }
    };
}

/// Where `short` sits in [`FLAG_NAMES`]. Only the flag constants call it, so it runs at
/// compile time: a misspelt name fails the build (the `panic!`), never a request.
const fn flag_index(short: &str) -> u32 {
    let mut i = 0;
    while i < FLAG_NAMES.len() {
        if const_eq(FLAG_NAMES[i], short) {
            return i as u32;
        }
        i += 1;
    }
    panic!("unknown response flag")
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

flags! {
    NO_HEALTHY_UPSTREAM = "UH": "`UH`: no healthy upstream host.",
    UPSTREAM_REQUEST_TIMEOUT = "UT": "`UT`: the upstream request timed out.",
    UPSTREAM_CONNECTION_FAILURE = "UF": "`UF`: the upstream connection failed.",
    UPSTREAM_CONNECTION_TERMINATION = "UC": "`UC`: the upstream connection closed.",
    UPSTREAM_OVERFLOW = "UO": "`UO`: a circuit breaker tripped.",
    NO_ROUTE_FOUND = "NR": "`NR`: no route matched.",
    DELAY_INJECTED = "DI": "`DI`: fault injection delayed the request.",
    FAULT_INJECTED = "FI": "`FI`: fault injection aborted the request.",
    RATE_LIMITED = "RL": "`RL`: a rate limit refused the request.",
    UNAUTHORIZED_EXTERNAL_SERVICE = "UAEX": "`UAEX`: external authorization denied the request.",
    DOWNSTREAM_CONNECTION_TERMINATION = "DC": "`DC`: the client went away before the answer was sent.",
    UPSTREAM_RETRY_LIMIT_EXCEEDED = "URX": "`URX`: retries ran out.",
    STREAM_IDLE_TIMEOUT = "SI": "`SI`: the stream idle timeout fired.",
    DURATION_TIMEOUT = "DT": "`DT`: the maximum stream duration was reached.",
    RATE_LIMIT_SERVICE_ERROR = "RLSE": "`RLSE`: the rate limit service failed.",
    DOWNSTREAM_PROTOCOL_ERROR = "DPE": "`DPE`: the request broke the HTTP protocol.",
    UPSTREAM_MAX_STREAM_DURATION_REACHED = "UMSDR": "`UMSDR`: the cluster's `max_stream_duration` ran out.",
    UPSTREAM_PROTOCOL_ERROR = "UPE": "`UPE`: the upstream's answer broke the HTTP protocol.",
    NO_CLUSTER_FOUND = "NC": "`NC`: the route's cluster does not exist.",
    DNS_RESOLUTION_FAILED = "DF": "`DF`: the dynamic forward proxy could not resolve the request's host.",
}

impl ResponseFlags {
    /// The flag of an Envoy short name (`UH`, `NR`, ...).
    pub fn from_short_name(name: &str) -> Option<ResponseFlags> {
        FLAG_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| ResponseFlags(1 << i))
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether any flag of `other` is set.
    pub fn intersects(self, other: ResponseFlags) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOrAssign for ResponseFlags {
    fn bitor_assign(&mut self, other: ResponseFlags) {
        self.0 |= other.0;
    }
}

impl std::fmt::Display for ResponseFlags {
    /// Envoy's `%RESPONSE_FLAGS%`: the short names joined with `,`, or `-`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for (i, name) in FLAG_NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// What the request path learned about a request that the access log writes, carried in the
/// answer's extensions to where the answer is sent.
#[derive(Debug, Clone, Default)]
pub struct StreamFacts {
    /// The response flags.
    pub flags: ResponseFlags,
    /// The cluster the request went to.
    pub upstream_cluster: Option<Arc<str>>,
    /// The upstream host that answered (or was tried last).
    pub upstream_host: Option<SocketAddr>,
    /// The request as Envoy's `%REQ(...)%` reads it: as the connection manager left it (path
    /// normalised, `x-request-id` added) or, when it went upstream, as it was sent (the
    /// route's rewrites and header mutations made). Without it, the request as received.
    pub request: Option<Arc<LoggedRequest>>,
    /// The name of the route that matched.
    pub route_name: Option<Arc<str>>,
    /// The matched route's decorator operation (the name of its trace spans).
    pub operation: Option<Arc<str>>,
    /// The request's trace span and its tracer: the span ends with the access log entry.
    pub trace: Option<(Arc<crate::trace::Tracer>, crate::trace::Span)>,
    /// The request was refused as Envoy's codec refuses it (`DPE`): nothing of it is logged.
    pub unparsed: bool,
    /// The request was a health check (the health check filter's headers matched).
    pub health_check: bool,
}

impl StreamFacts {
    /// Sets `flag` on an answer.
    pub fn flag(mut response: Response<Body>, flag: ResponseFlags) -> Response<Body> {
        Self::of(&mut response).flags |= flag;
        response
    }

    /// The facts of an answer, added when it has none yet.
    pub fn of(response: &mut Response<Body>) -> &mut StreamFacts {
        response
            .extensions_mut()
            .get_or_insert_default::<StreamFacts>()
    }

    /// A request refused the way Envoy's codec refuses one: `DPE`, and nothing of the
    /// request is logged.
    pub fn unparsed(mut response: Response<Body>) -> Response<Body> {
        let facts = Self::of(&mut response);
        facts.flags |= ResponseFlags::DOWNSTREAM_PROTOCOL_ERROR;
        facts.unparsed = true;
        response
    }
}

/// A request head as the access log reads it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// The method.
    pub method: Method,
    /// The path with its query.
    pub path: String,
    /// The authority (Host).
    pub authority: String,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The headers (the `x-envoy-original-path` of a rewritten path among them).
    pub headers: HeaderMap,
}

impl LoggedRequest {
    /// What the access log's matchers and operators read.
    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            method: self.method.as_str(),
            authority: &self.authority,
            path: &self.path,
            scheme: self.scheme,
            headers: &self.headers,
        }
    }
}

/// Everything an access log entry is written from.
#[derive(Debug)]
pub struct Entry<'a> {
    /// When the request's head arrived.
    pub start: SystemTime,
    /// From then to the end of the answer.
    pub duration: Duration,
    /// From then to the end of the request body, if it ended.
    pub request_duration: Option<Duration>,
    /// From then to the answer's head.
    pub response_duration: Option<Duration>,
    /// The client's protocol (`None`: a TCP proxy's connection, which has none).
    pub protocol: Option<Version>,
    /// The request (as sent upstream, when it was); `None` when it could not be read (a
    /// protocol error).
    pub request: Option<RequestView<'a>>,
    /// The answer's status.
    pub status: u16,
    /// The answer's headers.
    pub response_headers: &'a HeaderMap,
    /// The answer's trailers, if it had any.
    pub response_trailers: Option<&'a HeaderMap>,
    /// The response flags.
    pub flags: ResponseFlags,
    /// Request body bytes received.
    pub bytes_received: u64,
    /// Answer body bytes sent.
    pub bytes_sent: u64,
    /// The upstream host.
    pub upstream_host: Option<SocketAddr>,
    /// The upstream cluster.
    pub upstream_cluster: Option<&'a str>,
    /// The matched route's name.
    pub route_name: Option<&'a str>,
    /// The client connection.
    pub downstream: &'a Downstream,
    /// Whether the request was a health check.
    pub health_check: bool,
}

impl Entry<'_> {
    /// The gRPC status, as Envoy settles it for its filters: the trailers' or the headers'
    /// `grpc-status`, else one derived from the HTTP status.
    pub fn grpc_status(&self) -> u32 {
        let from =
            |h: Option<&HeaderMap>| h?.get("grpc-status")?.to_str().ok()?.parse::<u32>().ok();
        from(self.response_trailers)
            .or_else(|| from(Some(self.response_headers)))
            .unwrap_or_else(|| {
                http::StatusCode::from_u16(self.status)
                    .map_or(2, |s| u32::from(crate::builtin::grpc_status_of(s)))
            })
    }
}

/// Counts a request body's bytes and notes when it ended.
#[derive(Debug, Default)]
struct RequestProgress {
    bytes: AtomicU64,
    /// Nanoseconds after the start, plus one (zero: not ended).
    ended_at: AtomicU64,
}

/// An access log entry in the making: started when the request arrives, written when its
/// answer has gone.
#[derive(Debug)]
pub struct Recording {
    logs: Arc<AccessLogs>,
    start: SystemTime,
    started: Instant,
    protocol: Version,
    request: LoggedRequest,
    downstream: Downstream,
    progress: Arc<RequestProgress>,
}

impl Recording {
    /// Starts recording `req`, whose body it counts from now on.
    pub fn start(
        logs: Arc<AccessLogs>,
        req: http::Request<Body>,
        downstream: &Downstream,
        started: Instant,
    ) -> (Recording, http::Request<Body>) {
        let progress = Arc::new(RequestProgress::default());
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| {
                req.headers()
                    .get(http::header::HOST)
                    .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            })
            .unwrap_or_default();
        let request = LoggedRequest {
            method: req.method().clone(),
            path: req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| req.uri().to_string()),
            authority,
            // Envoy sets `:scheme` when it edits the request's headers, after its checks: a
            // request refused before that has none.
            scheme: "",
            headers: req.headers().clone(),
        };
        let protocol = req.version();
        let (parts, body) = req.into_parts();
        let body = if http_body::Body::is_end_stream(&body) {
            progress.ended_at.store(1, Ordering::Relaxed);
            body
        } else {
            Body::new(CountedRequest {
                inner: body,
                progress: progress.clone(),
                started,
            })
        };
        (
            Recording {
                logs,
                start: SystemTime::now() - started.elapsed(),
                started,
                protocol,
                request,
                downstream: downstream.clone(),
                progress,
            },
            http::Request::from_parts(parts, body),
        )
    }

    /// Attaches the recording to the answer: it is written when the answer's body has been
    /// sent (or dropped).
    pub fn finish(self, response: Response<Body>) -> Response<Body> {
        let response_duration = self.started.elapsed();
        let (mut parts, body) = response.into_parts();
        let facts = parts.extensions.remove::<StreamFacts>().unwrap_or_default();
        // Answers without a body are complete when their head is sent: nothing reads their
        // body (to `HEAD`, a 101's upgraded stream, 204, 304).
        let bodiless =
            self.request.method == Method::HEAD || matches!(parts.status.as_u16(), 101 | 204 | 304);
        let pending = Pending {
            recording: self,
            response_duration,
            status: parts.status.as_u16(),
            response_headers: parts.headers.clone(),
            facts,
        };
        if bodiless || body.is_end_stream() {
            // Nothing more will happen to it.
            pending.write(0, None, ResponseFlags::default());
            return Response::from_parts(parts, body);
        }
        let body = Body::new(LoggedBody {
            inner: body,
            sent: 0,
            trailers: None,
            failed: false,
            pending: Some(Box::new(pending)),
        });
        Response::from_parts(parts, body)
    }
}

#[derive(Debug)]
struct Pending {
    recording: Recording,
    response_duration: Duration,
    status: u16,
    response_headers: HeaderMap,
    facts: StreamFacts,
}

impl Pending {
    fn write(self, sent: u64, trailers: Option<&HeaderMap>, extra: ResponseFlags) {
        let r = &self.recording;
        let mut flags = self.facts.flags;
        flags |= extra;
        let ended_at = r.progress.ended_at.load(Ordering::Relaxed);
        let request = match (&self.facts.request, self.facts.unparsed) {
            (_, true) => None,
            (Some(edited), false) => Some(edited.view()),
            (None, false) => Some(r.request.view()),
        };
        // A request the codec refused has no protocol of its own: Envoy's HTTP/1 codec
        // reports its own.
        let protocol = Some(match (self.facts.unparsed, r.protocol) {
            (true, http::Version::HTTP_09 | http::Version::HTTP_10) => http::Version::HTTP_11,
            (_, protocol) => protocol,
        });
        let entry = Entry {
            start: r.start,
            duration: r.started.elapsed(),
            request_duration: ended_at.checked_sub(1).map(Duration::from_nanos),
            response_duration: Some(self.response_duration),
            protocol,
            request,
            status: self.status,
            response_headers: &self.response_headers,
            response_trailers: trailers,
            flags,
            bytes_received: r.progress.bytes.load(Ordering::Relaxed),
            bytes_sent: sent,
            upstream_host: self.facts.upstream_host,
            upstream_cluster: self.facts.upstream_cluster.as_deref(),
            route_name: self.facts.route_name.as_deref(),
            downstream: &r.downstream,
            health_check: self.facts.health_check,
        };
        r.logs.write(&entry);
        if let Some((tracer, span)) = &self.facts.trace {
            tracer.finish(span, &entry, self.facts.operation.as_deref());
        }
    }
}

struct CountedRequest {
    inner: Body,
    progress: Arc<RequestProgress>,
    started: Instant,
}

impl http_body::Body for CountedRequest {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.progress
                    .bytes
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        let ended = matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream();
        if ended && self.progress.ended_at.load(Ordering::Relaxed) == 0 {
            let nanos = self
                .started
                .elapsed()
                .as_nanos()
                .min(u128::from(u64::MAX - 1)) as u64;
            self.progress.ended_at.store(nanos + 1, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body that writes its entry when its last frame has been taken (before the
/// client can have it all, so entries come in the order clients see their answers end), or,
/// when it is dropped before then, with the reason it was cut short.
struct LoggedBody {
    inner: Body,
    sent: u64,
    trailers: Option<HeaderMap>,
    failed: bool,
    pending: Option<Box<Pending>>,
}

impl LoggedBody {
    fn write(&mut self, extra: ResponseFlags) {
        if let Some(pending) = self.pending.take() {
            pending.write(self.sent, self.trailers.as_ref(), extra);
        }
    }
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                } else if let Some(trailers) = frame.trailers_ref() {
                    self.trailers = Some(trailers.clone());
                }
                self.inner.is_end_stream()
            }
            Poll::Ready(Some(Err(_))) => {
                self.failed = true;
                false
            }
            Poll::Ready(None) => true,
            Poll::Pending => false,
        };
        if ended {
            self.write(ResponseFlags::default());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        // An answer that ended before its body did: the upstream went away (Envoy's `UC`),
        // or the client did (`DC`).
        let extra = if self.inner.is_end_stream() {
            ResponseFlags::default()
        } else if self.failed {
            ResponseFlags::UPSTREAM_CONNECTION_TERMINATION
        } else {
            ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION
        };
        self.write(extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_flags_are_written_in_envoys_order() {
        let mut flags = ResponseFlags::default();
        assert_eq!(flags.to_string(), "-");
        flags |= ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED;
        flags |= ResponseFlags::UPSTREAM_CONNECTION_FAILURE;
        assert_eq!(flags.to_string(), "UF,URX");
        assert_eq!(
            ResponseFlags::from_short_name("UAEX"),
            Some(ResponseFlags::UNAUTHORIZED_EXTERNAL_SERVICE)
        );
        assert_eq!(ResponseFlags::from_short_name("XX"), None);
        assert!(flags.intersects(ResponseFlags::UPSTREAM_CONNECTION_FAILURE));
        assert!(!flags.intersects(ResponseFlags::NO_ROUTE_FOUND));
    }
}

#[cfg(test)]
mod recording_tests {
    use super::*;
    use http_body_util::BodyExt;

    fn downstream() -> Downstream {
        Downstream {
            remote: "127.0.0.1:1".parse().unwrap(),
            peer: "127.0.0.1:1".parse().unwrap(),
            local: "127.0.0.1:2".parse().unwrap(),
            scheme: "http",
            client_certificate: None,
        }
    }

    fn file_log(path: &std::path::Path) -> EnvoyAccessLog {
        use envoy_types::pb::envoy::config::core::v3::{DataSource, SubstitutionFormatString};
        let file = FileAccessLog {
            path: path.display().to_string(),
            access_log_format: Some(AccessLogFormat::LogFormat(SubstitutionFormatString {
                format: Some(substitution_format_string::Format::TextFormatSource(DataSource {
                    specifier: Some(data_source::Specifier::InlineString(
                        "%REQ(:METHOD)% %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT%\n"
                            .into(),
                    )),
                    ..Default::default()
                })),
                ..Default::default()
            })),
        };
        EnvoyAccessLog {
            name: "envoy.access_loggers.file".into(),
            config_type: Some(access_log::ConfigType::TypedConfig(
                envoy_types::pb::google::protobuf::Any {
                    type_url: FILE_TYPE.into(),
                    value: file.encode_to_vec(),
                },
            )),
            ..Default::default()
        }
    }

    fn lines(path: &std::path::Path, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.lines().count() >= n {
                return text.lines().map(str::to_string).collect();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{n} lines never came to {}", path.display());
    }

    #[tokio::test]
    async fn entries_count_both_bodies_and_note_an_answer_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let logs = AccessLogs::compile(&[file_log(&path)], &Default::default())
            .unwrap()
            .unwrap();
        let answer = |body: &'static str| {
            Response::builder()
                .status(200)
                .body(Body::from(body))
                .unwrap()
        };

        // A request body read in full, and an answer sent in full.
        let req = http::Request::post("/")
            .body(Body::from("0123456789"))
            .unwrap();
        let (recording, req) = Recording::start(logs.clone(), req, &downstream(), Instant::now());
        let received = req.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(received.len(), 10);
        let response = recording.finish(answer("hello"));
        let sent = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&sent[..], b"hello");

        // An answer whose body the client never took: the client went away (DC).
        let req = http::Request::get("/").body(Body::empty()).unwrap();
        let (recording, _req) = Recording::start(logs.clone(), req, &downstream(), Instant::now());
        drop(recording.finish(answer("never read")));

        // To HEAD, the answer has no body to send: nothing was cut short.
        let req = http::Request::head("/").body(Body::empty()).unwrap();
        let (recording, _req) = Recording::start(logs, req, &downstream(), Instant::now());
        drop(recording.finish(answer("")));

        assert_eq!(
            lines(&path, 3),
            ["POST 200 - 10 5", "GET 200 DC 0 0", "HEAD 200 - 0 0"]
        );
    }

    #[test]
    fn unusable_access_logs_are_refused_naming_the_entry() {
        let missing_dir = std::path::Path::new("/nonexistent-gloo-dir/access.log");
        let error = AccessLogs::compile(&[file_log(missing_dir)], &Default::default()).unwrap_err();
        assert!(
            error.starts_with("access_log[0]: cannot open access log file"),
            "{error}"
        );
        let mut unknown = file_log(missing_dir);
        if let Some(access_log::ConfigType::TypedConfig(any)) = &mut unknown.config_type {
            any.type_url =
                "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
                    .into();
        }
        let error = AccessLogs::compile(&[unknown], &Default::default()).unwrap_err();
        assert!(error.contains("is not supported"), "{error}");
    }
}
