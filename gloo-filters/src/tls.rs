//! rustls (ring) client configurations for the connections filters open themselves: `https`
//! calls, LDAP over `ldaps://`, TLS to a gRPC passthrough server.
//!
//! The system's CA certificates are read once per process (`SSL_CERT_FILE` / `SSL_CERT_DIR`
//! override them, as OpenSSL's do); a certificate rustls cannot use is skipped, as OpenSSL
//! skips it.

use std::sync::{Arc, OnceLock};

#[cfg(any(
    feature = "extauth-passthrough-grpc",
    all(feature = "extauth", feature = "https")
))]
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};

/// The system's CA certificates, read on first use.
pub(crate) fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            tracing::warn!(
                errors = ?found.errors,
                "no system CA certificates found: TLS connections will fail certificate checks"
            );
        }
        Arc::new(roots)
    }))
}

/// The CA certificates of a PEM bundle; an error when it holds none.
#[cfg(any(
    feature = "extauth-passthrough-grpc",
    all(feature = "extauth", feature = "https")
))]
pub(crate) fn pem_roots(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not PEM certificates: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("unusable CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no CA certificate in the PEM data".into());
    }
    Ok(roots)
}

/// A client certificate chain and its private key, from PEM.
#[cfg(any(
    feature = "extauth-passthrough-grpc",
    all(feature = "extauth", feature = "https")
))]
pub(crate) fn pem_identity(
    cert: &[u8],
    key: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the client certificate is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("no client certificate in the PEM data".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| format!("the client key is not PEM: {e}"))?;
    Ok((chain, key))
}

/// A client configuration trusting `roots`, offering `versions` (rustls' safe defaults,
/// TLS 1.2 and 1.3, when `None`) and presenting `identity` when given.
pub(crate) fn client_config(
    roots: Arc<RootCertStore>,
    versions: Option<&[&'static SupportedProtocolVersion]>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider);
    let builder = match versions {
        Some(versions) => builder.with_protocol_versions(versions),
        None => builder.with_safe_default_protocol_versions(),
    }
    .map_err(|e| format!("TLS configuration: {e}"))?
    .with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the client certificate and key: {e}")),
    }
}
