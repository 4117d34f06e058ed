//! What the limiter is asked (a domain and descriptors) and what it answers (per-descriptor
//! statuses): Envoy's `RateLimitRequest` / `RateLimitResponse` without the protobuf.

use std::time::Duration;

use super::config::RateLimit;

/// The generic key value Gloo's `setActions` add to a descriptor to mark it set-style; such a
/// descriptor is matched against the domain's [`SetDescriptor`](super::SetDescriptor)s, not
/// its tree.
pub const SET_DESCRIPTOR_VALUE: &str = "solo.setDescriptor.uniqueValue";

/// One `(key, value)` entry of a [`RateLimitDescriptor`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DescriptorEntry {
    /// The key, e.g. `remote_address`.
    pub key: String,
    /// The value, e.g. `192.0.2.7`.
    pub value: String,
}

impl DescriptorEntry {
    /// An entry.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// An ordered list of entries built from one request by one rate limit configuration (one
/// Envoy `rate_limits` item).
///
/// ```
/// use gloo_filters::ratelimit::global::RateLimitDescriptor;
/// let d = RateLimitDescriptor::new()
///     .entry("generic_key", "api")
///     .entry("remote_address", "192.0.2.7")
///     .hits_addend(5);
/// assert_eq!(d.entries().len(), 2);
/// assert!(!d.is_set_style());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimitDescriptor {
    pub(crate) entries: Vec<DescriptorEntry>,
    pub(crate) limit: Option<RateLimit>,
    pub(crate) hits_addend: Option<u64>,
}

impl RateLimitDescriptor {
    /// A descriptor without entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry.
    pub fn entry(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.entries.push(DescriptorEntry::new(key, value));
        self
    }

    /// Appends an entry in place.
    pub fn push(&mut self, entry: DescriptorEntry) {
        self.entries.push(entry);
    }

    /// Its limit override, if any.
    pub fn limit(&self) -> Option<&RateLimit> {
        self.limit.as_ref()
    }

    /// A limit override (Envoy's descriptor `limit`): used instead of the configured rules,
    /// never in shadow mode, as envoyproxy/ratelimit does.
    pub fn limit_override(mut self, limit: RateLimit) -> Self {
        self.limit = Some(limit);
        self
    }

    /// How much this descriptor counts, overriding the request's
    /// [`hits_addend`](RateLimitRequest::hits_addend). Zero only checks.
    pub fn hits_addend(mut self, hits: u64) -> Self {
        self.hits_addend = Some(hits);
        self
    }

    /// The entries.
    pub fn entries(&self) -> &[DescriptorEntry] {
        &self.entries
    }

    /// Whether one entry is `("generic_key", SET_DESCRIPTOR_VALUE)`: Gloo's mark of a
    /// set-style descriptor.
    pub fn is_set_style(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.key == "generic_key" && e.value == SET_DESCRIPTOR_VALUE)
    }
}

/// A question to the limiter: count these descriptors in this domain.
///
/// ```
/// use gloo_filters::ratelimit::global::{RateLimitDescriptor, RateLimitRequest};
/// let req = RateLimitRequest::new("edge")
///     .descriptor(RateLimitDescriptor::new().entry("user", "alice"));
/// assert_eq!(req.domain(), "edge");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimitRequest {
    pub(crate) domain: String,
    pub(crate) descriptors: Vec<RateLimitDescriptor>,
    pub(crate) hits_addend: u32,
}

impl RateLimitRequest {
    /// A request for `domain` without descriptors yet.
    pub fn new(domain: impl Into<String>) -> Self {
        Self {
            domain: domain.into(),
            descriptors: Vec::new(),
            hits_addend: 0,
        }
    }

    /// Adds a descriptor.
    pub fn descriptor(mut self, descriptor: RateLimitDescriptor) -> Self {
        self.descriptors.push(descriptor);
        self
    }

    /// Adds descriptors.
    pub fn descriptors(
        mut self,
        descriptors: impl IntoIterator<Item = RateLimitDescriptor>,
    ) -> Self {
        self.descriptors.extend(descriptors);
        self
    }

    /// How much each descriptor counts; 0 (the default) counts as 1, as in Envoy.
    pub fn hits_addend(mut self, hits: u32) -> Self {
        self.hits_addend = hits;
        self
    }

    /// The domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The descriptors.
    pub fn get_descriptors(&self) -> &[RateLimitDescriptor] {
        &self.descriptors
    }
}

/// The verdict for one descriptor, or for the whole request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// Within the limit (or no limit applies).
    Ok,
    /// Over the limit.
    OverLimit,
}

/// The answer for one descriptor, filled as envoyproxy/ratelimit fills
/// `RateLimitResponse.DescriptorStatus`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescriptorStatus {
    /// `OverLimit` when this request took the count past the limit (never in shadow mode).
    pub code: Code,
    /// The limit that applied; `None` when none did (no match, unlimited, or a lower weight).
    pub current_limit: Option<RateLimit>,
    /// Requests left in the window after this one (0 when over); `u32::MAX` for an unlimited
    /// descriptor; 0 when no limit applied.
    pub limit_remaining: u32,
    /// Time until the current window ends; `None` when no limit applied.
    pub duration_until_reset: Option<Duration>,
}

impl DescriptorStatus {
    pub(crate) fn no_limit() -> Self {
        Self {
            code: Code::Ok,
            current_limit: None,
            limit_remaining: 0,
            duration_until_reset: None,
        }
    }

    pub(crate) fn unlimited() -> Self {
        Self {
            code: Code::Ok,
            current_limit: None,
            limit_remaining: u32::MAX,
            duration_until_reset: None,
        }
    }
}

/// The limiter's answer: one status per request descriptor, in order, and the overall code
/// (`OverLimit` when any descriptor is, unless the limiter is in shadow mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitResponse {
    /// `OverLimit` when any status is.
    pub overall_code: Code,
    /// One status per request descriptor.
    pub statuses: Vec<DescriptorStatus>,
}

impl RateLimitResponse {
    /// Whether the request should be refused.
    pub fn is_over_limit(&self) -> bool {
        self.overall_code == Code::OverLimit
    }
}
