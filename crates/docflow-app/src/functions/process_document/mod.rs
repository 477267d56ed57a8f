//! Service Bus queue `ai-tasks` → POST /ProcessDocument
//!
//! Runs one `ai.task.v1` task against the AI provider, stores the result once under a name
//! derived from the task id, and sends the `ai.task-outcome.v1` to `task-results` through the
//! `outcome` output binding. In order, each delivery:
//! 1. fails fast when a poison record exists for this task and this exact body;
//! 2. validates the task (unknown schema, kind or parameters → poison);
//! 3. completes without the provider when the result already exists (redelivery, duplicate);
//! 4. reads the input (missing or corrupt content → poison);
//! 5. hands a long document's summary to the refine chain on `summary-chunks`, embeds a long
//!    document chunk by chunk, and runs the other kinds on its first chunk;
//! 6. calls the provider: short rate limits wait in place; longer ones and transient failures
//!    retry later (a scheduled copy, the original completed); rejections → poison;
//! 7. stores the result with create-if-absent, so concurrent deliveries store one result.
//!
//! An `extract_text` task (a scan) runs OCR instead, stores the text and sends the analyses
//! ([`extract_text`]).
//!
//! Every task ends with an outcome: a failure past the retry caps is a `failed` outcome on the
//! output binding, and the last delivery before dead-lettering sends one directly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Semaphore;
use tracing::{Span, info, warn};

mod extract_text;
mod failures;
mod long;

pub use self::extract_text::TextExtraction;

pub use self::long::send_step;

use super::content::{ContentError, load_text};
use super::context::SUMMARY_CHUNKS_QUEUE;
use super::last_delivery;
use super::retry::{RetryCounts, RetryPolicy};
use super::{Function, Invocation};
use crate::ai::{AiOutput, AiProvider, AiRequest, Operation, ProviderError, TokenUsage};
use crate::last_errors::LastErrors;
use crate::outcome::Outcome;
use crate::pipeline::chunking::estimate_tokens;
use crate::poison::{PoisonRecords, poison_key, sha256_hex};
use crate::task::{
    AiTask, ResultRef, TaskOutcome, TaskResult, Work, parse_task, result_blob_name, task_id_of,
};
use docflow_blob::{BlobError, BlobStore};
use docflow_custom_handler::protocol::{InvocationRequest, InvocationResponse, ServiceBusMessage};
use docflow_servicebus::MessageSender;

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
    /// Longest rate-limit wait spent in place; a longer one retries later instead.
    pub max_inline_retry_wait: Duration,
    /// Provider calls running at once in this process.
    pub max_concurrent_ai_calls: usize,
    /// Largest referenced document read, in bytes.
    pub max_content_bytes: u64,
    /// `MaxDeliveryCount` of the trigger queue, to recognise a message's last delivery
    /// (`None`: unknown, so no failed outcome is sent then).
    pub max_delivery_count: Option<u32>,
    /// The provider's context budget in tokens: longer documents are chunked.
    pub context_tokens: usize,
    /// Retries later for transient provider failures before the task fails.
    pub max_transient_retries: u32,
    /// Retries later for rate limits before the task fails.
    pub max_rate_limit_retries: u32,
    /// First backoff of a transient failure; doubled per failure.
    pub retry_base: Duration,
    /// Longest backoff.
    pub retry_cap: Duration,
}

impl ProcessOptions {
    /// The caps and pacing of retries later.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_transient: self.max_transient_retries,
            max_rate_limited: self.max_rate_limit_retries,
            base: self.retry_base,
            cap: self.retry_cap,
        }
    }
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
            // Fits the smallest common context windows (8k) with room for prompt and answer.
            context_tokens: 6_000,
            max_transient_retries: 6,
            // A rate limit is the endpoint's pace, not a fault: be patient, but not forever.
            max_rate_limit_retries: 50,
            retry_base: Duration::from_secs(2),
            retry_cap: Duration::from_secs(300),
        }
    }
}

/// The queue the trigger reads (`ProcessDocument/function.json`).
pub const TRIGGER_QUEUE: &str = "ai-tasks";
/// Most rate-limit waits in place in one invocation, whatever the provider asks.
const MAX_INLINE_WAITS: u32 = 8;
/// Shortest rate-limit wait in place (a provider asking for none gets this).
const MIN_INLINE_WAIT: Duration = Duration::from_millis(100);
/// The queue outcomes go to (`ProcessDocument/function.json`).
pub const OUTCOME_QUEUE: &str = last_delivery::OUTCOME_QUEUE;

