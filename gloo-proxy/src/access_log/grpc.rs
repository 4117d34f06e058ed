//! Envoy's gRPC access log service client (`envoy.access_loggers.http_grpc`): entries are
//! streamed to a cluster's `envoy.service.accesslog.v3.AccessLogService`, as Envoy streams
//! them.
//!
//! One stream per log, opened on its first entry; the first message of a stream carries the
//! log's name. When the stream fails, the entries in flight are lost (as in Envoy) and the
//! next entry opens a new one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use envoy_types::pb::envoy::config::core::v3::{
    address, socket_address, Address, Node, RequestMethod, SocketAddress,
};
use envoy_types::pb::envoy::data::accesslog::v3::{
    self as data, http_access_log_entry::HttpVersion, AccessLogCommon, HttpAccessLogEntry,
    HttpRequestProperties, HttpResponseProperties,
};
use envoy_types::pb::envoy::extensions::access_loggers::grpc::v3::HttpGrpcAccessLogConfig;
use envoy_types::pb::envoy::service::accesslog::v3::access_log_service_client::AccessLogServiceClient;
use envoy_types::pb::envoy::service::accesslog::v3::stream_access_logs_message::{
    HttpAccessLogEntries, Identifier, LogEntries,
};
use envoy_types::pb::envoy::service::accesslog::v3::StreamAccessLogsMessage;
use envoy_types::pb::google::protobuf::UInt32Value;
use http::HeaderMap;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::{Entry, ResponseFlags};
use crate::filter::{ClusterChannel, Upstreams};

/// Entries waiting for a stream beyond this many are dropped (the service is down or slow).
const MOST_QUEUED: usize = 10_000;

/// A gRPC access log: where entries go, and which headers they carry beyond the usual ones.
#[derive(Debug)]
pub(super) struct GrpcSink {
    log_name: String,
    cluster: Arc<str>,
    upstreams: Upstreams,
    request_headers: Vec<String>,
    response_headers: Vec<String>,
    response_trailers: Vec<String>,
    /// The queue to the streaming task, started with the first entry (inside the runtime).
    queue: OnceLock<UnboundedSender<HttpAccessLogEntry>>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
}

impl GrpcSink {
    /// The sink of `config`, sending through `upstreams`' cluster.
    pub(super) fn new(
        config: &HttpGrpcAccessLogConfig,
        upstreams: &Upstreams,
    ) -> Result<GrpcSink, String> {
        use envoy_types::pb::envoy::config::core::v3::grpc_service::TargetSpecifier;
        let common = config
            .common_config
            .as_ref()
            .ok_or("common_config is required")?;
        if common.log_name.is_empty() {
            return Err("common_config.log_name is required".into());
        }
        let cluster = match common
            .grpc_service
            .as_ref()
            .and_then(|g| g.target_specifier.as_ref())
        {
            Some(TargetSpecifier::EnvoyGrpc(envoy)) if !envoy.cluster_name.is_empty() => {
                envoy.cluster_name.clone()
            }
            Some(TargetSpecifier::GoogleGrpc(_)) => {
                return Err(
                    "common_config.grpc_service.google_grpc is not supported (envoy_grpc only)"
                        .into(),
                )
            }
            _ => {
                return Err("common_config.grpc_service.envoy_grpc.cluster_name is required".into())
            }
        };
        let lower = |names: &[String]| names.iter().map(|n| n.to_ascii_lowercase()).collect();
        Ok(GrpcSink {
            log_name: common.log_name.clone(),
            cluster: Arc::from(cluster),
            upstreams: upstreams.clone(),
            request_headers: lower(&config.additional_request_headers_to_log),
            response_headers: lower(&config.additional_response_headers_to_log),
            response_trailers: lower(&config.additional_response_trailers_to_log),
            queue: OnceLock::new(),
            queued: Arc::default(),
        })
    }

