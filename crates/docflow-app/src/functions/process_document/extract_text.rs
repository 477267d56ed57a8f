//! The `extract_text` step: OCR of a scan, before the analyses.
//!
//! Each delivery:
//! 1. reads the document's state; when its text is already stored (a redelivery, or a crash
//!    after the state was written), it only sends the analyses again (same message ids, so
//!    duplicate detection drops repeats) and never calls OCR twice;
//! 2. reads the stored file (checked against its size and SHA-256);
//! 3. calls the OCR provider within its budget (requests per minute and a concurrency window
//!    that a `429` halves, as for the AI provider; a budget wait longer than the hold-in-place
//!    limit retries later): a `429` retries later after the service's `Retry-After`, a
//!    failure worth retrying retries later with backoff, a rejection is poison (the document
//!    then fails with the reason: every analysis is marked failed by the aggregator);
//! 4. stores the text as the document's claim-check payload, records how it was read in the
//!    state (pages, characters, a warning per page without text), then sends the analyses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::info;

use super::{Delivery, ProcessDocument, Stop};
use docflow_blob::BlobError;

use crate::ai::budget::{BudgetStore, RateHeaders, Reservation};
use crate::extract::Extraction;
use crate::functions::analyze_document::analysis_tasks;
use crate::functions::content::load_file;
use crate::functions::context::AI_TASKS_QUEUE;
use crate::ocr::{OcrError, OcrProvider};
use crate::pipeline::extraction::{ExtractionInfo, ExtractionStatus};
use crate::pipeline::state::DocumentState;
use crate::pipeline::store::DocumentStore;
use crate::task::{AiTask, TaskInput};
use docflow_custom_handler::protocol::InvocationResponse;

/// What the `extract_text` step needs beyond the AI tasks.
#[derive(Clone)]
pub struct TextExtraction {
    /// Reads scans.
    pub ocr: Arc<dyn OcrProvider>,
    /// The document's state and payloads.
    pub store: DocumentStore,
    /// The OCR service's rate budget.
    pub budget: Arc<dyn BudgetStore>,
}

impl ProcessDocument {
    /// One delivery of an `extract_text` task.
    pub(super) async fn extract_text(
        &self,
        task: &AiTask,
        _delivery: &Delivery<'_>,
    ) -> Result<InvocationResponse, Stop> {
        let Some(step) = &self.text else {
            return Err(poison(
                "OcrNotConfigured",
                "an extract_text task needs an OCR provider, and none is configured (DOCFLOW_OCR_PROVIDER)",
            ));
        };
        let state = self.state_of(step, &task.document_id).await?;
        let Some(extraction) = &state.extraction else {
            return Err(poison(
                "NothingToExtract",
                format!("document {} has no file waiting for OCR", task.document_id),
            ));
        };
        match extraction.status {
            ExtractionStatus::Done => {
                info!("text already stored; sending the analyses again");
                return self.send_analyses(&state).await;
            }
            ExtractionStatus::Failed => {
                return Err(poison(
                    "TextExtractionFailed",
                    "the document's text extraction has already failed",
                ));
            }
            ExtractionStatus::Pending => {}
        }
        let TaskInput::ContentRef(source) = &task.input else {
            return Err(poison(
                "InvalidTask",
                "an extract_text task references its file (input.contentRef)",
            ));
        };
        let content_type = source
            .content_type
            .clone()
            .unwrap_or_else(|| "application/pdf".into());
        let bytes = load_file(self.blobs.as_ref(), source, self.options.max_content_bytes).await?;
        let recognized = self.recognize(step, bytes, &content_type).await?;
        if recognized.text.trim().is_empty() {
            return Err(poison(
                "OcrFoundNoText",
                format!(
                    "{} recognised no text in the document ({} pages)",
                    step.ocr.name(),
                    recognized.pages.len()
                ),
            ));
        }
        let content = self
            .store_text(step, &task.document_id, &recognized.text)
            .await?;
        let mut info = ExtractionInfo::done(&recognized, Some(step.ocr.name()));
        info.source = Some(source.clone());
        let earlier = extraction.warnings.clone();
        let updated = step
            .store
            .update(&task.document_id, |s| {
                if !s.awaits_ocr() {
                    return false;
                }
                let mut info = info.clone();
                info.warnings.splice(0..0, earlier.iter().cloned());
                s.content = content.clone();
                s.extraction = Some(info);
                s.updated_at = chrono::Utc::now();
                true
            })
            .await
            .map_err(storage)?;
        let Some((state, _)) = updated else {
            return Err(poison(
                "DocumentNotFound",
                format!("document {} has no state record", task.document_id),
            ));
        };
        info!(
            pages = recognized.pages.len(),
            characters = recognized.text.chars().count(),
            provider = step.ocr.name(),
            "text recognised and stored"
        );
        self.send_analyses(&state).await
    }

