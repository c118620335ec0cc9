//! A device's P-256 public key, as enrolled: base64url of the SubjectPublicKeyInfo DER.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use serde::{Deserialize, Serialize};

use super::ValueError;

/// Longer input cannot be a P-256 SPKI (91 bytes, 122 characters) and is refused unread.
const MAX_ENCODED_CHARS: usize = 1024;

/// An ECDSA P-256 public key that device approvals are verified with.
///
/// Parsed from base64url (without padding; padded input is accepted too) of the key's SPKI DER
/// form, and kept in that encoding, without padding, for storage and display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicKey {
    encoded: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// Parses base64url SPKI DER of a P-256 public key.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.len() > MAX_ENCODED_CHARS {
            return Err(ValueError::new(
                "public_key",
                "is too long for a P-256 public key",
            ));
        }
        let encoded = s.trim_end_matches('=');
        let der = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| ValueError::new("public_key", "must be base64url"))?;
        let key = VerifyingKey::from_public_key_der(&der).map_err(|_| {
            ValueError::new("public_key", "must be a P-256 public key in SPKI DER form")
        })?;
        Ok(Self {
            encoded: encoded.to_owned(),
            key,
        })
    }

    /// Encodes a verifying key the way devices send it.
    pub fn from_verifying_key(key: &VerifyingKey) -> Self {
        let der = key
            .to_public_key_der()
            .expect("a P-256 verifying key always has an SPKI DER encoding");
        Self {
            encoded: URL_SAFE_NO_PAD.encode(der.as_bytes()),
            key: *key,
        }
    }

    /// The key as base64url SPKI DER, without padding.
    pub fn as_str(&self) -> &str {
        &self.encoded
    }

    /// The key, ready to verify signatures with.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encoded)
    }
}

impl TryFrom<String> for PublicKey {
    type Error = ValueError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PublicKey> for String {
    fn from(key: PublicKey) -> String {
        key.encoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;

    fn verifying_key() -> VerifyingKey {
        *SigningKey::from_slice(&[7; 32]).unwrap().verifying_key()
    }

    #[test]
    fn an_encoded_key_parses_back_to_the_same_key() {
        let key = PublicKey::from_verifying_key(&verifying_key());
        let parsed = PublicKey::parse(key.as_str()).unwrap();
        assert_eq!(parsed, key);
        assert_eq!(parsed.verifying_key(), verifying_key());
    }

    #[test]
    fn padded_base64url_is_accepted_and_kept_without_padding() {
        let key = PublicKey::from_verifying_key(&verifying_key());
        let padded = format!("{}==", key.as_str());
        assert_eq!(PublicKey::parse(&padded).unwrap().as_str(), key.as_str());
    }

    #[test]
    fn garbage_and_keys_of_other_forms_are_refused_naming_the_public_key_field() {
        let sec1 = URL_SAFE_NO_PAD.encode(verifying_key().to_encoded_point(false).as_bytes());
        for bad in ["", "not base64!", "AAAA", sec1.as_str(), &"A".repeat(2000)] {
            assert_eq!(PublicKey::parse(bad).unwrap_err().field, "public_key");
        }
    }

    #[test]
    fn a_key_serializes_as_its_encoded_string() {
        let key = PublicKey::from_verifying_key(&verifying_key());
        let json = serde_json::to_value(&key).unwrap();
        assert_eq!(json, serde_json::Value::from(key.as_str()));
        assert_eq!(serde_json::from_value::<PublicKey>(json).unwrap(), key);
    }
}
