//! HTTP filters a Gateway switches on in `httpGateway.options`, and their per-route settings:
//!
//! - `healthCheck` (Gloo's `options/healthcheck/healthcheck.proto`, [`HealthCheck`]): the
//!   listener answers health check requests on one exact path itself (Envoy's health check
//!   filter, not passed through to any upstream);
//! - `gzip` (Gloo's copy of Envoy's v2 gzip filter config,
//!   `external/envoy/config/filter/http/gzip/v2/gzip.proto`, [`Gzip`]): responses are gzip
//!   compressed (Envoy's compressor filter with the gzip library);
//! - `buffer` (Gloo's copy of Envoy's `extensions/filters/http/buffer/v3/buffer.proto`,
//!   [`Buffer`]): whole requests are buffered up to a limit before they are routed, larger ones
//!   answered 413; `bufferPerRoute` ([`BufferPerRoute`]) on a virtual host, route or weighted
//!   destination turns the buffer off there or sets another limit. A per-route setting only
//!   takes effect on a Gateway that sets `buffer`: without the buffer filter there is nothing
//!   for it to configure, and gloo warns about it.
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::http_filters::{BufferOverride, CompressionLevel};
//! use gloo_core::model::Resource;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gateway.solo.io/v1
//! kind: Gateway
//! metadata:
//!   name: gateway-proxy
//!   namespace: gloo-system
//! spec:
//!   bindAddress: '::'
//!   bindPort: 8080
//!   httpGateway:
//!     options:
//!       healthCheck:
//!         path: /healthz
//!       gzip:
//!         compressionLevel: BEST
//!         contentType:
//!         - text/plain
//!       buffer:
//!         maxRequestBytes: 1048576
//! ---
//! apiVersion: gateway.solo.io/v1
//! kind: VirtualService
//! metadata:
//!   name: uploads
//!   namespace: gloo-system
//! spec:
//!   virtualHost:
//!     domains: ['*']
//!     routes:
//!     - matchers:
//!       - prefix: /upload
//!       routeAction:
//!         single:
//!           upstream: {name: uploads, namespace: gloo-system}
//!       options:
//!         bufferPerRoute:
//!           buffer:
//!             maxRequestBytes: 10485760
//!     - matchers:
//!       - prefix: /stream
//!       routeAction:
//!         single:
//!           upstream: {name: uploads, namespace: gloo-system}
//!       options:
//!         bufferPerRoute:
//!           disabled: true
//! "#;
//! let parsed = parse_str(yaml, "gateway.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::Gateway(gateway) = &parsed.resources[0].resource else {
//!     panic!("expected a Gateway");
//! };
//! let options = gateway
//!     .spec
//!     .http_gateway
//!     .as_ref()
//!     .and_then(|h| h.options.as_ref())
//!     .ok_or("no httpGateway options")?;
//! let health_check = options.health_check.as_ref().ok_or("no healthCheck")?;
//! assert_eq!(health_check.path, "/healthz");
//! assert!(health_check.validate("healthCheck").is_empty());
//! let gzip = options.gzip.as_ref().ok_or("no gzip")?;
//! assert_eq!(gzip.compression_level, Some(CompressionLevel::Best));
//! assert_eq!(gzip.content_type, ["text/plain"]);
//! let buffer = options.buffer.as_ref().ok_or("no buffer")?;
//! assert_eq!(buffer.max_request_bytes, Some(1_048_576));
//!
//! let Resource::VirtualService(vs) = &parsed.resources[1].resource else {
//!     panic!("expected a VirtualService");
//! };
//! let routes = &vs.spec.virtual_host.as_ref().ok_or("no virtualHost")?.routes;
//! let per_route = |i: usize| {
//!     routes[i]
//!         .options
//!         .as_ref()
//!         .and_then(|o| o.buffer_per_route.as_ref())
//!         .ok_or("no bufferPerRoute")
//! };
//! let Some(BufferOverride::Buffer(limit)) = per_route(0)?.buffer_override()? else {
//!     panic!("expected a buffer limit");
//! };
//! assert_eq!(limit.max_request_bytes, Some(10_485_760));
//! assert_eq!(per_route(1)?.buffer_override()?, Some(BufferOverride::Disabled));
//!
//! // Envoy refuses a buffer without a positive limit, and so does gloo.
//! let zero = gloo_core::model::http_filters::Buffer { max_request_bytes: Some(0) };
//! assert_eq!(
//!     zero.validate("buffer"),
//!     ["buffer.maxRequestBytes: must be greater than 0 (Envoy refuses a buffer limit of 0)"]
//! );
//! # Ok(())
//! # }
//! ```

use std::fmt::Display;

use serde::{Deserialize, Serialize};

