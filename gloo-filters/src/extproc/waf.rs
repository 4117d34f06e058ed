//! [`WafProcessor`]: the WAF as an ext_proc server. Each gRPC stream is one HTTP exchange. Its
//! messages are turned into the same `http` request and response parts the tower layer
//! inspects, and go through the same steps on the WAF's evaluation threads.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::processing_mode::BodySendMode;
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::ExternalProcessorServer;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    processing_request, HttpHeaders, ProcessingRequest, ProcessingResponse,
};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
use http::header::{CONTENT_TYPE, LOCATION};
use http::StatusCode;
use tonic::metadata::MetadataMap;
use tonic::Status;

use super::pb::{
    attribute, body_continue, header_option, headers_continue, immediate_response, is_immediate,
    request_parts, response_parts, trailers_continue,
};
use super::server::{Exchange as ExchangeTrait, ExtProc, Processor};
use crate::waf::blocking::Evaluation;
use crate::waf::exchange::{Exchange, Settings};
use crate::waf::service::{request_body, request_head, response, Verdict};
use crate::waf::{AuditLog, Connection, Intervention, WafLayer};

/// The dynamic metadata namespace audit logs go to (Gloo's filter name).
pub const AUDIT_LOG_NAMESPACE: &str = "io.solo.filters.http.modsecurity";
/// Their key in that namespace.
pub const AUDIT_LOG_KEY: &str = "audit_log";

/// ModSecurity as Envoy's external processor: see the [module docs](super).
#[derive(Clone, Debug)]
pub struct WafProcessor {
    settings: Arc<Settings>,
}

impl WafProcessor {
    /// A processor with `layer`'s rules and settings (its message, audit logging, headers-only
    /// flags and body limit).
    pub fn new(layer: WafLayer) -> Self {
        Self {
            settings: layer.settings().clone(),
        }
    }

    /// The tonic service to serve.
    pub fn into_server(self) -> ExternalProcessorServer<ExtProc<Self>> {
        ExtProc::new(self).into_server()
    }
}

impl Processor for WafProcessor {
    type Exchange = WafExchange;

    fn exchange(&self, _metadata: &MetadataMap) -> Result<WafExchange, Status> {
        Ok(WafExchange::new(self.settings.clone()))
    }
}

/// Where an exchange is.
#[derive(Debug)]
enum Stage {
    /// No request headers yet.
    Start,
    /// Phase 1 done; phase 2 waits for the request body.
    RequestBody(Exchange),
    /// Phase 2 done; waiting for the response headers.
    Upstream(Exchange),
    /// Response headers seen; phases 3 and 4 wait for the response body.
    ResponseBody(Exchange, http::response::Parts),
    /// Over (an intervention, or the response was inspected).
    Done,
}

/// One gRPC stream of the [`WafProcessor`]: one HTTP exchange through the WAF.
#[derive(Debug)]
pub struct WafExchange {
    settings: Arc<Settings>,
    stage: Stage,
    request_body_mode: Option<BodySendMode>,
    response_body_mode: Option<BodySendMode>,
    body: BytesMut,
}

fn with_audit(mut response: ProcessingResponse, audit: Option<AuditLog>) -> ProcessingResponse {
    if let Some(audit) = audit {
        let value = |kind| Value { kind: Some(kind) };
        let inner = Struct {
            fields: HashMap::from([(
                AUDIT_LOG_KEY.to_owned(),
                value(Kind::StringValue(audit.as_str().to_owned())),
            )]),
        };
        response.dynamic_metadata = Some(Struct {
            fields: HashMap::from([(
                AUDIT_LOG_NAMESPACE.to_owned(),
                value(Kind::StructValue(inner)),
            )]),
        });
    }
    response
}

/// The answer to an intervention, as the tower layer gives it.
fn immediate(it: &Intervention, message: &Bytes, audit: Option<AuditLog>) -> ProcessingResponse {
    let mut set_headers = vec![header_option(CONTENT_TYPE.as_str(), b"text/plain")];
    if let Some(url) = it.redirect() {
        set_headers.push(header_option(LOCATION.as_str(), url.as_bytes()));
    }
    let response = immediate_response(
        it.status(),
        set_headers,
        message,
        "modsecurity_intervention",
    );
    with_audit(response, audit)
}

fn local(status: StatusCode, body: &'static str, audit: Option<AuditLog>) -> ProcessingResponse {
    let set_headers = vec![header_option(CONTENT_TYPE.as_str(), b"text/plain")];
    let response = immediate_response(
        status,
        set_headers,
        body.as_bytes(),
        "modsecurity_body_too_large",
    );
    with_audit(response, audit)
}

