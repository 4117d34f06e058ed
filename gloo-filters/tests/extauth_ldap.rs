//! Gloo's LDAP step against a real OpenLDAP `slapd` (`GLOO_TEST_SLAPD`), started here with
//! the memberof overlay and Gloo's guide directory: marco (developers), rick (developers,
//! managers), scott (developers, sales, managers; his own `memberOf` is readable only by the
//! `cn=reader` service account). LDAP over TLS against a slapd listening on `ldaps://` only,
//! with certificates `openssl` makes; the connection pool observed through slapd's
//! `cn=Monitor` connection counters.

mod support {
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod certs;
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod redis_server;
    pub mod slapd;
}

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use gloo_filters::extauth::config::ExtAuthConfig;
use gloo_filters::extauth::{AuthConfig, CheckRequest, Decision};
use serde_json::{json, Value};

use support::slapd::{Slapd, ADMIN_DN, ADMIN_PASSWORD, READER_DN, READER_PASSWORD, SUFFIX};

const PEOPLE: &str = "ou=people,dc=solo,dc=io";
const MANAGERS: &str = "cn=managers,ou=groups,dc=solo,dc=io";
const TEMPLATE: &str = "uid=%s,ou=people,dc=solo,dc=io";

async fn add(ldap: &mut ldap3::Ldap, dn: &str, attrs: &[(&str, &[&str])]) {
    let attrs: Vec<(&str, HashSet<&str>)> = attrs
        .iter()
        .map(|(name, values)| (*name, values.iter().copied().collect()))
        .collect();
    ldap.add(dn, attrs)
        .await
        .and_then(|r| r.success())
        .unwrap_or_else(|e| panic!("add {dn}: {e}"));
}

/// The ACL hiding scott's `memberOf` from scott himself.
fn scott_acl() -> String {
    let scott = format!("uid=scott,{PEOPLE}");
    format!("to dn.exact=\"{scott}\" attrs=memberOf by dn.exact=\"{READER_DN}\" read by * none")
}

/// slapd with Gloo's guide directory; scott's `memberOf` hidden from scott himself.
async fn directory() -> Slapd {
    let slapd = Slapd::start(&[&scott_acl()]);
    populate(&slapd).await;
    slapd
}

/// A connection to `slapd` bound as its root DN (its certificate not checked: the tests check
/// the step's TLS, not their own).
async fn admin(slapd: &Slapd) -> ldap3::Ldap {
    let settings = ldap3::LdapConnSettings::new().set_no_tls_verify(true);
    let (conn, mut ldap) = ldap3::LdapConnAsync::with_settings(settings, &slapd.url())
        .await
        .expect("connect to slapd");
    ldap3::drive!(conn);
    ldap.simple_bind(ADMIN_DN, ADMIN_PASSWORD)
        .await
        .and_then(|r| r.success())
        .expect("bind as admin");
    ldap
}

/// Gloo's guide directory in `slapd`.
async fn populate(slapd: &Slapd) {
    let mut ldap = admin(slapd).await;
    add(
        &mut ldap,
        SUFFIX,
        &[
            ("objectClass", &["dcObject", "organization"]),
            ("o", &["solo"]),
            ("dc", &["solo"]),
        ],
    )
    .await;
    add(
        &mut ldap,
        READER_DN,
        &[
            (
                "objectClass",
                &["organizationalRole", "simpleSecurityObject"],
            ),
            ("cn", &["reader"]),
            ("userPassword", &[READER_PASSWORD]),
        ],
    )
    .await;
    for ou in ["people", "groups"] {
        add(
            &mut ldap,
            &format!("ou={ou},{SUFFIX}"),
            &[("objectClass", &["organizationalUnit"]), ("ou", &[ou])],
        )
        .await;
    }
    for user in ["marco", "rick", "scott"] {
        let password = format!("{user}pwd");
        add(
            &mut ldap,
            &format!("uid={user},{PEOPLE}"),
            &[
                ("objectClass", &["inetOrgPerson"]),
                ("uid", &[user]),
                ("cn", &[user]),
                ("sn", &[user]),
                ("userPassword", &[&password]),
            ],
        )
        .await;
    }
    let member = |u: &str| format!("uid={u},{PEOPLE}");
    for (group, members) in [
        ("developers", vec!["marco", "rick", "scott"]),
        ("managers", vec!["rick", "scott"]),
        ("sales", vec!["scott"]),
    ] {
        let members: Vec<String> = members.into_iter().map(member).collect();
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        add(
            &mut ldap,
            &format!("cn={group},ou=groups,{SUFFIX}"),
            &[
                ("objectClass", &["groupOfNames"]),
                ("cn", &[group]),
                ("member", &members),
            ],
        )
        .await;
    }
    let _ = ldap.unbind().await;
}

