//! HTTP `GET /api/documents/{id?}` → GetDocument
//!
//! With an id: the document's status (`queued | processing | completed | partial | failed`),
//! every task with its attempts, model, token usage, timings and failure reason (dead-lettered
//! tasks with their dead-letter reason), and the results inline. Embeddings are large, so they
//! are inlined only with `?include=embed` (or `all`); otherwise the task names a `resultUrl`.
//! `?include=none` leaves every result out.
//!
//! Without an id: the most recent documents, newest first, `?limit=` (1–100, default 20) per
//! page and `?after=` the previous page's `next` cursor.

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::context::PipelineContext;
use super::http::{HttpCall, HttpFunction, HttpReply};
use crate::pipeline::state::{DocumentState, TaskStatus};
use crate::pipeline::store::StoreError;
use crate::task::TaskResult;

/// Default page size of the document list.
pub const DEFAULT_PAGE: usize = 20;
/// Largest page size of the document list.
pub const MAX_PAGE: usize = 100;

/// The GetDocument function.
pub struct GetDocument {
    ctx: PipelineContext,
}

/// Which results to inline.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Include {
    None,
    Default,
    All,
}

impl GetDocument {
    /// The function over the pipeline's context.
    pub fn new(ctx: PipelineContext) -> Self {
        Self { ctx }
    }

    async fn document(&self, id: &str, include: Include) -> Result<HttpReply, StoreError> {
        let Some(state) = self.ctx.store.state(id).await? else {
            return Ok(HttpReply::error(
                404,
                "DocumentNotFound",
                &format!("no document has the id {id:?}"),
                Some("id"),
            ));
        };
        let body = self.view(&state, include).await?;
        Ok(HttpReply::json(200, body).header("x-correlation-id", state.correlation_id.clone()))
    }

    /// The status document of one document.
    async fn view(&self, state: &DocumentState, include: Include) -> Result<Value, StoreError> {
        let url = self.ctx.status_url(&state.document_id);
        let mut tasks = Map::new();
        for (kind, entry) in &state.tasks {
            let mut task = serde_json::to_value(entry).expect("a task entry serializes");
            if entry.status == TaskStatus::Succeeded
                && include != Include::None
                && let Some(location) = &entry.result
            {
                if kind == "embed" && include != Include::All {
                    task["resultUrl"] = json!(format!("{url}?include=embed"));
                } else if let Some(result) = self
                    .ctx
                    .store
                    .read_json::<TaskResult>(&location.container, &location.blob)
                    .await?
                {
                    let mut output =
                        serde_json::to_value(&result.output).expect("an output serializes");
                    if let Value::Object(map) = &mut output {
                        map.remove("kind");
                    }
                    task["output"] = output;
                }
            }
            tasks.insert(kind.clone(), task);
        }
        Ok(json!({
            "id": state.document_id,
            "documentId": state.document_id,
            "correlationId": state.correlation_id,
            "traceId": state.trace_id,
            "status": state.status.as_str(),
            "submittedAt": state.submitted_at,
            "updatedAt": state.updated_at,
            "completedAt": state.completed_at,
            "deadlineAt": state.deadline_at,
            "contentType": state.source_content_type,
            "filename": state.filename,
            "sizeBytes": state.content.size_bytes,
            "sha256": state.content.sha256,
            "extraction": state.extraction,
            "textUrl": format!("{url}/text"),
            "options": state.options,
            "callbackUrl": state.callback_url,
            "usage": state.usage(),
            "tasks": tasks,
            "failed": state.failed_tasks(),
            "notification": state.notification,
            "statusUrl": url,
        }))
    }

    async fn list(&self, call: &HttpCall) -> Result<HttpReply, StoreError> {
        let limit = match call.query("limit") {
            None => DEFAULT_PAGE,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    return Ok(HttpReply::error(
                        400,
                        "InvalidOption",
                        &format!("limit must be a whole number from 1 to {MAX_PAGE}"),
                        Some("limit"),
                    ));
                }
            },
        };
        let page = self.ctx.store.recent(call.query("after"), limit).await?;
        let mut documents = Vec::new();
        for entry in &page.entries {
            if let Some(state) = self.ctx.store.state(&entry.document_id).await? {
                documents.push(json!({
                    "id": state.document_id,
                    "status": state.status.as_str(),
                    "correlationId": state.correlation_id,
                    "submittedAt": state.submitted_at,
                    "completedAt": state.completed_at,
                    "filename": state.filename,
                    "statusUrl": self.ctx.status_url(&state.document_id),
                }));
            }
        }
        let prefix = self.ctx.options.route_prefix.trim_matches('/');
        let next_url = page.next.as_ref().map(|cursor| {
            let cursor =
                percent_encoding::utf8_percent_encode(cursor, percent_encoding::NON_ALPHANUMERIC);
            format!("/{prefix}/documents?limit={limit}&after={cursor}")
        });
        Ok(HttpReply::json(
            200,
            json!({"documents": documents, "next": page.next, "nextUrl": next_url}),
        ))
    }
}

#[async_trait]
impl HttpFunction for GetDocument {
    fn name(&self) -> &'static str {
        "GetDocument"
    }

    fn methods(&self) -> &'static [&'static str] {
        &["GET"]
    }

    fn route(&self) -> &'static str {
        "documents/{id?}"
    }

    async fn handle(&self, call: HttpCall) -> HttpReply {
        let include = match call.query("include") {
            None | Some("") | Some("results") => Include::Default,
            Some("none") => Include::None,
            Some("embed" | "all") => Include::All,
            Some(other) => {
                return HttpReply::error(
                    400,
                    "InvalidOption",
                    &format!("include must be results, embed, all or none, not {other:?}"),
                    Some("include"),
                );
            }
        };
        let result = match call.param("id") {
            Some(id) => self.document(id, include).await,
            None => self.list(&call).await,
        };
        result.unwrap_or_else(|e| HttpReply::storage_unavailable(&e))
    }
}
