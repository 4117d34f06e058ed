//! The user session: where the tokens live between requests.
//!
//! * Cookies (Gloo's `cookie` session, the default): one cookie per token, `id_token`,
//!   `access_token` and `refresh_token`, named `<keyPrefix>_<name>` with a key prefix. With a
//!   `cipherConfig` key each value is AES-256-GCM encrypted (the cookie name is the associated
//!   data); without one the tokens are stored as they are, as in Gloo, and only the ID token's
//!   signature protects the session.
//! * Redis (`redis`, feature `extauth-oidc-redis`): a random 256-bit session id in the cookie
//!   (`__session` unless `cookieName` says otherwise), the tokens as JSON at
//!   `<keyPrefix><session id>`, expiring with the cookie's `Max-Age`.

use http::{HeaderMap, HeaderValue};
use ring::rand::SystemRandom;
use serde::{Deserialize, Serialize};

use super::cookies::{request_cookie, CookieAttributes};
use super::crypto::Sealer;

/// The tokens of one session. Empty strings: absent.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tokens {
    pub(crate) id_token: String,
    #[serde(default)]
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) refresh_token: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(<redacted>)")
    }
}

/// A session read from a request.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) tokens: Tokens,
    /// The Redis session id (`None` for cookie sessions).
    pub(crate) id: Option<String>,
}

/// A session store.
#[derive(Debug)]
pub(crate) enum Store {
    Cookie(Box<CookieStore>),
    #[cfg(feature = "extauth-oidc-redis")]
    Redis(redis_store::RedisStore),
}

impl Store {
    /// The request's session: `Ok(None)` without one (or with one that does not open),
    /// `Err` when the store failed.
    pub(crate) async fn load(&self, headers: &HeaderMap) -> Result<Option<Loaded>, String> {
        match self {
            Store::Cookie(store) => Ok(store
                .load(headers)
                .map(|tokens| Loaded { tokens, id: None })),
            #[cfg(feature = "extauth-oidc-redis")]
            Store::Redis(store) => store.load(headers).await,
        }
    }

    /// A fresh session id, for stores that keep sessions server-side.
    #[cfg_attr(not(feature = "extauth-oidc-redis"), allow(unused_variables))]
    pub(crate) fn new_id(&self, rng: &SystemRandom) -> Option<String> {
        match self {
            Store::Cookie(_) => None,
            #[cfg(feature = "extauth-oidc-redis")]
            Store::Redis(_) => super::crypto::random_token(rng, 32),
        }
    }

    /// Stores `tokens` (under `id` for Redis); the `Set-Cookie` values the client needs.
    #[cfg_attr(not(feature = "extauth-oidc-redis"), allow(unused_variables))]
    pub(crate) async fn save(
        &self,
        rng: &SystemRandom,
        id: Option<&str>,
        tokens: &Tokens,
    ) -> Result<Vec<HeaderValue>, String> {
        match self {
            Store::Cookie(store) => store.save(rng, tokens),
            #[cfg(feature = "extauth-oidc-redis")]
            Store::Redis(store) => store.save(id, tokens).await,
        }
    }

    /// Deletes the session (a store failure is logged: the client's cookies are cleared
    /// anyway); the `Set-Cookie` values that clear it in the client.
    #[cfg_attr(not(feature = "extauth-oidc-redis"), allow(unused_variables))]
    pub(crate) async fn clear(&self, id: Option<&str>) -> Vec<HeaderValue> {
        match self {
            Store::Cookie(store) => store.clear(),
            #[cfg(feature = "extauth-oidc-redis")]
            Store::Redis(store) => store.clear(id).await,
        }
    }

    /// Prefix of this store's cookie names (for the flow cookie).
    pub(crate) fn cookie_prefix(&self) -> String {
        match self {
            Store::Cookie(store) => store.prefix.clone(),
            #[cfg(feature = "extauth-oidc-redis")]
            Store::Redis(store) => format!("{}_", store.cookie_name),
        }
    }
}

/// Tokens in cookies.
#[derive(Debug)]
pub(crate) struct CookieStore {
    /// `<keyPrefix>_` or empty.
    prefix: String,
    sealer: Option<Sealer>,
    attributes: CookieAttributes,
}

impl CookieStore {
    pub(crate) fn new(
        key_prefix: &str,
        sealer: Option<Sealer>,
        attributes: CookieAttributes,
    ) -> Self {
        Self {
            prefix: if key_prefix.is_empty() {
                String::new()
            } else {
                format!("{key_prefix}_")
            },
            sealer,
            attributes,
        }
    }

