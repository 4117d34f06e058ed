//! Pattern 1, simple ingress (`examples/simple-ingress`): Kubernetes Ingresses served by
//! `gloo run --ingress`. The Ingresses, Services, Pods and EndpointSlices of the example's
//! `kubernetes/` directory are served by a FAKE Kubernetes API server (gloo-discovery's test
//! fake, path-included: there is no kube-apiserver on these machines), the Services' Pods are
//! real HTTP servers on 127.0.0.1, and `gloo run` (the real process) reads the cluster through
//! a kubeconfig. Checked with real requests: host and path rules of each path type, the default
//! backend, TLS from an Ingress's secret chosen by SNI (curl verifies the certificate), ingress
//! class filtering, an Ingress change applied live, and what the Ingress API asks for that gloo
//! cannot serve reported as a Warning Event on the Ingress (and in `/statuses`) while the rest
//! of it serves.
#![cfg(feature = "kubernetes")]

#[path = "../../gloo-proxy/tests/support/mod.rs"]
mod e2e;
#[path = "../../gloo-discovery/tests/support/fake_apiserver.rs"]
mod fake_apiserver;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use e2e::{
    admin_get, certificates, free_port, gloo_ready_with_env, http_raw, kubeconfig, poll, Backend,
    Proc,
};
use fake_apiserver::FakeApiServer;
use serde_json::{json, Value};

/// The example's Kubernetes objects, in the order `kubectl apply -f kubernetes/` would send
/// them, read from the copy of the example made for this test.
const KUBERNETES_FILES: [&str; 4] = [
    "services.yaml",
    "ingress-shop.yaml",
    "ingress-other-class.yaml",
    "ingress-partly-unsupported.yaml",
];

