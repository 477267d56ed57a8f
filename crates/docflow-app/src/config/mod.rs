//! The one module that reads the environment. It produces plain options; constructors elsewhere
//! take those options and never look at the environment themselves.
//!
//! App settings reach the handler as environment variables (from Azure app settings, or from
//! `local.settings.json` through the host), so every setting here is an environment variable.

mod ocr;

pub use self::ocr::{OcrBudgetSettings, OcrSettings};

use std::path::PathBuf;
use std::time::Duration;

use crate::ai::openai::MaxTokens;
use crate::ai::openai::dialect::Dialect;
use crate::ai::tokens::TokenCounter;
use crate::functions::context::PipelineOptions;
use crate::functions::process_document::ProcessOptions;
use crate::pipeline::store::Containers;
use docflow_blob::connection::BlobConnection;
use docflow_servicebus::connection::{ConnectionError, Namespace};

/// Default time allowed for in-flight invocations to finish on shutdown.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A setting with a value docflow cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The value does not parse.
    #[error("setting {name}={value:?} is invalid: expected {expected}")]
    Invalid {
        /// Variable name.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A connection setting is present but unusable.
    #[error("{0}")]
    Connection(String),
    /// A setting the chosen configuration needs is absent.
    #[error("setting {name} is required {when}")]
    Missing {
        /// Variable name.
        name: &'static str,
        /// The configuration that needs it.
        when: &'static str,
    },
}

/// Which AI provider to use, and its plain settings.
#[derive(Debug, Clone, PartialEq)]
pub enum AiSettings {
    /// The offline deterministic provider.
    Offline,
    /// OpenAI or a compatible server.
    OpenAi {
        /// Base URL ending in `/v1`.
        base_url: String,
        /// Optional API key (local servers need none).
        api_key: Option<String>,
        /// Chat model.
        chat_model: String,
        /// Embedding model.
        embedding_model: String,
        /// Timeout of one call.
        timeout: Duration,
        /// How structured output is asked for.
        structured_output: Dialect,
        /// `max_tokens` per kind.
        max_tokens: MaxTokens,
        /// The deployment's rate budget.
        budget: crate::ai::budget::BudgetOptions,
    },
    /// Azure OpenAI.
    AzureOpenAi {
        /// `https://{resource}.openai.azure.com`.
        endpoint: String,
        /// REST `api-version`.
        api_version: String,
        /// Key authentication; when absent, Microsoft Entra ID is used.
        api_key: Option<String>,
        /// `managedidentity` or `developer`; when absent, managed identity if the platform
        /// provides one, developer tools otherwise.
        credential: Option<String>,
        /// Client id of a user-assigned managed identity.
        client_id: Option<String>,
        /// Chat deployment.
        chat_deployment: String,
        /// Embedding deployment.
        embedding_deployment: String,
        /// Timeout of one call.
        timeout: Duration,
        /// How structured output is asked for.
        structured_output: Dialect,
        /// `max_tokens` per kind.
        max_tokens: MaxTokens,
        /// The deployment's rate budget.
        budget: crate::ai::budget::BudgetOptions,
    },
}

impl AiSettings {
    /// The model deployment's budget, when a model endpoint is called.
    pub fn budget(&self) -> Option<&crate::ai::budget::BudgetOptions> {
        match self {
            Self::Offline => None,
            Self::OpenAi { budget, .. } | Self::AzureOpenAi { budget, .. } => Some(budget),
        }
    }

    /// Which provider, endpoint and models, for people (never a secret).
    pub fn describe(&self) -> String {
        match self {
            Self::Offline => {
                "offline provider (deterministic algorithms, no model endpoint)".into()
            }
            Self::OpenAi {
                base_url,
                api_key,
                chat_model,
                embedding_model,
                structured_output,
                ..
            } => format!(
                "openai-compatible endpoint {base_url}, chat model {chat_model}, embedding model {embedding_model}, structured output {}, {}",
                structured_output.name(),
                if api_key.is_some() {
                    "api key set"
                } else {
                    "no api key"
                }
            ),
            Self::AzureOpenAi {
                endpoint,
                api_version,
                api_key,
                chat_deployment,
                embedding_deployment,
                ..
            } => format!(
                "azure-openai {endpoint} (api-version {api_version}), chat deployment {chat_deployment}, embedding deployment {embedding_deployment}, {}",
                if api_key.is_some() {
                    "api key"
                } else {
                    "Microsoft Entra ID"
                }
            ),
        }
    }
}

