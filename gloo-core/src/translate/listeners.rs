//! Listeners: one per Gateway, with an HTTP connection manager reading its routes over RDS, or
//! TCP proxy filter chains.

use envoy_types::pb::envoy::config::accesslog::v3::AccessLog;
use envoy_types::pb::envoy::config::core::v3::{
    address, config_source, data_source, http1_protocol_options, http_protocol_options,
    socket_address, Address, AggregatedConfigSource, ApiVersion, CidrRange, ConfigSource,
    DataSource, HttpProtocolOptions, SocketAddress, TransportSocket, TypedExtensionConfig,
};
use envoy_types::pb::envoy::config::listener::v3::{
    filter, listener_filter, Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::proxy_protocol::v3::ProxyProtocol;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, http_filter, HttpConnectionManager, HttpFilter, Rds,
    RequestIdExtension,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    subject_alt_name_matcher::SanType, tls_parameters::TlsProtocol, CertificateValidationContext,
    CommonTlsContext, DownstreamTlsContext, SubjectAltNameMatcher, TlsCertificate, TlsParameters,
};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};

use super::access_log;
use super::extauth;
use super::http_filters;
use super::jwt;
use super::local_ratelimit;
use super::names::{
    route_config_name, CORS_FILTER, EARLY_HEADER_MUTATION, FAULT_FILTER, HCM_FILTER,
    LOCAL_RATELIMIT_FILTER, PRESERVE_CASE_FORMATTER, ROUTER_FILTER, TLS_INSPECTOR,
};
use super::ratelimit;
use super::routes::duration;
use super::transformation;
use super::waf;
use super::Context;
use crate::model::gateway::HttpGateway;
use crate::model::headers::EarlyHeaderManipulation;
use crate::model::ssl::{SslConfig, SslSecretsRef};
use crate::model::ResourceRef;
use crate::resolve::{ListenerKind, ListenerModel, MatchedChainKind, VirtualHostModel};
use crate::status::Reports;
use crate::xds::pack;

/// The ADS config source every dynamic resource is read from.
pub(crate) fn ads() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

fn file(path: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::Filename(path.to_string())),
        ..Default::default()
    }
}

fn inline(bytes: &[u8]) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineBytes(bytes.to_vec())),
        ..Default::default()
    }
}

/// Certificate, key and CA of an `sslConfig`: files local to the proxy, or the contents of a
/// Secret inlined (as Gloo does).
pub(crate) fn tls_material(
    secrets: Result<Option<SslSecretsRef<'_>>, crate::model::routing::OneofError>,
    namespace: &str,
    ctx: &Context<'_>,
) -> Option<(Option<DataSource>, Option<DataSource>, Option<DataSource>)> {
    match secrets {
        Ok(Some(SslSecretsRef::SslFiles(files))) => Some((
            files.tls_cert.as_deref().map(file),
            files.tls_key.as_deref().map(file),
            files.root_ca.as_deref().map(file),
        )),
        Ok(Some(SslSecretsRef::SecretRef(reference))) => {
            // Missing or malformed secrets are reported by validation.
            let tls = ctx.snapshot.tls_secret(reference, namespace).ok()?;
            Some((
                tls.cert_chain.as_deref().map(inline),
                tls.private_key.as_deref().map(inline),
                tls.root_ca.as_deref().map(inline),
            ))
        }
        _ => None,
    }
}

/// Gloo's `SslParameters` as Envoy's `TlsParameters` (Gloo's `convertTlsParams`).
pub(crate) fn tls_parameters(
    params: Option<&crate::model::ssl::SslParameters>,
) -> Option<TlsParameters> {
    use crate::model::ssl::TlsProtocolVersion as V;
    let version = |v: Option<V>| {
        (match v.unwrap_or_default() {
            V::TlsAuto => TlsProtocol::TlsAuto,
            V::TlsV1_0 => TlsProtocol::TlSv10,
            V::TlsV1_1 => TlsProtocol::TlSv11,
            V::TlsV1_2 => TlsProtocol::TlSv12,
            V::TlsV1_3 => TlsProtocol::TlSv13,
        }) as i32
    };
    params.map(|p| TlsParameters {
        tls_minimum_protocol_version: version(p.minimum_protocol_version),
        tls_maximum_protocol_version: version(p.maximum_protocol_version),
        cipher_suites: p.cipher_suites.clone(),
        ecdh_curves: p.ecdh_curves.clone(),
        ..Default::default()
    })
}

