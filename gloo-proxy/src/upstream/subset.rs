//! Subset load balancing, as Envoy's subset load balancer does it: a cluster's
//! `lb_subset_config` partitions its endpoints by their `envoy.lb` metadata, and a route's
//! (or weighted cluster's) `metadata_match` under `envoy.lb` picks the partition.
//!
//! - Each selector is a set of keys. An endpoint with a value for every key of a selector is in
//!   the subset of those key/values; endpoints can be in several subsets.
//! - A request's criteria (the route's `metadata_match`, merged with and overridden by the
//!   chosen weighted cluster's) select the subset whose selector has exactly the criteria's keys
//!   and whose endpoints have exactly those values. A subset with endpoints is used even when
//!   none of them is healthy (then, as in Envoy's panic mode, all of them are).
//! - Otherwise (no criteria, no such selector, no endpoint with those values) the fallback
//!   policy applies: `NO_FALLBACK` (Envoy's default) has no endpoint (503 `no healthy
//!   upstream`), `ANY_ENDPOINT` balances over the whole cluster, `DEFAULT_SUBSET` over the
//!   endpoints whose metadata has every key/value of `default_subset` (no such endpoint: as
//!   `NO_FALLBACK`; an empty `default_subset`: every endpoint).
//! - With `single_host_per_subset`, a subset of that selector keeps only its first endpoint in
//!   the load assignment's order, as Envoy does; the others get no traffic through it.
//!
//! Subsets are computed when the endpoints or their health change, never per request: a
//! request costs one hash lookup of its (precompiled) criteria.
//!
//! Not supported (refused when a cluster sets them, so nothing is served differently from
//! Envoy): per-selector `fallback_policy` and `fallback_keys_subset`, `list_as_any`,
//! `metadata_fallback_policy`, `panic_mode_any`, `locality_weight_aware` and
//! `scale_locality_weight`. Gloo sets none of them.
//!
//! ```
//! use envoy_types::pb::envoy::config::cluster::v3::cluster::{
//!     lb_subset_config::LbSubsetSelector, LbSubsetConfig,
//! };
//! use envoy_types::pb::envoy::config::cluster::v3::Cluster as PbCluster;
//! use envoy_types::pb::envoy::config::core::v3::{
//!     address, socket_address, Address, Metadata, SocketAddress,
//! };
//! use envoy_types::pb::envoy::config::endpoint::v3::{
//!     lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
//! };
//! use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
//! use gloo_proxy::stats::Stats;
//! use gloo_proxy::upstream::subset::{MatchCriteria, ENVOY_LB};
//! use gloo_proxy::upstream::Cluster;
//!
//! # fn main() -> Result<(), gloo_proxy::upstream::ClusterError> {
//! // `envoy.lb` metadata, as endpoints carry it and routes' `metadata_match` asks for it.
//! let lb = |pairs: &[(&str, &str)]| Metadata {
//!     filter_metadata: [(
//!         ENVOY_LB.to_string(),
//!         Struct {
//!             fields: pairs
//!                 .iter()
//!                 .map(|(k, v)| {
//!                     let value = Value { kind: Some(Kind::StringValue(v.to_string())) };
//!                     (k.to_string(), value)
//!                 })
//!                 .collect(),
//!         },
//!     )]
//!     .into(),
//!     ..Default::default()
//! };
//! let endpoint = |port: u32, version: &str| LbEndpoint {
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
//!     metadata: Some(lb(&[("version", version)])),
//!     ..Default::default()
//! };
//! // Subsets by `version` (no fallback: Envoy's default).
//! let pb = PbCluster {
//!     name: "petstore".into(),
//!     lb_subset_config: Some(LbSubsetConfig {
//!         subset_selectors: vec![LbSubsetSelector {
//!             keys: vec!["version".into()],
//!             ..Default::default()
//!         }],
//!         ..Default::default()
//!     }),
//!     load_assignment: Some(ClusterLoadAssignment {
//!         cluster_name: "petstore".into(),
//!         endpoints: vec![LocalityLbEndpoints {
//!             lb_endpoints: vec![endpoint(8081, "v1"), endpoint(8082, "v2")],
//!             ..Default::default()
//!         }],
//!         ..Default::default()
//!     }),
//!     ..Default::default()
//! };
//! let cluster = Cluster::compile(&pb, "v1", &Stats::default(), 1)?;
//!
//! let criteria = |pairs: &[(&str, &str)]| MatchCriteria::from_metadata(Some(&lb(pairs)));
//! let v2 = criteria(&[("version", "v2")]);
//! let picked = cluster.pick(v2.as_ref(), None).expect("the v2 subset");
//! assert_eq!(picked.address.port(), 8082);
//! // No endpoint has `version: v3`, and there is no fallback: no endpoint (a 503).
//! let v3 = criteria(&[("version", "v3")]);
//! assert!(cluster.pick(v3.as_ref(), None).is_none());
//!
//! // A weighted cluster's criteria override its route's, key by key.
//! let route = criteria(&[("stage", "prod"), ("version", "v1")]);
//! let merged = MatchCriteria::merged(route.as_ref(), v2.as_ref());
//! assert_eq!(merged, criteria(&[("stage", "prod"), ("version", "v2")]));
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::cluster::{lb_subset_config, LbSubsetConfig};
use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};

