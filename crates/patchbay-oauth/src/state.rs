//! Authorization state: creation, the hash kept server-side, and the PKCE
//! verifier derived from it (so the database holds no verifier).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long a started authorization may be finished.
pub const STATE_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// The prefix hashed with the state to derive the PKCE verifier.
const PKCE_DERIVATION_PREFIX: &str = "patchbay-pkce:";

/// A new state: 32 random bytes, base64url without padding (43 characters).
pub fn generate_state() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 (hex) of a state: the only form the records store keeps.
pub fn hash_state(state: &str) -> String {
    hex_digest(state.as_bytes())
}

/// The PKCE verifier for a state: base64url(SHA-256("patchbay-pkce:" + state)),
/// 43 characters from the RFC 7636 alphabet.
pub fn pkce_verifier(state: &str) -> String {
    let digest = Sha256::digest(format!("{PKCE_DERIVATION_PREFIX}{state}").as_bytes());
    URL_SAFE_NO_PAD.encode(digest)
}

/// The S256 challenge of a verifier: base64url(SHA-256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_long_random_and_url_safe() {
        let first = generate_state();
        let second = generate_state();
        assert_eq!(first.len(), 43);
        assert_ne!(first, second);
        assert!(first
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'));
    }

    #[test]
    fn state_hash_is_sha256_hex() {
        assert_eq!(
            hash_state("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn pkce_verifier_is_derived_and_valid_per_rfc_7636() {
        let verifier = pkce_verifier("some-state");
        assert_eq!(verifier, pkce_verifier("some-state"));
        assert_ne!(verifier, pkce_verifier("other-state"));
        assert_eq!(verifier.len(), 43);
        assert!(verifier
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)));
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(b"patchbay-pkce:some-state"));
        assert_eq!(verifier, expected);
    }

    #[test]
    fn pkce_challenge_matches_the_rfc_7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
