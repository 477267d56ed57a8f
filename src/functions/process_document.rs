//! Service Bus queue `ai-tasks` → POST /ProcessDocument
//!
//! Runs one `ai.task.v1` task against the AI provider, stores the result once under a name
//! derived from the task id, and sends the `ai.task-outcome.v1` to `task-results` through the
//! `outcome` output binding. In order, each delivery:
//! 1. fails fast when a poison record exists for this task and this exact body;
//! 2. validates the task (unknown schema, kind or parameters → poison);
//! 3. completes without the provider when the result already exists (redelivery, duplicate);
//! 4. reads the input (missing or corrupt content → poison);
//! 5. calls the provider (rate limits wait in place when short; rejections → poison);
//! 6. stores the result with create-if-absent, so concurrent deliveries store one result.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Semaphore;
use tracing::{Span, error, info, warn};

use super::{Function, Invocation};
use crate::ai::{AiOutput, AiProvider, AiRequest, ProviderError};
use crate::blob::{BlobError, BlobStore};
use crate::outcome::Outcome;
use crate::poison::{POISON_SCHEMA, PoisonRecord, PoisonRecords, poison_key, sha256_hex};
use crate::protocol::{InvocationRequest, InvocationResponse, ServiceBusMessage, TriggerDataType};
use crate::task::{
    AiTask, ContentRef, ResultRef, TaskInput, TaskOutcome, TaskResult, parse_task,
    result_blob_name, task_id_of,
};

/// The trigger binding's `name` in `ProcessDocument/function.json`.
pub const TRIGGER_BINDING: &str = "message";
/// The Service Bus output binding's `name` (queue `task-results`).
pub const OUTCOME_BINDING: &str = "outcome";

/// Options of [`ProcessDocument`].
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// Container of task results.
    pub results_container: String,
    /// Container of processing state (poison records).
    pub state_container: String,
    /// Longest rate-limit wait spent in place; a longer one abandons the message instead.
    pub max_inline_retry_wait: Duration,
    /// Provider calls running at once in this process.
    pub max_concurrent_ai_calls: usize,
    /// Largest referenced document read, in bytes.
    pub max_content_bytes: u64,
    /// `MaxDeliveryCount` of the trigger queue, to recognise a poison message's last delivery
    /// (`None`: unknown, so no failed outcome is sent).
    pub max_delivery_count: Option<u32>,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        Self {
            results_container: "results".into(),
            state_container: "state".into(),
            max_inline_retry_wait: Duration::from_secs(10),
            max_concurrent_ai_calls: 4,
            // Far above any text document; a larger blob is almost surely not text.
            max_content_bytes: 32 * 1024 * 1024,
            max_delivery_count: None,
        }
    }
}

/// The queue the trigger reads (`ProcessDocument/function.json`).
pub const TRIGGER_QUEUE: &str = "ai-tasks";
/// The queue outcomes go to (`ProcessDocument/function.json`).
pub const OUTCOME_QUEUE: &str = "task-results";

/// Where a failed outcome goes on a poison message's last delivery. The reply is non-2xx then,
/// so the output binding cannot carry it; it is sent directly over Service Bus, so that the
/// aggregator still hears of every task.
#[async_trait]
pub trait OutcomeSink: Send + Sync {
    /// Sends `outcome` with this `MessageId` (duplicate detection drops repeats).
    async fn send_outcome(&self, outcome: &TaskOutcome, message_id: &str) -> Result<(), String>;
}

/// [`OutcomeSink`] over docflow's Service Bus client.
pub struct ServiceBusOutcomeSink {
    client: crate::servicebus::ServiceBusClient,
}

impl ServiceBusOutcomeSink {
    /// A sink sending to [`OUTCOME_QUEUE`].
    pub fn new(client: crate::servicebus::ServiceBusClient) -> Self {
        Self { client }
    }
}