    fn names(&self) -> [String; 3] {
        ["id_token", "access_token", "refresh_token"].map(|name| format!("{}{name}", self.prefix))
    }

    fn load(&self, headers: &HeaderMap) -> Option<Tokens> {
        let [id, access, refresh] = self.names();
        let read = |name: &str| -> Option<Option<String>> {
            match request_cookie(headers, name) {
                None | Some("") => Some(None),
                Some(value) => match &self.sealer {
                    None => Some(Some(value.to_owned())),
                    // A value that does not open (tampered, another key) voids the session.
                    Some(sealer) => sealer
                        .open(name, value)
                        .and_then(|plain| String::from_utf8(plain).ok())
                        .map(Some),
                },
            }
        };
        Some(Tokens {
            id_token: read(&id)??,
            access_token: read(&access)?.unwrap_or_default(),
            refresh_token: read(&refresh)?.unwrap_or_default(),
        })
    }

    fn save(&self, rng: &SystemRandom, tokens: &Tokens) -> Result<Vec<HeaderValue>, String> {
        let values = [
            &tokens.id_token,
            &tokens.access_token,
            &tokens.refresh_token,
        ];
        self.names()
            .iter()
            .zip(values)
            .map(|(name, value)| {
                if value.is_empty() {
                    return self
                        .attributes
                        .expire(name)
                        .ok_or_else(|| format!("cannot clear cookie {name}"));
                }
                let stored = match &self.sealer {
                    None => value.clone(),
                    Some(sealer) => sealer
                        .seal(rng, name, value.as_bytes())
                        .ok_or("cannot encrypt the session")?,
                };
                self.attributes
                    .set(name, &stored)
                    .ok_or_else(|| format!("the {name} cannot be stored in a cookie"))
            })
            .collect()
    }

    fn clear(&self) -> Vec<HeaderValue> {
        self.names()
            .iter()
            .filter_map(|name| self.attributes.expire(name))
            .collect()
    }
}

#[cfg(feature = "extauth-oidc-redis")]
pub(crate) mod redis_store {
    //! Tokens in Redis.

    use std::time::Duration;

    use http::{HeaderMap, HeaderValue};
    use redis::aio::{ConnectionManager, ConnectionManagerConfig};

    use super::super::cookies::{request_cookie, CookieAttributes};
    use super::{Loaded, Tokens};

    /// Gloo's default session cookie name.
    pub(crate) const DEFAULT_COOKIE_NAME: &str = "__session";

    pub(crate) struct RedisStore {
        url: String,
        key_prefix: String,
        pub(crate) cookie_name: String,
        attributes: CookieAttributes,
        timeout: Duration,
        connection: tokio::sync::OnceCell<ConnectionManager>,
    }

