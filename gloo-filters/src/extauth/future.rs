//! The response future of [`ExtAuth`](super::ExtAuth).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use tower::Service;

use super::body::ExtAuthBody;
use super::layer::Settings;
use super::service::{apply_allowed, apply_response_headers, denied_response};
use super::{Allowed, Denied};

/// How the check of one request ended.
// Moved once, out of the (already boxed) check future: boxing the large variant would only
// add an allocation per request.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Checked<B> {
    /// Let through: the head, the body to hand on, what the steps add.
    Allowed(Parts, ExtAuthBody<B>, Allowed),
    /// Refused with this answer.
    Denied(Denied),
}

/// The check of one request.
pub(crate) type CheckFuture<B> = Pin<Box<dyn Future<Output = Checked<B>> + Send>>;

pin_project! {
    /// Response future of [`ExtAuth`](super::ExtAuth): the check (boxed: auth steps are
    /// dynamic), then the inner service's future.
    pub struct ResponseFuture<F, S, B> {
        #[pin]
        state: State<F, S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, B> {
        Checking {
            check: CheckFuture<B>,
            service: Option<S>,
            settings: Arc<Settings>,
        },
        Inner {
            #[pin]
            future: F,
            response_headers: HeaderMap,
        },
        Done,
    }
}

impl<F, S, B> ResponseFuture<F, S, B> {
    pub(crate) fn checking(check: CheckFuture<B>, service: S, settings: Arc<Settings>) -> Self {
        Self {
            state: State::Checking {
                check,
                service: Some(service),
                settings,
            },
        }
    }
}

impl<S, B, ResB> Future for ResponseFuture<S::Future, S, B>
where
    S: Service<Request<ExtAuthBody<B>>, Response = Response<ResB>>,
    ResB: From<Bytes>,
{
    type Output = Result<Response<ResB>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Checking {
                    check,
                    service,
                    settings,
                } => {
                    let (mut parts, body, mut allowed) = match ready!(check.as_mut().poll(cx)) {
                        Checked::Allowed(parts, body, allowed) => (parts, body, allowed),
                        Checked::Denied(denied) => {
                            state.set(State::Done);
                            return Poll::Ready(Ok(denied_response(denied)));
                        }
                    };
                    let Some(mut service) = service.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    apply_allowed(&mut parts, &mut allowed, settings);
                    let future = service.call(Request::from_parts(parts, body));
                    state.set(State::Inner {
                        future,
                        response_headers: allowed.response_headers,
                    });
                }
                StateProj::Inner {
                    future,
                    response_headers,
                } => {
                    let mut response = ready!(future.poll(cx))?;
                    apply_response_headers(response.headers_mut(), response_headers);
                    state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

impl<F, S, B> fmt::Debug for ResponseFuture<F, S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Checking { .. } => "Checking",
            State::Inner { .. } => "Inner",
            State::Done => "Done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
