//! PEM public keys to JSON Web Keys, as Gloo's JWT plugin converts a provider's
//! `jwks.local.key` before handing it to Envoy (whose `local_jwks` reads a JWKS only).
//!
//! Accepted: `PUBLIC KEY` (SubjectPublicKeyInfo) holding an RSA, P-256 / P-384 EC or Ed25519
//! key, and `RSA PUBLIC KEY` (PKCS #1). A small DER reader covers exactly these structures;
//! anything else is refused with the reason.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

/// `rsaEncryption` (1.2.840.113549.1.1.1).
const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// `id-ecPublicKey` (1.2.840.10045.2.1).
const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// `id-Ed25519` (1.3.101.112).
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
/// `prime256v1` (1.2.840.10045.3.1.7).
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `secp384r1` (1.3.132.0.34).
const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;

/// The JWK of one PEM public key.
pub(crate) fn pem_to_jwk(pem: &str) -> Result<Value, String> {
    let (label, der) = decode_pem(pem)?;
    match label.as_str() {
        "PUBLIC KEY" => spki_to_jwk(&der),
        "RSA PUBLIC KEY" => rsa_to_jwk(&der),
        other => Err(format!(
            "a PEM {other:?} is not a public key (expected PUBLIC KEY or RSA PUBLIC KEY)"
        )),
    }
}

fn decode_pem(pem: &str) -> Result<(String, Vec<u8>), String> {
    let text = pem.trim();
    let label = text
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.split_once("-----"))
        .map(|(label, _)| label.to_string())
        .ok_or("not a PEM block: expected -----BEGIN ...-----")?;
    let end = format!("-----END {label}-----");
    let body = text
        .split_once("-----\n")
        .or_else(|| text.split_once("-----\r\n"))
        .map(|(_, body)| body)
        .and_then(|body| body.split_once(end.as_str()))
        .map(|(body, _)| body)
        .ok_or_else(|| format!("PEM block has no {end} line"))?;
    let base64: String = body.split_whitespace().collect();
    let der = STANDARD
        .decode(base64)
        .map_err(|e| format!("PEM body is not base64: {e}"))?;
    Ok((label, der))
}

fn spki_to_jwk(der: &[u8]) -> Result<Value, String> {
    let (spki, _) = expect(der, SEQUENCE, "SubjectPublicKeyInfo")?;
    let (algorithm, rest) = expect(spki, SEQUENCE, "AlgorithmIdentifier")?;
    let (bits, _) = expect(rest, BIT_STRING, "subjectPublicKey")?;
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err("subjectPublicKey: unused bits are not supported".to_string()),
    };
    let (oid, params) = expect(algorithm, OID, "algorithm")?;
    if oid == RSA {
        rsa_to_jwk(key)
    } else if oid == EC {
        let (curve, _) = expect(params, OID, "EC curve")?;
        let (name, size) = if curve == P256 {
            ("P-256", 32)
        } else if curve == P384 {
            ("P-384", 48)
        } else {
            return Err("EC keys must be on P-256 or P-384".to_string());
        };
        match key.split_first() {
            Some((4, point)) if point.len() == 2 * size => {
                let (x, y) = point.split_at(size);
                Ok(json!({"kty": "EC", "crv": name, "x": b64(x), "y": b64(y)}))
            }
            _ => Err(format!("the {name} key is not an uncompressed point")),
        }
    } else if oid == ED25519 {
        if key.len() != 32 {
            return Err("an Ed25519 key is 32 bytes".to_string());
        }
        Ok(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key)}))
    } else {
        Err("only RSA, EC (P-256, P-384) and Ed25519 public keys are supported".to_string())
    }
}

/// PKCS #1 `RSAPublicKey`: `SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_to_jwk(der: &[u8]) -> Result<Value, String> {
    let (key, _) = expect(der, SEQUENCE, "RSAPublicKey")?;
    let (n, rest) = expect(key, INTEGER, "modulus")?;
    let (e, _) = expect(rest, INTEGER, "publicExponent")?;
    Ok(json!({"kty": "RSA", "n": b64(unsigned(n)), "e": b64(unsigned(e))}))
}

/// A DER INTEGER's magnitude: without the 0x00 that keeps it positive.
fn unsigned(integer: &[u8]) -> &[u8] {
    match integer {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads one DER element with tag `tag`: its contents and what follows it.
fn expect<'a>(der: &'a [u8], tag: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    let truncated = || format!("{what}: the key's DER is truncated");
    let (&found, rest) = der.split_first().ok_or_else(truncated)?;
    if found != tag {
        return Err(format!("{what}: unexpected DER tag 0x{found:02x}"));
    }
    let (&first, rest) = rest.split_first().ok_or_else(truncated)?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err(truncated());
        }
        let (bytes, rest) = rest.split_at(count);
        let length = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (length, rest)
    };
    if rest.len() < length {
        return Err(truncated());
    }
    Ok(rest.split_at(length))
}

#[cfg(test)]
mod tests {
    use super::*;

