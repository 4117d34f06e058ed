//! [`TransformProcessor`]: Gloo's transformations as an ext_proc server. The messages of a
//! stream become the `http` request and response parts the tower layer transforms, they go
//! through the layer's own steps (rule matching, request and response transformation,
//! buffering decisions, local replies), and what changed goes back to Envoy as header and
//! body mutations.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::processing_mode::{
    BodySendMode, HeaderSendMode,
};
use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;
use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::ExternalProcessorServer;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    body_mutation, common_response::ResponseStatus, processing_request, BodyMutation,
    CommonResponse, HeaderMutation, HttpHeaders, ProcessingRequest, ProcessingResponse,
};
use envoy_types::pb::google::protobuf::value::Kind;
use envoy_types::pb::google::protobuf::{Struct, Value};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{request, response, HeaderMap, Method, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use tonic::metadata::MetadataMap;
use tonic::Status;

use super::pb::{
    attribute, body_continue, body_reply, header_diff, header_option, headers_continue,
    headers_reply, immediate_response, is_empty, request_parts, response_parts, trailers_continue,
};
use super::server::{Exchange, ExtProc, Processor};
use crate::metadata::DynamicMetadata;
use crate::pb_json::pb_value;
use crate::transform::{
    Ctx, ReqBody, ResponseChoice, ResponseCodeDetails, ResponseStep, TransformationFailed,
    TransformationLayer, PAYLOAD_TOO_LARGE,
};

/// The gRPC initial metadata key naming the transformation config a stream uses (see the
/// [module docs](super#transformations)).
pub const TRANSFORMATION_CONFIG_KEY: &str = "x-gloo-transformation";

/// Gloo's transformations as Envoy's external processor: see the [module docs](super).
///
/// It holds one [`TransformationLayer`] per name (a route, a stage, a virtual host: whatever
/// the Envoy config names in [`TRANSFORMATION_CONFIG_KEY`]) and optionally a default one for
/// streams that name none.
#[derive(Clone, Debug, Default)]
pub struct TransformProcessor {
    default: Option<TransformationLayer>,
    named: HashMap<String, TransformationLayer>,
}

impl TransformProcessor {
    /// A processor applying `layer` to every stream that names no config.
    pub fn new(layer: TransformationLayer) -> Self {
        Self {
            default: Some(layer),
            named: HashMap::new(),
        }
    }

    /// A processor with no default: every stream must name a config.
    pub fn without_default() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the config streams select with
    /// `x-gloo-transformation: <name>`.
    pub fn named(mut self, name: impl Into<String>, layer: TransformationLayer) -> Self {
        self.named.insert(name.into(), layer);
        self
    }

    /// The tonic service to serve.
    pub fn into_server(self) -> ExternalProcessorServer<ExtProc<Self>> {
        ExtProc::new(self).into_server()
    }
}

impl Processor for TransformProcessor {
    type Exchange = TransformExchange;

    fn exchange(&self, metadata: &MetadataMap) -> Result<TransformExchange, Status> {
        let layer = match metadata.get(TRANSFORMATION_CONFIG_KEY) {
            Some(name) => {
                let name = name.to_str().map_err(|_| {
                    Status::invalid_argument(format!(
                        "{TRANSFORMATION_CONFIG_KEY} is not a visible ASCII string"
                    ))
                })?;
                self.named.get(name).ok_or_else(|| {
                    Status::not_found(format!(
                        "no transformation config is named {name:?} ({TRANSFORMATION_CONFIG_KEY})"
                    ))
                })?
            }
            None => self.default.as_ref().ok_or_else(|| {
                Status::failed_precondition(format!(
                    "the stream names no transformation config ({TRANSFORMATION_CONFIG_KEY}) \
                     and the processor has no default"
                ))
            })?,
        };
        Ok(TransformExchange {
            layer: layer.clone(),
            stage: Stage::Start,
            body: BytesMut::new(),
        })
    }
}

/// The request head before the transformation, to tell what it changed.
#[derive(Debug)]
struct RequestBefore {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl RequestBefore {
    fn of(parts: &request::Parts) -> Self {
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        }
    }
}

/// Where an exchange is.
#[derive(Debug)]
enum Stage {
    /// No request headers yet.
    Start,
    /// The request transformation waits for the body.
    RequestBody(Ctx, request::Parts),
    /// The request went on; waiting for the response headers.
    Upstream(Ctx),
    /// The response transformation waits for the body; the head as Envoy sent it.
    ResponseBody(Ctx, response::Parts, ResponseChoice, StatusCode, HeaderMap),
    /// Nothing more to transform.
    Done,
}

/// One gRPC stream of the [`TransformProcessor`]: one HTTP exchange.
#[derive(Debug)]
pub struct TransformExchange {
    layer: TransformationLayer,
    stage: Stage,
    body: BytesMut,
}

/// The body the layer's steps see for a body Envoy keeps: empty, and at its end only if the
/// message has none.
#[derive(Debug)]
struct Held {
    end: bool,
}

impl Body for Held {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.end
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The processing mode for the rest of the exchange: bodies are sent (buffered) only when a
/// transformation reads them, response headers only when a response may be transformed.
fn mode(request_body: bool, response_headers: bool, response_body: bool) -> ProcessingMode {
    let body = |b: bool| {
        if b {
            BodySendMode::Buffered
        } else {
            BodySendMode::None
        }
    };
    let headers = |h: bool| {
        if h {
            HeaderSendMode::Send
        } else {
            HeaderSendMode::Skip
        }
    };
    ProcessingMode {
        request_header_mode: HeaderSendMode::Send as i32,
        response_header_mode: headers(response_headers) as i32,
        request_body_mode: body(request_body) as i32,
        response_body_mode: body(response_body) as i32,
        request_trailer_mode: HeaderSendMode::Skip as i32,
        response_trailer_mode: HeaderSendMode::Skip as i32,
    }
}

/// The layer's local reply (`text/plain`, details `transformation_filter_error`).
fn local_reply(status: StatusCode, message: &str) -> ProcessingResponse {
    immediate_response(
        status,
        vec![header_option(CONTENT_TYPE.as_str(), b"text/plain")],
        message.as_bytes(),
        TransformationFailed::DETAILS,
    )
}

/// Puts a complete body the transformation produced (`None`: the body is untouched) in the
/// answer: a body mutation of a buffered body, or, for a message whose body Envoy keeps (the
/// answer to its headers), a replacement with `CONTINUE_AND_REPLACE` (a body made for a
/// message that had none, or one replacing a body the transformation did not read).
fn replace_body(common: &mut CommonResponse, data: Option<Bytes>, in_headers: bool) {
    let Some(data) = data else {
        return;
    };
    if in_headers {
        if data.is_empty() {
            return;
        }
        common.status = ResponseStatus::ContinueAndReplace as i32;
    }
    common.body_mutation = Some(BodyMutation {
        mutation: Some(body_mutation::Mutation::Body(data.to_vec())),
    });
}

/// What the request transformation changed in the head: the pseudo-headers, then the headers
/// (`host` is `:authority` to Envoy).
fn request_mutation(before: &RequestBefore, after: &request::Parts) -> HeaderMutation {
    let mut mutation = HeaderMutation::default();
    if after.method != before.method {
        mutation
            .set_headers
            .push(header_option(":method", after.method.as_str().as_bytes()));
    }
    if after.uri != before.uri {
        let path = after.uri.path_and_query().map_or("/", |pq| pq.as_str());
        mutation
            .set_headers
            .push(header_option(":path", path.as_bytes()));
    }
    let (mut old, mut new) = (before.headers.clone(), after.headers.clone());
    match (old.remove(HOST), new.remove(HOST)) {
        (old, Some(host)) if old.as_ref() != Some(&host) => mutation
            .set_headers
            .push(header_option(":authority", host.as_bytes())),
        _ => {}
    }
    header_diff(&old, &new, &mut mutation);
    mutation
}

impl Exchange for TransformExchange {
    async fn on_message(
        &mut self,
        message: ProcessingRequest,
    ) -> Result<Option<ProcessingResponse>, Status> {
        use processing_request::Request as R;
        Ok(match &message.request {
            Some(R::RequestHeaders(h)) => Some(self.request_headers(&message, h)),
            Some(R::RequestBody(b)) => Some(self.request_body(&b.body, b.end_of_stream)),
            Some(R::RequestTrailers(_)) => Some(trailers_continue(true)),
            Some(R::ResponseHeaders(h)) => Some(self.response_headers(&message, h)),
            Some(R::ResponseBody(b)) => Some(self.response_body(&b.body, b.end_of_stream)),
            Some(R::ResponseTrailers(_)) => Some(trailers_continue(false)),
            None => None,
        })
    }
}

impl TransformExchange {
    fn request_headers(
        &mut self,
        message: &ProcessingRequest,
        h: &HttpHeaders,
    ) -> ProcessingResponse {
        if !matches!(self.stage, Stage::Start) {
            return local_reply(
                StatusCode::BAD_REQUEST,
                "bad request: request headers came twice",
            );
        }
        let Some(mut parts) = request_parts(message, h.headers.as_ref()) else {
            return local_reply(StatusCode::BAD_REQUEST, "bad request: invalid request line");
        };
        let ctx = self.layer.exchange(&mut parts);
        if ctx.needs_request_body() && !h.end_of_stream {
            // As the layer: a body announced larger than the limit is refused at once.
            let announced = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if announced.is_some_and(|n| n > ctx.max_body_bytes as u64) {
                self.stage = Stage::Done;
                return local_reply(StatusCode::PAYLOAD_TOO_LARGE, PAYLOAD_TOO_LARGE);
            }
            let mut r = headers_continue(true);
            r.mode_override = Some(mode(true, ctx.may_transform_response(), false));
            self.stage = Stage::RequestBody(ctx, parts);
            return r;
        }
        let body = ReqBody::Stream(Held {
            end: h.end_of_stream,
        });
        self.finish_request(ctx, parts, body, true)
    }

    fn request_body(&mut self, chunk: &[u8], end: bool) -> ProcessingResponse {
        if !matches!(self.stage, Stage::RequestBody(..)) {
            return body_continue(true);
        }
        self.body.extend_from_slice(chunk);
        let Stage::RequestBody(ctx, parts) = std::mem::replace(&mut self.stage, Stage::Done) else {
            return body_continue(true);
        };
        if self.body.len() > ctx.max_body_bytes {
            return local_reply(StatusCode::PAYLOAD_TOO_LARGE, PAYLOAD_TOO_LARGE);
        }
        if !end {
            self.stage = Stage::RequestBody(ctx, parts);
            return body_continue(true);
        }
        let data = std::mem::take(&mut self.body).freeze();
        self.finish_request(ctx, parts, ReqBody::Buffered(data, None), false)
    }

    /// Runs the request transformation and answers with what it changed.
    fn finish_request(
        &mut self,
        mut ctx: Ctx,
        parts: request::Parts,
        body: ReqBody<Held>,
        in_headers: bool,
    ) -> ProcessingResponse {
        let before = RequestBefore::of(&parts);
        let request = match ctx.finish_request(parts, body) {
            Ok(request) => request,
            Err(message) => {
                self.stage = Stage::Done;
                return local_reply(StatusCode::BAD_REQUEST, &message);
            }
        };
        let (mut parts, body) = request.into_parts();
        let metadata = parts.extensions.remove::<DynamicMetadata>();
        let mut common = CommonResponse::default();
        let mutation = request_mutation(&before, &parts);
        replace_body(&mut common, body.into_full(), in_headers);
        common.header_mutation = (!is_empty(&mutation)).then_some(mutation);
        let respond = ctx.may_transform_response();
        self.stage = if respond {
            Stage::Upstream(ctx)
        } else {
            Stage::Done
        };
        let mut r = if in_headers {
            let mut r = headers_reply(true, common);
            r.mode_override = Some(mode(false, respond, false));
            r
        } else {
            body_reply(true, common)
        };
        r.dynamic_metadata = metadata.as_ref().and_then(metadata_struct);
        r
    }

    fn response_headers(
        &mut self,
        message: &ProcessingRequest,
        h: &HttpHeaders,
    ) -> ProcessingResponse {
        let Stage::Upstream(ctx) = std::mem::replace(&mut self.stage, Stage::Done) else {
            return headers_continue(false);
        };
        let Some(mut parts) = response_parts(h.headers.as_ref()) else {
            return headers_continue(false);
        };
        // With `response_attributes: [response.code_details]`, response matchers on the
        // details work as in envoy-gloo.
        if let Some(Kind::StringValue(details)) = attribute(message, "response.code_details") {
            parts
                .extensions
                .insert(ResponseCodeDetails(details.clone()));
        }
        let (status, headers) = (parts.status, parts.headers.clone());
        let held = Held {
            end: h.end_of_stream,
        };
        match ctx.start_response(Response::from_parts(parts, held)) {
            ResponseStep::Ready(response) => respond(status, &headers, response, true),
            ResponseStep::Buffer(parts, _, choice) => {
                self.stage = Stage::ResponseBody(ctx, parts, choice, status, headers);
                let mut r = headers_continue(false);
                r.mode_override = Some(mode(false, true, true));
                r
            }
        }
    }

    fn response_body(&mut self, chunk: &[u8], end: bool) -> ProcessingResponse {
        if !matches!(self.stage, Stage::ResponseBody(..)) {
            return body_continue(false);
        }
        self.body.extend_from_slice(chunk);
        let Stage::ResponseBody(ctx, parts, choice, status, headers) =
            std::mem::replace(&mut self.stage, Stage::Done)
        else {
            return body_continue(false);
        };
        let response = if self.body.len() > ctx.max_body_bytes {
            crate::transform::response_error::<Held>(
                parts,
                StatusCode::PAYLOAD_TOO_LARGE,
                PAYLOAD_TOO_LARGE.to_owned(),
            )
        } else if !end {
            self.stage = Stage::ResponseBody(ctx, parts, choice, status, headers);
            return body_continue(false);
        } else {
            let data = std::mem::take(&mut self.body).freeze();
            ctx.finish_response(parts, ReqBody::Buffered(data, None), choice)
        };
        respond(status, &headers, response, false)
    }
}

/// The answer carrying what the response transformation changed. A new body for a response
/// whose body Envoy keeps (a failure of a transformation reading only headers) replaces it with
/// `CONTINUE_AND_REPLACE`, so the other headers stay, as in envoy-gloo's `responseError`.
fn respond(
    status: StatusCode,
    headers: &HeaderMap,
    response: Response<crate::transform::TransformBody<Held>>,
    in_headers: bool,
) -> ProcessingResponse {
    let (mut parts, body) = response.into_parts();
    let metadata = parts.extensions.remove::<DynamicMetadata>();
    let data = body.into_full();
    let mut mutation = HeaderMutation::default();
    if parts.status != status {
        mutation
            .set_headers
            .push(header_option(":status", parts.status.as_str().as_bytes()));
    }
    header_diff(headers, &parts.headers, &mut mutation);
    let mut common = CommonResponse::default();
    replace_body(&mut common, data, in_headers);
    common.header_mutation = (!is_empty(&mutation)).then_some(mutation);
    let mut r = if in_headers {
        headers_reply(false, common)
    } else {
        body_reply(false, common)
    };
    r.dynamic_metadata = metadata.as_ref().and_then(metadata_struct);
    r
}

/// The metadata a transformation rendered (`dynamic_metadata_values`), as the ext_proc
/// answer's `dynamic_metadata`: one struct per namespace. `None` when there is none.
fn metadata_struct(metadata: &DynamicMetadata) -> Option<Struct> {
    let fields: HashMap<String, Value> = metadata
        .namespaces()
        .map(|(namespace, entries)| {
            let inner = Struct {
                fields: entries
                    .iter()
                    .map(|(k, v)| (k.clone(), pb_value(v)))
                    .collect(),
            };
            (namespace.to_owned(), value(Kind::StructValue(inner)))
        })
        .collect();
    (!fields.is_empty()).then_some(Struct { fields })
}

fn value(kind: Kind) -> Value {
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::{HeaderMap as PbHeaderMap, HeaderValue};
    use envoy_types::pb::envoy::service::ext_proc::v3::processing_request::Request as R;

    use super::*;
    use crate::transform::{
        DynamicMetadataValue, RequestMatch, TransformationTemplate, Transformations,
    };

    fn headers(pairs: &[(&str, &str)], end: bool) -> ProcessingRequest {
        ProcessingRequest {
            request: Some(R::RequestHeaders(HttpHeaders {
                headers: Some(PbHeaderMap {
                    headers: pairs
                        .iter()
                        .map(|(k, v)| HeaderValue {
                            key: (*k).to_owned(),
                            raw_value: v.as_bytes().to_vec(),
                            ..Default::default()
                        })
                        .collect(),
                }),
                end_of_stream: end,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn rendered_dynamic_metadata_goes_back_to_envoy() {
        let template = TransformationTemplate::new()
            .parse_body_behavior(crate::transform::RequestBodyParse::DontParse)
            .dynamic_metadata(DynamicMetadataValue::new(
                "user",
                "{{ header(\"x-user\") }}",
            ));
        let layer = TransformationLayer::new(
            Transformations::new()
                .request_transform(RequestMatch::new().request_transformation(template)),
        )
        .expect("compiles");
        let processor = TransformProcessor::new(layer);
        let mut exchange = processor.exchange(&MetadataMap::new()).expect("exchange");
        let message = headers(
            &[
                (":method", "GET"),
                (":path", "/"),
                (":authority", "a"),
                ("x-user", "ada"),
            ],
            true,
        );
        let reply = exchange
            .on_message(message)
            .await
            .expect("answer")
            .expect("a reply");
        let metadata = reply.dynamic_metadata.expect("dynamic metadata");
        let Some(Kind::StructValue(ns)) = metadata.fields["io.solo.transformation"].kind.clone()
        else {
            panic!("namespace struct: {metadata:?}");
        };
        assert_eq!(
            ns.fields["user"].kind,
            Some(Kind::StringValue("ada".into()))
        );
        // A stream naming a config that does not exist is refused.
        let mut named = MetadataMap::new();
        named.insert(TRANSFORMATION_CONFIG_KEY, "nope".parse().expect("value"));
        let error = processor.exchange(&named).expect_err("unknown config");
        assert_eq!(error.code(), tonic::Code::NotFound);
    }
}
