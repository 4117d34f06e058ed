//! Global rate limits end to end through `gloo run`: a config directory with Settings
//! `ratelimitServer` and descriptors, VirtualServices with `ratelimit` actions and
//! `ratelimitBasic`, translated by gloo-core into Envoy's rate limit filter and served by
//! gloo-proxy, whose filter calls the rate limit service `gloo run` hosts
//! (`--ratelimit-server`) through the Settings' Upstream, counting in memory or in a real
//! Redis (`GLOO_TEST_REDIS_SERVER`).
//!
//! Windows are a day long, so a test never straddles one (it would have to run across
//! midnight UTC). Everything listens on 127.0.0.1 on free ports; processes are killed when the
//! test ends, and on failure the config and the logs are printed.

#![cfg(feature = "ratelimit")]

#[path = "../../gloo-filters/tests/support/redis_server.rs"]
#[allow(dead_code)] // the gloo-filters tests use more of it
mod redis_server;
mod support;

use std::fs;
use std::path::{Path, PathBuf};

use redis_server::RedisServer;
use support::{
    free_port, gloo_ready, http_raw, poll, print_logs_if_panicking, rate_limit_settings_yaml,
    static_upstream_yaml, write_atomically, Backend, Proc, Response,
};

/// One `gloo run`: its Gateway's port, the rate limit service it hosts, its config.
struct Gloo {
    port: u16,
    rls: u16,
    dir: PathBuf,
    proc: Proc,
}

/// The Gateway, the backend's Upstream, the rate limit service's Upstream (pointing at `rls`)
/// and the Settings naming it, with `settings` added to `spec.ratelimitServer` and
/// `descriptors` as `spec.ratelimit.descriptors`.
fn base_config(port: u16, rls: u16, backend: &Backend, server: &str, descriptors: &str) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n  httpGateway: {{}}\n---\n{}---\n{}  ratelimit:\n    descriptors:\n{descriptors}",
        static_upstream_yaml("app", backend.port),
        rate_limit_settings_yaml(rls, server),
    )
}

/// A VirtualService for every host, its `virtual_host` YAML indented by 4.
fn vs(virtual_host: &str) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: app, namespace: gloo-system}}\nspec:\n  virtualHost:\n{}",
        virtual_host
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    )
}

/// 3 a day per `generic_key: per-day`.
const PER_DAY: &str =
    "    - key: generic_key\n      value: per-day\n      rateLimit: {requestsPerUnit: 3, unit: DAY}\n";

/// `/limited` takes from `per-day`, `/free` from nothing.
const LIMITED_VS: &str = "domains: ['*']
routes:
- matchers: [{prefix: /limited}]
  options:
    ratelimit:
      rateLimits:
      - actions: [{genericKey: {descriptorValue: per-day}}]
  routeAction: {single: {upstream: {name: app, namespace: gloo-system}}}
- matchers: [{prefix: /}]
  routeAction: {single: {upstream: {name: app, namespace: gloo-system}}}
";

impl Gloo {
    /// Writes the config (`base` then `vs`) and starts `gloo run` hosting the rate limit
    /// service on a free port (`redis`: where it counts; `--ratelimit-server off` when
    /// `host` is false), waiting until `GET /` is routed.
    fn start(
        root: &Path,
        name: &'static str,
        config: impl Fn(u16, u16) -> String,
        redis: Option<&str>,
        host: bool,
    ) -> Gloo {
        let dir = root.join(name);
        fs::create_dir_all(&dir).expect("config dir");
        let (port, rls, admin) = (free_port(), free_port(), free_port());
        fs::write(dir.join("config.yaml"), config(port, rls)).expect("write config");
        let dir_arg = dir.display().to_string();
        let listen = if host {
            format!("127.0.0.1:{rls}")
        } else {
            "off".to_string()
        };
        let mut args = vec!["run", "--config", &dir_arg, "--ratelimit-server", &listen];
        if let Some(url) = redis {
            args.extend(["--redis-url", url]);
        }
        let proc = gloo_ready(name, &args, admin, root);
        let mut gloo = Gloo {
            port,
            rls,
            dir,
            proc,
        };
        if host {
            let line = format!("rate limit service listening on 127.0.0.1:{rls}");
            let proc = &mut gloo.proc;
            if let Err(e) = poll("the rate limit service to listen", || {
                proc.check_running()?;
                proc.stderr_text()
                    .contains(&line)
                    .then_some(())
                    .ok_or_else(|| format!("no `{line}` yet"))
            }) {
                panic!("{e}");
            }
        }
        gloo.wait("GET /free to be routed", |r| r.status == 200);
        gloo
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n");
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        http_raw(self.port, request.as_bytes(), false)
            .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", self.port))
    }