    // `openssl genrsa 2048 | openssl rsa -pubout` (and `-RSAPublicKey_out`); the JWK's `n` was
    // computed separately from `openssl rsa -noout -modulus`.
    const RSA_SPKI: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA08ETCncc+fIDm7+516HM\n91VpNY8aA4fB2XEAgXAyCUxB6Sd5wNqXk5ayvsiEcfv9inLlEf3rc9wZ6qhnVFLk\n7+ycNKQPuCLopxvjGkMhLASKBL85SLfv/kI58fgMSpVC0id0Nn5JF60aoxi/ZVsp\nJwti/bouMdEVQE31j4Dcb014+craeNtTpOrYJMjVdgC9FdzlQ88EX9DD4dD08CxW\nMt9ybvyhBx2Q3nqq/KuTzgnLY4Sc3WOP2+PYUdlEzegENinFzROygt3zkjkk6pHb\nqxvyYJ2+/RW+W5lyVF5VcN3GQ6kA7Zx4iN8GVlVSs3fY4r2jctC8CCohJii6Ci+e\nyQIDAQAB\n-----END PUBLIC KEY-----\n";
    const RSA_PKCS1: &str = "-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEA08ETCncc+fIDm7+516HM91VpNY8aA4fB2XEAgXAyCUxB6Sd5wNqX\nk5ayvsiEcfv9inLlEf3rc9wZ6qhnVFLk7+ycNKQPuCLopxvjGkMhLASKBL85SLfv\n/kI58fgMSpVC0id0Nn5JF60aoxi/ZVspJwti/bouMdEVQE31j4Dcb014+craeNtT\npOrYJMjVdgC9FdzlQ88EX9DD4dD08CxWMt9ybvyhBx2Q3nqq/KuTzgnLY4Sc3WOP\n2+PYUdlEzegENinFzROygt3zkjkk6pHbqxvyYJ2+/RW+W5lyVF5VcN3GQ6kA7Zx4\niN8GVlVSs3fY4r2jctC8CCohJii6Ci+eyQIDAQAB\n-----END RSA PUBLIC KEY-----\n";
    const RSA_N: &str = "08ETCncc-fIDm7-516HM91VpNY8aA4fB2XEAgXAyCUxB6Sd5wNqXk5ayvsiEcfv9inLlEf3rc9wZ6qhnVFLk7-ycNKQPuCLopxvjGkMhLASKBL85SLfv_kI58fgMSpVC0id0Nn5JF60aoxi_ZVspJwti_bouMdEVQE31j4Dcb014-craeNtTpOrYJMjVdgC9FdzlQ88EX9DD4dD08CxWMt9ybvyhBx2Q3nqq_KuTzgnLY4Sc3WOP2-PYUdlEzegENinFzROygt3zkjkk6pHbqxvyYJ2-_RW-W5lyVF5VcN3GQ6kA7Zx4iN8GVlVSs3fY4r2jctC8CCohJii6Ci-eyQ";

    #[test]
    fn rsa_keys_become_rsa_jwks() {
        for pem in [RSA_SPKI, RSA_PKCS1] {
            let jwk = pem_to_jwk(pem).expect("converted");
            assert_eq!(jwk, json!({"kty": "RSA", "n": RSA_N, "e": "AQAB"}));
        }
    }

    // `openssl ecparam -name prime256v1 -genkey | openssl ec -pubout`; x and y from
    // `openssl ec -text` (04 || x || y).
    const EC_SPKI: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEz4xFV/wn8YGmDu9wLUo3aMEdhYwe\nVUYawDdoCG091gtxKMjHMNKMiPiVeMOqTyb4SkK645/tqEMZnX8VHJYRFw==\n-----END PUBLIC KEY-----\n";

    #[test]
    fn a_p256_key_becomes_an_ec_jwk() {
        let jwk = pem_to_jwk(EC_SPKI).expect("converted");
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        let x = URL_SAFE_NO_PAD
            .decode(jwk["x"].as_str().expect("x"))
            .expect("x");
        let y = URL_SAFE_NO_PAD
            .decode(jwk["y"].as_str().expect("y"))
            .expect("y");
        assert_eq!(&x[..4], &[0xcf, 0x8c, 0x45, 0x57]);
        assert_eq!(&y[28..], &[0x1c, 0x96, 0x11, 0x17]);
        assert_eq!((x.len(), y.len()), (32, 32));
    }

    // `openssl genpkey -algorithm ed25519 | openssl pkey -pubout`
    const ED25519_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";

    #[test]
    fn an_ed25519_key_becomes_an_okp_jwk() {
        let jwk = pem_to_jwk(ED25519_PEM).expect("converted");
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        let x = URL_SAFE_NO_PAD
            .decode(jwk["x"].as_str().expect("x"))
            .expect("base64url");
        assert_eq!(x.len(), 32);
        assert_eq!(x[0], 0x19);
    }

    #[test]
    fn what_is_not_a_public_key_is_refused_with_the_reason() {
        let private =
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----";
        assert!(pem_to_jwk(private)
            .unwrap_err()
            .contains("is not a public key"));
        let truncated =
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9E\n-----END PUBLIC KEY-----";
        assert!(pem_to_jwk(truncated).unwrap_err().contains("truncated"));
        let no_end = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9E\n";
        assert!(pem_to_jwk(no_end).unwrap_err().contains("no -----END"));
        let not_base64 = "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----";
        assert!(pem_to_jwk(not_base64).unwrap_err().contains("not base64"));
    }
}
