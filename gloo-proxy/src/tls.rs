//! TLS with rustls: termination on listeners (the certificate chosen by SNI, as Envoy's
//! filter chain match does; client certificates when a CA is given) and origination to
//! upstreams, each with its context's `tls_params` (protocol versions, TLS 1.2 cipher suites
//! and curves by their BoringSSL names) and SAN matchers.
//!
//! As in Envoy, a peer's certificate is verified against the context's trusted CA, and its
//! names only against the SAN matchers (Gloo's `verifySubjectAltName`), never against the SNI.
//! rustls speaks TLS 1.2 and 1.3 only: a minimum version below 1.2 allows 1.2 and up, and
//! cipher suites it does not have (CBC modes, RSA key exchange) are left out of a list.
//!
//! ```
//! use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
//!     CommonTlsContext, DownstreamTlsContext, UpstreamTlsContext,
//! };
//! use gloo_proxy::tls::{DownstreamTls, UpstreamTls};
//!
//! # fn main() -> Result<(), String> {
//! // Origination as a cluster's `transport_socket` asks: SNI and ALPN. Without a trusted CA
//! // the server certificate is not verified, as in Envoy.
//! let upstream = UpstreamTls::compile(&UpstreamTlsContext {
//!     sni: "api.example.com".into(),
//!     common_tls_context: Some(CommonTlsContext {
//!         alpn_protocols: vec!["h2".into()],
//!         ..Default::default()
//!     }),
//!     ..Default::default()
//! })?;
//! assert_eq!(upstream.sni.as_ref().map(|name| name.to_str()), Some("api.example.com".into()));
//! assert_eq!(upstream.config.alpn_protocols, [b"h2".to_vec()]);
//!
//! // What cannot be served is refused, naming the filter chain at fault.
//! let refused = DownstreamTls::compile(&[(
//!     vec!["shop.example.com".to_string()],
//!     DownstreamTlsContext::default(),
//! )])
//! .expect_err("a listener's TLS needs a certificate");
//! assert!(refused.starts_with("filter_chains[0]: "), "{refused}");
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{data_source::Specifier, DataSource};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, subject_alt_name_matcher::SanType,
    tls_parameters::TlsProtocol, CertificateValidationContext, CommonTlsContext,
    DownstreamTlsContext, UpstreamTlsContext,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::ring::cipher_suite as suite;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, NamedGroup,
    RootCertStore, ServerConfig, SignatureScheme, SupportedCipherSuite, SupportedProtocolVersion,
};

use crate::router::matcher::StringMatchCase;

/// What a context's `tls_params` allow: protocol versions, and a provider with only the
/// cipher suites and key exchange groups they name (rustls's defaults when they name none).
struct Allowed {
    versions: Vec<&'static SupportedProtocolVersion>,
    provider: Arc<CryptoProvider>,
}

/// A TLS 1.2 cipher suite by its OpenSSL / BoringSSL name, as Envoy's `cipher_suites` lists
/// them; `Ok(None)` for a name BoringSSL knows that rustls does not serve (CBC modes, RSA key
/// exchange, PSK) or a TLS 1.3 suite (not configurable, as in Envoy).
fn tls12_suite(name: &str) -> Result<Option<SupportedCipherSuite>, String> {
    Ok(Some(match name {
        "ECDHE-ECDSA-AES128-GCM-SHA256" => suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-ECDSA-AES256-GCM-SHA384" => suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-CHACHA20-POLY1305" => suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-RSA-AES128-GCM-SHA256" => suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-AES256-GCM-SHA384" => suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-CHACHA20-POLY1305" => suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-ECDSA-AES128-SHA"
        | "ECDHE-RSA-AES128-SHA"
        | "ECDHE-ECDSA-AES256-SHA"
        | "ECDHE-RSA-AES256-SHA"
        | "AES128-GCM-SHA256"
        | "AES256-GCM-SHA384"
        | "AES128-SHA"
        | "AES256-SHA"
        | "DES-CBC3-SHA"
        | "ECDHE-PSK-CHACHA20-POLY1305"
        | "ECDHE-PSK-AES128-CBC-SHA"
        | "ECDHE-PSK-AES256-CBC-SHA"
        | "PSK-AES128-CBC-SHA"
        | "PSK-AES256-CBC-SHA"
        | "TLS_AES_128_GCM_SHA256"
        | "TLS_AES_256_GCM_SHA384"
        | "TLS_CHACHA20_POLY1305_SHA256" => return Ok(None),
        _ => {
            return Err(format!(
                "tls_params.cipher_suites: unknown cipher suite {name:?}"
            ))
        }
    }))
}

