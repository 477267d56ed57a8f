//! Azure AI Document Intelligence over its REST API (version `2024-11-30`): submit the
//! document, poll the operation, read the text and its pages.
//!
//! The exchange, as the service's OpenAPI description in Azure/azure-rest-api-specs
//! (`specification/ai/data-plane/DocumentIntelligence/stable/2024-11-30/DocumentIntelligence.json`,
//! operations `DocumentModels_AnalyzeDocument` and `DocumentModels_GetAnalyzeResult`) and its
//! examples (`…/stable/2024-11-30/examples/AnalyzeDocument_Base64.json`) define it:
//!
//! 1. `POST {endpoint}/documentintelligence/documentModels/{model}:analyze?api-version=…&stringIndexType=utf16CodeUnit`
//!    with `{"base64Source": "…"}`, authenticated by `Ocp-Apim-Subscription-Key` or a
//!    Microsoft Entra token for `https://cognitiveservices.azure.com/.default`. The answer is
//!    `202` with `Operation-Location` (the result's URL) and possibly `Retry-After`.
//! 2. `GET` the `Operation-Location` until `status` is `succeeded` (the `analyzeResult`) or
//!    `failed` (the `error`), waiting `Retry-After` seconds (or the configured floor) between
//!    polls, within an overall limit per document.
//! 3. The text is `analyzeResult.content`; each page's place in it is `pages[].spans`, counted
//!    in the `stringIndexType` asked for (UTF-16 code units, since the default, `textElements`,
//!    counts grapheme clusters) and converted to the byte offsets of docflow's pages.
//!
//! What each failure means: `429` is a rate limit (the pipeline reschedules the message);
//! `401`/`403`/`404` and a refused parameter are configuration problems the operator fixes,
//! so they are transient and the document is kept; a refused or failed document (`400`,
//! `413`, `415`, `status: failed`) is rejected with the service's code and message; `5xx`,
//! network errors and a result that takes longer than the limit are transient.
//!
//! - `wire`: the JSON, read into typed values, and the result turned into an extraction.

mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode, Url};

use super::{OcrError, OcrFormat, OcrProvider};
use crate::ai::openai::{COGNITIVE_SERVICES_SCOPE, retry_after};
use crate::extract::Extraction;
use wire::{AnalyzeOperation, OperationStatus, ServiceError};

/// The model used unless configured: text only, the cheapest (`prebuilt-layout` also works).
pub const DEFAULT_MODEL: &str = "prebuilt-read";

/// The REST API version spoken.
pub const DEFAULT_API_VERSION: &str = "2024-11-30";

/// The header of key authentication.
pub const API_KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";

/// The wait assumed when a `429` carries no `Retry-After`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Consecutive failed polls (network errors, `5xx`) tolerated before giving up: the analysis
/// goes on on the service's side, and submitting again would pay for it twice.
const MAX_POLL_FAILURES: u32 = 3;

/// How requests are authenticated.
#[derive(Clone)]
pub enum Auth {
    /// A resource key, sent as `Ocp-Apim-Subscription-Key`.
    ApiKey(String),
    /// A Microsoft Entra token for [`COGNITIVE_SERVICES_SCOPE`] (managed identity in Azure;
    /// the identity needs the *Cognitive Services User* role on the resource).
    Entra(Arc<dyn TokenCredential>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ApiKey(_) => "ApiKey(***)",
            Self::Entra(_) => "Entra",
        })
    }
}

/// Options of [`DocumentIntelligenceProvider`].
#[derive(Debug, Clone)]
pub struct DocumentIntelligenceOptions {
    /// The resource's endpoint, e.g. `https://contoso.cognitiveservices.azure.com`.
    pub endpoint: String,
    /// The model: `prebuilt-read` (default) or `prebuilt-layout`.
    pub model: String,
    /// The REST API version (default `2024-11-30`).
    pub api_version: String,
    /// Credentials.
    pub auth: Auth,
    /// The wait between polls when the service names none, and the least wait between polls.
    pub poll_interval_floor: Duration,
    /// The longest one document may take, submission to result; past it the call is
    /// transient (the pipeline tries again later).
    pub max_wait: Duration,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
}

