//! `topology::emulator`: the `Config.json` written for Microsoft's Service Bus emulator is valid
//! against the emulator's own schema (vendored in `tests/fixtures`, see its `.md`), keeps every
//! entity, rule and forward of the topology, stays within the limits the schema states only in
//! prose, and names each value it clamped; what the emulator cannot hold is refused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use docflow_servicebus::topology::emulator::{self, EmulatorError, format::EmulatorConfig};
use docflow_servicebus::topology::{ConfigFile, parse_iso8601_duration};
use serde_json::{Value, json};

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The names' character class as the schema writes it: in ECMAScript (the schema's regex
/// dialect, Annex B) the `-` after `\w` is a literal, but a strict validator refuses the range.
const SCHEMA_NAME_CLASS: &str = r"[\w-\.\/]";
/// The same class with the `-` escaped: word characters, `-`, `.` and `/`.
const STRICT_NAME_CLASS: &str = r"[\w\-.\/]";

/// The emulator's schema, compiled (with the name class written strictly, same meaning).
fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo_file("tests/fixtures/emulator-config-schema.json"))
        .expect("the vendored schema");
    let mut schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    let mut rewritten = 0;
    strict_patterns(&mut schema, &mut rewritten);
    assert_eq!(
        rewritten, 9,
        "the schema's name patterns changed: review the rewrite"
    );
    jsonschema::validator_for(&schema).expect("schema compiles")
}

/// Rewrites [`SCHEMA_NAME_CLASS`] in every `pattern`, counting them.
fn strict_patterns(value: &mut Value, rewritten: &mut usize) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(p) if key == "pattern" && p.contains(SCHEMA_NAME_CLASS) => {
                        *p = p.replace(SCHEMA_NAME_CLASS, STRICT_NAME_CLASS);
                        *rewritten += 1;
                    }
                    _ => strict_patterns(v, rewritten),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strict_patterns(v, rewritten)),
        _ => {}
    }
}

