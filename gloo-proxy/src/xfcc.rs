//! `x-forwarded-client-cert` (XFCC): what the connection manager tells upstreams about the
//! certificate a client presented on a downstream TLS connection, as Envoy's
//! `forward_client_cert_details` and `set_current_client_cert_details` say.
//!
//! An element describes one hop's client: `By=` the URI SANs of the certificate the proxy
//! served, `Hash=` the SHA-256 of the client's certificate, then, as configured, `Cert=` and
//! `Chain=` (URL-encoded PEM), `Subject=` (RFC 2253, as OpenSSL prints it), `URI=` and `DNS=`
//! (its SANs), joined by `;`. Elements of successive hops are joined by `,`.
//!
//! ```
//! use gloo_proxy::xfcc::{mutate, ClientCertDetails, ForwardClientCert};
//! use http::HeaderMap;
//!
//! // A connection without a client certificate: everything but ALWAYS_FORWARD_ONLY drops
//! // what the client claimed.
//! let mut headers = HeaderMap::new();
//! headers.insert("x-forwarded-client-cert", "Hash=forged".parse().unwrap());
//! mutate(&mut headers, ForwardClientCert::AppendForward, ClientCertDetails::default(), None);
//! assert!(headers.get("x-forwarded-client-cert").is_none());
//! ```

use std::sync::{Arc, OnceLock};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use rustls::pki_types::CertificateDer;

/// The header's name.
pub const XFCC: HeaderName = HeaderName::from_static("x-forwarded-client-cert");

/// What the connection manager does with a request's XFCC (`forward_client_cert_details`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardClientCert {
    /// Remove it (Envoy's default).
    #[default]
    Sanitize,
    /// Pass it on as it came when the connection is mutual TLS; remove it otherwise.
    ForwardOnly,
    /// Append this hop's element when the connection is mutual TLS; remove it otherwise.
    AppendForward,
    /// Replace it with this hop's element when the connection is mutual TLS; remove it
    /// otherwise.
    SanitizeSet,
    /// Pass it on as it came, whatever the connection.
    AlwaysForwardOnly,
}

/// Which details of the client certificate an element carries besides `By` and `Hash`
/// (`set_current_client_cert_details`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCertDetails {
    /// `Cert=`: the certificate, URL-encoded PEM.
    pub cert: bool,
    /// `Chain=`: the chain the client presented, URL-encoded PEM.
    pub chain: bool,
    /// `Subject=`: the subject, as OpenSSL prints it in RFC 2253 form.
    pub subject: bool,
    /// `URI=`: each URI SAN (an empty `URI=` when there is none).
    pub uri: bool,
    /// `DNS=`: each DNS SAN.
    pub dns: bool,
}

/// The certificate a client presented on a downstream TLS connection, with the URI SANs of
/// the one the proxy served there; its XFCC element is made once per connection.
#[derive(Debug)]
pub struct ClientCertificate {
    chain: Vec<CertificateDer<'static>>,
    local_uri_sans: Arc<[String]>,
    element: OnceLock<String>,
}

impl ClientCertificate {
    /// The client's `chain` (leaf first, as presented) on a connection where the proxy
    /// served a certificate with `local_uri_sans`.
    pub fn new(chain: Vec<CertificateDer<'static>>, local_uri_sans: Arc<[String]>) -> Self {
        ClientCertificate {
            chain,
            local_uri_sans,
            element: OnceLock::new(),
        }
    }

    /// The chain the client presented, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// This hop's XFCC element with `details` (a connection's listener has one set of them,
    /// so the first call's are kept).
    pub fn element(&self, details: ClientCertDetails) -> &str {
        self.element
            .get_or_init(|| element(&self.chain, &self.local_uri_sans, details))
    }
}

/// Applies `mode` to the request's XFCC, for a connection whose client presented `client`
/// (`None`: not mutual TLS), as Envoy's connection manager does before routing.
#[inline]
pub fn mutate(
    headers: &mut HeaderMap,
    mode: ForwardClientCert,
    details: ClientCertDetails,
    client: Option<&ClientCertificate>,
) {
    // Every request of a listener with the default mode: removed (a lookup when absent).
    if mode == ForwardClientCert::Sanitize {
        headers.remove(XFCC);
        return;
    }
    mutate_as_configured(headers, mode, details, client)
}

