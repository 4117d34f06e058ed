//! End-to-end endpoint latency: one endpoint change at 5,000 upstreams, from
//! `Translator::update_endpoints` until a connected real Envoy sends traffic to the new endpoint
//! (requests through its listener reach a backend listening there) and its admin shows it, in delta
//! (`DELTA_GRPC`) and state-of-the-world (`GRPC`) ADS.
//!
//! The control plane runs in this process (Translator + SnapshotCache + XdsServer on tonic);
//! Envoy is the real one from `GLOO_TEST_ENVOY`, or the one `scripts/test.sh` installs under
//! `.tools/venv`. Everything listens on 127.0.0.1 on free ports; Envoy is killed on exit.
//!
//! Run: `cargo bench -p gloo-benches --bench endpoint_latency`.
//! Optional: `GLOO_BENCH_ITERATIONS` (default 50), `GLOO_BENCH_MODES` (`delta,sotw`).

#[path = "workload.rs"]
mod workload;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gloo_core::model::ResourceRef;
use gloo_core::source::SourceSnapshot;
use gloo_core::translate::{Endpoint, Endpoints, Translator};
use gloo_core::xds::{ProxyResources, CLUSTER_TYPE, ENDPOINT_TYPE};
use gloo_xds::{ServerOptions, SnapshotCache, XdsServer};
use tokio_stream::wrappers::TcpListenerStream;

const UPSTREAMS: usize = 5_000;
const ROUTES: usize = 10_000;
use workload::VIRTUAL_SERVICES;
const ROLE: &str = "gloo-system~gateway-proxy";
const INITIAL_PORT: u32 = 9000;
/// Start-up (all clusters and endpoints loaded) may take this long.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(180);
/// One endpoint change may take this long to reach Envoy.
/// Pause between two admin polls while waiting for a change.
const POLL_GAP: Duration = Duration::from_millis(2);
const CHANGE_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause between changes, so each one starts from a settled (ACKed) stream.
const SETTLE: Duration = Duration::from_millis(300);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Delta,
    Sotw,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Delta => "delta",
            Mode::Sotw => "sotw",
        }
    }

    fn bootstrap_file(self) -> &'static str {
        match self {
            Mode::Delta => "bootstrap-delta.yaml",
            Mode::Sotw => "bootstrap-ads.yaml",
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `$GLOO_TEST_ENVOY`, else `find .tools/venv -path '*envoy/_bin/envoy' -type f | head -n 1`.
fn envoy_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("GLOO_TEST_ENVOY") {
        return Ok(PathBuf::from(path));
    }
    let venv = workspace_root().join(".tools/venv");
    let out = Command::new("find")
        .arg(&venv)
        .args(["-path", "*envoy/_bin/envoy", "-type", "f"])
        .output()
        .map_err(|e| format!("find under {}: {e}", venv.display()))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(PathBuf::from)
        .ok_or_else(|| {
            format!(
                "no Envoy: set GLOO_TEST_ENVOY or run scripts/test.sh (installs it under {})",
                venv.display()
            )
        })
}

use gloo_test_ports::free_port;

// ---------------------------------------------------------------------------------------------
// Config and control plane

fn config(gateway_port: u16) -> SourceSnapshot {
    let gateway = format!(
        "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: bench, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {gateway_port}\n  httpGateway: {{}}\n"
    );
    workload::snapshot(&gateway, ROUTES, UPSTREAMS)
}

fn upstream_ref(u: usize) -> ResourceRef {
    ResourceRef::new("apps", format!("svc-{u}"))
}

fn cluster_name(u: usize) -> String {
    format!("svc-{u}_apps")
}

fn initial_endpoints() -> Endpoints {
    (0..UPSTREAMS)
        .map(|u| {
            (
                upstream_ref(u),
                vec![Endpoint::new("127.0.0.2", INITIAL_PORT)],
            )
        })
        .collect()
}

/// Publishes a translation's proxies exactly as `gloo control-plane` does.
fn publish(proxies: &BTreeMap<String, ProxyResources>, cache: &SnapshotCache) {
    gloo_proxy::control_plane::publish_proxies(proxies, cache);
}

// ---------------------------------------------------------------------------------------------
// Envoy

/// Envoy, killed and reaped when dropped.
struct EnvoyProc {
    child: Child,
    log: PathBuf,
}

