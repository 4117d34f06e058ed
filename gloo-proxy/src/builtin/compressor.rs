//! Envoy's compressor filter (`envoy.filters.http.compressor`) with its gzip library
//! (`envoy.compression.gzip.compressor`): answers are compressed for clients that accept
//! gzip, when their type, size and headers allow it, as Envoy decides. Gloo's `gzip` Gateway
//! option is this filter.
//!
//! An answer is compressible when compression is on, its `content-length` (if it says one)
//! is at least the minimum (30 bytes unless set), it is not an upgrade, its type is one of the
//! listed ones (Envoy's default list when none is), `cache-control` does not say
//! `no-transform`, it has no `content-encoding`, its status is not listed as uncompressible,
//! and it has no `etag` when `disable_on_etag_header` is set. A compressible answer with a
//! body, to a request that accepts gzip, is compressed: `content-encoding: gzip`, no
//! `content-length`, and a strong `etag` removed (or weakened, with
//! `weaken_etag_on_compress`). Every compressible answer gets `vary: Accept-Encoding`, so
//! caches in front know the answer depends on it. Each body frame is compressed and flushed as
//! it passes, so a streamed answer keeps streaming.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use envoy_types::pb::envoy::extensions::compression::gzip::compressor::v3::{
    gzip::CompressionLevel, Gzip,
};
use envoy_types::pb::envoy::extensions::filters::http::compressor::v3::{
    compressor_per_route::Override, Compressor, CompressorPerRoute,
};
use envoy_types::pb::google::protobuf::Any;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Frame;
use tower::ServiceExt;

use super::decode;
use crate::body::{Body, BoxError};
use crate::filter::{FilterFactory, FilterLayer, HttpService};
use crate::router::matcher::StringMatchCase;

/// Envoy's compressor filter name.
pub const COMPRESSOR: &str = "envoy.filters.http.compressor";

const GZIP_TYPE: &str = "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip";
const PER_ROUTE_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute";

/// The types Envoy compresses when none are listed (its default list, synonyms included).
const DEFAULT_CONTENT_TYPES: [&str; 18] = [
    "text/html",
    "text/plain",
    "text/css",
    "application/javascript",
    "application/x-javascript",
    "text/javascript",
    "text/x-javascript",
    "text/ecmascript",
    "text/js",
    "text/jscript",
    "text/x-js",
    "application/ecmascript",
    "application/x-json",
    "application/xml",
    "application/json",
    "image/svg+xml",
    "text/xml",
    "application/xhtml+xml",
];

pub(super) struct CompressorFilter;

#[derive(Debug)]
enum ContentTypes {
    Listed(Vec<String>),
    Matched(Vec<StringMatchCase>),
}

#[derive(Debug)]
struct Config {
    level: flate2::Compression,
    min_length: u64,
    content_types: ContentTypes,
    disable_on_etag: bool,
    weaken_etag: bool,
    remove_accept_encoding: bool,
    uncompressible: Vec<u16>,
}

