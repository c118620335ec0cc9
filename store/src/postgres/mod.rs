//! The PostgreSQL backend, for several server processes sharing one database: a read pool for
//! queries, one writer task per process that commits appends in groups under the log's
//! advisory lock, and a listener that follows every process's commits.

mod append;
mod audit;
mod inline;
mod listen;
mod lock;
mod read;
mod writer;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::PgConnection;
use tokio::sync::{mpsc, oneshot, watch};

pub use crate::group_commit::WriterStats;
pub use audit::PostgresAudit;
pub use inline::{InlineError, NoInlineProjection, PgInlineProjection};
pub use read::read_all as read_all_on;

use self::lock::ExclusiveJob;
use self::writer::Writer;
use crate::append::AppendRequest;
use crate::error::StoreError;
use crate::event::{AppendOutcome, ExpectedVersion, NewEvent, RecordedEvent};
use crate::group_commit::{self, Command, Counters, QUEUE_CAPACITY};
use crate::traits::EventStore;

/// How many connections the read pool keeps (the listener holds one of them).
const POOL_CONNECTIONS: u32 = 10;

/// The PostgreSQL event store. Cheap to clone; every clone shares the same writer and pool.
///
/// Any number of processes may open the same database: appends from all of them are numbered
/// and committed in one global order, and each process's head watch and subscriptions follow
/// the commits of all of them.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    commands: mpsc::Sender<Command<ExclusiveJob>>,
    head: watch::Receiver<u64>,
    counters: Arc<Counters>,
}

impl PostgresStore {
    /// Connects to the log at `url` for the audit alone: a small pool and no writer, so
    /// nothing is written but pending migrations.
    pub async fn open_audit(url: &str) -> Result<PostgresAudit, StoreError> {
        let connect = PgConnectOptions::from_str(url)?.application_name("countersign-audit");
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(connect)
            .await?;
        Self::migrate(&pool).await?;
        Ok(PostgresAudit(pool))
    }

    /// Connects to the database at `url`, such as `postgres://user@host/countersign`, runs the
    /// migrations (safe when several processes start at once), starts listening for commits and
    /// starts the writer task. Needs a Tokio runtime. The database itself must exist.
    pub async fn open(url: &str, inline: Arc<dyn PgInlineProjection>) -> Result<Self, StoreError> {
        let mut connect = PgConnectOptions::from_str(url)?;
        if connect.get_application_name().is_none() {
            connect = connect.application_name("countersign");
        }
        let pool = PgPoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .connect_with(connect.clone())
            .await?;
        Self::migrate(&pool).await?;

        let writer = Writer::connect(connect, inline).await?;
        let mut writer = writer;
        writer.link_unlinked().await?;
        let (head_sender, head) = watch::channel(0);
        listen::start(pool.clone(), head_sender.clone()).await?;
        let (commands, queue) = mpsc::channel(QUEUE_CAPACITY);
        let counters = Arc::new(Counters::default());
        tokio::spawn(group_commit::serve(
            writer,
            queue,
            head_sender,
            Arc::clone(&counters),
        ));
        Ok(Self {
            pool,
            commands,
            head,
            counters,
        })
    }

    /// Applies the embedded PostgreSQL migrations (`migrations/postgres`, the event log and every
    /// read model's tables) that `pool`'s database does not have yet. sqlx holds an advisory
    /// lock while it migrates, so processes starting together apply each migration once.
    pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
        sqlx::migrate!("../migrations/postgres")
            .run(pool)
            .await
            .map_err(|e| StoreError::Database(e.into()))
    }

    /// The read pool, for read models that live in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Tells `observer` of every batch this process's writer commits (the first observer set
    /// is kept).
    pub fn observe_commits(&self, observer: Arc<dyn crate::CommitObserver>) {
        self.counters.observe(observer);
    }

    /// Counts of what this process's writer has committed so far.
    pub fn stats(&self) -> WriterStats {
        self.counters.stats()
    }

    /// Runs `f` on this process's writer connection inside one transaction that holds the log's
    /// lock, between two append batches, so no append of any process interleaves with it
    /// (projection rebuilds use this to catch up and swap tables). When `f` fails the
    /// transaction is rolled back.
    pub async fn with_write_lock<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>
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
impl EventStore for PostgresStore {
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

    /// Reads the last committed position of every process from the database.
    async fn head(&self) -> Result<u64, StoreError> {
        read::head(&self.pool).await
    }

    fn subscribe(&self, after: u64) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
        read::subscribe(self.pool.clone(), self.head.clone(), after)
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }
}
