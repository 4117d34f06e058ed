//! The verification engine: providers as built from config, requirements as a tree of
//! verifiers, and one request's evaluation. Mirrors Envoy's `verifier.cc` (requirement
//! combinators), `authenticator.cc` (one provider's tokens) and `jwks_cache.cc` (providers by
//! name and issuer).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Uri;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::config::{JwksSource, JwtProvider, JwtRequirement, Requirement};
use super::error::JwtConfigError;
use super::extract::{remove_query_param, Extractor, Location, Token};
use super::fetch::{JwksFetcher, JwksRequest};
use super::jwks::Jwks;
use super::remote::{Lookup, RemoteCache};
use super::service::VerifiedJwt;
use super::status::JwtStatus;
use super::token::{AudienceCheck, Jwt, B64URL};

/// Envoy's default clock skew (`kClockSkewInSecond`).
const DEFAULT_CLOCK_SKEW: u64 = 60;

/// Where a provider's keys are at run time.
#[derive(Debug)]
pub(crate) enum ProviderJwks {
    /// An inline set; `None` when it had no usable key.
    Local(Option<Arc<Jwks>>),
    Remote(Arc<RemoteCache>),
}

/// One provider, with names parsed and keys loaded.
#[derive(Debug)]
pub(crate) struct ProviderRuntime {
    pub(crate) name: Arc<str>,
    pub(crate) issuer: String,
    pub(crate) audiences: AudienceCheck,
    pub(crate) clock_skew: u64,
    pub(crate) forward: bool,
    pub(crate) from_headers: Vec<(HeaderName, String)>,
    pub(crate) from_params: Vec<String>,
    pub(crate) forward_payload_header: Option<HeaderName>,
    pub(crate) pad_forward_payload_header: bool,
    pub(crate) claim_to_headers: Vec<(String, HeaderName)>,
    pub(crate) payload_in_metadata: Option<Arc<str>>,
    pub(crate) jwks: ProviderJwks,
}

fn header_name(
    provider: &str,
    field: &'static str,
    value: &str,
) -> Result<HeaderName, JwtConfigError> {
    HeaderName::from_bytes(value.as_bytes()).map_err(|_| JwtConfigError::InvalidHeaderName {
        provider: provider.to_owned(),
        field,
        value: value.to_owned(),
    })
}

