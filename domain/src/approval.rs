//! Device approvals: the exact message an authenticator app signs, and its verification.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, Signature};
use uuid::Uuid;

use crate::binding::Binding;
use crate::values::PublicKey;

string_enum! {
    /// What the user decided on the device.
    pub enum Decision as "decision" {
        /// The user approved the action.
        Confirm => "confirm",
        /// The user declined the action.
        Reject => "reject",
    }
}

/// The message a device signs to decide on a request, exactly:
/// `countersign-approval-v1\nid:<id>\ndecision:<confirm|reject>\nbinding:<binding>\nnonce:<nonce>`
/// with no trailing newline.
pub fn approval_message(id: Uuid, decision: Decision, binding: &Binding, nonce: &str) -> String {
    format!(
        "countersign-approval-v1\nid:{}\ndecision:{}\nbinding:{}\nnonce:{}",
        id.hyphenated(),
        decision.as_str(),
        binding.as_str(),
        nonce
    )
}

/// Whether `signature` is a valid ECDSA P-256 / SHA-256 signature of `message` by `key`.
///
/// The signature may be 64 raw bytes (`r ‖ s`) or DER. Anything else, however malformed, is
/// simply not valid.
pub fn verify_signature(key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    let key = key.verifying_key();
    let raw_ok = signature.len() == 64
        && Signature::from_slice(signature).is_ok_and(|sig| key.verify(message, &sig).is_ok());
    raw_ok || DerSignature::from_bytes(signature).is_ok_and(|sig| key.verify(message, &sig).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use rand::rngs::OsRng;

    fn id() -> Uuid {
        Uuid::parse_str("0193a5b0-7c1e-7d4a-9f00-000000000001").unwrap()
    }

    fn binding() -> Binding {
        Binding::parse(&"ab".repeat(32)).unwrap()
    }

    fn device() -> (SigningKey, PublicKey) {
        let signing = SigningKey::random(&mut OsRng);
        let public = PublicKey::from_verifying_key(signing.verifying_key());
        (signing, public)
    }

    #[test]
    fn the_approval_message_has_the_exact_documented_layout() {
        let message = approval_message(id(), Decision::Confirm, &binding(), "n0nce");
        let expected = format!(
            "countersign-approval-v1\nid:0193a5b0-7c1e-7d4a-9f00-000000000001\ndecision:confirm\nbinding:{}\nnonce:n0nce",
            "ab".repeat(32)
        );
        assert_eq!(message, expected);
        let reject = approval_message(id(), Decision::Reject, &binding(), "n0nce");
        assert!(reject.contains("\ndecision:reject\n"));
        assert!(!reject.ends_with('\n'));
    }

    #[test]
    fn a_raw_r_s_signature_verifies() {
        let (signing, public) = device();
        let message = approval_message(id(), Decision::Confirm, &binding(), "n");
        let signature: Signature = signing.sign(message.as_bytes());
        assert_eq!(signature.to_bytes().len(), 64);
        assert!(verify_signature(
            &public,
            message.as_bytes(),
            &signature.to_bytes()
        ));
    }

    #[test]
    fn a_der_signature_verifies() {
        let (signing, public) = device();
        let message = approval_message(id(), Decision::Reject, &binding(), "n");
        let signature: Signature = signing.sign(message.as_bytes());
        let der = signature.to_der();
        assert!(verify_signature(
            &public,
            message.as_bytes(),
            der.as_bytes()
        ));
    }

    #[test]
    fn a_signature_over_another_message_or_by_another_key_fails() {
        let (signing, public) = device();
        let confirm = approval_message(id(), Decision::Confirm, &binding(), "n");
        let reject = approval_message(id(), Decision::Reject, &binding(), "n");
        let signature: Signature = signing.sign(confirm.as_bytes());
        assert!(!verify_signature(
            &public,
            reject.as_bytes(),
            &signature.to_bytes()
        ));
        let (_, other) = device();
        assert!(!verify_signature(
            &other,
            confirm.as_bytes(),
            &signature.to_bytes()
        ));
    }

    #[test]
    fn garbage_signatures_fail_without_panicking() {
        let (_, public) = device();
        let garbage: [&[u8]; 6] = [
            &[],
            &[0; 64],
            &[0xff; 64],
            &[0x30, 0x02, 0x02],
            &[0x30; 72],
            &[1; 500],
        ];
        for signature in garbage {
            assert!(!verify_signature(&public, b"message", signature));
        }
    }

    #[test]
    fn a_high_s_signature_is_accepted_exactly_when_p256_accepts_it() {
        let (signing, public) = device();
        let message = b"countersign-approval-v1";
        let signature: Signature = signing.sign(message);
        let (r, s) = signature.split_scalars();
        let flipped = Signature::from_scalars(r, -s).unwrap();
        let p256_accepts = public.verifying_key().verify(message, &flipped).is_ok();
        assert_eq!(
            verify_signature(&public, message, &flipped.to_bytes()),
            p256_accepts
        );
        let der = flipped.to_der();
        assert_eq!(
            verify_signature(&public, message, der.as_bytes()),
            p256_accepts
        );
    }
}
