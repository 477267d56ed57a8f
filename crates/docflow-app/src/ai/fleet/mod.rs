//! One budget for the whole fleet: the instances Azure scales out share a model deployment's
//! tokens and requests per minute through a [`ledger::Ledger`] in the blob storage they
//! already share (Azure Blob, Azurite or the local folder store), so that no new resource is
//! needed and any two processes pointed at the same storage share one budget.
//!
//! [`FleetBudget`] is a [`BudgetStore`]: calls reserve against the instance's current lease
//! (its share, spent through a local [`Budget`]) without touching storage; a task renews the
//! lease in the background, once per lease period while there is demand, at once when the
//! instance has none yet, saw a `429` or learned a limit. A renewal reads the ledger and
//! writes it back with `If-Match`: a lost race is read and computed again, never
//! double-spent. A store that is slow or down only delays renewals: without a live lease a
//! call waits, and past the budget's hold-in-place limit its message is rescheduled as any
//! budget wait is.

pub mod ledger;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use self::ledger::{Ledger, Report, Told};
use super::budget::{Budget, BudgetSnapshot, BudgetStore, RateHeaders, Reservation};
use docflow_blob::{BlobError, BlobStore};

/// How long a lease lasts unless configured (`DOCFLOW_AI_BUDGET_LEASE_MS`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(8);

/// What wants everything that is free (an instance whose calls found no room).
const WANT_ALL: f64 = 1e12;

/// Where the fleet's ledgers live, and who this instance is.
#[derive(Clone)]
pub struct SharedBudget {
    /// The storage every instance reaches.
    pub blobs: Arc<dyn BlobStore>,
    /// The container of the ledgers (the app's state container).
    pub container: String,
    /// This instance (`WEBSITE_INSTANCE_ID` on Azure).
    pub instance: String,
    /// How long a lease lasts.
    pub lease: Duration,
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("container", &self.container)
            .field("instance", &self.instance)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl SharedBudget {
    /// The ledger blob of the deployment `model` at `endpoint` (`budgets/{host}/{model}.json`):
    /// instances that call the same deployment share it, whatever else they run.
    pub fn ledger_name(endpoint: &str, model: &str) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                        c
                    } else {
                        '-'
                    }
                })
                .collect()
        };
        let host = endpoint
            .split_once("://")
            .map_or(endpoint, |(_, rest)| rest)
            .trim_end_matches('/');
        format!("budgets/{}/{}.json", clean(host), clean(model))
    }
}

/// The fleet's budget of one deployment, as this instance spends it.
#[derive(Debug)]
pub struct FleetBudget {
    inner: Arc<Inner>,
    stop: CancellationToken,
}

impl Drop for FleetBudget {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

struct Inner {
    shared: SharedBudget,
    blob: String,
    deployment: String,
    configured: (Option<u64>, Option<u64>),
    max_concurrency: usize,
    local: Mutex<Local>,
    wake: Notify,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("blob", &self.blob)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// The lease this instance holds.
#[derive(Debug, Clone, Copy)]
struct Held {
    until: Instant,
    backoff: Option<Instant>,
    window: usize,
    limits: (Option<u64>, Option<u64>),
    tokens: Option<f64>,
    requests: Option<f64>,
}

#[derive(Debug)]
struct Local {
    budget: Budget,
    held: Option<Held>,
    /// Tokens admitted, when (the last minute).
    admitted: VecDeque<(Instant, u64)>,
    /// A reservation found no room since the last renewal.
    short: bool,
    /// The last reservation asked for (of any outcome).
    last_demand: Option<Instant>,
    /// The largest reservation seen: the least a want asks for, and kept banked.
    largest: u64,
    told: Option<Told>,
    answered: bool,
    refused: Option<Duration>,
    successes: u32,
    /// No renewal before this (after a failed one).
    retry_at: Option<Instant>,
}

impl FleetBudget {
    /// The budget of `deployment` (the model or Azure deployment name) at `endpoint`, shared
    /// through `shared`; `configured` limits (`DOCFLOW_AI_TPM`, `DOCFLOW_AI_RPM`) are the
    /// deployment's, for the whole fleet. Starts its renewal task on the current runtime.
    pub fn start(
        shared: SharedBudget,
        endpoint: &str,
        deployment: &str,
        configured: (Option<u64>, Option<u64>),
        max_concurrency: usize,
    ) -> Self {
        let now = Instant::now();
        let inner = Arc::new(Inner {
            blob: SharedBudget::ledger_name(endpoint, deployment),
            deployment: deployment.to_owned(),
            shared,
            configured,
            max_concurrency: max_concurrency.max(1),
            local: Mutex::new(Local {
                budget: Budget::new(None, None, max_concurrency, now),
                held: None,
                admitted: VecDeque::new(),
                short: false,
                last_demand: None,
                largest: 0,
                told: None,
                answered: false,
                refused: None,
                successes: 0,
                retry_at: None,
            }),
            wake: Notify::new(),
        });
        let stop = CancellationToken::new();
        tokio::spawn(run(inner.clone(), stop.clone()));
        Self { inner, stop }
    }

