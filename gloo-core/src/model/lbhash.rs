//! Consistent-hash keys for a route: Gloo's `options/lbhash/lbhash.proto`
//! (`lbhash.options.gloo.solo.io.RouteActionHashConfig`), set as a route's `options.lbHash`.
//!
//! The policies only matter when the route's upstream balances with `ringHash` or `maglev`:
//! they decide which request attribute picks the endpoint, so the same user keeps reaching the
//! same endpoint ("sticky sessions").
//!
//! ```
//! use gloo_core::model::lbhash::{HashKey, RouteActionHashConfig};
//!
//! let config: RouteActionHashConfig = serde_json::from_str(
//!     r#"{"hashPolicies": [{"header": "x-user", "terminal": true}, {"sourceIp": true}]}"#,
//! )
//! .unwrap();
//! assert_eq!(config.hash_policies[0].key().unwrap(), Some(HashKey::Header("x-user")));
//! assert_eq!(config.hash_policies[1].key().unwrap(), Some(HashKey::SourceIp));
//! ```

use serde::{Deserialize, Serialize};

use crate::model::routing::OneofError;
use crate::model::Duration;

/// The hash policies of a route, evaluated in order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteActionHashConfig {
    /// The policies; each one that yields a key is folded into the request's hash.
    #[serde(
        alias = "hash_policies",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub hash_policies: Vec<HashPolicy>,
}

/// One element of the hash key: a header, a cookie or the client's IP address.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HashPolicy {
    /// Hash this request header's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Hash this cookie's value (and set the cookie when it is missing and a TTL is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<Cookie>,
    /// Hash the downstream client's IP address.
    #[serde(alias = "source_ip", default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<bool>,
    /// When this policy yields a key, ignore the policies after it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminal: bool,
}

/// Cookie affinity: the cookie's value is hashed; with a `ttl`, a missing cookie is generated
/// and sent back with `Set-Cookie`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cookie {
    /// The cookie's name (required).
    #[serde(default)]
    pub name: String,
    /// Generate the cookie when it is missing, valid this long (zero: a session cookie).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// The generated cookie's `Path`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
}

/// What a [`HashPolicy`] hashes: its `KeyType` oneof.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HashKey<'a> {
    /// A request header.
    Header(&'a str),
    /// A cookie.
    Cookie(&'a Cookie),
    /// The client's IP address.
    SourceIp,
}

impl HashPolicy {
    /// The `KeyType` oneof (`sourceIp: false` counts as unset, as in proto3).
    pub fn key(&self) -> Result<Option<HashKey<'_>>, OneofError> {
        let source_ip = self.source_ip.unwrap_or(false);
        OneofError::check(
            "keyType",
            &[
                ("header", self.header.is_some()),
                ("cookie", self.cookie.is_some()),
                ("sourceIp", source_ip),
            ],
        )?;
        Ok(if let Some(h) = &self.header {
            Some(HashKey::Header(h))
        } else if let Some(c) = &self.cookie {
            Some(HashKey::Cookie(c))
        } else if source_ip {
            Some(HashKey::SourceIp)
        } else {
            None
        })
    }
}
