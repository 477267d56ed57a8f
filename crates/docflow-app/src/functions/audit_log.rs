//! Service Bus queue `audit` → POST /AuditLog
//!
//! The `audit` subscriptions of topics `documents` and `analysis-completed` forward every event
//! here (`ForwardTo`). Each event becomes one immutable record, written create-if-absent under
//! `{yyyy}/{mm}/{dd}/{time}-{event}-{documentId}.json` in the audit container, so the names list
//! chronologically and a redelivery finds its record already written.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{Span, info};

use super::context::PipelineContext;
use super::{Function, Invocation};
use crate::outcome::Outcome;
use crate::pipeline::events::{
    AnalysisCompleted, COMPLETED_SCHEMA, DocumentSubmitted, SUBMITTED_SCHEMA, parse, schema_of,
};
use crate::task::encode_segment;
use docflow_custom_handler::protocol::{InvocationRequest, InvocationResponse};

/// The trigger binding's name.
pub const TRIGGER_BINDING: &str = "message";
/// Schema id of an audit record.
pub const AUDIT_SCHEMA: &str = "docflow.audit.v1";

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Always [`AUDIT_SCHEMA`].
    pub schema: &'static str,
    /// `DocumentSubmitted` or `AnalysisCompleted`.
    pub event: &'static str,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The document.
    pub document_id: String,
    /// Correlation id.
    pub correlation_id: String,
    /// `accepted`, or the final status.
    pub outcome: String,
    /// The Service Bus `MessageId` of the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// When the record was written.
    pub recorded_at: DateTime<Utc>,
}

impl AuditRecord {
    /// The record's blob name: chronological, unique per event and document.
    pub fn blob_name(&self) -> String {
        format!(
            "{}-{}-{}.json",
            self.at.format("%Y/%m/%d/%Y%m%dT%H%M%S%.6fZ"),
            self.event,
            encode_segment(&self.document_id)
        )
    }
}

/// The AuditLog function.
pub struct AuditLog {
    ctx: PipelineContext,
}

impl AuditLog {
    /// The function over the pipeline's context.
    pub fn new(ctx: PipelineContext) -> Self {
        Self { ctx }
    }
}

/// The record of an event body, or why it has none.
fn record_of(body: &[u8], message_id: Option<String>) -> Result<AuditRecord, Outcome> {
    let now = Utc::now();
    let poison =
        |e: crate::pipeline::events::EventError| Outcome::poison(e.reason(), e.to_string());
    match schema_of(body).as_deref() {
        Some(SUBMITTED_SCHEMA) => {
            let e: DocumentSubmitted = parse(body, SUBMITTED_SCHEMA).map_err(poison)?;
            Ok(AuditRecord {
                schema: AUDIT_SCHEMA,
                event: "DocumentSubmitted",
                at: e.submitted_at,
                document_id: e.document_id,
                correlation_id: e.correlation_id,
                outcome: "accepted".into(),
                message_id,
                recorded_at: now,
            })
        }
        Some(COMPLETED_SCHEMA) => {
            let e: AnalysisCompleted = parse(body, COMPLETED_SCHEMA).map_err(poison)?;
            Ok(AuditRecord {
                schema: AUDIT_SCHEMA,
                event: "AnalysisCompleted",
                at: e.completed_at,
                document_id: e.document_id,
                correlation_id: e.correlation_id,
                outcome: e.status,
                message_id,
                recorded_at: now,
            })
        }
        other => Err(Outcome::poison(
            "UnknownSchema",
            format!(
                "audit events are {SUBMITTED_SCHEMA} or {COMPLETED_SCHEMA}, not {:?}",
                other.unwrap_or("(no schema)")
            ),
        )),
    }
}

#[async_trait]
impl Function for AuditLog {
    fn name(&self) -> &'static str {
        "AuditLog"
    }

    fn service_bus_source(&self) -> Option<super::Destination<'static>> {
        Some(super::Destination {
            entity: "audit",
            subscription: None,
        })
    }

    async fn invoke(&self, _invocation: &Invocation, request: InvocationRequest) -> Outcome {
        let message = match super::trigger_message(&request, TRIGGER_BINDING) {
            Ok(message) => message,
            Err(outcome) => return outcome,
        };
        let record = match record_of(&message.body, message.properties.message_id.clone()) {
            Ok(record) => record,
            Err(outcome) => return outcome,
        };
        Span::current().record("correlation_id", record.correlation_id.as_str());
        let name = record.blob_name();
        let container = self.ctx.store.containers().audit.clone();
        match self.ctx.store.create_json(&container, &name, &record).await {
            Ok(created) => {
                info!(%name, created, "audit record");
                Outcome::Done(InvocationResponse::new())
            }
            Err(e) => Outcome::transient("StorageUnavailable", e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_list_chronologically() {
        let body = br#"{"schema":"docflow.document-submitted.v1","documentId":"d/1","correlationId":"c","submittedAt":"2026-03-04T05:06:07.123456Z","content":{"container":"documents","blob":"b"},"options":{"analyses":[],"labels":[],"maxWords":1}}"#;
        let record = record_of(body, None).unwrap();
        assert_eq!(
            record.blob_name(),
            "2026/03/04/20260304T050607.123456Z-DocumentSubmitted-d%2F1.json"
        );
        assert!(record_of(b"{\"schema\":\"x\"}", None).is_err());
    }
}
