//! docflow, the app: asynchronous AI document processing as an Azure Functions custom handler.
//! Everything `docflow serve` runs on Azure lives here; the local stand-ins (broker, local
//! host) are crates of their own that this one never sees.
//!
//! # Layout
//! - [`server`]: the warp server the host calls (`GET /`, `POST /{FunctionName}`), shutdown.
//! - [`functions`]: one module per Function and the registry the server dispatches to.
//! - [`outcome`]: the one place where a function's outcome becomes the host's response.
//! - [`pipeline`]: the document pipeline's events, state, submissions, intake, chunking, storage.
//! - [`task`]: the message schemas (`ai.task.v1`, `ai.task-result.v1`, `ai.task-outcome.v1`).
//! - [`extract`]: a submitted file's text (PDF, Word, HTML, e-mail) and how it was read.
//! - [`ocr`]: the OCR seam (Azure AI Document Intelligence, Tesseract locally).
//! - [`ai`]: the AI provider seam (offline deterministic, OpenAI-compatible HTTP), budgets.
//! - [`poison`]: poison records, so redeliveries of a bad message fail fast.
//! - [`blocking`]: CPU work off the async workers.
//! - [`last_errors`]: the real reason of each failing message, for dead-letter triage.
//! - [`dead_letters`]: dead-letter triage (read, group, resubmit, discard, audit) for `docflow
//!   dlq` and the dashboard.
//! - [`config`]: reads the environment into plain options.
//! - [`app`]: wires settings into implementations.
//! - [`telemetry`]: structured logging.
//! - [`metrics`]: the app's OpenTelemetry instruments (invocations, documents, LLM calls,
//!   budgets), served as `GET /metrics`.
//!
//! Depends on `docflow-custom-handler` (the host's protocol), `docflow-blob` (storage) and
//! `docflow-servicebus` (messages, the REST client); never on the broker or the local host.

pub mod ai;
pub mod app;
pub mod blocking;
pub mod config;
pub mod dead_letters;
pub mod extract;
pub mod functions;
pub mod last_errors;
pub mod metrics;
pub mod ocr;
pub mod outcome;
pub mod pipeline;
pub mod poison;
pub mod server;
pub mod task;
pub mod telemetry;
