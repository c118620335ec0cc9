//! One-time codes: HOTP (RFC 4226), TOTP (RFC 6238) and OCRA (RFC 6287), the challenges and
//! sent codes the server derives from its key, and the base32 form of device secrets.
//!
//! Everything here is a pure function of its inputs: keys, counters and times are passed in.

mod derived;
mod hotp;
mod ocra;
mod suite;
mod totp;

pub use derived::{challenge, code_hash, sent_code};
pub use hotp::hotp;
pub use ocra::{ocra, OcraInput};
pub use suite::{OcraSuite, QuestionFormat};
pub use totp::totp;

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};

string_enum! {
    /// The hash function under an HMAC: the `SHA1`, `SHA256` or `SHA512` of an OCRA suite.
    pub enum Hash as "hash" {
        /// SHA-1 (20-byte MAC).
        Sha1 => "SHA1",
        /// SHA-256 (32-byte MAC).
        Sha256 => "SHA256",
        /// SHA-512 (64-byte MAC).
        Sha512 => "SHA512",
    }
}

impl Hash {
    /// The length of the hash's output, in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
            Hash::Sha512 => 64,
        }
    }
}

/// HMAC of `msg` under `key` with `hash`.
pub fn hmac(hash: Hash, key: &[u8], msg: &[u8]) -> Vec<u8> {
    fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }
    match hash {
        Hash::Sha1 => mac::<Hmac<sha1::Sha1>>(key, msg),
        Hash::Sha256 => mac::<Hmac<sha2::Sha256>>(key, msg),
        Hash::Sha512 => mac::<Hmac<sha2::Sha512>>(key, msg),
    }
}

/// RFC 4226 dynamic truncation of an HMAC to a 31-bit number: the four bytes at the offset
/// named by the low nibble of the last byte, top bit cleared.
pub(crate) fn truncate(mac: &[u8]) -> u32 {
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bytes = [
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ];
    u32::from_be_bytes(bytes) & 0x7fff_ffff
}

/// `value` modulo 10^`digits`, as exactly `digits` decimal digits with leading zeros.
pub(crate) fn decimal(value: u64, digits: u32) -> String {
    let reduced = 10u64.checked_pow(digits).map_or(value, |m| value % m);
    format!("{reduced:0width$}", width = digits as usize)
}

/// Why a code could not be computed or a suite or secret not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The OCRA suite is not one RFC 6287 defines.
    #[error("invalid OCRA suite {suite:?}: {message}")]
    InvalidSuite {
        /// The suite as given.
        suite: String,
        /// What is wrong with it.
        message: String,
    },
    /// The question does not have the suite's format, or is longer than 128 bytes.
    #[error("the question does not fit the suite's format")]
    InvalidQuestion,
    /// The suite needs an input that was not given: `counter`, `pin`, `session` or `timestamp`.
    #[error("the suite needs a {0}")]
    MissingInput(&'static str),
    /// The PIN hash is not as long as the suite's PIN hash function makes them.
    #[error("the PIN hash has the wrong length")]
    InvalidPinHash,
    /// The session information is longer than the suite allows.
    #[error("the session information is too long")]
    SessionTooLong,
    /// The text is not base32 (RFC 4648, without padding).
    #[error("not base32 (RFC 4648, without padding)")]
    InvalidBase32,
}

/// RFC 4648 base32 without padding: how device secrets are shown to users.
pub fn base32_encode(bytes: &[u8]) -> String {
    BASE32_NOPAD.encode(bytes)
}

/// Reads RFC 4648 base32 without padding, in either case; spaces are ignored.
pub fn base32_decode(text: &str) -> Result<Vec<u8>, CodeError> {
    let normal: String = text
        .chars()
        .filter(|c| *c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    BASE32_NOPAD
        .decode(normal.as_bytes())
        .map_err(|_| CodeError::InvalidBase32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2_and_rfc_2202_for_sha1() {
        let key = b"Jefe";
        let msg = b"what do ya want for nothing?";
        assert_eq!(
            hex::encode(hmac(Hash::Sha1, key, msg)),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex::encode(hmac(Hash::Sha256, key, msg)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac(Hash::Sha512, key, msg)),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn hash_names_are_the_ones_ocra_suites_use() {
        assert_eq!(Hash::parse("SHA256").unwrap(), Hash::Sha256);
        assert!(Hash::parse("sha256").is_err());
        let lengths: Vec<_> = Hash::ALL.iter().map(|h| h.output_len()).collect();
        assert_eq!(lengths, [20, 32, 64]);
    }

    #[test]
    fn decimal_keeps_the_low_digits_with_leading_zeros() {
        assert_eq!(decimal(1_284_755_224, 6), "755224");
        assert_eq!(decimal(82_162_583, 8), "82162583");
        assert_eq!(decimal(7, 8), "00000007");
        assert_eq!(decimal(1_284_755_224, 10), "1284755224");
    }

    #[test]
    fn base32_follows_rfc_4648_section_10_without_padding() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn base32_reads_lowercase_and_spaces_but_refuses_padding_and_other_letters() {
        assert_eq!(base32_decode("mzxw 6ytb oi").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZXW6YQ="), Err(CodeError::InvalidBase32));
        assert_eq!(base32_decode("MZXW1"), Err(CodeError::InvalidBase32));
    }
}
