//! A document's state record (`docflow.document.v1`) and the pure rules that move it: the
//! analysis manifest, merging task outcomes, deciding the final status. The store
//! ([`super::store`]) applies these rules with ETag-conditional writes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::events::{AnalysisOptions, FailedTask};
use super::extraction::{EXTRACT_TEXT_KIND, ExtractionInfo, ExtractionStatus};
use crate::ai::TokenUsage;
use crate::extract::ExtractionWarning;
use crate::task::{ContentRef, OutcomeStatus, ResultRef, TaskOutcome};

/// Schema id of a document state record.
pub const STATE_SCHEMA: &str = "docflow.document.v1";

/// Where a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentStatus {
    /// Accepted; the analysis has not started.
    Queued,
    /// Tasks are out.
    Processing,
    /// Every task succeeded.
    Completed,
    /// Some tasks succeeded, some failed or never reported.
    Partial,
    /// No task succeeded.
    Failed,
}

impl DocumentStatus {
    /// Whether the status is final.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Partial | Self::Failed)
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Partial => "partial",
            Self::Failed => "failed",
        }
    }
}

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Sent, no outcome yet.
    Pending,
    /// Result stored.
    Succeeded,
    /// Failed, with a reason.
    Failed,
}

/// Why a task failed, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFailure {
    /// Machine-readable reason.
    pub reason: String,
    /// What happened.
    pub description: String,
    /// True when the task's message went to the dead-letter queue of `ai-tasks`.
    #[serde(default)]
    pub dead_lettered: bool,
    /// The dead-letter reason Service Bus gives it, when dead-lettered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_reason: Option<String>,
}

/// One task of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEntry {
    /// `{documentId}:{kind}`.
    pub task_id: String,
    /// Where it is.
    pub status: TaskStatus,
    /// Deliveries and scheduled retries it took.
    #[serde(default)]
    pub attempts: u32,
    /// The model that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Tokens it spent.
    #[serde(default)]
    pub usage: TokenUsage,
    /// When it was sent.
    pub queued_at: DateTime<Utc>,
    /// When its outcome arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Time spent in the provider, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Where the result is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultRef>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskFailure>,
    /// The trace context its outcome carried: the fan-in links to every task's span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::telemetry::TraceContext>,
}

/// What became of the completion callback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationState {
    /// `delivered`, `failing` or `refused`.
    pub status: String,
    /// Attempts so far.
    pub attempts: u32,
    /// HTTP status of the last answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The analysis revision it is about.
    #[serde(default)]
    pub revision: u32,
}

/// The state record of one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentState {
    /// Always [`STATE_SCHEMA`].
    pub schema: String,
    /// The document.
    pub document_id: String,
    /// Correlation id of the submission.
    pub correlation_id: String,
    /// The id of the document's trace (its submission's), to find it in a trace viewer;
    /// absent when nothing traced the submission and no `traceparent` came with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Where it is.
    pub status: DocumentStatus,
    /// When it was accepted.
    pub submitted_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When the status became final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// The stored text.
    pub content: ContentRef,
    /// The submitted content type (`application/pdf`, …) before text extraction.
    pub source_content_type: String,
    /// The submitted file name, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// What was asked for.
    pub options: AnalysisOptions,
    /// Where to POST the analysis summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// The analysis manifest: every expected task, by kind. Empty until the analysis starts.
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskEntry>,
    /// When the analysis is finished whatever is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_at: Option<DateTime<Utc>>,
    /// The combined analysis, once final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<ResultRef>,
    /// `AnalysisCompleted` was accepted by Service Bus (for the current revision).
    #[serde(default)]
    pub completion_published: bool,
    /// How often the final status changed after it was first set: a failed task recovered by
    /// `docflow dlq resubmit` reopens the analysis with a new revision (and a new event).
    #[serde(default)]
    pub revision: u32,
    /// The completion callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationState>,
    /// How the text was obtained (absent on records written before docflow said so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction: Option<ExtractionInfo>,
}

