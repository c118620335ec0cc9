//! Countersign's append-only event store: the backend-neutral [`EventStore`] trait, the types
//! that flow through it, and its backends: SQLite (embedded, one process) and PostgreSQL
//! (several processes sharing one database).
//!
//! Streams are 1-based (a stream with n events is at version n), positions are global,
//! 1-based and strictly increasing in commit order, and stored events are never updated or
//! deleted.

mod append;
pub mod audit;
mod error;
mod event;
mod group_commit;
mod inline;
mod links;
pub mod postgres;
pub mod sqlite;
mod subscription;
pub mod time;
mod traits;

pub use error::StoreError;
pub use event::{
    Actor, ActorKind, AppendOutcome, ExpectedVersion, Metadata, NewEvent, RecordedEvent,
};
pub use group_commit::CommitObserver;
pub use postgres::{PgInlineProjection, PostgresStore};
pub use sqlite::{
    InlineError, NoInlineProjection, SqliteInlineProjection, SqliteOptions, SqliteStore,
    WriterStats,
};
pub use traits::EventStore;
