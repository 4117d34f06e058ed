//! Gloo Edge's resource model: every kind gloo reads, with exactly Gloo's YAML/JSON schema.
//!
//! Field names are the camelCase JSON names of Gloo's protos; unknown fields are errors (the
//! loader reports them with file, line and column). Each kind is an [`Object`] of its spec type;
//! [`Resource`] is the closed set of kinds gloo understands.
//!
//! Oneofs are modelled as sibling `Option` fields, the way they appear in YAML, with accessor
//! methods that return an enum and an error if more than one is set.

mod duration;

pub mod access_log;
pub mod artifact;
pub mod cluster;
pub mod cors;
pub mod dynamic_forward_proxy;
pub mod extauth;
pub mod faults;
pub mod gateway;
pub mod headers;
pub mod http_filters;
pub mod jwt;
pub mod lbhash;
pub mod listener_options;
pub mod options;
pub mod ratelimit;
pub mod retries;
pub mod route_table;
pub mod routing;
pub mod secret;
pub mod settings;
pub mod shadowing;
pub mod ssl;
pub mod tracing;
pub mod transformation;
pub mod upstream;
pub mod upstream_group;
pub mod virtual_service;
pub mod waf;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use duration::Duration;

/// The namespace a resource is in when its metadata names none, as in a default Gloo install.
pub const DEFAULT_NAMESPACE: &str = "gloo-system";

/// Kubernetes-style object metadata. Gloo reads `name`, `namespace`, `labels` and
/// `annotations`; the fields a Kubernetes API server adds (`uid`, `resourceVersion`, ...) are
/// accepted so `kubectl get -o yaml` output loads unchanged.
///
/// ```
/// use gloo_core::model::ObjectMeta;
/// let meta: ObjectMeta = serde_yaml_ng::from_str("name: default").unwrap();
/// assert_eq!(meta.namespace(), "gloo-system");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// The resource's name, unique per kind and namespace.
    #[serde(default)]
    pub name: String,
    /// The namespace; empty means [`DEFAULT_NAMESPACE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels, matched by selectors (route table delegation, upstream selection).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Set by a Kubernetes API server; carried, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Set by a Kubernetes API server; carried, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Set by a Kubernetes API server; carried, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Set by a Kubernetes API server; carried, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// Set by a Kubernetes API server; carried, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
    /// Set by a Kubernetes API server; carried, not interpreted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    /// Set by a Kubernetes API server; carried, not interpreted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<serde_json::Value>,
    /// Set by a Kubernetes API server; carried, not interpreted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields: Vec<serde_json::Value>,
}

impl ObjectMeta {
    /// Metadata with a name in the given namespace.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectMeta {
            name: name.into(),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        }
    }

    /// The namespace, defaulting to [`DEFAULT_NAMESPACE`].
    pub fn namespace(&self) -> &str {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => DEFAULT_NAMESPACE,
        }
    }

    /// A reference to this object.
    pub fn to_ref(&self) -> ResourceRef {
        ResourceRef {
            name: self.name.clone(),
            namespace: Some(self.namespace().to_string()),
        }
    }
}

