//! The `CheckRequest` Envoy builds from a request, and what a `CheckResponse` asks for.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3::{
    address, header_value_option::HeaderAppendAction, socket_address, Address, HeaderValueOption,
    Metadata, SocketAddress,
};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::{
    check_response, AttributeContext, CheckRequest, CheckResponse, DeniedHttpResponse,
};
use envoy_types::pb::google::protobuf::{Struct, Timestamp};
use http::header::{HeaderName, HeaderValue, HOST};
use http::{HeaderMap, StatusCode, Version};

use super::layer::Config;

/// The header Envoy adds to the check request's headers when it sent a buffered body:
/// `true` when the body was cut at `max_request_bytes`.
const PARTIAL_BODY: &str = "x-envoy-auth-partial-body";

/// The connection a request arrived on, as the check request reports it.
///
/// The layer reads it from the request's extensions with the function given to
/// [`ExtAuthzLayer::connection_info`](super::ExtAuthzLayer::connection_info); by default it
/// looks for a `ConnectionInfo` the server inserted there.
///
/// ```
/// use gloo_filters::ext_authz::ConnectionInfo;
///
/// let info = ConnectionInfo {
///     source: Some("10.0.0.1:40000".parse().unwrap()),
///     destination: Some("10.0.0.2:8080".parse().unwrap()),
///     tls: false,
/// };
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(info);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The client's address (`attributes.source.address`).
    pub source: Option<SocketAddr>,
    /// The address the client connected to (`attributes.destination.address`).
    pub destination: Option<SocketAddr>,
    /// Whether the connection is TLS: the `:scheme` of a request without one is then `https`.
    pub tls: bool,
}

/// Envoy's `MessageUtil::sanitizeUtf8String`: each byte that is not part of valid UTF-8
/// becomes `!`.
pub(crate) fn sanitize_utf8(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // The prefix is valid UTF-8 by construction.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let bad = e.error_len().unwrap_or(after.len());
                out.extend(std::iter::repeat_n('!', bad));
                rest = &after[bad..];
            }
        }
    }
}

fn socket_address(addr: SocketAddr) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: addr.ip().to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                addr.port(),
            ))),
            ..Default::default()
        })),
    }
}

fn peer(addr: Option<SocketAddr>) -> Peer {
    Peer {
        address: addr.map(socket_address),
        ..Default::default()
    }
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// Builds the check request as Envoy's `CheckRequestUtils::createHttpCheck` does: source and
/// destination peers, the request time, the HTTP request (a random stream id, method, path
/// with its query, `:authority`, `:scheme`, protocol, headers keyed by lowercase name with
/// repeated values joined by `,` and the pseudo-headers included, values made valid UTF-8),
/// the buffered body, and the context extensions.
pub(crate) fn check_request(
    parts: &http::request::Parts,
    connection: ConnectionInfo,
    config: &Config,
    body: Option<&Bytes>,
    metadata_context: Option<Metadata>,
) -> CheckRequest {
    build_check_request(
        parts,
        connection,
        BodySettings {
            max_request_bytes: config.max_request_bytes,
            pack_as_bytes: config.pack_as_bytes,
        },
        body,
        config.context_extensions.clone(),
        metadata_context,
    )
}

/// How a buffered body goes into the check request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodySettings {
    /// Bytes sent at most.
    pub(crate) max_request_bytes: u64,
    /// In `raw_body` instead of `body`.
    pub(crate) pack_as_bytes: bool,
}

/// [`check_request`] with its settings given one by one (for callers without a layer, such as
/// extauth's gRPC passthrough).
pub(crate) fn build_check_request(
    parts: &http::request::Parts,
    connection: ConnectionInfo,
    settings: BodySettings,
    body: Option<&Bytes>,
    context_extensions: HashMap<String, String>,
    metadata_context: Option<Metadata>,
) -> CheckRequest {
    let authority = parts
        .headers
        .get(HOST)
        .map(|h| sanitize_utf8(h.as_bytes()))
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_string()))
        .unwrap_or_default();
    let scheme = match parts.uri.scheme_str() {
        Some(s) => s.to_string(),
        None if connection.tls => "https".to_string(),
        None => "http".to_string(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string());
    let method = parts.method.as_str().to_string();
    let mut headers: HashMap<String, String> = HashMap::with_capacity(parts.headers.len() + 4);
    headers.insert(":authority".into(), authority.clone());
    headers.insert(":path".into(), path.clone());
    headers.insert(":method".into(), method.clone());
    headers.insert(":scheme".into(), scheme.clone());
    for (name, value) in &parts.headers {
        // Envoy keeps `Host` as `:authority`, and skips a client's own partial-body header.
        if name == HOST || name.as_str() == PARTIAL_BODY {
            continue;
        }
        let value = sanitize_utf8(value.as_bytes());
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let mut http = HttpRequest {
        id: fastrand::u64(..).to_string(),
        method,
        path,
        host: authority,
        scheme,
        protocol: protocol(parts.version).to_string(),
        ..Default::default()
    };
    if let Some(body) = body {
        let max = usize::try_from(settings.max_request_bytes).unwrap_or(usize::MAX);
        let length = body.len().min(max);
        let data = &body[..length];
        if settings.pack_as_bytes {
            http.raw_body = data.to_vec();
        } else {
            http.body = sanitize_utf8(data);
        }
        headers.insert(
            PARTIAL_BODY.into(),
            if length != body.len() {
                "true"
            } else {
                "false"
            }
            .into(),
        );
        http.size = i64::try_from(body.len()).unwrap_or(i64::MAX);
    }
    http.headers = headers;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(peer(connection.source)),
            destination: Some(peer(connection.destination)),
            request: Some(Request {
                time: Some(Timestamp {
                    seconds: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
                    nanos: i32::try_from(now.subsec_nanos()).unwrap_or(0),
                }),
                http: Some(http),
            }),
            context_extensions,
            metadata_context,
            ..Default::default()
        }),
    }
}

