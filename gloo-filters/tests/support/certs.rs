//! Test certificates made by `openssl`: a CA and leaf certificates it signs for localhost and
//! 127.0.0.1, written as PEM files into a directory.

use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
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

const KEY: [&str; 5] = ["-nodes", "-days", "2", "-newkey", "rsa:2048"];

/// A CA: `<ca>.crt` and `<ca>.key`.
pub fn ca(dir: &Path, ca: &str) {
    let (ca_key, ca_crt) = (format!("{ca}.key"), format!("{ca}.crt"));
    let mut args = vec!["req", "-x509", "-subj", "/CN=test-ca"];
    args.extend(KEY);
    args.extend(["-keyout", &ca_key, "-out", &ca_crt]);
    openssl(dir, &args);
}

/// A certificate `<ca>` signed for localhost and 127.0.0.1: `<name>.crt` and `<name>.key`
/// (usable by a server or a client).
pub fn leaf(dir: &Path, ca: &str, name: &str) {
    let (ca_key, ca_crt) = (format!("{ca}.key"), format!("{ca}.crt"));
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    let mut args = vec!["req", "-x509", "-subj", "/CN=localhost", "-CA", &ca_crt];
    args.extend(KEY);
    args.extend([
        "-CAkey",
        &ca_key,
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-keyout",
        &key,
        "-out",
        &crt,
    ]);
    openssl(dir, &args);
}

/// A CA `<ca>.crt` and a certificate it signed for localhost and 127.0.0.1 (`<ca>-leaf.*`).
pub fn ca_and_leaf(dir: &Path, name: &str) {
    ca(dir, name);
    leaf(dir, name, &format!("{name}-leaf"));
}

/// A rustls server configuration with `<name>.crt` / `<name>.key`, offering `alpn`, and
/// requiring a client certificate signed by `<client_ca>.crt` when given.
pub fn server_config(
    dir: &Path,
    name: &str,
    client_ca: Option<&str>,
    alpn: &[&[u8]],
) -> std::sync::Arc<tokio_rustls::rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;
    use tokio_rustls::rustls;

    let pem = |file: String| {
        CertificateDer::pem_file_iter(dir.join(file))
            .expect("read certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("parse certificate")
    };
    let certs = pem(format!("{name}.crt"));
    let key = PrivateKeyDer::from_pem_file(dir.join(format!("{name}.key"))).expect("read key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("protocol versions");
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in pem(format!("{ca}.crt")) {
                roots.add(cert).expect("client CA");
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .expect("server certificate");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}
