//! docflow: asynchronous AI document processing as an Azure Functions custom handler.
//!
//! # Layout
//! - [`protocol`]: the Functions host ⇄ handler wire format (requests, responses, host rules).
//! - [`server`]: the warp server the host calls (`GET /`, `POST /{FunctionName}`), shutdown.
//! - [`http_body`]: bounded request bodies and the `413`, for every server.
//! - [`http_url`]: path segments and query pairs, decoded the same way by every server.
//! - [`app_config`]: a Functions app's files (`host.json`, `function.json`, local settings).
//! - [`host_json_overrides`]: `AzureFunctionsJobHost__…` settings that override host.json.
//! - [`functions`]: one module per Function and the registry the server dispatches to.
//! - [`extract`]: a submitted file's text (PDF, Word, HTML, e-mail) and how it was read.
//! - [`ocr`]: the OCR seam (Azure AI Document Intelligence, Tesseract locally).
//! - [`outcome`]: the one place where a function's outcome becomes the host's response.
//! - [`pipeline`]: the document pipeline's events, state, submissions, chunking, storage.
//! - [`task`]: the message schemas (`ai.task.v1`, `ai.task-result.v1`, `ai.task-outcome.v1`).
//! - [`poison`]: poison records, so redeliveries of a bad message fail fast.
//! - [`ai`]: the AI provider seam (offline deterministic, OpenAI-compatible HTTP).
//! - [`blob`]: the blob storage seam (local folder).
//! - [`host`]: the local Functions host (`docflow dev`).
//! - [`broker`]: the embedded Service Bus broker (SQLite, REST API).
//! - [`servicebus`]: Service Bus message model, SAS, connections and the REST client.
//! - [`topology`]: the Service Bus entities of `servicebus.config.json`.
//! - [`cli`]: the broker and dead-letter commands.
//! - [`last_errors`]: the real reason of each failing message, for dead-letter triage.
//! - [`identity`]: Microsoft Entra credentials for identity-based connections.
//! - [`fake_llm`]: an OpenAI-compatible endpoint with a deployment's rate limits, to measure against.
//! - [`deploy`]: the topology as `az servicebus` commands and the deployable zip (`docflow package`).
//! - [`config`]: reads the environment into plain options.
//! - [`app`]: wires settings into implementations.
//! - [`telemetry`]: structured logging.

pub mod ai;
pub mod app;
pub mod app_config;
pub mod blob;
#[cfg(feature = "local")]
pub mod broker;
pub mod cli;
pub mod config;
pub mod deploy;
pub mod extract;
#[cfg(feature = "local")]
pub mod fake_llm;
pub mod functions;
#[cfg(feature = "local")]
pub mod host;
pub mod host_json_overrides;
pub mod http_body;
pub mod http_url;
pub mod identity;
pub mod last_errors;
pub mod ocr;
pub mod outcome;
pub mod pipeline;
pub mod poison;
pub mod protocol;
pub mod server;
pub mod servicebus;
pub mod task;
pub mod telemetry;
pub mod topology;
