//! Subset load balancing: an upstream's `subsetSpec` becomes its cluster's `lb_subset_config`,
//! endpoint labels become `LbEndpoint.metadata.filter_metadata["envoy.lb"]`, and a
//! destination's `subset` (or a Consul destination's `tags` / `dataCenters`) becomes the
//! route's, or the weighted cluster's, `metadata_match` under `envoy.lb`, as Gloo's
//! translator (`createLbConfig`, `getLbMetadata`, `getSubsetMatch`) and Consul plugin
//! (`consulMetadataMatch`) emit them.
//!
//! Which upstreams have subsets is Gloo's `SubsetSpecGetter`: a `kube` upstream's own
//! `subsetSpec`, and for a `consul` upstream one derived from its `dataCenters` and its
//! `subsetTags` (else `serviceTags`): a selector of the `dc_<dc>` keys, and, with tags, one of
//! the `tag_<t>` keys and one of both. Static upstreams have no `subsetSpec` in Gloo's API.
//!
//! An endpoint carries all its labels, and `""` for every subset key it has no label for
//! (Gloo's `getLbMetadata` zero value), so endpoints without a label form the `""` subset.

use std::borrow::Cow;
use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3::cluster::{lb_subset_config, LbSubsetConfig};
use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::google::protobuf::{value, Struct, Value};

use crate::model::routing::{
    Destination, DestinationTarget, RouteAction, RouteDestination, WeightedDestination,
};
use crate::model::upstream::{
    ConsulUpstreamSpec, FallbackPolicy, SubsetSelector, SubsetSpec, UpstreamSpec, UpstreamTypeRef,
    CONSUL_DATA_CENTER_KEY_PREFIX, CONSUL_TAG_KEY_PREFIX,
};
use crate::snapshot::ConfigSnapshot;

/// The metadata namespace of subset load balancing, Gloo's `EnvoyLb`.
pub(crate) const ENVOY_LB: &str = "envoy.lb";

/// Gloo's `SubsetsMisconfiguredErr`, a warning: the route is served and Envoy ignores the
/// match on a cluster without subsets.
const NO_SUBSETS: &str = "route has a subset config, but the upstream does not";

/// An upstream's subsets (Gloo's `SubsetSpecGetter`).
pub(crate) fn subset_spec(spec: &UpstreamSpec) -> Option<Cow<'_, SubsetSpec>> {
    match spec.upstream_type() {
        Ok(Some(UpstreamTypeRef::Kube(k))) => k.subset_spec.as_ref().map(Cow::Borrowed),
        Ok(Some(UpstreamTypeRef::Consul(c))) => Some(Cow::Owned(consul_subset_spec(c))),
        _ => None,
    }
}

/// Gloo's `Upstream_Consul.GetSubsetSpec`.
fn consul_subset_spec(c: &ConsulUpstreamSpec) -> SubsetSpec {
    let mut dc_keys: Vec<String> = c
        .data_centers
        .iter()
        .map(|dc| format!("{CONSUL_DATA_CENTER_KEY_PREFIX}{dc}"))
        .collect();
    dc_keys.sort();
    let mut selectors = vec![SubsetSelector {
        keys: dc_keys.clone(),
        single_host_per_subset: None,
    }];
    let mut tag_keys: Vec<String> = c
        .subset_key_tags()
        .iter()
        .map(|t| format!("{CONSUL_TAG_KEY_PREFIX}{t}"))
        .collect();
    if !tag_keys.is_empty() {
        tag_keys.sort();
        selectors.push(SubsetSelector {
            keys: tag_keys.clone(),
            single_host_per_subset: None,
        });
        let mut all = dc_keys;
        all.extend(tag_keys);
        selectors.push(SubsetSelector {
            keys: all,
            single_host_per_subset: None,
        });
    }
    SubsetSpec {
        selectors,
        ..Default::default()
    }
}

/// A string map as a `Struct` of string values.
fn string_struct<'a>(values: impl IntoIterator<Item = (&'a String, &'a String)>) -> Struct {
    Struct {
        fields: values
            .into_iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Value {
                        kind: Some(value::Kind::StringValue(v.clone())),
                    },
                )
            })
            .collect(),
    }
}

/// `labels` under `envoy.lb`, or `None` when there are none.
pub(crate) fn lb_metadata(labels: &BTreeMap<String, String>) -> Option<Metadata> {
    (!labels.is_empty()).then(|| Metadata {
        filter_metadata: [(ENVOY_LB.to_string(), string_struct(labels))].into(),
        ..Default::default()
    })
}

