//! OpenAI-compatible provider: chat completions and embeddings over HTTP.
//!
//! One implementation serves OpenAI, Azure OpenAI (deployment URLs with `api-version`, an
//! `api-key` header or a Microsoft Entra token) and compatible servers (Ollama, vLLM,
//! llama.cpp). The OpenAI JSON lives in this module and nowhere else.
//!
//! - [`dialect`]: how each server is asked for structured output, and the fallback order.
//! - [`answer`]: prompts, JSON Schemas and the tolerant reading of answers.
//! - `failures`: what each failure means for the task (retry, configuration, content filter).
//! - `options`: the endpoint, credentials, models and `max_tokens` per kind.
//! - `wire`: the OpenAI JSON of answers read into typed values, and pooling of per-token
//!   embeddings.
//!
//! Every chat call sends `max_tokens`. JSON kinds send their schema in the configured dialect;
//! a server that rejects the field gets the next dialect once, and the choice is remembered.
//! An unusable answer gets one repair call (the error and the schema sent back).

pub mod answer;
pub mod dialect;
mod failures;
mod observe;
mod options;
mod wire;

use crate::ai::budget::{Budget, BudgetScope, BudgetStore, LocalBudget, RateHeaders, Reservation};
use crate::ai::fleet::FleetBudget;
use crate::ai::tokens::TokenCounter;
pub use failures::{MAX_RETRY_AFTER, retry_after};
use failures::{
    classify_status, describe_transport_error, embeddings_unsupported, error_message,
    invalid_output, is_content_filter,
};
pub use options::{Auth, COGNITIVE_SERVICES_SCOPE, Endpoint, MaxTokens, OpenAiOptions};
use wire::{ChatAnswer, ChatResponse, chat_answer, embedding_answer, parse_reply};
pub use wire::{parse_chat_answer, parse_embedding_answer};

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tracing::Instrument as _;

use crate::telemetry::genai;
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use self::answer::{interpret, prompt};
use self::dialect::{Dialect, rejects_field};
use super::{AiOutput, AiProvider, AiRequest, Operation, ProviderError, TaskOutput, TokenUsage};

/// Wait assumed when a 429 carries no `Retry-After` header.
pub(crate) const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The OpenAI-compatible provider.
#[derive(Debug)]
pub struct OpenAiProvider {
    options: OpenAiOptions,
    http: Client,
    /// The dialect in use: the configured one until a server rejects it.
    dialect: AtomicU8,
    /// TPM, RPM and the concurrency window of the chat deployment.
    chat_budget: Arc<dyn BudgetStore>,
    /// The embedding deployment's (Azure limits each deployment on its own); `None`: the
    /// embedding model is the chat model.
    embedding_budget: Option<Arc<dyn BudgetStore>>,
}

impl OpenAiProvider {
    /// A provider with its own HTTP client.
    pub fn new(options: OpenAiOptions) -> Result<Self, reqwest::Error> {
        let http = Client::builder().timeout(options.timeout).build()?;
        let b = options.budget;
        let now = std::time::Instant::now();
        let endpoint = options.endpoint.base();
        let shared = options
            .shared
            .clone()
            .filter(|_| b.adaptive && b.scope == BudgetScope::Fleet);
        let budget = |model: &str, tpm, rpm| -> Arc<dyn BudgetStore> {
            match &shared {
                Some(shared) => Arc::new(FleetBudget::start(
                    shared.clone(),
                    &endpoint,
                    model,
                    (tpm, rpm),
                    b.max_concurrency,
                )),
                None => Arc::new(LocalBudget::new(if b.adaptive {
                    Budget::new(tpm, rpm, b.max_concurrency, now)
                } else {
                    Budget::fixed(b.max_concurrency, now)
                })),
            }
        };
        // Loading a tokenizer takes a moment: off the first call's path.
        let counter = b
            .tokenizer
            .unwrap_or_else(|| TokenCounter::for_model(&options.chat_model));
        if counter != TokenCounter::Estimate {
            let _ = std::thread::Builder::new()
                .name("tokenizer-load".into())
                .spawn(move || counter.warm_up());
        }
        // Configured limits are the chat deployment's; an embedding deployment's are learned.
        let embedding_budget = (options.embedding_model != options.chat_model)
            .then(|| budget(&options.embedding_model, None, None));
        let chat_budget = budget(&options.chat_model, b.tpm, b.rpm);
        crate::metrics::watch_budget(&options.chat_model, &chat_budget);
        if let Some(embedding) = &embedding_budget {
            crate::metrics::watch_budget(&options.embedding_model, embedding);
        }
        Ok(Self {
            dialect: AtomicU8::new(options.structured_output.index()),
            chat_budget,
            embedding_budget,
            options,
            http,
        })
    }

