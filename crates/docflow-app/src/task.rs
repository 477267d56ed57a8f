//! Message schemas of the AI work: `ai.task.v1` in, `ai.task-result.v1` stored,
//! `ai.task-outcome.v1` out. Pure: no I/O.
//!
//! Unknown fields are ignored; an unknown `schema` is poison (architecture §4).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ai::{AiOutput, Operation, TaskOutput, TokenUsage};

/// Schema id of a task message.
pub const TASK_SCHEMA: &str = "ai.task.v1";
/// Schema id of a stored task result.
pub const RESULT_SCHEMA: &str = "ai.task-result.v1";
/// Schema id of a task outcome message.
pub const OUTCOME_SCHEMA: &str = "ai.task-outcome.v1";

/// Default summary length when `parameters.maxWords` is absent.
pub const DEFAULT_MAX_WORDS: u32 = 80;
/// Longest summary a task may ask for: beyond this a "summary" is the document.
pub const MAX_MAX_WORDS: u32 = 2_000;
/// Most labels a classification may have: prompts and scores stay readable.
pub const MAX_LABELS: usize = 64;
/// Longest id accepted: Service Bus ids are at most 128 characters, task ids add a kind.
pub const MAX_ID_CHARS: usize = 256;

/// A validated `ai.task.v1` message.
#[derive(Debug, Clone, PartialEq)]
pub struct AiTask {
    /// Deterministic id, `{documentId}:{kind}` by convention: the key of every effect.
    pub task_id: String,
    /// The document the task belongs to.
    pub document_id: String,
    /// Rides on every log line and message.
    pub correlation_id: Option<String>,
    /// What to do, with its parameters.
    pub work: Work,
    /// Where the text is (for `extract_text`: the file to read).
    pub input: TaskInput,
}

/// What a task does.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// An AI operation on the document's text.
    Ai(Operation),
    /// OCR of a scan or an image, before the analyses (`extract_text`).
    ExtractText,
}

impl Work {
    /// The task kind, as in `kind` and in task ids.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ai(operation) => operation.kind(),
            Self::ExtractText => crate::pipeline::extraction::EXTRACT_TEXT_KIND,
        }
    }
}

/// The text of a task: inline, or a claim-check reference to a blob.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskInput {
    /// Inline text (small documents only).
    Text(String),
    /// A blob holding the document.
    ContentRef(ContentRef),
}

/// A claim-check reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentRef {
    /// Blob container.
    pub container: String,
    /// Blob name.
    pub blob: String,
    /// MIME type of the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Expected size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Expected SHA-256 of the content, lower-case hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Why a task message cannot be processed. Every variant is poison: redelivery cannot fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    /// The body is not JSON.
    #[error("message body is not valid JSON: {detail}")]
    InvalidJson {
        /// The parser's message.
        detail: String,
    },
    /// The body is JSON but not an object.
    #[error("message body is not a JSON object")]
    NotAnObject,
    /// `schema` is missing or not one this version of docflow reads.
    #[error("unknown message schema {found:?}; expected {TASK_SCHEMA:?}")]
    UnknownSchema {
        /// The `schema` value, if any.
        found: Option<String>,
    },
    /// `kind` names no task docflow knows.
    #[error(
        "unknown task kind {kind:?}; expected one of summarize, classify, extract_entities, sentiment, embed, extract_text"
    )]
    UnknownKind {
        /// The `kind` value.
        kind: String,
    },
    /// A field is missing or malformed.
    #[error("invalid task field {field}: {problem}")]
    InvalidField {
        /// JSON path of the field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl TaskError {
    /// The dead-letter style reason code recorded for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidJson { .. } | Self::NotAnObject => "InvalidMessageBody",
            Self::UnknownSchema { .. } => "UnknownSchema",
            Self::UnknownKind { .. } => "UnknownTaskKind",
            Self::InvalidField { .. } => "InvalidTask",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTask {
    task_id: Option<Value>,
    document_id: Option<Value>,
    correlation_id: Option<Value>,
    kind: Option<Value>,
    input: Option<RawInput>,
    parameters: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInput {
    text: Option<Value>,
    content_ref: Option<Value>,
}

/// The `taskId` of a body, when it is a JSON object with a usable string `taskId`.
///
/// Used to key poison records even for bodies that fail validation later.
pub fn task_id_of(body: &[u8]) -> Option<String> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    map.get("taskId")
        .and_then(Value::as_str)
        .filter(|id| valid_id(id))
        .map(str::to_owned)
}

/// What a failed-outcome message needs from a body that may not validate: its task id and
/// whatever document id, kind and correlation id it carries.
pub fn outcome_identity(body: &[u8]) -> Option<TaskIdentity> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let text = |key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .filter(|v| valid_id(v))
            .map(str::to_owned)
    };
    Some(TaskIdentity {
        task_id: text("taskId")?,
        document_id: text("documentId").unwrap_or_default(),
        kind: map
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        correlation_id: text("correlationId"),
    })
}