fn mode(mode: i32) -> Option<BodySendMode> {
    BodySendMode::try_from(mode).ok()
}

fn address(request: &ProcessingRequest, side: &str) -> Option<SocketAddr> {
    let port = match attribute(request, &format!("{side}.port")) {
        Some(Kind::NumberValue(p)) => u16::try_from(*p as i64).ok(),
        _ => None,
    };
    match attribute(request, &format!("{side}.address"))? {
        Kind::StringValue(a) => a.parse::<SocketAddr>().ok().or_else(|| {
            let ip = a.parse::<IpAddr>().ok()?;
            Some(SocketAddr::new(ip, port.unwrap_or(0)))
        }),
        _ => None,
    }
}

impl ExchangeTrait for WafExchange {
    async fn on_message(
        &mut self,
        message: ProcessingRequest,
    ) -> Result<Option<ProcessingResponse>, Status> {
        self.handle(message).await
    }
}

impl WafExchange {
    fn new(settings: Arc<Settings>) -> Self {
        Self {
            settings,
            stage: Stage::Start,
            request_body_mode: None,
            response_body_mode: None,
            body: BytesMut::new(),
        }
    }

    /// Handles one message; `Ok(None)` when it needs no answer.
    async fn handle(
        &mut self,
        message: ProcessingRequest,
    ) -> Result<Option<ProcessingResponse>, Status> {
        use processing_request::Request as R;
        if let Some(config) = &message.protocol_config {
            self.request_body_mode = mode(config.request_body_mode);
            self.response_body_mode = mode(config.response_body_mode);
        }
        Ok(match &message.request {
            Some(R::RequestHeaders(h)) => Some(self.request_headers(&message, h).await),
            Some(R::RequestBody(b)) => {
                let partial = self.request_body_mode == Some(BodySendMode::BufferedPartial);
                Some(self.request_body(&b.body, b.end_of_stream || partial).await)
            }
            Some(R::RequestTrailers(_)) => match self.request_body(&[], true).await {
                r if is_immediate(&r) => Some(r),
                _ => Some(trailers_continue(true)),
            },
            Some(R::ResponseHeaders(h)) => Some(self.response_headers(h).await),
            Some(R::ResponseBody(b)) => {
                let partial = self.response_body_mode == Some(BodySendMode::BufferedPartial);
                Some(
                    self.response_body(&b.body, b.end_of_stream || partial)
                        .await,
                )
            }
            Some(R::ResponseTrailers(_)) => match self.response_body(&[], true).await {
                r if is_immediate(&r) => Some(r),
                _ => Some(trailers_continue(false)),
            },
            None => None,
        })
    }

    /// The mode override matching the settings: no body to Envoy's processor when only
    /// headers are inspected (Envoy applies it with `allow_mode_override`).
    fn mode_override(&self) -> Option<ProcessingMode> {
        let (req, res) = (
            self.settings.request_headers_only,
            self.settings.response_headers_only,
        );
        (req || res).then(|| ProcessingMode {
            request_body_mode: if req {
                BodySendMode::None as i32
            } else {
                self.request_body_mode.unwrap_or(BodySendMode::Buffered) as i32
            },
            response_body_mode: if res {
                BodySendMode::None as i32
            } else {
                self.response_body_mode.unwrap_or(BodySendMode::Buffered) as i32
            },
            ..Default::default()
        })
    }

    async fn request_headers(
        &mut self,
        message: &ProcessingRequest,
        h: &HttpHeaders,
    ) -> ProcessingResponse {
        if !matches!(self.stage, Stage::Start) {
            return local_failure(&self.settings, "request headers came twice");
        }
        let Some(mut parts) = request_parts(message, h.headers.as_ref()) else {
            return local_failure(&self.settings, "the request line is not valid HTTP");
        };
        let unknown = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        parts.extensions.insert(Connection::new(
            address(message, "source").unwrap_or(unknown),
            address(message, "destination").unwrap_or(unknown),
        ));
        // Without a body to wait for, phase 2 runs with the headers.
        let end = h.end_of_stream
            || self.settings.request_headers_only
            || self.request_body_mode == Some(BodySendMode::None);
        let settings = self.settings.clone();
        let step = Evaluation::spawn(move || request_head(&settings, parts, end).1).await;
        match step {
            Err(_) => local_failure(&self.settings, "the evaluation did not complete"),
            Ok(Verdict::Refuse(it, audit)) => {
                self.stage = Stage::Done;
                immediate(&it, &self.settings.message, audit)
            }
            Ok(Verdict::Pass(exchange)) => {
                self.stage = if end {
                    Stage::Upstream(exchange)
                } else {
                    Stage::RequestBody(exchange)
                };
                let mut r = headers_continue(true);
                r.mode_override = self.mode_override();
                r
            }
        }
    }

