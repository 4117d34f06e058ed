//! The request body after the check: what was buffered for it, then the rest.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;

pin_project! {
    /// The body [`ExtAuth`](super::ExtAuth) hands to its inner service: the part it read for
    /// the check (Envoy's `with_request_body`), then whatever the client still sends,
    /// unchanged. Without body buffering it is the request body as it came.
    pub struct ExtAuthBody<B> {
        prefix: Option<Bytes>,
        #[pin]
        rest: Option<B>,
        trailers: Option<HeaderMap>,
    }
}

impl<B> ExtAuthBody<B> {
    pub(crate) fn new(body: B) -> Self {
        Self {
            prefix: None,
            rest: Some(body),
            trailers: None,
        }
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for ExtAuthBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtAuthBody")
            .field("buffered", &self.prefix.as_ref().map_or(0, Bytes::len))
            .field("rest", &self.rest)
            .finish()
    }
}

impl<B> Body for ExtAuthBody<B>
where
    B: Body,
    B::Data: Into<Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        if let Some(prefix) = this.prefix.take().filter(|p| !p.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        if let Some(rest) = this.rest.as_mut().as_pin_mut() {
            match rest.poll_frame(cx) {
                Poll::Ready(Some(frame)) => {
                    return Poll::Ready(Some(frame.map(|f| f.map_data(Into::into))))
                }
                Poll::Ready(None) => this.rest.set(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.as_ref().is_none_or(Bytes::is_empty)
            && self.rest.as_ref().is_none_or(Body::is_end_stream)
            && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let prefix = self.prefix.as_ref().map_or(0, Bytes::len) as u64;
        let rest = self
            .rest
            .as_ref()
            .map_or(SizeHint::with_exact(0), Body::size_hint);
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(prefix));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(prefix));
        }
        hint
    }
}

/// What reading the body for the check found.
pub(crate) enum Buffered<B> {
    /// The bytes for the check (at most the limit) and the body to hand on.
    Ready(Bytes, ExtAuthBody<B>),
    /// The body is longer than the limit and partial bodies are not allowed.
    TooLarge,
    /// The body failed while it was read.
    Failed,
}

/// Reads up to `max` bytes of `body` for the check (all of it, if it is not longer).
pub(crate) async fn buffer<B>(body: B, max: usize, allow_partial: bool) -> Buffered<B>
where
    B: Body + Unpin,
    B::Data: Into<Bytes>,
{
    let mut body = body;
    let mut data = BytesMut::new();
    let mut trailers = None;
    let mut ended = body.is_end_stream();
    // Read until the body ends or is known to be longer than `max`.
    while !ended && data.len() <= max {
        match body.frame().await {
            None => ended = true,
            Some(Err(_)) => return Buffered::Failed,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(chunk) => data.extend_from_slice(&chunk.into()),
                Err(frame) => {
                    trailers = frame.into_trailers().ok();
                    ended = true;
                }
            },
        }
        ended = ended || body.is_end_stream();
    }
    if data.len() > max && !allow_partial {
        return Buffered::TooLarge;
    }
    let whole = data.freeze();
    let seen = whole.slice(..whole.len().min(max));
    Buffered::Ready(
        seen,
        ExtAuthBody {
            prefix: Some(whole),
            rest: (!ended).then_some(body),
            trailers,
        },
    )
}
