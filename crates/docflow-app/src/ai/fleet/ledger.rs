//! The fleet's ledger of one model deployment: what every instance of the app shares about the
//! deployment's budget, kept in one blob and changed only by ETag-conditional writes.
//!
//! The ledger hands out **rate leases**: each instance holds, until its lease ends, a share of
//! the deployment's tokens and requests per minute and of the fleet's concurrency window, and
//! spends it locally without a round trip per call. Shares follow demand: an instance reports
//! what it wants at each renewal, and the limit (aimed at with [`HEADROOM`]) is water-filled
//! over the wants of the instances whose leases are live. A new share never makes the live
//! ones add up to more than the limit: an instance that wants more than is free gets what is
//! free now and the rest once the others renew to their own (smaller) shares. A lease that is
//! not renewed ends on its own, so a crashed instance's share returns after at most one lease.
//!
//! What one instance learns, all learn: the limits an answer tells (or that its remaining
//! tokens imply), a `429`'s reset (no one calls before it) and the window it halves. While no
//! limit is known, one instance probes with a single call and the others wait for its answer.
//!
//! Pure arithmetic over wall-clock milliseconds, tested without storage or sleeping.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ai::budget::HEADROOM;

/// The ledger's format version.
pub const VERSION: u32 = 1;

/// A member that has not renewed for this long is forgotten (its lease ended long before).
const FORGET_MS: i64 = 60_000;

/// The ledger of one deployment, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ledger {
    /// [`VERSION`].
    pub version: u32,
    /// The deployment's tokens per minute, when known.
    pub token_limit: Option<u64>,
    /// Its requests per minute, when known.
    pub request_limit: Option<u64>,
    /// Where the limits come from: `configured`, `told` (`x-ratelimit-limit-*`) or
    /// `inferred` (remaining + what the fleet was charged).
    pub source: Option<String>,
    /// The best inferred limits so far (tokens, requests); they only grow.
    #[serde(default)]
    pub inferred: (u64, u64),
    /// An answer came back: with no limit told, the deployment is unlimited.
    #[serde(default)]
    pub answered: bool,
    /// The instance probing for the limits, and until when.
    pub probe: Option<(String, i64)>,
    /// No call anywhere before this (a `429`'s reset), in ms since the epoch.
    #[serde(default)]
    pub backoff_until: i64,
    /// The fleet's concurrency window (additive increase, multiplicative decrease).
    #[serde(default)]
    pub window: f64,
    /// The instances, by id.
    #[serde(default)]
    pub members: BTreeMap<String, Member>,
}

/// One instance in the ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Member {
    /// Tokens per minute it asked for.
    pub want_tokens: f64,
    /// Requests per minute it asked for.
    pub want_requests: f64,
    /// Tokens per minute granted (`None`: unlimited).
    pub tokens: Option<f64>,
    /// Requests per minute granted (`None`: unlimited).
    pub requests: Option<f64>,
    /// Its share of the window.
    pub window: u32,
    /// The most calls it makes at once.
    pub max_concurrency: u32,
    /// When its lease ends (ms since the epoch).
    pub until: i64,
    /// Tokens and requests it was charged over its last minute.
    pub charged: (u64, u64),
}

/// What an instance brings to a renewal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Tokens per minute it wants (what it spent or was refused, with room to grow).
    pub want_tokens: f64,
    /// Requests per minute it wants.
    pub want_requests: f64,
    /// The most calls it makes at once.
    pub max_concurrency: u32,
    /// Limits configured on this instance (they win over what answers tell).
    pub configured: (Option<u64>, Option<u64>),
    /// Tokens and requests it was charged over the last minute.
    pub charged: (u64, u64),
    /// The limits an answer told, `(limit, remaining)` for tokens then requests.
    pub told: Option<Told>,
    /// Whether an answer came back since the last renewal.
    pub answered: bool,
    /// A `429` since the last renewal: milliseconds until its reset.
    pub refused: Option<i64>,
    /// Calls answered since the last renewal.
    pub successes: u32,
}

