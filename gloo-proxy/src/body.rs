//! The one body type that flows through the proxy, in both directions.
//!
//! Requests arrive as hyper's [`Incoming`] and are forwarded as they are (streamed); local
//! answers (direct responses, redirects, errors) are a few bytes; retried or mirrored
//! requests replay buffered bytes; filters may produce any body, which is boxed. An enum keeps
//! the common cases free of allocation.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use gloo_proxy::body::{time_limited, Body};
//! use http_body::Frame;
//! use http_body_util::{BodyExt, StreamBody};
//! use futures_util::stream;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gloo_proxy::body::BoxError> {
//! // A local answer: its bytes are known without reading it (retries and mirrors replay them).
//! let local = Body::from("no healthy upstream");
//! assert_eq!(local.as_bytes(), Some(&b"no healthy upstream"[..]));
//!
//! // A filter's own body (any `http_body::Body` of `Bytes`) is boxed and streamed.
//! let frames = ["hello, ", "world"].map(|s| Ok::<_, std::io::Error>(Frame::data(Bytes::from(s))));
//! let streamed = Body::new(StreamBody::new(stream::iter(frames)));
//! assert_eq!(streamed.as_bytes(), None);
//! assert_eq!(streamed.collect().await?.to_bytes(), "hello, world");
//!
//! // An upstream that stops sending mid-body: the stream idle timeout fails the body.
//! let stalled = stream::pending::<Result<Frame<Bytes>, std::io::Error>>();
//! let idle = Some(Duration::from_millis(20));
//! let body = time_limited(Body::new(StreamBody::new(stalled)), idle, None);
//! assert!(body.collect().await.is_err());
//! # Ok(())
//! # }
//! ```

use std::future::Future;
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

    /// Any other body, boxed (a `Body` is returned as it is).
    ///
    /// ```
    /// use gloo_proxy::body::Body;
    /// use http_body_util::Full;
    ///
    /// let boxed = Body::new(Full::new(bytes::Bytes::from("hello")));
    /// assert_eq!(boxed.as_bytes(), None); // streamed: its bytes are not known up front
    /// let same = Body::new(Body::from("hello"));
    /// assert_eq!(same.as_bytes(), Some(&b"hello"[..]));
    /// ```
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        use http_body_util::BodyExt;
        let mut body = Some(body);
        if let Some(same) = (&mut body as &mut dyn std::any::Any).downcast_mut::<Option<Body>>() {
            return same.take().unwrap_or_default();
        }
        let Some(body) = body else {
            return Body::empty();
        };
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

/// When something last happened, as milliseconds after an origin in one atomic, so any
/// thread can record activity and any task read it. Connections (their last stream's end)
/// and streams (their last body frame) keep their idle clocks with it.
#[derive(Debug)]
pub(crate) struct LastActivity {
    origin: tokio::time::Instant,
    after_ms: std::sync::atomic::AtomicU64,
}

