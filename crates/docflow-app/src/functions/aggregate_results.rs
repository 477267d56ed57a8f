//! Service Bus queue `task-results` → POST /AggregateResults
//!
//! Fan-in: merges each `ai.task-outcome.v1` into the document's state with ETag-conditional
//! writes (the first outcome of a task wins; repeats change nothing). When every expected task
//! has an outcome, or the analysis deadline arrives first, the status becomes final in the same
//! conditional write; then the combined analysis is written (create-if-absent) and
//! `AnalysisCompleted` is published with `MessageId` = `{documentId}:completed`, so that
//! concurrent aggregators and redeliveries publish it effectively once.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{Span, info, warn};

use super::context::{COMPLETED_TOPIC, PipelineContext};
use super::{Function, Invocation};
use crate::ai::{TaskOutput, TokenUsage};
use crate::outcome::Outcome;
use crate::pipeline::events::{
    AnalysisCompleted, AnalysisDeadline, COMPLETED_SCHEMA, COMPLETED_SUBJECT, DEADLINE_SCHEMA,
    FailedTask, parse, schema_of,
};
use crate::pipeline::state::{DocumentState, Merge, TaskFailure};
use crate::pipeline::store::StoreError;
use crate::task::{OUTCOME_SCHEMA, TaskOutcome, TaskResult};
use docflow_custom_handler::protocol::{InvocationRequest, InvocationResponse};
use docflow_servicebus::Message;

/// The trigger binding's name.
pub const TRIGGER_BINDING: &str = "message";
/// Schema id of the combined analysis.
pub const ANALYSIS_SCHEMA: &str = "docflow.analysis.v1";

/// The combined analysis of a document, written once when its status is final.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// Always [`ANALYSIS_SCHEMA`].
    pub schema: &'static str,
    /// The document.
    pub document_id: String,
    /// Correlation id.
    pub correlation_id: String,
    /// Final status.
    pub status: &'static str,
    /// When it became final.
    pub completed_at: Option<DateTime<Utc>>,
    /// Tokens spent on the document.
    pub usage: TokenUsage,
    /// Every task with its result or failure.
    pub tasks: BTreeMap<String, AnalysisTask>,
}

/// One task in the combined analysis.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTask {
    /// `succeeded` or `failed`.
    pub status: String,
    /// The model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Tokens spent.
    pub usage: TokenUsage,
    /// The result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<TaskOutput>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskFailure>,
}

/// The AggregateResults function.
pub struct AggregateResults {
    ctx: PipelineContext,
}

impl AggregateResults {
    /// The function over the pipeline's context.
    pub fn new(ctx: PipelineContext) -> Self {
        Self { ctx }
    }

    async fn on_outcome(&self, outcome: &TaskOutcome) -> Result<Outcome, StoreError> {
        let now = Utc::now();
        let analysis = self.ctx.store.analysis_ref(&outcome.document_id);
        let store = &self.ctx.store;
        let revision_ref = |n: u32| store.analysis_revision_ref(&outcome.document_id, n);
        let mut merged = Merge::Unchanged;
        let updated = self
            .ctx
            .store
            .update(&outcome.document_id, |state| {
                merged = state.merge(outcome, now);
                let finished = if state.status.is_terminal() {
                    merged == Merge::Recorded && state.reopen(now, revision_ref)
                } else {
                    state.all_reported()
                        && state.finalize(now, "Missing", "no outcome", analysis.clone())
                };
                merged == Merge::Recorded || finished
            })
            .await?;
        let Some((state, _)) = updated else {
            warn!(document_id = %outcome.document_id, "outcome for a document without a state record; ignored");
            return Ok(Outcome::Done(InvocationResponse::new().log(format!(
                "outcome of {} ignored: document {} is not a pipeline document",
                outcome.task_id, outcome.document_id
            ))));
        };
        info!(kind = %outcome.kind, status = ?outcome.status, ?merged, document_status = state.status.as_str(), "outcome merged");
        self.complete_if_final(state).await
    }

    async fn on_deadline(&self, deadline: &AnalysisDeadline) -> Result<Outcome, StoreError> {
        let now = Utc::now();
        let analysis = self.ctx.store.analysis_ref(&deadline.document_id);
        let description = format!(
            "no outcome arrived before the analysis deadline ({})",
            deadline.deadline_at
        );
        let updated = self
            .ctx
            .store
            .update(&deadline.document_id, |state| {
                state.finalize(now, "DeadlineExceeded", &description, analysis.clone())
            })
            .await?;
        let Some((state, changed)) = updated else {
            warn!(document_id = %deadline.document_id, "deadline for a document without a state record; ignored");
            return Ok(Outcome::Done(InvocationResponse::new()));
        };
        if changed {
            warn!(
                document_status = state.status.as_str(),
                "analysis deadline reached before every outcome"
            );
        }
        self.complete_if_final(state).await
    }

