//! A model deployment's rate budget: tokens per minute (TPM) and requests per minute (RPM) as
//! token buckets, with limits configured or learned from the provider's `x-ratelimit-*`
//! headers, and a concurrency window that shrinks on `429` and grows back while calls succeed
//! (additive increase, multiplicative decrease).
//!
//! A call reserves its estimate (prompt estimate + `max_tokens`, as Azure OpenAI charges at
//! admission) before it is made and reconciles with the reported usage after. Time is passed
//! in, so that every rule is tested without sleeping. A budget is one process's: the fleet's
//! instances share a deployment through [`crate::ai::fleet`], each spending its share here.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use super::budget_store::{BudgetStore, LocalBudget};
use super::rate_limits::MAX_RESET;
pub use super::rate_limits::{RateHeaders, TokenBucket, parse_reset};

/// How a provider's budget is set up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetOptions {
    /// Tokens per minute of the deployment (`None`: learned from the provider's headers).
    pub tpm: Option<u64>,
    /// Requests per minute (`None`: learned).
    pub rpm: Option<u64>,
    /// Most calls at once (the concurrency window grows back to this).
    pub max_concurrency: usize,
    /// Longest an invocation holds for its reservation before it reschedules its message.
    pub max_wait: Duration,
    /// `false`: the naive policy benchmarks compare against: a fixed number of calls at once
    /// (`max_concurrency`), no token budget, and a `429` is an ordinary transient failure.
    pub adaptive: bool,
    /// How a request's tokens are counted (`None`: by its model's name).
    pub tokenizer: Option<crate::ai::tokens::TokenCounter>,
    /// Whose budget it is: the fleet's (shared through storage) or this process's.
    pub scope: BudgetScope,
    /// How long a fleet lease lasts.
    pub lease: Duration,
}

/// Whose budget a deployment's is (`DOCFLOW_AI_BUDGET_SCOPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BudgetScope {
    /// Shared by every instance reaching the same storage ([`crate::ai::fleet`]).
    #[default]
    Fleet,
    /// This process's alone (one instance, or limits divided by hand).
    Process,
}

impl Default for BudgetOptions {
    fn default() -> Self {
        Self {
            tpm: None,
            rpm: None,
            max_concurrency: 16,
            max_wait: Duration::from_secs(20),
            adaptive: true,
            tokenizer: None,
            scope: BudgetScope::Fleet,
            lease: crate::ai::fleet::DEFAULT_LEASE,
        }
    }
}

/// The share of a limit the budget aims at. A deployment counts over a sliding window: a
/// client sending at exactly the limit fills every window to the brim, and the slightest
/// jitter in arrival makes a call overflow it. Five percent of headroom absorbs that (and the
/// difference between this tokenizer's count and the service's).
pub const HEADROOM: f64 = 0.95;

fn aim(limit: u64) -> u64 {
    ((limit as f64 * HEADROOM).floor() as u64).max(1)
}

/// A reservation made before a call, settled after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reservation {
    /// Tokens reserved.
    pub tokens: u64,
}

/// The budget of one model deployment.
#[derive(Debug, Clone)]
pub struct Budget {
    tokens: Option<TokenBucket>,
    requests: Option<TokenBucket>,
    /// Limits given in configuration are not overridden by what headers say.
    configured: (bool, bool),
    /// The concurrency window (AIMD), within 1..=max_concurrency.
    window: f64,
    max_concurrency: usize,
    in_flight: usize,
    /// Successes since the last change of the window.
    successes: u32,
    /// The naive policy: the window never changes.
    fixed: bool,
    /// Slow start: with no limit configured, one call at a time until a first answer says
    /// what the limits are (a burst sent before the limit is known is mostly refused).
    probing: bool,
    /// What this process was charged over the last minute (tokens; a refused or failed call
    /// takes its charge back), to infer a limit from Azure OpenAI's headers, which say what
    /// remains but not the limit.
    charged: VecDeque<(Instant, i64, i64)>,
    /// Limits inferred from `remaining` + what was charged (tokens, requests); they only grow.
    inferred: (u64, u64),
    /// The tokens-per-minute limit in force: configured, told or inferred (`None`: unknown).
    token_limit: Option<u64>,
    /// The requests-per-minute limit in force, likewise.
    request_limit: Option<u64>,
}

