//! Where tokens are found: Envoy's `ExtractorImpl`
//! (`source/extensions/filters/http/jwt_authn/extractor.cc`).

use std::collections::BTreeMap;

use http::header::{HeaderMap, HeaderName, AUTHORIZATION};
use http::Uri;

use super::verifier::ProviderRuntime;

/// Which issuers may use a location: those of the providers that configured it; a provider
/// without an issuer allows every issuer there.
#[derive(Clone, Debug, Default)]
pub(crate) struct IssuerChecker {
    allow_all: bool,
    issuers: Vec<String>,
}

impl IssuerChecker {
    fn add(&mut self, issuer: &str) {
        if issuer.is_empty() {
            self.allow_all = true;
        } else if !self.issuers.iter().any(|i| i == issuer) {
            self.issuers.push(issuer.to_owned());
        }
    }

    pub(crate) fn check(&self, issuer: &str) -> bool {
        self.allow_all || self.issuers.iter().any(|i| i == issuer)
    }
}

#[derive(Clone, Debug)]
struct HeaderLocation {
    name: HeaderName,
    prefix: String,
    issuers: IssuerChecker,
}

/// The token locations of one or more providers, and the headers they write (which are
/// removed from every request first, so a client cannot forge them).
#[derive(Clone, Debug, Default)]
pub(crate) struct Extractor {
    /// Keyed by header name + prefix, in key order (Envoy's `std::map`).
    headers: BTreeMap<String, HeaderLocation>,
    /// Keyed by parameter name, in key order.
    params: BTreeMap<String, IssuerChecker>,
    sanitize: Vec<HeaderName>,
}

/// Where a token was found.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Location<'e> {
    Header(&'e HeaderName),
    Param(&'e str),
}

/// One token found in a request.
#[derive(Debug)]
pub(crate) struct Token<'e> {
    pub(crate) value: String,
    pub(crate) issuers: &'e IssuerChecker,
    /// Where it came from (removed from there unless the provider forwards it).
    pub(crate) location: Location<'e>,
}

impl Extractor {
    pub(crate) fn new<'a>(providers: impl IntoIterator<Item = &'a ProviderRuntime>) -> Self {
        let mut extractor = Extractor::default();
        for provider in providers {
            extractor.add(provider);
        }
        extractor
    }

    fn add(&mut self, provider: &ProviderRuntime) {
        let issuer = provider.issuer.as_str();
        for (name, prefix) in &provider.from_headers {
            self.add_header(issuer, name, prefix);
        }
        for param in &provider.from_params {
            self.params.entry(param.clone()).or_default().add(issuer);
        }
        if provider.from_headers.is_empty() && provider.from_params.is_empty() {
            self.add_header(issuer, &AUTHORIZATION, "Bearer ");
            self.params
                .entry("access_token".to_owned())
                .or_default()
                .add(issuer);
        }
        if let Some(header) = &provider.forward_payload_header {
            self.sanitize.push(header.clone());
        }
        for (_, header) in &provider.claim_to_headers {
            self.sanitize.push(header.clone());
        }
    }

    fn add_header(&mut self, issuer: &str, name: &HeaderName, prefix: &str) {
        let key = format!("{}{}", name.as_str(), prefix);
        self.headers
            .entry(key)
            .or_insert_with(|| HeaderLocation {
                name: name.clone(),
                prefix: prefix.to_owned(),
                issuers: IssuerChecker::default(),
            })
            .issuers
            .add(issuer);
    }

    /// Removes the headers these providers write.
    pub(crate) fn sanitize(&self, headers: &mut HeaderMap) {
        for name in &self.sanitize {
            headers.remove(name);
        }
    }

    /// Every token in the request: header locations first, then query parameters, each in key
    /// order (Envoy verifies them from the last one back).
    pub(crate) fn extract(&self, headers: &HeaderMap, uri: &Uri) -> Vec<Token<'_>> {
        let mut tokens = Vec::new();
        for location in self.headers.values() {
            let mut values = headers.get_all(&location.name).iter();
            let Some(first) = values.next() else { continue };
            // Envoy's codecs strip each value's surrounding whitespace; repeated headers are
            // joined with ','.
            let text = |v: &http::HeaderValue| {
                String::from_utf8_lossy(v.as_bytes())
                    .trim_matches([' ', '\t'])
                    .to_owned()
            };
            let mut joined = text(first);
            for value in values {
                joined.push(',');
                joined.push_str(&text(value));
            }
            // Envoy 1.40 looks for the prefix anywhere in the value and takes everything after
            // it but leading blanks (the differential test pins this: `Bearer a,Bearer b`
            // yields `a,Bearer b`, `Bearer  a` yields `a`).
            let value = if location.prefix.is_empty() {
                joined
            } else {
                let Some(pos) = joined.find(&location.prefix) else {
                    continue;
                };
                joined[pos + location.prefix.len()..]
                    .trim_start_matches([' ', '\t'])
                    .to_owned()
            };
            tokens.push(Token {
                value,
                issuers: &location.issuers,
                location: Location::Header(&location.name),
            });
        }
        if !self.params.is_empty() {
            if let Some(query) = uri.query() {
                for (name, issuers) in &self.params {
                    if let Some(value) = query_param(query, name) {
                        tokens.push(Token {
                            value,
                            issuers,
                            location: Location::Param(name),
                        });
                    }
                }
            }
        }
        tokens
    }
}

/// The first value of query parameter `name`, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    let query = query.split('#').next().unwrap_or("");
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

/// `uri` without query parameter `name` (every occurrence); the other parameters keep their
/// order and encoding, and an empty query loses its `?`. Envoy 1.40 removes a verified
/// token's parameter this way unless the provider forwards it.
pub(crate) fn remove_query_param(uri: &Uri, name: &str) -> Option<Uri> {
    let query = uri.query()?;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| percent_decode(pair.split_once('=').map_or(*pair, |(k, _)| k)) != name)
        .collect();
    let path_and_query = if kept.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(parts).ok()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_decoded_and_the_first_wins() {
        assert_eq!(
            query_param("a=1&access_token=x%2Ey&access_token=z", "access_token").as_deref(),
            Some("x.y")
        );
        assert_eq!(query_param("a=1", "access_token"), None);
        assert_eq!(
            query_param("access_token", "access_token").as_deref(),
            Some("")
        );
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn removing_a_query_param_keeps_the_others() {
        let uri: Uri = "/p?a=%20x&access_token=t&b=2&access_token=u"
            .parse()
            .unwrap();
        assert_eq!(
            remove_query_param(&uri, "access_token").unwrap(),
            "/p?a=%20x&b=2"
        );
        let uri: Uri = "http://h/p?access_token=t".parse().unwrap();
        assert_eq!(
            remove_query_param(&uri, "access_token").unwrap(),
            "http://h/p"
        );
    }
}
