//! Kubernetes Ingresses (`networking.k8s.io/v1`) as VirtualServices, after Gloo's ingress
//! controller (solo-io/gloo `projects/ingress/pkg/translator/translate.go`).
//!
//! As in Gloo:
//!
//! - with [`require_ingress_class`](IngressOptions::require_ingress_class) (off by default, as
//!   Gloo's `REQUIRE_INGRESS_CLASS`), only Ingresses of the class (default `gloo`) are read;
//! - routes are grouped by host over all Ingresses (no host is `*`), one virtual host per host,
//!   with domains `[<host>, <host>:8080]`, or `[<host>, <host>:8443]` and an `sslConfig` (the TLS
//!   secret, SNI domains those domains) for hosts listed under some Ingress's `tls`;
//! - a backend is a Service port: by number, or by name looked up in the Service; the route goes
//!   to the discovered upstream `<namespace>-<service>-<port>` in the write namespace;
//! - routes are ordered as Gloo's `SortRoutesByPath`: exact paths, then regex paths, then
//!   prefixes, each lexicographically greatest first (so longer prefixes come first).
//!
//! Where this differs from Gloo:
//!
//! - Gloo matches every path as a regex. Here `pathType: Exact` is an exact match and `Prefix`
//!   the element-wise prefix match Kubernetes defines (`/foo` matches `/foo` and `/foo/bar`, not
//!   `/foobar`; a trailing `/` is ignored); `ImplementationSpecific` keeps Gloo's regex (an empty
//!   path matches everything);
//! - the class is also read from `spec.ingressClassName` (Kubernetes' replacement of the
//!   deprecated annotation, which Gloo reads alone);
//! - Gloo ignores `spec.defaultBackend`; here it answers what no rule matches, as Kubernetes
//!   defines it: a last `/` route on every host, and on a `*` host;
//! - TLS hosts are collected from all Ingresses before routes are placed (Gloo's result depends
//!   on the order it reads Ingresses in);
//! - the produced resources are VirtualServices for the default gateways (HTTP on 8080, HTTPS on
//!   8443 of `gateway-proxy`), not a separate `ingress-proxy` Proxy.
//!
//! What an Ingress asks for that cannot be served is never dropped silently: each is an
//! [`IngressProblem`] naming the Ingress and the field (a resource backend, a missing Service or
//! port name, a rule without `http`, a TLS entry without a secret or hosts, a second default
//! backend, a second secret for one host, an invalid path), and the source reports it in its
//! snapshot's errors; [`StatusWriter`](super::StatusWriter) makes each a `Warning` Event on the
//! Ingress (Gloo only logs them). Annotations other than the class are ignored, as in Gloo.
//! Ingress `status.loadBalancer` is not written.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gloo_core::load::{LoadError, LoadedResource};
use gloo_core::model::virtual_service::VirtualServiceSpec;
use gloo_core::model::{Object, ObjectMeta, Resource, DEFAULT_NAMESPACE};
use gloo_core::translate::kube_upstream_name;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use kube::api::ApiResource;
use serde_json::{json, Value};

use super::source::{generated, object_path};

/// The annotation naming an Ingress's class.
pub const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// How Ingresses are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressOptions {
    require_ingress_class: bool,
    ingress_class: String,
    write_namespace: String,
}

impl Default for IngressOptions {
    /// Every Ingress (Gloo's default), class `gloo` when required, VirtualServices and upstream
    /// references in `gloo-system`.
    fn default() -> Self {
        IngressOptions {
            require_ingress_class: false,
            ingress_class: "gloo".into(),
            write_namespace: DEFAULT_NAMESPACE.into(),
        }
    }
}

impl IngressOptions {
    /// Only read Ingresses whose class (the `kubernetes.io/ingress.class` annotation or
    /// `spec.ingressClassName`) is [`ingress_class`](Self::ingress_class).
    pub fn require_ingress_class(mut self, required: bool) -> Self {
        self.require_ingress_class = required;
        self
    }

