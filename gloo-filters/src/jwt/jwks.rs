//! JSON Web Key Sets read the way Envoy's `Jwks::createFrom(.., JWKS)` reads them
//! (`source/common/jwt/jwks.cc`), and Envoy's key selection (`verifyJwtWithoutTimeChecking`
//! in `source/common/jwt/verify.cc`).
//!
//! As in Envoy, a key that does not parse is skipped; the set is usable while at least one key
//! is. Envoy's X.509 map form (`{"kid": "-----BEGIN CERTIFICATE-----..."}`) is not read.

use base64::Engine;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::{Map, Value};

use super::crypto;
use super::status::JwtStatus;
use super::token::{Alg, Jwt, B64URL};

/// One usable public key (or HMAC secret).
#[derive(Debug)]
struct Key {
    kid: String,
    alg: String,
    /// Its `use` is `sig` or absent (RFC 7517 §4.2): it may verify signatures.
    #[cfg_attr(not(feature = "extauth"), allow(dead_code))]
    signs: bool,
    /// `None` for a P-521 key, which Envoy accepts but ring cannot verify with.
    key: Option<DecodingKey>,
}

/// A parsed key set: the keys that parsed, in their order.
#[derive(Debug)]
pub(crate) struct Jwks {
    keys: Vec<Key>,
}

/// Why a whole key set is unusable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum JwksParseError {
    /// Not a JSON object.
    Json,
    /// No `keys` field.
    NoKeys,
    /// `keys` is not an array.
    BadKeys,
    /// No key in `keys` parsed; the reason for the last one.
    NoValidKeys(&'static str),
}

impl std::fmt::Display for JwksParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksParseError::Json => f.write_str("Jwks is an invalid JSON"),
            JwksParseError::NoKeys => f.write_str("Jwks does not have [keys] field"),
            JwksParseError::BadKeys => f.write_str("[keys] in Jwks is not an array"),
            JwksParseError::NoValidKeys(last) => {
                write!(f, "Jwks doesn't have any valid public key (last: {last})")
            }
        }
    }
}

enum Str<'a> {
    Missing,
    WrongType,
    Ok(&'a str),
}

fn get<'a>(map: &'a Map<String, Value>, name: &str) -> Str<'a> {
    match map.get(name) {
        None => Str::Missing,
        Some(Value::String(s)) => Str::Ok(s),
        Some(_) => Str::WrongType,
    }
}

/// A big-endian integer left-padded (or stripped of leading zeros) to `len` bytes.
fn fixed_width(bytes: &[u8], len: usize) -> Option<Vec<u8>> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let significant = &bytes[first..];
    if significant.len() > len {
        return None;
    }
    let mut out = vec![0u8; len - significant.len()];
    out.extend_from_slice(significant);
    Some(out)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn rsa_key(jwk: &Map<String, Value>, alg: &str) -> Result<Option<DecodingKey>, &'static str> {
    if !(alg.is_empty() || alg.starts_with("RS") || alg.starts_with("PS")) {
        return Err("[alg] is not started with [RS] or [PS] for an RSA key");
    }
    let n = match get(jwk, "n") {
        Str::Missing => return Err("[n] field is missing for a RSA key"),
        Str::WrongType => return Err("[n] field is not string for a RSA key"),
        Str::Ok(n) => n,
    };
    let e = match get(jwk, "e") {
        Str::Missing => return Err("[e] field is missing for a RSA key"),
        Str::WrongType => return Err("[e] field is not string for a RSA key"),
        Str::Ok(e) => e,
    };
    const PARSE: &str = "Jwks RSA [n] or [e] field is missing or has a parse error";
    let n = B64URL.decode(n).map_err(|_| PARSE)?;
    let e = B64URL.decode(e).map_err(|_| PARSE)?;
    let (n, e) = (strip_leading_zeros(&n), strip_leading_zeros(&e));
    // Envoy rejects non-standard exponents early, and keys BoringSSL's `RSA_check_key` refuses.
    if !(e == [3] || e == [1, 0, 1]) || n.is_empty() {
        return Err(PARSE);
    }
    Ok(Some(DecodingKey::from_rsa_raw_components(n, e)))
}

