//! Parsing a compact JWS the way Envoy's `Jwt::parseFromString` does
//! (`source/common/jwt/jwt.cc`), so every malformed token gets Envoy's status.

use std::str::FromStr;
use std::sync::Arc;

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::status::JwtStatus;

/// base64url as abseil's `WebSafeBase64Unescape` reads it: padding optional, unused trailing
/// bits ignored.
pub(crate) const B64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The `alg` values Envoy implements. `ES512` is accepted by the parser (as in Envoy) but no
/// key can verify it here: ring has no P-521.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alg {
    Known(Algorithm),
    Es512,
}

impl Alg {
    fn parse(alg: &str) -> Option<Alg> {
        match alg {
            "ES512" => Some(Alg::Es512),
            // jsonwebtoken knows exactly Envoy's other twelve names.
            other => Algorithm::from_str(other).ok().map(Alg::Known),
        }
    }
}

/// A parsed (not yet verified) token.
#[derive(Debug)]
pub(crate) struct Jwt {
    pub(crate) alg_name: String,
    pub(crate) alg: Alg,
    /// Empty when the header has none (Envoy's convention).
    pub(crate) kid: String,
    pub(crate) iss: String,
    pub(crate) nbf: u64,
    pub(crate) exp: u64,
    pub(crate) audiences: Vec<String>,
    /// `header.payload`, base64url, as signed.
    pub(crate) signed_data: String,
    /// The payload section as it appeared in the token (for `forward_payload_header`).
    pub(crate) payload_b64: String,
    pub(crate) signature: Vec<u8>,
    pub(crate) header: Arc<Map<String, Value>>,
    pub(crate) payload: Arc<Map<String, Value>>,
}

enum Field<T> {
    Missing,
    WrongType,
    OutOfRange,
    Ok(T),
}

fn get_string(map: &Map<String, Value>, name: &str) -> Field<String> {
    match map.get(name) {
        None => Field::Missing,
        Some(Value::String(s)) => Field::Ok(s.clone()),
        Some(_) => Field::WrongType,
    }
}

/// Envoy's `StructUtils::GetUInt64`: a JSON number (a double), in `[0, 2^64)`, truncated.
fn get_u64(map: &Map<String, Value>, name: &str) -> Field<u64> {
    match map.get(name) {
        None => Field::Missing,
        Some(Value::Number(n)) => {
            let d = n.as_f64().unwrap_or(f64::NAN);
            // NaN fails both comparisons; 2^64 as f64 is u64::MAX rounded up.
            if d.is_nan() || d < 0.0 || d >= u64::MAX as f64 {
                Field::OutOfRange
            } else {
                Field::Ok(d as u64)
            }
        }
        Some(_) => Field::WrongType,
    }
}

fn json_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

