//! Helpers shared by the end-to-end tests (`mod support;` in each test file): the real Envoy
//! binary and its example bootstraps, the `gloo control-plane` process, child processes that
//! log to files and are killed on drop, free ports, polling, and a raw HTTP/1.1 client.
//!
//! Each test file compiles this module on its own and uses only part of it, hence the
//! module-wide `dead_code` allowance.
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

/// A port nobody listens on right now (the OS picks it; the listener is closed at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

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
    let mut command = Command::new(env!("CARGO_BIN_EXE_gloo"));
    command
        .arg("control-plane")
        .arg("--config")
        .arg(config_dir)
        .arg("--xds-addr")
        .arg(format!("127.0.0.1:{xds_port}"))
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
    /// De-chunked if it was chunked; lossily decoded as UTF-8.
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
