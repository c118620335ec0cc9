//! API credentials: creation, listing and revocation (from the CLI) and verification (per request).
//!
//! Secrets are 32 random bytes shown once and stored only as Argon2id hashes. Verifying Argon2id
//! costs tens of milliseconds by design, so a successful verification is remembered as the
//! SHA-256 of the secret next to the stored hash it matched: later requests with the same secret
//! cost one SHA-256, and a revoked or re-keyed credential no longer matches.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use countersign_domain::values::{ActionName, ActionPattern};
use countersign_projections::sql::{Pool, TextRows};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// What a credential may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A relying party (bank back end).
    Client,
    /// Reads the audit endpoints.
    Auditor,
    /// Uses the ops endpoints.
    Admin,
}

impl Role {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "client" => Some(Role::Client),
            "auditor" => Some(Role::Auditor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A stored credential, without its secret.
#[derive(Clone, Debug, Serialize)]
pub struct Credential {
    /// The id, used as the HTTP Basic user name.
    pub id: Uuid,
    /// A label for people.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The action patterns a client may use.
    pub actions: Vec<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    secret_hash: String,
}

impl Credential {
    /// Whether a client may act on `action`.
    pub fn allows(&self, action: &ActionName) -> bool {
        self.actions
            .iter()
            .filter_map(|p| ActionPattern::parse(p).ok())
            .any(|p| p.matches(action))
    }
}

/// A credential just made: the only time its secret is known.
#[derive(Clone, Debug, Serialize)]
pub struct NewCredential {
    /// The id.
    pub id: Uuid,
    /// The secret, shown once.
    pub secret: String,
    /// Its role.
    pub role: Role,
    /// Its name.
    pub name: String,
}

/// Why a credential operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// Bad input from the operator.
    #[error("{0}")]
    Invalid(String),
    /// No such credential.
    #[error("no credential with id {0}")]
    NotFound(Uuid),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

const SELECT: &str =
    "select id, name, role, secret_hash, actions, created_at, revoked_at from credentials";

/// Makes a credential and returns its secret, which is never stored.
pub async fn create(
    pool: &Pool,
    role: Role,
    name: &str,
    actions: &[String],
) -> Result<NewCredential, CredentialError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(CredentialError::Invalid(
            "the name must be 1 to 100 characters".into(),
        ));
    }
    for pattern in actions {
        ActionPattern::parse(pattern)
            .map_err(|e| CredentialError::Invalid(format!("action pattern {pattern:?}: {e}")))?;
    }
    if role != Role::Client && !actions.is_empty() {
        return Err(CredentialError::Invalid(
            "only client credentials take action patterns".into(),
        ));
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("css_{}", URL_SAFE_NO_PAD.encode(bytes));
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let hash = Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| CredentialError::Invalid(e.to_string()))?
        .to_string();
    let id = Uuid::now_v7();
    pool.run(
        "insert into credentials (id, name, role, secret_hash, actions, created_at) \
         values ($1, $2, $3, $4, $5, $6)",
        &[
            id.to_string().into(),
            name.into(),
            role.as_str().into(),
            hash.into(),
            serde_json::to_string(actions)
                .expect("strings serialize")
                .into(),
            crate::time::format(Utc::now()).into(),
        ],
    )
    .await?;
    Ok(NewCredential {
        id,
        secret,
        role,
        name: name.to_owned(),
    })
}

/// Every credential, oldest first.
pub async fn list(pool: &Pool) -> Result<Vec<Credential>, CredentialError> {
    let rows = pool
        .rows(&format!("{SELECT} order by created_at, id"), &[])
        .await?;
    from_rows(rows)
}

/// One credential by id.
pub async fn find(pool: &Pool, id: Uuid) -> Result<Option<Credential>, CredentialError> {
    let rows = pool
        .rows(&format!("{SELECT} where id = $1"), &[id.to_string().into()])
        .await?;
    Ok(from_rows(rows)?.into_iter().next())
}

/// Revokes a credential; revoking twice is harmless.
pub async fn revoke(pool: &Pool, id: Uuid) -> Result<(), CredentialError> {
    let changed = pool
        .run(
            "update credentials set revoked_at = coalesce(revoked_at, $1) where id = $2",
            &[
                crate::time::format(Utc::now()).into(),
                id.to_string().into(),
            ],
        )
        .await?;
    if changed == 0 {
        return Err(CredentialError::NotFound(id));
    }
    Ok(())
}