impl ProviderRuntime {
    fn build(
        name: &str,
        config: &JwtProvider,
        fetcher: &Arc<dyn JwksFetcher>,
    ) -> Result<Self, JwtConfigError> {
        let from_headers = config
            .from_headers
            .iter()
            .map(|(h, prefix)| Ok((header_name(name, "from_headers", h)?, prefix.clone())))
            .collect::<Result<_, JwtConfigError>>()?;
        let forward_payload_header = config
            .forward_payload_header
            .as_deref()
            .map(|h| header_name(name, "forward_payload_header", h))
            .transpose()?;
        let claim_to_headers = config
            .claim_to_headers
            .iter()
            .map(|(claim, h)| {
                if claim.is_empty() {
                    return Err(JwtConfigError::EmptyClaimName {
                        provider: name.to_owned(),
                        header: h.clone(),
                    });
                }
                Ok((claim.clone(), header_name(name, "claim_to_headers", h)?))
            })
            .collect::<Result<_, JwtConfigError>>()?;
        let jwks = match &config.jwks {
            JwksSource::Local(json) => ProviderJwks::Local(match Jwks::parse(json.as_bytes()) {
                Ok(jwks) => Some(Arc::new(jwks)),
                Err(e) => {
                    tracing::warn!(provider = name, issuer = %config.issuer, error = %e,
                        "invalid inline JWKS: every token of this provider will fail");
                    None
                }
            }),
            JwksSource::Remote(remote) => {
                let invalid_uri = || JwtConfigError::InvalidJwksUri {
                    provider: name.to_owned(),
                    uri: remote.uri.clone(),
                };
                let uri: Uri = remote.uri.parse().map_err(|_| invalid_uri())?;
                if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                    return Err(invalid_uri());
                }
                let max = std::time::Duration::from_secs(9_000_000_000);
                for (field, d) in [
                    ("timeout", remote.timeout),
                    ("cache_duration", remote.cache_duration),
                    ("failed_refetch_duration", remote.failed_refetch_duration),
                ] {
                    if d.is_zero() || d >= max {
                        return Err(JwtConfigError::InvalidDuration {
                            provider: name.to_owned(),
                            field,
                        });
                    }
                }
                let cache = Arc::new(RemoteCache::new(
                    JwksRequest {
                        provider: Arc::from(name),
                        uri,
                        cluster: remote.cluster.as_deref().map(Arc::from),
                    },
                    remote,
                    Arc::clone(fetcher),
                ));
                cache.start_background();
                ProviderJwks::Remote(cache)
            }
        };
        Ok(Self {
            name: Arc::from(name),
            issuer: config.issuer.clone(),
            audiences: AudienceCheck::new(&config.audiences),
            clock_skew: match config.clock_skew_seconds {
                0 => DEFAULT_CLOCK_SKEW,
                s => u64::from(s),
            },
            forward: config.forward,
            from_headers,
            from_params: config.from_params.clone(),
            forward_payload_header,
            pad_forward_payload_header: config.pad_forward_payload_header,
            claim_to_headers,
            payload_in_metadata: config.payload_in_metadata.as_deref().map(Arc::from),
            jwks,
        })
    }
}

/// All providers of one filter config.
#[derive(Debug)]
pub(crate) struct Providers {
    list: Vec<ProviderRuntime>,
    by_name: HashMap<String, usize>,
    /// The first provider of each issuer, in config order.
    by_issuer: HashMap<String, usize>,
}

impl Providers {
    pub(crate) fn build(
        configs: &[(String, JwtProvider)],
        fetcher: &Arc<dyn JwksFetcher>,
    ) -> Result<Self, JwtConfigError> {
        let mut providers = Providers {
            list: Vec::with_capacity(configs.len()),
            by_name: HashMap::new(),
            by_issuer: HashMap::new(),
        };
        for (name, config) in configs {
            if providers.by_name.contains_key(name) {
                return Err(JwtConfigError::DuplicateProvider { name: name.clone() });
            }
            let index = providers.list.len();
            providers
                .list
                .push(ProviderRuntime::build(name, config, fetcher)?);
            providers.by_name.insert(name.clone(), index);
            providers
                .by_issuer
                .entry(config.issuer.clone())
                .or_insert(index);
        }
        Ok(providers)
    }

    pub(crate) fn get(&self, index: usize) -> Option<&ProviderRuntime> {
        self.list.get(index)
    }

    pub(crate) fn remote(&self, index: usize) -> Option<&Arc<RemoteCache>> {
        match &self.list.get(index)?.jwks {
            ProviderJwks::Remote(cache) => Some(cache),
            ProviderJwks::Local(_) => None,
        }
    }

    /// Envoy's `findByIssuer`: the first provider with this issuer, else (for a token with an
    /// issuer) the first provider without one.
    fn find_by_issuer(&self, issuer: &str) -> Option<usize> {
        self.by_issuer.get(issuer).copied().or_else(|| {
            (!issuer.is_empty())
                .then(|| self.by_issuer.get(""))
                .flatten()
                .copied()
        })
    }
}

/// A requirement compiled against the providers (Envoy's verifier tree).
#[derive(Debug)]
pub(crate) enum Node {
    Provider {
        provider: usize,
        audiences: Option<AudienceCheck>,
        extractor: Extractor,
    },
    Any {
        children: Vec<Node>,
        allow_missing_or_failed: bool,
        allow_missing: bool,
    },
    All(Vec<Node>),
    /// `allow_missing` (`allow_failed == false`) or `allow_missing_or_failed`, over every
    /// provider.
    AllProviders {
        allow_failed: bool,
        extractor: Extractor,
    },
}

