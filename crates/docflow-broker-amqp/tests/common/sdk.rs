//! Microsoft's Service Bus SDKs as test clients: the interpreters the project's scripts install.

use std::time::Duration;

use super::EMULATOR_KEY_NAME;

/// The emulator-style connection string for a broker on `port` with SAS key `key`.
pub fn connection_string(port: u16, key: &str) -> String {
    format!(
        "Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName={EMULATOR_KEY_NAME};SharedAccessKey={key};UseDevelopmentEmulator=true;"
    )
}

/// The Python with `azure-servicebus` (`DOCFLOW_SB_PYTHON` names another one).
pub fn python() -> String {
    let python = std::env::var("DOCFLOW_SB_PYTHON").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../.tools/servicebus-sdk-venv/bin/python"
        )
        .to_string()
    });
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run bash scripts/install-test-tools.sh (it installs azure-servicebus)"
    );
    python
}

/// Runs a Python `script` with `SB_CONNECTION` (for `port` and `key`) and `env` set.
pub async fn run_python(
    script: &str,
    port: u16,
    key: &str,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut command = tokio::process::Command::new(python());
    command
        .args(["-c", script])
        .env("SB_CONNECTION", connection_string(port, key));
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the SDK finished in time")
        .expect("python runs")
}

/// The JSON a script printed on its `RESULT` line, asserting it succeeded.
pub fn result_of(output: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line:\n{stdout}\n{stderr}"));
    serde_json::from_str(line).unwrap()
}