/// Everything `docflow serve` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Port from `FUNCTIONS_CUSTOMHANDLER_PORT` or `FUNCTIONS_HTTPWORKER_PORT`.
    pub port: Option<u16>,
    /// Folder of the local blob store (when no blob connection is configured).
    pub blob_dir: PathBuf,
    /// The Azure Blob connection named by `DOCFLOW_BLOB_CONNECTION`; `None`: the local folder
    /// store, whatever `AzureWebJobsStorage` says (the host's storage is not docflow's).
    pub blob_connection: Option<BlobConnection>,
    /// AI provider.
    pub ai: AiSettings,
    /// ProcessDocument's options.
    pub process: ProcessOptions,
    /// Shutdown drain bound.
    pub drain_timeout: Duration,
    /// Largest invocation request body the handler reads (`413` beyond it).
    pub max_request_bytes: usize,
    /// The topology file (for the trigger queue's `MaxDeliveryCount`).
    pub topology: PathBuf,
    /// The Service Bus namespace of `ServiceBusConnection`, when configured.
    pub service_bus: Option<Namespace>,
    /// The pipeline functions' options.
    pub pipeline: PipelineOptions,
    /// Blob containers.
    pub containers: Containers,
    /// OCR of scans and images.
    pub ocr: OcrSettings,
    /// The OCR service's rate budget.
    pub ocr_budget: OcrBudgetSettings,
    /// This instance of the app among those Azure runs (`WEBSITE_INSTANCE_ID`, which Azure
    /// sets on each; otherwise the host name and process id): what the fleet's budget
    /// ledger knows it by.
    pub instance: String,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let lookup = &lookup;
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let port = match get("FUNCTIONS_CUSTOMHANDLER_PORT") {
            Some(v) => Some(parse_port("FUNCTIONS_CUSTOMHANDLER_PORT", &v)?),
            None => get("FUNCTIONS_HTTPWORKER_PORT")
                .map(|v| parse_port("FUNCTIONS_HTTPWORKER_PORT", &v))
                .transpose()?,
        };
        let timeout = Duration::from_secs(number(&get, "DOCFLOW_AI_TIMEOUT_SECS", 120)?);
        let structured_output = match get("DOCFLOW_OPENAI_STRUCTURED_OUTPUT") {
            None => Dialect::JsonSchema,
            Some(v) => Dialect::parse(&v).ok_or(ConfigError::Invalid {
                name: "DOCFLOW_OPENAI_STRUCTURED_OUTPUT",
                value: v,
                expected: "json_schema, json_object_schema, ollama, vllm or prompt_only",
            })?,
        };
        let token_defaults = MaxTokens::default();
        let max_tokens = MaxTokens {
            summarize_per_word: token_defaults.summarize_per_word,
            classify: number(
                &get,
                "DOCFLOW_MAX_TOKENS_CLASSIFY",
                u64::from(token_defaults.classify),
            )?
            .clamp(1, 100_000) as u32,
            extract_entities: number(
                &get,
                "DOCFLOW_MAX_TOKENS_EXTRACT_ENTITIES",
                u64::from(token_defaults.extract_entities),
            )?
            .clamp(1, 100_000) as u32,
            sentiment: number(
                &get,
                "DOCFLOW_MAX_TOKENS_SENTIMENT",
                u64::from(token_defaults.sentiment),
            )?
            .clamp(1, 100_000) as u32,
        };
        let budget_defaults = crate::ai::budget::BudgetOptions::default();
        let optional = |name: &'static str| -> Result<Option<u64>, ConfigError> {
            get(name).map(|_| number(&get, name, 0)).transpose()
        };
        let budget = crate::ai::budget::BudgetOptions {
            tpm: optional("DOCFLOW_AI_TPM")?,
            rpm: optional("DOCFLOW_AI_RPM")?,
            max_concurrency: number(
                &get,
                "DOCFLOW_AI_MAX_CONCURRENCY",
                budget_defaults.max_concurrency as u64,
            )?
            .clamp(1, 1024) as usize,
            max_wait: Duration::from_secs(number(
                &get,
                "DOCFLOW_AI_MAX_BUDGET_WAIT_SECS",
                budget_defaults.max_wait.as_secs(),
            )?),
            adaptive: match get("DOCFLOW_AI_BUDGET").as_deref() {
                None | Some("adaptive") => true,
                Some("naive") => false,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        name: "DOCFLOW_AI_BUDGET",
                        value: other.to_string(),
                        expected: "adaptive or naive",
                    });
                }
            },
            tokenizer: match get("DOCFLOW_AI_TOKENIZER") {
                None => None,
                Some(v) => {
                    Some(
                        TokenCounter::new(Some(&v), "").map_err(|_| ConfigError::Invalid {
                            name: "DOCFLOW_AI_TOKENIZER",
                            value: v,
                            expected: "o200k_base, cl100k_base or estimate",
                        })?,
                    )
                }
            },
            scope: match get("DOCFLOW_AI_BUDGET_SCOPE").as_deref() {
                None | Some("fleet") => crate::ai::budget::BudgetScope::Fleet,
                Some("process") => crate::ai::budget::BudgetScope::Process,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        name: "DOCFLOW_AI_BUDGET_SCOPE",
                        value: other.to_string(),
                        expected: "fleet or process",
                    });
                }
            },
            lease: Duration::from_millis(
                number(
                    &get,
                    "DOCFLOW_AI_BUDGET_LEASE_MS",
                    budget_defaults.lease.as_millis() as u64,
                )?
                .clamp(200, 60_000),
            ),
        };
        let ai = match get("DOCFLOW_AI_PROVIDER").as_deref().unwrap_or("offline") {
            "offline" => AiSettings::Offline,
            "openai" => AiSettings::OpenAi {
                base_url: get("DOCFLOW_OPENAI_BASE_URL")
                    .unwrap_or_else(|| "https://api.openai.com/v1".into()),
                api_key: get("DOCFLOW_OPENAI_API_KEY"),
                chat_model: get("DOCFLOW_CHAT_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
                embedding_model: get("DOCFLOW_EMBEDDING_MODEL")
                    .unwrap_or_else(|| "text-embedding-3-small".into()),
                timeout,
                structured_output,
                max_tokens,
                budget,
            },
            "azure-openai" => {
                let when = "when DOCFLOW_AI_PROVIDER=azure-openai";
                let credential = get("AZURE_OPENAI_CREDENTIAL");
                if let Some(c) = &credential
                    && !matches!(
                        c.to_ascii_lowercase().as_str(),
                        "managedidentity" | "developer"
                    )
                {
                    return Err(ConfigError::Invalid {
                        name: "AZURE_OPENAI_CREDENTIAL",
                        value: c.clone(),
                        expected: "managedidentity or developer",
                    });
                }
                AiSettings::AzureOpenAi {
                    endpoint: get("AZURE_OPENAI_ENDPOINT").ok_or(ConfigError::Missing {
                        name: "AZURE_OPENAI_ENDPOINT",
                        when,
                    })?,
                    api_version: get("AZURE_OPENAI_API_VERSION")
                        .unwrap_or_else(|| "2024-10-21".into()),
                    api_key: get("AZURE_OPENAI_API_KEY"),
                    credential,
                    client_id: get("AZURE_OPENAI_CLIENT_ID"),
                    chat_deployment: get("AZURE_OPENAI_CHAT_DEPLOYMENT").ok_or(
                        ConfigError::Missing {
                            name: "AZURE_OPENAI_CHAT_DEPLOYMENT",
                            when,
                        },
                    )?,
                    embedding_deployment: get("AZURE_OPENAI_EMBEDDING_DEPLOYMENT").ok_or(
                        ConfigError::Missing {
                            name: "AZURE_OPENAI_EMBEDDING_DEPLOYMENT",
                            when,
                        },
                    )?,
                    timeout,
                    structured_output,
                    max_tokens,
                    budget,
                }
            }
            other => {
                return Err(ConfigError::Invalid {
                    name: "DOCFLOW_AI_PROVIDER",
                    value: other.to_string(),
                    expected: "offline, openai or azure-openai",
                });
            }
        };
        let defaults = ProcessOptions::default();
        let process = ProcessOptions {
            results_container: get("DOCFLOW_RESULTS_CONTAINER")
                .unwrap_or(defaults.results_container),
            state_container: get("DOCFLOW_STATE_CONTAINER").unwrap_or(defaults.state_container),
            max_inline_retry_wait: Duration::from_secs(number(
                &get,
                "DOCFLOW_MAX_INLINE_RETRY_WAIT_SECS",
                defaults.max_inline_retry_wait.as_secs(),
            )?),
            max_concurrent_ai_calls: number(
                &get,
                "DOCFLOW_MAX_CONCURRENT_AI_CALLS",
                defaults.max_concurrent_ai_calls as u64,
            )?
            .max(1) as usize,
            max_content_bytes: number(
                &get,
                "DOCFLOW_MAX_CONTENT_BYTES",
                defaults.max_content_bytes,
            )?,
            max_delivery_count: None,
            context_tokens: number(
                &get,
                "DOCFLOW_CONTEXT_TOKENS",
                defaults.context_tokens as u64,
            )?
            .max(16) as usize,
            max_transient_retries: number(
                &get,
                "DOCFLOW_MAX_TRANSIENT_RETRIES",
                u64::from(defaults.max_transient_retries),
            )?
            .min(u64::from(u32::MAX)) as u32,
            max_rate_limit_retries: number(
                &get,
                "DOCFLOW_MAX_RATE_LIMIT_RETRIES",
                u64::from(defaults.max_rate_limit_retries),
            )?
            .min(u64::from(u32::MAX)) as u32,
            retry_base: Duration::from_millis(number(
                &get,
                "DOCFLOW_RETRY_BASE_MS",
                defaults.retry_base.as_millis() as u64,
            )?),
            retry_cap: Duration::from_secs(number(
                &get,
                "DOCFLOW_RETRY_CAP_SECS",
                defaults.retry_cap.as_secs(),
            )?),
        };
        let pipeline_defaults = PipelineOptions::default();
        let pipeline = PipelineOptions {
            max_submission_bytes: number(
                &get,
                "DOCFLOW_MAX_SUBMISSION_BYTES",
                pipeline_defaults.max_submission_bytes as u64,
            )?
            .min(crate::server::MAX_REQUEST_BYTES as u64)
                as usize,
            retry_after_secs: number(
                &get,
                "DOCFLOW_STATUS_RETRY_AFTER_SECS",
                pipeline_defaults.retry_after_secs,
            )?,
            analysis_deadline: Duration::from_secs(number(
                &get,
                "DOCFLOW_ANALYSIS_DEADLINE_SECS",
                pipeline_defaults.analysis_deadline.as_secs(),
            )?),
            route_prefix: get("DOCFLOW_ROUTE_PREFIX").unwrap_or(pipeline_defaults.route_prefix),
            callback_secret: get("DOCFLOW_CALLBACK_SECRET"),
            callback_timeout: Duration::from_secs(number(
                &get,
                "DOCFLOW_CALLBACK_TIMEOUT_SECS",
                pipeline_defaults.callback_timeout.as_secs(),
            )?),
            callback_allow_private: boolean(&get, "DOCFLOW_CALLBACK_ALLOW_PRIVATE_NETWORKS")?,
            ocr_provider: None,
        };
        let ocr = OcrSettings::from_lookup(&get)?;
        let pipeline = PipelineOptions {
            ocr_provider: ocr.provider_name().map(str::to_owned),
            ..pipeline
        };
        let container_defaults = Containers::default();
        let containers = Containers {
            payloads: get("DOCFLOW_PAYLOAD_CONTAINER").unwrap_or(container_defaults.payloads),
            results: process.results_container.clone(),
            state: process.state_container.clone(),
            audit: get("DOCFLOW_AUDIT_CONTAINER").unwrap_or(container_defaults.audit),
        };
        let service_bus = match Namespace::from_setting("ServiceBusConnection", lookup) {
            Ok(ns) => Some(ns),
            Err(ConnectionError::NotConfigured { .. }) => None,
            Err(e) => return Err(ConfigError::Connection(e.to_string())),
        };
        let blob_connection = match get("DOCFLOW_BLOB_CONNECTION") {
            None => None,
            Some(name) => Some(
                BlobConnection::from_setting(&name, |k| get(k))
                    .map_err(|e| ConfigError::Connection(e.to_string()))?,
            ),
        };
        Ok(Self {
            blob_connection,
            topology: get("DOCFLOW_TOPOLOGY")
                .map_or_else(|| PathBuf::from("servicebus.config.json"), PathBuf::from),
            service_bus,
            port,
            blob_dir: get("DOCFLOW_BLOB_DIR")
                .map_or_else(|| PathBuf::from(".docflow/blobs"), PathBuf::from),
            ai,
            process,
            pipeline,
            containers,
            ocr,
            ocr_budget: OcrBudgetSettings::from_lookup(&get)?,
            instance: get("WEBSITE_INSTANCE_ID").unwrap_or_else(|| {
                let host = get("HOSTNAME").or_else(|| get("COMPUTERNAME"));
                format!(
                    "{}-{}",
                    host.as_deref().unwrap_or("docflow"),
                    std::process::id()
                )
            }),
            drain_timeout: Duration::from_secs(number(
                &get,
                "DOCFLOW_DRAIN_TIMEOUT_SECS",
                DEFAULT_DRAIN_TIMEOUT.as_secs(),
            )?),
            max_request_bytes: number(
                &get,
                "DOCFLOW_MAX_REQUEST_BYTES",
                crate::server::MAX_REQUEST_BYTES as u64,
            )?
            .min(usize::MAX as u64) as usize,
        })
    }
}

fn parse_port(name: &'static str, value: &str) -> Result<u16, ConfigError> {
    value
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or(ConfigError::Invalid {
            name,
            value: value.to_string(),
            expected: "a TCP port from 1 to 65535",
        })
}

fn boolean(get: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<bool, ConfigError> {
    match get(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" || v == "1" => Ok(true),
        Some(v) if v == "false" || v == "0" => Ok(false),
        Some(v) => Err(ConfigError::Invalid {
            name,
            value: v,
            expected: "true or false",
        }),
    }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
            name,
            value: v,
            expected: "a whole number",
        }),
    }
}

#[cfg(test)]
mod tests;
