//! Compiles the Envoy protos gloo translates to into one `FileDescriptorSet` (no source info),
//! which gloo-core embeds to print xDS resources as proto3 JSON and to hash them canonically.
//!
//! Usage: `cargo run --release -- <envoy-types proto dir> <output .bin>`
//! (the proto dir is `envoy-types-<version>/proto` in the cargo registry). The protos vendored
//! under this tool's `proto/` (envoy-gloo's transformation, ModSecurity and AWS Lambda filters)
//! are compiled with them; `proto/overrides` holds copies of Envoy protos that shadow the
//! originals, each changed only where protox would otherwise misread it (see its header).
use std::path::PathBuf;

use prost::Message;

// Order matters: protox resolves a relative name such as `common.ratelimit.v3.X` (in
// local_rate_limit.proto) against every package loaded so far. Once fault.proto has brought in
// `envoy.extensions.filters.common.fault.v3`, `common` binds to `envoy.extensions.filters.common`
// and the name is not found ("resolves to 'envoy.extensions.filters.common.ratelimit.v3...',
// which is not defined"). Compiled first, it resolves to `envoy.extensions.common.ratelimit.v3`,
// as when protoc compiles the file with only its own imports. The dynamic forward proxy
// filter's `common.dynamic_forward_proxy.v3.DnsCacheConfig` is the same case.
const ROOTS: &[&str] = &[
    "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto",
    "envoy/extensions/filters/http/dynamic_forward_proxy/v3/dynamic_forward_proxy.proto",
    "envoy/config/listener/v3/listener.proto",
    "envoy/config/route/v3/route.proto",
    "envoy/config/cluster/v3/cluster.proto",
    "envoy/config/endpoint/v3/endpoint.proto",
    "envoy/config/bootstrap/v3/bootstrap.proto",
    "envoy/service/discovery/v3/discovery.proto",
    "envoy/admin/v3/config_dump.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto",
    "envoy/extensions/filters/network/sni_cluster/v3/sni_cluster.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/extensions/filters/http/cors/v3/cors.proto",
    "envoy/extensions/filters/http/fault/v3/fault.proto",
    "envoy/extensions/filters/http/jwt_authn/v3/config.proto",
    "envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto",
    "envoy/extensions/filters/http/header_mutation/v3/header_mutation.proto",
    "envoy/extensions/filters/http/ratelimit/v3/rate_limit.proto",
    "envoy/extensions/filters/http/ext_proc/v3/ext_proc.proto",
    "envoy/extensions/filters/http/health_check/v3/health_check.proto",
    "envoy/extensions/filters/http/compressor/v3/compressor.proto",
    "envoy/extensions/compression/gzip/compressor/v3/gzip.proto",
    "envoy/extensions/filters/http/buffer/v3/buffer.proto",
    "envoy/extensions/filters/http/grpc_web/v3/grpc_web.proto",
    "envoy/extensions/http/early_header_mutation/header_mutation/v3/header_mutation.proto",
    "envoy/extensions/http/header_formatters/preserve_case/v3/preserve_case.proto",
    "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto",
    "envoy/extensions/filters/listener/proxy_protocol/v3/proxy_protocol.proto",
    "envoy/extensions/transport_sockets/tls/v3/tls.proto",
    "envoy/extensions/transport_sockets/proxy_protocol/v3/upstream_proxy_protocol.proto",
    "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto",
    "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
    "envoy/extensions/access_loggers/file/v3/file.proto",
    "envoy/extensions/access_loggers/stream/v3/stream.proto",
    "envoy/extensions/access_loggers/grpc/v3/als.proto",
    "envoy/extensions/formatter/req_without_query/v3/req_without_query.proto",
    "envoy/extensions/formatter/metadata/v3/metadata.proto",
    "envoy/extensions/request_id/uuid/v3/uuid.proto",
    "envoy/config/trace/v3/zipkin.proto",
    "envoy/config/trace/v3/datadog.proto",
    "envoy/config/trace/v3/opentelemetry.proto",
    // The dynamic forward proxy (its HTTP filter is first, above): its cluster type, the DNS
    // cache both embed, and the DNS resolvers a cache names. (cluster.proto is read from
    // `proto/overrides`, see its header.)
    "envoy/extensions/clusters/dynamic_forward_proxy/v3/cluster.proto",
    "envoy/extensions/common/dynamic_forward_proxy/v3/dns_cache.proto",
    "envoy/extensions/network/dns_resolver/cares/v3/cares_dns_resolver.proto",
    "envoy/extensions/network/dns_resolver/apple/v3/apple_dns_resolver.proto",
    // Vendored from envoy-gloo (`proto/envoy-gloo`, see its header): the transformation filter
    // Envoy has no proto for. Last, so its names resolve against the complete Envoy set; its
    // package (`envoy.api.v2.filter.http`) shadows nothing the Envoy protos refer to.
    "envoy/config/filter/http/transformation/v2/transformation_filter.proto",
    // Gloo's ModSecurity filter config (`proto/envoy-gloo`, see its header): no Envoy proto
    // defines it either.
    "envoy/config/filter/http/modsecurity/v2/modsecurity.proto",
    // Vendored from envoy-gloo likewise: its AWS Lambda filter and the response transformer
    // of `unwrapAsApiGateway`.
    "envoy/config/filter/http/aws_lambda/v2/aws_lambda.proto",
    "envoy/config/transformer/aws_lambda/v2/api_gateway_transformer.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let proto_dir = PathBuf::from(args.next().ok_or("missing <proto dir>")?);
    let out = PathBuf::from(args.next().ok_or("missing <output .bin>")?);
    // `proto/overrides` first: its copies of Envoy protos shadow the originals (see each
    // file's header for why).
    let overrides = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto/overrides");
    let includes: Vec<PathBuf> = std::iter::once(overrides)
        .chain(
            [
                "data-plane-api",
                "xds",
                "protoc-gen-validate",
                "googleapis",
                "cel-spec",
                "opentelemetry-proto",
                "client_model",
            ]
            .iter()
            .map(|d| proto_dir.join(d)),
        )
        .chain(std::iter::once(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto/envoy-gloo"),
        ))
        .collect();
    let mut compiler = protox::Compiler::new(includes)?;
    compiler.include_imports(true).include_source_info(false);
    for root in ROOTS {
        compiler.open_file(root)?;
    }
    let set = compiler.file_descriptor_set();
    std::fs::write(&out, set.encode_to_vec())?;
    println!(
        "{} files, {} bytes -> {}",
        set.file.len(),
        set.encoded_len(),
        out.display()
    );
    Ok(())
}
