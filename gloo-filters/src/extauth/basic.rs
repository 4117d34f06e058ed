//! Gloo's basic auth step: users with APR1-MD5 (`htpasswd -m`) or salted SHA-1 hashes.

use std::collections::HashMap;

use base64::Engine;
use http::header::{AUTHORIZATION, PROXY_AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use super::config;
use super::error::ConfigError;
use super::{Allowed, Authorize, BoxFuture, CheckRequest, Decision, Denied};

/// How stored passwords are hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordHash {
    /// Apache's APR1-MD5 (`$apr1$<salt>$<hash>`, what `htpasswd -m` writes).
    Apr1,
    /// Hex SHA-1 of the password followed by the salt, compared case-insensitively.
    Sha1,
}

#[derive(Debug, Clone)]
struct Credential {
    salt: String,
    hash: String,
}

/// Gloo's basic auth: `Authorization: Basic base64(user:password)` checked against stored
/// salted hashes.
///
/// * A missing, malformed or wrong credential is `401` with `WWW-Authenticate: Basic
///   realm="<realm>"` and no body, as Gloo answers.
/// * A match lets the request through with the user name as its user id.
/// * The extended form (`encryption` + `userList`) also reads `Proxy-Authorization` when
///   `Authorization` is absent.
///
/// ```
/// use gloo_filters::extauth::{Authorize, BasicAuth, CheckRequest, Decision, PasswordHash};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // `htpasswd -nbm user password` printed user:$apr1$TYiryv0/$8BvzLUO9IfGPGGsPnAgSu1
/// let auth = BasicAuth::new("gloo", PasswordHash::Apr1)?
///     .user("user", "TYiryv0/", "8BvzLUO9IfGPGGsPnAgSu1");
/// let mut request = CheckRequest::default();
/// request.headers.insert("authorization", "basic dXNlcjpwYXNzd29yZA==".parse()?);
/// let Decision::Allow(allowed) = auth.authorize(&request).await else { panic!("denied") };
/// assert_eq!(allowed.user_id.as_deref(), Some("user"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BasicAuth {
    hash: PasswordHash,
    users: HashMap<String, Credential>,
    challenge: HeaderValue,
    proxy_authorization: bool,
}

impl BasicAuth {
    /// No users yet; `realm` goes into the challenge (it must be a valid header value).
    pub fn new(realm: &str, hash: PasswordHash) -> Result<Self, ConfigError> {
        let challenge = HeaderValue::try_from(format!("Basic realm=\"{realm}\""))
            .map_err(|_| ConfigError::new("realm", "not a valid header value"))?;
        Ok(Self {
            hash,
            users: HashMap::new(),
            challenge,
            proxy_authorization: false,
        })
    }

    /// Adds a user with its salt and hash (for APR1, the two parts after `$apr1$`).
    pub fn user(
        mut self,
        name: impl Into<String>,
        salt: impl Into<String>,
        hash: impl Into<String>,
    ) -> Self {
        let mut hash = hash.into();
        if self.hash == PasswordHash::Sha1 {
            hash.make_ascii_lowercase();
        }
        self.users.insert(
            name.into(),
            Credential {
                salt: salt.into(),
                hash,
            },
        );
        self
    }

    /// Also read `Proxy-Authorization` when `Authorization` is absent (Gloo's extended form).
    pub fn proxy_authorization(mut self, enabled: bool) -> Self {
        self.proxy_authorization = enabled;
        self
    }

    /// Builds Gloo's `basicAuth` (exactly one of `apr` or `encryption` with `userList`).
    pub(crate) fn from_config(path: &str, config: &config::BasicAuth) -> Result<Self, ConfigError> {
        match (&config.apr, &config.encryption, &config.user_list) {
            (Some(apr), None, None) => {
                let mut auth = Self::new(&config.realm, PasswordHash::Apr1)
                    .map_err(|e| ConfigError::new(format!("{path}.realm"), e.message()))?;
                for (name, user) in &apr.users {
                    auth = auth.user(name, &user.salt, &user.hashed_password);
                }
                Ok(auth)
            }
            (None, Some(encryption), Some(users)) => {
                Self::extended(path, &config.realm, encryption, users)
            }
            (Some(_), _, _) => Err(ConfigError::new(
                path,
                "`apr` excludes `encryption` and `userList`",
            )),
            (None, None, None) => Err(ConfigError::new(
                path,
                "one of `apr` or `encryption` with `userList` is required",
            )),
            (None, None, Some(_)) => Err(ConfigError::new(path, "`userList` needs `encryption`")),
            (None, Some(_), None) => Err(ConfigError::new(path, "`encryption` needs `userList`")),
        }
    }

    /// Builds Gloo's `basicAuthInternal`.
    pub(crate) fn from_internal(
        path: &str,
        config: &config::BasicAuthInternal,
    ) -> Result<Self, ConfigError> {
        let encryption = config
            .encryption
            .as_ref()
            .ok_or_else(|| ConfigError::new(path, "`encryption` is required"))?;
        let users = config
            .user_list
            .as_ref()
            .ok_or_else(|| ConfigError::new(path, "`userList` is required"))?;
        Self::extended(path, &config.realm, encryption, users)
    }

