//! Behaviour of the transformation layer, end to end through tower services. "Gloo docs" below
//! means solo-io/gloo `docs/content/guides/traffic_management/request_processing/
//! transformations/`; "envoy-gloo" means solo-io/envoy-gloo
//! `source/extensions/filters/http/transformation/`.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use tokio::sync::{mpsc, oneshot};
use tower::{service_fn, Layer, ServiceExt};

use super::*;

/// What the inner service received.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    streamed: bool,
    clear_route_cache: bool,
    metadata: Option<DynamicMetadata>,
}

/// The answer of a [`run`]: the response head, its body, and what the inner service saw (if
/// it was called).
struct Outcome {
    response: http::response::Parts,
    body: Bytes,
    seen: Option<Seen>,
}

impl Outcome {
    fn seen(&self) -> &Seen {
        self.seen
            .as_ref()
            .expect("the inner service was not called")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.response
            .headers
            .get(name)
            .map(|v| v.to_str().expect("header value is not text"))
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is not UTF-8")
    }
}

type Reply = Arc<dyn Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync>;

fn reply(f: impl Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync + 'static) -> Reply {
    Arc::new(f)
}

/// `200` with an empty body.
fn empty_ok() -> Reply {
    reply(|_| Response::new(Full::default()))
}

/// `200` echoing the request body.
fn echo() -> Reply {
    reply(|seen| Response::new(Full::new(seen.body.clone())))
}

/// A response with this status, content type and body.
fn respond(status: u16, content_type: &'static str, body: &'static str) -> Reply {
    reply(move |_| {
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        response
            .headers_mut()
            .insert("content-type", content_type.parse().unwrap());
        response
            .headers_mut()
            .insert("content-length", body.len().into());
        response
    })
}

async fn run(layer: &TransformationLayer, request: Request<Full<Bytes>>, reply: Reply) -> Outcome {
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let svc = layer.layer(service_fn(
        move |req: Request<TransformBody<Full<Bytes>>>| {
            let record = record.clone();
            let reply = reply.clone();
            async move {
                let (parts, body) = req.into_parts();
                let streamed = body.is_streamed();
                let body = body.collect().await.unwrap().to_bytes();
                let seen = Seen {
                    method: parts.method,
                    uri: parts.uri,
                    headers: parts.headers,
                    body,
                    streamed,
                    clear_route_cache: parts.extensions.get::<ClearRouteCache>().is_some(),
                    metadata: parts.extensions.get::<DynamicMetadata>().cloned(),
                };
                let response = reply(&seen);
                *record.lock().unwrap() = Some(seen);
                Ok::<_, Infallible>(response)
            }
        },
    ));
    let response = svc.oneshot(request).await.unwrap();
    let (response, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let seen = seen.lock().unwrap().take();
    Outcome {
        response,
        body,
        seen,
    }
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri).body(Full::default()).unwrap()
}

fn post(uri: &str, content_type: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

fn on_requests(t: impl Into<Transformation>) -> TransformationLayer {
    TransformationLayer::new(
        Transformations::new().request_transform(RequestMatch::new().request_transformation(t)),
    )
    .unwrap()
}

fn on_responses(t: impl Into<Transformation>) -> TransformationLayer {
    TransformationLayer::new(
        Transformations::new().request_transform(RequestMatch::new().response_transformation(t)),
    )
    .unwrap()
}

fn config_error(t: TransformationTemplate) -> ConfigError {
    TransformationLayer::new(
        Transformations::new().request_transform(RequestMatch::new().request_transformation(t)),
    )
    .unwrap_err()
}

const TEMPLATE: &str = "request_transforms[0].request_transformation.transformation_template";

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("not JSON")
}

// ---------------------------------------------------------------------------------------------
// Config-time validation

#[test]
fn config_errors_name_the_field() {
    let err = config_error(TransformationTemplate::new().header("x-foo", "{{ header(\"x-a\") "));
    assert_eq!(err.field(), format!("{TEMPLATE}.headers[\"x-foo\"].text"));
    assert!(
        err.message()
            .starts_with("template error at line 1: syntax error"),
        "{err}"
    );

    let err = config_error(TransformationTemplate::new().body("line one\n{% if %}"));
    assert_eq!(err.field(), format!("{TEMPLATE}.body.text"));
    assert!(
        err.message().starts_with("template error at line 2:"),
        "{err}"
    );

    let err = config_error(
        TransformationTemplate::new().extractor("foo", Extraction::header("x-a", "(unclosed")),
    );
    assert_eq!(err.field(), format!("{TEMPLATE}.extractors[\"foo\"].regex"));

    // envoy-gloo: "group {} requested for regex with only {} sub groups".
    let err = config_error(
        TransformationTemplate::new()
            .extractor("foo", Extraction::header(":path", "(a)(b)").subgroup(3)),
    );
    assert_eq!(
        err.field(),
        format!("{TEMPLATE}.extractors[\"foo\"].subgroup")
    );
    assert_eq!(
        err.message(),
        "group 3 requested for regex with only 2 sub groups"
    );

    let err = config_error(TransformationTemplate::new().extractor("foo", Extraction::body("")));
    assert_eq!(err.field(), format!("{TEMPLATE}.extractors[\"foo\"].regex"));
}

#[test]
fn config_errors_for_header_names() {
    let err = config_error(TransformationTemplate::new().header("bad header", "x"));
    assert_eq!(err.field(), format!("{TEMPLATE}.headers[\"bad header\"]"));
    assert!(err.message().contains("invalid header name"), "{err}");

    let err = config_error(TransformationTemplate::new().header_to_append(":foo", "x"));
    assert_eq!(err.field(), format!("{TEMPLATE}.headers_to_append[0].key"));
    assert!(err.message().contains("unknown pseudo-header"), "{err}");

    let err = config_error(
        TransformationTemplate::new()
            .header_to_remove("x-ok")
            .header_to_remove(":path"),
    );
    assert_eq!(err.field(), format!("{TEMPLATE}.headers_to_remove[1]"));

    let err =
        config_error(TransformationTemplate::new().extractor("e", Extraction::header("a b", ".*")));
    assert_eq!(err.field(), format!("{TEMPLATE}.extractors[\"e\"].header"));
}

