//! The response future of [`Waf`](super::Waf).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{request, response, HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tower::Service;

use super::audit::AuditLog;
use super::blocking::Evaluation;
use super::exchange::{Exchange, Intervention, Settings};
use super::service::{
    intervention_reply, local_reply, request_body, request_head, response as inspect_response,
    Verdict, WafBody,
};
use crate::body::{BodyBuffer, Polled};

type HeadStep = (request::Parts, Verdict);
type ResponseStep = (response::Parts, Option<Intervention>, Option<AuditLog>);

/// Envoy's answer to a request that overflows a buffering filter.
const PAYLOAD_TOO_LARGE: &str = "Payload Too Large";
/// The answer to a request whose body failed while it was read.
const BODY_FAILED: &str = "bad request: the request body could not be read";

pin_project! {
    /// Response future of [`Waf`](super::Waf): inspects the request head (on an evaluation
    /// thread), buffers and inspects the request body, calls the inner service, then buffers
    /// and inspects the response.
    pub struct ResponseFuture<S, ReqB, ResB>
    where
        S: Service<Request<WafBody<ReqB>>, Response = Response<ResB>>,
        ReqB: Body,
        ResB: Body,
    {
        #[pin]
        state: State<S, S::Future, ReqB, ResB>,
        settings: Arc<Settings>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, F, ReqB, ResB>
    where
        ReqB: Body,
        ResB: Body,
    {
        // Phases 1 and 2 of a request without a body to wait for.
        RequestHead {
            evaluation: Evaluation<HeadStep>,
            body: Option<ReqB>,
            service: Option<S>,
        },
        // A request with a body. Before anything is evaluated (`head` and `exchange` both
        // `None`), the body is read as far as it is already there: when that is all of it,
        // phases 1 and 2 go to an evaluation thread together (one trip, not two). Otherwise
        // phase 1 runs (`head`), then the rest of the body is read.
        RequestBody {
            #[pin]
            body: ReqB,
            buffer: BodyBuffer,
            head: Option<Evaluation<HeadStep>>,
            // How the first read ended, when it ended the body's reading early (too large,
            // failed): answered once phase 1 has passed.
            early: Option<Polled<ReqB::Error>>,
            exchange: Option<Exchange>,
            parts: Option<request::Parts>,
            service: Option<S>,
        },
        RequestBodyEvaluation {
            evaluation: Evaluation<HeadStep>,
            service: Option<S>,
            body: Option<(Bytes, Option<HeaderMap>)>,
        },
        Inner {
            #[pin]
            future: F,
            exchange: Option<Exchange>,
        },
        ResponseBody {
            body: Option<Pin<Box<ResB>>>,
            buffer: BodyBuffer,
            exchange: Option<Exchange>,
            parts: Option<response::Parts>,
        },
        ResponseEvaluation {
            evaluation: Evaluation<ResponseStep>,
            body: Option<WafBody<ResB>>,
        },
        Done,
    }
}

impl<S, ReqB, ResB> ResponseFuture<S, ReqB, ResB>
where
    S: Service<Request<WafBody<ReqB>>, Response = Response<ResB>>,
    ReqB: Body,
    ResB: Body,
{
    /// The exchange of a request without a body to wait for: phases 1 and 2 are evaluating.
    pub(crate) fn headers_only(
        settings: Arc<Settings>,
        evaluation: Evaluation<HeadStep>,
        body: ReqB,
        service: S,
    ) -> Self {
        Self {
            state: State::RequestHead {
                evaluation,
                body: Some(body),
                service: Some(service),
            },
            settings,
        }
    }

    /// The exchange of a request with a body: nothing is evaluated yet.
    pub(crate) fn with_body(
        settings: Arc<Settings>,
        parts: request::Parts,
        body: ReqB,
        service: S,
    ) -> Self {
        Self {
            state: State::RequestBody {
                body,
                buffer: BodyBuffer::default(),
                head: None,
                early: None,
                exchange: None,
                parts: Some(parts),
                service: Some(service),
            },
            settings,
        }
    }
}

/// A state that lost what it holds (a bug): fail closed.
fn lost<B: Body>(settings: &Settings) -> Response<WafBody<B>> {
    refused(Intervention::failed("inconsistent state"), None, settings)
}

fn refused<B: Body>(
    it: Intervention,
    audit: Option<AuditLog>,
    settings: &Settings,
) -> Response<WafBody<B>> {
    intervention_reply(it, &settings.message, audit)
}

fn evaluation_failed<B: Body>(settings: &Settings) -> Response<WafBody<B>> {
    refused(
        Intervention::failed("the evaluation did not complete"),
        None,
        settings,
    )
}

/// The layer's own answer with `status` to a request it did not inspect to the end.
fn abandon<B: Body>(
    exchange: Option<Exchange>,
    status: StatusCode,
    message: &'static str,
) -> Response<WafBody<B>> {
    // Only the audit record is assembled here: nothing is evaluated.
    let audit = exchange.and_then(|e| e.finish(status.as_u16()));
    local_reply(status, Bytes::from_static(message.as_bytes()), audit)
}

/// The answer to a request body that could not be read whole: `400` when it `failed` (Envoy
/// would reset the stream; a middleware can only refuse it), else `413`, over the limit.
fn unread_body<B: Body>(exchange: Option<Exchange>, failed: bool) -> Response<WafBody<B>> {
    if failed {
        abandon(exchange, StatusCode::BAD_REQUEST, BODY_FAILED)
    } else {
        abandon(exchange, StatusCode::PAYLOAD_TOO_LARGE, PAYLOAD_TOO_LARGE)
    }
}

impl<S, ReqB, ResB> Future for ResponseFuture<S, ReqB, ResB>
where
    S: Service<Request<WafBody<ReqB>>, Response = Response<ResB>>,
    ReqB: Body,
    ResB: Body,
{
    type Output = Result<Response<WafBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let settings: &Settings = this.settings;
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::RequestHead {
                    evaluation,
                    body,
                    service,
                } => {
                    let step = ready!(Pin::new(evaluation).poll(cx));
                    let (Some(body), Some(mut service)) = (body.take(), service.take()) else {
                        return Poll::Ready(Ok(lost(settings)));
                    };
                    let (parts, exchange) = match step {
                        Err(_) => return Poll::Ready(Ok(evaluation_failed(settings))),
                        Ok((_, Verdict::Refuse(it, audit))) => {
                            return Poll::Ready(Ok(refused(it, audit, settings)))
                        }
                        Ok((parts, Verdict::Pass(exchange))) => (parts, exchange),
                    };
                    let request = Request::from_parts(parts, WafBody::stream(body));
                    State::Inner {
                        future: service.call(request),
                        exchange: Some(exchange),
                    }
                }
                StateProj::RequestBody {
                    mut body,
                    buffer,
                    head,
                    early,
                    exchange,
                    parts,
                    service,
                } => {
                    let limit = settings.max_body_bytes;
                    if let Some(evaluation) = head {
                        let step = ready!(Pin::new(evaluation).poll(cx));
                        *head = None;
                        match step {
                            Err(_) => return Poll::Ready(Ok(evaluation_failed(settings))),
                            Ok((_, Verdict::Refuse(it, audit))) => {
                                return Poll::Ready(Ok(refused(it, audit, settings)))
                            }
                            Ok((passed, Verdict::Pass(ex))) => {
                                *parts = Some(passed);
                                *exchange = Some(ex);
                            }
                        }
                        let failed = match early.take() {
                            Some(Polled::Failed(_)) => Some(true),
                            Some(Polled::TooLarge) => Some(false),
                            _ => (body.size_hint().lower() > limit as u64).then_some(false),
                        };
                        if let Some(failed) = failed {
                            return Poll::Ready(Ok(unread_body(exchange.take(), failed)));
                        }
                    }
                    if exchange.is_none() {
                        // Nothing evaluated yet: read what is already there (unless the body
                        // is known to be too large: that is refused after phase 1).
                        let polled = if body.size_hint().lower() > limit as u64 {
                            Poll::Pending
                        } else {
                            buffer.poll_read(body.as_mut(), limit, cx)
                        };
                        let Some(request) = parts.take() else {
                            return Poll::Ready(Ok(lost(settings)));
                        };
                        let settings = this.settings.clone();
                        match polled {
                            Poll::Ready(Polled::Done) => {
                                // The whole body is here: one trip for phases 1 and 2.
                                let Some(service) = service.take() else {
                                    return Poll::Ready(Ok(lost(settings.as_ref())));
                                };
                                let (data, trailers) = buffer.take();
                                let inspected = data.clone();
                                let evaluation = Evaluation::spawn(move || {
                                    match request_head(&settings, request, false) {
                                        (parts, Verdict::Pass(exchange)) => {
                                            (parts, request_body(exchange, inspected))
                                        }
                                        other => other,
                                    }
                                });
                                State::RequestBodyEvaluation {
                                    evaluation,
                                    service: Some(service),
                                    body: Some((data, trailers)),
                                }
                            }
                            // The rest of the body is still to come (or it cannot be read):
                            // phase 1 now, the body after.
                            polled => {
                                if let Poll::Ready(outcome) = polled {
                                    *early = Some(outcome);
                                }
                                *head = Some(Evaluation::spawn(move || {
                                    request_head(&settings, request, false)
                                }));
                                continue;
                            }
                        }
                    } else {
                        let polled = ready!(buffer.poll_read(body, limit, cx));
                        let (Some(exchange), Some(parts), Some(service)) =
                            (exchange.take(), parts.take(), service.take())
                        else {
                            return Poll::Ready(Ok(lost(settings)));
                        };
                        let failed = match polled {
                            Polled::Done => None,
                            Polled::TooLarge => Some(false),
                            Polled::Failed(_) => Some(true),
                        };
                        if let Some(failed) = failed {
                            return Poll::Ready(Ok(unread_body(Some(exchange), failed)));
                        }
                        let (data, trailers) = buffer.take();
                        let inspected = data.clone();
                        State::RequestBodyEvaluation {
                            evaluation: Evaluation::spawn(move || {
                                (parts, request_body(exchange, inspected))
                            }),
                            service: Some(service),
                            body: Some((data, trailers)),
                        }
                    }
                }
                StateProj::RequestBodyEvaluation {
                    evaluation,
                    service,
                    body,
                } => {
                    let step = ready!(Pin::new(evaluation).poll(cx));
                    let (Some(mut service), Some((data, trailers))) = (service.take(), body.take())
                    else {
                        return Poll::Ready(Ok(lost(settings)));
                    };
                    match step {
                        Err(_) => return Poll::Ready(Ok(evaluation_failed(settings))),
                        Ok((_, Verdict::Refuse(it, audit))) => {
                            return Poll::Ready(Ok(refused(it, audit, settings)))
                        }
                        Ok((parts, Verdict::Pass(exchange))) => {
                            let body = WafBody::buffered(data, trailers);
                            State::Inner {
                                future: service.call(Request::from_parts(parts, body)),
                                exchange: Some(exchange),
                            }
                        }
                    }
                }
                StateProj::Inner { future, exchange } => {
                    let response = ready!(future.poll(cx))?;
                    let Some(exchange) = exchange.take() else {
                        return Poll::Ready(Ok(lost(settings)));
                    };
                    let (parts, body) = response.into_parts();
                    if settings.response_headers_only || body.is_end_stream() {
                        State::ResponseEvaluation {
                            evaluation: Evaluation::spawn(move || {
                                inspect_response(exchange, parts, Bytes::new())
                            }),
                            body: Some(WafBody::stream(body)),
                        }
                    } else {
                        State::ResponseBody {
                            // Boxed so that a body longer than the limit can be handed on
                            // after its inspected head.
                            body: Some(Box::pin(body)),
                            buffer: BodyBuffer::default(),
                            exchange: Some(exchange),
                            parts: Some(parts),
                        }
                    }
                }
                StateProj::ResponseBody {
                    body,
                    buffer,
                    exchange,
                    parts,
                } => {
                    let Some(stream) = body.as_mut() else {
                        return Poll::Ready(Ok(lost(settings)));
                    };
                    let polled =
                        ready!(buffer.poll_read(stream.as_mut(), settings.max_body_bytes, cx));
                    let (Some(stream), Some(exchange), Some(parts)) =
                        (body.take(), exchange.take(), parts.take())
                    else {
                        return Poll::Ready(Ok(lost(settings)));
                    };
                    let (data, trailers) = buffer.take();
                    let (inspected, body) = match polled {
                        Polled::Done => (data.clone(), WafBody::buffered(data, trailers)),
                        // Over the limit: its head is inspected and the rest streams
                        // (ModSecurity's `ProcessPartial`).
                        Polled::TooLarge => (
                            data.slice(..settings.max_body_bytes.min(data.len())),
                            WafBody::prefixed(data, stream),
                        ),
                        Polled::Failed(e) => (data, WafBody::failed(e)),
                    };
                    State::ResponseEvaluation {
                        evaluation: Evaluation::spawn(move || {
                            inspect_response(exchange, parts, inspected)
                        }),
                        body: Some(body),
                    }
                }
                StateProj::ResponseEvaluation { evaluation, body } => {
                    let step = ready!(Pin::new(evaluation).poll(cx));
                    let Some(body) = body.take() else {
                        return Poll::Ready(Ok(lost(settings)));
                    };
                    let response = match step {
                        Err(_) => evaluation_failed(settings),
                        Ok((_, Some(it), audit)) => refused(it, audit, settings),
                        Ok((parts, None, audit)) => {
                            let mut response = Response::from_parts(parts, body);
                            if let Some(audit) = audit {
                                response.extensions_mut().insert(audit);
                            }
                            response
                        }
                    };
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                // Polling again after completion is a caller bug; it never completes.
                StateProj::Done => return Poll::Pending,
            };
            this.state.set(next);
        }
    }
}

impl<S, ReqB, ResB> std::fmt::Debug for ResponseFuture<S, ReqB, ResB>
where
    S: Service<Request<WafBody<ReqB>>, Response = Response<ResB>>,
    ReqB: Body,
    ResB: Body,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::RequestHead { .. } => "RequestHead",
            State::RequestBody { .. } => "RequestBody",
            State::RequestBodyEvaluation { .. } => "RequestBodyEvaluation",
            State::Inner { .. } => "Inner",
            State::ResponseBody { .. } => "ResponseBody",
            State::ResponseEvaluation { .. } => "ResponseEvaluation",
            State::Done => "Done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
