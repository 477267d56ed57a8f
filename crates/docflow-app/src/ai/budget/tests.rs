use super::*;

fn headers(pairs: &[(&str, &str)]) -> reqwest::header::HeaderMap {
    crate::ai::rate_limits::header_map(pairs)
}

#[test]
fn reservations_reconcile_with_reported_usage() {
    let t0 = Instant::now();
    let s = |secs: f64| t0 + Duration::from_secs_f64(secs);
    // 6,000 a minute is aimed at 5,700: 95 per second, bursts of 95.
    let mut budget = Budget::new(Some(6_000), None, 4, t0);
    let r = budget.reserve(90, t0).unwrap();
    assert!(budget.reserve(90, t0).is_err(), "a burst is 95");
    // The call used 30 of its 90: the provider counted 90, so nothing comes back.
    budget.settle(r, 30, &RateHeaders::default(), t0);
    assert!(budget.reserve(90, s(0.5)).is_err());
    assert!(budget.reserve(90, s(1.0)).is_ok());
    // A call that used more than it reserved is charged the difference.
    let mut budget = Budget::new(Some(6_000), None, 4, t0);
    let r = budget.reserve(90, t0).unwrap();
    budget.settle(r, 1_040, &RateHeaders::default(), t0);
    assert!(budget.reserve(1, t0).is_err(), "in debt");
    assert!(budget.reserve(50, s(9.0)).is_err());
    assert!(budget.reserve(50, s(12.0)).is_ok());
}

#[test]
fn limits_are_learned_from_headers_and_config_wins() {
    let t0 = Instant::now();
    let mut budget = Budget::new(None, None, 4, t0);
    assert!(
        budget.reserve(1_000_000, t0).is_ok(),
        "unlimited until told"
    );
    let told = RateHeaders::parse(&headers(&[
        ("x-ratelimit-limit-tokens", "6000"),
        ("x-ratelimit-remaining-tokens", "100"),
        ("x-ratelimit-limit-requests", "60"),
    ]));
    budget.settle(Reservation { tokens: 1_000_000 }, 10, &told, t0);
    assert!(budget.reserve(500, t0).is_err(), "nothing banked yet");
    assert!(budget.reserve(500, t0 + Duration::from_secs(4)).is_ok());
    // A configured limit is not overridden (only the unconfigured requests are learned).
    let mut configured = Budget::new(Some(50), None, 4, t0);
    configured.settle(Reservation { tokens: 0 }, 0, &told, t0);
    let later = t0 + Duration::from_secs(3);
    assert!(configured.reserve(40, later).is_ok());
    assert!(
        configured
            .reserve(40, later + Duration::from_millis(1_100))
            .is_err(),
        "the configured 50 stays: in debt for a minute, where 6,000 would have room"
    );
}

#[test]
fn a_429_halves_the_window_and_successes_grow_it_back() {
    let t0 = Instant::now();
    let mut budget = Budget::new(Some(100_000), None, 8, t0);
    assert_eq!(budget.window(), 8);
    let r = budget.reserve(10, t0).unwrap();
    budget.refused(r, &RateHeaders::default(), Some(Duration::from_secs(2)), t0);
    assert_eq!(budget.window(), 4);
    // Nothing is admitted until the announced reset.
    assert!(budget.reserve(10, t0 + Duration::from_secs(1)).is_err());
    let later = t0 + Duration::from_secs(3);
    for _ in 0..4 {
        let r = budget.reserve(10, later).unwrap();
        budget.settle(r, 10, &RateHeaders::default(), later);
    }
    assert_eq!(
        budget.window(),
        5,
        "additive increase after a window of successes"
    );
    let mut unlimited = Budget::new(None, None, 8, t0);
    for _ in 0..5 {
        let r = unlimited.reserve(10, t0).unwrap();
        unlimited.refused(r, &RateHeaders::default(), None, t0);
    }
    assert_eq!(unlimited.window(), 1, "never below one");
}

#[test]
fn the_concurrency_window_bounds_calls_in_flight() {
    let t0 = Instant::now();
    let mut budget = Budget::new(Some(1_000), Some(1_000), 2, t0);
    let a = budget.reserve(1, t0).unwrap();
    let _b = budget.reserve(1, t0).unwrap();
    assert!(budget.reserve(1, t0).is_err());
    budget.failed(a, t0);
    assert!(budget.reserve(1, t0).is_ok());
}