// Gloo docs' "Extractor Modes" table: the configuration checks of each mode.
#[test]
fn config_errors_for_extraction_modes() {
    let err = config_error(
        TransformationTemplate::new()
            .extractor("e", Extraction::header("x", ".*").replacement_text("y")),
    );
    assert_eq!(
        err.field(),
        format!("{TEMPLATE}.extractors[\"e\"].replacement_text")
    );
    assert_eq!(err.message(), "must not be set in EXTRACT mode");

    let err = config_error(TransformationTemplate::new().extractor(
        "e",
        Extraction::header("x", "(.*)").mode(ExtractionMode::SingleReplace),
    ));
    assert_eq!(err.message(), "required in SINGLE_REPLACE mode");

    let err = config_error(
        TransformationTemplate::new().extractor(
            "e",
            Extraction::header("x", "(.*)")
                .mode(ExtractionMode::ReplaceAll)
                .replacement_text("y")
                .subgroup(1),
        ),
    );
    assert_eq!(
        err.field(),
        format!("{TEMPLATE}.extractors[\"e\"].subgroup")
    );
    assert_eq!(err.message(), "must not be set in REPLACE_ALL mode");
}

#[test]
fn config_errors_for_merge_json_keys_and_matchers() {
    let err = config_error(
        TransformationTemplate::new()
            .parse_body_behavior(RequestBodyParse::DontParse)
            .body_transformation(BodyTransformation::MergeJsonKeys(vec![MergeJsonKey::new(
                "a", "1",
            )])),
    );
    assert_eq!(err.field(), format!("{TEMPLATE}.merge_json_keys"));

    let err = config_error(TransformationTemplate::new().body_transformation(
        BodyTransformation::MergeJsonKeys(vec![MergeJsonKey::new("a.b", "1")]),
    ));
    assert_eq!(
        err.field(),
        format!("{TEMPLATE}.merge_json_keys.json_keys[\"a.b\"]")
    );

    let err = TransformationLayer::new(
        Transformations::new().request_transform(
            RequestMatch::new()
                .matcher(RouteMatch::regex("/(a"))
                .request_transformation(TransformationTemplate::new()),
        ),
    )
    .unwrap_err();
    assert_eq!(err.field(), "request_transforms[0].matcher.safe_regex");

    let err = TransformationLayer::new(
        Transformations::new()
            .response_transform(ResponseMatch::new(TransformationTemplate::new()))
            .response_transform(
                ResponseMatch::new(TransformationTemplate::new().body("{{ x"))
                    .matcher(ResponseMatcher::new().header(HeaderMatcher::exact(":status", "404"))),
            ),
    )
    .unwrap_err();
    assert_eq!(
        err.field(),
        "response_transforms[1].response_transformation.transformation_template.body.text"
    );
}

// ---------------------------------------------------------------------------------------------
// Extractors

// Gloo docs, extract_query_params: the `foo` and `bar` query parameters into headers.
#[tokio::test]
async fn extract_query_params_into_headers() {
    let layer = on_requests(
        TransformationTemplate::new()
            .extractor(
                "foo",
                Extraction::header(":path", "(.*foo=([^&]*).*)").subgroup(2),
            )
            .extractor(
                "bar",
                Extraction::header(":path", "(.*bar=([^&]*).*)").subgroup(2),
            )
            .header("foo", "{{ foo }}")
            .header("bar", "{{ bar }}"),
    );
    let out = run(&layer, get("/get?foo=foo-value&bar=bar-value"), empty_ok()).await;
    assert_eq!(out.seen().headers["foo"], "foo-value");
    assert_eq!(out.seen().headers["bar"], "bar-value");

    // No match (and an absent header) extract "", and an empty header value removes the header.
    let out = run(&layer, get("/get?baz=1"), empty_ok()).await;
    assert!(out.seen().headers.get("foo").is_none());
    assert!(out.seen().headers.get("bar").is_none());
}

#[tokio::test]
async fn extract_requires_the_whole_source_to_match() {
    let layer = on_requests(
        TransformationTemplate::new()
            .extractor("id", Extraction::header("x-id", "[0-9]+"))
            .header("x-out", "[{{ id }}]")
            .parse_body_behavior(RequestBodyParse::DontParse),
    );
    let out = run(
        &layer,
        Request::get("/")
            .header("x-id", "123")
            .body(Full::default())
            .unwrap(),
        empty_ok(),
    )
    .await;
    assert_eq!(out.seen().headers["x-out"], "[123]");
    let out = run(
        &layer,
        Request::get("/")
            .header("x-id", "123abc")
            .body(Full::default())
            .unwrap(),
        empty_ok(),
    )
    .await;
    assert_eq!(out.seen().headers["x-out"], "[]");
}

// Gloo docs, "extractors": the id number from a plain-text body.
#[tokio::test]
async fn body_extractor() {
    let layer = on_requests(
        TransformationTemplate::new()
            .parse_body_behavior(RequestBodyParse::DontParse)
            .extractor(
                "bodyIdExtractor",
                Extraction::body(r"[\s\S]*id: ([0-9]{4})[\s\S]*").subgroup(1),
            )
            .header("x-id", "{{ bodyIdExtractor }}"),
    );
    let body = "Here is a body containing the identification number of the object.\n\nid: 4423\n";
    let out = run(&layer, post("/", "text/plain", body), echo()).await;
    assert_eq!(out.seen().headers["x-id"], "4423");
    // The body itself was buffered (the extractor reads it) but is unchanged.
    assert!(!out.seen().streamed);
    assert_eq!(out.seen().body, body);
    assert_eq!(out.seen().headers["content-length"], body.len().to_string());
}