use crate::model::routing::OneofError;

/// The health check filter of a listener (`healthcheck.options.gloo.solo.io.HealthCheck`):
/// requests for `path` are answered by the listener itself, healthy unless it is draining.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// The exact path of health check requests (required, as in Gloo).
    #[serde(default)]
    pub path: String,
}

impl HealthCheck {
    /// What Gloo refuses in it (an empty path), each message starting with `path` (the
    /// health check's own field path).
    pub fn validate(&self, path: impl Display) -> Vec<String> {
        if self.path.is_empty() {
            vec![format!(
                "{path}.path: health check path cannot be \"\" (required: the exact path health check requests use)"
            )]
        } else {
            Vec::new()
        }
    }
}

/// Gzip compression of responses (`solo.io.envoy.config.filter.http.gzip.v2.Gzip`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gzip {
    /// zlib's memory level, 1 to 9 (Envoy's default is 5).
    #[serde(
        alias = "memory_level",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_level: Option<u32>,
    /// The smallest response, in bytes, that is compressed (Envoy's default is 30).
    #[serde(
        alias = "content_length",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub content_length: Option<u32>,
    /// zlib's compression level (`DEFAULT` when unset).
    #[serde(
        alias = "compression_level",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub compression_level: Option<CompressionLevel>,
    /// zlib's compression strategy (`DEFAULT` when unset).
    #[serde(
        alias = "compression_strategy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub compression_strategy: Option<CompressionStrategy>,
    /// The media types that are compressed (e.g. `application/json`); Envoy's list of text
    /// types when empty.
    #[serde(alias = "content_type", default, skip_serializing_if = "Vec::is_empty")]
    pub content_type: Vec<String>,
    /// Don't compress responses with an `etag` header (otherwise weak etags are kept and
    /// strong ones removed).
    #[serde(
        alias = "disable_on_etag_header",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_on_etag_header: Option<bool>,
    /// Remove `accept-encoding` from requests, so upstreams do not compress the responses
    /// before the filter sees them.
    #[serde(
        alias = "remove_accept_encoding_header",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub remove_accept_encoding_header: Option<bool>,
    /// The base two logarithm of zlib's window size, 9 to 15 (Envoy's default is 12).
    #[serde(
        alias = "window_bits",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub window_bits: Option<u32>,
}

impl Gzip {
    /// What Envoy's gzip library refuses (and Gloo with it): a memory level outside 1-9 and a
    /// window outside 9-15, each message starting with `path` (the gzip option's own path).
    pub fn validate(&self, path: impl Display) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(level) = self.memory_level.filter(|l| !(1..=9).contains(l)) {
            problems.push(format!(
                "{path}.memoryLevel: {level} is not between 1 and 9"
            ));
        }
        if let Some(bits) = self.window_bits.filter(|b| !(9..=15).contains(b)) {
            problems.push(format!("{path}.windowBits: {bits} is not between 9 and 15"));
        }
        problems
    }
}

/// zlib's compression level (`Gzip.CompressionLevel.Enum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompressionLevel {
    /// zlib's default, a balance of speed and size.
    #[default]
    Default,
    /// The smallest responses (zlib level 9).
    Best,
    /// The fastest compression (zlib level 1).
    Speed,
}

/// zlib's compression strategy (`Gzip.CompressionStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompressionStrategy {
    /// zlib's default strategy.
    #[default]
    Default,
    /// For data produced by a filter (small values, somewhat random).
    Filtered,
    /// Huffman coding only, no string matching.
    Huffman,
    /// Run-length encoding: matches of distance one only.
    Rle,
}

/// Request buffering (`solo.io.envoy.extensions.filters.http.buffer.v3.Buffer`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Buffer {
    /// The largest request body buffered; a larger request is answered 413 (required, and
    /// greater than 0).
    #[serde(
        alias = "max_request_bytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_request_bytes: Option<u32>,
}

impl Buffer {
    /// What Envoy refuses in it (a missing or zero limit), each message starting with `path`
    /// (the buffer's own field path).
    pub fn validate(&self, path: impl Display) -> Vec<String> {
        match self.max_request_bytes {
            None => vec![format!(
                "{path}.maxRequestBytes: required (Envoy's buffer filter needs a limit greater than 0)"
            )],
            Some(0) => vec![format!(
                "{path}.maxRequestBytes: must be greater than 0 (Envoy refuses a buffer limit of 0)"
            )],
            Some(_) => Vec::new(),
        }
    }
}

