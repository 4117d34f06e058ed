//! Gloo's WAF end to end through `gloo run` (built with the `waf` feature): `options.waf` on a
//! gateway, a virtual host and its routes, translated by gloo-core into envoy-gloo's
//! ModSecurity filter and served by gloo-proxy with gloo-filters' WAF layer, in front of a
//! `support::Backend`. The core rule set is Debian's (`GLOO_TEST_CRS_SETUP`,
//! `GLOO_TEST_CRS_RULES`, set by `scripts/test.sh`), as gloo-core emits it. Rules can also
//! come from a ConfigMap in the config directory (`configMapRuleSets`).
//!
//! Everything listens on 127.0.0.1 on free ports; gloo is killed when the test ends, and on
//! failure the config and its logs are printed.

mod support;

use std::fs;
use std::path::PathBuf;

use support::{
    admin_get, free_port, gloo_ready_with_env, http_raw, poll, print_logs_if_panicking,
    wait_for_answer, write_atomically, Backend, Proc, Response,
};

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: these tests need the OWASP CRS (apt-get install modsecurity-crs). \
             Run scripts/test.sh, or export GLOO_TEST_CRS_SETUP=/etc/modsecurity/crs/crs-setup.conf \
             GLOO_TEST_CRS_RULES=/usr/share/modsecurity-crs/rules"
        ),
    }
}

/// Gloo's docs' core rule set settings, with Debian's crs-setup.conf.
fn core_rule_set() -> String {
    // gloo-core includes the rules from the directory Debian installs them in.
    assert_eq!(
        env("GLOO_TEST_CRS_RULES"),
        gloo_core::translate::CRS_RULES_DIR,
        "gloo-core's coreRuleSet includes the CRS from {}",
        gloo_core::translate::CRS_RULES_DIR
    );
    format!(
        "coreRuleSet:\n  customSettingsString: |\n    SecRuleEngine On\n    SecRequestBodyAccess On\n    Include {}\n",
        env("GLOO_TEST_CRS_SETUP")
    )
}

const SCAMMER: &str = "ruleSets:\n- ruleStr: |\n    SecRuleEngine On\n    SecRule REQUEST_HEADERS:User-Agent \"scammer\" \"deny,status:403,id:107,phase:1,msg:'blocked scammer'\"\n";

fn indent(text: &str, by: usize) -> String {
    text.lines().map(|l| format!("{:by$}{l}\n", "")).collect()
}

/// `options: {waf: <waf>}` at `by` columns (nothing when `waf` is empty).
fn waf_options(waf: &str, by: usize) -> String {
    if waf.is_empty() {
        return String::new();
    }
    format!(
        "{:by$}options:\n{:by$}  waf:\n{}",
        "",
        "",
        indent(waf, by + 4)
    )
}

/// A route to the backend for `prefix` with route WAF settings `waf` (may be empty).
fn route(prefix: &str, waf: &str) -> String {
    format!(
        "- matchers: [{{prefix: {prefix}}}]\n{}  routeAction: {{single: {{upstream: {{name: app, namespace: gloo-system}}}}}}\n",
        waf_options(waf, 2)
    )
}

/// `gloo run` serving the `app` backend through a gateway (with the listener-wide WAF
/// `gateway_waf`, may be empty) and one VirtualService for `example.com`.
struct Fixture {
    port: u16,
    admin: u16,
    backend: Backend,
    config_dir: PathBuf,
    gloo: Proc,
    _root: tempfile::TempDir,
}

impl Fixture {
    fn start(gateway_waf: &str, vhost_waf: &str, routes: &str) -> Fixture {
        Self::start_with(gateway_waf, vhost_waf, routes, &[])
    }

    /// [`Fixture::start`] with `routes` only, and these environment variables for gloo.
    fn start_with_env(routes: &str, env: &[(&str, &str)]) -> Fixture {
        Self::start_with_files_and_env("", "", routes, &[], env)
    }