/// A validation context trusting `ca`, with Gloo's `verifySubjectAltName`: the peer's
/// certificate must carry one of `names` exactly, as a SAN of any type (what Envoy's untyped
/// `match_subject_alt_names` meant, written as one typed matcher per SAN type).
pub(crate) fn validation_context(ca: DataSource, names: &[String]) -> CertificateValidationContext {
    use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, StringMatcher};
    let types = [
        SanType::Dns,
        SanType::Uri,
        SanType::Email,
        SanType::IpAddress,
    ];
    CertificateValidationContext {
        trusted_ca: Some(ca),
        match_typed_subject_alt_names: names
            .iter()
            .flat_map(|name| {
                types.iter().map(move |san_type| SubjectAltNameMatcher {
                    san_type: *san_type as i32,
                    matcher: Some(StringMatcher {
                        match_pattern: Some(string_matcher::MatchPattern::Exact(name.clone())),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
            })
            .collect(),
        ..Default::default()
    }
}

/// The downstream TLS context of an SSL VirtualService, a hybrid gateway's HTTP chain or a
/// TLS-terminating TCP host.
pub(super) fn downstream_tls(
    ssl: &SslConfig,
    namespace: &str,
    ctx: &Context<'_>,
) -> Option<DownstreamTlsContext> {
    use crate::model::ssl::OcspStaplePolicy as Policy;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::downstream_tls_context::{
        OcspStaplePolicy, SessionTicketKeysType,
    };
    let (cert, key, ca) = tls_material(ssl.ssl_secrets(), namespace, ctx)?;
    // An OCSP response to staple: a file beside the certificate's (`sslFiles.ocspStaple`).
    let ocsp_staple = match ssl.ssl_secrets() {
        Ok(Some(SslSecretsRef::SslFiles(files))) => files.ocsp_staple.as_deref().map(file),
        _ => None,
    };
    let mut common = CommonTlsContext {
        tls_certificates: vec![TlsCertificate {
            certificate_chain: cert,
            private_key: key,
            ocsp_staple,
            ..Default::default()
        }],
        // Gloo's default; `["allow_empty"]` asks for no ALPN at all.
        alpn_protocols: match ssl.alpn_protocols.as_slice() {
            [] => vec!["h2".to_string(), "http/1.1".to_string()],
            [only] if only == "allow_empty" => Vec::new(),
            listed => listed.to_vec(),
        },
        tls_params: tls_parameters(ssl.parameters.as_ref()),
        ..Default::default()
    };
    let has_ca = ca.is_some();
    let one_way = ssl.one_way_tls.unwrap_or(false);
    // With `oneWayTls` Gloo drops the validation context: its presence alone makes Envoy ask
    // clients for a certificate, even when one is not required.
    if let Some(ca) = ca.filter(|_| !one_way) {
        common.validation_context_type = Some(
            envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::common_tls_context::ValidationContextType::ValidationContext(
                validation_context(ca, &ssl.verify_subject_alt_name),
            ),
        );
    }
    Some(DownstreamTlsContext {
        common_tls_context: Some(common),
        // A CA means clients must present a certificate it signed, unless `oneWayTls`.
        require_client_certificate: has_ca.then_some(BoolValue { value: !one_way }),
        session_ticket_keys_type: ssl
            .disable_tls_session_resumption
            .unwrap_or(false)
            .then_some(SessionTicketKeysType::DisableStatelessSessionResumption(
                true,
            )),
        ocsp_staple_policy: match ssl.ocsp_staple_policy.unwrap_or_default() {
            Policy::LenientStapling => OcspStaplePolicy::LenientStapling,
            Policy::StrictStapling => OcspStaplePolicy::StrictStapling,
            Policy::MustStaple => OcspStaplePolicy::MustStaple,
        } as i32,
        ..Default::default()
    })
}

/// Gloo's `properCaseHeaderKeyFormat` / `preserveCaseHeaderKeyFormat` (the `header_format`
/// oneof of the connection manager's settings and of an Upstream's `http1ProtocolOptions`) as
/// Envoy's HTTP/1 `header_key_format`, as Gloo's hcm plugin and `ConvertHttp1` write it: proper
/// case words when `proper_case` is true, else the preserve-case stateful formatter (named
/// `envoy.http.stateful_header_formatters.preserve_case`, an empty
/// `PreserveCaseFormatterConfig`) when `preserve_case` is true, else none. Setting both is
/// refused when the resource is validated.
pub(crate) fn header_key_format(
    proper_case: Option<bool>,
    preserve_case: Option<bool>,
) -> Option<http1_protocol_options::HeaderKeyFormat> {
    use envoy_types::pb::envoy::extensions::http::header_formatters::preserve_case::v3::PreserveCaseFormatterConfig;
    use http1_protocol_options::header_key_format::{HeaderFormat, ProperCaseWords};
    let format = if proper_case == Some(true) {
        HeaderFormat::ProperCaseWords(ProperCaseWords {})
    } else if preserve_case == Some(true) {
        HeaderFormat::StatefulFormatter(TypedExtensionConfig {
            name: PRESERVE_CASE_FORMATTER.to_string(),
            typed_config: Some(pack(&PreserveCaseFormatterConfig::default())),
        })
    } else {
        return None;
    };
    Some(http1_protocol_options::HeaderKeyFormat {
        header_format: Some(format),
    })
}

/// Gloo's `earlyHeaderManipulation` as the connection manager's early header mutation
/// extension, as Gloo's headers plugin writes it: one `HeaderMutation` whose mutations append
/// each header to add (converted as a route's request headers are, see
/// [`super::routes::request_header_options`]), then remove each header to remove, in order.
/// `None` when there is nothing to add or remove: Gloo writes the extension with no
/// mutations, which Envoy refuses (`mutations` needs at least one), where no extension means
/// the same thing.
fn early_header_mutation(
    early: &EarlyHeaderManipulation,
    namespace: &str,
    ctx: &Context<'_>,
) -> Option<TypedExtensionConfig> {
    use envoy_types::pb::envoy::config::common::mutation_rules::v3::{
        header_mutation::Action, HeaderMutation as Mutation,
    };
    use envoy_types::pb::envoy::extensions::http::early_header_mutation::header_mutation::v3::HeaderMutation;
    let adds =
        super::routes::request_header_options(&early.headers_to_add, ctx.snapshot, namespace)
            .into_iter()
            .map(Action::Append);
    let removes = early.headers_to_remove.iter().cloned().map(Action::Remove);
    let mutations: Vec<Mutation> = adds
        .chain(removes)
        .map(|action| Mutation {
            action: Some(action),
        })
        .collect();
    if mutations.is_empty() {
        return None;
    }
    Some(TypedExtensionConfig {
        name: EARLY_HEADER_MUTATION.to_string(),
        typed_config: Some(pack(&HeaderMutation { mutations })),
    })
}

/// Gloo's `uuidRequestIdConfig` as the connection manager's request ID extension, as Gloo's
/// hcm plugin writes it: Envoy's `UuidRequestIdConfig` with both settings as given (unset ones
/// left unset, Envoy's defaults), in an extension without a name (Envoy picks the extension
/// by the config's type).
fn request_id_extension(
    uuid: &crate::model::listener_options::UuidRequestIdConfigSettings,
) -> RequestIdExtension {
    use envoy_types::pb::envoy::extensions::request_id::uuid::v3::UuidRequestIdConfig;
    let value = |v: Option<bool>| v.map(|value| BoolValue { value });
    RequestIdExtension {
        typed_config: Some(pack(&UuidRequestIdConfig {
            pack_trace_reason: value(uuid.pack_trace_reason),
            use_request_id_for_trace_sampling: value(uuid.use_request_id_for_trace_sampling),
        })),
    }
}

/// The connection manager of an HTTP gateway (`http`) of the Gateway `gateway` (its namespace
/// is where `headerSecretRef`s without a namespace point; its name, the OpenTelemetry tracer's
/// default service name). `reports` tell which Upstreams are rejected (a tracer cannot send
/// spans to them).
fn http_connection_manager(
    http: Option<&HttpGateway>,
    route_name: String,
    hosts: &[std::sync::Arc<VirtualHostModel>],
    access_log: &[AccessLog],
    gateway: &ResourceRef,
    ctx: &Context<'_>,
    reports: &Reports,
) -> HttpConnectionManager {
    let namespace = gateway.namespace_or(crate::model::DEFAULT_NAMESPACE);
    let uses = |pred: &dyn Fn(&crate::model::options::RouteOptions) -> bool| {
        hosts
            .iter()
            .any(|h| h.routes.iter().any(|r| pred(&r.options)))
    };
    let mut http_filters = Vec::new();
    // Gloo's stage order: Fault, then CORS, ..., then the router last.
    // Gzip compression: Gloo's `DuringStage(FaultStage)`, before the fault filter (same stage,
    // ordered by name), so the first filter on the request path and the last on the response
    // path: it compresses what every other filter has done to the response.
    http_filters.extend(http_filters::compressor_filter(http));
    if uses(&|o| o.faults.is_some()) {
        http_filters.push(HttpFilter {
            name: FAULT_FILTER.to_string(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack(
                &HttpFault::default(),
            ))),
            ..Default::default()
        });
    }
    // Transformations: Gloo's early stage right after fault injection (before CORS, WAF and
    // auth, so auth sees the transformed request); the regular stage after authorization,
    // so it transforms only requests auth let through and may use what auth added.
    let (early_transformation, regular_transformation) =
        transformation::http_filters_for(hosts, ctx);
    http_filters.extend(early_transformation);
    if uses(&|o| o.cors.is_some()) || hosts.iter().any(|h| h.options.cors.is_some()) {
        http_filters.push(HttpFilter {
            name: CORS_FILTER.to_string(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack(&Cors::default()))),
            ..Default::default()
        });
    }
    // WAF: Gloo's `WafStage`, after fault injection and CORS (a CORS preflight is answered
    // before the WAF sees it, as in Gloo) and before everything that costs more or trusts the
    // request: rate limits and auth see only requests the WAF let through.
    http_filters.extend(waf::http_filter(ctx.snapshot, http, hosts));
    // Local rate limiting: Gloo stages it `BeforeStage(AuthNStage)`, after WAF and before
    // JWT / ext auth, so requests over the limit are refused before anything costly runs.
    let local_limits = local_ratelimit::settings(http);
    if local_ratelimit::listener_needs_filter(local_limits, hosts) {
        let config = local_ratelimit::config(
            local_ratelimit::ListenerFlags::of(local_limits),
            local_limits.and_then(|s| s.default_limit.as_ref()),
        );
        http_filters.push(HttpFilter {
            name: LOCAL_RATELIMIT_FILTER.to_string(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack(&config))),
            ..Default::default()
        });
    }
    // Global rate limiting before auth: Gloo's `BeforeStage(AuthNStage)`, after the local
    // rate limit filter (same stage, ordered by name).
    let global_filter = |stage| {
        ratelimit::filter_config(ctx.snapshot, stage, hosts).map(|config| HttpFilter {
            name: ratelimit::RATELIMIT_FILTER.to_string(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack(&config))),
            ..Default::default()
        })
    };
    http_filters.extend(
        ratelimit::Stage::BEFORE_AUTH
            .into_iter()
            .filter_map(global_filter),
    );
    // JWT and ext auth: Gloo's AuthN stage. The JWT filter of `beforeExtAuth` and the user id
    // header's sanitize filter run before it (`BeforeStage(AuthNStage)`, in name order, after
    // the rate limits above); ext_authz runs during it, then the JWT filter of `afterExtAuth`
    // (same stage, later by name).
    let jwt_filter = |stage: jwt::Stage| {
        jwt::filter_config(stage, hosts).map(|config| HttpFilter {
            name: stage.filter_name().to_string(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack(&config))),
            ..Default::default()
        })
    };
    http_filters.extend(jwt_filter(jwt::Stage::BeforeExtAuth));
    if let Some((sanitize, ext_authz)) = extauth::http_filters(ctx.snapshot, http, hosts) {
        http_filters.push(sanitize);
        http_filters.push(ext_authz);
    }
    http_filters.extend(jwt_filter(jwt::Stage::AfterExtAuth));
    // gRPC-Web: Gloo's `AfterStage(AuthZStage)`, on by default; first of its stage by name
    // (before the health check and the regular transformations), so auth sees a gRPC-Web
    // request as it came and the filters after it see it translated to gRPC.
    http_filters.extend(http_filters::grpc_web_filter(http, ctx.grpc_web));
    // The health check: Gloo's `AfterStage(AuthZStage)`, after gRPC-Web and before the
    // regular transformations of the same stage (ordered by name). Envoy answers a health
    // check here, so it has passed the WAF, the rate limits before auth and auth, and is never
    // transformed or routed.
    http_filters.extend(http_filters::health_check_filter(http));
    // Gloo's regular transformations run after auth (`AfterStage(AuthZStage)`), before the
    // rate limits of `RateLimitStage`.
    http_filters.extend(regular_transformation);
    // Global rate limiting after auth: Gloo's `RateLimitStage`, after AuthN and AuthZ.
    http_filters.extend(
        ratelimit::Stage::AFTER_AUTH
            .into_iter()
            .filter_map(global_filter),
    );
    // AWS Lambda last before the router: Gloo's `DuringStage(OutAuthStage)` (it signs the
    // request, so nothing may change it afterwards), the transformation of Lambda requests
    // (`requestTransformation`) just before it (`BeforeStage(OutAuthStage)`).
    // The dynamic forward proxy is of the same stage (`DuringStage(OutAuthStage)`), after
    // that transformation and, by name, before the Lambda filter
    // (`envoy.filters.http.dynamic_forward_proxy` < `io.solo.aws_lambda`): it resolves the
    // host the request names once every filter that may rewrite it has run.
    let mut out_auth = super::aws_lambda::http_filters(ctx.snapshot, hosts);
    if let Some(forward_proxy) = super::dynamic_forward_proxy::http_filter(http) {
        let at = out_auth
            .iter()
            .position(|f| f.name == super::aws_lambda::AWS_LAMBDA_FILTER)
            .unwrap_or(out_auth.len());
        out_auth.insert(at, forward_proxy);
    }
    http_filters.extend(out_auth);
    // Request buffering: Gloo's `DuringStage(RouteStage)`, just before the router, so only a
    // request every other filter let through is buffered (a 413 past the limit); routes'
    // `bufferPerRoute` configure this filter and nothing without it.
    http_filters.extend(http_filters::buffer_filter(http));
    http_filters.push(HttpFilter {
        name: ROUTER_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack(&router(http)))),
        ..Default::default()
    });
    let mut hcm = HttpConnectionManager {
        stat_prefix: "http".to_string(),
        codec_type: http_connection_manager::CodecType::Auto as i32,
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: route_name,
        })),
        http_filters,
        // Gloo normalizes paths unless told otherwise (`normalizePath` "defaults to true"), so
        // `/public/../admin` cannot slip past a route's matcher.
        normalize_path: Some(BoolValue { value: true }),
        access_log: access_log.to_vec(),
        ..Default::default()
    };
    let settings = http
        .and_then(|h| h.options.as_ref())
        .and_then(|o| o.http_connection_manager_settings.as_ref());
    if let Some(s) = settings {
        if let Some(v) = s.use_remote_address {
            hcm.use_remote_address = Some(BoolValue { value: v });
        }
        if let Some(v) = s.xff_num_trusted_hops {
            hcm.xff_num_trusted_hops = v;
        }
        if let Some(v) = s.skip_xff_append {
            hcm.skip_xff_append = v;
        }
        if let Some(v) = &s.via {
            hcm.via = v.clone();
        }
        if let Some(v) = s.generate_request_id {
            hcm.generate_request_id = Some(BoolValue { value: v });
        }
        if let Some(v) = s.proxy_100_continue {
            hcm.proxy_100_continue = v;
        }
        if let Some(v) = &s.stream_idle_timeout {
            hcm.stream_idle_timeout = Some(duration(v));
        }
        if let Some(v) = &s.request_timeout {
            hcm.request_timeout = Some(duration(v));
        }
        if let Some(v) = &s.drain_timeout {
            hcm.drain_timeout = Some(duration(v));
        }
        if let Some(v) = &s.delayed_close_timeout {
            hcm.delayed_close_timeout = Some(duration(v));
        }
        if let Some(v) = &s.server_name {
            hcm.server_name = v.clone();
        }
        if let Some(f) = s.forward_client_cert_details {
            use crate::model::listener_options::ForwardClientCertDetails as Gloo;
            use http_connection_manager::ForwardClientCertDetails as Envoy;
            hcm.forward_client_cert_details = match f {
                Gloo::Sanitize => Envoy::Sanitize,
                Gloo::ForwardOnly => Envoy::ForwardOnly,
                Gloo::AppendForward => Envoy::AppendForward,
                Gloo::SanitizeSet => Envoy::SanitizeSet,
                Gloo::AlwaysForwardOnly => Envoy::AlwaysForwardOnly,
            } as i32;
        }
        // Which certificate details go in `x-forwarded-client-cert`: only in the two modes in
        // which Envoy sets the header from the certificate, as Gloo's hcm plugin writes them
        // (`subject` as given, the others true or false); otherwise left out (a warning says
        // so).
        if let Some(d) = s.set_current_client_cert_details.filter(|_| {
            s.forward_client_cert_details
                .is_some_and(|f| f.sets_client_cert_details())
        }) {
            hcm.set_current_client_cert_details =
                Some(http_connection_manager::SetCurrentClientCertDetails {
                    subject: d.subject.map(|value| BoolValue { value }),
                    cert: d.cert.unwrap_or(false),
                    chain: d.chain.unwrap_or(false),
                    dns: d.dns.unwrap_or(false),
                    uri: d.uri.unwrap_or(false),
                    ..Default::default()
                });
        }
        if let Some(v) = &s.request_headers_timeout {
            hcm.request_headers_timeout = Some(duration(v));
        }
        if s.strip_any_host_port == Some(true) {
            hcm.strip_port_mode = Some(http_connection_manager::StripPortMode::StripAnyHostPort(
                true,
            ));
        }
        if s.accept_http_10.is_some() || s.default_host_for_http_10.is_some() {
            hcm.http_protocol_options = Some(
                envoy_types::pb::envoy::config::core::v3::Http1ProtocolOptions {
                    accept_http_10: s.accept_http_10.unwrap_or(false),
                    default_host_for_http_10: s
                        .default_host_for_http_10
                        .clone()
                        .unwrap_or_default(),
                    ..Default::default()
                },
            );
        }
        if let Some(h2) = &s.http2_protocol_options {
            let value = |v: Option<u32>| v.map(|value| UInt32Value { value });
            hcm.http2_protocol_options = Some(
                envoy_types::pb::envoy::config::core::v3::Http2ProtocolOptions {
                    max_concurrent_streams: value(h2.max_concurrent_streams),
                    initial_stream_window_size: value(h2.initial_stream_window_size),
                    initial_connection_window_size: value(h2.initial_connection_window_size),
                    override_stream_error_on_invalid_http_message: h2
                        .override_stream_error_on_invalid_http_message
                        .map(|value| BoolValue { value }),
                    ..Default::default()
                },
            );
        }
        // Either member of the `header_format` oneof makes HTTP/1 options, even `false` (as in
        // Gloo's hcm plugin); a true one sets their key format.
        if s.proper_case_header_key_format.is_some() || s.preserve_case_header_key_format.is_some()
        {
            hcm.http_protocol_options
                .get_or_insert_with(Default::default)
                .header_key_format = header_key_format(
                s.proper_case_header_key_format,
                s.preserve_case_header_key_format,
            );
        }
        // `allowChunkedLength` and `enableTrailers` make HTTP/1 options only when true: Gloo's
        // hcm plugin skips a false one, which is Envoy's default anyway.
        if s.allow_chunked_length == Some(true) {
            hcm.http_protocol_options
                .get_or_insert_with(Default::default)
                .allow_chunked_length = true;
        }
        if s.enable_trailers == Some(true) {
            hcm.http_protocol_options
                .get_or_insert_with(Default::default)
                .enable_trailers = true;
        }
        if let Some(early) = &s.early_header_manipulation {
            hcm.early_header_mutation_extensions = early_header_mutation(early, namespace, ctx)
                .into_iter()
                .collect();
        }
        if let Some(v) = s.append_x_forwarded_port {
            hcm.append_x_forwarded_port = v;
        }
        if let Some(v) = s.preserve_external_request_id {
            hcm.preserve_external_request_id = v;
        }
        if let Some(uuid) = &s.uuid_request_id_config {
            hcm.request_id_extension = Some(request_id_extension(uuid));
        }
        if let Some(tracing) = &s.tracing {
            hcm.tracing = super::tracing::connection_manager_tracing(
                tracing,
                &gateway.name,
                ctx.snapshot,
                reports,
            );
        }
        if let Some(c) = &s.internal_address_config {
            hcm.internal_address_config = Some(http_connection_manager::InternalAddressConfig {
                unix_sockets: c.unix_sockets.unwrap_or(false),
                cidr_ranges: c
                    .cidr_ranges
                    .iter()
                    .map(|r| CidrRange {
                        address_prefix: r.address_prefix.clone(),
                        prefix_len: r.prefix_len.map(|value| UInt32Value { value }),
                    })
                    .collect(),
            });
        }
        if let Some(v) = s.max_request_headers_kb {
            hcm.max_request_headers_kb = Some(UInt32Value { value: v });
        }
        if let Some(v) = s.merge_slashes {
            hcm.merge_slashes = v;
        }
        if let Some(v) = s.normalize_path {
            hcm.normalize_path = Some(BoolValue { value: v });
        }
        if let Some(a) = s.path_with_escaped_slashes_action {
            use crate::model::listener_options::PathWithEscapedSlashesAction as Gloo;
            use http_connection_manager::PathWithEscapedSlashesAction as Envoy;
            hcm.path_with_escaped_slashes_action = match a {
                Gloo::ImplementationSpecificDefault => Envoy::ImplementationSpecificDefault,
                Gloo::KeepUnchanged => Envoy::KeepUnchanged,
                Gloo::RejectRequest => Envoy::RejectRequest,
                Gloo::UnescapeAndRedirect => Envoy::UnescapeAndRedirect,
                Gloo::UnescapeAndForward => Envoy::UnescapeAndForward,
            } as i32;
        }
        // The downstream connection limits: Envoy's `common_http_protocol_options`.
        let mut common = HttpProtocolOptions::default();
        if let Some(v) = &s.idle_timeout {
            common.idle_timeout = Some(duration(v));
        }
        if let Some(v) = &s.max_connection_duration {
            common.max_connection_duration = Some(duration(v));
        }
        if let Some(v) = &s.max_stream_duration {
            common.max_stream_duration = Some(duration(v));
        }
        if let Some(v) = s.max_headers_count {
            common.max_headers_count = Some(UInt32Value { value: v });
        }
        if let Some(v) = s.max_requests_per_connection {
            common.max_requests_per_connection = Some(UInt32Value { value: v });
        }
        if let Some(a) = s.headers_with_underscores_action {
            use crate::model::listener_options::HeadersWithUnderscoreAction as Gloo;
            use http_protocol_options::HeadersWithUnderscoresAction as Envoy;
            common.headers_with_underscores_action = match a {
                Gloo::Allow => Envoy::Allow,
                Gloo::RejectClientRequest => Envoy::RejectRequest,
                Gloo::DropHeader => Envoy::DropHeader,
            } as i32;
        }
        if common != HttpProtocolOptions::default() {
            hcm.common_http_protocol_options = Some(common);
        }
        if let Some(t) = s.server_header_transformation {
            use crate::model::listener_options::ServerHeaderTransformation as Gloo;
            use http_connection_manager::ServerHeaderTransformation as Envoy;
            hcm.server_header_transformation = match t {
                Gloo::Overwrite => Envoy::Overwrite,
                Gloo::AppendIfAbsent => Envoy::AppendIfAbsent,
                Gloo::PassThrough => Envoy::PassThrough,
            } as i32;
        }
    }
    // `headerValidationSettings.disableHttp1MethodValidation` (the listener's, not the
    // connection manager settings') lets the HTTP/1 codec accept methods it does not know:
    // Gloo's hcm plugin sets `allow_custom_methods` for it, and so does gloo. The field is not
    // deprecated in Envoy 1.40 but marked work-in-progress, so Envoy logs a warning naming it
    // on every load. Its replacement, Universal Header Validation (`typed_header_validation_config`
    // with the `envoy_default` validator, which allows custom methods unless
    // `restrict_http_methods`), is not compiled into release Envoy builds: 1.40 refuses such
    // a connection manager ("This Envoy binary does not support header validator
    // extensions"), so this field is the only way to the same meaning.
    let method_validation = http
        .and_then(|h| h.options.as_ref())
        .and_then(|o| o.header_validation_settings.as_ref());
    if method_validation.is_some_and(|v| v.disable_http1_method_validation.is_some()) {
        hcm.http_protocol_options
            .get_or_insert_with(Default::default)
            .allow_custom_methods = true;
    }
    hcm.upgrade_configs = upgrade_configs(settings.map(|s| s.upgrades.as_slice()).unwrap_or(&[]));
    hcm
}