/// Schema errors of a document, as `path: message` lines.
fn schema_errors(document: &Value) -> Vec<String> {
    let validator = schema();
    validator
        .iter_errors(document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn convert(topology: Value) -> Result<emulator::Conversion, EmulatorError> {
    let file = ConfigFile::from_value(&topology).expect("a topology in the file's format");
    emulator::convert(&file)
}

/// The `Config.json` text, checked against the schema and read back as JSON.
fn valid_json(conversion: &emulator::Conversion) -> Value {
    let document: Value = serde_json::from_str(&conversion.to_json()).expect("output is JSON");
    let errors = schema_errors(&document);
    assert!(errors.is_empty(), "schema errors: {errors:#?}");
    document
}

fn secs(text: &str) -> u64 {
    let d = parse_iso8601_duration(text).unwrap_or_else(|| panic!("duration {text:?}"));
    assert_eq!(
        d,
        Duration::from_secs(d.as_secs()),
        "{text} in whole seconds"
    );
    d.as_secs()
}

/// The limits the schema gives only in its descriptions, and the namespace.
fn assert_within_limits(config: &EmulatorConfig) {
    let [ns] = config.user_config.namespaces.as_slice() else {
        panic!("one namespace")
    };
    assert_eq!(ns.name, "sbemulatorns");
    assert!(ns.queues.len() + ns.topics.len() <= 50);
    let ttl = |t: &str| assert!((300..=3600).contains(&secs(t)), "TTL {t}");
    let window = |w: &Option<String>| {
        if let Some(w) = w {
            assert!((5..=300).contains(&secs(w)), "window {w}");
        }
    };
    for q in &ns.queues {
        let p = &q.properties;
        ttl(&p.default_message_time_to_live);
        window(&p.duplicate_detection_history_time_window);
        assert!((5..=300).contains(&secs(&p.lock_duration)), "{}", q.name);
        assert!((1..=10).contains(&p.max_delivery_count));
    }
    for t in &ns.topics {
        ttl(&t.properties.default_message_time_to_live);
        window(&t.properties.duplicate_detection_history_time_window);
        assert!((1..=50).contains(&t.subscriptions.len()));
        for s in &t.subscriptions {
            let p = &s.properties;
            ttl(&p.default_message_time_to_live);
            assert!((60..=300).contains(&secs(&p.lock_duration)), "{}", s.name);
            assert!((1..=10).contains(&p.max_delivery_count));
        }
    }
}

#[test]
fn the_schema_bites() {
    // The repository's own file is in the emulator's format but not within its limits: the
    // namespace is not `sbemulatorns`. The validator must see that.
    let text = std::fs::read_to_string(repo_file("../../servicebus.config.json")).unwrap();
    let errors = schema_errors(&serde_json::from_str(&text).unwrap());
    assert!(
        errors
            .iter()
            .any(|e| e.contains("/UserConfig/Namespaces/0/Name")),
        "{errors:#?}"
    );
    let bad = json!({"UserConfig": {"Namespaces": [{"Name": "sbemulatorns", "Queues": [],
        "Topics": [{"Name": "t", "Subscriptions": []}]}], "Logging": {"Type": "File"}}});
    assert!(
        !schema_errors(&bad).is_empty(),
        "a topic needs a subscription"
    );
    let bad = json!({"UserConfig": {"Namespaces": [{"Name": "sbemulatorns",
        "Queues": [{"Name": "-q"}], "Topics": []}], "Logging": {"Type": "File"}}});
    assert!(!schema_errors(&bad).is_empty(), "names follow the pattern");
    let good = json!({"UserConfig": {"Namespaces": [{"Name": "sbemulatorns",
        "Queues": [{"Name": "a-b.c_d/e"}], "Topics": []}], "Logging": {"Type": "File"}}});
    assert_eq!(schema_errors(&good), Vec::<String>::new());
}

#[test]
fn the_repository_topology_converts_within_the_limits() {
    let conversion = emulator::load(&repo_file("../../servicebus.config.json")).unwrap();
    let document = valid_json(&conversion);
    assert_within_limits(&conversion.config);

    // Every entity, rule and forward of the topology is there.
    let original = ConfigFile::parse(
        &std::fs::read_to_string(repo_file("../../servicebus.config.json")).unwrap(),
    )
    .unwrap();
    let source = &original.user_config.namespaces[0];
    let ns = &conversion.config.user_config.namespaces[0];
    let names = |v: Vec<&String>| v.into_iter().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(ns.queues.iter().map(|q| &q.name).collect()),
        names(source.queues.iter().map(|q| &q.name).collect())
    );
    assert_eq!(ns.topics.len(), source.topics.len());
    for (out, src) in ns.topics.iter().zip(&source.topics) {
        assert_eq!(out.name, src.name);
        assert_eq!(out.subscriptions.len(), src.subscriptions.len());
        for (s_out, s_src) in out.subscriptions.iter().zip(&src.subscriptions) {
            assert_eq!(s_out.name, s_src.name);
            assert_eq!(s_out.rules.len(), s_src.rules.len());
            let forward = s_src.properties.forward_to.clone().unwrap_or_default();
            assert_eq!(s_out.properties.forward_to, forward);
        }
    }
    let analyze = &document["UserConfig"]["Namespaces"][0]["Topics"][0]["Subscriptions"][0];
    assert_eq!(
        analyze["Rules"][0]["Properties"],
        json!({"FilterType": "Correlation", "CorrelationFilter": {"Label": "DocumentSubmitted"}})
    );
    assert_eq!(
        document["UserConfig"]["Namespaces"][0]["Topics"][0]["Subscriptions"][1]["Properties"]["ForwardTo"],
        "audit"
    );

    // Docflow's values stand, explicitly, where the emulator's defaults would differ.
    let ai_tasks = &ns.queues[0].properties;
    assert_eq!(ai_tasks.max_delivery_count, 5);
    assert_eq!(ai_tasks.lock_duration, "PT5M");
    assert!(ai_tasks.requires_duplicate_detection);
    assert_eq!(ns.queues[1].properties.max_delivery_count, 10);
    assert_eq!(
        ns.queues[3]
            .properties
            .duplicate_detection_history_time_window,
        None
    );

    // And each change is named.
    let lines: Vec<String> = conversion.clamps.iter().map(ToString::to_string).collect();
    for expected in [
        "namespace: Name docflow -> sbemulatorns (the emulator's only namespace)",
        "ai-tasks: DefaultMessageTimeToLive P14D -> PT1H (the emulator's maximum)",
        "ai-tasks: DuplicateDetectionHistoryTimeWindow PT10M -> PT5M (the emulator's maximum)",
        "documents/subscriptions/audit: DefaultMessageTimeToLive P14D -> PT1H (the emulator's maximum)",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected}\n{lines:#?}"
        );
    }
    // Nothing unchanged is reported.
    assert!(
        conversion.clamps.iter().all(|c| c.from != c.to),
        "{lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("LockDuration") || l.contains("MaxDelivery"))
    );

    // The output is itself a topology docflow's broker reads.
    let back = ConfigFile::parse(&conversion.to_json()).unwrap();
    assert_eq!(
        back.user_config.namespaces[0].topics.len(),
        source.topics.len()
    );
}

