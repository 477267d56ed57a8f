//! Runs the JavaScript SDK's scenarios (`tests/js/*.cjs`) for the `js_sdk*` tests: node with
//! NODE_PATH naming the SDK that `scripts/install-servicebus-sdks.sh` installs, the connection
//! string in `SB_CONNECTION`, and the scenario's `RESULT` or `ERROR` line read back as JSON.
// Each test binary uses a part of it.
#![allow(dead_code)]

use std::time::Duration;

use docflow_broker::ReceiveMode;
use docflow_servicebus::message::Message;
use serde_json::Value;

use crate::common::Server;
use crate::common::sdk::connection_string;

/// Where the install script puts the SDK.
const NODE_MODULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../.tools/servicebus-sdk-js/node_modules"
);
/// The scenario files.
const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js");

/// What a scenario printed: its result, or the SDK's error.
#[derive(Debug)]
pub enum Outcome {
    Result(Value),
    Error(Value),
}

impl Outcome {
    /// The result; panics with the error.
    pub fn ok(self) -> Value {
        match self {
            Outcome::Result(v) => v,
            Outcome::Error(e) => panic!("the scenario failed: {e}"),
        }
    }

    /// The error (`name`, `code`, `message`); panics with the result.
    pub fn err(self) -> Value {
        match self {
            Outcome::Result(v) => panic!("the scenario succeeded: {v}"),
            Outcome::Error(e) => e,
        }
    }
}

/// Runs scenario `name` of `tests/js/{script}` with key `key` and `env` (`SB_QUEUE` and the
/// like) against `server`.
pub async fn js(
    server: &Server,
    key: &str,
    script: &str,
    name: &str,
    env: &[(&str, &str)],
) -> Outcome {
    assert!(
        std::path::Path::new(NODE_MODULES)
            .join("@azure/service-bus")
            .exists(),
        "{NODE_MODULES}/@azure/service-bus is missing: run bash scripts/install-test-tools.sh \
         (it installs @azure/service-bus with Node.js)"
    );
    let run = tokio::process::Command::new("node")
        .arg(format!("{SCRIPTS}/{script}"))
        .arg(name)
        .env("NODE_PATH", NODE_MODULES)
        .env("SB_CONNECTION", connection_string(server.port, key))
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the SDK finished in time")
        .unwrap_or_else(|e| {
            panic!("node runs ({e}): run bash scripts/install-test-tools.sh (it installs Node.js)")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|json| serde_json::from_str::<Value>(json).unwrap())
    };
    if let Some(result) = line("RESULT ") {
        assert!(output.status.success(), "{stdout}\n{stderr}");
        Outcome::Result(result)
    } else if let Some(error) = line("ERROR ") {
        Outcome::Error(error)
    } else {
        panic!(
            "scenario {name} printed no outcome ({}):\n{stdout}\n{stderr}",
            output.status
        )
    }
}

/// Every message left in `path` (its dead-letter queue when `dlq`), received and deleted
/// through the broker's own API.
pub async fn drain(server: &Server, path: &str, dlq: bool) -> Vec<Message> {
    let mut messages = Vec::new();
    while let Some(got) = server
        .broker
        .receive(path, dlq, ReceiveMode::ReceiveAndDelete, Duration::ZERO)
        .await
        .unwrap()
    {
        messages.push(got.message);
    }
    messages
}

/// A body as text.
pub fn text(body: &[u8]) -> &str {
    std::str::from_utf8(body).unwrap()
}