/// Buffer settings of a virtual host, route or weighted destination
/// (`solo.io.envoy.extensions.filters.http.buffer.v3.BufferPerRoute`): the `override` oneof.
/// They take effect only on a Gateway whose listener has the buffer filter (`buffer`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BufferPerRoute {
    /// `override` oneof: don't buffer here (only `true` does anything, as in Gloo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// `override` oneof: buffer here with this limit instead of the listener's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer: Option<Buffer>,
}

/// What a [`BufferPerRoute`] does (its `override` oneof).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferOverride<'a> {
    /// The buffer filter is off here.
    Disabled,
    /// The buffer filter uses this limit here.
    Buffer(&'a Buffer),
}

impl BufferPerRoute {
    /// The `override` oneof: `None` when neither member is set or `disabled` is `false` (Gloo
    /// then configures nothing).
    pub fn buffer_override(&self) -> Result<Option<BufferOverride<'_>>, OneofError> {
        OneofError::check(
            "override",
            &[
                ("disabled", self.disabled.is_some()),
                ("buffer", self.buffer.is_some()),
            ],
        )?;
        Ok(if self.disabled == Some(true) {
            Some(BufferOverride::Disabled)
        } else {
            self.buffer.as_ref().map(BufferOverride::Buffer)
        })
    }

    /// What Gloo refuses in it (both oneof members, a limit missing or 0), each message
    /// starting with `path` (the `bufferPerRoute` field's own path).
    pub fn validate(&self, path: impl Display) -> Vec<String> {
        match self.buffer_override() {
            Err(e) => vec![format!("{path}: {e}")],
            Ok(Some(BufferOverride::Buffer(buffer))) => {
                buffer.validate(format_args!("{path}.buffer"))
            }
            Ok(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_parses_gloos_field_names_and_round_trips() {
        let gzip: Gzip = serde_yaml_ng::from_str(
            "memoryLevel: 3\ncontentLength: 100\ncompressionLevel: SPEED\ncompressionStrategy: HUFFMAN\ncontentType: [text/html, application/json]\ndisableOnEtagHeader: true\nremoveAcceptEncodingHeader: true\nwindowBits: 10\n",
        )
        .unwrap();
        assert_eq!(gzip.memory_level, Some(3));
        assert_eq!(gzip.content_length, Some(100));
        assert_eq!(gzip.compression_level, Some(CompressionLevel::Speed));
        assert_eq!(
            gzip.compression_strategy,
            Some(CompressionStrategy::Huffman)
        );
        assert_eq!(gzip.content_type, ["text/html", "application/json"]);
        assert_eq!(gzip.disable_on_etag_header, Some(true));
        assert_eq!(gzip.remove_accept_encoding_header, Some(true));
        assert_eq!(gzip.window_bits, Some(10));
        let back: Gzip = serde_json::from_value(serde_json::to_value(&gzip).unwrap()).unwrap();
        assert_eq!(back, gzip);
        assert!(gzip.validate("gzip").is_empty());
        let err = serde_yaml_ng::from_str::<Gzip>("compressionLevel: FASTEST").unwrap_err();
        assert!(err.to_string().contains("FASTEST"), "{err}");
    }

    #[test]
    fn gzip_ranges_are_envoys() {
        let gzip = Gzip {
            memory_level: Some(0),
            window_bits: Some(16),
            ..Default::default()
        };
        assert_eq!(
            gzip.validate("g"),
            [
                "g.memoryLevel: 0 is not between 1 and 9",
                "g.windowBits: 16 is not between 9 and 15"
            ]
        );
        let edges = Gzip {
            memory_level: Some(9),
            window_bits: Some(9),
            ..Default::default()
        };
        assert!(edges.validate("g").is_empty());
    }

    #[test]
    fn buffer_per_route_is_a_oneof() {
        let both: BufferPerRoute =
            serde_yaml_ng::from_str("disabled: true\nbuffer: {maxRequestBytes: 1}").unwrap();
        assert!(both.buffer_override().is_err());
        assert_eq!(
            both.validate("b"),
            ["b: only one of disabled, buffer may be set, found both (oneof `override`)"]
        );
        let off: BufferPerRoute = serde_yaml_ng::from_str("disabled: false").unwrap();
        assert_eq!(off.buffer_override().unwrap(), None);
        let empty = BufferPerRoute::default();
        assert_eq!(empty.buffer_override().unwrap(), None);
        let no_limit: BufferPerRoute = serde_yaml_ng::from_str("buffer: {}").unwrap();
        assert_eq!(
            no_limit.validate("b"),
            ["b.buffer.maxRequestBytes: required (Envoy's buffer filter needs a limit greater than 0)"]
        );
    }

    #[test]
    fn empty_health_check_path_is_refused() {
        assert_eq!(
            HealthCheck::default().validate("hc"),
            ["hc.path: health check path cannot be \"\" (required: the exact path health check requests use)"]
        );
    }
}
