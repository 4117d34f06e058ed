//! [`JwtAuthentication`] (the providers, shared by all routes) and [`JwtAuthnLayer`] (one
//! route's requirement).

use std::fmt;
use std::sync::Arc;

use tower::Layer;

use super::config::{JwtProvider, JwtRequirement};
use super::error::JwtConfigError;
use super::fetch::{HyperJwksFetcher, JwksFetcher};
use super::service::JwtAuthn;
use super::verifier::{Node, Providers};

/// Settings that apply to every route of one filter config.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) bypass_cors_preflight: bool,
    pub(crate) strip_failure_response: bool,
    pub(crate) max_token_size: usize,
}

/// What every layer of one [`JwtAuthentication`] shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) providers: Providers,
    pub(crate) settings: Settings,
}

/// A filter config: named [`JwtProvider`]s and their key caches, Envoy's `JwtAuthentication`
/// minus the route rules. Build it once and make one [`JwtAuthnLayer`] per route requirement
/// with [`layer`](Self::layer); all of them share the providers' remote JWKS caches.
///
/// Cloning is cheap (an `Arc`).
#[derive(Clone)]
pub struct JwtAuthentication {
    shared: Arc<Shared>,
}

impl fmt::Debug for JwtAuthentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthentication")
            .field("shared", &self.shared)
            .finish()
    }
}

impl JwtAuthentication {
    /// Starts a config with no providers.
    pub fn builder() -> JwtAuthenticationBuilder {
        JwtAuthenticationBuilder {
            providers: Vec::new(),
            fetcher: None,
            settings: Settings {
                bypass_cors_preflight: false,
                strip_failure_response: false,
                max_token_size: JwtAuthenticationBuilder::DEFAULT_MAX_TOKEN_SIZE,
            },
        }
    }

    /// A layer enforcing `requirement` (one route's `requires`, or a `requirement_map` entry).
    /// Fails when the requirement names a provider this config does not have, or a list has
    /// fewer than two members.
    pub fn layer(
        &self,
        requirement: impl Into<JwtRequirement>,
    ) -> Result<JwtAuthnLayer, JwtConfigError> {
        let node = Node::build(&requirement.into(), &self.shared.providers)?;
        let may_fetch = node.may_fetch(&self.shared.providers);
        Ok(JwtAuthnLayer {
            shared: Arc::clone(&self.shared),
            node: Arc::new(node),
            may_fetch,
        })
    }
}

/// Builds a [`JwtAuthentication`].
pub struct JwtAuthenticationBuilder {
    providers: Vec<(String, JwtProvider)>,
    fetcher: Option<Arc<dyn JwksFetcher>>,
    settings: Settings,
}

impl fmt::Debug for JwtAuthenticationBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthenticationBuilder")
            .field("providers", &self.providers)
            .field("custom_fetcher", &self.fetcher.is_some())
            .field("settings", &self.settings)
            .finish()
    }
}

impl JwtAuthenticationBuilder {
    /// The default [`max_token_size`](Self::max_token_size): 64 KiB, above Envoy's default
    /// request header limit (60 KiB), so every token Envoy would look at is looked at here.
    pub const DEFAULT_MAX_TOKEN_SIZE: usize = 64 * 1024;

    /// Adds provider `name` (a key of Envoy's `providers` map). In Envoy the map's order
    /// decides which provider an `allow_missing*` requirement picks for an issuer shared by
    /// several; here it is the order providers are added.
    pub fn provider(mut self, name: impl Into<String>, provider: impl Into<JwtProvider>) -> Self {
        self.providers.push((name.into(), provider.into()));
        self
    }

    /// How remote JWKS are fetched (default: [`HyperJwksFetcher`]; `https` URLs need the `https` feature).
    pub fn fetcher(mut self, fetcher: impl JwksFetcher) -> Self {
        self.fetcher = Some(Arc::new(fetcher));
        self
    }

    /// Whether CORS preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
    /// pass without any check (Envoy's `bypass_cors_preflight`, default `false`).
    pub fn bypass_cors_preflight(mut self, bypass: bool) -> Self {
        self.settings.bypass_cors_preflight = bypass;
        self
    }

    /// Whether refusals have an empty body and no `www-authenticate` (Envoy's
    /// `strip_failure_response`, default `false`).
    pub fn strip_failure_response(mut self, strip: bool) -> Self {
        self.settings.strip_failure_response = strip;
        self
    }

    /// The longest token looked at, in bytes; a longer one fails with `Jwt verification
    /// fails` before it is decoded (an addition to Envoy, which relies on its header size
    /// limit).
    pub fn max_token_size(mut self, bytes: usize) -> Self {
        self.settings.max_token_size = bytes;
        self
    }

    /// Checks the providers and loads their inline keys.
    pub fn build(self) -> Result<JwtAuthentication, JwtConfigError> {
        let fetcher = self
            .fetcher
            .unwrap_or_else(|| Arc::new(HyperJwksFetcher::new()));
        let providers = Providers::build(&self.providers, &fetcher)?;
        Ok(JwtAuthentication {
            shared: Arc::new(Shared {
                providers,
                settings: self.settings,
            }),
        })
    }
}

/// Applies [`JwtAuthn`] to services: Envoy's `envoy.filters.http.jwt_authn` enforcing one
/// requirement. Made by [`JwtAuthentication::layer`]; cheap to clone.
#[derive(Clone)]
pub struct JwtAuthnLayer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) node: Arc<Node>,
    pub(crate) may_fetch: bool,
}

impl fmt::Debug for JwtAuthnLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthnLayer")
            .field("requirement", &self.node)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for JwtAuthnLayer {
    type Service = JwtAuthn<S>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuthn::from_layer(inner, self.clone())
    }
}