    /// The ledger blob's name.
    pub fn ledger(&self) -> &str {
        &self.inner.blob
    }
}

impl Inner {
    fn local(&self) -> MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn period(&self) -> Duration {
        self.shared.lease.max(Duration::from_millis(200))
    }

    /// When the next renewal is due: at once with news for the fleet or without a lease while
    /// calls wait, a quarter of a period before the lease ends while there is demand; never
    /// while idle (the lease lapses and its share returns to the fleet); not before a failed
    /// renewal's retry time.
    fn due(&self, now: Instant) -> Option<Instant> {
        let l = self.local();
        let period = self.period();
        let busy = l.budget.snapshot(now).in_flight > 0
            || l.last_demand
                .is_some_and(|t| now.duration_since(t) < period);
        // What the fleet must hear of at once: a 429, or the probe's answer.
        let news =
            l.refused.is_some() || (l.answered && l.held.is_some_and(|h| h.limits == (None, None)));
        let at = match &l.held {
            _ if news => Some(now),
            // Waiting for another instance's probe: look for its answer four times a second.
            Some(h) if h.until > now && h.window == 0 => busy.then(|| {
                (h.until.checked_sub(period).unwrap_or(now) + Duration::from_millis(250))
                    .min(h.until)
            }),
            // Granted nothing yet (the others still hold it all): ask again soon.
            Some(h) if h.until > now && h.tokens.is_some_and(|t| t < 1.0) => {
                busy.then(|| h.until.checked_sub(period).unwrap_or(now) + period / 4)
            }
            Some(h) if h.until > now => {
                busy.then(|| h.until.checked_sub(period / 4).unwrap_or(now))
            }
            _ => busy.then_some(now),
        }?;
        Some(l.retry_at.map_or(at, |r| r.max(at)))
    }

    /// What this instance brings to a renewal.
    fn report(&self, now: Instant) -> Report {
        let mut l = self.local();
        while l
            .admitted
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= Duration::from_secs(60))
        {
            l.admitted.pop_front();
        }
        let period = self.period();
        let recent = l
            .admitted
            .iter()
            .filter(|(at, _)| now.duration_since(*at) < period);
        let (tokens, calls) = recent.fold((0u64, 0u64), |a, (_, t)| (a.0 + t, a.1 + 1));
        let per_minute = 60.0 / period.as_secs_f64();
        let floor = l.largest.max(1_000) as f64 * per_minute;
        // Short of room: everything free. Otherwise what it spent lately with room to grow,
        // and at least three quarters of what it holds: a share it does not use shrinks a
        // quarter per renewal (and lapses when the instance goes idle), so that a dip in its
        // own backlog does not hand the share away at once.
        let (want_tokens, want_requests) = match l.held {
            _ if l.short => (WANT_ALL, WANT_ALL),
            None => (WANT_ALL, WANT_ALL),
            Some(h) => (
                (tokens as f64 * per_minute * 1.5 + floor).max(0.75 * h.tokens.unwrap_or(0.0)),
                (calls as f64 * per_minute * 1.5)
                    .max(per_minute)
                    .max(0.75 * h.requests.unwrap_or(0.0)),
            ),
        };
        let snapshot = l.budget.snapshot(now);
        let requests_last_minute = l.admitted.len() as u64;
        Report {
            want_tokens,
            want_requests,
            max_concurrency: self.max_concurrency as u32,
            configured: self.configured,
            charged: (snapshot.tokens_last_minute, requests_last_minute),
            told: l.told,
            answered: l.answered,
            refused: l
                .refused
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            successes: l.successes,
        }
    }

