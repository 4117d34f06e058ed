//! A real OpenID Provider for one test: panva's oidc-provider 8 under Node
//! (`oidc_provider.mjs` for browser logins, `oidc_provider_machine.mjs` for client-credentials
//! access tokens; `GLOO_TEST_OIDC_NODE_PATH` points at its node_modules), started on a free
//! loopback port and killed by PID on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::redis_server::{free_port, wait_until_listening};

/// The node_modules holding oidc-provider, from `GLOO_TEST_OIDC_NODE_PATH`.
fn node_path() -> String {
    match std::env::var("GLOO_TEST_OIDC_NODE_PATH") {
        Ok(path) if !path.is_empty() => path,
        _ => panic!(
            "GLOO_TEST_OIDC_NODE_PATH is not set: these tests need a real OpenID Provider. Install \
             it (npm install oidc-provider@8 in a directory) and export \
             GLOO_TEST_OIDC_NODE_PATH=<that directory>/node_modules, or run scripts/test.sh"
        ),
    }
}

/// One provider process.
pub struct OidcProvider {
    child: Option<Child>,
    port: u16,
}

impl OidcProvider {
    /// Starts a provider with these clients (oidc-provider client metadata, as JSON) and waits
    /// until it accepts connections.
    pub fn start(clients: &serde_json::Value) -> Self {
        Self::start_script("oidc_provider.mjs", clients)
    }

    /// Starts the provider script `script` (in tests/support) with these clients.
    pub fn start_script(script: &str, clients: &serde_json::Value) -> Self {
        let port = free_port();
        // Through the workspace, so the gloo-proxy tests that include this module find it too.
        let script = format!(
            "{}/../gloo-filters/tests/support/{script}",
            env!("CARGO_MANIFEST_DIR")
        );
        let child = Command::new("node")
            .arg(&script)
            .env("GLOO_TEST_OIDC_NODE_PATH", node_path())
            .env("OIDC_PORT", port.to_string())
            .env("OIDC_CLIENTS", clients.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node {script}: {e}"));
        let mut provider = Self {
            child: Some(child),
            port,
        };
        if let Some(child) = provider.child.as_mut() {
            wait_until_listening(child, port, Duration::from_secs(30), "the OpenID Provider");
        }
        provider
    }

    /// `http://127.0.0.1:<port>`, the issuer.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `path` on the provider.
    #[allow(dead_code)] // not every test binary that includes this module calls it
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