    /// The structured-output dialect in use now.
    pub fn dialect(&self) -> Dialect {
        Dialect::from_index(self.dialect.load(Ordering::Relaxed))
    }

    /// Checks that the endpoint answers and knows the chat model, with one 1-token call;
    /// the error says what to fix.
    async fn probe_chat(&self) -> Result<String, ProviderError> {
        let model = &self.options.chat_model;
        let body = json!({"model": model, "max_tokens": 1, "temperature": 0,
                          "messages": [{"role": "user", "content": "ping"}]});
        let reply: ChatResponse =
            parse_reply(self.post(self.url(model, "chat/completions"), body).await?)?;
        Ok(reply.model.unwrap_or_else(|| model.clone()))
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
        self.post_raw(url, body)
            .await?
            .map_err(|(status, headers, text)| self.classify(status, &headers, &text))
    }

    /// What a failed answer means; under the naive policy a `429` is an ordinary transient
    /// failure (retried at once, as that policy does).
    fn classify(&self, status: StatusCode, headers: &HeaderMap, text: &str) -> ProviderError {
        match classify_status(status, headers, text) {
            ProviderError::RetryAfter { detail, .. } if !self.options.budget.adaptive => {
                ProviderError::Transient { detail }
            }
            other => other,
        }
    }

    /// Waits for the budget to admit a call of `tokens`; a wait longer than the budget's
    /// `max_wait` is handed back as a rate limit, so that the message is rescheduled instead.
    async fn admit(
        &self,
        budget: &dyn BudgetStore,
        model: &str,
        tokens: u64,
    ) -> Result<Reservation, ProviderError> {
        let started = std::time::Instant::now();
        // A span of its own once the call has to wait: budget holds show in the trace.
        let mut hold: Option<tracing::Span> = None;
        loop {
            let now = std::time::Instant::now();
            let wait = match budget.reserve(tokens, now) {
                Ok(reservation) => {
                    if let Some(span) = &hold {
                        genai::hold_ended(span, started.elapsed(), true);
                    }
                    return Ok(reservation);
                }
                Err(wait) => wait,
            };
            if now.duration_since(started) + wait > self.options.budget.max_wait {
                if let Some(span) = &hold {
                    genai::hold_ended(span, started.elapsed(), false);
                }
                return Err(ProviderError::RetryAfter {
                    delay: wait,
                    detail: format!(
                        "the deployment's rate budget has no room for {tokens} tokens for {wait:?}"
                    ),
                });
            }
            let span = hold.get_or_insert_with(|| genai::hold_span(model, tokens));
            tokio::time::sleep(wait.max(Duration::from_millis(10)))
                .instrument(span.clone())
                .await;
        }
    }

    /// Posts within the budget; a non-2xx answer comes back as its parts, for callers that
    /// look at it first. The reservation is settled with the reported usage and the
    /// provider's rate headers (a `429` shrinks the budget until its reset).
    async fn post_raw(
        &self,
        url: String,
        body: Value,
    ) -> Result<Result<Value, (StatusCode, HeaderMap, String)>, ProviderError> {
        let model = body["model"].as_str().unwrap_or_default();
        let budget = match &self.embedding_budget {
            Some(embedding) if model == self.options.embedding_model => embedding.as_ref(),
            _ => self.chat_budget.as_ref(),
        };
        let counter = self
            .options
            .budget
            .tokenizer
            .unwrap_or_else(|| TokenCounter::for_model(model));
        let reservation = self
            .admit(budget, model, counter.request_tokens(&body))
            .await?;
        let span = observe::client_span(&self.options.endpoint, model, &body);
        let answer = self.send(&url, &body).instrument(span.clone()).await;
        let now = std::time::Instant::now();
        let parsed = match &answer {
            Ok((status, _, text)) if status.is_success() => {
                serde_json::from_str::<Value>(text).ok()
            }
            _ => None,
        };
        observe::record_answer(&span, &answer, parsed.as_ref());
        match &answer {
            Ok((status, headers, _)) if *status == StatusCode::TOO_MANY_REQUESTS => {
                let rates = RateHeaders::parse(headers);
                budget.refused(reservation, &rates, retry_after(headers), now);
            }
            Ok((status, headers, _)) if status.is_success() => {
                let used = parsed
                    .as_ref()
                    .and_then(|v| v["usage"]["total_tokens"].as_u64())
                    .unwrap_or(reservation.tokens);
                budget.settle(reservation, used, &RateHeaders::parse(headers), now);
            }
            _ => budget.failed(reservation, now),
        }
        let (status, headers, text) = answer?;
        if !status.is_success() {
            return Ok(Err((status, headers, text)));
        }
        serde_json::from_str(&text)
            .map(Ok)
            .map_err(|e| ProviderError::Transient {
                detail: format!("provider answered {status} with a body that is not JSON: {e}"),
            })
    }