use super::Endpoint;

/// The metadata namespace of subset load balancing.
pub const ENVOY_LB: &str = "envoy.lb";

/// A metadata value in a form compared as Envoy compares `google.protobuf.Value`s: equal
/// scalars are equal, structs are compared key by key whatever their order.
pub type LbValue = Arc<str>;

/// An endpoint's `envoy.lb` metadata.
pub type LbMetadata = BTreeMap<String, LbValue>;

/// Request criteria: key/values sorted by key (Envoy's `MetadataMatchCriteria`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MatchCriteria(Arc<[(String, LbValue)]>);

impl MatchCriteria {
    /// The `envoy.lb` criteria of a route's or weighted cluster's `metadata_match`; `None`
    /// when there are none.
    pub fn from_metadata(metadata: Option<&Metadata>) -> Option<Self> {
        let fields = lb_fields(metadata?)?;
        (!fields.is_empty()).then(|| MatchCriteria(fields.into_iter().collect()))
    }

    /// `self` merged with `over`, whose values win (a weighted cluster's over its route's).
    pub fn merged(base: Option<&Self>, over: Option<&Self>) -> Option<Self> {
        match (base, over) {
            (None, None) => None,
            (Some(b), None) => Some(b.clone()),
            (None, Some(o)) => Some(o.clone()),
            (Some(b), Some(o)) => {
                let mut all: BTreeMap<String, LbValue> = b.0.iter().cloned().collect();
                all.extend(o.0.iter().cloned());
                Some(MatchCriteria(all.into_iter().collect()))
            }
        }
    }

    fn pairs(&self) -> &[(String, LbValue)] {
        &self.0
    }
}

/// `filter_metadata["envoy.lb"]` as sorted key/values.
fn lb_fields(metadata: &Metadata) -> Option<LbMetadata> {
    let fields = &metadata.filter_metadata.get(ENVOY_LB)?.fields;
    Some(
        fields
            .iter()
            .map(|(k, v)| (k.clone(), canonical(v).into()))
            .collect(),
    )
}

/// An endpoint's `envoy.lb` metadata (empty without).
pub fn endpoint_metadata(metadata: Option<&Metadata>) -> LbMetadata {
    metadata.and_then(lb_fields).unwrap_or_default()
}

