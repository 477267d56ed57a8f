//! Service Bus queue `summary-chunks` (sessions, `SessionId` = document id) → POST /SummarizeChunk
//!
//! One step of a long document's refine summary: the chunk plus the running summary in, the
//! next running summary out. Sessions run one document's steps strictly in order while other
//! documents' steps run in parallel; each step sends the next only once it is done. Every step
//! is stored create-if-absent under `{taskId}:{chunkIndex}`, so a redelivered step does not
//! call the provider again. The last step stores the task's result and reports its outcome on
//! the `outcome` binding.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tracing::{Span, info, warn};

use super::content::{ContentError, load_text};
use super::context::SUMMARY_CHUNKS_QUEUE;
use super::last_delivery;
use super::process_document::{ProcessOptions, outcome_response, send_step};
use super::retry::{RetryCounts, RetryPlan, scheduled_copy};
use super::{Function, Invocation};
use crate::ai::{AiProvider, AiRequest, Operation, ProviderError, TaskOutput, TokenUsage};
use crate::outcome::Outcome;
use crate::pipeline::events::{CHUNK_STEP_SCHEMA, ChunkStep};
use crate::pipeline::store::DocumentStore;
use crate::task::{
    AiTask, OutcomeStatus, RESULT_SCHEMA, ResultRef, TaskIdentity, TaskInput, TaskOutcome,
    TaskResult, Work, result_blob_name,
};
use docflow_blob::BlobStore;
use docflow_custom_handler::protocol::{InvocationRequest, InvocationResponse, ServiceBusMessage};
use docflow_servicebus::MessageSender;

/// The trigger binding's name.
pub const TRIGGER_BINDING: &str = "message";

/// A finished step: the running summary after chunk `index`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// The running summary.
    pub summary: String,
    /// The model.
    pub model: String,
    /// Tokens spent by this and every earlier step.
    pub usage: TokenUsage,
}

/// The SummarizeChunk function.
pub struct SummarizeChunk {
    store: DocumentStore,
    ai: Arc<dyn AiProvider>,
    bus: Arc<dyn MessageSender>,
    options: ProcessOptions,
}

impl SummarizeChunk {
    /// The function over the store, the provider and the sender.
    pub fn new(
        store: DocumentStore,
        ai: Arc<dyn AiProvider>,
        bus: Arc<dyn MessageSender>,
        options: ProcessOptions,
    ) -> Self {
        Self {
            store,
            ai,
            bus,
            options,
        }
    }

    fn blobs(&self) -> &dyn BlobStore {
        self.store.blobs().as_ref()
    }

    async fn step(&self, step: &ChunkStep, message: &ServiceBusMessage) -> Outcome {
        let Some(span) = step.chunks.get(step.index).copied() else {
            return Outcome::poison(
                "InvalidChunkStep",
                format!("step {} of {} chunks", step.index, step.chunks.len()),
            );
        };
        let location = self.store.step_ref(&step.task_id, step.index);
        let record = match self
            .store
            .read_json::<StepRecord>(&location.container, &location.blob)
            .await
        {
            Ok(Some(record)) => {
                info!(
                    index = step.index,
                    "step already done; not calling the provider again"
                );
                record
            }
            Ok(None) => match self.run(step, span, message).await {
                Ok(record) => record,
                Err(outcome) => return outcome,
            },
            Err(e) => return Outcome::transient("StorageUnavailable", e.to_string()),
        };
        if step.index + 1 < step.chunks.len() {
            let next = ChunkStep {
                index: step.index + 1,
                running_summary: record.summary.clone(),
                usage: record.usage,
                trace: crate::telemetry::messaging::for_message(
                    super::context::SUMMARY_CHUNKS_QUEUE,
                ),
                ..step.clone()
            };
            return match send_step(self.bus.as_ref(), &next).await {
                Ok(()) => Outcome::Done(InvocationResponse::new().log(format!(
                    "task {}: chunk {} of {} summarised",
                    step.task_id,
                    step.index + 1,
                    step.chunks.len()
                ))),
                Err(e) => Outcome::transient("ServiceBusUnavailable", e),
            };
        }
        self.finish(step, record, message).await
    }

    /// Summarises one chunk into the running summary and stores the step.
    async fn run(
        &self,
        step: &ChunkStep,
        span: crate::pipeline::events::Span,
        message: &ServiceBusMessage,
    ) -> Result<StepRecord, Outcome> {
        let input = TaskInput::ContentRef(step.content.clone());
        let text = load_text(self.blobs(), &input, self.options.max_content_bytes)
            .await
            .map_err(|e| match e {
                ContentError::Poison(reason, description) => Outcome::poison(reason, description),
                ContentError::Storage(e) => Outcome::transient("StorageUnavailable", e.to_string()),
            })?;
        let chunk = text.get(span.start..span.end).ok_or_else(|| {
            Outcome::poison("InvalidChunkStep", "the chunk is outside the document")
        })?;
        let prompt = if step.running_summary.is_empty() {
            chunk.to_string()
        } else {
            format!(
                "Summary of the document so far:\n{}\n\nThe document continues:\n{chunk}",
                step.running_summary
            )
        };
        let started = Instant::now();
        let request = AiRequest {
            operation: Operation::Summarize {
                max_words: step.max_words,
            },
            text: prompt,
        };
        let answer = match self.ai.run(&request).await {
            Ok(answer) => answer,
            Err(ProviderError::Rejected { reason, detail }) => {
                return Err(self.fail(step, reason, &detail, message));
            }
            Err(e) => return Err(self.retry_later(step, message, e).await),
        };
        let TaskOutput::Summarize { summary } = answer.output else {
            return Err(self.fail(step, "InvalidAnswer", "not a summary", message));
        };
        let record = StepRecord {
            summary,
            model: answer.model,
            usage: TokenUsage::new(
                step.usage.input_tokens + answer.usage.input_tokens,
                step.usage.output_tokens + answer.usage.output_tokens,
            ),
        };
        info!(
            index = step.index,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "chunk summarised"
        );
        let location = self.store.step_ref(&step.task_id, step.index);
        match self
            .store
            .create_json(&location.container, &location.blob, &record)
            .await
        {
            Ok(true) => Ok(record),
            Ok(false) => Ok(self
                .store
                .read_json(&location.container, &location.blob)
                .await
                .ok()
                .flatten()
                .unwrap_or(record)),
            Err(e) => Err(Outcome::transient("StorageUnavailable", e.to_string())),
        }
    }

