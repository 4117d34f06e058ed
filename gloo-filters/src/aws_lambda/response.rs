//! Turning a function's result into the HTTP response: envoy-gloo's API Gateway transformer
//! (`api_gateway_transformer.cc`) and its ALB unwrapping (`parseResponseAsALB`).

use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use serde_json::Value;

/// The header envoy-gloo sets when Lambda throttled the function (`429`).
pub const LAMBDA_STATUS_CODE_HEADER: &str = "x-envoygloo-lambda-statuscode";
/// The header with Lambda's throttling `Reason`.
pub const LAMBDA_STATUS_REASON_HEADER: &str = "x-envoygloo-lambda-statusreason";
/// The header naming the error of a result the transformer could not use.
pub const AMAZON_ERRORTYPE_HEADER: &str = "x-amzn-errortype";

/// A response: status, headers, body.
pub(crate) type Parts = (StatusCode, HeaderMap, Bytes);

/// nlohmann's `dump()` of a JSON value (compact), or the string itself.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Adds a header, skipping a name or value HTTP does not allow (as envoy-gloo logs and skips).
fn add(headers: &mut HeaderMap, name: &str, value: &str) {
    let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
        HeaderValue::from_str(value),
    ) else {
        tracing::debug!(name, "Lambda response header skipped: not a valid header");
        return;
    };
    headers.append(name, value);
}

/// envoy-gloo's `format_error`: every header dropped, `text/plain`, `x-amzn-errortype`, and
/// `<code>: <message>` as the body.
fn error(message: &str) -> Parts {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(AMAZON_ERRORTYPE_HEADER, HeaderValue::from_static("500"));
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        headers,
        Bytes::from(format!("500: {message}")),
    )
}

/// The API Gateway transformer: the result (a proxy integration response) becomes the
/// response. Lambda's own headers are dropped; `statusCode` (an unsigned integer; 200 when
/// absent), `headers` (values that are not strings are written as JSON), `multiValueHeaders`
/// (arrays), and `body` (JSON when not a string; base64-decoded when `isBase64Encoded` is
/// `true`; `{}` when absent). A `429` from Lambda (the function throttled) becomes `500` with
/// `x-envoygloo-lambda-statuscode: 429` and the `Reason`. What it cannot read is a `500`
/// saying why.
pub(crate) fn api_gateway(status: StatusCode, body: &[u8]) -> Parts {
    let json: Value = match serde_json::from_slice(body) {
        Ok(json) => json,
        Err(_) => return error("failed to parse response body as JSON"),
    };
    let mut headers = HeaderMap::new();
    if status == StatusCode::TOO_MANY_REQUESTS {
        headers.insert(LAMBDA_STATUS_CODE_HEADER, HeaderValue::from_static("429"));
        if let Some(reason) = json.get("Reason").and_then(Value::as_str) {
            add(&mut headers, LAMBDA_STATUS_REASON_HEADER, reason);
        }
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            headers,
            Bytes::copy_from_slice(body),
        );
    }
    let status = match json.get("statusCode") {
        None => StatusCode::OK,
        Some(code) => match code.as_u64().and_then(|c| u16::try_from(c).ok()) {
            Some(code) => match StatusCode::from_u16(code) {
                Ok(status) => status,
                Err(_) => return error("cannot parse non unsigned integer status code"),
            },
            None => return error("cannot parse non unsigned integer status code"),
        },
    };
    if let Some(single) = json.get("headers") {
        let Some(single) = single.as_object() else {
            return error("invalid headers object");
        };
        for (name, value) in single {
            add(&mut headers, name, &text(value));
        }
    }
    if let Some(multi) = json.get("multiValueHeaders") {
        let Some(multi) = multi.as_object() else {
            return error("invalid multiValueHeaders object");
        };
        for (name, values) in multi {
            match values {
                Value::Array(values) => {
                    for value in values {
                        add(&mut headers, name, &text(value));
                    }
                }
                Value::Object(_) => return error("invalid multi header value object"),
                scalar => add(&mut headers, name, &text(scalar)),
            }
        }
    }
    let body = match json.get("body") {
        None => Bytes::from_static(b"{}"),
        Some(value) => {
            let raw = text(value);
            if json.get("isBase64Encoded") == Some(&Value::Bool(true)) {
                // Envoy's Base64::decode gives nothing for input that is not base64.
                Bytes::from(
                    base64::engine::general_purpose::STANDARD
                        .decode(raw.as_bytes())
                        .unwrap_or_default(),
                )
            } else {
                Bytes::from(raw)
            }
        }
    };
    (status, headers, body)
}

