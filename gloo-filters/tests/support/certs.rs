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
