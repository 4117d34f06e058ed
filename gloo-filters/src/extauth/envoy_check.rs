//! An auth step's [`CheckRequest`] as the `CheckRequest` Envoy would send for it, for the
//! steps that hand the request on in Envoy's shape (gRPC passthrough, OPA's input).

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::envoy::service::auth::v3::CheckRequest as PbCheckRequest;

use super::CheckRequest;
use crate::ext_authz::check::{self, BodySettings};
use crate::ext_authz::ConnectionInfo;

/// Built by the `ext_authz` module's builder (Envoy's `createHttpCheck`): `Host` from
/// `request.host` when the headers lack it, the client's address as the source, the whole
/// body when there is one, no context extensions, `metadata` as the metadata context.
pub(crate) fn envoy_check_request(
    request: &CheckRequest,
    metadata: Option<Metadata>,
) -> PbCheckRequest {
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = request.method.clone();
    parts.uri = request.uri.clone();
    parts.headers = request.headers.clone();
    if !request.host.is_empty() && !parts.headers.contains_key(http::header::HOST) {
        if let Ok(host) = http::HeaderValue::from_str(&request.host) {
            parts.headers.insert(http::header::HOST, host);
        }
    }
    let connection = ConnectionInfo {
        source: request.peer,
        destination: None,
        tls: request.scheme == "https",
    };
    let body = (!request.body.is_empty()).then_some(&request.body);
    check::build_check_request(
        &parts,
        connection,
        BodySettings {
            max_request_bytes: u64::MAX,
            pack_as_bytes: false,
        },
        body,
        HashMap::new(),
        metadata,
    )
}
