//! [`ConsulDiscovery`]: Gloo's Consul UDS and EDS as one [`Discovery`] plugin.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use gloo_core::model::settings::{ConsulUpstreamDiscoveryConfiguration, SettingsSpec};
use gloo_core::model::ssl::UpstreamSslConfig;
use gloo_core::model::upstream::{ConsulUpstreamSpec, UpstreamSpec};
use gloo_core::model::{ObjectMeta, ResourceRef, DEFAULT_NAMESPACE};
use gloo_core::translate::{Endpoint, Endpoints};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};

use super::client::{
    Blocking, BlockingIndex, ConsulClient, ConsulConfig, ConsulError, ServiceEntry,
};
use crate::plugin::{BoxFuture, Discovery, DiscoveryContext, DiscoveryError, Upstream, Upstreams};

/// The prefix of the upstreams discovered for Consul services (`consul-svc:<service>`), Gloo's
/// `UpstreamNamePrefix`.
pub const UPSTREAM_NAME_PREFIX: &str = "consul-svc:";
/// Endpoint label prefix for a data center (`dc_<dc>`), Gloo's `ConsulDataCenterKeyPrefix`.
pub use gloo_core::model::upstream::CONSUL_DATA_CENTER_KEY_PREFIX as DATA_CENTER_KEY_PREFIX;
/// Endpoint label prefix for a tag (`tag_<tag>`), Gloo's `ConsulTagKeyPrefix`.
pub use gloo_core::model::upstream::CONSUL_TAG_KEY_PREFIX as TAG_KEY_PREFIX;
/// Gloo's default `tlsTagName`.
pub const DEFAULT_TLS_TAG: &str = "glooUseTls";

/// The upstream Gloo discovers for Consul service `service`: `gloo-system/consul-svc:<service>`
/// (Gloo's `DestinationToUpstreamRef`; its cluster is `consul-svc:<service>_gloo-system`).
///
/// ```
/// use gloo_discovery::consul::upstream_ref;
/// assert_eq!(upstream_ref("web").to_string(), "gloo-system.consul-svc:web");
/// ```
pub fn upstream_ref(service: &str) -> ResourceRef {
    ResourceRef::new(
        DEFAULT_NAMESPACE,
        format!("{UPSTREAM_NAME_PREFIX}{service}"),
    )
}

/// Gloo's Consul service discovery (`Settings.consul.serviceDiscovery` and
/// `Settings.consulDiscovery`), as a [`Discovery`] plugin.
///
/// **Upstreams (UDS).** One upstream per Consul service, `gloo-system/consul-svc:<name>`, with
/// `consul.serviceName`, `dataCenters` (every data center that has the service, sorted) and
/// `serviceTags` (the union of its tags in those data centers, sorted), as Gloo's
/// `CreateUpstreamsFromService` builds it. With TLS tagging on, a service carrying the TLS tag
/// gets `consul-svc:<name>-tls` (with `sslConfig.secretRef` = the root CA) instead, or
/// besides the plain one when `splitTlsServices` is set (the TLS one then selects instances
/// with the tag, the plain one excludes them). `serviceTagsAllowlist` keeps only services with
/// one of its tags. The catalog of each data center is watched with a blocking query on
/// `/v1/catalog/services`.
///
/// **Endpoints (EDS).** For every `consul` upstream in force (discovered or written by a user),
/// the instances of its service in every data center that has it, from a blocking query per
/// service and data center on `/v1/health/service/<name>`. The address is the instance's
/// `ServiceAddress`, else its node's `Address`. Labels are Gloo's `BuildTagMetadata` /
/// `BuildDataCenterMetadata`: `tag_<t>` for each tag of the upstreams of that service
/// (`subsetTags` if set, else `serviceTags`) and `dc_<dc>` for each of their `dataCenters`,
/// `"1"` when the instance has the tag / is in the data center, `"0"` otherwise. An upstream
/// with `instanceTags` takes only instances that have all of them, one with
/// `instanceBlacklistTags` only instances with none of them.
///
/// **Deviations from Gloo.**
/// - Gloo reads instances from `/v1/catalog/service/<name>`, which knows nothing of health, so
///   Envoy keeps sending to an instance Consul knows is down until its own health checks or
///   outlier detection notice. gloo reads `/v1/health/service/<name>` and marks an instance
///   whose checks (its own or its node's, such as `serfHealth`) include a `critical` one
///   unhealthy, as Consul's DNS interface does; `warning` stays healthy (also as Consul's DNS).
/// - Gloo's EDS applies `instanceTags` only; `instanceBlacklistTags` is applied by its
///   `Resolve` alone, so with `splitTlsServices` its plain upstream also gets the TLS instances.
///   gloo applies both in EDS.
/// - Gloo polls the catalog for every service on every change unless `edsBlockingQueries` is
///   set; gloo always uses one blocking query per service and data center.
/// - Instances registered with a host name instead of an IP address are skipped with a
///   warning (Gloo resolves them through Consul's DNS at `dnsAddress`, polled every
///   `dnsPollingInterval`); `queryOptions.useCache` (agent caching) is not sent.
///
/// Any failed request (agent unreachable, ACL refusal, 5xx, an answer that is not Consul's)
/// ends the run with an error naming the URL: the runner starts it again after a backoff, and
/// what was published keeps serving meanwhile.
#[derive(Debug, Clone)]
pub struct ConsulDiscovery {
    client: ConsulClient,
    options: Arc<Options>,
}