/// What a budget looks like now, for the gauges of `docflow.llm.budget.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSnapshot {
    /// Tokens charged over the last minute (reservations, as a deployment counts them; none
    /// are kept under the naive policy).
    pub tokens_last_minute: u64,
    /// The tokens-per-minute limit (configured, or learned from the provider's headers).
    pub token_limit: Option<u64>,
    /// The requests-per-minute limit (configured, or learned).
    pub request_limit: Option<u64>,
    /// The concurrency window.
    pub window: usize,
    /// Calls in flight.
    pub in_flight: usize,
}

/// The window Azure OpenAI and OpenAI count a per-minute limit over.
const MINUTE: Duration = Duration::from_secs(60);

impl Budget {
    /// A budget with the configured limits (`None`: learned from headers, unlimited until then)
    /// and at most `max_concurrency` calls at once (the host's `maxConcurrentCalls`).
    pub fn new(tpm: Option<u64>, rpm: Option<u64>, max_concurrency: usize, now: Instant) -> Self {
        let max_concurrency = max_concurrency.max(1);
        Self {
            tokens: tpm
                .filter(|n| *n > 0)
                .map(|n| TokenBucket::new(aim(n), now)),
            requests: rpm
                .filter(|n| *n > 0)
                .map(|n| TokenBucket::new(aim(n), now)),
            configured: (tpm.is_some(), rpm.is_some()),
            window: max_concurrency as f64,
            max_concurrency,
            in_flight: 0,
            successes: 0,
            fixed: false,
            probing: tpm.is_none() && rpm.is_none(),
            charged: VecDeque::new(),
            inferred: (0, 0),
            token_limit: tpm.filter(|n| *n > 0),
            request_limit: rpm.filter(|n| *n > 0),
        }
    }

    /// How the budget stands at `now`.
    pub fn snapshot(&self, now: Instant) -> BudgetSnapshot {
        BudgetSnapshot {
            tokens_last_minute: self.charged_last_minute(now).0,
            token_limit: self.token_limit,
            request_limit: self.request_limit,
            window: self.window(),
            in_flight: self.in_flight,
        }
    }

    /// The naive policy: `max_concurrency` calls at once, nothing else; answers teach nothing.
    pub fn fixed(max_concurrency: usize, now: Instant) -> Self {
        let mut budget = Self::new(None, None, max_concurrency, now);
        budget.configured = (true, true);
        budget.fixed = true;
        budget.probing = false;
        budget
    }

    /// Spends a share of a deployment that the fleet's ledger granted: `tokens` and
    /// `requests` per minute (`None`: no limit), at most `window` calls at once. The share is
    /// taken as given (the ledger aimed with headroom already), and answers teach this budget
    /// nothing more: limits are learned by the ledger, for the fleet.
    pub fn share(
        &mut self,
        tokens: Option<f64>,
        requests: Option<f64>,
        window: usize,
        now: Instant,
    ) {
        let rate = |r: f64| (r.max(0.0).round() as u64).max(1);
        let set = |bucket: &mut Option<TokenBucket>, per_minute: Option<f64>| match per_minute {
            None => *bucket = None,
            Some(r) => match bucket {
                Some(b) => b.set_capacity(rate(r), now),
                None => {
                    // Empty at first, as a learned bucket: shares handed out while the fleet
                    // converges must not add their bursts up.
                    let mut new = TokenBucket::new(rate(r), now);
                    new.cap(0, now);
                    *bucket = Some(new);
                }
            },
        };
        set(&mut self.tokens, tokens);
        set(&mut self.requests, requests);
        self.configured = (true, true);
        self.probing = false;
        // The fleet's window, which counts every instance's 429s and successes; a local
        // 429 still halves it until the next share.
        self.max_concurrency = window.max(1);
        self.window = self.max_concurrency as f64;
        self.successes = 0;
    }

