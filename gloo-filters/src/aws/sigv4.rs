//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`), on `ring`'s SHA-256 and HMAC.
//!
//! [`sign`] adds `x-amz-date`, `x-amz-security-token` (with session credentials) and
//! `authorization` to a request, as AWS's "Create a signed AWS API request" guide describes:
//! the canonical request (method, canonical URI, canonical query string, canonical headers,
//! signed headers, payload hash), the string to sign over its hash, and the signature with the
//! key derived from the secret, date, region and service. The steps are public
//! ([`canonical_request`], [`string_to_sign`], [`signature`]), so they can be checked one by one
//! against AWS's Signature Version 4 test suite (the unit tests do).
//!
//! The canonical URI encodes the path as the request carries it, so a path that is already
//! percent-encoded on the wire is encoded twice, as every service but S3 expects (envoy-gloo's
//! Lambda filter does the same). S3's single encoding is not offered: gloo signs no S3 request.

use std::fmt::Write as _;
use std::time::SystemTime;

use http::header::{HeaderName, HeaderValue, AUTHORIZATION, HOST};
use ring::{digest, hmac};

use super::credentials::Credentials;
use super::time::{amz_date, scope_date};

/// The algorithm name in the string to sign and the `authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The hex SHA-256 of an empty payload.
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `x-amz-date`.
pub const X_AMZ_DATE: &str = "x-amz-date";
/// `x-amz-security-token`.
pub const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";
/// `x-amz-content-sha256`.
pub const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

/// Headers never signed: a hop (or a proxy) may add, drop or rewrite them.
const UNSIGNED: &[&str] = &[
    "authorization",
    "user-agent",
    "x-amzn-trace-id",
    "expect",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Which request headers the signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedHeaders {
    /// Every header of the request (hop-by-hop headers, `user-agent` and `x-amzn-trace-id`
    /// excepted), as the AWS SDKs sign.
    All,
    /// Only these (lowercase) names, plus `host` and the `x-amz-*` headers the signer adds.
    /// For requests that travel on through a proxy that adds headers of its own (envoy-gloo's
    /// Lambda filter signs `content-type`, `host`, `x-amz-date`, `x-amz-invocation-type` and
    /// `x-amz-log-type` only).
    Only(Vec<String>),
}

/// Where the session token of temporary credentials goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionTokenPlacement {
    /// A signed `x-amz-security-token` header (what the AWS SDKs do).
    #[default]
    Signed,
    /// An `x-amz-security-token` header added after signing, which some services require
    /// (the test suite's `post-sts-header-after`).
    AfterSignature,
}

/// How to sign: the scope (region, service) and the options of the algorithm.
///
/// ```
/// use gloo_filters::aws::sigv4::SigningSettings;
/// let settings = SigningSettings::new("us-east-1", "ec2");
/// assert_eq!(settings.region(), "us-east-1");
/// ```
#[derive(Debug, Clone)]
pub struct SigningSettings {
    region: String,
    service: String,
    signed_headers: SignedHeaders,
    session_token: SessionTokenPlacement,
    content_sha256_header: bool,
    normalize_path: bool,
}

impl SigningSettings {
    /// Signing for `service` (`ec2`, `lambda`, `sts`, ...) in `region`: every header signed,
    /// the session token signed, no `x-amz-content-sha256`, the path normalized.
    pub fn new(region: impl Into<String>, service: impl Into<String>) -> Self {
        SigningSettings {
            region: region.into(),
            service: service.into(),
            signed_headers: SignedHeaders::All,
            session_token: SessionTokenPlacement::Signed,
            content_sha256_header: false,
            normalize_path: true,
        }
    }

    /// Which headers to sign.
    pub fn signed_headers(mut self, headers: SignedHeaders) -> Self {
        self.signed_headers = headers;
        self
    }

    /// Where the session token goes.
    pub fn session_token(mut self, placement: SessionTokenPlacement) -> Self {
        self.session_token = placement;
        self
    }

    /// Also send (and sign) the payload hash as `x-amz-content-sha256`.
    pub fn content_sha256_header(mut self, on: bool) -> Self {
        self.content_sha256_header = on;
        self
    }

    /// Remove `.` and `..` segments and repeated slashes from the path before encoding it
    /// (RFC 3986 section 5.2.4), as every service but S3 expects. On by default.
    pub fn normalize_path(mut self, on: bool) -> Self {
        self.normalize_path = on;
        self
    }

    /// The region of the scope.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The service of the scope.
    pub fn service(&self) -> &str {
        &self.service
    }
}

/// Why a request cannot be signed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot sign the request: {0}")]
pub struct SigningError(String);

/// The hex SHA-256 of `payload`, the last line of a canonical request.
///
/// ```
/// use gloo_filters::aws::sigv4::{payload_sha256, EMPTY_PAYLOAD_SHA256};
/// assert_eq!(payload_sha256(b""), EMPTY_PAYLOAD_SHA256);
/// ```
pub fn payload_sha256(payload: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, payload).as_ref())
}