    fn status(&self, path: &str, headers: &[(&str, &str)]) -> u16 {
        self.get(path, headers).status
    }

    /// Polls `GET /free` until `ready` holds.
    fn wait(&mut self, what: &str, ready: impl Fn(&Response) -> bool) {
        let port = self.port;
        let proc = &mut self.proc;
        if let Err(e) = poll(what, || {
            proc.check_running()?;
            let r = http_raw(
                port,
                b"GET /free HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n",
                false,
            )
            .map_err(|e| e.to_string())?;
            if ready(&r) {
                Ok(())
            } else {
                Err(format!("{} {:?}", r.status, r.headers))
            }
        }) {
            panic!("{e}");
        }
    }

    /// Replaces the config and waits until the rate limit service says it changed.
    fn edit(&self, config: &str, applied: impl Fn(&Gloo) -> bool) {
        write_atomically(&self.dir.join("config.yaml"), config);
        if let Err(e) = poll("the edit to be applied", || {
            if applied(self) {
                Ok(())
            } else {
                Err("not yet".to_string())
            }
        }) {
            panic!("{e}");
        }
    }
}

/// A failing test prints the config and the logs.
impl Drop for Gloo {
    fn drop(&mut self) {
        print_logs_if_panicking(&self.dir, &[&self.proc]);
    }
}

#[test]
fn settings_descriptors_limit_a_route_and_an_edit_applies_live() {
    let root = tempfile::tempdir().expect("tempdir");
    let backend = Backend::start("app");
    // `key` names the descriptor (in the Settings and in the route's action), `limit` its
    // budget.
    let config = |key: &'static str, limit: u32| {
        let backend = backend.clone();
        move |port, rls| {
            let descriptors = PER_DAY
                .replace("requestsPerUnit: 3", &format!("requestsPerUnit: {limit}"))
                .replace("per-day", key);
            base_config(
                port,
                rls,
                &backend,
                "    enableXRatelimitHeaders: true\n",
                &descriptors,
            ) + "---\n"
                + &vs(&LIMITED_VS.replace("per-day", key))
        }
    };
    let gloo = Gloo::start(root.path(), "gloo-run", config("per-day", 3), None, true);

    // The budget: 3, then 429 with Envoy's headers; the backend sees only the 3.
    let before = backend.count();
    for remaining in ["2", "1", "0"] {
        let r = gloo.get("/limited", &[]);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("x-ratelimit-limit"), Some("3, 3;w=86400"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some(remaining));
    }
    let refused = gloo.get("/limited", &[]);
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(refused.header("x-envoy-ratelimited"), Some("true"));
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(refused.body, "");
    assert_eq!(backend.count(), before + 3);
    // Another route of the virtual host has no rate limits.
    assert_eq!(gloo.status("/free", &[]), 200);

    // An edit, live: another descriptor of 2 a day, for the proxy and the service alike.
    // Until both have it, a request gets either the old 429 or no limit at all (a descriptor
    // the service does not know has none); the first answer under the new rules says so.
    let edited = config("edited", 2)(gloo.port, gloo.rls);
    gloo.edit(&edited, |g| {
        let r = g.get("/limited", &[]);
        r.header("x-ratelimit-limit") == Some("2, 2;w=86400")
    });
    let last = gloo.get("/limited", &[]);
    assert_eq!(last.status, 200, "{last:?}");
    assert_eq!(last.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(gloo.status("/limited", &[]), 429);
}

