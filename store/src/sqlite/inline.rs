//! The SQLite hook through which a read model is updated inside the append transaction, so that
//! a read right after a command already sees its effect (read-your-own-writes).

use futures::future::BoxFuture;
use sqlx::SqliteConnection;

pub use crate::inline::{InlineError, NoInlineProjection};

use crate::event::RecordedEvent;

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

impl SqliteInlineProjection for NoInlineProjection {
    fn apply<'c>(
        &'c self,
        _conn: &'c mut SqliteConnection,
        _events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), InlineError>> {
        Box::pin(async { Ok(()) })
    }
}
