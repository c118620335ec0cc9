//! The store's error type, shared by every backend.

use thiserror::Error;

use crate::event::ExpectedVersion;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The stream's version was not the expected one, or an event id was already taken:
    /// someone else appended first. Reload the stream and decide again.
    #[error("stream {stream_id} is at version {actual}, expected {expected}")]
    Conflict {
        /// The stream the append was aimed at.
        stream_id: String,
        /// What the appender expected.
        expected: ExpectedVersion,
        /// The stream's version when the append was checked.
        actual: u64,
    },
    /// An inline projection refused the append (for example a unique key already taken).
    #[error("append rejected: {0}")]
    Rejected(String),
    /// The database cannot be reached or the writer has stopped.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The database reported an error; the details stay in the source and out of the message.
    #[error("storage error")]
    Database(#[from] sqlx::Error),
    /// A stored row could not be turned back into an event.
    #[error("stored event could not be decoded: {0}")]
    Decode(String),
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn database_errors_do_not_show_their_details() {
        let error = StoreError::from(sqlx::Error::Protocol("secret table layout".into()));
        assert_eq!(error.to_string(), "storage error");
        assert!(error.source().is_some());
    }

    #[test]
    fn conflicts_name_the_stream_and_both_versions() {
        let error = StoreError::Conflict {
            stream_id: "device-1".into(),
            expected: ExpectedVersion::Exact(2),
            actual: 3,
        };
        assert_eq!(
            error.to_string(),
            "stream device-1 is at version 3, expected version 2"
        );
    }
}
