//! The synthetic configuration the benches share: `routes` routes over `upstreams` kube
//! Upstreams (`apps.svc-N`, whose endpoints come from discovery), spread over 100
//! VirtualServices, with prefix, exact, regex and header matchers mixed.

use gloo_core::load::{parse_str, Format};
use gloo_core::source::SourceSnapshot;

/// VirtualServices the routes are spread over.
pub const VIRTUAL_SERVICES: usize = 100;

/// The workload as YAML, after `prefix` (a Gateway, say).
pub fn yaml(prefix: &str, routes: usize, upstreams: usize) -> String {
    let mut yaml = prefix.to_string();
    for u in 0..upstreams {
        yaml.push_str(&format!(
            "---\napiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: svc-{u}, namespace: apps}}\nspec:\n  kube: {{serviceName: svc-{u}, serviceNamespace: apps, servicePort: 8080}}\n"
        ));
    }
    let per_service = routes / VIRTUAL_SERVICES;
    for s in 0..VIRTUAL_SERVICES {
        yaml.push_str(&format!(
            "---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: vs-{s}, namespace: apps}}\nspec:\n  virtualHost:\n    domains: [\"host-{s}.example.com\"]\n    routes:\n"
        ));
        for r in 0..per_service {
            let i = s * per_service + r;
            let matcher = match i % 4 {
                0 => format!("{{prefix: /api/{i}}}"),
                1 => format!("{{exact: /exact/{i}}}"),
                2 => format!("{{regex: \"/re/{i}/[0-9]+\"}}"),
                _ => format!("{{prefix: /h/{i}, headers: [{{name: x-tenant, value: t{i}}}]}}"),
            };
            yaml.push_str(&format!(
                "    - matchers: [{matcher}]\n      routeAction: {{single: {{upstream: {{name: svc-{}, namespace: apps}}}}}}\n      options: {{timeout: 5s}}\n",
                i % upstreams
            ));
        }
    }
    yaml
}

/// The workload parsed, as a source would publish it.
pub fn snapshot(prefix: &str, routes: usize, upstreams: usize) -> SourceSnapshot {
    let parsed = parse_str(&yaml(prefix, routes, upstreams), "bench.yaml", Format::Yaml);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors.first());
    SourceSnapshot {
        resources: parsed.resources,
        errors: Vec::new(),
        generation: 1,
    }
}
