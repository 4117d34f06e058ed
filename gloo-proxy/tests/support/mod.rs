//! Helpers shared by the end-to-end tests (`mod support;` in each test file): the real Envoy
//! binary and its example bootstraps, the `gloo control-plane` process, child processes that
//! log to files and are killed on drop, free ports, polling, and a raw HTTP/1.1 client.
//!
//! Each test file compiles this module on its own and uses only part of it, hence the
//! module-wide `dead_code` allowance. The examples crate's tests include it too
//! (`#[path = "../../gloo-proxy/tests/support/mod.rs"]`), which is why paths are taken from
//! gloo-proxy's directory and the `gloo` binary is found by [`gloo_bin`].
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long anything may take to converge (Envoy start-up, a pushed edit, a NACK).
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The real Envoy 1.40 binary (`GLOO_TEST_ENVOY`, exported by `scripts/test.sh`).
pub fn envoy() -> PathBuf {
    match std::env::var_os("GLOO_TEST_ENVOY") {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "GLOO_TEST_ENVOY is not set: run the suite with scripts/test.sh, which installs Envoy 1.40 and sets it"
        ),
    }
}

/// The `gloo` binary: gloo-proxy's own in its tests, the examples crate's `gloo-cli` (the same
/// command, `gloo_proxy::command::main`) in the examples' tests. Cargo gives a package's tests
/// only that package's binaries.
pub fn gloo_bin() -> &'static str {
    match (
        option_env!("CARGO_BIN_EXE_gloo"),
        option_env!("CARGO_BIN_EXE_gloo-cli"),
    ) {
        (Some(path), _) | (None, Some(path)) => path,
        (None, None) => panic!("this test package builds no `gloo` binary"),
    }
}

/// A port nobody listens on, given to no other test process while this one runs, and outside
/// the range outgoing connections take their ports from (see `gloo-test-ports`: a differential
/// run once gave Envoy's listener and gloo's admin the same port).
pub use gloo_test_ports::free_port;