/// The identifying fields of a task message.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskIdentity {
    /// `taskId`.
    pub task_id: String,
    /// `documentId` (empty when absent).
    pub document_id: String,
    /// `kind` as written (empty when absent).
    pub kind: String,
    /// `correlationId`.
    pub correlation_id: Option<String>,
}

/// Parses and validates an `ai.task.v1` message body.
pub fn parse_task(body: &[u8]) -> Result<AiTask, TaskError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| TaskError::InvalidJson {
        detail: e.to_string(),
    })?;
    let Value::Object(map) = &value else {
        return Err(TaskError::NotAnObject);
    };
    match map.get("schema") {
        Some(Value::String(s)) if s == TASK_SCHEMA => {}
        other => {
            return Err(TaskError::UnknownSchema {
                found: other.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
            });
        }
    }
    let raw: RawTask = serde_json::from_value(value).map_err(|e| TaskError::InvalidField {
        field: "$",
        problem: e.to_string(),
    })?;
    let task_id = required_id(raw.task_id, "taskId")?;
    let document_id = required_id(raw.document_id, "documentId")?;
    let correlation_id = match raw.correlation_id {
        None | Some(Value::Null) => None,
        Some(v) => Some(required_id(Some(v), "correlationId")?),
    };
    let kind = match raw.kind {
        Some(Value::String(kind)) => kind,
        Some(_) => return Err(invalid("kind", "must be a string")),
        None => return Err(invalid("kind", "is required")),
    };
    let parameters = match raw.parameters {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(invalid("parameters", "must be an object")),
    };
    let work = if kind == crate::pipeline::extraction::EXTRACT_TEXT_KIND {
        Work::ExtractText
    } else {
        Work::Ai(operation(&kind, &parameters)?)
    };
    let input = input(raw.input)?;
    Ok(AiTask {
        task_id,
        document_id,
        correlation_id,
        work,
        input,
    })
}

fn operation(
    kind: &str,
    parameters: &serde_json::Map<String, Value>,
) -> Result<Operation, TaskError> {
    Ok(match kind {
        "summarize" => {
            let max_words = match parameters.get("maxWords") {
                None | Some(Value::Null) => DEFAULT_MAX_WORDS,
                Some(v) => v
                    .as_u64()
                    .filter(|n| (1..=u64::from(MAX_MAX_WORDS)).contains(n))
                    .map(|n| n as u32)
                    .ok_or_else(|| {
                        invalid(
                            "parameters.maxWords",
                            &format!("must be an integer from 1 to {MAX_MAX_WORDS}"),
                        )
                    })?,
            };
            Operation::Summarize { max_words }
        }
        "classify" => {
            let labels: Vec<String> = match parameters.get("labels") {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|l| {
                        l.as_str()
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(str::to_owned)
                    })
                    .collect::<Option<_>>()
                    .ok_or_else(|| invalid("parameters.labels", "must hold non-empty strings"))?,
                _ => {
                    return Err(invalid(
                        "parameters.labels",
                        "is required: an array of labels",
                    ));
                }
            };
            if labels.is_empty() || labels.len() > MAX_LABELS {
                return Err(invalid(
                    "parameters.labels",
                    &format!("must hold 1 to {MAX_LABELS} labels"),
                ));
            }
            let mut seen = std::collections::HashSet::new();
            if !labels.iter().all(|l| seen.insert(l.to_lowercase())) {
                return Err(invalid("parameters.labels", "must not repeat a label"));
            }
            Operation::Classify { labels }
        }
        "extract_entities" => Operation::ExtractEntities,
        "sentiment" => Operation::Sentiment,
        "embed" => Operation::Embed,
        other => {
            return Err(TaskError::UnknownKind {
                kind: other.to_string(),
            });
        }
    })
}