// Gloo docs, "Extractor Example - Single Replace Mode".
#[tokio::test]
async fn single_replace_mode() {
    let layer = on_requests(
        TransformationTemplate::new()
            .parse_body_behavior(RequestBodyParse::DontParse)
            .extractor(
                "BananaToOrange",
                Extraction::body(".*(banana).*")
                    .mode(ExtractionMode::SingleReplace)
                    .replacement_text("orange")
                    .subgroup(1),
            )
            .body("{{ BananaToOrange }}"),
    );
    let out = run(
        &layer,
        post(
            "/",
            "text/plain",
            "Fruits: [apple, pear, banana, pineapple]",
        ),
        echo(),
    )
    .await;
    assert_eq!(out.text(), "Fruits: [apple, pear, orange, pineapple]");
    assert_eq!(
        out.seen().headers["content-length"],
        out.body.len().to_string()
    );

    // The first match must span the whole source, else the source is kept (envoy-gloo's
    // replaceIndividualValue).
    let layer = on_requests(
        TransformationTemplate::new()
            .extractor(
                "r",
                Extraction::header("x-in", "b(a)")
                    .mode(ExtractionMode::SingleReplace)
                    .replacement_text("o")
                    .subgroup(1),
            )
            .header("x-out", "{{ r }}"),
    );
    for (input, expected) in [("ba", "bo"), ("bab", "bab"), ("xba", "xba")] {
        let req = Request::get("/")
            .header("x-in", input)
            .body(Full::default())
            .unwrap();
        let out = run(&layer, req, empty_ok()).await;
        assert_eq!(out.seen().headers["x-out"], expected, "input {input}");
    }
}

// Gloo docs, "Extractor Example - Replace All Mode", and ECMAScript `$n` references.
#[tokio::test]
async fn replace_all_mode() {
    let layer = on_requests(
        TransformationTemplate::new()
            .parse_body_behavior(RequestBodyParse::DontParse)
            .extractor(
                "FooToBar",
                Extraction::body("foo")
                    .mode(ExtractionMode::ReplaceAll)
                    .replacement_text("bar"),
            )
            .body("{{ FooToBar }}"),
    );
    let out = run(&layer, post("/", "text/plain", "foo foo foo"), echo()).await;
    assert_eq!(out.text(), "bar bar bar");

    let layer = on_requests(
        TransformationTemplate::new()
            .extractor(
                "swapped",
                Extraction::header("x-in", r"(\w+)@(\w+)")
                    .mode(ExtractionMode::ReplaceAll)
                    .replacement_text("$2 at $1 ($&) $$"),
            )
            // No match: the source is kept.
            .extractor(
                "kept",
                Extraction::header("x-in", "zzz")
                    .mode(ExtractionMode::ReplaceAll)
                    .replacement_text("y"),
            )
            .header("x-swapped", "{{ swapped }}")
            .header("x-kept", "{{ kept }}"),
    );
    let req = Request::get("/")
        .header("x-in", "ada@home, bob@work")
        .body(Full::default())
        .unwrap();
    let out = run(&layer, req, empty_ok()).await;
    assert_eq!(
        out.seen().headers["x-swapped"],
        "home at ada (ada@home) $, work at bob (bob@work) $"
    );
    assert_eq!(out.seen().headers["x-kept"], "ada@home, bob@work");
}

// ---------------------------------------------------------------------------------------------
// Helper functions

// Gloo docs, decode_and_modify_base64_headers.
#[tokio::test]
async fn base64_and_substring_functions() {
    let layer = on_requests(
        TransformationTemplate::new()
            .header(
                "x-decoded-test",
                "{{substring(base64_decode(request_header(\"x-test\")), 11)}}",
            )
            .header("x-encoded", "{{ base64_encode(\"hello\") }}")
            .header("x-utf8", "{{ base64_decode(\"Y2Fmw6k=\") }}")
            .header("x-url", "{{ base64url_encode(\"??>\") }}|{{ base64url_decode(\"Pz8-\") }}")
            .header("x-invalid", "[{{ base64_decode(\"not base64!\") }}]")
            .header("x-sub", "{{ substring(\"hello world\", 0, 5) }}|{{ substring(\"hello\", 1, 0) }}|[{{ substring(\"hello\", 9) }}]"),
    );
    let req = Request::get("/get")
        .header("x-test", "dGVzdHByZWZpeC50ZXN0c3VmZml4")
        .body(Full::default())
        .unwrap();
    let out = run(&layer, req, empty_ok()).await;
    let h = &out.seen().headers;
    assert_eq!(h["x-decoded-test"], "testsuffix");
    assert_eq!(h["x-encoded"], "aGVsbG8=");
    assert_eq!(h["x-utf8"].as_bytes(), "café".as_bytes());
    assert_eq!(h["x-url"], "Pz8-|??>");
    assert_eq!(h["x-invalid"], "[]");
    assert_eq!(h["x-sub"], "hello|ello|[]");
}