#[derive(Debug, Clone, Default)]
struct Options {
    /// Only these data centers (empty: all).
    data_centers: Vec<String>,
    /// Only services with one of these tags (empty: all).
    service_tags_allowlist: Vec<String>,
    tls: Option<TlsTagging>,
    discovery: ConsulUpstreamDiscoveryConfiguration,
}

#[derive(Debug, Clone)]
struct TlsTagging {
    tag: String,
    root_ca: ResourceRef,
    split: bool,
}

/// Something a watch found.
enum Event {
    Catalog {
        datacenter: String,
        services: BTreeMap<String, Vec<String>>,
    },
    Health {
        key: (String, String),
        generation: u64,
        entries: Vec<ServiceEntry>,
    },
    Failed(ConsulError),
}

/// One running health watch and what it last found.
struct HealthWatch {
    generation: u64,
    abort: AbortHandle,
    entries: Option<Vec<ServiceEntry>>,
}

impl ConsulDiscovery {
    /// Discovery through `client`, in every data center, without TLS tagging.
    pub fn new(client: ConsulClient) -> Self {
        ConsulDiscovery {
            client,
            options: Arc::new(Options::default()),
        }
    }

    /// The plugin Gloo's Settings ask for: `None` unless `consul.serviceDiscovery` is set;
    /// the agent from `consul` (see [`ConsulConfig::from_settings`]), the data centers from
    /// `consul.serviceDiscovery.dataCenters`, and `consulDiscovery`'s TLS tagging, tag
    /// allowlist and consistency mode. TLS tagging without `rootCa` is an error naming it.
    pub fn from_settings(settings: &SettingsSpec) -> Result<Option<Self>, ConsulError> {
        let Some(consul) = &settings.consul else {
            return Ok(None);
        };
        let Some(service_discovery) = &consul.service_discovery else {
            return Ok(None);
        };
        let discovery = settings.consul_discovery.clone().unwrap_or_default();
        let mut config = ConsulConfig::from_settings(consul)?;
        if let Some(mode) = discovery.consistency_mode {
            config = config.consistency(mode);
        }
        let mut plugin = ConsulDiscovery::new(ConsulClient::new(config)?)
            .data_centers(service_discovery.data_centers.clone())
            .service_tags_allowlist(discovery.service_tags_allowlist.clone());
        if discovery.use_tls_tagging == Some(true) {
            let root_ca = discovery
                .root_ca
                .clone()
                .filter(|r| !r.name.is_empty() && r.namespace.as_deref().is_some_and(|n| !n.is_empty()))
                .ok_or_else(|| {
                    ConsulError::new(
                        "settings.consulDiscovery.rootCa: useTlsTagging needs the root CA secret's name and namespace",
                    )
                })?;
            let tag = discovery
                .tls_tag_name
                .clone()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| DEFAULT_TLS_TAG.to_string());
            plugin = plugin.tls_tagging(tag, root_ca, discovery.split_tls_services == Some(true));
        }
        Arc::make_mut(&mut plugin.options).discovery = discovery;
        Ok(Some(plugin))
    }

    /// Only these data centers (Gloo's `consul.serviceDiscovery.dataCenters`; empty: all).
    pub fn data_centers(mut self, data_centers: impl IntoIterator<Item = String>) -> Self {
        Arc::make_mut(&mut self.options).data_centers = data_centers.into_iter().collect();
        self
    }

    /// Only services with at least one of these tags (Gloo's
    /// `consulDiscovery.serviceTagsAllowlist`; empty: all).
    pub fn service_tags_allowlist(mut self, tags: impl IntoIterator<Item = String>) -> Self {
        Arc::make_mut(&mut self.options).service_tags_allowlist = tags.into_iter().collect();
        self
    }

    /// Gloo's `useTlsTagging`: services with `tag` get a `consul-svc:<name>-tls` upstream
    /// that originates TLS with `root_ca`; with `split`, beside their plain upstream.
    pub fn tls_tagging(
        mut self,
        tag: impl Into<String>,
        root_ca: ResourceRef,
        split: bool,
    ) -> Self {
        Arc::make_mut(&mut self.options).tls = Some(TlsTagging {
            tag: tag.into(),
            root_ca,
            split,
        });
        self
    }
}