/// envoy-gloo's ALB unwrapping: Lambda's headers are kept and the result's added; `body` (a
/// string; base64-decoded when `isBase64Encoded`), `statusCode`, `headers`,
/// `multiValueHeaders`. A result that is not JSON, or whose `isBase64Encoded` is not a
/// boolean or `statusCode` not a number, is a `500` with no body.
pub(crate) fn alb(status: StatusCode, mut headers: HeaderMap, body: &[u8]) -> Parts {
    let failed = |mut headers: HeaderMap| {
        headers.remove(CONTENT_LENGTH);
        (StatusCode::INTERNAL_SERVER_ERROR, headers, Bytes::new())
    };
    let Ok(Value::Object(json)) = serde_json::from_slice::<Value>(body) else {
        return failed(headers);
    };
    let mut out = Bytes::new();
    if let Some(body) = json.get("body") {
        // A protobuf Struct's `string_value` of a non-string is empty.
        let raw = body.as_str().unwrap_or_default();
        out = match json.get("isBase64Encoded") {
            None => Bytes::copy_from_slice(raw.as_bytes()),
            Some(Value::Bool(true)) => Bytes::from(
                base64::engine::general_purpose::STANDARD
                    .decode(raw.as_bytes())
                    .unwrap_or_default(),
            ),
            Some(Value::Bool(false)) => Bytes::copy_from_slice(raw.as_bytes()),
            Some(_) => return failed(headers),
        };
    }
    let mut status = status;
    if let Some(code) = json.get("statusCode") {
        let Some(code) = code.as_f64() else {
            return failed(headers);
        };
        status = match StatusCode::from_u16(code as u16) {
            Ok(s) if code >= 0.0 && code.fract() == 0.0 => s,
            _ => return failed(headers),
        };
    }
    if let Some(Value::Object(single)) = json.get("headers") {
        for (name, value) in single {
            add(&mut headers, name, value.as_str().unwrap_or_default());
        }
    }
    if let Some(Value::Object(multi)) = json.get("multiValueHeaders") {
        for (name, values) in multi {
            if let Value::Array(values) = values {
                for value in values {
                    add(&mut headers, name, value.as_str().unwrap_or_default());
                }
            }
        }
    }
    headers.remove(CONTENT_LENGTH);
    (status, headers, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_gateway_responses_unwrap_as_envoy_gloos_transformer_does() {
        let (status, headers, body) = api_gateway(
            StatusCode::OK,
            br#"{"statusCode": 201, "headers": {"X-A": "1", "x-n": 2}, "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]}, "body": "aGVsbG8=", "isBase64Encoded": true}"#,
        );
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(headers["x-a"], "1");
        assert_eq!(headers["x-n"], "2", "non-string values are written as JSON");
        let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(body, "hello");
        // No statusCode: 200; no body: `{}`; a JSON body is dumped.
        assert_eq!(
            api_gateway(StatusCode::OK, b"{}"),
            (StatusCode::OK, HeaderMap::new(), Bytes::from_static(b"{}"))
        );
        assert_eq!(
            api_gateway(StatusCode::OK, br#"{"body": {"a": [1]}}"#).2,
            r#"{"a":[1]}"#
        );
        // What it cannot read: a 500 saying why.
        let (status, headers, body) = api_gateway(StatusCode::OK, b"not json");
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(headers[AMAZON_ERRORTYPE_HEADER], "500");
        assert_eq!(body, "500: failed to parse response body as JSON");
        assert_eq!(
            api_gateway(StatusCode::OK, br#"{"statusCode": -1}"#).2,
            "500: cannot parse non unsigned integer status code"
        );
        assert_eq!(
            api_gateway(StatusCode::OK, br#"{"headers": []}"#).2,
            "500: invalid headers object"
        );
        assert_eq!(
            api_gateway(StatusCode::OK, br#"{"multiValueHeaders": {"a": {"b": 1}}}"#).2,
            "500: invalid multi header value object"
        );
        // Lambda throttled the function.
        let throttled = br#"{"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "Type": "User", "message": "Rate Exceeded."}"#;
        let (status, headers, body) = api_gateway(StatusCode::TOO_MANY_REQUESTS, throttled);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(headers[LAMBDA_STATUS_CODE_HEADER], "429");
        assert_eq!(
            headers[LAMBDA_STATUS_REASON_HEADER],
            "ReservedFunctionConcurrentInvocationLimitExceeded"
        );
        assert_eq!(body.as_ref(), throttled);
    }

    #[test]
    fn alb_responses_keep_lambdas_headers() {
        let mut lambda = HeaderMap::new();
        lambda.insert("x-amzn-requestid", HeaderValue::from_static("r"));
        let (status, headers, body) = alb(
            StatusCode::OK,
            lambda.clone(),
            br#"{"statusCode": 404, "headers": {"x-a": "1"}, "body": "gone"}"#,
        );
        assert_eq!(
            (status, body.as_ref()),
            (StatusCode::NOT_FOUND, &b"gone"[..])
        );
        assert_eq!(
            (headers["x-amzn-requestid"].clone(), headers["x-a"].clone()),
            (HeaderValue::from_static("r"), HeaderValue::from_static("1"))
        );
        assert_eq!(
            alb(StatusCode::OK, lambda.clone(), b"nope").0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            alb(
                StatusCode::OK,
                lambda,
                br#"{"body": "x", "isBase64Encoded": "yes"}"#
            )
            .2,
            ""
        );
    }
}