/// A canonical text of a value: equal values (structs in any field order) give equal texts,
/// and different values different texts (strings are length-prefixed).
fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    use std::fmt::Write;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => out.push('n'),
        Some(Kind::NumberValue(n)) => {
            // 0.0 and -0.0 are equal numbers.
            let n = if *n == 0.0 { 0.0 } else { *n };
            let _ = write!(out, "d{};", n.to_bits());
        }
        Some(Kind::StringValue(s)) => {
            let _ = write!(out, "s{}:{s}", s.len());
        }
        Some(Kind::BoolValue(b)) => out.push_str(if *b { "t" } else { "f" }),
        Some(Kind::StructValue(Struct { fields })) => {
            let sorted: BTreeMap<&String, &Value> = fields.iter().collect();
            out.push('{');
            for (k, v) in sorted {
                let _ = write!(out, "{}:{k}", k.len());
                write_canonical(v, out);
            }
            out.push('}');
        }
        Some(Kind::ListValue(l)) => {
            out.push('[');
            for v in &l.values {
                write_canonical(v, out);
            }
            out.push(']');
        }
    }
}

/// What happens when no subset matches a request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fallback {
    /// No endpoint.
    None,
    /// Any endpoint of the cluster.
    Any,
    /// The endpoints with all of these key/values.
    Default(Vec<(String, LbValue)>),
}

/// A compiled `lb_subset_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubsetConfig {
    fallback: Fallback,
    /// Each selector's keys (sorted, without duplicates) and `single_host_per_subset`.
    selectors: Vec<(Vec<String>, bool)>,
}

impl SubsetConfig {
    /// Compiles a cluster's `lb_subset_config`; an error names what is not supported.
    pub(crate) fn compile(pb: &LbSubsetConfig) -> Result<Self, String> {
        let unsupported = [
            ("list_as_any", pb.list_as_any),
            ("panic_mode_any", pb.panic_mode_any),
            ("locality_weight_aware", pb.locality_weight_aware),
            ("scale_locality_weight", pb.scale_locality_weight),
            (
                "metadata_fallback_policy",
                pb.metadata_fallback_policy
                    != lb_subset_config::LbSubsetMetadataFallbackPolicy::MetadataNoFallback as i32,
            ),
        ];
        if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(format!("lb_subset_config.{field} is not supported"));
        }
        let fallback = match lb_subset_config::LbSubsetFallbackPolicy::try_from(pb.fallback_policy)
        {
            Ok(lb_subset_config::LbSubsetFallbackPolicy::NoFallback) => Fallback::None,
            Ok(lb_subset_config::LbSubsetFallbackPolicy::AnyEndpoint) => Fallback::Any,
            Ok(lb_subset_config::LbSubsetFallbackPolicy::DefaultSubset) => {
                let default = pb
                    .default_subset
                    .as_ref()
                    .map(|s| {
                        s.fields
                            .iter()
                            .map(|(k, v)| (k.clone(), LbValue::from(canonical(v))))
                            .collect::<BTreeMap<_, _>>()
                    })
                    .unwrap_or_default();
                if default.is_empty() {
                    Fallback::Any
                } else {
                    Fallback::Default(default.into_iter().collect())
                }
            }
            Err(_) => {
                return Err(format!(
                    "lb_subset_config.fallback_policy {} is unknown",
                    pb.fallback_policy
                ))
            }
        };
        let mut selectors = Vec::new();
        for (i, s) in pb.subset_selectors.iter().enumerate() {
            if s.fallback_policy
                != lb_subset_config::lb_subset_selector::LbSubsetSelectorFallbackPolicy::NotDefined
                    as i32
                || !s.fallback_keys_subset.is_empty()
            {
                return Err(format!(
                    "lb_subset_config.subset_selectors[{i}]: a selector's own fallback_policy is not supported"
                ));
            }
            let mut keys = s.keys.clone();
            keys.sort();
            keys.dedup();
            // A selector without keys makes no subset (as in Envoy).
            if !keys.is_empty() {
                selectors.push((keys, s.single_host_per_subset));
            }
        }
        Ok(SubsetConfig {
            fallback,
            selectors,
        })
    }
}

/// A subset's key/values, sorted by key.
type SubsetKey = Box<[(String, LbValue)]>;

