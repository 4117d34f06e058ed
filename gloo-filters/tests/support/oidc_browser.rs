//! A test "browser" for OIDC logins against the real OpenID Provider of `oidc_provider.rs`:
//! a cookie jar and a plain-HTTP client that sends and stores cookies, submits the provider's
//! login and consent forms (devInteractions) and follows its redirects until it sends the
//! browser back to the app. The gloo-filters OIDC tests stand the step in for the app; the
//! gloo-proxy tests reach the app through `gloo run` with [`Browser::fetch`] too.

use bytes::Bytes;
use http::header::{COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// One cookie of the jar.
#[derive(Clone, Debug)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub host: String,
    pub path: String,
    pub secure: bool,
}

/// A browser: a cookie jar and an HTTP client.
pub struct Browser {
    pub jar: Vec<Cookie>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// The `Set-Cookie` values of `headers`.
pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// The `value` of each `<input type="hidden" name=.. value=..>` and the form's action.
pub fn form(html: &str) -> (String, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].replace("&amp;", "&"))
    };
    let form_start = html.find("<form").expect("a form");
    let form_tag = &html[form_start..html[form_start..].find('>').expect("tag end") + form_start];
    let action = attr(form_tag, "action").expect("form action");
    let mut fields = Vec::new();
    for input in html.split("<input").skip(1) {
        let tag = &input[..input.find('>').unwrap_or(input.len())];
        if tag.contains("type=\"hidden\"") {
            if let (Some(name), Some(value)) = (attr(tag, "name"), attr(tag, "value")) {
                fields.push((name, value));
            }
        }
    }
    (action, fields)
}

/// `scheme://authority` of `url`.
pub fn origin(url: &str) -> String {
    let uri: Uri = url.parse().expect("absolute URL");
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map(|a| a.as_str()).unwrap_or_default()
    )
}

/// `url` resolved against `origin` when it is a path.
pub fn absolute(origin: &str, url: &str) -> String {
    if url.starts_with('/') {
        format!("{origin}{url}")
    } else {
        url.to_owned()
    }
}

impl Browser {
    /// An empty jar.
    pub fn new() -> Self {
        Self {
            jar: Vec::new(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The `Cookie` header the jar sends to `url`.
    pub fn cookie_header(&self, url: &Uri) -> Option<HeaderValue> {
        let host = url.host().unwrap_or_default();
        let secure = url.scheme_str() == Some("https");
        let pairs: Vec<String> = self
            .jar
            .iter()
            .filter(|c| c.host == host && url.path().starts_with(&c.path) && (secure || !c.secure))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| HeaderValue::from_str(&pairs.join("; ")).expect("cookie"))
    }

    /// Keeps the cookies `headers` set for `url` (deleting those they expire).
    pub fn store(&mut self, url: &Uri, headers: &HeaderMap) {
        let host = url.host().unwrap_or_default().to_owned();
        for line in set_cookies(headers) {
            let mut parts = line.split(';');
            let (name, value) = parts
                .next()
                .and_then(|p| p.split_once('='))
                .expect("name=value");
            let mut cookie = Cookie {
                name: name.trim().to_owned(),
                value: value.trim().to_owned(),
                host: host.clone(),
                path: "/".to_owned(),
                secure: false,
            };
            let mut delete = false;
            for attribute in parts {
                let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
                match key.trim().to_ascii_lowercase().as_str() {
                    "path" => cookie.path = val.trim().to_owned(),
                    "secure" => cookie.secure = true,
                    "max-age" => delete |= val.trim() == "0",
                    "expires" => delete |= val.contains("1970"),
                    _ => {}
                }
            }
            self.jar.retain(|c| {
                !(c.name == cookie.name && c.host == cookie.host && c.path == cookie.path)
            });
            if !delete {
                self.jar.push(cookie);
            }
        }
    }

    /// `GET url`, or `POST` of `form` (urlencoded) to it, with the jar's cookies (the
    /// answer's stored): status, headers, body. Redirects are not followed.
    pub async fn fetch(
        &mut self,
        url: &str,
        form: Option<String>,
    ) -> (StatusCode, HeaderMap, String) {
        self.fetch_with(url, form, HeaderMap::new()).await
    }

    /// [`fetch`](Self::fetch) with these request headers too.
    pub async fn fetch_with(
        &mut self,
        url: &str,
        form: Option<String>,
        headers: HeaderMap,
    ) -> (StatusCode, HeaderMap, String) {
        let uri: Uri = url.parse().expect("URL");
        let mut request = Request::builder().uri(uri.clone());
        if let Some(cookies) = self.cookie_header(&uri) {
            request = request.header(COOKIE, cookies);
        }
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let body = match form {
            Some(form) => {
                request = request
                    .method(Method::POST)
                    .header("content-type", "application/x-www-form-urlencoded");
                Bytes::from(form)
            }
            None => Bytes::new(),
        };
        let response = self
            .client
            .request(request.body(Full::new(body)).expect("request"))
            .await
            .unwrap_or_else(|e| panic!("{url} answers: {e}"));
        let (parts, body) = response.into_parts();
        self.store(&uri, &parts.headers);
        let body = body.collect().await.expect("body").to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    /// Follows the provider from `url` (logging in as `user` and consenting) until it sends
    /// the browser back to a URL starting with `app`; that URL.
    pub async fn at_provider(&mut self, url: &str, user: &str, app: &str) -> String {
        let mut next = (url.to_owned(), None::<String>);
        for _ in 0..12 {
            let (status, headers, body) = self.fetch(&next.0, next.1.take()).await;
            let origin = origin(&next.0);
            if status.is_redirection() {
                let to = absolute(&origin, headers[LOCATION].to_str().expect("location"));
                if to.starts_with(app) {
                    return to;
                }
                next = (to, None);
                continue;
            }
            assert_eq!(status, StatusCode::OK, "provider answered {status}: {body}");
            let (action, mut fields) = form(&body);
            let prompt = fields
                .iter()
                .find(|(n, _)| n == "prompt")
                .map(|(_, v)| v.clone());
            if prompt.as_deref() == Some("login") {
                fields.push(("login".into(), user.into()));
                fields.push(("password".into(), "any".into()));
            }
            let form = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields)
                .finish();
            next = (absolute(&origin, &action), Some(form));
        }
        panic!("the provider never sent the browser back to the app");
    }
}