/// The rate headers of an answer, as far as limits go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Told {
    /// `x-ratelimit-limit-tokens`.
    pub limit_tokens: Option<u64>,
    /// `x-ratelimit-remaining-tokens`.
    pub remaining_tokens: Option<u64>,
    /// `x-ratelimit-limit-requests`.
    pub limit_requests: Option<u64>,
    /// `x-ratelimit-remaining-requests`.
    pub remaining_requests: Option<u64>,
}

/// What a renewal grants an instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lease {
    /// Tokens per minute it may spend (`None`: no limit).
    pub tokens: Option<f64>,
    /// Requests per minute (`None`: no limit).
    pub requests: Option<f64>,
    /// Calls at once; 0 while another instance probes for the limits.
    pub window: usize,
    /// When the lease ends (ms since the epoch).
    pub until: i64,
    /// No call before this (ms since the epoch).
    pub backoff_until: i64,
    /// The deployment's limits, as the fleet knows them.
    pub limits: (Option<u64>, Option<u64>),
}

impl Ledger {
    /// Renews the lease of instance `id` at `now` for `period_ms`, with what it `report`s.
    pub fn renew(&mut self, id: &str, report: &Report, now: i64, period_ms: i64) -> Lease {
        self.version = VERSION;
        self.members.retain(|_, m| m.until + FORGET_MS > now);
        let member = self.members.entry(id.to_owned()).or_default();
        member.want_tokens = report.want_tokens.max(0.0);
        member.want_requests = report.want_requests.max(0.0);
        member.max_concurrency = report.max_concurrency.max(1);
        member.charged = report.charged;
        self.learn(report);
        let max_window: u32 = self
            .live(id, now)
            .map(|(_, m)| m.max_concurrency)
            .sum::<u32>()
            + report.max_concurrency.max(1);
        if self.window < 1.0 {
            self.window = f64::from(max_window);
        }
        if let Some(reset) = report.refused {
            self.backoff_until = self.backoff_until.max(now + reset.max(0));
            self.window = (self.window / 2.0).max(1.0);
        } else if report.successes > 0 {
            self.window += f64::from(report.successes) / self.window;
        }
        self.window = self.window.min(f64::from(max_window)).max(1.0);
        let until = now + period_ms;
        let lease = if self.token_limit.is_none() && self.request_limit.is_none() && !self.answered
        {
            self.probing(id, now, until)
        } else {
            self.probe = None;
            self.share(id, report, now, until)
        };
        let member = self.members.get_mut(id).expect("inserted above");
        member.tokens = lease.tokens;
        member.requests = lease.requests;
        member.window = lease.window as u32;
        member.until = until;
        lease
    }

