//! [`FilterBody`], the body a buffering filter hands on (the original body streamed through
//! untouched, or a complete body it buffered or produced), and the bounded buffer such filters
//! read bodies into. Shared by the `transform` and `waf` layers.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The body of a request passed to a filter's inner service, or of a response returned by
    /// the filter: the original body streamed through untouched, a complete (buffered,
    /// transformed or locally produced) body with the original trailers, or a buffered head
    /// followed by the rest of the original body.
    pub struct FilterBody<B: Body> {
        #[pin]
        kind: Kind<B, B::Error>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B, E> {
        Stream { #[pin] body: B },
        Full { data: Option<Bytes>, trailers: Option<HeaderMap> },
        Prefixed { data: Option<Bytes>, rest: Pin<Box<B>> },
        Failed { error: Option<E> },
    }
}

impl<B: Body> FilterBody<B> {
    /// The original body, streamed.
    pub fn stream(body: B) -> Self {
        Self {
            kind: Kind::Stream { body },
        }
    }

    /// A complete body.
    pub fn full(data: impl Into<Bytes>) -> Self {
        Self::buffered(data.into(), None)
    }

    pub(crate) fn buffered(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        Self {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
                trailers,
            },
        }
    }

    /// `data` (the part of `rest` already read), then what is left of `rest`.
    #[cfg_attr(not(feature = "waf"), allow(dead_code))]
    pub(crate) fn prefixed(data: Bytes, rest: Pin<Box<B>>) -> Self {
        Self {
            kind: Kind::Prefixed {
                data: (!data.is_empty()).then_some(data),
                rest,
            },
        }
    }

    /// A body that fails with `error` (the original body failed while it was buffered).
    pub(crate) fn failed(error: B::Error) -> Self {
        Self {
            kind: Kind::Failed { error: Some(error) },
        }
    }

    /// The data of a complete body; `None` for a streamed, prefixed or failed one.
    #[cfg(feature = "extproc-transform")]
    pub(crate) fn into_full(self) -> Option<Bytes> {
        match self.kind {
            Kind::Full { data, .. } => Some(data.unwrap_or_default()),
            _ => None,
        }
    }

    /// Whether this is the original body streamed through (as opposed to a buffered one).
    pub fn is_streamed(&self) -> bool {
        matches!(self.kind, Kind::Stream { .. })
    }
}

fn to_bytes<D: Buf, E>(frame: Option<Result<Frame<D>, E>>) -> Option<Result<Frame<Bytes>, E>> {
    frame.map(|f| f.map(|f| f.map_data(|mut d| d.copy_to_bytes(d.remaining()))))
}

impl<B: Body> Body for FilterBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Stream { body } => body.poll_frame(cx).map(to_bytes),
            KindProj::Full { data, trailers } => Poll::Ready(
                data.take()
                    .map(Frame::data)
                    .or_else(|| trailers.take().map(Frame::trailers))
                    .map(Ok),
            ),
            KindProj::Prefixed { data, rest } => match data.take() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None => rest.as_mut().poll_frame(cx).map(to_bytes),
            },
            KindProj::Failed { error } => Poll::Ready(error.take().map(Err)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Stream { body } => body.is_end_stream(),
            Kind::Full { data, trailers } => data.is_none() && trailers.is_none(),
            Kind::Prefixed { data, rest } => data.is_none() && rest.is_end_stream(),
            Kind::Failed { error } => error.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Stream { body } => body.size_hint(),
            Kind::Full { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Prefixed { data, rest } => {
                let head = data.as_ref().map_or(0, |d| d.len() as u64);
                let rest = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(head));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(head));
                }
                hint
            }
            Kind::Failed { .. } => SizeHint::default(),
        }
    }
}

impl<B: Body> fmt::Debug for FilterBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Stream { .. } => f.write_str("FilterBody::Stream"),
            Kind::Full { data, .. } => f
                .debug_struct("FilterBody::Full")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            Kind::Prefixed { data, .. } => f
                .debug_struct("FilterBody::Prefixed")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            Kind::Failed { .. } => f.write_str("FilterBody::Failed"),
        }
    }
}

/// A body being buffered, up to a limit.
#[derive(Debug, Default)]
pub(crate) struct BodyBuffer {
    data: BytesMut,
    trailers: Option<HeaderMap>,
}

/// How reading a body into a [`BodyBuffer`] ended.
pub(crate) enum Polled<E> {
    /// The whole body (and its trailers) is in the buffer.
    Done,
    /// The body is longer than the limit: the buffer holds what was read, the frame that
    /// crossed the limit included; the rest is still in the body.
    TooLarge,
    /// The body failed.
    Failed(E),
}

impl BodyBuffer {
    /// Reads `body` to its end, stopping once more than `limit` bytes were read.
    pub(crate) fn poll_read<B: Body>(
        &mut self,
        mut body: Pin<&mut B>,
        limit: usize,
        cx: &mut Context<'_>,
    ) -> Poll<Polled<B::Error>> {
        loop {
            match ready!(body.as_mut().poll_frame(cx)) {
                None => return Poll::Ready(Polled::Done),
                Some(Err(e)) => return Poll::Ready(Polled::Failed(e)),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(mut data) => {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            self.data.extend_from_slice(chunk);
                            let n = chunk.len();
                            data.advance(n);
                        }
                        if self.data.len() > limit {
                            return Poll::Ready(Polled::TooLarge);
                        }
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            match &mut self.trailers {
                                Some(existing) => existing.extend(trailers),
                                None => self.trailers = Some(trailers),
                            }
                        }
                    }
                },
            }
        }
    }

    /// The data read so far and the trailers, leaving the buffer empty.
    pub(crate) fn take(&mut self) -> (Bytes, Option<HeaderMap>) {
        (
            std::mem::take(&mut self.data).freeze(),
            self.trailers.take(),
        )
    }
}