/// The cluster's `lb_subset_config` (Gloo's `createLbConfig`).
pub(crate) fn lb_subset_config(spec: &UpstreamSpec) -> Option<LbSubsetConfig> {
    let subsets = subset_spec(spec)?;
    let fallback = match subsets.fallback_policy.unwrap_or_default() {
        FallbackPolicy::AnyEndpoint => lb_subset_config::LbSubsetFallbackPolicy::AnyEndpoint,
        FallbackPolicy::DefaultSubset => lb_subset_config::LbSubsetFallbackPolicy::DefaultSubset,
        FallbackPolicy::NoFallback => lb_subset_config::LbSubsetFallbackPolicy::NoFallback,
    };
    Some(LbSubsetConfig {
        fallback_policy: fallback as i32,
        default_subset: subsets
            .default_subset
            .as_ref()
            .map(|d| string_struct(&d.values)),
        subset_selectors: subsets
            .selectors
            .iter()
            .map(|s| lb_subset_config::LbSubsetSelector {
                keys: s.keys.clone(),
                single_host_per_subset: s.single_host_per_subset.unwrap_or(false),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

/// Sets `""` for every subset key of the upstream an endpoint has no label for (Gloo's
/// `getLbMetadata` with its zero value).
pub(crate) fn default_labels(spec: &UpstreamSpec, labels: &mut BTreeMap<String, String>) {
    if let Some(subsets) = subset_spec(spec) {
        for key in subsets.selectors.iter().flat_map(|s| &s.keys) {
            labels.entry(key.clone()).or_default();
        }
    }
}

/// The labels a destination's endpoints must have: its `subset`, or for a Consul destination
/// with `tags` or `dataCenters` the `tag_<t>` / `dc_<dc>` flags of its upstream (which override
/// the subset, as Gloo's Consul plugin does). Empty: no match criteria.
fn match_labels(snapshot: &ConfigSnapshot, d: &Destination) -> BTreeMap<String, String> {
    if let Ok(Some(DestinationTarget::Consul(c))) = d.target() {
        let upstream = super::routes::destination_upstream(d)
            .and_then(|r| snapshot.upstreams.get(&r))
            .and_then(|e| e.object.spec.consul.as_ref());
        let mut labels = BTreeMap::new();
        if let Some(spec) = upstream {
            if !c.tags.is_empty() {
                spec.tag_labels(|t| c.tags.iter().any(|x| x == t), &mut labels);
            }
            if !c.data_centers.is_empty() {
                spec.data_center_labels(|dc| c.data_centers.iter().any(|x| x == dc), &mut labels);
            }
        }
        return labels;
    }
    d.subset
        .as_ref()
        .map(|s| s.values.clone())
        .unwrap_or_default()
}

/// A destination's `metadata_match`, for a route or a weighted cluster.
pub(crate) fn metadata_match(snapshot: &ConfigSnapshot, d: &Destination) -> Option<Metadata> {
    lb_metadata(&match_labels(snapshot, d))
}

/// What is wrong with a destination's `subset` (Gloo's `checkThatSubsetMatchesUpstream`):
/// `Ok(Some(warning))` when its upstream has no subsets (the route is still served, and the
/// match has no effect), `Err(error)` when none of the upstream's selectors has exactly the
/// subset's keys (the route is refused). Messages start with the `subset` field's path.
fn check_destination(
    snapshot: &ConfigSnapshot,
    d: &Destination,
    field: &str,
) -> Result<Option<String>, String> {
    let Some(subset) = d.subset.as_ref().filter(|s| !s.values.is_empty()) else {
        return Ok(None);
    };
    // A missing upstream is reported (as a warning) where destinations are checked.
    let Some(upstream) =
        super::routes::destination_upstream(d).and_then(|r| snapshot.upstreams.get(&r))
    else {
        return Ok(None);
    };
    let Some(subsets) = subset_spec(&upstream.object.spec) else {
        return Ok(Some(format!("{field}.subset: {NO_SUBSETS}")));
    };
    let found = subsets.selectors.iter().any(|s| {
        s.keys.len() == subset.values.len() && s.keys.iter().all(|k| subset.values.contains_key(k))
    });
    if found {
        Ok(None)
    } else {
        let keys: Vec<&str> = subset.values.keys().map(String::as_str).collect();
        Err(format!(
            "{field}.subset: route has a subset config, but none of the subsets in the upstream match it (no selector of upstream {} has exactly the keys {keys:?})",
            upstream.object.to_ref()
        ))
    }
}

/// Whether any destination of a route action names a subset (checked before anything is
/// formatted: most routes have none).
fn names_subset(snapshot: &ConfigSnapshot, action: &RouteAction) -> bool {
    let weighted = |ds: &[WeightedDestination]| {
        ds.iter()
            .filter_map(|w| w.destination.as_ref())
            .any(|d| d.subset.is_some())
    };
    match action.destination() {
        Ok(Some(RouteDestination::Single(d))) => d.subset.is_some(),
        Ok(Some(RouteDestination::Multi(m))) => weighted(&m.destinations),
        Ok(Some(RouteDestination::UpstreamGroup(r))) => snapshot
            .upstream_groups
            .get(&r.resolved(crate::model::DEFAULT_NAMESPACE))
            .is_some_and(|g| weighted(&g.object.spec.destinations)),
        _ => false,
    }
}

/// The subset problems of every destination of a route action: (warnings, errors), each
/// starting with the destination's field path (see [`check_destination`]).
pub(crate) fn check_route(
    snapshot: &ConfigSnapshot,
    action: &RouteAction,
    path: impl std::fmt::Display,
) -> (Vec<String>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    if !names_subset(snapshot, action) {
        return (warnings, errors);
    }
    for (field, d) in super::routes::action_destinations(snapshot, action, &path.to_string()) {
        match check_destination(snapshot, d, &field) {
            Ok(Some(w)) => warnings.push(w),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    (warnings, errors)
}
