//! Gloo's transformations end to end through `gloo run`: a config directory with
//! `stagedTransformations` / `transformations` on a virtual host and its routes, translated by
//! gloo-core into envoy-gloo's `io.solo.transformation` filter and served by gloo-proxy with
//! gloo-filters' transformation layer, in front of a `support::Backend` that records what it
//! receives. The templates are the examples of Gloo's transformation docs.
//!
//! Everything listens on 127.0.0.1 on free ports; gloo is killed when the test ends, and on
//! failure the config and its logs are printed.

#![cfg(feature = "transform")]

mod support;

use std::fs;
use std::path::PathBuf;

use support::{
    free_port, gloo_run, http_get, http_raw, poll, print_logs_if_panicking, wait_for_answer,
    write_atomically, Backend, Proc, Response,
};

/// `gloo run` with the VirtualService `vs_spec` (the YAML of `spec.virtualHost`, indented by
/// 4) routing to the `app` backend.
struct Fixture {
    port: u16,
    admin: u16,
    backend: Backend,
    config_dir: PathBuf,
    gloo: Proc,
    _root: tempfile::TempDir,
}

fn vs_yaml(virtual_host: &str) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: app, namespace: gloo-system}}\nspec:\n  virtualHost:\n{}",
        virtual_host
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    )
}

/// A route to the backend for `prefix` with route `options` (a YAML flow mapping, or empty).
fn route(prefix: &str, options: &str) -> String {
    let options = if options.is_empty() {
        String::new()
    } else {
        format!("  options: {options}\n")
    };
    format!("- matchers: [{{prefix: {prefix}}}]\n{options}  routeAction: {{single: {{upstream: {{name: app, namespace: gloo-system}}}}}}\n")
}

fn upstream_yaml(backend: &Backend) -> String {
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {}, namespace: gloo-system}}\nspec:\n  static:\n    hosts:\n    - {{addr: 127.0.0.1, port: {}}}\n",
        backend.name, backend.port
    )
}

impl Fixture {
    fn start(virtual_host: &str) -> Fixture {
        Fixture::start_with(virtual_host, &[])
    }

    /// With more backends, each an Upstream named after it.
    fn start_with(virtual_host: &str, more: &[&Backend]) -> Fixture {
        let backend = Backend::start("app");
        let root = tempfile::tempdir().expect("tempdir");
        let config_dir = root.path().join("config");
        fs::create_dir_all(&config_dir).expect("config dir");
        let port = free_port();
        let admin = free_port();
        let gateway = format!(
            "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n  httpGateway: {{}}\n"
        );
        let upstream = std::iter::once(&backend)
            .chain(more.iter().copied())
            .map(upstream_yaml)
            .collect::<Vec<_>>()
            .join("---\n");
        for (file, text) in [
            ("gateway.yaml", gateway),
            ("upstream.yaml", upstream),
            ("vs.yaml", vs_yaml(virtual_host)),
        ] {
            fs::write(config_dir.join(file), text).expect("write config");
        }
        let gloo = gloo_run(&config_dir, admin, root.path());
        let mut fixture = Fixture {
            port,
            admin,
            backend,
            config_dir,
            gloo,
            _root: root,
        };
        fixture.wait_for("the routes to be served", |r| r.status != 404);
        fixture
    }

    /// Polls `GET /` until `ready` holds of the response.
    fn wait_for(&mut self, what: &str, ready: impl Fn(&Response) -> bool) {
        let port = self.port;
        wait_for_answer(&mut self.gloo, what, || http_get(port, "/"), ready);
    }

    /// Sends a request with these extra header lines and body; the backend's view of it is
    /// `self.backend.seen().last()`.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n");
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        http_raw(self.port, raw.as_bytes(), false).expect("request")
    }

    fn last_seen(&self) -> support::Seen {
        self.backend
            .seen()
            .last()
            .cloned()
            .expect("the backend got a request")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        print_logs_if_panicking(&self.config_dir, &[&self.gloo]);
    }
}