#[test]
fn values_beyond_the_limits_are_clamped_and_named() {
    let topology = json!({"UserConfig": {"Namespaces": [{"Name": "sbemulatorns",
        "Queues": [
            {"Name": "big", "Properties": {"DefaultMessageTimeToLive": "P7D",
                "RequiresDuplicateDetection": true, "MaxDeliveryCount": 50,
                "LockDuration": "PT1.5S", "ForwardDeadLetteredMessagesTo": "Small"}},
            {"Name": "small", "Properties": {"DefaultMessageTimeToLive": "PT2M",
                "DuplicateDetectionHistoryTimeWindow": "PT1S", "LockDuration": "PT30.5S",
                "MaxDeliveryCount": 10}}
        ],
        "Topics": [{"Name": "events", "Properties": {"DefaultMessageTimeToLive": "PT1H",
                "LockDuration": "PT1M", "RequiresSession": false},
            "Subscriptions": [
                {"Name": "all", "Properties": {"LockDuration": "PT10M",
                    "DefaultMessageTimeToLive": "PT30M", "RequiresDuplicateDetection": true,
                    "ForwardTo": "big"},
                 "Rules": [
                    {"Name": "everything", "Properties": {"FilterType": "True"}},
                    {"Name": "empty", "Properties": {"FilterType": "Correlation",
                        "CorrelationFilter": {"Properties": {}, "To": ""}}},
                    {"Name": "tagged", "Properties": {"FilterType": "correlation",
                        "CorrelationFilter": {"subject": "s", "Properties": {"n": 1, "b": true}},
                        "Action": "SET x = 1; REMOVE y"}},
                    {"Name": "sql", "Properties": {"FilterType": "Sql",
                        "SqlFilter": {"SqlExpression": "n > 1"},
                        "Action": {"SqlExpression": "SET sys.Label = 'big'"}}}
                 ]},
                {"Name": "short", "Properties": {"LockDuration": "PT30S",
                    "DefaultMessageTimeToLive": "PT10M", "MaxDeliveryCount": 0}}
            ]}]}],
        "Logging": {"Type": "Syslog"}}});
    let conversion = convert(topology).unwrap();
    let document = valid_json(&conversion);
    assert_within_limits(&conversion.config);
    let lines: Vec<String> = conversion.clamps.iter().map(ToString::to_string).collect();
    let max = "the emulator's maximum";
    let min = "the emulator's minimum";
    let expected = [
        "UserConfig: Logging.Type \"Syslog\" -> File (the emulator's Logging.Type is File, Console or both)".to_string(),
        format!("big: DefaultMessageTimeToLive P7D -> PT1H ({max})"),
        format!("big: DuplicateDetectionHistoryTimeWindow unset (PT10M) -> PT5M ({max})"),
        format!("big: LockDuration PT1.5S -> PT5S ({min})"),
        format!("big: MaxDeliveryCount 50 -> 10 ({max})"),
        format!("small: DefaultMessageTimeToLive PT2M -> PT5M ({min})"),
        format!("small: DuplicateDetectionHistoryTimeWindow PT1S -> PT5S ({min})"),
        "small: LockDuration PT30.5S -> PT30S (the emulator takes whole seconds)".to_string(),
        "events: LockDuration PT1M -> (dropped) (Service Bus topics have no such property)"
            .to_string(),
        "events/subscriptions/all: RequiresDuplicateDetection true -> (dropped) (the emulator's subscriptions have no such property)".to_string(),
        format!("events/subscriptions/all: LockDuration PT10M -> PT5M ({max})"),
        "events/subscriptions/all/rules/everything: FilterType True -> Sql \"1=1\" (the emulator's filter types are Correlation and Sql)".to_string(),
        "events/subscriptions/all/rules/empty: CorrelationFilter.Properties {} -> (dropped) (the emulator refuses an empty Properties object; it constrains nothing)".to_string(),
        "events/subscriptions/all/rules/empty: CorrelationFilter.To \"\" -> (dropped) (an empty field constrains nothing)".to_string(),
        "events/subscriptions/all/rules/empty: CorrelationFilter (no field set) -> SqlFilter \"1=1\" (the emulator refuses an empty correlation filter; both match every message)".to_string(),
        format!("events/subscriptions/short: LockDuration PT30S -> PT1M ({min})"),
        format!("events/subscriptions/short: MaxDeliveryCount 0 -> 1 ({min})"),
    ];
    assert_eq!(lines, expected);

    let ns = &document["UserConfig"]["Namespaces"][0];
    assert_eq!(document["UserConfig"]["Logging"], json!({"Type": "File"}));
    // Forwards keep the target as declared.
    assert_eq!(
        ns["Queues"][0]["Properties"]["ForwardDeadLetteredMessagesTo"],
        "small"
    );
    assert_eq!(
        ns["Topics"][0]["Subscriptions"][0]["Properties"]["ForwardTo"],
        "big"
    );
    // Topics carry only what the emulator knows.
    assert_eq!(
        ns["Topics"][0]["Properties"],
        json!({"DefaultMessageTimeToLive": "PT1H", "RequiresDuplicateDetection": false})
    );
    let rules = &ns["Topics"][0]["Subscriptions"][0]["Rules"];
    assert_eq!(
        rules[0]["Properties"],
        json!({"FilterType": "Sql", "SqlFilter": {"SqlExpression": "1=1"}})
    );
    assert_eq!(
        rules[2]["Properties"],
        json!({"FilterType": "Correlation",
            "CorrelationFilter": {"Label": "s", "Properties": {"n": 1, "b": true}},
            "Action": {"SqlExpression": "SET x = 1; REMOVE y"}})
    );
    assert_eq!(
        rules[3]["Properties"]["Action"],
        json!({"SqlExpression": "SET sys.Label = 'big'"})
    );
    assert!(conversion.to_json().ends_with("}\n"));
}

