//! The [`ExtAuthzLayer`] and its settings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Metadata;
use http::StatusCode;
use tower::Layer;

use super::check::ConnectionInfo;
use super::service::ExtAuthz;

/// Envoy's default timeout for a call to the authorization server (`grpc_service.timeout`
/// unset): 200 ms.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);

/// How much of the request body the check carries (Envoy's `with_request_body`,
/// `BufferSettings`).
///
/// ```
/// use gloo_filters::ext_authz::BufferSettings;
///
/// let settings = BufferSettings::new(4096).allow_partial_message(true);
/// assert_eq!(settings.max_request_bytes(), 4096);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferSettings {
    max_request_bytes: u32,
    allow_partial_message: bool,
    pack_as_bytes: bool,
}

impl BufferSettings {
    /// Buffer up to `max_request_bytes`; a longer body is refused with `413` unless partial
    /// messages are allowed.
    pub fn new(max_request_bytes: u32) -> Self {
        Self {
            max_request_bytes,
            allow_partial_message: false,
            pack_as_bytes: false,
        }
    }

    /// Send the first `max_request_bytes` of a longer body instead of answering `413`
    /// (the check's headers then say `x-envoy-auth-partial-body: true`).
    pub fn allow_partial_message(mut self, allow: bool) -> Self {
        self.allow_partial_message = allow;
        self
    }

    /// Send the body as raw bytes (`raw_body`) instead of as UTF-8 text (`body`, with each
    /// byte that is not valid UTF-8 replaced by `!`, as Envoy does).
    pub fn pack_as_bytes(mut self, pack: bool) -> Self {
        self.pack_as_bytes = pack;
        self
    }

    /// The buffer limit.
    pub fn max_request_bytes(&self) -> u32 {
        self.max_request_bytes
    }
}

/// Reads the connection of a request from its extensions.
pub type ConnectionFn = fn(&http::Extensions) -> ConnectionInfo;

/// Reads the metadata a check carries (Envoy's `metadata_context`, from the filter metadata
/// of the namespaces the filter lists) from a request's extensions.
pub type MetadataFn = fn(&http::Extensions) -> Option<Metadata>;

fn connection_from_extensions(extensions: &http::Extensions) -> ConnectionInfo {
    extensions
        .get::<ConnectionInfo>()
        .copied()
        .unwrap_or_default()
}

/// Per-layer settings, shared by every service the layer builds.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) timeout: Duration,
    pub(crate) failure_mode_allow: bool,
    pub(crate) failure_mode_allow_header_add: bool,
    pub(crate) status_on_error: StatusCode,
    pub(crate) buffer: bool,
    pub(crate) max_request_bytes: u64,
    pub(crate) allow_partial_message: bool,
    pub(crate) pack_as_bytes: bool,
    pub(crate) context_extensions: HashMap<String, String>,
    pub(crate) max_denied_response_body_bytes: usize,
    pub(crate) connection: ConnectionFn,
    pub(crate) metadata: Option<MetadataFn>,
}

/// Applies [`ExtAuthz`] to services: Envoy's `envoy.filters.http.ext_authz` filter, asking an
/// `envoy.service.auth.v3.Authorization` server over gRPC whether each request may pass.
///
/// The layer holds the client (any tonic gRPC service: a `tonic::transport::Channel`, or a
/// tower service of your own that reaches the server) and the settings. One layer per route
/// is the usual shape: routes differ by their context extensions (Envoy's per-route
/// `check_settings`), and a route with auth disabled simply has no layer.
///
/// ```no_run
/// use std::time::Duration;
/// use gloo_filters::ext_authz::{BufferSettings, ExtAuthzLayer};
/// use http::StatusCode;
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:9001").connect_lazy();
/// let layer = ExtAuthzLayer::new(channel)
///     .timeout(Duration::from_millis(500))
///     .status_on_error(StatusCode::SERVICE_UNAVAILABLE)
///     .with_request_body(BufferSettings::new(4096))
///     .context_extension("config_id", "gloo-system.basic-auth");
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ExtAuthzLayer<C> {
    client: C,
    config: Arc<Config>,
}