/// The virtual host of most tests: a vhost-level rule for routes without their own, and a
/// route per feature.
fn features() -> String {
    format!(
        "domains: ['*']\noptions:\n  stagedTransformations:\n    regular:\n      requestTransforms:\n      - requestTransformation: {{transformationTemplate: {{parseBodyBehavior: DontParse, headers: {{x-vhost: {{text: 'yes'}}}}}}}}\nroutes:\n{}{}{}{}{}{}",
        // Request header templates (and removing a header).
        route(
            "/headers",
            r#"{stagedTransformations: {regular: {requestTransforms: [{requestTransformation: {transformationTemplate: {parseBodyBehavior: DontParse, headers: {x-greeting: {text: 'hello {{ header("x-name") }}'}}, headersToRemove: [x-secret]}}}]}}}"#,
        ),
        // A body template from the JSON body.
        route(
            "/body",
            r#"{stagedTransformations: {regular: {requestTransforms: [{requestTransformation: {transformationTemplate: {headers: {x-user: {text: '{{ upper(user.name) }}'}}, body: {text: '{"greeting": "hello {{ user.name }}", "items": {{ length(items) }}}'}}}}]}}}"#,
        ),
        // Gloo docs' extract-query-parameters example (the deprecated field).
        route(
            "/get",
            r#"{transformations: {requestTransformation: {transformationTemplate: {parseBodyBehavior: DontParse, extractors: {foo: {header: ':path', regex: '(.*foo=([^&]*).*)', subgroup: 2}, bar: {header: ':path', regex: '(.*bar=([^&]*).*)', subgroup: 2}}, headers: {foo: {text: '{{ foo }}'}, bar: {text: '{{ bar }}'}}}}}}"#,
        ),
        // A response transformation, matched on the response status.
        route(
            "/response",
            r#"{stagedTransformations: {regular: {responseTransforms: [{matchers: [{name: ':status', value: '200'}], responseTransformation: {transformationTemplate: {parseBodyBehavior: DontParse, headers: {x-upstream: {text: '{{ header("x-backend") }}'}}, body: {text: 'wrapped({{ body() }})'}}}}]}}}"#,
        ),
        // Early then regular: the regular stage sees what the early one did.
        route(
            "/stages",
            r#"{stagedTransformations: {early: {requestTransforms: [{requestTransformation: {transformationTemplate: {parseBodyBehavior: DontParse, headers: {x-stage: {text: early}}, headersToAppend: [{key: x-order, value: {text: early}}]}}}]}, regular: {requestTransforms: [{requestTransformation: {transformationTemplate: {parseBodyBehavior: DontParse, headers: {x-seen-by-regular: {text: '{{ header("x-stage") }}'}}, headersToAppend: [{key: x-order, value: {text: regular}}]}}}]}}}"#,
        ),
        route("/", ""),
    )
}

#[test]
fn request_header_templates_render_from_the_request() {
    let f = Fixture::start(&features());
    let r = f.request(
        "GET",
        "/headers",
        &[("x-name", "ada"), ("x-secret", "s")],
        "",
    );
    assert_eq!(r.status, 200, "{r:?}");
    let seen = f.last_seen();
    assert_eq!(seen.header("x-greeting"), Some("hello ada"), "{seen:?}");
    assert_eq!(seen.header("x-secret"), None, "{seen:?}");
    // The route's own config replaces the virtual host's.
    assert_eq!(seen.header("x-vhost"), None, "{seen:?}");
    // A route without its own gets the virtual host's.
    let r = f.request("GET", "/plain", &[], "");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(f.last_seen().header("x-vhost"), Some("yes"));
}

#[test]
fn a_body_template_renders_from_the_json_body() {
    let f = Fixture::start(&features());
    let r = f.request(
        "POST",
        "/body",
        &[("content-type", "application/json")],
        r#"{"user": {"name": "ada"}, "items": [1, 2, 3]}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let seen = f.last_seen();
    let body = String::from_utf8_lossy(&seen.body);
    assert_eq!(body, r#"{"greeting": "hello ada", "items": 3}"#);
    assert_eq!(
        seen.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(seen.header("x-user"), Some("ADA"));
    // A body that is not JSON is refused by the filter, as a local reply, without reaching
    // the backend.
    let before = f.backend.count();
    let r = f.request("POST", "/body", &[], "not json");
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.starts_with("bad request"), "{r:?}");
    assert_eq!(f.backend.count(), before);
}

#[test]
fn extractors_read_the_query_parameters_as_in_gloos_docs() {
    let f = Fixture::start(&features());
    let r = f.request("GET", "/get?foo=foo-value&bar=bar-value", &[], "");
    assert_eq!(r.status, 200, "{r:?}");
    let seen = f.last_seen();
    assert_eq!(seen.header("foo"), Some("foo-value"), "{seen:?}");
    assert_eq!(seen.header("bar"), Some("bar-value"), "{seen:?}");
    assert_eq!(seen.target, "/get?foo=foo-value&bar=bar-value");
}

#[test]
fn response_transformations_rewrite_what_the_backend_answered() {
    let f = Fixture::start(&features());
    let r = f.request("GET", "/response", &[], "");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, "wrapped(app)");
    assert_eq!(r.header("x-upstream"), Some("app"));
    // Only responses matching the rule are transformed.
    f.backend.set_behaviour(support::Behaviour::Status(503));
    let r = f.request("GET", "/response", &[], "");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.header("x-upstream"), None, "{r:?}");
}