    async fn send(
        &self,
        url: &str,
        body: &Value,
    ) -> Result<(StatusCode, HeaderMap, String), ProviderError> {
        let request = self.authorize(self.http.post(url).json(body)).await?;
        let started = std::time::Instant::now();
        let answer = self.exchange(request, url).await;
        observe::record_call(&self.options.endpoint, body, &answer, started.elapsed());
        answer.map_err(|(error, _)| error)
    }

    /// One HTTP exchange; a failure says whether it timed out.
    async fn exchange(
        &self,
        request: RequestBuilder,
        url: &str,
    ) -> Result<(StatusCode, HeaderMap, String), (ProviderError, bool)> {
        let timeout = self.options.timeout;
        let failed = |e: reqwest::Error| {
            let error = ProviderError::Transient {
                detail: describe_transport_error(&e, url, timeout),
            };
            (error, e.is_timeout())
        };
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(failed)?;
        Ok((status, headers, text))
    }

    /// One chat call; a JSON kind's schema goes out in the current dialect, falling back once
    /// when the server rejects the field.
    async fn chat(
        &self,
        messages: Vec<Value>,
        schema: Option<&(&'static str, Value)>,
        max_tokens: u32,
    ) -> Result<ChatAnswer, ProviderError> {
        let model = &self.options.chat_model;
        let url = self.url(model, "chat/completions");
        let mut dialect = self.dialect();
        loop {
            let mut body = json!({
                "model": model,
                "temperature": 0,
                "max_tokens": max_tokens,
                "messages": messages,
            });
            if let Some((name, schema)) = schema {
                dialect.apply(&mut body, name, schema);
            }
            match self.post_raw(url.clone(), body).await? {
                Ok(value) => return self.chat_answer(value),
                Err((status, headers, text)) => {
                    let fallback = dialect.fallback().filter(|_| {
                        schema.is_some()
                            && !is_content_filter(&text)
                            && rejects_field(status.as_u16(), &text)
                    });
                    match fallback {
                        Some(next) => {
                            tracing::warn!(
                                rejected = dialect.name(),
                                next = next.name(),
                                detail = %error_message(&text),
                                "the server rejects this structured-output dialect; using the next one from now on"
                            );
                            self.dialect.store(next.index(), Ordering::Relaxed);
                            dialect = next;
                        }
                        None => return Err(self.classify(status, &headers, &text)),
                    }
                }
            }
        }
    }

    fn chat_answer(&self, value: Value) -> Result<ChatAnswer, ProviderError> {
        chat_answer(value, &self.options.chat_model)
    }
    /// A chat operation: the call, a repair call when the answer is unusable, the typed output.
    async fn run_chat(&self, operation: &Operation, text: &str) -> Result<AiOutput, ProviderError> {
        let (system, schema) = prompt(operation);
        let max_tokens = self.options.max_tokens.of(operation);
        let mut messages = vec![
            json!({"role": "system", "content": system}),
            json!({"role": "user", "content": text}),
        ];
        let first = self
            .chat(messages.clone(), schema.as_ref(), max_tokens)
            .await?;
        let mut usage = first.usage;
        let problem = match self.read(operation, text, &first, schema.is_some()) {
            Ok(output) => return Ok(output_of(first.model, usage, output)),
            Err(Stop::Final(e)) => return Err(with_usage(e, usage)),
            Err(Stop::Repairable(problem)) => problem,
        };
        tracing::info!(%problem, "the model's answer is unusable; asking once more");
        let schema_text = schema
            .as_ref()
            .map(|(_, s)| s.to_string())
            .unwrap_or_default();
        messages.push(json!({"role": "assistant", "content": first.content}));
        messages.push(json!({"role": "user", "content": format!(
            "That answer cannot be used: {problem}. Reply again with only a JSON object matching this JSON Schema: {schema_text}"
        )}));
        let second = self.chat(messages, schema.as_ref(), max_tokens).await?;
        usage = add(usage, second.usage);
        match self.read(operation, text, &second, schema.is_some()) {
            Ok(output) => Ok(output_of(second.model, usage, output)),
            Err(Stop::Final(e)) => Err(with_usage(e, usage)),
            Err(Stop::Repairable(problem)) => Err(invalid_output(&problem, usage)),
        }
    }

    fn read(
        &self,
        operation: &Operation,
        text: &str,
        answer: &ChatAnswer,
        json_kind: bool,
    ) -> Result<TaskOutput, Stop> {
        if json_kind && answer.finish_reason.as_deref() == Some("length") {
            return Err(Stop::Final(ProviderError::Unusable {
                reason: "OutputTruncated",
                detail: format!(
                    "the answer was cut at max_tokens={} before its JSON was complete; raise the DOCFLOW_MAX_TOKENS_* setting of this kind",
                    self.options.max_tokens.of(operation)
                ),
                usage: TokenUsage::default(),
            }));
        }
        interpret(operation, text, &answer.content).map_err(Stop::Repairable)
    }

    async fn embed(&self, text: &str) -> Result<AiOutput, ProviderError> {
        let model = &self.options.embedding_model;
        let body = json!({"model": model, "input": text});
        let value = match self.post_raw(self.url(model, "embeddings"), body).await? {
            Ok(value) => value,
            Err((status, headers, text)) => {
                return Err(match self.classify(status, &headers, &text) {
                    ProviderError::Unusable { .. } | ProviderError::Transient { .. }
                        if embeddings_unsupported(status.as_u16(), &text) =>
                    {
                        ProviderError::Unusable {
                            reason: "EmbeddingsUnsupported",
                            detail: format!(
                                "the endpoint cannot compute embeddings ({status}: {}); start llama.cpp's server with --embedding, or set DOCFLOW_EMBEDDING_MODEL to an embedding model",
                                error_message(&text)
                            ),
                            usage: TokenUsage::default(),
                        }
                    }
                    other => other,
                });
            }
        };
        embedding_answer(value, model)
    }
}

/// Why reading an answer stopped.
enum Stop {
    /// Worth one repair call.
    Repairable(String),
    /// Not worth one.
    Final(ProviderError),
}

fn output_of(model: String, usage: TokenUsage, output: TaskOutput) -> AiOutput {
    AiOutput {
        model,
        usage,
        output,
    }
}

fn add(a: TokenUsage, b: TokenUsage) -> TokenUsage {
    a.plus(b)
}

fn with_usage(error: ProviderError, spent: TokenUsage) -> ProviderError {
    match error {
        ProviderError::Unusable {
            reason,
            detail,
            usage,
        } => ProviderError::Unusable {
            reason,
            detail,
            usage: add(usage, spent),
        },
        other => other,
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
        match &request.operation {
            Operation::Embed => self.embed(&request.text).await,
            operation => self.run_chat(operation, &request.text).await,
        }
    }

    async fn probe(&self) -> Result<String, ProviderError> {
        self.probe_chat().await
    }
}

#[cfg(test)]
mod tests {
    use super::wire::{EmbeddingValue, pool};
    use super::*;

