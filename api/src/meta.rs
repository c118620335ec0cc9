//! Who made a request and from where: the metadata recorded with every event it causes.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use countersign_store::{Actor, ActorKind, Metadata};
use uuid::Uuid;

/// The header a caller may set to correlate its logs with ours.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The caller's correlation id, if it is usable: 1 to 128 visible ASCII characters.
pub fn usable_correlation_id(value: &str) -> Option<String> {
    let usable =
        !value.is_empty() && value.len() <= 128 && value.chars().all(|c| c.is_ascii_graphic());
    usable.then(|| value.to_owned())
}

/// The request's correlation id and client address.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    /// The caller's correlation id, or a fresh one.
    pub correlation_id: String,
    /// The peer address, if known.
    pub ip: Option<String>,
}

impl RequestMeta {
    /// The event metadata for an action by `kind`/`id`.
    pub fn metadata(&self, kind: ActorKind, id: impl ToString) -> Metadata {
        Metadata {
            actor: Actor {
                kind,
                id: Some(id.to_string()),
            },
            correlation_id: Some(self.correlation_id.clone()),
            ip: self.ip.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let correlation_id = parts
            .headers
            .get(CORRELATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(usable_correlation_id)
            .unwrap_or_else(|| Uuid::now_v7().to_string());
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        Ok(Self { correlation_id, ip })
    }
}

/// Metadata for events the server writes on its own (expiry).
pub fn system() -> Metadata {
    Metadata {
        actor: Actor {
            kind: ActorKind::System,
            id: Some("expiry".into()),
        },
        correlation_id: Some(Uuid::now_v7().to_string()),
        ip: None,
    }
}
