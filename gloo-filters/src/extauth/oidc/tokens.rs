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

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use ring::hmac;
    use serde_json::json;

    use super::*;
    use crate::extauth::oidc::client::ClientAuth;
    use crate::extauth::oidc::discovery::Metadata;
    use crate::jwt::jwks::Jwks;

    const SECRET: &[u8] = b"an HMAC key long enough for HS256";
    const ISS: &str = "https://idp.example";
    const NOW: u64 = 1_700_000_000;

    fn snapshot(algs: &[&str]) -> Snapshot {
        let jwks = json!({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256",
                                    "k": URL_SAFE_NO_PAD.encode(SECRET)}]});
        Snapshot {
            metadata: Metadata {
                issuer: ISS.into(),
                authorization_endpoint: "https://idp.example/auth".into(),
                token_endpoint: "https://idp.example/token".parse().expect("uri"),
                jwks_uri: "https://idp.example/jwks".parse().expect("uri"),
                revocation_endpoint: None,
                end_session_endpoint: None,
                client_auth: ClientAuth::Basic,
                id_token_algs: algs.iter().map(|a| a.to_string()).collect(),
            },
            jwks: Arc::new(Jwks::parse(jwks.to_string().as_bytes()).expect("jwks")),
        }
    }

    fn sign(header: serde_json::Value, claims: serde_json::Value) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, SECRET),
            signed.as_bytes(),
        );
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    fn token(claims: serde_json::Value) -> String {
        sign(json!({"alg": "HS256", "kid": "k1"}), claims)
    }

    fn good() -> serde_json::Value {
        json!({"iss": ISS, "aud": "app", "sub": "alice", "exp": NOW + 60, "nonce": "n"})
    }

    fn with(field: &str, value: serde_json::Value) -> serde_json::Value {
        let mut claims = good();
        claims[field] = value;
        claims
    }

    #[test]
    fn id_tokens_are_checked_as_openid_connect_core_says() {
        let s = snapshot(&[]);
        let check = |t: &str, nonce| validate_id_token(t, &s, "app", NOW, nonce);
        let claims = check(&token(good()), Some("n")).expect("valid");
        assert_eq!((claims.sub(), claims.exp), (Some("alice"), NOW + 60));
        // Without a nonce to check (a resumed session), any nonce is fine.
        assert!(check(&token(with("nonce", json!("other"))), None).is_ok());

        let invalid = |claims, nonce| check(&token(claims), nonce).unwrap_err();
        assert_eq!(
            invalid(with("nonce", json!("other")), Some("n")),
            Rejection::Invalid("nonce does not match")
        );
        assert_eq!(
            invalid(with("iss", json!("https://evil")), None),
            Rejection::Invalid("issuer does not match")
        );
        assert_eq!(
            invalid(with("aud", json!("other-app")), None),
            Rejection::Invalid("audience does not include the client id")
        );
        assert_eq!(
            invalid(with("aud", json!(["app", "other"])), None),
            Rejection::Invalid("several audiences and azp is not the client id")
        );
        let mut azp = with("aud", json!(["app", "other"]));
        azp["azp"] = json!("app");
        assert!(check(&token(azp), None).is_ok());
        assert_eq!(invalid(with("exp", json!(NOW)), None), Rejection::Expired);
        let mut no_exp = good();
        no_exp.as_object_mut().map(|m| m.remove("exp"));
        assert_eq!(invalid(no_exp, None), Rejection::Invalid("no exp"));
    }

    #[test]
    fn signatures_keys_and_algorithms() {
        let s = snapshot(&[]);
        let valid = token(good());
        let forged = format!("{}x", &valid[..valid.len() - 1]);
        assert_eq!(
            validate_id_token(&forged, &s, "app", NOW, None).unwrap_err(),
            Rejection::Invalid("signature does not verify")
        );
        let unknown = sign(json!({"alg": "HS256", "kid": "k2"}), good());
        assert_eq!(
            validate_id_token(&unknown, &s, "app", NOW, None).unwrap_err(),
            Rejection::UnknownKey
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(good().to_string())
        );
        assert!(matches!(
            validate_id_token(&none, &s, "app", NOW, None),
            Err(Rejection::Invalid(_))
        ));
        // The provider (or the override) lists the algorithms ID tokens may use.
        let rs_only = snapshot(&["RS256"]);
        assert_eq!(
            validate_id_token(&valid, &rs_only, "app", NOW, None).unwrap_err(),
            Rejection::Invalid("signing algorithm not allowed")
        );
    }

    #[test]
    fn access_token_claims_need_a_verified_unexpired_jwt() {
        let s = snapshot(&[]);
        let claims = access_token_claims(
            &token(json!({"iss": ISS, "scope": "read", "exp": NOW + 5})),
            &s,
            NOW,
        )
        .expect("a verified JWT");
        assert_eq!(claims.payload["scope"], json!("read"));
        assert!(access_token_claims("opaque-token", &s, NOW).is_none());
        assert!(access_token_claims(&token(json!({"iss": ISS, "exp": NOW})), &s, NOW).is_none());
        assert!(access_token_claims(&token(json!({"iss": "https://evil"})), &s, NOW).is_none());
    }
}
