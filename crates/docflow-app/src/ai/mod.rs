//! The AI seam: what docflow asks of a language model, and the two providers that answer.
//!
//! - [`offline`]: deterministic algorithms, no network (the default everywhere but production).
//! - [`openai`]: any OpenAI-compatible HTTP endpoint (OpenAI, Azure OpenAI, Ollama, vLLM,
//!   llama.cpp server).
//!
//! Providers classify their failures ([`ProviderError`]) so that one place can decide what
//! happens to the message: retry later, let Service Bus redeliver, or treat it as poison.

pub mod budget;
pub mod budget_store;
pub mod fleet;
pub mod offline;
pub mod openai;
pub mod rate_limits;
pub mod tokens;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The longest wait a provider can ask for that docflow honours; longer asks are cut to it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// One AI operation with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// An extractive or abstractive summary of at most `max_words` words.
    Summarize {
        /// Upper bound on the summary's length in words.
        max_words: u32,
    },
    /// Pick the best of `labels` and score each one.
    Classify {
        /// Candidate labels, in the caller's order.
        labels: Vec<String>,
    },
    /// People, organisations, locations, dates and money amounts with character offsets.
    ExtractEntities,
    /// Overall sentiment with a score in [-1, 1].
    Sentiment,
    /// A dense vector for similarity search.
    Embed,
}

impl Operation {
    /// The task kind name used in `ai.task.v1` (`summarize`, `classify`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Summarize { .. } => "summarize",
            Self::Classify { .. } => "classify",
            Self::ExtractEntities => "extract_entities",
            Self::Sentiment => "sentiment",
            Self::Embed => "embed",
        }
    }
}

/// A request to a provider: the operation and the document text.
#[derive(Debug, Clone, PartialEq)]
pub struct AiRequest {
    /// What to do.
    pub operation: Operation,
    /// The document text.
    pub text: String,
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AiOutput {
    /// The model that produced it (`offline-…` for the offline provider).
    pub model: String,
    /// Tokens consumed.
    pub usage: TokenUsage,
    /// The result itself.
    pub output: TaskOutput,
}

/// Token usage as the provider reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Prompt (input) tokens.
    pub input_tokens: u64,
    /// Completion (output) tokens.
    pub output_tokens: u64,
    /// Total tokens billed.
    pub total_tokens: u64,
}

impl TokenUsage {
    /// Usage with the total computed from its parts.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
            total_tokens: input_tokens.saturating_add(output_tokens),
        }
    }

    /// Both usages together (saturating: a provider's huge counts cannot overflow).
    pub fn plus(self, other: TokenUsage) -> Self {
        Self::new(
            self.input_tokens.saturating_add(other.input_tokens),
            self.output_tokens.saturating_add(other.output_tokens),
        )
    }
}

/// The result of one operation, tagged with its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskOutput {
    /// `summarize`.
    Summarize {
        /// The summary text.
        summary: String,
    },
    /// `classify`.
    Classify {
        /// The best label.
        label: String,
        /// Every label's score, best first.
        scores: Vec<LabelScore>,
    },
    /// `extract_entities`.
    ExtractEntities {
        /// Entities in order of appearance.
        entities: Vec<Entity>,
    },
    /// `sentiment`.
    Sentiment {
        /// `positive`, `negative` or `neutral`.
        label: SentimentLabel,
        /// From -1 (most negative) to 1 (most positive).
        score: f64,
    },
    /// `embed`.
    Embed {
        /// Vector length.
        dimensions: usize,
        /// The vector (for a chunked document, the normalised mean of its chunks' vectors).
        vector: Vec<f32>,
        /// A long document's chunks with their own vectors (the RAG-ready form); empty when
        /// the document was embedded whole.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        chunks: Vec<EmbeddedChunk>,
        /// `mean` when the server answered one vector per token and docflow pooled them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pooling: Option<String>,
    },
}

/// One chunk of a long document with its embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddedChunk {
    /// Byte offset of the chunk's first character in the stored text.
    pub start: usize,
    /// Byte offset one past its end.
    pub end: usize,
    /// Its vector.
    pub vector: Vec<f32>,
}

/// One label's score in a classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScore {
    /// The label.
    pub label: String,
    /// Its score in [0, 1]; scores sum to about 1.
    pub score: f64,
}

/// Sentiment polarity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    /// Clearly favourable.
    Positive,
    /// Clearly unfavourable.
    Negative,
    /// Neither.
    Neutral,
}

/// Entity categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    /// A person's name.
    Person,
    /// A company or institution.
    Organization,
    /// A place.
    Location,
    /// A calendar date.
    Date,
    /// An amount of money.
    Money,
}

/// A span of the input text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Category.
    pub kind: EntityKind,
    /// The exact text of the span.
    pub text: String,
    /// Offset of the first character, in Unicode scalar values.
    pub start: usize,
    /// Offset one past the last character, in Unicode scalar values.
    pub end: usize,
}

/// Why a provider call failed, phrased as what should happen next.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// Rate limited: try again after `delay` (429 with `Retry-After` / `retry-after-ms`).
    #[error("provider rate limited the request; retry after {delay:?}: {detail}")]
    RetryAfter {
        /// How long the provider asked us to wait.
        delay: Duration,
        /// What the provider said.
        detail: String,
    },
    /// Worth retrying: 5xx, timeout, connection failure.
    #[error("provider call failed transiently: {detail}")]
    Transient {
        /// What went wrong.
        detail: String,
    },
    /// The model or the configuration failed (an unusable answer after the repair call, a
    /// wrong URL, model or key, a server that cannot do the operation): not the message's
    /// fault, so the task is retried later with backoff and fails with this reason if it
    /// never succeeds.
    #[error("{reason}: {detail}")]
    Unusable {
        /// A short machine-readable reason (`InvalidModelOutput`, `ProviderNotFound`, …).
        reason: &'static str,
        /// What happened, with what to check.
        detail: String,
        /// Tokens the failed calls spent.
        usage: TokenUsage,
    },
    /// Retrying cannot help: the content itself was refused (content filter).
    #[error("provider rejected the task ({reason}): {detail}")]
    Rejected {
        /// A short machine-readable reason (`ContentFiltered`, `InvalidRequest`, …).
        reason: &'static str,
        /// What the provider said.
        detail: String,
    },
}

/// A language model docflow can run tasks against.
#[async_trait]
pub trait AiProvider: Send + Sync {
    /// A short name for logs (`offline`, `openai`, `azure-openai`).
    fn name(&self) -> &str;

    /// Runs one operation on one text.
    async fn run(&self, request: &AiRequest) -> Result<AiOutput, ProviderError>;

    /// Checks that the provider can be reached and knows its model, before work is sent to it;
    /// returns the model that answered. Providers without an endpoint are always ready.
    async fn probe(&self) -> Result<String, ProviderError> {
        Ok(self.name().to_string())
    }
}