/// A cluster's subsets over one set of endpoints, each with its balancer `B` (gloo-proxy's
/// clusters use priority levels of balancers).
#[derive(Debug)]
pub(crate) struct Subsets<B> {
    by_criteria: HashMap<SubsetKey, Arc<B>>,
    /// The fallback's balancer (`None`: no fallback).
    fallback: Option<Arc<B>>,
}

impl<B> Subsets<B> {
    /// Partitions `members` (in load-assignment order) by `config`; `balancer` builds the
    /// balancer of a group of endpoints (health and panic threshold applied), `all` is the
    /// cluster's own balancer (for `ANY_ENDPOINT`).
    pub(crate) fn build(
        config: &SubsetConfig,
        members: &[Arc<Endpoint>],
        all: &Arc<B>,
        balancer: impl Fn(Vec<Arc<Endpoint>>) -> B,
    ) -> Self {
        let mut groups: HashMap<SubsetKey, (bool, Vec<Arc<Endpoint>>)> = HashMap::new();
        for (keys, single) in &config.selectors {
            for e in members {
                let values: Option<SubsetKey> = keys
                    .iter()
                    .map(|k| e.lb_metadata.get(k).map(|v| (k.clone(), v.clone())))
                    .collect();
                let Some(values) = values else { continue };
                let (single_host, group) = groups.entry(values).or_insert((*single, Vec::new()));
                // The first selector that made the subset decides (as in Envoy).
                if *single_host && !group.is_empty() {
                    continue;
                }
                if !group.iter().any(|g| Arc::ptr_eq(g, e)) {
                    group.push(e.clone());
                }
            }
        }
        let by_criteria = groups
            .into_iter()
            .map(|(k, (_, group))| (k, Arc::new(balancer(group))))
            .collect();
        let fallback = match &config.fallback {
            Fallback::None => None,
            Fallback::Any => Some(all.clone()),
            Fallback::Default(values) => {
                let group: Vec<Arc<Endpoint>> = members
                    .iter()
                    .filter(|e| {
                        values
                            .iter()
                            .all(|(k, v)| e.lb_metadata.get(k).is_some_and(|x| x == v))
                    })
                    .cloned()
                    .collect();
                (!group.is_empty()).then(|| Arc::new(balancer(group)))
            }
        };
        Subsets {
            by_criteria,
            fallback,
        }
    }

    /// The balancer for a request's criteria: its subset's, else the fallback's.
    pub(crate) fn balancer(&self, criteria: Option<&MatchCriteria>) -> Option<&Arc<B>> {
        criteria
            .and_then(|c| self.by_criteria.get(c.pairs()))
            .or(self.fallback.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::balance::{Balancer, Policy};

    fn string(s: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(s.to_string())),
        }
    }

    fn metadata(pairs: &[(&str, &str)]) -> Metadata {
        Metadata {
            filter_metadata: [(
                ENVOY_LB.to_string(),
                Struct {
                    fields: pairs
                        .iter()
                        .map(|(k, v)| (k.to_string(), string(v)))
                        .collect(),
                },
            )]
            .into(),
            ..Default::default()
        }
    }

    fn endpoint(port: u16, pairs: &[(&str, &str)]) -> Arc<Endpoint> {
        let mut e = Endpoint::new(
            format!("127.0.0.1:{port}").parse().expect("address"),
            String::new(),
            1,
        );
        e.lb_metadata = endpoint_metadata(Some(&metadata(pairs)));
        Arc::new(e)
    }

