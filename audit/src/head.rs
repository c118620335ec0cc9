//! Signed tree heads: the server's Ed25519 signature over a tree size, its root and a time.
//!
//! The signature covers the RFC 8785 bytes of
//! `{"purpose": "countersign-tree-head/1", "root_hash", "timestamp", "tree_size"}`. The
//! signature is written as 128 lowercase hexadecimal digits, and the verifying key as its 32 raw
//! bytes in base64url without padding. Both have exactly one accepted spelling.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// What a tree head signature is for, inside the signed bytes.
pub const PURPOSE: &str = "countersign-tree-head/1";

/// Why a tree head or a public key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The signature is not the key's over this head.
    #[error("the tree head's signature does not verify with the given key")]
    BadSignature,
    /// The key text is not 32 bytes in base64url without padding.
    #[error("a public key is 32 bytes in base64url without padding")]
    KeyEncoding,
    /// The key bytes are not a usable Ed25519 public key.
    #[error("the public key is not a valid Ed25519 point of large order")]
    KeyPoint,
}

/// A tree head before it is signed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TreeHead {
    /// How many events the tree holds.
    pub tree_size: u64,
    /// Its root (RFC 9162 MTH).
    pub root_hash: Digest,
    /// When it was signed: RFC 3339 UTC text, kept verbatim.
    pub timestamp: String,
}

/// The object whose RFC 8785 bytes are signed.
#[derive(Serialize)]
struct Signed<'a> {
    purpose: &'a str,
    root_hash: &'a Digest,
    timestamp: &'a str,
    tree_size: u64,
}

impl TreeHead {
    /// The bytes the signature covers: RFC 8785 JSON with the purpose, root, time and size.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let signed = Signed {
            purpose: PURPOSE,
            root_hash: &self.root_hash,
            timestamp: &self.timestamp,
            tree_size: self.tree_size,
        };
        serde_jcs::to_vec(&signed).expect("strings and integers always serialize")
    }

    /// Signs the head with `key`.
    pub fn sign(self, key: &SigningKey) -> SignedTreeHead {
        let signature = key.sign(&self.signing_bytes());
        SignedTreeHead {
            tree_size: self.tree_size,
            root_hash: self.root_hash,
            timestamp: self.timestamp,
            signature,
        }
    }
}

/// A tree head with its signature, as published.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SignedTreeHead {
    /// How many events the tree holds.
    pub tree_size: u64,
    /// Its root (RFC 9162 MTH).
    pub root_hash: Digest,
    /// When it was signed: RFC 3339 UTC text, kept verbatim.
    pub timestamp: String,
    /// The Ed25519 signature over [`TreeHead::signing_bytes`], as 128 lowercase hex digits.
    #[serde(with = "signature_hex")]
    pub signature: Signature,
}

impl SignedTreeHead {
    /// Checks the signature with `key` (strict Ed25519: no malleable or weak-key signatures).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), HeadError> {
        key.verify_strict(&self.head().signing_bytes(), &self.signature)
            .map_err(|_| HeadError::BadSignature)
    }

    /// The head without its signature.
    pub fn head(&self) -> TreeHead {
        TreeHead {
            tree_size: self.tree_size,
            root_hash: self.root_hash,
            timestamp: self.timestamp.clone(),
        }
    }
}

/// The text of a verifying key: its 32 raw bytes in base64url without padding.
pub fn public_key_text(key: &VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Parses [`public_key_text`]'s encoding, ignoring surrounding whitespace. Padding, the
/// standard alphabet, non-zero trailing bits and weak (small-order) keys are refused.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, HeadError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| HeadError::KeyEncoding)?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| HeadError::KeyEncoding)?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| HeadError::KeyPoint)?;
    if key.is_weak() {
        return Err(HeadError::KeyPoint);
    }
    Ok(key)
}

/// Serde for a signature as exactly 128 lowercase hexadecimal digits.
pub(crate) mod signature_hex {
    use std::borrow::Cow;

