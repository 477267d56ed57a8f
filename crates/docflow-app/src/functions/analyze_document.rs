//! Service Bus topic `documents`, subscription `analyze` → POST /AnalyzeDocument
//!
//! Fan-out: writes the analysis manifest (the expected tasks) into the document's state,
//! sends one `ai.task.v1` per requested analysis to `ai-tasks` (`MessageId` = task id, so the
//! queue's duplicate detection drops repeats) and schedules the analysis deadline to
//! `task-results`. A redelivery finds the manifest written and sends the same messages with
//! the same ids and the same deadline: nothing the broker would not drop.
//!
//! A scan waiting for OCR gets its `extract_text` task instead; that step sends the analyses
//! once the text is stored.

use async_trait::async_trait;
use chrono::Utc;
use tracing::{Span, info, warn};

use super::context::{AI_TASKS_QUEUE, PipelineContext, TASK_RESULTS_QUEUE};
use super::{Function, Invocation};
use crate::outcome::Outcome;
use crate::pipeline::events::{
    AnalysisDeadline, DEADLINE_SCHEMA, DocumentSubmitted, SUBMITTED_SCHEMA,
};
use crate::pipeline::extraction::EXTRACT_TEXT_KIND;
use crate::pipeline::state::{DocumentState, task_id};
use crate::task::{TASK_SCHEMA, TaskMessage, TaskMessageInput, TaskParameters};
use docflow_custom_handler::protocol::{InvocationRequest, InvocationResponse};
use docflow_servicebus::Message;

/// The trigger binding's name.
pub const TRIGGER_BINDING: &str = "message";

/// The AnalyzeDocument function.
pub struct AnalyzeDocument {
    ctx: PipelineContext,
}

impl AnalyzeDocument {
    /// The function over the pipeline's context.
    pub fn new(ctx: PipelineContext) -> Self {
        Self { ctx }
    }

    async fn analyze(&self, event: &DocumentSubmitted) -> Outcome {
        let now = Utc::now();
        let deadline = now
            + chrono::Duration::from_std(self.ctx.options.analysis_deadline)
                .unwrap_or(chrono::Duration::MAX);
        let state = match self
            .ctx
            .store
            .update(&event.document_id, |s| s.start_analysis(now, deadline))
            .await
        {
            Ok(Some((state, _))) => state,
            Ok(None) => {
                return Outcome::poison(
                    "DocumentNotFound",
                    format!("document {} has no state record", event.document_id),
                );
            }
            Err(e) => return Outcome::transient("StorageUnavailable", e.to_string()),
        };
        if state.status.is_terminal() {
            info!("analysis already finished; nothing to send");
            return Outcome::Done(InvocationResponse::new());
        }
        let tasks = if state.awaits_ocr() {
            vec![extract_text_task(&state)]
        } else {
            analysis_tasks(&state)
        };
        if let Err(e) = self.ctx.bus.send_all(AI_TASKS_QUEUE, &tasks).await {
            return Outcome::transient("ServiceBusUnavailable", e.to_string());
        }
        let deadline_at = state.deadline_at.unwrap_or(deadline);
        let trace = crate::telemetry::messaging::for_message(TASK_RESULTS_QUEUE);
        let body = serde_json::to_vec(&AnalysisDeadline {
            schema: DEADLINE_SCHEMA.into(),
            document_id: state.document_id.clone(),
            correlation_id: state.correlation_id.clone(),
            deadline_at,
            trace: trace.clone(),
        })
        .expect("a deadline serializes");
        let deadline_message = crate::telemetry::stamp(Message::new(body), trace.as_ref())
            .with_message_id(format!("{}:deadline", state.document_id))
            .with_correlation_id(&state.correlation_id)
            .with_content_type("application/json")
            .with_scheduled_enqueue_time(deadline_at);
        if let Err(e) = self
            .ctx
            .bus
            .send(TASK_RESULTS_QUEUE, &deadline_message)
            .await
        {
            return Outcome::transient("ServiceBusUnavailable", e.to_string());
        }
        info!(tasks = tasks.len(), %deadline_at, "analysis started");
        Outcome::Done(InvocationResponse::new().log(format!(
            "document {}: {} tasks sent, deadline {deadline_at}",
            state.document_id,
            tasks.len()
        )))
    }
}

/// The `extract_text` task of a scan: OCR of the stored file, before the analyses.
pub(crate) fn extract_text_task(state: &DocumentState) -> Message {
    let task_id = task_id(&state.document_id, EXTRACT_TEXT_KIND);
    let source = state
        .extraction
        .as_ref()
        .and_then(|e| e.source.clone())
        .unwrap_or_else(|| state.content.clone());
    let trace = crate::telemetry::messaging::for_message(AI_TASKS_QUEUE);
    let body = TaskMessage {
        schema: TASK_SCHEMA,
        task_id: task_id.clone(),
        document_id: state.document_id.clone(),
        correlation_id: Some(state.correlation_id.clone()),
        kind: EXTRACT_TEXT_KIND.into(),
        input: TaskMessageInput {
            content_ref: source,
        },
        parameters: TaskParameters::default(),
        trace: trace.clone(),
    }
    .to_body();
    crate::telemetry::stamp(Message::new(body), trace.as_ref())
        .with_message_id(task_id)
        .with_correlation_id(&state.correlation_id)
        .with_content_type("application/json")
}

/// One `ai-tasks` message per task of the manifest.
pub(crate) fn analysis_tasks(state: &DocumentState) -> Vec<Message> {
    state
        .tasks
        .iter()
        .map(|(kind, entry)| {
            let parameters = match kind.as_str() {
                "summarize" => TaskParameters {
                    max_words: Some(state.options.max_words),
                    labels: None,
                },
                "classify" => TaskParameters {
                    max_words: None,
                    labels: Some(state.options.labels.clone()),
                },
                _ => TaskParameters::default(),
            };
            let trace = crate::telemetry::messaging::for_message(AI_TASKS_QUEUE);
            let body = TaskMessage {
                schema: TASK_SCHEMA,
                task_id: entry.task_id.clone(),
                document_id: state.document_id.clone(),
                correlation_id: Some(state.correlation_id.clone()),
                kind: kind.clone(),
                input: TaskMessageInput {
                    content_ref: state.content.clone(),
                },
                parameters,
                trace: trace.clone(),
            }
            .to_body();
            crate::telemetry::stamp(Message::new(body), trace.as_ref())
                .with_message_id(&entry.task_id)
                .with_correlation_id(&state.correlation_id)
                .with_content_type("application/json")
        })
        .collect()
}

#[async_trait]
impl Function for AnalyzeDocument {
    fn name(&self) -> &'static str {
        "AnalyzeDocument"
    }

    fn service_bus_source(&self) -> Option<super::Destination<'static>> {
        Some(super::Destination {
            entity: super::context::DOCUMENTS_TOPIC,
            subscription: Some("analyze"),
        })
    }

    async fn invoke(&self, _invocation: &Invocation, request: InvocationRequest) -> Outcome {
        let (_, event): (_, DocumentSubmitted) =
            match super::trigger_event(&request, TRIGGER_BINDING, SUBMITTED_SCHEMA) {
                Ok(found) => found,
                Err(outcome) => {
                    warn!(?outcome, "DocumentSubmitted is unreadable");
                    return outcome;
                }
            };
        let span = Span::current();
        span.record("correlation_id", event.correlation_id.as_str());
        span.record("task_id", event.document_id.as_str());
        self.analyze(&event).await
    }
}
