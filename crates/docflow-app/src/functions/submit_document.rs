//! HTTP `POST /api/documents` → SubmitDocument
//!
//! Reads the document (text, Markdown, PDF, Word, HTML, e-mail, JSON or multipart), extracts
//! its text off the reactor, stores the text once as a claim-check blob (a scan: the file
//! itself, for the `extract_text` step's OCR), creates the document's state record with how
//! the text was read, publishes `DocumentSubmitted` to topic `documents` (`MessageId` =
//! document id) and answers `202 Accepted` with `Location`. Nothing is written until the
//! submission has been read and validated in full.
//!
//! `Idempotency-Key`: the first request under a key claims it for its document; a retry with
//! the same request resumes whatever the first did not finish and answers with the same id,
//! starting nothing new; a different request under the same key is a `409`.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use serde_json::json;
use tracing::{Span, error, info};

use super::context::{DOCUMENTS_TOPIC, PipelineContext};
use super::http::{HttpCall, HttpFunction, HttpReply};
use crate::extract::EXTRACTION_TIME_LIMIT;
use crate::pipeline::correlation::correlation_id;
use crate::pipeline::events::{DocumentSubmitted, SUBMITTED_SCHEMA, SUBMITTED_SUBJECT};
use crate::pipeline::extraction::ExtractionInfo;
use crate::pipeline::intake::{Intake, take_in};
use crate::pipeline::state::{DocumentState, DocumentStatus, STATE_SCHEMA};
use crate::pipeline::store::{IdempotencyRecord, IndexEntry, StoreError};
use crate::pipeline::submission::{HttpInput, Submission, SubmitError, read_submission};
use crate::poison::to_hex;
use docflow_servicebus::Message;

/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// The SubmitDocument function.
pub struct SubmitDocument {
    ctx: PipelineContext,
}

impl SubmitDocument {
    /// The function over the pipeline's context.
    pub fn new(ctx: PipelineContext) -> Self {
        Self { ctx }
    }

    async fn submit(&self, input: HttpInput) -> Result<HttpReply, HttpReply> {
        let correlation_id = correlation_id(&input);
        Span::current().record("correlation_id", correlation_id.as_str());
        let key = idempotency_key(&input)?;
        let submission = read_submission(&input, self.ctx.options.max_submission_bytes)
            .await
            .map_err(|e| HttpReply::error(e.status, e.code, &e.message, Some(&e.field)))?;
        let intake = self.take_in(&submission).await?;
        let (document_id, correlation_id, replay) = match key {
            None => (new_document_id(), correlation_id, false),
            Some(key) => {
                let owned = input.clone();
                let fingerprint = crate::blocking::off_the_reactor(input.body.len(), move || {
                    request_fingerprint(&owned)
                })
                .await;
                let mine = IdempotencyRecord {
                    document_id: new_document_id(),
                    correlation_id,
                    request_sha256: fingerprint.clone(),
                    created_at: Utc::now(),
                };
                let record = self
                    .ctx
                    .store
                    .claim_idempotency(&key, &mine)
                    .await
                    .map_err(unavailable)?;
                if record.request_sha256 != fingerprint {
                    return Err(HttpReply::error(
                        409,
                        "IdempotencyKeyReused",
                        &format!(
                            "Idempotency-Key was already used for a different request (document {})",
                            record.document_id
                        ),
                        Some("Idempotency-Key"),
                    ));
                }
                let replay = record.document_id != mine.document_id;
                (record.document_id, record.correlation_id, replay)
            }
        };
        Span::current().record("correlation_id", correlation_id.as_str());
        let state = self
            .accept(&document_id, &correlation_id, submission, intake)
            .await
            .map_err(unavailable)?;
        if state.status == DocumentStatus::Queued {
            self.publish(&state).await?;
        }
        info!(document_id = %document_id, replay, "document accepted");
        Ok(self.accepted(&state, replay))
    }

    /// Stores the payload, the state record and the index entry, each once.
    async fn accept(
        &self,
        document_id: &str,
        correlation_id: &str,
        submission: Submission,
        intake: Intake,
    ) -> Result<DocumentState, StoreError> {
        let store = &self.ctx.store;
        // A scan is kept as it is (its text comes later, from OCR); text is stored as text.
        let (bytes, mut extraction, scan_type) = match intake {
            Intake::Text(extraction) => {
                let info = ExtractionInfo::done(&extraction, None);
                (Bytes::from(extraction.text), info, None)
            }
            Intake::Ocr {
                bytes,
                content_type,
                warnings,
            } => {
                let provider = self.ctx.options.ocr_provider.as_deref().unwrap_or("ocr");
                let info = ExtractionInfo::pending_ocr(provider, warnings);
                (bytes, info, Some(content_type))
            }
        };
        let sha256 = crate::blocking::sha256_hex(bytes.clone()).await;
        let content = match &scan_type {
            Some(content_type) => store.source_ref(document_id, content_type, bytes.len(), sha256),
            None => store.payload_ref(document_id, bytes.len(), sha256),
        };
        extraction.source = scan_type.map(|_| content.clone());
        store.store_payload(&content, bytes).await?;
        let now = Utc::now();
        let state = store
            .create_state(&DocumentState {
                schema: STATE_SCHEMA.into(),
                document_id: document_id.to_string(),
                correlation_id: correlation_id.to_string(),
                trace_id: crate::telemetry::TraceContext::current_or(
                    crate::telemetry::messaging::incoming().as_ref(),
                )
                .map(|t| t.trace_id().to_owned()),
                status: DocumentStatus::Queued,
                submitted_at: now,
                updated_at: now,
                completed_at: None,
                content,
                source_content_type: submission.content_type,
                filename: submission.filename,
                options: submission.options,
                callback_url: submission.callback_url,
                tasks: Default::default(),
                deadline_at: None,
                analysis: None,
                completion_published: false,
                revision: 0,
                notification: None,
                extraction: Some(extraction),
            })
            .await?;
        if state.submitted_at == now {
            // This submission created the record (an existing one is older).
            crate::metrics::global().document_accepted();
        }
        store
            .index(&IndexEntry {
                document_id: document_id.to_string(),
                submitted_at: state.submitted_at,
            })
            .await?;
        Ok(state)
    }

