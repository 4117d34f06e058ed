//! Resilience of the `gloo` binary end to end: live config reloads under load, upstream
//! failures (active health checks, outlier detection, retries, circuit breaking, endpoints
//! that are down) and the loss of the control plane a proxy shard subscribes to.
//!
//! Each test writes a directory of Gloo YAML, runs `gloo run` on it (or `gloo control-plane`
//! and a `gloo proxy` shard) with HTTP/1.1 backends run by the test (`support::Backend`), and
//! checks what clients get, what the backends saw and what the admin endpoint reports.
//! Everything listens on 127.0.0.1 on free ports; child processes are killed when the test
//! ends, and on failure the config and the processes' logs are printed.

mod support;

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    admin_get, cluster_stat, control_plane, free_port, gloo_ready, gloo_run, http_get,
    live_endpoints, poll, print_logs_if_panicking, read_response, write_atomically, Backend,
    Behaviour, Proc, Response,
};

// ---------------------------------------------------------------------------------------------
// Config

fn gateway_yaml(port: u16) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n  httpGateway: {{}}\n"
    )
}

/// A static Upstream over `ports` on 127.0.0.1; `extra` is more of its spec, already indented
/// by two spaces.
fn upstream_yaml(name: &str, ports: &[u16], extra: &str) -> String {
    let hosts: String = ports
        .iter()
        .map(|p| format!("    - {{addr: 127.0.0.1, port: {p}}}\n"))
        .collect();
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  static:\n    hosts:\n{hosts}{extra}"
    )
}

/// A VirtualService for every domain; `routes` is its route list, indented by four spaces.
fn vs_yaml(name: &str, routes: &str) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n{routes}"
    )
}

/// A route: `prefix` to Upstream `upstream`, with route `options` (a flow mapping) if any.
fn route(prefix: &str, upstream: &str, options: Option<&str>) -> String {
    let mut out = format!(
        "    - matchers: [{{prefix: {prefix}}}]\n      routeAction: {{single: {{upstream: {{name: {upstream}, namespace: gloo-system}}}}}}\n"
    );
    if let Some(options) = options {
        out.push_str(&format!("      options: {options}\n"));
    }
    out
}

fn cluster(upstream: &str) -> String {
    format!("{upstream}_gloo-system")
}

// ---------------------------------------------------------------------------------------------
// Fixture

/// A config directory served by `gloo run`.
struct Fixture {
    /// The Gateway's port.
    port: u16,
    admin: u16,
    config_dir: PathBuf,
    gloo: Option<Proc>,
    _root: tempfile::TempDir,
}