impl DocumentIntelligenceOptions {
    /// Options for an endpoint and credentials, with the defaults: `prebuilt-read`,
    /// `2024-11-30`, polls at least 1 s apart, 120 s per document, 30 s per request.
    pub fn new(endpoint: impl Into<String>, auth: Auth) -> Self {
        Self {
            endpoint: endpoint.into(),
            model: DEFAULT_MODEL.into(),
            api_version: DEFAULT_API_VERSION.into(),
            auth,
            poll_interval_floor: Duration::from_secs(1),
            max_wait: Duration::from_secs(120),
            timeout: Duration::from_secs(30),
        }
    }
}

/// OCR by Azure AI Document Intelligence.
#[derive(Debug)]
pub struct DocumentIntelligenceProvider {
    options: DocumentIntelligenceOptions,
    http: Client,
}

/// What one poll found.
enum Poll {
    /// Still running; the wait the service asked for, if any.
    Running(Option<Duration>),
    /// Done.
    Done(Extraction),
}

/// Why one poll did not answer.
enum PollFailure {
    /// Worth polling again after `wait`: a `429` (`rate_limited`), a `5xx` or the network.
    Again {
        wait: Option<Duration>,
        rate_limited: bool,
        detail: String,
    },
    /// The outcome of the call.
    Final(OcrError),
}

impl DocumentIntelligenceProvider {
    /// A provider sending its requests through `http` (each with the options' timeout).
    pub fn new(options: DocumentIntelligenceOptions, http: Client) -> Self {
        Self { options, http }
    }

    /// Its options.
    pub fn options(&self) -> &DocumentIntelligenceOptions {
        &self.options
    }

    fn endpoint(&self) -> &str {
        self.options.endpoint.trim_end_matches('/')
    }

    /// `{endpoint}/documentintelligence/documentModels/{model}:analyze`, without the query.
    pub fn analyze_url(&self) -> String {
        format!(
            "{}/documentintelligence/documentModels/{}:analyze",
            self.endpoint(),
            self.options.model
        )
    }

    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, OcrError> {
        Ok(match &self.options.auth {
            Auth::ApiKey(key) => request.header(API_KEY_HEADER, key),
            Auth::Entra(credential) => {
                let token = credential
                    .get_token(&[COGNITIVE_SERVICES_SCOPE], None)
                    .await
                    .map_err(|e| {
                        OcrError::Transient(format!(
                            "getting a Microsoft Entra token for Document Intelligence failed: {e}"
                        ))
                    })?;
                request.bearer_auth(token.token.secret())
            }
        })
    }

