//! The server's clock: the system time, plus an offset that tests move forward to make time pass.
//!
//! Every rule about time (expiry, token lifetime) reads this clock, never `Utc::now()` directly,
//! so a test can reach a request's expiry without waiting for it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

/// A cloneable handle to one clock.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_a_clone_moves_every_clone() {
        let clock = Clock::default();
        let other = clock.clone();
        let before = clock.now();
        other.advance(Duration::hours(1));
        assert!(clock.now() - before >= Duration::hours(1));
    }
}