#[async_trait]
impl OutcomeSink for ServiceBusOutcomeSink {
    async fn send_outcome(&self, outcome: &TaskOutcome, message_id: &str) -> Result<(), String> {
        let body = serde_json::to_string(outcome).expect("an outcome serializes");
        let mut message = crate::servicebus::Message::new(body)
            .with_message_id(message_id)
            .with_content_type("application/json");
        message.correlation_id = outcome.correlation_id.clone();
        self.client
            .send_message(OUTCOME_QUEUE, &message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The ProcessDocument function.
pub struct ProcessDocument {
    blobs: Arc<dyn BlobStore>,
    ai: Arc<dyn AiProvider>,
    poison: PoisonRecords,
    options: ProcessOptions,
    ai_slots: Semaphore,
    outcomes: Option<Arc<dyn OutcomeSink>>,
}

/// Why a delivery stopped early, before it becomes an [`Outcome`].
enum Stop {
    Poison {
        reason: String,
        description: String,
    },
    Transient {
        reason: &'static str,
        description: String,
    },
}

impl From<BlobError> for Stop {
    fn from(e: BlobError) -> Self {
        Stop::Transient {
            reason: "StorageUnavailable",
            description: e.to_string(),
        }
    }
}

impl ProcessDocument {
    /// The function over a blob store and a provider.
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        ai: Arc<dyn AiProvider>,
        options: ProcessOptions,
    ) -> Self {
        Self {
            poison: PoisonRecords::new(blobs.clone(), options.state_container.clone()),
            ai_slots: Semaphore::new(options.max_concurrent_ai_calls.max(1)),
            blobs,
            ai,
            options,
            outcomes: None,
        }
    }

    /// Sends failed outcomes of poison messages' last deliveries to `sink`.
    pub fn with_outcome_sink(mut self, sink: Arc<dyn OutcomeSink>) -> Self {
        self.outcomes = Some(sink);
        self
    }

    /// On a poison message's last delivery, tells the aggregator the task failed.
    async fn report_last_failure(
        &self,
        message: &ServiceBusMessage,
        reason: &str,
        description: &str,
    ) {
        let (Some(sink), Some(max), Some(count)) = (
            &self.outcomes,
            self.options.max_delivery_count,
            message.properties.delivery_count,
        ) else {
            return;
        };
        if count < max {
            return;
        }
        let Some(identity) = crate::task::outcome_identity(&message.body) else {
            warn!(
                "last delivery of a poison message without a task id; no outcome can be reported"
            );
            return;
        };
        let outcome = TaskOutcome::failed(&identity, reason, description);
        let message_id = format!(
            "{}:failed:{}",
            identity.task_id,
            &sha256_hex(&message.body)[..16]
        );
        match sink.send_outcome(&outcome, &message_id).await {
            Ok(()) => {
                info!(task_id = %identity.task_id, %reason, "last delivery failed; failed outcome sent")
            }
            Err(e) => {
                error!(error = %e, task_id = %identity.task_id, "sending the failed outcome failed")
            }
        }
    }

    async fn process(&self, task: &AiTask) -> Result<InvocationResponse, Stop> {
        let location = ResultRef {
            container: self.options.results_container.clone(),
            blob: result_blob_name(&task.task_id),
        };
        if let Some(existing) = self.stored_result(&location).await? {
            info!(task_id = %task.task_id, "result already stored; completing without a provider call");
            return Ok(self.done(task, &existing, location, true));
        }
        let text = self.load_text(&task.input).await?;
        let answer = self
            .call_provider(AiRequest {
                operation: task.operation.clone(),
                text,
            })
            .await?;
        let result = TaskResult::new(task, answer);
        let bytes = serde_json::to_vec(&result).expect("a task result serializes");
        match self
            .blobs
            .create_if_absent(
                &location.container,
                &location.blob,
                Bytes::from(bytes),
                "application/json",
            )
            .await
        {
            Ok(_) => Ok(self.done(task, &result, location, false)),
            Err(BlobError::AlreadyExists { .. }) => {
                warn!(task_id = %task.task_id, "a concurrent delivery stored the result first; reporting that one");
                let winner = self.stored_result(&location).await?.unwrap_or(result);
                Ok(self.done(task, &winner, location, true))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn stored_result(&self, location: &ResultRef) -> Result<Option<TaskResult>, Stop> {
        match self.blobs.get(&location.container, &location.blob).await {
            Ok(blob) => serde_json::from_slice(&blob.data)
                .map(Some)
                .map_err(|e| Stop::Transient {
                    reason: "CorruptResult",
                    description: format!(
                        "stored result {}/{} is not an ai.task-result.v1 document: {e}",
                        location.container, location.blob
                    ),
                }),
            Err(BlobError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn done(
        &self,
        task: &AiTask,
        result: &TaskResult,
        location: ResultRef,
        reused: bool,
    ) -> InvocationResponse {
        let outcome = TaskOutcome::succeeded(task, result, location, reused);
        let body = serde_json::to_string(&outcome).expect("an outcome serializes");
        let line = format!(
            "task {} succeeded with {} ({} tokens{})",
            task.task_id,
            result.model,
            result.usage.total_tokens,
            if reused { ", result reused" } else { "" }
        );
        InvocationResponse::new()
            .service_bus_messages(OUTCOME_BINDING, [body])
            .log(line)
    }

    async fn load_text(&self, input: &TaskInput) -> Result<String, Stop> {
        let reference = match input {
            TaskInput::Text(text) => return Ok(text.clone()),
            TaskInput::ContentRef(reference) => reference,
        };
        let poison = |reason: &str, description: String| Stop::Poison {
            reason: reason.to_string(),
            description,
        };
        let blob = match self.blobs.get(&reference.container, &reference.blob).await {
            Ok(blob) => blob,
            Err(BlobError::NotFound { container, name }) => {
                return Err(poison(
                    "ContentNotFound",
                    format!("referenced content {container}/{name} does not exist"),
                ));
            }
            Err(e @ BlobError::InvalidName { .. }) => {
                return Err(poison("InvalidContentRef", e.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        check_content(
            reference,
            &blob.data,
            &blob.properties.content_type,
            self.options.max_content_bytes,
        )
        .map_err(|(reason, description)| poison(reason, description))
    }

    /// Calls the provider, waiting in place for short rate-limit delays.
    async fn call_provider(&self, request: AiRequest) -> Result<AiOutput, Stop> {
        let mut waited = Duration::ZERO;
        loop {
            let result = {
                let _slot = self
                    .ai_slots
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                self.ai.run(&request).await
            };
            match result {
                Ok(answer) => return Ok(answer),
                Err(ProviderError::RetryAfter { delay, detail })
                    if waited + delay <= self.options.max_inline_retry_wait =>
                {
                    info!(delay_ms = delay.as_millis() as u64, %detail, "provider rate limited; waiting in place");
                    tokio::time::sleep(delay).await;
                    waited += delay;
                }
                Err(ProviderError::RetryAfter { delay, detail }) => {
                    return Err(Stop::Transient {
                        reason: "RateLimited",
                        description: format!(
                            "provider asked to wait {delay:?}, longer than waiting in place allows: {detail}"
                        ),
                    });
                }
                Err(ProviderError::Transient { detail }) => {
                    return Err(Stop::Transient {
                        reason: "ProviderUnavailable",
                        description: detail,
                    });
                }
                Err(ProviderError::Rejected { reason, detail }) => {
                    return Err(Stop::Poison {
                        reason: reason.to_string(),
                        description: detail,
                    });
                }
            }
        }
    }

    async fn record_poison(
        &self,
        key: &str,
        body_sha256: &str,
        message: &ServiceBusMessage,
        reason: String,
        description: String,
    ) -> Outcome {
        error!(poison_key = %key, %reason, %description, "message is poison; recording the reason");
        let record = PoisonRecord {
            schema: POISON_SCHEMA.into(),
            key: key.to_string(),
            reason: reason.clone(),
            description: description.clone(),
            body_sha256: body_sha256.to_string(),
            message_id: message.properties.message_id.clone(),
            delivery_count: message.properties.delivery_count,
            recorded_at: chrono::Utc::now(),
        };
        if let Err(e) = self.poison.record(&record).await {
            // Still poison: the next delivery re-validates and tries to record again.
            error!(error = %e, poison_key = %key, "recording the poison reason failed");
        }
        Outcome::Poison {
            reason,
            description,
            known: false,
        }
    }
}

/// Checks referenced content against its reference and decodes it as text.
fn check_content(
    reference: &ContentRef,
    data: &[u8],
    stored_type: &str,
    max_bytes: u64,
) -> Result<String, (&'static str, String)> {
    let name = format!("{}/{}", reference.container, reference.blob);
    if data.len() as u64 > max_bytes {
        return Err((
            "ContentTooLarge",
            format!("{name} is {} bytes; the limit is {max_bytes}", data.len()),
        ));
    }
    if let Some(expected) = reference.size_bytes
        && expected != data.len() as u64
    {
        return Err((
            "ContentSizeMismatch",
            format!(
                "{name} is {} bytes, the reference says {expected}",
                data.len()
            ),
        ));
    }
    if let Some(expected) = &reference.sha256 {
        let actual = sha256_hex(data);
        if !actual.eq_ignore_ascii_case(expected) {
            return Err((
                "ContentHashMismatch",
                format!("{name} has SHA-256 {actual}, the reference says {expected}"),
            ));
        }
    }
    let content_type = reference.content_type.as_deref().unwrap_or(stored_type);
    if !is_textual(content_type) {
        return Err((
            "UnsupportedContentType",
            format!("{name} is {content_type}; only text content can be processed"),
        ));
    }
    String::from_utf8(data.to_vec())
        .map_err(|e| ("ContentNotText", format!("{name} is not UTF-8 text: {e}")))
}

fn is_textual(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.is_empty()
        || essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/xml"
                | "application/octet-stream"
                | "application/markdown"
        )
}

#[async_trait]
impl Function for ProcessDocument {
    fn name(&self) -> &'static str {
        "ProcessDocument"
    }

    async fn invoke(&self, _invocation: &Invocation, request: InvocationRequest) -> Outcome {
        let message = match request.service_bus_message(TRIGGER_BINDING, TriggerDataType::String) {
            Ok(message) => message,
            Err(e) => return Outcome::BadRequest(e),
        };
        let outcome = self.handle(&message).await;
        if let Outcome::Poison {
            reason,
            description,
            ..
        } = &outcome
        {
            self.report_last_failure(&message, reason, description)
                .await;
        }
        outcome
    }
}

impl ProcessDocument {
    /// One delivery, start to outcome.
    async fn handle(&self, message: &ServiceBusMessage) -> Outcome {
        let span = Span::current();
        if let Some(id) = &message.properties.message_id {
            span.record("message_id", id.as_str());
        }
        let body_sha256 = sha256_hex(&message.body);
        let key = poison_key(task_id_of(&message.body), &body_sha256);
        span.record("task_id", key.as_str());

        match self.poison.find(&key).await {
            Ok(Some(record)) if record.body_sha256 == body_sha256 => {
                warn!(reason = %record.reason, delivery_count = message.properties.delivery_count, "known poison message; failing fast");
                return Outcome::Poison {
                    reason: record.reason,
                    description: record.description,
                    known: true,
                };
            }
            Ok(_) => {}
            Err(e) => return Outcome::transient("StorageUnavailable", e.to_string()),
        }
        let task = match parse_task(&message.body) {
            Ok(task) => task,
            Err(e) => {
                return self
                    .record_poison(
                        &key,
                        &body_sha256,
                        message,
                        e.reason().into(),
                        e.to_string(),
                    )
                    .await;
            }
        };
        if let Some(correlation_id) = &task.correlation_id {
            span.record("correlation_id", correlation_id.as_str());
        }
        match self.process(&task).await {
            Ok(response) => Outcome::Done(response),
            Err(Stop::Poison {
                reason,
                description,
            }) => {
                self.record_poison(&key, &body_sha256, message, reason, description)
                    .await
            }
            Err(Stop::Transient {
                reason,
                description,
            }) => {
                warn!(%reason, %description, "transient failure; the message will be redelivered");
                Outcome::transient(reason, description)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> ContentRef {
        ContentRef {
            container: "documents".into(),
            blob: "d".into(),
            content_type: None,
            size_bytes: None,
            sha256: None,
        }
    }

    #[test]
    fn content_checks() {
        let data = b"hello";
        assert_eq!(
            check_content(&reference(), data, "text/plain", 100).unwrap(),
            "hello"
        );
        let sized = ContentRef {
            size_bytes: Some(4),
            ..reference()
        };
        assert_eq!(
            check_content(&sized, data, "text/plain", 100)
                .unwrap_err()
                .0,
            "ContentSizeMismatch"
        );
        let hashed = ContentRef {
            sha256: Some("0".repeat(64)),
            ..reference()
        };
        assert_eq!(
            check_content(&hashed, data, "text/plain", 100)
                .unwrap_err()
                .0,
            "ContentHashMismatch"
        );
        let good_hash = ContentRef {
            sha256: Some(sha256_hex(data)),
            ..reference()
        };
        assert!(check_content(&good_hash, data, "text/plain", 100).is_ok());
        assert_eq!(
            check_content(&reference(), data, "application/pdf", 100)
                .unwrap_err()
                .0,
            "UnsupportedContentType"
        );
        assert_eq!(
            check_content(&reference(), &[0xff, 0xfe], "text/plain", 100)
                .unwrap_err()
                .0,
            "ContentNotText"
        );
        assert_eq!(
            check_content(&reference(), data, "text/plain", 2)
                .unwrap_err()
                .0,
            "ContentTooLarge"
        );
    }
}