fn ec_key(jwk: &Map<String, Value>, alg: &str) -> Result<Option<DecodingKey>, &'static str> {
    if !alg.is_empty() && !alg.starts_with("ES") {
        return Err("[alg] is not started with [ES] for an EC key");
    }
    let crv = match get(jwk, "crv") {
        Str::WrongType => return Err("[crv] field is not string for an EC key"),
        Str::Missing => "",
        Str::Ok(crv) => crv,
    };
    if !alg.is_empty()
        && !crv.is_empty()
        && !matches!(
            (alg, crv),
            ("ES256", "P-256") | ("ES384", "P-384") | ("ES512", "P-521")
        )
    {
        return Err("[crv] field specified is not compatible with [alg] for an EC key");
    }
    let field_len = if alg == "ES256" || crv == "P-256" || (alg.is_empty() && crv.is_empty()) {
        32
    } else if alg == "ES384" || crv == "P-384" {
        48
    } else if alg == "ES512" || crv == "P-521" {
        66
    } else {
        return Err("[crv] or [alg] field is not supported for an EC key");
    };
    let x = match get(jwk, "x") {
        Str::Missing => return Err("[x] field is missing for an EC key"),
        Str::WrongType => return Err("[x] field is not string for an EC key"),
        Str::Ok(x) => x,
    };
    let y = match get(jwk, "y") {
        Str::Missing => return Err("[y] field is missing for an EC key"),
        Str::WrongType => return Err("[y] field is not string for an EC key"),
        Str::Ok(y) => y,
    };
    const BAD_B64: &str = "Jwks EC [x] or [y] field is an invalid Base64.";
    const PARSE: &str = "Jwks EC [x] and [y] fields have a parse error.";
    let x = B64URL.decode(x).map_err(|_| BAD_B64)?;
    let y = B64URL.decode(y).map_err(|_| BAD_B64)?;
    let x = fixed_width(&x, field_len).ok_or(PARSE)?;
    let y = fixed_width(&y, field_len).ok_or(PARSE)?;
    if field_len == 66 {
        return Ok(None);
    }
    let mut point = Vec::with_capacity(1 + 2 * field_len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    // ring checks the point is on the curve when it verifies; an off-curve point simply never
    // verifies (Envoy refuses it here, which only changes the status when no key is left).
    Ok(Some(DecodingKey::from_ec_der(&point)))
}

fn oct_key(jwk: &Map<String, Value>, alg: &str) -> Result<Option<DecodingKey>, &'static str> {
    if !alg.is_empty() && !matches!(alg, "HS256" | "HS384" | "HS512") {
        return Err("[alg] does not start with [HS] for an HMAC key");
    }
    let k = match get(jwk, "k") {
        Str::Missing => return Err("[k] field is missing for an HMAC key"),
        Str::WrongType => return Err("[k] field is not string for an HMAC key"),
        Str::Ok(k) => k,
    };
    const BAD: &str = "Jwks Oct key is an invalid Base64";
    let secret = B64URL.decode(k).map_err(|_| BAD)?;
    DecodingKey::from_secret(&secret).map(Some).map_err(|_| BAD)
}

fn okp_key(jwk: &Map<String, Value>, alg: &str) -> Result<Option<DecodingKey>, &'static str> {
    if !alg.is_empty() && alg != "EdDSA" {
        return Err("[alg] is not [EdDSA] for an OKP key");
    }
    match get(jwk, "crv") {
        Str::Missing => return Err("[crv] field is missing for an OKP key"),
        Str::WrongType => return Err("[crv] field is not string for an OKP key"),
        Str::Ok("Ed25519") => {}
        Str::Ok(_) => return Err("[crv] field is not supported for an OKP key"),
    }
    let x = match get(jwk, "x") {
        Str::Missing => return Err("[x] field is missing for an OKP key"),
        Str::WrongType => return Err("[x] field is not string for an OKP key"),
        Str::Ok(x) => x,
    };
    let x = B64URL
        .decode(x)
        .map_err(|_| "Jwks OKP [x] field is an invalid Base64.")?;
    if x.len() != 32 {
        return Err("Jwks OKP [x] field is wrong length.");
    }
    Ok(Some(DecodingKey::from_ed_der(&x)))
}

fn parse_key(jwk: &Map<String, Value>) -> Result<Key, &'static str> {
    let kty = match get(jwk, "kty") {
        Str::Missing => return Err("[kty] is missing in [keys]"),
        Str::WrongType => return Err("[kty] is bad in [keys]"),
        Str::Ok(kty) => kty,
    };
    // Optional; a non-string counts as absent.
    let kid = match get(jwk, "kid") {
        Str::Ok(kid) => kid.to_owned(),
        _ => String::new(),
    };
    let alg = match get(jwk, "alg") {
        Str::Ok(alg) => alg.to_owned(),
        _ => String::new(),
    };
    let signs = !matches!(get(jwk, "use"), Str::Ok(usage) if usage != "sig");
    let key = match kty {
        "EC" => ec_key(jwk, &alg)?,
        "RSA" => rsa_key(jwk, &alg)?,
        "oct" => oct_key(jwk, &alg)?,
        "OKP" => okp_key(jwk, &alg)?,
        _ => return Err("[kty] is not supported in [keys]"),
    };
    Ok(Key {
        kid,
        alg,
        signs,
        key,
    })
}

