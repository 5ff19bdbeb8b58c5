//! Authorization state: creation, the hash kept server-side, the random PKCE
//! verifier kept with it, and the cookie binding a flow to the browser that began it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long a started authorization may be finished.
pub const STATE_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// The prefix of the cookie that binds a flow to a browser; the rest names the state.
pub const BINDING_COOKIE_PREFIX: &str = "patchbay_oauth_";

/// 32 random bytes, base64url without padding (43 characters).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new state: 32 random bytes, base64url without padding (43 characters).
pub fn generate_state() -> String {
    random_token()
}

/// A new PKCE verifier (RFC 7636 §4.1): 32 random bytes, base64url (43 characters),
/// unrelated to the state, so seeing the callback URL does not reveal it.
pub fn generate_pkce_verifier() -> String {
    random_token()
}

/// A new browser-binding cookie value: 32 random bytes, base64url.
pub fn generate_binding() -> String {
    random_token()
}

/// The name of the cookie binding `state`'s flow to a browser, so concurrent flows
/// in one browser keep separate cookies.
pub fn binding_cookie_name(state: &str) -> String {
    format!("{BINDING_COOKIE_PREFIX}{}", &hash_state(state)[..16])
}

/// The SHA-256 (hex) of a state: the only form the records store keeps.
pub fn hash_state(state: &str) -> String {
    hex_digest(state.as_bytes())
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
    fn pkce_verifiers_are_random_and_valid_per_rfc_7636() {
        let verifier = generate_pkce_verifier();
        assert_ne!(verifier, generate_pkce_verifier());
        assert_eq!(verifier.len(), 43);
        assert!(verifier
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)));
    }

    #[test]
    fn binding_cookies_are_named_per_state() {
        let name = binding_cookie_name("some-state");
        assert!(name.starts_with(BINDING_COOKIE_PREFIX));
        assert_eq!(name, binding_cookie_name("some-state"));
        assert_ne!(name, binding_cookie_name("other-state"));
        assert!(name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_'));
    }

    #[test]
    fn pkce_challenge_matches_the_rfc_7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
