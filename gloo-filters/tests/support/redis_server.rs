//! A real `redis-server` for one test: started on a free loopback port, killed by PID on drop.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The `redis-server` binary, from `GLOO_TEST_REDIS_SERVER` (set by `scripts/test.sh`).
fn redis_server_binary() -> PathBuf {
    match std::env::var_os("GLOO_TEST_REDIS_SERVER") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "GLOO_TEST_REDIS_SERVER is not set: these tests need a real redis-server. Install it \
             (apt-get install -y redis-server) and export \
             GLOO_TEST_REDIS_SERVER=$(command -v redis-server), or run scripts/test.sh"
        ),
    }
}

/// A free TCP port on 127.0.0.1 for Redis, given to no other test process while this one runs.
pub use gloo_test_ports::free_port;

/// Waits until `child` listens on 127.0.0.1:`port`; panics if it exits first or does not
/// listen `within`.
pub fn wait_until_listening(child: &mut Child, port: u16, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening on 127.0.0.1:{port}: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on 127.0.0.1:{port} within {within:?}"
        );
        sleep(Duration::from_millis(20));
    }
}

/// One `redis-server` process; killed (SIGKILL) and reaped on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts a server on `port` (e.g. to restart one) and waits until it accepts connections.
    pub fn start_on(port: u16) -> Self {
        let binary = redis_server_binary();
        let child = Command::new(&binary)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut server = Self {
            child: Some(child),
            port,
        };
        if let Some(child) = server.child.as_mut() {
            wait_until_listening(child, port, Duration::from_secs(10), "redis-server");
        }
        server
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the server's PID.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Kills the server now (SIGKILL) and waits until the port is closed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
