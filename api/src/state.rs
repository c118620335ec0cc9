//! The state every handler shares: the event store, the read models, keys and settings.

use std::sync::Arc;

use countersign_projections::database::Database;
use countersign_projections::read::ReadModels;
use countersign_projections::sql::Pool;
use countersign_store::EventStore;

use crate::channels::ChannelsConfig;
use crate::clock::Clock;
use crate::credentials::Verifier;
use crate::keys::ServerKeys;

/// Tunables of the command side.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a consumption token is valid after confirmation.
    pub token_ttl: chrono::Duration,
    /// Failed verifications before a request is rejected.
    pub max_attempts: u8,
    /// The time every rule reads.
    pub clock: Clock,
    /// How often an idle Server-Sent Events stream sends a heartbeat comment.
    pub sse_heartbeat: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            token_ttl: chrono::Duration::seconds(60),
            max_attempts: 5,
            clock: Clock::default(),
            sse_heartbeat: std::time::Duration::from_secs(15),
        }
    }
}

/// Cloneable handle to everything a request needs.
#[derive(Clone)]
pub struct AppState {
    /// The database: its backend, pools and writer.
    pub db: Database,
    /// The append-only log.
    pub store: Arc<dyn EventStore>,
    /// The inline read models.
    pub reads: ReadModels,
    /// The server's secret keys.
    pub keys: Arc<ServerKeys>,
    /// Verifies client secrets.
    pub verifier: Arc<Verifier>,
    /// Command-side tunables.
    pub settings: Arc<Settings>,
    /// Delivery channels.
    pub channels: Arc<ChannelsConfig>,
    /// Turns true when the server starts shutting down: long polls answer at once.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The server's metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Rebuilds started through the ops API, and how far they are.
    pub rebuilds: crate::routes::ops::Rebuilds,
    /// How far this process's asynchronous projections have come.
    pub progress: countersign_projections::follow::Progress,
}

/// The longest a read waits for an asynchronous projection to catch up with the log.
pub const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

impl AppState {
    /// The database pool for reads and credentials.
    pub fn pool(&self) -> &Pool {
        self.reads.pool()
    }

    /// Waits until the asynchronous projection `name` has applied everything committed when
    /// called (by any process on the database), so that a read from it sees the writes that
    /// were acknowledged before it. Gives up after [`SETTLE_LIMIT`], and at once when the
    /// projection is stopped on an event: the read then answers from what the model holds, and
    /// readiness reports the projection.
    pub async fn settled(&self, name: &str) {
        let head = match self.store.head().await {
            Ok(head) => head,
            Err(_) => *self.store.watch_head().borrow(),
        };
        self.progress.reached(name, head, SETTLE_LIMIT).await;
    }

    /// Follows the position of the asynchronous projection `name` (the store's head for any
    /// other name): what long polls and streams over that projection wake on.
    pub fn watch_progress(&self, name: &str) -> tokio::sync::watch::Receiver<u64> {
        self.progress
            .watch(name)
            .unwrap_or_else(|| self.store.watch_head())
    }

    /// The current time, as every rule sees it.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.settings.clock.now()
    }
}
