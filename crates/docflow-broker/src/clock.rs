//! The broker's clock, injectable so that lock expiry, TTL, scheduling and the duplicate window
//! are tested by moving time rather than sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// Milliseconds since the Unix epoch, the broker's unit of time.
pub type Millis = i64;

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now, in milliseconds since the epoch.
    fn now(&self) -> Millis;
}

/// The system clock plus an offset that tests (and `POST /$local/clock`) can advance.
#[derive(Debug, Default)]
pub struct AdjustableClock {
    offset_ms: AtomicI64,
}

impl AdjustableClock {
    /// A clock at the system time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `ms`.
    pub fn advance(&self, ms: Millis) {
        let _ = self
            .offset_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |offset| {
                Some(offset.saturating_add(ms))
            });
    }

    /// The total advance so far.
    pub fn offset(&self) -> Millis {
        self.offset_ms.load(Ordering::SeqCst)
    }
}

impl Clock for AdjustableClock {
    fn now(&self) -> Millis {
        Utc::now()
            .timestamp_millis()
            .saturating_add(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// Milliseconds to a UTC time.
pub fn to_datetime(ms: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
