//! What an OpenAI-compatible endpoint's failures mean for the task: rate limits with their
//! wait, transient transport and server errors (with their cause), content filters, and the
//! failures of the model or the configuration.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::DEFAULT_RETRY_AFTER;
use crate::ai::{ProviderError, TokenUsage};

pub(super) fn invalid_output(detail: &str, usage: TokenUsage) -> ProviderError {
    ProviderError::Unusable {
        reason: "InvalidModelOutput",
        detail: format!("the model's answer is unusable: {detail}"),
        usage,
    }
}

/// A transport failure with its cause (`connection refused`, a DNS failure, the timeout).
pub(super) fn describe_transport_error(e: &reqwest::Error, url: &str, timeout: Duration) -> String {
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    let url = url.split('?').next().unwrap_or(url);
    if e.is_timeout() {
        format!("the provider at {url} did not answer: timed out after {timeout:?}")
    } else if e.is_connect() {
        format!("cannot connect to the provider at {url}: {cause}")
    } else if cause.is_empty() {
        format!("the call to the provider at {url} failed: {e}")
    } else {
        format!("the call to the provider at {url} failed: {e}: {cause}")
    }
}

/// Maps a non-2xx answer to what should happen next.
pub(super) fn classify_status(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
) -> ProviderError {
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
        400 | 413 | 422 => ProviderError::Unusable {
            reason: "InvalidRequest",
            detail: format!(
                "the provider refused the request ({detail}); check the model settings"
            ),
            usage: TokenUsage::default(),
        },
        401 | 403 => ProviderError::Unusable {
            reason: "ProviderUnauthorized",
            detail: format!(
                "the provider refused the credentials ({detail}); check the API key or the identity's role"
            ),
            usage: TokenUsage::default(),
        },
        404 => ProviderError::Unusable {
            reason: "ProviderNotFound",
            detail: format!(
                "the provider has no such endpoint or model ({detail}); check the base URL and the model or deployment name"
            ),
            usage: TokenUsage::default(),
        },
        501 => ProviderError::Unusable {
            reason: "NotSupported",
            detail: format!("the provider does not support this operation ({detail})"),
            usage: TokenUsage::default(),
        },
        _ => ProviderError::Transient { detail },
    }
}

pub use crate::ai::MAX_RETRY_AFTER;

/// A provider's wait in seconds, if it is a number of seconds at all (negative, NaN and
/// infinite values are ignored), cut to [`MAX_RETRY_AFTER`].
fn bounded_wait(seconds: f64) -> Option<Duration> {
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64())))
}

/// `retry-after-ms` (Azure OpenAI) wins over `Retry-After` (seconds or an HTTP date). Values
/// that are not a sensible wait are ignored (the caller's backoff applies) and long ones are
/// cut to [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(wait) = header("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|ms| bounded_wait(ms / 1000.0))
    {
        return Some(wait);
    }
    let value = header("retry-after")?;
    if let Ok(seconds) = value.parse::<f64>() {
        return bounded_wait(seconds);
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

pub(super) fn is_content_filter(body: &str) -> bool {
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

pub(super) fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

pub(super) fn embeddings_unsupported(status: u16, body: &str) -> bool {
    let body = body.to_ascii_lowercase();
    status == 501
        || (body.contains("embedding")
            && (body.contains("not support")
                || body.contains("not enabled")
                || body.contains("--embedding")))
}
