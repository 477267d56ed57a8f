//! Counting a request's tokens before it is sent, as the rate budget and Azure OpenAI's
//! admission do: the prompt with the model's own tokenizer (tiktoken's `o200k_base` or
//! `cl100k_base` for OpenAI-family models), plus a few tokens of framing per chat message, plus
//! the `max_tokens` asked for. Models tiktoken does not know are estimated at four characters
//! a token.

use serde_json::Value;
use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

/// How a deployment's text is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCounter {
    /// A real BPE tokenizer (loaded once per process, on first use).
    Bpe(Tokenizer),
    /// About four characters a token.
    Estimate,
}

/// Tokens of framing around each chat message, and priming the reply (OpenAI's cookbook).
const PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;

impl TokenCounter {
    /// The counter of `setting` (`o200k_base`, `cl100k_base`, `estimate`), or, with no setting,
    /// of the model's name (an Azure deployment's name often says nothing: set it there).
    pub fn new(setting: Option<&str>, model: &str) -> Result<Self, String> {
        match setting.map(str::trim).filter(|s| !s.is_empty()) {
            Some("o200k_base") => Ok(Self::Bpe(Tokenizer::O200kBase)),
            Some("cl100k_base") => Ok(Self::Bpe(Tokenizer::Cl100kBase)),
            Some("estimate") => Ok(Self::Estimate),
            Some(other) => Err(format!(
                "unknown tokenizer {other:?}: use o200k_base, cl100k_base or estimate"
            )),
            None => Ok(Self::for_model(model)),
        }
    }

    /// The counter tiktoken names for `model`, or the estimate.
    pub fn for_model(model: &str) -> Self {
        match get_tokenizer(model) {
            Some(t @ (Tokenizer::O200kBase | Tokenizer::Cl100kBase)) => Self::Bpe(t),
            Some(Tokenizer::O200kHarmony) => Self::Bpe(Tokenizer::O200kBase),
            _ => Self::Estimate,
        }
    }

    fn bpe(tokenizer: Tokenizer) -> &'static CoreBPE {
        match tokenizer {
            Tokenizer::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
            _ => tiktoken_rs::o200k_base_singleton(),
        }
    }

    /// Tokens of `text`.
    pub fn count(&self, text: &str) -> u64 {
        match self {
            Self::Bpe(t) => Self::bpe(*t).encode_ordinary(text).len() as u64,
            Self::Estimate => (text.chars().count() as u64).div_ceil(4),
        }
    }

    /// Loads the tokenizer now (it takes a moment), so that the first call does not wait.
    pub fn warm_up(&self) {
        let _ = self.count("warm up");
    }

    /// A request body's prompt tokens: every chat message's content with its framing, or the
    /// embedding input.
    pub fn prompt_tokens(&self, body: &Value) -> u64 {
        let messages = body["messages"].as_array().map_or(0, |messages| {
            messages
                .iter()
                .map(|m| PER_MESSAGE + self.content(&m["content"]))
                .sum::<u64>()
                + REPLY_PRIMING
        });
        messages + self.content(&body["input"])
    }

    /// What a request is charged at admission: its prompt tokens plus its `max_tokens`.
    pub fn request_tokens(&self, body: &Value) -> u64 {
        self.prompt_tokens(body)
            .saturating_add(body["max_tokens"].as_u64().unwrap_or(0))
    }

    fn content(&self, v: &Value) -> u64 {
        match v {
            Value::String(s) => self.count(s),
            Value::Array(items) => items.iter().map(|i| self.content(i)).sum(),
            // A content part (`{"type": "text", "text": …}`).
            Value::Object(part) => part.get("text").map_or(0, |t| self.content(t)),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_models_are_counted_with_their_tokenizer() {
        let o200k = TokenCounter::for_model("gpt-4o-mini");
        assert!(matches!(o200k, TokenCounter::Bpe(Tokenizer::O200kBase)));
        assert!(matches!(
            TokenCounter::for_model("gpt-4-0613"),
            TokenCounter::Bpe(Tokenizer::Cl100kBase)
        ));
        assert!(matches!(
            TokenCounter::for_model("smollm2"),
            TokenCounter::Estimate
        ));
        assert_eq!(o200k.count("hello world"), 2);
        assert_eq!(
            TokenCounter::Bpe(Tokenizer::Cl100kBase).count("hello world"),
            2
        );
        // The estimate: four characters a token.
        assert_eq!(TokenCounter::Estimate.count("hello world"), 3);
    }

    #[test]
    fn settings_choose_the_tokenizer_and_reject_unknown_names() {
        assert!(matches!(
            TokenCounter::new(Some("cl100k_base"), "my-deployment"),
            Ok(TokenCounter::Bpe(Tokenizer::Cl100kBase))
        ));
        assert!(matches!(
            TokenCounter::new(Some("estimate"), "gpt-4o"),
            Ok(TokenCounter::Estimate)
        ));
        assert!(matches!(
            TokenCounter::new(None, "my-deployment"),
            Ok(TokenCounter::Estimate)
        ));
        let err = TokenCounter::new(Some("bert"), "gpt-4o").unwrap_err();
        assert!(err.contains("o200k_base"), "{err}");
    }

    #[test]
    fn a_request_is_charged_its_prompt_with_framing_and_its_max_tokens() {
        let counter = TokenCounter::for_model("gpt-4o");
        let body = json!({"model": "gpt-4o", "max_tokens": 64, "messages": [
            {"role": "system", "content": "hello world"},
            {"role": "user", "content": [{"type": "text", "text": "hello world"}]},
        ]});
        assert_eq!(counter.prompt_tokens(&body), 2 * (3 + 2) + 3);
        assert_eq!(counter.request_tokens(&body), 13 + 64);
        let embedding = json!({"model": "text-embedding-3-small", "input": "hello world"});
        assert_eq!(counter.request_tokens(&embedding), 2);
        let batch = json!({"input": ["hello world", "hello world"]});
        assert_eq!(counter.prompt_tokens(&batch), 4);
    }
}
