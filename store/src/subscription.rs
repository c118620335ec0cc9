//! The catch-up-then-live subscription every backend serves: page through the history after a
//! position, then wait on the head watch for commits and read what they added.
//!
//! It delivers every event exactly once and in position order provided the backend keeps one
//! promise: once the head watch shows position `h`, every event up to `h` is committed and
//! readable (positions are committed in order).

use std::future::Future;

use futures::stream::BoxStream;
use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::RecordedEvent;

/// How many events a subscription reads per query while catching up.
const PAGE_SIZE: usize = 500;

/// The stream behind [`EventStore::subscribe`](crate::EventStore::subscribe): `read_page(after,
/// limit)` reads up to `limit` events after `after` in position order.
pub(crate) fn follow<R, F>(
    read_page: R,
    mut head: watch::Receiver<u64>,
    after: u64,
) -> BoxStream<'static, Result<RecordedEvent, StoreError>>
where
    R: Fn(u64, usize) -> F + Send + 'static,
    F: Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send + 'static,
{
    Box::pin(async_stream::try_stream! {
        let mut position = after;
        loop {
            // Mark the head as seen before reading, so a commit during the read wakes us.
            head.borrow_and_update();
            loop {
                let page = read_page(position, PAGE_SIZE).await?;
                let full = page.len() == PAGE_SIZE;
                for event in page {
                    position = event.position;
                    yield event;
                }
                if !full {
                    break;
                }
            }
            while *head.borrow_and_update() <= position {
                head.changed()
                    .await
                    .map_err(|_| StoreError::Unavailable("the event store has shut down".into()))?;
            }
        }
    })
}
