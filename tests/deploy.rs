//! The generated `az servicebus` script creates exactly the topology of
//! `servicebus.config.json`: every queue, topic, subscription and rule with its settings and
//! ForwardTo, forwarding targets before the entities that forward to them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use docflow::topology::Topology;

/// Splits a shell line into words (single and double quotes).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, ' ') => {
                if started || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (None, c) => word.push(c),
        }
    }
    if started || !word.is_empty() {
        out.push(word);
    }
    out
}

/// `az servicebus <kind…> create|delete` with its options.
#[derive(Debug)]
struct Call {
    kind: String,
    verb: String,
    options: BTreeMap<String, String>,
}

fn parse(script: &str) -> Vec<Call> {
    script
        .lines()
        .filter(|l| l.starts_with("az servicebus "))
        .map(|l| {
            let w = words(l);
            let verb_at = w
                .iter()
                .position(|x| x == "create" || x == "delete")
                .unwrap();
            let mut options = BTreeMap::new();
            let mut i = verb_at + 1;
            while i < w.len() {
                let value = w.get(i + 1).filter(|v| !v.starts_with("--")).cloned();
                let step = if value.is_some() { 2 } else { 1 };
                options.insert(w[i].clone(), value.unwrap_or_default());
                i += step;
            }
            Call {
                kind: w[2..verb_at].join(" "),
                verb: w[verb_at].clone(),
                options,
            }
        })
        .collect()
}

#[test]
fn the_az_cli_script_covers_the_whole_topology() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .args(["topology", "az-cli", "--config"])
        .arg(root.join("servicebus.config.json"))
        .output()
        .unwrap();
    assert!(output.status.success());
    let script = String::from_utf8(output.stdout).unwrap();
    let calls = parse(&script);
    let topology = Topology::load(&root.join("servicebus.config.json")).unwrap();
    let ns = &topology.namespace;
    let position = |kind: &str, name: &str, topic: Option<&str>| {
        calls.iter().position(|c| {
            c.kind == kind
                && c.verb == "create"
                && c.options["--name"] == name
                && topic
                    .is_none_or(|t| c.options.get("--topic-name").map(String::as_str) == Some(t))
        })
    };
    let opt = |i: usize, name: &str| calls[i].options.get(name).cloned();

    for q in &ns.queues {
        let i = position("queue", &q.name, None).unwrap_or_else(|| panic!("queue {}", q.name));
        let p = &q.properties;
        assert_eq!(
            opt(i, "--max-delivery-count"),
            p.max_delivery_count.map(|v| v.to_string())
        );
        assert_eq!(opt(i, "--lock-duration"), p.lock_duration.clone());
        assert_eq!(
            opt(i, "--enable-session"),
            p.requires_session.map(|v| v.to_string())
        );
        assert_eq!(
            opt(i, "--enable-duplicate-detection"),
            p.requires_duplicate_detection.map(|v| v.to_string())
        );
        assert_eq!(
            opt(i, "--forward-to"),
            p.forward_to.clone().filter(|f| !f.is_empty())
        );
    }
    for t in &ns.topics {
        let ti = position("topic", &t.name, None).unwrap_or_else(|| panic!("topic {}", t.name));
        assert_eq!(
            opt(ti, "--enable-duplicate-detection"),
            t.properties
                .requires_duplicate_detection
                .map(|v| v.to_string())
        );
        for s in &t.subscriptions {
            let si = position("topic subscription", &s.name, Some(&t.name))
                .unwrap_or_else(|| panic!("subscription {}/{}", t.name, s.name));
            assert!(si > ti, "a subscription after its topic");
            let forward = s.properties.forward_to.clone().filter(|f| !f.is_empty());
            assert_eq!(opt(si, "--forward-to"), forward);
            if let Some(target) = &forward {
                let target_at =
                    position("queue", target, None).expect("the forwarding target is created");
                assert!(
                    target_at < si,
                    "{target} exists before {}/{} forwards to it",
                    t.name,
                    s.name
                );
            }
            assert_eq!(
                opt(si, "--max-delivery-count"),
                s.properties.max_delivery_count.map(|v| v.to_string())
            );
            for r in &s.rules {
                let rule = calls
                    .iter()
                    .find(|c| {
                        c.kind == "topic subscription rule"
                            && c.verb == "create"
                            && c.options["--name"] == r.name
                            && c.options["--subscription-name"] == s.name
                    })
                    .unwrap_or_else(|| panic!("rule {}", r.name));
                if r.properties.filter_type.eq_ignore_ascii_case("Correlation") {
                    assert_eq!(rule.options["--filter-type"], "CorrelationFilter");
                    let filter = r.properties.correlation_filter.as_ref().unwrap();
                    if let Some(label) = filter.get("Label").and_then(|v| v.as_str()) {
                        assert_eq!(rule.options["--label"], label);
                    }
                } else {
                    assert_eq!(rule.options["--filter-type"], "SqlFilter");
                }
            }
            let default_removed = calls.iter().any(|c| {
                c.verb == "delete"
                    && c.options["--name"] == "$Default"
                    && c.options["--subscription-name"] == s.name
                    && c.options["--topic-name"] == t.name
            });
            assert_eq!(
                default_removed,
                !s.rules.is_empty(),
                "{}/{}",
                t.name,
                s.name
            );
        }
    }
    let creates = calls.iter().filter(|c| c.verb == "create").count();
    let expected = ns.queues.len()
        + ns.topics
            .iter()
            .map(|t| {
                1 + t.subscriptions.len()
                    + t.subscriptions.iter().map(|s| s.rules.len()).sum::<usize>()
            })
            .sum::<usize>();
    assert_eq!(creates, expected, "nothing more, nothing less");
    // The script is valid bash.
    let check = Command::new("bash")
        .args(["-n", "-c", &script])
        .status()
        .unwrap();
    assert!(check.success());
}