impl Jwks {
    /// Parses a JWKS document.
    pub(crate) fn parse(json: &[u8]) -> Result<Jwks, JwksParseError> {
        let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(json) else {
            return Err(JwksParseError::Json);
        };
        let keys = match doc.get("keys") {
            None => return Err(JwksParseError::NoKeys),
            Some(Value::Array(keys)) => keys,
            Some(_) => return Err(JwksParseError::BadKeys),
        };
        let mut parsed = Vec::new();
        let mut last_error = "[keys] is empty";
        for key in keys {
            // Envoy skips entries that are not objects.
            let Value::Object(key) = key else { continue };
            match parse_key(key) {
                Ok(key) => parsed.push(key),
                Err(e) => last_error = e,
            }
        }
        if parsed.is_empty() {
            return Err(JwksParseError::NoValidKeys(last_error));
        }
        Ok(Jwks { keys: parsed })
    }

    /// Whether some key could be selected for a token with this `kid` (ignoring `alg`): the
    /// question a key rotation asks.
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        kid.is_empty() || self.keys.iter().any(|k| k.kid.is_empty() || k.kid == kid)
    }

    /// Envoy's `verifyJwtWithoutTimeChecking`: every key whose `kid` (when both sides have
    /// one) and `alg` (when the key has one) match is tried in order; the first that verifies
    /// wins. No candidate at all is [`JwtStatus::JwksKidAlgMismatch`], candidates that all
    /// fail are [`JwtStatus::JwtVerificationFail`].
    ///
    /// Unlike Envoy, a key is only tried with algorithms of its own family: Envoy checks any
    /// `alg` against an `oct` key as HMAC-SHA256 and against an `OKP` key as Ed25519; here
    /// such a pairing simply fails (algorithm confusion is refused outright).
    pub(crate) fn verify(&self, jwt: &Jwt) -> Result<(), JwtStatus> {
        self.verify_among(jwt, |_| true)
    }

    /// [`verify`](Self::verify) with only the keys that have a `kid` and may sign (`use`
    /// absent or `sig`): how Gloo's ext auth server picks keys for JWT access tokens (their
    /// callers require the token's `kid`).
    #[cfg_attr(not(feature = "extauth"), allow(dead_code))]
    pub(crate) fn verify_with_kid(&self, jwt: &Jwt) -> Result<(), JwtStatus> {
        self.verify_among(jwt, |key| !key.kid.is_empty() && key.signs)
    }

    fn verify_among(&self, jwt: &Jwt, eligible: impl Fn(&Key) -> bool) -> Result<(), JwtStatus> {
        let mut kid_alg_matched = false;
        for key in self.keys.iter().filter(|key| eligible(key)) {
            if !jwt.kid.is_empty() && !key.kid.is_empty() && key.kid != jwt.kid {
                continue;
            }
            if !key.alg.is_empty() && key.alg != jwt.alg_name {
                continue;
            }
            kid_alg_matched = true;
            let (Some(decoding), Alg::Known(algorithm)) = (&key.key, jwt.alg) else {
                continue;
            };
            if decoding.family() != algorithm.family() {
                continue;
            }
            if algorithm == Algorithm::EdDSA && jwt.signature.len() != 64 {
                // Envoy stops at once with this status.
                return Err(JwtStatus::JwtEd25519SignatureWrongLength);
            }
            if decoding.family() == AlgorithmFamily::Ec && !ec_curve_fits(decoding, algorithm) {
                continue;
            }
            if crypto::verify(
                algorithm,
                decoding,
                jwt.signed_data.as_bytes(),
                &jwt.signature,
            ) {
                return Ok(());
            }
        }
        Err(if kid_alg_matched {
            JwtStatus::JwtVerificationFail
        } else {
            JwtStatus::JwksKidAlgMismatch
        })
    }
}

/// ES256 needs a P-256 point (65 bytes), ES384 a P-384 one (97 bytes).
fn ec_curve_fits(key: &DecodingKey, algorithm: Algorithm) -> bool {
    let len = match key.kind() {
        jsonwebtoken::DecodingKeyKind::SecretOrDer(point) => point.len(),
        jsonwebtoken::DecodingKeyKind::RsaModulusExponent { .. } => return false,
    };
    matches!(
        (algorithm, len),
        (Algorithm::ES256, 65) | (Algorithm::ES384, 97)
    )
}
