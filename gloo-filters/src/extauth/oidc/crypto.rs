//! The secrets of the flow: random values from the operating system (ring's `SystemRandom`),
//! AES-256-GCM sealing of cookie values, PKCE's S256 challenge and constant-time comparison.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

/// `n` random bytes from the OS, base64url without padding; `None` if the OS refuses.
pub(crate) fn random_token(rng: &SystemRandom, n: usize) -> Option<String> {
    let mut bytes = vec![0u8; n];
    rng.fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// PKCE's `S256` challenge of `verifier` (RFC 7636 §4.2).
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// Equality of two secrets in time that depends on their lengths only.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimizer from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

/// AES-256-GCM with a random 96-bit nonce per value; the cookie name is the associated data,
/// so a value sealed for one cookie never opens as another. Sealed form:
/// base64url(nonce ‖ ciphertext ‖ tag).
pub(crate) struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(AES-256-GCM)")
    }
}

impl Sealer {
    /// A sealer with a 32-byte key; `None` for any other length.
    pub(crate) fn new(key: &[u8]) -> Option<Self> {
        let key = UnboundKey::new(&AES_256_GCM, key).ok()?;
        Some(Self {
            key: LessSafeKey::new(key),
        })
    }

    /// A sealer with a fresh random key.
    pub(crate) fn random(rng: &SystemRandom) -> Option<Self> {
        let mut key = [0u8; 32];
        rng.fill(&mut key).ok()?;
        Self::new(&key)
    }

    pub(crate) fn seal(&self, rng: &SystemRandom, aad: &str, plaintext: &[u8]) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce).ok()?;
        let mut out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut out,
            )
            .ok()?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&out);
        Some(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The plaintext, or `None` if `sealed` was not sealed by this key for `aad` (tampered,
    /// truncated, another key, another cookie).
    pub(crate) fn open(&self, aad: &str, sealed: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN + aead::MAX_TAG_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buffer)
            .ok()?;
        Some(plaintext.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_unchanged_under_their_name() {
        let rng = SystemRandom::new();
        let sealer = Sealer::new(b"0123456789abcdef0123456789abcdef").expect("32-byte key");
        let sealed = sealer
            .seal(&rng, "id_token", b"header.payload.sig")
            .expect("seal");
        assert_eq!(
            sealer.open("id_token", &sealed).as_deref(),
            Some(&b"header.payload.sig"[..])
        );
        // Two seals of one value differ (random nonces).
        assert_ne!(
            sealer.seal(&rng, "id_token", b"header.payload.sig"),
            Some(sealed.clone())
        );
        // Another cookie name, a flipped bit, a truncation, another key: nothing opens.
        assert_eq!(sealer.open("access_token", &sealed), None);
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).expect("b64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            sealer.open("id_token", &URL_SAFE_NO_PAD.encode(&bytes)),
            None
        );
        assert_eq!(sealer.open("id_token", &sealed[..10]), None);
        assert_eq!(sealer.open("id_token", "not base64!"), None);
        let other = Sealer::random(&rng).expect("key");
        assert_eq!(other.open("id_token", &sealed), None);
        assert!(Sealer::new(b"short").is_none());
    }

    #[test]
    fn pkce_challenge_is_rfc7636_s256() {
        // base64url(SHA-256(verifier)) without padding, as computed by
        // `printf %s "$verifier" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d =`.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r2wW1gFWFzWjXk"),
            "V3HHTjoKiW2aIyl5m-rPK1f9ODRu-3IrJ1GXzcpCYuU"
        );
    }

    #[test]
    fn random_tokens_and_comparison() {
        let rng = SystemRandom::new();
        let a = random_token(&rng, 32).expect("random");
        let b = random_token(&rng, 32).expect("random");
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(ct_eq(a.as_bytes(), a.clone().as_bytes()));
        assert!(!ct_eq(a.as_bytes(), b.as_bytes()));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
