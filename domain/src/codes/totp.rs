//! TOTP (RFC 6238): HOTP over the number of time steps since the Unix epoch.

use super::{hotp, Hash};

/// The TOTP code at `unix_seconds`: [`hotp`] of `unix_seconds / step` (T0 = 0). A `step` of
/// zero is taken as one second.
pub fn totp(key: &[u8], unix_seconds: u64, step: u64, digits: u32, hash: Hash) -> String {
    hotp(key, unix_seconds / step.max(1), digits, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds of RFC 6238's reference code: "1234567890" repeated to 20, 32 and 64 bytes.
    fn seed(hash: Hash) -> Vec<u8> {
        b"1234567890"
            .iter()
            .copied()
            .cycle()
            .take(hash.output_len())
            .collect()
    }

    /// RFC 6238 Appendix B: 30-second steps, 8 digits.
    #[test]
    fn every_rfc_6238_appendix_b_vector_matches() {
        let expected: [(u64, [&str; 3]); 6] = [
            (59, ["94287082", "46119246", "90693936"]),
            (1_111_111_109, ["07081804", "68084774", "25091201"]),
            (1_111_111_111, ["14050471", "67062674", "99943326"]),
            (1_234_567_890, ["89005924", "91819424", "93441116"]),
            (2_000_000_000, ["69279037", "90698825", "38618901"]),
            (20_000_000_000, ["65353130", "77737706", "47863826"]),
        ];
        for (time, codes) in expected {
            for (hash, code) in Hash::ALL.iter().zip(codes) {
                assert_eq!(
                    totp(&seed(*hash), time, 30, 8, *hash),
                    code,
                    "{hash} at {time}"
                );
            }
        }
    }

    #[test]
    fn a_code_holds_for_a_whole_step() {
        let key = seed(Hash::Sha1);
        assert_eq!(
            totp(&key, 60, 30, 6, Hash::Sha1),
            totp(&key, 89, 30, 6, Hash::Sha1)
        );
        assert_ne!(
            totp(&key, 89, 30, 6, Hash::Sha1),
            totp(&key, 90, 30, 6, Hash::Sha1)
        );
        assert_eq!(
            totp(&key, 59, 0, 6, Hash::Sha1),
            hotp(&key, 59, 6, Hash::Sha1)
        );
    }
}