    /// At most `tokens` available now (a share of what the provider says remains of its
    /// window: the fleet's instances each take their part of it).
    pub fn cap_tokens(&mut self, tokens: u64, now: Instant) {
        if let Some(bucket) = &mut self.tokens {
            bucket.cap(tokens, now);
        }
    }

    /// Admits nothing before `until` and starts from an empty bucket then (the fleet heard of
    /// a `429`): instances resuming together after a reset must not spend banked bursts at once.
    pub fn hold_until(&mut self, until: Instant, now: Instant) {
        for bucket in [&mut self.tokens, &mut self.requests].into_iter().flatten() {
            bucket.drain_until(until, now);
        }
    }

    /// The current concurrency window.
    pub fn window(&self) -> usize {
        if self.probing {
            return 1;
        }
        (self.window.floor() as usize).clamp(1, self.max_concurrency)
    }

    /// Reserves `tokens` and one request, or says how long to wait before trying again.
    pub fn reserve(&mut self, tokens: u64, now: Instant) -> Result<Reservation, Duration> {
        if self.in_flight >= self.window() {
            // A slot frees when a call ends: look again shortly.
            return Err(Duration::from_millis(50));
        }
        let mut wait = Duration::ZERO;
        if let Some(bucket) = &mut self.requests
            && let Err(w) = bucket.clone().take(1, now)
        {
            wait = wait.max(w);
        }
        if let Some(bucket) = &mut self.tokens
            && let Err(w) = bucket.clone().take(tokens, now)
        {
            wait = wait.max(w);
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        if let Some(bucket) = &mut self.requests {
            let _ = bucket.take(1, now);
        }
        if let Some(bucket) = &mut self.tokens {
            let _ = bucket.take(tokens, now);
        }
        self.charge(tokens as i64, 1, now);
        self.in_flight += 1;
        Ok(Reservation { tokens })
    }

    /// Settles a call that was answered: `used` tokens (the reported usage, or the reservation
    /// when none was reported) replace the reservation, and the headers teach the limits.
    pub fn settle(
        &mut self,
        reservation: Reservation,
        used: u64,
        headers: &RateHeaders,
        now: Instant,
    ) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.probing = false;
        // Azure OpenAI counts a request's admission estimate against the window whatever it
        // used: only a use beyond the reservation is charged; what was not used is not returned
        // (the window gives it back by itself).
        if let Some(bucket) = &mut self.tokens {
            bucket.adjust((reservation.tokens as i64 - used as i64).min(0), now);
        }
        self.learn(headers, now);
        if let (Some(bucket), Some(remaining)) = (&mut self.tokens, headers.remaining_tokens) {
            // The provider knows better (other clients share the deployment).
            bucket.cap(remaining, now);
        }
        self.successes += 1;
        if !self.fixed && self.successes as f64 >= self.window {
            self.successes = 0;
            self.window = (self.window + 1.0).min(self.max_concurrency as f64);
        }
    }

    /// Settles a call refused with `429`: nothing was used, the window halves, and the buckets
    /// stay empty until the provider's reset (or `retry_after`).
    pub fn refused(
        &mut self,
        reservation: Reservation,
        headers: &RateHeaders,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.fixed {
            return;
        }
        self.charge(-(reservation.tokens as i64), -1, now);
        self.learn(headers, now);
        self.probing = false;
        self.successes = 0;
        self.window = (self.window / 2.0).max(1.0);
        let reset = retry_after
            .or(headers.reset_tokens)
            .unwrap_or(Duration::from_secs(1))
            .min(MAX_RESET);
        if let Some(bucket) = &mut self.tokens {
            bucket.adjust(reservation.tokens as i64, now);
            bucket.drain_until(now + reset, now);
        }
        if let Some(bucket) = &mut self.requests {
            bucket.drain_until(
                now + headers.reset_requests.unwrap_or(reset).min(MAX_RESET),
                now,
            );
        }
    }

