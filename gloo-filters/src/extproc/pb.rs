//! Between ext_proc messages and `http` types: the request and response heads Envoy sends,
//! turned into the `http` parts the tower layers see, and the answers built back. Shared by
//! every processor.

use envoy_types::pb::envoy::config::core::v3::{
    header_value_option::HeaderAppendAction, HeaderMap as PbHeaderMap, HeaderValue as PbHeader,
    HeaderValueOption,
};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    processing_response, BodyResponse, CommonResponse, HeaderMutation, HeadersResponse,
    ImmediateResponse, ProcessingRequest, ProcessingResponse, TrailersResponse,
};
use envoy_types::pb::google::protobuf::value::Kind;
use http::header::{HeaderName, HeaderValue, HOST};
use http::{request, response, Method, StatusCode, Uri, Version};

/// The attributes Envoy's ext_proc filter sends (`request_attributes`) are keyed by its name.
const EXT_PROC_FILTER: &str = "envoy.filters.http.ext_proc";

pub(crate) fn reply(response: processing_response::Response) -> ProcessingResponse {
    ProcessingResponse {
        response: Some(response),
        ..Default::default()
    }
}

/// The answer to a headers message: go on with `common`'s changes.
pub(crate) fn headers_reply(request: bool, common: CommonResponse) -> ProcessingResponse {
    let r = HeadersResponse {
        response: Some(common),
    };
    reply(if request {
        processing_response::Response::RequestHeaders(r)
    } else {
        processing_response::Response::ResponseHeaders(r)
    })
}

/// The answer to a body message: go on with `common`'s changes.
pub(crate) fn body_reply(request: bool, common: CommonResponse) -> ProcessingResponse {
    let r = BodyResponse {
        response: Some(common),
    };
    reply(if request {
        processing_response::Response::RequestBody(r)
    } else {
        processing_response::Response::ResponseBody(r)
    })
}

pub(crate) fn headers_continue(request: bool) -> ProcessingResponse {
    headers_reply(request, CommonResponse::default())
}

pub(crate) fn body_continue(request: bool) -> ProcessingResponse {
    body_reply(request, CommonResponse::default())
}

pub(crate) fn trailers_continue(request: bool) -> ProcessingResponse {
    let r = TrailersResponse::default();
    reply(if request {
        processing_response::Response::RequestTrailers(r)
    } else {
        processing_response::Response::ResponseTrailers(r)
    })
}

/// A header set to `value`, replacing the values it had.
pub(crate) fn header_option(name: &str, value: &[u8]) -> HeaderValueOption {
    header_with(name, value, HeaderAppendAction::OverwriteIfExistsOrAdd)
}

fn header_with(name: &str, value: &[u8], action: HeaderAppendAction) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(PbHeader {
            key: name.to_owned(),
            value: String::new(),
            raw_value: value.to_vec(),
        }),
        append_action: action as i32,
        ..Default::default()
    }
}

/// An `immediate_response`: Envoy answers the client itself with this status, these headers
/// and body.
pub(crate) fn immediate_response(
    status: StatusCode,
    set_headers: Vec<HeaderValueOption>,
    body: &[u8],
    details: &str,
) -> ProcessingResponse {
    reply(processing_response::Response::ImmediateResponse(
        ImmediateResponse {
            status: Some(HttpStatus {
                code: i32::from(status.as_u16()),
            }),
            headers: Some(HeaderMutation {
                set_headers,
                remove_headers: Vec::new(),
            }),
            body: body.to_vec(),
            grpc_status: None,
            details: details.to_owned(),
        },
    ))
}

pub(crate) fn is_immediate(r: &ProcessingResponse) -> bool {
    matches!(
        r.response,
        Some(processing_response::Response::ImmediateResponse(_))
    )
}

/// An attribute Envoy sent (`request_attributes` / `response_attributes`).
pub(crate) fn attribute<'a>(request: &'a ProcessingRequest, name: &str) -> Option<&'a Kind> {
    request
        .attributes
        .get(EXT_PROC_FILTER)?
        .fields
        .get(name)?
        .kind
        .as_ref()
}

