//! Gloo's LDAP guide directory in a test `slapd` (marco: developers; rick: developers,
//! managers; scott: developers, sales, managers, his own `memberOf` readable only by the
//! `cn=reader` service account), and checks of an LDAP step against it.

use std::collections::HashSet;

use base64::Engine;
use gloo_filters::extauth::config::ExtAuthConfig;
use gloo_filters::extauth::{AuthConfig, CheckRequest, Decision};
use serde_json::{json, Value};

use super::slapd::{Slapd, ADMIN_DN, ADMIN_PASSWORD, READER_DN, READER_PASSWORD, SUFFIX};

pub const PEOPLE: &str = "ou=people,dc=solo,dc=io";
pub const MANAGERS: &str = "cn=managers,ou=groups,dc=solo,dc=io";
pub const TEMPLATE: &str = "uid=%s,ou=people,dc=solo,dc=io";

pub async fn add(ldap: &mut ldap3::Ldap, dn: &str, attrs: &[(&str, &[&str])]) {
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
pub fn scott_acl() -> String {
    let scott = format!("uid=scott,{PEOPLE}");
    format!("to dn.exact=\"{scott}\" attrs=memberOf by dn.exact=\"{READER_DN}\" read by * none")
}

/// slapd with Gloo's guide directory; scott's `memberOf` hidden from scott himself.
pub async fn directory() -> Slapd {
    let slapd = Slapd::start(&[&scott_acl()]);
    populate(&slapd).await;
    slapd
}

/// A connection to `slapd` bound as its root DN (its certificate not checked: the tests check
/// the step's TLS, not their own).
pub async fn admin(slapd: &Slapd) -> ldap3::Ldap {
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
pub async fn populate(slapd: &Slapd) {
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

pub fn config(kind: &str, step: Value) -> AuthConfig {
    let json = json!({"authConfigRefName": "gloo-system.ldap", "configs": [{kind: step}]});
    AuthConfig::from_config(&ExtAuthConfig::from_json(&json.to_string()).expect("parses"))
        .expect("builds")
}

pub fn request(credentials: Option<(&str, &str)>) -> CheckRequest {
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
pub async fn outcome(auth: &AuthConfig, credentials: Option<(&str, &str)>) -> Result<String, u16> {
    match auth.check(&request(credentials)).await {
        Decision::Allow(allowed) => Ok(allowed.user_id.unwrap_or_default()),
        Decision::Deny(denied) => Err(denied.status.as_u16()),
    }
}
