//! Consumption tokens and secret hashing.
//!
//! A confirmed request yields a token that the relying party spends once to execute the action.
//! It is derived from the request id with a server key, so it can be shown again on every poll
//! without ever being stored: only its hash is kept.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// The prefix every consumption token starts with.
pub const TOKEN_PREFIX: &str = "cst_";

/// The consumption token of a request: `cst_` followed by base64url (no padding) of
/// HMAC-SHA256(`key`, `"countersign-token-v1:" + id`), the id in hyphenated form.
pub fn derive_token(key: &[u8], request_id: Uuid) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(b"countersign-token-v1:");
    mac.update(request_id.hyphenated().to_string().as_bytes());
    format!(
        "{TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Lowercase hex SHA-256 of a secret. Only for high-entropy secrets (consumption tokens,
/// device tokens); passwords need a slow hash instead.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` hashes to `hash`, compared in constant time.
pub fn secret_matches(secret: &str, hash: &str) -> bool {
    hash_secret(secret).as_bytes().ct_eq(hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Uuid {
        Uuid::parse_str("0193a5b0-7c1e-7d4a-9f00-000000000001").unwrap()
    }

    #[test]
    fn a_token_is_deterministic_for_a_key_and_request() {
        let token = derive_token(b"server key", id());
        assert_eq!(token, derive_token(b"server key", id()));
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 43);
        assert!(token[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn a_token_depends_on_the_key_and_on_the_request() {
        let token = derive_token(b"server key", id());
        assert_ne!(token, derive_token(b"other key", id()));
        assert_ne!(token, derive_token(b"server key", Uuid::nil()));
    }

    #[test]
    fn a_token_is_the_hmac_of_the_labelled_hyphenated_id() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(b"countersign-token-v1:0193a5b0-7c1e-7d4a-9f00-000000000001");
        let expected = format!(
            "cst_{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(derive_token(b"k", id()), expected);
    }

    #[test]
    fn secrets_hash_to_lowercase_hex_sha256() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_secret_matches_only_its_own_hash() {
        let hash = hash_secret("cst_secret");
        assert!(secret_matches("cst_secret", &hash));
        assert!(!secret_matches("cst_secreT", &hash));
        assert!(!secret_matches("cst_secret", "short"));
    }
}