    /// The other members whose leases are live at `now`.
    fn live<'a>(&'a self, id: &'a str, now: i64) -> impl Iterator<Item = (&'a String, &'a Member)> {
        self.members
            .iter()
            .filter(move |(k, m)| k.as_str() != id && m.until > now)
    }

    /// Learns the limits: configured ones win; otherwise told, otherwise inferred from what
    /// remains plus what the fleet was charged over the minute (only ever raised).
    fn learn(&mut self, report: &Report) {
        if report.answered {
            self.answered = true;
        }
        let charged: (u64, u64) = self
            .members
            .values()
            .fold((0, 0), |a, m| (a.0 + m.charged.0, a.1 + m.charged.1));
        let told = report.told.unwrap_or_default();
        let (token, source_t) = learn_one(
            report.configured.0,
            (told.limit_tokens, told.remaining_tokens),
            charged.0,
            &mut self.inferred.0,
        );
        let (request, source_r) = learn_one(
            report.configured.1,
            (told.limit_requests, told.remaining_requests),
            charged.1,
            &mut self.inferred.1,
        );
        if let Some(limit) = token {
            self.token_limit = Some(limit);
        }
        if let Some(limit) = request {
            self.request_limit = Some(limit);
        }
        if let Some(source) = source_t.or(source_r) {
            self.source = Some(source.to_owned());
        }
    }

    /// No limit known and no answer yet: one instance probes with a single call.
    fn probing(&mut self, id: &str, now: i64, until: i64) -> Lease {
        let mine = match &self.probe {
            Some((holder, end)) => holder == id || *end <= now,
            None => true,
        };
        if mine {
            self.probe = Some((id.to_owned(), until));
        }
        Lease {
            tokens: None,
            requests: None,
            window: usize::from(mine),
            until,
            backoff_until: self.backoff_until,
            limits: (None, None),
        }
    }

    /// A share of the limits and the window, by demand.
    fn share(&self, id: &str, report: &Report, now: i64, until: i64) -> Lease {
        let others: Vec<&Member> = self.live(id, now).map(|(_, m)| m).collect();
        let aim = |limit: u64| aim(limit, others.len() + 1);
        let tokens = self.token_limit.map(|limit| {
            let wants: Vec<f64> = others.iter().map(|m| m.want_tokens).collect();
            let held: f64 = others.iter().filter_map(|m| m.tokens).sum();
            grant(aim(limit), report.want_tokens, &wants, held)
        });
        let requests = self.request_limit.map(|limit| {
            let wants: Vec<f64> = others.iter().map(|m| m.want_requests).collect();
            let held: f64 = others.iter().filter_map(|m| m.requests).sum();
            grant(aim(limit), report.want_requests, &wants, held)
        });
        // The window is split like the tokens (or, unlimited, like the wants).
        let fraction = match (tokens, self.token_limit) {
            (Some(t), Some(limit)) => t / aim(limit),
            _ => {
                let total: f64 =
                    others.iter().map(|m| m.want_tokens).sum::<f64>() + report.want_tokens;
                if total > 0.0 {
                    report.want_tokens / total
                } else {
                    1.0 / (others.len() + 1) as f64
                }
            }
        };
        let window = ((self.window * fraction).round() as usize)
            .clamp(1, report.max_concurrency.max(1) as usize);
        Lease {
            tokens,
            requests,
            window,
            until,
            backoff_until: self.backoff_until,
            limits: (self.token_limit, self.request_limit),
        }
    }
}

/// The share of a per-minute limit the fleet aims at: [`HEADROOM`], less a point for each
/// instance beyond the first, up to three. Every instance paces its share on its own, and a
/// call larger than its one-second burst is admitted in debt, so several instances' admissions
/// line up less evenly against the deployment's sliding window than one's.
fn aim(limit: u64, instances: usize) -> f64 {
    let headroom = HEADROOM - 0.01 * (instances.saturating_sub(1).min(3)) as f64;
    (limit as f64 * headroom).max(1.0)
}

/// Water-fills `total` over `mine` and `others`' wants (each gets its want or the common
/// level, whichever is less), then gives `mine` its part within what the others hold now.
fn grant(total: f64, mine: f64, others: &[f64], held: f64) -> f64 {
    let mut wants: Vec<f64> = others.iter().map(|w| w.max(0.0)).collect();
    wants.push(mine.max(0.0));
    wants.sort_by(f64::total_cmp);
    let mut left = total;
    let mut level = total;
    for (i, want) in wants.iter().enumerate() {
        let fair = left / (wants.len() - i) as f64;
        if *want >= fair {
            level = fair;
            break;
        }
        left -= want;
        level = f64::INFINITY;
    }
    mine.min(level).min((total - held).max(0.0)).max(0.0)
}

/// One limit learned: `(limit, source)` when it changes.
fn learn_one(
    configured: Option<u64>,
    (limit, remaining): (Option<u64>, Option<u64>),
    charged: u64,
    inferred: &mut u64,
) -> (Option<u64>, Option<&'static str>) {
    if let Some(c) = configured.filter(|c| *c > 0) {
        return (Some(c), Some("configured"));
    }
    if let Some(l) = limit.filter(|l| *l > 0) {
        return (Some(l), Some("told"));
    }
    if let Some(r) = remaining {
        let estimate = r.saturating_add(charged);
        if estimate > *inferred {
            *inferred = estimate;
            return (Some(estimate), Some("inferred"));
        }
    }
    (None, None)
}

#[cfg(test)]
mod tests;