/// How a header from the server changes a header map (Envoy's header append actions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Replace every value (`OVERWRITE_IF_EXISTS_OR_ADD`, or the deprecated `append: false`).
    Set,
    /// Add one more value (`APPEND_IF_EXISTS_OR_ADD`, the proto default).
    Add,
    /// The deprecated `append: true` on a request header: join to the existing value with
    /// `,` (Envoy's `appendCopy`); nothing when the request has no such header.
    Append,
    /// Add only if absent (`ADD_IF_ABSENT`).
    AddIfAbsent,
    /// Replace only if present (`OVERWRITE_IF_EXISTS`).
    OverwriteIfExists,
}

/// One header the server asked to change.
#[derive(Clone, Debug)]
pub(crate) struct Mutation {
    pub(crate) name: HeaderName,
    pub(crate) value: HeaderValue,
    pub(crate) action: Action,
}

/// Envoy's reading of a `HeaderValueOption`: the deprecated `append` wins when it is set
/// (`true` appends to a request header, adds to a response header; `false` overwrites);
/// otherwise `append_action`, whose default is `APPEND_IF_EXISTS_OR_ADD`. An unknown action
/// overwrites, as Envoy does when it does not validate mutations. A header whose name or value
/// is not valid HTTP is skipped.
#[allow(deprecated)] // `append`: Envoy still honours it.
fn mutations(headers: &[HeaderValueOption], response: bool) -> Vec<Mutation> {
    headers
        .iter()
        .filter_map(|option| {
            let header = option.header.as_ref()?;
            let name = HeaderName::from_bytes(header.key.as_bytes()).ok()?;
            let value = if header.raw_value.is_empty() {
                HeaderValue::from_str(&header.value).ok()?
            } else {
                HeaderValue::from_bytes(&header.raw_value).ok()?
            };
            let action = match option.append.as_ref().map(|a| a.value) {
                Some(true) if response => Action::Add,
                Some(true) => Action::Append,
                // Envoy 1.40 reads only the deprecated `append` of a request header: anything
                // else overwrites (checked against it by gloo-proxy's differential test).
                _ if !response => Action::Set,
                Some(false) => Action::Set,
                None => match HeaderAppendAction::try_from(option.append_action) {
                    Ok(HeaderAppendAction::AppendIfExistsOrAdd) => Action::Add,
                    Ok(HeaderAppendAction::AddIfAbsent) => Action::AddIfAbsent,
                    Ok(HeaderAppendAction::OverwriteIfExists) => Action::OverwriteIfExists,
                    Ok(HeaderAppendAction::OverwriteIfExistsOrAdd) | Err(_) => Action::Set,
                },
            };
            Some(Mutation {
                name,
                value,
                action,
            })
        })
        .collect()
}

/// Applies `mutations` in order.
pub(crate) fn apply(headers: &mut HeaderMap, mutations: &[Mutation]) {
    for m in mutations {
        match m.action {
            Action::Set => {
                headers.insert(m.name.clone(), m.value.clone());
            }
            Action::Add => {
                headers.append(m.name.clone(), m.value.clone());
            }
            Action::Append => {
                let joined = headers.get(&m.name).and_then(|existing| {
                    let mut joined = existing.as_bytes().to_vec();
                    joined.push(b',');
                    joined.extend_from_slice(m.value.as_bytes());
                    HeaderValue::from_bytes(&joined).ok()
                });
                if let Some(joined) = joined {
                    headers.insert(m.name.clone(), joined);
                }
            }
            Action::AddIfAbsent => {
                if !headers.contains_key(&m.name) {
                    headers.insert(m.name.clone(), m.value.clone());
                }
            }
            Action::OverwriteIfExists => {
                if headers.contains_key(&m.name) {
                    headers.insert(m.name.clone(), m.value.clone());
                }
            }
        }
    }
}

