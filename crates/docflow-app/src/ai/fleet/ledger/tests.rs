use super::*;

const P: i64 = 4_000;

fn wanting(tokens: f64) -> Report {
    Report {
        want_tokens: tokens,
        want_requests: tokens / 100.0,
        max_concurrency: 8,
        ..Report::default()
    }
}

fn told(limit: u64) -> Report {
    Report {
        told: Some(Told {
            limit_tokens: Some(limit),
            limit_requests: Some(limit / 100),
            ..Told::default()
        }),
        answered: true,
        ..wanting(1e9)
    }
}

/// What the live leases add up to at `now`.
fn held(ledger: &Ledger, now: i64) -> f64 {
    ledger
        .members
        .values()
        .filter(|m| m.until > now)
        .filter_map(|m| m.tokens)
        .sum()
}

#[test]
fn one_instance_probes_until_an_answer_tells_the_limits_to_everyone() {
    let mut ledger = Ledger::default();
    let a = ledger.renew("a", &wanting(1e6), 0, P);
    let b = ledger.renew("b", &wanting(1e6), 10, P);
    assert_eq!((a.window, a.tokens), (1, None), "a probes alone");
    assert_eq!(b.window, 0, "b waits for the probe");
    // a's answer tells the limit: a renews at once, and b learns it without a call of its own.
    let a = ledger.renew("a", &told(60_000), 500, P);
    assert_eq!(a.limits, (Some(60_000), Some(600)));
    let b = ledger.renew("b", &wanting(1e9), 600, P);
    assert_eq!(b.limits, (Some(60_000), Some(600)));
    assert!(b.window >= 1 && ledger.probe.is_none());
    assert_eq!(ledger.source.as_deref(), Some("told"));
    // A probe that never answers (its instance died) passes on when its lease ends.
    let mut ledger = Ledger::default();
    ledger.renew("a", &wanting(1.0), 0, P);
    assert_eq!(ledger.renew("b", &wanting(1.0), P - 1, P).window, 0);
    assert_eq!(ledger.renew("b", &wanting(1.0), P + 1, P).window, 1);
    // An answer without rate headers: the deployment has no limit, and everyone calls.
    let mut ledger = Ledger::default();
    ledger.renew("a", &wanting(1.0), 0, P);
    let answered = Report {
        answered: true,
        ..wanting(1.0)
    };
    ledger.renew("a", &answered, 100, P);
    let b = ledger.renew("b", &wanting(1.0), 200, P);
    assert_eq!((b.tokens, b.limits), (None, (None, None)));
    assert!(b.window >= 1);
}

#[test]
fn shares_follow_demand_and_never_add_up_to_more_than_the_limit() {
    let mut ledger = Ledger::default();
    // The fleet aims a point lower per instance beyond the first (up to three).
    let aim = |n: usize| aim(60_000, n);
    assert!((aim(1) - 60_000.0 * HEADROOM).abs() < 1e-6);
    assert!((aim(4) - 60_000.0 * (HEADROOM - 0.03)).abs() < 1e-6);
    assert_eq!(aim(4), aim(9));
    // a alone, with a backlog: it gets the whole limit.
    let a = ledger.renew("a", &told(60_000), 0, P);
    assert!((a.tokens.unwrap() - aim(1)).abs() < 1.0, "{a:?}");
    // b arrives wanting everything: what is free (nothing), until a renews to half.
    let b = ledger.renew("b", &wanting(1e9), 1_000, P);
    assert_eq!(b.tokens, Some(0.0));
    assert!(held(&ledger, 1_000) <= aim(1) + 1e-6);
    let a = ledger.renew("a", &wanting(1e9), 3_000, P);
    assert!((a.tokens.unwrap() - aim(2) / 2.0).abs() < 1.0, "{a:?}");
    let b = ledger.renew("b", &wanting(1e9), 3_100, P);
    assert!((b.tokens.unwrap() - aim(2) / 2.0).abs() < 1.0, "{b:?}");
    // c wants little: it gets its want, the other two split the rest as they renew.
    let c = ledger.renew("c", &wanting(3_000.0), 3_200, P);
    assert_eq!(c.tokens, Some(0.0), "nothing free yet");
    let a = ledger.renew("a", &wanting(1e9), 6_000, P);
    let b = ledger.renew("b", &wanting(1e9), 6_100, P);
    let c = ledger.renew("c", &wanting(3_000.0), 6_200, P);
    assert!(held(&ledger, 6_200) <= aim(3) + 1e-6);
    assert!((c.tokens.unwrap() - 3_000.0).abs() < 1.0, "{c:?}");
    let a2 = ledger.renew("a", &wanting(1e9), 9_000, P);
    assert!(
        (a2.tokens.unwrap() - (aim(3) - 3_000.0) / 2.0).abs() < 1.0,
        "{a:?} {b:?} {a2:?}"
    );
    // Every renewal kept the live leases within the limit.
    for now in [9_000, 9_500, 12_000] {
        assert!(held(&ledger, now) <= aim(1) + 1e-6);
    }
    // The window is split like the tokens, within each instance's own maximum.
    assert!(a2.window >= 1 && a2.window <= 8);
}

