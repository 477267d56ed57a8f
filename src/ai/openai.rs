//! OpenAI-compatible provider: chat completions and embeddings over HTTP.
//!
//! One implementation serves OpenAI, Azure OpenAI (deployment URLs with `api-version`, an
//! `api-key` header or a Microsoft Entra token) and compatible servers (Ollama, vLLM,
//! llama.cpp). The OpenAI JSON lives here and nowhere else.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AiOutput, AiProvider, AiRequest, Entity, EntityKind, LabelScore, Operation, ProviderError,
    SentimentLabel, TaskOutput, TokenUsage,
};

/// The scope of Azure OpenAI (Azure AI services) tokens.
pub const COGNITIVE_SERVICES_SCOPE: &str = "https://cognitiveservices.azure.com/.default";

/// Wait assumed when a 429 carries no `Retry-After` header.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

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
        }
    }
}

/// The OpenAI-compatible provider.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    options: OpenAiOptions,
    http: Client,
}

impl OpenAiProvider {
    /// A provider with its own HTTP client.
    pub fn new(options: OpenAiOptions) -> Result<Self, reqwest::Error> {
        let http = Client::builder().timeout(options.timeout).build()?;
        Ok(Self { options, http })
    }

    fn url(&self, model: &str, operation: &str) -> String {
        match &self.options.endpoint {
            Endpoint::OpenAi { base_url } => {
                format!("{}/{operation}", base_url.trim_end_matches('/'))
            }
            Endpoint::Azure {
                endpoint,
                api_version,
            } => format!(
                "{}/openai/deployments/{model}/{operation}?api-version={api_version}",
                endpoint.trim_end_matches('/')
            ),
        }
    }

    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, ProviderError> {
        Ok(match &self.options.auth {
            Auth::None => request,
            Auth::BearerKey(key) => request.bearer_auth(key),
            Auth::AzureApiKey(key) => request.header("api-key", key),
            Auth::Entra(credential) => {
                let token = credential
                    .get_token(&[COGNITIVE_SERVICES_SCOPE], None)
                    .await
                    .map_err(|e| ProviderError::Transient {
                        detail: format!("getting a Microsoft Entra token failed: {e}"),
                    })?;
                request.bearer_auth(token.token.secret())
            }
        })
    }

    async fn post(&self, url: String, body: Value) -> Result<Value, ProviderError> {
        let request = self.authorize(self.http.post(&url).json(&body)).await?;
        let response = request.send().await.map_err(|e| ProviderError::Transient {
            detail: describe_transport_error(&e),
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .map_err(|e| ProviderError::Transient {
                detail: describe_transport_error(&e),
            })?;
        if !status.is_success() {
            return Err(classify_status(status, &headers, &text));
        }
        serde_json::from_str(&text).map_err(|e| ProviderError::Transient {
            detail: format!("provider answered {status} with a body that is not JSON: {e}"),
        })
    }

    async fn chat(
        &self,
        system: String,
        text: &str,
        json_mode: bool,
    ) -> Result<(String, String, TokenUsage), ProviderError> {
        let model = &self.options.chat_model;
        let mut body = json!({
            "model": model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": text},
            ],
        });
        if json_mode {
            body["response_format"] = json!({"type": "json_object"});
        }
        let reply: ChatResponse =
            parse_reply(self.post(self.url(model, "chat/completions"), body).await?)?;
        let choice = reply
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| invalid_output("no choices"))?;
        if choice.finish_reason.as_deref() == Some("content_filter") {
            return Err(ProviderError::Rejected {
                reason: "ContentFiltered",
                detail: "the provider's content filter stopped the completion".into(),
            });
        }
        let content = choice
            .message
            .content
            .ok_or_else(|| invalid_output("empty message"))?;
        let model = reply.model.unwrap_or_else(|| model.clone());
        Ok((
            content,
            model,
            reply.usage.map(Usage::into_usage).unwrap_or_default(),
        ))
    }

    async fn embed(&self, text: &str) -> Result<AiOutput, ProviderError> {
        let model = &self.options.embedding_model;
        let body = json!({"model": model, "input": text});
        let reply: EmbeddingResponse =
            parse_reply(self.post(self.url(model, "embeddings"), body).await?)?;
        let vector = reply
            .data
            .into_iter()
            .next()
            .map(|d| d.embedding)
            .ok_or_else(|| invalid_output("no embedding in the answer"))?;
        Ok(AiOutput {
            model: reply.model.unwrap_or_else(|| model.clone()),
            usage: reply.usage.map(Usage::into_usage).unwrap_or_default(),
            output: TaskOutput::Embed {
                dimensions: vector.len(),
                vector,
                chunks: Vec::new(),
            },
        })
    }
}

