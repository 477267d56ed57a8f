//! Service Bus topic `analysis-completed`, subscription `notify` → POST /NotifySubmitter
//!
//! POSTs the analysis summary to the document's `callbackUrl`, signed with
//! `X-Docflow-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`. The callback host is
//! resolved once, every address is checked by the SSRF guard (loopback, private, link-local and
//! metadata addresses are refused unless configuration allows private networks; metadata never),
//! and the request connects to the checked address only. A failing callback is left to
//! Service Bus redelivery (the state records the status code of each attempt) and ends in the
//! dead-letter queue; a refused one is poison. Delivered callbacks are recorded, so a
//! redelivery does not call again.

use std::net::SocketAddr;

use async_trait::async_trait;
use chrono::Utc;
use serde::Serialize;
use tracing::{Span, info, warn};

use super::context::PipelineContext;
use super::{Function, Invocation};
use crate::outcome::Outcome;
use crate::pipeline::events::{AnalysisCompleted, COMPLETED_SCHEMA, FailedTask};
use crate::pipeline::state::NotificationState;
use crate::pipeline::webhook::{self, Refusal, SIGNATURE_HEADER};
use docflow_custom_handler::protocol::{InvocationRequest, InvocationResponse};

/// The trigger binding's name.
pub const TRIGGER_BINDING: &str = "message";
/// Header naming the event, for receivers that de-duplicate.
pub const EVENT_ID_HEADER: &str = "X-Docflow-Event-Id";

/// The callback's JSON body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CallbackBody<'a> {
    event: &'static str,
    document_id: &'a str,
    correlation_id: &'a str,
    status: &'a str,
    completed_at: chrono::DateTime<Utc>,
    succeeded: &'a [String],
    failed: &'a [FailedTask],
    status_url: String,
}

/// The NotifySubmitter function.
pub struct NotifySubmitter {
    ctx: PipelineContext,
}

/// Why a callback was not delivered.
enum Failure {
    /// It may never be called: poison.
    Refused(String),
    /// It failed this time: redeliver.
    Failed { status: Option<u16>, detail: String },
}

impl NotifySubmitter {
    /// The function over the pipeline's context.
    pub fn new(ctx: PipelineContext) -> Self {
        Self { ctx }
    }

    async fn notify(&self, event: &AnalysisCompleted) -> Outcome {
        let state = match self.ctx.store.state(&event.document_id).await {
            Ok(Some(state)) => state,
            Ok(None) => {
                warn!("no state record; nothing to notify");
                return Outcome::Done(InvocationResponse::new());
            }
            Err(e) => return Outcome::transient("StorageUnavailable", e.to_string()),
        };
        let Some(url) = state.callback_url.clone() else {
            return Outcome::Done(InvocationResponse::new());
        };
        if state
            .notification
            .as_ref()
            .is_some_and(|n| n.delivered_at.is_some() && n.revision == event.revision)
        {
            info!("callback already delivered");
            return Outcome::Done(InvocationResponse::new());
        }
        let body = CallbackBody {
            event: "analysis.completed",
            document_id: &event.document_id,
            correlation_id: &event.correlation_id,
            status: &event.status,
            completed_at: event.completed_at,
            succeeded: &event.succeeded,
            failed: &event.failed,
            status_url: self.ctx.status_url(&event.document_id),
        };
        let body = serde_json::to_vec(&body).expect("a callback body serializes");
        let result = self.post(&url, body, event).await;
        let (status, failure) = match &result {
            Ok(code) => ("delivered", (Some(*code), None)),
            Err(Failure::Refused(why)) => ("refused", (None, Some(why.clone()))),
            Err(Failure::Failed { status, detail }) => ("failing", (*status, Some(detail.clone()))),
        };
        let recorded = self
            .ctx
            .store
            .update(&event.document_id, |s| {
                let previous = s
                    .notification
                    .as_ref()
                    .filter(|n| n.revision == event.revision)
                    .map_or(0, |n| n.attempts);
                s.notification = Some(NotificationState {
                    status: status.into(),
                    attempts: previous + 1,
                    last_status_code: failure.0,
                    last_error: failure.1.clone(),
                    delivered_at: (status == "delivered").then(Utc::now),
                    revision: event.revision,
                });
                true
            })
            .await;
        if let Err(e) = recorded {
            warn!(error = %e, "recording the callback attempt failed");
        }
        match result {
            Ok(code) => {
                info!(status_code = code, "callback delivered");
                Outcome::Done(InvocationResponse::new().log(format!(
                    "callback for {} delivered ({code})",
                    event.document_id
                )))
            }
            Err(Failure::Refused(why)) => Outcome::poison("CallbackRefused", why),
            Err(Failure::Failed { status, detail }) => {
                let reason = match status {
                    Some(code) => format!("CallbackFailedHttp{code}"),
                    None => "CallbackUnreachable".into(),
                };
                warn!(%reason, %detail, "callback failed; Service Bus will redeliver");
                Outcome::transient(&reason, detail)
            }
        }
    }