impl Discovery for ConsulDiscovery {
    fn name(&self) -> &str {
        "consul"
    }

    fn resolves(&self, upstream: &UpstreamSpec) -> bool {
        upstream
            .consul
            .as_ref()
            .is_some_and(|c| c.service_name.as_deref().is_some_and(|n| !n.is_empty()))
    }

    fn run(
        self: Arc<Self>,
        context: DiscoveryContext,
    ) -> BoxFuture<'static, Result<(), DiscoveryError>> {
        Box::pin(async move { self.watch(context).await.map_err(DiscoveryError::new) })
    }
}

impl ConsulDiscovery {
    async fn watch(&self, mut context: DiscoveryContext) -> Result<(), ConsulError> {
        let mut datacenters = self.client.datacenters().await?;
        if !self.options.data_centers.is_empty() {
            datacenters.retain(|dc| self.options.data_centers.contains(dc));
        }
        let (events, mut found) = mpsc::channel::<Event>(64);
        // Every watch is a task of these sets: a run that ends (an error, the runner stopping)
        // drops them, which stops every query in flight.
        let mut catalog_watches = JoinSet::new();
        let mut health_tasks = JoinSet::new();
        for dc in &datacenters {
            catalog_watches.spawn(watch_catalog(
                self.client.clone(),
                dc.clone(),
                events.clone(),
            ));
        }
        let mut catalogs: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        let mut health: BTreeMap<(String, String), HealthWatch> = BTreeMap::new();
        let mut generation = 0u64;
        // What this run published; `None` until every upstream's instances were read once, so
        // a restart never publishes a partial view over what the last run found.
        let mut published: Option<Endpoints> = None;
        loop {
            let tracked = context.upstreams.borrow_and_update().clone();
            let synced = catalogs.len() == datacenters.len();
            if synced {
                context.publisher.set_upstreams(self.upstreams(&catalogs));
                // Start a health watch per (data center, service) some upstream needs; stop
                // those no upstream needs any more.
                let wanted: BTreeSet<(String, String)> = tracked
                    .values()
                    .filter_map(|u| service_name(&u.spec))
                    .flat_map(|service| {
                        catalogs
                            .iter()
                            .filter(move |(_, services)| services.contains_key(service))
                            .map(move |(dc, _)| (dc.clone(), service.to_string()))
                    })
                    .collect();
                health.retain(|key, watch| {
                    let keep = wanted.contains(key);
                    if !keep {
                        watch.abort.abort();
                    }
                    keep
                });
                for key in wanted {
                    if health.contains_key(&key) {
                        continue;
                    }
                    generation += 1;
                    let abort = health_tasks.spawn(watch_health(
                        self.client.clone(),
                        key.clone(),
                        generation,
                        events.clone(),
                    ));
                    health.insert(
                        key,
                        HealthWatch {
                            generation,
                            abort,
                            entries: None,
                        },
                    );
                }
                if let Some(endpoints) = endpoints(&tracked, &catalogs, &health, published.as_ref())
                {
                    if published.as_ref() != Some(&endpoints) {
                        context.publisher.set_endpoints(endpoints.clone());
                        published = Some(endpoints);
                    }
                }
            }
            // Reap finished health tasks so the set does not grow (they end only when aborted).
            while health_tasks.try_join_next().is_some() {}
            tokio::select! {
                event = found.recv() => match event {
                    // `events` is held here, so the channel never closes.
                    None => return Ok(()),
                    Some(Event::Failed(err)) => return Err(err),
                    Some(Event::Catalog { datacenter, services }) => {
                        catalogs.insert(datacenter, self.allowed(services));
                    }
                    Some(Event::Health { key, generation, entries }) => {
                        if let Some(watch) = health.get_mut(&key).filter(|w| w.generation == generation) {
                            watch.entries = Some(entries);
                        }
                    }
                },
                changed = context.upstreams.changed() => {
                    if changed.is_err() {
                        return Ok(()); // the runner stopped
                    }
                }
            }
        }
    }

