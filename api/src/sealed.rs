//! Device secrets sealed under a server key: what an OCRA device's `DeviceEnrolled` event holds
//! instead of the secret itself.
//!
//! `v1.<base64url(nonce ‖ ciphertext)>`, XChaCha20-Poly1305 with a key derived from the server's
//! code key, and the device id as associated data, so a sealed secret cannot be moved to
//! another device's record.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::keys::ServerKeys;

const PREFIX: &str = "v1.";
const NONCE_LEN: usize = 24;

fn cipher(keys: &ServerKeys) -> XChaCha20Poly1305 {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&keys.otp_key).expect("HMAC takes any key length");
    mac.update(b"countersign-device-secret-key-v1");
    XChaCha20Poly1305::new(&mac.finalize().into_bytes())
}

/// Seals `secret` for device `device_id`.
pub fn seal(keys: &ServerKeys, device_id: Uuid, secret: &[u8]) -> String {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let aad = device_id.as_bytes();
    let sealed = cipher(keys)
        .encrypt(&nonce, Payload { msg: secret, aad })
        .expect("encryption of a short secret cannot fail");
    let mut bytes = nonce.to_vec();
    bytes.extend(sealed);
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Opens a sealed secret of device `device_id`; `None` if it was altered, moved or sealed with
/// another key.
pub fn open(keys: &ServerKeys, device_id: Uuid, sealed: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed.strip_prefix(PREFIX)?).ok()?;
    if bytes.len() <= NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    let aad = device_id.as_bytes();
    cipher(keys)
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_device_and_key() {
        let keys = ServerKeys::generate();
        let device = Uuid::now_v7();
        let sealed = seal(&keys, device, b"0123456789abcdef");
        assert!(!sealed.contains("0123456789"));
        assert_eq!(
            open(&keys, device, &sealed).as_deref(),
            Some(&b"0123456789abcdef"[..])
        );
        assert_eq!(open(&keys, Uuid::now_v7(), &sealed), None, "another device");
        assert_eq!(
            open(&ServerKeys::generate(), device, &sealed),
            None,
            "another key"
        );
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            open(&keys, device, &String::from_utf8(altered).unwrap()),
            None
        );
        assert_ne!(
            seal(&keys, device, b"x"),
            seal(&keys, device, b"x"),
            "fresh nonces"
        );
    }
}
