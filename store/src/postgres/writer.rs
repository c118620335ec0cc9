//! The PostgreSQL writer of one process: it owns this process's writing connection and writes
//! each batch the group-commit loop hands it as one transaction that first takes the log's
//! advisory lock, then numbers its events after the last committed position, and announces
//! the new head with `pg_notify` (delivered at commit) to every process listening.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use super::append::append_one;
use super::audit::load_links;
use super::inline::PgInlineProjection;
use super::listen::CHANNEL;
use super::lock::{lock_log, ExclusiveJob, BEGIN};
use crate::append::{recorded_now, to_u64, AppendRequest};
use crate::error::StoreError;
use crate::event::AppendOutcome;
use crate::group_commit::{BatchResult, BatchWriter};
use crate::links::{digest_column, Links};
use countersign_audit::Digest;

/// How long the writing connection may sit idle before it is checked ahead of the next batch,
/// so that a database restart while all was quiet costs no failed append.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The writer's state; the group-commit loop drives it.
pub(crate) struct Writer {
    /// The writing connection; `None` after a failed batch, until the next one reconnects.
    conn: Option<PgConnection>,
    connect: PgConnectOptions,
    inline: Arc<dyn PgInlineProjection>,
    /// When the connection last did any work.
    last_used: Instant,
    /// The links of the log's end after this writer's last batch; reused when no other
    /// process appended since.
    links: Option<Links>,
}

impl BatchWriter for Writer {
    type Job = ExclusiveJob;

    async fn write_batch(&mut self, requests: Vec<AppendRequest>) -> BatchResult {
        let inline = Arc::clone(&self.inline);
        let cached = self.links.take();
        let conn = self.connection().await?;
        match write_batch(conn, inline.as_ref(), requests, cached).await {
            Ok((results, links)) => {
                self.links = Some(links);
                Ok(results)
            }
            Err(error) => {
                // The connection may be broken; the next batch starts on a fresh one.
                self.conn = None;
                Err(error)
            }
        }
    }

    async fn run_job(&mut self, job: ExclusiveJob) {
        match self.connection().await {
            Ok(conn) => job(Ok(conn)).await,
            Err(error) => job(Err(error.into())).await,
        }
    }

    async fn close(self) {
        if let Some(conn) = self.conn {
            if let Err(error) = conn.close().await {
                tracing::warn!(%error, "closing the writer connection failed");
            }
        }
    }
}

impl Writer {
    /// A writer on `connect`'s database, with its connection already open.
    pub(crate) async fn connect(
        connect: PgConnectOptions,
        inline: Arc<dyn PgInlineProjection>,
    ) -> Result<Self, sqlx::Error> {
        Ok(Self {
            conn: Some(connect.connect().await?),
            connect,
            inline,
            last_used: Instant::now(),
            links: None,
        })
    }

    /// Links the events stored before the log carried links, if there are any.
    pub(crate) async fn link_unlinked(&mut self) -> Result<(), crate::error::StoreError> {
        let conn = self.connection().await?;
        super::audit::link_unlinked(conn).await
    }

    /// The writing connection: connecting first when there is none, and replacing it when it
    /// was idle for a while and no longer answers.
    async fn connection(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        let idle = self.last_used.elapsed() > IDLE_CHECK;
        self.last_used = Instant::now();
        let conn = match self.conn.take() {
            Some(mut conn) if idle => match conn.ping().await {
                Ok(()) => conn,
                Err(error) => {
                    tracing::warn!(%error, "the writer connection was lost; connecting again");
                    self.connect.connect().await?
                }
            },
            Some(conn) => conn,
            None => self.connect.connect().await?,
        };
        Ok(self.conn.insert(conn))
    }
}

/// Runs every append of the batch in its own savepoint inside one transaction that holds the
/// log's lock from its first statement to its commit; gives back the links of the log's end.
async fn write_batch(
    conn: &mut PgConnection,
    inline: &dyn PgInlineProjection,
    requests: Vec<AppendRequest>,
    cached: Option<Links>,
) -> Result<(Vec<Result<AppendOutcome, StoreError>>, Links), sqlx::Error> {
    let mut tx = conn.begin_with(BEGIN).await?;
    lock_log(&mut tx).await?;
    let (last_position, mut last_recorded, last_hash) = last_committed(&mut tx).await?;
    let mut links = match cached {
        Some(links) if links.size() == last_position && links.last_hash == last_hash => links,
        _ => load_links(&mut tx, last_position)
            .await
            .map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
    };
    let mut results = Vec::with_capacity(requests.len());
    for request in requests {
        let now = recorded_now().max(last_recorded);
        let mut savepoint = tx.begin().await?;
        let mut scratch = links.clone();
        match append_one(&mut savepoint, inline, request, &mut scratch, now).await {
            Ok(outcome) => {
                savepoint.commit().await?;
                links = scratch;
                last_recorded = now;
                results.push(Ok(outcome));
            }
            Err(error) => {
                savepoint.rollback().await?;
                results.push(Err(error));
            }
        }
    }
    if links.size() > last_position {
        sqlx::query("select pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(links.size().to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok((results, links))
}

/// The last committed position, its time and its hash (0, the earliest time and zeros for an
/// empty log).
async fn last_committed(
    conn: &mut PgConnection,
) -> Result<(u64, DateTime<Utc>, Digest), sqlx::Error> {
    let last: Option<(i64, DateTime<Utc>, Option<Vec<u8>>)> = sqlx::query_as(
        "select position, recorded_at, hash from events order by position desc limit 1",
    )
    .fetch_optional(conn)
    .await?;
    let decode = |error: StoreError| sqlx::Error::Decode(Box::new(error));
    match last {
        Some((position, recorded_at, hash)) => Ok((
            to_u64("position", position).map_err(decode)?,
            recorded_at,
            digest_column("hash", hash).map_err(decode)?,
        )),
        None => Ok((0, DateTime::<Utc>::MIN_UTC, Digest::ZERO)),
    }
}