    fn config(
        fallback: i32,
        default: &[(&str, &str)],
        selectors: &[(&[&str], bool)],
    ) -> SubsetConfig {
        SubsetConfig::compile(&LbSubsetConfig {
            fallback_policy: fallback,
            default_subset: Some(Struct {
                fields: default
                    .iter()
                    .map(|(k, v)| (k.to_string(), string(v)))
                    .collect(),
            }),
            subset_selectors: selectors
                .iter()
                .map(|(keys, single)| lb_subset_config::LbSubsetSelector {
                    keys: keys.iter().map(|k| k.to_string()).collect(),
                    single_host_per_subset: *single,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .expect("config")
    }

    fn ports(subsets: &Subsets<Balancer>, criteria: &[(&str, &str)]) -> Vec<u16> {
        let criteria = MatchCriteria::from_metadata(Some(&metadata(criteria)));
        let mut out: Vec<u16> = subsets
            .balancer(criteria.as_ref())
            .map(|b| b.endpoints().iter().map(|e| e.address.port()).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    // The example of Envoy's subset load balancing docs.
    #[test]
    fn subsets_and_fallbacks_follow_envoys_documented_example() {
        let hosts = vec![
            endpoint(1, &[("v", "1.0"), ("stage", "prod")]),
            endpoint(2, &[("v", "1.0"), ("stage", "prod")]),
            endpoint(3, &[("v", "1.1"), ("stage", "canary")]),
            endpoint(4, &[("v", "1.2-pre"), ("stage", "dev")]),
        ];
        let all = Arc::new(Balancer::new(Policy::RoundRobin, hosts.clone()));
        let build = |c: &SubsetConfig| {
            Subsets::build(c, &hosts, &all, |g| Balancer::new(Policy::RoundRobin, g))
        };
        let default = lb_subset_config::LbSubsetFallbackPolicy::DefaultSubset as i32;
        let s = build(&config(
            default,
            &[("stage", "prod")],
            &[(&["v", "stage"], false), (&["stage"], false)],
        ));
        assert_eq!(ports(&s, &[("stage", "canary")]), [3]);
        assert_eq!(ports(&s, &[("v", "1.2-pre"), ("stage", "dev")]), [4]);
        assert_eq!(
            ports(&s, &[("v", "1.0")]),
            [1, 2],
            "no selector for v alone"
        );
        assert_eq!(ports(&s, &[("other", "x")]), [1, 2]);
        assert_eq!(ports(&s, &[]), [1, 2], "no criteria");
        assert_eq!(ports(&s, &[("stage", "test")]), [1, 2], "no such value");

        let none = lb_subset_config::LbSubsetFallbackPolicy::NoFallback as i32;
        let s = build(&config(none, &[], &[(&["stage"], false)]));
        assert_eq!(ports(&s, &[("stage", "test")]), Vec::<u16>::new());
        assert_eq!(ports(&s, &[("stage", "prod")]), [1, 2]);

        let any = lb_subset_config::LbSubsetFallbackPolicy::AnyEndpoint as i32;
        let s = build(&config(any, &[], &[(&["stage"], false)]));
        assert_eq!(ports(&s, &[("stage", "test")]), [1, 2, 3, 4]);

        // A default subset no endpoint has: as NO_FALLBACK; an empty one: every endpoint.
        let s = build(&config(default, &[("stage", "qa")], &[(&["stage"], false)]));
        assert_eq!(ports(&s, &[("stage", "test")]), Vec::<u16>::new());
        let s = build(&config(default, &[], &[(&["stage"], false)]));
        assert_eq!(ports(&s, &[("stage", "test")]), [1, 2, 3, 4]);

        // One host per subset: the first in assignment order.
        let s = build(&config(none, &[], &[(&["stage"], true)]));
        assert_eq!(ports(&s, &[("stage", "prod")]), [1]);
    }

    #[test]
    fn weighted_criteria_override_the_routes_and_values_compare_by_value() {
        let route =
            MatchCriteria::from_metadata(Some(&metadata(&[("v", "1.0"), ("stage", "prod")])));
        let weighted = MatchCriteria::from_metadata(Some(&metadata(&[("stage", "canary")])));
        let merged = MatchCriteria::merged(route.as_ref(), weighted.as_ref());
        assert_eq!(
            merged,
            MatchCriteria::from_metadata(Some(&metadata(&[("v", "1.0"), ("stage", "canary")])))
        );
        // A string is not a number, whatever it reads.
        let number = Value {
            kind: Some(Kind::NumberValue(1.0)),
        };
        assert_ne!(canonical(&number), canonical(&string("1")));
        assert_ne!(canonical(&string("a")), canonical(&string("b")));
    }
}
