//! The offline provider: deterministic algorithms, no network, no model weights.
//!
//! Same input, same bytes out. Each operation names its algorithm in the model id
//! (`offline-…`) so results are never mistaken for an LLM's. Token usage is estimated at four
//! characters per token, so budgets and reports behave as they would with a real model.

mod classify;
mod embed;
mod entities;
mod sentiment;
mod summarize;
mod text;

use async_trait::async_trait;

pub use classify::classify;
pub use embed::{DIMENSIONS as EMBEDDING_DIMENSIONS, cosine, embed};
pub use entities::extract_entities;
pub use sentiment::sentiment;
pub use summarize::summarize;
pub use text::sentences;

use super::{AiOutput, AiProvider, AiRequest, Operation, ProviderError, TaskOutput, TokenUsage};
use crate::metrics::{LlmCall, LlmStatus};

/// Model id of each offline algorithm.
pub mod models {
    /// Extractive summary by sentence scoring.
    pub const SUMMARIZE: &str = "offline-extractive-summary-v1";
    /// Lexical and hashed-embedding similarity to each label.
    pub const CLASSIFY: &str = "offline-similarity-classifier-v1";
    /// Pattern and gazetteer entity extraction.
    pub const ENTITIES: &str = "offline-pattern-entities-v1";
    /// Lexicon sentiment with negation.
    pub const SENTIMENT: &str = "offline-lexicon-sentiment-v1";
    /// Feature-hashing embedding.
    pub const EMBED: &str = "offline-hashing-embedding-512-v1";
}

/// The offline provider. CPU work runs on the blocking pool, not the reactor.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineProvider;

impl OfflineProvider {
    /// Runs one request synchronously.
    pub fn run_blocking(request: &AiRequest) -> AiOutput {
        let text = request.text.as_str();
        let (model, output) = match &request.operation {
            Operation::Summarize { max_words } => (
                models::SUMMARIZE,
                TaskOutput::Summarize {
                    summary: summarize(text, *max_words),
                },
            ),
            Operation::Classify { labels } => {
                let scores = classify(text, labels);
                let label = scores.first().map(|s| s.label.clone()).unwrap_or_default();
                (models::CLASSIFY, TaskOutput::Classify { label, scores })
            }
            Operation::ExtractEntities => (
                models::ENTITIES,
                TaskOutput::ExtractEntities {
                    entities: extract_entities(text),
                },
            ),
            Operation::Sentiment => {
                let (label, score) = sentiment(text);
                (models::SENTIMENT, TaskOutput::Sentiment { label, score })
            }
            Operation::Embed => {
                let vector = embed(text);
                (
                    models::EMBED,
                    TaskOutput::Embed {
                        dimensions: vector.len(),
                        vector,
                        chunks: Vec::new(),
                        pooling: None,
                    },
                )
            }
        };
        let output_tokens = match &output {
            TaskOutput::Embed { .. } => 0,
            other => text::estimate_tokens(&serde_json::to_string(other).unwrap_or_default()),
        };
        AiOutput {
            model: model.to_string(),
            usage: TokenUsage::new(text::estimate_tokens(text), output_tokens),
            output,
        }
    }
}

#[async_trait]
impl AiProvider for OfflineProvider {
    fn name(&self) -> &str {
        "offline"
    }

    async fn run(&self, request: &AiRequest) -> Result<AiOutput, ProviderError> {
        let operation = match request.operation {
            Operation::Embed => "embeddings",
            _ => "chat",
        };
        let request = request.clone();
        let started = std::time::Instant::now();
        let answer = tokio::task::spawn_blocking(move || Self::run_blocking(&request))
            .await
            .map_err(|e| ProviderError::Transient {
                detail: format!("offline provider task failed: {e}"),
            });
        let (status, model, usage) = match &answer {
            Ok(output) => (LlmStatus::Ok, output.model.as_str(), Some(output.usage)),
            Err(_) => (LlmStatus::Error, "offline", None),
        };
        crate::metrics::global().llm_call(&LlmCall {
            provider: "offline",
            operation,
            model,
            status,
            duration: started.elapsed(),
            usage,
        });
        answer
    }
}
