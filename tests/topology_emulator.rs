//! `docflow topology emulator`: the repository's topology as the Service Bus emulator's
//! `Config.json` on stdout, each clamp on its own stderr line, and a clear refusal (exit 2) of a
//! topology the emulator cannot represent. The conversion itself is tested in
//! `crates/docflow-servicebus/tests/emulator_config.rs`, against the emulator's schema.

use std::path::Path;
use std::process::{Command, Output};

fn emulator(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_docflow"))
        .args(["topology", "emulator", "--config"])
        .arg(config)
        .output()
        .expect("docflow runs")
}

#[test]
fn prints_the_emulator_config_and_names_each_clamp() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("servicebus.config.json");
    let out = emulator(&config);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let file: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let ns = &file["UserConfig"]["Namespaces"][0];
    assert_eq!(ns["Name"], "sbemulatorns");
    assert_eq!(ns["Queues"][0]["Name"], "ai-tasks");
    assert_eq!(
        ns["Queues"][0]["Properties"]["DefaultMessageTimeToLive"],
        "PT1H"
    );
    assert_eq!(file["UserConfig"]["Logging"]["Type"], "File");

    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.contains(
            &"docflow topology emulator: clamped ai-tasks: DefaultMessageTimeToLive P14D -> PT1H (the emulator's maximum)"
        ),
        "{stderr}"
    );
    assert!(lines.contains(
        &"docflow topology emulator: clamped namespace: Name docflow -> sbemulatorns (the emulator's only namespace)"
    ));
    // One line per clamp, nothing else.
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("docflow topology emulator: clamped ") && l.contains(" -> ")),
        "{stderr}"
    );
}

#[test]
fn refuses_what_the_emulator_cannot_represent() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("topology.json");
    std::fs::write(
        &config,
        r#"{"UserConfig": {"Namespaces": [{"Name": "sbemulatorns",
            "Queues": [{"Name": "q", "Properties": {"ForwardTo": "gone"}}],
            "Topics": [{"Name": "t", "Subscriptions": []}]}]}}"#,
    )
    .unwrap();
    let out = emulator(&config);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("cannot represent this topology:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\n  q: ForwardTo \"gone\" is not a queue or topic of the topology\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\n  t: has no subscription; the emulator requires at least one per topic"),
        "{stderr}"
    );

    let out = emulator(&dir.path().join("missing.json"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("cannot read topology")
    );
}
