//! The server's secret keys: loaded from the key file, or created there (mode 0600) on first start.
//!
//! The file is JSON with base64url keys of 32 random bytes each. Losing it invalidates every
//! consumption token shown so far; it must be backed up with the database.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Keys the server derives tokens and codes with.
#[derive(Clone)]
pub struct ServerKeys {
    /// HMAC key of consumption tokens.
    pub token_key: [u8; 32],
    /// HMAC key of OCRA challenges derived from bindings.
    pub challenge_key: [u8; 32],
    /// HMAC key of one-time codes' stored hashes.
    pub otp_key: [u8; 32],
    /// Seed of the Ed25519 audit signing key.
    pub audit_seed: [u8; 32],
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKeys(..)")
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    token_key: String,
    challenge_key: String,
    otp_key: String,
    audit_seed: String,
}

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("cannot use key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid key file.
    #[error("key file {path} is not valid: {reason}")]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl ServerKeys {
    /// The Ed25519 key that signs tree heads.
    pub fn audit_key(&self) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&self.audit_seed)
    }

    /// Fresh random keys.
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        let mut key = || {
            let mut bytes = [0u8; 32];
            rng.fill_bytes(&mut bytes);
            bytes
        };
        Self {
            token_key: key(),
            challenge_key: key(),
            otp_key: key(),
            audit_seed: key(),
        }
    }

    /// Loads an existing key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Loads the key file, creating it with fresh keys and mode 0600 when it does not exist.
    /// When several processes start at once, one creates it and all use that one.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = Self::generate();
                if keys.write_new(path)? {
                    Ok(keys)
                } else {
                    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
                        path: path.to_owned(),
                        source,
                    })?;
                    Self::parse(path, &text)
                }
            }
            Err(source) => Err(KeyError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// The key a client verifies its callbacks' `Countersign-Signature` with: derived from the
    /// server's token key and the client's id, so it is never stored and every instance that
    /// shares the key file signs alike.
    pub fn callback_key(&self, client_id: uuid::Uuid) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.token_key)
            .expect("HMAC takes any key length");
        mac.update(format!("countersign-callback-key-v1:{client_id}").as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn parse(path: &Path, text: &str) -> Result<Self, KeyError> {
        let invalid = |reason: String| KeyError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let file: KeyFile = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if file.version != 1 {
            return Err(invalid(format!("unknown version {}", file.version)));
        }
        let decode = |name: &str, value: &str| -> Result<[u8; 32], KeyError> {
            let bytes = URL_SAFE_NO_PAD
                .decode(value)
                .map_err(|e| invalid(format!("{name}: {e}")))?;
            bytes
                .try_into()
                .map_err(|_| invalid(format!("{name}: expected 32 bytes")))
        };
        Ok(Self {
            token_key: decode("token_key", &file.token_key)?,
            challenge_key: decode("challenge_key", &file.challenge_key)?,
            otp_key: decode("otp_key", &file.otp_key)?,
            audit_seed: decode("audit_seed", &file.audit_seed)?,
        })
    }

    /// Writes the keys to a private temporary file beside `path`, then links it to `path`, which
    /// appears whole or not at all. `false` when another process created `path` first.
    fn write_new(&self, path: &Path) -> Result<bool, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let file = KeyFile {
            version: 1,
            token_key: URL_SAFE_NO_PAD.encode(self.token_key),
            challenge_key: URL_SAFE_NO_PAD.encode(self.challenge_key),
            otp_key: URL_SAFE_NO_PAD.encode(self.otp_key),
            audit_seed: URL_SAFE_NO_PAD.encode(self.audit_seed),
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let temporary = dir
            .unwrap_or_else(|| Path::new("."))
            .join(format!(".countersign-keys-{}", uuid::Uuid::now_v7()));
        let written = (|| {
            let mut out = options.open(&temporary)?;
            let text = serde_json::to_string_pretty(&file).expect("key file serializes");
            out.write_all(text.as_bytes())?;
            out.sync_all()?;
            std::fs::hard_link(&temporary, path)
        })();
        let _ = std::fs::remove_file(&temporary);
        match written {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_file_is_created_private_and_read_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("countersign.keys");
        let first = ServerKeys::load_or_create(&path).unwrap();
        let second = ServerKeys::load_or_create(&path).unwrap();
        assert_eq!(first.token_key, second.token_key);
        assert_eq!(first.audit_seed, second.audit_seed);
        assert_ne!(first.token_key, first.otp_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_corrupt_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("countersign.keys");
        std::fs::write(&path, "{\"version\":1}").unwrap();
        let error = ServerKeys::load_or_create(&path).unwrap_err();
        assert!(matches!(error, KeyError::Invalid { .. }));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"version\":1}");
    }

    #[test]
    fn processes_creating_the_key_file_at_once_all_get_the_same_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("countersign.keys");
        let loaded: Vec<[u8; 32]> = std::thread::scope(|scope| {
            let loaders: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| ServerKeys::load_or_create(&path).unwrap().token_key))
                .collect();
            loaders.into_iter().map(|l| l.join().unwrap()).collect()
        });
        assert!(loaded.windows(2).all(|w| w[0] == w[1]), "one set of keys");
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 1, "no temporary file is left behind");
    }
}