#[async_trait]
impl AiProvider for OpenAiProvider {
    fn name(&self) -> &str {
        match self.options.endpoint {
            Endpoint::OpenAi { .. } => "openai",
            Endpoint::Azure { .. } => "azure-openai",
        }
    }

    async fn run(&self, request: &AiRequest) -> Result<AiOutput, ProviderError> {
        let text = request.text.as_str();
        let (system, json_mode) = match &request.operation {
            Operation::Embed => return self.embed(text).await,
            op => prompt(op),
        };
        let (content, model, usage) = self.chat(system, text, json_mode).await?;
        let output = interpret(&request.operation, text, &content)?;
        Ok(AiOutput {
            model,
            usage,
            output,
        })
    }
}

/// The system prompt of an operation, and whether the answer must be a JSON object.
fn prompt(operation: &Operation) -> (String, bool) {
    match operation {
        Operation::Summarize { max_words } => (
            format!(
                "Summarize the document the user sends in at most {max_words} words. \
                 Reply with the summary text only."
            ),
            false,
        ),
        Operation::Classify { labels } => (
            format!(
                "Classify the document the user sends into exactly one of these labels: {}. \
                 Reply with a JSON object {{\"label\": <one of the labels>, \"scores\": {{<label>: <number 0..1>}}}} \
                 giving a score for every label.",
                serde_json::to_string(labels).unwrap_or_default()
            ),
            true,
        ),
        Operation::ExtractEntities => (
            "Extract the named entities of the document the user sends: people, organizations, \
             locations, dates and money amounts. Reply with a JSON object {\"entities\": \
             [{\"kind\": \"person\"|\"organization\"|\"location\"|\"date\"|\"money\", \"text\": <exact text as written>}]} \
             in order of appearance."
                .to_string(),
            true,
        ),
        Operation::Sentiment => (
            "Rate the overall sentiment of the document the user sends. Reply with a JSON object \
             {\"label\": \"positive\"|\"negative\"|\"neutral\", \"score\": <number from -1 to 1>}."
                .to_string(),
            true,
        ),
        Operation::Embed => (String::new(), false),
    }
}

/// Turns the model's answer into a typed output, checking it against the request.
fn interpret(
    operation: &Operation,
    text: &str,
    content: &str,
) -> Result<TaskOutput, ProviderError> {
    match operation {
        Operation::Summarize { max_words } => {
            let words: Vec<&str> = content.split_whitespace().collect();
            let keep = words.len().min(*max_words as usize);
            Ok(TaskOutput::Summarize {
                summary: words[..keep].join(" "),
            })
        }
        Operation::Classify { labels } => {
            let answer: ClassifyAnswer = parse_content(content)?;
            let label = labels
                .iter()
                .find(|l| l.eq_ignore_ascii_case(answer.label.trim()))
                .cloned()
                .ok_or_else(|| {
                    invalid_output(&format!(
                        "label {:?} is not one of the labels",
                        answer.label
                    ))
                })?;
            let mut scores: Vec<LabelScore> = labels
                .iter()
                .map(|l| LabelScore {
                    label: l.clone(),
                    score: answer
                        .scores
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(l))
                        .map(|(_, v)| v.clamp(0.0, 1.0))
                        .unwrap_or(if *l == label { 1.0 } else { 0.0 }),
                })
                .collect();
            scores.sort_by(|a, b| b.score.total_cmp(&a.score));
            Ok(TaskOutput::Classify { label, scores })
        }
        Operation::ExtractEntities => {
            let answer: EntitiesAnswer = parse_content(content)?;
            Ok(TaskOutput::ExtractEntities {
                entities: locate_entities(text, answer.entities),
            })
        }
        Operation::Sentiment => {
            let answer: SentimentAnswer = parse_content(content)?;
            Ok(TaskOutput::Sentiment {
                label: answer.label,
                score: answer.score.clamp(-1.0, 1.0),
            })
        }
        Operation::Embed => Err(invalid_output("embeddings do not use chat")),
    }
}

/// Finds each entity the model named in the text, in order; names not in the text are dropped.
fn locate_entities(text: &str, named: Vec<NamedEntity>) -> Vec<Entity> {
    let mut entities = Vec::new();
    let mut from = 0;
    for entity in named {
        let needle = entity.text.trim();
        if needle.is_empty() {
            continue;
        }
        let found = text[from..]
            .find(needle)
            .map(|i| i + from)
            .or_else(|| text.find(needle));
        if let Some(start) = found {
            let end = start + needle.len();
            from = end;
            entities.push(Entity {
                kind: entity.kind,
                text: needle.to_string(),
                start: text[..start].chars().count(),
                end: text[..end].chars().count(),
            });
        }
    }
    entities.sort_by_key(|e| e.start);
    entities
}

