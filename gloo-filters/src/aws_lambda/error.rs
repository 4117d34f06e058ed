//! Errors of the Lambda layer.

/// A Lambda layer that cannot be built: the function name or qualifier makes no valid path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LambdaConfigError(pub(crate) String);

/// Marks a response the layer answered itself (no credentials, a body over the limit, a
/// response it could not unwrap is not one: that is the function's answer, reshaped), so a
/// proxy can treat it as a local reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LambdaLocalReply;

/// Marks a request the layer turned into a Lambda invocation (its method, path, `host` and
/// signature are the invocation's), so a proxy forwards it with that path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LambdaInvocation;
