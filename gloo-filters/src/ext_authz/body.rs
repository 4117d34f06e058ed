//! The request body the inner service gets: the original one, or the part buffered for the
//! check followed by the rest of the stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The request body behind [`ExtAuthz`](super::ExtAuthz): the original body untouched
    /// unless the layer buffered part of it for the check (`with_request_body`), in which
    /// case the buffered bytes come first and the rest of the original stream follows, as
    /// Envoy forwards its decoding buffer and then the remaining data.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use gloo_filters::ext_authz::ExtAuthzBody;
    /// use http_body_util::Full;
    ///
    /// // The original body, when nothing was buffered, is handed back without a copy.
    /// let body = ExtAuthzBody::new(Full::new(Bytes::from_static(b"hi")));
    /// assert!(body.into_original().is_ok());
    /// ```
    pub struct ExtAuthzBody<B> {
        prefix: Option<Bytes>,
        // Boxed: rare, and a `HeaderMap` would triple the size of every body.
        trailers: Option<Box<HeaderMap>>,
        #[pin]
        rest: Option<B>,
    }
}

impl<B> ExtAuthzBody<B> {
    /// The original body, unbuffered.
    pub fn new(body: B) -> Self {
        Self {
            prefix: None,
            trailers: None,
            rest: Some(body),
        }
    }

    /// Buffered bytes, then what is left of `rest` (`None` when the stream already ended),
    /// then `trailers` if the stream ended with them.
    pub(crate) fn buffered(prefix: Bytes, rest: Option<B>, trailers: Option<HeaderMap>) -> Self {
        Self {
            prefix: (!prefix.is_empty()).then_some(prefix),
            trailers: trailers.map(Box::new),
            rest,
        }
    }

    /// The original body when nothing of it was buffered; otherwise this body back.
    pub fn into_original(self) -> Result<B, Self> {
        match self {
            Self {
                prefix: None,
                trailers: None,
                rest: Some(rest),
            } => Ok(rest),
            other => Err(other),
        }
    }
}

impl<B> Body for ExtAuthzBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        if let Some(prefix) = this.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        if let Some(rest) = this.rest.as_pin_mut() {
            return rest.poll_frame(cx);
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(*t))))
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none()
            && self.trailers.is_none()
            && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let prefix = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        let mut hint = self
            .rest
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |rest| rest.size_hint());
        hint.set_lower(hint.lower().saturating_add(prefix));
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper.saturating_add(prefix));
        }
        hint
    }
}

impl<B> std::fmt::Debug for ExtAuthzBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtAuthzBody")
            .field("buffered", &self.prefix.as_ref().map(Bytes::len))
            .field("streaming", &self.rest.is_some())
            .finish()
    }
}

/// What buffering read of a body.
pub(crate) enum Buffered<B> {
    /// The bytes read (up to the end, or past `max` when partial bodies are allowed), and
    /// the body to hand on.
    Read { data: Bytes, body: ExtAuthzBody<B> },
    /// The body is longer than `max` and partial bodies are not allowed.
    TooLarge,
    /// The body failed while it was read.
    Failed,
}

/// Reads `body` as Envoy's decoder buffer fills: to its end, or, with `allow_partial`, until
/// at least `max` bytes are buffered. Without `allow_partial`, more than `max` bytes is
/// [`Buffered::TooLarge`].
pub(crate) async fn buffer<B>(mut body: B, max: u64, allow_partial: bool) -> Buffered<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    use http_body_util::BodyExt;
    let mut data = BytesMut::new();
    loop {
        if allow_partial && data.len() as u64 >= max {
            let data = data.freeze();
            return Buffered::Read {
                body: ExtAuthzBody::buffered(data.clone(), Some(body), None),
                data,
            };
        }
        match body.frame().await {
            None => {
                let data = data.freeze();
                return Buffered::Read {
                    body: ExtAuthzBody::buffered(data.clone(), None, None),
                    data,
                };
            }
            Some(Err(_)) => return Buffered::Failed,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(mut chunk) => {
                    while chunk.has_remaining() {
                        let bytes = chunk.copy_to_bytes(chunk.remaining());
                        data.extend_from_slice(&bytes);
                    }
                    if !allow_partial && data.len() as u64 > max {
                        return Buffered::TooLarge;
                    }
                }
                Err(frame) => {
                    // Trailers end the stream.
                    let trailers = frame.into_trailers().ok();
                    let data = data.freeze();
                    return Buffered::Read {
                        body: ExtAuthzBody::buffered(data.clone(), None, trailers),
                        data,
                    };
                }
            },
        }
    }
}
