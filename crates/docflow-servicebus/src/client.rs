//! docflow's Service Bus client: the REST data plane over reqwest, against Azure or the
//! embedded broker alike (`servicebus.md` §6).
//!
//! Transport errors, 500 and 503 are retried with bounded exponential backoff; nothing else
//! is. A send without a `MessageId` gets one before the first attempt, so a retried send is
//! de-duplicated by entities with duplicate detection instead of being delivered twice.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, Response, StatusCode};

mod error;

pub use self::error::ClientError;
pub(crate) use self::error::PathKind;
use self::error::{classify, error_detail};
use super::connection::{Credentials, Namespace};
use super::message::{
    BrokerProperties, Message, MessageState, PropertyValue, ReceivedMessage, format_timespan,
    parse_http_date,
};
use super::sas;

/// Scope of Service Bus tokens.
pub const SERVICE_BUS_SCOPE: &str = "https://servicebus.azure.net/.default";

/// Options of a [`ServiceBusClient`].
#[derive(Debug, Clone)]
pub struct ServiceBusClientOptions {
    /// Retries after the first attempt, for transport errors, 500 and 503.
    pub max_retries: u32,
    /// First backoff delay; doubled per retry.
    pub retry_delay: Duration,
    /// Longest backoff delay.
    pub max_retry_delay: Duration,
    /// Timeout of a request that is not a long-poll (long-polls add their own timeout).
    pub request_timeout: Duration,
    /// Lifetime of the SAS tokens it signs.
    pub token_lifetime: Duration,
}

impl Default for ServiceBusClientOptions {
    fn default() -> Self {
        Self {
            max_retries: 3,
            retry_delay: Duration::from_millis(200),
            max_retry_delay: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            token_lifetime: Duration::from_secs(3600),
        }
    }
}

/// The REST client. Cheap to clone.
#[derive(Clone)]
pub struct ServiceBusClient {
    namespace: Namespace,
    http: reqwest::Client,
    options: ServiceBusClientOptions,
    credential: Option<Arc<dyn TokenCredential>>,
}

