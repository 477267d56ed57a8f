//! Wiring: turns [`Settings`] into the running pieces. The only place that chooses between the
//! implementations of a seam; nothing else branches on where docflow runs.

use std::sync::Arc;

use docflow_servicebus::identity::entra_credential;

use crate::ai::AiProvider;
use crate::ai::budget::{Budget, LocalBudget};
use crate::ai::fleet::{DEFAULT_LEASE, SharedBudget};
use crate::ai::offline::OfflineProvider;
use crate::ai::openai::{Auth, Endpoint, OpenAiOptions, OpenAiProvider};
use crate::config::{AiSettings, OcrSettings, Settings};
use crate::functions::context::{PipelineContext, SUMMARY_CHUNKS_QUEUE};
use crate::functions::process_document::{ProcessOptions, TRIGGER_QUEUE, TextExtraction};
use crate::functions::{
    AggregateResults, AnalyzeDocument, AuditLog, GetDocument, GetDocumentText, NotifySubmitter,
    ProcessDocument, Registry, SubmitDocument, SummarizeChunk,
};
use crate::ocr::OcrProvider;
use crate::ocr::document_intelligence::{
    self, DocumentIntelligenceOptions, DocumentIntelligenceProvider,
};
use crate::ocr::tesseract::{TesseractOptions, TesseractProvider};
use crate::pipeline::store::DocumentStore;
use docflow_blob::connection::BlobConnection;
use docflow_blob::{AzureBlobStore, BlobStore, LocalFolderStore};
use docflow_servicebus::sender::NotConfigured;
use docflow_servicebus::topology::Topology;
use docflow_servicebus::{MessageSender, ServiceBusClient, ServiceBusClientOptions};

/// Errors building the app from valid settings (credentials, HTTP clients).
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// A Microsoft Entra credential could not be created.
    #[error("cannot create the Microsoft Entra credential: {0}")]
    Credential(String),
    /// The HTTP client could not be created.
    #[error("cannot create the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The blob connection is unusable.
    #[error("cannot use the blob connection: {0}")]
    Blob(String),
}

/// The AI provider the settings ask for, each process with its own budget.
pub fn ai_provider(settings: &AiSettings) -> Result<Arc<dyn AiProvider>, WiringError> {
    fleet_ai_provider(settings, None)
}

/// The AI provider the settings ask for, its budgets shared through `shared` (when their
/// scope is the fleet's).
pub fn fleet_ai_provider(
    settings: &AiSettings,
    shared: Option<SharedBudget>,
) -> Result<Arc<dyn AiProvider>, WiringError> {
    Ok(match settings {
        AiSettings::Offline => Arc::new(OfflineProvider),
        AiSettings::OpenAi {
            base_url,
            api_key,
            chat_model,
            embedding_model,
            timeout,
            structured_output,
            max_tokens,
            budget,
        } => Arc::new(OpenAiProvider::new(OpenAiOptions {
            endpoint: Endpoint::OpenAi {
                base_url: base_url.clone(),
            },
            auth: api_key.clone().map_or(Auth::None, Auth::BearerKey),
            chat_model: chat_model.clone(),
            embedding_model: embedding_model.clone(),
            timeout: *timeout,
            structured_output: *structured_output,
            max_tokens: *max_tokens,
            budget: *budget,
            shared: shared.clone(),
        })?),
        AiSettings::AzureOpenAi {
            endpoint,
            api_version,
            api_key,
            credential,
            client_id,
            chat_deployment,
            embedding_deployment,
            timeout,
            structured_output,
            max_tokens,
            budget,
        } => {
            let auth = match api_key {
                Some(key) => Auth::AzureApiKey(key.clone()),
                None => Auth::Entra(
                    entra_credential(credential.as_deref(), client_id.as_deref())
                        .map_err(|e| WiringError::Credential(e.to_string()))?,
                ),
            };
            Arc::new(OpenAiProvider::new(OpenAiOptions {
                endpoint: Endpoint::Azure {
                    endpoint: endpoint.clone(),
                    api_version: api_version.clone(),
                },
                auth,
                chat_model: chat_deployment.clone(),
                embedding_model: embedding_deployment.clone(),
                timeout: *timeout,
                structured_output: *structured_output,
                max_tokens: *max_tokens,
                budget: *budget,
                shared,
            })?)
        }
    })
}

/// The OCR provider the settings ask for, if any.
pub fn ocr_provider(settings: &OcrSettings) -> Result<Option<Arc<dyn OcrProvider>>, WiringError> {
    Ok(match settings {
        OcrSettings::None => None,
        OcrSettings::DocumentIntelligence {
            endpoint,
            api_key,
            credential,
            client_id,
            model,
            api_version,
            max_wait,
        } => {
            let auth = match api_key {
                Some(key) => document_intelligence::Auth::ApiKey(key.clone()),
                None => document_intelligence::Auth::Entra(
                    entra_credential(credential.as_deref(), client_id.as_deref())
                        .map_err(|e| WiringError::Credential(e.to_string()))?,
                ),
            };
            let mut options = DocumentIntelligenceOptions::new(endpoint.clone(), auth);
            options.model = model.clone();
            options.api_version = api_version.clone();
            options.max_wait = *max_wait;
            let http = reqwest::Client::builder()
                .timeout(options.timeout)
                .build()?;
            Some(Arc::new(DocumentIntelligenceProvider::new(options, http)))
        }
        OcrSettings::Tesseract { languages, timeout } => {
            Some(Arc::new(TesseractProvider::new(TesseractOptions {
                languages: languages.clone(),
                timeout: *timeout,
                ..TesseractOptions::default()
            })))
        }
    })
}

