//! What inline projections of every backend share: the error through which they refuse or fail
//! an append, and the projection that does nothing.
//!
//! An inline projection updates a read model inside the append transaction, so that a read
//! right after a command already sees its effect (read-your-own-writes). Each backend has its
//! own hook trait, since each hands the projection its own kind of connection.

use thiserror::Error;

/// Why an inline projection refused or failed to apply an append.
#[derive(Debug, Error)]
pub enum InlineError {
    /// The append must not happen (for example a unique key is already taken); it becomes
    /// [`StoreError::Rejected`](crate::StoreError::Rejected) for that append alone.
    #[error("{0}")]
    Rejected(String),
    /// The projection's own SQL failed; the append is rolled back.
    #[error("inline projection failed")]
    Database(#[from] sqlx::Error),
}

/// An inline projection that does nothing: for tests and tools that only need the log. It
/// serves every backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoInlineProjection;
