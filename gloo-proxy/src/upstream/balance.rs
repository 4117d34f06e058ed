//! Load balancers over a cluster's available endpoints: round robin (weighted), least
//! request (power of N choices), random, ring hash (ketama, xxHash as Envoy) and Maglev.
//!
//! A cluster balances as its `lb_policy` says:
//!
//! ```
//! use std::collections::HashMap;
//! use envoy_types::pb::envoy::config::cluster::v3::{cluster::LbPolicy, Cluster as PbCluster};
//! use envoy_types::pb::envoy::config::core::v3::{address, socket_address, Address, SocketAddress};
//! use envoy_types::pb::envoy::config::endpoint::v3::{
//!     lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
//! };
//! use envoy_types::pb::google::protobuf::UInt32Value;
//! use gloo_proxy::stats::Stats;
//! use gloo_proxy::upstream::Cluster;
//!
//! # fn main() -> Result<(), gloo_proxy::upstream::ClusterError> {
//! // A static cluster of 127.0.0.1:8081 (weight 3) and 127.0.0.1:8082 (weight 1).
//! let endpoint = |port: u32, weight: u32| LbEndpoint {
//!     host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
//!         address: Some(Address {
//!             address: Some(address::Address::SocketAddress(SocketAddress {
//!                 address: "127.0.0.1".into(),
//!                 port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
//!                 ..Default::default()
//!             })),
//!         }),
//!         ..Default::default()
//!     })),
//!     load_balancing_weight: Some(UInt32Value { value: weight }),
//!     ..Default::default()
//! };
//! let pb = |policy: LbPolicy| PbCluster {
//!     name: "petstore".into(),
//!     lb_policy: policy as i32,
//!     load_assignment: Some(ClusterLoadAssignment {
//!         cluster_name: "petstore".into(),
//!         endpoints: vec![LocalityLbEndpoints {
//!             lb_endpoints: vec![endpoint(8081, 3), endpoint(8082, 1)],
//!             ..Default::default()
//!         }],
//!         ..Default::default()
//!     }),
//!     ..Default::default()
//! };
//! let stats = Stats::default();
//!
//! // Weighted round robin (Envoy's default): three requests to :8081 for each one to :8082.
//! let round_robin = Cluster::compile(&pb(LbPolicy::RoundRobin), "v1", &stats, 1)?;
//! let mut requests = HashMap::new();
//! for _ in 0..8 {
//!     let picked = round_robin.pick(None, None).expect("an endpoint");
//!     *requests.entry(picked.address.port()).or_insert(0) += 1;
//! }
//! assert_eq!((requests[&8081], requests[&8082]), (6, 2));
//!
//! // Ring hash: a request's hash (from its route's hash policies) always finds one endpoint.
//! let ring = Cluster::compile(&pb(LbPolicy::RingHash), "v1", &stats, 1)?;
//! let sticky = ring.pick(None, Some(42)).expect("an endpoint").address;
//! for _ in 0..4 {
//!     assert_eq!(ring.pick(None, Some(42)).expect("an endpoint").address, sticky);
//! }
//! # Ok(())
//! # }
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use xxhash_rust::xxh64::xxh64;

use super::Endpoint;

/// Which balancer a cluster uses (Envoy's `lb_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Weighted round robin.
    RoundRobin,
    /// Least outstanding requests among `choices` random picks.
    LeastRequest {
        /// How many endpoints are compared (Envoy's default: 2).
        choices: u32,
    },
    /// Uniformly random.
    Random,
    /// Consistent hashing on a ring.
    RingHash {
        /// The smallest ring (Envoy's default: 1024 entries).
        min_ring_size: u64,
        /// The largest ring (Envoy's default: 8M entries).
        max_ring_size: u64,
    },
    /// Maglev consistent hashing (table of 65537 entries).
    Maglev,
}

/// The Maglev table size Envoy uses by default (a prime).
const MAGLEV_TABLE_SIZE: usize = 65537;

