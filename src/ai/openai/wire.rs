//! The OpenAI JSON of chat completions and embeddings answers, read into typed values.

use serde::Deserialize;
use serde_json::Value;

use super::failures::invalid_output;
use crate::ai::{ProviderError, TokenUsage};

pub(super) fn parse_reply<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, ProviderError> {
    serde_json::from_value(value).map_err(|e| {
        invalid_output(
            &format!("not an OpenAI-style answer: {e}"),
            TokenUsage::default(),
        )
    })
}

#[derive(Deserialize)]
pub(super) struct ChatResponse {
    pub(super) model: Option<String>,
    pub(super) choices: Vec<Choice>,
    pub(super) usage: Option<Usage>,
}

#[derive(Deserialize)]
pub(super) struct Choice {
    pub(super) message: ChatMessage,
    pub(super) finish_reason: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ChatMessage {
    pub(super) content: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Usage {
    #[serde(default)]
    pub(super) prompt_tokens: u64,
    #[serde(default)]
    pub(super) completion_tokens: u64,
    pub(super) total_tokens: Option<u64>,
}

impl Usage {
    pub(super) fn into_usage(self) -> TokenUsage {
        TokenUsage {
            input_tokens: self.prompt_tokens,
            output_tokens: self.completion_tokens,
            total_tokens: self
                .total_tokens
                .unwrap_or(self.prompt_tokens.saturating_add(self.completion_tokens)),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct EmbeddingResponse {
    pub(super) model: Option<String>,
    pub(super) data: Vec<EmbeddingData>,
    pub(super) usage: Option<Usage>,
}

#[derive(Deserialize)]
pub(super) struct EmbeddingData {
    pub(super) embedding: EmbeddingValue,
}

/// One vector, or one per token.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum EmbeddingValue {
    One(Vec<f32>),
    PerToken(Vec<Vec<f32>>),
}

/// One vector per input, or one per token (llama.cpp without pooling): mean-pooled and
/// L2-normalised, reported as `mean`.
pub(super) fn pool(raw: EmbeddingValue) -> Result<(Vec<f32>, Option<String>), String> {
    match raw {
        EmbeddingValue::One(vector) if !vector.is_empty() => Ok((vector, None)),
        EmbeddingValue::PerToken(tokens) => {
            let Some(first) = tokens.first() else {
                return Err("the embedding has no token vectors".into());
            };
            let dims = first.len();
            if dims == 0 || tokens.iter().any(|t| t.len() != dims) {
                return Err("the token vectors have different lengths".into());
            }
            let mut mean = vec![0f32; dims];
            for token in &tokens {
                for (m, v) in mean.iter_mut().zip(token) {
                    *m += v;
                }
            }
            let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                mean.iter_mut().for_each(|v| *v /= norm);
            }
            Ok((mean, Some("mean".into())))
        }
        EmbeddingValue::One(_) => Err("the embedding is empty".into()),
    }
}