impl<C> ExtAuthzLayer<C> {
    /// A layer asking the server behind `client`, with Envoy's defaults: a 200 ms timeout,
    /// failures refused with `403`, no body, no context extensions.
    pub fn new(client: C) -> Self {
        Self {
            client,
            config: Arc::new(Config {
                timeout: DEFAULT_TIMEOUT,
                failure_mode_allow: false,
                failure_mode_allow_header_add: false,
                status_on_error: StatusCode::FORBIDDEN,
                buffer: false,
                max_request_bytes: 0,
                allow_partial_message: false,
                pack_as_bytes: false,
                context_extensions: HashMap::new(),
                max_denied_response_body_bytes: 0,
                connection: connection_from_extensions,
                metadata: None,
            }),
        }
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// How long a check may take; past it, the check is an error (Envoy's
    /// `grpc_service.timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config().timeout = timeout;
        self
    }

    /// Let requests through when the server cannot be asked, fails or times out (Envoy's
    /// `failure_mode_allow`).
    pub fn failure_mode_allow(mut self, allow: bool) -> Self {
        self.config().failure_mode_allow = allow;
        self
    }

    /// With failure mode allowing, mark such requests with
    /// `x-envoy-auth-failure-mode-allowed: true` (Envoy's `failure_mode_allow_header_add`).
    pub fn failure_mode_allow_header_add(mut self, add: bool) -> Self {
        self.config().failure_mode_allow_header_add = add;
        self
    }

    /// The status of a refusal after an error (Envoy's `status_on_error`, default `403`).
    pub fn status_on_error(mut self, status: impl Into<StatusCode>) -> Self {
        self.config().status_on_error = status.into();
        self
    }

    /// Send (part of) the request body with the check (Envoy's `with_request_body`).
    pub fn with_request_body(mut self, settings: BufferSettings) -> Self {
        let config = self.config();
        config.buffer = true;
        config.max_request_bytes = u64::from(settings.max_request_bytes);
        config.allow_partial_message = settings.allow_partial_message;
        config.pack_as_bytes = settings.pack_as_bytes;
        self
    }

    /// Adds a context extension to every check (`attributes.context_extensions`, Envoy's
    /// per-route `check_settings.context_extensions`); a later value for a key wins.
    pub fn context_extension(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config()
            .context_extensions
            .insert(key.into(), value.into());
        self
    }

    /// Adds several context extensions (see [`context_extension`](Self::context_extension)).
    pub fn context_extensions(
        mut self,
        extensions: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        self.config().context_extensions.extend(extensions);
        self
    }

    /// Cuts a denied response's body to this many bytes (Envoy's
    /// `max_denied_response_body_bytes`; 0, the default, keeps it whole).
    pub fn max_denied_response_body_bytes(mut self, max: u32) -> Self {
        self.config().max_denied_response_body_bytes = usize::try_from(max).unwrap_or(usize::MAX);
        self
    }

    /// How to find the connection a request arrived on (by default, a
    /// [`ConnectionInfo`] in its extensions).
    pub fn connection_info(mut self, read: ConnectionFn) -> Self {
        self.config().connection = read;
        self
    }

    /// How to find the metadata a check carries (`attributes.metadata_context`); none by
    /// default.
    pub fn metadata_context(mut self, read: MetadataFn) -> Self {
        self.config().metadata = Some(read);
        self
    }
}

impl<S, C: Clone> Layer<S> for ExtAuthzLayer<C> {
    type Service = ExtAuthz<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        ExtAuthz::new(inner, self.client.clone(), self.config.clone())
    }
}

impl<C> std::fmt::Debug for ExtAuthzLayer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtAuthzLayer")
            .field("timeout", &self.config.timeout)
            .field("failure_mode_allow", &self.config.failure_mode_allow)
            .field("status_on_error", &self.config.status_on_error)
            .field("context_extensions", &self.config.context_extensions)
            .finish_non_exhaustive()
    }
}
