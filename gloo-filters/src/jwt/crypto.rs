//! Signature verification: a jsonwebtoken [`CryptoProvider`] backed by `ring`.
//!
//! jsonwebtoken 12 keeps its cryptography behind `CryptoProvider` (a verifier factory per
//! algorithm and key). Its built-in providers bring either the RustCrypto crates or aws-lc-rs;
//! the workspace already builds `ring` for rustls, so this module plugs ring in instead. The
//! provider is called directly (never installed as the process default), so it does not
//! interfere with any other jsonwebtoken user in the same program.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::{hmac, signature as rs};

/// The provider: verification only (the filter never signs).
pub(crate) static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: no_signer,
    verifier_factory: ring_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

fn no_signer(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    Err(ErrorKind::Provider("gloo-filters' ring provider only verifies".to_owned()).into())
}

/// A verifier for `algorithm` with `key`, if the key's family is the algorithm's (an RSA key
/// never checks an HMAC, an HMAC secret never checks an RSA signature, ...).
fn ring_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    let algorithm = *algorithm;
    if key.family() != algorithm.family() {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let verifier: Box<dyn JwtVerifier> = match (algorithm.family(), key.kind()) {
        (AlgorithmFamily::Hmac, DecodingKeyKind::SecretOrDer(secret)) => {
            let alg = match algorithm {
                Algorithm::HS384 => hmac::HMAC_SHA384,
                Algorithm::HS512 => hmac::HMAC_SHA512,
                _ => hmac::HMAC_SHA256,
            };
            Box::new(HmacVerifier {
                algorithm,
                key: hmac::Key::new(alg, secret),
            })
        }
        (AlgorithmFamily::Rsa, DecodingKeyKind::RsaModulusExponent { n, e }) => {
            let params: &'static rs::RsaParameters = match algorithm {
                Algorithm::RS256 => &rs::RSA_PKCS1_2048_8192_SHA256,
                Algorithm::RS384 => &rs::RSA_PKCS1_2048_8192_SHA384,
                Algorithm::RS512 => &rs::RSA_PKCS1_2048_8192_SHA512,
                Algorithm::PS256 => &rs::RSA_PSS_2048_8192_SHA256,
                Algorithm::PS384 => &rs::RSA_PSS_2048_8192_SHA384,
                Algorithm::PS512 => &rs::RSA_PSS_2048_8192_SHA512,
                _ => return Err(ErrorKind::InvalidAlgorithm.into()),
            };
            Box::new(RsaVerifier {
                algorithm,
                params,
                n: n.clone(),
                e: e.clone(),
            })
        }
        (AlgorithmFamily::Ec, DecodingKeyKind::SecretOrDer(point)) => {
            let alg: &'static rs::EcdsaVerificationAlgorithm = match algorithm {
                Algorithm::ES256 => &rs::ECDSA_P256_SHA256_FIXED,
                Algorithm::ES384 => &rs::ECDSA_P384_SHA384_FIXED,
                _ => return Err(ErrorKind::InvalidAlgorithm.into()),
            };
            Box::new(PublicKeyVerifier {
                algorithm,
                alg,
                key: point.clone(),
            })
        }
        (AlgorithmFamily::Ed, DecodingKeyKind::SecretOrDer(x)) => Box::new(PublicKeyVerifier {
            algorithm,
            alg: &rs::ED25519,
            key: x.clone(),
        }),
        _ => return Err(ErrorKind::InvalidKeyFormat.into()),
    };
    Ok(verifier)
}

struct HmacVerifier {
    algorithm: Algorithm,
    key: hmac::Key,
}

impl Verifier<Vec<u8>> for HmacVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        // Constant-time comparison inside ring.
        hmac::verify(&self.key, msg, sig).map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for HmacVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

struct RsaVerifier {
    algorithm: Algorithm,
    params: &'static rs::RsaParameters,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl Verifier<Vec<u8>> for RsaVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        rs::RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(self.params, msg, sig)
        .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RsaVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

struct PublicKeyVerifier {
    algorithm: Algorithm,
    alg: &'static dyn rs::VerificationAlgorithm,
    key: Vec<u8>,
}

impl Verifier<Vec<u8>> for PublicKeyVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        rs::UnparsedPublicKey::new(self.alg, &self.key)
            .verify(msg, sig)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for PublicKeyVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// Whether `signature` over `message` verifies with `key` under `algorithm`.
pub(crate) fn verify(
    algorithm: Algorithm,
    key: &DecodingKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    match (RING_PROVIDER.verifier_factory)(&algorithm, key) {
        Ok(verifier) => verifier.verify(message, &signature.to_vec()).is_ok(),
        Err(_) => false,
    }
}
