//! A SHA-256 digest, written as 64 lowercase hexadecimal digits wherever it leaves the process.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest(pub [u8; 32]);

/// Why a text is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a digest is 64 lowercase hexadecimal digits")]
pub struct DigestError;

impl Digest {
    /// Thirty-two zero bytes: the `prev_hash` of the first event.
    pub const ZERO: Digest = Digest([0; 32]);

    /// SHA-256 of the concatenation of `parts`.
    pub fn of(parts: &[&[u8]]) -> Digest {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Digest(hasher.finalize().into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest in `bytes`, which must be exactly 32 long.
    pub fn from_slice(bytes: &[u8]) -> Result<Digest, DigestError> {
        bytes.try_into().map(Digest).map_err(|_| DigestError)
    }

    /// Lowercase hexadecimal.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 lowercase hexadecimal digits; any other spelling of the same bytes is
    /// refused, so that one digest has one text.
    pub fn from_hex(text: &str) -> Result<Digest, DigestError> {
        let lowercase = text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if text.len() != 64 || !lowercase {
            return Err(DigestError);
        }
        let mut bytes = [0; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| DigestError)?;
        Ok(Digest(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Digest::from_hex(text)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_nothing_matches_the_published_value() {
        assert_eq!(
            Digest::of(&[]).to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::of(&[b"ab", b"c"]), Digest::of(&[b"abc"]));
    }

    #[test]
    fn only_lowercase_hex_of_the_right_length_parses() {
        let digest = Digest::of(&[b"x"]);
        assert_eq!(Digest::from_hex(&digest.to_hex()), Ok(digest));
        assert!(Digest::from_hex(&digest.to_hex().to_uppercase()).is_err());
        assert!(Digest::from_hex(&digest.to_hex()[1..]).is_err());
        assert!(Digest::from_hex(&format!("{}0", digest.to_hex())).is_err());
        assert!(Digest::from_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn serde_uses_the_hex_text() {
        let digest = Digest::of(&[b"x"]);
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(json, format!("\"{}\"", digest.to_hex()));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), digest);
        assert!(serde_json::from_str::<Digest>("\"00\"").is_err());
    }
}
