//! TLS through `gloo run`: termination with the certificate chosen by SNI (HTTP/1.1 and
//! HTTP/2 by ALPN), client certificates when the VirtualService names a CA, and origination
//! to an upstream that speaks TLS. Certificates are made by `openssl` for each test; clients
//! are `curl` (which verifies the certificate against the test CA and the host name).

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::{certificates, free_port, gloo_run, poll, Backend, LogsOnPanic};

/// A test's temporary directory, with `certs` and `config` directories in it.
fn dirs() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let certs = tmp.path().join("certs");
    let config = tmp.path().join("config");
    fs::create_dir_all(&certs).expect("certs dir");
    fs::create_dir_all(&config).expect("config dir");
    (tmp, certs, config)
}

fn upstream(name: &str, port: u16) -> String {
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  static:\n    hosts:\n    - {{addr: 127.0.0.1, port: {port}}}\n"
    )
}

fn ssl_virtual_service(
    name: &str,
    domain: &str,
    certs: &Path,
    extra_ssl: &str,
    upstream: &str,
) -> String {
    let dir = certs.display();
    format!(
        r#"apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: {name}, namespace: gloo-system}}
spec:
  sslConfig:
    sslFiles:
      tlsCert: {dir}/{domain}.crt
      tlsKey: {dir}/{domain}.key
{extra_ssl}    sniDomains: [{domain}]
  virtualHost:
    domains: [{domain}]
    routes:
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: {upstream}, namespace: gloo-system}}}}}}
"#
    )
}

fn gateway(port: u16) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: secure, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n  ssl: true\n  httpGateway: {{}}\n"
    )
}

#[test]
fn sni_picks_the_certificate_and_alpn_picks_http2() {
    let (tmp, certs, config) = dirs();
    certificates(&certs, &["alpha.example", "beta.example"]);
    let a = Backend::start("alpha");
    let b = Backend::start("beta");
    let port = free_port();
    let admin = free_port();
    let yaml = [
        gateway(port),
        upstream("alpha", a.port),
        upstream("beta", b.port),
        ssl_virtual_service("alpha", "alpha.example", &certs, "", "alpha"),
        ssl_virtual_service("beta", "beta.example", &certs, "", "beta"),
    ]
    .join("---\n");
    fs::write(config.join("gloo.yaml"), yaml).expect("write config");
    let gloo = gloo_run(&config, admin, tmp.path());
    let _logs = LogsOnPanic(&config, vec![&gloo]);
    let ca = certs.join("ca.crt");

    // curl checks the served certificate against the CA and the host name: a wrong
    // certificate for the SNI fails the handshake.
    for (host, backend) in [("alpha.example", &a), ("beta.example", &b)] {
        let r = poll(&format!("TLS to {host}"), || {
            support::curl_https(port, host, &ca, &["--http1.1"])
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200, "{host}: {}", r.body);
        assert_eq!(r.http_version, "1.1");
        let r = support::curl_https(port, host, &ca, &["--http2"])
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(r.status, 200, "{host} over h2: {}", r.body);
        assert_eq!(r.http_version, "2", "ALPN should choose h2");
        assert_eq!(backend.count(), 2, "{host} reached its own backend twice");
    }
    // Upstreams see the original scheme.
    let seen = a.seen();
    assert_eq!(seen[0].header("x-forwarded-proto"), Some("https"));

    // A server name no chain serves gets no certificate.
    let unknown = support::curl_https(port, "gamma.example", &ca, &[]);
    assert!(
        unknown.is_err(),
        "an unknown SNI must not get a certificate"
    );
}

#[test]
fn a_ca_in_the_ssl_config_requires_client_certificates() {
    let (tmp, certs, config) = dirs();
    certificates(&certs, &["mtls.example", "client.example"]);
    let backend = Backend::start("alpha");
    let port = free_port();
    let admin = free_port();
    let ca_line = format!("      rootCa: {}/ca.crt\n", certs.display());
    let vs = ssl_virtual_service("mtls", "mtls.example", &certs, "", "alpha")
        .replace("      tlsKey:", &format!("{ca_line}      tlsKey:"));
    let yaml = [gateway(port), upstream("alpha", backend.port), vs].join("---\n");
    fs::write(config.join("gloo.yaml"), yaml).expect("write config");
    let gloo = gloo_run(&config, admin, tmp.path());
    let _logs = LogsOnPanic(&config, vec![&gloo]);
    let ca = certs.join("ca.crt");
    let cert = certs.join("client.example.crt");
    let key = certs.join("client.example.key");
    let with_cert = [
        "--cert",
        cert.to_str().expect("path"),
        "--key",
        key.to_str().expect("path"),
    ];
    let r = poll("mTLS with a client certificate", || {
        support::curl_https(port, "mtls.example", &ca, &with_cert)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let before = backend.count();
    let without = support::curl_https(port, "mtls.example", &ca, &[]);
    assert!(
        without.is_err() || without.as_ref().is_ok_and(|r| r.status == 0),
        "a client without a certificate must be refused"
    );
    assert_eq!(
        backend.count(),
        before,
        "nothing reached the backend without a certificate"
    );
}

#[test]
fn upstreams_with_use_tls_are_reached_over_tls() {
    let (tmp, certs, config) = dirs();
    certificates(&certs, &["backend.example"]);
    let (backend, backend_port) = support::tls_backend(&certs, "backend.example");
    let port = free_port();
    let admin = free_port();
    let yaml = format!(
        r#"apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: plain, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {port}
  httpGateway: {{}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: secure-backend, namespace: gloo-system}}
spec:
  static:
    useTls: true
    hosts:
    - {{addr: 127.0.0.1, port: {backend_port}, sniAddr: backend.example}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: to-tls, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: secure-backend, namespace: gloo-system}}}}}}