impl Node {
    pub(crate) fn build(
        requirement: &JwtRequirement,
        providers: &Providers,
    ) -> Result<Node, JwtConfigError> {
        let all_providers = || Extractor::new(providers.list.iter());
        Ok(match &requirement.0 {
            Requirement::Provider { name, audiences } => {
                let provider = *providers
                    .by_name
                    .get(name)
                    .ok_or_else(|| JwtConfigError::UnknownProvider { name: name.clone() })?;
                Node::Provider {
                    provider,
                    audiences: audiences.as_ref().map(AudienceCheck::new),
                    extractor: Extractor::new(providers.list.get(provider)),
                }
            }
            Requirement::Any(list) => {
                if list.len() < 2 {
                    return Err(JwtConfigError::TooFewRequirements {
                        list: "requires_any",
                        count: list.len(),
                    });
                }
                let mut children = Vec::new();
                let (mut allow_missing_or_failed, mut allow_missing) = (false, false);
                for child in list {
                    match child.0 {
                        Requirement::AllowMissingOrFailed => allow_missing_or_failed = true,
                        Requirement::AllowMissing => allow_missing = true,
                        _ => children.push(Node::build(child, providers)?),
                    }
                }
                // Only `allow_*` members: one verifier over all providers stands for them.
                if children.is_empty() {
                    children.push(Node::AllProviders {
                        allow_failed: allow_missing_or_failed,
                        extractor: all_providers(),
                    });
                }
                Node::Any {
                    children,
                    allow_missing_or_failed,
                    allow_missing,
                }
            }
            Requirement::All(list) => {
                if list.len() < 2 {
                    return Err(JwtConfigError::TooFewRequirements {
                        list: "requires_all",
                        count: list.len(),
                    });
                }
                Node::All(
                    list.iter()
                        .map(|child| Node::build(child, providers))
                        .collect::<Result<_, _>>()?,
                )
            }
            Requirement::AllowMissingOrFailed => Node::AllProviders {
                allow_failed: true,
                extractor: all_providers(),
            },
            Requirement::AllowMissing => Node::AllProviders {
                allow_failed: false,
                extractor: all_providers(),
            },
        })
    }

    /// Whether evaluating this node may need a remote JWKS (and so may have to wait).
    pub(crate) fn may_fetch(&self, providers: &Providers) -> bool {
        match self {
            Node::Provider { provider, .. } => providers.remote(*provider).is_some(),
            Node::Any { children, .. } | Node::All(children) => {
                children.iter().any(|c| c.may_fetch(providers))
            }
            Node::AllProviders { .. } => {
                (0..providers.list.len()).any(|index| providers.remote(index).is_some())
            }
        }
    }
}

/// A remote JWKS this evaluation needs before it can finish.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NeedFetch {
    pub(crate) provider: usize,
    pub(crate) seen: u64,
}

type Step = Result<Result<(), JwtStatus>, NeedFetch>;

/// One evaluation of a requirement against one request.
pub(crate) struct Eval<'a> {
    providers: &'a Providers,
    max_token_size: usize,
    now_unix: u64,
    now: Instant,
    /// Providers whose fetch this request already waited for.
    waited: &'a [usize],
    pub(crate) verified: Vec<VerifiedJwt>,
}

impl<'a> Eval<'a> {
    pub(crate) fn new(
        providers: &'a Providers,
        max_token_size: usize,
        waited: &'a [usize],
    ) -> Self {
        Self {
            providers,
            max_token_size,
            now_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            now: Instant::now(),
            waited,
            verified: Vec::new(),
        }
    }