/// What merging an outcome changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The outcome was recorded.
    Recorded,
    /// The task already had an outcome, or is not in the manifest: nothing changed.
    Unchanged,
}

/// The task id of a document's task of one kind.
pub fn task_id(document_id: &str, kind: &str) -> String {
    format!("{document_id}:{kind}")
}

impl DocumentState {
    /// Writes the manifest: one pending task per requested analysis. Idempotent: an existing
    /// manifest is kept as it is (a redelivered `DocumentSubmitted`).
    pub fn start_analysis(&mut self, now: DateTime<Utc>, deadline_at: DateTime<Utc>) -> bool {
        if !self.tasks.is_empty() || self.status.is_terminal() {
            return false;
        }
        for kind in &self.options.analyses {
            self.tasks.insert(
                kind.clone(),
                TaskEntry {
                    task_id: task_id(&self.document_id, kind),
                    status: TaskStatus::Pending,
                    attempts: 0,
                    model: None,
                    usage: TokenUsage::default(),
                    queued_at: now,
                    finished_at: None,
                    duration_ms: None,
                    result: None,
                    error: None,
                    trace: None,
                },
            );
        }
        self.deadline_at = Some(deadline_at);
        self.status = DocumentStatus::Processing;
        self.updated_at = now;
        true
    }

    /// Records a task outcome. The first outcome of a task wins and repeats change nothing,
    /// except that a success replaces a dead-lettered failure (a task resubmitted from the
    /// dead-letter queue after a fix). A success after the deadline stays late.
    pub fn merge(&mut self, outcome: &TaskOutcome, now: DateTime<Utc>) -> Merge {
        if outcome.kind == EXTRACT_TEXT_KIND {
            return self.merge_extraction(outcome, now);
        }
        let Some(entry) = self.tasks.get_mut(&outcome.kind) else {
            return Merge::Unchanged;
        };
        let recovers = entry.status == TaskStatus::Failed
            && entry.error.as_ref().is_some_and(|e| e.dead_lettered)
            && outcome.status == OutcomeStatus::Succeeded;
        if (entry.status != TaskStatus::Pending && !recovers) || entry.task_id != outcome.task_id {
            return Merge::Unchanged;
        }
        entry.error = None;
        entry.attempts = outcome.attempts.unwrap_or(1).max(1);
        entry.model = outcome.model.clone();
        entry.usage = outcome.usage;
        entry.finished_at = Some(now);
        entry.duration_ms = outcome.duration_ms;
        entry.trace = outcome.trace.clone();
        match outcome.status {
            OutcomeStatus::Succeeded => {
                entry.status = TaskStatus::Succeeded;
                entry.result = outcome.result.clone();
            }
            OutcomeStatus::Failed => {
                entry.status = TaskStatus::Failed;
                let error = outcome.error.clone().unwrap_or(crate::task::OutcomeError {
                    reason: "Failed".into(),
                    description: "the task failed without a reason".into(),
                });
                entry.error = Some(TaskFailure {
                    reason: error.reason,
                    description: error.description,
                    dead_lettered: outcome.dead_lettered,
                    dead_letter_reason: outcome
                        .dead_lettered
                        .then(|| "MaxDeliveryCountExceeded".to_string()),
                });
            }
        }
        self.updated_at = now;
        Merge::Recorded
    }

    /// A failed `extract_text` fails every analysis still pending: without text there is
    /// nothing to analyse. Its success is recorded by the step itself, not as an outcome.
    fn merge_extraction(&mut self, outcome: &TaskOutcome, now: DateTime<Utc>) -> Merge {
        let pending = self
            .extraction
            .as_ref()
            .is_some_and(|e| e.status == ExtractionStatus::Pending);
        if outcome.status != OutcomeStatus::Failed
            || !pending
            || outcome.task_id != task_id(&self.document_id, EXTRACT_TEXT_KIND)
        {
            return Merge::Unchanged;
        }
        let error = outcome.error.clone().unwrap_or(crate::task::OutcomeError {
            reason: "TextExtractionFailed".into(),
            description: "the text could not be extracted".into(),
        });
        if let Some(extraction) = &mut self.extraction {
            extraction.status = ExtractionStatus::Failed;
            extraction.warnings.push(ExtractionWarning::new(
                &error.reason,
                format!("OCR failed: {}", error.description),
            ));
        }
        for entry in self.tasks.values_mut() {
            if entry.status == TaskStatus::Pending {
                entry.status = TaskStatus::Failed;
                entry.finished_at = Some(now);
                entry.error = Some(TaskFailure {
                    reason: error.reason.clone(),
                    description: format!("the text could not be extracted: {}", error.description),
                    dead_lettered: outcome.dead_lettered,
                    dead_letter_reason: outcome
                        .dead_lettered
                        .then(|| "MaxDeliveryCountExceeded".to_string()),
                });
            }
        }
        self.updated_at = now;
        Merge::Recorded
    }

