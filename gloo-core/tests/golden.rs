//! Golden files: complete configs (tests/data/golden/<name>/*.yaml) translated to Envoy JSON
//! (and the ext auth server's configs, when there are any) and compared with
//! tests/golden/<name>.json. Regenerate with `GLOO_BLESS=1 cargo test -p
//! gloo-core --test golden`.

mod common;

use std::path::PathBuf;

use common::*;
use gloo_core::translate::Translator;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// Translates a golden config: `(pretty JSON of every proxy, every resource version)`.
fn render(name: &str) -> (String, Vec<String>) {
    let yaml = read_yaml_dir(&root().join("data/golden").join(name));
    let t = Translator::new().translate(&snapshot(&yaml));
    assert_no_rejections(&t);
    let mut json = serde_json::Map::new();
    let mut versions = Vec::new();
    for (proxy, resources) in &t.proxies {
        json.insert(proxy.clone(), resources.to_json().expect("to_json"));
        for (kind, map) in [
            (
                "listener",
                resources
                    .listeners
                    .iter()
                    .map(|(n, v)| (n, &v.version))
                    .collect::<Vec<_>>(),
            ),
            (
                "routes",
                resources
                    .routes
                    .iter()
                    .map(|(n, v)| (n, &v.version))
                    .collect(),
            ),
            (
                "cluster",
                resources
                    .clusters
                    .iter()
                    .map(|(n, v)| (n, &v.version))
                    .collect(),
            ),
            (
                "endpoints",
                resources
                    .endpoints
                    .iter()
                    .map(|(n, v)| (n, &v.version))
                    .collect(),
            ),
        ] {
            versions.extend(
                map.into_iter()
                    .map(|(n, v)| format!("{proxy} {kind} {n} {v}")),
            );
        }
    }
    // What the ext auth server loads, when there is any (its Secrets and Artifacts resolved).
    if !t.ext_auth_server.configs.is_empty() {
        json.insert(
            "extAuthServer".into(),
            serde_json::to_value(&t.ext_auth_server.configs).unwrap(),
        );
    }
    let mut text = serde_json::to_string_pretty(&serde_json::Value::Object(json)).unwrap();
    text.push('\n');
    (text, versions)
}

fn check(name: &str) {
    let (json, versions) = render(name);
    // Deterministic: a fresh translator gives the same bytes and versions.
    let (again, versions_again) = render(name);
    assert_eq!(
        json, again,
        "{name}: output differs between two translations"
    );
    assert_eq!(
        versions, versions_again,
        "{name}: versions differ between two translations"
    );

    let golden = root().join("golden").join(format!("{name}.json"));
    if std::env::var_os("GLOO_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&golden, &json).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with GLOO_BLESS=1 to create it)",
            golden.display()
        )
    });
    if expected != json {
        let first = expected
            .lines()
            .zip(json.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(json.lines().count()));
        panic!(
            "{name}: output differs from {} at line {} (run with GLOO_BLESS=1 to update)\nexpected: {:?}\nactual:   {:?}",
            golden.display(),
            first + 1,
            expected.lines().nth(first),
            json.lines().nth(first)
        );
    }
}

#[test]
fn simple_virtual_service_and_static_upstream() {
    check("simple");
}

#[test]
fn delegation_tree_with_options() {
    check("delegation");
}

#[test]
fn upstream_group_with_cluster_options() {
    check("upstreams");
}

#[test]
fn opa_modules_and_waf_rules_from_config_maps_and_artifacts() {
    check("artifacts");
}
