//! The SQLite backend, embedded and the default: a read pool for queries and one writer task
//! that owns the only writing connection and commits appends in groups.

mod append;
mod audit;
mod connect;
mod inline;
mod lock;
mod read;
#[cfg(test)]
pub(crate) mod test_support;
mod writer;

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use sqlx::sqlite::SqlitePool;
use sqlx::{ConnectOptions, SqliteConnection};
use tokio::sync::{mpsc, oneshot, watch};

pub use crate::group_commit::WriterStats;
pub use audit::SqliteAudit;
pub use connect::SqliteOptions;
pub use inline::{InlineError, NoInlineProjection, SqliteInlineProjection};
pub use read::read_all as read_all_on;

use self::writer::{ExclusiveJob, Writer};
use crate::append::AppendRequest;
use crate::error::StoreError;
use crate::event::{AppendOutcome, ExpectedVersion, NewEvent, RecordedEvent};
use crate::group_commit::{self, Command, Counters, QUEUE_CAPACITY};
use crate::traits::EventStore;

/// The SQLite event store. Cheap to clone; every clone shares the same writer and pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    commands: mpsc::Sender<Command<ExclusiveJob>>,
    head: watch::Receiver<u64>,
    counters: Arc<Counters>,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `url`, such as `sqlite://data/cs.db`,
    /// runs the migrations and starts the writer task. Needs a Tokio runtime.
    ///
    /// The database must be a file: every connection of an in-memory URL would see a
    /// database of its own.
    pub async fn open(
        url: &str,
        options: SqliteOptions,
        inline: Arc<dyn SqliteInlineProjection>,
    ) -> Result<Self, StoreError> {
        let connect = connect::connect_options(url, options)?;
        let pool = connect::read_pool(&connect).await?;
        Self::migrate(&pool).await?;

        let mut conn = connect.connect().await?;
        let links = audit::open_links(&mut conn).await?;
        let head = links.size();
        let last: Option<String> =
            sqlx::query_scalar("select recorded_at from events order by position desc limit 1")
                .fetch_optional(&mut conn)
                .await?;
        let last_recorded = match last {
            Some(recorded_at) => read::parse_time(&recorded_at)?,
            None => chrono::DateTime::<chrono::Utc>::MIN_UTC,
        };

        let (head_sender, head_receiver) = watch::channel(head);
        let (commands, queue) = mpsc::channel(QUEUE_CAPACITY);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            conn,
            inline,
            links,
            last_recorded,
        };
        tokio::spawn(group_commit::serve(
            writer,
            queue,
            head_sender,
            Arc::clone(&counters),
        ));
        Ok(Self {
            pool,
            commands,
            head: head_receiver,
            counters,
        })
    }

    /// Opens the log at `url` for the audit alone: a read pool and no writer, so nothing is
    /// written but pending migrations.
    pub async fn open_audit(url: &str) -> Result<SqliteAudit, StoreError> {
        let connect = connect::connect_options(url, SqliteOptions::default())?;
        let pool = connect::read_pool(&connect).await?;
        Self::migrate(&pool).await?;
        Ok(SqliteAudit(pool))
    }

    /// Applies the embedded SQLite migrations (`migrations/sqlite`, the event log and every
    /// read model's tables) that `pool`'s database does not have yet.
    pub async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
        sqlx::migrate!("../migrations/sqlite")
            .run(pool)
            .await
            .map_err(|e| StoreError::Database(e.into()))
    }

    /// The read pool, for read models that live in the same database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Tells `observer` of every batch this process's writer commits (the first observer set
    /// is kept).
    pub fn observe_commits(&self, observer: Arc<dyn crate::CommitObserver>) {
        self.counters.observe(observer);
    }

    /// Counts of what the writer has committed so far.
    pub fn stats(&self) -> WriterStats {
        self.counters.stats()
    }

    /// Runs `f` on the writer connection inside one `BEGIN IMMEDIATE … COMMIT` transaction,
    /// between two append batches, so no append interleaves with it (projection rebuilds use
    /// this to catch up and swap tables). When `f` fails the transaction is rolled back.
    pub async fn with_write_lock<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Exclusive(lock::exclusive_job(f, reply)))
            .await?;
        answer.await.map_err(|_| writer_gone())?
    }

    async fn send(&self, command: Command<ExclusiveJob>) -> Result<(), StoreError> {
        self.commands.send(command).await.map_err(|_| writer_gone())
    }
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable("the writer has stopped".into())
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let request = AppendRequest::new(stream_id, expected, events)?;
        let (reply, answer) = oneshot::channel();
        self.send(Command::Append(request, reply)).await?;
        answer.await.map_err(|_| writer_gone())?
    }

    async fn read_stream(&self, stream_id: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_stream(&self.pool, stream_id).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        read::read_all(&self.pool, after, limit).await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(*self.head.borrow())
    }

    fn subscribe(&self, after: u64) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        read::subscribe(self.pool.clone(), self.head.clone(), after)
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::test_support::{event, temp_store, url_in};
    use super::*;

    #[tokio::test]
    async fn events_survive_reopening_the_file() {
        let (dir, store) = temp_store().await;
        let written = store
            .append("s", ExpectedVersion::NoStream, vec![event("A"), event("B")])
            .await
            .unwrap();
        drop(store);

        let reopened = SqliteStore::open(
            &url_in(&dir),
            SqliteOptions::default(),
            Arc::new(NoInlineProjection),
        )
        .await
        .unwrap();
        assert_eq!(reopened.head().await.unwrap(), 2);
        assert_eq!(reopened.read_stream("s").await.unwrap(), written.events);
        let next = reopened
            .append("t", ExpectedVersion::NoStream, vec![event("C")])
            .await
            .unwrap();
        assert_eq!(next.first_position, 3);
        assert!(next.events[0].recorded_at >= written.events[1].recorded_at);
    }

    #[tokio::test]
    async fn migrating_twice_changes_nothing() {
        let (_dir, store) = temp_store().await;
        SqliteStore::migrate(store.pool()).await.unwrap();
        let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert!(applied >= 1);
    }
}
