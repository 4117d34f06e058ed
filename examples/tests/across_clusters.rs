//! Deployment pattern 8, gateways across clusters (`examples/across-clusters`), end to end: two
//! `gloo run` processes, each with its own config directory and backend (its "cluster"), the
//! checked-in configs and certificates, and the backends started as the README starts them
//! (`python3 -m http.server` over `backend-a/` and `backend-b/`).
//!
//! Killing cluster A's backend moves traffic through gateway A to cluster B, over mutual TLS
//! (gateway B's `ssl: true` Gateway requires a client certificate signed by the example CA);
//! restarting it moves traffic back.
//!
//! Needs `GLOO_TEST_PYTHON` (any Python 3; `scripts/test.sh` sets it) and `curl` on `PATH`.

#[path = "../../gloo-proxy/tests/support/mod.rs"]
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{free_port, gloo_ready, http_get, live_endpoints, poll, LogsOnPanic, Proc};

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("across-clusters")
}

/// The ports of one cluster, and the README's fixed ports they replace.
#[derive(Clone, Copy)]
struct Ports {
    http: u16,
    mtls: u16,
    backend: u16,
    admin: u16,
}

const README_A: Ports = Ports {
    http: 8081,
    mtls: 8443,
    backend: 9081,
    admin: 19081,
};
const README_B: Ports = Ports {
    http: 8082,
    mtls: 8444,
    backend: 9082,
    admin: 19082,
};

fn fresh_ports() -> Ports {
    Ports {
        http: free_port(),
        mtls: free_port(),
        backend: free_port(),
        admin: free_port(),
    }
}

/// The checked-in config of cluster `name` with this test's ports and absolute certificate
/// paths, written to `<dir>/<name>/gloo.yaml`; returns that directory.
fn write_config(dir: &Path, name: &str, own: Ports, peer: Ports) -> PathBuf {
    let source = example_dir().join(name).join("gloo.yaml");
    let text =
        fs::read_to_string(&source).unwrap_or_else(|e| panic!("read {}: {e}", source.display()));
    let (readme_own, readme_peer) = if name == "cluster-a" {
        (README_A, README_B)
    } else {
        (README_B, README_A)
    };
    let mut text = text.replace(
        "examples/across-clusters/certs/",
        &format!("{}/", example_dir().join("certs").display()),
    );
    for (from, to) in [
        (readme_own.http, own.http),
        (readme_own.mtls, own.mtls),
        (readme_own.backend, own.backend),
        (readme_peer.mtls, peer.mtls),
    ] {
        // `bindPort: N` or `port: N`.
        let needle = format!("ort: {from}");
        assert!(
            text.contains(&needle),
            "{} should contain `{needle}`",
            source.display()
        );
        text = text.replace(&needle, &format!("ort: {to}"));
    }
    let out = dir.join(name);
    fs::create_dir_all(&out).expect("config dir");
    fs::write(out.join("gloo.yaml"), text).expect("write config");
    out
}

/// `python3 -m http.server` serving `backend-<x>/` on `port`, as the README runs it.
fn backend(name: &'static str, dir: &str, port: u16, log_dir: &Path) -> Proc {
    let mut backend = Proc::spawn(
        name,
        Command::new(support::python())
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(example_dir().join(dir)),
        log_dir,
    );
    if let Err(e) = poll(&format!("{name} to serve"), || {
        backend.check_running()?;
        http_get(port, "/healthz")
            .map_err(|e| e.to_string())
            .and_then(|r| {
                (r.status == 200)
                    .then_some(())
                    .ok_or(format!("{}", r.status))
            })
    }) {
        panic!("{e}\n{}", backend.logs());
    }
    backend
}

