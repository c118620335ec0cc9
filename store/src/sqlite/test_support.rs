//! Shared fixtures for the SQLite backend's tests: a store on a fresh temporary file and
//! ready-made events.

use std::sync::Arc;

use serde_json::json;
use tempfile::TempDir;
use uuid::Uuid;

use super::{NoInlineProjection, SqliteInlineProjection, SqliteOptions, SqliteStore};
use crate::event::{Actor, Metadata, NewEvent};

/// The URL of the database file inside `dir`.
pub(crate) fn url_in(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("events.db").display())
}

/// A store without inline projection on a new temporary file (kept while the dir lives).
pub(crate) async fn temp_store() -> (TempDir, SqliteStore) {
    temp_store_with(Arc::new(NoInlineProjection)).await
}

/// A store with the given inline projection on a new temporary file.
pub(crate) async fn temp_store_with(
    inline: Arc<dyn SqliteInlineProjection>,
) -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&url_in(&dir), SqliteOptions::default(), inline)
        .await
        .expect("the store opens");
    (dir, store)
}

/// A new event of type `event_type` with a fresh id.
pub(crate) fn event(event_type: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        data: json!({ "kind": event_type, "amount": "234.00" }),
        metadata: Metadata::from_actor(Actor::system()),
    }
}