    /// Queues the entry for the stream (starting the stream's task the first time).
    pub(super) fn write(&self, entry: &Entry<'_>) {
        use std::sync::atomic::Ordering;
        if self.queued.load(Ordering::Relaxed) >= MOST_QUEUED {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let queue = self.queue.get_or_init(|| {
            let (queue, entries) = unbounded_channel();
            runtime.spawn(stream_entries(
                AccessLogServiceClient::new(ClusterChannel::new(&self.upstreams, &self.cluster)),
                self.log_name.clone(),
                entries,
                self.queued.clone(),
            ));
            queue
        });
        // Counted before it is sent: the task may take it off the queue at once.
        self.queued.fetch_add(1, Ordering::Relaxed);
        if queue.send(self.entry(entry)).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn entry(&self, e: &Entry<'_>) -> HttpAccessLogEntry {
        // A request the codec refused is logged without any of its properties.
        let no_headers = HeaderMap::new();
        let request = e.request.unwrap_or(crate::router::matcher::RequestView {
            method: "",
            authority: "",
            path: "",
            scheme: "",
            headers: &no_headers,
        });
        let header = |name: &str| {
            request
                .header(name)
                .map(|v| v.into_owned())
                .unwrap_or_default()
        };
        let picked = |headers: Option<&HeaderMap>, names: &[String]| -> HashMap<String, String> {
            let Some(headers) = headers else {
                return HashMap::new();
            };
            names
                .iter()
                .filter_map(|n| {
                    let value = if n.starts_with(':') {
                        request.header(n).map(|v| v.into_owned())
                    } else {
                        headers
                            .get(n.as_str())
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    };
                    value.map(|v| (n.clone(), v))
                })
                .collect()
        };
        let method = match request.method {
            "GET" => RequestMethod::Get,
            "HEAD" => RequestMethod::Head,
            "POST" => RequestMethod::Post,
            "PUT" => RequestMethod::Put,
            "DELETE" => RequestMethod::Delete,
            "CONNECT" => RequestMethod::Connect,
            "OPTIONS" => RequestMethod::Options,
            "TRACE" => RequestMethod::Trace,
            "PATCH" => RequestMethod::Patch,
            _ => RequestMethod::MethodUnspecified,
        };
        HttpAccessLogEntry {
            common_properties: Some(AccessLogCommon {
                sample_rate: 1.0,
                downstream_remote_address: Some(socket(e.downstream.remote)),
                downstream_local_address: Some(socket(e.downstream.local)),
                downstream_direct_remote_address: Some(socket(e.downstream.peer)),
                start_time: Some(timestamp(e.start)),
                time_to_last_rx_byte: e.request_duration.map(pb_duration),
                time_to_first_downstream_tx_byte: e.response_duration.map(pb_duration),
                time_to_last_downstream_tx_byte: Some(pb_duration(e.duration)),
                duration: Some(pb_duration(e.duration)),
                upstream_remote_address: e.upstream_host.map(socket),
                // Envoy names the cluster of the upstream host, when there was one.
                upstream_cluster: e
                    .upstream_host
                    .and(e.upstream_cluster)
                    .unwrap_or_default()
                    .to_string(),
                // Envoy sends the flags only when one is set.
                response_flags: (!e.flags.is_empty()).then(|| flags(e.flags)),
                route_name: e.route_name.unwrap_or_default().to_string(),
                ..Default::default()
            }),
            protocol_version: match e.protocol {
                Some(http::Version::HTTP_10) => HttpVersion::Http10,
                Some(http::Version::HTTP_11) => HttpVersion::Http11,
                Some(http::Version::HTTP_2) => HttpVersion::Http2,
                Some(http::Version::HTTP_3) => HttpVersion::Http3,
                _ => HttpVersion::ProtocolUnspecified,
            } as i32,
            request: Some(HttpRequestProperties {
                request_method: method as i32,
                scheme: request.scheme.to_string(),
                authority: request.authority.to_string(),
                port: Some(UInt32Value {
                    value: u32::from(e.downstream.local.port()),
                }),
                path: request.path.to_string(),
                user_agent: header("user-agent"),
                referer: header("referer"),
                forwarded_for: header("x-forwarded-for"),
                request_id: header("x-request-id"),
                original_path: header("x-envoy-original-path"),
                request_body_bytes: e.bytes_received,
                request_headers: picked(Some(request.headers), &self.request_headers),
                ..Default::default()
            }),
            response: Some(HttpResponseProperties {
                response_code: Some(UInt32Value {
                    value: u32::from(e.status),
                }),
                response_body_bytes: e.bytes_sent,
                response_headers: picked(Some(e.response_headers), &self.response_headers),
                response_trailers: picked(e.response_trailers, &self.response_trailers),
                ..Default::default()
            }),
        }
    }
}

fn socket(address: SocketAddr) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: address.ip().to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                address.port(),
            ))),
            ..Default::default()
        })),
    }
}

fn timestamp(at: std::time::SystemTime) -> envoy_types::pb::google::protobuf::Timestamp {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    envoy_types::pb::google::protobuf::Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
    }
}