/// A key exchange group by the names BoringSSL's curve lists take; `Ok(None)` for one rustls
/// (with ring) does not offer.
fn kx_group(name: &str) -> Result<Option<NamedGroup>, String> {
    Ok(Some(match name {
        "X25519" => NamedGroup::X25519,
        "P-256" | "prime256v1" | "secp256r1" => NamedGroup::secp256r1,
        "P-384" | "secp384r1" => NamedGroup::secp384r1,
        "P-521" | "secp521r1" | "X25519MLKEM768" | "X25519Kyber768Draft00" => return Ok(None),
        _ => return Err(format!("tls_params.ecdh_curves: unknown curve {name:?}")),
    }))
}

/// The protocol versions, cipher suites and curves a context's `tls_params` allow. rustls
/// speaks TLS 1.2 and 1.3, so a minimum below 1.2 allows 1.2 and up.
fn allowed(common: &CommonTlsContext) -> Result<Allowed, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    let Some(params) = &common.tls_params else {
        return Ok(Allowed {
            versions: rustls::DEFAULT_VERSIONS.to_vec(),
            provider: Arc::new(provider),
        });
    };
    let version = |v: i32, field: &str| {
        TlsProtocol::try_from(v).map_err(|_| format!("tls_params.{field}: unknown version {v}"))
    };
    let min = version(
        params.tls_minimum_protocol_version,
        "tls_minimum_protocol_version",
    )?;
    let max = version(
        params.tls_maximum_protocol_version,
        "tls_maximum_protocol_version",
    )?;
    if matches!(max, TlsProtocol::TlSv10 | TlsProtocol::TlSv11) {
        return Err(format!(
            "tls_params.tls_maximum_protocol_version: {}: gloo-proxy speaks TLS 1.2 and 1.3 only",
            max.as_str_name()
        ));
    }
    let tls13 = matches!(max, TlsProtocol::TlsAuto | TlsProtocol::TlSv13);
    let tls12 = min != TlsProtocol::TlSv13;
    if !tls12 && !tls13 {
        return Err("tls_params: the minimum protocol version is above the maximum".into());
    }
    if !params.cipher_suites.is_empty() {
        let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
        // Entries may hold several names: `A:B`, and BoringSSL's equal-preference groups
        // `[A|B]` (kept in their listed order).
        let names = params
            .cipher_suites
            .iter()
            .flat_map(|entry| entry.split([':', '|', '[', ']']))
            .map(str::trim)
            .filter(|name| !name.is_empty());
        for name in names {
            if let Some(s) = tls12_suite(name)? {
                if !chosen.contains(&s) {
                    chosen.push(s);
                }
            }
        }
        if chosen.is_empty() && !tls13 {
            return Err(format!(
                "tls_params.cipher_suites: none of {:?} is a TLS 1.2 suite gloo-proxy serves \
                 (ECDHE with AES-GCM or ChaCha20-Poly1305)",
                params.cipher_suites
            ));
        }
        provider
            .cipher_suites
            .retain(|s| matches!(s, SupportedCipherSuite::Tls13(_)));
        provider.cipher_suites.extend(chosen);
    }
    if !params.ecdh_curves.is_empty() {
        let offered = std::mem::take(&mut provider.kx_groups);
        let names = params
            .ecdh_curves
            .iter()
            .flat_map(|entry| entry.split(':'))
            .map(str::trim)
            .filter(|name| !name.is_empty());
        for name in names {
            let Some(group) = kx_group(name)? else {
                continue;
            };
            if let Some(g) = offered.iter().find(|g| g.name() == group) {
                if !provider.kx_groups.iter().any(|k| k.name() == group) {
                    provider.kx_groups.push(*g);
                }
            }
        }
        if provider.kx_groups.is_empty() {
            return Err(format!(
                "tls_params.ecdh_curves: none of {:?} is a curve gloo-proxy offers (X25519, P-256, P-384)",
                params.ecdh_curves
            ));
        }
    }
    let mut versions = Vec::new();
    if tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if tls12 {
        versions.push(&rustls::version::TLS12);
    }
    Ok(Allowed {
        versions,
        provider: Arc::new(provider),
    })
}