    /// Whether the text waits for OCR.
    pub fn awaits_ocr(&self) -> bool {
        self.extraction
            .as_ref()
            .is_some_and(|e| e.status == ExtractionStatus::Pending)
    }

    /// Whether every task of the manifest has an outcome.
    pub fn all_reported(&self) -> bool {
        !self.tasks.is_empty() && self.tasks.values().all(|t| t.status != TaskStatus::Pending)
    }

    /// Makes the status final: tasks still pending fail with `reason`. Returns false when it
    /// was already final.
    pub fn finalize(
        &mut self,
        now: DateTime<Utc>,
        reason: &str,
        description: &str,
        analysis: ResultRef,
    ) -> bool {
        if self.status.is_terminal() {
            return false;
        }
        for entry in self.tasks.values_mut() {
            if entry.status == TaskStatus::Pending {
                entry.status = TaskStatus::Failed;
                entry.finished_at = Some(now);
                entry.error = Some(TaskFailure {
                    reason: reason.into(),
                    description: description.into(),
                    dead_lettered: false,
                    dead_letter_reason: None,
                });
            }
        }
        self.status = self.final_status();
        self.completed_at = Some(now);
        self.updated_at = now;
        self.analysis = Some(analysis);
        true
    }

    /// The final status the tasks' outcomes add up to.
    fn final_status(&self) -> DocumentStatus {
        let succeeded = self
            .tasks
            .values()
            .filter(|t| t.status == TaskStatus::Succeeded)
            .count();
        if self.tasks.is_empty() || succeeded == 0 {
            DocumentStatus::Failed
        } else if succeeded == self.tasks.len() {
            DocumentStatus::Completed
        } else {
            DocumentStatus::Partial
        }
    }

    /// After a recovered task: when the final status the outcomes add up to differs from the
    /// recorded one, opens a new revision with it (to be published anew). `analysis` names the
    /// new revision's combined analysis.
    pub fn reopen(&mut self, now: DateTime<Utc>, analysis: impl Fn(u32) -> ResultRef) -> bool {
        if !self.status.is_terminal() || self.final_status() == self.status {
            return false;
        }
        self.revision += 1;
        self.status = self.final_status();
        self.completed_at = Some(now);
        self.updated_at = now;
        self.analysis = Some(analysis(self.revision));
        self.completion_published = false;
        true
    }

    /// Kinds that succeeded.
    pub fn succeeded_kinds(&self) -> Vec<String> {
        self.tasks
            .iter()
            .filter(|(_, t)| t.status == TaskStatus::Succeeded)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Tasks that failed, with their reasons.
    pub fn failed_tasks(&self) -> Vec<FailedTask> {
        self.tasks
            .iter()
            .filter_map(|(kind, t)| {
                let error = t.error.as_ref()?;
                (t.status == TaskStatus::Failed).then(|| FailedTask {
                    kind: kind.clone(),
                    reason: error.reason.clone(),
                    description: error.description.clone(),
                })
            })
            .collect()
    }

    /// Tokens spent on the document so far.
    pub fn usage(&self) -> TokenUsage {
        self.tasks
            .values()
            .fold(TokenUsage::default(), |acc, t| acc.plus(t.usage))
    }
}

#[cfg(test)]
mod tests;
