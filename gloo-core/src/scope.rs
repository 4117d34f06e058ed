//! What one gloo instance sees: the namespaces its Settings watch, and where it reads Gateways.
//!
//! Gloo Edge scopes an install with three Settings fields:
//!
//! - `watchNamespaces`: the namespaces whose resources it reads. Empty (or one empty string)
//!   means all. When not all, the write namespace is always added (Gloo's
//!   `ProcessWatchNamespaces`), so the resources it writes there (discovered Upstreams) stay
//!   visible.
//! - `discoveryNamespace`: the write namespace, default `gloo-system`.
//! - `gateway.readGatewaysFromAllNamespaces`: by default Gateways are read from the write
//!   namespace only; `true` reads them from every watched namespace.
//!
//! Several installs can then share one config tree (or one Kubernetes cluster), each seeing
//! only its own namespaces: a VirtualService of one tenant that names another tenant's
//! Upstream finds nothing, and its route answers 503 (see [`crate::resolve`]), never the
//! other tenant's backend.
//!
//! [`ConfigSnapshot::from_resources`](crate::snapshot::ConfigSnapshot::from_resources) applies
//! the scope of the Settings in force ([`settings_in_force`]), so every consumer of a config
//! snapshot (translation, the rate limit and ext auth services, `gloo validate`) sees the same
//! resources.
//!
//! Deviations from Gloo, both for a config directory, where nothing keeps a file from holding
//! a resource this instance does not read:
//! - Gloo reads its one Settings by reference (`$POD_NAMESPACE/default`); gloo takes the
//!   Settings in force as [`settings_in_force`] says, and also keeps the other Settings in
//!   watched namespaces (other Settings are not read).
//! - A Gateway in a watched namespace other than the write namespace is not silently ignored
//!   as Gloo does: it gets a warning saying why it is not served.
//! - A reference that finds nothing because its namespace is not watched says so in its
//!   warning; Gloo says only "not found".
//!
//! Known gap: Consul discovery names its upstreams in `gloo-system` whatever the write
//! namespace, so with `watchNamespaces` that leave out `gloo-system` they are not read.

use std::collections::BTreeSet;

use crate::load::LoadedResource;
use crate::model::settings::SettingsSpec;
use crate::model::{Object, Resource, DEFAULT_NAMESPACE};

/// The namespaces one gloo instance reads, from its Settings.
///
/// ```
/// use gloo_core::model::settings::SettingsSpec;
/// use gloo_core::scope::WatchScope;
/// let settings = SettingsSpec {
///     discovery_namespace: Some("team-a".into()),
///     watch_namespaces: vec!["platform".into()],
///     ..Default::default()
/// };
/// let scope = WatchScope::from_settings(&settings);
/// assert!(scope.watches("team-a")); // the write namespace is always watched
/// assert!(scope.watches("platform"));
/// assert!(!scope.watches("team-b"));
/// assert!(scope.reads_gateways_in("team-a"));
/// assert!(!scope.reads_gateways_in("platform"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchScope {
    /// `None`: every namespace.
    watched: Option<BTreeSet<String>>,
    write_namespace: String,
    gateways_from_all_namespaces: bool,
}

impl Default for WatchScope {
    /// Gloo's defaults: every namespace watched, Gateways read from `gloo-system`.
    fn default() -> Self {
        Self::from_settings(&SettingsSpec::default())
    }
}

impl WatchScope {
    /// The scope `settings` describe (see the module docs).
    pub fn from_settings(settings: &SettingsSpec) -> Self {
        let write_namespace = write_namespace(settings);
        let all = match settings.watch_namespaces.as_slice() {
            [] => true,
            [only] => only.is_empty(),
            _ => false,
        };
        let watched = (!all).then(|| {
            settings
                .watch_namespaces
                .iter()
                .cloned()
                .chain(std::iter::once(write_namespace.clone()))
                .collect()
        });
        WatchScope {
            watched,
            write_namespace,
            gateways_from_all_namespaces: settings
                .gateway
                .as_ref()
                .and_then(|g| g.read_gateways_from_all_namespaces)
                .unwrap_or(false),
        }
    }

    /// Whether resources in `namespace` are read.
    pub fn watches(&self, namespace: &str) -> bool {
        self.watched
            .as_ref()
            .is_none_or(|watched| watched.contains(namespace))
    }

    /// Whether every namespace is watched.
    pub fn watches_all(&self) -> bool {
        self.watched.is_none()
    }

