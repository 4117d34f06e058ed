//! [`TransformBody`]: the body the layer hands on, either streamed untouched or buffered.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The body of a request passed to the inner service, or of a response returned by the
    /// layer: the original body streamed through untouched, or a complete (buffered,
    /// transformed or locally produced) body with the original trailers.
    pub struct TransformBody<B: Body> {
        #[pin]
        kind: Kind<B, B::Error>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B, E> {
        Stream { #[pin] body: B },
        Full { data: Option<Bytes>, trailers: Option<HeaderMap> },
        Failed { error: Option<E> },
    }
}

impl<B: Body> TransformBody<B> {
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

    /// A body that fails with `error` (the original body failed while it was buffered).
    pub(crate) fn failed(error: B::Error) -> Self {
        Self {
            kind: Kind::Failed { error: Some(error) },
        }
    }

    /// Whether this is the original body streamed through (as opposed to a buffered one).
    pub fn is_streamed(&self) -> bool {
        matches!(self.kind, Kind::Stream { .. })
    }
}

impl<B: Body> Body for TransformBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Stream { body } => body.poll_frame(cx).map(|frame| {
                frame.map(|f| f.map(|f| f.map_data(|mut d| d.copy_to_bytes(d.remaining()))))
            }),
            KindProj::Full { data, trailers } => Poll::Ready(
                data.take()
                    .map(Frame::data)
                    .or_else(|| trailers.take().map(Frame::trailers))
                    .map(Ok),
            ),
            KindProj::Failed { error } => Poll::Ready(error.take().map(Err)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Stream { body } => body.is_end_stream(),
            Kind::Full { data, trailers } => data.is_none() && trailers.is_none(),
            Kind::Failed { error } => error.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Stream { body } => body.size_hint(),
            Kind::Full { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Failed { .. } => SizeHint::default(),
        }
    }
}

impl<B: Body> fmt::Debug for TransformBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Stream { .. } => f.write_str("TransformBody::Stream"),
            Kind::Full { data, .. } => f
                .debug_struct("TransformBody::Full")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            Kind::Failed { .. } => f.write_str("TransformBody::Failed"),
        }
    }
}
