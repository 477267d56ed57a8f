//! The pipeline's message schemas besides the task messages of [`crate::task`]: the domain
//! events on the topics, the analysis deadline, and one step of a refine summary. Pure.
//!
//! Unknown fields are ignored; an unknown `schema` is poison (architecture §4).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::task::ContentRef;

/// `DocumentSubmitted` on topic `documents`.
pub const SUBMITTED_SCHEMA: &str = "docflow.document-submitted.v1";
/// `AnalysisCompleted` on topic `analysis-completed`.
pub const COMPLETED_SCHEMA: &str = "docflow.analysis-completed.v1";
/// The analysis deadline, scheduled to `task-results`.
pub const DEADLINE_SCHEMA: &str = "docflow.analysis-deadline.v1";
/// One step of a refine summary on `summary-chunks`.
pub const CHUNK_STEP_SCHEMA: &str = "docflow.summary-chunk.v1";

/// The `Subject` of `DocumentSubmitted` (the `analyze` subscription filters on it).
pub const SUBMITTED_SUBJECT: &str = "DocumentSubmitted";
/// The `Subject` of `AnalysisCompleted`.
pub const COMPLETED_SUBJECT: &str = "AnalysisCompleted";

/// Options of an analysis, as submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisOptions {
    /// Task kinds to run, in a stable order.
    pub analyses: Vec<String>,
    /// Labels for `classify`.
    pub labels: Vec<String>,
    /// Summary length in words.
    pub max_words: u32,
}

/// A document was accepted: its payload is stored and its state record exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentSubmitted {
    /// Always [`SUBMITTED_SCHEMA`].
    pub schema: String,
    /// The document.
    pub document_id: String,
    /// Correlation id of the submission.
    pub correlation_id: String,
    /// When it was accepted.
    pub submitted_at: DateTime<Utc>,
    /// The claim-check reference of its text.
    pub content: ContentRef,
    /// What was asked for.
    pub options: AnalysisOptions,
    /// The W3C trace context the message continues (a custom handler's output bindings can
    /// set nothing but the body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::telemetry::TraceContext>,
}

/// A document's analysis reached a final status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisCompleted {
    /// Always [`COMPLETED_SCHEMA`].
    pub schema: String,
    /// The document.
    pub document_id: String,
    /// Correlation id of the submission.
    pub correlation_id: String,
    /// `completed`, `partial` or `failed`.
    pub status: String,
    /// When the status became final.
    pub completed_at: DateTime<Utc>,
    /// Where the combined analysis is.
    pub analysis: crate::task::ResultRef,
    /// Kinds that succeeded.
    pub succeeded: Vec<String>,
    /// Kinds that failed or never reported, with the reason.
    pub failed: Vec<FailedTask>,
    /// 0 for the first final status; higher when recovered tasks changed it.
    #[serde(default)]
    pub revision: u32,
    /// The W3C trace context the message continues (a custom handler's output bindings can
    /// set nothing but the body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::telemetry::TraceContext>,
}

/// A task that did not succeed, as events and the status API report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedTask {
    /// Its kind.
    pub kind: String,
    /// Machine-readable reason.
    pub reason: String,
    /// What happened.
    pub description: String,
}

/// "Finish this analysis now": scheduled by AnalyzeDocument for the configured deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisDeadline {
    /// Always [`DEADLINE_SCHEMA`].
    pub schema: String,
    /// The document.
    pub document_id: String,
    /// Correlation id of the submission.
    pub correlation_id: String,
    /// When it fires.
    pub deadline_at: DateTime<Utc>,
    /// The W3C trace context the message continues (a custom handler's output bindings can
    /// set nothing but the body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::telemetry::TraceContext>,
}

/// A span of the document's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

/// One step of a refine summary: summarise chunk `index` into the running summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkStep {
    /// Always [`CHUNK_STEP_SCHEMA`].
    pub schema: String,
    /// The summarize task this step belongs to.
    pub task_id: String,
    /// The document (also the message's `SessionId`).
    pub document_id: String,
    /// Correlation id of the submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The whole document's claim-check reference.
    pub content: ContentRef,
    /// Every chunk of the document, in order (byte offsets into the stored text).
    pub chunks: Vec<Span>,
    /// The chunk this step summarises.
    pub index: usize,
    /// The summary of the chunks before it (empty for the first step).
    pub running_summary: String,
    /// Summary length in words.
    pub max_words: u32,
    /// Tokens spent by the steps before it.
    pub usage: crate::ai::TokenUsage,
    /// The W3C trace context the message continues (a custom handler's output bindings can
    /// set nothing but the body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::telemetry::TraceContext>,
}

/// Why a pipeline message cannot be read. Always poison.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    /// Not JSON, or not the expected shape.
    #[error("message body is not a valid {expected} message: {detail}")]
    Invalid {
        /// The schema expected.
        expected: &'static str,
        /// The parser's message, naming the field.
        detail: String,
    },
    /// A `schema` this version does not read.
    #[error("unknown message schema {found:?}; expected {expected:?}")]
    UnknownSchema {
        /// The `schema` value.
        found: String,
        /// The schema expected.
        expected: &'static str,
    },
}

impl EventError {
    /// The reason code recorded for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "InvalidMessageBody",
            Self::UnknownSchema { .. } => "UnknownSchema",
        }
    }
}

#[derive(Deserialize)]
struct SchemaOnly {
    schema: Option<String>,
}

/// The `schema` field of a JSON body, if it has one.
pub fn schema_of(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<SchemaOnly>(body).ok()?.schema
}

/// Parses a body of schema `expected` into `T`.
pub fn parse<T: serde::de::DeserializeOwned>(
    body: &[u8],
    expected: &'static str,
) -> Result<T, EventError> {
    match schema_of(body) {
        Some(found) if found != expected => {
            return Err(EventError::UnknownSchema { found, expected });
        }
        _ => {}
    }
    serde_json::from_slice(body).map_err(|e| EventError::Invalid {
        expected,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_the_schema_first() {
        let body = br#"{"schema":"docflow.analysis-deadline.v2","documentId":"d"}"#;
        let err = parse::<AnalysisDeadline>(body, DEADLINE_SCHEMA).unwrap_err();
        assert_eq!(err.reason(), "UnknownSchema");
        let body = br#"{"schema":"docflow.analysis-deadline.v1","documentId":"d"}"#;
        let err = parse::<AnalysisDeadline>(body, DEADLINE_SCHEMA).unwrap_err();
        assert!(err.to_string().contains("correlationId"), "{err}");
        let ok = br#"{"schema":"docflow.analysis-deadline.v1","documentId":"d","correlationId":"c","deadlineAt":"2026-01-01T00:00:00Z","extra":1}"#;
        assert_eq!(
            parse::<AnalysisDeadline>(ok, DEADLINE_SCHEMA)
                .unwrap()
                .document_id,
            "d"
        );
    }
}