    /// Evaluates `node`, editing `headers` as Envoy does (sanitizing, claims, payload, token
    /// removal) along the way.
    pub(crate) fn run(&mut self, node: &Node, headers: &mut HeaderMap, uri: &mut Uri) -> Step {
        match node {
            Node::Provider {
                provider,
                audiences,
                extractor,
            } => self.authenticate(
                extractor,
                Some(*provider),
                audiences.as_ref(),
                false,
                false,
                headers,
                uri,
            ),
            Node::AllProviders {
                allow_failed,
                extractor,
            } => self.authenticate(extractor, None, None, *allow_failed, true, headers, uri),
            Node::All(children) => {
                for child in children {
                    if let Err(status) = self.run(child, headers, uri)? {
                        return Ok(Err(status));
                    }
                }
                Ok(Ok(()))
            }
            Node::Any {
                children,
                allow_missing_or_failed,
                allow_missing,
            } => {
                // Envoy's `AnyVerifierImpl::onComplete`: the first success wins; otherwise the
                // last error that is neither "missing" nor "unknown issuer", else "unknown
                // issuer", else "missing".
                let mut final_status = JwtStatus::JwtMissed;
                for child in children {
                    let status = match self.run(child, headers, uri)? {
                        Ok(()) => return Ok(Ok(())),
                        Err(status) => status,
                    };
                    let weak = matches!(status, JwtStatus::JwtMissed | JwtStatus::JwtUnknownIssuer);
                    if !weak || final_status == JwtStatus::JwtMissed {
                        final_status = status;
                    }
                }
                if *allow_missing_or_failed
                    || (*allow_missing && final_status == JwtStatus::JwtMissed)
                {
                    Ok(Ok(()))
                } else {
                    Ok(Err(final_status))
                }
            }
        }
    }

    /// Envoy's `AuthenticatorImpl`: the tokens of these locations, last one first; unless
    /// failures are allowed, the first failure decides, else the last token's status does.
    #[allow(clippy::too_many_arguments)]
    fn authenticate(
        &mut self,
        extractor: &Extractor,
        provider: Option<usize>,
        audiences: Option<&AudienceCheck>,
        allow_failed: bool,
        allow_missing: bool,
        headers: &mut HeaderMap,
        uri: &mut Uri,
    ) -> Step {
        extractor.sanitize(headers);
        let mut tokens = extractor.extract(headers, uri);
        let finish = |status: Result<(), JwtStatus>| {
            if allow_failed || (allow_missing && status == Err(JwtStatus::JwtMissed)) {
                Ok(())
            } else {
                status
            }
        };
        if tokens.is_empty() {
            return Ok(finish(Err(JwtStatus::JwtMissed)));
        }
        while let Some(token) = tokens.pop() {
            let status = self.verify_token(&token, provider, audiences, headers, uri)?;
            if (status.is_err() && !allow_failed && !allow_missing) || tokens.is_empty() {
                return Ok(finish(status));
            }
        }
        Ok(finish(Err(JwtStatus::JwtMissed)))
    }

