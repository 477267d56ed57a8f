//! What a model deployment's limits look like from the client: a token bucket refilled at a
//! per-minute rate, and the `x-ratelimit-*` headers OpenAI and Azure OpenAI answer with.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

/// A bucket refilled continuously at its per-minute rate, holding at most one second of it:
/// a deployment counts what it admitted over a sliding window (Azure OpenAI also over shorter
/// windows of 1 or 10 seconds), so tokens banked during a lull and spent at once are refused
/// while the window still holds the calls before the lull. Under a backlog the bucket is
/// always nearly empty, so a small burst costs no throughput.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_minute: f64,
    burst: f64,
    available: f64,
    at: Instant,
}

/// The share of a per-minute limit one burst may use (one second of it).
const BURST_FRACTION: f64 = 1.0 / 60.0;

impl TokenBucket {
    /// A full bucket of `per_minute`.
    pub fn new(per_minute: u64, now: Instant) -> Self {
        let burst = (per_minute as f64 * BURST_FRACTION).max(1.0);
        Self {
            per_minute: per_minute as f64,
            burst,
            available: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.available = (self.available + elapsed * self.per_minute / 60.0).min(self.burst);
        self.at = now;
    }

    /// Takes `n` now, or says how long until `n` are available. A request larger than a
    /// burst waits for a full burst and leaves the bucket in debt, which later takes wait out.
    pub fn take(&mut self, n: u64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        let n = n as f64;
        let needed = n.min(self.burst);
        if self.available >= needed {
            self.available -= n;
            return Ok(());
        }
        let missing = needed - self.available;
        Err(Duration::from_secs_f64(missing * 60.0 / self.per_minute))
    }

    /// Returns `n` unused (a reservation larger than the use), or charges `n` more (negative
    /// balance: later takes wait it out).
    pub fn adjust(&mut self, returned: i64, now: Instant) {
        self.refill(now);
        self.available = (self.available + returned as f64).min(self.burst);
    }

    /// Empties the bucket until `until` (the provider said the window is spent).
    pub fn drain_until(&mut self, until: Instant, now: Instant) {
        self.refill(now);
        let wait = until.saturating_duration_since(now).as_secs_f64();
        self.available = self.available.min(-wait * self.per_minute / 60.0);
    }

    /// Sets the rate (a learned limit), keeping what is available within a burst.
    pub fn set_capacity(&mut self, per_minute: u64, now: Instant) {
        self.refill(now);
        self.per_minute = per_minute as f64;
        self.burst = (self.per_minute * BURST_FRACTION).max(1.0);
        self.available = self.available.min(self.burst);
    }

    /// At most `remaining` available (the provider counts other clients too).
    pub fn cap(&mut self, remaining: u64, now: Instant) {
        self.refill(now);
        self.available = self.available.min(remaining as f64);
    }

    /// Available now.
    pub fn available(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.available
    }
}

/// What a provider's answer says about its limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateHeaders {
    /// `x-ratelimit-limit-tokens`.
    pub limit_tokens: Option<u64>,
    /// `x-ratelimit-limit-requests`.
    pub limit_requests: Option<u64>,
    /// `x-ratelimit-remaining-tokens`.
    pub remaining_tokens: Option<u64>,
    /// `x-ratelimit-remaining-requests`.
    pub remaining_requests: Option<u64>,
    /// `x-ratelimit-reset-tokens`.
    pub reset_tokens: Option<Duration>,
    /// `x-ratelimit-reset-requests`.
    pub reset_requests: Option<Duration>,
}

/// Longest reset or wait a header can announce that is believed.
pub(crate) const MAX_RESET: Duration = Duration::from_secs(300);

impl RateHeaders {
    /// Reads OpenAI's and Azure OpenAI's headers; malformed values are ignored.
    pub fn parse(headers: &HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let count = |name: &str| text(name).and_then(|v| v.parse::<u64>().ok());
        Self {
            limit_tokens: count("x-ratelimit-limit-tokens"),
            limit_requests: count("x-ratelimit-limit-requests"),
            remaining_tokens: count("x-ratelimit-remaining-tokens"),
            remaining_requests: count("x-ratelimit-remaining-requests"),
            reset_tokens: text("x-ratelimit-reset-tokens").and_then(parse_reset),
            reset_requests: text("x-ratelimit-reset-requests").and_then(parse_reset),
        }
    }
}

/// A reset time as OpenAI writes it (`1s`, `6m0s`, `20ms`, `1h2m3.5s`) or plain seconds;
/// negative, non-finite and absurd values are `None`, long ones are cut to five minutes.
pub fn parse_reset(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(MAX_RESET.as_secs_f64())));
    }
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                0.001
            }
            ('h', _) => 3600.0,
            ('m', _) => 60.0,
            ('s', _) => 1.0,
            _ => return None,
        };
        let value: f64 = number.parse().ok()?;
        total += value * unit;
        number.clear();
        any = true;
    }
    (any && number.is_empty() && total.is_finite())
        .then(|| Duration::from_secs_f64(total.min(MAX_RESET.as_secs_f64())))
}

/// A header map of `pairs` (tests).
#[cfg(test)]
pub(crate) fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        header_map(pairs)
    }

    #[test]
    fn buckets_take_refill_and_say_how_long_to_wait() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(6_000, t0); // 100 per second, bursts of 100
        assert_eq!(bucket.take(100, t0), Ok(()));
        assert_eq!(bucket.take(10, t0), Err(Duration::from_millis(100)));
        assert_eq!(bucket.take(10, t0 + Duration::from_millis(100)), Ok(()));
        // Never more than a second's worth, however long it rests.
        assert_eq!(bucket.available(t0 + Duration::from_secs(3600)), 100.0);
        // A request larger than a burst waits for a full burst, not forever, and leaves the
        // bucket in debt for the rest.
        let mut small = TokenBucket::new(60, t0); // 1 per second, bursts of 1
        assert_eq!(small.take(1, t0), Ok(()));
        assert_eq!(small.take(10, t0), Err(Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(small.take(10, t1), Ok(()));
        assert_eq!(small.available(t1), -9.0);
        assert_eq!(small.take(1, t1), Err(Duration::from_secs(10)));
    }

    #[test]
    fn reset_headers_in_every_form() {
        assert_eq!(parse_reset("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(300)));
        assert_eq!(parse_reset("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_reset("1m2.5s"), Some(Duration::from_millis(62_500)));
        assert_eq!(parse_reset("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_reset("3h"), Some(MAX_RESET), "cut to five minutes");
        for bad in ["", "-1", "inf", "NaN", "1x", "s", "1.2.3s", "ms"] {
            assert_eq!(parse_reset(bad), None, "{bad}");
        }
        let parsed = RateHeaders::parse(&headers(&[
            ("x-ratelimit-remaining-tokens", "  42 "),
            ("x-ratelimit-remaining-requests", "-3"),
            ("x-ratelimit-reset-requests", "20ms"),
        ]));
        assert_eq!(parsed.remaining_tokens, Some(42));
        assert_eq!(parsed.remaining_requests, None);
        assert_eq!(parsed.reset_requests, Some(Duration::from_millis(20)));
    }
}