    async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        event: &AnalysisCompleted,
    ) -> Result<u16, Failure> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| Failure::Refused(format!("invalid callback URL: {e}")))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| Failure::Refused("the callback URL has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let address = self.checked_address(&host, port).await?;
        let client = reqwest::Client::builder()
            .resolve(&host, address)
            .timeout(self.ctx.options.callback_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Failure::Failed {
                status: None,
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        let mut request = client
            .post(parsed)
            .header("content-type", "application/json")
            .header(EVENT_ID_HEADER, format!("{}:completed", event.document_id))
            .header("x-correlation-id", event.correlation_id.as_str());
        if let Some(secret) = &self.ctx.options.callback_secret {
            request = request.header(
                SIGNATURE_HEADER,
                webhook::sign(secret.as_bytes(), Utc::now().timestamp(), &body),
            );
        }
        let answer = request
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::Failed {
                status: None,
                detail: format!("the callback {url} could not be reached: {e}"),
            })?;
        let code = answer.status().as_u16();
        if answer.status().is_success() {
            Ok(code)
        } else {
            Err(Failure::Failed {
                status: Some(code),
                detail: format!("the callback {url} answered HTTP {code}"),
            })
        }
    }

    /// Resolves the host once and returns an address the guard allows.
    async fn checked_address(&self, host: &str, port: u16) -> Result<SocketAddr, Failure> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Failure::Failed {
                status: None,
                detail: format!("cannot resolve the callback host {host}: {e}"),
            })?
            .collect();
        let allow_private = self.ctx.options.callback_allow_private;
        let mut refusal = None;
        for address in &addresses {
            match webhook::allowed(address.ip(), allow_private) {
                Ok(()) => return Ok(*address),
                Err(r) => refusal = Some((address.ip(), r)),
            }
        }
        Err(Failure::Refused(match refusal {
            Some((ip, Refusal::Private)) => format!(
                "the callback host {host} resolves to {ip}, a loopback or private address; set DOCFLOW_CALLBACK_ALLOW_PRIVATE_NETWORKS=true to allow it"
            ),
            Some((ip, Refusal::Metadata)) => {
                format!("the callback host {host} resolves to {ip}, a cloud metadata address")
            }
            Some((ip, Refusal::Unroutable)) => {
                format!("the callback host {host} resolves to {ip}, which is not routable")
            }
            None => format!("the callback host {host} has no address"),
        }))
    }
}

#[async_trait]
impl Function for NotifySubmitter {
    fn name(&self) -> &'static str {
        "NotifySubmitter"
    }

    fn service_bus_source(&self) -> Option<super::Destination<'static>> {
        Some(super::Destination {
            entity: super::context::COMPLETED_TOPIC,
            subscription: Some("notify"),
        })
    }

    async fn invoke(&self, _invocation: &Invocation, request: InvocationRequest) -> Outcome {
        let (_, event): (_, AnalysisCompleted) =
            match super::trigger_event(&request, TRIGGER_BINDING, COMPLETED_SCHEMA) {
                Ok(found) => found,
                Err(outcome) => return outcome,
            };
        Span::current().record("correlation_id", event.correlation_id.as_str());
        self.notify(&event).await
    }
}