    /// Sends an authenticated request; the answer's status, headers and body.
    async fn send(
        &self,
        request: RequestBuilder,
        url: &str,
    ) -> Result<(StatusCode, HeaderMap, String), OcrError> {
        let request = self
            .authorize(request.timeout(self.options.timeout))
            .await?;
        let transport = |e: reqwest::Error| {
            OcrError::Transient(describe_transport_error(&e, url, self.options.timeout))
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.map_err(transport)?;
        Ok((status, headers, body))
    }

    /// Submits the document; the URL to poll and the first wait the service asked for.
    async fn submit(&self, content: &[u8]) -> Result<(Url, Option<Duration>), OcrError> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(content);
        let body = serde_json::to_vec(&wire::AnalyzeDocumentRequest {
            base64_source: &encoded,
        })
        .map_err(|e| OcrError::Transient(format!("encoding the request failed: {e}")))?;
        drop(encoded);
        let url = self.analyze_url();
        let mut target = Url::parse(&url).map_err(|e| {
            OcrError::Transient(format!(
                "the Document Intelligence endpoint {:?} does not make a URL ({url}): {e}",
                self.options.endpoint
            ))
        })?;
        target
            .query_pairs_mut()
            .append_pair("api-version", &self.options.api_version)
            .append_pair("stringIndexType", "utf16CodeUnit");
        let request = self
            .http
            .post(target)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let (status, headers, body) = self.send(request, &url).await?;
        if status != StatusCode::ACCEPTED {
            if status.is_success() {
                return Err(OcrError::Transient(format!(
                    "Document Intelligence answered the analysis request with {status} instead of 202 Accepted"
                )));
            }
            return Err(classify(status, &headers, &body, "the analysis request"));
        }
        let location = headers
            .get("operation-location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                OcrError::Transient(
                    "Document Intelligence accepted the document without an Operation-Location header"
                        .into(),
                )
            })?;
        let location = self.check_location(location)?;
        Ok((location, retry_after(&headers)))
    }

    /// The result URL, if it lies on the configured endpoint: credentials go nowhere else.
    fn check_location(&self, location: &str) -> Result<Url, OcrError> {
        let url = Url::parse(location).map_err(|e| {
            OcrError::Transient(format!(
                "Document Intelligence sent an Operation-Location that is not a URL ({location:?}: {e})"
            ))
        })?;
        let endpoint = Url::parse(self.endpoint()).map_err(|e| {
            OcrError::Transient(format!(
                "the Document Intelligence endpoint {:?} is not a URL: {e}",
                self.options.endpoint
            ))
        })?;
        if url.origin() != endpoint.origin() {
            return Err(OcrError::Transient(format!(
                "Document Intelligence sent an Operation-Location on another host ({}) than the \
                 endpoint ({}); docflow does not send credentials there",
                url.origin().ascii_serialization(),
                endpoint.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }

    /// One poll of the operation.
    async fn poll(&self, location: &Url) -> Result<Poll, PollFailure> {
        let shown = location.as_str().split('?').next().unwrap_or_default();
        let request = self.http.get(location.clone());
        let (status, headers, body) = self.send(request, shown).await.map_err(|e| match e {
            OcrError::Transient(detail) => PollFailure::Again {
                wait: None,
                rate_limited: false,
                detail,
            },
            other => PollFailure::Final(other),
        })?;
        if !status.is_success() {
            return Err(
                match classify(status, &headers, &body, "polling the analysis") {
                    OcrError::RateLimited { retry_after } => PollFailure::Again {
                        wait: Some(retry_after),
                        rate_limited: true,
                        detail: format!("polling the analysis was rate-limited ({status})"),
                    },
                    OcrError::Transient(detail) if status.is_server_error() => PollFailure::Again {
                        wait: retry_after(&headers),
                        rate_limited: false,
                        detail,
                    },
                    other => PollFailure::Final(other),
                },
            );
        }
        let operation: AnalyzeOperation = wire::parse(&body).map_err(|e| {
            PollFailure::Final(OcrError::Transient(format!(
                "Document Intelligence answered a poll with JSON docflow cannot read ({e})"
            )))
        })?;
        match operation.status {
            OperationStatus::NotStarted | OperationStatus::Running => {
                Ok(Poll::Running(retry_after(&headers)))
            }
            OperationStatus::Succeeded => match operation.analyze_result {
                Some(result) => Ok(Poll::Done(wire::extraction(result))),
                None => Err(PollFailure::Final(OcrError::Transient(
                    "Document Intelligence reported success without an analyzeResult".into(),
                ))),
            },
            OperationStatus::Failed => Err(PollFailure::Final(failed(operation.error))),
            OperationStatus::Canceled => Err(PollFailure::Final(OcrError::Transient(
                "the Document Intelligence analysis was canceled".into(),
            ))),
            OperationStatus::Skipped | OperationStatus::Unknown => {
                Err(PollFailure::Final(OcrError::Transient(format!(
                    "Document Intelligence reported an analysis status docflow does not expect ({})",
                    body_status(&body)
                ))))
            }
        }
    }
}

#[async_trait]
impl OcrProvider for DocumentIntelligenceProvider {
    fn name(&self) -> &'static str {
        "azure-document-intelligence"
    }

    async fn recognize(&self, content: Bytes, content_type: &str) -> Result<Extraction, OcrError> {
        OcrFormat::of(content_type, &content)?;
        let started = Instant::now();
        let max_wait = self.options.max_wait;
        let floor = self.options.poll_interval_floor;
        let (location, first_wait) = self.submit(&content).await?;
        drop(content);
        let mut wait = first_wait;
        let mut failures = 0;
        let mut rate_limited = false;
        loop {
            let pause = wait.unwrap_or(floor).max(floor);
            if started.elapsed() + pause > max_wait {
                return Err(if rate_limited {
                    OcrError::RateLimited { retry_after: pause }
                } else {
                    OcrError::Transient(format!(
                        "the Document Intelligence analysis did not finish within {max_wait:?}"
                    ))
                });
            }
            tokio::time::sleep(pause).await;
            match self.poll(&location).await {
                Ok(Poll::Done(extraction)) => return Ok(extraction),
                Ok(Poll::Running(next)) => {
                    failures = 0;
                    rate_limited = false;
                    wait = next;
                }
                Err(PollFailure::Again {
                    wait: next,
                    rate_limited: limited,
                    detail,
                }) => {
                    if !limited {
                        failures += 1;
                        if failures >= MAX_POLL_FAILURES {
                            return Err(OcrError::Transient(format!(
                                "polling the Document Intelligence analysis failed {failures} times in a row: {detail}"
                            )));
                        }
                    }
                    tracing::debug!(%detail, "polling Document Intelligence again");
                    rate_limited = limited;
                    wait = next;
                }
                Err(PollFailure::Final(error)) => return Err(error),
            }
        }
    }
}

/// What a non-2xx answer means for the document.
fn classify(status: StatusCode, headers: &HeaderMap, body: &str, during: &str) -> OcrError {
    let (error, detail) = wire::error_of(body);
    let code = error.as_ref().map(|e| e.code.as_str()).unwrap_or_default();
    match status.as_u16() {
        429 => OcrError::RateLimited {
            retry_after: retry_after(headers).unwrap_or(DEFAULT_RETRY_AFTER),
        },
        401 | 403 => OcrError::Transient(format!(
            "Document Intelligence refused the credentials for {during} ({status}: {detail}); \
             check the key, or the identity's Cognitive Services User role on the resource, and \
             the endpoint (a configuration problem: the document is kept and tried again)"
        )),
        404 => OcrError::Transient(format!(
            "Document Intelligence has no such endpoint, model or result for {during} \
             ({status}: {detail}); check the endpoint, the model and the api-version"
        )),
        400 if code == "InvalidArgument" => OcrError::Transient(format!(
            "Document Intelligence refused a parameter of {during} ({status}: {detail}); check \
             the model and the api-version (a configuration problem: the document is kept and \
             tried again)"
        )),
        400 | 413 | 415 => OcrError::Rejected {
            code: "OcrFailed",
            message: format!("Document Intelligence refused the document ({status}: {detail})"),
        },
        _ => OcrError::Transient(format!(
            "Document Intelligence failed {during}: {status}: {detail}"
        )),
    }
}

/// Codes of a failed analysis that are the service's trouble, not the document's.
const SERVICE_FAULTS: [&str; 3] = ["InternalServerError", "ServiceUnavailable", "Timeout"];

/// A failed analysis: rejected with the service's reason, unless every code in the error is
/// the service's own trouble (then it is worth another try).
fn failed(error: Option<ServiceError>) -> OcrError {
    let Some(error) = error else {
        return OcrError::Rejected {
            code: "OcrFailed",
            message: "Document Intelligence could not analyse the document (no reason given)"
                .into(),
        };
    };
    let detail = error.describe();
    if error.codes().iter().all(|c| SERVICE_FAULTS.contains(c)) {
        return OcrError::Transient(format!(
            "the Document Intelligence analysis failed on the service's side: {detail}"
        ));
    }
    OcrError::Rejected {
        code: "OcrFailed",
        message: format!(
            "Document Intelligence could not analyse the document ({}): {detail}",
            error.specific_code()
        ),
    }
}

/// The `status` of a poll answer, for a message.
fn body_status(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["status"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "none".into())
}

/// A transport failure with its cause (connection refused, DNS, the timeout).
fn describe_transport_error(e: &reqwest::Error, url: &str, timeout: Duration) -> String {
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if e.is_timeout() {
        format!("Document Intelligence at {url} did not answer within {timeout:?}")
    } else if e.is_connect() {
        format!("cannot connect to Document Intelligence at {url}: {cause}")
    } else if e.is_builder() {
        format!("the Document Intelligence URL {url} is not usable: {e}")
    } else if cause.is_empty() {
        format!("the call to Document Intelligence at {url} failed: {e}")
    } else {
        format!("the call to Document Intelligence at {url} failed: {e}: {cause}")
    }
}

#[cfg(test)]
mod tests;