impl Fixture {
    /// Writes `files` (name, contents) plus `gateway.yaml`, and starts `gloo run` on them.
    fn start(files: &[(&str, String)]) -> Fixture {
        let root = tempfile::tempdir().expect("tempdir");
        let config_dir = root.path().join("config");
        fs::create_dir_all(&config_dir).expect("create config dir");
        let port = free_port();
        fs::write(config_dir.join("gateway.yaml"), gateway_yaml(port)).expect("write gateway");
        for (name, contents) in files {
            fs::write(config_dir.join(name), contents).expect("write config");
        }
        let admin = free_port();
        let mut fixture = Fixture {
            port,
            admin,
            config_dir,
            gloo: None,
            _root: root,
        };
        fixture.gloo = Some(gloo_run(&fixture.config_dir, admin, fixture._root.path()));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listening = poll("the Gateway's port to accept connections", || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                .map(drop)
                .map_err(|e| e.to_string())
        });
        if let Err(e) = listening {
            panic!("{e}");
        }
        fixture
    }

    fn gloo(&mut self) -> &mut Proc {
        self.gloo.as_mut().expect("gloo is running")
    }

    /// Polls until `GET path` answers 200 from `backend`.
    fn wait_routed(&mut self, path: &str, backend: &str) {
        let port = self.port;
        let result = poll(&format!("GET {path} to reach {backend}"), || {
            self.gloo().check_running()?;
            let r = http_get(port, path).map_err(|e| e.to_string())?;
            match r.header("x-backend") {
                Some(b) if b == backend && r.status == 200 => Ok(()),
                other => Err(format!("{} from {other:?}", r.status)),
            }
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }

    /// Panics if gloo has exited.
    fn assert_alive(&mut self) {
        if let Err(e) = self.gloo().check_running() {
            panic!("{e}");
        }
    }

    fn stat(&self, metric: &str, upstream: &str) -> f64 {
        cluster_stat(self.admin, metric, &cluster(upstream)).unwrap_or_else(|| {
            panic!(
                "no {metric} for cluster {} in /stats/prometheus",
                cluster(upstream)
            )
        })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let procs: Vec<&Proc> = self.gloo.iter().collect();
        print_logs_if_panicking(&self.config_dir, &procs);
    }
}

/// `GET path` on a fresh connection; panics on a transport error.
fn get(port: u16, path: &str) -> Response {
    http_get(port, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Who answered: the backend's name, or `local` for a reply of the proxy itself.
fn who(r: &Response) -> String {
    r.header("x-backend").unwrap_or("local").to_string()
}

// ---------------------------------------------------------------------------------------------
// Live reload under load

/// One request of the load clients.
#[derive(Debug)]
struct Sample {
    client: usize,
    path: &'static str,
    started: Instant,
    /// `Ok(backend)` for a 200 from a backend, else what went wrong.
    outcome: Result<String, String>,
}

/// Keep-alive clients sending `GET /switch` and `GET /stable` in turn until `stop`.
fn load_client(
    client: usize,
    port: u16,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut stream: Option<TcpStream> = None;
        let mut n = 0usize;
        while !stop.load(Ordering::SeqCst) {
            let path = if n.is_multiple_of(2) {
                "/switch"
            } else {
                "/stable"
            };
            n += 1;
            let started = Instant::now();
            let result = (|| -> Result<Response, String> {
                if stream.is_none() {
                    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                        .map_err(|e| format!("connect: {e}"))?;
                    s.set_read_timeout(Some(Duration::from_secs(10)))
                        .map_err(|e| e.to_string())?;
                    stream = Some(s);
                }
                let s = stream.as_mut().expect("connected");
                s.write_all(
                    format!("GET {path} HTTP/1.1\r\nHost: reload.example\r\n\r\n").as_bytes(),
                )
                .map_err(|e| format!("write: {e}"))?;
                read_response(s, false).map_err(|e| format!("read: {e}"))
            })();
            let outcome = match result {
                Ok(r) => {
                    if r.header("connection")
                        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                    {
                        stream = None;
                    }
                    match (r.status, r.header("x-backend")) {
                        (200, Some(b)) => Ok(b.to_string()),
                        (status, b) => Err(format!("{status} from {b:?}: {}", r.body.trim())),
                    }
                }
                Err(e) => {
                    stream = None;
                    Err(e)
                }
            };
            samples.lock().unwrap().push(Sample {
                client,
                path,
                started,
                outcome,
            });
            std::thread::sleep(Duration::from_millis(2));
        }
    })
}

/// One step of the edit sequence: from `settled` until the next step is written, every
/// `/switch` request started must reach `switch`.
#[derive(Debug)]
struct Step {
    what: &'static str,
    written: Instant,
    settled: Instant,
    switch: &'static str,
}

fn reload_routes(switch: &str, added: bool) -> String {
    let mut routes = route("/switch", switch, None) + &route("/stable", "alpha", None);
    if added {
        routes += &route("/added", "beta", None);
    }
    routes
}

/// The control plane's status report of VirtualService `gloo-system.reload` and the load
/// errors, from the admin `/statuses`.
fn reload_status(admin: u16) -> (Value, Vec<String>) {
    let statuses: Value =
        serde_json::from_str(&admin_get(admin, "/statuses")).expect("/statuses is JSON");
    let cp = &statuses["control_plane"];
    let vs = cp["resources"]["VirtualService gloo-system.reload"].clone();
    let load_errors = cp["loadErrors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    (vs, load_errors)
}

#[test]
fn config_edits_under_load_fail_no_request() {
    let alpha = Backend::start("alpha");
    let beta = Backend::start("beta");
    let upstreams = upstream_yaml("alpha", &[alpha.port], "")
        + "---\n"
        + &upstream_yaml("beta", &[beta.port], "");
    let mut fx = Fixture::start(&[
        ("upstreams.yaml", upstreams),
        ("vs.yaml", vs_yaml("reload", &reload_routes("alpha", false))),
    ]);
    fx.wait_routed("/switch", "alpha");
    fx.wait_routed("/stable", "alpha");
    let vs_path = fx.config_dir.join("vs.yaml");

    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|i| load_client(i, fx.port, stop.clone(), samples.clone()))
        .collect();
    let mut steps = vec![Step {
        what: "initial config",
        written: Instant::now(),
        settled: Instant::now(),
        switch: "alpha",
    }];
    std::thread::sleep(Duration::from_millis(500));

    // Valid edits: each must be observed.
    let valid_edits: [(&'static str, &'static str, bool); 3] = [
        ("switch /switch to beta", "beta", false),
        ("add /added", "beta", true),
        ("switch /switch back to alpha", "alpha", true),
    ];
    for (what, switch, added) in valid_edits {
        let written = Instant::now();
        write_atomically(&vs_path, &vs_yaml("reload", &reload_routes(switch, added)));
        fx.wait_routed("/switch", switch);
        if added {
            fx.wait_routed("/added", "beta");
        }
        steps.push(Step {
            what,
            written,
            settled: Instant::now(),
            switch,
        });
        std::thread::sleep(Duration::from_millis(500));
    }

    // A VirtualService that fails validation (an invalid regex) and would switch /switch to
    // beta: it is Rejected, and the last accepted version (to alpha) keeps serving.
    let written = Instant::now();
    let rejected_routes = reload_routes("beta", true)
        + "    - matchers: [{regex: '('}]\n      directResponseAction: {status: 200}\n";
    write_atomically(&vs_path, &vs_yaml("reload", &rejected_routes));
    steps.push(Step {
        what: "a VirtualService with an invalid regex",
        written,
        settled: written,
        switch: "alpha",
    });
    let admin = fx.admin;
    let rejected = poll("/statuses to report the VirtualService Rejected", || {
        let (vs, _) = reload_status(admin);
        if vs["state"] == "Rejected" {
            Ok(vs)
        } else {
            Err(vs.to_string())
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let errors = rejected["errors"].to_string();
    assert!(
        errors.contains("invalid regex") && errors.contains("last accepted version keeps serving"),
        "the Rejected status should name the regex and say the last accepted version serves: {rejected}"
    );
    std::thread::sleep(Duration::from_millis(1000));
    let r = get(fx.port, "/switch");
    assert_eq!(
        (r.status, who(&r)),
        (200, "alpha".to_string()),
        "after a rejected edit the last accepted config must keep serving"
    );

    // A file that does not parse at all: a load error, and the file's last good contents (the
    // rejected VirtualService, so still the last accepted version) stay in force.
    let written = Instant::now();
    write_atomically(
        &vs_path,
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: reload, namespace: gloo-system\nspec: [\n",
    );
    steps.push(Step {
        what: "an unparseable file",
        written,
        settled: written,
        switch: "alpha",
    });
    poll("/statuses to report the load error", || {
        let (_, load_errors) = reload_status(admin);
        if load_errors.iter().any(|e| e.contains("vs.yaml")) {
            Ok(())
        } else {
            Err(format!("{load_errors:?}"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_millis(1000));
    let r = get(fx.port, "/switch");
    assert_eq!(
        (r.status, who(&r)),
        (200, "alpha".to_string()),
        "after an unparseable edit the last good config must keep serving"
    );

    // A valid edit again: the watcher still works, and the statuses clear.
    let written = Instant::now();
    write_atomically(&vs_path, &vs_yaml("reload", &reload_routes("beta", true)));
    fx.wait_routed("/switch", "beta");
    steps.push(Step {
        what: "a valid edit after the invalid ones",
        written,
        settled: Instant::now(),
        switch: "beta",
    });
    poll("/statuses to clear", || {
        let (vs, load_errors) = reload_status(admin);
        if vs["state"] == "Accepted" && load_errors.is_empty() {
            Ok(())
        } else {
            Err(format!("{vs} {load_errors:?}"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_millis(500));
    let end = Instant::now();

    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("load client");
    }
    fx.assert_alive();

    let samples = samples.lock().unwrap();
    let mut problems = Vec::new();
    for s in samples.iter() {
        match (&s.outcome, s.path) {
            (Err(e), _) => problems.push(format!(
                "client {} GET {} at +{:?}: {e}",
                s.client,
                s.path,
                s.started - steps[0].written
            )),
            (Ok(b), "/stable") if b != "alpha" => problems.push(format!("GET /stable reached {b}")),
            _ => {}
        }
    }
    // After each step settled, and until the next was written, /switch goes where it says.
    for (i, step) in steps.iter().enumerate() {
        let until = steps.get(i + 1).map(|s| s.written).unwrap_or(end);
        let window: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.path == "/switch" && s.started >= step.settled && s.started < until)
            .collect();
        if window.is_empty() {
            problems.push(format!("no load during step {:?}", step.what));
        }
        for s in window {
            if let Ok(b) = &s.outcome {
                if b != step.switch {
                    problems.push(format!(
                        "after {:?} settled, GET /switch (client {}, +{:?}) reached {b}, not {}",
                        step.what,
                        s.client,
                        s.started - steps[0].written,
                        step.switch
                    ));
                }
            }
        }
    }
    eprintln!(
        "{} requests under load; steps: {:#?}",
        samples.len(),
        steps
            .iter()
            .map(|s| (s.what, s.settled - s.written))
            .collect::<Vec<_>>()
    );
    assert!(
        samples.len() >= 200,
        "too little load to mean anything: {}",
        samples.len()
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Upstream failures

/// Sends `n` sequential `GET path`s and returns who answered each, with its status.
fn send_n(port: u16, path: &str, n: usize) -> Vec<(u16, String)> {
    (0..n)
        .map(|_| {
            let r = get(port, path);
            (r.status, who(&r))
        })
        .collect()
}

#[test]
fn active_health_checks_take_a_failing_endpoint_out_and_back() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let checks = "  healthChecks:\n  - timeout: 1s\n    interval: 0.2s\n    unhealthyThreshold: 2\n    healthyThreshold: 2\n    httpHealthCheck: {path: /healthz}\n";
    let mut fx = Fixture::start(&[
        (
            "upstream.yaml",
            upstream_yaml("hc", &[a.port, b.port], checks),
        ),
        ("vs.yaml", vs_yaml("hc", &route("/", "hc", None))),
    ]);
    fx.wait_routed("/", "a");
    fx.wait_routed("/", "b");
    let admin = fx.admin;
    let a_addr = format!("127.0.0.1:{}", a.port);
    let b_addr = format!("127.0.0.1:{}", b.port);
    let health = |addr: &str| -> Option<bool> {
        live_endpoints(admin, &cluster("hc"))
            .into_iter()
            .find(|(address, _)| address == addr)
            .map(|(_, healthy)| healthy)
    };
    assert_eq!(
        health(&a_addr),
        Some(true),
        "{:?}",
        live_endpoints(admin, &cluster("hc"))
    );
    poll("health checks to reach both backends", || {
        if a.health_checks() > 0 && b.health_checks() > 0 {
            Ok(())
        } else {
            Err(format!("{} / {}", a.health_checks(), b.health_checks()))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));

    // `a` fails its health checks (its traffic would still be answered 200).
    a.set_health(503);
    poll("a to be marked unhealthy", || match health(&a_addr) {
        Some(false) => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(health(&b_addr), Some(true));
    let clusters = admin_get(admin, "/clusters");
    assert!(
        clusters.contains(&format!(
            "hc_gloo-system::{a_addr}::health_flags::/failed_active_hc"
        )),
        "/clusters should flag a as failing its health checks:\n{clusters}"
    );
    assert_eq!(fx.stat("gloo_cluster_membership_healthy", "hc"), 1.0);
    assert!(fx.stat("gloo_cluster_health_check_failure", "hc") >= 1.0);
    let before = a.count();
    let answers = send_n(fx.port, "/", 20);
    assert!(
        answers.iter().all(|(s, w)| *s == 200 && w == "b"),
        "with a unhealthy, everything should go to b: {answers:?}"
    );
    assert_eq!(a.count(), before, "a got traffic while unhealthy");

    // `a` recovers.
    a.set_health(200);
    poll("a to be healthy again", || match health(&a_addr) {
        Some(true) => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fx.stat("gloo_cluster_membership_healthy", "hc"), 2.0);
    let answers = send_n(fx.port, "/", 20);
    assert!(
        answers.iter().all(|(s, _)| *s == 200)
            && answers.iter().any(|(_, w)| w == "a")
            && answers.iter().any(|(_, w)| w == "b"),
        "with both healthy, traffic should reach both: {answers:?}"
    );
    fx.assert_alive();
}

#[test]
fn outlier_detection_ejects_an_endpoint_after_consecutive_5xx() {
    let good = Backend::start("good");
    let bad = Backend::start("bad");
    bad.set_behaviour(Behaviour::Status(500));
    let od = "  outlierDetection:\n    consecutive5xx: 3\n    interval: 1s\n    baseEjectionTime: 30s\n    maxEjectionPercent: 100\n";
    let mut fx = Fixture::start(&[
        (
            "upstream.yaml",
            upstream_yaml("od", &[good.port, bad.port], od),
        ),
        ("vs.yaml", vs_yaml("od", &route("/", "od", None))),
    ]);
    // Not `wait_routed`: every request counts here. gloo is ready; the route is in force.
    assert_eq!(
        fx.stat("gloo_cluster_outlier_detection_ejections_total", "od"),
        0.0
    );
    let answers = send_n(fx.port, "/", 30);
    let from_bad: Vec<_> = answers.iter().filter(|(_, w)| w == "bad").collect();
    assert_eq!(
        bad.count(),
        3,
        "bad should get exactly 3 requests (consecutive5xx: 3) before it is ejected: {answers:?}"
    );
    assert!(
        from_bad.iter().all(|(s, _)| *s == 500) && from_bad.len() == 3,
        "{answers:?}"
    );
    assert!(
        answers[answers.len() - 20..]
            .iter()
            .all(|(s, w)| *s == 200 && w == "good"),
        "after the ejection everything should go to good: {answers:?}"
    );
    assert_eq!(
        fx.stat("gloo_cluster_outlier_detection_ejections_total", "od"),
        1.0
    );
    assert_eq!(fx.stat("gloo_cluster_membership_healthy", "od"), 1.0);
    fx.assert_alive();
}

#[test]
fn retries_hide_a_flaky_backend() {
    let flaky = Backend::start("flaky");
    let retries = "{retries: {retryOn: 5xx, numRetries: 2}}";
    let mut fx = Fixture::start(&[
        ("upstream.yaml", upstream_yaml("flaky", &[flaky.port], "")),
        (
            "vs.yaml",
            vs_yaml(
                "retry",
                &(route("/retry", "flaky", Some(retries)) + &route("/no-retry", "flaky", None)),
            ),
        ),
    ]);
    fx.wait_routed("/retry", "flaky");
    flaky.set_behaviour(Behaviour::FailEveryOther);
    let retries_before = fx.stat("gloo_cluster_upstream_rq_retry", "flaky");
    let seen_before = flaky.count();
    let answers = send_n(fx.port, "/retry", 20);
    assert!(
        answers.iter().all(|(s, w)| *s == 200 && w == "flaky"),
        "with retries every request should succeed: {answers:?}"
    );
    let attempts = flaky.count() - seen_before;
    let retried = fx.stat("gloo_cluster_upstream_rq_retry", "flaky") - retries_before;
    assert!(retried > 0.0, "no retry counted");
    assert_eq!(
        retried as usize,
        attempts - 20,
        "every attempt beyond the 20 requests is a retry ({attempts} attempts)"
    );
    // The same backend without a retry policy: its failures reach the client.
    let answers = send_n(fx.port, "/no-retry", 10);
    assert!(
        answers.iter().any(|(s, _)| *s == 503),
        "without retries some requests should fail: {answers:?}"
    );
    fx.assert_alive();
}

#[test]
fn circuit_breaker_sheds_requests_over_max_requests() {
    let slow = Backend::start("slow");
    let breaker = "  circuitBreakers:\n    maxRequests: 1\n";
    let mut fx = Fixture::start(&[
        (
            "upstream.yaml",
            upstream_yaml("slow", &[slow.port], breaker),
        ),
        ("vs.yaml", vs_yaml("cb", &route("/", "slow", None))),
    ]);
    fx.wait_routed("/", "slow");
    slow.set_behaviour(Behaviour::DelayMs(1500));
    let overflow_before = fx.stat("gloo_cluster_upstream_rq_pending_overflow", "slow");
    let n = 6;
    let barrier = Arc::new(Barrier::new(n));
    let port = fx.port;
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                get(port, "/")
            })
        })
        .collect();
    let answers: Vec<Response> = threads
        .into_iter()
        .map(|t| t.join().expect("client"))
        .collect();
    let summary: Vec<_> = answers
        .iter()
        .map(|r| {
            (
                r.status,
                who(r),
                r.header("x-envoy-overloaded").map(str::to_string),
            )
        })
        .collect();
    let ok = answers.iter().filter(|r| r.status == 200).count();
    let shed = answers
        .iter()
        .filter(|r| r.status == 503 && r.header("x-envoy-overloaded") == Some("true"))
        .count();
    assert!(
        ok >= 1,
        "at least one request should get through: {summary:?}"
    );
    assert!(shed >= 1, "some requests should be shed: {summary:?}");
    assert_eq!(ok + shed, n, "every request is served or shed: {summary:?}");
    assert_eq!(
        slow.max_in_flight(),
        1,
        "the backend should never see more than maxRequests at once"
    );
    let overflow = fx.stat("gloo_cluster_upstream_rq_pending_overflow", "slow") - overflow_before;
    assert_eq!(overflow as usize, shed, "each shed request is counted");
    fx.assert_alive();
}

#[test]
fn an_endpoint_that_is_down_gives_503_and_retries_reach_a_live_one() {
    let live = Backend::start("live");
    let dead_port = free_port();
    let retries = "{retries: {retryOn: connect-failure, numRetries: 2}}";
    let mut fx = Fixture::start(&[
        (
            "upstreams.yaml",
            upstream_yaml("dead", &[dead_port], "")
                + "---\n"
                + &upstream_yaml("mixed", &[dead_port, live.port], ""),
        ),
        (
            "vs.yaml",
            vs_yaml(
                "down",
                &(route("/dead", "dead", None) + &route("/mixed", "mixed", Some(retries))),
            ),
        ),
    ]);
    let started = Instant::now();
    let r = get(fx.port, "/dead");
    assert_eq!(r.status, 503, "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "a refused connection should fail fast, not wait for the connect timeout"
    );
    assert!(fx.stat("gloo_cluster_upstream_cx_connect_fail", "dead") >= 1.0);

    let answers = send_n(fx.port, "/mixed", 10);
    assert!(
        answers.iter().all(|(s, w)| *s == 200 && w == "live"),
        "connect failures to the dead endpoint should be retried on the live one: {answers:?}"
    );
    assert!(
        fx.stat("gloo_cluster_upstream_cx_connect_fail", "mixed") >= 1.0,
        "round robin should have tried the dead endpoint"
    );
    assert!(fx.stat("gloo_cluster_upstream_rq_retry", "mixed") >= 1.0);
    assert!(
        live.seen().iter().all(|s| s.target == "/mixed"),
        "{:?}",
        live.seen()
    );
    fx.assert_alive();
}

// ---------------------------------------------------------------------------------------------
// Control-plane loss

/// `gloo control-plane` and a `gloo proxy` shard.
struct Sharded {
    config_dir: PathBuf,
    xds: u16,
    port: u16,
    admin: u16,
    shard: Option<Proc>,
    control_plane: Option<Proc>,
    /// Earlier control planes, kept for their logs.
    old_control_planes: Vec<Proc>,
    root: tempfile::TempDir,
}

impl Drop for Sharded {
    fn drop(&mut self) {
        let mut procs: Vec<&Proc> = self.old_control_planes.iter().collect();
        procs.extend(self.control_plane.iter());
        procs.extend(self.shard.iter());
        print_logs_if_panicking(&self.config_dir, &procs);
    }
}

impl Sharded {
    fn start_control_plane(&mut self) {
        let log_dir = self
            .root
            .path()
            .join(format!("cp{}", self.old_control_planes.len()));
        fs::create_dir_all(&log_dir).expect("log dir");
        self.control_plane = Some(control_plane(&self.config_dir, self.xds, None, &log_dir));
    }

    fn wait_routed(&mut self, backend: &str) {
        let port = self.port;
        let shard = self.shard.as_mut().expect("shard");
        poll(&format!("the shard to route / to {backend}"), || {
            shard.check_running()?;
            let r = http_get(port, "/").map_err(|e| e.to_string())?;
            match r.header("x-backend") {
                Some(b) if b == backend && r.status == 200 => Ok(()),
                other => Err(format!("{} from {other:?}", r.status)),
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

fn write_sharded_config(dir: &Path, port: u16, alpha: u16, beta: u16, to: &str) {
    fs::write(dir.join("gateway.yaml"), gateway_yaml(port)).expect("write");
    fs::write(
        dir.join("upstreams.yaml"),
        upstream_yaml("alpha", &[alpha], "") + "---\n" + &upstream_yaml("beta", &[beta], ""),
    )
    .expect("write");
    write_atomically(
        &dir.join("vs.yaml"),
        &vs_yaml("shard", &route("/", to, None)),
    );
}

#[test]
fn a_shard_keeps_serving_without_its_control_plane_and_resyncs_when_it_returns() {
    let alpha = Backend::start("alpha");
    let beta = Backend::start("beta");
    let root = tempfile::tempdir().expect("tempdir");
    let config_dir = root.path().join("config");
    fs::create_dir_all(&config_dir).expect("config dir");
    let port = free_port();
    write_sharded_config(&config_dir, port, alpha.port, beta.port, "alpha");
    let mut s = Sharded {
        config_dir,
        xds: free_port(),
        port,
        admin: free_port(),
        shard: None,
        control_plane: None,
        old_control_planes: Vec::new(),
        root,
    };
    s.start_control_plane();
    let xds = format!("http://127.0.0.1:{}", s.xds);
    s.shard = Some(gloo_ready(
        "gloo-proxy",
        &[
            "proxy",
            "--xds",
            &xds,
            "--role",
            "gloo-system~gateway-proxy",
        ],
        s.admin,
        s.root.path(),
    ));
    s.wait_routed("alpha");

    // A keep-alive connection opened before the loss must keep working too.
    let mut kept = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut on_kept = |what: &str| -> Response {
        kept.write_all(b"GET / HTTP/1.1\r\nHost: shard.example\r\n\r\n")
            .unwrap_or_else(|e| panic!("{what}: write on the kept connection: {e}"));
        read_response(&mut kept, false)
            .unwrap_or_else(|e| panic!("{what}: read on the kept connection: {e}"))
    };
    assert_eq!(who(&on_kept("before the loss")), "alpha");

    // The control plane dies (SIGKILL: no goodbye on the stream).
    let mut cp = s.control_plane.take().expect("control plane");
    cp.kill();
    s.old_control_planes.push(cp);
    let lost = Instant::now();
    let mut answers = Vec::new();
    while lost.elapsed() < Duration::from_secs(3) {
        answers.push(send_one(s.port));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        answers.iter().all(|(st, w)| *st == 200 && w == "alpha"),
        "without its control plane the shard should keep serving the last config: {answers:?}"
    );
    assert_eq!(who(&on_kept("during the loss")), "alpha");
    assert_eq!(
        http_get(s.admin, "/ready").map(|r| r.status).ok(),
        Some(200),
        "the shard should stay ready"
    );

    // The config changes while the control plane is away; it comes back on the same port.
    write_sharded_config(&s.config_dir, s.port, alpha.port, beta.port, "beta");
    s.start_control_plane();
    s.wait_routed("beta");
    assert_eq!(who(&on_kept("after the resync")), "beta");
    if let Err(e) = s.shard.as_mut().expect("shard").check_running() {
        panic!("{e}");
    }
}

fn send_one(port: u16) -> (u16, String) {
    match http_get(port, "/") {
        Ok(r) => (r.status, who(&r)),
        Err(e) => (0, e.to_string()),
    }
}