fn input(raw: Option<RawInput>) -> Result<TaskInput, TaskError> {
    let Some(raw) = raw else {
        return Err(invalid(
            "input",
            "is required: {\"text\"} or {\"contentRef\"}",
        ));
    };
    match (raw.text, raw.content_ref) {
        (Some(Value::String(text)), None) if !text.trim().is_empty() => Ok(TaskInput::Text(text)),
        (Some(Value::String(_)), None) => Err(invalid("input.text", "is empty")),
        (Some(_), None) => Err(invalid("input.text", "must be a string")),
        (None, Some(reference)) => {
            let reference: ContentRef = serde_json::from_value(reference)
                .map_err(|e| invalid("input.contentRef", &e.to_string()))?;
            if reference.container.is_empty() || reference.blob.is_empty() {
                return Err(invalid("input.contentRef", "needs a container and a blob"));
            }
            if let Some(hash) = &reference.sha256
                && !(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(invalid("input.contentRef.sha256", "must be 64 hex digits"));
            }
            Ok(TaskInput::ContentRef(reference))
        }
        (Some(_), Some(_)) => Err(invalid("input", "must have text or contentRef, not both")),
        (None, None) => Err(invalid("input", "must have text or contentRef")),
    }
}

fn valid_id(id: &str) -> bool {
    !id.trim().is_empty() && id.chars().count() <= MAX_ID_CHARS && !id.chars().any(char::is_control)
}

fn required_id(value: Option<Value>, field: &'static str) -> Result<String, TaskError> {
    match value {
        Some(Value::String(id)) if valid_id(&id) => Ok(id),
        Some(Value::String(_)) => Err(invalid(
            field,
            &format!("must be 1 to {MAX_ID_CHARS} characters without control characters"),
        )),
        Some(_) => Err(invalid(field, "must be a string")),
        None => Err(invalid(field, "is required")),
    }
}

fn invalid(field: &'static str, problem: &str) -> TaskError {
    TaskError::InvalidField {
        field,
        problem: problem.to_string(),
    }
}

/// An `ai.task.v1` message as senders write it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskMessage {
    /// Always [`TASK_SCHEMA`].
    pub schema: &'static str,
    /// `{documentId}:{kind}`.
    pub task_id: String,
    /// The document.
    pub document_id: String,
    /// Correlation id of the submission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Task kind.
    pub kind: String,
    /// The text, by reference.
    pub input: TaskMessageInput,
    /// Kind-specific parameters (`maxWords`, `labels`).
    pub parameters: TaskParameters,
    /// The W3C trace context the message continues (a custom handler's output bindings can
    /// set nothing but the body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::telemetry::TraceContext>,
}

/// `input` of a sent task: always a claim-check reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskMessageInput {
    /// The document's text.
    pub content_ref: ContentRef,
}

/// `parameters` of a sent task.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskParameters {
    /// `summarize`: summary length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_words: Option<u32>,
    /// `classify`: candidate labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

impl TaskMessage {
    /// The JSON body.
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a task message serializes")
    }
}