impl Config {
    #[allow(deprecated)] // the deprecated top-level fields are Envoy's to honour
    fn compile(compressor: &Compressor) -> Result<Option<Config>, String> {
        let library = compressor
            .compressor_library
            .as_ref()
            .and_then(|l| l.typed_config.as_ref())
            .ok_or("compressor_library is required")?;
        if library.type_url != GZIP_TYPE {
            return Err(format!(
                "compressor_library {} is not supported (gzip only)",
                library.type_url
            ));
        }
        let gzip: Gzip = decode(library)?;
        let level = match CompressionLevel::try_from(gzip.compression_level) {
            Ok(CompressionLevel::DefaultCompression) => flate2::Compression::default(),
            Ok(level) => flate2::Compression::new(level as u32),
            Err(_) => {
                return Err(format!(
                    "compressor_library: compression_level {} is unknown",
                    gzip.compression_level
                ))
            }
        };
        if compressor
            .request_direction_config
            .as_ref()
            .and_then(|r| r.common_config.as_ref())
            .is_some_and(|c| c.enabled.as_ref().is_none_or(|e| enabled(Some(e))))
        {
            return Err("request_direction_config: request compression is not supported".into());
        }
        let strings = |types: &[String]| {
            ContentTypes::Listed(types.iter().map(|t| t.to_ascii_lowercase()).collect())
        };
        let config = match &compressor.response_direction_config {
            Some(response) => {
                let common = response.common_config.clone().unwrap_or_default();
                if !enabled(common.enabled.as_ref()) {
                    return Ok(None);
                }
                if response.status_header_enabled {
                    return Err(
                        "response_direction_config.status_header_enabled is not supported".into(),
                    );
                }
                let content_types = if !common.content_type_matcher.is_empty() {
                    ContentTypes::Matched(
                        common
                            .content_type_matcher
                            .iter()
                            .map(|m| {
                                StringMatchCase::compile(m, "content_type_matcher")
                                    .map_err(|e| e.to_string())
                            })
                            .collect::<Result<_, _>>()?,
                    )
                } else {
                    strings(&common.content_type)
                };
                Config {
                    level,
                    min_length: common.min_content_length.map_or(30, |v| u64::from(v.value)),
                    content_types,
                    disable_on_etag: response.disable_on_etag_header,
                    weaken_etag: response.weaken_etag_on_compress,
                    remove_accept_encoding: response.remove_accept_encoding_header,
                    uncompressible: response
                        .uncompressible_response_codes
                        .iter()
                        .map(|c| u16::try_from(*c).unwrap_or(u16::MAX))
                        .collect(),
                }
            }
            None => {
                if !enabled(compressor.runtime_enabled.as_ref()) {
                    return Ok(None);
                }
                Config {
                    level,
                    min_length: compressor.content_length.map_or(30, |v| u64::from(v.value)),
                    content_types: strings(&compressor.content_type),
                    disable_on_etag: compressor.disable_on_etag_header,
                    weaken_etag: false,
                    remove_accept_encoding: compressor.remove_accept_encoding_header,
                    uncompressible: Vec::new(),
                }
            }
        };
        Ok(Some(config))
    }

    fn type_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::CONTENT_TYPE) else {
            return true;
        };
        let value = String::from_utf8_lossy(value.as_bytes());
        let media = value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match &self.content_types {
            ContentTypes::Listed(types) if types.is_empty() => {
                DEFAULT_CONTENT_TYPES.contains(&media.as_str())
            }
            ContentTypes::Listed(types) => types.contains(&media),
            ContentTypes::Matched(matchers) => matchers.iter().any(|m| m.matches(&media)),
        }
    }

    /// Whether Envoy would compress an answer like this one (what gets it a `vary`).
    fn compressible(&self, response: &Response<Body>) -> bool {
        let headers = response.headers();
        let long_enough = match headers.get(header::CONTENT_LENGTH) {
            Some(length) => {
                crate::head::content_length(length.as_bytes()).is_some_and(|n| n >= self.min_length)
            }
            None => true,
        };
        let no_transform = headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|d| d.trim().eq_ignore_ascii_case("no-transform"));
        long_enough
            && response.status() != StatusCode::SWITCHING_PROTOCOLS
            && !headers.contains_key(header::UPGRADE)
            && self.type_allowed(headers)
            && !no_transform
            && !(self.disable_on_etag && headers.contains_key(header::ETAG))
            && !headers.contains_key(header::CONTENT_ENCODING)
            && !self.uncompressible.contains(&response.status().as_u16())
    }
}

fn enabled(flag: Option<&envoy_types::pb::envoy::config::core::v3::RuntimeFeatureFlag>) -> bool {
    flag.and_then(|f| f.default_value.as_ref())
        .is_none_or(|v| v.value)
}

/// Whether `accept-encoding` lets the answer be gzipped: gzip (or `*`, when gzip is not
/// listed) with a q-value above zero, and not below identity's.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut any, mut identity) = (None, None, None);
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match coding.as_str() {
                "gzip" => gzip = Some(q),
                "*" => any = Some(q),
                "identity" => identity = Some(q),
                _ => {}
            }
        }
    }
    let q = gzip.or(any).unwrap_or(0.0);
    q > 0.0 && identity.is_none_or(|identity| q >= identity)
}

