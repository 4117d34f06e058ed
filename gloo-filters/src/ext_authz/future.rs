//! The response future of [`ExtAuthz`](super::ExtAuthz).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::Service;

use super::body::ExtAuthzBody;
use super::check::{apply, Mutation};

/// What the check decided. One per request, inside the boxed check future: the size of the
/// request variant costs nothing worth a second allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Decided<ReqBody, ResBody> {
    /// Pass the (changed) request on; add these headers to the response.
    Forward {
        request: Request<ExtAuthzBody<ReqBody>>,
        response_headers: Vec<Mutation>,
    },
    /// Answer with this.
    Respond(Response<ResBody>),
}

/// The check in flight: buffering the body and calling the server (one allocation per
/// request; the gRPC call's future cannot be named).
pub(crate) type Deciding<ReqBody, ResBody> =
    Pin<Box<dyn Future<Output = Decided<ReqBody, ResBody>> + Send>>;

pin_project! {
    /// Response future of [`ExtAuthz`](super::ExtAuthz): the check, then the inner service's
    /// future (whose response gets the headers the server asked for), or the middleware's
    /// own answer.
    pub struct ResponseFuture<S, ReqBody, ResBody>
    where
        S: Service<Request<ExtAuthzBody<ReqBody>>>,
    {
        #[pin]
        state: State<S, ReqBody, ResBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, ResBody>
    where
        S: Service<Request<ExtAuthzBody<ReqBody>>>,
    {
        Checking {
            decision: Deciding<ReqBody, ResBody>,
            inner: Option<S>,
        },
        Calling {
            #[pin]
            future: S::Future,
            response_headers: Vec<Mutation>,
        },
        Done,
    }
}

impl<S, ReqBody, ResBody> ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ExtAuthzBody<ReqBody>>>,
{
    pub(crate) fn new(decision: Deciding<ReqBody, ResBody>, inner: S) -> Self {
        Self {
            state: State::Checking {
                decision,
                inner: Some(inner),
            },
        }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ExtAuthzBody<ReqBody>>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Checking { decision, inner } => {
                    let decided = ready!(decision.as_mut().poll(cx));
                    match decided {
                        Decided::Respond(response) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(response));
                        }
                        Decided::Forward {
                            request,
                            response_headers,
                        } => {
                            let Some(mut inner) = inner.take() else {
                                this.state.set(State::Done);
                                panic!("ResponseFuture polled after completion");
                            };
                            let future = inner.call(request);
                            this.state.set(State::Calling {
                                future,
                                response_headers,
                            });
                        }
                    }
                }
                StateProj::Calling {
                    future,
                    response_headers,
                } => {
                    let mut response = ready!(future.poll(cx))?;
                    apply(response.headers_mut(), response_headers);
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

impl<S, ReqBody, ResBody> std::fmt::Debug for ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ExtAuthzBody<ReqBody>>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Checking { .. } => "Checking",
            State::Calling { .. } => "Calling",
            State::Done => "Done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
