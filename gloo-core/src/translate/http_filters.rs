//! A Gateway's health check, gzip and buffer options as Envoy HTTP filters, and
//! `bufferPerRoute` as the buffer filter's per-route config, as Gloo's `healthcheck`, `gzip` and
//! `buffer` plugins translate them; and the gRPC-Web filter Gloo's `grpcweb` plugin puts on
//! every HTTP listener unless `grpcWeb` or Settings disable it.
//!
//! Gloo writes two deprecated forms Envoy 1.40 warns about on every load; gloo writes their
//! replacements, which mean the same:
//! - the health check's `:path` matcher is a `string_match` (exact) instead of `exact_match`;
//! - the compressor's `content_length`, `content_type`, `disable_on_etag_header` and
//!   `remove_accept_encoding_header` move into `response_direction_config`
//!   (`common_config.min_content_length`, `common_config.content_type_matcher`, and the two
//!   flags). Envoy compares the old `content_type` list case-insensitively with the media type
//!   of a response (its parameters cut off); each matcher is an exact match with
//!   `ignore_case`, which compares the same way.

use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
use envoy_types::pb::envoy::config::route::v3::{header_matcher, HeaderMatcher};
use envoy_types::pb::envoy::extensions::compression::gzip::compressor::v3::{
    gzip as envoy_gzip, Gzip as EnvoyGzip,
};
use envoy_types::pb::envoy::extensions::filters::http::buffer::v3::{
    buffer_per_route, Buffer as EnvoyBuffer, BufferPerRoute as EnvoyBufferPerRoute,
};
use envoy_types::pb::envoy::extensions::filters::http::compressor::v3::{compressor, Compressor};
use envoy_types::pb::envoy::extensions::filters::http::grpc_web::v3::GrpcWeb;
use envoy_types::pb::envoy::extensions::filters::http::health_check::v3::HealthCheck as EnvoyHealthCheck;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpFilter,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use envoy_types::pb::google::protobuf::{Any, BoolValue, UInt32Value};

use crate::model::gateway::HttpGateway;
use crate::model::http_filters::{
    Buffer, BufferOverride, BufferPerRoute, CompressionLevel, CompressionStrategy, Gzip,
    HealthCheck,
};
use crate::model::listener_options::HttpListenerOptions;
use crate::snapshot::ConfigSnapshot;
use crate::xds::pack;

/// Envoy's health check filter (Gloo's `wellknown.HealthCheck`).
pub const HEALTH_CHECK_FILTER: &str = "envoy.filters.http.health_check";
/// Envoy's gRPC-Web filter (Gloo's `wellknown.GRPCWeb`), which Gloo puts on every HTTP
/// listener unless the listener's `grpcWeb` or Settings disable it.
pub const GRPC_WEB_FILTER: &str = "envoy.filters.http.grpc_web";
/// Envoy's compressor filter, which Gloo's `gzip` option configures with the gzip library.
pub const COMPRESSOR_FILTER: &str = "envoy.filters.http.compressor";
/// The name of the compressor filter's gzip library (Gloo's `GzipLibrary`).
pub const GZIP_COMPRESSOR: &str = "envoy.compression.gzip.compressor";
/// Envoy's buffer filter (Gloo's `wellknown.Buffer`), also the `typed_per_filter_config` key
/// of `bufferPerRoute`.
pub const BUFFER_FILTER: &str = "envoy.filters.http.buffer";

fn options(http: Option<&HttpGateway>) -> Option<&HttpListenerOptions> {
    http.and_then(|h| h.options.as_ref())
}

fn filter(name: &str, config: Any) -> HttpFilter {
    HttpFilter {
        name: name.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    }
}

/// What Gloo (or Envoy) refuses in a Gateway's health check, gzip and buffer options, each
/// message starting with `path` (the `httpGateway.options` path).
pub(crate) fn problems(options: &HttpListenerOptions, path: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(health_check) = &options.health_check {
        problems.extend(health_check.validate(format_args!("{path}.healthCheck")));
    }
    if let Some(gzip) = &options.gzip {
        problems.extend(gzip.validate(format_args!("{path}.gzip")));
    }
    if let Some(buffer) = &options.buffer {
        problems.extend(buffer.validate(format_args!("{path}.buffer")));
    }
    problems
}

/// Whether listeners that do not set `grpcWeb` get the gRPC-Web filter, as Gloo's `grpcweb`
/// plugin decides in `Init`: Settings `gloo.disableGrpcWeb` when set, else
/// `gloo.removeUnusedFilters` (true leaves it off); on by default. The Settings read are the
/// first that set `gloo`, as for the other translation defaults.
pub(crate) fn grpc_web_by_default(snapshot: &ConfigSnapshot) -> bool {
    let gloo = snapshot
        .settings
        .values()
        .find_map(|entry| entry.object.spec.gloo.as_ref());
    let disabled = gloo
        .and_then(|g| g.disable_grpc_web.or(g.remove_unused_filters))
        .unwrap_or(false);
    !disabled
}