#[test]
fn two_proxies_counting_in_one_redis_share_one_budget() {
    let redis = RedisServer::start();
    let url = redis.url();
    let root = tempfile::tempdir().expect("tempdir");
    let backend = Backend::start("app");
    let config =
        |port, rls| base_config(port, rls, &backend, "", PER_DAY) + "---\n" + &vs(LIMITED_VS);
    let a = Gloo::start(root.path(), "gloo-a", config, Some(&url), true);
    let b = Gloo::start(root.path(), "gloo-b", config, Some(&url), true);
    // Each hosts its own rate limit service; both count in the one Redis: 3 in all.
    assert_eq!(a.status("/limited", &[]), 200);
    assert_eq!(b.status("/limited", &[]), 200);
    assert_eq!(a.status("/limited", &[]), 200);
    assert_eq!(b.status("/limited", &[]), 429);
    assert_eq!(a.status("/limited", &[]), 429);
}

#[test]
fn failure_mode_deny_decides_when_the_rate_limit_service_is_down() {
    // Nothing listens where the Settings' Upstream points (`--ratelimit-server off`).
    let root = tempfile::tempdir().expect("tempdir");
    let backend = Backend::start("app");
    let config = |deny: bool| {
        let backend = backend.clone();
        move |port, rls| {
            base_config(
                port,
                rls,
                &backend,
                &format!("    denyOnFail: {deny}\n"),
                PER_DAY,
            ) + "---\n"
                + &vs(LIMITED_VS)
        }
    };
    let gloo = Gloo::start(root.path(), "gloo-run", config(false), None, false);
    // Fail open (Gloo's default): the limited route is served, as often as asked.
    for _ in 0..5 {
        assert_eq!(gloo.status("/limited", &[]), 200);
    }
    // `denyOnFail: true`: Envoy's 500, the backend not reached.
    let edited = config(true)(gloo.port, gloo.rls);
    gloo.edit(&edited, |g| g.status("/limited", &[]) == 500);
    let before = backend.count();
    let r = gloo.get("/limited", &[]);
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(r.body, "");
    assert_eq!(backend.count(), before);
    // Routes without rate limits do not call the service at all.
    assert_eq!(gloo.status("/free", &[]), 200);
}

#[test]
fn basic_limits_count_each_user_and_each_anonymous_client_apart() {
    // `ratelimitBasic`: 2 a day per user id (the `x-user-id` header ext auth sets), 1 a day per
    // anonymous client address; a named route with its own, counted apart.
    let root = tempfile::tempdir().expect("tempdir");
    let backend = Backend::start("app");
    let vhost = "domains: ['*']
options:
  ratelimitBasic:
    authorizedLimits: {requestsPerUnit: 2, unit: DAY}
    anonymousLimits: {requestsPerUnit: 1, unit: DAY}
routes:
- matchers: [{prefix: /own}]
  name: own
  options:
    ratelimitBasic:
      anonymousLimits: {requestsPerUnit: 2, unit: DAY}
  routeAction: {single: {upstream: {name: app, namespace: gloo-system}}}
- matchers: [{prefix: /}]
  routeAction: {single: {upstream: {name: app, namespace: gloo-system}}}
";
    let config = |port, rls| base_config(port, rls, &backend, "", PER_DAY) + "---\n" + &vs(vhost);
    let mut gloo = Gloo::start(root.path(), "gloo-run", config, None, true);
    // Readiness polled `/free` anonymously, which took the client's one anonymous request.
    gloo.wait("the anonymous budget to be spent", |r| r.status == 429);
    let alice = [("x-user-id", "alice")];
    let bob = [("x-user-id", "bob")];
    assert_eq!(gloo.status("/x", &alice), 200);
    assert_eq!(gloo.status("/x", &alice), 200);
    assert_eq!(gloo.status("/x", &alice), 429);
    assert_eq!(gloo.status("/x", &bob), 200);
    assert_eq!(gloo.status("/x", &[]), 429);
    // The named route counts with its own limits only (its limits override the host's).
    assert_eq!(gloo.status("/own", &[]), 200);
    assert_eq!(gloo.status("/own", &[]), 200);
    assert_eq!(gloo.status("/own", &[]), 429);
    // A user on that route has no limit there (only anonymous ones are set).
    for _ in 0..3 {
        assert_eq!(gloo.status("/own", &alice), 200);
    }
}