    /// The namespaces watched, the write namespace included; empty when all are (what a
    /// Kubernetes source lists).
    pub fn namespaces(&self) -> Vec<String> {
        self.watched
            .as_ref()
            .map(|w| w.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether Gateways in `namespace` are read: the write namespace, or any watched namespace
    /// with `readGatewaysFromAllNamespaces`.
    pub fn reads_gateways_in(&self, namespace: &str) -> bool {
        if self.gateways_from_all_namespaces {
            self.watches(namespace)
        } else {
            namespace == self.write_namespace
        }
    }

    /// The write namespace (`discoveryNamespace`, default `gloo-system`).
    pub fn write_namespace(&self) -> &str {
        &self.write_namespace
    }

    /// Why a Gateway in `namespace` is not read, as its status says.
    pub(crate) fn gateway_not_read(&self, namespace: &str) -> String {
        format!(
            "not served: Gateways are read from the write namespace {} only (Settings discoveryNamespace); namespace {namespace} needs Settings gateway.readGatewaysFromAllNamespaces",
            self.write_namespace
        )
    }

    /// A note for a reference into `namespace` that found nothing, when the namespace is not
    /// watched (empty otherwise).
    pub(crate) fn unwatched_note(&self, namespace: &str) -> String {
        if self.watches(namespace) {
            String::new()
        } else {
            format!(" (namespace {namespace} is not among Settings watchNamespaces)")
        }
    }
}

/// `discoveryNamespace`, default `gloo-system`: where discovered resources are written, where
/// Gateways are read from, and the key statuses are reported under.
pub fn write_namespace(settings: &SettingsSpec) -> String {
    settings
        .discovery_namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
}

/// The Settings an instance runs with: `gloo-system/default` when there is one, else the first
/// (in the order given); `None` without any.
pub fn settings_in_force<'a>(
    resources: impl IntoIterator<Item = &'a LoadedResource>,
) -> Option<&'a Object<SettingsSpec>> {
    let mut first = None;
    for loaded in resources {
        if let Resource::Settings(s) = &loaded.resource {
            if s.metadata.name == "default" && s.metadata.namespace() == DEFAULT_NAMESPACE {
                return Some(s);
            }
            first = first.or(Some(&**s));
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::settings::GatewayOptions;

    fn settings(watch: &[&str], write: Option<&str>, all_gateways: Option<bool>) -> SettingsSpec {
        SettingsSpec {
            watch_namespaces: watch.iter().map(|s| s.to_string()).collect(),
            discovery_namespace: write.map(str::to_string),
            gateway: all_gateways.map(|all| GatewayOptions {
                read_gateways_from_all_namespaces: Some(all),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn empty_or_one_blank_namespace_watches_everything() {
        for watch in [&[][..], &[""][..]] {
            let scope = WatchScope::from_settings(&settings(watch, None, None));
            assert!(scope.watches_all(), "{watch:?}");
            assert!(scope.watches("anything"));
            assert!(scope.namespaces().is_empty());
        }
        let scope = WatchScope::from_settings(&settings(&["", "a"], None, None));
        assert!(!scope.watches_all());
        assert!(scope.watches("a") && scope.watches("") && !scope.watches("b"));
    }

    #[test]
    fn the_write_namespace_is_always_watched() {
        let scope = WatchScope::from_settings(&settings(&["team-a"], None, None));
        assert!(scope.watches("team-a"));
        assert!(scope.watches("gloo-system"));
        assert!(!scope.watches("team-b"));
        assert_eq!(scope.namespaces(), ["gloo-system", "team-a"]);
        let scope = WatchScope::from_settings(&settings(&["team-a"], Some("gloo-a"), None));
        assert_eq!(scope.write_namespace(), "gloo-a");
        assert!(scope.watches("gloo-a") && !scope.watches("gloo-system"));
    }

    #[test]
    fn gateways_come_from_the_write_namespace_unless_read_from_all() {
        let scope = WatchScope::from_settings(&settings(&["team-a", "x"], Some("team-a"), None));
        assert!(scope.reads_gateways_in("team-a"));
        assert!(!scope.reads_gateways_in("x"));
        let scope =
            WatchScope::from_settings(&settings(&["team-a", "x"], Some("team-a"), Some(true)));
        assert!(scope.reads_gateways_in("x"));
        assert!(!scope.reads_gateways_in("team-b"), "unwatched stays unread");
        let scope = WatchScope::default();
        assert!(scope.reads_gateways_in("gloo-system") && !scope.reads_gateways_in("default"));
    }
}