fn parse_reply<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, ProviderError> {
    serde_json::from_value(value).map_err(|e| invalid_output(&e.to_string()))
}

fn parse_content<T: for<'de> Deserialize<'de>>(content: &str) -> Result<T, ProviderError> {
    // Some servers wrap JSON mode answers in a code fence.
    let trimmed = content
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```")
        .trim();
    serde_json::from_str(trimmed).map_err(|e| invalid_output(&format!("{e} in {trimmed:.200}")))
}

fn invalid_output(detail: &str) -> ProviderError {
    ProviderError::Rejected {
        reason: "InvalidModelOutput",
        detail: format!("the model's answer is unusable: {detail}"),
    }
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("provider call timed out: {e}")
    } else if e.is_connect() {
        format!("cannot connect to the provider: {e}")
    } else {
        format!("provider call failed: {e}")
    }
}

/// Maps a non-2xx answer to what should happen next.
fn classify_status(status: StatusCode, headers: &HeaderMap, body: &str) -> ProviderError {
    let detail = format!("{status}: {}", error_message(body));
    match status.as_u16() {
        429 => ProviderError::RetryAfter {
            delay: retry_after(headers).unwrap_or(DEFAULT_RETRY_AFTER),
            detail,
        },
        400 | 413 | 422 if is_content_filter(body) => ProviderError::Rejected {
            reason: "ContentFiltered",
            detail,
        },
        400 | 413 | 422 => ProviderError::Rejected {
            reason: "InvalidRequest",
            detail,
        },
        // 401/403/404 are our configuration, not the message's fault: let it be redelivered.
        _ => ProviderError::Transient { detail },
    }
}

/// `retry-after-ms` (Azure OpenAI) wins over `Retry-After` (seconds or an HTTP date).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    let value = header("retry-after")?;
    if let Ok(seconds) = value.parse::<f64>() {
        return Some(Duration::from_secs_f64(seconds.max(0.0)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

fn is_content_filter(body: &str) -> bool {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return false;
    };
    let error = &value["error"];
    let codes = [
        error["code"].as_str(),
        error["innererror"]["code"].as_str(),
        error["type"].as_str(),
    ];
    codes.iter().flatten().any(|c| {
        let c = c.to_ascii_lowercase();
        c.contains("content_filter") || c.contains("responsibleaipolicyviolation")
    })
}

fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

#[derive(Deserialize)]
struct ChatResponse {
    model: Option<String>,
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChatMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChatMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    total_tokens: Option<u64>,
}

impl Usage {
    fn into_usage(self) -> TokenUsage {
        TokenUsage {
            input_tokens: self.prompt_tokens,
            output_tokens: self.completion_tokens,
            total_tokens: self
                .total_tokens
                .unwrap_or(self.prompt_tokens + self.completion_tokens),
        }
    }
}

#[derive(Deserialize)]
struct EmbeddingResponse {
    model: Option<String>,
    data: Vec<EmbeddingData>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct EmbeddingData {
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct ClassifyAnswer {
    label: String,
    #[serde(default)]
    scores: std::collections::BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct EntitiesAnswer {
    entities: Vec<NamedEntity>,
}

#[derive(Deserialize)]
struct NamedEntity {
    kind: EntityKind,
    text: String,
}

#[derive(Deserialize)]
struct SentimentAnswer {
    label: SentimentLabel,
    score: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_headers() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn azure_urls_use_deployments_and_api_version() {
        let provider = OpenAiProvider::new(OpenAiOptions {
            endpoint: Endpoint::Azure {
                endpoint: "https://contoso.openai.azure.com/".into(),
                api_version: "2024-10-21".into(),
            },
            ..OpenAiOptions::default()
        })
        .unwrap();
        assert_eq!(
            provider.url("gpt4o", "chat/completions"),
            "https://contoso.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
        );
    }

    #[test]
    fn entities_are_located_in_the_text() {
        let text = "Acme paid Bob. Bob thanked Acme.";
        let named = vec![
            NamedEntity {
                kind: EntityKind::Organization,
                text: "Acme".into(),
            },
            NamedEntity {
                kind: EntityKind::Person,
                text: "Bob".into(),
            },
            NamedEntity {
                kind: EntityKind::Person,
                text: "Bob".into(),
            },
            NamedEntity {
                kind: EntityKind::Person,
                text: "Zed".into(),
            },
        ];
        let found = locate_entities(text, named);
        let starts: Vec<usize> = found.iter().map(|e| e.start).collect();
        assert_eq!(starts, vec![0, 10, 15]);
    }
}
