//! Behaviour of the WAF layer with hand-written ModSecurity rules, end to end through tower
//! services (the OWASP CRS is exercised in `tests/waf_crs.rs`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::{service_fn, Layer, ServiceExt};

use super::*;

/// What the inner service received.
#[derive(Clone, Debug)]
struct Seen {
    body: Bytes,
    streamed: bool,
}

struct Outcome {
    status: StatusCode,
    headers: http::HeaderMap,
    extensions: http::Extensions,
    body: Bytes,
    seen: Option<Seen>,
}

impl Outcome {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn audit(&self) -> Option<Value> {
        self.extensions
            .get::<AuditLog>()
            .map(|a| serde_json::from_str(a.as_str()).expect("the audit log is JSON"))
    }
}

fn rules(text: &str) -> WafRules {
    WafRules::compile([RuleSet::rules(text)]).expect("the rules compile")
}

/// Runs `request` through `layer` over an inner service answering `status` with `body`.
async fn run(
    layer: &WafLayer,
    request: Request<Full<Bytes>>,
    status: u16,
    body: &'static str,
) -> Outcome {
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let svc = layer.layer(service_fn(move |req: Request<WafBody<Full<Bytes>>>| {
        let record = record.clone();
        async move {
            let streamed = req.body().is_streamed();
            let data = req.into_body().collect().await?.to_bytes();
            *record.lock().unwrap() = Some(Seen {
                body: data,
                streamed,
            });
            let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            response
                .headers_mut()
                .insert("content-type", "text/html".parse().unwrap());
            Ok::<_, Infallible>(response)
        }
    }));
    let response = svc.oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("infallible").to_bytes();
    let seen = seen.lock().unwrap().clone();
    Outcome {
        status: parts.status,
        headers: parts.headers,
        extensions: parts.extensions,
        body,
        seen,
    }
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .header("host", "example.com")
        .body(Full::default())
        .unwrap()
}