/// A balancer built over one set of endpoints; rebuilt when the set or its health changes.
#[derive(Debug)]
pub(crate) struct Balancer {
    endpoints: Vec<Arc<Endpoint>>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Indices into `endpoints`, repeated by weight (smoothly interleaved).
    RoundRobin {
        schedule: Vec<u32>,
        next: AtomicUsize,
    },
    LeastRequest {
        choices: u32,
    },
    Random,
    Ring(Vec<(u64, u32)>),
    Maglev(Vec<u32>),
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Smooth weighted round robin (as nginx): each pick adds every weight to its current value,
/// takes the largest and subtracts the total.
fn smooth_schedule(weights: &[u32]) -> Vec<u32> {
    let g = weights.iter().copied().fold(0, gcd).max(1);
    let reduced: Vec<i64> = weights.iter().map(|w| i64::from((*w / g).max(1))).collect();
    let total: i64 = reduced.iter().sum();
    // Cap the schedule's length; beyond it proportions are approximated.
    let len = total.min(65_536) as usize;
    let mut current = vec![0i64; reduced.len()];
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        let mut best = 0;
        for i in 0..reduced.len() {
            current[i] += reduced[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        out.push(best as u32);
    }
    out
}

impl Balancer {
    pub(crate) fn new(policy: Policy, endpoints: Vec<Arc<Endpoint>>) -> Self {
        let kind = match policy {
            Policy::RoundRobin => {
                let weights: Vec<u32> = endpoints.iter().map(|e| e.weight).collect();
                let schedule = if weights.windows(2).all(|w| w[0] == w[1]) {
                    (0..endpoints.len() as u32).collect()
                } else {
                    smooth_schedule(&weights)
                };
                Kind::RoundRobin {
                    schedule,
                    // Start at a random place so many proxies don't all begin on one host.
                    next: AtomicUsize::new(fastrand::usize(..endpoints.len().max(1))),
                }
            }
            Policy::LeastRequest { choices } => Kind::LeastRequest {
                choices: choices.max(1),
            },
            Policy::Random => Kind::Random,
            Policy::RingHash {
                min_ring_size,
                max_ring_size,
            } => Kind::Ring(ring(&endpoints, min_ring_size, max_ring_size)),
            Policy::Maglev => Kind::Maglev(maglev(&endpoints)),
        };
        Balancer { endpoints, kind }
    }

    /// How many endpoints the balancer chooses among.
    pub(crate) fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// The endpoints the balancer chooses among.
    pub(crate) fn endpoints(&self) -> &[Arc<Endpoint>] {
        &self.endpoints
    }

    /// Picks an endpoint; `hash` is the request's hash for the consistent-hash policies (a
    /// random one is used when the route has no hash policy, as Envoy does).
    pub(crate) fn pick(&self, hash: Option<u64>) -> Option<&Arc<Endpoint>> {
        if self.endpoints.is_empty() {
            return None;
        }
        let n = self.endpoints.len();
        match &self.kind {
            Kind::RoundRobin { schedule, next } => {
                let i = next.fetch_add(1, Ordering::Relaxed) % schedule.len().max(1);
                self.endpoints.get(*schedule.get(i)? as usize)
            }
            Kind::Random => self.endpoints.get(fastrand::usize(..n)),
            Kind::LeastRequest { choices } => {
                let mut best: Option<&Arc<Endpoint>> = None;
                for _ in 0..*choices {
                    let candidate = &self.endpoints[fastrand::usize(..n)];
                    if best.is_none_or(|b| candidate.active() < b.active()) {
                        best = Some(candidate);
                    }
                }
                best
            }
            Kind::Ring(ring) => {
                let h = hash.unwrap_or_else(|| fastrand::u64(..));
                let i = ring.partition_point(|(point, _)| *point < h);
                let (_, e) = ring.get(i).or_else(|| ring.first())?;
                self.endpoints.get(*e as usize)
            }
            Kind::Maglev(table) => {
                let h = hash.unwrap_or_else(|| fastrand::u64(..));
                let e = table.get((h % table.len().max(1) as u64) as usize)?;
                self.endpoints.get(*e as usize)
            }
        }
    }
}

/// A ketama ring: each endpoint gets entries in proportion to its weight, hashed from
/// `<address>_<n>` with xxHash64 as Envoy does.
fn ring(endpoints: &[Arc<Endpoint>], min: u64, max: u64) -> Vec<(u64, u32)> {
    if endpoints.is_empty() {
        return Vec::new();
    }
    let total: u64 = endpoints.iter().map(|e| u64::from(e.weight.max(1))).sum();
    let min_weight = endpoints.iter().map(|e| e.weight.max(1)).min().unwrap_or(1);
    let scale = ((min as f64) / (total as f64) * f64::from(min_weight))
        .ceil()
        .max(1.0);
    let target = ((total as f64) * scale / f64::from(min_weight)).min(max.max(1) as f64) as u64;
    let mut out = Vec::with_capacity(target as usize);
    for (i, e) in endpoints.iter().enumerate() {
        let entries = (target * u64::from(e.weight.max(1)) / total).max(1);
        for n in 0..entries {
            let key = format!("{}_{n}", e.address);
            out.push((xxh64(key.as_bytes(), 0), i as u32));
        }
    }
    out.sort_unstable();
    out
}

/// Maglev's permutation-filling table, built as Envoy builds it (endpoints in the order of
/// their address strings, offset `xxHash64(address) % M`, skip `xxHash64(address, seed 1) %
/// (M - 1) + 1`), so a key lands on the same endpoint behind gloo-proxy as behind Envoy.
fn maglev(endpoints: &[Arc<Endpoint>]) -> Vec<u32> {
    let m = MAGLEV_TABLE_SIZE;
    if endpoints.is_empty() {
        return Vec::new();
    }
    let max_weight = endpoints.iter().map(|e| e.weight.max(1)).max().unwrap_or(1);
    let names: Vec<String> = endpoints.iter().map(|e| e.address.to_string()).collect();
    let mut order: Vec<usize> = (0..endpoints.len()).collect();
    order.sort_by(|a, b| names[*a].cmp(&names[*b]));
    let perms: Vec<(u64, u64)> = names
        .iter()
        .map(|name| {
            let offset = xxh64(name.as_bytes(), 0) % m as u64;
            let skip = xxh64(name.as_bytes(), 1) % (m as u64 - 1) + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0u64; endpoints.len()];
    let mut target = vec![0u64; endpoints.len()];
    let mut table = vec![u32::MAX; m];
    let mut filled = 0;
    let mut round = 0u64;
    while filled < m {
        for &i in &order {
            let e = &endpoints[i];
            // Weighted Maglev (as Envoy): an endpoint of the largest weight takes a turn every
            // round, one of a third of it every third round.
            if round * u64::from(e.weight.max(1)) < target[i] {
                continue;
            }
            target[i] += u64::from(max_weight);
            let (offset, skip) = perms[i];
            loop {
                let c = ((offset + next[i] * skip) % m as u64) as usize;
                next[i] += 1;
                if table[c] == u32::MAX {
                    table[c] = i as u32;
                    filled += 1;
                    break;
                }
            }
            if filled == m {
                break;
            }
        }
        round += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn endpoints(weights: &[u32]) -> Vec<Arc<Endpoint>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                Arc::new(Endpoint::new(
                    format!("127.0.0.1:{}", 1000 + i).parse().expect("address"),
                    String::new(),
                    *w,
                ))
            })
            .collect()
    }

    fn counts(
        b: &Balancer,
        picks: usize,
        hash: impl Fn(usize) -> Option<u64>,
    ) -> HashMap<u16, usize> {
        let mut out = HashMap::new();
        for i in 0..picks {
            let e = b.pick(hash(i)).expect("an endpoint");
            *out.entry(e.address.port()).or_default() += 1;
        }
        out
    }

    #[test]
    fn round_robin_follows_weights_exactly() {
        let b = Balancer::new(Policy::RoundRobin, endpoints(&[3, 1]));
        let c = counts(&b, 400, |_| None);
        assert_eq!(c[&1000], 300);
        assert_eq!(c[&1001], 100);
        assert_eq!(smooth_schedule(&[2, 1]), vec![0, 1, 0]);
    }

    #[test]
    fn least_request_prefers_idle_endpoints() {
        let eps = endpoints(&[1, 1]);
        let _busy: Vec<_> = (0..5).map(|_| eps[0].start_request()).collect();
        let b = Balancer::new(Policy::LeastRequest { choices: 2 }, eps);
        let c = counts(&b, 1000, |_| None);
        // Endpoint 0 wins only when both choices land on it (~1/4 of picks).
        assert!(c.get(&1000).copied().unwrap_or(0) < 400, "{c:?}");
    }

    #[test]
    fn consistent_hashes_keep_keys_on_their_endpoint_when_another_leaves() {
        for policy in [
            Policy::RingHash {
                min_ring_size: 1024,
                max_ring_size: 8 << 20,
            },
            Policy::Maglev,
        ] {
            let all = endpoints(&[1, 1, 1, 1]);
            let before = Balancer::new(policy, all.clone());
            let after = Balancer::new(policy, all[..3].to_vec());
            let mut moved = 0;
            for key in 0..1000u64 {
                let h = xxh64(&key.to_le_bytes(), 0);
                let a = before.pick(Some(h)).expect("pick").address;
                let b = after.pick(Some(h)).expect("pick").address;
                assert_eq!(before.pick(Some(h)).expect("pick").address, a, "stable");
                if a != b && a.port() != 1003 {
                    moved += 1;
                }
            }
            // Keys not on the removed endpoint mostly stay where they were.
            assert!(moved < 100, "{policy:?}: {moved} keys moved");
        }
    }
}