    fn extended(
        path: &str,
        realm: &str,
        encryption: &config::EncryptionType,
        users: &config::UserList,
    ) -> Result<Self, ConfigError> {
        let hash = match (encryption.apr, encryption.sha1) {
            (Some(_), None) => PasswordHash::Apr1,
            (None, Some(_)) => PasswordHash::Sha1,
            _ => {
                return Err(ConfigError::new(
                    format!("{path}.encryption"),
                    "exactly one of `apr` or `sha1` is required",
                ))
            }
        };
        let mut auth = Self::new(realm, hash)
            .map_err(|e| ConfigError::new(format!("{path}.realm"), e.message()))?
            .proxy_authorization(true);
        for (name, user) in &users.users {
            auth = auth.user(name, &user.salt, &user.hashed_password);
        }
        Ok(auth)
    }

    fn credentials(&self, headers: &HeaderMap) -> Option<(String, String)> {
        let value = match headers.get(AUTHORIZATION) {
            Some(value) => value,
            None if self.proxy_authorization => headers.get(PROXY_AUTHORIZATION)?,
            None => return None,
        };
        parse_basic(value.as_bytes())
    }

    fn check(&self, user: &str, password: &str) -> bool {
        // An unknown user costs a hash too, so timing does not tell which users exist.
        let (credential, known) = match self.users.get(user) {
            Some(c) => (c, true),
            None => (&*UNKNOWN_USER, false),
        };
        let computed = match self.hash {
            PasswordHash::Apr1 => apr1_md5(password.as_bytes(), credential.salt.as_bytes()),
            PasswordHash::Sha1 => salted_sha1_hex(password.as_bytes(), credential.salt.as_bytes()),
        };
        let same: bool = computed.as_bytes().ct_eq(credential.hash.as_bytes()).into();
        same && known
    }

    fn deny(&self) -> Denied {
        let mut denied = Denied::status(StatusCode::UNAUTHORIZED);
        denied
            .headers
            .insert(WWW_AUTHENTICATE, self.challenge.clone());
        denied
    }
}

static UNKNOWN_USER: std::sync::LazyLock<Credential> = std::sync::LazyLock::new(|| Credential {
    salt: "nobody..".into(),
    hash: String::new(),
});

impl Authorize for BasicAuth {
    fn authorize<'a>(&'a self, request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
        let decision = match self.credentials(&request.headers) {
            Some((user, password)) if self.check(&user, &password) => Decision::Allow(Allowed {
                user_id: Some(user),
                ..Allowed::default()
            }),
            _ => Decision::Deny(self.deny()),
        };
        Box::pin(std::future::ready(decision))
    }
}

/// `Basic <base64(user:password)>` as Go's `Request.BasicAuth` reads it: the scheme in any
/// case, standard padded base64, split at the first `:`.
pub(crate) fn parse_basic(value: &[u8]) -> Option<(String, String)> {
    if value.len() < 6 || !value[..6].eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&value[6..])
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The hash part of Apache's APR1-MD5 (`$apr1$<salt>$<this>`, 22 characters), as
/// `apr_md5_encode` computes it. As Apache does, the salt is cut at its first `$` and at 8
/// characters.
///
/// ```
/// use gloo_filters::extauth::apr1_md5;
///
/// // htpasswd -nbm user password → user:$apr1$TYiryv0/$8BvzLUO9IfGPGGsPnAgSu1
/// assert_eq!(apr1_md5(b"password", b"TYiryv0/"), "8BvzLUO9IfGPGGsPnAgSu1");
/// ```
pub fn apr1_md5(password: &[u8], salt: &[u8]) -> String {
    let salt = salt.split(|b| *b == b'$').next().unwrap_or_default();
    let salt = &salt[..salt.len().min(8)];

    let mut alternate = Md5::new();
    alternate.update(password);
    alternate.update(salt);
    alternate.update(password);
    let alternate = alternate.finalize();

    let mut context = Md5::new();
    context.update(password);
    context.update(b"$apr1$");
    context.update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        context.update(&alternate[..n]);
        left -= n;
    }
    let mut bits = password.len();
    while bits != 0 {
        if bits & 1 == 1 {
            context.update([0u8]);
        } else {
            context.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut digest = context.finalize();

    for round in 0..1000 {
        let mut next = Md5::new();
        if round & 1 == 1 {
            next.update(password);
        } else {
            next.update(digest);
        }
        if round % 3 != 0 {
            next.update(salt);
        }
        if round % 7 != 0 {
            next.update(password);
        }
        if round & 1 == 1 {
            next.update(digest);
        } else {
            next.update(password);
        }
        digest = next.finalize();
    }

    let d = digest;
    let mut out = String::with_capacity(22);
    let mut put = |value: u32, chars: usize| {
        let mut v = value;
        for _ in 0..chars {
            out.push(char::from(ITOA64[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    let group = |a: usize, b: usize, c: usize| {
        (u32::from(d[a]) << 16) | (u32::from(d[b]) << 8) | u32::from(d[c])
    };
    put(group(0, 6, 12), 4);
    put(group(1, 7, 13), 4);
    put(group(2, 8, 14), 4);
    put(group(3, 9, 15), 4);
    put(group(4, 10, 5), 4);
    put(u32::from(d[11]), 2);
    out
}

/// Gloo's SHA-1 form: lowercase hex of SHA-1(password ‖ salt).
///
/// ```
/// use gloo_filters::extauth::salted_sha1_hex;
///
/// // Gloo's documented example: user `user`, password `password`, salt `TYiryv0/`.
/// assert_eq!(salted_sha1_hex(b"password", b"TYiryv0/"), "010eb058a59f4ac5ba05639b0263cf91b4345fd6");
/// ```
pub fn salted_sha1_hex(password: &[u8], salt: &[u8]) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(password);
    context.update(salt);
    context
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
