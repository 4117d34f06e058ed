//! Deployment pattern 5, ingress for a service mesh (`examples/mesh-ingress`), end to end: the
//! checked-in config, certificates and token; `gloo run`, the `extauth_server` example binary
//! (Gloo's separate ext auth server) and the mesh service (`backend.py`, HTTPS requiring a
//! client certificate) as the README starts them, on free ports.
//!
//! Checks, with real requests through the gateway: no or a forged access token gets 403 (as
//! Gloo's ext auth server answers a failed access token validation); the
//! valid token reaches the service with the `sub` claim as `x-user` and the transformation's
//! headers, over mTLS with the gateway's client certificate; a burst gets 429 from the rate limit.
//!
//! Needs `GLOO_TEST_PYTHON` (any Python 3; `scripts/test.sh` sets it).

#[path = "../../gloo-proxy/tests/support/mod.rs"]
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{free_port, gloo_ready, http_raw, wait_for_line, LogsOnPanic, Proc, Response};

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("mesh-ingress")
}

fn get(port: u16, path: &str, token: Option<&str>) -> Response {
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: reviews.example\r\n{auth}connection: close\r\n\r\n");
    http_raw(port, request.as_bytes(), false)
        .unwrap_or_else(|e| panic!("GET {path} through the gateway: {e}"))
}

#[test]
fn the_gateway_authenticates_limits_transforms_and_originates_mtls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gateway, admin, extauth, backend) = (free_port(), free_port(), free_port(), free_port());

    // The checked-in config with this test's ports and absolute certificate paths.
    let source = example_dir().join("gloo/gloo.yaml");
    let mut text = fs::read_to_string(&source).expect("read the example config");
    text = text.replace(
        "examples/mesh-ingress/certs/",
        &format!("{}/", example_dir().join("certs").display()),
    );
    for (from, to) in [
        ("bindPort: 8090", format!("bindPort: {gateway}")),
        ("port: 8093", format!("port: {extauth}")),
        ("port: 9443", format!("port: {backend}")),
    ] {
        assert!(
            text.contains(from),
            "{} should contain `{from}`",
            source.display()
        );
        text = text.replace(from, &to);
    }
    let config = dir.path().join("gloo");
    fs::create_dir_all(&config).expect("config dir");
    fs::write(config.join("gloo.yaml"), text).expect("write config");

    let mut mesh_service = Proc::spawn(
        "backend",
        Command::new(support::python())
            .arg("-u")
            .arg(example_dir().join("backend.py"))
            .arg(backend.to_string())
            .arg(example_dir().join("certs")),
        dir.path(),
    );
    wait_for_line(&mut mesh_service, false, "backend listening");
    let mut auth_server = Proc::spawn(
        "extauth-server",
        Command::new(env!("CARGO_BIN_EXE_extauth_server"))
            .arg(&config)
            .arg(format!("127.0.0.1:{extauth}")),
        dir.path(),
    );
    wait_for_line(&mut auth_server, true, "ext auth server listening");
    assert!(
        auth_server.stderr_text().contains("gloo-system.oauth"),
        "the ext auth server should serve the AuthConfig: {}",
        auth_server.logs()
    );
    let config_arg = config.display().to_string();
    let gloo = gloo_ready(
        "gloo-run",
        &["run", "--config", &config_arg, "--ratelimit-server", "off"],
        admin,
        dir.path(),
    );
    let _logs = LogsOnPanic(dir.path(), vec![&gloo, &auth_server, &mesh_service]);

    let token = fs::read_to_string(example_dir().join("jwt/token.jwt")).expect("read the token");
    let token = token.trim();

    // No token, and a token whose signature does not verify: a bare 403 from the ext auth
    // server, as Gloo's answers a failed access token validation.
    let r = get(gateway, "/reviews/1", None);
    assert_eq!(r.status, 403, "no token: {r:?}");
    let (unsigned, _) = token.rsplit_once('.').expect("a JWT");
    let forged = format!("{unsigned}.c2lnbmF0dXJl");
    let r = get(gateway, "/reviews/1", Some(&forged));
    assert_eq!(r.status, 403, "forged token: {r:?}");

    // The valid token: the mesh service answers, and says what it got.
    let r = get(gateway, "/reviews/1", Some(token));
    assert_eq!(r.status, 200, "valid token: {r:?}");
    let seen: serde_json::Value = serde_json::from_str(&r.body)
        .unwrap_or_else(|e| panic!("the mesh service answers JSON ({e}): {r:?}"));
    assert_eq!(seen["path"], "/reviews/1");
    // OAuth: the token's `sub` claim, as the AuthConfig's claimsToHeaders says.
    assert_eq!(seen["headers"]["x-user"], "alice", "{seen}");
    // The request transformation.
    assert_eq!(seen["headers"]["x-mesh-ingress"], "gloo", "{seen}");
    assert_eq!(seen["headers"]["x-request-path"], "/reviews/1", "{seen}");
    // mTLS origination: the service required and saw the gateway's client certificate.
    assert_eq!(seen["client_cert_cn"], "gateway", "{seen}");

    // Rate limiting: 5 requests per 10 s through the gateway; a burst soon gets 429.
    let limited = (0..12)
        .map(|_| get(gateway, "/reviews/1", Some(token)))
        .find(|r| r.status == 429);
    let limited = limited.expect("a burst of 12 requests should exceed 5 per 10 s");
    assert!(
        limited
            .header("x-ratelimit-limit")
            .is_some_and(|v| v.starts_with('5')),
        "{limited:?}"
    );
}
