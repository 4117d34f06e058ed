//! The resources of one moment, indexed by kind and `namespace.name`, with duplicates reported.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::load::{LoadedResource, Origin};
use crate::model::{
    artifact::ArtifactSpec, extauth::AuthConfigSpec, gateway::GatewaySpec,
    options::RouteOptionSpec, options::VirtualHostOptionSpec, ratelimit::RateLimitConfigSpec,
    route_table::RouteTableSpec, secret::SecretSpec, settings::SettingsSpec,
    upstream::UpstreamSpec, upstream_group::UpstreamGroupSpec, virtual_service::VirtualServiceSpec,
    Kind, Object, Resource, ResourceRef,
};
use crate::scope::{settings_in_force, WatchScope};
use crate::source::SourceSnapshot;
use crate::status::{Reports, ResourceKey};

/// One resource of a known kind and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<S> {
    /// The resource, shared.
    pub object: Arc<Object<S>>,
    /// Its file and line.
    pub origin: Origin,
}

/// Resources of one kind by `namespace.name` (namespace always filled in).
pub type Collection<S> = BTreeMap<ResourceRef, Entry<S>>;

/// Every resource of one moment, by kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigSnapshot {
    /// Gateways.
    pub gateways: Collection<GatewaySpec>,
    /// VirtualServices.
    pub virtual_services: Collection<VirtualServiceSpec>,
    /// RouteTables.
    pub route_tables: Collection<RouteTableSpec>,
    /// VirtualHostOptions.
    pub virtual_host_options: Collection<VirtualHostOptionSpec>,
    /// RouteOptions.
    pub route_options: Collection<RouteOptionSpec>,
    /// Upstreams.
    pub upstreams: Collection<UpstreamSpec>,
    /// UpstreamGroups.
    pub upstream_groups: Collection<UpstreamGroupSpec>,
    /// Settings.
    pub settings: Collection<SettingsSpec>,
    /// AuthConfigs.
    pub auth_configs: Collection<AuthConfigSpec>,
    /// RateLimitConfigs.
    pub rate_limit_configs: Collection<RateLimitConfigSpec>,
    /// Kubernetes Secrets (TLS certificates and keys, credentials).
    pub secrets: Collection<SecretSpec>,
    /// Gloo's Artifacts: Kubernetes ConfigMaps and `gloo.solo.io/v1` Artifacts, which are one
    /// thing to Gloo (OPA modules, WAF rules), so one `namespace.name` names one of either.
    pub artifacts: Collection<ArtifactSpec>,
    /// The namespaces read, from the Settings in force: resources elsewhere are left out.
    pub scope: WatchScope,
}

fn insert<S>(
    collection: &mut Collection<S>,
    kind: Kind,
    object: Arc<Object<S>>,
    origin: Origin,
    reports: &mut Reports,
) {
    let reference = object.metadata.to_ref();
    let key = ResourceKey::new(kind, reference.clone());
    if object.metadata.name.is_empty() {
        reports.accept(key.clone(), Some(&origin));
        reports.error(&key, format!("metadata.name: required ({origin})"));
        return;
    }
    if let Some(first) = collection.get(&reference) {
        // The first definition stays in force (so the resource keeps its status and serves);
        // the later document is refused like a document that cannot be read.
        let message = format!(
            "duplicate {kind} {reference}: defined at {} and again at {origin}; the second definition is ignored",
            first.origin
        );
        reports.warn(&key, message.clone());
        reports.load_errors.push(format!("{origin}: {message}"));
        return;
    }
    reports.accept(key, Some(&origin));
    collection.insert(reference, Entry { object, origin });
}

/// A TLS certificate, key and CA read from a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSecret {
    /// PEM certificate chain (`tls.crt`).
    pub cert_chain: Option<Vec<u8>>,
    /// PEM private key (`tls.key`).
    pub private_key: Option<Vec<u8>>,
    /// PEM CA bundle (`ca.crt`).
    pub root_ca: Option<Vec<u8>>,
}

impl ConfigSnapshot {
    /// Whether an `sslConfig`'s certificate source has a root CA (an `sslFiles` `rootCa`, or
    /// a TLS Secret's `ca.crt` / `rootCa`).
    pub(crate) fn has_root_ca(
        &self,
        secrets: Result<
            Option<crate::model::ssl::SslSecretsRef<'_>>,
            crate::model::routing::OneofError,
        >,
        namespace: &str,
    ) -> bool {
        use crate::model::ssl::SslSecretsRef;
        match secrets {
            Ok(Some(SslSecretsRef::SslFiles(files))) => files.root_ca.is_some(),
            Ok(Some(SslSecretsRef::SecretRef(reference))) => self
                .tls_secret(reference, namespace)
                .is_ok_and(|tls| tls.root_ca.is_some()),
            _ => false,
        }
    }

    /// The TLS material of the Secret `reference` names (namespace defaulting to
    /// `namespace`), or an error that says what is missing.
    pub fn tls_secret(
        &self,
        reference: &ResourceRef,
        namespace: &str,
    ) -> Result<TlsSecret, String> {
        let reference = reference.resolved(namespace);
        let secret = self
            .secrets
            .get(&reference)
            .ok_or_else(|| format!("Secret {reference} not found"))?;
        let spec = &secret.object.spec;
        let tls = TlsSecret {
            cert_chain: spec.get("tls.crt")?,
            private_key: spec.get("tls.key")?,
            root_ca: spec.get("ca.crt")?,
        };
        if tls.cert_chain.is_some() != tls.private_key.is_some() {
            return Err(format!(
                "Secret {reference} must hold both tls.crt and tls.key, or neither"
            ));
        }
        if tls.cert_chain.is_none() && tls.root_ca.is_none() {
            return Err(format!(
                "Secret {reference} holds no TLS material (tls.crt and tls.key, or ca.crt)"
            ));
        }
        Ok(tls)
    }