"#
    );
    fs::write(config.join("gloo.yaml"), yaml).expect("write config");
    let gloo = gloo_run(&config, admin, tmp.path());
    let _logs = LogsOnPanic(&config, vec![&gloo, &backend]);
    let r = poll("a request through to the TLS backend", || {
        let r = support::http_get(port, "/").map_err(|e| e.to_string())?;
        if r.status == 200 {
            Ok(r)
        } else {
            Err(format!("{} {}", r.status, r.body))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.body.starts_with("tls-ok"), "{}", r.body);
}

/// `sslConfig.parameters`: a TLS 1.3 minimum refuses TLS 1.2 clients; a TLS 1.2 maximum with
/// one cipher suite refuses TLS 1.3-only clients and every other TLS 1.2 suite.
#[test]
fn tls_parameters_bound_versions_and_cipher_suites() {
    let (tmp, certs, config) = dirs();
    certificates(&certs, &["modern.example", "legacy.example"]);
    let backend = Backend::start("alpha");
    let port = free_port();
    let yaml = [
        gateway(port),
        upstream("alpha", backend.port),
        ssl_virtual_service(
            "modern",
            "modern.example",
            &certs,
            "    parameters: {minimumProtocolVersion: TLSv1_3}\n",
            "alpha",
        ),
        ssl_virtual_service(
            "legacy",
            "legacy.example",
            &certs,
            "    parameters: {maximumProtocolVersion: TLSv1_2, cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256]}\n",
            "alpha",
        ),
    ]
    .join("---\n");
    fs::write(config.join("gloo.yaml"), yaml).expect("write config");
    let gloo = gloo_run(&config, free_port(), tmp.path());
    let _logs = LogsOnPanic(&config, vec![&gloo]);
    let ca = certs.join("ca.crt");
    let ok = |host: &str, extra: &[&str]| {
        let r = poll(&format!("{host} with {extra:?}"), || {
            support::curl_https(port, host, &ca, extra)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200, "{host} with {extra:?}: {}", r.body);
    };
    let refused = |host: &str, extra: &[&str]| {
        let r = support::curl_https(port, host, &ca, extra);
        assert!(
            r.is_err(),
            "{host} with {extra:?} should fail the handshake: {:?}",
            r.map(|r| r.status)
        );
    };
    ok("modern.example", &[]);
    refused("modern.example", &["--tls-max", "1.2"]);
    ok("legacy.example", &[]);
    ok(
        "legacy.example",
        &[
            "--tls-max",
            "1.2",
            "--ciphers",
            "ECDHE-RSA-AES128-GCM-SHA256",
        ],
    );
    refused("legacy.example", &["--tlsv1.3"]);
    refused(
        "legacy.example",
        &[
            "--tls-max",
            "1.2",
            "--ciphers",
            "ECDHE-RSA-AES256-GCM-SHA384",
        ],
    );
}

/// An upstream's certificate is verified against its `rootCa`, and its names against
/// `verifySubjectAltName`, never against the SNI, as Envoy does: a name not listed refuses the
/// upstream (503), and a CA alone reaches an upstream addressed by IP whose certificate names
/// only its host.
#[test]
fn upstream_certificates_are_checked_against_verify_subject_alt_name() {
    let (tmp, certs, config) = dirs();
    certificates(&certs, &["backend.example"]);
    let (backend, backend_port) = support::tls_backend(&certs, "backend.example");
    let port = free_port();
    let ca = certs.join("ca.crt");
    let tls_upstream = |name: &str, ssl: &str| {
        format!(
            "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  static:\n    hosts: [{{addr: 127.0.0.1, port: {backend_port}}}]\n  sslConfig:\n    sslFiles: {{rootCa: {}}}\n{ssl}",
            ca.display()
        )
    };
    let route = |prefix: &str, upstream: &str| {
        format!("    - matchers: [{{prefix: {prefix}}}]\n      routeAction: {{single: {{upstream: {{name: {upstream}, namespace: gloo-system}}}}}}\n")
    };
    let yaml = [
        format!("apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: plain, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n  httpGateway: {{}}\n"),
        tls_upstream("pinned", "    sni: backend.example\n    verifySubjectAltName: [backend.example]\n"),
        tls_upstream("wrong", "    sni: backend.example\n    verifySubjectAltName: [other.example, spiffe://other]\n"),
        tls_upstream("by-ip", ""),
        format!(
            "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: routes, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n{}{}{}",
            route("/pinned", "pinned"),
            route("/wrong", "wrong"),
            route("/ip", "by-ip"),
        ),
    ]
    .join("---\n");
    fs::write(config.join("gloo.yaml"), yaml).expect("write config");
    let gloo = gloo_run(&config, free_port(), tmp.path());
    let _logs = LogsOnPanic(&config, vec![&gloo, &backend]);
    for path in ["/pinned", "/ip"] {
        let r = poll(&format!("{path} through to the TLS backend"), || {
            let r = support::http_get(port, path).map_err(|e| e.to_string())?;
            if r.status == 200 {
                Ok(r)
            } else {
                Err(format!("{} {}", r.status, r.body))
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.body.starts_with("tls-ok"), "{path}: {}", r.body);
    }
    let r = support::http_get(port, "/wrong").expect("an answer");
    assert_eq!(
        r.status, 503,
        "a certificate without a listed name: {}",
        r.body
    );
}

/// A VirtualService's `verifySubjectAltName` admits only client certificates that carry one of
/// its names, though others are signed by the same CA.
#[test]
fn client_certificates_must_carry_a_listed_name() {
    let (tmp, certs, config) = dirs();
    certificates(
        &certs,
        &["mtls.example", "client.example", "intruder.example"],
    );
    let backend = Backend::start("alpha");
    let port = free_port();
    let ca_line = format!("      rootCa: {}/ca.crt\n", certs.display());
    let vs = ssl_virtual_service(
        "mtls",
        "mtls.example",
        &certs,
        "    verifySubjectAltName: [client.example]\n",
        "alpha",
    )
    .replace("      tlsKey:", &format!("{ca_line}      tlsKey:"));
    let yaml = [gateway(port), upstream("alpha", backend.port), vs].join("---\n");
    fs::write(config.join("gloo.yaml"), yaml).expect("write config");
    let gloo = gloo_run(&config, free_port(), tmp.path());
    let _logs = LogsOnPanic(&config, vec![&gloo]);
    let ca = certs.join("ca.crt");
    let paths = |name: &str| {
        (
            certs.join(format!("{name}.crt")).display().to_string(),
            certs.join(format!("{name}.key")).display().to_string(),
        )
    };
    let (cert, key) = paths("client.example");
    let r = poll("mTLS with the listed client's certificate", || {
        support::curl_https(port, "mtls.example", &ca, &["--cert", &cert, "--key", &key])
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let before = backend.count();
    let (cert, key) = paths("intruder.example");
    let intruder =
        support::curl_https(port, "mtls.example", &ca, &["--cert", &cert, "--key", &key]);
    assert!(
        intruder.is_err() || intruder.as_ref().is_ok_and(|r| r.status == 0),
        "a certificate without a listed name must be refused: {:?}",
        intruder.map(|r| r.status)
    );
    assert_eq!(backend.count(), before, "nothing reached the backend");
}

/// An OCSP response for `name`'s certificate, signed by the test CA (`openssl ocsp` as its
/// responder): `<name>.ocsp`.
fn ocsp_response(certs: &Path, name: &str) -> std::path::PathBuf {
    let crt = format!("{name}.crt");
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in", &crt])
        .current_dir(certs)
        .output()
        .expect("run openssl");
    let serial = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_string();
    // The responder's database: the certificate, valid ("V") until 2099.
    fs::write(
        certs.join("index.txt"),
        format!("V\t991231235959Z\t\t{serial}\tunknown\t/CN={name}\n"),
    )
    .expect("write the index");
    let request = format!("{name}.ocsp-request");
    let response = format!("{name}.ocsp");
    support::openssl(
        certs,
        &[
            "ocsp",
            "-issuer",
            "ca.crt",
            "-cert",
            &crt,
            "-no_nonce",
            "-reqout",
            &request,
        ],
    );
    support::openssl(
        certs,
        &[
            "ocsp",
            "-index",
            "index.txt",
            "-rsigner",
            "ca.crt",
            "-rkey",
            "ca.key",
            "-CA",
            "ca.crt",
            "-reqin",
            &request,
            "-respout",
            &response,
            "-ndays",
            "1",
        ],
    );
    certs.join(response)
}

/// What `openssl s_client -status` says of the OCSP response the server stapled for `host`.
fn stapled(port: u16, host: &str) -> String {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            host,
        ])
        .arg("-status")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openssl s_client");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The rest of a VirtualService's `sslConfig`: `sslFiles.ocspStaple` is stapled to the
/// handshake, `alpnProtocols: [allow_empty]` offers no ALPN (so no HTTP/2 by ALPN), and
/// `transportSocketConnectTimeout` closes a connection whose handshake does not come.
#[test]
fn ocsp_staples_alpn_and_the_handshake_timeout_follow_the_ssl_config() {
    let (tmp, certs, config) = dirs();
    certificates(&certs, &["staple.example", "bare.example"]);
    let response = ocsp_response(&certs, "staple.example");
    let backend = Backend::start("alpha");
    let port = free_port();
    let staple = ssl_virtual_service(
        "staple",
        "staple.example",
        &certs,
        "    ocspStaplePolicy: LENIENT_STAPLING\n    transportSocketConnectTimeout: 1s\n",
        "alpha",
    )
    .replace(
        "      tlsKey:",
        &format!("      ocspStaple: {}\n      tlsKey:", response.display()),
    );
    let bare = ssl_virtual_service(
        "bare",
        "bare.example",
        &certs,
        "    alpnProtocols: [allow_empty]\n",
        "alpha",
    );
    let yaml = [gateway(port), upstream("alpha", backend.port), staple, bare].join("---\n");
    fs::write(config.join("gloo.yaml"), yaml).expect("write config");
    let gloo = gloo_run(&config, free_port(), tmp.path());
    let _logs = LogsOnPanic(&config, vec![&gloo]);
    let ca = certs.join("ca.crt");
    let r = poll("staple.example over HTTP/2", || {
        support::curl_https(port, "staple.example", &ca, &["--http2"])
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((r.status, r.http_version.as_str()), (200, "2"));
    let r = support::curl_https(port, "bare.example", &ca, &["--http2"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (r.status, r.http_version.as_str()),
        (200, "1.1"),
        "no ALPN, so no HTTP/2"
    );

    let with_staple = stapled(port, "staple.example");
    assert!(
        with_staple.contains("OCSP Response Status: successful")
            && with_staple.contains("Cert Status: good"),
        "{with_staple}"
    );
    let without = stapled(port, "bare.example");
    assert!(
        without.contains("OCSP response: no response sent"),
        "{without}"
    );

    // A connection that never starts its handshake is closed after the 1 s the chain allows
    // (10 s when nothing is configured).
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    idle.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("read timeout");
    let mut byte = [0u8; 1];
    let read = std::io::Read::read(&mut idle, &mut byte);
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the proxy should close the idle connection within 5 s: {read:?}"
    );
}

/// A CA, a server certificate for each of `servers` whose SANs also carry the URI
/// `spiffe://gloo.test/gateway`, and `client.crt`, a client certificate with a subject that
/// needs RFC 2253 escaping and DNS, URI and email SANs, made by `openssl` in `dir`.
fn xfcc_certificates(dir: &Path, servers: &[&str]) {
    support::certificate_authority(dir);
    for server in servers {
        support::signed_certificate(
            dir,
            server,
            &format!("/CN={server}"),
            &format!("DNS:{server},URI:spiffe://gloo.test/gateway"),
        );
    }
    support::signed_certificate(
        dir,
        "client",
        "/C=US/ST=Test State/O=Gloo, Test/OU=#edge/CN=client.example",
        "DNS:client.example,DNS:alt.example,URI:spiffe://gloo.test/client,email:ops@example.com",
    );
}

/// `forwardClientCertDetails` in each of its five modes, with `setCurrentClientCertDetails`,
/// through gloo and through Envoy on the same config: a client's own `x-forwarded-client-cert`
/// is removed, passed on, appended to or replaced exactly as Envoy does, on connections with
/// a client certificate and without one, and the element gloo writes (`By`, `Hash`, `Cert`,
/// `Chain`, `Subject`, `URI`, `DNS`) is byte for byte Envoy's.
#[test]
fn x_forwarded_client_cert_matches_envoy() {
    let (tmp, certs, _) = dirs();
    xfcc_certificates(&certs, &["mtls.example", "optional.example"]);
    let backend = Backend::start("alpha");
    let modes: [(&str, &str); 6] = [
        ("SANITIZE", ""),
        ("FORWARD_ONLY", ""),
        ("ALWAYS_FORWARD_ONLY", ""),
        ("APPEND_FORWARD", "{subject: true, uri: true}"),
        (
            "SANITIZE_SET",
            "{subject: true, cert: true, chain: true, dns: true, uri: true}",
        ),
        ("SANITIZE_SET", ""),
    ];
    let config = |ports: &[u16]| -> String {
        let dir = certs.display();
        let mut docs = vec![upstream("alpha", backend.port)];
        for (i, ((mode, details), port)) in modes.iter().zip(ports).enumerate() {
            let details = if details.is_empty() {
                String::new()
            } else {
                format!("\n        setCurrentClientCertDetails: {details}")
            };
            docs.push(format!(
                "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: xfcc-{i}, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n  ssl: true\n  httpGateway:\n    options:\n      httpConnectionManagerSettings:\n        forwardClientCertDetails: {mode}{details}\n"
            ));
        }
        // Client certificates required on one name, optional (checked when sent) on the other.
        for (name, one_way) in [("mtls.example", false), ("optional.example", true)] {
            docs.push(format!(
                r#"apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: {vs}, namespace: gloo-system}}
spec:
  sslConfig:
    sslFiles:
      tlsCert: {dir}/{name}.crt
      tlsKey: {dir}/{name}.key
      rootCa: {dir}/ca.crt
    oneWayTls: {one_way}
    sniDomains: [{name}]
  virtualHost:
    domains: [{name}]
    routes:
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: alpha, namespace: gloo-system}}}}}}
"#,
                vs = name.replace('.', "-"),
            ));
        }
        docs.join("---\n")
    };
    let envoy_ports: Vec<u16> = modes.iter().map(|_| free_port()).collect();
    let gloo_ports: Vec<u16> = modes.iter().map(|_| free_port()).collect();
    let (envoy_dir, gloo_dir) = (tmp.path().join("envoy"), tmp.path().join("gloo"));
    for (dir, ports) in [(&envoy_dir, &envoy_ports), (&gloo_dir, &gloo_ports)] {
        fs::create_dir_all(dir.join("config")).expect("config dir");
        fs::write(dir.join("config").join("gloo.yaml"), config(ports)).expect("write config");
    }
    let both = support::SideBySide::start(&envoy_dir, &gloo_dir);
    let _logs = LogsOnPanic(&gloo_dir.join("config"), both.with(&[]));

    let ca = certs.join("ca.crt");
    let (cert, key) = (certs.join("client.crt"), certs.join("client.key"));
    let with_cert = [
        "--cert",
        cert.to_str().expect("path"),
        "--key",
        key.to_str().expect("path"),
    ];
    // Every listener of both proxies serves before anything is compared.
    for port in envoy_ports.iter().chain(&gloo_ports) {
        poll(&format!("mTLS on port {port}"), || {
            let r = support::curl_https(*port, "mtls.example", &ca, &with_cert)?;
            (r.status == 200)
                .then_some(())
                .ok_or(format!("{}: {}", r.status, r.body))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let claimed = "By=spiffe://elsewhere;Hash=0000";
    let mut mismatches = Vec::new();
    for (i, (mode, details)) in modes.iter().enumerate() {
        for (host, client_cert) in [
            ("mtls.example", true),
            ("optional.example", true),
            ("optional.example", false),
        ] {
            let mut seen = Vec::new();
            for (proxy, ports) in [("envoy", &envoy_ports), ("gloo", &gloo_ports)] {
                let case = format!("{proxy}-{i}-{host}-{client_cert}");
                let mut args = vec![
                    "-H".to_string(),
                    format!("x-forwarded-client-cert: {claimed}"),
                    "-H".to_string(),
                    format!("x-case: {case}"),
                ];
                if client_cert {
                    args.extend(with_cert.iter().map(|s| s.to_string()));
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let answer = support::curl_https(ports[i], host, &ca, &args);
                let xfcc = backend
                    .seen()
                    .iter()
                    .find(|s| s.header("x-case") == Some(case.as_str()))
                    .map(|s| {
                        s.headers
                            .iter()
                            .filter(|(k, _)| k == "x-forwarded-client-cert")
                            .map(|(_, v)| v.clone())
                            .collect::<Vec<_>>()
                    });
                seen.push(match (answer, xfcc) {
                    (Ok(r), Some(values)) if r.status == 200 => format!("{values:?}"),
                    (Ok(r), _) => format!("answered {}: {}", r.status, r.body),
                    (Err(e), _) => format!("failed: {e}"),
                });
            }
            eprintln!(
                "[{mode} {details} {host} cert={client_cert}]\n  envoy {}\n  gloo  {}",
                seen[0], seen[1]
            );
            if seen[0] != seen[1] {
                mismatches.push(format!(
                    "{mode} {details} to {host}, client certificate {client_cert}:\n  envoy: {}\n  gloo:  {}",
                    seen[0], seen[1]
                ));
            }
        }
    }
    // The premise: Envoy built an element with every detail.
    let full = backend
        .seen()
        .iter()
        .find(|s| s.header("x-case") == Some("envoy-4-mtls.example-true"))
        .and_then(|s| s.header("x-forwarded-client-cert").map(str::to_string))
        .unwrap_or_default();
    for part in [
        "By=spiffe://gloo.test/gateway;Hash=",
        ";Cert=\"",
        ";Chain=\"",
        ";Subject=\"",
        ";URI=spiffe://gloo.test/client",
        ";DNS=client.example;DNS=alt.example",
    ] {
        if !full.contains(part) {
            mismatches.push(format!(
                "Envoy's SANITIZE_SET element lacks {part:?}: {full:?}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
