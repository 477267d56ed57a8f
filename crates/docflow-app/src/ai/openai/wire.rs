//! The OpenAI JSON of chat completions and embeddings answers, read into typed values.

use serde::Deserialize;
use serde_json::Value;

use super::answer::interpret;
use super::failures::invalid_output;
use crate::ai::{AiOutput, Operation, ProviderError, TaskOutput, TokenUsage};

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

/// A chat answer: its text, model, usage and why it stopped.
pub(super) struct ChatAnswer {
    pub(super) content: String,
    pub(super) model: String,
    pub(super) usage: TokenUsage,
    pub(super) finish_reason: Option<String>,
}

/// The first choice of a chat completions answer, typed.
pub(super) fn chat_answer(value: Value, default_model: &str) -> Result<ChatAnswer, ProviderError> {
    let reply: ChatResponse = parse_reply(value)?;
    let usage = reply.usage.map(Usage::into_usage).unwrap_or_default();
    let choice = reply
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| invalid_output("the answer has no choices", usage))?;
    if choice.finish_reason.as_deref() == Some("content_filter") {
        return Err(ProviderError::Rejected {
            reason: "ContentFiltered",
            detail: "the provider's content filter stopped the completion".into(),
        });
    }
    Ok(ChatAnswer {
        content: choice.message.content.unwrap_or_default(),
        model: reply.model.unwrap_or_else(|| default_model.to_string()),
        usage,
        finish_reason: choice.finish_reason,
    })
}

/// Reads a chat completions answer body as a call does (typed parse, first choice, content
/// filter, the operation's output), without the call: for fuzzing and tests.
pub fn parse_chat_answer(
    operation: &Operation,
    text: &str,
    body: &[u8],
) -> Result<TaskOutput, ProviderError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid_output(&format!("not JSON: {e}"), TokenUsage::default()))?;
    let answer = chat_answer(value, "model")?;
    interpret(operation, text, &answer.content)
        .map_err(|problem| invalid_output(&problem, answer.usage))
}

/// The vector of an embeddings answer (pooled when per token), typed.
pub(super) fn embedding_answer(
    value: Value,
    default_model: &str,
) -> Result<AiOutput, ProviderError> {
    let reply: EmbeddingResponse = parse_reply(value)?;
    let usage = reply.usage.map(Usage::into_usage).unwrap_or_default();
    let raw = reply
        .data
        .into_iter()
        .next()
        .map(|d| d.embedding)
        .ok_or_else(|| invalid_output("no embedding in the answer", usage))?;
    let (vector, pooling) = pool(raw).map_err(|e| invalid_output(&e, usage))?;
    Ok(AiOutput {
        model: reply.model.unwrap_or_else(|| default_model.to_string()),
        usage,
        output: TaskOutput::Embed {
            dimensions: vector.len(),
            vector,
            chunks: Vec::new(),
            pooling,
        },
    })
}

/// Reads an embeddings answer body as a call does, without the call: for fuzzing and tests.
pub fn parse_embedding_answer(body: &[u8]) -> Result<AiOutput, ProviderError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid_output(&format!("not JSON: {e}"), TokenUsage::default()))?;
    embedding_answer(value, "model")
}
