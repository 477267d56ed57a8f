//! The last error of each failing message, by `MessageId`. A custom handler cannot dead-letter
//! a message with a reason of its own (the host only abandons), so Service Bus records
//! `MaxDeliveryCountExceeded`; this record keeps the real reason (`InvalidModelOutput: missing
//! field label`), for `docflow dlq` and the status API to show, and marks a message whose
//! retries are exhausted so that its remaining deliveries fail fast without calling the model.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::task::encode_segment;
use docflow_blob::{BlobError, BlobStore};

/// Schema id of a last-error record.
pub const LAST_ERROR_SCHEMA: &str = "docflow.last-error.v1";

/// The last error of one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    /// Always [`LAST_ERROR_SCHEMA`].
    pub schema: String,
    /// The message.
    pub message_id: String,
    /// Its task, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Machine-readable reason.
    pub reason: String,
    /// What happened.
    pub description: String,
    /// The retries are used up: every further delivery fails fast.
    #[serde(default)]
    pub exhausted: bool,
    /// The delivery that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_count: Option<u32>,
    /// When.
    pub recorded_at: DateTime<Utc>,
}

impl LastError {
    /// A record made now.
    pub fn new(
        message_id: &str,
        task_id: Option<String>,
        reason: &str,
        description: &str,
        exhausted: bool,
        delivery_count: Option<u32>,
    ) -> Self {
        Self {
            schema: LAST_ERROR_SCHEMA.into(),
            message_id: message_id.to_string(),
            task_id,
            reason: reason.to_string(),
            description: description.to_string(),
            exhausted,
            delivery_count,
            recorded_at: Utc::now(),
        }
    }

    /// `Reason: description`, as tables show it.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.reason, self.description)
    }
}

/// The records, on the blob store.
#[derive(Clone)]
pub struct LastErrors {
    blobs: Arc<dyn BlobStore>,
    container: String,
}

impl LastErrors {
    /// Records kept in `container` under `last-errors/`.
    pub fn new(blobs: Arc<dyn BlobStore>, container: impl Into<String>) -> Self {
        Self {
            blobs,
            container: container.into(),
        }
    }

    fn name(message_id: &str) -> String {
        format!("last-errors/{}.json", encode_segment(message_id))
    }

    /// The record of a message, if any (an unreadable one counts as none).
    pub async fn find(&self, message_id: &str) -> Result<Option<LastError>, BlobError> {
        match self
            .blobs
            .get(&self.container, &Self::name(message_id))
            .await
        {
            Ok(blob) => Ok(serde_json::from_slice(&blob.data).ok()),
            Err(BlobError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes (or replaces) a message's record.
    pub async fn record(&self, record: &LastError) -> Result<(), BlobError> {
        let bytes = serde_json::to_vec_pretty(record).expect("a last-error record serializes");
        self.blobs
            .put(
                &self.container,
                &Self::name(&record.message_id),
                Bytes::from(bytes),
                "application/json",
            )
            .await
            .map(|_| ())
    }
}
