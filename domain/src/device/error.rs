//! Why a device refused a command.

/// A refused device command. Each has a stable, machine-readable [`code`](DeviceError::code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// There is no such device.
    #[error("the device does not exist")]
    NotFound,
    /// A device with this id already exists.
    #[error("a device with this id already exists")]
    AlreadyExists,
    /// The device is already revoked.
    #[error("the device is already revoked")]
    AlreadyRevoked,
    /// A push device was enrolled without a public key.
    #[error("public_key: a push device needs a public key")]
    MissingPublicKey,
    /// An OCRA device was enrolled without a secret or a suite.
    #[error("secret: an OCRA device needs a secret and a suite")]
    MissingSecret,
    /// The OCRA suite is not one RFC 6287 defines.
    #[error("suite: not a valid OCRA suite")]
    InvalidSuite,
    /// The name is empty or longer than 100 characters once trimmed.
    #[error("name: must be 1 to 100 characters")]
    InvalidName,
}

impl DeviceError {
    /// The stable code reported to clients.
    pub fn code(&self) -> &'static str {
        match self {
            DeviceError::NotFound => "not_found",
            DeviceError::AlreadyExists | DeviceError::AlreadyRevoked => "conflict",
            DeviceError::MissingPublicKey
            | DeviceError::MissingSecret
            | DeviceError::InvalidSuite
            | DeviceError::InvalidName => "invalid_request",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_device_error_has_a_stable_code() {
        let expected = [
            (DeviceError::NotFound, "not_found"),
            (DeviceError::AlreadyExists, "conflict"),
            (DeviceError::AlreadyRevoked, "conflict"),
            (DeviceError::MissingPublicKey, "invalid_request"),
            (DeviceError::MissingSecret, "invalid_request"),
            (DeviceError::InvalidSuite, "invalid_request"),
            (DeviceError::InvalidName, "invalid_request"),
        ];
        for (error, code) in expected {
            assert_eq!(error.code(), code, "{error:?}");
        }
    }
}
