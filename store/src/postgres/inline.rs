//! The PostgreSQL hook through which a read model is updated inside the append transaction, so
//! that a read right after a command already sees its effect, whichever instance serves it.

use futures::future::BoxFuture;
use sqlx::PgConnection;

pub use crate::inline::{InlineError, NoInlineProjection};

use crate::event::RecordedEvent;

/// A projection applied inside the PostgreSQL append transaction.
///
/// `apply` runs on the writer connection inside a savepoint that covers one append, while the
/// transaction holds the log's advisory lock. It must not commit; nested transactions through
/// `sqlx::Connection::begin` become savepoints. When it fails, only that append is rolled back
/// and the others in the same batch still commit.
pub trait PgInlineProjection: Send + Sync + 'static {
    /// Updates the read model for `events`, which were just inserted in the same transaction.
    fn apply<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), InlineError>>;
}

impl PgInlineProjection for NoInlineProjection {
    fn apply<'c>(
        &'c self,
        _conn: &'c mut PgConnection,
        _events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), InlineError>> {
        Box::pin(async { Ok(()) })
    }
}