// Gloo docs, inject_response_header: a request header in a response transformation.
#[tokio::test]
async fn request_header_in_response_transformation() {
    let layer = on_responses(
        TransformationTemplate::new()
            .header("x-solo-resp-hdr1", "{{ request_header(\"x-solo-hdr1\") }}")
            .header("x-status", "{{ header(\":status\") }}"),
    );
    let req = Request::get("/get")
        .header("x-solo-hdr1", "val1")
        .body(Full::default())
        .unwrap();
    let out = run(
        &layer,
        req,
        respond(201, "application/json", r#"{"args":{}}"#),
    )
    .await;
    assert_eq!(out.response.status, StatusCode::CREATED);
    assert_eq!(out.header("x-solo-resp-hdr1"), Some("val1"));
    assert_eq!(out.header("x-status"), Some("201"));
    assert_eq!(out.text(), r#"{"args":{}}"#);
}

// envoy-gloo fills `extraction()` only with advanced templates; without them extractions are
// context variables.
#[tokio::test]
async fn extraction_function_and_advanced_templates() {
    let extractor = || Extraction::header("x-in", "(.*)-(.*)").subgroup(2);
    let layer = on_requests(
        TransformationTemplate::new()
            .advanced_templates(true)
            .extractor("my-extractor", extractor())
            .header(
                "x-out",
                "{{ extraction(\"my-extractor\") }}|{{ time/start }}",
            ),
    );
    let req = Request::post("/")
        .header("x-in", "a-b")
        .body(Full::new(Bytes::from_static(br#"{"time": {"start": 5}}"#)))
        .unwrap();
    let out = run(&layer, req, empty_ok()).await;
    assert_eq!(out.seen().headers["x-out"], "b|5");

    let layer = on_requests(
        TransformationTemplate::new()
            .extractor("my-extractor", extractor())
            .header(
                "x-out",
                "[{{ extraction(\"my-extractor\") }}]{{ my-extractor }}",
            ),
    );
    let req = Request::get("/")
        .header("x-in", "a-b")
        .body(Full::default())
        .unwrap();
    let out = run(&layer, req, empty_ok()).await;
    assert_eq!(out.seen().headers["x-out"], "[]b");
}

#[tokio::test]
async fn body_and_context_functions() {
    let layer = on_requests(
        TransformationTemplate::new()
            .header("x-names", "{% for u in context() %}{{ u.name }}{% if not loop.is_last %},{% endif %}{% endfor %}")
            .header("x-count", "{{ length(context()) }}")
            .header("x-body-len", "{{ length(body()) }}"),
    );
    let body = r#"[{"name": "ada"}, {"name": "bob"}]"#;
    let out = run(&layer, post("/", "application/json", body), echo()).await;
    assert_eq!(out.seen().headers["x-names"], "ada,bob");
    assert_eq!(out.seen().headers["x-count"], "2");
    assert_eq!(out.seen().headers["x-body-len"], body.len().to_string());
    // The body is unchanged.
    assert_eq!(out.seen().body, body);

    // `body()` with DontParse: the raw text.
    let layer = on_requests(
        TransformationTemplate::new()
            .parse_body_behavior(RequestBodyParse::DontParse)
            .body("<{{ body() }}>"),
    );
    let out = run(&layer, post("/", "text/plain", "not json"), echo()).await;
    assert_eq!(out.text(), "<not json>");
}

#[tokio::test]
async fn env_is_read_when_the_layer_is_built() {
    let name = "GLOO_FILTERS_TRANSFORM_TEST_ENV";
    std::env::set_var(name, "at-build");
    let layer = on_requests(TransformationTemplate::new().header(
        "x-env",
        format!("{{{{ env(\"{name}\") }}}}|[{{{{ env(\"GLOO_FILTERS_UNSET_VAR\") }}}}]"),
    ));
    std::env::set_var(name, "later");
    let out = run(&layer, get("/"), empty_ok()).await;
    std::env::remove_var(name);
    assert_eq!(out.seen().headers["x-env"], "at-build|[]");
}

#[tokio::test]
async fn replace_with_random_is_stable_per_pattern() {
    let template = || {
        TransformationTemplate::new()
            .header("x-a", "{{ replace_with_random(\"id-PAT-PAT\", \"PAT\") }}")
            .header("x-b", "{{ replace_with_random(\"OTHER\", \"OTHER\") }}")
    };
    let layer = on_requests(template());
    let first = run(&layer, get("/"), empty_ok()).await;
    let second = run(&layer, get("/"), empty_ok()).await;
    let a = first.seen().headers["x-a"].to_str().unwrap().to_owned();
    let parts: Vec<&str> = a.split('-').collect();
    assert_eq!(parts[0], "id");
    // 128 random bits, base64 without padding.
    assert_eq!(parts[1].len(), 22, "{a}");
    assert_eq!(parts[1], parts[2], "one random string per pattern");
    assert_eq!(second.seen().headers["x-a"], a, "stable across requests");
    assert_ne!(
        first.seen().headers["x-b"],
        parts[1],
        "another pattern, another string"
    );
    let other_layer = on_requests(template());
    let third = run(&other_layer, get("/"), empty_ok()).await;
    assert_ne!(
        third.seen().headers["x-a"],
        a,
        "another transformation, another string"
    );
}

#[tokio::test]
async fn raw_string_and_escape_characters() {
    let body = r#"{"msg": "say \"hi\"\n"}"#;
    let layer =
        on_requests(TransformationTemplate::new().body(r#"{"m": "{{ raw_string(msg) }}"}"#));
    let out = run(&layer, post("/", "application/json", body), echo()).await;
    assert_eq!(json(&out.body), serde_json::json!({"m": "say \"hi\"\n"}));

    let layer = on_requests(
        TransformationTemplate::new()
            .escape_characters(true)
            .body(r#"{"m": "{{ msg }}"}"#),
    );
    let out = run(&layer, post("/", "application/json", body), echo()).await;
    assert_eq!(json(&out.body), serde_json::json!({"m": "say \"hi\"\n"}));
}

#[tokio::test]
async fn inja_builtins_and_syntax() {
    let layer = on_requests(TransformationTemplate::new().body(concat!(
        "{{ length(items) }}|{{ upper(name) }}|{{ lower(name) }}|{{ at(items, 1) }}|",
        "{{ first(items) }}{{ last(items) }}|{{ exists(\"user.name\") }}{{ exists(\"user.x\") }}|",
        "{{ existsIn(user, \"name\") }}|{{ default(user.missing, \"d\") }}|{{ int(\"42\") + 1 }}|",
        "{{ round(3.14159, 2) }}|{{ join(sort(items), \"-\") }}|{{ isString(name) }}|",
        "{% for i in items %}{{ loop.index }}{{ loop.index1 }}{% if loop.is_first %}F{% endif %}{% endfor %}|",
        "{% for k, v in user %}{{ k }}={{ v }};{% endfor %}|",
        "{% if name == \"x\" %}x{% else if name == \"Ada\" %}ada{% else %}?{% endif %}|",
        "{{ items }}|{{ user }}|{{ nothing }}|{{ flag }}|{{ name | upper }}|",
        "[{{ trim(\"  x \") }}]{{ word_count(\" a b  c \") }}",
    )));
    let body = r#"{"items": [3, 1, 2], "name": "Ada", "user": {"name": "n", "age": 3}, "nothing": null, "flag": true}"#;
    let out = run(&layer, post("/", "application/json", body), echo()).await;
    assert_eq!(
        out.text(),
        concat!(
            "3|ADA|ada|1|32|truefalse|true|d|43|3.14|1-2-3|true|",
            "01F1223|age=3;name=n;|ada|",
            r#"[3,1,2]|{"age":3,"name":"n"}||true|ADA|[x]3"#
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Header and body templates

#[tokio::test]
async fn header_templates_apply_in_envoy_gloo_order() {
    let layer = on_requests(
        TransformationTemplate::new()
            .parse_body_behavior(RequestBodyParse::DontParse)
            .header("x-new", "{{ header(\"x-a\") }}-new")
            .header("x-a", "replaced")
            .header("x-seen", "{{ header(\"x-a\") }}")
            .header("x-gone", "")
            .header_to_remove("x-remove")
            .header_to_append("x-multi", "{{ header(\"x-new\") }}")
            .header_to_append("x-multi", ""),
    );
    let req = Request::post("/")
        .header("x-a", "1")
        .header("x-a", "2")
        .header("x-gone", "g")
        .header("x-remove", "r")
        .header("x-multi", "orig")
        .header("content-type", "text/plain")
        .header("content-length", "3")
        .body(Full::new(Bytes::from_static(b"abc")))
        .unwrap();
    let out = run(&layer, req, echo()).await;
    let h = &out.seen().headers;
    assert_eq!(h["x-new"], "1-new", "header() is the first value");
    assert_eq!(h.get_all("x-a").iter().collect::<Vec<_>>(), ["replaced"]);
    assert_eq!(
        h["x-seen"], "replaced",
        "later templates see earlier results"
    );
    assert!(h.get("x-gone").is_none());
    assert!(h.get("x-remove").is_none());
    assert_eq!(
        h.get_all("x-multi").iter().collect::<Vec<_>>(),
        ["orig", "1-new"]
    );
    // Headers only: the body streamed through untouched.
    assert!(out.seen().streamed);
    assert_eq!(out.seen().body, "abc");
    assert_eq!(h["content-length"], "3");
    assert_eq!(h["content-type"], "text/plain");
}

// Gloo docs, update_request_uri: `:path` and `:method` set from a header.
#[tokio::test]
async fn pseudo_headers_rewrite_path_and_method() {
    let layer = on_requests(
        TransformationTemplate::new()
            .header(":path", "{% if header(\"foo\") == \"bar\" %}/post{% else %}{{ header(\":path\") }}{% endif %}")
            .header(":method", "{% if header(\"foo\") == \"bar\" %}POST{% else %}{{ header(\":method\") }}{% endif %}"),
    );
    let req = Request::get("/get?x=1")
        .header("foo", "bar")
        .body(Full::default())
        .unwrap();
    let out = run(&layer, req, empty_ok()).await;
    assert_eq!(out.seen().method, Method::POST);
    assert_eq!(out.seen().uri, "/post");

    let out = run(&layer, get("/get?x=1"), empty_ok()).await;
    assert_eq!(out.seen().method, Method::GET);
    assert_eq!(out.seen().uri, "/get?x=1");
}

// Gloo docs, "headers": a header from the parsed JSON body.
#[tokio::test]
async fn body_template_with_json_context() {
    let layer = on_requests(
        TransformationTemplate::new()
            .header("color", "{{ Favorites.Color }}")
            .body("{{ Name }} likes {{ Favorites.Color }} ({{ header(\"color\") }})"),
    );
    let body = r#"{"Name": "Gloo", "Favorites": {"Color": "Blue"}}"#;
    let out = run(&layer, post("/", "application/json", body), echo()).await;
    assert_eq!(out.seen().headers["color"], "Blue");
    // Headers are rendered after the body template: it saw no `color` header yet.
    assert_eq!(out.text(), "Gloo likes Blue ()");
    assert!(!out.seen().streamed);
    assert_eq!(
        out.seen().headers["content-length"],
        out.body.len().to_string()
    );
}

#[tokio::test]
async fn empty_body_removes_content_type() {
    let layer = on_requests(
        TransformationTemplate::new()
            .parse_body_behavior(RequestBodyParse::DontParse)
            .body("{% if false %}x{% endif %}"),
    );
    let out = run(&layer, post("/", "text/plain", "some text"), echo()).await;
    assert_eq!(out.seen().body, "");
    assert_eq!(out.seen().headers["content-length"], "0");
    assert!(out.seen().headers.get("content-type").is_none());
}

// Gloo docs, add_headers_to_body.
#[tokio::test]
async fn merge_extractors_to_body() {
    let layer = on_requests(
        TransformationTemplate::new()
            .merge_extractors_to_body()
            .extractor("root", Extraction::header("root", ".*"))
            .extractor("payload.nested", Extraction::header("nested", ".*")),
    );
    let req = Request::post("/post")
        .header("root", "root-val")
        .header("nested", "nested-val")
        .body(Full::new(Bytes::from_static(
            br#"{"payload": {"original": 1}, "other": "x"}"#,
        )))
        .unwrap();
    let out = run(&layer, req, echo()).await;
    assert_eq!(
        json(&out.seen().body),
        serde_json::json!({
            "payload": {"original": 1, "nested": "nested-val"},
            "root": "root-val",
            "other": "x",
        })
    );
    assert_eq!(
        out.seen().headers["content-length"],
        out.seen().body.len().to_string()
    );
}

#[tokio::test]
async fn merge_json_keys() {
    let layer = on_requests(TransformationTemplate::new().body_transformation(
        BodyTransformation::MergeJsonKeys(vec![
            MergeJsonKey::new("key1", "\"{{ header(\"x-h\") }}\""),
            MergeJsonKey::new("count", "{{ length(items) }}"),
            MergeJsonKey::new("skipped", ""),
        ]),
    ));
    let req = Request::post("/")
        .header("x-h", "from-header")
        .body(Full::new(Bytes::from_static(
            br#"{"key1": "value1", "items": [1, 2]}"#,
        )))
        .unwrap();
    let out = run(&layer, req, echo()).await;
    assert_eq!(
        json(&out.seen().body),
        serde_json::json!({"key1": "from-header", "items": [1, 2], "count": 2})
    );
}

// envoy-gloo's BodyHeaderTransformer (add_request_metadata: the AWS API Gateway fields).
#[tokio::test]
async fn header_body_transform() {
    let layer = on_requests(HeaderBodyTransform::new().add_request_metadata(true));
    let req = Request::post("/path/x?a=1&b=x%20y&a=2")
        .header("host", "example.com")
        .header("x-m", "1")
        .header("x-m", "2")
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let out = run(&layer, req, echo()).await;
    assert_eq!(out.seen().headers["content-type"], "application/json");
    assert_eq!(
        json(&out.seen().body),
        serde_json::json!({
            "body": "hello",
            "headers": {
                ":authority": "example.com",
                ":path": "/path/x?a=1&b=x%20y&a=2",
                ":method": "POST",
                "host": "example.com",
                "x-m": "2",
                "content-type": "text/plain",
            },
            "multiValueHeaders": {"x-m": ["1", "2"]},
            "queryString": "a=1&b=x%20y&a=2",
            "httpMethod": "POST",
            "path": "/path/x",
            "queryStringParameters": {"a": "2", "b": "x y"},
            "multiValueQueryStringParameters": {"a": ["1", "2"]},
        })
    );
}

// Gloo docs, dynamicMetadataValues.
#[tokio::test]
async fn dynamic_metadata() {
    let layer = on_requests(
        TransformationTemplate::new()
            .dynamic_metadata(
                DynamicMetadataValue::new("foo", "{{ header(\"foo\") }}").namespace("com.example"),
            )
            .dynamic_metadata(DynamicMetadataValue::new("n", "{\"a\": 1}").json_to_proto(true))
            .dynamic_metadata(DynamicMetadataValue::new("empty", "")),
    );
    let req = Request::get("/")
        .header("foo", "bar")
        .body(Full::default())
        .unwrap();
    let out = run(&layer, req, empty_ok()).await;
    let metadata = out.seen().metadata.clone().expect("no dynamic metadata");
    assert_eq!(metadata.get("com.example", "foo"), Some(&"bar".into()));
    assert_eq!(
        metadata.get("io.solo.transformation", "n"),
        Some(&serde_json::json!({"a": 1}))
    );
    assert_eq!(metadata.get("io.solo.transformation", "empty"), None);
}

// ---------------------------------------------------------------------------------------------
// Streaming and buffering

/// A body fed chunk by chunk through a channel; it ends when the sender is dropped.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

/// The inner service gets the first chunk of the body while the client still holds the rest:
/// the body was not buffered.
async fn assert_streams(template: TransformationTemplate) {
    let layer = on_requests(template);
    let (first_tx, first_rx) = oneshot::channel();
    let first_tx = Arc::new(Mutex::new(Some(first_tx)));
    let svc = layer.layer(service_fn(
        move |req: Request<TransformBody<ChannelBody>>| {
            let first_tx = first_tx.lock().unwrap().take();
            async move {
                assert!(req.body().is_streamed());
                let x_a = req.headers()["x-a"].clone();
                let mut body = req.into_body();
                let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
                if let Some(tx) = first_tx {
                    let _ = tx.send((x_a, first));
                }
                let rest = body.collect().await.unwrap().to_bytes();
                Ok::<_, Infallible>(Response::new(Full::new(rest)))
            }
        },
    ));
    let (tx, rx) = mpsc::channel(4);
    tx.send(Bytes::from_static(b"chunk1")).await.unwrap();
    let req = Request::post("/")
        .header("x-b", "v")
        .body(ChannelBody(rx))
        .unwrap();
    let call = tokio::spawn(svc.oneshot(req));
    // A guard against a hang, not a timing assertion.
    let (x_a, first) = tokio::time::timeout(Duration::from_secs(30), first_rx)
        .await
        .expect("the inner service never got the first chunk: the body was buffered")
        .unwrap();
    assert_eq!(x_a, "v", "headers were transformed before the body arrived");
    assert_eq!(first, "chunk1");
    tx.send(Bytes::from_static(b"chunk2")).await.unwrap();
    drop(tx);
    let response = call.await.unwrap().unwrap();
    let rest = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(rest, "chunk2");
}

#[tokio::test]
async fn passthrough_streams_the_body() {
    assert_streams(
        TransformationTemplate::new()
            .passthrough()
            .header("x-a", "{{ header(\"x-b\") }}{{ body() }}"),
    )
    .await;
}

#[tokio::test]
async fn header_only_template_without_parsing_streams_the_body() {
    assert_streams(
        TransformationTemplate::new()
            .parse_body_behavior(RequestBodyParse::DontParse)
            .header("x-a", "{{ header(\"x-b\") }}"),
    )
    .await;
}

#[tokio::test]
async fn header_template_calling_body_buffers() {
    let layer = on_requests(
        TransformationTemplate::new()
            .parse_body_behavior(RequestBodyParse::DontParse)
            .header("x-body", "{{ body() }}"),
    );
    let out = run(&layer, post("/", "text/plain", "payload"), echo()).await;
    assert_eq!(out.seen().headers["x-body"], "payload");
    assert!(!out.seen().streamed);
    assert_eq!(out.seen().body, "payload");
}

#[tokio::test]
async fn request_body_limit_answers_413() {
    let template = || {
        TransformationTemplate::new()
            .parse_body_behavior(RequestBodyParse::DontParse)
            .body("{{ body() }}")
    };
    let layer = on_requests(template()).max_body_bytes(10);
    // A known size over the limit is refused without reading.
    let out = run(&layer, post("/", "text/plain", "01234567890"), echo()).await;
    assert_eq!(out.response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(out.text(), "payload too large");
    assert!(out
        .response
        .extensions
        .get::<TransformationFailed>()
        .is_some());
    assert!(out.seen.is_none());
    // Exactly the limit is fine.
    let out = run(&layer, post("/", "text/plain", "0123456789"), echo()).await;
    assert_eq!(out.response.status, StatusCode::OK);
    assert_eq!(out.text(), "0123456789");

    // A body of unknown size is refused once it passes the limit.
    let called = Arc::new(Mutex::new(false));
    let flag = called.clone();
    let svc = on_requests(template()).max_body_bytes(12).layer(service_fn(
        move |_req: Request<TransformBody<ChannelBody>>| {
            *flag.lock().unwrap() = true;
            async { Ok::<_, Infallible>(Response::new(Full::<Bytes>::default())) }
        },
    ));
    let (tx, rx) = mpsc::channel(4);
    for _ in 0..3 {
        tx.send(Bytes::from_static(b"12345")).await.unwrap();
    }
    drop(tx);
    let response = svc
        .oneshot(Request::post("/").body(ChannelBody(rx)).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(!*called.lock().unwrap());
}

// Gloo docs, "Body Parsing Behavior": a body that is not JSON answers 400 unless
// ignoreErrorOnParse or DontParse.
#[tokio::test]
async fn body_that_is_not_json() {
    let layer = on_requests(TransformationTemplate::new().header("x-a", "a"));
    let out = run(&layer, post("/", "text/plain", "not json"), echo()).await;
    assert_eq!(out.response.status, StatusCode::BAD_REQUEST);
    assert!(
        out.text()
            .starts_with("bad request: body is not valid JSON: "),
        "{}",
        out.text()
    );
    assert_eq!(out.header("content-type"), Some("text/plain"));
    assert_eq!(
        out.header("content-length"),
        Some(out.body.len().to_string().as_str())
    );
    assert_eq!(
        out.response.extensions.get::<ResponseCodeDetails>(),
        Some(&ResponseCodeDetails("transformation_filter_error".into()))
    );
    assert!(out.seen.is_none());

    let layer = on_requests(
        TransformationTemplate::new()
            .header("x-a", "a")
            .ignore_error_on_parse(true),
    );
    let out = run(&layer, post("/", "text/plain", "not json"), echo()).await;
    assert_eq!(out.response.status, StatusCode::OK);
    assert_eq!(out.seen().headers["x-a"], "a");
    assert_eq!(out.seen().body, "not json");
}

#[tokio::test]
async fn render_errors_answer_400_naming_the_template() {
    let layer = on_requests(TransformationTemplate::new().header("x-name", "{{ user.missing }}"));
    let out = run(
        &layer,
        post("/", "application/json", r#"{"user": {}}"#),
        echo(),
    )
    .await;
    assert_eq!(out.response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        out.text(),
        "bad request: headers[\"x-name\"].text: render error at line 1: undefined value: variable 'user.missing' not found"
    );
    assert!(out.seen.is_none());

    // An invalid header value, an unknown function and a range too large fail too.
    for template in [
        "{{ \"a\\nb\" }}",
        "{{ nope(1) }}",
        "{{ range(1000000000) }}",
    ] {
        let layer = on_requests(TransformationTemplate::new().header("x-bad", template));
        let out = run(&layer, get("/"), empty_ok()).await;
        assert_eq!(out.response.status, StatusCode::BAD_REQUEST, "{template}");
        assert!(out.text().starts_with("bad request: "), "{}", out.text());
        assert!(out.seen.is_none());
    }
    // Arithmetic edge cases do not panic.
    let layer = on_requests(TransformationTemplate::new().header(
        "x-div",
        "{{ divisibleBy(-9223372036854775807 - 1, -1) }}{{ divisibleBy(1, 0) }}",
    ));
    let out = run(&layer, get("/"), empty_ok()).await;
    assert_eq!(out.seen().headers["x-div"], "falsefalse");
    // A `:status` that is not a status code turns the response into a 400.
    let layer = on_responses(
        TransformationTemplate::new()
            .passthrough()
            .header(":status", "abc"),
    );
    let out = run(&layer, get("/"), empty_ok()).await;
    assert_eq!(out.response.status, StatusCode::BAD_REQUEST);
    assert!(
        out.text().contains("invalid :status value \"abc\""),
        "{}",
        out.text()
    );
}

// ---------------------------------------------------------------------------------------------
// Response transformations and matching

// Gloo docs, "body": replace the body of 404s only.
#[tokio::test]
async fn response_body_template() {
    let layer = on_responses(TransformationTemplate::new().body(
        "{% if header(\":status\") == \"404\" %}{ \"error\": \"Not found!\" }{% else %}{{ body() }}{% endif %}",
    ));
    let out = run(
        &layer,
        get("/"),
        respond(404, "application/json", r#"{"x": 1}"#),
    )
    .await;
    assert_eq!(out.response.status, StatusCode::NOT_FOUND);
    assert_eq!(out.text(), r#"{ "error": "Not found!" }"#);
    assert_eq!(
        out.header("content-length"),
        Some(out.body.len().to_string().as_str())
    );
    let out = run(
        &layer,
        get("/"),
        respond(200, "application/json", r#"{"x": 1}"#),
    )
    .await;
    assert_eq!(out.text(), r#"{"x": 1}"#);
}

// Gloo docs, change_response_status.
#[tokio::test]
async fn response_status_from_the_body() {
    let layer = on_responses(TransformationTemplate::new().header(
        ":status",
        "{% if default(data.error.message, \"\") != \"\" %}400{% else %}{{ header(\":status\") }}{% endif %}",
    ));
    let with_error = r#"{"data": {"error": {"message": "This is an error"}}}"#;
    let out = run(
        &layer,
        get("/"),
        respond(200, "application/json", with_error),
    )
    .await;
    assert_eq!(out.response.status, StatusCode::BAD_REQUEST);
    assert_eq!(out.text(), with_error);
    for body in [r#"{"data": {"error": {}}}"#, "{}"] {
        let out = run(&layer, get("/"), respond(200, "application/json", body)).await;
        assert_eq!(out.response.status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn response_errors_keep_other_headers() {
    let layer = on_responses(TransformationTemplate::new().header("x-a", "a"));
    let out = run(&layer, get("/"), respond(200, "text/plain", "not json")).await;
    assert_eq!(out.response.status, StatusCode::BAD_REQUEST);
    assert!(
        out.text()
            .starts_with("bad request: body is not valid JSON"),
        "{}",
        out.text()
    );
    assert!(out.header("content-type").is_none());
    assert_eq!(
        out.header("content-length"),
        Some(out.body.len().to_string().as_str())
    );
    assert!(out
        .response
        .extensions
        .get::<TransformationFailed>()
        .is_some());

    let layer = on_responses(TransformationTemplate::new().body("{{ body() }}")).max_body_bytes(4);
    let out = run(
        &layer,
        get("/"),
        respond(200, "application/json", "[1, 2, 3]"),
    )
    .await;
    assert_eq!(out.response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(out.text(), "payload too large");
}

// Gloo docs, debug_logging (staged): a response transform matched on `:status`, consulted
// only when the matched request transform has no response transformation.
#[tokio::test]
async fn response_rules_and_precedence() {
    let on_404 = ResponseMatch::new(
        TransformationTemplate::new()
            .passthrough()
            .header("x-rule", "404-rule"),
    )
    .matcher(ResponseMatcher::new().header(HeaderMatcher::exact(":status", "404")));
    let on_details = ResponseMatch::new(
        TransformationTemplate::new()
            .passthrough()
            .header("x-rule", "details-rule"),
    )
    .matcher(ResponseMatcher::new().response_code_details(StringMatcher::prefix("via_")));
    let layer = TransformationLayer::new(
        Transformations::new()
            .request_transform(
                RequestMatch::new()
                    .matcher(RouteMatch::prefix("/own"))
                    .response_transformation(
                        TransformationTemplate::new()
                            .passthrough()
                            .header("x-rule", "own"),
                    ),
            )
            .request_transform(
                RequestMatch::new()
                    .matcher(RouteMatch::prefix("/req"))
                    .request_transformation(TransformationTemplate::new().passthrough()),
            )
            .response_transform(on_404)
            .response_transform(on_details),
    )
    .unwrap();

    let out = run(&layer, get("/own"), respond(404, "text/plain", "x")).await;
    assert_eq!(out.header("x-rule"), Some("own"));
    let out = run(&layer, get("/req"), respond(404, "text/plain", "x")).await;
    assert_eq!(out.header("x-rule"), Some("404-rule"));
    let out = run(&layer, get("/other"), respond(404, "text/plain", "x")).await;
    assert_eq!(out.header("x-rule"), Some("404-rule"));
    let out = run(&layer, get("/other"), respond(200, "text/plain", "x")).await;
    assert_eq!(out.header("x-rule"), None, "no details, no match");
    let details = reply(|_| {
        let mut response = Response::new(Full::default());
        response
            .extensions_mut()
            .insert(ResponseCodeDetails("via_upstream".into()));
        response
    });
    let out = run(&layer, get("/other"), details).await;
    assert_eq!(out.header("x-rule"), Some("details-rule"));
}

#[tokio::test]
async fn request_matchers_and_clear_route_cache() {
    let rule = |name: &'static str, matcher: RouteMatch| {
        RequestMatch::new().matcher(matcher).request_transformation(
            TransformationTemplate::new()
                .parse_body_behavior(RequestBodyParse::DontParse)
                .header("x-rule", name),
        )
    };
    let layer = TransformationLayer::new(
        Transformations::new()
            // Transforms nothing: skipped, as in envoy-gloo.
            .request_transform(RequestMatch::new().matcher(RouteMatch::prefix("/")))
            .request_transform(rule("exact", RouteMatch::path("/exact")).clear_route_cache(true))
            .request_transform(rule(
                "post",
                RouteMatch::prefix("/api").method(Method::POST),
            ))
            .request_transform(rule(
                "header",
                RouteMatch::prefix("/api").header(HeaderMatcher::regex("x-v", "v[0-9]+")),
            ))
            .request_transform(rule(
                "regex",
                RouteMatch::regex("/items/[0-9]+").case_sensitive(false),
            ))
            .request_transform(rule(
                "prefix",
                RouteMatch::prefix("/API").case_sensitive(false),
            )),
    )
    .unwrap();
    let cases = [
        (Request::get("/exact?q=1"), "exact", true),
        (Request::post("/api/x"), "post", false),
        (Request::get("/api/x").header("x-v", "v2"), "header", false),
        (Request::get("/api/x").header("x-v", "v2x"), "prefix", false),
        (Request::get("/items/12"), "regex", false),
    ];
    for (builder, expected, clear) in cases {
        let out = run(&layer, builder.body(Full::default()).unwrap(), empty_ok()).await;
        assert_eq!(out.seen().headers["x-rule"], expected);
        assert_eq!(out.seen().clear_route_cache, clear, "{expected}");
    }
    let out = run(&layer, get("/elsewhere"), empty_ok()).await;
    assert!(out.seen().headers.get("x-rule").is_none());
}

/// A body of fixed frames (data and trailers).
struct FramesBody(std::collections::VecDeque<Frame<Bytes>>);

impl Body for FramesBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }
}

#[tokio::test]
async fn buffered_body_keeps_trailers() {
    let layer = on_requests(
        TransformationTemplate::new()
            .parse_body_behavior(RequestBodyParse::DontParse)
            .body("{{ body() }}!"),
    );
    let svc = layer.layer(service_fn(
        |req: Request<TransformBody<FramesBody>>| async move {
            let collected = req.into_body().collect().await.unwrap();
            let trailer = collected
                .trailers()
                .and_then(|t| t.get("x-checksum"))
                .cloned();
            let mut response = Response::new(Full::new(collected.to_bytes()));
            if let Some(trailer) = trailer {
                response.headers_mut().insert("x-got-trailer", trailer);
            }
            Ok::<_, Infallible>(response)
        },
    ));
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", "1".parse().unwrap());
    let body = FramesBody(
        [
            Frame::data(Bytes::from_static(b"ab")),
            Frame::data(Bytes::from_static(b"c")),
            Frame::trailers(trailers),
        ]
        .into(),
    );
    let response = svc
        .oneshot(Request::post("/").body(body).unwrap())
        .await
        .unwrap();
    assert_eq!(response.headers()["x-got-trailer"], "1");
    let data = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(data, "abc!");
}