/// Gloo's `upgrades` as Envoy upgrade configs. Websocket upgrades are on unless an entry
/// turns them off, as in Gloo ("enabled by default ... must be explicitly disabled").
fn upgrade_configs(upgrades: &[serde_json::Value]) -> Vec<http_connection_manager::UpgradeConfig> {
    let mut out = Vec::new();
    let mut websocket_set = false;
    for u in upgrades {
        for (key, upgrade_type) in [("websocket", "websocket"), ("connect", "CONNECT")] {
            if let Some(spec) = u.get(key) {
                let enabled = spec
                    .get("enabled")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(true);
                websocket_set |= key == "websocket";
                out.push(http_connection_manager::UpgradeConfig {
                    upgrade_type: upgrade_type.to_string(),
                    enabled: Some(BoolValue { value: enabled }),
                    ..Default::default()
                });
            }
        }
    }
    if !websocket_set {
        out.insert(
            0,
            http_connection_manager::UpgradeConfig {
                upgrade_type: "websocket".to_string(),
                ..Default::default()
            },
        );
    }
    out
}

/// The router filter's config of an HTTP gateway, as Gloo's `network_filters.go` writes it from
/// `options.router`: `suppress_envoy_headers` only when `suppressEnvoyHeaders` is true,
/// `dynamic_stats` as set (Envoy's default, true, when unset).
fn router(http: Option<&HttpGateway>) -> Router {
    let options = http
        .and_then(|h| h.options.as_ref())
        .and_then(|o| o.router.as_ref());
    Router {
        suppress_envoy_headers: options
            .and_then(|r| r.suppress_envoy_headers)
            .unwrap_or(false),
        dynamic_stats: options
            .and_then(|r| r.dynamic_stats)
            .map(|value| BoolValue { value }),
        ..Default::default()
    }
}