/// The names a peer's certificate must carry one of (Envoy's SAN matchers); none: any name.
#[derive(Debug, Clone, Default)]
struct SubjectAltNames(Vec<(Option<SanType>, StringMatchCase)>);

impl SubjectAltNames {
    fn compile(v: &CertificateValidationContext) -> Result<Self, String> {
        let mut out = Vec::new();
        for (i, m) in v.match_typed_subject_alt_names.iter().enumerate() {
            let at = format!("match_typed_subject_alt_names[{i}]");
            let san_type = match SanType::try_from(m.san_type) {
                Ok(t @ (SanType::Dns | SanType::Uri | SanType::Email | SanType::IpAddress)) => t,
                _ => {
                    return Err(format!(
                        "{at}.san_type: only DNS, URI, EMAIL and IP_ADDRESS are supported"
                    ))
                }
            };
            let matcher = m
                .matcher
                .as_ref()
                .ok_or(format!("{at}.matcher: required"))?;
            let matcher = StringMatchCase::compile(matcher, &at).map_err(|e| e.to_string())?;
            out.push((Some(san_type), matcher));
        }
        // Deprecated in Envoy's API but still honoured: a matcher of any SAN type.
        #[allow(deprecated)]
        for (i, m) in v.match_subject_alt_names.iter().enumerate() {
            let at = format!("match_subject_alt_names[{i}]");
            let matcher = StringMatchCase::compile(m, &at).map_err(|e| e.to_string())?;
            out.push((None, matcher));
        }
        Ok(SubjectAltNames(out))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the certificate carries a subject alternative name a matcher accepts.
    fn accept(&self, cert: &CertificateDer<'_>) -> bool {
        use x509_parser::extensions::GeneralName;
        let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
            return false;
        };
        let Ok(Some(sans)) = parsed.subject_alternative_name() else {
            return false;
        };
        for name in &sans.value.general_names {
            let (kind, value) = match name {
                GeneralName::DNSName(n) => (SanType::Dns, n.to_string()),
                GeneralName::URI(u) => (SanType::Uri, u.to_string()),
                GeneralName::RFC822Name(e) => (SanType::Email, e.to_string()),
                GeneralName::IPAddress(bytes) => match ip_text(bytes) {
                    Some(ip) => (SanType::IpAddress, ip),
                    None => continue,
                },
                _ => continue,
            };
            let accepted = self.0.iter().any(|(want, matcher)| {
                want.is_none_or(|w| w == kind)
                    && if kind == SanType::Dns {
                        dns_name_match(matcher, &value)
                    } else {
                        matcher.matches(&value)
                    }
            });
            if accepted {
                return true;
            }
        }
        false
    }
}

