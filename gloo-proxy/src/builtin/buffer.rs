//! Envoy's buffer filter (`envoy.filters.http.buffer`): the request body is read in full
//! before the request goes on, up to `max_request_bytes` (413 `Payload Too Large` past it),
//! and then carries a `content-length`. A route, virtual host or weighted cluster can turn it
//! off or set its own limit (`BufferPerRoute`), as Gloo's `bufferPerRoute` does.

use envoy_types::pb::envoy::extensions::filters::http::buffer::v3::{
    buffer_per_route::Override, Buffer, BufferPerRoute,
};
use envoy_types::pb::google::protobuf::Any;
use http::{header, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::decode;
use crate::body::Body;
use crate::filter::{FilterFactory, FilterLayer, HttpService};
use crate::proxy::LocalReply;

/// Envoy's buffer filter name.
pub const BUFFER: &str = "envoy.filters.http.buffer";

const PER_ROUTE_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute";

pub(super) struct BufferFilter;

fn limit(buffer: &Buffer, at: &str) -> Result<usize, String> {
    match &buffer.max_request_bytes {
        Some(max) if max.value > 0 => Ok(max.value as usize),
        Some(_) => Err(format!("{at}max_request_bytes must be above 0")),
        None => Err(format!("{at}max_request_bytes is required")),
    }
}

impl FilterFactory for BufferFilter {
    fn layer(&self, config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
        let max = match per_route {
            Some(any) if any.type_url == PER_ROUTE_TYPE => {
                let per_route: BufferPerRoute = decode(any)?;
                match per_route.r#override {
                    Some(Override::Disabled(true)) => return Ok(None),
                    Some(Override::Buffer(buffer)) => limit(&buffer, "per-route buffer: ")?,
                    Some(Override::Disabled(false)) | None => {
                        limit(&decode::<Buffer>(config)?, "")?
                    }
                }
            }
            Some(any) => return Err(format!("unexpected per-route config {}", any.type_url)),
            None => limit(&decode::<Buffer>(config)?, "")?,
        };
        Ok(Some(FilterLayer::from_fn(move |inner: HttpService| {
            HttpService::new(tower::service_fn(move |req: Request<Body>| {
                let inner = inner.clone();
                async move {
                    if req.headers().contains_key(header::UPGRADE)
                        || http_body::Body::is_end_stream(req.body())
                    {
                        return inner.oneshot(req).await;
                    }
                    let (mut parts, body) = req.into_parts();
                    let bytes = match http_body_util::Limited::new(body, max).collect().await {
                        Ok(collected) => collected.to_bytes(),
                        Err(e) => {
                            let too_large = e.is::<http_body_util::LengthLimitError>();
                            let mut response = crate::proxy::local_reply(
                                if too_large {
                                    StatusCode::PAYLOAD_TOO_LARGE
                                } else {
                                    StatusCode::BAD_REQUEST
                                },
                                if too_large {
                                    "Payload Too Large"
                                } else {
                                    "Bad Request"
                                },
                            );
                            response.extensions_mut().insert(LocalReply);
                            return Ok(response);
                        }
                    };
                    // Read in full: the request now says how long it is.
                    parts.headers.remove(header::TRANSFER_ENCODING);
                    parts
                        .headers
                        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                    inner
                        .oneshot(Request::from_parts(parts, Body::full(bytes)))
                        .await
                }
            }))
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::google::protobuf::UInt32Value;
    use prost::Message;

    fn any<M: Message>(type_url: &str, m: &M) -> Any {
        Any {
            type_url: type_url.into(),
            value: m.encode_to_vec(),
        }
    }

    fn buffer(max: u32) -> Buffer {
        Buffer {
            max_request_bytes: Some(UInt32Value { value: max }),
        }
    }

    async fn send(layer: &FilterLayer, body: Body) -> (StatusCode, Option<String>, String) {
        let echo = HttpService::new(tower::service_fn(|req: Request<Body>| async move {
            let length = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .map(|v| v.to_str().unwrap_or_default().to_string());
            let body = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let mut response = http::Response::new(Body::full(body));
            if let Some(length) = length {
                response
                    .headers_mut()
                    .insert("x-seen-length", HeaderValue::from_str(&length).unwrap());
            }
            Ok(response)
        }));
        let service = layer.layer(echo);
        let request = Request::post("/").body(body).unwrap();
        let response = service.oneshot(request).await.unwrap();
        let status = response.status();
        let length = response
            .headers()
            .get("x-seen-length")
            .map(|v| v.to_str().unwrap().to_string());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, length, String::from_utf8_lossy(&body).into_owned())
    }

    fn streamed(text: &'static str) -> Body {
        // A body whose length is not known up front (as a chunked request's).
        Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(
            text.as_bytes()
                .chunks(3)
                .map(|c| {
                    Ok::<_, std::convert::Infallible>(http_body::Frame::data(
                        bytes::Bytes::copy_from_slice(c),
                    ))
                })
                .collect::<Vec<_>>(),
        )))
    }

    #[tokio::test]
    async fn requests_are_read_in_full_up_to_the_limit() {
        let config = any(BUFFER, &buffer(10));
        let layer = BufferFilter.layer(&config, None).unwrap().unwrap();
        assert_eq!(
            send(&layer, streamed("0123456789")).await,
            (StatusCode::OK, Some("10".into()), "0123456789".into())
        );
        assert_eq!(
            send(&layer, streamed("0123456789A")).await,
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                "Payload Too Large".into()
            )
        );
        // A route's own limit, and a route that turns buffering off.
        let larger = any(
            PER_ROUTE_TYPE,
            &BufferPerRoute {
                r#override: Some(Override::Buffer(buffer(20))),
            },
        );
        let layer = BufferFilter.layer(&config, Some(&larger)).unwrap().unwrap();
        assert_eq!(
            send(&layer, streamed("0123456789A")).await.0,
            StatusCode::OK
        );
        let off = any(
            PER_ROUTE_TYPE,
            &BufferPerRoute {
                r#override: Some(Override::Disabled(true)),
            },
        );
        assert!(BufferFilter.layer(&config, Some(&off)).unwrap().is_none());
        assert!(BufferFilter.layer(&any(BUFFER, &buffer(0)), None).is_err());
        assert!(BufferFilter
            .layer(&any(BUFFER, &Buffer::default()), None)
            .is_err());
    }
}