fn version(request: &ProcessingRequest) -> Version {
    match attribute(request, "request.protocol") {
        Some(Kind::StringValue(p)) => match p.as_str() {
            "HTTP/1.0" => Version::HTTP_10,
            "HTTP/2" | "HTTP/2.0" => Version::HTTP_2,
            "HTTP/3" | "HTTP/3.0" => Version::HTTP_3,
            _ => Version::HTTP_11,
        },
        _ => Version::HTTP_11,
    }
}

/// Each header as (name, value bytes): Envoy sends `raw_value` (or the older `value`).
pub(crate) fn pairs(headers: Option<&PbHeaderMap>) -> impl Iterator<Item = (&str, &[u8])> {
    headers.into_iter().flat_map(|h| &h.headers).map(|h| {
        let value = if h.raw_value.is_empty() {
            h.value.as_bytes()
        } else {
            h.raw_value.as_slice()
        };
        (h.key.as_str(), value)
    })
}

/// The regular headers of `headers` (pseudo-headers are the caller's), as an `http` map.
fn header_map<'a>(headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers.filter(|(n, _)| !n.starts_with(':')) {
        // Envoy has validated them; anything `http` cannot hold is not a header a tower layer
        // could have been given either.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

pub(crate) fn pseudo<'a>(headers: Option<&'a PbHeaderMap>, name: &str) -> Option<&'a [u8]> {
    pairs(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// The request head Envoy sent, as the `http` parts a server gives a tower layer: the method,
/// `:path` as the (origin-form) URI, the headers, and `:authority` as `host`. `None` if the
/// request line is not valid HTTP.
pub(crate) fn request_parts(
    message: &ProcessingRequest,
    headers: Option<&PbHeaderMap>,
) -> Option<request::Parts> {
    let mut builder = http::Request::builder().version(version(message));
    if let Some(m) = pseudo(headers, ":method").and_then(|m| Method::from_bytes(m).ok()) {
        builder = builder.method(m);
    }
    let path = pseudo(headers, ":path").unwrap_or(b"/");
    builder = builder.uri(Uri::try_from(path).ok()?);
    let (mut parts, ()) = builder.body(()).ok()?.into_parts();
    parts.headers = header_map(pairs(headers));
    // Envoy carries the host in `:authority`, as HTTP/2 does.
    if let Some(host) = pseudo(headers, ":authority").and_then(|a| HeaderValue::from_bytes(a).ok())
    {
        parts.headers.entry(HOST).or_insert(host);
    }
    Some(parts)
}

/// The response head Envoy sent (`:status`, `200` if missing, and the headers).
pub(crate) fn response_parts(headers: Option<&PbHeaderMap>) -> Option<response::Parts> {
    let status = pseudo(headers, ":status")
        .and_then(|s| StatusCode::from_bytes(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut builder = http::Response::builder().status(status);
    if let Some(map) = builder.headers_mut() {
        *map = header_map(pairs(headers));
    }
    Some(builder.body(()).ok()?.into_parts().0)
}

/// The header changes that turn `before` into `after`: each header whose values differ is set
/// to its new values (the first replacing, the others appended), each header gone is removed.
#[cfg_attr(not(feature = "extproc-transform"), allow(dead_code))]
pub(crate) fn header_diff(
    before: &http::HeaderMap,
    after: &http::HeaderMap,
    mutation: &mut HeaderMutation,
) {
    for name in after.keys() {
        let new = after.get_all(name);
        if before.get_all(name).iter().eq(new.iter()) {
            continue;
        }
        for (i, value) in new.iter().enumerate() {
            let action = if i == 0 {
                HeaderAppendAction::OverwriteIfExistsOrAdd
            } else {
                HeaderAppendAction::AppendIfExistsOrAdd
            };
            mutation
                .set_headers
                .push(header_with(name.as_str(), value.as_bytes(), action));
        }
    }
    for name in before.keys() {
        if !after.contains_key(name) {
            mutation.remove_headers.push(name.as_str().to_owned());
        }
    }
}

/// Whether `mutation` changes anything.
#[cfg_attr(not(feature = "extproc-transform"), allow(dead_code))]
pub(crate) fn is_empty(mutation: &HeaderMutation) -> bool {
    mutation.set_headers.is_empty() && mutation.remove_headers.is_empty()
}