impl ServiceBusClient {
    /// A client for a namespace.
    pub fn new(
        namespace: Namespace,
        options: ServiceBusClientOptions,
    ) -> Result<Self, ClientError> {
        let credential: Option<Arc<dyn TokenCredential>> = match &namespace.credentials {
            Credentials::SharedKey { .. } => None,
            Credentials::Entra {
                credential,
                client_id,
            } => Some(
                crate::identity::entra_credential(credential.as_deref(), client_id.as_deref())
                    .map_err(|e| ClientError::Credential(e.to_string()))?,
            ),
        };
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| ClientError::Credential(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            namespace,
            http,
            options,
            credential,
        })
    }

    /// A client from a connection string.
    pub fn from_connection_string(text: &str) -> Result<Self, ClientError> {
        Self::new(
            Namespace::from_connection_string(text)?,
            ServiceBusClientOptions::default(),
        )
    }

    /// The namespace it talks to.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// Timeout of a request that is not a long-poll.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.options.request_timeout
    }

    /// The URL of `path` in the namespace.
    pub(crate) fn url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.namespace.base_url,
            path.trim_start_matches('/')
        )
    }

    async fn authorization(&self, url: &str) -> Result<String, ClientError> {
        match (&self.namespace.credentials, &self.credential) {
            (Credentials::SharedKey { name, key }, _) => {
                let resource = url.split('?').next().unwrap_or(url);
                let expiry = (chrono::Utc::now() + self.options.token_lifetime)
                    .timestamp()
                    .max(0) as u64;
                Ok(sas::sign(resource, name, key, expiry))
            }
            (_, Some(credential)) => {
                let token = credential
                    .get_token(&[SERVICE_BUS_SCOPE], None)
                    .await
                    .map_err(|e| ClientError::Credential(e.to_string()))?;
                Ok(format!("Bearer {}", token.token.secret()))
            }
            (_, None) => Err(ClientError::Credential("no credential configured".into())),
        }
    }

    /// Sends a request with retries; `build` adds headers and body to a fresh request each try.
    pub(crate) async fn execute(
        &self,
        method: Method,
        url: &str,
        kind: PathKind,
        entity: &str,
        timeout: Duration,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, ClientError> {
        let mut delay = self.options.retry_delay;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let auth = self.authorization(url).await?;
            let request = build(
                self.http
                    .request(method.clone(), url)
                    .header("authorization", auth)
                    .timeout(timeout),
            );
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let detail = error_detail(response).await;
                    if !matches!(
                        status,
                        StatusCode::INTERNAL_SERVER_ERROR | StatusCode::SERVICE_UNAVAILABLE
                    ) {
                        return Err(classify(status, kind, entity, detail));
                    }
                    format!("{status}: {detail}")
                }
                Err(e) => e.to_string(),
            };
            if attempt > self.options.max_retries {
                return Err(ClientError::Unavailable {
                    attempts: attempt,
                    detail: failure,
                });
            }
            tracing::warn!(attempt, %failure, url, "Service Bus request failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.options.max_retry_delay);
        }
    }

    /// Sends one message. Returns its sequence number when the service reports it (the
    /// embedded broker does; Azure does not).
    pub async fn send_message(
        &self,
        entity: &str,
        message: &Message,
    ) -> Result<Option<i64>, ClientError> {
        let mut message = message.clone();
        message
            .message_id
            .get_or_insert_with(|| uuid::Uuid::new_v4().simple().to_string());
        let url = self.url(&format!("{entity}/messages"));
        let response = self
            .execute(
                Method::POST,
                &url,
                PathKind::Entity,
                entity,
                self.options.request_timeout,
                |r| send_request(r, &message),
            )
            .await?;
        Ok(response
            .headers()
            .get("x-local-sequence-number")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    }

    /// Sends messages in one batch request (all or nothing).
    pub async fn send_messages(
        &self,
        entity: &str,
        messages: &[Message],
    ) -> Result<(), ClientError> {
        use base64::Engine as _;
        let elements: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                let mut props = BrokerProperties::for_send(m);
                props
                    .message_id
                    .get_or_insert_with(|| uuid::Uuid::new_v4().simple().to_string());
                if let Some(ttl) = props.time_to_live.take() {
                    props.time_to_live_time_span =
                        Duration::try_from_secs_f64(ttl).ok().map(format_timespan);
                }
                let user: serde_json::Map<String, serde_json::Value> = m
                    .properties
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            PropertyValue::String(s) => serde_json::json!(s),
                            PropertyValue::Int(n) => serde_json::json!(n),
                            PropertyValue::Double(x) => serde_json::json!(x),
                            PropertyValue::Bool(b) => serde_json::json!(b),
                            PropertyValue::DateTime(t) => {
                                serde_json::json!(super::message::format_http_date(*t))
                            }
                        };
                        (k.clone(), v)
                    })
                    .collect();
                serde_json::json!({
                    "Body": base64::engine::general_purpose::STANDARD.encode(&m.body),
                    "IsBodyBase64": true,
                    "BrokerProperties": props,
                    "UserProperties": user,
                })
            })
            .collect();
        let body = serde_json::to_vec(&elements).expect("a batch serializes");
        let url = self.url(&format!("{entity}/messages"));
        self.execute(
            Method::POST,
            &url,
            PathKind::Entity,
            entity,
            self.options.request_timeout,
            |r| {
                r.header("content-type", "application/vnd.microsoft.servicebus.json")
                    .body(body.clone())
            },
        )
        .await?;
        Ok(())
    }

    async fn receive(
        &self,
        entity: &str,
        method: Method,
        timeout: Duration,
    ) -> Result<Option<ReceivedMessage>, ClientError> {
        let url = self.url(&format!(
            "{entity}/messages/head?timeout={}",
            timeout.as_secs()
        ));
        let http_timeout = timeout + self.options.request_timeout;
        let response = self
            .execute(method, &url, PathKind::Entity, entity, http_timeout, |r| {
                r.header("content-length", "0")
            })
            .await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        Ok(Some(read_message(response).await?))
    }

    /// Peek-locks the next message, waiting up to `timeout` (whole seconds).
    pub async fn peek_lock(
        &self,
        entity: &str,
        timeout: Duration,
    ) -> Result<Option<ReceivedMessage>, ClientError> {
        self.receive(entity, Method::POST, timeout).await
    }

    /// Receives and deletes the next message.
    pub async fn receive_and_delete(
        &self,
        entity: &str,
        timeout: Duration,
    ) -> Result<Option<ReceivedMessage>, ClientError> {
        self.receive(entity, Method::DELETE, timeout).await
    }

    async fn on_lock(
        &self,
        message: &ReceivedMessage,
        method: Method,
        suffix: &str,
    ) -> Result<Response, ClientError> {
        let location = message.location.as_deref().ok_or_else(|| {
            ClientError::MessageLockLost("the message was not received in peek-lock mode".into())
        })?;
        let url = format!("{location}{suffix}");
        self.execute(
            method,
            &url,
            PathKind::Lock,
            location,
            self.options.request_timeout,
            |r| r.header("content-length", "0"),
        )
        .await
    }

    /// Completes a peek-locked message (REST Delete Message).
    pub async fn complete_message(&self, message: &ReceivedMessage) -> Result<(), ClientError> {
        self.on_lock(message, Method::DELETE, "").await.map(|_| ())
    }

    /// Abandons a peek-locked message (REST Unlock Message).
    pub async fn abandon_message(&self, message: &ReceivedMessage) -> Result<(), ClientError> {
        self.on_lock(message, Method::PUT, "").await.map(|_| ())
    }

    /// Renews a message lock (REST Renew-Lock).
    pub async fn renew_message_lock(&self, message: &ReceivedMessage) -> Result<(), ClientError> {
        self.on_lock(message, Method::POST, "").await.map(|_| ())
    }

    /// Dead-letters a peek-locked message. Local broker only: Azure's REST API has no
    /// dead-letter operation.
    pub async fn dead_letter_message(
        &self,
        message: &ReceivedMessage,
        reason: &str,
        description: &str,
    ) -> Result<(), ClientError> {
        self.local_only("dead-lettering a message")?;
        let location = message.location.as_deref().ok_or_else(|| {
            ClientError::MessageLockLost("the message was not received in peek-lock mode".into())
        })?;
        let url = format!("{location}/$local/deadletter");
        let body = serde_json::json!({"DeadLetterReason": reason, "DeadLetterErrorDescription": description}).to_string();
        self.execute(
            Method::POST,
            &url,
            PathKind::Lock,
            location,
            self.options.request_timeout,
            |r| {
                r.header("content-type", "application/json")
                    .body(body.clone())
            },
        )
        .await
        .map(|_| ())
    }

    /// Puts dead-lettered message `seq` of a queue or subscription back in that entity as
    /// `message`, in one step and only there (sending to a subscription's topic would reach
    /// every subscription). Local broker only: Azure can send to queues and topics only.
    pub async fn restore_dead_lettered(
        &self,
        entity: &str,
        seq: i64,
        message: &Message,
    ) -> Result<(), ClientError> {
        self.local_only("putting a dead letter back in its subscription")?;
        let url = self.url(&format!("{entity}/$DeadLetterQueue/$local/restore/{seq}"));
        self.execute(
            Method::POST,
            &url,
            PathKind::Entity,
            entity,
            self.options.request_timeout,
            |r| send_request(r, message),
        )
        .await
        .map(|_| ())
    }

    /// Browses messages without locking them. Local broker only.
    pub async fn browse(
        &self,
        entity: &str,
        from_seq: i64,
        max: usize,
    ) -> Result<Vec<ReceivedMessage>, ClientError> {
        self.local_only("browsing")?;
        let url = self.url(&format!("{entity}/$local/peek?from={from_seq}&max={max}"));
        let response = self
            .execute(
                Method::GET,
                &url,
                PathKind::Entity,
                entity,
                self.options.request_timeout,
                |r| r,
            )
            .await?;
        let items: Vec<serde_json::Value> = response
            .json()
            .await
            .map_err(|e| ClientError::BadRequest(format!("unreadable browse answer: {e}")))?;
        items.iter().map(browse_item).collect()
    }

    /// Whether this client talks to the embedded broker (which has the `$local` extras).
    pub fn is_local(&self) -> bool {
        self.namespace.emulator
    }

    fn local_only(&self, what: &'static str) -> Result<(), ClientError> {
        if self.namespace.emulator {
            Ok(())
        } else {
            Err(ClientError::Unsupported(what))
        }
    }
}

