//! TLS with rustls: termination on listeners (the certificate chosen by SNI, as Envoy's
//! filter chain match does; client certificates when a CA is given) and origination to
//! upstreams.
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
    common_tls_context::ValidationContextType, CommonTlsContext, DownstreamTlsContext,
    UpstreamTlsContext,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
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

fn roots(common: &CommonTlsContext) -> Result<Option<RootCertStore>, String> {
    let ca = match &common.validation_context_type {
        Some(ValidationContextType::ValidationContext(v)) => v.trusted_ca.as_ref(),
        None => None,
        Some(_) => return Err("only inline validation contexts are supported".into()),
    };
    let Some(ca) = ca else { return Ok(None) };
    let mut store = RootCertStore::empty();
    for cert in certs(ca, "trusted CA")? {
        store.add(cert).map_err(|e| format!("trusted CA: {e}"))?;
    }
    Ok(Some(store))
}

fn alpn(common: &CommonTlsContext) -> Vec<Vec<u8>> {
    common
        .alpn_protocols
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect()
}

/// A server config for one filter chain.
fn server_config(ctx: &DownstreamTlsContext) -> Result<Arc<ServerConfig>, String> {
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
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match roots(common)? {
        Some(roots) => {
            let required = ctx
                .require_client_certificate
                .as_ref()
                .is_some_and(|b| b.value);
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            );
            let verifier = if required {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("certificate and key do not go together: {e}"))?;
    config.alpn_protocols = alpn(common);
    if config.alpn_protocols.is_empty() {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    Ok(Arc::new(config))
}

/// One TLS filter chain: the server names it serves and its config.
#[derive(Debug)]
struct Chain {
    server_names: Vec<String>,
    config: Arc<ServerConfig>,
}

/// TLS termination of a listener.
#[derive(Debug)]
pub struct DownstreamTls {
    chains: Vec<Chain>,
}

impl DownstreamTls {
    /// Compiles the TLS filter chains of a listener: (server names, TLS context) each.
    pub fn compile(chains: &[(Vec<String>, DownstreamTlsContext)]) -> Result<Self, String> {
        let chains = chains
            .iter()
            .enumerate()
            .map(|(i, (names, ctx))| {
                Ok(Chain {
                    server_names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
                    config: server_config(ctx).map_err(|e| format!("filter_chains[{i}]: {e}"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(DownstreamTls { chains })
    }

    /// The config for a client hello's SNI, chosen as Envoy matches filter chains: an exact
    /// server name, then the longest wildcard (`*.example.com`), then a chain without server
    /// names.
    pub fn select(&self, sni: Option<&str>) -> Option<Arc<ServerConfig>> {
        let sni = sni.map(str::to_ascii_lowercase);
        if let Some(name) = &sni {
            if let Some(c) = self
                .chains
                .iter()
                .find(|c| c.server_names.iter().any(|n| n == name))
            {
                return Some(c.config.clone());
            }
            let mut best: Option<(usize, &Chain)> = None;
            for c in &self.chains {
                for n in &c.server_names {
                    if let Some(suffix) = n.strip_prefix('*') {
                        if name.len() > suffix.len()
                            && name.ends_with(suffix)
                            && best.is_none_or(|(len, _)| suffix.len() > len)
                        {
                            best = Some((suffix.len(), c));
                        }
                    }
                }
            }
            if let Some((_, c)) = best {
                return Some(c.config.clone());
            }
        }
        self.chains
            .iter()
            .find(|c| c.server_names.is_empty())
            .map(|c| c.config.clone())
    }
}

/// Accepts any server certificate: Envoy's behaviour for an upstream TLS context without a
/// trusted CA (encryption without authentication, as the config asked).
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
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
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match roots(common)? {
            Some(roots) => builder.with_root_certificates(roots),
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider()))),
        };
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