/// Retries `check` every 100 ms until it succeeds or [`TIMEOUT`] passes; the error names what
/// was awaited and the last thing observed.
pub fn poll<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let start = Instant::now();
    loop {
        match check() {
            Ok(value) => return Ok(value),
            Err(last) if start.elapsed() >= TIMEOUT => {
                return Err(format!(
                    "timed out after {TIMEOUT:?} waiting for {what}; last: {last}"
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Envoy bootstraps

/// Which ADS flavour an Envoy bootstrap uses.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// State-of-the-world ADS (`api_type: GRPC`).
    Sotw,
    /// Incremental ADS (`api_type: DELTA_GRPC`).
    Delta,
}

impl Mode {
    fn example_bootstrap(self) -> PathBuf {
        let file = match self {
            Mode::Sotw => "bootstrap-ads.yaml",
            Mode::Delta => "bootstrap-delta.yaml",
        };
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/envoy")
            .join(file)
    }

    fn api_type(self) -> &'static str {
        match self {
            Mode::Sotw => "api_type: GRPC\n",
            Mode::Delta => "api_type: DELTA_GRPC\n",
        }
    }
}

/// The example bootstrap (`examples/envoy/bootstrap-{ads,delta}.yaml`) for `mode`, pointed at
/// this test's xDS server and admin port.
pub fn bootstrap(mode: Mode, xds_port: u16, admin_port: u16) -> String {
    let path = mode.example_bootstrap();
    let template = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read the example bootstrap {}: {e}", path.display()));
    assert!(
        template.contains(mode.api_type()),
        "{} should say {}",
        path.display(),
        mode.api_type()
    );
    for needle in ["port_value: 9977\n", "port_value: 19001\n"] {
        assert_eq!(
            template.matches(needle).count(),
            1,
            "{} should contain `{}` exactly once",
            path.display(),
            needle.trim()
        );
    }
    template
        .replace("port_value: 9977\n", &format!("port_value: {xds_port}\n"))
        .replace(
            "port_value: 19001\n",
            &format!("port_value: {admin_port}\n"),
        )
}

/// Writes the example bootstrap for `mode` into `dir` and starts Envoy on it (logs in `dir`).
/// Does not wait: poll its admin `/ready` or a listener.
pub fn spawn_envoy(mode: Mode, xds_port: u16, admin_port: u16, dir: &Path) -> Proc {
    let bootstrap_path = dir.join("bootstrap.yaml");
    fs::write(&bootstrap_path, bootstrap(mode, xds_port, admin_port))
        .expect("write the Envoy bootstrap");
    Proc::spawn(
        "envoy",
        Command::new(envoy())
            .arg("-c")
            .arg(&bootstrap_path)
            // Distinct per running Envoy (the admin port is in use while it runs), so
            // several tests' Envoys never share hot-restart shared memory.
            .args(["--base-id", &admin_port.to_string()])
            .args(["--concurrency", "1", "--log-level", "info"])
            .args(["--component-log-level", "config:debug"]),
        dir,
    )
}

// ---------------------------------------------------------------------------------------------
// gloo control-plane

/// Starts `gloo control-plane --config <config_dir> --xds-addr 127.0.0.1:<xds_port>` (plus
/// `--status-file` if given), logging into `log_dir`, and waits until it says it listens.
/// Panics with its logs if it exits or does not get there in time.
pub fn control_plane(
    config_dir: &Path,
    xds_port: u16,
    status_file: Option<&Path>,
    log_dir: &Path,
) -> Proc {
    control_plane_with(config_dir, xds_port, status_file, &[], log_dir)
}

/// [`control_plane`] with more arguments (`--ratelimit-server ADDR`, say).
pub fn control_plane_with(
    config_dir: &Path,
    xds_port: u16,
    status_file: Option<&Path>,
    args: &[String],
    log_dir: &Path,
) -> Proc {
    let mut command = Command::new(gloo_bin());
    command
        .arg("control-plane")
        .arg("--config")
        .arg(config_dir)
        .arg("--xds-addr")
        .arg(format!("127.0.0.1:{xds_port}"))
        .args(args)
        .env("RUST_LOG", "info");
    if let Some(status_file) = status_file {
        command.arg("--status-file").arg(status_file);
    }
    let mut gloo = Proc::spawn("gloo", &mut command, log_dir);
    let ready_line = format!("xDS server listening on 127.0.0.1:{xds_port}");
    if let Err(e) = poll("gloo control-plane to listen", || {
        gloo.check_running()?;
        let stderr = gloo.stderr_text();
        if stderr.contains(&ready_line) {
            Ok(())
        } else {
            Err(format!("no `{ready_line}` in stderr yet"))
        }
    }) {
        panic!("{e}\n{}", gloo.logs());
    }
    gloo
}

// ---------------------------------------------------------------------------------------------
// Gloo YAML

/// A static Upstream `<name>` (namespace `gloo-system`) to 127.0.0.1:`port`, as a YAML document.
pub fn static_upstream_yaml(name: &str, port: u16) -> String {
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  static:\n    hosts: [{{addr: 127.0.0.1, port: {port}}}]\n"
    )
}

/// The Upstream `rate-limit` (127.0.0.1:`rls`) and the Settings `gloo-system.default` naming
/// it as the rate limit server (`requestTimeout: 2s`, plus `server`, lines indented by 4),
/// ending inside its `spec`: the caller appends more `spec` fields (indented by 2).
pub fn rate_limit_settings_yaml(rls: u16, server: &str) -> String {
    format!(
        "{}---\napiVersion: gloo.solo.io/v1\nkind: Settings\nmetadata: {{name: default, namespace: gloo-system}}\nspec:\n  ratelimitServer:\n    ratelimitServerRef: {{name: rate-limit, namespace: gloo-system}}\n    requestTimeout: 2s\n{server}",
        static_upstream_yaml("rate-limit", rls)
    )
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// A child process with its stdout and stderr in files; killed (and reaped) when dropped.
pub struct Proc {
    name: &'static str,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Proc {
    /// Starts `command` with stdin closed and stdout/stderr in `<log_dir>/<name>.std{out,err}.log`.
    pub fn spawn(name: &'static str, command: &mut Command, log_dir: &Path) -> Proc {
        let stdout = log_dir.join(format!("{name}.stdout.log"));
        let stderr = log_dir.join(format!("{name}.stderr.log"));
        let child = command
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("create stdout log"))
            .stderr(File::create(&stderr).expect("create stderr log"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({command:?}): {e}"));
        Proc {
            name,
            child,
            stdout,
            stderr,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout_text(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Both logs, labelled, for a failure message.
    pub fn logs(&self) -> String {
        format!(
            "----- {name} stdout ({out}) -----\n{stdout}\n----- {name} stderr ({err}) -----\n{stderr}\n",
            name = self.name,
            out = self.stdout.display(),
            err = self.stderr.display(),
            stdout = self.stdout_text(),
            stderr = self.stderr_text(),
        )
    }

    /// An error if the process has exited.
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited: {status}", self.name)),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }
}

/// Waits until `proc`'s stderr (`stderr`) or stdout log says `line`; panics with its logs if
/// it exits first or does not in time.
pub fn wait_for_line(proc: &mut Proc, stderr: bool, line: &str) {
    if let Err(e) = poll(&format!("`{line}`"), || {
        proc.check_running()?;
        let text = if stderr {
            proc.stderr_text()
        } else {
            proc.stdout_text()
        };
        if text.contains(line) {
            Ok(())
        } else {
            Err("not yet".into())
        }
    }) {
        panic!("{e}\n{}", proc.logs());
    }
}

impl Proc {
    /// Kills the process now and reaps it (its logs stay readable).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP client

/// An HTTP response as read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// In order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// De-chunked if it was chunked, gunzipped if it says `content-encoding: gzip`; lossily
    /// decoded as UTF-8.
    pub body: String,
}

impl Response {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` on 127.0.0.1:port with HTTP/1.1 and `Connection: close`.
pub fn http_get(port: u16, path: &str) -> io::Result<Response> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    http_raw(port, request.as_bytes(), false)
}

/// Sends `request` to 127.0.0.1:port byte for byte and reads one response. `head` says the
/// request was a HEAD (so the response has no body whatever its headers say). The response's
/// end is found from its framing (Content-Length, chunked, or the connection closing), so a
/// server that keeps the connection open does not stall the read.
pub fn http_raw(port: u16, request: &[u8], head: bool) -> io::Result<Response> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(request)?;
    stream.flush()?;
    read_response(&mut stream, head)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Reads one response (skipping any `100 Continue`) from `stream`.
pub fn read_response(stream: &mut impl Read, head: bool) -> io::Result<Response> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let mut read_more = |raw: &mut Vec<u8>| -> io::Result<bool> {
        let n = stream.read(&mut buf)?;
        raw.extend_from_slice(&buf[..n]);
        Ok(n > 0)
    };
    loop {
        let split = loop {
            if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break split;
            }
            if !read_more(&mut raw)? {
                return Err(invalid(&format!(
                    "connection closed before the end of the response headers; got {:?}",
                    String::from_utf8_lossy(&raw)
                )));
            }
        };
        let head_text = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head_text.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid("bad status line"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        raw.drain(..split + 4);
        if status == 100 {
            continue;
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let body = if head || status == 204 || status == 304 {
            Vec::new()
        } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                if let Some(body) = dechunk(&raw) {
                    break body;
                }
                if !read_more(&mut raw)? {
                    return Err(invalid("bad chunked body"));
                }
            }
        } else if let Some(length) = header("content-length") {
            let length: usize = length.parse().map_err(|_| invalid("bad content-length"))?;
            while raw.len() < length {
                if !read_more(&mut raw)? {
                    return Err(invalid("connection closed before the end of the body"));
                }
            }
            raw[..length].to_vec()
        } else {
            while read_more(&mut raw)? {}
            raw
        };
        // A gzipped body is compared by what it says, not how a compressor packed it.
        let body = if header("content-encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip")) {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(body.as_slice()),
                &mut plain,
            )
            .map_err(|e| invalid(&format!("bad gzip body: {e}")))?;
            plain
        } else {
            body
        };
        return Ok(Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
}

/// The payload of a complete chunked body, or `None` if it is incomplete or malformed.
pub fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// `text` without terminal colour codes, as lines.
pub fn plain_lines(text: &str) -> Vec<String> {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain.lines().map(str::to_string).collect()
}

// ---------------------------------------------------------------------------------------------
// A scriptable HTTP/1.1 backend

/// What a [`Backend`] answers to requests other than its health checks; can be changed while
/// it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 to everything.
    Ok,
    /// This status to everything.
    Status(u16),
    /// 503 to the 1st, 3rd, 5th... request (counted from when the behaviour was set), 200 to
    /// the others.
    FailEveryOther,
    /// Wait this many milliseconds, then 200.
    DelayMs(u64),
}

/// The path a [`Backend`] answers with its health status instead of its behaviour.
pub const HEALTH_PATH: &str = "/healthz";

/// A request as a [`Backend`] read it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The request target exactly as received.
    pub target: String,
    /// In order, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct BackendState {
    name: String,
    behaviour: std::sync::Mutex<(Behaviour, u64)>,
    health_status: std::sync::atomic::AtomicU16,
    health_checks: std::sync::atomic::AtomicU64,
    seen: std::sync::Mutex<Vec<Seen>>,
    in_flight: std::sync::atomic::AtomicU32,
    max_in_flight: std::sync::atomic::AtomicU32,
    ambiguous: std::sync::Mutex<Vec<String>>,
}

/// An HTTP/1.1 backend on 127.0.0.1 (a free port) that records every request it reads and
/// answers as its [`Behaviour`] says, with `x-backend: NAME` and its name as the body.
/// `GET /healthz` is answered with the health status (200 unless set) and only counted.
///
/// Its parser prefers `Content-Length` when a request also says `Transfer-Encoding` (as a
/// lenient origin server would), so a proxy that forwards ambiguous framing lets a smuggled
/// request through to it; such requests are also recorded in [`Backend::ambiguous`].
/// It serves keep-alive connections, each on its own thread, for the life of the test process.
#[derive(Clone, Debug)]
pub struct Backend {
    pub name: String,
    pub port: u16,
    state: std::sync::Arc<BackendState>,
}

impl Backend {
    /// Starts a backend named `name`.
    pub fn start(name: &str) -> Backend {
        use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a backend");
        let port = listener.local_addr().expect("backend address").port();
        let state = std::sync::Arc::new(BackendState {
            name: name.to_string(),
            behaviour: std::sync::Mutex::new((Behaviour::Ok, 0)),
            health_status: AtomicU16::new(200),
            health_checks: AtomicU64::new(0),
            seen: std::sync::Mutex::new(Vec::new()),
            in_flight: AtomicU32::new(0),
            max_in_flight: AtomicU32::new(0),
            ambiguous: std::sync::Mutex::new(Vec::new()),
        });
        let accept_state = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = accept_state.clone();
                std::thread::spawn(move || {
                    let _ = backend_connection(stream, &state);
                });
            }
        });
        Backend {
            name: name.to_string(),
            port,
            state,
        }
    }

    /// Changes what it answers from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = (behaviour, 0);
    }

    /// The status `GET /healthz` gets from now on.
    pub fn set_health(&self, status: u16) {
        self.state
            .health_status
            .store(status, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many health checks it answered.
    pub fn health_checks(&self) -> u64 {
        self.state
            .health_checks
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every request other than health checks, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// How many requests other than health checks arrived.
    pub fn count(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }

    /// The most requests it was ever answering at once.
    pub fn max_in_flight(&self) -> u32 {
        self.state
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Requests that arrived with ambiguous framing (both `Content-Length` and
    /// `Transfer-Encoding`, several `Content-Length`s, or a `Transfer-Encoding` other than
    /// `chunked`), as their request lines.
    pub fn ambiguous(&self) -> Vec<String> {
        self.state.ambiguous.lock().unwrap().clone()
    }
}

fn backend_line(reader: &mut impl io::BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

/// Reads one request; `None` when the peer closed the connection between requests.
fn backend_request(
    reader: &mut impl io::BufRead,
    state: &BackendState,
) -> io::Result<Option<Seen>> {
    let request_line = loop {
        match backend_line(reader)? {
            None => return Ok(None),
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut parts = request_line.splitn(3, ' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(invalid("bad request line"));
    };
    let mut headers = Vec::new();
    loop {
        let line = backend_line(reader)?.ok_or_else(|| invalid("eof in headers"))?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("bad header line"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let lengths: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k == "content-length")
        .map(|(_, v)| v.as_str())
        .collect();
    let codings: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k == "transfer-encoding")
        .map(|(_, v)| v.as_str())
        .collect();
    let ambiguous = lengths.len() > 1
        || (!lengths.is_empty() && !codings.is_empty())
        || codings.len() > 1
        || codings
            .first()
            .is_some_and(|c| !c.trim().eq_ignore_ascii_case("chunked"));
    if ambiguous {
        state.ambiguous.lock().unwrap().push(request_line.clone());
    }
    let mut body = Vec::new();
    // Lenient on purpose: Content-Length first (see `Backend`).
    if let Some(length) = lengths.first() {
        let length: usize = length
            .trim()
            .parse()
            .map_err(|_| invalid("bad content-length"))?;
        body = vec![0; length];
        reader.read_exact(&mut body)?;
    } else if !codings.is_empty() {
        loop {
            let size_line = backend_line(reader)?.ok_or_else(|| invalid("eof in chunks"))?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                while backend_line(reader)?.is_some_and(|l| !l.is_empty()) {}
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            backend_line(reader)?;
        }
    }
    Ok(Some(Seen {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body,
    }))
}

fn backend_connection(stream: TcpStream, state: &BackendState) -> io::Result<()> {
    use std::sync::atomic::Ordering;
    // Proxies keep idle upstream connections open; a thread per connection just waits.
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.set_nodelay(true)?;
    let mut reader = io::BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some(request) = backend_request(&mut reader, state)? {
        let close = request
            .header("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("close"));
        let status = if request.method == "GET" && request.target == HEALTH_PATH {
            state.health_checks.fetch_add(1, Ordering::SeqCst);
            state.health_status.load(Ordering::SeqCst)
        } else {
            state.seen.lock().unwrap().push(request);
            let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            state.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let behaviour = {
                let mut b = state.behaviour.lock().unwrap();
                b.1 += 1;
                *b
            };
            let status = match behaviour {
                (Behaviour::Ok, _) => 200,
                (Behaviour::Status(s), _) => s,
                (Behaviour::FailEveryOther, n) if n % 2 == 1 => 503,
                (Behaviour::FailEveryOther, _) => 200,
                (Behaviour::DelayMs(ms), _) => {
                    std::thread::sleep(Duration::from_millis(ms));
                    200
                }
            };
            state.in_flight.fetch_sub(1, Ordering::SeqCst);
            status
        };
        let body = &state.name;
        let mut head = format!(
            "HTTP/1.1 {status} Test\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nx-backend: {}\r\n",
            body.len(),
            state.name
        );
        if close {
            head.push_str("connection: close\r\n");
        }
        head.push_str("\r\n");
        // One write: a second small one would wait for the proxy's delayed ACK (Nagle).
        head.push_str(body);
        writer.write_all(head.as_bytes())?;
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// gloo run, gloo proxy and their admin endpoint

/// Starts `gloo <args...> --admin 127.0.0.1:<admin>` (logging into `log_dir` as `name`) and
/// waits until its admin `/ready` answers 200. Panics with its logs if it exits or does not
/// get there in time.
pub fn gloo_ready(name: &'static str, args: &[&str], admin: u16, log_dir: &Path) -> Proc {
    gloo_ready_with_env(name, args, &[], admin, log_dir)
}

/// [`gloo_ready`] with these environment variables set for gloo.
pub fn gloo_ready_with_env(
    name: &'static str,
    args: &[&str],
    env: &[(&str, &str)],
    admin: u16,
    log_dir: &Path,
) -> Proc {
    let mut gloo = Proc::spawn(
        name,
        Command::new(gloo_bin())
            .args(args)
            .arg("--admin")
            .arg(format!("127.0.0.1:{admin}"))
            .env("RUST_LOG", "info")
            .envs(env.iter().copied()),
        log_dir,
    );
    if let Err(e) = poll(&format!("{name}'s admin /ready"), || {
        gloo.check_running()?;
        let r = http_get(admin, "/ready").map_err(|e| e.to_string())?;
        if r.status == 200 {
            Ok(())
        } else {
            Err(format!("{} {}", r.status, r.body.trim()))
        }
    }) {
        panic!("{e}\n{}", gloo.logs());
    }
    gloo
}

/// Starts `gloo run --config <config_dir> --admin 127.0.0.1:<admin>` and waits until it is
/// ready (see [`gloo_ready`]).
pub fn gloo_run(config_dir: &Path, admin: u16, log_dir: &Path) -> Proc {
    let config = config_dir.display().to_string();
    gloo_ready("gloo-run", &["run", "--config", &config], admin, log_dir)
}

/// Polls `get` until `ready` holds of its answer; panics (naming `what` and the last answer)
/// if it does not in time or `gloo` exits.
pub fn wait_for_answer(
    gloo: &mut Proc,
    what: &str,
    get: impl Fn() -> io::Result<Response>,
    ready: impl Fn(&Response) -> bool,
) {
    if let Err(e) = poll(what, || {
        gloo.check_running()?;
        let r = get().map_err(|e| e.to_string())?;
        if ready(&r) {
            Ok(())
        } else {
            Err(format!("{} {:?}", r.status, r.headers))
        }
    }) {
        panic!("{e}");
    }
}

/// Waits until `port` answers `path` with 200 from the [`Backend`] named `backend`; panics
/// naming the last answer if it does not in time.
pub fn wait_served(port: u16, path: &str, backend: &str) {
    let result = poll(&format!("{path} on :{port} to reach {backend}"), || {
        let r = http_get(port, path).map_err(|e| e.to_string())?;
        if r.status == 200 && r.header("x-backend") == Some(backend) {
            Ok(())
        } else {
            Err(format!("{} {:?} {}", r.status, r.headers, r.body))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// `GET path` on the admin endpoint; panics if it does not answer 200.
pub fn admin_get(admin: u16, path: &str) -> String {
    let r = http_get(admin, path).unwrap_or_else(|e| panic!("admin {path}: {e}"));
    assert_eq!(r.status, 200, "admin {path}: {}", r.body);
    r.body
}

/// The value of the Prometheus sample `metric{cluster_name="<cluster>"}` at the admin
/// endpoint's `/stats/prometheus`; `None` if there is no such sample.
pub fn cluster_stat(admin: u16, metric: &str, cluster: &str) -> Option<f64> {
    let text = admin_get(admin, "/stats/prometheus");
    let prefix = format!("{metric}{{cluster_name=\"{cluster}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether each endpoint of `cluster` is healthy, by address, as the admin `/config_dump`'s
/// `live_endpoints` says.
pub fn live_endpoints(admin: u16, cluster: &str) -> Vec<(String, bool)> {
    let dump: serde_json::Value = serde_json::from_str(&admin_get(admin, "/config_dump"))
        .unwrap_or_else(|e| panic!("/config_dump is not JSON: {e}"));
    dump["live_endpoints"][cluster]
        .as_array()
        .map(|endpoints| {
            endpoints
                .iter()
                .map(|e| {
                    (
                        e["address"].as_str().unwrap_or_default().to_string(),
                        e["healthy"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `contents` to `path` atomically (a hidden file beside it, then a rename), as
/// Kubernetes' volume updates and careful editors do: a watcher never reads half a file.
pub fn write_atomically(path: &Path, contents: &str) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    fs::write(&tmp, contents).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

/// Every file of a config directory with its contents, for a failure message.
pub fn config_files_text(dir: &Path) -> String {
    let mut out = String::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for path in entries {
        out.push_str(&format!(
            "--- {}\n{}\n",
            path.display(),
            fs::read_to_string(&path).unwrap_or_default()
        ));
    }
    out
}

/// Prints the config directory and these processes' logs if the test fails while it is alive.
pub struct LogsOnPanic<'a>(pub &'a Path, pub Vec<&'a Proc>);

impl Drop for LogsOnPanic<'_> {
    fn drop(&mut self) {
        print_logs_if_panicking(self.0, &self.1);
    }
}

/// Prints the config directory and every process's logs if the current thread is panicking
/// (call it from a test fixture's `Drop`).
pub fn print_logs_if_panicking(config_dir: &Path, procs: &[&Proc]) {
    if !std::thread::panicking() {
        return;
    }
    let mut text = format!("===== config {} =====\n", config_dir.display());
    text.push_str(&config_files_text(config_dir));
    for p in procs {
        text.push_str(&p.logs());
    }
    eprintln!("{text}");
}

// ---------------------------------------------------------------------------------------------
// gRPC peers

/// The Python with grpcio that `scripts/test.sh` installs (`GLOO_TEST_PYTHON`).
pub fn python() -> PathBuf {
    match std::env::var_os("GLOO_TEST_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "GLOO_TEST_PYTHON is not set: run the suite with scripts/test.sh, which installs grpcio and sets it"
        ),
    }
}

/// A script under `tests/grpc/`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../gloo-proxy/tests/grpc")
        .join(name)
}

/// Starts a Python gRPC backend answering with `name` (logs in `log_dir`) and waits until it
/// prints `ready`.
pub fn grpc_backend(name: &'static str, port: u16, log_dir: &Path) -> Proc {
    grpc_backend_with(name, port, log_dir, &[])
}

/// Runs `tests/grpc/client.py` against gloo on `port` (plaintext HTTP/2) for `calls` calls of
/// `/gloo.test.Echo/Call` and returns its JSON report of answers by backend.
pub fn grpc_calls(port: u16, calls: u32) -> String {
    let out = Command::new(python())
        .arg(script("client.py"))
        .args([format!("127.0.0.1:{port}"), calls.to_string()])
        .output()
        .expect("run the gRPC client");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "client failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// [`grpc_backend`] with extra arguments for `backend.py` (a certificate and key: TLS).
pub fn grpc_backend_with(name: &'static str, port: u16, log_dir: &Path, extra: &[&Path]) -> Proc {
    let mut backend = Proc::spawn(
        name,
        Command::new(python())
            .arg(script("backend.py"))
            .args([name, &port.to_string()])
            .args(extra),
        log_dir,
    );
    if let Err(e) = poll(&format!("backend {name} to print `ready`"), || {
        backend.check_running()?;
        match backend.stdout_text().lines().next() {
            Some("ready") => Ok(()),
            other => Err(format!("first line of stdout: {other:?}")),
        }
    }) {
        panic!("{e}\n{}", backend.logs());
    }
    backend
}

/// Serves every connection to a new port on 127.0.0.1 with `serve`, each in a task of a
/// current-thread runtime on a thread of its own, for the life of the test process, and
/// returns the port.
pub fn serve_on_thread<F, Fut>(what: &str, serve: F) -> u16
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind {what}: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{what} address: {e}"))
        .port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream));
            }
        });
    });
    port
}

// ---------------------------------------------------------------------------------------------
// Certificates

/// Runs `openssl ARGS` in `dir`; panics with its stderr if it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.crt`), and certificates it signed for each name (`<name>.crt`, `<name>.key`),
/// made by `openssl` in `dir`.
pub fn certificates(dir: &Path, names: &[&str]) {
    certificate_authority(dir);
    for name in names {
        signed_certificate(dir, name, &format!("/CN={name}"), &format!("DNS:{name}"));
    }
}

/// A CA, `ca.crt` and `ca.key`, made by `openssl` in `dir`.
pub fn certificate_authority(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
}

/// `<name>.crt` and `<name>.key` in `dir`, signed by its CA (see [`certificate_authority`]),
/// with `subject` (`/CN=...`) and `sans` (`DNS:a,URI:b`).
pub fn signed_certificate(dir: &Path, name: &str, subject: &str, sans: &str) {
    let (key, csr, crt, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    fs::write(dir.join(&ext), format!("subjectAltName={sans}\n")).expect("write ext");
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", &key, "-out", &csr,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ],
    );
}

/// A Gateway `gw` in gloo-system serving HTTP on 127.0.0.1:`port`.
pub fn gateway_yaml(port: u16) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n  httpGateway: {{}}\n"
    )
}

/// Writes `dir/kubeconfig`, a kubeconfig for the API server at `server` (a fake: no
/// credentials); returns its path.
pub fn kubeconfig(dir: &Path, server: &str) -> String {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: '{server}'}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: nobody}}\ncurrent-context: fake\nusers:\n- name: nobody\n  user: {{}}\n"
        ),
    )
    .expect("write kubeconfig");
    path.display().to_string()
}