#[test]
fn a_429_seen_by_one_instance_holds_every_instance_and_halves_the_window() {
    let mut ledger = Ledger::default();
    ledger.renew("a", &told(60_000), 0, P);
    ledger.renew("b", &wanting(1e9), 100, P);
    let before = ledger.window;
    let refused = Report {
        refused: Some(2_000),
        ..wanting(1e9)
    };
    let a = ledger.renew("a", &refused, 1_000, P);
    assert_eq!(a.backoff_until, 3_000);
    assert!((ledger.window - (before / 2.0).max(1.0)).abs() < 1e-9);
    let b = ledger.renew("b", &wanting(1e9), 1_500, P);
    assert_eq!(b.backoff_until, 3_000, "b holds too");
    // Successes grow it back, one per window's worth.
    let window = ledger.window;
    let ok = Report {
        successes: window.ceil() as u32,
        ..wanting(1e9)
    };
    ledger.renew("b", &ok, 5_000, P);
    assert!(ledger.window > window);
}

#[test]
fn a_crashed_instance_s_share_returns_when_its_lease_ends() {
    let mut ledger = Ledger::default();
    let aim = |n: usize| aim(60_000, n);
    ledger.renew("a", &told(60_000), 0, P);
    ledger.renew("b", &wanting(1e9), 100, P);
    ledger.renew("a", &wanting(1e9), 3_000, P);
    let b = ledger.renew("b", &wanting(1e9), 3_100, P);
    assert!((b.tokens.unwrap() - aim(2) / 2.0).abs() < 1.0);
    // a dies at 3,000 and never renews: its lease ends at 7,000.
    let b = ledger.renew("b", &wanting(1e9), 6_900, P);
    assert!(
        b.tokens.unwrap() < aim(2) / 2.0 + 1.0,
        "a still holds its half"
    );
    let b = ledger.renew("b", &wanting(1e9), 7_100, P);
    assert!((b.tokens.unwrap() - aim(1)).abs() < 1.0, "{b:?}");
    // And it is forgotten a minute later.
    ledger.renew("b", &wanting(1e9), 7_000 + FORGET_MS + 1, P);
    assert!(!ledger.members.contains_key("a"));
}

#[test]
fn limits_are_inferred_from_what_remains_plus_the_fleet_s_charges_and_config_wins() {
    let mut ledger = Ledger::default();
    let charged = |tokens: u64| Report {
        charged: (tokens, 0),
        ..wanting(1e9)
    };
    ledger.renew("a", &charged(10_000), 0, P);
    let azure = Report {
        told: Some(Told {
            remaining_tokens: Some(25_000),
            ..Told::default()
        }),
        answered: true,
        ..charged(5_000)
    };
    let b = ledger.renew("b", &azure, 100, P);
    assert_eq!(b.limits.0, Some(40_000), "25,000 left + 15,000 charged");
    assert_eq!(ledger.source.as_deref(), Some("inferred"));
    // A lower guess later does not lower it.
    let lower = Report {
        told: Some(Told {
            remaining_tokens: Some(1_000),
            ..Told::default()
        }),
        ..charged(0)
    };
    assert_eq!(ledger.renew("b", &lower, 200, P).limits.0, Some(40_000));
    // A configured limit wins over anything told.
    let configured = Report {
        configured: (Some(30_000), None),
        ..told(90_000)
    };
    assert_eq!(
        ledger.renew("a", &configured, 300, P).limits.0,
        Some(30_000)
    );
}

#[test]
fn the_ledger_round_trips_as_json() {
    let mut ledger = Ledger::default();
    ledger.renew("a", &told(60_000), 0, P);
    let text = serde_json::to_string(&ledger).unwrap();
    assert_eq!(serde_json::from_str::<Ledger>(&text).unwrap(), ledger);
    assert!(text.contains("\"tokenLimit\":60000"), "{text}");
}