    /// One OCR call within the service's budget: a short wait for it is spent in place, a
    /// longer one retries later.
    async fn recognize(
        &self,
        step: &TextExtraction,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<Extraction, Stop> {
        let reservation = self.admit(step).await?;
        let result = step.ocr.recognize(bytes, content_type).await;
        let now = Instant::now();
        match &result {
            Ok(_) => step
                .budget
                .settle(reservation, 0, &RateHeaders::default(), now),
            Err(OcrError::RateLimited { retry_after }) => step.budget.refused(
                reservation,
                &RateHeaders::default(),
                Some(*retry_after),
                now,
            ),
            Err(_) => step.budget.failed(reservation, now),
        }
        result.map_err(stop_of)
    }

    async fn admit(&self, step: &TextExtraction) -> Result<Reservation, Stop> {
        let mut waited = Duration::ZERO;
        loop {
            match step.budget.reserve(0, Instant::now()) {
                Ok(reservation) => return Ok(reservation),
                Err(wait) if waited + wait <= self.options.max_inline_retry_wait => {
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
                Err(wait) => {
                    return Err(Stop::RetryLater {
                        reason: "OcrBudgetExhausted",
                        description: format!(
                            "the OCR service's budget is used up for {wait:?}; trying again later"
                        ),
                        delay: wait,
                        rate_limited: true,
                        usage: Default::default(),
                    });
                }
            }
        }
    }

    /// Stores the text once. A concurrent delivery may have stored its own reading first:
    /// the reference then describes the stored one, so that it always matches its blob.
    async fn store_text(
        &self,
        step: &TextExtraction,
        document_id: &str,
        text: &str,
    ) -> Result<crate::task::ContentRef, Stop> {
        let mine = Bytes::from(text.to_owned());
        let sha256 = crate::blocking::sha256_hex(mine.clone()).await;
        let reference = step.store.payload_ref(document_id, mine.len(), sha256);
        let content_type = reference.content_type.as_deref().unwrap_or("text/plain");
        match step
            .store
            .blobs()
            .create_if_absent(&reference.container, &reference.blob, mine, content_type)
            .await
        {
            Ok(_) => Ok(reference),
            Err(BlobError::AlreadyExists { .. }) => {
                let stored = step
                    .store
                    .blobs()
                    .get(&reference.container, &reference.blob)
                    .await
                    .map_err(|e| storage(e.into()))?
                    .data;
                let size = stored.len();
                let sha256 = crate::blocking::sha256_hex(stored).await;
                Ok(step.store.payload_ref(document_id, size, sha256))
            }
            Err(e) => Err(storage(e.into())),
        }
    }

    async fn state_of(
        &self,
        step: &TextExtraction,
        document_id: &str,
    ) -> Result<DocumentState, Stop> {
        match step.store.state(document_id).await {
            Ok(Some(state)) => Ok(state),
            Ok(None) => Err(poison(
                "DocumentNotFound",
                format!("document {document_id} has no state record"),
            )),
            Err(e) => Err(storage(e)),
        }
    }

    /// Sends the document's analyses, now that its text is stored.
    async fn send_analyses(&self, state: &DocumentState) -> Result<InvocationResponse, Stop> {
        if state.status.is_terminal() {
            return Ok(InvocationResponse::new().log(format!(
                "document {} is already {}; no analysis sent",
                state.document_id,
                state.status.as_str()
            )));
        }
        let Some(bus) = &self.bus else {
            return Err(Stop::Transient {
                reason: "ServiceBusUnavailable",
                description: "the analyses cannot be sent without a Service Bus sender".into(),
            });
        };
        let tasks = analysis_tasks(state);
        bus.send_all(AI_TASKS_QUEUE, &tasks)
            .await
            .map_err(|e| Stop::Transient {
                reason: "ServiceBusUnavailable",
                description: e.to_string(),
            })?;
        Ok(InvocationResponse::new().log(format!(
            "document {}: text extracted, {} analyses sent",
            state.document_id,
            tasks.len()
        )))
    }
}

fn poison(reason: &str, description: impl Into<String>) -> Stop {
    Stop::Poison {
        reason: reason.into(),
        description: description.into(),
    }
}

fn storage(e: crate::pipeline::store::StoreError) -> Stop {
    Stop::Transient {
        reason: "StorageUnavailable",
        description: e.to_string(),
    }
}

/// What an OCR failure means for the task: the same rules as a provider's.
fn stop_of(e: OcrError) -> Stop {
    match e {
        OcrError::RateLimited { retry_after } => Stop::RetryLater {
            reason: "RateLimited",
            description: format!("the OCR service asked to wait {retry_after:?}"),
            delay: retry_after,
            rate_limited: true,
            usage: Default::default(),
        },
        OcrError::Transient(detail) => Stop::RetryLater {
            reason: "OcrUnavailable",
            description: detail,
            delay: std::time::Duration::ZERO,
            rate_limited: false,
            usage: Default::default(),
        },
        OcrError::Rejected { code, message } => poison(code, message),
    }
}
