//! A real Envoy 1.40 (`GLOO_TEST_ENVOY`) for one test: started on a given bootstrap, killed by
//! PID on drop, its logs kept for failure messages.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn envoy_binary() -> PathBuf {
    match std::env::var_os("GLOO_TEST_ENVOY") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "GLOO_TEST_ENVOY is not set: these tests need the real Envoy 1.40 binary. Run \
             scripts/test.sh, or export GLOO_TEST_ENVOY=$(find .tools/venv -path \
             '*envoy/_bin/envoy' -type f -print -quit)"
        ),
    }
}

/// One Envoy process; killed (SIGKILL) and reaped on drop.
pub struct Envoy {
    child: Child,
    stderr: PathBuf,
}

impl Envoy {
    /// Writes `bootstrap` (YAML) into `dir` and starts Envoy on it. `base_id` must be unique
    /// among the Envoys running on the machine (use a port this test holds, e.g. the admin's).
    pub fn start(bootstrap: &str, base_id: u16, dir: &Path) -> Self {
        Self::start_with_args(bootstrap, base_id, dir, &[])
    }

    /// [`Envoy::start`] with more command-line arguments.
    pub fn start_with_args(bootstrap: &str, base_id: u16, dir: &Path, args: &[&str]) -> Self {
        let config = dir.join("envoy.yaml");
        fs::write(&config, bootstrap).expect("write the Envoy bootstrap");
        let stderr = dir.join("envoy.stderr.log");
        let binary = envoy_binary();
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .args(["--base-id", &base_id.to_string()])
            .args(["--concurrency", "1", "--log-level", "warn"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).expect("create the Envoy log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Self { child, stderr }
    }

    /// Envoy's log so far, for failure messages.
    pub fn logs(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Fails with the logs if Envoy exited.
    pub fn check_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("Envoy exited ({status}):\n{}", self.logs());
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A static cluster (bootstrap YAML, under `clusters:`) of one endpoint on 127.0.0.1:`port`,
/// speaking HTTP/2 when `http2` (gRPC services).
pub fn static_cluster(name: &str, port: u16, http2: bool) -> String {
    let h2 = if http2 {
        r#"
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}"#
    } else {
        ""
    };
    format!(
        r#"
  - name: {name}
    type: STATIC
    connect_timeout: 1s{h2}
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}
"#
    )
}

/// A listener (bootstrap YAML, under `listeners:`) on 127.0.0.1:`port` with one HTTP
/// connection manager: one virtual host for every domain with `routes` (YAML list items,
/// indented 14 spaces), then `filters` (list items, indented 10 spaces) before the router.
pub fn http_listener(name: &str, port: u16, routes: &str, filters: &str) -> String {
    format!(
        r#"
  - name: {name}
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:{routes}
          http_filters:{filters}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"#
    )
}
