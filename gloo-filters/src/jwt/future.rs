//! The response future of [`JwtAuthn`](super::JwtAuthn).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::Service;

use super::layer::Settings;
use super::service::{insert_verified, rejection, VerifiedJwt};
use super::status::JwtStatus;

/// The request head after verification, and what verification found.
pub(crate) type VerifyOutcome = (Parts, Result<Vec<VerifiedJwt>, JwtStatus>);

/// Verification that had to wait for a remote JWKS (boxed: it only happens on a cache miss).
pub(crate) type VerifyFuture = Pin<Box<dyn Future<Output = VerifyOutcome> + Send>>;

pin_project! {
    /// Response future of [`JwtAuthn`](super::JwtAuthn): the ready refusal, the inner
    /// service's future, or (only while a remote JWKS is fetched) the verification, then the
    /// inner service's future.
    pub struct ResponseFuture<F, S, ReqB, ResB> {
        #[pin]
        kind: Kind<F, S, ReqB, ResB>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, S, ReqB, ResB> {
        Rejected {
            response: Option<Response<ResB>>,
        },
        Inner {
            #[pin]
            future: F,
        },
        Verifying {
            verify: VerifyFuture,
            pending: Option<(S, ReqB)>,
            settings: Settings,
        },
    }
}

impl<F, S, ReqB, ResB> ResponseFuture<F, S, ReqB, ResB> {
    pub(crate) fn rejected(response: Response<ResB>) -> Self {
        Self {
            kind: Kind::Rejected {
                response: Some(response),
            },
        }
    }

    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    pub(crate) fn verifying(
        verify: VerifyFuture,
        service: S,
        body: ReqB,
        settings: Settings,
    ) -> Self {
        Self {
            kind: Kind::Verifying {
                verify,
                pending: Some((service, body)),
                settings,
            },
        }
    }
}

impl<S, ReqB, ResB> Future for ResponseFuture<S::Future, S, ReqB, ResB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: From<Bytes>,
{
    type Output = Result<Response<ResB>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut kind = self.project().kind;
        loop {
            match kind.as_mut().project() {
                KindProj::Rejected { response } => match response.take() {
                    Some(response) => return Poll::Ready(Ok(response)),
                    None => panic!("ResponseFuture polled after completion"),
                },
                KindProj::Inner { future } => return future.poll(cx),
                KindProj::Verifying {
                    verify,
                    pending,
                    settings,
                } => {
                    let (mut parts, result) = ready!(verify.as_mut().poll(cx));
                    let verified = match result {
                        Ok(verified) => verified,
                        Err(status) => {
                            let response = rejection(status, &parts, settings);
                            kind.set(Kind::Rejected { response: None });
                            return Poll::Ready(Ok(response));
                        }
                    };
                    let Some((mut service, body)) = pending.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    insert_verified(&mut parts.extensions, verified);
                    let future = service.call(Request::from_parts(parts, body));
                    kind.set(Kind::Inner { future });
                }
            }
        }
    }
}

impl<F, S, ReqB, ResB> fmt::Debug for ResponseFuture<F, S, ReqB, ResB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Rejected { .. } => "Rejected",
            Kind::Inner { .. } => "Inner",
            Kind::Verifying { .. } => "Verifying",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}
