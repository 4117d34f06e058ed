//! [`ExtAuthLayer`]: the layer holding an auth config and the filter's settings.

use std::fmt;
use std::sync::Arc;

use http::HeaderName;
use tower::Layer;

use super::error::ConfigError;
use super::service::ExtAuth;
use super::Authorize;

pub use crate::DEFAULT_USER_ID_HEADER;

/// Envoy's `with_request_body`: how much of the body the check sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BodySettings {
    pub(crate) max_bytes: usize,
    pub(crate) allow_partial: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) user_id_header: Option<HeaderName>,
    pub(crate) body: Option<BodySettings>,
}

/// Applies [`ExtAuth`] to services: every request is checked by one auth config (any
/// [`Authorize`], usually an [`AuthConfig`](super::AuthConfig)) before it reaches the inner
/// service. Holds the config behind an `Arc`; cheap to clone.
///
/// ```
/// use std::convert::Infallible;
///
/// use bytes::Bytes;
/// use gloo_filters::extauth::{ApiKeyAuth, ExtAuthLayer};
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let keys = ApiKeyAuth::new("api-key")?.key("s3cr3t", "robot", [("team", "infra")]);
/// let layer = ExtAuthLayer::new(keys);
/// let svc = layer.layer(service_fn(|req: Request<_>| async move {
///     // The user id header is set from the key's owner (and removed when nobody is known).
///     let user = req.headers()["x-user-id"].clone();
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(user.as_bytes().to_vec()))))
/// }));
///
/// let denied = svc
///     .clone()
///     .oneshot(Request::new(Full::<Bytes>::default()))
///     .await?;
/// assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
///
/// let allowed = svc
///     .oneshot(Request::builder().header("api-key", "s3cr3t").body(Full::<Bytes>::default())?)
///     .await?;
/// assert_eq!(allowed.status(), StatusCode::OK);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ExtAuthLayer {
    pub(crate) auth: Arc<dyn Authorize>,
    pub(crate) settings: Arc<Settings>,
}

impl fmt::Debug for ExtAuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtAuthLayer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ExtAuthLayer {
    /// Checks requests with `auth`; the user id goes to `x-user-id`; the body is not sent.
    pub fn new(auth: impl Authorize) -> Self {
        Self::from_shared(Arc::new(auth))
    }

    /// Checks requests with a shared `auth` (e.g. one [`AuthConfig`](super::AuthConfig) used
    /// on several routes).
    pub fn from_shared(auth: Arc<dyn Authorize>) -> Self {
        Self {
            auth,
            settings: Arc::new(Settings {
                user_id_header: Some(HeaderName::from_static(DEFAULT_USER_ID_HEADER)),
                body: None,
            }),
        }
    }

    /// The header the authenticated user id is sent upstream in (Gloo's
    /// `Settings.extauth.userIdHeader`); `None` sends none. The header is removed from
    /// requests that are allowed without a user id, so a client cannot claim one (Gloo's
    /// sanitize filter does this in Envoy).
    pub fn user_id_header(mut self, header: Option<&str>) -> Result<Self, ConfigError> {
        let header = header
            .map(|h| {
                HeaderName::try_from(h).map_err(|_| {
                    ConfigError::new("userIdHeader", format!("{h:?} is not a header name"))
                })
            })
            .transpose()?;
        Arc::make_mut(&mut self.settings).user_id_header = header;
        Ok(self)
    }

    /// Envoy's `with_request_body`: the check sees up to `max_bytes` of the body. A longer
    /// body is refused with `413 Payload Too Large` unless `allow_partial` (then the check
    /// sees its first `max_bytes`). The inner service always gets the whole body.
    pub fn with_request_body(mut self, max_bytes: usize, allow_partial: bool) -> Self {
        Arc::make_mut(&mut self.settings).body = Some(BodySettings {
            max_bytes,
            allow_partial,
        });
        self
    }
}

impl<S> Layer<S> for ExtAuthLayer {
    type Service = ExtAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ExtAuth::new(inner, self.clone())
    }
}