    use ed25519_dalek::Signature;
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(signature: &Signature, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(signature.to_bytes()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Signature, D::Error> {
        let text = <Cow<'de, str>>::deserialize(d)?;
        let lowercase = text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let mut bytes = [0; 64];
        if text.len() != 128 || !lowercase || hex::decode_to_slice(&*text, &mut bytes).is_err() {
            return Err(de::Error::custom(
                "a signature is 128 lowercase hexadecimal digits",
            ));
        }
        Ok(Signature::from_bytes(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn head() -> TreeHead {
        TreeHead {
            tree_size: 1042,
            root_hash: Digest::of(&[b"root"]),
            timestamp: "2026-11-23T12:00:00.000000Z".to_owned(),
        }
    }

    #[test]
    fn the_signed_bytes_are_canonical_json_with_the_purpose() {
        let text = String::from_utf8(head().signing_bytes()).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"purpose":"countersign-tree-head/1","root_hash":"{}","timestamp":"2026-11-23T12:00:00.000000Z","tree_size":1042}}"#,
                Digest::of(&[b"root"])
            )
        );
    }

    #[test]
    fn a_signed_head_verifies_and_round_trips() {
        let signed = head().sign(&key());
        assert_eq!(signed.verify(&key().verifying_key()), Ok(()));
        assert_eq!(signed.head(), head());
        let json = serde_json::to_string(&signed).unwrap();
        let parsed: SignedTreeHead = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, signed);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), json);
        assert_eq!(parsed.verify(&key().verifying_key()), Ok(()));
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let signed = head().sign(&key());
        let public = key().verifying_key();
        let mut changed = signed.clone();
        changed.tree_size += 1;
        assert_eq!(changed.verify(&public), Err(HeadError::BadSignature));
        let mut changed = signed.clone();
        changed.root_hash.0[31] ^= 1;
        assert!(changed.verify(&public).is_err());
        let mut changed = signed.clone();
        changed.timestamp = "2026-11-23T12:00:00.000001Z".to_owned();
        assert!(changed.verify(&public).is_err());
        for index in [0, 31, 32, 63] {
            let mut bytes = signed.signature.to_bytes();
            bytes[index] ^= 0x01;
            let mut changed = signed.clone();
            changed.signature = Signature::from_bytes(&bytes);
            assert!(changed.verify(&public).is_err(), "signature byte {index}");
        }
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(signed.verify(&other).is_err());
    }

    #[test]
    fn only_lowercase_hex_signatures_parse() {
        let signed = head().sign(&key());
        let json = serde_json::to_string(&signed).unwrap();
        let hex = hex::encode(signed.signature.to_bytes());
        let upper = json.replace(&hex, &hex.to_uppercase());
        assert_ne!(upper, json);
        assert!(serde_json::from_str::<SignedTreeHead>(&upper).is_err());
        let short = json.replace(&hex, &hex[2..]);
        assert!(serde_json::from_str::<SignedTreeHead>(&short).is_err());
        let extra = json.replacen('{', r#"{"extra":1,"#, 1);
        assert!(serde_json::from_str::<SignedTreeHead>(&extra).is_err());
    }

    #[test]
    fn public_keys_have_one_spelling() {
        let public = key().verifying_key();
        let text = public_key_text(&public);
        assert_eq!(text.len(), 43);
        assert_eq!(parse_public_key(&text), Ok(public));
        assert_eq!(parse_public_key(&format!("  {text}\n")), Ok(public));
        assert!(parse_public_key(&format!("{text}=")).is_err());
        assert!(parse_public_key(&text[1..]).is_err());
        assert!(parse_public_key(&hex::encode(public.as_bytes())).is_err());
        // The last character carries 4 spare bits, which must be zero.
        let last = text.chars().last().unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let value = alphabet.find(last).unwrap();
        let spare = alphabet.chars().nth(value ^ 1).unwrap();
        let mut other = text[..42].to_owned();
        other.push(spare);
        assert!(parse_public_key(&other).is_err());
        // The identity point is a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            parse_public_key(&URL_SAFE_NO_PAD.encode(identity)),
            Err(HeadError::KeyPoint)
        );
    }
}