    async fn publish(&self, state: &DocumentState) -> Result<(), HttpReply> {
        let event = DocumentSubmitted {
            schema: SUBMITTED_SCHEMA.into(),
            document_id: state.document_id.clone(),
            correlation_id: state.correlation_id.clone(),
            submitted_at: state.submitted_at,
            content: state.content.clone(),
            options: state.options.clone(),
            trace: crate::telemetry::messaging::for_message(super::context::DOCUMENTS_TOPIC),
        };
        let body = serde_json::to_vec(&event).expect("an event serializes");
        let message = crate::telemetry::stamp(Message::new(body), event.trace.as_ref())
            .with_message_id(&state.document_id)
            .with_correlation_id(&state.correlation_id)
            .with_subject(SUBMITTED_SUBJECT)
            .with_content_type("application/json");
        self.ctx
            .bus
            .send(DOCUMENTS_TOPIC, &message)
            .await
            .map_err(|e| {
                error!(error = %e, document_id = %state.document_id, "publishing DocumentSubmitted failed");
                HttpReply::error(
                    503,
                    "ServiceBusUnavailable",
                    &format!("the document was stored but could not be queued: {e}; retry with the same Idempotency-Key to resume"),
                    None,
                )
                .header("Retry-After", "5")
            })
    }

    /// The document's text, or its file for OCR: extracted off the reactor, within
    /// [`EXTRACTION_TIME_LIMIT`].
    async fn take_in(&self, submission: &Submission) -> Result<Intake, HttpReply> {
        let reply = |e: SubmitError| HttpReply::error(e.status, e.code, &e.message, Some(&e.field));
        let payload = submission.payload.clone();
        let ocr = self.ctx.options.ocr_provider.is_some();
        let deadline = std::time::Instant::now() + EXTRACTION_TIME_LIMIT;
        let work = tokio::task::spawn_blocking(move || take_in(&payload, ocr, deadline));
        // The extractors stop themselves at the deadline; this is the backstop.
        match tokio::time::timeout(EXTRACTION_TIME_LIMIT * 2, work).await {
            Ok(Ok(result)) => result.map_err(reply),
            Ok(Err(e)) => {
                error!(error = %e, "text extraction panicked");
                Err(HttpReply::error(
                    422,
                    "UnreadableDocument",
                    "the document cannot be read: its text extraction failed",
                    Some("body"),
                ))
            }
            Err(_) => Err(HttpReply::error(
                422,
                "ExtractionTimedOut",
                "reading the document took too long; the file is too complex or damaged",
                Some("body"),
            )),
        }
    }

    fn accepted(&self, state: &DocumentState, replay: bool) -> HttpReply {
        let url = self.ctx.status_url(&state.document_id);
        HttpReply::json(
            202,
            json!({
                "id": state.document_id,
                "documentId": state.document_id,
                "correlationId": state.correlation_id,
                "status": state.status.as_str(),
                "statusUrl": url,
                "replayed": replay,
            }),
        )
        .header("Location", url)
        .header("Retry-After", self.ctx.options.retry_after_secs.to_string())
        .header("x-correlation-id", state.correlation_id.clone())
    }
}

fn new_document_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn unavailable(e: StoreError) -> HttpReply {
    error!(error = %e, "storage failed during a submission");
    HttpReply::error(
        503,
        "StorageUnavailable",
        &format!("the document could not be stored: {e}"),
        None,
    )
    .header("Retry-After", "5")
}

fn idempotency_key(input: &HttpInput) -> Result<Option<String>, HttpReply> {
    let Some(key) = input.header("idempotency-key") else {
        return Ok(None);
    };
    let key = key.trim();
    if key.is_empty()
        || key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS
        || key.chars().any(char::is_control)
    {
        return Err(HttpReply::error(
            400,
            "InvalidIdempotencyKey",
            &format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable characters"
            ),
            Some("Idempotency-Key"),
        ));
    }
    Ok(Some(key.to_string()))
}

/// What makes two requests "the same" under an idempotency key: content type, query, body.
/// Hashed in parts: the body is not copied.
fn request_fingerprint(input: &HttpInput) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update(input.header("content-type").unwrap_or("").as_bytes());
    for (k, v) in &input.query {
        hasher.update(format!("\n{k}={v}").as_bytes());
    }
    hasher.update(b"\n\n");
    hasher.update(&input.body);
    to_hex(&hasher.finalize())
}

#[async_trait]
impl HttpFunction for SubmitDocument {
    fn name(&self) -> &'static str {
        "SubmitDocument"
    }

    fn methods(&self) -> &'static [&'static str] {
        &["POST"]
    }

    fn route(&self) -> &'static str {
        "documents"
    }

    fn max_body_bytes(&self) -> usize {
        self.ctx.options.max_submission_bytes
    }

    async fn handle(&self, call: HttpCall) -> HttpReply {
        match self.submit(call.input).await {
            Ok(reply) | Err(reply) => reply,
        }
    }
}
