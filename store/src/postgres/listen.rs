//! The head watch across processes: a task that `LISTEN`s on the channel every writer notifies
//! at commit and moves this process's head watch to the highest position it hears of.
//!
//! Notifications sent while the listening connection was down are lost, so after every
//! (re)connection the task reads the last committed position instead: the watch can lag, but
//! never misses a commit for good.

use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;

use super::read;
use crate::error::StoreError;
use crate::group_commit::advance;

/// The notification channel; the payload is the last position of a committed batch.
pub(crate) const CHANNEL: &str = "countersign_events";

/// How long to wait before connecting again after the listener lost the database.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// Starts listening, catches `head` up and spawns the task that keeps it moving. The task ends
/// once every receiver of `head` is gone.
pub(crate) async fn start(pool: PgPool, head: watch::Sender<u64>) -> Result<(), StoreError> {
    let listener = listen_and_catch_up(&pool, &head).await?;
    tokio::spawn(follow(pool, head, listener));
    Ok(())
}

/// Listens on [`CHANNEL`], then reads the last committed position, so that every commit is
/// either heard or already counted.
async fn listen_and_catch_up(
    pool: &PgPool,
    head: &watch::Sender<u64>,
) -> Result<PgListener, StoreError> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    catch_up(pool, head).await?;
    Ok(listener)
}

async fn catch_up(pool: &PgPool, head: &watch::Sender<u64>) -> Result<(), StoreError> {
    advance(head, read::head(pool).await?);
    Ok(())
}

/// Moves `head` on every notification until nobody watches it any more.
async fn follow(pool: PgPool, head: watch::Sender<u64>, mut listener: PgListener) {
    loop {
        let received = tokio::select! {
            () = head.closed() => return,
            received = listener.try_recv() => received,
        };
        let healthy = match received {
            Ok(Some(notification)) => {
                heard(&head, notification.payload());
                true
            }
            // The connection was lost and is listening again: count what was missed.
            Ok(None) => match catch_up(&pool, &head).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(%error, "reading the head after a reconnection failed");
                    false
                }
            },
            Err(error) => {
                tracing::warn!(%error, "listening for commits failed");
                false
            }
        };
        if !healthy {
            drop(listener);
            match reconnect(&pool, &head).await {
                Some(again) => listener = again,
                None => return,
            }
        }
    }
}

/// Listens again, retrying until it works or nobody watches the head any more.
async fn reconnect(pool: &PgPool, head: &watch::Sender<u64>) -> Option<PgListener> {
    loop {
        tokio::select! {
            () = head.closed() => return None,
            () = tokio::time::sleep(RETRY_DELAY) => {}
        }
        match listen_and_catch_up(pool, head).await {
            Ok(listener) => return Some(listener),
            Err(error) => tracing::warn!(%error, "listening for commits again failed"),
        }
    }
}

/// Applies one notification's payload.
fn heard(head: &watch::Sender<u64>, payload: &str) {
    match payload.parse() {
        Ok(position) => advance(head, position),
        Err(_) => tracing::warn!(payload, "ignoring a malformed commit notification"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_move_the_head_forward_only() {
        let (head, seen) = watch::channel(10);
        heard(&head, "12");
        heard(&head, "11");
        heard(&head, "not a position");
        assert_eq!(*seen.borrow(), 12);
    }
}