    async fn request_body(&mut self, chunk: &[u8], end: bool) -> ProcessingResponse {
        if !matches!(self.stage, Stage::RequestBody(_)) {
            // Inspected already (headers only), or refused: nothing more to do.
            return body_continue(true);
        }
        self.body.extend_from_slice(chunk);
        if self.body.len() > self.settings.max_body_bytes {
            let exchange = match std::mem::replace(&mut self.stage, Stage::Done) {
                Stage::RequestBody(e) => Some(e),
                _ => None,
            };
            let status = StatusCode::PAYLOAD_TOO_LARGE;
            let audit = exchange.and_then(|e| e.finish(status.as_u16()));
            return local(status, "Payload Too Large", audit);
        }
        if !end {
            return body_continue(true);
        }
        let Stage::RequestBody(exchange) = std::mem::replace(&mut self.stage, Stage::Done) else {
            return body_continue(true);
        };
        let body = std::mem::take(&mut self.body).freeze();
        match Evaluation::spawn(move || request_body(exchange, body)).await {
            Err(_) => local_failure(&self.settings, "the evaluation did not complete"),
            Ok(Verdict::Refuse(it, audit)) => immediate(&it, &self.settings.message, audit),
            Ok(Verdict::Pass(exchange)) => {
                self.stage = Stage::Upstream(exchange);
                body_continue(true)
            }
        }
    }

    async fn response_headers(&mut self, h: &HttpHeaders) -> ProcessingResponse {
        // A request body Envoy never sent (its mode is `NONE` but it did not say so): phase 2
        // runs now, without it, so that the exchange is complete.
        if matches!(self.stage, Stage::RequestBody(_)) {
            let r = self.request_body(&[], true).await;
            if is_immediate(&r) {
                return r;
            }
        }
        let Stage::Upstream(exchange) = std::mem::replace(&mut self.stage, Stage::Done) else {
            return headers_continue(false);
        };
        let Some(parts) = response_parts(h.headers.as_ref()) else {
            return local_failure(&self.settings, "the response head is not valid HTTP");
        };
        let end = h.end_of_stream
            || self.settings.response_headers_only
            || self.response_body_mode == Some(BodySendMode::None);
        if !end {
            self.stage = Stage::ResponseBody(exchange, parts);
            return headers_continue(false);
        }
        self.inspect_response(exchange, parts, Bytes::new(), false)
            .await
    }

    async fn response_body(&mut self, chunk: &[u8], end: bool) -> ProcessingResponse {
        if !matches!(self.stage, Stage::ResponseBody(..)) {
            return body_continue(false);
        }
        let room = self.settings.max_body_bytes.saturating_sub(self.body.len());
        self.body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        // Over the limit, the head is inspected and the rest goes on (as the layer does).
        if !end && self.body.len() < self.settings.max_body_bytes {
            return body_continue(false);
        }
        let Stage::ResponseBody(exchange, parts) = std::mem::replace(&mut self.stage, Stage::Done)
        else {
            return body_continue(false);
        };
        let body = std::mem::take(&mut self.body).freeze();
        self.inspect_response(exchange, parts, body, true).await
    }

    async fn inspect_response(
        &mut self,
        exchange: Exchange,
        parts: http::response::Parts,
        body: Bytes,
        in_body: bool,
    ) -> ProcessingResponse {
        match Evaluation::spawn(move || response(exchange, parts, body)).await {
            Err(_) => local_failure(&self.settings, "the evaluation did not complete"),
            Ok((_, Some(it), audit)) => immediate(&it, &self.settings.message, audit),
            Ok((_, None, audit)) => {
                let r = if in_body {
                    body_continue(false)
                } else {
                    headers_continue(false)
                };
                with_audit(r, audit)
            }
        }
    }
}

/// Fail closed, as the layer does: `500` with the configured message.
fn local_failure(settings: &Settings, why: &str) -> ProcessingResponse {
    immediate(&Intervention::failed(why), &settings.message, None)
}
