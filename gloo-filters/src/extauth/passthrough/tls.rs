//! The client TLS of a passthrough step: `tlsConfig` (simple TLS, the system's CA
//! certificates) or `passthroughInternal`'s `tlsConfigData` (the Secret's CA and client
//! certificate).

use std::sync::Arc;

use base64::Engine;
use rustls::{ClientConfig, SupportedProtocolVersion};

use super::super::config::{PassThroughTlsConfig, SslParameters, TlsProtocolVersion};
use super::super::error::ConfigError;

pub(crate) use super::TlsData;

/// The step's client TLS configuration (`alpn` offered), or `None` for a plain connection.
/// `data` (from `passthroughInternal`) carries the material; `tls_config` alone asks for
/// simple TLS trusting the system's CA certificates. A `secretRef` nobody resolved is
/// refused.
pub(super) fn client_config(
    at: &str,
    tls_config: Option<&PassThroughTlsConfig>,
    data: Option<TlsData<'_>>,
    alpn: &[&[u8]],
) -> Result<Option<Arc<ClientConfig>>, ConfigError> {
    let (at_data, data) = match data {
        Some((at_data, data)) => (at_data.to_owned(), Some(data)),
        None => (String::new(), None),
    };
    if data.is_none() {
        if let Some(secret) = tls_config.and_then(|t| t.secret_ref.as_ref()) {
            if !secret.is_null() {
                return Err(ConfigError::new(
                    format!("{at}.tlsConfig.secretRef"),
                    "the Secret must be resolved: send this step as `passthroughInternal` with `tlsConfigData`",
                ));
            }
        }
    }
    if tls_config.is_none() && data.is_none() {
        return Ok(None);
    }
    let pem = |field: &str, value: &str| -> Result<Option<Vec<u8>>, ConfigError> {
        decode_pem(value).map_err(|e| ConfigError::new(format!("{at_data}.{field}"), e))
    };
    let (roots, identity) = match data {
        None => (crate::tls::system_roots(), None),
        Some(data) => {
            let roots = match pem("rootCaPem", &data.root_ca_pem)? {
                None => crate::tls::system_roots(),
                Some(ca) => Arc::new(
                    crate::tls::pem_roots(&ca)
                        .map_err(|e| ConfigError::new(format!("{at_data}.rootCaPem"), e))?,
                ),
            };
            let identity = match (
                pem("certPem", &data.cert_pem)?,
                pem("keyPem", &data.key_pem)?,
            ) {
                (None, None) => None,
                (Some(cert), Some(key)) => Some(
                    crate::tls::pem_identity(&cert, &key)
                        .map_err(|e| ConfigError::new(format!("{at_data}.certPem"), e))?,
                ),
                (Some(_), None) => {
                    return Err(ConfigError::new(
                        format!("{at_data}.keyPem"),
                        "required with certPem",
                    ))
                }
                (None, Some(_)) => {
                    return Err(ConfigError::new(
                        format!("{at_data}.certPem"),
                        "required with keyPem",
                    ))
                }
            };
            (roots, identity)
        }
    };
    // The Secret's parameters win over the (masked) user config's.
    let params = data
        .and_then(|d| d.ssl_params)
        .or_else(|| tls_config.and_then(|t| t.ssl_params));
    let versions = versions(at, params)?;
    let mut config = crate::tls::client_config(roots, Some(&versions), identity)
        .map_err(|e| ConfigError::new(format!("{at}.tlsConfig"), e))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Some(Arc::new(config)))
}

/// Gloo's environment variable for the CA of `https` HTTP passthrough servers: base64 of a
/// PEM bundle (plain PEM is read too).
#[cfg(feature = "https")]
pub(super) const HTTPS_PASSTHROUGH_CA_CERT: &str = "HTTPS_PASSTHROUGH_CA_CERT";

/// A client configuration trusting the CA of [`HTTPS_PASSTHROUGH_CA_CERT`] (instead of the
/// system's), or `None` when it is not set. Read when the step is built.
#[cfg(feature = "https")]
pub(super) fn env_ca_config(at: &str) -> Result<Option<Arc<ClientConfig>>, ConfigError> {
    let Some(value) = std::env::var_os(HTTPS_PASSTHROUGH_CA_CERT) else {
        return Ok(None);
    };
    let error = |e: String| {
        ConfigError::new(
            format!("{at}.url"),
            format!("the {HTTPS_PASSTHROUGH_CA_CERT} environment variable: {e}"),
        )
    };
    let Some(pem) = decode_pem(&value.to_string_lossy()).map_err(error)? else {
        return Ok(None);
    };
    let roots = crate::tls::pem_roots(&pem).map_err(error)?;
    let config = crate::tls::client_config(Arc::new(roots), None, None).map_err(error)?;
    Ok(Some(Arc::new(config)))
}

/// A PEM field: base64 of PEM as Gloo sends it, or PEM itself; `None` when empty.
fn decode_pem(value: &str) -> Result<Option<Vec<u8>>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.starts_with("-----BEGIN") {
        return Ok(Some(value.as_bytes().to_vec()));
    }
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .map(Some)
        .map_err(|e| format!("neither PEM nor base64 of PEM: {e}"))
}

/// The TLS versions `params` allow, of the two rustls speaks (1.2 and 1.3): a minimum of
/// TLS 1.1 offers TLS 1.2 up; a maximum below TLS 1.2, or a minimum above the maximum, is
/// refused.
fn versions(
    at: &str,
    params: Option<SslParameters>,
) -> Result<Vec<&'static SupportedProtocolVersion>, ConfigError> {
    let params = params.unwrap_or_default();
    let rank = |v: TlsProtocolVersion, default: u8| match v {
        TlsProtocolVersion::Auto => default,
        TlsProtocolVersion::V1_1 => 1,
        TlsProtocolVersion::V1_2 => 2,
        TlsProtocolVersion::V1_3 => 3,
    };
    let min = rank(params.minimum_protocol_version, 2);
    let max = rank(params.maximum_protocol_version, 3);
    let at = format!("{at}.tlsConfig.sslParams");
    if max < 2 {
        return Err(ConfigError::new(
            format!("{at}.maximumProtocolVersion"),
            "TLS 1.1 and older are not supported (rustls speaks TLS 1.2 and 1.3)",
        ));
    }
    if min > max {
        return Err(ConfigError::new(
            format!("{at}.minimumProtocolVersion"),
            "is above maximumProtocolVersion",
        ));
    }
    let mut versions = Vec::new();
    if min <= 2 {
        versions.push(&rustls::version::TLS12);
    }
    if max >= 3 {
        versions.push(&rustls::version::TLS13);
    }
    Ok(versions)
}