/// `curl` to an mTLS gateway on `port`, with or without the client certificate of `client`;
/// the body, or curl's error.
fn curl_mtls(port: u16, server: &str, client: Option<&str>) -> Result<String, String> {
    let certs = example_dir().join("certs");
    let mut command = Command::new("curl");
    command
        .args(["--silent", "--show-error", "--max-time", "5"])
        .arg("--cacert")
        .arg(certs.join("ca.crt"))
        .args(["--resolve", &format!("{server}:{port}:127.0.0.1")]);
    if let Some(client) = client {
        command
            .arg("--cert")
            .arg(certs.join(format!("{client}.crt")))
            .arg("--key")
            .arg(certs.join(format!("{client}.key")));
    }
    let out = command
        .arg(format!("https://{server}:{port}/"))
        .output()
        .unwrap_or_else(|e| panic!("run curl (needed on PATH): {e}"));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Polls gateway `port` until `/` answers 200 with `body`.
fn wait_for_body(what: &str, port: u16, body: &str, procs: &[&Proc]) {
    let result = poll(what, || {
        let r = http_get(port, "/").map_err(|e| e.to_string())?;
        if r.status == 200 && r.body.trim() == body {
            Ok(())
        } else {
            Err(format!("{} {:?}", r.status, r.body))
        }
    });
    if let Err(e) = result {
        let logs: String = procs.iter().map(|p| p.logs()).collect();
        panic!("{e}\n{logs}");
    }
}

#[test]
fn gateway_a_fails_over_to_cluster_b_over_mtls_and_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (fresh_ports(), fresh_ports());
    let config_a = write_config(dir.path(), "cluster-a", a, b);
    let config_b = write_config(dir.path(), "cluster-b", b, a);

    let mut backend_a = backend("backend-a", "backend-a", a.backend, dir.path());
    let backend_b = backend("backend-b", "backend-b", b.backend, dir.path());
    let run = |name: &'static str, config: &Path, admin: u16| {
        let config = config.display().to_string();
        gloo_ready(
            name,
            &["run", "--config", &config, "--ratelimit-server", "off"],
            admin,
            dir.path(),
        )
    };
    let gloo_a = run("gloo-a", &config_a, a.admin);
    let gloo_b = run("gloo-b", &config_b, b.admin);
    let _logs = LogsOnPanic(dir.path(), vec![&gloo_a, &gloo_b, &backend_b]);

    // Each gateway serves its own cluster's backend.
    wait_for_body(
        "gateway A to serve cluster A",
        a.http,
        "cluster-a",
        &[&gloo_a],
    );
    wait_for_body(
        "gateway B to serve cluster B",
        b.http,
        "cluster-b",
        &[&gloo_b],
    );

    // Upstream `app` of gateway A: the local backend at priority 0, gateway B's mTLS port at
    // priority 1.
    let dump: serde_json::Value =
        serde_json::from_str(&support::admin_get(a.admin, "/config_dump"))
            .expect("config_dump is JSON");
    let mut priorities: Vec<(String, u64)> = dump["live_endpoints"]["app_gloo-system"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["address"].as_str().unwrap_or_default().to_string(),
                e["priority"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    priorities.sort();
    let mut expected = vec![
        (format!("127.0.0.1:{}", a.backend), 0),
        (format!("127.0.0.1:{}", b.mtls), 1),
    ];
    expected.sort();
    assert_eq!(priorities, expected, "gateway A's endpoints of app");

    // Gateway B's mTLS port requires a client certificate signed by the example CA.
    let without = curl_mtls(b.mtls, "cluster-b", None);
    assert!(
        without.is_err(),
        "gateway B answered a client without a certificate: {without:?}"
    );
    assert_eq!(
        curl_mtls(b.mtls, "cluster-b", Some("cluster-a")).map(|b| b.trim().to_string()),
        Ok("cluster-b".to_string())
    );

    // Cluster A's backend goes away: its health check fails and gateway A sends to cluster B.
    backend_a.kill();
    wait_for_body(
        "gateway A to fail over to cluster B",
        a.http,
        "cluster-b",
        &[&gloo_a, &gloo_b],
    );
    poll("gateway A to mark its local endpoint unhealthy", || {
        let endpoints = live_endpoints(a.admin, "app_gloo-system");
        let local = format!("127.0.0.1:{}", a.backend);
        match endpoints.iter().find(|(address, _)| *address == local) {
            Some((_, false)) => Ok(()),
            other => Err(format!("{other:?} in {endpoints:?}")),
        }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", gloo_a.logs()));
    // Every request now goes to cluster B (priority 1 has all the load).
    for _ in 0..20 {
        let r = http_get(a.http, "/").expect("gateway A answers");
        assert_eq!((r.status, r.body.trim()), (200, "cluster-b"));
    }

    // It comes back: its health check passes and traffic returns to cluster A.
    let _backend_a = backend("backend-a-again", "backend-a", a.backend, dir.path());
    wait_for_body(
        "gateway A to return to cluster A",
        a.http,
        "cluster-a",
        &[&gloo_a, &gloo_b],
    );
    for _ in 0..20 {
        let r = http_get(a.http, "/").expect("gateway A answers");
        assert_eq!((r.status, r.body.trim()), (200, "cluster-a"));
    }
}