/// A reference to another resource by name and namespace (`core.solo.io.ResourceRef`).
///
/// ```
/// use gloo_core::model::ResourceRef;
/// let r = ResourceRef::new("default", "petstore");
/// assert_eq!(r.to_string(), "default.petstore");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRef {
    /// The referenced resource's name.
    #[serde(default)]
    pub name: String,
    /// Its namespace; when empty, the namespace of the resource that holds the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl ResourceRef {
    /// A reference to `namespace`/`name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ResourceRef {
            name: name.into(),
            namespace: Some(namespace.into()),
        }
    }

    /// The namespace, or `default_namespace` when the reference names none.
    pub fn namespace_or<'a>(&'a self, default_namespace: &'a str) -> &'a str {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => default_namespace,
        }
    }

    /// This reference, which must name its namespace: Gloo looks a reference without one up in
    /// the namespace `""` and finds nothing. The error names the `kind` it refers to.
    ///
    /// ```
    /// use gloo_core::model::ResourceRef;
    /// let bare = ResourceRef { name: "rules".into(), namespace: None };
    /// assert_eq!(
    ///     bare.with_required_namespace("ConfigMap").unwrap_err(),
    ///     "ConfigMap \"rules\" needs its namespace (Gloo looks a reference without one up in the namespace \"\")"
    /// );
    /// ```
    pub fn with_required_namespace(&self, kind: &str) -> Result<ResourceRef, String> {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => Ok(ResourceRef::new(ns, self.name.clone())),
            _ => Err(format!(
                "{kind} {:?} needs its namespace (Gloo looks a reference without one up in the namespace \"\")",
                self.name
            )),
        }
    }

    /// This reference with its namespace filled in from `default_namespace` when missing.
    pub fn resolved(&self, default_namespace: &str) -> ResourceRef {
        ResourceRef::new(self.namespace_or(default_namespace), self.name.clone())
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace_or(DEFAULT_NAMESPACE), self.name)
    }
}

/// A resource of one kind: its metadata and its spec (`apiVersion` and `kind` are implied by
/// the spec type, see [`Resource`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object<S> {
    /// Name, namespace, labels.
    pub metadata: ObjectMeta,
    /// The kind-specific configuration.
    pub spec: S,
}

impl<S> Object<S> {
    /// An object with the given metadata and spec.
    pub fn new(metadata: ObjectMeta, spec: S) -> Self {
        Object { metadata, spec }
    }

    /// A reference to this object.
    pub fn to_ref(&self) -> ResourceRef {
        self.metadata.to_ref()
    }
}

/// Kubernetes `labelSelector`-style `matchLabels` / `expressions` support lives with the types
/// that use it; this is the plain "all of these labels" form shared by several of them.
pub type Labels = BTreeMap<String, String>;

/// The names of the fields whose flag says they are set (`(name, set)` pairs), for the lists
/// of options gloo does not enforce or apply yet.
pub(crate) fn set_fields<const N: usize>(fields: [(&'static str, bool); N]) -> Vec<&'static str> {
    fields
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
}

/// Deserializes a list without spare capacity. Most routes have one matcher, and a vector
/// grown one element at a time keeps room for four: at 10,000 routes that is 4.5 MB of
/// nothing, for as long as the config is loaded.
pub(crate) fn shrunk_vec<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    let mut list = Vec::<T>::deserialize(deserializer)?;
    list.shrink_to_fit();
    Ok(list)
}

macro_rules! resource_kinds {
    ($( $variant:ident => $api:literal, $spec:ty, $document:ty; )*) => {
        /// The kinds gloo understands, each with the `apiVersion` Gloo gives it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Kind {
            $(
                #[doc = concat!("`", $api, "` `", stringify!($variant), "`.")]
                $variant,
            )*
        }

        impl Kind {
            /// Every kind, in a fixed order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// The `kind` field's value.
            pub fn name(self) -> &'static str {
                match self { $(Kind::$variant => stringify!($variant),)* }
            }

            /// The `apiVersion` this kind is written with.
            pub fn api_version(self) -> &'static str {
                match self { $(Kind::$variant => $api,)* }
            }

            /// The kind with this `kind` name, if gloo knows it.
            pub fn from_name(name: &str) -> Option<Kind> {
                match name { $(stringify!($variant) => Some(Kind::$variant),)* _ => None }
            }
        }

        /// One resource of any kind gloo understands.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum Resource {
            $(
                #[doc = concat!("A `", stringify!($variant), "` (shared: cloning a resource is cheap).")]
                $variant(std::sync::Arc<Object<$spec>>),
            )*
        }

        impl Resource {
            /// This resource's kind.
            pub fn kind(&self) -> Kind {
                match self { $(Resource::$variant(_) => Kind::$variant,)* }
            }

            /// This resource's metadata.
            pub fn metadata(&self) -> &ObjectMeta {
                match self { $(Resource::$variant(o) => &o.metadata,)* }
            }

            /// Mutable access to this resource's metadata.
            pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
                match self { $(Resource::$variant(o) => &mut std::sync::Arc::make_mut(o).metadata,)* }
            }

            /// The spec as JSON (the form statuses and hashes use).
            pub fn spec_json(&self) -> serde_json::Result<serde_json::Value> {
                match self { $(Resource::$variant(o) => serde_json::to_value(&o.spec),)* }
            }

            /// Deserializes a spec of `kind` from a serde deserializer (the loader calls this
            /// with a location-tracking YAML or JSON deserializer).
            pub(crate) fn deserialize_envelope<'de, D: serde::Deserializer<'de>>(
                kind: Kind,
                deserializer: D,
            ) -> Result<Resource, D::Error> {
                match kind {
                    $(Kind::$variant => {
                        let (metadata, spec) = <$document>::deserialize(deserializer)?.into_parts();
                        Ok(Resource::$variant(std::sync::Arc::new(Object::new(metadata, spec))))
                    })*
                }
            }
        }
    };
}

