//! The node's wall clock, with an offset the nemesis can set through
//! `POST /admin/clock`. Last-write-wins timestamps come from it; timeouts and
//! elections use the monotonic clock and are not affected.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A wall clock that can be shifted.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// Milliseconds since the Unix epoch, plus the offset (never below 0).
    pub fn now_ms(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        real.saturating_add(self.offset_ms()).max(0) as u64
    }

    /// The current offset.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Sets (not adds) the offset; 0 resets the clock.
    pub fn set_offset_ms(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_shifts_time() {
        let clock = Clock::default();
        let before = clock.now_ms();
        clock.set_offset_ms(-60_000);
        assert!(clock.now_ms() + 50_000 < before);
        clock.set_offset_ms(0);
        assert!(clock.now_ms() >= before);
    }
}
