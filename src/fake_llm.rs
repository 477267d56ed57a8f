//! `docflow fake-llm`: an OpenAI-compatible endpoint (chat completions and embeddings) that
//! behaves like a model deployment under load, to measure docflow against and to test with.
//!
//! - Latency grows with output tokens (a base plus a cost per token, with jitter), divided by a
//!   time scale for benchmarks.
//! - TPM and RPM are enforced over a sliding window (a minute divided by the time scale) the way
//!   Azure OpenAI does: a request is charged its prompt estimate plus `max_tokens` at admission;
//!   a refused one gets `429` with `Retry-After`, `retry-after-ms` and `x-ratelimit-*` headers.
//! - Optional random `5xx`.
//! - `GET /stats` (and the value [`FakeLlm::stats`] returns) reports requests and tokens served,
//!   `429`s and `5xx`s returned, and each request's timing.
//!
//! Answers are well-formed for docflow's prompts: the first words of the text as a summary, the
//! first offered label, no entities, neutral sentiment, a unit vector for embeddings.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::ai::tokens::TokenCounter;

/// How the endpoint behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FakeLlmOptions {
    /// Tokens per (scaled) minute.
    pub tpm: u64,
    /// Requests per (scaled) minute.
    pub rpm: u64,
    /// Latency of an answer with no output tokens (unscaled).
    pub base_latency: Duration,
    /// Latency added per output token (unscaled).
    pub per_token_latency: Duration,
    /// Latencies and the rate window are divided by this (10: a minute lasts 6 s).
    pub time_scale: f64,
    /// Probability of a `503` for an admitted request.
    pub error_rate: f64,
    /// Send only what remains (`x-ratelimit-remaining-*`), as Azure OpenAI does, not the
    /// limits (`x-ratelimit-limit-*`) OpenAI adds.
    pub azure_headers: bool,
}

impl Default for FakeLlmOptions {
    fn default() -> Self {
        Self {
            tpm: 60_000,
            rpm: 600,
            base_latency: Duration::from_secs(2),
            per_token_latency: Duration::from_millis(40),
            time_scale: 1.0,
            error_rate: 0.0,
            azure_headers: false,
        }
    }
}

/// One request as served.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStat {
    /// Milliseconds since the endpoint started.
    pub at_ms: u64,
    /// The answer's status.
    pub status: u16,
    /// Tokens used, as the answer reports them (`200`s only).
    pub tokens: u64,
    /// Tokens charged against the limit at admission (prompt + `max_tokens`; `0` when refused).
    pub charged: u64,
    /// Time to answer.
    pub latency_ms: u64,
}

/// What the endpoint has done so far.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Requests answered `200`.
    pub served: u64,
    /// Tokens used by them (prompt + completion, as reported in `usage`).
    pub tokens: u64,
    /// Tokens charged against the limit at admission (prompt + `max_tokens`), 429s excluded.
    pub charged: u64,
    /// Requests refused with `429`.
    pub rate_limited: u64,
    /// Requests answered `503`.
    pub errors: u64,
    /// Every request, in arrival order.
    pub requests: Vec<RequestStat>,
}

struct State {
    options: FakeLlmOptions,
    started: Instant,
    /// Admissions in the current window: when, and how many tokens.
    window: VecDeque<(Instant, u64)>,
    stats: Stats,
    seed: u64,
}

impl State {
    fn window_length(&self) -> Duration {
        Duration::from_secs_f64(60.0 / self.options.time_scale.max(0.001))
    }

    /// Admits a request of `tokens`, or says how long until it would fit.
    fn admit(&mut self, tokens: u64, now: Instant) -> Result<(), Duration> {
        let length = self.window_length();
        self.expire(now);
        let used: u64 = self.window.iter().map(|(_, t)| t).sum();
        let requests = self.window.len() as u64;
        let tokens = tokens.min(self.options.tpm);
        if used + tokens <= self.options.tpm && requests < self.options.rpm {
            self.window.push_back((now, tokens));
            return Ok(());
        }
        // The wait until enough of the window has expired.
        let mut freed = self.options.tpm.saturating_sub(used);
        let mut count = requests;
        for (at, t) in &self.window {
            freed += t;
            count = count.saturating_sub(1);
            if freed >= tokens && count < self.options.rpm {
                return Err((*at + length).saturating_duration_since(now));
            }
        }
        Err(length)
    }

    /// What remains of the window now.
    fn remaining(&mut self, now: Instant) -> (u64, u64) {
        self.expire(now);
        let used: u64 = self.window.iter().map(|(_, t)| t).sum();
        (
            self.options.tpm.saturating_sub(used),
            self.options.rpm.saturating_sub(self.window.len() as u64),
        )
    }

