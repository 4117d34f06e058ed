//! Choosing which bucket a request draws from.

use std::convert::Infallible;
use std::fmt;
use std::hash::Hash;

use http::{Extensions, HeaderMap, Method, Request, Uri, Version};

/// Picks the bucket a request draws from.
///
/// Each distinct key gets its own bucket (same [`TokenBucket`](super::TokenBucket) settings,
/// separate budget). A request for which [`extract`](Self::extract) returns `None` draws from
/// the layer's **shared** bucket, the way Envoy falls back to its default token bucket when
/// no descriptor matches; so a missing key is never a way around the limit.
///
/// Implement it for a type when you need the whole request; for the common cases
/// (a header, a connection address from the extensions) use [`KeyFn`].
///
/// ```
/// use gloo_filters::ratelimit::KeyExtractor;
///
/// /// One bucket per tenant, read from the `x-tenant` header.
/// #[derive(Clone)]
/// struct Tenant;
///
/// impl KeyExtractor for Tenant {
///     type Key = String;
///     fn extract<B>(&self, req: &http::Request<B>) -> Option<String> {
///         let value = req.headers().get("x-tenant")?.to_str().ok()?;
///         Some(value.to_owned())
///     }
/// }
///
/// let req = http::Request::builder().header("x-tenant", "acme").body(()).unwrap();
/// assert_eq!(Tenant.extract(&req).as_deref(), Some("acme"));
/// ```
pub trait KeyExtractor {
    /// The bucket key. Keyed buckets live in a concurrent map, hence `Hash + Eq + Clone`.
    type Key: Hash + Eq + Clone;

    /// The key of `req`'s bucket, or `None` for the shared bucket.
    fn extract<B>(&self, req: &Request<B>) -> Option<Self::Key>;
}

/// The default extractor: every request draws from the layer's one shared bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shared;

impl KeyExtractor for Shared {
    type Key = Infallible;

    fn extract<B>(&self, _req: &Request<B>) -> Option<Infallible> {
        None
    }
}

/// The head of a request (everything but the body), as seen by a [`KeyFn`] closure.
///
/// It lets one closure work for any body type, so it needs no type annotations.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    version: Version,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    /// Borrows the head of `req`.
    pub fn new<B>(req: &'a Request<B>) -> Self {
        Self {
            method: req.method(),
            uri: req.uri(),
            version: req.version(),
            headers: req.headers(),
            extensions: req.extensions(),
        }
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions, e.g. axum's `ConnectInfo<SocketAddr>` or a peer address the
    /// server inserted.
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }
}

/// A [`KeyExtractor`] from a closure over the [`RequestHead`].
///
/// Key by client IP (axum puts `ConnectInfo<SocketAddr>` in the extensions when served with
/// `into_make_service_with_connect_info`; here a plain `SocketAddr` extension stands in):
///
/// ```
/// use std::net::{IpAddr, SocketAddr};
/// use gloo_filters::ratelimit::{KeyExtractor, KeyFn};
///
/// let by_ip = KeyFn::new(|head| head.extensions().get::<SocketAddr>().map(|a| a.ip()));
///
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(SocketAddr::from(([192, 0, 2, 7], 41_000)));
/// assert_eq!(by_ip.extract(&req), Some(IpAddr::from([192, 0, 2, 7])));
///
/// // By header value:
/// let by_key = KeyFn::new(|head| head.headers().get("x-api-key").cloned());
/// assert_eq!(by_key.extract(&http::Request::new(())), None);
/// ```
#[derive(Clone, Copy)]
pub struct KeyFn<F> {
    f: F,
}

impl<F> KeyFn<F> {
    /// Wraps `f`; the closure's return type fixes the key type.
    pub fn new<K>(f: F) -> Self
    where
        F: Fn(&RequestHead<'_>) -> Option<K>,
        K: Hash + Eq + Clone,
    {
        Self { f }
    }
}

impl<F, K> KeyExtractor for KeyFn<F>
where
    F: Fn(&RequestHead<'_>) -> Option<K>,
    K: Hash + Eq + Clone,
{
    type Key = K;

    fn extract<B>(&self, req: &Request<B>) -> Option<K> {
        (self.f)(&RequestHead::new(req))
    }
}

impl<F> fmt::Debug for KeyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFn").finish_non_exhaustive()
    }
}