impl EnvoyProc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "envoy exited ({status}); log tail:\n{}",
                tail(&self.log, 30)
            )),
            Err(e) => Err(format!("envoy: {e}")),
        }
    }
}

impl Drop for EnvoyProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn bootstrap(mode: Mode, xds_port: u16, admin_port: u16) -> String {
    let path = workspace_root()
        .join("examples/envoy")
        .join(mode.bootstrap_file());
    let template = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read bootstrap {}: {e}", path.display()));
    for needle in ["port_value: 9977\n", "port_value: 19001\n"] {
        assert_eq!(template.matches(needle).count(), 1, "{needle} in {path:?}");
    }
    template
        .replace("port_value: 9977\n", &format!("port_value: {xds_port}\n"))
        .replace(
            "port_value: 19001\n",
            &format!("port_value: {admin_port}\n"),
        )
}

fn start_envoy(envoy: &Path, mode: Mode, xds_port: u16, admin_port: u16, dir: &Path) -> EnvoyProc {
    let config = dir.join(format!("bootstrap-{}.yaml", mode.name()));
    fs::write(&config, bootstrap(mode, xds_port, admin_port)).expect("write bootstrap");
    let log = dir.join(format!("envoy-{}.log", mode.name()));
    let child = Command::new(envoy)
        .arg("-c")
        .arg(&config)
        .args(["--concurrency", "1", "--log-level", "warn"])
        .args(["--base-id", &admin_port.to_string()])
        .stdin(Stdio::null())
        .stdout(File::create(dir.join(format!("envoy-{}.out", mode.name()))).expect("log"))
        .stderr(File::create(&log).expect("log"))
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", envoy.display()));
    EnvoyProc { child, log }
}

/// A kept-alive HTTP/1.1 connection to Envoy's admin.
struct Admin {
    port: u16,
    conn: Option<BufReader<TcpStream>>,
}

impl Admin {
    fn new(port: u16) -> Self {
        Admin { port, conn: None }
    }

    fn connect(&mut self) -> io::Result<&mut BufReader<TcpStream>> {
        if self.conn.is_none() {
            let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
            let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
            stream.set_write_timeout(Some(Duration::from_secs(5)))?;
            stream.set_nodelay(true)?;
            self.conn = Some(BufReader::with_capacity(1 << 16, stream));
        }
        Ok(self.conn.as_mut().expect("connected"))
    }

    /// `GET path`; the body (status must be 200). Reconnects once on a broken connection.
    fn get(&mut self, path: &str) -> io::Result<String> {
        match self.get_once(path) {
            Ok(body) => Ok(body),
            Err(_) => {
                self.conn = None;
                self.get_once(path)
            }
        }
    }

    fn get_once(&mut self, path: &str) -> io::Result<String> {
        let result = (|| {
            let conn = self.connect()?;
            write!(conn.get_mut(), "GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n")?;
            read_response(conn)
        })();
        match result {
            Ok((status, body, keep_alive)) => {
                if !keep_alive {
                    self.conn = None;
                }
                if status != 200 {
                    return Err(io::Error::other(format!("{path}: status {status}: {body}")));
                }
                Ok(body)
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    /// `name: value` lines of `/stats?filter=<regex>`.
    fn stats(&mut self, filter: &str) -> io::Result<BTreeMap<String, u64>> {
        let body = self.get(&format!("/stats?filter={filter}"))?;
        Ok(body
            .lines()
            .filter_map(|l| l.split_once(": "))
            .filter_map(|(k, v)| v.trim().parse().ok().map(|v| (k.to_string(), v)))
            .collect())
    }
}

fn read_response(conn: &mut BufReader<TcpStream>) -> io::Result<(u16, String, bool)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(bad("connection closed"));
    }
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut length = None;
    let mut chunked = false;
    let mut keep_alive = true;
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Err(bad("eof in headers"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "content-length" => length = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                "connection" => keep_alive = !v.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            conn.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                line.clear();
                conn.read_line(&mut line)?; // trailing CRLF
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            conn.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            conn.read_exact(&mut crlf)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        conn.read_exact(&mut body)?;
    } else {
        conn.read_to_end(&mut body)?;
        keep_alive = false;
    }
    Ok((
        status,
        String::from_utf8_lossy(&body).into_owned(),
        keep_alive,
    ))
}

/// A way to ask Envoy whether one cluster has one endpoint port.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Probe {
    /// `/stats?filter=^cluster\.<c>\.update_success$` grows past its value before the change.
    UpdateSuccessStat,
    /// `/config_dump?resource=dynamic_endpoint_configs&include_eds&name_regex=^<c>$` names the
    /// new port.
    EdsConfigDump,
    /// Full `/clusters` text has `<c>::127.0.0.2:<port>::`.
    ClustersText,
}

impl Probe {
    fn label(self) -> &'static str {
        match self {
            Probe::UpdateSuccessStat => "/stats?filter=^cluster.<c>.update_success$",
            Probe::EdsConfigDump => {
                "/config_dump?resource=dynamic_endpoint_configs&include_eds&name_regex=^<c>$"
            }
            Probe::ClustersText => "/clusters (full text)",
        }
    }