/// Signs `request` (its method, URI, headers, and `payload`, the body it will carry) with
/// `credentials` at `time`: sets `host` (from the URI, when the request has none),
/// `x-amz-date`, `x-amz-security-token` for session credentials, `x-amz-content-sha256` if
/// asked, and `authorization`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use gloo_filters::aws::sigv4::{sign, SigningSettings};
/// use gloo_filters::aws::Credentials;
///
/// let mut request = http::Request::get("https://example.amazonaws.com/").body(()).unwrap();
/// let credentials = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
/// // 2015-08-30T12:36:00Z, the date of AWS's test suite.
/// let time = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
/// sign(&mut request, b"", &credentials, &SigningSettings::new("us-east-1", "service"), time).unwrap();
/// assert_eq!(
///     request.headers()["authorization"],
///     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
///      SignedHeaders=host;x-amz-date, \
///      Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
/// );
/// ```
pub fn sign<B>(
    request: &mut http::Request<B>,
    payload: &[u8],
    credentials: &Credentials,
    settings: &SigningSettings,
    time: SystemTime,
) -> Result<(), SigningError> {
    sign_with_hash(
        request,
        &payload_sha256(payload),
        credentials,
        settings,
        time,
    )
}

/// [`sign`] with the payload's hex SHA-256 already computed (or `UNSIGNED-PAYLOAD`).
pub fn sign_with_hash<B>(
    request: &mut http::Request<B>,
    payload_hash: &str,
    credentials: &Credentials,
    settings: &SigningSettings,
    time: SystemTime,
) -> Result<(), SigningError> {
    let date_time = amz_date(time);
    let date = scope_date(time);
    let headers = request.headers_mut();
    if !headers.contains_key(HOST) {
        let host = request
            .uri()
            .authority()
            .map(|a| host_of(request.uri().scheme_str(), a))
            .ok_or_else(|| {
                SigningError("the request has no host header and no authority".into())
            })?;
        let value = HeaderValue::from_str(&host)
            .map_err(|e| SigningError(format!("host {host:?}: {e}")))?;
        request.headers_mut().insert(HOST, value);
    }
    let headers = request.headers_mut();
    headers.remove(AUTHORIZATION);
    headers.insert(HeaderName::from_static(X_AMZ_DATE), value(&date_time)?);
    headers.remove(X_AMZ_SECURITY_TOKEN);
    if settings.content_sha256_header {
        headers.insert(
            HeaderName::from_static(X_AMZ_CONTENT_SHA256),
            value(payload_hash)?,
        );
    }
    let token = credentials.session_token();
    if let (Some(token), SessionTokenPlacement::Signed) = (token, settings.session_token) {
        headers.insert(HeaderName::from_static(X_AMZ_SECURITY_TOKEN), value(token)?);
    }
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers.iter() {
        let name = name.as_str();
        if !is_signed(name, &settings.signed_headers) {
            continue;
        }
        let value = value
            .to_str()
            .map_err(|_| SigningError(format!("header {name}: not visible ASCII")))?;
        pairs.push((name.to_string(), value.to_string()));
    }
    let uri = request.uri();
    let path = if uri.path().is_empty() {
        "/"
    } else {
        uri.path()
    };
    let (canonical, signed) = canonical_request(
        request.method().as_str(),
        path,
        uri.query().unwrap_or(""),
        &pairs,
        payload_hash,
        settings.normalize_path,
    );
    let scope = credential_scope(&date, &settings.region, &settings.service);
    let to_sign = string_to_sign(&date_time, &scope, &canonical);
    let signature = signature(
        credentials.secret_access_key(),
        &date,
        &settings.region,
        &settings.service,
        &to_sign,
    );
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        credentials.access_key_id()
    );
    let headers = request.headers_mut();
    headers.insert(AUTHORIZATION, value(&authorization)?);
    if let (Some(token), SessionTokenPlacement::AfterSignature) = (token, settings.session_token) {
        headers.insert(HeaderName::from_static(X_AMZ_SECURITY_TOKEN), value(token)?);
    }
    Ok(())
}

fn value(text: &str) -> Result<HeaderValue, SigningError> {
    HeaderValue::from_str(text).map_err(|e| SigningError(format!("{text:?}: {e}")))
}

/// The `host` header a client sends for `authority`: without the scheme's default port.
fn host_of(scheme: Option<&str>, authority: &http::uri::Authority) -> String {
    match (scheme, authority.port_u16()) {
        (Some("https"), Some(443)) | (Some("http"), Some(80)) => authority.host().to_string(),
        _ => authority.as_str().to_string(),
    }
}

fn is_signed(name: &str, selection: &SignedHeaders) -> bool {
    if UNSIGNED.contains(&name) {
        return false;
    }
    match selection {
        SignedHeaders::All => true,
        SignedHeaders::Only(names) => {
            name == "host"
                || name == X_AMZ_DATE
                || name == X_AMZ_SECURITY_TOKEN
                || name == X_AMZ_CONTENT_SHA256
                || names.iter().any(|n| n == name)
        }
    }
}

