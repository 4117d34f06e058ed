//! Gloo's LDAP step against a real OpenLDAP `slapd` (`GLOO_TEST_SLAPD`), started here with
//! the memberof overlay and Gloo's guide directory: marco (developers), rick (developers,
//! managers), scott (developers, sales, managers; his own `memberOf` is readable only by the
//! `cn=reader` service account). The connection pool observed through slapd's `cn=Monitor`
//! connection counters. LDAP over TLS is `extauth_ldaps.rs` (its own process: the system's CA
//! certificates are read once per process).

mod support {
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod ldap_directory;
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod redis_server;
    pub mod slapd;
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use gloo_filters::extauth::config::ExtAuthConfig;
use gloo_filters::extauth::{AuthConfig, Decision};
use serde_json::{json, Value};

use support::ldap_directory::{admin, config, directory, outcome, request, MANAGERS, TEMPLATE};
use support::slapd::{Slapd, READER_DN, READER_PASSWORD};

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