    fn update_success_path(cluster: &str) -> String {
        format!("/stats?filter=^cluster\\.{cluster}\\.update_success$")
    }

    fn update_success(admin: &mut Admin, cluster: &str) -> io::Result<u64> {
        let key = format!("cluster.{cluster}.update_success");
        Ok(admin
            .stats(&format!("^cluster\\.{cluster}\\.update_success$"))?
            .get(&key)
            .copied()
            .unwrap_or(0))
    }

    /// Whether `cluster` shows `port` (or, for the stat, an update past `baseline`).
    fn check(self, admin: &mut Admin, cluster: &str, port: u32, baseline: u64) -> io::Result<bool> {
        match self {
            Probe::UpdateSuccessStat => {
                let body = admin.get(&Self::update_success_path(cluster))?;
                let value = body
                    .lines()
                    .find_map(|l| l.split_once(": "))
                    .and_then(|(_, v)| v.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                Ok(value > baseline)
            }
            Probe::EdsConfigDump => {
                let body = admin.get(&format!(
                    "/config_dump?resource=dynamic_endpoint_configs&include_eds&name_regex=^{cluster}$"
                ))?;
                Ok(body.contains(&format!("\"port_value\": {port}")))
            }
            Probe::ClustersText => {
                let body = admin.get("/clusters")?;
                Ok(body.contains(&format!("{cluster}::127.0.0.2:{port}::")))
            }
        }
    }
}

/// VmRSS of a process, in MiB.
/// A backend on the new endpoint: answers every HTTP/1.1 request with its own port, until the
/// bench ends. Envoy reaching it proves the change is in force on the data path.
fn spawn_backend(port: u32) -> io::Result<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.2", port as u16))?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let body = port.to_string();
                loop {
                    // Read one request head (no bodies on GET).
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {}
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if reader.get_mut().write_all(response.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(())
}

/// The request that reaches upstream `u` through Envoy: route `u` of the workload (host, path,
/// and the tenant header for header-matched routes).
fn request_for(u: usize) -> String {
    let per_service = ROUTES / VIRTUAL_SERVICES;
    let host = format!("host-{}.example.com", u / per_service);
    let (path, header) = match u % 4 {
        0 => (format!("/api/{u}"), String::new()),
        1 => (format!("/exact/{u}"), String::new()),
        2 => (format!("/re/{u}/7"), String::new()),
        _ => (format!("/h/{u}"), format!("x-tenant: t{u}\r\n")),
    };
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{header}\r\n")
}

/// Requests through Envoy's listener (handled by its worker threads, not the main thread that
/// applies xDS) until upstream `u` answers from `port`.
struct Traffic {
    port: u16,
    conn: Option<BufReader<TcpStream>>,
}

impl Traffic {
    fn reaches(&mut self, u: usize, port: u32) -> io::Result<bool> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(("127.0.0.1", self.port))?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.set_nodelay(true)?;
            self.conn = Some(BufReader::new(stream));
        }
        let result = (|| {
            let conn = self
                .conn
                .as_mut()
                .ok_or_else(|| io::Error::other("no connection"))?;
            conn.get_mut().write_all(request_for(u).as_bytes())?;
            read_response(conn)
        })();
        match result {
            Ok((status, body, keep_alive)) => {
                if !keep_alive {
                    self.conn = None;
                }
                Ok(status == 200 && body.trim() == port.to_string())
            }
            Err(_) => {
                self.conn = None;
                Ok(false)
            }
        }
    }
}

fn rss_mib(pid: &str) -> Option<f64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

// ---------------------------------------------------------------------------------------------
// One mode

