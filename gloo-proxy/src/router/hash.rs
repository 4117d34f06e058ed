//! Request hashing for consistent-hash load balancing: a route's `hash_policy`, evaluated as
//! Envoy's `Http::HashPolicyImpl` does, so a ring-hash or Maglev cluster sends the same user
//! (header, cookie, client IP, query parameter) to the same endpoint.
//!
//! ```
//! use envoy_types::pb::envoy::config::route::v3::route_action::{hash_policy, HashPolicy};
//! use envoy_types::pb::envoy::config::route::v3::{
//!     route, route_action, route_match, Route, RouteAction, RouteConfiguration, RouteMatch,
//!     VirtualHost,
//! };
//! use envoy_types::pb::google::protobuf::Duration;
//! use gloo_proxy::router::action::Action;
//! use gloo_proxy::router::hash::{hash_request, HashInput};
//! use gloo_proxy::router::{matcher::RequestView, RouteTable};
//! use http::{header, HeaderMap, HeaderValue};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Hash on `x-user-id` when the request has one (and stop there); else on the `session`
//! // cookie, which the proxy generates (for an hour) when the client has none yet.
//! let by_user = HashPolicy {
//!     policy_specifier: Some(hash_policy::PolicySpecifier::Header(hash_policy::Header {
//!         header_name: "x-user-id".into(),
//!         ..Default::default()
//!     })),
//!     terminal: true,
//! };
//! let by_session = HashPolicy {
//!     policy_specifier: Some(hash_policy::PolicySpecifier::Cookie(hash_policy::Cookie {
//!         name: "session".into(),
//!         ttl: Some(Duration { seconds: 3600, nanos: 0 }),
//!         path: "/".into(),
//!         ..Default::default()
//!     })),
//!     terminal: false,
//! };
//! let carts = Route {
//!     r#match: Some(RouteMatch {
//!         path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
//!         ..Default::default()
//!     }),
//!     action: Some(route::Action::Route(RouteAction {
//!         cluster_specifier: Some(route_action::ClusterSpecifier::Cluster("carts".into())),
//!         hash_policy: vec![by_user, by_session],
//!         ..Default::default()
//!     })),
//!     ..Default::default()
//! };
//! let table = RouteTable::compile(&RouteConfiguration {
//!     virtual_hosts: vec![VirtualHost {
//!         name: "shop".into(),
//!         domains: vec!["*".into()],
//!         routes: vec![carts],
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! })?;
//! let no_headers = HeaderMap::new();
//! let view = RequestView {
//!     method: "GET",
//!     authority: "shop.example",
//!     path: "/cart",
//!     scheme: "http",
//!     headers: &no_headers,
//! };
//! let route = table.route(&view).and_then(|(_, route)| route).expect("a route");
//! let Action::Forward(forward) = route.action() else {
//!     panic!("a forward");
//! };
//! let hash = |headers: &HeaderMap| {
//!     let input = HashInput {
//!         headers,
//!         path_and_query: "/cart",
//!         remote: "192.0.2.1:50000".parse().expect("an address"),
//!         local: "10.0.0.1:8080".parse().expect("an address"),
//!     };
//!     hash_request(&forward.hash_policies, &input)
//! };
//!
//! // The same user, the same hash: the same endpoint of a ring hash or Maglev cluster.
//! let mut alice = HeaderMap::new();
//! alice.insert("x-user-id", HeaderValue::from_static("alice"));
//! let first = hash(&alice);
//! assert!(first.hash.is_some());
//! assert_eq!(hash(&alice), first);
//! assert_eq!(first.set_cookie, None);
//!
//! // Neither: a session cookie is generated, for the response to set.
//! let anonymous = hash(&no_headers);
//! let set_cookie = anonymous.set_cookie.expect("a generated cookie");
//! let set_cookie = set_cookie.to_str()?;
//! assert!(set_cookie.starts_with("session=\"") && set_cookie.contains("; Max-Age=3600"));
//! // The client sends it back: its requests hash as its first one did.
//! let mut returning = HeaderMap::new();
//! let cookie = set_cookie.split(';').next().expect("the name and value");
//! returning.insert(header::COOKIE, HeaderValue::from_str(cookie)?);
//! assert_eq!(hash(&returning).hash, anonymous.hash);
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use envoy_types::pb::envoy::config::route::v3::route_action::{
    hash_policy::PolicySpecifier, HashPolicy as PbHashPolicy,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use xxhash_rust::xxh64::{xxh64, Xxh64};

use super::RouterError;

/// One compiled `hash_policy` element.
#[derive(Debug, Clone)]
pub struct HashPolicy {
    key: HashKey,
    /// When this policy produced a hash, the later ones are skipped.
    terminal: bool,
}

#[derive(Debug, Clone)]
enum HashKey {
    Header(HeaderName),
    Cookie {
        name: String,
        /// With a TTL, a missing cookie is generated and set on the response.
        ttl: Option<Duration>,
        path: String,
    },
    SourceIp,
    QueryParameter(String),
}

/// What the request offers the hash policies.
#[derive(Debug, Clone, Copy)]
pub struct HashInput<'a> {
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The path with its query string.
    pub path_and_query: &'a str,
    /// The client's address.
    pub remote: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
}

