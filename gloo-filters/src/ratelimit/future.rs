//! The response future of [`LocalRateLimit`](super::LocalRateLimit).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Response};
use pin_project_lite::pin_project;

static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The `x-ratelimit-*` values of one answer (Envoy's `DRAFT_VERSION_03` headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RateLimitHeaders {
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    pub(crate) reset: u64,
}

impl RateLimitHeaders {
    /// Appends the three headers. Envoy uses `addReferenceKey`, which appends too: a value the
    /// inner service already set is kept and this one follows it.
    pub(crate) fn append_to(self, headers: &mut HeaderMap) {
        headers.append(X_RATELIMIT_LIMIT.clone(), HeaderValue::from(self.limit));
        headers.append(
            X_RATELIMIT_REMAINING.clone(),
            HeaderValue::from(self.remaining),
        );
        headers.append(X_RATELIMIT_RESET.clone(), HeaderValue::from(self.reset));
    }
}

pin_project! {
    /// Response future of [`LocalRateLimit`](super::LocalRateLimit): either the ready
    /// `local_rate_limited` answer, or the inner service's future plus the `x-ratelimit-*`
    /// headers to add to its response.
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Limited {
            response: Option<Response<B>>,
        },
        Inner {
            #[pin]
            future: F,
            headers: Option<RateLimitHeaders>,
        },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn limited(response: Response<B>) -> Self {
        Self {
            kind: Kind::Limited {
                response: Some(response),
            },
        }
    }

    pub(crate) fn inner(future: F, headers: Option<RateLimitHeaders>) -> Self {
        Self {
            kind: Kind::Inner { future, headers },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Limited { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("ResponseFuture polled after completion"),
            },
            KindProj::Inner { future, headers } => {
                let mut response = ready!(future.poll(cx))?;
                if let Some(headers) = headers.take() {
                    headers.append_to(response.headers_mut());
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Limited { .. } => "Limited",
            Kind::Inner { .. } => "Inner",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}
