//! Portable SQL for read models: one small interface over every backend's connections and pools.
//!
//! Read models write their SQL once, in the dialect SQLite and PostgreSQL share: `$N`
//! placeholders, `on conflict … do …`, and text or integer parameters. Every selected column must
//! be text (cast numbers with `cast(x as text)`), which keeps decoding identical on every backend.

use async_trait::async_trait;
use sqlx::postgres::PgArguments;
use sqlx::sqlite::SqliteArguments;
use sqlx::{PgConnection, PgPool, Row, SqliteConnection, SqlitePool};

/// A bound parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    /// Text or NULL.
    Text(Option<String>),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit integer or NULL.
    OptionalInt(Option<i64>),
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(Some(value.to_owned()))
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(Some(value))
    }
}

impl From<Option<String>> for Param {
    fn from(value: Option<String>) -> Self {
        Param::Text(value)
    }
}

impl From<Option<&str>> for Param {
    fn from(value: Option<&str>) -> Self {
        Param::Text(value.map(str::to_owned))
    }
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}

/// Rows of text columns.
pub type TextRows = Vec<Vec<Option<String>>>;

/// Runs portable SQL on a connection, a transaction or a pool.
#[async_trait]
pub trait Sql: Send {
    /// Runs a statement; returns the rows it affected.
    async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, sqlx::Error>;
    /// Runs a query whose columns are all text.
    async fn fetch(&mut self, sql: &str, params: &[Param]) -> Result<TextRows, sqlx::Error>;
}

fn sqlite_query<'q>(
    sql: &'q str,
    params: &[Param],
) -> sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments<'q>> {
    let mut query = sqlx::query(sql);
    for param in params {
        query = match param {
            Param::Text(text) => query.bind(text.clone()),
            Param::Int(int) => query.bind(*int),
            Param::OptionalInt(int) => query.bind(*int),
        };
    }
    query
}

fn pg_query<'q>(
    sql: &'q str,
    params: &[Param],
) -> sqlx::query::Query<'q, sqlx::Postgres, PgArguments> {
    let mut query = sqlx::query(sql);
    for param in params {
        query = match param {
            Param::Text(text) => query.bind(text.clone()),
            Param::Int(int) => query.bind(*int),
            Param::OptionalInt(int) => query.bind(*int),
        };
    }
    query
}

fn text_rows<R: Row>(rows: Vec<R>) -> Result<TextRows, sqlx::Error>
where
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    rows.iter()
        .map(|row| (0..row.len()).map(|i| row.try_get(i)).collect())
        .collect()
}

#[async_trait]
impl Sql for SqliteConnection {
    async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, sqlx::Error> {
        Ok(sqlite_query(sql, params)
            .execute(&mut *self)
            .await?
            .rows_affected())
    }

    async fn fetch(&mut self, sql: &str, params: &[Param]) -> Result<TextRows, sqlx::Error> {
        text_rows(sqlite_query(sql, params).fetch_all(&mut *self).await?)
    }
}

#[async_trait]
impl Sql for PgConnection {
    async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, sqlx::Error> {
        Ok(pg_query(sql, params)
            .execute(&mut *self)
            .await?
            .rows_affected())
    }

    async fn fetch(&mut self, sql: &str, params: &[Param]) -> Result<TextRows, sqlx::Error> {
        text_rows(pg_query(sql, params).fetch_all(&mut *self).await?)
    }
}

/// A read pool of whichever backend the server runs on.
#[derive(Clone, Debug)]
pub enum Pool {
    /// The embedded SQLite database.
    Sqlite(SqlitePool),
    /// A PostgreSQL database shared by several instances.
    Postgres(PgPool),
}

#[async_trait]
impl Sql for Pool {
    async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, sqlx::Error> {
        match self {
            Pool::Sqlite(pool) => Ok(sqlite_query(sql, params)
                .execute(&*pool)
                .await?
                .rows_affected()),
            Pool::Postgres(pool) => {
                Ok(pg_query(sql, params).execute(&*pool).await?.rows_affected())
            }
        }
    }

    async fn fetch(&mut self, sql: &str, params: &[Param]) -> Result<TextRows, sqlx::Error> {
        match self {
            Pool::Sqlite(pool) => text_rows(sqlite_query(sql, params).fetch_all(&*pool).await?),
            Pool::Postgres(pool) => text_rows(pg_query(sql, params).fetch_all(&*pool).await?),
        }
    }
}

/// Commits `tx` when `result` is a success, rolls it back otherwise.
async fn finish<DB: sqlx::Database, T, E: From<sqlx::Error>>(
    tx: sqlx::Transaction<'_, DB>,
    result: Result<T, E>,
) -> Result<T, E> {
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(error) => {
            tx.rollback().await?;
            Err(error)
        }
    }
}

impl Pool {
    /// Runs `f` in one transaction (on SQLite `BEGIN IMMEDIATE`, so that it waits for the
    /// writer instead of failing when it turns from reading to writing); commits when `f`
    /// succeeds and rolls back when it fails.
    pub async fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<sqlx::Error>,
        F: for<'c> FnOnce(&'c mut dyn Sql) -> futures::future::BoxFuture<'c, Result<T, E>>,
    {
        use sqlx::Connection;
        match self {
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                let result = f(&mut *tx).await;
                finish(tx, result).await
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let result = f(&mut *tx).await;
                finish(tx, result).await
            }
        }
    }

    /// Runs a statement on a clone of the pool.
    pub async fn run(&self, sql: &str, params: &[Param]) -> Result<u64, sqlx::Error> {
        self.clone().execute(sql, params).await
    }

    /// Runs a text query on a clone of the pool.
    pub async fn rows(&self, sql: &str, params: &[Param]) -> Result<TextRows, sqlx::Error> {
        self.clone().fetch(sql, params).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn numbered_placeholders_bind_by_number_on_sqlite() {
        let pool = Pool::Sqlite(SqlitePool::connect("sqlite::memory:").await.unwrap());
        let rows = pool
            .rows(
                "select $2, cast($1 as text), $3",
                &[Param::Int(7), "second".into(), Param::Text(None)],
            )
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![vec![Some("second".into()), Some("7".into()), None]]
        );
    }
}