/// The ProcessDocument function.
pub struct ProcessDocument {
    blobs: Arc<dyn BlobStore>,
    ai: Arc<dyn AiProvider>,
    poison: PoisonRecords,
    last_errors: LastErrors,
    options: ProcessOptions,
    ai_slots: Semaphore,
    bus: Option<Arc<dyn MessageSender>>,
    text: Option<TextExtraction>,
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
    /// Try again after `delay` without burning a delivery.
    RetryLater {
        reason: &'static str,
        description: String,
        delay: Duration,
        rate_limited: bool,
        /// Tokens the failed call spent.
        usage: TokenUsage,
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

impl From<ContentError> for Stop {
    fn from(e: ContentError) -> Self {
        match e {
            ContentError::Poison(reason, description) => Stop::Poison {
                reason: reason.into(),
                description,
            },
            ContentError::Storage(e) => e.into(),
        }
    }
}

/// A retry later, as [`Stop::RetryLater`] carries it.
struct Retry {
    reason: &'static str,
    description: String,
    delay: Duration,
    rate_limited: bool,
    usage: TokenUsage,
}

/// One delivery's context.
struct Delivery<'a> {
    message: &'a ServiceBusMessage,
    counts: RetryCounts,
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
            last_errors: LastErrors::new(blobs.clone(), options.state_container.clone()),
            ai_slots: Semaphore::new(options.max_concurrent_ai_calls.max(1)),
            blobs,
            ai,
            options,
            bus: None,
            text: None,
        }
    }

    /// Runs the `extract_text` step (OCR of scans) with `text`. Without it, an `extract_text`
    /// task is poison (`OcrNotConfigured`): the document fails with that reason.
    pub fn with_text_extraction(mut self, text: TextExtraction) -> Self {
        self.text = Some(text);
        self
    }

    /// Sends scheduled retries, refine steps and last-delivery outcomes over `bus`. Without
    /// one, retries later degrade to redeliveries and long summaries to their first chunk.
    pub fn with_bus(mut self, bus: Arc<dyn MessageSender>) -> Self {
        self.bus = Some(bus);
        self
    }

    async fn process(
        &self,
        task: &AiTask,
        delivery: &Delivery<'_>,
    ) -> Result<InvocationResponse, Stop> {
        let location = ResultRef {
            container: self.options.results_container.clone(),
            blob: result_blob_name(&task.task_id),
        };
        let operation = match &task.work {
            Work::ExtractText => return self.extract_text(task, delivery).await,
            Work::Ai(operation) => operation,
        };
        if let Some(existing) = self.stored_result(&location).await? {
            info!(task_id = %task.task_id, "result already stored; completing without a provider call");
            return Ok(self.done(task, &existing, location, true, delivery, None));
        }
        let text = load_text(
            self.blobs.as_ref(),
            &task.input,
            self.options.max_content_bytes,
        )
        .await?;
        let started = Instant::now();
        let (answer, truncated) = if estimate_tokens(&text) <= self.options.context_tokens {
            (self.call_provider(operation.clone(), text).await?, false)
        } else {
            match self.long_document(task, operation, &text).await? {
                Some(answer) => answer,
                None => {
                    return Ok(InvocationResponse::new().log(format!(
                        "task {}: long document; refine summary started on {SUMMARY_CHUNKS_QUEUE}",
                        task.task_id
                    )));
                }
            }
        };
        let elapsed = started.elapsed();
        let mut result = TaskResult::new(task, answer);
        result.truncated = truncated;
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
            Ok(_) => Ok(self.done(task, &result, location, false, delivery, Some(elapsed))),
            Err(BlobError::AlreadyExists { .. }) => {
                warn!(task_id = %task.task_id, "a concurrent delivery stored the result first; reporting that one");
                let winner = self.stored_result(&location).await?.unwrap_or(result);
                Ok(self.done(task, &winner, location, true, delivery, None))
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
        delivery: &Delivery<'_>,
        elapsed: Option<Duration>,
    ) -> InvocationResponse {
        let mut outcome = TaskOutcome::succeeded(task, result, location, reused);
        outcome.attempts = Some(delivery.counts.attempts(delivery.message));
        let failed = delivery.counts.failed_usage;
        outcome.usage = outcome.usage.plus(failed);
        outcome.duration_ms = elapsed.map(|d| d.as_millis() as u64);
        let line = format!(
            "task {} succeeded with {} ({} tokens{})",
            task.task_id,
            result.model,
            result.usage.total_tokens,
            if reused { ", result reused" } else { "" }
        );
        outcome_response(&outcome).log(line)
    }

    /// Calls the provider, waiting in place for short rate-limit delays.
    async fn call_provider(&self, operation: Operation, text: String) -> Result<AiOutput, Stop> {
        let request = AiRequest { operation, text };
        let mut waited = Duration::ZERO;
        let mut waits = 0;
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
                    if waits < MAX_INLINE_WAITS
                        && waited + delay.max(MIN_INLINE_WAIT)
                            <= self.options.max_inline_retry_wait =>
                {
                    // A provider asking for no wait at all still gets a pause: never a hot loop.
                    let delay = delay.max(MIN_INLINE_WAIT);
                    waits += 1;
                    info!(delay_ms = delay.as_millis() as u64, %detail, "provider rate limited; waiting in place");
                    tokio::time::sleep(delay).await;
                    waited += delay;
                }
                Err(ProviderError::RetryAfter { delay, detail }) => {
                    return Err(Stop::RetryLater {
                        reason: "RateLimited",
                        description: format!("provider asked to wait {delay:?}: {detail}"),
                        delay,
                        rate_limited: true,
                        usage: TokenUsage::default(),
                    });
                }
                Err(ProviderError::Transient { detail }) => {
                    return Err(Stop::RetryLater {
                        reason: "ProviderUnavailable",
                        description: detail,
                        delay: Duration::ZERO,
                        rate_limited: false,
                        usage: TokenUsage::default(),
                    });
                }
                Err(ProviderError::Unusable {
                    reason,
                    detail,
                    usage,
                }) => {
                    return Err(Stop::RetryLater {
                        reason,
                        description: detail,
                        delay: Duration::ZERO,
                        rate_limited: false,
                        usage,
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
}

/// A reply carrying one outcome on the `outcome` binding.
pub fn outcome_response(outcome: &TaskOutcome) -> InvocationResponse {
    let outcome = TaskOutcome {
        trace: crate::telemetry::messaging::for_message(
            crate::functions::context::TASK_RESULTS_QUEUE,
        ),
        ..outcome.clone()
    };
    let body = serde_json::to_string(&outcome).expect("an outcome serializes");
    InvocationResponse::new().service_bus_messages(OUTCOME_BINDING, [body])
}

#[async_trait]
impl Function for ProcessDocument {
    fn name(&self) -> &'static str {
        "ProcessDocument"
    }

    fn service_bus_source(&self) -> Option<crate::functions::Destination<'static>> {
        Some(crate::functions::Destination {
            entity: crate::functions::context::AI_TASKS_QUEUE,
            subscription: None,
        })
    }

    async fn invoke(&self, _invocation: &Invocation, request: InvocationRequest) -> Outcome {
        let message = match super::trigger_message(&request, TRIGGER_BINDING) {
            Ok(message) => message,
            Err(outcome) => return outcome,
        };
        let outcome = self.handle(&message).await;
        if let Some((reason, description)) = outcome.abandon_reason() {
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
                // Another message with this body: its own first delivery keeps the reason under
                // its own id too, so that dead-letter triage shows it for every such message.
                if message.properties.delivery_count.unwrap_or(1) <= 1 {
                    let task_id = task_id_of(&message.body);
                    self.remember(
                        message,
                        task_id.as_deref(),
                        &record.reason,
                        &record.description,
                        false,
                    )
                    .await;
                }
                return Outcome::Poison {
                    reason: record.reason,
                    description: record.description,
                    known: true,
                };
            }
            Ok(_) => {}
            Err(e) => return Outcome::transient("StorageUnavailable", e.to_string()),
        }
        // Only a redelivery can find its own retries exhausted: the first delivery reads nothing.
        if let Some(id) = message
            .properties
            .message_id
            .as_ref()
            .filter(|_| message.properties.delivery_count.unwrap_or(1) > 1)
        {
            match self.last_errors.find(id).await {
                Ok(Some(last)) if last.exhausted => {
                    warn!(reason = %last.reason, "retries exhausted earlier; failing fast");
                    return Outcome::transient(&last.reason, last.description);
                }
                Ok(_) => {}
                Err(e) => return Outcome::transient("StorageUnavailable", e.to_string()),
            }
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
        let delivery = Delivery {
            message,
            counts: RetryCounts::of(message),
        };
        match self.process(&task, &delivery).await {
            Ok(response) => Outcome::Done(response),
            Err(Stop::Poison {
                reason,
                description,
            }) => {
                self.record_poison(&key, &body_sha256, message, reason, description)
                    .await
            }
            Err(Stop::RetryLater {
                reason,
                description,
                delay,
                rate_limited,
                usage,
            }) => {
                let retry = Retry {
                    reason,
                    description,
                    delay,
                    rate_limited,
                    usage,
                };
                self.retry_later(&task, &delivery, retry).await
            }
            Err(Stop::Transient {
                reason,
                description,
            }) => {
                warn!(%reason, %description, "transient failure; the message will be redelivered");
                self.remember(message, Some(&task.task_id), reason, &description, false)
                    .await;
                Outcome::transient(reason, description)
            }
        }
    }
}