    /// `serviceTagsAllowlist`: only services with one of the tags.
    fn allowed(&self, services: BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
        let allow = &self.options.service_tags_allowlist;
        if allow.is_empty() {
            return services;
        }
        services
            .into_iter()
            .filter(|(_, tags)| tags.iter().any(|t| allow.contains(t)))
            .collect()
    }

    /// Gloo's `toServiceMetaSlice` + `CreateUpstreamsFromService`.
    fn upstreams(
        &self,
        catalogs: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
    ) -> Vec<Upstream> {
        let mut services: BTreeMap<&str, (Vec<String>, BTreeSet<String>)> = BTreeMap::new();
        for (dc, catalog) in catalogs {
            for (name, tags) in catalog {
                let (dcs, all_tags) = services.entry(name).or_default();
                dcs.push(dc.clone());
                all_tags.extend(tags.iter().cloned());
            }
        }
        let discovery = &self.options.discovery;
        let mut out = Vec::new();
        for (name, (data_centers, tags)) in services {
            let spec = ConsulUpstreamSpec {
                service_name: Some(name.to_string()),
                data_centers,
                service_tags: tags.iter().cloned().collect(),
                consistency_mode: discovery.consistency_mode,
                query_options: discovery.query_options.clone(),
                ..Default::default()
            };
            let mut plain = spec.clone();
            if let Some(tls) = self.options.tls.as_ref().filter(|t| tags.contains(&t.tag)) {
                let mut secure = spec.clone();
                if tls.split {
                    secure.instance_tags = vec![tls.tag.clone()];
                    plain.instance_blacklist_tags = vec![tls.tag.clone()];
                }
                out.push(upstream(
                    &format!("{name}-tls"),
                    secure,
                    Some(UpstreamSslConfig {
                        secret_ref: Some(tls.root_ca.clone()),
                        ..Default::default()
                    }),
                ));
                if !tls.split {
                    continue;
                }
            }
            out.push(upstream(name, plain, None));
        }
        out
    }
}

