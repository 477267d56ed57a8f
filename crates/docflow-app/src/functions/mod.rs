//! The Functions of the app, one file each, and the registry the router dispatches to.
//!
//! A function's name is its folder name at the app root (`ProcessDocument/function.json`),
//! which is also the path the host POSTs to.

pub mod aggregate_results;
pub mod analyze_document;
pub mod audit_log;
pub mod content;
pub mod context;
pub mod get_document;
pub mod get_document_text;
pub mod http;
pub mod last_delivery;
pub mod notify_submitter;
pub mod process_document;
pub mod retry;
pub mod submit_document;
pub mod summarize_chunk;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

pub use aggregate_results::AggregateResults;
pub use analyze_document::AnalyzeDocument;
pub use audit_log::AuditLog;
pub use get_document::GetDocument;
pub use get_document_text::GetDocumentText;
pub use notify_submitter::NotifySubmitter;
pub use process_document::ProcessDocument;
pub use submit_document::SubmitDocument;
pub use summarize_chunk::SummarizeChunk;

use self::http::HttpFunction;

use crate::outcome::Outcome;
use docflow_custom_handler::protocol::InvocationRequest;
pub use docflow_telemetry::messaging::Destination;

/// The trigger's Service Bus message (body as text, as every function.json here declares);
/// a request that is not the host's schema becomes [`Outcome::BadRequest`].
pub fn trigger_message(
    request: &InvocationRequest,
    binding: &str,
) -> Result<docflow_custom_handler::protocol::ServiceBusMessage, Outcome> {
    request
        .service_bus_message(
            binding,
            docflow_custom_handler::protocol::TriggerDataType::String,
        )
        .map_err(Outcome::BadRequest)
}

/// The trigger's message and its body read as an event of `schema`; an unreadable event is
/// poison.
pub fn trigger_event<T: serde::de::DeserializeOwned>(
    request: &InvocationRequest,
    binding: &str,
    schema: &'static str,
) -> Result<(docflow_custom_handler::protocol::ServiceBusMessage, T), Outcome> {
    let message = trigger_message(request, binding)?;
    let event = crate::pipeline::events::parse(&message.body, schema)
        .map_err(|e| Outcome::poison(e.reason(), e.to_string()))?;
    Ok((message, event))
}

/// Who is being invoked, from the host's headers.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// `X-Azure-Functions-InvocationId`.
    pub invocation_id: Option<String>,
    /// The function name from the path.
    pub function: String,
}

/// One Function: decodes its trigger, does its work, reports an outcome.
#[async_trait]
pub trait Function: Send + Sync {
    /// The folder name at the app root.
    fn name(&self) -> &'static str;

    /// Handles one invocation.
    async fn invoke(&self, invocation: &Invocation, request: InvocationRequest) -> Outcome;

    /// The queue or topic subscription a Service Bus-triggered function reads through its
    /// [`SERVICE_BUS_TRIGGER`] binding (its invocations are then CONSUMER spans parented on the
    /// message); `None` for other triggers.
    fn service_bus_source(&self) -> Option<Destination<'static>> {
        None
    }
}

/// The binding name of every Service Bus trigger of the app (function.json `name`).
pub const SERVICE_BUS_TRIGGER: &str = "message";

/// The functions the handler serves, by name.
#[derive(Clone, Default)]
pub struct Registry {
    functions: BTreeMap<String, Arc<dyn Function>>,
    http: Vec<Arc<dyn HttpFunction>>,
    /// Largest invocation request body read (`None`: the server's default).
    max_request_bytes: Option<usize>,
}

/// An HTTP function in payload mode.
struct PayloadMode(Arc<dyn HttpFunction>);

#[async_trait]
impl Function for PayloadMode {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    async fn invoke(&self, _invocation: &Invocation, request: InvocationRequest) -> Outcome {
        http::invoke_payload_mode(self.0.as_ref(), request).await
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a function under its name.
    pub fn with(mut self, function: Arc<dyn Function>) -> Self {
        self.functions.insert(function.name().to_string(), function);
        self
    }

    /// Adds an HTTP function: served as `POST /{name}` in payload mode and at its own route
    /// in forwarding mode.
    pub fn with_http(mut self, function: Arc<dyn HttpFunction>) -> Self {
        self = self.with(Arc::new(PayloadMode(function.clone())));
        self.http.push(function);
        self
    }

    /// Limits invocation request bodies to `bytes` (`413` beyond).
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = Some(bytes);
        self
    }

    /// The invocation request body limit set, if any.
    pub fn max_request_bytes(&self) -> Option<usize> {
        self.max_request_bytes
    }

    /// The HTTP functions, for forwarding mode.
    pub fn http_functions(&self) -> &[Arc<dyn HttpFunction>] {
        &self.http
    }

    /// The function of that name (exact spelling, as the host sends it).
    pub fn get(&self, name: &str) -> Option<Arc<dyn Function>> {
        self.functions.get(name).cloned()
    }

    /// The names served.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.functions.keys().map(String::as_str)
    }
}