    async fn retry_later(
        &self,
        step: &ChunkStep,
        message: &ServiceBusMessage,
        error: ProviderError,
    ) -> Outcome {
        let (wait, usage) = match &error {
            ProviderError::RetryAfter { delay, .. } => (Some(*delay), TokenUsage::default()),
            ProviderError::Unusable { usage, .. } => (None, *usage),
            _ => (None, TokenUsage::default()),
        };
        let plan = self
            .options
            .retry_policy()
            .plan(RetryCounts::of(message), wait, usage);
        let (counts, delay) = match plan {
            RetryPlan::Later { counts, delay } => (counts, delay),
            RetryPlan::Exhausted { .. } => {
                return self.fail(step, "RetriesExhausted", &error.to_string(), message);
            }
        };
        let key = format!("{}:{}", step.task_id, step.index);
        let copy = scheduled_copy(message, &key, step.correlation_id.as_deref(), counts, delay);
        match self.bus.send(SUMMARY_CHUNKS_QUEUE, &copy).await {
            Ok(()) => Outcome::Done(
                InvocationResponse::new()
                    .log(format!("step {key}: {error}; retry scheduled in {delay:?}")),
            ),
            Err(e) => Outcome::transient("ServiceBusUnavailable", e.to_string()),
        }
    }

    /// The summarize task fails: its outcome goes out and the step completes.
    fn fail(
        &self,
        step: &ChunkStep,
        reason: &str,
        detail: &str,
        message: &ServiceBusMessage,
    ) -> Outcome {
        warn!(%reason, %detail, "refine summary failed");
        let identity = TaskIdentity {
            task_id: step.task_id.clone(),
            document_id: step.document_id.clone(),
            kind: "summarize".into(),
            correlation_id: step.correlation_id.clone(),
        };
        let mut outcome = TaskOutcome::failed(&identity, reason, detail);
        outcome.attempts = Some(RetryCounts::of(message).attempts(message));
        Outcome::Done(outcome_response(&outcome))
    }

    async fn finish(
        &self,
        step: &ChunkStep,
        record: StepRecord,
        message: &ServiceBusMessage,
    ) -> Outcome {
        let location = ResultRef {
            container: self.options.results_container.clone(),
            blob: result_blob_name(&step.task_id),
        };
        let result = TaskResult {
            schema: RESULT_SCHEMA.into(),
            task_id: step.task_id.clone(),
            document_id: step.document_id.clone(),
            correlation_id: step.correlation_id.clone(),
            model: record.model,
            usage: record.usage,
            output: TaskOutput::Summarize {
                summary: record.summary,
            },
            truncated: false,
        };
        let stored = match self
            .store
            .create_json(&location.container, &location.blob, &result)
            .await
        {
            Ok(created) => created,
            Err(e) => return Outcome::transient("StorageUnavailable", e.to_string()),
        };
        let task = AiTask {
            task_id: step.task_id.clone(),
            document_id: step.document_id.clone(),
            correlation_id: step.correlation_id.clone(),
            work: Work::Ai(Operation::Summarize {
                max_words: step.max_words,
            }),
            input: TaskInput::ContentRef(step.content.clone()),
        };
        let mut outcome = TaskOutcome::succeeded(&task, &result, location, !stored);
        outcome.attempts = Some(RetryCounts::of(message).attempts(message));
        debug_assert_eq!(outcome.status, OutcomeStatus::Succeeded);
        Outcome::Done(outcome_response(&outcome).log(format!(
            "task {} succeeded: refine summary of {} chunks",
            step.task_id,
            step.chunks.len()
        )))
    }
}

#[async_trait]
impl Function for SummarizeChunk {
    fn name(&self) -> &'static str {
        "SummarizeChunk"
    }

    fn service_bus_source(&self) -> Option<super::Destination<'static>> {
        Some(super::Destination {
            entity: super::context::SUMMARY_CHUNKS_QUEUE,
            subscription: None,
        })
    }

    async fn invoke(&self, _invocation: &Invocation, request: InvocationRequest) -> Outcome {
        let (message, step): (_, ChunkStep) =
            match super::trigger_event(&request, TRIGGER_BINDING, CHUNK_STEP_SCHEMA) {
                Ok(found) => found,
                Err(outcome) => return outcome,
            };
        let span = Span::current();
        span.record("task_id", step.task_id.as_str());
        if let Some(c) = &step.correlation_id {
            span.record("correlation_id", c.as_str());
        }
        let outcome = self.step(&step, &message).await;
        if let Some((reason, description)) = outcome.abandon_reason()
            && last_delivery::is_last(&message, self.options.max_delivery_count)
        {
            let identity = TaskIdentity {
                task_id: step.task_id.clone(),
                document_id: step.document_id.clone(),
                kind: "summarize".into(),
                correlation_id: step.correlation_id.clone(),
            };
            last_delivery::report_failed(
                self.bus.as_ref(),
                &message,
                &identity,
                reason,
                description,
            )
            .await;
        }
        outcome
    }
}