/// The outcome of hashing a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHash {
    /// The hash for the load balancer (`None`: no policy produced one; pick at random).
    pub hash: Option<u64>,
    /// A `Set-Cookie` value for the response, when a cookie policy generated the cookie.
    pub set_cookie: Option<HeaderValue>,
}

impl HashPolicy {
    pub(crate) fn compile(p: &PbHashPolicy, at: &str) -> Result<Option<Self>, RouterError> {
        let key = match &p.policy_specifier {
            Some(PolicySpecifier::Header(h)) => {
                if h.regex_rewrite.is_some() {
                    return Err(RouterError::new(
                        at,
                        "header hash policies with regex_rewrite are not supported",
                    ));
                }
                HashKey::Header(
                    HeaderName::from_bytes(h.header_name.to_ascii_lowercase().as_bytes()).map_err(
                        |_| {
                            RouterError::new(at, format!("invalid header name {:?}", h.header_name))
                        },
                    )?,
                )
            }
            Some(PolicySpecifier::Cookie(c)) => {
                if c.name.is_empty() {
                    return Err(RouterError::new(at, "cookie hash policy without a name"));
                }
                if !c.attributes.is_empty() {
                    return Err(RouterError::new(
                        at,
                        "cookie hash policy attributes are not supported",
                    ));
                }
                HashKey::Cookie {
                    name: c.name.clone(),
                    ttl: c.ttl.as_ref().map(super::action::pb_duration),
                    path: c.path.clone(),
                }
            }
            // Envoy ignores `source_ip: false`.
            Some(PolicySpecifier::ConnectionProperties(c)) if !c.source_ip => return Ok(None),
            Some(PolicySpecifier::ConnectionProperties(_)) => HashKey::SourceIp,
            Some(PolicySpecifier::QueryParameter(q)) => HashKey::QueryParameter(q.name.clone()),
            Some(PolicySpecifier::FilterState(_)) => {
                return Err(RouterError::new(
                    at,
                    "filter_state hash policies are not supported",
                ))
            }
            None => return Err(RouterError::new(at, "hash policy without a key")),
        };
        Ok(Some(HashPolicy {
            key,
            terminal: p.terminal,
        }))
    }