impl Jwt {
    /// Parses `token` with Envoy's checks, in Envoy's order.
    pub(crate) fn parse(token: &str) -> Result<Jwt, JwtStatus> {
        // Exactly three sections, empty ones skipped (abseil's `SkipEmpty`).
        let mut parts = token.split('.').filter(|p| !p.is_empty());
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtStatus::JwtBadFormat);
        };

        let header_bytes = B64URL
            .decode(h64)
            .map_err(|_| JwtStatus::JwtHeaderParseErrorBadBase64)?;
        let header = json_object(&header_bytes).ok_or(JwtStatus::JwtHeaderParseErrorBadJson)?;
        let alg_name = match get_string(&header, "alg") {
            Field::Ok(alg) => alg,
            _ => return Err(JwtStatus::JwtHeaderBadAlg),
        };
        let alg = Alg::parse(&alg_name).ok_or(JwtStatus::JwtHeaderNotImplementedAlg)?;
        let kid = match get_string(&header, "kid") {
            Field::Ok(kid) => kid,
            Field::WrongType => return Err(JwtStatus::JwtHeaderBadKid),
            _ => String::new(),
        };

        let payload_bytes = B64URL
            .decode(p64)
            .map_err(|_| JwtStatus::JwtPayloadParseErrorBadBase64)?;
        let payload = json_object(&payload_bytes).ok_or(JwtStatus::JwtPayloadParseErrorBadJson)?;
        let iss = match get_string(&payload, "iss") {
            Field::Ok(iss) => iss,
            Field::WrongType => return Err(JwtStatus::JwtPayloadParseErrorIssNotString),
            _ => String::new(),
        };
        if let Field::WrongType = get_string(&payload, "sub") {
            return Err(JwtStatus::JwtPayloadParseErrorSubNotString);
        }
        let time = |name, not_integer, out_of_range| match get_u64(&payload, name) {
            Field::Ok(v) => Ok(v),
            Field::Missing => Ok(0),
            Field::WrongType => Err(not_integer),
            Field::OutOfRange => Err(out_of_range),
        };
        time(
            "iat",
            JwtStatus::JwtPayloadParseErrorIatNotInteger,
            JwtStatus::JwtPayloadParseErrorIatOutOfRange,
        )?;
        let nbf = time(
            "nbf",
            JwtStatus::JwtPayloadParseErrorNbfNotInteger,
            JwtStatus::JwtPayloadParseErrorNbfOutOfRange,
        )?;
        let exp = time(
            "exp",
            JwtStatus::JwtPayloadParseErrorExpNotInteger,
            JwtStatus::JwtPayloadParseErrorExpOutOfRange,
        )?;
        if let Field::WrongType = get_string(&payload, "jti") {
            return Err(JwtStatus::JwtPayloadParseErrorJtiNotString);
        }
        let audiences = match payload.get("aud") {
            None => Vec::new(),
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(JwtStatus::JwtPayloadParseErrorAudNotString),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(JwtStatus::JwtPayloadParseErrorAudNotString),
        };

        let signature = B64URL
            .decode(s64)
            .map_err(|_| JwtStatus::JwtSignatureParseErrorBadBase64)?;

        Ok(Jwt {
            alg_name,
            alg,
            kid,
            iss,
            nbf,
            exp,
            audiences,
            signed_data: format!("{h64}.{p64}"),
            payload_b64: p64.to_owned(),
            signature,
            header: Arc::new(header),
            payload: Arc::new(payload),
        })
    }

    /// Envoy's `verifyTimeConstraint`: `nbf` against now plus skew, then `exp` (0 = none)
    /// against now minus skew. Unsigned arithmetic wraps as it does in Envoy.
    pub(crate) fn check_time(&self, now: u64, clock_skew: u64) -> Result<(), JwtStatus> {
        if now.wrapping_add(clock_skew) < self.nbf {
            return Err(JwtStatus::JwtNotYetValid);
        }
        if self.exp != 0 && now > self.exp.wrapping_add(clock_skew) {
            return Err(JwtStatus::JwtExpired);
        }
        Ok(())
    }
}

/// Envoy's `CheckAudience`: configured audiences with an `http://`/`https://` prefix and one
/// trailing `/` removed; no configured audience allows everything; otherwise any one token
/// audience must match.
#[derive(Clone, Debug, Default)]
pub(crate) struct AudienceCheck {
    allowed: Vec<String>,
}

fn sanitize_audience(aud: &str) -> &str {
    let aud = aud
        .strip_prefix("http://")
        .or_else(|| aud.strip_prefix("https://"))
        .unwrap_or(aud);
    aud.strip_suffix('/').unwrap_or(aud)
}

impl AudienceCheck {
    pub(crate) fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(audiences: I) -> Self {
        let mut allowed: Vec<String> = audiences
            .into_iter()
            .map(|a| sanitize_audience(a.as_ref()).to_owned())
            .collect();
        allowed.sort();
        allowed.dedup();
        Self { allowed }
    }

    pub(crate) fn allows(&self, token_audiences: &[String]) -> bool {
        self.allowed.is_empty()
            || token_audiences
                .iter()
                .any(|aud| self.allowed.iter().any(|a| a == sanitize_audience(aud)))
    }
}
