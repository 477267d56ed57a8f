//! Where a deployment's budget lives: the [`BudgetStore`] seam, and [`LocalBudget`], the
//! budget of this process.

use std::time::{Duration, Instant};

use super::budget::{Budget, BudgetSnapshot, RateHeaders, Reservation};

/// Where a deployment's budget lives. Today each process keeps its own ([`LocalBudget`]); a
/// store shared by scaled-out instances (a Redis or a blob lease) can implement this later.
pub trait BudgetStore: Send + Sync + std::fmt::Debug {
    /// Reserves `tokens` and one request, or says how long to wait before trying again.
    fn reserve(&self, tokens: u64, now: Instant) -> Result<Reservation, Duration>;
    /// Settles an answered call (see [`Budget::settle`]).
    fn settle(&self, reservation: Reservation, used: u64, headers: &RateHeaders, now: Instant);
    /// Settles a call refused with `429` (see [`Budget::refused`]).
    fn refused(
        &self,
        reservation: Reservation,
        headers: &RateHeaders,
        retry_after: Option<Duration>,
        now: Instant,
    );
    /// Settles a call that failed without an answer about the budget.
    fn failed(&self, reservation: Reservation, now: Instant);
    /// How the budget stands, for its gauges (`None`: a store that cannot tell).
    fn snapshot(&self, _now: Instant) -> Option<BudgetSnapshot> {
        None
    }
}

/// The budget of this process.
#[derive(Debug)]
pub struct LocalBudget(std::sync::Mutex<Budget>);

impl LocalBudget {
    /// A store holding `budget`.
    pub fn new(budget: Budget) -> Self {
        Self(std::sync::Mutex::new(budget))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Budget> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl BudgetStore for LocalBudget {
    fn reserve(&self, tokens: u64, now: Instant) -> Result<Reservation, Duration> {
        self.lock().reserve(tokens, now)
    }

    fn settle(&self, reservation: Reservation, used: u64, headers: &RateHeaders, now: Instant) {
        self.lock().settle(reservation, used, headers, now);
    }

    fn refused(
        &self,
        reservation: Reservation,
        headers: &RateHeaders,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        self.lock().refused(reservation, headers, retry_after, now);
    }

    fn failed(&self, reservation: Reservation, now: Instant) {
        self.lock().failed(reservation, now);
    }

    fn snapshot(&self, now: Instant) -> Option<BudgetSnapshot> {
        Some(self.lock().snapshot(now))
    }
}
