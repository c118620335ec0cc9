//! The hook through which a read model is updated inside the append transaction, so that a
//! read right after a command already sees its effect (read-your-own-writes).

use futures::future::BoxFuture;
use sqlx::SqliteConnection;
use thiserror::Error;

use crate::event::RecordedEvent;

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

/// A projection applied inside the SQLite append transaction.
///
/// `apply` runs on the writer connection inside a savepoint that covers one append. It must
/// not commit; nested transactions through `sqlx::Connection::begin` become savepoints. When
/// it fails, only that append is rolled back and the others in the same batch still commit.
pub trait SqliteInlineProjection: Send + Sync + 'static {
    /// Updates the read model for `events`, which were just inserted in the same transaction.
    fn apply<'c>(
        &'c self,
        conn: &'c mut SqliteConnection,
        events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), InlineError>>;
}

/// An inline projection that does nothing: for tests and tools that only need the log.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoInlineProjection;

impl SqliteInlineProjection for NoInlineProjection {
    fn apply<'c>(
        &'c self,
        _conn: &'c mut SqliteConnection,
        _events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), InlineError>> {
        Box::pin(async { Ok(()) })
    }
}
