//! Gloo's basic rate limits (`ratelimitBasic`, `IngressRateLimit`): one limit for
//! authenticated requests per user id, one for anonymous requests per client address.

use super::actions::{HeaderMatch, RateLimitActions, RateLimitPolicy};
use super::config::{Descriptor, RateLimit};

pub use crate::DEFAULT_USER_ID_HEADER;

/// Gloo's `ratelimitBasic` on a virtual host or route: `authorizedLimits` count each user id
/// apart, `anonymousLimits` count each client address apart.
///
/// It is a pair of ordinary rules: [`descriptors`](Self::descriptors) go into the domain,
/// [`policy`](Self::policy) builds the matching request descriptors, shaped as Gloo's:
///
/// ```text
/// generic_key=<name> ─┬─ header_match=is-authenticated  ─ userid=<user id>          (authorized)
///                     └─ header_match=not-authenticated ─ remote_address=<client IP> (anonymous)
/// ```
///
/// ```
/// use std::net::SocketAddr;
/// use gloo_filters::ratelimit::global::*;
///
/// let basic = BasicRateLimit::new("default.petstore")
///     .authorized_limits(RateLimit::new(200, Unit::Minute))
///     .anonymous_limits(RateLimit::new(10, Unit::Minute));
/// let domain = RateLimitDomain::new("ingress").descriptors(basic.descriptors());
/// let limiter = RateLimiter::new(MemoryStore::new()).domain(domain)?;
/// let layer = GlobalRateLimitLayer::new(limiter, "ingress", basic.policy());
///
/// let mut anonymous = http::Request::new(());
/// anonymous.extensions_mut().insert(SocketAddr::from(([192, 0, 2, 7], 4000)));
/// let d = basic.policy().extract(&anonymous);
/// assert_eq!(d[0].entries()[1].value, "not-authenticated");
/// # let _ = layer;
/// # Ok::<(), InvalidConfig>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicRateLimit {
    name: String,
    authorized: Option<RateLimit>,
    anonymous: Option<RateLimit>,
    user_id_header: String,
}

impl BasicRateLimit {
    /// Limits scoped by `name` (Gloo uses the virtual host's or route's name); no limit yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            authorized: None,
            anonymous: None,
            user_id_header: DEFAULT_USER_ID_HEADER.to_owned(),
        }
    }

    /// The limit of each authenticated user (`authorizedLimits`).
    pub fn authorized_limits(mut self, limit: impl Into<RateLimit>) -> Self {
        self.authorized = Some(limit.into());
        self
    }

    /// The limit of each anonymous client address (`anonymousLimits`).
    pub fn anonymous_limits(mut self, limit: impl Into<RateLimit>) -> Self {
        self.anonymous = Some(limit.into());
        self
    }

    /// The request header with the authenticated user id (default [`DEFAULT_USER_ID_HEADER`]);
    /// a request without it is anonymous. Only trust it when an auth filter in front of this
    /// one sets it and strips any client-sent value.
    pub fn user_id_header(mut self, header: impl Into<String>) -> Self {
        self.user_id_header = header.into();
        self
    }

    /// The domain rules: one top-level descriptor for this name.
    pub fn descriptors(&self) -> Vec<Descriptor> {
        let mut root = Descriptor::new("generic_key").value(self.name.clone());
        if let Some(limit) = &self.authorized {
            root = root.descriptor(
                Descriptor::new("header_match")
                    .value("is-authenticated")
                    .descriptor(Descriptor::new("userid").rate_limit(limit.clone())),
            );
        }
        if let Some(limit) = &self.anonymous {
            root = root.descriptor(
                Descriptor::new("header_match")
                    .value("not-authenticated")
                    .descriptor(Descriptor::new("remote_address").rate_limit(limit.clone())),
            );
        }
        vec![root]
    }

    /// The actions that build the request's descriptor: the authenticated one when the user id
    /// header is present, else the anonymous one (needs the client address in the request
    /// extensions, see [`RateLimitActions::remote_address`]).
    pub fn policy(&self) -> RateLimitPolicy {
        let present = || HeaderMatch::present(self.user_id_header.clone(), true);
        let mut policy = RateLimitPolicy::new();
        if self.authorized.is_some() {
            policy = policy.rate_limit(
                RateLimitActions::new()
                    .generic_key(self.name.clone())
                    .header_value_match("is-authenticated", true, [present()])
                    .request_header(self.user_id_header.clone(), "userid"),
            );
        }
        if self.anonymous.is_some() {
            policy = policy.rate_limit(
                RateLimitActions::new()
                    .generic_key(self.name.clone())
                    .header_value_match("not-authenticated", false, [present()])
                    .remote_address(),
            );
        }
        policy
    }
}