impl LastActivity {
    /// Last active now, which is also the origin.
    pub(crate) fn new() -> Self {
        LastActivity {
            origin: tokio::time::Instant::now(),
            after_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// When the clock started.
    pub(crate) fn origin(&self) -> tokio::time::Instant {
        self.origin
    }

    /// Records activity now.
    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.after_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// When the last activity was.
    pub(crate) fn at(&self) -> tokio::time::Instant {
        self.origin
            + std::time::Duration::from_millis(
                self.after_ms.load(std::sync::atomic::Ordering::Relaxed),
            )
    }
}

/// When a stream last moved bytes, for the stream idle timeout: request body frames going
/// upstream count as activity while the answer is awaited.
#[derive(Debug, Clone)]
pub struct IdleClock(std::sync::Arc<LastActivity>);

impl IdleClock {
    /// A clock whose last activity is now.
    pub fn new() -> Self {
        IdleClock(std::sync::Arc::new(LastActivity::new()))
    }

    /// Completes once nothing has moved for `idle`.
    pub async fn idle_for(&self, idle: std::time::Duration) {
        loop {
            tokio::time::sleep_until(self.0.at() + idle).await;
            if self.0.at() + idle <= tokio::time::Instant::now() {
                return;
            }
        }
    }

    /// `body`, counting each frame read as activity.
    pub fn watch(&self, body: Body) -> Body {
        Body::new(RequestActivity {
            inner: body,
            clock: self.clone(),
        })
    }
}

impl Default for IdleClock {
    fn default() -> Self {
        Self::new()
    }
}

struct RequestActivity {
    inner: Body,
    clock: IdleClock,
}

impl http_body::Body for RequestActivity {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if polled.is_ready() {
            self.clock.0.touch();
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

/// A response body bounded by the stream idle timeout (`idle`: no frame for that long) and
/// by the route timeout (`deadline`: Envoy's route timeout covers the response until it has
/// been completely received). When either runs out while the body still has to wait, the
/// body fails and the stream is reset, as Envoy resets a stream whose headers were already
/// sent. A body already complete is returned as it is; the timer is armed only once the body
/// has to wait, so a body that arrives promptly costs no timer at all.
pub fn time_limited(
    body: Body,
    idle: Option<std::time::Duration>,
    deadline: Option<tokio::time::Instant>,
) -> Body {
    if (idle.is_none() && deadline.is_none())
        || http_body::Body::is_end_stream(&body)
        || body.as_bytes().is_some()
    {
        return body;
    }
    Body::new(TimeLimited {
        inner: body,
        idle,
        deadline,
        last: tokio::time::Instant::now(),
        timer: None,
    })
}

struct TimeLimited {
    inner: Body,
    idle: Option<std::time::Duration>,
    deadline: Option<tokio::time::Instant>,
    last: tokio::time::Instant,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl TimeLimited {
    /// The earlier of the idle deadline (from the last frame) and the route deadline, and
    /// which of the two it is.
    fn next_deadline(&self) -> (tokio::time::Instant, &'static str) {
        let idle = self
            .idle
            .map(|idle| (self.last + idle, "stream idle timeout"));
        let route = self.deadline.map(|d| (d, "upstream request timeout"));
        match (idle, route) {
            (Some(i), Some(r)) if r.0 < i.0 => r,
            (Some(i), _) => i,
            (None, Some(r)) => r,
            // `time_limited` wraps only bodies with at least one limit.
            (None, None) => (self.last, "timeout"),
        }
    }
}

impl http_body::Body for TimeLimited {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.last = tokio::time::Instant::now();
            return Poll::Ready(frame);
        }
        // Armed (or moved to the next deadline) only now that the body has to wait.
        let (deadline, reason) = this.next_deadline();
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Some(Err(reason.into()))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::time::Duration;

    /// A body that yields its chunks, then nothing for ever (never ends).
    struct Chunks(std::sync::Mutex<Vec<Bytes>>);

    fn stalls_after_one_chunk() -> Body {
        Body::new(Chunks(std::sync::Mutex::new(vec![Bytes::from_static(
            b"first",
        )])))
    }

    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            match self.0.lock().ok().and_then(|mut v| v.pop()) {
                Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                None => Poll::Pending,
            }
        }
    }

    #[tokio::test]
    async fn a_watched_response_body_fails_when_it_stalls_past_the_idle_timeout() {
        let mut body = time_limited(
            stalls_after_one_chunk(),
            Some(Duration::from_millis(100)),
            None,
        );
        let first = body.frame().await.expect("a frame").expect("data");
        assert_eq!(first.into_data().ok(), Some(Bytes::from_static(b"first")));
        let started = std::time::Instant::now();
        let stalled = body.frame().await.expect("an outcome");
        assert!(stalled.is_err(), "a stalled body must fail");
        assert!(started.elapsed() >= Duration::from_millis(90));
    }

    #[tokio::test]
    async fn a_response_body_fails_at_the_route_deadline_even_while_frames_come() {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(120);
        let mut body = time_limited(stalls_after_one_chunk(), None, Some(deadline));
        assert!(body.frame().await.expect("a frame").is_ok());
        let stalled = body.frame().await.expect("an outcome");
        let error = stalled.expect_err("the body must fail at the deadline");
        assert_eq!(error.to_string(), "upstream request timeout");
        assert!(tokio::time::Instant::now() >= deadline);
        // A body known in full is never wrapped, whatever the deadline.
        let whole = time_limited(Body::from("done"), Some(Duration::ZERO), Some(deadline));
        assert_eq!(whole.as_bytes(), Some(&b"done"[..]));
    }

    #[tokio::test]
    async fn idle_for_waits_out_activity() {
        let clock = IdleClock::new();
        let idle = Duration::from_millis(150);
        let toucher = clock.clone();
        let started = std::time::Instant::now();
        let keep_busy = async {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(80)).await;
                toucher.0.touch();
            }
        };
        tokio::join!(clock.idle_for(idle), keep_busy);
        // Touched at 80, 160 and 240 ms: idle only from 240 + 150 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(380),
            "{:?}",
            started.elapsed()
        );
    }
}
