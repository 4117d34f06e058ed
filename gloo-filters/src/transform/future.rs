//! The response future of [`Transform`](super::Transform).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{request, response, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tower::Service;

use super::body::TransformBody;
use super::layer::ResponseChoice;
use super::service::{local_reply, response_error, Ctx, ReqBody, ResponseStep, PAYLOAD_TOO_LARGE};
use crate::body::{BodyBuffer as Buffer, Polled};

pin_project! {
    /// Response future of [`Transform`](super::Transform): buffers the request body when the
    /// request transformation needs it, calls the inner service, then buffers the response
    /// body when the response transformation needs it.
    pub struct ResponseFuture<S, ReqB, ResB>
    where
        S: Service<Request<TransformBody<ReqB>>, Response = Response<ResB>>,
        ReqB: Body,
        ResB: Body,
    {
        #[pin]
        state: State<S, S::Future, ReqB, ResB>,
        ctx: Option<Ctx>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, F, ReqB, ResB>
    where
        ReqB: Body,
        ResB: Body,
    {
        RequestBody {
            #[pin]
            body: ReqB,
            buffer: Buffer,
            parts: Option<request::Parts>,
            service: Option<S>,
        },
        Inner {
            #[pin]
            future: F,
        },
        ResponseBody {
            #[pin]
            body: ResB,
            buffer: Buffer,
            parts: Option<response::Parts>,
            choice: ResponseChoice,
        },
        Ready {
            response: Option<Response<TransformBody<ResB>>>,
        },
    }
}

impl<S, ReqB, ResB> ResponseFuture<S, ReqB, ResB>
where
    S: Service<Request<TransformBody<ReqB>>, Response = Response<ResB>>,
    ReqB: Body,
    ResB: Body,
{
    pub(crate) fn ready(response: Response<TransformBody<ResB>>) -> Self {
        Self {
            state: State::Ready {
                response: Some(response),
            },
            ctx: None,
        }
    }

    pub(crate) fn inner(ctx: Ctx, future: S::Future) -> Self {
        Self {
            state: State::Inner { future },
            ctx: Some(ctx),
        }
    }

    pub(crate) fn request_body(ctx: Ctx, parts: request::Parts, body: ReqB, service: S) -> Self {
        Self {
            state: State::RequestBody {
                body,
                buffer: Buffer::default(),
                parts: Some(parts),
                service: Some(service),
            },
            ctx: Some(ctx),
        }
    }
}

impl<S, ReqB, ResB> Future for ResponseFuture<S, ReqB, ResB>
where
    S: Service<Request<TransformBody<ReqB>>, Response = Response<ResB>>,
    ReqB: Body,
    ResB: Body,
{
    type Output = Result<Response<TransformBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let StateProj::Ready { response } = this.state.as_mut().project() {
                // Polling again after completion is a caller bug; it never completes.
                return response
                    .take()
                    .map_or(Poll::Pending, |r| Poll::Ready(Ok(r)));
            }
            // Every state but `Ready` is created with a context.
            let Some(ctx) = this.ctx.as_mut() else {
                return Poll::Pending;
            };
            let next = match this.state.as_mut().project() {
                StateProj::RequestBody {
                    body,
                    buffer,
                    parts,
                    service,
                } => {
                    let polled = ready!(buffer.poll_read(body, ctx.max_body_bytes, cx));
                    let (Some(parts), Some(mut service)) = (parts.take(), service.take()) else {
                        return Poll::Pending;
                    };
                    let reply = match polled {
                        Polled::Done => {
                            let (data, trailers) = buffer.take();
                            match ctx.finish_request(parts, ReqBody::Buffered(data, trailers)) {
                                Ok(req) => Ok(service.call(req)),
                                Err(message) => Err(local_reply(StatusCode::BAD_REQUEST, &message)),
                            }
                        }
                        Polled::TooLarge => Err(local_reply(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            PAYLOAD_TOO_LARGE,
                        )),
                        // Envoy would reset the stream; a middleware can only refuse it.
                        Polled::Failed(_) => Err(local_reply(
                            StatusCode::BAD_REQUEST,
                            "bad request: the request body could not be read",
                        )),
                    };
                    match reply {
                        Ok(future) => State::Inner { future },
                        Err(reply) => State::Ready {
                            response: Some(reply),
                        },
                    }
                }
                StateProj::Inner { future } => {
                    let response = ready!(future.poll(cx))?;
                    match ctx.start_response(response) {
                        ResponseStep::Ready(response) => return Poll::Ready(Ok(response)),
                        ResponseStep::Buffer(parts, body, choice) => State::ResponseBody {
                            body,
                            buffer: Buffer::default(),
                            parts: Some(parts),
                            choice,
                        },
                    }
                }
                StateProj::ResponseBody {
                    body,
                    buffer,
                    parts,
                    choice,
                } => {
                    let polled = ready!(buffer.poll_read(body, ctx.max_body_bytes, cx));
                    let Some(parts) = parts.take() else {
                        return Poll::Pending;
                    };
                    let response = match polled {
                        Polled::Done => {
                            let (data, trailers) = buffer.take();
                            ctx.finish_response(parts, ReqBody::Buffered(data, trailers), *choice)
                        }
                        Polled::TooLarge => response_error(
                            parts,
                            StatusCode::PAYLOAD_TOO_LARGE,
                            PAYLOAD_TOO_LARGE.to_owned(),
                        ),
                        Polled::Failed(e) => Response::from_parts(parts, TransformBody::failed(e)),
                    };
                    return Poll::Ready(Ok(response));
                }
                StateProj::Ready { .. } => return Poll::Pending,
            };
            this.state.set(next);
        }
    }
}

impl<S, ReqB, ResB> std::fmt::Debug for ResponseFuture<S, ReqB, ResB>
where
    S: Service<Request<TransformBody<ReqB>>, Response = Response<ResB>>,
    ReqB: Body,
    ResB: Body,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::RequestBody { .. } => "RequestBody",
            State::Inner { .. } => "Inner",
            State::ResponseBody { .. } => "ResponseBody",
            State::Ready { .. } => "Ready",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