/// How many times `gloo`'s log says it translated the config in full (one `config generation N
/// served` line per translation; discovered endpoint changes are served without one).
pub fn translations(gloo: &Proc) -> usize {
    gloo.stderr_text()
        .lines()
        .filter(|l| l.contains("config generation") && l.contains("served to"))
        .count()
}

/// The `x-backend` of each of `n` answers to `GET /` on `port` (`-` for an answer without one).
pub fn backends_answering(port: u16, n: usize) -> std::collections::BTreeSet<String> {
    (0..n)
        .map(|_| match http_get(port, "/") {
            Ok(r) if r.status == 200 => r.header("x-backend").unwrap_or("-").to_string(),
            Ok(r) => format!("status {}", r.status),
            Err(e) => format!("error {e}"),
        })
        .collect()
}

/// Polls until `n` answers on `port` come from exactly `names`; panics (with gloo's logs)
/// otherwise.
pub fn wait_for_backends(gloo: &mut Proc, port: u16, names: &[&str], n: usize) {
    let want: std::collections::BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    if let Err(e) = poll(&format!("traffic to exactly {names:?}"), || {
        gloo.check_running()?;
        let seen = backends_answering(port, n);
        if seen == want {
            Ok(())
        } else {
            Err(format!("answered by {seen:?}"))
        }
    }) {
        panic!("{e}\n{}", gloo.logs());
    }
}