    #[test]
    fn retry_after_headers() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        assert_eq!(retry_after(&HeaderMap::new()), None);
        for bad in ["inf", "-inf", "NaN", "-5", "1e999", "soon"] {
            let mut h = HeaderMap::new();
            h.insert("retry-after", bad.parse().unwrap());
            assert_eq!(retry_after(&h), None, "{bad}");
            let mut h = HeaderMap::new();
            h.insert("retry-after-ms", bad.parse().unwrap());
            assert_eq!(retry_after(&h), None, "{bad}");
        }
        let mut h = HeaderMap::new();
        h.insert("retry-after", "99999999999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(failures::MAX_RETRY_AFTER));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            "Fri, 31 Dec 9999 23:59:59 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(failures::MAX_RETRY_AFTER));
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
    fn per_token_vectors_are_mean_pooled() {
        let (v, pooling) = pool(EmbeddingValue::PerToken(vec![
            vec![1.0, 0.0],
            vec![0.0, 1.0],
        ]))
        .unwrap();
        assert_eq!(pooling.as_deref(), Some("mean"));
        assert!((v[0] - v[1]).abs() < 1e-6 && (v[0] * v[0] + v[1] * v[1] - 1.0).abs() < 1e-5);
        assert!(pool(EmbeddingValue::PerToken(vec![vec![1.0], vec![1.0, 2.0]])).is_err());
        assert_eq!(pool(EmbeddingValue::One(vec![0.5])).unwrap().1, None);
    }

    #[test]
    fn max_tokens_per_kind() {
        let m = MaxTokens::default();
        assert_eq!(m.of(&Operation::Summarize { max_words: 80 }), 232);
        assert_eq!(
            m.of(&Operation::Classify {
                labels: vec!["a".into(), "b".into()]
            }),
            88
        );
    }
}
