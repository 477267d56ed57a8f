//! How a server is asked for structured output. Servers disagree on the field: OpenAI and
//! Azure OpenAI take `response_format: {type: "json_schema", json_schema: {name, strict,
//! schema}}`, llama.cpp's server `response_format: {type: "json_object", schema}`, Ollama
//! `format: <schema>`, vLLM `structured_outputs: {json: <schema>}`. The schema is also written
//! into the prompt, so `prompt_only` still tells the model what to answer.

use serde_json::{Value, json};

/// A structured-output dialect (`DOCFLOW_OPENAI_STRUCTURED_OUTPUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `response_format: {type: "json_schema", json_schema: {name, strict: true, schema}}`.
    JsonSchema,
    /// `response_format: {type: "json_object", schema}` (llama.cpp server).
    JsonObjectSchema,
    /// `format: <schema>` (Ollama).
    Ollama,
    /// `structured_outputs: {json: <schema>}` (vLLM).
    Vllm,
    /// Nothing but the prompt.
    PromptOnly,
}

impl Dialect {
    /// All dialects, in the order of [`Dialect::index`].
    pub const ALL: [Dialect; 5] = [
        Dialect::JsonSchema,
        Dialect::JsonObjectSchema,
        Dialect::Ollama,
        Dialect::Vllm,
        Dialect::PromptOnly,
    ];

    /// The setting's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::JsonSchema => "json_schema",
            Self::JsonObjectSchema => "json_object_schema",
            Self::Ollama => "ollama",
            Self::Vllm => "vllm",
            Self::PromptOnly => "prompt_only",
        }
    }

    /// Parses the setting.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(text.trim()))
    }

    /// Its position in [`Dialect::ALL`].
    pub fn index(self) -> u8 {
        Self::ALL.iter().position(|d| *d == self).unwrap_or(0) as u8
    }

    /// The dialect at a position of [`Dialect::ALL`].
    pub fn from_index(i: u8) -> Self {
        Self::ALL
            .get(usize::from(i))
            .copied()
            .unwrap_or(Self::PromptOnly)
    }

    /// What to try when a server rejects this one.
    pub fn fallback(self) -> Option<Self> {
        match self {
            Self::JsonSchema => Some(Self::JsonObjectSchema),
            Self::JsonObjectSchema => Some(Self::PromptOnly),
            Self::Ollama | Self::Vllm => Some(Self::JsonSchema),
            Self::PromptOnly => None,
        }
    }

    /// Adds this dialect's field to a chat request body.
    pub fn apply(self, body: &mut Value, name: &str, schema: &Value) {
        match self {
            Self::JsonSchema => {
                body["response_format"] = json!({"type": "json_schema",
                    "json_schema": {"name": name, "strict": true, "schema": schema}});
            }
            Self::JsonObjectSchema => {
                body["response_format"] = json!({"type": "json_object", "schema": schema});
            }
            Self::Ollama => body["format"] = schema.clone(),
            Self::Vllm => body["structured_outputs"] = json!({"json": schema}),
            Self::PromptOnly => {}
        }
    }
}

/// Whether an error answer says the server does not take the structured-output field.
pub fn rejects_field(status: u16, body: &str) -> bool {
    if !matches!(status, 400 | 422 | 500 | 501) {
        return false;
    }
    let body = body.to_ascii_lowercase();
    [
        "response_format",
        "json_schema",
        "structured_outputs",
        "guided_json",
        "\"format\"",
        "schema",
    ]
    .iter()
    .any(|needle| body.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_sets_its_field() {
        let schema = json!({"type": "object"});
        let shape = |d: Dialect| {
            let mut body = json!({"model": "m"});
            d.apply(&mut body, "sentiment", &schema);
            body
        };
        assert_eq!(
            shape(Dialect::JsonSchema)["response_format"]["json_schema"]["strict"],
            true
        );
        assert_eq!(
            shape(Dialect::JsonObjectSchema)["response_format"],
            json!({"type": "json_object", "schema": schema})
        );
        assert_eq!(shape(Dialect::Ollama)["format"], schema);
        assert_eq!(shape(Dialect::Vllm)["structured_outputs"]["json"], schema);
        assert_eq!(shape(Dialect::PromptOnly), json!({"model": "m"}));
    }

    #[test]
    fn names_round_trip_and_fallbacks_end() {
        for d in Dialect::ALL {
            assert_eq!(Dialect::parse(d.name()), Some(d));
            assert_eq!(Dialect::from_index(d.index()), d);
        }
        let mut d = Dialect::Ollama;
        let mut steps = 0;
        while let Some(next) = d.fallback() {
            d = next;
            steps += 1;
        }
        assert_eq!((d, steps), (Dialect::PromptOnly, 3));
        assert!(rejects_field(
            400,
            r#"{"error":"unknown field response_format"}"#
        ));
        assert!(!rejects_field(
            400,
            r#"{"error":"context length exceeded"}"#
        ));
        assert!(!rejects_field(404, "response_format"));
    }
}