fn config(kind: &str, step: Value) -> AuthConfig {
    let json = json!({"authConfigRefName": "gloo-system.ldap", "configs": [{kind: step}]});
    AuthConfig::from_config(&ExtAuthConfig::from_json(&json.to_string()).expect("parses"))
        .expect("builds")
}

fn request(credentials: Option<(&str, &str)>) -> CheckRequest {
    let mut request = CheckRequest::default();
    if let Some((user, password)) = credentials {
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        request
            .headers
            .insert("authorization", value.parse().expect("header"));
    }
    request
}

/// `Ok(user id)` or `Err(status)`.
async fn outcome(auth: &AuthConfig, credentials: Option<(&str, &str)>) -> Result<String, u16> {
    match auth.check(&request(credentials)).await {
        Decision::Allow(allowed) => Ok(allowed.user_id.unwrap_or_default()),
        Decision::Deny(denied) => Err(denied.status.as_u16()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_binding_authenticates_and_checks_groups() {
    let slapd = directory().await;
    let auth = config(
        "ldap",
        json!({"address": slapd.address(), "userDnTemplate": TEMPLATE,
               "allowedGroups": [MANAGERS], "searchFilter": "(objectClass=*)"}),
    );
    assert_eq!(outcome(&auth, None).await, Err(401));
    assert_eq!(
        outcome(&auth, Some(("rick", "rickpwd"))).await,
        Ok("rick".into())
    );
    // A developer, not a manager.
    assert_eq!(outcome(&auth, Some(("marco", "marcopwd"))).await, Err(403));
    assert_eq!(outcome(&auth, Some(("rick", "marcopwd"))).await, Err(401));
    assert_eq!(outcome(&auth, Some(("john", "doe"))).await, Err(401));
    // An empty password would be an anonymous bind, which slapd accepts.
    assert_eq!(outcome(&auth, Some(("rick", ""))).await, Err(401));
    // DN injection: the special characters are removed, so this is no one's DN.
    assert_eq!(
        outcome(&auth, Some(("rick,ou=people", "rickpwd"))).await,
        Err(401)
    );
    // scott is a manager, but may not read his own memberOf.
    assert_eq!(outcome(&auth, Some(("scott", "scottpwd"))).await, Err(403));

    // Attribute and group names compared ignoring case; the default search filter.
    let auth = config(
        "ldap",
        json!({"address": slapd.url(), "userDnTemplate": TEMPLATE,
               "membershipAttributeName": "MEMBEROF",
               "allowedGroups": ["CN=Managers,OU=Groups,DC=solo,DC=io"]}),
    );
    assert_eq!(
        outcome(&auth, Some(("rick", "rickpwd"))).await,
        Ok("rick".into())
    );
    assert_eq!(outcome(&auth, Some(("marco", "marcopwd"))).await, Err(403));

    // A search filter the entry does not match: not found, 403.
    let auth = config(
        "ldap",
        json!({"address": slapd.address(), "userDnTemplate": TEMPLATE,
               "allowedGroups": [MANAGERS], "searchFilter": "(uid=nobody)"}),
    );
    assert_eq!(outcome(&auth, Some(("rick", "rickpwd"))).await, Err(403));

    // Authentication only.
    let auth = config(
        "ldap",
        json!({"address": slapd.address(), "userDnTemplate": TEMPLATE,
               "disableGroupChecking": true}),
    );
    assert_eq!(
        outcome(&auth, Some(("marco", "marcopwd"))).await,
        Ok("marco".into())
    );
    assert_eq!(outcome(&auth, Some(("marco", "rickpwd"))).await, Err(401));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_reads_the_groups() {
    let slapd = directory().await;
    let internal = |password: &str| {
        config(
            "ldapInternal",
            json!({"address": slapd.address(), "userDnTemplate": TEMPLATE,
                   "allowedGroups": [MANAGERS],
                   "groupLookupSettings": {"username": READER_DN, "password": password,
                                           "checkGroupsWithServiceAccount": true}}),
        )
    };
    let auth = internal(READER_PASSWORD);
    // The reader sees scott's groups.
    assert_eq!(
        outcome(&auth, Some(("scott", "scottpwd"))).await,
        Ok("scott".into())
    );
    assert_eq!(
        outcome(&auth, Some(("rick", "rickpwd"))).await,
        Ok("rick".into())
    );
    assert_eq!(outcome(&auth, Some(("marco", "marcopwd"))).await, Err(403));
    // The user's own password is still checked.
    assert_eq!(outcome(&auth, Some(("scott", "rickpwd"))).await, Err(401));
    // A service account that cannot bind: 500 (Gloo's documented answer).
    let broken = internal("wrong");
    assert_eq!(outcome(&broken, Some(("rick", "rickpwd"))).await, Err(500));
    assert_eq!(outcome(&broken, Some(("rick", "nope"))).await, Err(401));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_combines_with_other_steps_and_fails_closed() {
    let slapd = directory().await;
    let json = json!({"authConfigRefName": "gloo-system.either", "booleanExpr": "key || ldap",
    "configs": [
        {"name": "ldap", "ldap": {"address": slapd.address(), "userDnTemplate": TEMPLATE,
                                  "allowedGroups": [MANAGERS]}},
        {"name": "key", "apiKeyAuth": {"validApiKeys": {"s3cr3t": {"username": "robot"}}}}
    ]});
    let auth =
        AuthConfig::from_config(&ExtAuthConfig::from_json(&json.to_string()).expect("parses"))
            .expect("builds");
    assert_eq!(
        outcome(&auth, Some(("rick", "rickpwd"))).await,
        Ok("rick".into())
    );
    let mut with_key = request(None);
    with_key
        .headers
        .insert("api-key", "s3cr3t".parse().expect("header"));
    assert!(
        matches!(auth.check(&with_key).await, Decision::Allow(a) if a.user_id.as_deref() == Some("robot"))
    );
    assert_eq!(outcome(&auth, Some(("marco", "marcopwd"))).await, Err(403));

    // The server gone: 500, never allowed.
    let address = slapd.address();
    drop(slapd);
    let auth = config(
        "ldap",
        json!({"address": address, "userDnTemplate": TEMPLATE, "allowedGroups": [MANAGERS]}),
    );
    assert_eq!(outcome(&auth, Some(("rick", "rickpwd"))).await, Err(500));
}

#[test]
fn ldap_config_errors_name_the_field() {
    let error = |kind: &str, step: Value| {
        let json = json!({"configs": [{kind: step}]});
        AuthConfig::from_config(&ExtAuthConfig::from_json(&json.to_string()).expect("parses"))
            .expect_err("refused")
            .to_string()
    };
    assert!(error("ldap", json!({"userDnTemplate": TEMPLATE}))
        .starts_with("configs[0].ldap.address: required"));
    assert!(error(
        "ldap",
        json!({"address": "a:389", "userDnTemplate": "uid=x"})
    )
    .starts_with("configs[0].ldap.userDnTemplate:"));
    assert!(error(
        "ldap",
        json!({"address": "ldapi://a:636", "userDnTemplate": TEMPLATE})
    )
    .starts_with("configs[0].ldap.address:"));
    assert!(error(
        "ldap",
        json!({"address": "a:389", "userDnTemplate": TEMPLATE, "pool": {"maxSize": 0}})
    )
    .starts_with("configs[0].ldap.pool.maxSize:"));
    assert!(error(
        "ldap",
        json!({"address": "a:389", "userDnTemplate": TEMPLATE,
               "pool": {"maxSize": 2, "initialSize": 3}})
    )
    .starts_with("configs[0].ldap.pool.initialSize:"));
    assert!(error(
        "ldap",
        json!({"address": "a:389", "userDnTemplate": TEMPLATE,
               "groupLookupSettings": {"credentialsSecretRef": {"name": "x"}}})
    )
    .starts_with("configs[0].ldap.groupLookupSettings:"));
    assert!(error(
        "ldapInternal",
        json!({"address": "a:389", "userDnTemplate": TEMPLATE,
               "groupLookupSettings": {"checkGroupsWithServiceAccount": true}})
    )
    .starts_with("configs[0].ldapInternal.groupLookupSettings:"));
}

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

/// slapd's connection counters (`cn=Monitor`): (opened since it started, open now), both
/// counting the connection that reads them.
async fn connections(slapd: &Slapd) -> (u64, u64) {
    let mut ldap = admin(slapd).await;
    let (entries, _) = ldap
        .search(
            "cn=Connections,cn=Monitor",
            ldap3::Scope::OneLevel,
            "(|(cn=Total)(cn=Current))",
            vec!["cn", "monitorCounter"],
        )
        .await
        .and_then(|r| r.success())
        .expect("read cn=Monitor");
    let _ = ldap.unbind().await;
    let mut counters = (None, None);
    for entry in entries {
        let entry = ldap3::SearchEntry::construct(entry);
        let counter = entry.attrs.get("monitorCounter").and_then(|v| v.first());
        let counter: Option<u64> = counter.and_then(|c| c.parse().ok());
        match entry.dn.split(',').next() {
            Some("cn=Total") => counters.0 = counter,
            Some("cn=Current") => counters.1 = counter,
            _ => {}
        }
    }
    match counters {
        (Some(total), Some(current)) => (total, current),
        other => panic!("no connection counters in cn=Monitor: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_reuse_pooled_connections_and_the_pool_keeps_at_most_max_size() {
    let slapd = directory().await;
    let auth = Arc::new(config(
        "ldapInternal",
        json!({"address": slapd.address(), "userDnTemplate": TEMPLATE,
               "allowedGroups": [MANAGERS], "pool": {"maxSize": 2, "initialSize": 1},
               "groupLookupSettings": {"username": READER_DN, "password": READER_PASSWORD,
                                       "checkGroupsWithServiceAccount": true}}),
    ));
    assert_eq!(
        outcome(&auth, Some(("scott", "scottpwd"))).await,
        Ok("scott".into())
    );
    // One check at a time: every check binds (as the user, then as the service account) on
    // the pooled connection; none opens a new one (the only new connection is the counters'
    // own).
    let (before, _) = connections(&slapd).await;
    for (user, password, expected) in [
        ("rick", "rickpwd", Ok("rick".to_string())),
        ("marco", "marcopwd", Err(403)),
        ("scott", "rickpwd", Err(401)),
        ("scott", "scottpwd", Ok("scott".to_string())),
        ("marco", "marcopwd", Err(403)),
        ("rick", "rickpwd", Ok("rick".to_string())),
    ] {
        assert_eq!(
            outcome(&auth, Some((user, password))).await,
            expected,
            "{user}"
        );
    }
    let (after, _) = connections(&slapd).await;
    assert_eq!(after - before, 1, "sequential checks opened connections");

    // Many at once: the pool runs out, checks open connections on the fly; all answer right.
    let mut checks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let auth = Arc::clone(&auth);
        checks.spawn(async move {
            let (user, expected) = if i % 2 == 0 {
                ("rick", Ok("rick".to_string()))
            } else {
                ("marco", Err(403))
            };
            let password = format!("{user}pwd");
            (outcome(&auth, Some((user, &password))).await, expected)
        });
    }
    while let Some(result) = checks.join_next().await {
        let (got, expected) = result.expect("check task");
        assert_eq!(got, expected);
    }
    // Afterwards the pool keeps maxSize (2) of them: the others were closed. slapd counts a
    // closed connection once it has read the close, so the count is polled.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, current) = connections(&slapd).await;
        // Minus the counters' own connection.
        if current - 1 == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} connections stay open, expected the pool's 2",
            current - 1
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And they still serve.
    assert_eq!(
        outcome(&auth, Some(("rick", "rickpwd"))).await,
        Ok("rick".into())
    );
}