fn add_vary(headers: &mut HeaderMap) {
    let listed = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("accept-encoding"));
    if listed {
        return;
    }
    let value = match headers.get(header::VARY).and_then(|v| v.to_str().ok()) {
        Some(vary) => format!("{vary}, Accept-Encoding"),
        None => "Accept-Encoding".to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(header::VARY, value);
    }
}

impl FilterFactory for CompressorFilter {
    fn layer(&self, config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
        if let Some(any) = per_route {
            if any.type_url != PER_ROUTE_TYPE {
                return Err(format!("unexpected per-route config {}", any.type_url));
            }
            let per_route: CompressorPerRoute = decode(any)?;
            match per_route.r#override {
                Some(Override::Disabled(true)) => return Ok(None),
                Some(Override::Disabled(false)) | None => {}
                Some(Override::Overrides(_)) => {
                    return Err("per-route compressor overrides are not supported".into())
                }
            }
        }
        let Some(config) = Config::compile(&decode(config)?)? else {
            return Ok(None);
        };
        let config = Arc::new(config);
        Ok(Some(FilterLayer::from_fn(move |inner: HttpService| {
            let config = config.clone();
            HttpService::new(tower::service_fn(move |mut req: Request<Body>| {
                let config = config.clone();
                let inner = inner.clone();
                async move {
                    let accepts = accepts_gzip(req.headers());
                    let head = req.method() == Method::HEAD;
                    if config.remove_accept_encoding {
                        req.headers_mut().remove(header::ACCEPT_ENCODING);
                    }
                    let mut response = inner.oneshot(req).await?;
                    if !config.compressible(&response) {
                        return Ok(response);
                    }
                    let has_body = !head && !http_body::Body::is_end_stream(response.body());
                    if has_body && accepts {
                        let headers = response.headers_mut();
                        if let Some(etag) = headers.get(header::ETAG).cloned() {
                            if !etag.as_bytes().starts_with(b"W/") {
                                headers.remove(header::ETAG);
                                if config.weaken_etag {
                                    let mut weak = b"W/".to_vec();
                                    weak.extend_from_slice(etag.as_bytes());
                                    if let Ok(weak) = HeaderValue::from_bytes(&weak) {
                                        headers.insert(header::ETAG, weak);
                                    }
                                }
                            }
                        }
                        headers.remove(header::CONTENT_LENGTH);
                        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                        let level = config.level;
                        response = response.map(|body| Body::new(GzipBody::new(body, level)));
                    }
                    add_vary(response.headers_mut());
                    Ok(response)
                }
            }))
        })))
    }
}

/// A body gzipped as it streams: each data frame is compressed and flushed (so what was
/// sent can be decompressed at once), the gzip trailer ends it, trailers follow.
struct GzipBody {
    inner: Body,
    encoder: Option<flate2::write::GzEncoder<Vec<u8>>>,
    trailers: Option<HeaderMap>,
}

impl GzipBody {
    fn new(inner: Body, level: flate2::Compression) -> Self {
        GzipBody {
            inner,
            encoder: Some(flate2::write::GzEncoder::new(Vec::new(), level)),
            trailers: None,
        }
    }
}