/// The API listener a proxyless gRPC client (`xds:///<domain>`) reads: an HTTP connection
/// manager with the router, reading `route_name` over RDS, where the virtual host for `domain`
/// lives.
pub(crate) fn api_listener(domain: &str, route_name: &str) -> Listener {
    let hcm = HttpConnectionManager {
        stat_prefix: domain.to_string(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: route_name.to_string(),
        })),
        http_filters: vec![HttpFilter {
            name: ROUTER_FILTER.to_string(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack(
                &Router::default(),
            ))),
            ..Default::default()
        }],
        ..Default::default()
    };
    Listener {
        name: domain.to_string(),
        api_listener: Some(envoy_types::pb::envoy::config::listener::v3::ApiListener {
            api_listener: Some(pack(&hcm)),
        }),
        ..Default::default()
    }
}

fn hcm_filter(hcm: &HttpConnectionManager) -> Filter {
    Filter {
        name: HCM_FILTER.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(pack(hcm))),
    }
}

pub(super) fn tls_transport_socket(tls: &DownstreamTlsContext) -> TransportSocket {
    TransportSocket {
        name: "envoy.transport_sockets.tls".to_string(),
        config_type: Some(
            envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType::TypedConfig(
                pack(tls),
            ),
        ),
    }
}

