//! Countersign's HTTP API and command line.
//!
//! [`Application::build`] opens the store, loads the keys, binds the listener and starts the
//! expiry task; [`Application::run_until_stopped`] serves until SIGINT or SIGTERM. The `cli`
//! module is the `countersign` binary's whole logic.

pub mod audit;
pub mod auth;
pub mod channels;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod credentials;
pub mod delivery;
pub mod error;
pub mod expiry;
pub mod extract;
pub mod keys;
pub mod meta;
pub mod metrics;
pub mod routes;
pub mod sealed;
pub mod state;
pub use countersign_store::time;
pub mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use countersign_projections::database::Database;
use countersign_projections::read::ReadModels;
use tokio::net::TcpListener;

use crate::channels::ChannelsConfig;
use crate::credentials::Verifier;
use crate::keys::ServerKeys;
use crate::state::{AppState, Settings};

/// What a server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// `sqlite://PATH` (created if missing) or `postgres://…`.
    pub database_url: String,
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The key file, created on first start.
    pub key_file: PathBuf,
    /// How often the expiry task sweeps.
    pub expiry_interval: Duration,
    /// How often the delivery worker looks for due messages (it also wakes on every commit).
    pub delivery_interval: Duration,
    /// The wait after a message's first failed delivery; it doubles with each failure.
    pub delivery_backoff: Duration,
    /// How long a stopped asynchronous projection waits before it tries its event again.
    pub projection_retry: Duration,
    /// `synchronous=FULL` (acknowledged means durable) when true.
    pub durable: bool,
    /// Command-side tunables.
    pub settings: Settings,
    /// Where push notifications and codes are delivered.
    pub channels: ChannelsConfig,
}

impl Config {
    /// Defaults for a database URL and a key file, listening on a free loopback port.
    pub fn new(database_url: impl Into<String>, key_file: impl Into<PathBuf>) -> Self {
        Self {
            database_url: database_url.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            key_file: key_file.into(),
            expiry_interval: Duration::from_secs(1),
            delivery_interval: Duration::from_secs(1),
            delivery_backoff: Duration::from_secs(1),
            projection_retry: Duration::from_secs(5),
            durable: true,
            settings: Settings::default(),
            channels: ChannelsConfig::default(),
        }
    }
}

/// Opens the database (applying migrations) with the inline read models attached.
pub async fn open_database(database_url: &str, durable: bool) -> anyhow::Result<Database> {
    Database::open(database_url, durable)
        .await
        .with_context(|| format!("cannot open the database {database_url}"))
}

/// A built server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    expiry_interval: Duration,
    delivery_interval: Duration,
    delivery_backoff: Duration,
    projection_retry: Duration,
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Application {
    /// Opens everything the server needs and binds its listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let keys = ServerKeys::load_or_create(&config.key_file)?;
        let db = open_database(&config.database_url, config.durable).await?;
        let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
        let reads = ReadModels::new(db.pool());
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let metrics = Arc::new(metrics::Metrics::new());
        db.observe_commits(metrics.clone());
        let state = AppState {
            metrics,
            rebuilds: routes::ops::Rebuilds::default(),
            progress: countersign_projections::follow::Progress::default(),
            store: db.events(),
            db,
            reads,
            keys: Arc::new(keys),
            verifier: Arc::new(Verifier::default()),
            settings: Arc::new(config.settings),
            channels: Arc::new(config.channels),
            stopping: stopping_rx,
        };
        Ok(Self {
            listener,
            state,
            stopping: stopping_tx,
            expiry_interval: config.expiry_interval,
            delivery_interval: config.delivery_interval,
            delivery_backoff: config.delivery_backoff,
            projection_retry: config.projection_retry,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// The shared state (for in-process tools such as the demo and the benchmark).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM, then stops accepting and finishes in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes; then long polls answer at once, no new connection is
    /// accepted, and in-flight requests finish before this returns.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let expiry = tokio::spawn(expiry::run(self.state.clone(), self.expiry_interval));
        let delivery = tokio::spawn(delivery::run(
            self.state.clone(),
            self.delivery_interval,
            self.delivery_backoff,
        ));
        let followers: Vec<_> = countersign_projections::follow::ASYNC
            .iter()
            .map(|projection| {
                tokio::spawn(countersign_projections::follow::follow(
                    self.state.db.clone(),
                    *projection,
                    self.state.progress.clone(),
                    self.state.stopping.clone(),
                    self.projection_retry,
                ))
            })
            .collect();
        let app = routes::router(self.state);
        let stopping = self.stopping;
        let stop = async move {
            stop.await;
            stopping.send_replace(true);
        };
        let served = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop)
        .await;
        expiry.abort();
        delivery.abort();
        for follower in followers {
            // Each ends at its next event or at once; a batch in flight commits or rolls back.
            let _ = tokio::time::timeout(Duration::from_secs(5), follower).await;
        }
        served.context("the HTTP server failed")
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
