//! ID token validation (OpenID Connect Core §3.1.3.7) with the `jwt` module's parser and key
//! set: signature by a JWKS key, `iss`, `aud` (and `azp` with several audiences), `exp`, and
//! `nonce` when the flow has one. Access tokens are opaque to the flow; one that is a JWT
//! signed by the provider's keys yields claims for `accessToken.claimsToHeaders`.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::crypto::ct_eq;
use super::discovery::Snapshot;
use crate::jwt::token::Jwt;

/// A validated token's claims.
#[derive(Clone, Debug)]
pub(crate) struct Claims {
    pub(crate) payload: Arc<Map<String, Value>>,
    /// `exp` (0: none).
    pub(crate) exp: u64,
}

impl Claims {
    pub(crate) fn sub(&self) -> Option<&str> {
        self.payload.get("sub").and_then(Value::as_str)
    }
}

/// Why an ID token is not accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Authentic, but past `exp`: refreshable.
    Expired,
    /// Signed by a key the cached JWKS does not have.
    UnknownKey,
    /// Anything else (the reason, for the log).
    Invalid(&'static str),
}

/// Parses and checks the signature of `token` against the snapshot's keys.
fn verified(token: &str, snapshot: &Snapshot) -> Result<Jwt, Rejection> {
    let jwt = Jwt::parse(token).map_err(|_| Rejection::Invalid("not a well-formed JWT"))?;
    if !snapshot.metadata.id_token_algs.is_empty()
        && !snapshot.metadata.id_token_algs.contains(&jwt.alg_name)
    {
        return Err(Rejection::Invalid("signing algorithm not allowed"));
    }
    if !snapshot.jwks.has_kid(&jwt.kid) {
        return Err(Rejection::UnknownKey);
    }
    snapshot
        .jwks
        .verify(&jwt)
        .map_err(|_| Rejection::Invalid("signature does not verify"))?;
    if jwt.iss != snapshot.metadata.issuer {
        return Err(Rejection::Invalid("issuer does not match"));
    }
    Ok(jwt)
}

/// Validates an ID token for `client_id` at `now` (seconds since the epoch); `nonce` is the
/// one the authorization request sent (checked only at the callback).
pub(crate) fn validate_id_token(
    token: &str,
    snapshot: &Snapshot,
    client_id: &str,
    now: u64,
    nonce: Option<&str>,
) -> Result<Claims, Rejection> {
    let jwt = verified(token, snapshot)?;
    if !jwt.audiences.iter().any(|aud| aud == client_id) {
        return Err(Rejection::Invalid(
            "audience does not include the client id",
        ));
    }
    if jwt.audiences.len() > 1 && jwt.payload.get("azp").and_then(Value::as_str) != Some(client_id)
    {
        return Err(Rejection::Invalid(
            "several audiences and azp is not the client id",
        ));
    }
    if let Some(expected) = nonce {
        let got = jwt
            .payload
            .get("nonce")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !ct_eq(got.as_bytes(), expected.as_bytes()) {
            return Err(Rejection::Invalid("nonce does not match"));
        }
    }
    if jwt.exp == 0 {
        return Err(Rejection::Invalid("no exp"));
    }
    if now >= jwt.exp {
        return Err(Rejection::Expired);
    }
    Ok(Claims {
        payload: jwt.payload,
        exp: jwt.exp,
    })
}

/// The claims of an access token that is a JWT signed by the provider's keys, unexpired;
/// `None` for an opaque token or one that does not verify.
pub(crate) fn access_token_claims(token: &str, snapshot: &Snapshot, now: u64) -> Option<Claims> {
    let jwt = verified(token, snapshot).ok()?;
    if jwt.exp != 0 && now >= jwt.exp {
        return None;
    }
    Some(Claims {
        payload: jwt.payload,
        exp: jwt.exp,
    })
}