    fn evaluate(&self, input: &HashInput<'_>, set_cookie: &mut Option<HeaderValue>) -> Option<u64> {
        match &self.key {
            HashKey::Header(name) => {
                let mut values: Vec<&[u8]> = input
                    .headers
                    .get_all(name)
                    .iter()
                    .map(|v| v.as_bytes())
                    .collect();
                if values.is_empty() {
                    return None;
                }
                // The same hash whatever order repeated headers come in.
                values.sort_unstable();
                let mut hasher = Xxh64::new(0);
                for v in values {
                    hasher.update(v);
                }
                Some(hasher.digest())
            }
            HashKey::Cookie { name, ttl, path } => match cookie_value(input.headers, name) {
                Some(value) => Some(xxh64(value.as_bytes(), 0)),
                None => {
                    let ttl = (*ttl)?;
                    // As Envoy: one value per connection (client and local address), so
                    // racing requests on one connection get the same cookie.
                    let seed = format!("{}{}", input.remote, input.local);
                    let value = format!("{:016x}", xxh64(seed.as_bytes(), 0));
                    *set_cookie = set_cookie_value(name, &value, path, ttl);
                    Some(xxh64(value.as_bytes(), 0))
                }
            },
            HashKey::SourceIp => Some(xxh64(input.remote.ip().to_string().as_bytes(), 0)),
            HashKey::QueryParameter(name) => {
                let query = input.path_and_query.split_once('?')?.1;
                let query = query.split_once('#').map_or(query, |(q, _)| q);
                query
                    .split('&')
                    .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| xxh64(v.as_bytes(), 0))
            }
        }
    }
}

/// Evaluates `policies` in order, folding each hash into the last as Envoy does (rotate the
/// running value left by one, then XOR), stopping after a terminal policy that produced one.
pub fn hash_request(policies: &[HashPolicy], input: &HashInput<'_>) -> RequestHash {
    let mut out = RequestHash::default();
    for policy in policies {
        if let Some(new) = policy.evaluate(input, &mut out.set_cookie) {
            let old = out.hash.map_or(0, |h| h.rotate_left(1));
            out.hash = Some(old ^ new);
        }
        if policy.terminal && out.hash.is_some() {
            break;
        }
    }
    out
}

/// The first value of cookie `name` in the `Cookie` headers, without surrounding quotes.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| {
            let v = v.trim();
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
                .to_string()
        })
        .filter(|v| !v.is_empty())
}