impl http_body::Body for GzipBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            };
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        encoder.write_all(&data)?;
                        encoder.flush()?;
                        let out = Bytes::from(std::mem::take(encoder.get_mut()));
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                        continue;
                    }
                    // Trailers: the compressed stream ends before them.
                    Err(frame) => this.trailers = frame.into_trailers().ok(),
                },
                Poll::Ready(None) => {}
            }
            if let Some(encoder) = this.encoder.take() {
                let out = encoder.finish()?;
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none() && self.trailers.is_none()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
    use envoy_types::pb::envoy::extensions::filters::http::compressor::v3::compressor::{
        CommonDirectionConfig, ResponseDirectionConfig,
    };
    use envoy_types::pb::google::protobuf::UInt32Value;
    use http_body_util::BodyExt;
    use prost::Message;

    use super::*;

    fn any<M: Message>(type_url: &str, m: &M) -> Any {
        Any {
            type_url: type_url.into(),
            value: m.encode_to_vec(),
        }
    }

    fn layer(response: Option<ResponseDirectionConfig>) -> FilterLayer {
        let compressor = Compressor {
            compressor_library: Some(TypedExtensionConfig {
                name: "envoy.compression.gzip.compressor".into(),
                typed_config: Some(any(GZIP_TYPE, &Gzip::default())),
            }),
            response_direction_config: response,
            ..Default::default()
        };
        let config = any(COMPRESSOR, &compressor);
        CompressorFilter.layer(&config, None).unwrap().unwrap()
    }

    /// Sends `method` with `accept` through `layer` to a backend answering `headers` and the
    /// `body` frames; returns the answer's headers and its body, gunzipped when it says gzip.
    async fn send(
        layer: &FilterLayer,
        method: Method,
        accept: Option<&'static str>,
        headers: &'static [(&'static str, &'static str)],
        body: &'static [&'static str],
    ) -> (HeaderMap, String, usize) {
        let backend = HttpService::new(tower::service_fn(move |_req: Request<Body>| async move {
            let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = body
                .iter()
                .map(|b| Ok(Frame::data(Bytes::from_static(b.as_bytes()))))
                .collect();
            let body = if frames.is_empty() {
                Body::empty()
            } else {
                Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(
                    frames,
                )))
            };
            let mut response = Response::new(body);
            for (k, v) in headers {
                response
                    .headers_mut()
                    .append(*k, HeaderValue::from_static(v));
            }
            Ok(response)
        }));
        let mut request = Request::builder().method(method);
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT_ENCODING, accept);
        }
        let response = layer
            .layer(backend)
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let mut frames = 0;
        let mut bytes = Vec::new();
        let mut body = body;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                frames += 1;
                bytes.extend_from_slice(&data);
            }
        }
        let text = if parts
            .headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| v == "gzip")
        {
            let mut out = String::new();
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_string(&mut out)
                .unwrap();
            out
        } else {
            String::from_utf8(bytes).unwrap()
        };
        (parts.headers, text, frames)
    }

    const JSON: &[(&str, &str)] = &[("content-type", "application/json; charset=utf-8")];
    const LONG: &[&str] = &[r#"{"a": "0123456789012345678901234567890123456789"}"#];

    #[tokio::test]
    async fn compressible_answers_are_gzipped_for_clients_that_accept_it() {
        let gzip = layer(None);
        let (headers, body, _) = send(&gzip, Method::GET, Some("br, gzip"), JSON, LONG).await;
        assert_eq!(headers.get(header::CONTENT_ENCODING).unwrap(), "gzip");
        assert_eq!(headers.get(header::VARY).unwrap(), "Accept-Encoding");
        assert_eq!(body, LONG[0]);
        // A client that does not accept gzip gets it plain, but caches learn it varies.
        for accept in [
            None,
            Some("br"),
            Some("gzip;q=0"),
            Some("gzip;q=0.5, identity"),
        ] {
            let (headers, body, _) = send(&gzip, Method::GET, accept, JSON, LONG).await;
            assert!(
                headers.get(header::CONTENT_ENCODING).is_none(),
                "{accept:?}"
            );
            assert_eq!(headers.get(header::VARY).unwrap(), "Accept-Encoding");
            assert_eq!(body, LONG[0]);
        }
        let (headers, _, _) = send(&gzip, Method::GET, Some("*"), JSON, LONG).await;
        assert_eq!(headers.get(header::CONTENT_ENCODING).unwrap(), "gzip");
        // HEAD: nothing to compress, still a vary.
        let (headers, _, _) = send(&gzip, Method::HEAD, Some("gzip"), JSON, &[]).await;
        assert!(headers.get(header::CONTENT_ENCODING).is_none());
        assert_eq!(headers.get(header::VARY).unwrap(), "Accept-Encoding");
    }

    #[tokio::test]
    async fn incompressible_answers_pass_untouched() {
        let gzip = layer(None);
        for headers in [
            &[("content-type", "image/png")][..],
            &[("content-type", "text/plain"), ("content-length", "29")],
            &[("content-type", "text/plain"), ("content-encoding", "br")],
            &[
                ("content-type", "text/plain"),
                ("cache-control", "public, no-transform"),
            ],
        ] {
            let (out, _, _) = send(&gzip, Method::GET, Some("gzip"), headers, LONG).await;
            assert!(
                out.get(header::CONTENT_ENCODING).is_none_or(|v| v == "br"),
                "{headers:?}"
            );
            assert!(out.get(header::VARY).is_none(), "{headers:?}");
        }
        // An existing vary is extended once.
        let (out, _, _) = send(
            &gzip,
            Method::GET,
            Some("gzip"),
            &[("content-type", "text/html"), ("vary", "Origin")],
            LONG,
        )
        .await;
        assert_eq!(out.get(header::VARY).unwrap(), "Origin, Accept-Encoding");
    }

    #[tokio::test]
    async fn etags_minimums_and_types_follow_the_response_direction_config() {
        let configured = layer(Some(ResponseDirectionConfig {
            common_config: Some(CommonDirectionConfig {
                min_content_length: Some(UInt32Value { value: 100 }),
                content_type_matcher: vec![
                    envoy_types::pb::envoy::r#type::matcher::v3::StringMatcher {
                        match_pattern: Some(
                            envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern::Prefix(
                                "application/cust".into(),
                            ),
                        ),
                        ignore_case: false,
                    },
                ],
                ..Default::default()
            }),
            weaken_etag_on_compress: true,
            ..Default::default()
        }));
        let (out, _, _) = send(
            &configured,
            Method::GET,
            Some("gzip"),
            &[("content-type", "application/custom"), ("etag", "\"v1\"")],
            LONG,
        )
        .await;
        assert_eq!(out.get(header::CONTENT_ENCODING).unwrap(), "gzip");
        assert_eq!(out.get(header::ETAG).unwrap(), "W/\"v1\"");
        let (out, _, _) = send(
            &configured,
            Method::GET,
            Some("gzip"),
            &[
                ("content-type", "application/custom"),
                ("content-length", "99"),
            ],
            LONG,
        )
        .await;
        assert!(out.get(header::CONTENT_ENCODING).is_none());
        let (out, _, _) = send(&configured, Method::GET, Some("gzip"), JSON, LONG).await;
        assert!(
            out.get(header::CONTENT_ENCODING).is_none(),
            "not a listed type"
        );
        // Without weakening, a strong etag goes; a weak one stays.
        let gzip = layer(None);
        let (out, _, _) = send(
            &gzip,
            Method::GET,
            Some("gzip"),
            &[("content-type", "text/plain"), ("etag", "\"strong\"")],
            LONG,
        )
        .await;
        assert!(out.get(header::ETAG).is_none());
        let (out, _, _) = send(
            &gzip,
            Method::GET,
            Some("gzip"),
            &[("content-type", "text/plain"), ("etag", "W/\"weak\"")],
            LONG,
        )
        .await;
        assert_eq!(out.get(header::ETAG).unwrap(), "W/\"weak\"");
    }

    #[tokio::test]
    async fn streamed_answers_are_compressed_frame_by_frame() {
        let gzip = layer(None);
        let (_, body, frames) = send(
            &gzip,
            Method::GET,
            Some("gzip"),
            &[
                ("content-type", "text/event-stream; x=1"),
                ("content-type", "text/plain"),
            ],
            &["data: one\n\n", "data: two\n\n", "data: three\n\n"],
        )
        .await;
        // The first content-type field is the one read: not a listed type.
        assert_eq!(frames, 3);
        assert_eq!(body, "data: one\n\ndata: two\n\ndata: three\n\n");
        let (headers, body, frames) = send(
            &gzip,
            Method::GET,
            Some("gzip"),
            &[("content-type", "text/plain")],
            &["data: one\n\n", "data: two\n\n", "data: three\n\n"],
        )
        .await;
        assert_eq!(headers.get(header::CONTENT_ENCODING).unwrap(), "gzip");
        // Each frame flushed, then the gzip trailer.
        assert_eq!(frames, 4);
        assert_eq!(body, "data: one\n\ndata: two\n\ndata: three\n\n");
    }
}
