//! The test authenticator and the encodings the contract fixes: the approval message and its
//! P-256 signatures, RFC 8785 canonical JSON and SHA-256 for the binding, base64url.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Map, Value};
use uuid::Uuid;

/// An enrolled push authenticator.
pub struct Phone {
    /// The device id.
    pub id: Uuid,
    /// Its bearer token.
    pub token: String,
    /// Its P-256 key.
    pub key: SigningKey,
}

impl Phone {
    /// The approval message of an inbox item for `verb`, written out from the contract.
    pub fn message(item: &Value, verb: &str) -> String {
        format!(
            "countersign-approval-v1\nid:{}\ndecision:{verb}\nbinding:{}\nnonce:{}",
            item["id"].as_str().unwrap(),
            item["binding"].as_str().unwrap(),
            item["nonce"].as_str().unwrap()
        )
    }

    /// A raw r‖s signature (base64url) of the approval message.
    pub fn sign(&self, item: &Value, verb: &str) -> String {
        let signature: Signature = self.key.sign(Self::message(item, verb).as_bytes());
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    }

    /// A DER signature (base64url) of the approval message.
    pub fn sign_der(&self, item: &Value, verb: &str) -> String {
        let signature: Signature = self.key.sign(Self::message(item, verb).as_bytes());
        URL_SAFE_NO_PAD.encode(signature.to_der().as_bytes())
    }
}

/// RFC 8785 canonical JSON for the values the tests use (strings, integers, booleans, null,
/// arrays and objects): keys sorted by UTF-16 code units, no whitespace.
pub fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
                let mut out = Map::new();
                for key in keys {
                    out.insert(key.clone(), sorted(&map[key]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sorted(value)).expect("JSON encodes")
}

/// Lowercase hex SHA-256 of `text` (checked against the FIPS 180-2 "abc" vector first).
pub fn sha256_hex(text: &str) -> String {
    use countersign_domain::token::hash_secret;
    assert_eq!(
        hash_secret("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    hash_secret(text)
}

/// Base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