    /// Takes a granted lease; what the report carried is cleared.
    fn apply(&self, lease: ledger::Lease, report: &Report, wall_now: i64, now: Instant) {
        let at = |ms: i64| now + Duration::from_millis(u64::try_from(ms - wall_now).unwrap_or(0));
        let mut l = self.local();
        l.budget
            .share(lease.tokens, lease.requests, lease.window.max(1), now);
        let backoff = (lease.backoff_until > wall_now).then(|| at(lease.backoff_until));
        if let Some(until) = backoff {
            l.budget.hold_until(until, now);
        }
        l.held = Some(Held {
            until: at(lease.until),
            backoff,
            window: lease.window,
            limits: lease.limits,
            tokens: lease.tokens,
            requests: lease.requests,
        });
        l.short = false;
        l.retry_at = None;
        if report.told == l.told {
            l.told = None;
        }
        if report.answered {
            l.answered = false;
        }
        if report.refused.is_some() {
            l.refused = None;
        }
        l.successes = l.successes.saturating_sub(report.successes);
    }

    /// One renewal: read, compute, write if unchanged; a lost race starts over.
    async fn renew(&self) -> Result<(), BlobError> {
        let blobs = &self.shared.blobs;
        let container = &self.shared.container;
        let period_ms = i64::try_from(self.period().as_millis()).unwrap_or(i64::MAX);
        let metrics = crate::metrics::global();
        for attempt in 0..8u64 {
            let found = match blobs.get(container, &self.blob).await {
                Ok(blob) => Some(blob),
                Err(BlobError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            metrics.budget_store_operation(&self.deployment, "read");
            let mut ledger = match &found {
                Some(blob) => serde_json::from_slice::<Ledger>(&blob.data).unwrap_or_else(|e| {
                    tracing::error!(ledger = %self.blob, error = %e, "the budget ledger is unreadable: starting a new one");
                    Ledger::default()
                }),
                None => Ledger::default(),
            };
            let (now, wall_now) = (Instant::now(), chrono::Utc::now().timestamp_millis());
            let report = self.report(now);
            let lease = ledger.renew(&self.shared.instance, &report, wall_now, period_ms);
            let data = Bytes::from(serde_json::to_vec(&ledger).expect("a ledger serializes"));
            let written = match &found {
                Some(blob) => {
                    let etag = &blob.properties.etag;
                    blobs
                        .put_if_match(container, &self.blob, data, "application/json", etag)
                        .await
                }
                None => {
                    blobs
                        .create_if_absent(container, &self.blob, data, "application/json")
                        .await
                }
            };
            metrics.budget_store_operation(&self.deployment, "write");
            match written {
                Ok(_) => {
                    self.apply(lease, &report, wall_now, now);
                    return Ok(());
                }
                Err(BlobError::ConditionNotMet { .. } | BlobError::AlreadyExists { .. }) => {
                    metrics.budget_store_operation(&self.deployment, "conflict");
                    let jitter = (uuid::Uuid::new_v4().as_u128() % 20) as u64;
                    tokio::time::sleep(Duration::from_millis(5 + jitter + attempt * 10)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(BlobError::Io {
            operation: "renew",
            container: container.clone(),
            name: self.blob.clone(),
            source: std::io::Error::other("eight renewals in a row lost their race"),
        })
    }
}

/// Renews the lease whenever it is due, until the budget is dropped.
async fn run(inner: Arc<Inner>, stop: CancellationToken) {
    loop {
        let due = inner.due(Instant::now());
        let sleep = async {
            match due {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = inner.wake.notified() => {}
            () = sleep => {}
        }
        let now = Instant::now();
        if inner.due(now).is_none_or(|at| at > now) {
            continue;
        }
        if let Err(e) = inner.renew().await {
            tracing::warn!(ledger = %inner.blob, error = %e, "cannot renew the budget's lease: calls wait until it can");
            inner.local().retry_at = Some(Instant::now() + Duration::from_millis(500));
        }
    }
}

impl BudgetStore for FleetBudget {
    fn reserve(&self, tokens: u64, now: Instant) -> Result<Reservation, Duration> {
        let mut l = self.inner.local();
        l.last_demand = Some(now);
        l.largest = l.largest.max(tokens);
        let Some(held) = l.held.filter(|h| h.until > now) else {
            l.short = true;
            drop(l);
            self.inner.wake.notify_one();
            return Err(Duration::from_millis(100));
        };
        if let Some(until) = held.backoff.filter(|b| *b > now) {
            // Held by the fleet, not idle: its share must not shrink meanwhile.
            l.short = true;
            return Err(until - now);
        }
        if held.window == 0 {
            // Another instance probes for the limits: its answer comes with the next lease,
            // and this instance's calls wait for it (they want a share then).
            l.short = true;
            return Err(Duration::from_millis(200));
        }
        if held.tokens.is_some_and(|t| t < 1.0) {
            // No share yet: the next renewal (soon) brings one.
            l.short = true;
            return Err(Duration::from_millis(250));
        }
        match l.budget.reserve(tokens, now) {
            Ok(r) => {
                l.admitted.push_back((now, tokens));
                Ok(r)
            }
            Err(wait) => {
                // The wait at this share's rate; the next renewal may bring a larger share, so
                // look again soon rather than sleep it all (or reschedule the message for it).
                l.short = true;
                Err(wait.min(Duration::from_millis(500)))
            }
        }
    }

    fn settle(&self, reservation: Reservation, used: u64, headers: &RateHeaders, now: Instant) {
        let mut l = self.inner.local();
        l.budget.settle(reservation, used, headers, now);
        if let (Some(remaining), Some(held)) = (headers.remaining_tokens, l.held)
            && let (Some(share), Some(limit)) = (held.tokens, held.limits.0)
        {
            let kept = kept_tokens(remaining, share, limit, l.largest);
            l.budget.cap_tokens(kept, now);
        }
        l.successes += 1;
        let first = l.held.is_some_and(|h| h.limits == (None, None));
        l.answered = true;
        let told = told(headers);
        if told != Told::default() {
            l.told = Some(told);
        }
        drop(l);
        if first {
            // The probe's answer: the rest of the fleet waits for it.
            self.inner.wake.notify_one();
        }
    }

    fn refused(
        &self,
        reservation: Reservation,
        headers: &RateHeaders,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        let mut l = self.inner.local();
        l.budget.refused(reservation, headers, retry_after, now);
        let reset = retry_after
            .or(headers.reset_tokens)
            .unwrap_or(Duration::from_secs(1))
            .min(super::rate_limits::MAX_RESET);
        l.refused = Some(l.refused.map_or(reset, |r| r.max(reset)));
        let told = told(headers);
        if told != Told::default() {
            l.told = Some(told);
        }
        drop(l);
        // Every instance backs off: the ledger hears of it now.
        self.inner.wake.notify_one();
    }

    fn failed(&self, reservation: Reservation, now: Instant) {
        self.inner.local().budget.failed(reservation, now);
    }

    fn snapshot(&self, now: Instant) -> Option<BudgetSnapshot> {
        let l = self.inner.local();
        let mut snapshot = l.budget.snapshot(now);
        let limits = l.held.map_or(self.inner.configured, |h| h.limits);
        snapshot.token_limit = limits.0;
        snapshot.request_limit = limits.1;
        Some(snapshot)
    }
}

/// What an instance with a `share` (tokens per minute) of `limit` may keep banked after an
/// answer says `remaining` tokens are left of the deployment's window. What remains is the
/// fleet's: the instance keeps its part of it, so that shares banked while idle do not spend
/// the window's last tokens at once; but never less than its largest `call` (within what
/// remains): cut below one call, a busy instance's bucket would be emptied at every answer and
/// its share left unspent (1.4 to 1.8 points of the limit with four instances).
fn kept_tokens(remaining: u64, share: f64, limit: u64, call: u64) -> u64 {
    let fraction = (share / limit.max(1) as f64).clamp(0.0, 1.0);
    let part = (remaining as f64 * fraction).floor() as u64;
    part.max(call).min(remaining)
}

fn told(headers: &RateHeaders) -> Told {
    Told {
        limit_tokens: headers.limit_tokens,
        remaining_tokens: headers.remaining_tokens,
        limit_requests: headers.limit_requests,
        remaining_requests: headers.remaining_requests,
    }
}

#[cfg(test)]
mod tests {
    use super::kept_tokens;

    #[test]
    fn an_instance_keeps_its_part_of_what_remains() {
        // A quarter of the limit: a quarter of the 8,000 tokens left.
        assert_eq!(kept_tokens(8_000, 5_000.0, 20_000, 500), 2_000);
    }

    #[test]
    fn an_instance_keeps_at_least_one_call_within_what_remains() {
        // Its part (400) is less than the call it just made: one such call stays banked.
        assert_eq!(kept_tokens(1_600, 5_000.0, 20_000, 600), 600);
        // But never more than the deployment has left.
        assert_eq!(kept_tokens(300, 5_000.0, 20_000, 600), 300);
        assert_eq!(kept_tokens(0, 5_000.0, 20_000, 600), 0);
    }
}