/// Every YAML document of `path`, as JSON.
fn documents(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.split("\n---\n")
        .map(|doc| {
            serde_yaml_ng::from_str::<Value>(doc)
                .unwrap_or_else(|e| panic!("{}: {e}\n{doc}", path.display()))
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

/// Who answers `GET path` for `host` on 127.0.0.1:`port`: the backend's name (its
/// `x-backend`), or what went wrong.
fn answered_by(port: u16, host: &str, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    match http_raw(port, request.as_bytes(), false) {
        Ok(r) if r.status == 200 => r.header("x-backend").unwrap_or("-").to_string(),
        Ok(r) => format!("status {}", r.status),
        Err(e) => format!("error {e}"),
    }
}

/// Waits until `GET path` for `host` is answered by `want`; panics with what answered instead.
fn wait_routed(gloo: &mut Proc, port: u16, host: &str, path: &str, want: &str) {
    if let Err(e) = poll(&format!("{host}{path} routed to {want}"), || {
        gloo.check_running()?;
        match answered_by(port, host, path) {
            got if got == want => Ok(()),
            got => Err(format!("answered by {got}")),
        }
    }) {
        panic!("{e}\n{}", gloo.logs());
    }
}

/// `GET https://<host>:<port>/` with curl, trusting only the test CA (so the certificate must
/// be the one the Ingress's secret holds for `host`, picked by SNI); the answering backend.
fn https_answered_by(port: u16, host: &str, ca: &Path) -> Result<String, String> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "--cacert",
        ])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
        // The Host header without the port, as a client behind port 443 sends it.
        .args(["-H", &format!("Host: {host}")])
        .arg(format!("https://{host}:{port}/"))
        .output()
        .map_err(|e| format!("run curl: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    head.lines()
        .find_map(|l| l.strip_prefix("x-backend:"))
        .map(|b| b.trim().to_string())
        .ok_or_else(|| format!("no x-backend in {head}"))
}

/// The Events about Ingress `name` in the fake, as (type, reason, message).
fn ingress_events(fake: &FakeApiServer, name: &str) -> Vec<(String, String, String)> {
    fake.list("v1", "Event")
        .into_iter()
        .filter(|e| e["involvedObject"]["kind"] == "Ingress" && e["involvedObject"]["name"] == name)
        .map(|e| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (s(&e["type"]), s(&e["reason"]), s(&e["message"]))
        })
        .collect()
}

struct Setup {
    fake: Arc<FakeApiServer>,
    gloo: Proc,
    http: u16,
    https: u16,
    admin: u16,
    ca: PathBuf,
    dir: tempfile::TempDir,
}

async fn start() -> Setup {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (http, https, admin) = (free_port(), free_port(), free_port());
    // The Services' Pods: web on 18091, api on 18092, static on 18093, admin on 18094 in the
    // shipped YAML; here on free ports.
    let mut replacements = vec![
        ("bindPort: 8080".to_string(), format!("bindPort: {http}")),
        ("bindPort: 8443".to_string(), format!("bindPort: {https}")),
    ];
    for (i, name) in ["web", "api", "static", "admin"].into_iter().enumerate() {
        let backend = Backend::start(name);
        replacements.push((
            format!("port: {}", 18091 + i),
            format!("port: {}", backend.port),
        ));
    }
    let example = dir.path().join("example");
    support::copy_example("simple-ingress", &example, &replacements);
    for file in KUBERNETES_FILES {
        for object in documents(&example.join("kubernetes").join(file)) {
            fake.apply(object);
        }
    }
    // The secret of the Ingress's `tls`, as `kubectl create secret tls shop-tls` makes it.
    certificates(dir.path(), &["secure.example"]);
    let b64 = |file: &str| {
        let pem = std::fs::read(dir.path().join(file)).expect("read the certificate");
        base64::engine::general_purpose::STANDARD.encode(pem)
    };
    fake.apply(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "shop-tls", "namespace": "default"},
        "data": {"tls.crt": b64("secure.example.crt"), "tls.key": b64("secure.example.key")}
    }));

    let kubeconfig = kubeconfig(dir.path(), &fake.url());
    let config = example.join("gloo").display().to_string();
    let log_dir = dir.path().to_path_buf();
    let gloo = tokio::task::spawn_blocking(move || {
        gloo_ready_with_env(
            "gloo-run",
            &[
                "run",
                "--config",
                &config,
                "--kubeconfig",
                &kubeconfig,
                "--ingress",
            ],
            // As Gloo's ingress controller reads it: only Ingresses of class `gloo`.
            &[("REQUIRE_INGRESS_CLASS", "true")],
            admin,
            &log_dir,
        )
    })
    .await
    .expect("start gloo run");
    Setup {
        fake,
        gloo,
        http,
        https,
        admin,
        ca: dir.path().join("ca.crt"),
        dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingresses_route_by_host_and_path_with_tls_class_filtering_live_changes_and_rejections() {
    let Setup {
        fake,
        mut gloo,
        http,
        https,
        admin,
        ca,
        dir: _dir,
    } = start().await;

    let fake_for_checks = fake.clone();
    let mut gloo = tokio::task::spawn_blocking(move || {
        let fake = fake_for_checks;
        for (host, path, want) in [
            // Prefix is element-wise (and names the Service port by name); Exact is exact;
            // ImplementationSpecific is Gloo's regular expression, matching the whole path.
            ("shop.example", "/api", "api"),
            ("shop.example", "/api/items/7", "api"),
            ("shop.example", "/status", "admin"),
            ("shop.example", "/static/site.css", "static"),
            // Not matched by those rules: the default backend answers.
            ("shop.example", "/apix", "web"),
            ("shop.example", "/status/detail", "web"),
            ("shop.example", "/static/site.js", "web"),
            ("unknown.example", "/", "web"),
            // Another Ingress's rules join the same host.
            ("shop.example", "/orders/1", "api"),
            // An Ingress of class nginx is not served: its host falls to the default backend.
            ("other.example", "/", "web"),
            // What the `orders` Ingress asks for that cannot be served is not routed at all.
            ("shop.example", "/assets/logo.png", "web"),
            ("shop.example", "/grpc/orders.Orders/Get", "web"),
        ] {
            wait_routed(&mut gloo, http, host, path, want);
        }

        // TLS: secure.example on the SSL gateway, with the secret's certificate (curl checks
        // it against the test CA and the name), routed by that host's rule.
        if let Err(e) = poll("secure.example over TLS", || {
            gloo.check_running()?;
            match https_answered_by(https, "secure.example", &ca)? {
                b if b == "api" => Ok(()),
                b => Err(format!("answered by {b}")),
            }
        }) {
            panic!("{e}\n{}", gloo.logs());
        }
        // A host without TLS is not served over TLS: no certificate names it.
        assert!(
            https_answered_by(https, "shop.example", &ca).is_err(),
            "shop.example has no tls entry, yet was served over TLS"
        );

        // Each unserved part of `orders` is a Warning Event on it (reason Rejected), naming
        // the field and why.
        let events = poll("the Events on Ingress orders", || {
            let events = ingress_events(&fake, "orders");
            if events.len() >= 2 {
                Ok(events)
            } else {
                Err(format!("{events:?}"))
            }
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", gloo.logs()));
        assert_eq!(events.len(), 2, "{events:?}");
        for (kind, reason, _) in &events {
            assert_eq!((kind.as_str(), reason.as_str()), ("Warning", "Rejected"));
        }
        let messages: Vec<&str> = events.iter().map(|(_, _, m)| m.as_str()).collect();
        assert!(
            messages.iter().any(|m| m.starts_with(
                "spec.rules[0].http.paths[1].backend.resource: resource backends are not supported"
            )),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.starts_with(
                "spec.rules[0].http.paths[2].backend.service.port.name: port grpc not found for service api.default"
            )),
            "{messages:?}"
        );
        // The Ingresses served in full, and the one of another class, get none.
        assert_eq!(ingress_events(&fake, "shop"), []);
        assert_eq!(ingress_events(&fake, "nginx-only"), []);
        // gloo's own status report names them too.
        let statuses = admin_get(admin, "/statuses");
        for field in ["paths[1].backend.resource", "paths[2].backend.service.port.name"] {
            assert!(
                statuses.contains(&format!(
                    "/apis/networking.k8s.io/v1/namespaces/default/ingresses/orders:1:1: spec.rules[0].http.{field}"
                )),
                "{statuses}"
            );
        }
        gloo
    })
    .await
    .expect("served");

    // Live changes: a new rule on the shop's Ingress, and `orders` fixed to a port the Service
    // has.
    let mut shop = fake
        .get("networking.k8s.io/v1", "Ingress", "default", "shop")
        .expect("the shop Ingress");
    let paths = shop["spec"]["rules"][0]["http"]["paths"]
        .as_array_mut()
        .expect("the shop's paths");
    paths.push(json!({"path": "/new", "pathType": "Exact",
        "backend": {"service": {"name": "static", "port": {"number": 80}}}}));
    fake.apply(shop);
    let mut orders = fake
        .get("networking.k8s.io/v1", "Ingress", "default", "orders")
        .expect("the orders Ingress");
    orders["spec"]["rules"][0]["http"]["paths"][2]["backend"]["service"]["port"] =
        json!({"name": "http"});
    fake.apply(orders);
    tokio::task::spawn_blocking(move || {
        wait_routed(&mut gloo, http, "shop.example", "/new", "static");
        wait_routed(
            &mut gloo,
            http,
            "shop.example",
            "/grpc/orders.Orders/Get",
            "api",
        );
        // The rest is unchanged.
        assert_eq!(answered_by(http, "shop.example", "/api"), "api");
        assert_eq!(answered_by(http, "shop.example", "/assets/x"), "web");
        assert_eq!(answered_by(http, "other.example", "/"), "web");
        // The fixed path is no longer reported; the resource backend still is.
        let statuses = admin_get(admin, "/statuses");
        assert!(!statuses.contains("paths[2].backend"), "{statuses}");
        assert!(statuses.contains("paths[1].backend.resource"), "{statuses}");
    })
    .await
    .expect("live changes");
}
