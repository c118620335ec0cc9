//! Countersign's append-only event store: the backend-neutral [`EventStore`] trait, the types
//! that flow through it, and its backends (SQLite today).
//!
//! Streams are 1-based (a stream with n events is at version n), positions are global,
//! 1-based and strictly increasing in commit order, and stored events are never updated or
//! deleted.

mod error;
mod event;
pub mod sqlite;
pub mod time;
mod traits;

pub use error::StoreError;
pub use event::{
    Actor, ActorKind, AppendOutcome, ExpectedVersion, Metadata, NewEvent, RecordedEvent,
};
pub use sqlite::{
    InlineError, NoInlineProjection, SqliteInlineProjection, SqliteOptions, SqliteStore,
    WriterStats,
};
pub use traits::EventStore;