/// Envoy's generated affinity cookie: `name="value"; Max-Age=N; Path=P; HttpOnly`.
fn set_cookie_value(name: &str, value: &str, path: &str, ttl: Duration) -> Option<HeaderValue> {
    let mut cookie = format!("{name}=\"{value}\"");
    if !ttl.is_zero() {
        cookie.push_str(&format!("; Max-Age={}", ttl.as_secs()));
    }
    if !path.is_empty() {
        cookie.push_str(&format!("; Path={path}"));
    }
    cookie.push_str("; HttpOnly");
    HeaderValue::from_str(&cookie).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::route::v3::route_action::hash_policy;

    fn input<'a>(headers: &'a HeaderMap, path: &'a str) -> HashInput<'a> {
        HashInput {
            headers,
            path_and_query: path,
            remote: "10.0.0.7:40000".parse().expect("address"),
            local: "127.0.0.1:8080".parse().expect("address"),
        }
    }

    fn header_policy(name: &str, terminal: bool) -> HashPolicy {
        HashPolicy::compile(
            &PbHashPolicy {
                policy_specifier: Some(PolicySpecifier::Header(hash_policy::Header {
                    header_name: name.into(),
                    ..Default::default()
                })),
                terminal,
            },
            "test",
        )
        .expect("compiles")
        .expect("a policy")
    }

    fn cookie_policy(ttl: Option<u64>) -> HashPolicy {
        HashPolicy::compile(
            &PbHashPolicy {
                policy_specifier: Some(PolicySpecifier::Cookie(hash_policy::Cookie {
                    name: "session".into(),
                    ttl: ttl.map(|s| envoy_types::pb::google::protobuf::Duration {
                        seconds: s as i64,
                        nanos: 0,
                    }),
                    path: "/app".into(),
                    ..Default::default()
                })),
                terminal: false,
            },
            "test",
        )
        .expect("compiles")
        .expect("a policy")
    }

    #[test]
    fn a_header_hashes_its_value_with_xxhash64_and_ignores_the_order_of_repeats() {
        let mut headers = HeaderMap::new();
        headers.insert("x-user", HeaderValue::from_static("alice"));
        let policies = [header_policy("X-User", false)];
        let hash = hash_request(&policies, &input(&headers, "/"));
        assert_eq!(hash.hash, Some(xxh64(b"alice", 0)));

        let mut a = HeaderMap::new();
        a.append("x-user", HeaderValue::from_static("b"));
        a.append("x-user", HeaderValue::from_static("a"));
        let mut b = HeaderMap::new();
        b.append("x-user", HeaderValue::from_static("a"));
        b.append("x-user", HeaderValue::from_static("b"));
        assert_eq!(
            hash_request(&policies, &input(&a, "/")).hash,
            hash_request(&policies, &input(&b, "/")).hash
        );
        assert_eq!(
            hash_request(&policies, &input(&HeaderMap::new(), "/")).hash,
            None
        );
    }

    #[test]
    fn policies_fold_by_rotate_and_xor_and_a_terminal_hit_stops_the_rest() {
        let mut headers = HeaderMap::new();
        headers.insert("a", HeaderValue::from_static("1"));
        headers.insert("b", HeaderValue::from_static("2"));
        let (ha, hb) = (xxh64(b"1", 0), xxh64(b"2", 0));
        let both = [header_policy("a", false), header_policy("b", false)];
        assert_eq!(
            hash_request(&both, &input(&headers, "/")).hash,
            Some(ha.rotate_left(1) ^ hb)
        );
        let stop = [header_policy("a", true), header_policy("b", false)];
        assert_eq!(hash_request(&stop, &input(&headers, "/")).hash, Some(ha));
        // A terminal policy that finds nothing lets the next one decide.
        let missing = [header_policy("c", true), header_policy("b", false)];
        assert_eq!(hash_request(&missing, &input(&headers, "/")).hash, Some(hb));
    }

    #[test]
    fn a_cookie_is_hashed_when_present_and_generated_with_a_ttl_when_missing() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            HeaderValue::from_static("theme=dark; session=\"abc\""),
        );
        let present = hash_request(&[cookie_policy(Some(60))], &input(&headers, "/"));
        assert_eq!(present.hash, Some(xxh64(b"abc", 0)));
        assert_eq!(present.set_cookie, None);

        let generated = hash_request(&[cookie_policy(Some(60))], &input(&HeaderMap::new(), "/"));
        let value = format!("{:016x}", xxh64(b"10.0.0.7:40000127.0.0.1:8080", 0));
        assert_eq!(generated.hash, Some(xxh64(value.as_bytes(), 0)));
        assert_eq!(
            generated.set_cookie.as_ref().and_then(|v| v.to_str().ok()),
            Some(format!("session=\"{value}\"; Max-Age=60; Path=/app; HttpOnly").as_str())
        );
        // Without a TTL a missing cookie gives no hash and no cookie.
        let none = hash_request(&[cookie_policy(None)], &input(&HeaderMap::new(), "/"));
        assert_eq!(none, RequestHash::default());
    }

    #[test]
    fn source_ip_and_query_parameters_hash_their_values() {
        let headers = HeaderMap::new();
        let ip = HashPolicy::compile(
            &PbHashPolicy {
                policy_specifier: Some(PolicySpecifier::ConnectionProperties(
                    hash_policy::ConnectionProperties { source_ip: true },
                )),
                terminal: false,
            },
            "test",
        )
        .expect("compiles")
        .expect("a policy");
        assert_eq!(
            hash_request(&[ip], &input(&headers, "/")).hash,
            Some(xxh64(b"10.0.0.7", 0))
        );
        let query = HashPolicy::compile(
            &PbHashPolicy {
                policy_specifier: Some(PolicySpecifier::QueryParameter(
                    hash_policy::QueryParameter {
                        name: "user".into(),
                    },
                )),
                terminal: false,
            },
            "test",
        )
        .expect("compiles")
        .expect("a policy");
        let policies = [query];
        assert_eq!(
            hash_request(&policies, &input(&headers, "/p?x=1&user=bob")).hash,
            Some(xxh64(b"bob", 0))
        );
        assert_eq!(
            hash_request(&policies, &input(&headers, "/p?x=1")).hash,
            None
        );
    }
}
