//! Codes the server derives from its key and a request's binding, so they are never stored:
//! the OCRA challenge shown with a request, and the codes sent by SMS, e-mail or voice call.

use uuid::Uuid;

use super::{decimal, hmac, Hash};
use crate::binding::Binding;

/// Eight decimal digits from the first 8 bytes of HMAC-SHA256(`key`, `label`), read as a
/// big-endian number, modulo 10^8.
fn eight_digits(key: &[u8], label: &str) -> String {
    let mac = hmac(Hash::Sha256, key, label.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&mac[..8]);
    decimal(u64::from_be_bytes(first), 8)
}

/// The OCRA challenge of a request: eight digits from
/// HMAC-SHA256(`key`, `"countersign-challenge-v1:" + binding`).
pub fn challenge(key: &[u8], binding: &Binding) -> String {
    eight_digits(key, &format!("countersign-challenge-v1:{binding}"))
}

/// The code sent to the user for a request: eight digits from
/// HMAC-SHA256(`key`, `"countersign-sent-code-v1:<id>:<binding>"`), the id hyphenated.
pub fn sent_code(key: &[u8], request_id: Uuid, binding: &Binding) -> String {
    let id = request_id.hyphenated();
    eight_digits(key, &format!("countersign-sent-code-v1:{id}:{binding}"))
}

/// The keyed hash a typed code is compared by: lowercase hex
/// HMAC-SHA256(`key`, `"countersign-code-hash-v1:<binding>:<code>"`).
pub fn code_hash(key: &[u8], code: &str, binding: &Binding) -> String {
    let label = format!("countersign-code-hash-v1:{binding}:{code}");
    hex::encode(hmac(Hash::Sha256, key, label.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(byte: &str) -> Binding {
        Binding::parse(&byte.repeat(32)).unwrap()
    }

    fn id() -> Uuid {
        Uuid::parse_str("0193a5b0-7c1e-7d4a-9f00-000000000001").unwrap()
    }

    /// Vectors computed independently (Python's hmac module) from the documented labels.
    #[test]
    fn the_challenge_of_a_fixed_binding_is_a_known_vector() {
        assert_eq!(challenge(b"server key", &binding("ab")), "61745618");
    }

    #[test]
    fn another_binding_or_key_gives_another_challenge() {
        let first = challenge(b"server key", &binding("ab"));
        assert_ne!(first, challenge(b"server key", &binding("cd")));
        assert_ne!(first, challenge(b"other key", &binding("ab")));
        assert_eq!(first, challenge(b"server key", &binding("ab")));
        assert!(first.len() == 8 && first.bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn a_sent_code_is_eight_digits_tied_to_the_request_and_its_binding() {
        let code = sent_code(b"server key", id(), &binding("ab"));
        assert_eq!(code, "07901256");
        assert_ne!(code, sent_code(b"server key", Uuid::nil(), &binding("ab")));
        assert_ne!(code, sent_code(b"server key", id(), &binding("cd")));
        assert_ne!(code, challenge(b"server key", &binding("ab")));
    }

    #[test]
    fn a_code_hash_is_hex_hmac_bound_to_the_binding() {
        let hash = code_hash(b"server key", "12345678", &binding("ab"));
        assert_eq!(
            hash,
            "8759146195df46841f37e7046a5f78c18589861945990f37e57115d24564a3f6"
        );
        assert_ne!(hash, code_hash(b"server key", "12345678", &binding("cd")));
        assert_ne!(hash, code_hash(b"server key", "12345679", &binding("ab")));
    }
}
