//! The authenticator's device file: the server it was enrolled on, the user, the device id and
//! bearer token, and the P-256 private key (PKCS#8 DER, base64url), as JSON readable only by its
//! owner (mode 0600).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What an enrolled authenticator keeps between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFile {
    /// The server's base URL.
    pub server: String,
    /// The user the device belongs to.
    pub uid: String,
    /// The device id the server gave.
    pub device_id: Uuid,
    /// The device's bearer token (shown by the server only at enrolment).
    pub device_token: String,
    /// The private key: PKCS#8 DER, base64url without padding.
    pub private_key: String,
}

impl DeviceFile {
    /// The private key's PKCS#8 DER bytes.
    pub fn private_key_der(&self) -> anyhow::Result<Vec<u8>> {
        URL_SAFE_NO_PAD
            .decode(&self.private_key)
            .context("the device file's private_key is not base64url")
    }

    /// Reads the file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the device file {} (enrol first with `countersign authenticator enrol`)",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a device file", path.display()))
    }

    /// Writes the file at `path`, readable and writable only by its owner. An existing file is
    /// kept, and this fails, unless `force` is set. The file appears whole or not at all.
    pub fn save(&self, path: &Path, force: bool) -> anyhow::Result<()> {
        if !force {
            refuse_existing(path)?;
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        file.write_all(text.as_bytes())?;
        file.as_file().sync_all()?;
        let written = if force {
            file.persist(path).map(drop)
        } else {
            file.persist_noclobber(path).map(drop)
        };
        match written {
            Ok(()) => Ok(()),
            Err(error) if error.error.kind() == std::io::ErrorKind::AlreadyExists => {
                refuse_existing(path)
            }
            Err(error) => Err(error.error)
                .with_context(|| format!("cannot write the device file {}", path.display())),
        }
    }
}

/// Fails when `path` exists, saying how to replace it.
pub fn refuse_existing(path: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        !path.exists(),
        "{} already exists; pass --force to replace it",
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DeviceFile {
        DeviceFile {
            server: "http://127.0.0.1:8080".into(),
            uid: "anna".into(),
            device_id: Uuid::now_v7(),
            device_token: "csd_token".into(),
            private_key: URL_SAFE_NO_PAD.encode([7u8; 40]),
        }
    }

    #[test]
    fn a_saved_file_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.json");
        let file = sample();
        file.save(&path, false).unwrap();
        assert_eq!(DeviceFile::load(&path).unwrap(), file);
        assert_eq!(file.private_key_der().unwrap(), vec![7u8; 40]);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_readable_only_by_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.json");
        sample().save(&path, false).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn an_existing_file_is_kept_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.json");
        std::fs::write(&path, "keep me").unwrap();
        let error = sample().save(&path, false).unwrap_err().to_string();
        assert!(error.contains("already exists"), "{error}");
        assert!(error.contains("--force"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn force_replaces_an_existing_file_and_makes_it_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.json");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = sample();
        file.save(&path, true).unwrap();
        assert_eq!(DeviceFile::load(&path).unwrap(), file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_missing_file_says_to_enrol_first() {
        let dir = tempfile::tempdir().unwrap();
        let error = DeviceFile::load(&dir.path().join("none.json")).unwrap_err();
        assert!(format!("{error:#}").contains("enrol first"), "{error:#}");
    }

    #[test]
    fn a_file_of_another_shape_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.json");
        std::fs::write(&path, r#"{"server": "x"}"#).unwrap();
        let error = DeviceFile::load(&path).unwrap_err().to_string();
        assert!(error.contains("is not a device file"), "{error}");
    }
}
