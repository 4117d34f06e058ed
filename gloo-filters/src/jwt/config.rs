//! Plain config types, one per Envoy `jwt_authn` message (`JwtProvider`, `RemoteJwks`,
//! `JwtRequirement`), with builders.

use std::time::Duration;

/// Where a provider's keys come from (Envoy's `jwks_source_specifier`).
#[derive(Clone, Debug)]
pub(crate) enum JwksSource {
    Local(String),
    Remote(RemoteJwks),
}

/// One JWT issuer and how its tokens are found, checked and forwarded: Envoy's `JwtProvider`.
///
/// Built from its key source ([`local_jwks`](Self::local_jwks) or
/// [`remote_jwks`](Self::remote_jwks)), then refined:
///
/// ```
/// use gloo_filters::jwt::JwtProvider;
///
/// let provider = JwtProvider::local_jwks(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#)
///     .issuer("https://issuer.example")
///     .audiences(["api", "web"])
///     .from_header("x-token", "")
///     .forward(true)
///     .claim_to_header("sub", "x-jwt-sub");
/// # let _ = provider;
/// ```
#[derive(Clone, Debug)]
pub struct JwtProvider {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) jwks: JwksSource,
    pub(crate) forward: bool,
    pub(crate) from_headers: Vec<(String, String)>,
    pub(crate) from_params: Vec<String>,
    pub(crate) forward_payload_header: Option<String>,
    pub(crate) pad_forward_payload_header: bool,
    pub(crate) claim_to_headers: Vec<(String, String)>,
    pub(crate) clock_skew_seconds: u32,
    pub(crate) payload_in_metadata: Option<String>,
}

impl JwtProvider {
    fn with_source(jwks: JwksSource) -> Self {
        Self {
            issuer: String::new(),
            audiences: Vec::new(),
            jwks,
            forward: false,
            from_headers: Vec::new(),
            from_params: Vec::new(),
            forward_payload_header: None,
            pad_forward_payload_header: false,
            claim_to_headers: Vec::new(),
            clock_skew_seconds: 0,
            payload_in_metadata: None,
        }
    }

    /// Keys from an inline JWKS document (Envoy's `local_jwks.inline_string`).
    ///
    /// As in Envoy, a document without a single usable key is not a config error: every token
    /// of this provider then fails with `Jwks doesn't have any valid public key` (and a warning
    /// is logged). Check documents up front with [`validate_jwks`](super::validate_jwks).
    pub fn local_jwks(jwks_json: impl Into<String>) -> Self {
        Self::with_source(JwksSource::Local(jwks_json.into()))
    }

    /// Keys fetched from a URI and cached (Envoy's `remote_jwks`).
    pub fn remote_jwks(remote: impl Into<RemoteJwks>) -> Self {
        Self::with_source(JwksSource::Remote(remote.into()))
    }

    /// The `iss` tokens must carry (Envoy's `issuer`). Empty (the default) allows any issuer,
    /// including none.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// Adds one allowed audience. With none (the default) any `aud` is accepted; otherwise one
    /// of the token's audiences must be one of these (`http://`/`https://` prefixes and a
    /// trailing `/` are ignored on both sides).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Adds allowed audiences (see [`audience`](Self::audience)).
    pub fn audiences<I, A>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        self.audiences.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// Whether a verified token stays in the request (Envoy's `forward`, default `false`: the
    /// header it came from is removed, or the query parameter is cut from the URI, the other
    /// parameters kept as they were sent).
    pub fn forward(mut self, forward: bool) -> Self {
        self.forward = forward;
        self
    }

    /// Looks for tokens in header `name`, after `value_prefix` (e.g. `Authorization` with
    /// `Bearer `; an empty prefix takes the whole value). Envoy's `from_headers`: as in Envoy
    /// 1.40 the prefix is looked for anywhere in the value (repeated headers joined with `,`)
    /// and the token is everything after it, leading blanks skipped.
    ///
    /// Without any [`from_header`](Self::from_header) or [`from_param`](Self::from_param),
    /// tokens are looked for in `Authorization: Bearer <token>` and `?access_token=<token>`.
    pub fn from_header(mut self, name: impl Into<String>, value_prefix: impl Into<String>) -> Self {
        self.from_headers.push((name.into(), value_prefix.into()));
        self
    }

    /// Looks for tokens in query parameter `name` (Envoy's `from_params`).
    pub fn from_param(mut self, name: impl Into<String>) -> Self {
        self.from_params.push(name.into());
        self
    }