struct ModeResult {
    mode: Mode,
    traffic_ms: Vec<f64>,
    latencies_ms: Vec<f64>,
    publish_ms: Vec<f64>,
    update_ms: Vec<f64>,
    envoy_side_ms: Vec<f64>,
    startup_s: f64,
    envoy_rss_mib: f64,
    cp_rss_mib: f64,
    probe_costs: Vec<(Probe, f64)>,
    probe: Probe,
    polls: usize,
    nacks: usize,
}

fn wait_until(
    what: &str,
    timeout: Duration,
    envoy: &mut EnvoyProc,
    mut check: impl FnMut() -> Result<bool, String>,
) -> Result<(), String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < timeout {
        envoy.check_running()?;
        match check() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "timed out after {timeout:?} waiting for {what}; last error: {last}"
    ))
}

fn median_cost(admin: &mut Admin, probe: Probe, cluster: &str) -> Result<f64, String> {
    let mut costs = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        probe
            .check(admin, cluster, INITIAL_PORT, u64::MAX)
            .map_err(|e| format!("{}: {e}", probe.label()))?;
        costs.push(start.elapsed().as_secs_f64() * 1e3);
    }
    costs.sort_by(f64::total_cmp);
    Ok(costs[costs.len() / 2])
}

fn run_mode(
    mode: Mode,
    gateway_port: u16,
    envoy_path: &Path,
    source: &SourceSnapshot,
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    iterations: usize,
) -> Result<ModeResult, String> {
    // Control plane.
    let cache = Arc::new(SnapshotCache::new());
    let server = XdsServer::new(cache.clone(), ServerOptions::default());
    let mut translator = Translator::new();
    let translation = translator.translate(source);
    assert!(
        translation.proxies.contains_key("gateway-proxy"),
        "no gateway-proxy in the translation: {:?}",
        translation.proxies.keys().collect::<Vec<_>>()
    );
    let mut endpoints = initial_endpoints();
    let proxies = translator.update_endpoints(endpoints.clone());
    {
        let resources = &proxies["gateway-proxy"];
        let clusters = resources.by_type_url(CLUSTER_TYPE).len();
        let cla = resources.by_type_url(ENDPOINT_TYPE).len();
        assert_eq!(clusters, UPSTREAMS, "clusters");
        assert_eq!(cla, UPSTREAMS, "cluster load assignments");
    }
    publish(proxies, &cache);
    assert!(
        cache.roles().iter().any(|r| r == ROLE),
        "{ROLE} not published"
    );
    let _ = proxies;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| format!("bind xDS: {e}"))?;
    let xds_port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = rt.spawn(
        tonic::transport::Server::builder()
            .add_service(server.clone().into_service())
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stop_rx.await;
            }),
    );

    // Envoy.
    let admin_port = free_port();
    let started = Instant::now();
    let mut envoy = start_envoy(envoy_path, mode, xds_port, admin_port, dir);
    let mut admin = Admin::new(admin_port);
    let want_clusters = (UPSTREAMS + 1) as u64; // plus the static xds_cluster
    let mut last_seen = BTreeMap::new();
    wait_until(
        "all clusters active, none warming, server LIVE",
        STARTUP_TIMEOUT,
        &mut envoy,
        || {
            let s = admin
                .stats("^(cluster_manager\\.(active|warming)_clusters|server\\.state)$")
                .map_err(|e| e.to_string())?;
            let ok = s.get("cluster_manager.active_clusters") == Some(&want_clusters)
                && s.get("cluster_manager.warming_clusters") == Some(&0)
                && s.get("server.state") == Some(&0);
            last_seen = s;
            Ok(ok)
        },
    )
    .map_err(|e| format!("{e}; stats: {last_seen:?}"))?;
    let startup_s = started.elapsed().as_secs_f64();
    // Every cluster's endpoint is the initial one (spot check first, middle, last).
    for u in [0, UPSTREAMS / 2, UPSTREAMS - 1] {
        let cluster = cluster_name(u);
        wait_until("initial endpoints", CHANGE_TIMEOUT, &mut envoy, || {
            Probe::EdsConfigDump
                .check(&mut admin, &cluster, INITIAL_PORT, 0)
                .map_err(|e| e.to_string())
        })?;
    }
    // Let the initial burst of ACKs settle.
    std::thread::sleep(Duration::from_secs(1));

    // Which probe is cheapest?
    let sample = cluster_name(UPSTREAMS / 3);
    let mut probe_costs = Vec::new();
    for probe in [
        Probe::UpdateSuccessStat,
        Probe::EdsConfigDump,
        Probe::ClustersText,
    ] {
        probe_costs.push((probe, median_cost(&mut admin, probe, &sample)?));
    }
    let probe = probe_costs
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|p| p.0)
        .unwrap_or(Probe::UpdateSuccessStat);

    // The changes.
    let mut latencies_ms = Vec::with_capacity(iterations);
    let mut publish_ms = Vec::with_capacity(iterations);
    let mut update_ms = Vec::with_capacity(iterations);
    let mut envoy_side_ms = Vec::with_capacity(iterations);
    let mut polls = 0usize;
    let mut traffic = Traffic {
        port: gateway_port,
        conn: None,
    };
    let mut traffic_ms = Vec::with_capacity(iterations);
    for i in 0..iterations {
        // Upstreams of the first VirtualService are skipped: its 1- and 2-digit paths prefix
        // each other, so a request might match an earlier route.
        let u = (i * 97 + 13) % (UPSTREAMS - 100) + 100;
        let cluster = cluster_name(u);
        // Each mode's backends keep listening until the bench ends: separate port ranges.
        let first_port = match mode {
            Mode::Delta => 20_000,
            Mode::Sotw => 30_000,
        };
        let port = first_port + i as u32;
        spawn_backend(port).map_err(|e| format!("backend on 127.0.0.2:{port}: {e}"))?;
        endpoints.insert(upstream_ref(u), vec![Endpoint::new("127.0.0.2", port)]);
        let update = endpoints.clone();
        let baseline = if probe == Probe::UpdateSuccessStat {
            Probe::update_success(&mut admin, &cluster).map_err(|e| e.to_string())?
        } else {
            0
        };

        let start = Instant::now();
        let proxies = translator.update_endpoints(update);
        let translated = start.elapsed();
        publish(proxies, &cache);
        let published = start.elapsed();
        // First: the data path (Envoy's workers) sends this upstream's traffic to the new
        // endpoint.
        loop {
            if traffic.reaches(u, port).map_err(|e| e.to_string())? {
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
            if start.elapsed() > CHANGE_TIMEOUT {
                envoy.check_running()?;
                return Err(format!(
                    "{}: change {i} ({cluster} -> port {port}) never reached traffic",
                    mode.name()
                ));
            }
        }
        traffic_ms.push(start.elapsed().as_secs_f64() * 1e3);
        loop {
            polls += 1;
            if probe
                .check(&mut admin, &cluster, port, baseline)
                .map_err(|e| e.to_string())?
            {
                break;
            }
            // Admin requests run on Envoy's main thread, where xDS updates are applied too:
            // a gap between polls keeps the probe from delaying what it measures (it adds at
            // most this gap to each sample).
            std::thread::sleep(POLL_GAP);
            if start.elapsed() > CHANGE_TIMEOUT {
                envoy.check_running()?;
                return Err(format!(
                    "{}: change {i} ({cluster} -> port {port}) not seen after {CHANGE_TIMEOUT:?}",
                    mode.name()
                ));
            }
        }
        let seen = start.elapsed();
        let _ = proxies;
        latencies_ms.push(seen.as_secs_f64() * 1e3);
        publish_ms.push(published.as_secs_f64() * 1e3);
        update_ms.push(translated.as_secs_f64() * 1e3);
        envoy_side_ms.push((seen - published).as_secs_f64() * 1e3);
        // The stat says "updated"; check it is this endpoint (outside the timing).
        if probe != Probe::EdsConfigDump
            && !Probe::EdsConfigDump
                .check(&mut admin, &cluster, port, 0)
                .map_err(|e| e.to_string())?
        {
            return Err(format!(
                "{}: {cluster} updated but does not show port {port}",
                mode.name()
            ));
        }
        std::thread::sleep(SETTLE);
    }
    envoy.check_running()?;

    let envoy_rss_mib = rss_mib(&envoy.pid().to_string()).unwrap_or(f64::NAN);
    let cp_rss_mib = rss_mib("self").unwrap_or(f64::NAN);
    let nacks = server.nacks().len();
    for nack in server.nacks().iter().take(3) {
        eprintln!("NACK: {nack:?}");
    }

    drop(envoy);
    let _ = stop_tx.send(());
    let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), serving).await });
    Ok(ModeResult {
        mode,
        traffic_ms,
        latencies_ms,
        publish_ms,
        update_ms,
        envoy_side_ms,
        startup_s,
        envoy_rss_mib,
        cp_rss_mib,
        probe_costs,
        probe,
        polls,
        nacks,
    })
}

