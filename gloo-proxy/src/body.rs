//! The one body type that flows through the proxy, in both directions.
//!
//! Requests arrive as hyper's [`Incoming`] and are forwarded as they are (streamed); local
//! answers (direct responses, redirects, errors) are a few bytes; retried or mirrored
//! requests replay buffered bytes; filters may produce any body, which is boxed. An enum keeps
//! the common cases free of allocation.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;

/// Errors a body can produce while streaming.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request or response body inside the proxy.
///
/// ```
/// use gloo_proxy::body::Body;
/// use http_body::Body as _;
/// let body = Body::from("hello");
/// assert_eq!(body.size_hint().exact(), Some(5));
/// ```
#[derive(Debug, Default)]
pub struct Body {
    kind: Kind,
}

#[derive(Debug, Default)]
enum Kind {
    #[default]
    Empty,
    Full(Option<Bytes>),
    Incoming(Incoming),
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Body { kind: Kind::Empty }
    }

    /// A body of these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Body::empty();
        }
        Body {
            kind: Kind::Full(Some(bytes)),
        }
    }

    /// Any other body, boxed.
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        use http_body_util::BodyExt;
        Body {
            kind: Kind::Boxed(body.map_err(Into::into).boxed_unsync()),
        }
    }

    /// The bytes of a body known in full (empty or built from bytes), without consuming it.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::Empty => Some(&[]),
            Kind::Full(Some(b)) => Some(b),
            Kind::Full(None) => Some(&[]),
            _ => None,
        }
    }
}

impl From<Incoming> for Body {
    fn from(body: Incoming) -> Self {
        Body {
            kind: Kind::Incoming(body),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body::full(bytes)
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Body::full(Bytes::from_static(text.as_bytes()))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::full(text)
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Incoming(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Kind::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Incoming(body) => body.is_end_stream(),
            Kind::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map(|b| b.len() as u64).unwrap_or(0))
            }
            Kind::Incoming(body) => body.size_hint(),
            Kind::Boxed(body) => body.size_hint(),
        }
    }
}

/// Wraps the body of `req` so the returned [`Notify`](tokio::sync::Notify) is notified once
/// the body has been read to its end (or dropped unread). Used for the connection manager's
/// `request_timeout`, whose clock stops when the whole request has arrived.
pub fn notify_on_end(
    req: http::Request<Body>,
) -> (http::Request<Body>, std::sync::Arc<tokio::sync::Notify>) {
    let notify = std::sync::Arc::new(tokio::sync::Notify::new());
    let (parts, body) = req.into_parts();
    let body = Body::new(NotifyOnEnd {
        inner: body,
        notify: Some(notify.clone()),
    });
    (http::Request::from_parts(parts, body), notify)
}

struct NotifyOnEnd {
    inner: Body,
    notify: Option<std::sync::Arc<tokio::sync::Notify>>,
}

impl NotifyOnEnd {
    fn ended(&mut self) {
        if let Some(n) = self.notify.take() {
            n.notify_one();
        }
    }
}

impl Drop for NotifyOnEnd {
    fn drop(&mut self) {
        self.ended();
    }
}

impl http_body::Body for NotifyOnEnd {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_))))
            || self.inner.is_end_stream()
        {
            self.ended();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
