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