    /// Adds a header carrying the verified token's payload, base64url-encoded as in the token
    /// (Envoy's `forward_payload_header`). A client-sent header of that name is always removed.
    pub fn forward_payload_header(mut self, name: impl Into<String>) -> Self {
        self.forward_payload_header = Some(name.into());
        self
    }

    /// Whether the forwarded payload gets `=` padding (Envoy's `pad_forward_payload_header`).
    pub fn pad_forward_payload_header(mut self, pad: bool) -> Self {
        self.pad_forward_payload_header = pad;
        self
    }

    /// Copies claim `claim` (nested claims with `.`: `address.city`) of a verified token into
    /// header `header` (Envoy's `claim_to_headers`). Strings are copied as they are, booleans
    /// as `true`/`false`, whole non-negative numbers as integers and other numbers as C's
    /// `%f` (`1.500000`), lists and objects as unpadded base64url of their JSON; `null` and
    /// empty strings add nothing. A client-sent header of that name is always removed.
    pub fn claim_to_header(mut self, claim: impl Into<String>, header: impl Into<String>) -> Self {
        self.claim_to_headers.push((claim.into(), header.into()));
        self
    }

    /// Writes the verified payload to the request's
    /// [`DynamicMetadata`](crate::metadata::DynamicMetadata) under this key in namespace
    /// `envoy.filters.http.jwt_authn` (Envoy's `payload_in_metadata`), where the global rate
    /// limit layer's `metadata` action can read a claim. Gloo names it `principal`.
    pub fn payload_in_metadata(mut self, key: impl Into<String>) -> Self {
        self.payload_in_metadata = Some(key.into()).filter(|k| !k.is_empty());
        self
    }

    /// Allowed clock skew for `exp` and `nbf`, in seconds (Envoy's `clock_skew_seconds`; 0,
    /// the default, means 60).
    pub fn clock_skew_seconds(mut self, seconds: u32) -> Self {
        self.clock_skew_seconds = seconds;
        self
    }
}

/// A remote JWKS: where it is and how long it is kept (Envoy's `RemoteJwks`).
///
/// Keys are fetched when a token first needs them (one fetch at a time per provider; requests
/// that arrive meanwhile wait for it) and kept for [`cache_duration`](Self::cache_duration).
/// A failed fetch fails the tokens that needed it with `Jwks remote fetch is failed`; for
/// [`failed_refetch_duration`](Self::failed_refetch_duration) afterwards tokens fail at once
/// without a new fetch, then the next token tries again. A token whose `kid` is not in the
/// cached set triggers one early refetch (a key rotation), at most once per
/// [`rotation_refetch_interval`](Self::rotation_refetch_interval), so forged `kid`s cannot
/// cause a fetch storm.
#[derive(Clone, Debug)]
pub struct RemoteJwks {
    pub(crate) uri: String,
    pub(crate) cluster: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) cache_duration: Duration,
    pub(crate) failed_refetch_duration: Duration,
    pub(crate) rotation_refetch_interval: Option<Duration>,
    pub(crate) async_fetch: bool,
}

impl RemoteJwks {
    /// Envoy's default `cache_duration`: 10 minutes.
    pub const DEFAULT_CACHE_DURATION: Duration = Duration::from_secs(600);

