//! The audit record of a dead-letter action: who resubmitted or discarded which messages of
//! which entity, written like the AuditLog function's records (create-if-absent, under
//! `{yyyy}/{mm}/{dd}/{time}-{event}-{id}.json` in the audit container, so the names list
//! chronologically beside the pipeline's events).

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Selection, Settled};
use crate::functions::audit_log::AUDIT_SCHEMA;
use docflow_blob::{BlobError, BlobStore};

/// Resubmit or discard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterAction {
    /// Send back where it came from, then remove.
    Resubmit,
    /// Remove.
    Discard,
}

impl DeadLetterAction {
    /// The audit event's name.
    pub fn event(self) -> &'static str {
        match self {
            Self::Resubmit => "DeadLettersResubmitted",
            Self::Discard => "DeadLettersDiscarded",
        }
    }
}

/// One message an action took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditedMessage {
    /// Its sequence number in the dead-letter queue.
    pub sequence_number: i64,
    /// Its MessageId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The resubmitted copy's MessageId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_message_id: Option<String>,
}

/// The audit record of one action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterAudit {
    /// Always the audit schema (`docflow.audit.v1`).
    pub schema: String,
    /// `DeadLettersResubmitted` or `DeadLettersDiscarded`.
    pub event: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The queue or subscription.
    pub entity: String,
    /// The selection, in words.
    pub selection: String,
    /// Who acted: `docflow dlq`, `dashboard`, …
    pub actor: String,
    /// How many messages.
    pub count: usize,
    /// Which.
    pub messages: Vec<AuditedMessage>,
}

/// Where audit records go.
#[derive(Clone)]
pub struct AuditTrail {
    blobs: Arc<dyn BlobStore>,
    container: String,
}

impl AuditTrail {
    /// Records in `container` (the app's audit container).
    pub fn new(blobs: Arc<dyn BlobStore>, container: impl Into<String>) -> Self {
        Self {
            blobs,
            container: container.into(),
        }
    }

    /// Writes the record of `settled`; returns its blob name.
    pub async fn record(
        &self,
        action: DeadLetterAction,
        entity: &str,
        selection: &Selection,
        settled: &Settled,
        actor: &str,
    ) -> Result<String, BlobError> {
        let record = DeadLetterAudit {
            schema: AUDIT_SCHEMA.into(),
            event: action.event().into(),
            at: Utc::now(),
            entity: entity.to_string(),
            selection: selection.describe(),
            actor: actor.to_string(),
            count: settled.count,
            messages: settled
                .messages
                .iter()
                .map(|(seq, id, copy)| AuditedMessage {
                    sequence_number: *seq,
                    message_id: id.clone(),
                    copy_message_id: copy.clone(),
                })
                .collect(),
        };
        let name = format!(
            "{}-{}-{}.json",
            record.at.format("%Y/%m/%d/%Y%m%dT%H%M%S%.6fZ"),
            record.event,
            uuid::Uuid::new_v4().simple()
        );
        let bytes = serde_json::to_vec_pretty(&record).expect("an audit record serializes");
        self.blobs
            .create_if_absent(
                &self.container,
                &name,
                Bytes::from(bytes),
                "application/json",
            )
            .await?;
        Ok(name)
    }

    /// The dead-letter records written so far, oldest first.
    pub async fn dead_letter_records(&self) -> Result<Vec<DeadLetterAudit>, BlobError> {
        let mut out = Vec::new();
        for item in self.blobs.list(&self.container, "").await? {
            if !item.name.contains("-DeadLetters") {
                continue;
            }
            if let Ok(blob) = self.blobs.get(&self.container, &item.name).await
                && let Ok(record) = serde_json::from_slice(&blob.data)
            {
                out.push(record);
            }
        }
        Ok(out)
    }
}