    /// The class required Ingresses must have (default `gloo`).
    pub fn ingress_class(mut self, class: impl Into<String>) -> Self {
        self.ingress_class = class.into();
        self
    }

    /// Where the VirtualServices go and where the discovered upstreams are (default
    /// `gloo-system`).
    pub fn write_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.write_namespace = namespace.into();
        self
    }

    fn is_ours(&self, ingress: &Ingress) -> bool {
        if !self.require_ingress_class {
            return true;
        }
        let annotation = ingress
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(INGRESS_CLASS_ANNOTATION));
        let class_name = ingress
            .spec
            .as_ref()
            .and_then(|s| s.ingress_class_name.as_ref());
        annotation == Some(&self.ingress_class) || class_name == Some(&self.ingress_class)
    }
}

/// Something an Ingress asks for that gloo does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressProblem {
    /// The Ingress's API path (`/apis/networking.k8s.io/v1/namespaces/<ns>/ingresses/<name>`).
    pub ingress: String,
    /// The field (`spec.rules[0].http.paths[1].backend`).
    pub field: String,
    /// What is wrong and what gloo does instead.
    pub message: String,
}

impl std::fmt::Display for IngressProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.ingress, self.field, self.message)
    }
}

/// VirtualServices translated from Ingresses, and what could not be translated.
#[derive(Debug, Clone, Default)]
pub struct IngressTranslation {
    /// The VirtualServices, each with the API paths of the Ingresses it came from.
    pub virtual_services: Vec<(Object<VirtualServiceSpec>, Vec<String>)>,
    /// What could not be served.
    pub problems: Vec<IngressProblem>,
}

impl IngressTranslation {
    /// The VirtualServices as loaded resources, their origin the Ingresses' API paths.
    pub(crate) fn loaded_resources(&self) -> Vec<LoadedResource> {
        self.virtual_services
            .iter()
            .map(|(vs, sources)| {
                generated(
                    Resource::VirtualService(Arc::new(vs.clone())),
                    &sources.join(","),
                )
            })
            .collect()
    }

    /// The problems as load errors (file: the Ingress's API path).
    pub(crate) fn load_errors(&self) -> Vec<LoadError> {
        self.problems
            .iter()
            .map(|p| LoadError {
                file: p.ingress.as_str().into(),
                line: 1,
                column: 1,
                message: format!("{}: {}", p.field, p.message),
            })
            .collect()
    }
}

/// Translates Ingresses (with the Services their backends name) into VirtualServices.
///
/// ```
/// use gloo_discovery::kubernetes::{translate_ingresses, IngressOptions};
/// use k8s_openapi::api::networking::v1::Ingress;
///
/// let ingress: Ingress = serde_json::from_value(serde_json::json!({
///     "metadata": {"name": "web", "namespace": "default"},
///     "spec": {"rules": [{"host": "example.com", "http": {"paths": [
///         {"path": "/api", "pathType": "Prefix",
///          "backend": {"service": {"name": "api", "port": {"number": 80}}}}
///     ]}}]}
/// })).unwrap();
/// let out = translate_ingresses(&[ingress], &[], &IngressOptions::default());
/// assert!(out.problems.is_empty());
/// let (vs, _) = &out.virtual_services[0];
/// assert_eq!(vs.spec.virtual_host.as_ref().unwrap().domains, ["example.com", "example.com:8080"]);
/// ```
pub fn translate_ingresses(
    ingresses: &[Ingress],
    services: &[Service],
    options: &IngressOptions,
) -> IngressTranslation {
    let ingresses: Vec<&Ingress> = ingresses.iter().collect();
    let services: Vec<&Service> = services.iter().collect();
    translate(&ingresses, &services, options)
}

/// Route order of one route (Gloo's `SortRoutesByPath`): exact, regex, prefix; then the
/// lexicographically greater path first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PathKind {
    Exact,
    Regex,
    Prefix,
}

struct RouteEntry {
    kind: PathKind,
    path: String,
    route: Value,
}

fn namespace_of(ingress: &Ingress) -> String {
    ingress
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into())
}

