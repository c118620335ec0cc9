//! A server started in-process on a temporary SQLite database, with one client credential: what
//! the demo and the benchmark run against.

use countersign_projections::database::Database;
use tokio::task::JoinHandle;

use crate::credentials::{self, NewCredential, Role};
use crate::{Application, Config};

/// A running in-process server; its database is removed when this is dropped.
pub struct LocalServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The database URL.
    pub url: String,
    /// A client credential allowed `pattern`.
    pub client: NewCredential,
    /// The server's database, for reading the log and the writer's figures directly.
    pub db: Database,
    server: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl LocalServer {
    /// Starts a server with a client named `name` allowed the actions matching `pattern`, on
    /// `database_url` or, without one, on a new SQLite file.
    pub async fn start(
        name: &str,
        pattern: &str,
        durable: bool,
        database_url: Option<&str>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = match database_url {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}", dir.path().join("countersign.db").display()),
        };
        let mut config = Config::new(&url, dir.path().join("countersign.keys"));
        config.durable = durable;
        let app = Application::build(config).await?;
        let base = format!("http://{}", app.local_addr());
        let client = credentials::create(
            app.state().pool(),
            Role::Client,
            name,
            &[pattern.to_owned()],
        )
        .await?;
        let db = app.state().db.clone();
        let server = tokio::spawn(app.run_until(std::future::pending()));
        Ok(Self {
            base,
            url,
            client,
            db,
            server,
            _dir: dir,
        })
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}