/// Builds a received message from a receive response.
async fn read_message(response: Response) -> Result<ReceivedMessage, ClientError> {
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| ClientError::Unavailable {
            attempts: 1,
            detail: format!("reading the message body failed: {e}"),
        })?;
    from_parts(&headers, body.to_vec())
}

fn from_parts(headers: &HeaderMap, body: Vec<u8>) -> Result<ReceivedMessage, ClientError> {
    let props: BrokerProperties = headers
        .get("brokerproperties")
        .and_then(|v| v.to_str().ok())
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| ClientError::BadRequest(format!("unreadable BrokerProperties: {e}")))?
        .unwrap_or_default();
    let mut message = Message::new(body);
    props
        .apply_to(&mut message)
        .map_err(|e| ClientError::BadRequest(e.to_string()))?;
    message.scheduled_enqueue_time = None;
    // Azure's examples (and the embedded broker) answer this type for messages sent without one.
    message.content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .filter(|ct| *ct != super::message::REST_DEFAULT_CONTENT_TYPE)
        .map(str::to_owned);
    for (name, value) in headers {
        if super::message::is_user_property_header(name.as_str())
            && let Some(parsed) = value.to_str().ok().and_then(PropertyValue::from_header)
        {
            message.properties.insert(name.as_str().to_string(), parsed);
        }
    }
    Ok(received_from(
        message,
        &props,
        headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    ))
}