resource_kinds! {
    Gateway => "gateway.solo.io/v1", gateway::GatewaySpec, Envelope<gateway::GatewaySpec>;
    VirtualService => "gateway.solo.io/v1", virtual_service::VirtualServiceSpec, Envelope<virtual_service::VirtualServiceSpec>;
    RouteTable => "gateway.solo.io/v1", route_table::RouteTableSpec, Envelope<route_table::RouteTableSpec>;
    VirtualHostOption => "gateway.solo.io/v1", options::VirtualHostOptionSpec, Envelope<options::VirtualHostOptionSpec>;
    RouteOption => "gateway.solo.io/v1", options::RouteOptionSpec, Envelope<options::RouteOptionSpec>;
    Upstream => "gloo.solo.io/v1", upstream::UpstreamSpec, Envelope<upstream::UpstreamSpec>;
    UpstreamGroup => "gloo.solo.io/v1", upstream_group::UpstreamGroupSpec, Envelope<upstream_group::UpstreamGroupSpec>;
    Settings => "gloo.solo.io/v1", settings::SettingsSpec, Envelope<settings::SettingsSpec>;
    AuthConfig => "enterprise.gloo.solo.io/v1", extauth::AuthConfigSpec, Envelope<extauth::AuthConfigSpec>;
    RateLimitConfig => "ratelimit.solo.io/v1alpha1", ratelimit::RateLimitConfigSpec, Envelope<ratelimit::RateLimitConfigSpec>;
    Secret => "v1", secret::SecretSpec, secret::SecretDocument;
    ConfigMap => "v1", artifact::ArtifactSpec, artifact::ConfigMapDocument;
    Artifact => "gloo.solo.io/v1", artifact::ArtifactSpec, artifact::ArtifactDocument;
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Resource {
    /// `Kind namespace.name`, the way statuses and errors name a resource.
    pub fn display_name(&self) -> String {
        let m = self.metadata();
        format!("{} {}.{}", self.kind(), m.namespace(), m.name)
    }
}

/// A document's metadata and spec, whatever its shape.
trait Document<S> {
    fn into_parts(self) -> (ObjectMeta, S);
}

impl<S> Document<S> for Envelope<S> {
    fn into_parts(self) -> (ObjectMeta, S) {
        (self.metadata, self.spec)
    }
}

/// The document shape of every Gloo kind: `apiVersion`, `kind`, `metadata`, `spec`, and a `status`
/// that is accepted (it appears in `kubectl get -o yaml` output) and ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[serde(bound(deserialize = "S: Deserialize<'de> + Default"))]
struct Envelope<S> {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: S,
    #[allow(dead_code)]
    #[serde(default)]
    status: Option<serde::de::IgnoredAny>,
}
