//! Deployment pattern 2, the edge API gateway (`examples/edge-gateway`), end to end: the
//! checked-in config on free ports, served by one `gloo run` (built with the `waf` feature) in
//! front of three services it discovers in Consul, with a real OpenID Provider
//! (node-oidc-provider 8, `GLOO_TEST_OIDC_NODE_PATH`) issuing the access tokens, a real Redis
//! (`GLOO_TEST_REDIS_SERVER`) counting the rate limits and the OWASP core rule set
//! (`GLOO_TEST_CRS_SETUP`, `GLOO_TEST_CRS_RULES`) in the WAF. Consul is the labelled fake of
//! gloo-discovery's tests (no registry ships a Consul agent), path-included from there.
//!
//! Checks, with real requests through the gateway:
//! - discovery: the services registered in Consul become the `consul-svc:*` upstreams the
//!   routes name, with the registered instances as endpoints; an instance registered later
//!   takes traffic without a new translation of the config;
//! - header routing: `x-api-version` v2 (or v2.x) reaches catalog-v2, v1 or none catalog-v1,
//!   any other version gets the 400 of the route matching it (present, and inverted regex);
//! - OAuth: no token or a forged one gets 401; a valid token's `client_id` reaches the service
//!   as `x-client-id`;
//! - WAF: SQL injection and XSS get 403 and never reach a service; benign requests pass;
//! - rate limiting per OAuth client: past its budget a client gets 429 with x-ratelimit-*
//!   headers while another client keeps its own budget;
//! - Gloo's stage order, WAF then auth then rate limit: an attack without a token gets 403
//!   (not 401), an exhausted client's attack gets 403 and its forged token 401 (not 429), and
//!   neither refused attacks nor refused tokens spend a client's budget.

#[path = "../../gloo-filters/tests/support/crs.rs"]
#[allow(dead_code)] // the WAF tests of gloo-filters use the rest
mod crs;
#[path = "../../gloo-proxy/tests/support/mod.rs"]
mod e2e;
#[path = "../../gloo-discovery/tests/support/fake_consul.rs"]
mod fake_consul;
#[path = "../../gloo-filters/tests/support/oidc_provider.rs"]
#[allow(dead_code)] // the browser-login provider is for other tests
mod oidc_provider;
#[path = "../../gloo-filters/tests/support/redis_server.rs"]
#[allow(dead_code)] // the gloo-filters tests use more of it
mod redis_server;
mod support;

use base64::Engine as _;
use e2e::{
    free_port, gloo_ready, http_raw, live_endpoints, poll, translations, wait_for_line, Backend,
    LogsOnPanic, Response,
};
use fake_consul::FakeConsul;
use oidc_provider::OidcProvider;
use redis_server::RedisServer;

/// The OAuth clients of the test, with their secrets.
const CLIENTS: [(&str, &str); 3] = [
    ("web", "web-secret"),
    ("partner", "partner-secret"),
    ("ops", "ops-secret"),
];

/// The per-client budget the shipped Settings give.
const BUDGET: usize = 10;

/// SQL injection in a query string (CRS 942100, libinjection).
const SQLI: &str = "?id=1%27%20or%20%271%27%3D%271";
/// Cross-site scripting in a query string (CRS 941100 and others).
const XSS: &str = "?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E";

/// What the Gateway's WAF answers an attack with (gateway.yaml).
const BLOCKED: &str = "Request blocked by the web application firewall";

/// A browser-like GET through the gateway, with these extra headers.
fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    http_raw(port, request.as_bytes(), false)
        .unwrap_or_else(|e| panic!("GET {path} through the gateway: {e}"))
}

/// An access token for `client` from the provider's token endpoint: the client credentials
/// grant for the resource `urn:jwt`, which the provider issues as an RS256 JWT.
fn access_token(provider: u16, (client, secret): (&str, &str)) -> String {
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}"));
    let form = "grant_type=client_credentials&resource=urn%3Ajwt&scope=read";
    let request = format!(
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1:{provider}\r\nAuthorization: Basic {credentials}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    let r = http_raw(provider, request.as_bytes(), false)
        .unwrap_or_else(|e| panic!("token request for {client}: {e}"));
    assert_eq!(r.status, 200, "token for {client}: {r:?}");
    let answer: serde_json::Value = serde_json::from_str(&r.body)
        .unwrap_or_else(|e| panic!("the token endpoint answers JSON ({e}): {r:?}"));
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token for {client}: {answer}"))
        .to_string()
}

/// `Authorization: Bearer <token>`.
fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

/// `token` with its signature's first character changed: well formed, signed by nobody.
fn forged(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').expect("a JWS");
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    format!("{signed}.{flipped}{}", &signature[1..])
}