    /// Fetches from `uri` (Envoy's `http_uri.uri`) with the defaults: 5 s timeout, 10 min
    /// cache, 1 s between retries of a failed fetch, at most one rotation refetch per 30 s.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            cluster: None,
            timeout: Duration::from_secs(5),
            cache_duration: Self::DEFAULT_CACHE_DURATION,
            failed_refetch_duration: Duration::from_secs(1),
            rotation_refetch_interval: Some(Duration::from_secs(30)),
            async_fetch: false,
        }
    }

    /// The upstream cluster to fetch through (Envoy's `http_uri.cluster`); handed to the
    /// [`JwksFetcher`](super::JwksFetcher), which may route by it. The default fetcher
    /// ignores it and connects to the URI's host.
    pub fn cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = Some(cluster.into());
        self
    }

    /// How long one fetch may take (Envoy's `http_uri.timeout`).
    pub fn timeout(mut self, timeout: impl Into<Duration>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// How long fetched keys are used (Envoy's `cache_duration`, default 10 minutes).
    pub fn cache_duration(mut self, duration: impl Into<Duration>) -> Self {
        self.cache_duration = duration.into();
        self
    }

    /// How long after a failed fetch tokens fail without a new attempt (Envoy's
    /// `async_fetch.failed_refetch_duration`, default 1 s).
    pub fn failed_refetch_duration(mut self, duration: impl Into<Duration>) -> Self {
        self.failed_refetch_duration = duration.into();
        self
    }

    /// The least time between two refetches caused by unknown `kid`s (default 30 s); `None`
    /// never refetches early, as Envoy (which waits for the cache to expire).
    pub fn rotation_refetch_interval(mut self, interval: Option<Duration>) -> Self {
        self.rotation_refetch_interval = interval;
        self
    }

    /// Fetches the keys in the background instead of on first use (Envoy's `async_fetch`,
    /// default off): as soon as the [`JwtAuthentication`](super::JwtAuthentication) is built
    /// inside a tokio runtime (else when the first request arrives), then every
    /// [`cache_duration`](Self::cache_duration), or [`failed_refetch_duration`](Self::failed_refetch_duration)
    /// after a failure. As in Envoy, fetched keys then stay in use until a refresh succeeds
    /// (a failed refresh keeps the old keys). Requests never wait for startup (Envoy's
    /// `fast_listener: true`); one arriving before the first fetch ends waits for it. The
    /// task ends when the `JwtAuthentication` and all its layers are dropped.
    pub fn async_fetch(mut self, enabled: bool) -> Self {
        self.async_fetch = enabled;
        self
    }
}

impl From<&str> for RemoteJwks {
    fn from(uri: &str) -> Self {
        RemoteJwks::new(uri)
    }
}

impl From<String> for RemoteJwks {
    fn from(uri: String) -> Self {
        RemoteJwks::new(uri)
    }
}

/// What a route requires: Envoy's `JwtRequirement` (build one layer per route requirement).
///
/// ```
/// use gloo_filters::jwt::JwtRequirement;
///
/// // A token from `google` or from `github`, or no token at all.
/// let requirement = JwtRequirement::requires_any([
///     JwtRequirement::provider_name("google"),
///     JwtRequirement::provider_name("github"),
///     JwtRequirement::allow_missing(),
/// ]);
/// # let _ = requirement;
/// ```
#[derive(Clone, Debug)]
pub struct JwtRequirement(pub(crate) Requirement);

#[derive(Clone, Debug)]
pub(crate) enum Requirement {
    Provider {
        name: String,
        audiences: Option<Vec<String>>,
    },
    Any(Vec<JwtRequirement>),
    All(Vec<JwtRequirement>),
    AllowMissingOrFailed,
    AllowMissing,
}

impl JwtRequirement {
    /// A valid token of provider `name` (Envoy's `provider_name`).
    pub fn provider_name(name: impl Into<String>) -> Self {
        Self(Requirement::Provider {
            name: name.into(),
            audiences: None,
        })
    }

    /// A valid token of provider `name` whose audience is one of `audiences`, instead of the
    /// provider's own list (Envoy's `provider_and_audiences`).
    pub fn provider_and_audiences<I, A>(name: impl Into<String>, audiences: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        Self(Requirement::Provider {
            name: name.into(),
            audiences: Some(audiences.into_iter().map(Into::into).collect()),
        })
    }

    /// Any one of the requirements (Envoy's `requires_any`, at least two). When all fail the
    /// refusal reports the last failure that is neither "missing" nor "unknown issuer", else
    /// "unknown issuer", else "missing". An `allow_missing` member accepts requests without
    /// tokens; an `allow_missing_or_failed` member accepts everything.
    pub fn requires_any<I: IntoIterator<Item = JwtRequirement>>(requirements: I) -> Self {
        Self(Requirement::Any(requirements.into_iter().collect()))
    }

    /// All of the requirements, checked in order, the first failure refusing (Envoy's
    /// `requires_all`, at least two).
    pub fn requires_all<I: IntoIterator<Item = JwtRequirement>>(requirements: I) -> Self {
        Self(Requirement::All(requirements.into_iter().collect()))
    }

    /// Tokens of any provider are verified (their claims forwarded) but never refuse the
    /// request (Envoy's `allow_missing_or_failed`).
    pub fn allow_missing_or_failed() -> Self {
        Self(Requirement::AllowMissingOrFailed)
    }

    /// A request without any token passes; a request with a token of any provider needs it
    /// valid (Envoy's `allow_missing`).
    pub fn allow_missing() -> Self {
        Self(Requirement::AllowMissing)
    }
}