#[test]
fn the_early_stage_runs_before_the_regular_stage() {
    let f = Fixture::start(&features());
    let r = f.request("GET", "/stages", &[], "");
    assert_eq!(r.status, 200, "{r:?}");
    let seen = f.last_seen();
    assert_eq!(seen.header("x-seen-by-regular"), Some("early"), "{seen:?}");
    let order: Vec<&str> = seen
        .headers
        .iter()
        .filter(|(k, _)| k == "x-order")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(order, ["early", "regular"], "{seen:?}");
}

#[test]
fn a_template_that_does_not_compile_keeps_the_last_good_config_serving() {
    let vhost = |template: &str| {
        format!(
            "domains: ['*']\nroutes:\n{}",
            route(
                "/",
                &format!("{{stagedTransformations: {{regular: {{requestTransforms: [{{requestTransformation: {{transformationTemplate: {{parseBodyBehavior: DontParse, headers: {{x-version: {{text: '{template}'}}}}}}}}}}]}}}}}}"),
            )
        )
    };
    let mut f = Fixture::start(&vhost("one"));
    f.request("GET", "/", &[], "");
    assert_eq!(f.last_seen().header("x-version"), Some("one"));
    // gloo-core cannot compile templates; gloo-proxy's layer can, and refuses this one.
    write_atomically(&f.config_dir.join("vs.yaml"), &vs_yaml(&vhost("{{ two")));
    let admin = f.admin;
    let errors = poll("gloo-proxy to refuse the new route configuration", || {
        let r = http_get(admin, "/statuses").map_err(|e| e.to_string())?;
        let statuses: serde_json::Value =
            serde_json::from_str(&r.body).map_err(|e| e.to_string())?;
        let errors = statuses["proxy_errors"].to_string();
        if errors.contains("x-version") {
            Ok(errors)
        } else {
            Err(errors)
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        errors.contains("io.solo.transformation")
            && errors.contains("transformations[0].request_match.request_transformation"),
        "{errors}"
    );
    // The last good configuration keeps serving: requests are still transformed with it.
    f.request("GET", "/", &[], "");
    assert_eq!(f.last_seen().header("x-version"), Some("one"));
    // A fixed template is taken up.
    write_atomically(&f.config_dir.join("vs.yaml"), &vs_yaml(&vhost("three")));
    let backend = f.backend.clone();
    f.wait_for("the fixed template to be served", |_| {
        backend
            .seen()
            .last()
            .and_then(|s| s.header("x-version").map(str::to_string))
            == Some("three".to_string())
    });
}

#[test]
fn a_weighted_destination_uses_its_own_transformation() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let header = |name: &str, value: &str| {
        format!("{{stagedTransformations: {{regular: {{requestTransforms: [{{requestTransformation: {{transformationTemplate: {{parseBodyBehavior: DontParse, headers: {{{name}: {{text: {value}}}}}}}}}}}]}}}}}}")
    };
    let vhost = format!(
        "domains: ['*']\nroutes:\n- matchers: [{{prefix: /split}}]\n  options: {}\n  routeAction:\n    multi:\n      destinations:\n      - weight: 1\n        destination: {{upstream: {{name: a, namespace: gloo-system}}}}\n        options: {}\n      - weight: 1\n        destination: {{upstream: {{name: b, namespace: gloo-system}}}}\n{}",
        header("x-route", "'yes'"),
        header("x-dest", "a"),
        route("/", ""),
    );
    let f = Fixture::start_with(&vhost, &[&a, &b]);
    for _ in 0..40 {
        let r = f.request("GET", "/split", &[], "");
        assert_eq!(r.status, 200, "{r:?}");
    }
    let (seen_a, seen_b) = (a.seen(), b.seen());
    assert_eq!(seen_a.len() + seen_b.len(), 40);
    assert!(
        !seen_a.is_empty() && !seen_b.is_empty(),
        "both destinations are used"
    );
    // A's own config replaces the route's for requests sent to it; B has none, so the
    // route's applies.
    for s in &seen_a {
        assert_eq!(
            (s.header("x-dest"), s.header("x-route")),
            (Some("a"), None),
            "{s:?}"
        );
    }
    for s in &seen_b {
        assert_eq!(
            (s.header("x-dest"), s.header("x-route")),
            (None, Some("yes")),
            "{s:?}"
        );
    }
}
