//! HTTP `GET /api/documents/{id}/text` → GetDocumentText
//!
//! The text that was analysed, as `text/plain; charset=utf-8`: what a PDF's text layer, a Word
//! file, a web page, an e-mail or OCR yielded, so that a user can see what the model read. The
//! document's status (`GET /api/documents/{id}`) says how it was obtained (`extraction`). A scan
//! still waiting for OCR is a `409` with `Retry-After`; one whose OCR failed is a `409` too, with
//! the reason.

use async_trait::async_trait;

use super::context::PipelineContext;
use super::http::{HttpCall, HttpFunction, HttpReply};
use crate::pipeline::extraction::ExtractionStatus;
use crate::pipeline::store::StoreError;
use docflow_blob::BlobError;

/// The GetDocumentText function.
pub struct GetDocumentText {
    ctx: PipelineContext,
}

impl GetDocumentText {
    /// The function over the pipeline's context.
    pub fn new(ctx: PipelineContext) -> Self {
        Self { ctx }
    }

    async fn text(&self, id: &str) -> Result<HttpReply, StoreError> {
        let Some(state) = self.ctx.store.state(id).await? else {
            return Ok(HttpReply::error(
                404,
                "DocumentNotFound",
                &format!("no document has the id {id:?}"),
                Some("id"),
            ));
        };
        match state.extraction.as_ref().map(|e| e.status) {
            Some(ExtractionStatus::Pending) => {
                return Ok(HttpReply::error(
                    409,
                    "TextNotReady",
                    "the document's text is being recognised (OCR); try again shortly",
                    Some("id"),
                )
                .header("Retry-After", self.ctx.options.retry_after_secs.to_string()));
            }
            Some(ExtractionStatus::Failed) => {
                return Ok(HttpReply::error(
                    409,
                    "TextExtractionFailed",
                    "the document's text could not be recognised; its status says why",
                    Some("id"),
                ));
            }
            Some(ExtractionStatus::Done) | None => {}
        }
        let content = &state.content;
        let blob = match self
            .ctx
            .store
            .blobs()
            .get(&content.container, &content.blob)
            .await
        {
            Ok(blob) => blob,
            Err(BlobError::NotFound { .. }) => {
                return Ok(HttpReply::error(
                    410,
                    "TextGone",
                    "the document's stored text no longer exists",
                    Some("id"),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let text = String::from_utf8_lossy(&blob.data).into_owned();
        Ok(HttpReply::text(200, text)
            .header("x-correlation-id", state.correlation_id.clone())
            .header(
                "x-docflow-extraction",
                state
                    .extraction
                    .as_ref()
                    .map_or("plainText", |e| e.method.as_str()),
            ))
    }
}

#[async_trait]
impl HttpFunction for GetDocumentText {
    fn name(&self) -> &'static str {
        "GetDocumentText"
    }

    fn methods(&self) -> &'static [&'static str] {
        &["GET"]
    }

    fn route(&self) -> &'static str {
        "documents/{id}/text"
    }

    async fn handle(&self, call: HttpCall) -> HttpReply {
        let Some(id) = call.param("id") else {
            return HttpReply::error(400, "MissingId", "the document id is required", Some("id"));
        };
        self.text(id)
            .await
            .unwrap_or_else(|e| HttpReply::storage_unavailable(&e))
    }
}
