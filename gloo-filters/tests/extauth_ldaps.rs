//! Gloo's LDAP step over `ldaps://` against a real OpenLDAP `slapd` (`GLOO_TEST_SLAPD`)
//! listening for LDAP over TLS only, with certificates `openssl` makes. The step trusts the
//! system's CA certificates, read once per process: here `SSL_CERT_FILE`, set before any TLS
//! client exists, which is why this test has a binary of its own.

mod support {
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod certs;
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod ldap_directory;
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod redis_server;
    pub mod slapd;
}

use serde_json::json;

use support::ldap_directory::{config, outcome, populate, scott_acl, MANAGERS, TEMPLATE};
use support::slapd::{Slapd, READER_DN, READER_PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldaps_addresses_connect_over_tls_trusting_the_system_cas() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    support::certs::ca_and_leaf(path, "trusted");
    support::certs::ca_and_leaf(path, "stranger");
    // The system's CA certificates are read once per process: set before any TLS client.
    std::env::set_var("SSL_CERT_FILE", path.join("trusted.crt"));
    std::env::remove_var("SSL_CERT_DIR");
    // Both listen for LDAP over TLS only.
    let trusted = Slapd::start_ldaps(
        &[&scott_acl()],
        &path.join("trusted-leaf.crt"),
        &path.join("trusted-leaf.key"),
    );
    let stranger = Slapd::start_ldaps(
        &[&scott_acl()],
        &path.join("stranger-leaf.crt"),
        &path.join("stranger-leaf.key"),
    );
    populate(&trusted).await;
    populate(&stranger).await;
    let step = |address: String| {
        config(
            "ldapInternal",
            json!({"address": address, "userDnTemplate": TEMPLATE,
                   "allowedGroups": [MANAGERS],
                   "groupLookupSettings": {"username": READER_DN, "password": READER_PASSWORD,
                                           "checkGroupsWithServiceAccount": true}}),
        )
    };
    let auth = step(trusted.url());
    assert!(trusted.url().starts_with("ldaps://"));
    assert_eq!(
        outcome(&auth, Some(("scott", "scottpwd"))).await,
        Ok("scott".into())
    );
    assert_eq!(outcome(&auth, Some(("marco", "marcopwd"))).await, Err(403));
    assert_eq!(outcome(&auth, Some(("scott", "nope"))).await, Err(401));
    // By host name too (the certificate names localhost).
    let by_name = step(trusted.url().replace("127.0.0.1", "localhost"));
    assert_eq!(
        outcome(&by_name, Some(("rick", "rickpwd"))).await,
        Ok("rick".into())
    );
    // Plain LDAP to the TLS port fails: the step above did speak TLS.
    let plain = step(trusted.address());
    assert_eq!(outcome(&plain, Some(("rick", "rickpwd"))).await, Err(500));
    // A server whose certificate no trusted CA signed: 500, never allowed.
    let untrusted = step(stranger.url());
    assert_eq!(
        outcome(&untrusted, Some(("rick", "rickpwd"))).await,
        Err(500)
    );
}