/// The stored result of a task (`ai.task-result.v1`), written once under its task id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    /// Always [`RESULT_SCHEMA`].
    pub schema: String,
    /// The task.
    pub task_id: String,
    /// Its document.
    pub document_id: String,
    /// Correlation id of the submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Model that produced it.
    pub model: String,
    /// Tokens spent producing it.
    pub usage: TokenUsage,
    /// The result, tagged with its kind.
    pub output: TaskOutput,
    /// The document was longer than the provider's context budget and only its beginning was
    /// used (classification, entities, sentiment).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl TaskResult {
    /// The result of `task` from a provider's answer.
    pub fn new(task: &AiTask, answer: AiOutput) -> Self {
        Self {
            schema: RESULT_SCHEMA.into(),
            task_id: task.task_id.clone(),
            document_id: task.document_id.clone(),
            correlation_id: task.correlation_id.clone(),
            model: answer.model,
            usage: answer.usage,
            output: answer.output,
            truncated: false,
        }
    }
}

/// Where a result is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRef {
    /// Blob container.
    pub container: String,
    /// Blob name.
    pub blob: String,
}

/// Final state of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeStatus {
    /// The result is stored.
    Succeeded,
    /// The task cannot be done; `error` says why.
    Failed,
}

/// Why a task failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeError {
    /// Machine-readable reason (`UnknownTaskKind`, `ContentNotFound`, `ContentFiltered`, …).
    pub reason: String,
    /// Human-readable description.
    pub description: String,
}

/// The outcome of a task (`ai.task-outcome.v1`), sent to `task-results` for the aggregator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOutcome {
    /// Always [`OUTCOME_SCHEMA`].
    pub schema: String,
    /// The task.
    pub task_id: String,
    /// Its document.
    pub document_id: String,
    /// Correlation id of the submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Task kind (`summarize`, …).
    pub kind: String,
    /// Succeeded or failed.
    pub status: OutcomeStatus,
    /// Where the result is, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultRef>,
    /// Model that produced the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Tokens spent on the result.
    pub usage: TokenUsage,
    /// True when the result already existed and no provider was called for this delivery.
    #[serde(default)]
    pub reused: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<OutcomeError>,
    /// Deliveries and scheduled retries the task took, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Time spent in the provider for the answer, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// True when this is the last delivery of a failing message, which Service Bus
    /// dead-letters (`MaxDeliveryCountExceeded`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dead_lettered: bool,
    /// The W3C trace context the message continues (a custom handler's output bindings can
    /// set nothing but the body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::telemetry::TraceContext>,
}

impl TaskOutcome {
    /// A failure outcome: the task can never succeed.
    pub fn failed(task: &TaskIdentity, reason: &str, description: &str) -> Self {
        Self {
            schema: OUTCOME_SCHEMA.into(),
            task_id: task.task_id.clone(),
            document_id: task.document_id.clone(),
            correlation_id: task.correlation_id.clone(),
            kind: task.kind.clone(),
            status: OutcomeStatus::Failed,
            result: None,
            model: None,
            usage: TokenUsage::default(),
            reused: false,
            error: Some(OutcomeError {
                reason: reason.to_string(),
                description: description.to_string(),
            }),
            attempts: None,
            duration_ms: None,
            dead_lettered: false,
            trace: None,
        }
    }

    /// A success outcome pointing at the stored result.
    pub fn succeeded(
        task: &AiTask,
        result: &TaskResult,
        location: ResultRef,
        reused: bool,
    ) -> Self {
        Self {
            schema: OUTCOME_SCHEMA.into(),
            task_id: task.task_id.clone(),
            document_id: task.document_id.clone(),
            correlation_id: task.correlation_id.clone(),
            kind: task.work.kind().into(),
            status: OutcomeStatus::Succeeded,
            result: Some(location),
            model: Some(result.model.clone()),
            usage: result.usage,
            reused,
            error: None,
            attempts: None,
            duration_ms: None,
            dead_lettered: false,
            trace: None,
        }
    }
}

/// The blob name of a task's result: the task id, percent-encoded into one path segment.
///
/// The encoding is injective (`a:b` and `a/b` never share a name) and keeps readable ids
/// readable (`doc-42%3Asummarize.json`).
pub fn result_blob_name(task_id: &str) -> String {
    format!("tasks/{}.json", encode_segment(task_id))
}

/// Percent-encodes every byte outside `[A-Za-z0-9._-]`.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_') || (b == b'.' && !out.is_empty()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