/// What an allowed request gets.
#[derive(Clone, Debug, Default)]
pub(crate) struct Allow {
    /// Changes to the request headers.
    pub(crate) request_headers: Vec<Mutation>,
    /// Request headers to remove (never `host`).
    pub(crate) remove: Vec<HeaderName>,
    /// Query parameters to set, then to remove.
    pub(crate) query_set: Vec<(String, String)>,
    pub(crate) query_remove: Vec<String>,
    /// Changes to the response headers.
    pub(crate) response_headers: Vec<Mutation>,
    /// The response's dynamic metadata.
    pub(crate) metadata: Option<Struct>,
}

/// A local answer the server asked for.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub(crate) status: Option<StatusCode>,
    pub(crate) headers: Vec<Mutation>,
    pub(crate) body: String,
}

/// The server's verdict.
#[derive(Clone, Debug)]
pub(crate) enum Verdict {
    /// `OK`: let the request through, changed.
    Allow(Allow),
    /// Not `OK`: answer with this (status `403` unless the server gave one).
    Deny(Reply),
    /// Not `OK` with an `error_response`: an error, answered with this unless failure mode
    /// allows the request (status `status_on_error` unless the server gave one).
    Error(Reply),
}

fn status_of(code: Option<i32>) -> Option<StatusCode> {
    let code = code.filter(|c| *c > 0)?;
    u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
}

fn reply(response: DeniedHttpResponse) -> Reply {
    Reply {
        status: status_of(response.status.map(|s| s.code)),
        headers: mutations(&response.headers, true),
        body: response.body,
    }
}

/// Envoy's `GrpcClientImpl::onSuccess`: a `google.rpc.Status` of `OK` (code 0, also when the
/// status is missing) allows; otherwise an `error_response` is an error and anything else a
/// denial.
pub(crate) fn verdict(response: CheckResponse) -> Verdict {
    let ok = response.status.as_ref().is_none_or(|s| s.code == 0);
    #[allow(deprecated)]
    let (ok_metadata, http) = match response.http_response {
        Some(check_response::HttpResponse::OkResponse(ok)) => {
            (ok.dynamic_metadata.clone(), Some(Ok(ok)))
        }
        Some(check_response::HttpResponse::DeniedResponse(d)) => (None, Some(Err((false, d)))),
        Some(check_response::HttpResponse::ErrorResponse(e)) => (None, Some(Err((true, e)))),
        None => (None, None),
    };
    if ok {
        let mut allow = Allow {
            metadata: ok_metadata.or(response.dynamic_metadata),
            ..Default::default()
        };
        if let Some(Ok(ok)) = http {
            allow.request_headers = mutations(&ok.headers, false);
            allow.remove = ok
                .headers_to_remove
                .iter()
                .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                .filter(|h| *h != HOST)
                .collect();
            allow.query_set = ok
                .query_parameters_to_set
                .into_iter()
                .map(|q| (q.key, q.value))
                .collect();
            allow.query_remove = ok.query_parameters_to_remove;
            allow.response_headers = mutations(&ok.response_headers_to_add, true);
        }
        return Verdict::Allow(allow);
    }
    match http {
        Some(Err((true, error))) => Verdict::Error(reply(error)),
        Some(Err((false, denied))) => Verdict::Deny(reply(denied)),
        _ => Verdict::Deny(Reply {
            status: None,
            headers: Vec::new(),
            body: String::new(),
        }),
    }
}

/// `path_and_query` with `set` query parameters overwritten (or added) and `remove` ones
/// dropped, as Envoy's `QueryParamsMulti` does: parameters are re-serialized by name, in
/// sorted order, each name with its values in order.
pub(crate) fn rewrite_query(
    path_and_query: &str,
    set: &[(String, String)],
    remove: &[String],
) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_and_query, ""),
    };
    let mut params: std::collections::BTreeMap<String, Vec<String>> =
        std::collections::BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.entry(k.to_string()).or_default().push(v.to_string());
    }
    for (k, v) in set {
        params.insert(k.clone(), vec![v.clone()]);
    }
    for k in remove {
        params.remove(k);
    }
    if params.is_empty() {
        return path.to_string();
    }
    let mut out = String::with_capacity(path_and_query.len() + 16);
    out.push_str(path);
    let mut first = true;
    for (k, values) in &params {
        for v in values {
            out.push(if first { '?' } else { '&' });
            first = false;
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
    }
    out
}