#[test]
fn with_no_configured_limit_one_call_probes_before_the_rest_follow() {
    let t0 = Instant::now();
    let mut budget = Budget::new(None, None, 8, t0);
    let probe = budget.reserve(10, t0).unwrap();
    assert!(budget.reserve(10, t0).is_err(), "one call until an answer");
    let told = RateHeaders::parse(&headers(&[
        ("x-ratelimit-limit-tokens", "60000"),
        ("x-ratelimit-remaining-tokens", "59000"),
    ]));
    budget.settle(probe, 10, &told, t0);
    assert_eq!(budget.window(), 8);
    // The learned bucket starts empty (what the deployment admitted before is still in
    // its window) and fills at 95 % of the limit: 950 a second.
    assert!(budget.reserve(40, t0).is_err());
    let later = t0 + Duration::from_millis(100);
    assert!(budget.reserve(90, later).is_ok());
    assert!(budget.reserve(10, later).is_err());
    // A failure without an answer teaches nothing: still one at a time.
    let mut budget = Budget::new(None, None, 8, t0);
    let probe = budget.reserve(10, t0).unwrap();
    budget.failed(probe, t0);
    assert_eq!(budget.window(), 1);
    // A configured limit needs no probe.
    assert_eq!(Budget::new(Some(1_000), None, 8, t0).window(), 8);
}

#[test]
fn azure_headers_without_a_limit_teach_it_from_what_remains() {
    let t0 = Instant::now();
    let s = |secs: f64| t0 + Duration::from_secs_f64(secs);
    let mut budget = Budget::new(None, None, 8, t0);
    let probe = budget.reserve(100, t0).unwrap();
    // Azure OpenAI: what remains of the minute, no limit. 5,900 remain after the probe's
    // 100: the limit is at least 6,000 a minute, aimed at 5,700 (95 a second).
    let azure = |tokens: &str, requests: &str| {
        RateHeaders::parse(&headers(&[
            ("x-ratelimit-remaining-tokens", tokens),
            ("x-ratelimit-remaining-requests", requests),
        ]))
    };
    budget.settle(probe, 40, &azure("5900", "59"), t0);
    assert!(
        budget.reserve(90, t0).is_err(),
        "a learned bucket starts empty"
    );
    assert!(budget.reserve(90, s(0.5)).is_err());
    // (The requests bucket, 60 a minute aimed at 57, has its first one after 1.05 s.)
    let r = budget.reserve(90, s(1.1)).unwrap();
    // Later answers can only raise the guess (another client's use lowers `remaining`).
    budget.settle(r, 90, &azure("100", "50"), s(1.1));
    assert!(budget.reserve(90, s(1.6)).is_err(), "still 95 a second");
    assert!(budget.reserve(90, s(2.3)).is_ok());
    // Requests too: 59 remained after one, so 60 a minute, aimed at 57 (bursts of one).
    let mut requests = Budget::new(Some(1_000_000), None, 8, t0);
    let r = requests.reserve(1, t0).unwrap();
    requests.settle(r, 1, &azure("999999", "59"), t0);
    assert!(requests.reserve(1, t0).is_err());
    assert!(requests.reserve(1, s(1.1)).is_ok());
    // A refused call's charge is taken back: it does not inflate the guess.
    let mut refused = Budget::new(None, None, 8, t0);
    let r = refused.reserve(5_000, t0).unwrap();
    refused.refused(r, &azure("0", "0"), Some(Duration::from_secs(1)), t0);
    assert_eq!(refused.charged_last_minute(t0), (0, 0));
}

#[test]
fn a_snapshot_tells_the_minute_s_charge_the_limit_and_the_window() {
    let t0 = Instant::now();
    let mut budget = Budget::new(None, None, 8, t0);
    assert_eq!(budget.snapshot(t0).token_limit, None, "unknown until told");
    assert_eq!(budget.snapshot(t0).window, 1, "probing");
    let r = budget.reserve(300, t0).unwrap();
    assert_eq!(budget.snapshot(t0).in_flight, 1);
    let told = RateHeaders::parse(&headers(&[
        ("x-ratelimit-limit-tokens", "60000"),
        ("x-ratelimit-limit-requests", "600"),
    ]));
    budget.settle(r, 250, &told, t0);
    let now = budget.snapshot(t0);
    assert_eq!(
        (
            now.tokens_last_minute,
            now.token_limit,
            now.window,
            now.in_flight
        ),
        (300, Some(60_000), 8, 0)
    );
    let later = budget.snapshot(t0 + Duration::from_secs(61));
    assert_eq!(later.tokens_last_minute, 0, "a minute later");
    assert_eq!(now.request_limit, Some(600));
    assert_eq!(
        Budget::new(None, Some(60), 4, t0)
            .snapshot(t0)
            .request_limit,
        Some(60)
    );
    assert_eq!(
        Budget::new(Some(6_000), None, 4, t0)
            .snapshot(t0)
            .token_limit,
        Some(6_000)
    );
}

#[test]
fn the_local_store_shares_one_budget_between_callers() {
    let t0 = Instant::now();
    let store: std::sync::Arc<dyn BudgetStore> =
        std::sync::Arc::new(LocalBudget::new(Budget::new(Some(600), Some(600), 4, t0)));
    let other = store.clone();
    let r = store.reserve(100, t0).unwrap();
    assert!(
        other.reserve(1, t0).is_err(),
        "in debt for a call larger than a burst"
    );
    store.refused(r, &RateHeaders::default(), Some(Duration::from_secs(1)), t0);
    assert!(other.reserve(1, t0 + Duration::from_millis(500)).is_err());
    assert!(other.reserve(1, t0 + Duration::from_secs(2)).is_ok());
}
