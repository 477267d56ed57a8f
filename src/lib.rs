//! docflow, the binary's library: the command-line commands, the deployable package and the
//! measuring stand-ins, over the workspace's crates. The crates are re-exported under the
//! module names the commands and the integration tests use.
//!
//! # Layout
//! - [`cli`]: the commands beyond `serve` (dev, run, broker, dlq, package, bench, fake-llm).
//! - [`deploy`]: the topology as `az servicebus` commands and the deployable zip (`docflow package`).
//! - [`fake_llm`]: an OpenAI-compatible endpoint with a deployment's rate limits, to measure against.
//!
//! # The crates
//! - `docflow-app` ([`functions`], [`pipeline`], [`extract`], [`ocr`], [`ai`], [`server`],
//!   [`config`], [`app`], …): the app `docflow serve` runs.
//! - `docflow-custom-handler` ([`protocol`], [`app_config`], [`host_json_overrides`]): the
//!   Functions host's wire protocol and the app's files.
//! - `docflow-blob` ([`blob`]): the blob storage seam.
//! - `docflow-servicebus` ([`servicebus`], [`topology`], [`identity`], [`http_body`],
//!   [`http_url`]): Service Bus messages, SAS, connections, the REST client.
//! - `docflow-local-host` ([`host`], feature `local`): the local Functions host.
//! - `docflow-broker` ([`broker`], feature `local`): the embedded Service Bus broker.
//! - `docflow-dashboard` ([`dashboard`], feature `local`): the dashboard of `docflow dev`.

pub mod cli;
pub mod deploy;
#[cfg(feature = "local")]
pub mod fake_llm;

pub use docflow_app::{
    ai, app, blocking, config, dead_letters, extract, functions, last_errors, metrics, ocr,
    outcome, pipeline, poison, server, task, telemetry,
};
pub use docflow_blob as blob;
#[cfg(feature = "local")]
pub use docflow_broker as broker;
#[cfg(feature = "local")]
pub use docflow_broker_amqp as broker_amqp;
pub use docflow_custom_handler::{app_config, host_json_overrides, protocol};
#[cfg(feature = "local")]
pub use docflow_dashboard as dashboard;
#[cfg(feature = "local")]
pub use docflow_local_host as host;
pub use docflow_servicebus as servicebus;
pub use docflow_servicebus::{http_body, http_url, identity, topology};