/// An IP address SAN's text, as Envoy writes it.
fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// Envoy's DNS SAN match: an exact matcher compares without case and accepts a wildcard SAN
/// (`*.example.com`) for a name exactly one label below it; other matchers match the text.
fn dns_name_match(matcher: &StringMatchCase, san: &str) -> bool {
    let Some(want) = matcher.exact_value() else {
        return matcher.matches(san);
    };
    if want.eq_ignore_ascii_case(san) {
        return true;
    }
    let Some(suffix) = san.strip_prefix('*') else {
        return false;
    };
    suffix.starts_with('.')
        && want.len() > suffix.len()
        && want
            .get(want.len() - suffix.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
        && !want[..want.len() - suffix.len()].contains('.')
}

/// Envoy's check of an upstream's certificate: against a trusted CA, the chain, then the SAN
/// matchers if there are any. As in Envoy, the certificate's names are not compared with the
/// SNI (pin them with SAN matchers, Gloo's `verifySubjectAltName`). Without a trusted CA any
/// certificate is accepted (encryption without authentication, as the config asked); the
/// handshake's signatures are checked either way.
#[derive(Debug)]
struct VerifyServer {
    roots: Option<Arc<RootCertStore>>,
    names: SubjectAltNames,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for VerifyServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        if self.names.is_empty() || self.names.accept(end_entity) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client certificate checked as the CA's verifier checks it, then against the SAN matchers.
#[derive(Debug)]
struct VerifyClientNames {
    chain: Arc<dyn ClientCertVerifier>,
    names: SubjectAltNames,
}

impl ClientCertVerifier for VerifyClientNames {
    fn offer_client_auth(&self) -> bool {
        self.chain.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.chain.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .chain
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.names.accept(end_entity) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// The bytes of a `DataSource` (inline, or a file local to the proxy).
fn data(ds: &DataSource, what: &str) -> Result<Vec<u8>, String> {
    match &ds.specifier {
        Some(Specifier::InlineString(s)) => Ok(s.as_bytes().to_vec()),
        Some(Specifier::InlineBytes(b)) => Ok(b.clone()),
        Some(Specifier::Filename(f)) => {
            std::fs::read(f).map_err(|e| format!("cannot read {what} {f}: {e}"))
        }
        Some(Specifier::EnvironmentVariable(v)) => std::env::var(v)
            .map(String::into_bytes)
            .map_err(|_| format!("{what}: environment variable {v} is not set")),
        None => Err(format!("{what} is empty")),
    }
}

fn certs(ds: &DataSource, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = data(ds, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no certificate in it"));
    }
    Ok(certs)
}

fn key(ds: &DataSource) -> Result<PrivateKeyDer<'static>, String> {
    let pem = data(ds, "private key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("private key: {e}"))
}

/// The trusted CA of a context's validation context, and the names a peer's certificate must
/// carry (SAN matchers need a CA, as Envoy requires).
fn roots(common: &CommonTlsContext) -> Result<Option<(RootCertStore, SubjectAltNames)>, String> {
    let validation = match &common.validation_context_type {
        Some(ValidationContextType::ValidationContext(v)) => v,
        None => return Ok(None),
        Some(_) => return Err("only inline validation contexts are supported".into()),
    };
    let names =
        SubjectAltNames::compile(validation).map_err(|e| format!("validation_context.{e}"))?;
    let Some(ca) = validation.trusted_ca.as_ref() else {
        if names.is_empty() {
            return Ok(None);
        }
        return Err(
            "validation_context: checking subject alt names needs a trusted_ca to verify the certificate against"
                .into(),
        );
    };
    let mut store = RootCertStore::empty();
    for cert in certs(ca, "trusted CA")? {
        store.add(cert).map_err(|e| format!("trusted CA: {e}"))?;
    }
    Ok(Some((store, names)))
}

fn alpn(common: &CommonTlsContext) -> Vec<Vec<u8>> {
    common
        .alpn_protocols
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect()
}

/// The URI SANs of the certificate a downstream TLS context serves (none when it cannot be
/// read: the config itself reports that).
fn served_uri_sans(ctx: &DownstreamTlsContext) -> Vec<String> {
    ctx.common_tls_context
        .as_ref()
        .and_then(|c| c.tls_certificates.first())
        .and_then(|cert| cert.certificate_chain.as_ref())
        .and_then(|chain| certs(chain, "certificate chain").ok())
        .and_then(|chain| chain.first().map(crate::xfcc::uri_sans))
        .unwrap_or_default()
}

/// A server config for one filter chain.
pub(crate) fn server_config(ctx: &DownstreamTlsContext) -> Result<Arc<ServerConfig>, String> {
    let common = ctx
        .common_tls_context
        .as_ref()
        .ok_or("a downstream TLS context needs a common TLS context")?;
    let cert = common
        .tls_certificates
        .first()
        .ok_or("a downstream TLS context needs a certificate")?;
    let chain = certs(
        cert.certificate_chain
            .as_ref()
            .ok_or("the certificate has no chain")?,
        "certificate chain",
    )?;
    let key = key(cert
        .private_key
        .as_ref()
        .ok_or("the certificate has no key")?)?;
    let allowed = allowed(common)?;
    let builder = ServerConfig::builder_with_provider(allowed.provider.clone())
        .with_protocol_versions(&allowed.versions)
        .map_err(|e| format!("tls_params: {e}"))?;
    let builder = match roots(common)? {
        Some((roots, names)) => {
            let required = ctx
                .require_client_certificate
                .as_ref()
                .is_some_and(|b| b.value);
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                allowed.provider.clone(),
            );
            let verifier = if required {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let chain = verifier.build().map_err(|e| e.to_string())?;
            if names.is_empty() {
                builder.with_client_cert_verifier(chain)
            } else {
                builder.with_client_cert_verifier(Arc::new(VerifyClientNames { chain, names }))
            }
        }
        None => builder.with_no_client_auth(),
    };
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::downstream_tls_context::{
        OcspStaplePolicy, SessionTicketKeysType,
    };
    // Only lenient stapling: the stricter policies act on a response's validity period, which
    // gloo-proxy does not read.
    match OcspStaplePolicy::try_from(ctx.ocsp_staple_policy) {
        Ok(OcspStaplePolicy::LenientStapling) => {}
        Ok(policy) => {
            return Err(format!(
                "ocsp_staple_policy {}: not supported (only LENIENT_STAPLING)",
                policy.as_str_name()
            ))
        }
        Err(_) => {
            return Err(format!(
                "ocsp_staple_policy: unknown {}",
                ctx.ocsp_staple_policy
            ))
        }
    }
    let ocsp = match &cert.ocsp_staple {
        Some(ds) => data(ds, "OCSP staple")?,
        None => Vec::new(),
    };
    let mut config = builder
        .with_single_cert_with_ocsp(chain, key, ocsp)
        .map_err(|e| format!("certificate and key do not go together: {e}"))?;
    // Resumption: session IDs and TLS 1.3 tickets both refer to the server's session cache
    // (rustls issues no stateless tickets, so disabling those changes nothing).
    match &ctx.session_ticket_keys_type {
        None | Some(SessionTicketKeysType::DisableStatelessSessionResumption(_)) => {}
        Some(_) => return Err("session_ticket_keys: not supported".into()),
    }
    if ctx.disable_stateful_session_resumption {
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    }
    // As in Envoy, none listed means no ALPN (gloo-core lists `h2` and `http/1.1` unless the
    // sslConfig asks for `allow_empty`).
    config.alpn_protocols = alpn(common);
    Ok(Arc::new(config))
}

/// One TLS filter chain: the server names it serves, its config and what its certificate
/// says of the proxy.
#[derive(Debug)]
pub struct ServerChain {
    server_names: Vec<String>,
    /// The rustls config a connection that chose this chain is served with.
    pub config: Arc<ServerConfig>,
    /// The URI SANs of the chain's certificate (`x-forwarded-client-cert`'s `By`).
    pub uri_sans: Arc<[String]>,
}

/// TLS termination of a listener.
#[derive(Debug)]
pub struct DownstreamTls {
    chains: Vec<ServerChain>,
}

impl DownstreamTls {
    /// Compiles the TLS filter chains of a listener: (server names, TLS context) each.
    pub fn compile(chains: &[(Vec<String>, DownstreamTlsContext)]) -> Result<Self, String> {
        let chains = chains
            .iter()
            .enumerate()
            .map(|(i, (names, ctx))| {
                let config = server_config(ctx).map_err(|e| format!("filter_chains[{i}]: {e}"))?;
                Ok(ServerChain {
                    server_names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
                    uri_sans: served_uri_sans(ctx).into(),
                    config,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(DownstreamTls { chains })
    }

    /// The config for a client hello's SNI, chosen as Envoy matches filter chains: an exact
    /// server name, then the longest wildcard (`*.example.com`), then a chain without server
    /// names.
    pub fn select(&self, sni: Option<&str>) -> Option<&ServerChain> {
        server_name_matches(&self.chains, |c| &c.server_names, sni)
            .first()
            .copied()
    }
}

/// The filter chains a client hello's SNI matches at the most specific level, as Envoy
/// matches them: those naming it exactly, else those with the longest wildcard
/// (`*.example.com`) that covers it, else those without server names. `names` gives a chain's
/// server names, in lower case.
pub(crate) fn server_name_matches<'a, T>(
    chains: &'a [T],
    names: impl Fn(&T) -> &[String],
    sni: Option<&str>,
) -> Vec<&'a T> {
    if let Some(name) = sni.map(str::to_ascii_lowercase) {
        let exact: Vec<&T> = chains.iter().filter(|c| names(c).contains(&name)).collect();
        if !exact.is_empty() {
            return exact;
        }
        let covering = |c: &T| {
            names(c)
                .iter()
                .filter_map(|n| n.strip_prefix('*'))
                .filter(|suffix| name.len() > suffix.len() && name.ends_with(suffix))
                .map(str::len)
                .max()
        };
        if let Some(longest) = chains.iter().filter_map(covering).max() {
            return chains
                .iter()
                .filter(|c| covering(c) == Some(longest))
                .collect();
        }
    }
    chains.iter().filter(|c| names(c).is_empty()).collect()
}

/// TLS origination to a cluster's endpoints.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    /// The client config.
    pub config: Arc<ClientConfig>,
    /// The SNI to send (none: the endpoint's address, which sends no SNI).
    pub sni: Option<ServerName<'static>>,
}

impl UpstreamTls {
    /// Compiles an upstream TLS context.
    pub fn compile(ctx: &UpstreamTlsContext) -> Result<Self, String> {
        let default_common = CommonTlsContext::default();
        let common = ctx.common_tls_context.as_ref().unwrap_or(&default_common);
        let allowed = allowed(common)?;
        let builder = ClientConfig::builder_with_provider(allowed.provider.clone())
            .with_protocol_versions(&allowed.versions)
            .map_err(|e| format!("tls_params: {e}"))?;
        let (roots, names) = match roots(common)? {
            Some((roots, names)) => (Some(Arc::new(roots)), names),
            None => (None, SubjectAltNames::default()),
        };
        let verifier = Arc::new(VerifyServer {
            roots,
            names,
            provider: allowed.provider.clone(),
        });
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match common.tls_certificates.first() {
            Some(cert) => {
                let chain = certs(
                    cert.certificate_chain
                        .as_ref()
                        .ok_or("the client certificate has no chain")?,
                    "client certificate chain",
                )?;
                let key = key(cert
                    .private_key
                    .as_ref()
                    .ok_or("the client certificate has no key")?)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("client certificate: {e}"))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn(common);
        let sni = if ctx.sni.is_empty() {
            None
        } else {
            Some(
                ServerName::try_from(ctx.sni.clone())
                    .map_err(|e| format!("invalid sni {:?}: {e}", ctx.sni))?,
            )
        };
        Ok(UpstreamTls {
            config: Arc::new(config),
            sni,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::TlsParameters;
    use envoy_types::pb::envoy::r#type::matcher::v3::{
        string_matcher::MatchPattern, StringMatcher,
    };

    fn with_params(params: TlsParameters) -> CommonTlsContext {
        CommonTlsContext {
            tls_params: Some(params),
            ..Default::default()
        }
    }

    fn versions(a: &Allowed) -> Vec<rustls::ProtocolVersion> {
        a.versions.iter().map(|v| v.version).collect()
    }

    #[test]
    fn versions_follow_the_minimum_and_maximum() {
        use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
        let case = |min: TlsProtocol, max: TlsProtocol| {
            allowed(&with_params(TlsParameters {
                tls_minimum_protocol_version: min as i32,
                tls_maximum_protocol_version: max as i32,
                ..Default::default()
            }))
            .map(|a| versions(&a))
        };
        let default = allowed(&CommonTlsContext::default()).expect("defaults");
        assert_eq!(versions(&default), [TLSv1_3, TLSv1_2]);
        assert_eq!(
            case(TlsProtocol::TlsAuto, TlsProtocol::TlsAuto),
            Ok(vec![TLSv1_3, TLSv1_2])
        );
        assert_eq!(
            case(TlsProtocol::TlSv13, TlsProtocol::TlsAuto),
            Ok(vec![TLSv1_3])
        );
        assert_eq!(
            case(TlsProtocol::TlSv10, TlsProtocol::TlSv12),
            Ok(vec![TLSv1_2])
        );
        let refused = case(TlsProtocol::TlSv10, TlsProtocol::TlSv11).expect_err("no TLS 1.1");
        assert!(
            refused.contains("TLSv1_1: gloo-proxy speaks TLS 1.2 and 1.3 only"),
            "{refused}"
        );
        let refused = case(TlsProtocol::TlSv13, TlsProtocol::TlSv12).expect_err("empty range");
        assert!(refused.contains("above the maximum"), "{refused}");
    }

    #[test]
    fn cipher_suites_and_curves_are_read_by_their_boringssl_names() {
        let a = allowed(&with_params(TlsParameters {
            cipher_suites: vec![
                "[ECDHE-ECDSA-CHACHA20-POLY1305|ECDHE-ECDSA-AES128-GCM-SHA256]".into(),
                "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA".into(),
            ],
            ecdh_curves: vec!["P-256".into(), "X25519".into(), "P-521".into()],
            ..Default::default()
        }))
        .expect("allowed");
        let tls12: Vec<_> = a
            .provider
            .cipher_suites
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls12(_)))
            .map(|s| s.suite())
            .collect();
        assert_eq!(
            tls12,
            [
                suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256.suite(),
                suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256.suite(),
                suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.suite(),
            ]
        );
        // TLS 1.3's suites are not configurable, as in Envoy.
        let tls13 = a
            .provider
            .cipher_suites
            .iter()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
            .count();
        assert_eq!(tls13, 3);
        let groups: Vec<_> = a.provider.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(groups, [NamedGroup::secp256r1, NamedGroup::X25519]);

        let refuse = |params: TlsParameters| match allowed(&with_params(params)) {
            Ok(_) => panic!("allowed"),
            Err(e) => e,
        };
        let unknown = refuse(TlsParameters {
            cipher_suites: vec!["ECDHE+AESGCM".into()],
            ..Default::default()
        });
        assert!(
            unknown.contains("unknown cipher suite \"ECDHE+AESGCM\""),
            "{unknown}"
        );
        let only_cbc = refuse(TlsParameters {
            tls_maximum_protocol_version: TlsProtocol::TlSv12 as i32,
            cipher_suites: vec!["ECDHE-RSA-AES128-SHA".into()],
            ..Default::default()
        });
        assert!(
            only_cbc.contains("is a TLS 1.2 suite gloo-proxy serves"),
            "{only_cbc}"
        );
        let curve = refuse(TlsParameters {
            ecdh_curves: vec!["P-999".into()],
            ..Default::default()
        });
        assert!(curve.contains("unknown curve \"P-999\""), "{curve}");
        let none = refuse(TlsParameters {
            ecdh_curves: vec!["P-521".into()],
            ..Default::default()
        });
        assert!(none.contains("none of [\"P-521\"]"), "{none}");
    }

    fn exact(value: &str, ignore_case: bool) -> StringMatchCase {
        let m = StringMatcher {
            match_pattern: Some(MatchPattern::Exact(value.into())),
            ignore_case,
        };
        StringMatchCase::compile(&m, "test").expect("matcher")
    }

    #[test]
    fn dns_names_match_as_envoy_matches_them() {
        let want = exact("api.example.com", false);
        assert!(dns_name_match(&want, "api.example.com"));
        assert!(
            dns_name_match(&want, "API.example.COM"),
            "DNS names ignore case"
        );
        assert!(
            dns_name_match(&want, "*.example.com"),
            "one label under a wildcard"
        );
        assert!(!dns_name_match(&want, "*.com"), "not two labels");
        assert!(!dns_name_match(&want, "*.other.com"));
        assert!(!dns_name_match(&want, "other.example.com"));
        let bare = exact("example.com", false);
        assert!(
            !dns_name_match(&bare, "*.example.com"),
            "a wildcard needs a label"
        );
    }

    #[test]
    fn subject_alt_names_need_a_trusted_ca() {
        use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::SubjectAltNameMatcher;
        let common = CommonTlsContext {
            validation_context_type: Some(ValidationContextType::ValidationContext(
                CertificateValidationContext {
                    match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
                        san_type: SanType::Uri as i32,
                        matcher: Some(StringMatcher {
                            match_pattern: Some(MatchPattern::Exact("spiffe://a/b".into())),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let refused = UpstreamTls::compile(&UpstreamTlsContext {
            common_tls_context: Some(common),
            ..Default::default()
        })
        .expect_err("SAN matchers without a CA");
        assert!(refused.contains("needs a trusted_ca"), "{refused}");
    }

    /// A self-signed certificate and key made by `openssl`, as inline data sources.
    fn self_signed() -> (DataSource, DataSource) {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=t.example"])
            .args(["-keyout", "t.key", "-out", "t.crt"])
            .current_dir(dir.path())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let inline = |file: &str| DataSource {
            specifier: Some(Specifier::InlineBytes(
                std::fs::read(dir.path().join(file)).expect("read"),
            )),
            ..Default::default()
        };
        (inline("t.crt"), inline("t.key"))
    }

    #[test]
    fn stapling_and_resumption_follow_the_downstream_context() {
        use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::downstream_tls_context::OcspStaplePolicy;
        use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::TlsCertificate;
        let (chain, key) = self_signed();
        let context = |policy: OcspStaplePolicy, stateful_off: bool| DownstreamTlsContext {
            common_tls_context: Some(CommonTlsContext {
                tls_certificates: vec![TlsCertificate {
                    certificate_chain: Some(chain.clone()),
                    private_key: Some(key.clone()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ocsp_staple_policy: policy as i32,
            disable_stateful_session_resumption: stateful_off,
            ..Default::default()
        };
        let on =
            server_config(&context(OcspStaplePolicy::LenientStapling, false)).expect("lenient");
        assert!(
            on.session_storage.can_cache(),
            "sessions are kept for resumption"
        );
        let off = server_config(&context(OcspStaplePolicy::LenientStapling, true)).expect("off");
        assert!(
            !off.session_storage.can_cache(),
            "disable_stateful_session_resumption"
        );
        for policy in [
            OcspStaplePolicy::StrictStapling,
            OcspStaplePolicy::MustStaple,
        ] {
            let refused = server_config(&context(policy, false)).expect_err("not supported");
            assert!(refused.contains(policy.as_str_name()), "{refused}");
        }
    }
}