    /// The headers a `headerSecretRef` adds: every key of the Secret `reference` names
    /// (namespace defaulting to `namespace`) with its value, or an error saying what is wrong.
    pub fn header_secret(
        &self,
        reference: &ResourceRef,
        namespace: &str,
    ) -> Result<Vec<(String, String)>, String> {
        let reference = reference.resolved(namespace);
        let secret = self
            .secrets
            .get(&reference)
            .ok_or_else(|| format!("Secret {reference} not found"))?;
        let spec = &secret.object.spec;
        let mut keys: Vec<&String> = spec.data.keys().chain(spec.string_data.keys()).collect();
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Err(format!("Secret {reference} holds no headers"));
        }
        keys.into_iter()
            .map(|key| {
                let value = spec.get(key)?.unwrap_or_default();
                let value = String::from_utf8(value)
                    .map_err(|_| format!("Secret {reference}: {key} is not text"))?;
                Ok((key.clone(), value))
            })
            .collect()
    }

    /// The Artifact (or ConfigMap) `reference` names, with its namespace filled in. A
    /// reference needs its namespace: Gloo looks one without it up in the namespace `""` and
    /// finds nothing. The errors name the reference.
    ///
    /// ```
    /// use gloo_core::model::ResourceRef;
    /// use gloo_core::snapshot::ConfigSnapshot;
    /// let snapshot = ConfigSnapshot::default();
    /// let err = snapshot.artifact(&ResourceRef::new("gloo-system", "rules")).unwrap_err();
    /// assert_eq!(err, "ConfigMap gloo-system.rules not found");
    /// ```
    pub fn artifact(
        &self,
        reference: &ResourceRef,
    ) -> Result<(ResourceRef, &ArtifactSpec), String> {
        let reference = reference.with_required_namespace("ConfigMap")?;
        match self.artifacts.get(&reference) {
            Some(entry) => Ok((reference, &entry.object.spec)),
            None => Err(format!("ConfigMap {reference} not found")),
        }
    }

    /// Indexes resources; a second resource with the kind, namespace and name of an earlier
    /// one is reported as a duplicate and ignored.
    ///
    /// Only what the Settings in force let this instance read is indexed (see
    /// [`crate::scope`]): resources in namespaces outside `watchNamespaces` are left out
    /// without a status, as Gloo never sees them, and a Gateway outside the namespaces
    /// Gateways are read from gets a warning and is not served.
    pub fn from_resources<'a>(
        resources: impl IntoIterator<Item = &'a LoadedResource>,
        reports: &mut Reports,
    ) -> Self {
        let resources: Vec<&LoadedResource> = resources.into_iter().collect();
        let in_force = settings_in_force(resources.iter().copied());
        let scope = in_force
            .map(|s| WatchScope::from_settings(&s.spec))
            .unwrap_or_default();
        let mut out = ConfigSnapshot {
            scope,
            ..ConfigSnapshot::default()
        };
        for loaded in resources {
            let origin = loaded.origin.clone();
            let kind = loaded.resource.kind();
            let namespace = loaded.resource.metadata().namespace();
            let is_in_force = match &loaded.resource {
                Resource::Settings(s) => in_force.is_some_and(|f| std::ptr::eq(f, &**s)),
                _ => false,
            };
            if !is_in_force && !out.scope.watches(namespace) {
                continue;
            }
            if kind == Kind::Gateway && !out.scope.reads_gateways_in(namespace) {
                let key = ResourceKey::new(kind, loaded.resource.metadata().to_ref());
                reports.accept(key.clone(), Some(&origin));
                reports.warn(&key, out.scope.gateway_not_read(namespace));
                continue;
            }
            match loaded.resource.clone() {
                // Cloning a resource clones an `Arc`: unchanged resources are shared, not copied.
                Resource::Gateway(o) => insert(&mut out.gateways, kind, o, origin, reports),
                Resource::VirtualService(o) => {
                    insert(&mut out.virtual_services, kind, o, origin, reports)
                }
                Resource::RouteTable(o) => insert(&mut out.route_tables, kind, o, origin, reports),
                Resource::VirtualHostOption(o) => {
                    insert(&mut out.virtual_host_options, kind, o, origin, reports)
                }
                Resource::RouteOption(o) => {
                    insert(&mut out.route_options, kind, o, origin, reports)
                }
                Resource::Upstream(o) => insert(&mut out.upstreams, kind, o, origin, reports),
                Resource::UpstreamGroup(o) => {
                    insert(&mut out.upstream_groups, kind, o, origin, reports)
                }
                Resource::Settings(o) => insert(&mut out.settings, kind, o, origin, reports),
                Resource::AuthConfig(o) => insert(&mut out.auth_configs, kind, o, origin, reports),
                Resource::Secret(o) => insert(&mut out.secrets, kind, o, origin, reports),
                Resource::ConfigMap(o) | Resource::Artifact(o) => {
                    insert(&mut out.artifacts, kind, o, origin, reports)
                }
                Resource::RateLimitConfig(o) => {
                    insert(&mut out.rate_limit_configs, kind, o, origin, reports)
                }
            }
        }
        out
    }

    /// Indexes a source's snapshot, carrying its load errors into `reports`.
    pub fn from_source(source: &SourceSnapshot, reports: &mut Reports) -> Self {
        reports
            .load_errors
            .extend(source.errors.iter().map(|e| e.to_string()));
        Self::from_resources(&source.resources, reports)
    }
}