fn upstream(service: &str, spec: ConsulUpstreamSpec, ssl: Option<UpstreamSslConfig>) -> Upstream {
    let reference = upstream_ref(service);
    Upstream::new(
        ObjectMeta::new(DEFAULT_NAMESPACE, reference.name),
        UpstreamSpec {
            consul: Some(spec),
            ssl_config: ssl,
            ..Default::default()
        },
    )
}

fn service_name(spec: &UpstreamSpec) -> Option<&str> {
    spec.consul
        .as_ref()?
        .service_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

/// The endpoints of every tracked upstream, or `None` while some upstream's instances were
/// never read and nothing was published yet. After the first publication an upstream still
/// waiting for a new watch keeps what was published for it.
fn endpoints(
    tracked: &Upstreams,
    catalogs: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
    health: &BTreeMap<(String, String), HealthWatch>,
    published: Option<&Endpoints>,
) -> Option<Endpoints> {
    // The upstreams of each service: their tags and data centers make the label keys.
    let mut by_service: BTreeMap<&str, Vec<&ConsulUpstreamSpec>> = BTreeMap::new();
    for upstream in tracked.values() {
        if let (Some(name), Some(spec)) = (service_name(&upstream.spec), &upstream.spec.consul) {
            by_service.entry(name).or_default().push(spec);
        }
    }
    let mut out = Endpoints::new();
    for (reference, upstream) in tracked.iter() {
        let (Some(service), Some(spec)) = (service_name(&upstream.spec), &upstream.spec.consul)
        else {
            continue;
        };
        let group = by_service.get(service).map(Vec::as_slice).unwrap_or(&[]);
        let mut found = Vec::new();
        let mut ready = true;
        for dc in catalogs
            .iter()
            .filter(|(_, services)| services.contains_key(service))
            .map(|(dc, _)| dc)
        {
            let Some(entries) = health
                .get(&(dc.clone(), service.to_string()))
                .and_then(|w| w.entries.as_ref())
            else {
                ready = false;
                break;
            };
            for entry in entries.iter().filter(|e| selects(spec, &e.service.tags)) {
                if let Some(endpoint) = endpoint(entry, dc, group) {
                    found.push(endpoint);
                }
            }
        }
        if !ready {
            match published {
                None => return None,
                Some(previous) => {
                    if let Some(kept) = previous.get(reference) {
                        out.insert(reference.clone(), kept.clone());
                    }
                    continue;
                }
            }
        }
        found.sort();
        found.dedup();
        if !found.is_empty() {
            out.insert(reference.clone(), found);
        }
    }
    Some(out)
}

/// `instanceTags` (all present) and `instanceBlacklistTags` (none present).
fn selects(spec: &ConsulUpstreamSpec, tags: &[String]) -> bool {
    spec.instance_tags.iter().all(|t| tags.contains(t))
        && !spec
            .instance_blacklist_tags
            .iter()
            .any(|t| tags.contains(t))
}

fn endpoint(entry: &ServiceEntry, dc: &str, group: &[&ConsulUpstreamSpec]) -> Option<Endpoint> {
    let address = entry.address();
    if address.parse::<IpAddr>().is_err() {
        tracing::warn!(
            service = %entry.service.service,
            instance = %entry.service.id,
            address,
            "Consul instance address is not an IP address; skipped (host names are not resolved yet)"
        );
        return None;
    }
    let instance_dc = if entry.node.datacenter.is_empty() {
        dc
    } else {
        &entry.node.datacenter
    };
    let mut endpoint = Endpoint::new(address, entry.service.port);
    endpoint.labels = labels(&entry.service.tags, instance_dc, group);
    endpoint.healthy = !entry.is_critical();
    Some(endpoint)
}

/// Gloo's `buildLabels`: `BuildTagMetadata` over the upstreams' subset tags (else service
/// tags) and `BuildDataCenterMetadata` over their data centers, `"1"` / `"0"`.
fn labels(tags: &[String], dc: &str, group: &[&ConsulUpstreamSpec]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for spec in group {
        spec.tag_labels(|t| tags.iter().any(|x| x == t), &mut labels);
        spec.data_center_labels(|d| d == dc, &mut labels);
    }
    labels
}

/// Runs one blocking query over and over (`query` is asked with the index to block on) and
/// sends each changed answer as `event(answer)`; a failure is sent as [`Event::Failed`] and
/// ends the watch.
async fn watch<T, Q, F>(mut query: Q, event: impl Fn(T) -> Event, events: mpsc::Sender<Event>)
where
    Q: FnMut(u64) -> F,
    F: std::future::Future<Output = Result<Blocking<T>, ConsulError>>,
{
    let mut index = BlockingIndex::default();
    loop {
        match query(index.get()).await {
            Err(err) => {
                let _ = events.send(Event::Failed(err)).await;
                return;
            }
            Ok(answer) => {
                if !index.advance(answer.index) {
                    continue; // the wait ended without a change
                }
                if events.send(event(answer.value)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Watches one data center's catalog.
async fn watch_catalog(client: ConsulClient, datacenter: String, events: mpsc::Sender<Event>) {
    let query = |index| {
        let (client, datacenter) = (client.clone(), datacenter.clone());
        async move { client.catalog_services(Some(&datacenter), index).await }
    };
    let event = |services| Event::Catalog {
        datacenter: datacenter.clone(),
        services,
    };
    watch(query, event, events).await;
}

/// Watches one service's instances in one data center.
async fn watch_health(
    client: ConsulClient,
    key: (String, String),
    generation: u64,
    events: mpsc::Sender<Event>,
) {
    let query = |index| {
        let (client, (datacenter, service)) = (client.clone(), key.clone());
        async move {
            client
                .health_service(&service, Some(&datacenter), index)
                .await
        }
    };
    let event = |entries| Event::Health {
        key: key.clone(),
        generation,
        entries,
    };
    watch(query, event, events).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(tags: &[&str], subset: &[&str], dcs: &[&str]) -> ConsulUpstreamSpec {
        ConsulUpstreamSpec {
            service_name: Some("web".into()),
            service_tags: tags.iter().map(|t| t.to_string()).collect(),
            subset_tags: subset.iter().map(|t| t.to_string()).collect(),
            data_centers: dcs.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn labels_follow_glooss_tag_and_data_center_metadata() {
        let a = spec(&["v1", "v2"], &[], &["dc1", "dc2"]);
        let labels = labels(&["v2".into(), "other".into()], "dc2", &[&a]);
        let expected: BTreeMap<String, String> = [
            ("tag_v1", "0"),
            ("tag_v2", "1"),
            ("dc_dc1", "0"),
            ("dc_dc2", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(labels, expected);
        // subsetTags, when set, replace serviceTags as label keys.
        let b = spec(&["v1", "v2"], &["canary"], &[]);
        let labels = labels_of(&["canary"], &b);
        assert_eq!(labels.keys().collect::<Vec<_>>(), ["tag_canary"]);
    }

    fn labels_of(tags: &[&str], spec: &ConsulUpstreamSpec) -> BTreeMap<String, String> {
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        labels(&tags, "dc1", &[spec])
    }

    #[test]
    fn instance_tags_must_all_be_present_and_blacklisted_ones_absent() {
        let mut s = spec(&[], &[], &[]);
        s.instance_tags = vec!["a".into(), "b".into()];
        assert!(selects(&s, &["a".into(), "b".into(), "c".into()]));
        assert!(!selects(&s, &["a".into()]));
        s.instance_blacklist_tags = vec!["c".into()];
        assert!(!selects(&s, &["a".into(), "b".into(), "c".into()]));
    }
}