fn post(uri: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("host", "example.com")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

const SCAMMER: &str = r#"
SecRuleEngine On
SecRule REQUEST_HEADERS:User-Agent "scammer" "deny,status:403,id:107,phase:1,msg:'blocked scammer'"
"#;

#[tokio::test]
async fn a_phase_one_rule_refuses_with_its_status_and_the_message() {
    let layer = WafLayer::new(rules(SCAMMER));
    let mut request = get("/pets");
    request
        .headers_mut()
        .insert("user-agent", "scammer".parse().unwrap());
    let out = run(&layer, request, 200, "pets").await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    assert_eq!(out.text(), DEFAULT_INTERVENTION_MESSAGE);
    assert_eq!(out.headers["content-type"], "text/plain");
    assert_eq!(
        out.headers["content-length"],
        DEFAULT_INTERVENTION_MESSAGE.len().to_string()
    );
    assert!(out.seen.is_none(), "the upstream must not be called");
    assert!(out.extensions.get::<WafReply>().is_some());
    let it = out
        .extensions
        .get::<Intervention>()
        .expect("the intervention");
    assert_eq!(it.status(), StatusCode::FORBIDDEN);
    assert!(
        it.log().is_some_and(|l| l.contains("[id \"107\"]")),
        "{it:?}"
    );

    // Anyone else goes through, body and all.
    let mut request = post("/pets", "name=rex");
    request
        .headers_mut()
        .insert("user-agent", "curl".parse().unwrap());
    let out = run(&layer, request, 201, "created").await;
    assert_eq!(out.status, StatusCode::CREATED);
    assert_eq!(out.text(), "created");
    assert_eq!(out.seen.unwrap().body, "name=rex");
    assert!(out.extensions.get::<WafReply>().is_none());
}

#[tokio::test]
async fn the_custom_intervention_message_is_the_body() {
    let layer = WafLayer::new(rules(SCAMMER))
        .custom_intervention_message("ModSecurity intervention! Custom message details here..");
    let request = Request::get("/")
        .header("user-agent", "scammer")
        .body(Full::default())
        .unwrap();
    let out = run(&layer, request, 200, "").await;
    assert_eq!(out.status, StatusCode::FORBIDDEN);
    assert_eq!(
        out.text(),
        "ModSecurity intervention! Custom message details here.."
    );
}

#[tokio::test]
async fn without_the_rule_engine_on_nothing_is_enforced() {
    let layer = WafLayer::new(rules(
        r#"SecRule REQUEST_HEADERS:User-Agent "scammer" "deny,status:403,id:107,phase:1""#,
    ));
    let request = Request::get("/")
        .header("user-agent", "scammer")
        .body(Full::default())
        .unwrap();
    assert_eq!(run(&layer, request, 200, "").await.status, StatusCode::OK);
}

const BODY_RULE: &str = r#"
SecRuleEngine On
SecRequestBodyAccess On
SecRule ARGS_POST:name "@streq evil" "id:200,phase:2,deny,status:406,msg:'evil name'"
"#;

#[tokio::test]
async fn the_request_body_is_inspected_unless_only_headers_are() {
    let layer = WafLayer::new(rules(BODY_RULE));
    let out = run(&layer, post("/", "name=evil"), 200, "").await;
    assert_eq!(out.status, StatusCode::NOT_ACCEPTABLE);
    assert!(out.seen.is_none());
    let out = run(&layer, post("/", "name=good"), 200, "").await;
    assert_eq!(out.status, StatusCode::OK);
    let seen = out.seen.unwrap();
    assert_eq!(seen.body, "name=good");
    assert!(!seen.streamed, "an inspected body is handed on buffered");

    // requestHeadersOnly: the body streams to the upstream uninspected.
    let headers_only = WafLayer::new(rules(BODY_RULE)).request_headers_only(true);
    let out = run(&headers_only, post("/", "name=evil"), 200, "").await;
    assert_eq!(out.status, StatusCode::OK);
    let seen = out.seen.unwrap();
    assert_eq!(seen.body, "name=evil");
    assert!(seen.streamed);
}

#[tokio::test]
async fn a_request_body_over_the_limit_is_refused_with_413() {
    let layer = WafLayer::new(rules(BODY_RULE)).max_body_bytes(16);
    // 16 bytes: inspected.
    let out = run(&layer, post("/", "name=good&x=1234"), 200, "").await;
    assert_eq!(out.status, StatusCode::OK);
    // 17 bytes: refused before the upstream sees it.
    let out = run(&layer, post("/", "name=good&x=12345"), 200, "").await;
    assert_eq!(out.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(out.text(), "Payload Too Large");
    assert!(out.seen.is_none());
    assert!(out.extensions.get::<WafReply>().is_some());
    // Headers only: no limit applies.
    let layer = layer.request_headers_only(true);
    let out = run(&layer, post("/", "name=good&x=12345"), 200, "").await;
    assert_eq!(out.status, StatusCode::OK);
}

const RESPONSE_RULES: &str = r#"
SecRuleEngine On
SecResponseBodyAccess On
SecResponseBodyMimeType text/html
SecRule RESPONSE_STATUS "@streq 418" "id:300,phase:3,deny,status:502,msg:'teapot'"
SecRule RESPONSE_BODY "@contains SECRET" "id:301,phase:4,deny,status:500,msg:'leak'"
"#;

#[tokio::test]
async fn responses_are_inspected_and_replaced_on_intervention() {
    let layer = WafLayer::new(rules(RESPONSE_RULES)).custom_intervention_message("nope");
    let out = run(&layer, get("/"), 418, "tea").await;
    assert_eq!(out.status, StatusCode::BAD_GATEWAY);
    assert_eq!(out.text(), "nope");
    assert!(out.seen.is_some(), "the upstream answered first");
    let out = run(&layer, get("/"), 200, "the SECRET is out").await;
    assert_eq!(out.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(out.text(), "nope");
    let out = run(&layer, get("/"), 200, "all fine").await;
    assert_eq!(
        (out.status, out.text().as_str()),
        (StatusCode::OK, "all fine")
    );

    // responseHeadersOnly: the body is not inspected, the status still is.
    let headers_only = layer.clone().response_headers_only(true);
    let out = run(&headers_only, get("/"), 200, "the SECRET is out").await;
    assert_eq!(
        (out.status, out.text().as_str()),
        (StatusCode::OK, "the SECRET is out")
    );
    let out = run(&headers_only, get("/"), 418, "tea").await;
    assert_eq!(out.status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn response_bodies_are_inspected_only_with_response_body_access() {
    let without = rules(
        r#"SecRuleEngine On
           SecRule RESPONSE_BODY "@contains SECRET" "id:301,phase:4,deny,status:500""#,
    );
    let out = run(&WafLayer::new(without), get("/"), 200, "the SECRET is out").await;
    assert_eq!(out.status, StatusCode::OK);
    // Nor for a type `SecResponseBodyMimeType` does not list.
    let json_only = rules(
        r#"SecRuleEngine On
           SecResponseBodyAccess On
           SecResponseBodyMimeType application/json
           SecRule RESPONSE_BODY "@contains SECRET" "id:301,phase:4,deny,status:500""#,
    );
    let out = run(
        &WafLayer::new(json_only),
        get("/"),
        200,
        "the SECRET is out",
    )
    .await;
    assert_eq!(out.status, StatusCode::OK);
}

#[tokio::test]
async fn a_response_body_over_the_limit_is_inspected_in_part_and_delivered_whole() {
    let layer = WafLayer::new(rules(RESPONSE_RULES)).max_body_bytes(8);
    // The leak is within the inspected head.
    let out = run(&layer, get("/"), 200, "SECRET and a long tail").await;
    assert_eq!(out.status, StatusCode::INTERNAL_SERVER_ERROR);
    // The leak is past it: the whole body is delivered.
    let out = run(&layer, get("/"), 200, "a long head, then the SECRET").await;
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(out.text(), "a long head, then the SECRET");
}

#[tokio::test]
async fn a_redirect_action_answers_with_its_location() {
    let layer = WafLayer::new(rules(
        r#"SecRuleEngine On
           SecRule ARGS:go "@streq away" "id:400,phase:1,redirect:https://example.com/blocked""#,
    ));
    let out = run(&layer, get("/?go=away"), 200, "").await;
    assert_eq!(out.status, StatusCode::FOUND);
    assert_eq!(out.headers["location"], "https://example.com/blocked");
}

#[tokio::test]
async fn the_client_address_comes_from_the_connection() {
    // Gloo docs' IP allow list.
    let layer = WafLayer::new(rules(
        r#"SecRuleEngine On
           SecRule REMOTE_ADDR "!@ipMatch 173.175.0.0/16" "phase:1,deny,status:403,id:1,msg:'block ip'""#,
    ));
    let from = |client: &str| {
        let mut request = get("/");
        request.extensions_mut().insert(Connection::new(
            client.parse::<SocketAddr>().unwrap(),
            "10.0.0.1:8080".parse().unwrap(),
        ));
        request
    };
    assert_eq!(
        run(&layer, from("173.175.3.4:5000"), 200, "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        run(&layer, from("10.1.2.3:5000"), 200, "").await.status,
        StatusCode::FORBIDDEN
    );
    // A bare `SocketAddr` extension is the client's address too.
    let mut request = get("/");
    request
        .extensions_mut()
        .insert("173.175.9.9:1".parse::<SocketAddr>().unwrap());
    assert_eq!(run(&layer, request, 200, "").await.status, StatusCode::OK);
}

#[test]
fn rules_modsecurity_refuses_are_named() {
    let err = WafRules::compile([
        RuleSet::rules("SecRuleEngine On"),
        RuleSet::rules(r#"SecRule ARGS "@rx x" "id:1,deny,,phase:1""#),
    ])
    .unwrap_err();
    assert_eq!(err.field(), "rule_sets[1].rule_str");
    assert!(err.message().contains("syntax error"), "{err}");

    let err = WafRules::compile([RuleSet::new().file("/nonexistent/rules.conf")]).unwrap_err();
    assert_eq!(err.field(), "rule_sets[0].files[0]");
    assert!(err.message().contains("/nonexistent/rules.conf"), "{err}");

    let err = WafRules::compile([RuleSet::new().directory("/nonexistent")]).unwrap_err();
    assert_eq!(err.field(), "rule_sets[0].directory");
    assert!(err.message().contains("/nonexistent"), "{err}");

    let err = WafRules::compile([RuleSet::rules("SecRuleEngine On\0")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rule_sets[0].rule_str: contains a NUL byte"
    );
}

#[tokio::test]
async fn a_directory_loads_its_conf_files_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    // `b` removes the rule `a` adds; in the other order the removal would fail to apply.
    std::fs::write(
        dir.path().join("a.conf"),
        r#"SecRule ARGS:x "@streq 1" "id:10,phase:1,deny,status:403""#,
    )
    .unwrap();
    std::fs::write(dir.path().join("b.conf"), "SecRuleRemoveById 10").unwrap();
    std::fs::write(dir.path().join("c.conf.example"), "this is not a rule").unwrap();
    std::fs::create_dir(dir.path().join("sub.conf")).unwrap();
    let layer = WafLayer::new(
        WafRules::compile([
            RuleSet::rules("SecRuleEngine On"),
            RuleSet::new()
                .directory(dir.path())
                .with_rule_str(r#"SecRule ARGS:y "@streq 1" "id:11,phase:1,deny,status:403""#),
        ])
        .unwrap(),
    );
    assert_eq!(
        run(&layer, get("/?x=1"), 200, "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        run(&layer, get("/?y=1"), 200, "").await.status,
        StatusCode::FORBIDDEN
    );
}

const LOGGED: &str = r#"
SecRuleEngine On
SecRule ARGS:q "@contains watch" "id:500,phase:1,pass,log,msg:'watched',logdata:'%{MATCHED_VAR}'"
SecRule ARGS:q "@contains block" "id:501,phase:1,deny,status:403,log,msg:'blocked'"
"#;

#[tokio::test]
async fn audit_logs_follow_the_action() {
    let never = WafLayer::new(rules(LOGGED));
    assert!(run(&never, get("/?q=block"), 200, "")
        .await
        .audit()
        .is_none());

    let relevant = never.clone().audit_log(AuditLogAction::RelevantOnly);
    assert!(run(&relevant, get("/?q=fine"), 200, "")
        .await
        .audit()
        .is_none());
    let watched = run(&relevant, get("/?q=watch"), 200, "").await;
    assert_eq!(watched.status, StatusCode::OK);
    let log = watched.audit().expect("a rule logged");
    let t = &log["transaction"];
    assert_eq!(t["response"]["http_code"], 200);
    assert_eq!(t["request"]["method"], "GET");
    assert_eq!(t["request"]["uri"], "/?q=watch");
    assert_eq!(t["request"]["headers"]["host"], "example.com");
    assert_eq!(t["response"]["headers"]["content-type"], "text/html");
    assert_eq!(t["messages"][0]["message"], "watched");
    assert_eq!(t["messages"][0]["details"]["ruleId"], "500");
    assert_eq!(t["messages"][0]["details"]["data"], "watch");
    assert!(t["producer"]["modsecurity"]
        .as_str()
        .is_some_and(|v| v.starts_with("ModSecurity v3")));

    let blocked = run(&relevant, get("/?q=block"), 200, "").await;
    assert_eq!(blocked.status, StatusCode::FORBIDDEN);
    let log = blocked.audit().expect("an intervention is relevant");
    assert_eq!(log["transaction"]["response"]["http_code"], 403);
    let ids = blocked.extensions.get::<AuditLog>().unwrap().rule_ids();
    assert_eq!(ids, ["501"]);

    let always = never.audit_log(AuditLogAction::Always);
    let fine = run(&always, get("/?q=fine"), 204, "").await;
    let log = fine.audit().expect("always");
    assert_eq!(log["transaction"]["response"]["http_code"], 204);
    assert_eq!(log["transaction"]["messages"], serde_json::json!([]));
}

#[tokio::test]
async fn request_bytes_that_are_not_utf8_reach_the_audit_log_escaped() {
    // Rule messages quote request data, which need not be UTF-8: it must neither crash nor be
    // lost (ModSecurity escapes such bytes; anything it passes on raw is read lossily).
    let layer = WafLayer::new(rules(
        r#"SecRuleEngine On
           SecRule REQUEST_FILENAME "@contains watch" "id:600,phase:1,pass,log,msg:'path %{REQUEST_FILENAME}'""#,
    ))
    .audit_log(AuditLogAction::Always);
    let out = run(&layer, get("/watch%FF%FE?q=%FF"), 200, "").await;
    assert_eq!(out.status, StatusCode::OK);
    let log = out.audit().unwrap();
    let message = &log["transaction"]["messages"][0];
    assert_eq!(message["details"]["ruleId"], "600");
    assert_eq!(message["message"], r"path /watch\xff\xfe");
}

#[tokio::test]
async fn a_layer_shares_its_rules_across_concurrent_exchanges() {
    let layer = WafLayer::new(rules(SCAMMER));
    let mut tasks = Vec::new();
    for i in 0..32 {
        let layer = layer.clone();
        tasks.push(tokio::spawn(async move {
            let agent = if i % 2 == 0 { "scammer" } else { "curl" };
            let request = Request::get("/")
                .header("user-agent", agent)
                .body(Full::default())
                .unwrap();
            (i, run(&layer, request, 200, "").await.status)
        }));
    }
    for task in tasks {
        let (i, status) = task.await.unwrap();
        let expected = if i % 2 == 0 {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "request {i}");
    }
}

type Frames = http_body_util::StreamBody<
    tokio_stream::wrappers::ReceiverStream<Result<http_body::Frame<Bytes>, Infallible>>,
>;

/// A request whose body arrives through the returned sender, frame by frame.
fn streamed_post(
    user_agent: &str,
) -> (
    Request<Frames>,
    tokio::sync::mpsc::Sender<Result<http_body::Frame<Bytes>, Infallible>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let request = Request::post("/")
        .header("host", "example.com")
        .header("user-agent", user_agent)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .unwrap();
    (request, tx)
}

/// The WAF over an inner service answering 200 with the body it received.
fn echo(
    layer: &WafLayer,
) -> impl tower::Service<
    Request<Frames>,
    Response = Response<WafBody<Full<Bytes>>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    layer.layer(service_fn(|req: Request<WafBody<Frames>>| async move {
        let data = req.into_body().collect().await?.to_bytes();
        Ok::<_, Infallible>(Response::new(Full::new(data)))
    }))
}

#[tokio::test]
async fn phase_one_does_not_wait_for_a_body_still_to_come() {
    let layer = WafLayer::new(rules(&format!("{SCAMMER}{BODY_RULE}")));
    // The body never ends: phase 1 must still refuse.
    let (request, _tx) = streamed_post("scammer");
    let response = echo(&layer).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // A body that comes in two frames, after phase 1 ran, is inspected whole by phase 2.
    for (first, second, status) in [
        ("name=ev", "il", StatusCode::NOT_ACCEPTABLE),
        ("name=go", "od", StatusCode::OK),
    ] {
        let (request, tx) = streamed_post("curl");
        let exchange = tokio::spawn(echo(&layer).oneshot(request));
        tx.send(Ok(http_body::Frame::data(Bytes::from_static(
            first.as_bytes(),
        ))))
        .await
        .unwrap();
        tokio::task::yield_now().await;
        tx.send(Ok(http_body::Frame::data(Bytes::from_static(
            second.as_bytes(),
        ))))
        .await
        .unwrap();
        drop(tx);
        let response = exchange.await.unwrap().unwrap();
        assert_eq!(response.status(), status, "{first}{second}");
        if status == StatusCode::OK {
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "name=good");
        }
    }
}

#[tokio::test]
async fn a_body_that_is_all_there_is_inspected_in_the_same_trip_as_the_head() {
    // The sender is dropped before the layer sees the request: the whole body is there at
    // once, and phases 1 and 2 both still run (either can refuse).
    let layer = WafLayer::new(rules(&format!("{SCAMMER}{BODY_RULE}")));
    for (agent, form, status) in [
        ("scammer", "name=good", StatusCode::FORBIDDEN),
        ("curl", "name=evil", StatusCode::NOT_ACCEPTABLE),
        ("curl", "name=good", StatusCode::OK),
    ] {
        let (request, tx) = streamed_post(agent);
        tx.send(Ok(http_body::Frame::data(Bytes::from_static(
            form.as_bytes(),
        ))))
        .await
        .unwrap();
        drop(tx);
        let response = echo(&layer).oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "{agent} {form}");
    }
}

#[tokio::test]
async fn a_body_refused_after_phase_one_answers_413_or_400() {
    // Over the limit only once its second frame comes: 413, the upstream never called.
    let layer = WafLayer::new(rules(BODY_RULE)).max_body_bytes(8);
    let (request, tx) = streamed_post("curl");
    let exchange = tokio::spawn(echo(&layer).oneshot(request));
    for frame in ["name=", "goodness"] {
        tx.send(Ok(http_body::Frame::data(Bytes::from_static(
            frame.as_bytes(),
        ))))
        .await
        .unwrap();
        tokio::task::yield_now().await;
    }
    let response = exchange.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.extensions().get::<WafReply>().is_some());

    // A body that fails, before or after phase 1 ran: 400.
    for after_phase_one in [false, true] {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, String>>(4);
        let body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        let request = Request::post("/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .unwrap();
        let service = layer.layer(service_fn(
            |_: Request<WafBody<http_body_util::StreamBody<_>>>| async {
                Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
            },
        ));
        if !after_phase_one {
            tx.send(Err("reset".into())).await.unwrap();
        }
        let exchange = tokio::spawn(service.oneshot(request));
        if after_phase_one {
            tokio::task::yield_now().await;
            tx.send(Err("reset".into())).await.unwrap();
        }
        let response = exchange.await.unwrap().unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{after_phase_one}"
        );
    }
}
