//! Test support shared by every crate's tests: a PostgreSQL database of its own for each test.
//!
//! PostgreSQL tests need `COUNTERSIGN_TEST_POSTGRES_URL` (a server URL whose user may create
//! databases). Without it they say so and pass, unless `COUNTERSIGN_REQUIRE_POSTGRES=1`, which
//! makes them fail instead, so that a CI job meant to cover PostgreSQL cannot skip silently.

use std::io::Write;

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// The variable naming the PostgreSQL server the tests may use.
pub const URL_VAR: &str = "COUNTERSIGN_TEST_POSTGRES_URL";
/// Set to `1` to make a missing [`URL_VAR`] a failure instead of a skip.
pub const REQUIRE_VAR: &str = "COUNTERSIGN_REQUIRE_POSTGRES";

/// The PostgreSQL server URL, or `None` after saying that the test is skipped.
///
/// # Panics
/// When the URL is missing and [`REQUIRE_VAR`] is `1`.
pub fn postgres_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var(REQUIRE_VAR).as_deref() != Ok("1"),
                "{REQUIRE_VAR}=1 but {URL_VAR} is not set: the PostgreSQL tests cannot run"
            );
            // Written past the test harness's capture, so the skip shows in every run.
            let test = std::thread::current().name().unwrap_or("a test").to_owned();
            let _ = writeln!(
                std::io::stderr(),
                "{test} skipped: set {URL_VAR} to run the PostgreSQL tests"
            );
            None
        }
    }
}

/// A database created for one test, dropped (best effort) when this goes out of scope.
pub struct TestDatabase {
    server: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

impl TestDatabase {
    /// Creates `cs_<random>` on the server at `server`.
    pub async fn create(server: &str) -> Self {
        let name = format!("cs_{}", Uuid::now_v7().simple());
        let mut conn = PgConnection::connect(server)
            .await
            .expect("the PostgreSQL test server accepts connections");
        sqlx::query(&format!("create database {name}"))
            .execute(&mut conn)
            .await
            .expect("the test user may create databases");
        let _ = conn.close().await;
        Self {
            server: server.to_owned(),
            url: with_database(server, &name),
            name,
        }
    }

    /// A database for this test, or `None` when PostgreSQL tests are skipped.
    pub async fn for_test() -> Option<Self> {
        Some(Self::create(&postgres_url()?).await)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let sql = format!("drop database if exists {} with (force)", self.name);
        // A runtime of its own on a thread of its own: this may run inside a runtime, or
        // while a failed test unwinds.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&server).await.ok()?;
                sqlx::query(&sql).execute(&mut conn).await.ok()?;
                conn.close().await.ok()
            })
        });
        let _ = dropped.join();
    }
}

/// `server` with its database replaced by `name` (query parameters are kept).
pub fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{name}{query}", &base[..host_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_replaces_the_servers_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://root@127.0.0.1:5432/test", "cs_1"),
            "postgres://root@127.0.0.1:5432/cs_1"
        );
        assert_eq!(
            with_database("postgres://h/db?sslmode=disable", "cs_2"),
            "postgres://h/cs_2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "cs_3"), "postgres://h/cs_3");
    }
}
