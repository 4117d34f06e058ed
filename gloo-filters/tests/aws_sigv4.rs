//! gloo's SigV4 signer against AWS's Signature Version 4 test suite (`tests/data/aws-sigv4`,
//! see its README): for every case, the canonical request, the string to sign and the
//! signature must be the suite's byte for byte; where the request can be an `http::Request`
//! (its path needs no encoding), signing it end to end must give the suite's signature too.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use gloo_filters::aws::sigv4::{
    canonical_request, credential_scope, payload_sha256, sign, signature, string_to_sign,
    SessionTokenPlacement, SigningSettings,
};
use gloo_filters::aws::Credentials;

/// 2015-08-30T12:36:00Z: every case's `timestamp`.
const TIMESTAMP: u64 = 1_440_938_160;

struct Case {
    name: String,
    context: serde_json::Value,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/aws-sigv4")
}

fn read(case: &Path, file: &str) -> String {
    fs::read_to_string(case.join(file)).unwrap_or_else(|e| panic!("{}/{file}: {e}", case.display()))
}

/// Parses `request.txt`: `METHOD PATH HTTP/1.1` (the path may hold spaces), `Name:value`
/// lines (indented lines continue the previous value), a blank line, the body.
fn load(dir: &Path) -> Case {
    let text = read(dir, "request.txt");
    let (head, body) = match text.split_once("\n\n") {
        Some((head, body)) => (head.to_string(), body.as_bytes().to_vec()),
        None => (text.trim_end_matches('\n').to_string(), Vec::new()),
    };
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    let method = request_line.split(' ').next().expect("method").to_string();
    let target = request_line[method.len() + 1..request_line.len() - " HTTP/1.1".len()].to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("a continuation follows a header");
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (name, value) = line.split_once(':').expect("Name:value");
            headers.push((name.to_string(), value.to_string()));
        }
    }
    let context: serde_json::Value =
        serde_json::from_str(&read(dir, "context.json")).expect("context.json");
    assert_eq!(context["timestamp"], "2015-08-30T12:36:00Z");
    Case {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        context,
        method,
        path,
        query,
        headers,
        body,
    }
}

fn credentials(case: &Case) -> Credentials {
    let c = &case.context["credentials"];
    let mut out = Credentials::new(
        c["access_key_id"].as_str().unwrap(),
        c["secret_access_key"].as_str().unwrap(),
    );
    if let Some(token) = c["token"].as_str() {
        out = out.with_session_token(token);
    }
    out
}

fn flag(case: &Case, name: &str) -> bool {
    case.context[name].as_bool().unwrap_or(false)
}

fn cases() -> Vec<Case> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(suite())
        .expect("the suite directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load(d)).collect()
}

#[test]
fn every_step_matches_the_test_suite() {
    let cases = cases();
    assert!(
        cases.len() >= 38,
        "the whole suite is there: {}",
        cases.len()
    );
    for case in &cases {
        let dir = suite().join(&case.name);
        let hash = payload_sha256(&case.body);
        let mut headers = case.headers.clone();
        headers.push(("X-Amz-Date".into(), "20150830T123600Z".into()));
        let creds = credentials(case);
        if let Some(token) = creds.session_token() {
            if !flag(case, "omit_session_token") {
                headers.push(("X-Amz-Security-Token".into(), token.into()));
            }
        }
        if flag(case, "sign_body") {
            headers.push(("X-Amz-Content-Sha256".into(), hash.clone()));
        }
        let (canonical, _) = canonical_request(
            &case.method,
            &case.path,
            &case.query,
            &headers,
            &hash,
            flag(case, "normalize"),
        );
        assert_eq!(
            canonical,
            read(&dir, "header-canonical-request.txt"),
            "{}: canonical request",
            case.name
        );
        let region = case.context["region"].as_str().unwrap();
        let service = case.context["service"].as_str().unwrap();
        let scope = credential_scope("20150830", region, service);
        let to_sign = string_to_sign("20150830T123600Z", &scope, &canonical);
        assert_eq!(
            to_sign,
            read(&dir, "header-string-to-sign.txt"),
            "{}: string to sign",
            case.name
        );
        assert_eq!(
            signature(
                creds.secret_access_key(),
                "20150830",
                region,
                service,
                &to_sign
            ),
            read(&dir, "header-signature.txt").trim(),
            "{}: signature",
            case.name
        );
    }
}

#[test]
fn signing_an_http_request_gives_the_suites_signature() {
    let mut checked = 0;
    for case in cases() {
        // Only requests an `http::Request` can carry as they are: a path and query that need
        // no percent-encoding, header values on one line.
        let target = if case.query.is_empty() {
            case.path.clone()
        } else {
            format!("{}?{}", case.path, case.query)
        };
        let plain = target.bytes().all(|b| b.is_ascii_graphic() && b != b'%')
            && case.headers.iter().all(|(_, v)| !v.contains("  "));
        if !plain {
            continue;
        }
        let Ok(uri) = format!("https://example.amazonaws.com{target}").parse::<http::Uri>() else {
            continue;
        };
        let mut request = http::Request::builder()
            .method(case.method.as_str())
            .uri(uri)
            .body(())
            .unwrap();
        for (name, value) in &case.headers {
            request.headers_mut().append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        let placement = if flag(&case, "omit_session_token") {
            SessionTokenPlacement::AfterSignature
        } else {
            SessionTokenPlacement::Signed
        };
        let settings = SigningSettings::new(
            case.context["region"].as_str().unwrap(),
            case.context["service"].as_str().unwrap(),
        )
        .normalize_path(flag(&case, "normalize"))
        .content_sha256_header(flag(&case, "sign_body"))
        .session_token(placement);
        sign(
            &mut request,
            &case.body,
            &credentials(&case),
            &settings,
            UNIX_EPOCH + Duration::from_secs(TIMESTAMP),
        )
        .unwrap();
        let authorization = request.headers()["authorization"].to_str().unwrap();
        let expected = read(&suite().join(&case.name), "header-signature.txt");
        assert!(
            authorization.ends_with(&format!("Signature={}", expected.trim())),
            "{}: {authorization}",
            case.name
        );
        if let Some(token) = credentials(&case).session_token() {
            assert_eq!(
                request.headers()["x-amz-security-token"],
                token,
                "{}",
                case.name
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "most cases are plain requests: {checked}");
}
