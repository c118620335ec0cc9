//! The backend-neutral event store contract. Every backend (SQLite, and PostgreSQL and
//! EventStoreDB alike) implements it, and callers hold it as `Arc<dyn EventStore>`.

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::{AppendOutcome, ExpectedVersion, NewEvent, RecordedEvent};

/// An append-only log of events, grouped in streams, with one global order.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream_id` if its version matches `expected`, atomically.
    ///
    /// Answers only once the events are durably committed. A stale expectation or an event id
    /// already in the store gives [`StoreError::Conflict`]; an empty `events` only checks the
    /// expectation. Once called, an append may commit even if the caller stops waiting.
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Every event of one stream, in stream order (empty when the stream does not exist).
    async fn read_stream(&self, stream_id: &str) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events with a position greater than `after`, in ascending position order.
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The position of the last committed event (0 when the log is empty).
    async fn head(&self) -> Result<u64, StoreError>;

    /// Every event after position `after`: first the history, then new events as they commit,
    /// each exactly once and in order. The stream never ends on its own; it ends with an error
    /// only when the store fails or shuts down.
    fn subscribe(&self, after: u64) -> BoxStream<'static, Result<RecordedEvent, StoreError>>;

    /// A receiver of the head position, updated after every commit (for long polls).
    fn watch_head(&self) -> watch::Receiver<u64>;
}