fn pb_duration(d: Duration) -> envoy_types::pb::google::protobuf::Duration {
    envoy_types::pb::google::protobuf::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn flags(f: ResponseFlags) -> data::ResponseFlags {
    let has = |flag| f.intersects(flag);
    data::ResponseFlags {
        no_healthy_upstream: has(ResponseFlags::NO_HEALTHY_UPSTREAM),
        upstream_request_timeout: has(ResponseFlags::UPSTREAM_REQUEST_TIMEOUT),
        upstream_connection_failure: has(ResponseFlags::UPSTREAM_CONNECTION_FAILURE),
        upstream_connection_termination: has(ResponseFlags::UPSTREAM_CONNECTION_TERMINATION),
        upstream_overflow: has(ResponseFlags::UPSTREAM_OVERFLOW),
        no_route_found: has(ResponseFlags::NO_ROUTE_FOUND),
        delay_injected: has(ResponseFlags::DELAY_INJECTED),
        fault_injected: has(ResponseFlags::FAULT_INJECTED),
        rate_limited: has(ResponseFlags::RATE_LIMITED),
        unauthorized_details: has(ResponseFlags::UNAUTHORIZED_EXTERNAL_SERVICE).then_some(
            data::response_flags::Unauthorized {
                reason: data::response_flags::unauthorized::Reason::ExternalService as i32,
            },
        ),
        downstream_connection_termination: has(ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION),
        upstream_retry_limit_exceeded: has(ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED),
        stream_idle_timeout: has(ResponseFlags::STREAM_IDLE_TIMEOUT),
        duration_timeout: has(ResponseFlags::DURATION_TIMEOUT),
        no_cluster_found: has(ResponseFlags::NO_CLUSTER_FOUND),
        dns_resolution_failure: has(ResponseFlags::DNS_RESOLUTION_FAILED),
        rate_limit_service_error: has(ResponseFlags::RATE_LIMIT_SERVICE_ERROR),
        downstream_protocol_error: has(ResponseFlags::DOWNSTREAM_PROTOCOL_ERROR),
        upstream_max_stream_duration_reached: has(
            ResponseFlags::UPSTREAM_MAX_STREAM_DURATION_REACHED,
        ),
        upstream_protocol_error: has(ResponseFlags::UPSTREAM_PROTOCOL_ERROR),
        ..Default::default()
    }
}

/// Streams the queued entries, one stream at a time; returns when the sink is gone.
async fn stream_entries(
    mut client: AccessLogServiceClient<ClusterChannel>,
    log_name: String,
    mut entries: UnboundedReceiver<HttpAccessLogEntry>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::Ordering;
    let batch = |first: HttpAccessLogEntry, entries: &mut UnboundedReceiver<HttpAccessLogEntry>| {
        let mut log_entry = vec![first];
        while let Ok(more) = entries.try_recv() {
            log_entry.push(more);
        }
        queued.fetch_sub(log_entry.len(), Ordering::Relaxed);
        Some(LogEntries::HttpLogs(HttpAccessLogEntries { log_entry }))
    };
    loop {
        // A stream is opened for an entry, not before.
        let Some(first) = entries.recv().await else {
            return;
        };
        let (messages, stream) = tokio::sync::mpsc::channel(16);
        let opening = StreamAccessLogsMessage {
            identifier: Some(Identifier {
                node: Some(Node {
                    id: "gloo-proxy".into(),
                    user_agent_name: "gloo-proxy".into(),
                    ..Default::default()
                }),
                log_name: log_name.clone(),
            }),
            log_entries: batch(first, &mut entries),
        };
        if messages.try_send(opening).is_err() {
            continue;
        }
        let call = client.stream_access_logs(tokio_stream::wrappers::ReceiverStream::new(stream));
        let mut call = std::pin::pin!(call);
        loop {
            tokio::select! {
                ended = &mut call => {
                    if let Err(status) = ended {
                        tracing::warn!(log = %log_name, "access log stream failed: {}", status.message());
                    }
                    break;
                }
                next = entries.recv() => {
                    let Some(first) = next else {
                        // The sink is gone: end the stream, giving it a moment to deliver.
                        drop(messages);
                        let _ = tokio::time::timeout(Duration::from_secs(1), &mut call).await;
                        return;
                    };
                    let message = StreamAccessLogsMessage {
                        identifier: None,
                        log_entries: batch(first, &mut entries),
                    };
                    // Not awaited: the call must go on being polled to send what is queued.
                    match messages.try_send(message) {
                        Ok(()) => {}
                        Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                            tracing::warn!(log = %log_name, "access log service is not keeping up; entries dropped");
                        }
                        Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => break,
                    }
                }
            }
        }
    }
}