fn from_rows(rows: TextRows) -> Result<Vec<Credential>, CredentialError> {
    let corrupt =
        |what: &str| CredentialError::Invalid(format!("stored credential has a bad {what}"));
    let time = |t: Option<String>| {
        t.as_deref()
            .and_then(crate::time::parse)
            .ok_or_else(|| corrupt("time"))
    };
    rows.into_iter()
        .map(|row| {
            let mut columns = row.into_iter();
            let mut next = || columns.next().flatten();
            let (id, name, role, secret_hash, actions, created_at, revoked_at) =
                (next(), next(), next(), next(), next(), next(), next());
            Ok(Credential {
                id: id
                    .and_then(|i| i.parse().ok())
                    .ok_or_else(|| corrupt("id"))?,
                name: name.ok_or_else(|| corrupt("name"))?,
                role: role
                    .as_deref()
                    .and_then(Role::parse)
                    .ok_or_else(|| corrupt("role"))?,
                actions: actions
                    .and_then(|a| serde_json::from_str(&a).ok())
                    .ok_or_else(|| corrupt("action list"))?,
                created_at: time(created_at)?,
                revoked_at: revoked_at.map(|t| time(Some(t))).transpose()?,
                secret_hash: secret_hash.ok_or_else(|| corrupt("hash"))?,
            })
        })
        .collect()
}

/// Checks presented secrets against stored Argon2id hashes, remembering successes.
#[derive(Default)]
pub struct Verifier {
    verified: Mutex<HashMap<(Uuid, String), [u8; 32]>>,
}

impl Verifier {
    /// The answer without Argon2id, when there is one: `false` for a revoked credential, and
    /// the comparison with a remembered success. `None`: only [`Verifier::verify`] can tell.
    pub fn remembered(&self, credential: &Credential, secret: &str) -> Option<bool> {
        if credential.revoked_at.is_some() {
            return Some(false);
        }
        let fingerprint: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let key = (credential.id, credential.secret_hash.clone());
        let verified = self.verified.lock().expect("verifier lock");
        verified
            .get(&key)
            .map(|known| bool::from(known.ct_eq(&fingerprint)))
    }

    /// Whether `secret` is the credential's secret. Revoked credentials never verify.
    pub fn verify(&self, credential: &Credential, secret: &str) -> bool {
        if let Some(known) = self.remembered(credential, secret) {
            return known;
        }
        let fingerprint: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let key = (credential.id, credential.secret_hash.clone());
        let Ok(hash) = PasswordHash::new(&credential.secret_hash) else {
            return false;
        };
        if Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_err()
        {
            return false;
        }
        let mut verified = self.verified.lock().expect("verifier lock");
        if verified.len() > 10_000 {
            verified.clear();
        }
        verified.insert(key, fingerprint);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool() -> (tempfile::TempDir, Pool) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let db = crate::open_database(&url, false).await.unwrap();
        (dir, db.pool())
    }

    #[tokio::test]
    async fn a_secret_verifies_once_made_and_never_after_revocation() {
        let (_dir, pool) = pool().await;
        let made = create(&pool, Role::Client, "bank", &["bank:transfers:*".into()])
            .await
            .unwrap();
        let stored = find(&pool, made.id).await.unwrap().unwrap();
        assert!(!stored.secret_hash.contains(&made.secret));
        assert!(stored.secret_hash.starts_with("$argon2id$"));
        let verifier = Verifier::default();
        assert_eq!(
            verifier.remembered(&stored, &made.secret),
            None,
            "not yet checked"
        );
        assert!(verifier.verify(&stored, &made.secret));
        assert_eq!(
            verifier.remembered(&stored, &made.secret),
            Some(true),
            "remembered"
        );
        assert_eq!(verifier.remembered(&stored, "css_wrong"), Some(false));
        assert!(!verifier.verify(&stored, "css_wrong"));
        revoke(&pool, made.id).await.unwrap();
        let revoked = find(&pool, made.id).await.unwrap().unwrap();
        assert!(!verifier.verify(&revoked, &made.secret));
        assert!(matches!(
            revoke(&pool, Uuid::now_v7()).await,
            Err(CredentialError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_client_may_only_use_actions_matching_its_patterns() {
        let (_dir, pool) = pool().await;
        let made = create(&pool, Role::Client, "bank", &["bank:transfers:*".into()])
            .await
            .unwrap();
        let client = find(&pool, made.id).await.unwrap().unwrap();
        assert!(client.allows(&ActionName::parse("bank:transfers:create").unwrap()));
        assert!(!client.allows(&ActionName::parse("bank:cards:block").unwrap()));
        assert_eq!(list(&pool).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn bad_names_patterns_and_role_combinations_are_refused() {
        let (_dir, pool) = pool().await;
        assert!(create(&pool, Role::Client, "  ", &[]).await.is_err());
        assert!(create(&pool, Role::Client, "b", &["bad pattern!".into()])
            .await
            .is_err());
        assert!(create(&pool, Role::Auditor, "a", &["bank:*".into()])
            .await
            .is_err());
        assert!(list(&pool).await.unwrap().is_empty());
    }
}
