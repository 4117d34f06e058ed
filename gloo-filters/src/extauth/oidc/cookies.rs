//! Request cookies (RFC 6265 §5.4 `Cookie` headers) and `Set-Cookie` values with Gloo's
//! `cookieOptions`.

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

use super::config::{CookieOptions, SameSite};
use super::error::OidcConfigError;

/// Gloo's default cookie `Max-Age`: 30 days.
pub(crate) const DEFAULT_MAX_AGE: u32 = 2_592_000;

/// The value of the first cookie named `name` in the request's `Cookie` headers.
pub(crate) fn request_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

/// Whether `value` may stand as a cookie value unquoted (RFC 6265 `cookie-octet`s).
pub(crate) fn is_cookie_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E))
}

fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The attributes every session cookie gets, from `cookieOptions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CookieAttributes {
    /// `None`: no `Max-Age` (Gloo's `maxAge: 0`).
    pub(crate) max_age: Option<u32>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) path: Option<String>,
    pub(crate) same_site: SameSite,
    pub(crate) domain: Option<String>,
}

impl CookieAttributes {
    /// Gloo's defaults, with `options` applied; `field` is where the options are (for
    /// errors).
    pub(crate) fn new(
        options: Option<&CookieOptions>,
        field: &str,
    ) -> Result<Self, OidcConfigError> {
        let default = CookieOptions::default();
        let options = options.unwrap_or(&default);
        let path = match &options.path {
            None => Some("/".to_owned()),
            Some(path) if path.is_empty() => None,
            Some(path) => Some(path.clone()),
        };
        if let Some(path) = &path {
            if !path.starts_with('/') || !is_attribute_value(path) {
                return Err(OidcConfigError::new(
                    format!("{field}.path"),
                    format!("{path:?} is not a cookie path"),
                ));
            }
        }
        let domain = (!options.domain.is_empty()).then(|| options.domain.clone());
        if let Some(domain) = &domain {
            if !is_attribute_value(domain) || domain.contains(['/', ' ']) {
                return Err(OidcConfigError::new(
                    format!("{field}.domain"),
                    format!("{domain:?} is not a cookie domain"),
                ));
            }
        }
        if options.same_site == SameSite::NoneMode && options.not_secure {
            return Err(OidcConfigError::new(
                format!("{field}.sameSite"),
                "NoneMode needs a Secure cookie: notSecure must be unset",
            ));
        }
        Ok(Self {
            max_age: match options.max_age {
                None => Some(DEFAULT_MAX_AGE),
                Some(0) => None,
                Some(age) => Some(age),
            },
            secure: !options.not_secure,
            http_only: options.http_only.unwrap_or(true),
            path,
            same_site: options.same_site,
            domain,
        })
    }

    fn render(
        &self,
        name: &str,
        value: &str,
        max_age: Option<u64>,
        same_site: SameSite,
        path: Option<&str>,
    ) -> Option<HeaderValue> {
        if !is_token(name) || !is_cookie_value(value) {
            return None;
        }
        let mut out = format!("{name}={value}");
        if let Some(age) = max_age {
            out.push_str(&format!("; Max-Age={age}"));
        }
        if let Some(path) = path {
            out.push_str(&format!("; Path={path}"));
        }
        if let Some(domain) = &self.domain {
            out.push_str(&format!("; Domain={domain}"));
        }
        if self.secure {
            out.push_str("; Secure");
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        match same_site {
            SameSite::DefaultMode => {}
            SameSite::LaxMode => out.push_str("; SameSite=Lax"),
            SameSite::StrictMode => out.push_str("; SameSite=Strict"),
            SameSite::NoneMode => out.push_str("; SameSite=None"),
        }
        HeaderValue::from_str(&out).ok()
    }

    /// `Set-Cookie` for a session cookie; `None` if `name` or `value` cannot be a cookie.
    pub(crate) fn set(&self, name: &str, value: &str) -> Option<HeaderValue> {
        self.render(
            name,
            value,
            self.max_age.map(u64::from),
            self.same_site,
            self.path.as_deref(),
        )
    }

    /// `Set-Cookie` for the short-lived flow cookie: `max_age` seconds, `Path=/` (it must
    /// reach the callback path, wherever the session cookies' path points), and `SameSite=Lax`
    /// unless the options say `None` (it must come back on the identity provider's top-level
    /// redirect, which `Strict` would drop).
    pub(crate) fn set_flow(&self, name: &str, value: &str, max_age: u64) -> Option<HeaderValue> {
        self.render(name, value, Some(max_age), self.flow_same_site(), Some("/"))
    }

    fn flow_same_site(&self) -> SameSite {
        match self.same_site {
            SameSite::NoneMode => SameSite::NoneMode,
            _ => SameSite::LaxMode,
        }
    }

    /// `Set-Cookie` that deletes the cookie `name`.
    pub(crate) fn expire(&self, name: &str) -> Option<HeaderValue> {
        self.render(name, "", Some(0), self.same_site, self.path.as_deref())
    }

    /// `Set-Cookie` that deletes the flow cookie `name`.
    pub(crate) fn expire_flow(&self, name: &str) -> Option<HeaderValue> {
        self.render(name, "", Some(0), self.flow_same_site(), Some("/"))
    }
}

/// No control characters or `;` (they would end the attribute).
fn is_attribute_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b';')
}

/// RFC 6265 §5.1.3 domain-match of the request host (port removed) against `domain`
/// (a leading dot ignored), case-insensitively.
pub(crate) fn domain_matches(host: &str, domain: &str) -> bool {
    let host = strip_port(host).to_ascii_lowercase();
    let domain = domain.trim_start_matches('.').to_ascii_lowercase();
    if host == domain {
        return true;
    }
    let is_ip = host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[');
    !is_ip
        && host.len() > domain.len()
        && host.ends_with(&domain)
        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest.split_once(']').map_or(host, |(ip, _)| ip);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_cookies_are_found_across_headers() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; id_token=x.y.z"));
        headers.append(COOKIE, HeaderValue::from_static("b=\"2\""));
        assert_eq!(request_cookie(&headers, "id_token"), Some("x.y.z"));
        assert_eq!(request_cookie(&headers, "b"), Some("2"));
        assert_eq!(request_cookie(&headers, "id"), None);
    }

    #[test]
    fn set_cookie_follows_gloo_defaults_and_options() {
        let defaults = CookieAttributes::new(None, "userSession.cookieOptions").expect("defaults");
        assert_eq!(
            defaults.set("id_token", "a.b.c").expect("value"),
            "id_token=a.b.c; Max-Age=2592000; Path=/; Secure; HttpOnly"
        );
        assert_eq!(
            defaults.expire("id_token").expect("value"),
            "id_token=; Max-Age=0; Path=/; Secure; HttpOnly"
        );
        assert_eq!(
            defaults.set_flow("oidc_state", "s", 600).expect("value"),
            "oidc_state=s; Max-Age=600; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
        let options = CookieOptions {
            max_age: Some(0),
            not_secure: true,
            http_only: Some(false),
            path: Some(String::new()),
            same_site: SameSite::StrictMode,
            domain: "example.com".into(),
        };
        let custom = CookieAttributes::new(Some(&options), "o").expect("options");
        assert_eq!(
            custom.set("__session", "id").expect("value"),
            "__session=id; Domain=example.com; SameSite=Strict"
        );
        // The flow cookie reaches every path and survives the provider's redirect.
        assert_eq!(
            custom.set_flow("oidc_state", "s", 600).expect("value"),
            "oidc_state=s; Max-Age=600; Path=/; Domain=example.com; SameSite=Lax"
        );
        assert_eq!(
            custom.expire_flow("oidc_state").expect("value"),
            "oidc_state=; Max-Age=0; Path=/; Domain=example.com; SameSite=Lax"
        );
        // A value that is not a cookie value is never written.
        assert_eq!(defaults.set("id_token", "a b"), None);
        assert_eq!(defaults.set("bad name", "x"), None);
    }

    #[test]
    fn bad_options_name_their_field() {
        let none_insecure = CookieOptions {
            not_secure: true,
            same_site: SameSite::NoneMode,
            ..CookieOptions::default()
        };
        let err =
            CookieAttributes::new(Some(&none_insecure), "userSession.cookieOptions").unwrap_err();
        assert_eq!(err.field(), "userSession.cookieOptions.sameSite");
        let bad_path = CookieOptions {
            path: Some("x;y".into()),
            ..CookieOptions::default()
        };
        let err = CookieAttributes::new(Some(&bad_path), "c").unwrap_err();
        assert_eq!(err.field(), "c.path");
    }

    #[test]
    fn domain_matching_is_rfc6265() {
        assert!(domain_matches("app.example.com", "example.com"));
        assert!(domain_matches("example.com:8443", ".example.com"));
        assert!(domain_matches("EXAMPLE.com", "example.com"));
        assert!(!domain_matches("badexample.com", "example.com"));
        assert!(!domain_matches("example.com.evil", "example.com"));
        assert!(!domain_matches("10.0.0.1", "0.0.1"));
        assert!(domain_matches("10.0.0.1:80", "10.0.0.1"));
    }
}