/// Envoy's TLS inspector listener filter, which reads the SNI (and ALPN) of a TLS client
/// hello so filter chains can match `server_names`.
fn tls_inspector() -> ListenerFilter {
    ListenerFilter {
        name: TLS_INSPECTOR.to_string(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(pack(
            &TlsInspector::default(),
        ))),
        ..Default::default()
    }
}

/// The Envoy listener of one Gateway on one proxy (`reports` tell which Upstreams are
/// rejected).
pub(crate) fn listener(model: &ListenerModel, ctx: &Context<'_>, reports: &Reports) -> Listener {
    let mut listener_filters = Vec::new();
    if model.use_proxy_proto {
        listener_filters.push(ListenerFilter {
            name: "envoy.filters.listener.proxy_protocol".to_string(),
            config_type: Some(listener_filter::ConfigType::TypedConfig(pack(
                &ProxyProtocol::default(),
            ))),
            ..Default::default()
        });
    }
    // The Gateway's access logs, on every connection manager and TCP proxy (Gloo's `als`
    // plugin for connection managers, its TCP plugin for TCP proxies).
    let access_logs = access_log::access_logs(model.spec.options.as_ref());
    let mut filter_chains = Vec::new();
    match &model.kind {
        ListenerKind::Http {
            ssl: false,
            virtual_hosts,
        } => {
            let hcm = http_connection_manager(
                model.spec.http_gateway.as_ref(),
                route_config_name(&model.name),
                virtual_hosts,
                &access_logs,
                &model.gateway,
                ctx,
                reports,
            );
            filter_chains.push(FilterChain {
                filters: vec![hcm_filter(&hcm)],
                ..Default::default()
            });
        }
        ListenerKind::Http {
            ssl: true,
            virtual_hosts,
        } => {
            listener_filters.push(tls_inspector());
            let hcm = http_connection_manager(
                model.spec.http_gateway.as_ref(),
                route_config_name(&model.name),
                virtual_hosts,
                &access_logs,
                &model.gateway,
                ctx,
                reports,
            );
            // One filter chain per certificate, selected by SNI; all share the listener's routes.
            // Settings' `gateway.virtualServiceOptions.oneWayTls` is the default of the
            // VirtualServices' own (Gloo's applyGlobalVirtualServiceSettings).
            let one_way_default = ctx
                .snapshot
                .settings
                .values()
                .find_map(|e| {
                    e.object
                        .spec
                        .gateway
                        .as_ref()?
                        .virtual_service_options
                        .as_ref()
                })
                .and_then(|o| o.one_way_tls);
            for host in virtual_hosts {
                let Some(ssl) = &host.ssl_config else {
                    continue;
                };
                let defaulted;
                let ssl = match one_way_default {
                    Some(default) if ssl.one_way_tls.is_none() => {
                        defaulted = SslConfig {
                            one_way_tls: Some(default),
                            ..ssl.clone()
                        };
                        &defaulted
                    }
                    _ => ssl,
                };
                let namespace = host.source.namespace_or(crate::model::DEFAULT_NAMESPACE);
                let Some(tls) = downstream_tls(ssl, namespace, ctx) else {
                    continue;
                };
                let server_names: Vec<String> = if ssl.sni_domains.is_empty() {
                    host.domains.iter().filter(|d| *d != "*").cloned().collect()
                } else {
                    ssl.sni_domains.clone()
                };
                filter_chains.push(FilterChain {
                    name: host.name.clone(),
                    filter_chain_match: Some(FilterChainMatch {
                        server_names,
                        ..Default::default()
                    }),
                    filters: vec![hcm_filter(&hcm)],
                    transport_socket: Some(TransportSocket {
                        name: "envoy.transport_sockets.tls".to_string(),
                        config_type: Some(
                            envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType::TypedConfig(pack(&tls)),
                        ),
                    }),
                    transport_socket_connect_timeout: ssl
                        .transport_socket_connect_timeout
                        .as_ref()
                        .map(duration),
                    ..Default::default()
                });
            }
        }
        ListenerKind::Tcp => {
            let gateway_ns = model.gateway.namespace_or(crate::model::DEFAULT_NAMESPACE);
            if let Some(tcp) = &model.spec.tcp_gateway {
                if super::tcp::needs_tls_inspector(&tcp.tcp_hosts) {
                    listener_filters.push(tls_inspector());
                }
                filter_chains.extend(super::tcp::filter_chains(
                    tcp,
                    None,
                    None,
                    gateway_ns,
                    &access_logs,
                    ctx,
                ));
            }
        }
        ListenerKind::Hybrid { chains } => {
            let gateway_ns = model.gateway.namespace_or(crate::model::DEFAULT_NAMESPACE);
            // Gloo's `includeTlsInspectorForHybridListener`: a chain whose matcher has an
            // `sslConfig`, or a TCP chain with a host matched by SNI or forwarding by it.
            if chains.iter().any(|c| {
                c.ssl.is_some()
                    || matches!(&c.kind, MatchedChainKind::Tcp(tcp)
                        if super::tcp::needs_tls_inspector(&tcp.tcp_hosts))
            }) {
                listener_filters.push(tls_inspector());
            }
            for chain in chains {
                let mut chain_match = FilterChainMatch {
                    source_prefix_ranges: chain
                        .source_prefix_ranges
                        .iter()
                        .map(|r| CidrRange {
                            address_prefix: r.address_prefix.clone(),
                            prefix_len: r.prefix_len.map(|value| UInt32Value { value }),
                        })
                        .collect(),
                    ..Default::default()
                };
                match &chain.kind {
                    MatchedChainKind::Http {
                        gateway,
                        virtual_hosts,
                    } => {
                        let mut transport_socket = None;
                        let transport_socket_connect_timeout = chain
                            .ssl
                            .as_ref()
                            .and_then(|ssl| ssl.transport_socket_connect_timeout.as_ref())
                            .map(duration);
                        if let Some(ssl) = &chain.ssl {
                            // Validation reports a certificate that cannot be read.
                            let Some(tls) = downstream_tls(ssl, gateway_ns, ctx) else {
                                continue;
                            };
                            chain_match.server_names = ssl.sni_domains.clone();
                            transport_socket = Some(tls_transport_socket(&tls));
                        }
                        let hcm = http_connection_manager(
                            Some(gateway),
                            format!("{}-routes-{}", model.name, chain.index),
                            virtual_hosts,
                            &access_logs,
                            &model.gateway,
                            ctx,
                            reports,
                        );
                        filter_chains.push(FilterChain {
                            name: format!("{}-{}", model.name, chain.index),
                            filter_chain_match: Some(chain_match),
                            filters: vec![hcm_filter(&hcm)],
                            transport_socket,
                            transport_socket_connect_timeout,
                            ..Default::default()
                        });
                    }
                    // Gloo's `tcpFilterChainTranslator`: each host's chain as on a TCP
                    // gateway, within the matcher's client address ranges; the matcher's
                    // `sslConfig` only lends its `sniDomains` to hosts that name none (it
                    // terminates nothing: a host terminates TLS with its own `sslConfig`).
                    MatchedChainKind::Tcp(tcp) => {
                        filter_chains.extend(super::tcp::filter_chains(
                            tcp,
                            chain.ssl.as_ref(),
                            Some(&chain_match),
                            gateway_ns,
                            &access_logs,
                            ctx,
                        ));
                    }
                }
            }
        }
    }
    Listener {
        name: model.name.clone(),
        address: Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: model.bind_address.clone(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(model.bind_port)),
                ipv4_compat: model.bind_address == "::",
                ..Default::default()
            })),
        }),
        listener_filters,
        filter_chains,
        ..Default::default()
    }
}