    impl std::fmt::Debug for RedisStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisStore")
                .field("url", &self.url)
                .field("key_prefix", &self.key_prefix)
                .field("cookie_name", &self.cookie_name)
                .finish_non_exhaustive()
        }
    }

    /// A session id as the store makes them: 32 random bytes, base64url.
    fn is_session_id(id: &str) -> bool {
        id.len() == 43
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    impl RedisStore {
        pub(crate) fn new(
            url: String,
            key_prefix: &str,
            cookie_name: &str,
            attributes: CookieAttributes,
            timeout: Duration,
        ) -> Self {
            Self {
                url,
                key_prefix: key_prefix.to_owned(),
                cookie_name: if cookie_name.is_empty() {
                    DEFAULT_COOKIE_NAME.to_owned()
                } else {
                    cookie_name.to_owned()
                },
                attributes,
                timeout,
                connection: tokio::sync::OnceCell::new(),
            }
        }

        /// The shared connection, opened on first use (and retried on the next request if
        /// Redis was down); it reconnects by itself afterwards.
        async fn connection(&self) -> Result<ConnectionManager, String> {
            self.connection
                .get_or_try_init(|| async {
                    let client =
                        redis::Client::open(self.url.as_str()).map_err(|e| e.to_string())?;
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(self.timeout))
                        .set_response_timeout(Some(self.timeout))
                        .set_number_of_retries(1)
                        .set_min_delay(Duration::from_millis(10))
                        .set_max_delay(Duration::from_millis(100));
                    ConnectionManager::new_with_config(client, config)
                        .await
                        .map_err(|e| e.to_string())
                })
                .await
                .cloned()
        }

        fn key(&self, id: &str) -> String {
            format!("{}{id}", self.key_prefix)
        }

        pub(crate) async fn load(&self, headers: &HeaderMap) -> Result<Option<Loaded>, String> {
            let Some(id) =
                request_cookie(headers, &self.cookie_name).filter(|id| is_session_id(id))
            else {
                return Ok(None);
            };
            let mut connection = self.connection().await?;
            let stored: Option<String> = redis::cmd("GET")
                .arg(self.key(id))
                .query_async(&mut connection)
                .await
                .map_err(|e| e.to_string())?;
            Ok(stored
                .and_then(|json| serde_json::from_str::<Tokens>(&json).ok())
                .map(|tokens| Loaded {
                    tokens,
                    id: Some(id.to_owned()),
                }))
        }

        pub(crate) async fn save(
            &self,
            id: Option<&str>,
            tokens: &Tokens,
        ) -> Result<Vec<HeaderValue>, String> {
            let id = id.ok_or("no session id")?;
            let json = serde_json::to_string(tokens).map_err(|e| e.to_string())?;
            let mut set = redis::cmd("SET");
            set.arg(self.key(id)).arg(json);
            if let Some(ttl) = self.attributes.max_age {
                set.arg("EX").arg(ttl);
            }
            let mut connection = self.connection().await?;
            let () = set
                .query_async(&mut connection)
                .await
                .map_err(|e| e.to_string())?;
            Ok(self
                .attributes
                .set(&self.cookie_name, id)
                .into_iter()
                .collect())
        }

        pub(crate) async fn clear(&self, id: Option<&str>) -> Vec<HeaderValue> {
            if let Some(id) = id {
                if let Err(error) = self.delete(id).await {
                    tracing::warn!(%error, "OIDC session not deleted from Redis");
                }
            }
            self.attributes
                .expire(&self.cookie_name)
                .into_iter()
                .collect()
        }

        async fn delete(&self, id: &str) -> Result<(), String> {
            let mut connection = self.connection().await?;
            let _: i64 = redis::cmd("DEL")
                .arg(self.key(id))
                .query_async(&mut connection)
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::COOKIE;

    fn request_with(set_cookies: &[HeaderValue]) -> HeaderMap {
        let pairs: Vec<String> = set_cookies
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .collect();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&pairs.join("; ")).expect("cookie"),
        );
        headers
    }

    fn tokens() -> Tokens {
        Tokens {
            id_token: "h.p.s".into(),
            access_token: "opaque-at".into(),
            refresh_token: String::new(),
        }
    }

    #[test]
    fn cookie_sessions_round_trip_with_prefix_and_encryption() {
        let rng = SystemRandom::new();
        let attributes = CookieAttributes::new(None, "c").expect("defaults");
        let plain = CookieStore::new("app", None, attributes.clone());
        let cookies = plain.save(&rng, &tokens()).expect("save");
        assert!(cookies[0]
            .to_str()
            .expect("ascii")
            .starts_with("app_id_token=h.p.s;"));
        assert!(cookies[1]
            .to_str()
            .expect("ascii")
            .starts_with("app_access_token=opaque-at;"));
        // An absent refresh token clears its cookie.
        assert!(cookies[2]
            .to_str()
            .expect("ascii")
            .starts_with("app_refresh_token=; Max-Age=0"));
        assert_eq!(plain.load(&request_with(&cookies[..2])), Some(tokens()));

        let sealed = CookieStore::new("", Sealer::random(&rng), attributes);
        let cookies = sealed.save(&rng, &tokens()).expect("save");
        let value = cookies[0].to_str().expect("ascii");
        assert!(
            value.starts_with("id_token=") && !value.contains("h.p.s"),
            "{value}"
        );
        assert_eq!(sealed.load(&request_with(&cookies[..2])), Some(tokens()));
        // Swapping the encrypted values between cookies voids the session.
        let swapped = request_with(&[HeaderValue::from_str(&format!(
            "id_token={}",
            cookies[1]
                .to_str()
                .expect("ascii")
                .split(';')
                .next()
                .expect("pair")
                .trim_start_matches("access_token=")
        ))
        .expect("value")]);
        assert_eq!(sealed.load(&swapped), None);
        // No ID token: no session.
        assert_eq!(sealed.load(&HeaderMap::new()), None);
    }
}
