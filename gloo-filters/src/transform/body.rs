//! [`TransformBody`]: the body the layer hands on, either streamed untouched or buffered.

/// The body of a request passed to the inner service, or of a response returned by the
/// layer: the original body streamed through untouched, or a complete (buffered,
/// transformed or locally produced) body with the original trailers.
pub type TransformBody<B> = crate::body::FilterBody<B>;