fn path_of(ingress: &Ingress) -> String {
    let name = ingress.metadata.name.as_deref().unwrap_or_default();
    object_path(
        &ApiResource::erase::<Ingress>(&()),
        &namespace_of(ingress),
        name,
    )
}

pub(crate) fn translate(
    ingresses: &[&Ingress],
    services: &[&Service],
    options: &IngressOptions,
) -> IngressTranslation {
    let mut ours: Vec<&Ingress> = ingresses
        .iter()
        .copied()
        .filter(|i| options.is_ours(i))
        .collect();
    ours.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let mut problems = Vec::new();
    let mut problem = |ingress: &Ingress, field: String, message: String| {
        problems.push(IngressProblem {
            ingress: path_of(ingress),
            field,
            message,
        });
    };

    // TLS first, from every Ingress: which hosts are served over HTTPS, with which secret.
    let mut secrets: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for ingress in &ours {
        let ns = namespace_of(ingress);
        for (t, tls) in ingress
            .spec
            .as_ref()
            .and_then(|s| s.tls.as_ref())
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(secret) = tls.secret_name.clone().filter(|s| !s.is_empty()) else {
                problem(
                    ingress,
                    format!("spec.tls[{t}].secretName"),
                    "required: gloo terminates TLS with the named secret; this TLS entry is ignored".into(),
                );
                continue;
            };
            let hosts = tls.hosts.clone().unwrap_or_default();
            if hosts.is_empty() {
                problem(
                    ingress,
                    format!("spec.tls[{t}].hosts"),
                    "empty: gloo serves TLS per SNI host; this TLS entry is ignored".into(),
                );
            }
            for (h, host) in hosts.into_iter().enumerate() {
                match secrets.get(&host) {
                    Some((sns, sname, by)) if (sns, sname) != (&ns, &secret) => problem(
                        ingress,
                        format!("spec.tls[{t}].hosts[{h}]"),
                        format!("host {host} already has TLS secret {sns}.{sname} (from {by}); this one is ignored"),
                    ),
                    Some(_) => {}
                    None => {
                        secrets.insert(host, (ns.clone(), secret.clone(), path_of(ingress)));
                    }
                }
            }
        }
    }

    let mut routes: BTreeMap<String, Vec<RouteEntry>> = BTreeMap::new();
    let mut sources: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut default_backend: Option<(Value, String)> = None;
    for ingress in &ours {
        let ns = namespace_of(ingress);
        let Some(spec) = ingress.spec.as_ref() else {
            continue;
        };
        if let Some(backend) = &spec.default_backend {
            if let Some((_, by)) = &default_backend {
                problem(
                    ingress,
                    "spec.defaultBackend".into(),
                    format!("a default backend is already declared by {by}; this one is ignored"),
                );
            } else {
                match destination(backend, &ns, services, options) {
                    Ok(dest) => default_backend = Some((dest, path_of(ingress))),
                    Err((field, message)) => {
                        problem(ingress, format!("spec.defaultBackend{field}"), message)
                    }
                }
            }
        }
        for (r, rule) in spec.rules.iter().flatten().enumerate() {
            let host = rule
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "*".into());
            let Some(http) = &rule.http else {
                problem(
                    ingress,
                    format!("spec.rules[{r}].http"),
                    "missing: gloo serves HTTP rules only; this rule is ignored".into(),
                );
                continue;
            };
            for (p, path) in http.paths.iter().enumerate() {
                let field = format!("spec.rules[{r}].http.paths[{p}]");
                let dest = match destination(&path.backend, &ns, services, options) {
                    Ok(dest) => dest,
                    Err((f, message)) => {
                        problem(ingress, format!("{field}.backend{f}"), message);
                        continue;
                    }
                };
                let raw = path.path.clone().unwrap_or_default();
                let (kind, matcher) = match matcher(&path.path_type, &raw) {
                    Ok(m) => m,
                    Err(message) => {
                        problem(ingress, format!("{field}.path"), message);
                        continue;
                    }
                };
                routes.entry(host.clone()).or_default().push(RouteEntry {
                    kind,
                    path: raw,
                    route: json!({"matchers": [matcher], "routeAction": {"single": dest}}),
                });
                sources
                    .entry(host.clone())
                    .or_default()
                    .insert(path_of(ingress));
            }
        }
    }
    if let Some((_, by)) = &default_backend {
        routes.entry("*".into()).or_default();
        sources.entry("*".into()).or_default().insert(by.clone());
    }

    let mut virtual_services = Vec::new();
    for (host, mut entries) in routes {
        // Stable: equal paths keep the order of the Ingresses that declared them.
        entries.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| b.path.cmp(&a.path)));
        let mut route_list: Vec<Value> = entries.into_iter().map(|e| e.route).collect();
        if let Some((dest, _)) = &default_backend {
            route_list
                .push(json!({"matchers": [{"prefix": "/"}], "routeAction": {"single": dest}}));
        }
        let tls = secrets.get(&host);
        let (suffix, port) = if tls.is_some() {
            ("https", 8443)
        } else {
            ("http", 8080)
        };
        let domains = vec![host.clone(), format!("{host}:{port}")];
        let mut spec = json!({"virtualHost": {"domains": domains, "routes": route_list}});
        if let Some((sns, sname, _)) = tls {
            spec["sslConfig"] =
                json!({"secretRef": {"name": sname, "namespace": sns}, "sniDomains": domains});
        }
        let name = format!("ingress-{}-{suffix}", host_name(&host));
        let origin: Vec<String> = sources
            .remove(&host)
            .unwrap_or_default()
            .into_iter()
            .collect();
        match serde_json::from_value::<VirtualServiceSpec>(spec) {
            Ok(spec) => {
                let mut metadata = ObjectMeta::new(options.write_namespace.clone(), name);
                metadata
                    .labels
                    .insert("gloo.solo.io/ingress".into(), "true".into());
                virtual_services.push((Object::new(metadata, spec), origin));
            }
            Err(err) => problems.push(IngressProblem {
                ingress: origin.join(","),
                field: format!("host {host}"),
                message: format!("translates to an invalid VirtualService: {err}"),
            }),
        }
    }
    IngressTranslation {
        virtual_services,
        problems,
    }
}