/// An HTTPS backend (Python's `http.server` over TLS) on 127.0.0.1 with the certificate
/// `DIR/NAME.crt` (see [`certificates`]): it answers `tls-ok <Host> sni=<SNI or ->` to every
/// GET. Returns it with its port once it listens.
pub fn tls_backend(dir: &Path, name: &str) -> (Proc, u16) {
    let port = free_port();
    let script = dir.join("tls_backend.py");
    fs::write(
        &script,
        r#"import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        sni = getattr(self.connection, "sni", None) or "-"
        body = b"tls-ok " + self.headers.get("host", "").encode() + b" sni=" + sni.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
def remember_sni(sock, name, _):
    sock.sni = name
ctx.sni_callback = remember_sni
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
"#,
    )
    .expect("write backend script");
    let proc = Proc::spawn(
        "tls-backend",
        Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(dir.join(format!("{name}.crt")))
            .arg(dir.join(format!("{name}.key"))),
        dir,
    );
    let mut proc = proc;
    poll("the TLS backend", || {
        proc.check_running()?;
        if proc.stdout_text().contains("ready") {
            Ok(())
        } else {
            Err("not ready".into())
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    (proc, port)
}

/// What curl got back over HTTPS.
pub struct Curl {
    pub status: u16,
    pub http_version: String,
    pub body: String,
}

/// `curl https://HOST:PORT/` with `HOST` resolved to 127.0.0.1 and the server's certificate
/// checked against `ca`, plus `extra` arguments; an error is curl's own message.
pub fn curl_https(port: u16, host: &str, ca: &Path, extra: &[&str]) -> Result<Curl, String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
        // The Host header without the port, so the VirtualService's domain matches it.
        .args(["-H", &format!("Host: {host}")])
        .args(["-w", "\n%{http_code} %{http_version}"])
        .args(extra)
        .arg(format!("https://{host}:{port}/"))
        .output()
        .map_err(|e| format!("run curl: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').ok_or("no status line from curl")?;
    let (code, version) = tail.split_once(' ').ok_or("bad curl status line")?;
    Ok(Curl {
        status: code.parse().map_err(|_| format!("bad status {code}"))?,
        http_version: version.to_string(),
        body: body.to_string(),
    })
}

/// The same Gloo config served side by side: by a real Envoy (through `gloo control-plane`,
/// delta ADS) from `<envoy_dir>/config`, and by `gloo run` from `<gloo_dir>/config`; each
/// directory gets its processes' logs. The processes stop when this is dropped.
pub struct SideBySide {
    pub control_plane: Proc,
    pub envoy: Proc,
    pub gloo: Proc,
}

impl SideBySide {
    /// Starts the three processes.
    pub fn start(envoy_dir: &Path, gloo_dir: &Path) -> SideBySide {
        let (xds, envoy_admin, gloo_admin) = (free_port(), free_port(), free_port());
        SideBySide {
            control_plane: control_plane(&envoy_dir.join("config"), xds, None, envoy_dir),
            envoy: spawn_envoy(Mode::Delta, xds, envoy_admin, envoy_dir),
            gloo: gloo_run(&gloo_dir.join("config"), gloo_admin, gloo_dir),
        }
    }

    /// Its processes, and `others`, for [`LogsOnPanic`].
    pub fn with<'a>(&'a self, others: &[&'a Proc]) -> Vec<&'a Proc> {
        let mut all = vec![&self.gloo, &self.envoy, &self.control_plane];
        all.extend_from_slice(others);
        all
    }
}
