//! What an OpenAI-compatible provider is configured with: the endpoint and its URL shape, the
//! credentials, the models and the `max_tokens` of each kind.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;

use super::dialect::Dialect;
use crate::ai::Operation;
use crate::ai::budget::BudgetOptions;

/// The scope of Azure OpenAI (Azure AI services) tokens.
pub const COGNITIVE_SERVICES_SCOPE: &str = "https://cognitiveservices.azure.com/.default";

/// Where the endpoint lives and how its URLs are built.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// OpenAI or a compatible server: `{base_url}/chat/completions`, `{base_url}/embeddings`.
    OpenAi {
        /// e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`.
        base_url: String,
    },
    /// Azure OpenAI: `{endpoint}/openai/deployments/{deployment}/…?api-version=…`.
    Azure {
        /// e.g. `https://contoso.openai.azure.com`.
        endpoint: String,
        /// e.g. `2024-10-21`.
        api_version: String,
    },
}

impl Endpoint {
    /// The URL every deployment of the endpoint is under.
    pub fn base(&self) -> String {
        match self {
            Self::OpenAi { base_url } => base_url.clone(),
            Self::Azure { endpoint, .. } => endpoint.clone(),
        }
    }
}

/// How requests are authenticated.
#[derive(Clone)]
pub enum Auth {
    /// No credentials (local servers).
    None,
    /// `Authorization: Bearer {key}` (OpenAI and most compatible servers).
    BearerKey(String),
    /// `api-key: {key}` (Azure OpenAI key authentication).
    AzureApiKey(String),
    /// A Microsoft Entra token for [`COGNITIVE_SERVICES_SCOPE`] (managed identity in Azure).
    Entra(Arc<dyn TokenCredential>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::BearerKey(_) => "BearerKey(***)",
            Self::AzureApiKey(_) => "AzureApiKey(***)",
            Self::Entra(_) => "Entra",
        })
    }
}

/// Options of [`OpenAiProvider`].
#[derive(Debug, Clone)]
pub struct OpenAiOptions {
    /// Endpoint and URL scheme.
    pub endpoint: Endpoint,
    /// Credentials.
    pub auth: Auth,
    /// Chat model name (Azure: the deployment name).
    pub chat_model: String,
    /// Embedding model name (Azure: the deployment name).
    pub embedding_model: String,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// How structured output is asked for.
    pub structured_output: Dialect,
    /// `max_tokens` per kind.
    pub max_tokens: MaxTokens,
    /// The deployment's rate budget.
    pub budget: BudgetOptions,
    /// Where the fleet shares its budgets (`None`: each process keeps its own).
    pub shared: Option<crate::ai::fleet::SharedBudget>,
}

/// `max_tokens` of each kind's answer. Azure OpenAI charges a request's `max_tokens` against
/// the rate limit at admission, so these stay close to what an answer needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxTokens {
    /// Summaries: tokens per requested word (the limit is `maxWords` × this + 32).
    pub summarize_per_word: f64,
    /// Classification answers (a label and one score per label: plus 12 per label).
    pub classify: u32,
    /// Entity lists.
    pub extract_entities: u32,
    /// Sentiment answers.
    pub sentiment: u32,
}

impl Default for MaxTokens {
    fn default() -> Self {
        Self {
            // English averages about 1.3 tokens a word; twice that leaves room.
            summarize_per_word: 2.5,
            classify: 64,
            extract_entities: 1024,
            sentiment: 64,
        }
    }
}

impl MaxTokens {
    /// The limit of one operation's answer.
    pub fn of(&self, operation: &Operation) -> u32 {
        match operation {
            Operation::Summarize { max_words } => {
                (f64::from(*max_words) * self.summarize_per_word).ceil() as u32 + 32
            }
            Operation::Classify { labels } => self.classify + 12 * labels.len() as u32,
            Operation::ExtractEntities => self.extract_entities,
            Operation::Sentiment => self.sentiment,
            Operation::Embed => 0,
        }
    }
}

impl Default for OpenAiOptions {
    fn default() -> Self {
        Self {
            endpoint: Endpoint::OpenAi {
                base_url: "https://api.openai.com/v1".into(),
            },
            auth: Auth::None,
            chat_model: "gpt-4o-mini".into(),
            embedding_model: "text-embedding-3-small".into(),
            timeout: Duration::from_secs(120),
            structured_output: Dialect::JsonSchema,
            max_tokens: MaxTokens::default(),
            budget: BudgetOptions::default(),
            shared: None,
        }
    }
}