    fn verify_token(
        &mut self,
        token: &Token<'_>,
        provider: Option<usize>,
        audiences: Option<&AudienceCheck>,
        headers: &mut HeaderMap,
        uri: &mut Uri,
    ) -> Step {
        if token.value.len() > self.max_token_size {
            return Ok(Err(JwtStatus::JwtVerificationFail));
        }
        let jwt = match Jwt::parse(&token.value) {
            Ok(jwt) => jwt,
            Err(status) => return Ok(Err(status)),
        };
        if !token.issuers.check(&jwt.iss) {
            return Ok(Err(JwtStatus::JwtUnknownIssuer));
        }
        let Some(index) = provider.or_else(|| self.providers.find_by_issuer(&jwt.iss)) else {
            return Ok(Err(JwtStatus::JwtUnknownIssuer));
        };
        let Some(p) = self.providers.get(index) else {
            return Ok(Err(JwtStatus::JwtUnknownIssuer));
        };
        if let Err(status) = jwt.check_time(self.now_unix, p.clock_skew) {
            return Ok(Err(status));
        }
        if !audiences.unwrap_or(&p.audiences).allows(&jwt.audiences) {
            return Ok(Err(JwtStatus::JwtAudienceNotAllowed));
        }
        let verified = match &p.jwks {
            ProviderJwks::Local(Some(jwks)) => jwks.verify(&jwt),
            ProviderJwks::Local(None) => Err(JwtStatus::JwksNoValidKeys),
            ProviderJwks::Remote(cache) => {
                cache.start_background();
                let waited = self.waited.contains(&index);
                match cache.lookup(self.now, waited) {
                    Lookup::Fresh(jwks, generation) => {
                        let result = jwks.verify(&jwt);
                        if result == Err(JwtStatus::JwksKidAlgMismatch)
                            && !waited
                            && !jwks.has_kid(&jwt.kid)
                            && cache.may_refetch_for_rotation(self.now)
                        {
                            return Err(NeedFetch {
                                provider: index,
                                seen: generation,
                            });
                        }
                        result
                    }
                    Lookup::Failed => Err(JwtStatus::JwksFetchFail),
                    Lookup::Fetch(seen) => {
                        return Err(NeedFetch {
                            provider: index,
                            seen,
                        })
                    }
                }
            }
        };
        if let Err(status) = verified {
            return Ok(Err(status));
        }
        self.handle_good(p, &jwt, token, headers, uri);
        Ok(Ok(()))
    }

    /// Envoy's `handleGoodJwt`: payload header, claim headers, token removal, metadata.
    fn handle_good(
        &mut self,
        p: &ProviderRuntime,
        jwt: &Jwt,
        token: &Token<'_>,
        headers: &mut HeaderMap,
        uri: &mut Uri,
    ) {
        if let Some(name) = &p.forward_payload_header {
            let value = if p.pad_forward_payload_header {
                // Re-encode with padding: the same bytes, padded to a multiple of 4.
                let mut padded = jwt.payload_b64.clone();
                while !padded.len().is_multiple_of(4) {
                    padded.push('=');
                }
                padded
            } else {
                jwt.payload_b64.clone()
            };
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(name.clone(), value);
            }
        }
        for (claim, name) in &p.claim_to_headers {
            if let Some(value) = claim_value(&jwt.payload, claim) {
                if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                    headers.append(name.clone(), value);
                }
            }
        }
        if !p.forward {
            match token.location {
                Location::Header(name) => {
                    headers.remove(name);
                }
                Location::Param(name) => {
                    if let Some(stripped) = remove_query_param(uri, name) {
                        *uri = stripped;
                    }
                }
            }
        }
        self.verified.push(VerifiedJwt {
            provider: Arc::clone(&p.name),
            header: Arc::clone(&jwt.header),
            claims: Arc::clone(&jwt.payload),
            payload_in_metadata: p.payload_in_metadata.clone(),
        });
    }
}

/// A claim as Envoy's `addJWTClaimToHeader` writes it, or `None` when it writes nothing.
pub(crate) fn claim_value(payload: &Map<String, Value>, claim: &str) -> Option<String> {
    let mut segments = claim.split('.');
    let mut value = payload.get(segments.next()?)?;
    for segment in segments {
        value = value.as_object()?.get(segment)?;
    }
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        // Envoy 1.40 writes lists and objects as base64url (unpadded) JSON.
        Value::Array(_) | Value::Object(_) => {
            B64URL.encode(serde_json::to_string(value).ok()?.as_bytes())
        }
        Value::Number(n) => {
            let d = n.as_f64()?;
            if d < 0.0 || d >= u64::MAX as f64 || d.fract() != 0.0 {
                // C++ `std::to_string(double)`: `%f`.
                format!("{d:.6}")
            } else {
                (d as u64).to_string()
            }
        }
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}