    /// [`Fixture::start`] with more files (name, contents) in the config directory.
    fn start_with(
        gateway_waf: &str,
        vhost_waf: &str,
        routes: &str,
        files: &[(&str, String)],
    ) -> Fixture {
        Self::start_with_files_and_env(gateway_waf, vhost_waf, routes, files, &[])
    }

    fn start_with_files_and_env(
        gateway_waf: &str,
        vhost_waf: &str,
        routes: &str,
        files: &[(&str, String)],
        env: &[(&str, &str)],
    ) -> Fixture {
        let backend = Backend::start("app");
        let root = tempfile::tempdir().expect("tempdir");
        let config_dir = root.path().join("config");
        fs::create_dir_all(&config_dir).expect("config dir");
        let (port, admin) = (free_port(), free_port());
        let http_gateway = if gateway_waf.is_empty() {
            "  httpGateway: {}\n".to_string()
        } else {
            format!("  httpGateway:\n{}", waf_options(gateway_waf, 4))
        };
        let gateway = format!(
            "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n{http_gateway}"
        );
        let upstream = format!(
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: app, namespace: gloo-system}}\nspec:\n  static:\n    hosts:\n    - {{addr: 127.0.0.1, port: {}}}\n",
            backend.port
        );
        for (file, text) in [
            ("gateway.yaml", gateway),
            ("upstream.yaml", upstream),
            ("vs.yaml", vs_yaml(vhost_waf, routes)),
        ]
        .into_iter()
        .chain(files.iter().map(|(f, t)| (*f, t.clone())))
        {
            fs::write(config_dir.join(file), text).expect("write config");
        }
        let config = config_dir.display().to_string();
        let gloo = gloo_ready_with_env(
            "gloo-run",
            &["run", "--config", &config],
            env,
            admin,
            root.path(),
        );
        let mut fixture = Fixture {
            port,
            admin,
            backend,
            config_dir,
            gloo,
            _root: root,
        };
        fixture.wait_for("the routes to be served", |r| r.status != 404);
        fixture
    }

    fn wait_for(&mut self, what: &str, ready: impl Fn(&Response) -> bool) {
        let port = self.port;
        let get = || request(port, "GET", "/", &[], "");
        wait_for_answer(&mut self.gloo, what, get, ready);
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        request(self.port, "GET", path, headers, "").expect("request")
    }

    fn post_form(&self, path: &str, body: &str) -> Response {
        let form = [("Content-Type", "application/x-www-form-urlencoded")];
        request(self.port, "POST", path, &form, body).expect("request")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        print_logs_if_panicking(&self.config_dir, &[&self.gloo]);
    }
}

fn vs_yaml(vhost_waf: &str, routes: &str) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: shop, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: [example.com]\n{}    routes:\n{}",
        waf_options(vhost_waf, 4),
        indent(routes, 4)
    )
}

fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Response> {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    http_raw(port, raw.as_bytes(), false)
}

