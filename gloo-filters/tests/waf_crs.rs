//! The WAF layer with the real OWASP Core Rule Set (Debian's `modsecurity-crs`, CRS 3.3), loaded
//! the way Gloo's `coreRuleSet` loads it: the user's rule sets, then the CRS settings, then
//! the CRS rules directory. `GLOO_TEST_CRS_SETUP` and `GLOO_TEST_CRS_RULES` name the setup file
//! and the rules directory (`scripts/test.sh` installs the packages and sets both).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gloo_filters::waf::{AuditLog, AuditLogAction, RuleSet, WafBody, WafLayer, WafRules};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, ServiceExt};

mod support {
    pub mod crs;
}
use support::crs;

/// Gloo's translation of `ruleSets: [{ruleStr: <user>}]` plus `coreRuleSet:
/// {customSettingsFile: <crs-setup.conf>}`.
fn crs(user: &str) -> WafRules {
    WafRules::compile(crs::rule_sets(user)).expect("the CRS compiles")
}

const ENGINE_ON: &str = "SecRuleEngine On\nSecRequestBodyAccess On\n";

struct Outcome {
    status: StatusCode,
    body: Bytes,
    upstream_saw: Option<Bytes>,
    audit: Option<AuditLog>,
}

impl Outcome {
    fn rule_ids(&self) -> Vec<String> {
        self.audit
            .as_ref()
            .map(AuditLog::rule_ids)
            .unwrap_or_default()
    }
}

async fn run(layer: &WafLayer, request: Request<Full<Bytes>>) -> Outcome {
    let saw = Arc::new(Mutex::new(None));
    let record = saw.clone();
    let svc = layer.layer(service_fn(move |req: Request<WafBody<Full<Bytes>>>| {
        let record = record.clone();
        async move {
            let body = req.into_body().collect().await?.to_bytes();
            *record.lock().unwrap() = Some(body);
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"upstream"))))
        }
    }));
    let response = svc.oneshot(request).await.expect("infallible");
    let status = response.status();
    let audit = response.extensions().get::<AuditLog>().cloned();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("infallible")
        .to_bytes();
    let upstream_saw = saw.lock().unwrap().take();
    Outcome {
        status,
        body,
        upstream_saw,
        audit,
    }
}

/// A browser-like GET.
fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .header("host", "shop.example.com")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .header("accept", "text/html,application/xhtml+xml")
        .header("accept-language", "en-US,en;q=0.5")
        .body(Full::default())
        .unwrap()
}

fn post_form(uri: &str, body: &str) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("host", "shop.example.com")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .header("accept", "*/*")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", body.len().to_string())
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_injection_in_the_query_is_refused_by_the_crs() {
    let layer = WafLayer::new(crs(ENGINE_ON)).audit_log(AuditLogAction::Always);
    let out = run(&layer, get("/products?id=1%27%20or%20%271%27%3D%271")).await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    assert_eq!(out.body, "ModSecurity: intervention occurred");
    assert!(out.upstream_saw.is_none());
    let ids = out.rule_ids();
    // libinjection's SQLi detection, then the inbound anomaly score's verdict.
    assert!(ids.contains(&"942100".to_string()), "{ids:?}");
    assert_eq!(ids.last().map(String::as_str), Some("949110"), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_scripting_is_refused_by_the_crs() {
    let layer = WafLayer::new(crs(ENGINE_ON)).audit_log(AuditLogAction::RelevantOnly);
    let out = run(&layer, get("/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")).await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    let ids = out.rule_ids();
    assert!(ids.contains(&"941100".to_string()), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benign_requests_pass_the_crs() {
    let layer = WafLayer::new(crs(ENGINE_ON)).audit_log(AuditLogAction::RelevantOnly);
    for request in [
        get("/"),
        get("/products?page=2&sort=price"),
        get("/search?q=blue+shoes"),
        post_form("/cart", "item=1234&quantity=2"),
    ] {
        let uri = request.uri().clone();
        let out = run(&layer, request).await;
        assert_eq!(out.status, StatusCode::OK, "{uri}: {:?}", out.rule_ids());
        assert_eq!(out.body, "upstream");
        // Nothing matched: no relevant audit log.
        assert!(out.audit.is_none(), "{uri}: {:?}", out.audit);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_injection_in_a_form_body_is_refused_unless_only_headers_are_inspected() {
    let attack = "user=admin&password=x%27%20or%20%271%27%3D%271";
    let layer = WafLayer::new(crs(ENGINE_ON)).audit_log(AuditLogAction::Always);
    let out = run(&layer, post_form("/login", attack)).await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    assert!(
        out.rule_ids().contains(&"942100".to_string()),
        "{:?}",
        out.rule_ids()
    );
    assert!(out.upstream_saw.is_none());

    // requestHeadersOnly: the body is not fed to ModSecurity, and reaches the upstream.
    let out = run(
        &layer.clone().request_headers_only(true),
        post_form("/login", attack),
    )
    .await;
    assert_eq!(out.status, StatusCode::OK, "{:?}", out.rule_ids());
    assert_eq!(out.upstream_saw.as_deref(), Some(attack.as_bytes()));

    // With `SecRequestBodyAccess Off`, ModSecurity itself skips the body.
    let no_body_access = WafLayer::new(crs("SecRuleEngine On\nSecRequestBodyAccess Off\n"));
    let out = run(&no_body_access, post_form("/login", attack)).await;
    assert_eq!(out.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_buffer_limit_is_refused_before_inspection() {
    let layer = WafLayer::new(crs(ENGINE_ON)).max_body_bytes(1024);
    let small = format!("item=1234&note={}", "a".repeat(900));
    assert_eq!(
        run(&layer, post_form("/cart", &small)).await.status,
        StatusCode::OK
    );
    let large = format!("item=1234&note={}", "a".repeat(1100));
    let out = run(&layer, post_form("/cart", &large)).await;
    assert_eq!(out.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(out.body, "Payload Too Large");
    assert!(out.upstream_saw.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_rules_and_message_work_beside_the_crs() {
    let user = format!(
        "{ENGINE_ON}SecRule REQUEST_HEADERS:User-Agent \"scammer\" \"deny,status:418,id:107,phase:1,msg:'blocked scammer'\"\n"
    );
    let layer = WafLayer::new(crs(&user))
        .custom_intervention_message("ModSecurity intervention! Custom message details here..");
    let mut request = get("/");
    request
        .headers_mut()
        .insert("user-agent", "scammer".parse().unwrap());
    let out = run(&layer, request).await;
    assert_eq!(out.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(
        out.body,
        "ModSecurity intervention! Custom message details here.."
    );
    // The CRS still refuses with its own status, and the same message.
    let out = run(&layer, get("/?id=1%27%20or%20%271%27%3D%271")).await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    assert_eq!(
        out.body,
        "ModSecurity intervention! Custom message details here.."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crs_without_its_settings_refuses_everything() {
    // Gloo's `coreRuleSet: {}` includes the rules only; CRS rule 901001 then refuses every
    // request until crs-setup (`tx.crs_setup_version`) is configured, as the CRS documents.
    let rules = WafRules::compile([
        RuleSet::rules("SecRuleEngine On"),
        RuleSet::new().directory(crs::rules_dir()),
    ])
    .unwrap();
    let layer = WafLayer::new(rules).audit_log(AuditLogAction::Always);
    let out = run(&layer, get("/")).await;
    assert_eq!(out.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        out.rule_ids().contains(&"901001".to_string()),
        "{:?}",
        out.rule_ids()
    );
}
