//! The response future of [`AwsLambda`](super::AwsLambda).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use http_body_util::Either;
use pin_project_lite::pin_project;

use super::service::LambdaBody;

/// An invocation in progress: it awaits credentials and buffers both bodies, so it is one boxed
/// future (the allocation is nothing next to a call to AWS).
type Invocation<ResB, E> =
    Pin<Box<dyn Future<Output = Result<Response<LambdaBody<ResB>>, E>> + Send>>;

pin_project! {
    /// Response future of [`AwsLambda`](super::AwsLambda): the inner service's own future for
    /// a request that is not an invocation, else the invocation.
    pub struct ResponseFuture<F, ResB, E> {
        #[pin]
        kind: Kind<F, ResB, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, ResB, E> {
        Passthrough { #[pin] future: F },
        Invoke { future: Invocation<ResB, E> },
    }
}

impl<F, ResB, E> ResponseFuture<F, ResB, E> {
    pub(crate) fn passthrough(future: F) -> Self {
        ResponseFuture {
            kind: Kind::Passthrough { future },
        }
    }

    pub(crate) fn invoke(future: Invocation<ResB, E>) -> Self {
        ResponseFuture {
            kind: Kind::Invoke { future },
        }
    }
}

impl<F, ResB, E> Future for ResponseFuture<F, ResB, E>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = Result<Response<LambdaBody<ResB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Passthrough { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map(Either::Left)))
            }
            KindProj::Invoke { future } => future.as_mut().poll(cx),
        }
    }
}