/// The canonical request and its signed-headers list, from the method, the path and query
/// as the request carries them (percent-encoded or not: see the module docs), the headers to
/// sign (any case, repeated names allowed) and the payload's hex SHA-256.
///
/// ```
/// use gloo_filters::aws::sigv4::{canonical_request, EMPTY_PAYLOAD_SHA256};
/// let headers = [("Host".to_string(), "example.amazonaws.com".to_string())];
/// let (request, signed) = canonical_request("GET", "/", "b=2&a=1", &headers, EMPTY_PAYLOAD_SHA256, true);
/// assert_eq!(signed, "host");
/// assert!(request.starts_with("GET\n/\na=1&b=2\nhost:example.amazonaws.com\n"));
/// ```
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    payload_hash: &str,
    normalize_path: bool,
) -> (String, String) {
    let path = if normalize_path {
        normalize(path)
    } else {
        path.to_string()
    };
    let mut out = String::with_capacity(256);
    out.push_str(method);
    out.push('\n');
    out.push_str(&encode(&path, false));
    out.push('\n');
    out.push_str(&canonical_query(query));
    out.push('\n');
    // Lowercase names; values trimmed, inner runs of spaces collapsed; repeated names joined
    // with commas in the order given; sorted by name.
    let mut merged: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            None => merged.push((name, value)),
        }
    }
    merged.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in &merged {
        let _ = writeln!(out, "{name}:{value}");
    }
    out.push('\n');
    let signed = merged
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    out.push_str(&signed);
    out.push('\n');
    out.push_str(payload_hash);
    (out, signed)
}

/// `<date>/<region>/<service>/aws4_request`.
pub fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// The string to sign: the algorithm, the request time (`YYYYMMDDTHHMMSSZ`), the credential
/// scope and the hex SHA-256 of the canonical request.
pub fn string_to_sign(date_time: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{date_time}\n{scope}\n{}",
        payload_sha256(canonical_request.as_bytes())
    )
}

/// The hex signature of `string_to_sign` with the key derived from `secret`, the scope's
/// `date` (`YYYYMMDD`), `region` and `service`.
pub fn signature(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    let mac = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
    };
    let k_date = mac(format!("AWS4{secret}").as_bytes(), date);
    let k_region = mac(k_date.as_ref(), region);
    let k_service = mac(k_region.as_ref(), service);
    let k_signing = mac(k_service.as_ref(), "aws4_request");
    hex(mac(k_signing.as_ref(), string_to_sign).as_ref())
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// URI-encodes every byte but RFC 3986's unreserved ones (and `/` unless `encode_slash`), as
/// SigV4 and the AWS query protocol encode names and values.
///
/// ```
/// use gloo_filters::aws::sigv4::uri_encode;
/// assert_eq!(uri_encode("a b/c+d~", true), "a%20b%2Fc%2Bd~");
/// assert_eq!(uri_encode("/a b/", false), "/a%20b/");
/// ```
pub fn uri_encode(text: &str, encode_slash: bool) -> String {
    encode(text, encode_slash)
}

pub(crate) fn encode(text: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~');
        if unreserved || (byte == b'/' && !encode_slash) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Percent-decodes (a `%` not followed by two hex digits stays as it is); `+` stays `+`.
fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hi = (bytes[i + 1] as char).to_digit(16);
            let lo = (bytes[i + 2] as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The canonical query string: each `name=value` decoded and encoded again strictly, sorted
/// by name, then by value; a parameter without `=` has an empty value.
fn canonical_query(query: &str) -> String {
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            let strict = |s: &str| encode(&String::from_utf8_lossy(&decode(s)), true);
            (strict(name), strict(value))
        })
        .collect();
    params.sort();
    params
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Removes `.` and `..` segments and empty segments (repeated slashes) from a path, keeping a
/// trailing slash.
fn normalize(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if out.is_empty() || (trailing && !segments.is_empty()) {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_as_rfc_3986_removes_dot_segments() {
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize(""), "/");
        assert_eq!(normalize("/example/.."), "/");
        assert_eq!(normalize("/example1/example2/../.."), "/");
        assert_eq!(normalize("/./"), "/");
        assert_eq!(normalize("/./example"), "/example");
        assert_eq!(normalize("//example//"), "/example/");
        assert_eq!(normalize("/a/b/../c"), "/a/c");
    }

    #[test]
    fn a_path_encoded_on_the_wire_is_encoded_again() {
        let (request, _) = canonical_request(
            "POST",
            "/2015-03-31/functions/arn%3Aaws%3Alambda/invocations",
            "Qualifier=%24LATEST",
            &[],
            EMPTY_PAYLOAD_SHA256,
            true,
        );
        let mut lines = request.lines();
        lines.next();
        assert_eq!(
            lines.next(),
            Some("/2015-03-31/functions/arn%253Aaws%253Alambda/invocations")
        );
        // The query is decoded and encoded once.
        assert_eq!(lines.next(), Some("Qualifier=%24LATEST"));
    }

    #[test]
    fn decoding_leaves_stray_percent_signs() {
        assert_eq!(decode("a%2"), b"a%2");
        assert_eq!(decode("%zz%41"), b"%zzA");
        assert_eq!(decode("%"), b"%");
    }
}