/// The blob store the settings ask for: Azure Blob Storage when `DOCFLOW_BLOB_CONNECTION`
/// names a connection, the local folder otherwise.
pub fn blob_store(settings: &Settings) -> Result<Arc<dyn BlobStore>, WiringError> {
    let Some(connection) = &settings.blob_connection else {
        return Ok(Arc::new(LocalFolderStore::new(&settings.blob_dir)));
    };
    let credential = match connection {
        BlobConnection::Identity {
            credential,
            client_id,
            ..
        } => Some(
            entra_credential(credential.as_deref(), client_id.as_deref())
                .map_err(|e| WiringError::Credential(e.to_string()))?,
        ),
        _ => None,
    };
    Ok(Arc::new(
        AzureBlobStore::new(connection, credential).map_err(WiringError::Blob)?,
    ))
}

/// The functions served by `docflow serve`, built from settings.
///
/// The trigger queue's `MaxDeliveryCount` comes from the topology file when it is there (to
/// recognise last deliveries). Without `ServiceBusConnection`, every function that sends
/// messages answers with an error naming the missing setting.
pub fn registry(settings: &Settings) -> Result<Registry, WiringError> {
    let blobs = blob_store(settings)?;
    let shared = SharedBudget {
        blobs: blobs.clone(),
        container: settings.process.state_container.clone(),
        instance: settings.instance.clone(),
        lease: settings.ai.budget().map_or(DEFAULT_LEASE, |b| b.lease),
    };
    let ai = fleet_ai_provider(&settings.ai, Some(shared))?;
    let ocr = ocr_provider(&settings.ocr)?;
    let mut process = settings.process.clone();
    let mut steps = settings.process.clone();
    match Topology::load(&settings.topology) {
        Ok(topology) => {
            process.max_delivery_count = topology.max_delivery_count(TRIGGER_QUEUE);
            steps.max_delivery_count = topology.max_delivery_count(SUMMARY_CHUNKS_QUEUE);
        }
        Err(e) => {
            tracing::warn!(error = %e, "no topology: last deliveries of failing messages will not be reported")
        }
    }
    let bus: Arc<dyn MessageSender> = match &settings.service_bus {
        Some(namespace) => Arc::new(
            ServiceBusClient::new(namespace.clone(), ServiceBusClientOptions::default())
                .map_err(|e| WiringError::Credential(e.to_string()))?,
        ),
        None => {
            tracing::warn!(
                "ServiceBusConnection is not configured: functions that send messages will fail"
            );
            Arc::new(NotConfigured("ServiceBusConnection".into()))
        }
    };
    Ok(functions(blobs, ai, ocr, bus, settings, process, steps))
}

/// Every function of the app over the given seams. `process` configures ProcessDocument and
/// `steps` SummarizeChunk (they differ in their trigger queue's `MaxDeliveryCount`); `ocr`
/// reads scans in ProcessDocument's `extract_text` step.
pub fn functions(
    blobs: Arc<dyn BlobStore>,
    ai: Arc<dyn AiProvider>,
    ocr: Option<Arc<dyn OcrProvider>>,
    bus: Arc<dyn MessageSender>,
    settings: &Settings,
    process: ProcessOptions,
    steps: ProcessOptions,
) -> Registry {
    let store = DocumentStore::new(blobs.clone(), settings.containers.clone());
    let ctx = PipelineContext {
        store: store.clone(),
        bus: bus.clone(),
        options: settings.pipeline.clone(),
    };
    let mut process = ProcessDocument::new(blobs, ai.clone(), process).with_bus(bus.clone());
    if let Some(ocr) = ocr {
        let budget = settings.ocr_budget;
        process = process.with_text_extraction(TextExtraction {
            ocr,
            store: store.clone(),
            budget: Arc::new(LocalBudget::new(Budget::new(
                None,
                budget.rpm,
                budget.max_concurrency,
                std::time::Instant::now(),
            ))),
        });
    }
    Registry::new()
        .with_max_request_bytes(settings.max_request_bytes)
        .with_http(Arc::new(SubmitDocument::new(ctx.clone())))
        .with_http(Arc::new(GetDocument::new(ctx.clone())))
        .with_http(Arc::new(GetDocumentText::new(ctx.clone())))
        .with(Arc::new(AnalyzeDocument::new(ctx.clone())))
        .with(Arc::new(process))
        .with(Arc::new(SummarizeChunk::new(store, ai, bus, steps)))
        .with(Arc::new(AggregateResults::new(ctx.clone())))
        .with(Arc::new(NotifySubmitter::new(ctx.clone())))
        .with(Arc::new(AuditLog::new(ctx)))
}
