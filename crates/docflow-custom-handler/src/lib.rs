//! An Azure Functions custom handler's side of the Functions host: the wire protocol and the
//! app's configuration files. Used by the handler (`docflow serve`) and by the local host that
//! plays the Functions host (`docflow dev`); it knows nothing of docflow's functions.
//!
//! # Layout
//! - [`protocol`]: the host ⇄ handler wire format (requests, responses, the host's encoding
//!   rules: double-encoded strings, metadata, body-only outputs).
//! - [`app_config`]: a Functions app's files (`host.json`, `function.json`, local settings).
//! - [`host_json_overrides`]: `AzureFunctionsJobHost__…` settings that override host.json.
//!
//! Never depends on the app, the broker or the local host.

pub mod app_config;
pub mod host_json_overrides;
pub mod protocol;

/// Set by the local host (`docflow dev`) in the environment of a handler it starts: its own
/// process id. A handler that honours it stops once that process is gone, so that a host
/// killed outright (`kill -9`, a test that ends) leaves no handler behind. The Functions host
/// on Azure does not set it.
pub const HOST_PID_ENV: &str = "DOCFLOW_HOST_PID";