    /// Settles a call that failed without an answer about the budget.
    pub fn failed(&mut self, reservation: Reservation, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.charge(-(reservation.tokens as i64), -1, now);
        if let Some(bucket) = &mut self.tokens {
            bucket.adjust(reservation.tokens as i64, now);
        }
    }

    /// Records a charge (or, negative, one taken back); forgets what is older than a minute.
    fn charge(&mut self, tokens: i64, requests: i64, now: Instant) {
        while self
            .charged
            .front()
            .is_some_and(|(at, _, _)| now.saturating_duration_since(*at) >= MINUTE)
        {
            self.charged.pop_front();
        }
        if !self.fixed {
            self.charged.push_back((now, tokens, requests));
        }
    }

    /// Tokens and requests charged over the last minute.
    fn charged_last_minute(&self, now: Instant) -> (u64, u64) {
        let recent = self
            .charged
            .iter()
            .filter(|(at, _, _)| now.saturating_duration_since(*at) < MINUTE);
        let (mut tokens, mut requests) = (0i64, 0i64);
        for (_, t, r) in recent {
            tokens += t;
            requests += r;
        }
        (tokens.max(0) as u64, requests.max(0) as u64)
    }

    /// Learns the limits an answer tells: OpenAI's `x-ratelimit-limit-*`, or, from Azure
    /// OpenAI's headers, which carry what remains of the minute but not the limit, a limit
    /// inferred as what remains plus what this process was charged over the minute (other
    /// clients' use only makes the guess lower, so safer; later guesses can only raise it).
    fn learn(&mut self, headers: &RateHeaders, now: Instant) {
        let (tokens, requests) = self.charged_last_minute(now);
        if !self.configured.0 {
            let told = (headers.limit_tokens, headers.remaining_tokens);
            if let Some(limit) =
                learn_limit(&mut self.tokens, &mut self.inferred.0, told, tokens, now)
            {
                self.token_limit = Some(limit);
            }
        }
        if !self.configured.1 {
            let told = (headers.limit_requests, headers.remaining_requests);
            if let Some(limit) = learn_limit(
                &mut self.requests,
                &mut self.inferred.1,
                told,
                requests,
                now,
            ) {
                self.request_limit = Some(limit);
            }
        }
    }
}

/// Learns one limit from what an answer told, `(limit, remaining)`: the limit when given,
/// otherwise what remains plus what was `charged` over the minute, when that is more than
/// `inferred` (the best guess so far). Returns the limit set, if one was.
fn learn_limit(
    bucket: &mut Option<TokenBucket>,
    inferred: &mut u64,
    told: (Option<u64>, Option<u64>),
    charged: u64,
    now: Instant,
) -> Option<u64> {
    match told {
        (Some(limit), _) => {
            set_limit(bucket, limit, now);
            (limit > 0).then_some(limit)
        }
        (None, Some(remaining)) => {
            let estimate = remaining.saturating_add(charged);
            if estimate > *inferred {
                *inferred = estimate;
                set_limit(bucket, estimate, now);
                return (estimate > 0).then_some(estimate);
            }
            None
        }
        (None, None) => None,
    }
}

/// Sets a learned per-minute `limit` (aimed at with headroom). A new bucket starts empty: what
/// the deployment admitted before this answer stays in its window for a while.
fn set_limit(bucket: &mut Option<TokenBucket>, limit: u64, now: Instant) {
    if limit == 0 {
        return;
    }
    match bucket {
        Some(bucket) => bucket.set_capacity(aim(limit), now),
        None => {
            let mut new = TokenBucket::new(aim(limit), now);
            new.cap(0, now);
            *bucket = Some(new);
        }
    }
}

#[cfg(test)]
mod tests;