/// Polls until `GET path` with the User-Agent `agent` answers `status`.
fn wait_for_status(port: u16, what: &str, path: &str, agent: &str, status: u16) {
    poll(what, || {
        let r =
            request(port, "GET", path, &[("User-Agent", agent)], "").map_err(|e| e.to_string())?;
        if r.status == status {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

const SQLI: &str = "/products?id=1%27%20or%20%271%27%3D%271";

#[test]
fn a_virtual_host_waf_with_the_crs_protects_its_routes_and_a_route_can_turn_it_off() {
    let vhost_waf = format!(
        "customInterventionMessage: 'ModSecurity intervention! Custom message details here..'\n{}",
        core_rule_set()
    );
    let routes = format!(
        "{}{}{}",
        route("/health", "disabled: true\n"),
        // Settings without rules of their own keep the virtual host's rules.
        route("/upload", "requestHeadersOnly: true\n"),
        route("/", ""),
    );
    let f = Fixture::start("", &vhost_waf, &routes);

    let r = f.get("/products?page=2", &[]);
    assert_eq!((r.status, r.body.as_str()), (200, "app"), "{r:?}");

    let before = f.backend.count();
    let r = f.get(SQLI, &[]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        r.body,
        "ModSecurity intervention! Custom message details here.."
    );
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let r = f.get("/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", &[]);
    assert_eq!(r.status, 403, "{r:?}");
    // SQL injection in a form body.
    let r = f.post_form("/login", "user=admin&password=x%27%20or%20%271%27%3D%271");
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        f.backend.count(),
        before,
        "no refused request reached the backend"
    );

    // The route that turns the WAF off lets the same request through.
    let r = f.get(&SQLI.replace("/products", "/health"), &[]);
    assert_eq!((r.status, r.body.as_str()), (200, "app"), "{r:?}");
    // requestHeadersOnly: the query is inspected, the body is not.
    let r = f.get("/upload?id=1%27%20or%20%271%27%3D%271", &[]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.body, "ModSecurity: intervention occurred");
    let r = f.post_form("/upload", "user=admin&password=x%27%20or%20%271%27%3D%271");
    assert_eq!((r.status, r.body.as_str()), (200, "app"), "{r:?}");
}

#[test]
fn a_route_waf_applies_to_its_route_only_and_refused_rules_keep_the_last_good_config() {
    let routes = format!("{}{}", route("/a", SCAMMER), route("/", ""));
    let mut f = Fixture::start("", "", &routes);
    let scammer = [("User-Agent", "scammer")];
    let r = f.get("/a", &scammer);
    assert_eq!(
        (r.status, r.body.as_str()),
        (403, "ModSecurity: intervention occurred"),
        "{r:?}"
    );
    let r = f.get("/b", &scammer);
    assert_eq!((r.status, r.body.as_str()), (200, "app"), "{r:?}");

    // A rule ModSecurity refuses: the edit is refused, naming the rule set, and the route
    // stays protected by the rules in force.
    let broken = format!(
        "{}{}",
        route(
            "/a",
            "ruleSets:\n- ruleStr: 'SecRule ARGS \"@rx x\" \"id:1,deny,,phase:1\"'\n"
        ),
        route("/", ""),
    );
    write_atomically(&f.config_dir.join("vs.yaml"), &vs_yaml("", &broken));
    let admin = f.admin;
    let errors = poll("the broken rules to be refused", || {
        let dump = admin_get(admin, "/config_dump");
        if dump.contains("Rules error") {
            Ok(dump)
        } else {
            Err("not yet".to_string())
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(errors.contains("rule_sets[0].rule_str"), "{errors}");
    f.wait_for("the last good config to keep serving", |r| r.status == 200);
    let r = f.get("/a", &scammer);
    assert_eq!(r.status, 403, "{r:?}");
}

#[test]
fn a_gateway_waf_covers_every_route_without_its_own_and_requests_no_route_matches() {
    let routes = format!("{}{}", route("/open", "disabled: true\n"), route("/", ""));
    let f = Fixture::start(SCAMMER, "", &routes);
    let scammer = [("User-Agent", "scammer")];
    assert_eq!(f.get("/", &scammer).status, 403);
    assert_eq!(f.get("/", &[]).status, 200);
    assert_eq!(f.get("/open", &scammer).status, 200);
    // No route for this host: the listener's filters still run before the 404.
    let mut raw =
        "GET / HTTP/1.1\r\nHost: other.example\r\nUser-Agent: scammer\r\nConnection: close\r\n\r\n"
            .to_string();
    assert_eq!(http_raw(f.port, raw.as_bytes(), false).unwrap().status, 403);
    raw = raw.replace("scammer", "curl");
    assert_eq!(http_raw(f.port, raw.as_bytes(), false).unwrap().status, 404);
}

/// A thread of a process, from `/proc`.
#[derive(Debug)]
struct Thread {
    name: String,
    /// Its Linux scheduling policy.
    policy: u32,
    /// The CPUs it may run on.
    cpus: Vec<usize>,
}

/// The threads of process `pid`.
fn threads(pid: u32) -> Vec<Thread> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).expect("the process's threads");
    let mut threads = Vec::new();
    for task in tasks.flatten() {
        let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let status = fs::read_to_string(task.path().join("status")).unwrap_or_default();
        // `pid (comm) state ...`: the fields after the name, split on spaces; the policy is
        // field 41 of the whole line, the 39th after the name.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let name = head.split_once(" (").map_or("", |(_, n)| n).to_string();
        let policy = rest.split(' ').nth(38).and_then(|p| p.parse().ok());
        if let (Some(policy), Some(cpus)) = (policy, cpus_allowed(&status)) {
            threads.push(Thread { name, policy, cpus });
        }
    }
    threads
}

/// The CPUs in a `/proc` status's list (`Cpus_allowed_list:\t0-3,6`).
fn cpus_allowed(status: &str) -> Option<Vec<usize>> {
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    let mut cpus = Vec::new();
    for range in list.trim().split(',') {
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        cpus.extend(first.parse::<usize>().ok()?..=last.parse().ok()?);
    }
    Some(cpus)
}

#[test]
fn waf_threads_run_at_the_lowest_priority_unless_configured_normal_and_workers_never_do() {
    const SCHED_OTHER: u32 = 0;
    const SCHED_IDLE: u32 = 5;
    // The default, then `GLOO_WAF_EVALUATION_PRIORITY=normal`.
    for (env, waf_policy) in [
        (&[][..], SCHED_IDLE),
        (
            &[("GLOO_WAF_EVALUATION_PRIORITY", "normal")][..],
            SCHED_OTHER,
        ),
    ] {
        let f = Fixture::start_with_env(&route("/", SCAMMER), env);
        assert_eq!(f.get("/", &[("User-Agent", "scammer")]).status, 403);
        assert_eq!(f.get("/", &[]).status, 200);
        check_waf_threads(f.gloo.id(), waf_policy, SCHED_OTHER);
    }
}

/// Asserts that process `pid` has `gloo-waf-*` threads, all with scheduling policy `waf`, one
/// kept to each CPU the process may use (the evaluation lanes), and that its other threads all
/// have `others`.
fn check_waf_threads(pid: u32, waf_policy: u32, other_policy: u32) {
    let threads = threads(pid);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let process = cpus_allowed(&status).expect("the process's CPUs");
    let (waf, others): (Vec<_>, Vec<_>) = threads
        .iter()
        .partition(|t| t.name.starts_with("gloo-waf-"));
    assert!(!waf.is_empty(), "no gloo-waf-* thread in {threads:?}");
    assert!(
        waf.iter().all(|t| t.policy == waf_policy),
        "WAF threads not all at policy {waf_policy}: {threads:?}"
    );
    assert!(
        waf.iter().all(|t| t.cpus.len() == 1),
        "every WAF thread keeps to one CPU: {waf:?}"
    );
    let mut lane_cpus: Vec<usize> = waf.iter().flat_map(|t| t.cpus.iter().copied()).collect();
    lane_cpus.sort_unstable();
    assert_eq!(
        lane_cpus, process,
        "one WAF thread on each CPU gloo may use"
    );
    assert!(
        others.iter().all(|t| t.policy == other_policy),
        "every other thread keeps the ordinary policy: {threads:?}"
    );
}

/// The value of the unlabelled metric `name` on the admin endpoint.
fn metric(admin: u16, name: &str) -> u64 {
    let stats = admin_get(admin, "/stats/prometheus");
    stats
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{stats}"))
}

/// The value of `gloo_waf_rule_set_compiles_total` on the admin endpoint.
fn rule_set_compiles(admin: u16) -> u64 {
    metric(admin, "gloo_waf_rule_set_compiles_total")
}

#[test]
fn rule_sets_are_parsed_once_per_config_not_per_request() {
    // Two routes with the same rules share one compiled set.
    let routes = format!("{}{}", route("/a", SCAMMER), route("/", SCAMMER));
    let f = Fixture::start("", "", &routes);
    assert_eq!(rule_set_compiles(f.admin), 1, "one parse for the config");
    let scammer = [("User-Agent", "scammer")];
    for i in 0..40 {
        let path = format!("/a/{i}");
        assert_eq!(f.get(&path, &[]).status, 200);
        assert_eq!(f.get(&path, &scammer).status, 403);
        assert_eq!(f.get(&format!("/b/{i}"), &scammer).status, 403);
    }
    assert_eq!(
        rule_set_compiles(f.admin),
        1,
        "120 requests, benign and refused, parsed nothing"
    );
    // Every one of them was answered: no evaluation is left waiting.
    assert_eq!(metric(f.admin, "gloo_waf_evaluations_waiting"), 0);

    // An edit that gives /a other rules: those are parsed, once; / keeps its compiled set.
    let fraudster = SCAMMER.replace("scammer", "fraudster");
    let edited = format!("{}{}", route("/a", &fraudster), route("/", SCAMMER));
    write_atomically(&f.config_dir.join("vs.yaml"), &vs_yaml("", &edited));
    wait_for_status(f.port, "the new rules to be served", "/a", "fraudster", 403);
    assert_eq!(rule_set_compiles(f.admin), 2, "one more parse for the edit");
    for i in 0..40 {
        assert_eq!(f.get(&format!("/a/{i}"), &scammer).status, 200);
        assert_eq!(f.get(&format!("/b/{i}"), &scammer).status, 403);
    }
    assert_eq!(rule_set_compiles(f.admin), 2, "and none per request");
}

/// The ConfigMap `waf-rules`: a rule denying the User-Agent `agent` under `scammer.conf`, and a
/// rule that would deny everything under a key the WAF settings do not pick.
fn rules_config_map(agent: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: waf-rules, namespace: gloo-system}}\ndata:\n  scammer.conf: |\n    SecRuleEngine On\n    SecRule REQUEST_HEADERS:User-Agent \"{agent}\" \"deny,status:403,id:107,phase:1,msg:'blocked {agent}'\"\n  unused.conf: |\n    SecRuleEngine On\n    SecAction \"id:108,phase:1,deny,status:418\"\n"
    )
}

#[test]
fn waf_rules_read_from_a_config_map_block_requests_and_follow_its_edits() {
    let vhost_waf = "configMapRuleSets:\n- configMapRef: {name: waf-rules, namespace: gloo-system}\n  dataMapKeys: [scammer.conf]\n";
    let mut f = Fixture::start_with(
        "",
        vhost_waf,
        &route("/", ""),
        &[("rules.yaml", rules_config_map("scammer"))],
    );
    let r = f.get("/", &[]);
    assert_eq!((r.status, r.body.as_str()), (200, "app"), "{r:?}");
    let before = f.backend.count();
    let r = f.get("/", &[("User-Agent", "scammer")]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(f.backend.count(), before, "the blocked request got through");

    // The ConfigMap is edited: its new rule is in force, the old one is not.
    write_atomically(
        &f.config_dir.join("rules.yaml"),
        &rules_config_map("fraudster"),
    );
    wait_for_status(
        f.port,
        "the edited rules to be served",
        "/",
        "fraudster",
        403,
    );
    assert_eq!(f.get("/", &[("User-Agent", "scammer")]).status, 200);

    // The ConfigMap goes: the VirtualService is rejected, and its last accepted version,
    // whose rules cannot be read any more, is never served uninspected: it answers 503.
    fs::remove_file(f.config_dir.join("rules.yaml")).expect("remove rules.yaml");
    f.wait_for("the WAF to deny everything", |r| r.status == 503);
    assert_eq!(f.get("/", &[("User-Agent", "fraudster")]).status, 503);
}