fn mutate_as_configured(
    headers: &mut HeaderMap,
    mode: ForwardClientCert,
    details: ClientCertDetails,
    client: Option<&ClientCertificate>,
) {
    let client = match (mode, client) {
        (ForwardClientCert::AlwaysForwardOnly, _) => return,
        (ForwardClientCert::Sanitize, _) | (_, None) => {
            headers.remove(XFCC);
            return;
        }
        (ForwardClientCert::ForwardOnly, Some(_)) => return,
        (_, Some(client)) => client,
    };
    let element = client.element(details);
    let value = match (mode, headers.get(XFCC)) {
        (ForwardClientCert::AppendForward, Some(old)) if !old.is_empty() => {
            let mut joined = old.as_bytes().to_vec();
            joined.push(b',');
            joined.extend_from_slice(element.as_bytes());
            HeaderValue::from_bytes(&joined)
        }
        _ => HeaderValue::from_str(element),
    };
    match value {
        Ok(value) => {
            headers.insert(XFCC, value);
        }
        // Only a client's own bytes can make it invalid: what was there is not passed on.
        Err(_) => {
            headers.remove(XFCC);
        }
    }
}

/// The URI SANs of a certificate (empty when it cannot be read).
pub(crate) fn uri_sans(cert: &CertificateDer<'_>) -> Vec<String> {
    sans(cert).0
}

/// A certificate's URI and DNS SANs.
fn sans(cert: &CertificateDer<'_>) -> (Vec<String>, Vec<String>) {
    use x509_parser::extensions::GeneralName;
    let (mut uris, mut dns) = (Vec::new(), Vec::new());
    if let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) {
        if let Ok(Some(names)) = parsed.subject_alternative_name() {
            for name in &names.value.general_names {
                match name {
                    GeneralName::URI(u) => uris.push(u.to_string()),
                    GeneralName::DNSName(d) => dns.push(d.to_string()),
                    _ => {}
                }
            }
        }
    }
    (uris, dns)
}