    /// Writes the analysis and publishes `AnalysisCompleted`, unless already published.
    async fn complete_if_final(&self, state: DocumentState) -> Result<Outcome, StoreError> {
        if !state.status.is_terminal() || state.completion_published {
            return Ok(Outcome::Done(InvocationResponse::new()));
        }
        let location = state
            .analysis
            .clone()
            .unwrap_or_else(|| self.ctx.store.analysis_ref(&state.document_id));
        let analysis = self.combine(&state).await?;
        self.ctx
            .store
            .create_json(&location.container, &location.blob, &analysis)
            .await?;
        // The fan-in: the invocation that completes the document links to every task's span.
        let span = tracing::Span::current();
        for trace in state.tasks.values().filter_map(|t| t.trace.as_ref()) {
            trace.link(&span);
        }
        let event = AnalysisCompleted {
            schema: COMPLETED_SCHEMA.into(),
            document_id: state.document_id.clone(),
            correlation_id: state.correlation_id.clone(),
            status: state.status.as_str().into(),
            completed_at: state.completed_at.unwrap_or_else(Utc::now),
            analysis: location,
            succeeded: state.succeeded_kinds(),
            failed: state.failed_tasks(),
            revision: state.revision,
            trace: crate::telemetry::messaging::for_message(super::context::COMPLETED_TOPIC),
        };
        let message_id = match state.revision {
            0 => format!("{}:completed", state.document_id),
            n => format!("{}:completed:r{n}", state.document_id),
        };
        let revision = state.revision;
        let message = Message::new(serde_json::to_vec(&event).expect("an event serializes"));
        let message = crate::telemetry::stamp(message, event.trace.as_ref())
            .with_message_id(message_id)
            .with_correlation_id(&state.correlation_id)
            .with_subject(COMPLETED_SUBJECT)
            .with_content_type("application/json");
        if let Err(e) = self.ctx.bus.send(COMPLETED_TOPIC, &message).await {
            return Ok(Outcome::transient("ServiceBusUnavailable", e.to_string()));
        }
        let published = self
            .ctx
            .store
            .update(&state.document_id, |s| {
                s.revision == revision && !std::mem::replace(&mut s.completion_published, true)
            })
            .await?;
        if revision == 0 && published.is_some_and(|(_, changed)| changed) {
            // The first completion, counted once (a reopened analysis was counted before).
            let took = state
                .completed_at
                .and_then(|at| (at - state.submitted_at).to_std().ok());
            crate::metrics::global().document_completed(state.status.as_str(), took);
        }
        let failed: Vec<&FailedTask> = event.failed.iter().collect();
        info!(status = %event.status, failed = failed.len(), "analysis completed; AnalysisCompleted published");
        Ok(Outcome::Done(InvocationResponse::new().log(format!(
            "document {} {}",
            state.document_id, event.status
        ))))
    }

    async fn combine(&self, state: &DocumentState) -> Result<Analysis, StoreError> {
        let mut tasks = BTreeMap::new();
        for (kind, entry) in &state.tasks {
            let output = match &entry.result {
                Some(r) => self
                    .ctx
                    .store
                    .read_json::<TaskResult>(&r.container, &r.blob)
                    .await?
                    .map(|r| r.output),
                None => None,
            };
            tasks.insert(
                kind.clone(),
                AnalysisTask {
                    status: format!("{:?}", entry.status).to_lowercase(),
                    model: entry.model.clone(),
                    usage: entry.usage,
                    output,
                    error: entry.error.clone(),
                },
            );
        }
        Ok(Analysis {
            schema: ANALYSIS_SCHEMA,
            document_id: state.document_id.clone(),
            correlation_id: state.correlation_id.clone(),
            status: state.status.as_str(),
            completed_at: state.completed_at,
            usage: state.usage(),
            tasks,
        })
    }
}

#[async_trait]
impl Function for AggregateResults {
    fn name(&self) -> &'static str {
        "AggregateResults"
    }

    fn service_bus_source(&self) -> Option<super::Destination<'static>> {
        Some(super::Destination {
            entity: super::context::TASK_RESULTS_QUEUE,
            subscription: None,
        })
    }

    async fn invoke(&self, _invocation: &Invocation, request: InvocationRequest) -> Outcome {
        let message = match super::trigger_message(&request, TRIGGER_BINDING) {
            Ok(message) => message,
            Err(outcome) => return outcome,
        };
        let span = Span::current();
        let result = match schema_of(&message.body).as_deref() {
            Some(DEADLINE_SCHEMA) => {
                match parse::<AnalysisDeadline>(&message.body, DEADLINE_SCHEMA) {
                    Ok(deadline) => {
                        span.record("correlation_id", deadline.correlation_id.as_str());
                        self.on_deadline(&deadline).await
                    }
                    Err(e) => return Outcome::poison(e.reason(), e.to_string()),
                }
            }
            _ => match parse::<TaskOutcome>(&message.body, OUTCOME_SCHEMA) {
                Ok(outcome) => {
                    if let Some(c) = &outcome.correlation_id {
                        span.record("correlation_id", c.as_str());
                    }
                    span.record("task_id", outcome.task_id.as_str());
                    self.on_outcome(&outcome).await
                }
                Err(e) => return Outcome::poison(e.reason(), e.to_string()),
            },
        };
        result.unwrap_or_else(|e| Outcome::transient("StorageUnavailable", e.to_string()))
    }
}