/// A host as a resource name: `*` is `wildcard`, other characters than `[a-z0-9-]` are `-`.
fn host_name(host: &str) -> String {
    host.replace('*', "wildcard")
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The matcher of one Ingress path.
fn matcher(path_type: &str, path: &str) -> Result<(PathKind, Value), String> {
    match path_type {
        "Exact" | "Prefix" if !path.starts_with('/') => Err(format!(
            "{path_type} path {path:?} must start with `/`; this path is not served"
        )),
        "Exact" => Ok((PathKind::Exact, json!({"exact": path}))),
        "Prefix" => {
            let trimmed = path.trim_end_matches('/');
            if trimmed.is_empty() {
                Ok((PathKind::Prefix, json!({"prefix": "/"})))
            } else {
                // Element-wise: the path itself, or the path followed by `/...`.
                Ok((
                    PathKind::Prefix,
                    json!({"regex": format!("{}(/.*)?", regex_syntax::escape(trimmed))}),
                ))
            }
        }
        // Gloo's semantics: the path is a regular expression; none matches everything.
        "ImplementationSpecific" | "" => {
            let regex = if path.is_empty() { ".*" } else { path };
            Ok((PathKind::Regex, json!({"regex": regex})))
        }
        other => Err(format!(
            "unknown pathType {other:?} (Exact, Prefix or ImplementationSpecific); this path is not served"
        )),
    }
}

/// The destination of a backend: the discovered upstream of its Service port. On error, the
/// field below `backend` and the message.
fn destination(
    backend: &IngressBackend,
    namespace: &str,
    services: &[&Service],
    options: &IngressOptions,
) -> Result<Value, (String, String)> {
    let Some(service) = &backend.service else {
        return Err(if backend.resource.is_some() {
            (
                ".resource".into(),
                "resource backends are not supported (gloo routes to Services only); this path is not served".into(),
            )
        } else {
            (
                String::new(),
                "no service specified for ingress backend".into(),
            )
        });
    };
    let port = service.port.as_ref();
    let number = match (
        port.and_then(|p| p.number),
        port.and_then(|p| p.name.as_deref()),
    ) {
        (Some(number), _) if number > 0 => number,
        (_, Some(name)) if !name.is_empty() => {
            let found = services.iter().find(|s| {
                s.metadata.name.as_deref() == Some(service.name.as_str())
                    && s.metadata.namespace.as_deref() == Some(namespace)
            });
            let Some(found) = found else {
                return Err((
                    ".service".into(),
                    format!("service {}.{namespace} not found", service.name),
                ));
            };
            let port = found
                .spec
                .as_ref()
                .and_then(|s| s.ports.as_ref())
                .and_then(|ports| ports.iter().find(|p| p.name.as_deref() == Some(name)));
            match port {
                Some(p) => p.port,
                None => {
                    return Err((
                        ".service.port.name".into(),
                        format!(
                            "port {name} not found for service {}.{namespace}",
                            service.name
                        ),
                    ))
                }
            }
        }
        _ => {
            return Err((
                ".service.port".into(),
                "a port number or name is required".into(),
            ))
        }
    };
    let number = u32::try_from(number).unwrap_or(0);
    Ok(json!({"upstream": {
        "name": kube_upstream_name(namespace, &service.name, number),
        "namespace": options.write_namespace,
    }}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_as_kubernetes_defines_them() {
        let m = |t: &str, p: &str| matcher(t, p).map(|(kind, m)| (kind, m.to_string()));
        assert_eq!(
            m("Prefix", "/"),
            Ok((PathKind::Prefix, r#"{"prefix":"/"}"#.into()))
        );
        // Element-wise: a trailing slash is ignored, regex characters are literal.
        assert_eq!(
            m("Prefix", "/a.b/"),
            Ok((PathKind::Prefix, r#"{"regex":"/a\\.b(/.*)?"}"#.into()))
        );
        assert_eq!(
            m("Exact", "/x"),
            Ok((PathKind::Exact, r#"{"exact":"/x"}"#.into()))
        );
        // Gloo's: a regex, everything when empty.
        assert_eq!(
            m("ImplementationSpecific", ""),
            Ok((PathKind::Regex, r#"{"regex":".*"}"#.into()))
        );
        assert!(m("Exact", "x").unwrap_err().contains("must start with `/`"));
        assert!(m("Fuzzy", "/").unwrap_err().contains("unknown pathType"));
    }

    #[test]
    fn hosts_name_virtual_services() {
        assert_eq!(host_name("*"), "wildcard");
        assert_eq!(host_name("*.Example.com"), "wildcard-example-com");
    }

    #[test]
    fn two_ingresses_share_a_host_and_a_second_default_backend_is_reported() {
        let ingress = |name: &str| -> Ingress {
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default"},
                "spec": {
                    "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}},
                    "rules": [{"host": "a.example.com", "http": {"paths": [
                        {"path": format!("/{name}"), "pathType": "Prefix",
                         "backend": {"service": {"name": name, "port": {"number": 8080}}}}
                    ]}}]
                }
            }))
            .unwrap()
        };
        let out = translate_ingresses(
            &[ingress("one"), ingress("two")],
            &[],
            &IngressOptions::default(),
        );
        let names: Vec<&str> = out
            .virtual_services
            .iter()
            .map(|(vs, _)| vs.metadata.name.as_str())
            .collect();
        // The default backend also answers hosts no rule names.
        assert_eq!(
            names,
            ["ingress-wildcard-http", "ingress-a-example-com-http"]
        );
        let (vs, sources) = &out.virtual_services[1];
        assert_eq!(sources.len(), 2);
        // Two paths, then the default backend.
        assert_eq!(vs.spec.virtual_host.as_ref().unwrap().routes.len(), 3);
        assert_eq!(out.problems.len(), 1);
        assert_eq!(out.problems[0].field, "spec.defaultBackend");
        assert!(out.problems[0].ingress.ends_with("/ingresses/two"));
    }
}