fn received_from(
    message: Message,
    props: &BrokerProperties,
    location: Option<String>,
) -> ReceivedMessage {
    let enqueued_time = props
        .enqueued_time_utc
        .as_deref()
        .and_then(parse_http_date)
        .unwrap_or_default();
    ReceivedMessage {
        expires_at: props
            .time_to_live
            .map(|ttl| enqueued_time + chrono::Duration::milliseconds((ttl * 1000.0) as i64)),
        sequence_number: props.sequence_number.unwrap_or_default(),
        enqueued_sequence_number: props.enqueued_sequence_number.unwrap_or_default(),
        enqueued_time,
        delivery_count: props.delivery_count.unwrap_or(1).max(0) as u32,
        lock_token: props.lock_token.clone(),
        locked_until: props.locked_until_utc.as_deref().and_then(parse_http_date),
        state: match props.state.as_deref() {
            Some("Deferred") => MessageState::Deferred,
            Some("Scheduled") => MessageState::Scheduled,
            _ => MessageState::Active,
        },
        dead_letter_source: props.dead_letter_source.clone(),
        location,
        message,
    }
}

fn browse_item(item: &serde_json::Value) -> Result<ReceivedMessage, ClientError> {
    use base64::Engine as _;
    let bad = |what: &str| ClientError::BadRequest(format!("unreadable browse item: {what}"));
    let body = base64::engine::general_purpose::STANDARD
        .decode(item["Body"].as_str().unwrap_or_default())
        .map_err(|_| bad("Body"))?;
    let props: BrokerProperties = serde_json::from_value(item["BrokerProperties"].clone())
        .map_err(|_| bad("BrokerProperties"))?;
    let mut message = Message::new(body);
    props
        .apply_to(&mut message)
        .map_err(|e| ClientError::BadRequest(e.to_string()))?;
    message.content_type = item["ContentType"].as_str().map(str::to_owned);
    if let Some(user) = item["UserProperties"].as_object() {
        for (k, v) in user {
            if let Some(parsed) = v.as_str().and_then(PropertyValue::from_header) {
                message.properties.insert(k.clone(), parsed);
            }
        }
    }
    Ok(received_from(message, &props, None))
}

/// A send request's headers and body for `message` (Send Message's wire form).
fn send_request(r: RequestBuilder, message: &Message) -> RequestBuilder {
    let props = serde_json::to_string(&BrokerProperties::for_send(message))
        .expect("broker properties serialize");
    let mut r = r
        .header("brokerproperties", props)
        .body(message.body.clone());
    if let Some(ct) = &message.content_type {
        r = r.header("content-type", ct);
    }
    for (name, value) in &message.properties {
        r = r.header(name.as_str(), value.to_header());
    }
    r
}