// ---------------------------------------------------------------------------------------------
// Report

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Summary {
    min: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

fn summarize(values: &[f64]) -> Summary {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Summary {
        min: sorted.first().copied().unwrap_or(f64::NAN),
        p50: percentile(&sorted, 50.0),
        p99: percentile(&sorted, 99.0),
        max: sorted.last().copied().unwrap_or(f64::NAN),
    }
}

fn report(results: &[ModeResult]) {
    println!();
    println!(
        "{:<6} {:<34} {:>9} {:>9} {:>9} {:>9}",
        "mode", "measure (ms)", "min", "p50", "p99", "max"
    );
    for r in results {
        for (what, values) in [
            ("endpoint change -> traffic uses it", &r.traffic_ms),
            ("endpoint change -> Envoy shows it", &r.latencies_ms),
            ("update_endpoints + publish", &r.publish_ms),
            ("  of which update_endpoints", &r.update_ms),
            ("published -> Envoy shows it", &r.envoy_side_ms),
        ] {
            let s = summarize(values);
            println!(
                "{:<6} {:<34} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                r.mode.name(),
                what,
                s.min,
                s.p50,
                s.p99,
                s.max
            );
        }
    }
    println!();
    println!(
        "{:<6} {:>11} {:>15} {:>16} {:>6} {:>8}  probe used (median cost of each probe)",
        "mode", "startup s", "Envoy RSS MiB", "gloo CP RSS MiB", "NACKs", "polls"
    );
    for r in results {
        let costs: Vec<String> = r
            .probe_costs
            .iter()
            .map(|(p, ms)| format!("{} {ms:.2} ms", p.label()))
            .collect();
        println!(
            "{:<6} {:>11.1} {:>15.1} {:>16.1} {:>6} {:>8}  {} ({})",
            r.mode.name(),
            r.startup_s,
            r.envoy_rss_mib,
            r.cp_rss_mib,
            r.nacks,
            r.polls,
            r.probe.label(),
            costs.join("; ")
        );
    }
    println!();
    for r in results {
        let t = summarize(&r.traffic_ms);
        let s = summarize(&r.latencies_ms);
        println!(
            "{}: endpoint change → Envoy's traffic uses it p50 {:.2} ms p99 {:.2} ms; admin shows it p50 {:.2} ms p99 {:.2} ms (n={}, {UPSTREAMS} upstreams, {ROUTES} routes)",
            r.mode.name(),
            t.p50,
            t.p99,
            s.p50,
            s.p99,
            r.latencies_ms.len()
        );
    }
}

fn main() {
    let iterations: usize = std::env::var("GLOO_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let modes: Vec<Mode> = std::env::var("GLOO_BENCH_MODES")
        .unwrap_or_else(|_| "delta,sotw".to_string())
        .split(',')
        .filter_map(|m| match m.trim() {
            "delta" => Some(Mode::Delta),
            "sotw" => Some(Mode::Sotw),
            _ => None,
        })
        .collect();
    let envoy = match envoy_binary() {
        Ok(path) => path,
        Err(e) => {
            eprintln!("endpoint_latency: {e}");
            std::process::exit(1);
        }
    };
    let dir = std::env::temp_dir().join(format!("gloo-endpoint-latency-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("create log dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    eprintln!(
        "envoy: {}; logs in {}; {UPSTREAMS} kube upstreams, {ROUTES} routes in {VIRTUAL_SERVICES} VirtualServices",
        envoy.display(),
        dir.display()
    );
    let mut results = Vec::new();
    let mut failed = false;
    for mode in modes {
        let gateway_port = free_port();
        let source = config(gateway_port);
        eprintln!("{}: starting", mode.name());
        match run_mode(mode, gateway_port, &envoy, &source, &rt, &dir, iterations) {
            Ok(r) => results.push(r),
            Err(e) => {
                eprintln!("{}: FAILED: {e}", mode.name());
                failed = true;
            }
        }
    }
    report(&results);
    if failed {
        std::process::exit(1);
    }
    let _ = fs::remove_dir_all(&dir);
}
