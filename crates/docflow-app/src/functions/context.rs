//! What the pipeline's functions share: the document store, the Service Bus sender, the
//! entity names and the options read from settings.

use std::sync::Arc;
use std::time::Duration;

use crate::pipeline::store::DocumentStore;
use docflow_servicebus::MessageSender;

/// Topic of `DocumentSubmitted`.
pub const DOCUMENTS_TOPIC: &str = "documents";
/// Queue of AI tasks.
pub const AI_TASKS_QUEUE: &str = "ai-tasks";
/// Queue of task outcomes and deadlines.
pub const TASK_RESULTS_QUEUE: &str = "task-results";
/// Session queue of refine-summary steps.
pub const SUMMARY_CHUNKS_QUEUE: &str = "summary-chunks";
/// Topic of `AnalysisCompleted`.
pub const COMPLETED_TOPIC: &str = "analysis-completed";

/// Options of the pipeline's functions.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Largest submission body, in bytes (413 beyond).
    pub max_submission_bytes: usize,
    /// `Retry-After` of a `202`, in seconds: when a status poll is worth making.
    pub retry_after_secs: u64,
    /// How long an analysis may take before it is finished with what it has.
    pub analysis_deadline: Duration,
    /// The route prefix of HTTP triggers (`extensions.http.routePrefix`).
    pub route_prefix: String,
    /// Secret of callback signatures; unsigned callbacks when absent.
    pub callback_secret: Option<String>,
    /// Timeout of one callback.
    pub callback_timeout: Duration,
    /// Callbacks may reach loopback and private networks (tests, private deployments).
    pub callback_allow_private: bool,
    /// The OCR provider's name when one is configured: scans and images are then accepted
    /// and read by the `extract_text` step; without one they are refused with a `422`.
    pub ocr_provider: Option<String>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            // Far above any text document; large PDFs belong in blob storage first.
            max_submission_bytes: 10 * 1024 * 1024,
            retry_after_secs: 2,
            analysis_deadline: Duration::from_secs(30 * 60),
            route_prefix: "api".into(),
            callback_secret: None,
            callback_timeout: Duration::from_secs(10),
            callback_allow_private: false,
            ocr_provider: None,
        }
    }
}

/// Shared by the pipeline's functions.
#[derive(Clone)]
pub struct PipelineContext {
    /// Payloads, state, results.
    pub store: DocumentStore,
    /// Direct sends (ids, sessions, schedules).
    pub bus: Arc<dyn MessageSender>,
    /// Options.
    pub options: PipelineOptions,
}

impl PipelineContext {
    /// The status URL of a document.
    pub fn status_url(&self, document_id: &str) -> String {
        let prefix = self.options.route_prefix.trim_matches('/');
        let id =
            percent_encoding::utf8_percent_encode(document_id, percent_encoding::NON_ALPHANUMERIC);
        if prefix.is_empty() {
            format!("/documents/{id}")
        } else {
            format!("/{prefix}/documents/{id}")
        }
    }
}