/// A one-topic topology with these subscriptions, for the refusals.
fn with_subscriptions(subscriptions: Value) -> Value {
    json!({"UserConfig": {"Namespaces": [{"Name": "sbemulatorns", "Queues": [{"Name": "q"}],
        "Topics": [{"Name": "t", "Subscriptions": subscriptions}]}]}})
}

fn refusal(topology: Value) -> String {
    match convert(topology) {
        Err(e @ EmulatorError::Unrepresentable(_)) => e.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn what_the_emulator_cannot_hold_is_refused() {
    let sql_rule = |i: usize| {
        json!({"Name": format!("r{i}"),
        "Properties": {"FilterType": "Sql", "SqlFilter": {"SqlExpression": "a = 1"}}})
    };
    let queues: Vec<Value> = (0..51).map(|i| json!({"Name": format!("q{i}")})).collect();
    let cases = [
        (
            json!({"UserConfig": {"Namespaces": [{"Name": "n", "Queues": queues}]}}),
            "namespace: has 51 queues and topics; the emulator holds at most 50",
        ),
        (
            with_subscriptions(json!([])),
            "t: has no subscription; the emulator requires at least one per topic",
        ),
        (
            with_subscriptions(json!([{"Name": "s", "Properties": {"ForwardTo": "nowhere"}}])),
            "t/subscriptions/s: ForwardTo \"nowhere\" is not a queue or topic of the topology",
        ),
        (
            with_subscriptions(json!([{"Name": "-s"}])),
            "t/subscriptions/-s: name \"-s\" must start and end with a letter or digit",
        ),
        (
            with_subscriptions(
                json!([{"Name": "s", "Rules": (0..21).map(sql_rule).collect::<Vec<_>>()}]),
            ),
            "t: has 21 SQL filters over its subscriptions; the emulator holds at most 20 per topic",
        ),
        (
            with_subscriptions(json!([{"Name": "s", "Rules": [{"Name": "r", "Properties": {
                "FilterType": "Correlation", "CorrelationFilter": {"PartitionKey": "p"}}}]}])),
            "t/subscriptions/s/rules/r: CorrelationFilter.PartitionKey has no counterpart in the emulator's filters",
        ),
        (
            with_subscriptions(json!([{"Name": "s", "Rules": [{"Name": "r", "Properties": {
                "FilterType": "Sql", "SqlFilter": {"SqlExpression": format!("a = '{}'", "x".repeat(1020))}}}]}])),
            "t/subscriptions/s/rules/r: SqlFilter.SqlExpression is 1026 characters long; the emulator takes at most 1024",
        ),
        (
            with_subscriptions(json!([{"Name": "s", "Rules": [{"Name": "r", "Properties": {
                "FilterType": "Sql", "SqlFilter": {"SqlExpression": "1=1"},
                "Action": {"SqlExpression": vec!["SET a = 1"; 33].join("; ")}}}]}])),
            "t/subscriptions/s/rules/r: Action.SqlExpression has 33 statements; the emulator takes at most 32",
        ),
        (
            with_subscriptions(json!([{"Name": "s", "Rules": [{"Name": "r", "Properties": {
                "FilterType": "Boolean"}}]}])),
            "t/subscriptions/s/rules/r: FilterType \"Boolean\": the emulator's filter types are Correlation and Sql",
        ),
        (
            with_subscriptions(json!([{"Name": "s", "Properties": {"LockDuration": "5 minutes"}}])),
            "t/subscriptions/s: LockDuration \"5 minutes\" is not an ISO 8601 duration",
        ),
        (
            with_subscriptions(json!([{"Name": "s"}, {"Name": "S"}])),
            "t/subscriptions/S: is declared twice (also as \"s\")",
        ),
        (
            json!({"UserConfig": {"Namespaces": [{"Name": "a"}, {"Name": "b"}]}}),
            "UserConfig: declares several namespaces; the emulator has exactly one",
        ),
    ];
    for (topology, expected) in cases {
        let message = refusal(topology);
        assert!(
            message.starts_with("the Service Bus emulator cannot represent this topology:\n  "),
            "{message}"
        );
        assert!(
            message.lines().any(|l| l.trim() == expected),
            "expected {expected:?} in\n{message}"
        );
    }
    // Every problem is listed, not only the first.
    let message = refusal(with_subscriptions(json!([
        {"Name": "a", "Properties": {"ForwardTo": "x"}},
        {"Name": "b", "Properties": {"ForwardTo": "y"}}
    ])));
    assert_eq!(message.lines().count(), 3, "{message}");
    // No namespace at all is the topology's own error.
    let e = convert(json!({"UserConfig": {"Namespaces": []}})).unwrap_err();
    assert!(matches!(e, EmulatorError::Topology(_)), "{e}");
}