/// The listener's gRPC-Web filter (Envoy's, with an empty config, as Gloo writes it): when
/// the listener sets `grpcWeb`, its `disable` decides; otherwise `by_default` (see
/// [`grpc_web_by_default`]).
pub(crate) fn grpc_web_filter(http: Option<&HttpGateway>, by_default: bool) -> Option<HttpFilter> {
    let enabled = match options(http).and_then(|o| o.grpc_web.as_ref()) {
        Some(grpc_web) => !grpc_web.disable,
        None => by_default,
    };
    enabled.then(|| filter(GRPC_WEB_FILTER, pack(&GrpcWeb::default())))
}

/// The listener's health check filter, when it sets a (valid) `healthCheck`: requests whose
/// `:path` is exactly the path are answered by Envoy (`pass_through_mode: false`).
pub(crate) fn health_check_filter(http: Option<&HttpGateway>) -> Option<HttpFilter> {
    let health_check = options(http)?.health_check.as_ref()?;
    // Refused by validation; a Gateway never accepted is not served at all then.
    if !health_check.validate("").is_empty() {
        return None;
    }
    Some(filter(
        HEALTH_CHECK_FILTER,
        pack(&health_check_config(health_check)),
    ))
}

fn health_check_config(health_check: &HealthCheck) -> EnvoyHealthCheck {
    EnvoyHealthCheck {
        pass_through_mode: Some(BoolValue { value: false }),
        headers: vec![HeaderMatcher {
            name: ":path".to_string(),
            header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(
                StringMatcher {
                    match_pattern: Some(MatchPattern::Exact(health_check.path.clone())),
                    ignore_case: false,
                },
            )),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The listener's compressor filter with the gzip library, when it sets a (valid) `gzip`.
pub(crate) fn compressor_filter(http: Option<&HttpGateway>) -> Option<HttpFilter> {
    let gzip = options(http)?.gzip.as_ref()?;
    if !gzip.validate("").is_empty() {
        return None;
    }
    Some(filter(COMPRESSOR_FILTER, pack(&compressor_config(gzip))))
}

/// Gloo's `glooToEnvoyCompressor`, with the response settings in their non-deprecated fields.
fn compressor_config(gzip: &Gzip) -> Compressor {
    let library = EnvoyGzip {
        memory_level: gzip.memory_level.map(|value| UInt32Value { value }),
        compression_level: match gzip.compression_level.unwrap_or_default() {
            CompressionLevel::Default => envoy_gzip::CompressionLevel::DefaultCompression,
            // Envoy's BEST_COMPRESSION is zlib's level 9.
            CompressionLevel::Best => envoy_gzip::CompressionLevel::CompressionLevel9,
            CompressionLevel::Speed => envoy_gzip::CompressionLevel::BestSpeed,
        } as i32,
        compression_strategy: match gzip.compression_strategy.unwrap_or_default() {
            CompressionStrategy::Default => envoy_gzip::CompressionStrategy::DefaultStrategy,
            CompressionStrategy::Filtered => envoy_gzip::CompressionStrategy::Filtered,
            CompressionStrategy::Huffman => envoy_gzip::CompressionStrategy::HuffmanOnly,
            CompressionStrategy::Rle => envoy_gzip::CompressionStrategy::Rle,
        } as i32,
        window_bits: gzip.window_bits.map(|value| UInt32Value { value }),
        // Gloo's v2 gzip has no chunk size.
        chunk_size: None,
    };
    let common = compressor::CommonDirectionConfig {
        min_content_length: gzip.content_length.map(|value| UInt32Value { value }),
        content_type_matcher: gzip
            .content_type
            .iter()
            .map(|media_type| StringMatcher {
                match_pattern: Some(MatchPattern::Exact(media_type.clone())),
                ignore_case: true,
            })
            .collect(),
        ..Default::default()
    };
    let response = compressor::ResponseDirectionConfig {
        common_config: (common != compressor::CommonDirectionConfig::default()).then_some(common),
        disable_on_etag_header: gzip.disable_on_etag_header.unwrap_or(false),
        remove_accept_encoding_header: gzip.remove_accept_encoding_header.unwrap_or(false),
        ..Default::default()
    };
    Compressor {
        compressor_library: Some(TypedExtensionConfig {
            name: GZIP_COMPRESSOR.to_string(),
            typed_config: Some(pack(&library)),
        }),
        response_direction_config: (response != compressor::ResponseDirectionConfig::default())
            .then_some(response),
        ..Default::default()
    }
}

/// The listener's buffer filter, when it sets a (valid) `buffer`.
pub(crate) fn buffer_filter(http: Option<&HttpGateway>) -> Option<HttpFilter> {
    let buffer = options(http)?.buffer.as_ref()?;
    Some(filter(BUFFER_FILTER, pack(&buffer_config(buffer)?)))
}

/// Envoy's `Buffer`, or `None` when Envoy would refuse it (no limit, or 0).
fn buffer_config(buffer: &Buffer) -> Option<EnvoyBuffer> {
    let value = buffer.max_request_bytes.filter(|&bytes| bytes > 0)?;
    Some(EnvoyBuffer {
        max_request_bytes: Some(UInt32Value { value }),
    })
}

/// The buffer filter's config for a virtual host, route or weighted destination that sets
/// `bufferPerRoute` (Gloo's `ProcessVirtualHost` / `ProcessRoute` /
/// `ProcessWeightedDestination`): the buffer off (`disabled`) or another limit. Nothing when
/// it sets neither (or `disabled: false`), as in Gloo, nor when Envoy would refuse it (refused
/// by validation: a resource that sets it is not served).
pub(crate) fn buffer_per_route(settings: Option<&BufferPerRoute>) -> Option<(String, Any)> {
    let config = match settings?.buffer_override().ok()?? {
        BufferOverride::Disabled => buffer_per_route::Override::Disabled(true),
        BufferOverride::Buffer(buffer) => {
            buffer_per_route::Override::Buffer(buffer_config(buffer)?)
        }
    };
    Some((
        BUFFER_FILTER.to_string(),
        pack(&EnvoyBufferPerRoute {
            r#override: Some(config),
        }),
    ))
}

/// What Gloo refuses in the `bufferPerRoute` of the options at `options_path` (a virtual
/// host's, route's or weighted destination's), each message starting with
/// `<options_path>.bufferPerRoute`.
pub(crate) fn per_route_problems(
    settings: Option<&BufferPerRoute>,
    options_path: impl std::fmt::Display,
) -> Vec<String> {
    match settings {
        Some(settings) => settings.validate(format_args!("{options_path}.bufferPerRoute")),
        None => Vec::new(),
    }
}

/// Whether `settings` give the buffer filter a limit (which takes effect only on a listener
/// with the filter).
pub(crate) fn sets_limit(settings: Option<&BufferPerRoute>) -> bool {
    matches!(
        settings.map(BufferPerRoute::buffer_override),
        Some(Ok(Some(BufferOverride::Buffer(_))))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_levels_and_strategies_are_gloos() {
        for (level, envoy) in [
            (None, 0),
            (Some(CompressionLevel::Default), 0),
            (Some(CompressionLevel::Best), 9),
            (Some(CompressionLevel::Speed), 1),
        ] {
            let config = compressor_config(&Gzip {
                compression_level: level,
                ..Default::default()
            });
            let library = config.compressor_library.unwrap();
            assert_eq!(library.name, GZIP_COMPRESSOR);
            let gzip: EnvoyGzip =
                prost::Message::decode(library.typed_config.unwrap().value.as_slice()).unwrap();
            assert_eq!(gzip.compression_level, envoy, "{level:?}");
            // Nothing else set: no response settings at all.
            assert_eq!(config.response_direction_config, None);
        }
        for (strategy, envoy) in [
            (CompressionStrategy::Default, 0),
            (CompressionStrategy::Filtered, 1),
            (CompressionStrategy::Huffman, 2),
            (CompressionStrategy::Rle, 3),
        ] {
            let config = compressor_config(&Gzip {
                compression_strategy: Some(strategy),
                ..Default::default()
            });
            let gzip: EnvoyGzip = prost::Message::decode(
                config
                    .compressor_library
                    .unwrap()
                    .typed_config
                    .unwrap()
                    .value
                    .as_slice(),
            )
            .unwrap();
            assert_eq!(gzip.compression_strategy, envoy, "{strategy:?}");
        }
    }

    #[test]
    fn invalid_buffers_make_no_config() {
        let zero = BufferPerRoute {
            buffer: Some(Buffer {
                max_request_bytes: Some(0),
            }),
            ..Default::default()
        };
        assert!(buffer_per_route(Some(&zero)).is_none());
        let both = BufferPerRoute {
            disabled: Some(true),
            buffer: Some(Buffer {
                max_request_bytes: Some(1),
            }),
        };
        assert!(buffer_per_route(Some(&both)).is_none());
        let off = BufferPerRoute {
            disabled: Some(false),
            ..Default::default()
        };
        assert!(buffer_per_route(Some(&off)).is_none());
        assert!(buffer_config(&Buffer::default()).is_none());
    }
}
