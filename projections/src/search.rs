//! The auditors' search over action requests: by user, client and status within a period of
//! creation, newest last, served from the status read model's indexed columns.

use crate::sql::{Param, Pool};

/// What to look for; every field is optional.
#[derive(Clone, Debug, Default)]
pub struct SearchFilter {
    /// The user whose approval was asked for.
    pub uid: Option<String>,
    /// The client (credential id) that made the request.
    pub client_id: Option<String>,
    /// The recorded status (`PENDING`, `CONFIRMED`, …).
    pub status: Option<String>,
    /// Created at or after this time (RFC 3339 with microseconds, UTC).
    pub from: Option<String>,
    /// Created before this time.
    pub to: Option<String>,
    /// Resume after this `(created_at, id)`, the last hit of the previous page.
    pub after: Option<(String, String)>,
    /// The most hits to return.
    pub limit: u32,
}

/// One request found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SearchHit {
    /// The request's id.
    pub id: String,
    /// The client that made it.
    pub client_id: String,
    /// The user asked.
    pub uid: String,
    /// The action to approve.
    pub action: String,
    /// Its recorded status.
    pub status: String,
    /// When it was created.
    pub created_at: String,
    /// When its last event happened.
    pub updated_at: String,
}

/// The requests matching `filter`, in creation order.
pub async fn search(pool: &Pool, filter: &SearchFilter) -> Result<Vec<SearchHit>, sqlx::Error> {
    let mut conditions = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    let mut condition = |sql: &str, values: Vec<Param>| {
        let mut clause = sql.to_owned();
        for value in values {
            params.push(value);
            clause = clause.replacen('?', &format!("${}", params.len()), 1);
        }
        conditions.push(clause);
    };
    if let Some(uid) = &filter.uid {
        condition("uid = ?", vec![uid.as_str().into()]);
    }
    if let Some(client) = &filter.client_id {
        condition("client_id = ?", vec![client.as_str().into()]);
    }
    if let Some(status) = &filter.status {
        condition("status = ?", vec![status.as_str().into()]);
    }
    if let Some(from) = &filter.from {
        condition("created_at >= ?", vec![from.as_str().into()]);
    }
    if let Some(to) = &filter.to {
        condition("created_at < ?", vec![to.as_str().into()]);
    }
    if let Some((created_at, id)) = &filter.after {
        condition(
            "(created_at > ? or (created_at = ? and id > ?))",
            vec![
                created_at.as_str().into(),
                created_at.as_str().into(),
                id.as_str().into(),
            ],
        );
    }
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("where {}", conditions.join(" and "))
    };
    let sql = format!(
        "select id, client_id, uid, action, status, created_at, updated_at \
         from action_request_status {filter_sql} order by created_at, id limit {}",
        filter.limit
    );
    let rows = pool.rows(&sql, &params).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut columns = row.into_iter().map(Option::unwrap_or_default);
            let mut next = || columns.next().unwrap_or_default();
            SearchHit {
                id: next(),
                client_id: next(),
                uid: next(),
                action: next(),
                status: next(),
                created_at: next(),
                updated_at: next(),
            }
        })
        .collect())
}