fn element(chain: &[CertificateDer<'_>], by: &[String], details: ClientCertDetails) -> String {
    let mut parts: Vec<String> = by.iter().map(|uri| format!("By={uri}")).collect();
    let Some(leaf) = chain.first() else {
        return parts.join(";");
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, leaf.as_ref());
    parts.push(format!("Hash={}", hex(digest.as_ref())));
    if details.cert {
        parts.push(format!("Cert=\"{}\"", url_encode(&pem(leaf))));
    }
    if details.chain {
        let all: String = chain.iter().map(|c| url_encode(&pem(c))).collect();
        parts.push(format!("Chain=\"{all}\""));
    }
    if details.subject {
        let subject = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map(|(_, c)| rfc2253(c.subject()))
            .unwrap_or_default();
        parts.push(format!("Subject=\"{subject}\""));
    }
    let (uris, dns) = if details.uri || details.dns {
        sans(leaf)
    } else {
        Default::default()
    };
    if details.uri {
        if uris.is_empty() {
            parts.push("URI=".into());
        }
        parts.extend(uris.iter().map(|u| format!("URI={u}")));
    }
    if details.dns {
        parts.extend(dns.iter().map(|d| format!("DNS={d}")));
    }
    parts.join(";")
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A certificate in PEM, as OpenSSL writes it (64 base64 characters a line).
fn pem(cert: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters, in upper case.
fn url_encode(text: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A distinguished name as OpenSSL's `X509_NAME_print_ex` with `XN_FLAG_RFC2253` prints it:
/// the last RDN first, RDNs joined by `,` and a multi-valued RDN's attributes by `+`,
/// attribute types by their short names (unknown ones as dotted OIDs with their value's DER
/// in hex), and values escaped as RFC 2253 says, with control and non-ASCII bytes as `\XX`.
fn rfc2253(name: &x509_parser::x509::X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    let oid = attribute.attr_type().to_id_string();
                    match short_name(&oid) {
                        Some(short) => {
                            let value =
                                attribute.as_str().map(str::to_string).unwrap_or_else(|_| {
                                    String::from_utf8_lossy(attribute.attr_value().data)
                                        .into_owned()
                                });
                            format!("{short}={}", escape_2253(&value))
                        }
                        None => {
                            let value = attribute.attr_value();
                            let mut der = Vec::new();
                            der.push(value.header.tag().0 as u8);
                            der.extend(length_octets(value.data.len()));
                            der.extend_from_slice(value.data);
                            format!("{oid}=#{}", hex(&der).to_ascii_uppercase())
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// A DER length's octets.
fn length_octets(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// OpenSSL's short name of an attribute type, for the ones certificates carry.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.15" => "businessCategory",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "2.5.4.97" => "organizationIdentifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        _ => return None,
    })
}

/// Escapes an attribute value as OpenSSL's `ASN1_STRFLGS_RFC2253` does: `,+"\<>;` always, a
/// leading `#` or space and a trailing space, and control and non-ASCII bytes as `\XX`.
fn escape_2253(value: &str) -> String {
    use std::fmt::Write;
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    for (i, &b) in bytes.iter().enumerate() {
        let first = i == 0;
        let last = i + 1 == bytes.len();
        if b",+\"\\<>;".contains(&b) || (first && (b == b'#' || b == b' ')) || (last && b == b' ') {
            out.push('\\');
            out.push(b as char);
        } else if !(0x20..0x7f).contains(&b) {
            let _ = write!(out, "\\{b:02X}");
        } else {
            out.push(b as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_escape_as_openssl_prints_rfc_2253() {
        assert_eq!(escape_2253("Gloo, Test"), "Gloo\\, Test");
        assert_eq!(escape_2253("#1 a+b"), "\\#1 a\\+b");
        assert_eq!(escape_2253(" padded "), "\\ padded\\ ");
        assert_eq!(escape_2253("caf\u{e9}"), "caf\\C3\\A9");
        assert_eq!(
            url_encode("-----BEGIN CERTIFICATE-----\nab+/=\n"),
            "-----BEGIN%20CERTIFICATE-----%0Aab%2B%2F%3D%0A"
        );
        assert_eq!(length_octets(5), [5]);
        assert_eq!(length_octets(300), [0x82, 0x01, 0x2c]);
    }

    #[test]
    fn modes_keep_drop_append_or_set_as_envoy_does() {
        let client = ClientCertificate::new(
            vec![CertificateDer::from(vec![0x30, 0x00])],
            Arc::from(vec!["spiffe://gloo/gw".to_string()]),
        );
        let element = "By=spiffe://gloo/gw;Hash=".to_string()
            + &hex(ring::digest::digest(&ring::digest::SHA256, &[0x30, 0x00]).as_ref());
        let claimed = || {
            let mut h = HeaderMap::new();
            h.insert(XFCC, HeaderValue::from_static("By=a;Hash=b"));
            h
        };
        let cases = [
            (ForwardClientCert::Sanitize, true, None),
            (
                ForwardClientCert::ForwardOnly,
                true,
                Some("By=a;Hash=b".to_string()),
            ),
            (ForwardClientCert::ForwardOnly, false, None),
            (
                ForwardClientCert::AlwaysForwardOnly,
                false,
                Some("By=a;Hash=b".into()),
            ),
            (
                ForwardClientCert::AppendForward,
                true,
                Some(format!("By=a;Hash=b,{element}")),
            ),
            (ForwardClientCert::AppendForward, false, None),
            (ForwardClientCert::SanitizeSet, true, Some(element.clone())),
            (ForwardClientCert::SanitizeSet, false, None),
        ];
        for (mode, mtls, want) in cases {
            let mut headers = claimed();
            mutate(
                &mut headers,
                mode,
                ClientCertDetails::default(),
                mtls.then_some(&client),
            );
            let got = headers
                .get(XFCC)
                .map(|v| v.to_str().unwrap_or("?").to_string());
            assert_eq!(got, want, "{mode:?}, mutual TLS {mtls}");
        }
        // Appended to nothing: the element alone.
        let mut headers = HeaderMap::new();
        mutate(
            &mut headers,
            ForwardClientCert::AppendForward,
            ClientCertDetails::default(),
            Some(&client),
        );
        assert_eq!(headers[XFCC], element.as_str());
    }
}