#[test]
fn one_gateway_routes_by_header_to_discovered_services_behind_waf_oauth_and_rate_limits() {
    // The fake Consul serves on this runtime's threads; the test drives it synchronously.
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let consul = runtime.block_on(FakeConsul::start_new(&["dc1"]));
    let services = ["catalog-v1", "catalog-v2", "reviews"];
    let backends: Vec<Backend> = services.iter().map(|s| Backend::start(s)).collect();
    for (service, backend) in services.iter().zip(&backends) {
        let id = format!("{service}-1");
        consul.register(
            "dc1",
            "node-1",
            "127.0.0.1",
            service,
            &id,
            &[],
            "127.0.0.1",
            backend.port,
        );
    }
    let (catalog_v1, catalog_v2, reviews) = (&backends[0], &backends[1], &backends[2]);

    let redis = RedisServer::start();
    let clients = serde_json::json!(CLIENTS
        .iter()
        .map(|(id, secret)| serde_json::json!({"client_id": id, "client_secret": secret}))
        .collect::<Vec<_>>());
    let provider = OidcProvider::start_script("oidc_provider_machine.mjs", &clients);
    let issuer = provider.issuer();
    let provider_port: u16 = issuer
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .expect("the issuer's port");
    let crs_rules = crs::rules_dir();
    assert_eq!(
        crs_rules,
        gloo_core::translate::CRS_RULES_DIR,
        "gloo-core's coreRuleSet includes the CRS from {}",
        gloo_core::translate::CRS_RULES_DIR
    );

    // The shipped config on this test's ports.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("gloo");
    let (gateway, admin, rls) = (free_port(), free_port(), free_port());
    support::copy_example(
        "edge-gateway/gloo",
        &config,
        &[
            ("bindPort: 8080".into(), format!("bindPort: {gateway}")),
            ("127.0.0.1:8500".into(), consul.address()),
            (
                "127.0.0.1:9000".into(),
                format!("127.0.0.1:{provider_port}"),
            ),
            ("port: 9000".into(), format!("port: {provider_port}")),
            ("port: 18081".into(), format!("port: {rls}")),
            (
                "/etc/modsecurity/crs/crs-setup.conf".into(),
                crs::setup_file(),
            ),
            // A day-long window never restarts in the middle of the test.
            ("unit: MINUTE".into(), "unit: DAY".into()),
        ],
    );
    let config_arg = config.display().to_string();
    let (redis_url, rls_addr) = (redis.url(), format!("127.0.0.1:{rls}"));
    let mut gloo = gloo_ready(
        "gloo-run",
        &[
            "run",
            "--config",
            &config_arg,
            "--redis-url",
            &redis_url,
            "--ratelimit-server",
            &rls_addr,
        ],
        admin,
        dir.path(),
    );
    wait_for_line(
        &mut gloo,
        true,
        &format!("rate limit service listening on 127.0.0.1:{rls}"),
    );

    // Discovery: each service's Upstream has the registered instance as a healthy endpoint.
    for (service, backend) in services.iter().zip(&backends) {
        let cluster = format!("consul-svc:{service}_gloo-system");
        let want = vec![(format!("127.0.0.1:{}", backend.port), true)];
        if let Err(e) = poll(&format!("{cluster} to be discovered"), || {
            gloo.check_running()?;
            let endpoints = live_endpoints(admin, &cluster);
            if endpoints == want {
                Ok(())
            } else {
                Err(format!("{endpoints:?}"))
            }
        }) {
            panic!("{e}\n{}", gloo.logs());
        }
    }

    let _logs = LogsOnPanic(&config, vec![&gloo]);

    let web = access_token(provider_port, CLIENTS[0]);
    let partner = access_token(provider_port, CLIENTS[1]);
    let web_auth = bearer(&web);
    let as_web = |path: &str, version: Option<&str>| {
        let mut headers = vec![(web_auth.0, web_auth.1.as_str())];
        headers.extend(version.map(|v| ("x-api-version", v)));
        get(gateway, path, &headers)
    };
    // Requests of `web` that passed the rate limit (each spends one of its budget).
    let mut web_spent = 0;

    // OAuth: no token, and a forged one, get 401 from the JWT filter.
    let r = get(gateway, "/catalog/items", &[]);
    assert_eq!(r.status, 401, "no token: {r:?}");
    let forged_web = forged(&web);
    let r = get(
        gateway,
        "/catalog/items",
        &[("authorization", &format!("Bearer {forged_web}"))],
    );
    assert_eq!(r.status, 401, "forged token: {r:?}");

    // Header routing, each request with a valid token.
    for (version, backend) in [
        (None, catalog_v1),
        (Some("v1"), catalog_v1),
        (Some("v2"), catalog_v2),
        (Some("v2.1"), catalog_v2),
    ] {
        let r = as_web("/catalog/items", version);
        assert_eq!(r.status, 200, "x-api-version {version:?}: {r:?}");
        assert_eq!(
            r.header("x-backend"),
            Some(backend.name.as_str()),
            "x-api-version {version:?}: {r:?}"
        );
        web_spent += 1;
    }
    // Any other version (the regex matches whole values: v22 is not v2) gets the direct
    // response of the route for present-but-not-v1 versions.
    for version in ["v3", "v22", "beta"] {
        let r = as_web("/catalog/items", Some(version));
        assert_eq!(r.status, 400, "x-api-version {version}: {r:?}");
        assert!(r.body.contains("unsupported x-api-version"), "{r:?}");
    }
    let r = as_web("/reviews/42", None);
    assert_eq!(r.header("x-backend"), Some("reviews"), "{r:?}");
    web_spent += 1;
    // The token's client_id claim reached the service.
    let seen = reviews.seen();
    let last = seen.last().expect("reviews saw the request");
    assert_eq!(last.header("x-client-id"), Some("web"), "{last:?}");

    // WAF: attacks get 403 and reach no service, with or without a token, valid or not (the
    // WAF runs before auth).
    let reached = backends.iter().map(Backend::count).sum::<usize>();
    let web_header = (web_auth.0, web_auth.1.as_str());
    let forged_header = format!("Bearer {forged_web}");
    for (path, headers) in [
        (format!("/catalog/items{SQLI}"), vec![web_header]),
        (format!("/reviews/42{XSS}"), vec![web_header]),
        (format!("/catalog/items{SQLI}"), vec![]),
        (format!("/reviews/42{XSS}"), vec![]),
        (
            format!("/catalog/items{SQLI}"),
            vec![("authorization", forged_header.as_str())],
        ),
    ] {
        let r = get(gateway, &path, &headers);
        assert_eq!((r.status, r.body.as_str()), (403, BLOCKED), "{path}: {r:?}");
    }
    assert_eq!(
        backends.iter().map(Backend::count).sum::<usize>(),
        reached,
        "no attack reached a service"
    );

    // Rate limiting per client: `partner` spends its whole budget, then gets 429.
    let partner_auth = bearer(&partner);
    let as_partner = |path: &str| get(gateway, path, &[(partner_auth.0, &partner_auth.1)]);
    for i in 1..=BUDGET {
        let r = as_partner("/reviews/1");
        assert_eq!(r.status, 200, "partner's request {i}: {r:?}");
        assert_eq!(
            r.header("x-ratelimit-remaining"),
            Some((BUDGET - i).to_string().as_str()),
            "{r:?}"
        );
    }
    let r = as_partner("/reviews/1");
    assert_eq!(r.status, 429, "past partner's budget: {r:?}");
    assert!(
        r.header("x-ratelimit-limit")
            .is_some_and(|v| v.split(',').next() == Some(BUDGET.to_string().as_str())),
        "{r:?}"
    );
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"), "{r:?}");
    // The exhausted client's attack meets the WAF first, its forged token the JWT filter.
    let r = as_partner(&format!("/reviews/1{SQLI}"));
    assert_eq!(r.status, 403, "an exhausted client's attack: {r:?}");
    let r = get(
        gateway,
        "/reviews/1",
        &[("authorization", &format!("Bearer {}", forged(&partner)))],
    );
    assert_eq!(r.status, 401, "an exhausted client's forged token: {r:?}");

    // `web` keeps its own budget, which only its admitted requests spent: not the 401s,
    // 403s and direct responses above.
    let r = as_web("/catalog/items", Some("v2"));
    assert_eq!(r.status, 200, "web after partner's 429: {r:?}");
    web_spent += 1;
    assert_eq!(
        r.header("x-ratelimit-remaining"),
        Some((BUDGET - web_spent).to_string().as_str()),
        "{r:?}"
    );

    // A new instance registered in Consul takes traffic, as an endpoint change: no new
    // translation of the config.
    let translated = translations(&gloo);
    let reviews_2 = Backend::start("reviews-2");
    consul.register(
        "dc1",
        "node-2",
        "127.0.0.1",
        "reviews",
        "reviews-2",
        &[],
        "127.0.0.1",
        reviews_2.port,
    );
    let cluster = "consul-svc:reviews_gloo-system";
    let mut want = vec![
        (format!("127.0.0.1:{}", reviews.port), true),
        (format!("127.0.0.1:{}", reviews_2.port), true),
    ];
    want.sort();
    poll("the second reviews instance to be discovered", || {
        let mut endpoints = live_endpoints(admin, cluster);
        endpoints.sort();
        if endpoints == want {
            Ok(())
        } else {
            Err(format!("{endpoints:?}"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let ops = bearer(&access_token(provider_port, CLIENTS[2]));
    let answered: std::collections::BTreeSet<String> = (0..4)
        .map(|_| {
            let r = get(gateway, "/reviews/7", &[(ops.0, &ops.1)]);
            format!("{} {}", r.status, r.header("x-backend").unwrap_or("-"))
        })
        .collect();
    let both: std::collections::BTreeSet<String> = ["200 reviews", "200 reviews-2"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(answered, both, "round robin over both instances");
    assert_eq!(translations(&gloo), translated, "an endpoint change only");

    drop(consul);
    drop(runtime);
}