    /// Forgets admissions older than the window.
    fn expire(&mut self, now: Instant) {
        let length = self.window_length();
        while self
            .window
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= length)
        {
            self.window.pop_front();
        }
    }

    /// A pseudo-random number in [0, 1) (xorshift; reproducible per endpoint).
    fn random(&mut self) -> f64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        (self.seed >> 11) as f64 / (1u64 << 53) as f64
    }

    fn record(&mut self, status: u16, tokens: u64, charged: u64, started: Instant) {
        self.stats.requests.push(RequestStat {
            at_ms: started.duration_since(self.started).as_millis() as u64,
            status,
            tokens,
            charged,
            latency_ms: started.elapsed().as_millis() as u64,
        });
        match status {
            200 => {
                self.stats.served += 1;
                self.stats.tokens += tokens;
            }
            429 => self.stats.rate_limited += 1,
            _ => self.stats.errors += 1,
        }
    }
}

/// A running fake endpoint.
pub struct FakeLlm {
    state: Arc<Mutex<State>>,
    port: u16,
    stop: CancellationToken,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeLlm {
    /// Serves on `listener` until dropped or `stop` is cancelled.
    pub fn start(listener: TcpListener, options: FakeLlmOptions, stop: CancellationToken) -> Self {
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let state = Arc::new(Mutex::new(State {
            options,
            started: Instant::now(),
            window: VecDeque::new(),
            stats: Stats::default(),
            seed: 0x9E37_79B9_7F4A_7C15,
        }));
        let for_chat = state.clone();
        let for_stats = state.clone();
        let api = warp::post()
            .and(warp::path("v1"))
            .and(warp::path::tail())
            .and(warp::body::json())
            .then(move |tail: warp::path::Tail, body: Value| {
                let state = for_chat.clone();
                async move { serve(&state, tail.as_str(), &body).await }
            });
        let stats = warp::get().and(warp::path("stats")).map(move || {
            let stats = lock(&for_stats).stats.clone();
            warp::reply::json(&stats).into_response()
        });
        let signal = stop.clone();
        tokio::spawn(
            warp::serve(api.or(stats).unify())
                .incoming(listener)
                .graceful(async move { signal.cancelled().await })
                .run(),
        );
        Self { state, port, stop }
    }

    /// The port served.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The statistics so far.
    pub fn stats(&self) -> Stats {
        lock(&self.state).stats.clone()
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn serve(state: &Mutex<State>, operation: &str, body: &Value) -> Response {
    let started = Instant::now();
    let embeddings = operation == "embeddings";
    let text = if embeddings {
        body["input"].as_str().unwrap_or_default().to_string()
    } else {
        body["messages"][1]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let system = body["messages"][0]["content"].as_str().unwrap_or_default();
    let counter = TokenCounter::for_model(body["model"].as_str().unwrap_or_default());
    let prompt_tokens = counter.prompt_tokens(body).max(1);
    let max_tokens = if embeddings {
        0
    } else {
        body["max_tokens"].as_u64().unwrap_or(256)
    };
    let (admitted, options, fail, jitter) = {
        let mut s = lock(state);
        let admitted = s.admit(prompt_tokens + max_tokens, started);
        if admitted.is_ok() {
            s.stats.charged += prompt_tokens + max_tokens;
        }
        let fail = s.random() < s.options.error_rate;
        let jitter = s.random();
        (admitted, s.options, fail, jitter)
    };
    if let Err(wait) = admitted {
        let mut s = lock(state);
        let (tokens_left, requests_left) = s.remaining(Instant::now());
        s.record(429, 0, 0, started);
        let mut response = warp::reply::with_status(
            warp::reply::json(&json!({"error": {"code": "429", "message": "Requests to the deployment have exceeded the token rate limit. Try again later."}})),
            StatusCode::TOO_MANY_REQUESTS,
        )
        .into_response();
        let ms = wait.as_millis().max(1) as u64;
        let mut headers = rate_headers(&options, tokens_left, requests_left);
        headers.extend([
            ("retry-after", ms.div_ceil(1000).to_string()),
            ("retry-after-ms", ms.to_string()),
            ("x-ratelimit-reset-tokens", format!("{ms}ms")),
        ]);
        insert_headers(&mut response, headers);
        return response;
    }
    let (content, completion_tokens) = answer(system, &text, max_tokens, jitter);
    let latency = (options.base_latency + options.per_token_latency * completion_tokens as u32)
        .mul_f64((0.75 + 0.5 * jitter) / options.time_scale.max(0.001));
    tokio::time::sleep(latency).await;
    if fail {
        lock(state).record(503, 0, prompt_tokens + max_tokens, started);
        return warp::reply::with_status(
            warp::reply::json(
                &json!({"error": {"message": "The service is temporarily unavailable."}}),
            ),
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .into_response();
    }
    let total = prompt_tokens + completion_tokens;
    let (tokens_left, requests_left) = {
        let mut s = lock(state);
        s.record(200, total, prompt_tokens + max_tokens, started);
        s.remaining(Instant::now())
    };
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": total});
    let reply = if embeddings {
        json!({"model": "fake-embed", "data": [{"embedding": embedding(&text)}], "usage": usage})
    } else {
        json!({"model": "fake-chat", "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}], "usage": usage})
    };
    let mut response = warp::reply::json(&reply).into_response();
    insert_headers(
        &mut response,
        rate_headers(&options, tokens_left, requests_left),
    );
    response
}

/// The `x-ratelimit-*` limits and what remains of them, as Azure OpenAI sends them.
fn rate_headers(
    options: &FakeLlmOptions,
    tokens_left: u64,
    requests_left: u64,
) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("x-ratelimit-remaining-tokens", tokens_left.to_string()),
        ("x-ratelimit-remaining-requests", requests_left.to_string()),
    ];
    if !options.azure_headers {
        headers.extend([
            (
                "x-ratelimit-limit-tokens",
                per_real_minute(options.tpm, options),
            ),
            (
                "x-ratelimit-limit-requests",
                per_real_minute(options.rpm, options),
            ),
        ]);
    }
    headers
}

fn insert_headers(response: &mut Response, headers: Vec<(&'static str, String)>) {
    for (name, value) in headers {
        if let Ok(v) = warp::http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
}

/// A per-minute limit as a client measures it: the scaled window is shorter than a minute, so
/// a real minute holds `time_scale` windows.
fn per_real_minute(limit: u64, options: &FakeLlmOptions) -> String {
    ((limit as f64) * options.time_scale.max(0.001))
        .round()
        .to_string()
}

/// A well-formed answer to one of docflow's prompts, and its completion tokens.
fn answer(system: &str, text: &str, max_tokens: u64, jitter: f64) -> (String, u64) {
    let content = if system.starts_with("Summarize") {
        let words = system
            .split("at most ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(40);
        // Between half and all of the allowed words, as real summaries vary.
        let take = ((words as f64) * (0.5 + 0.5 * jitter)).ceil() as usize;
        text.split_whitespace()
            .take(take.max(1))
            .collect::<Vec<_>>()
            .join(" ")
    } else if system.starts_with("Classify") {
        let labels: Vec<String> = system
            .split_once("labels: ")
            .and_then(|(_, rest)| {
                serde_json::Deserializer::from_str(rest)
                    .into_iter::<Vec<String>>()
                    .next()
                    .and_then(Result::ok)
            })
            .unwrap_or_default();
        let scores: serde_json::Map<String, Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), json!(if i == 0 { 0.8 } else { 0.1 })))
            .collect();
        json!({"label": labels.first().cloned().unwrap_or_default(), "scores": scores}).to_string()
    } else if system.starts_with("Extract") {
        json!({"entities": []}).to_string()
    } else {
        json!({"label": "neutral", "score": 0.0}).to_string()
    };
    let tokens = (content.chars().count() as u64)
        .div_ceil(4)
        .clamp(1, max_tokens.max(1));
    (content, tokens)
}

/// A deterministic unit vector of the text.
fn embedding(text: &str) -> Vec<f32> {
    let digest = crate::poison::sha256_hex(text.as_bytes());
    let raw: Vec<f32> = digest
        .as_bytes()
        .chunks(8)
        .map(|c| c.iter().map(|b| f32::from(*b)).sum::<f32>() - 400.0)
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    raw.into_iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(tpm: u64, rpm: u64) -> State {
        State {
            options: FakeLlmOptions {
                tpm,
                rpm,
                time_scale: 1.0,
                ..FakeLlmOptions::default()
            },
            started: Instant::now(),
            window: VecDeque::new(),
            stats: Stats::default(),
            seed: 1,
        }
    }

    #[test]
    fn the_sliding_window_enforces_tpm_and_rpm_and_says_when() {
        let t0 = Instant::now();
        let mut s = state(1_000, 3);
        assert!(s.admit(600, t0).is_ok());
        let wait = s.admit(600, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(
            wait,
            Duration::from_secs(50),
            "until the first admission leaves"
        );
        assert!(s.admit(600, t0 + Duration::from_secs(60)).is_ok());
        let mut r = state(1_000_000, 2);
        assert!(r.admit(1, t0).is_ok());
        assert!(r.admit(1, t0).is_ok());
        assert_eq!(
            r.admit(1, t0 + Duration::from_secs(1)),
            Err(Duration::from_secs(59))
        );
    }

    #[test]
    fn answers_fit_docflows_prompts() {
        let (summary, _) = answer(
            "Summarize the document the user sends in at most 4 words.",
            "one two three four five six",
            100,
            1.0,
        );
        assert_eq!(summary, "one two three four");
        let (classified, _) = answer(
            r#"Classify the document the user sends into exactly one of these labels: ["invoice","contract"]. Reply"#,
            "x",
            100,
            0.0,
        );
        let v: Value = serde_json::from_str(&classified).unwrap();
        assert_eq!(v["label"], "invoice");
        let e = embedding("text");
        let norm: f32 = e.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}
