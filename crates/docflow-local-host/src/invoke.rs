//! The host side of the wire protocol: invocation requests built exactly as the real host builds
//! them (protocol doc §1, §4.2, §7) and replies read as it reads them (§2.1). Outputs are
//! applied by [`crate::outputs`].

use std::collections::HashMap;

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::config::ServiceBusTrigger;
use docflow_servicebus::message::{Message, PropertyValue, ReceivedMessage};

/// Values that binding expressions (`{MessageId}`, `{documentId}`, `{sys.randguid}`) resolve
/// against, keyed case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct BindingData {
    values: HashMap<String, String>,
}

impl BindingData {
    fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_ascii_lowercase(), value.into());
    }

    /// A value by name (case-insensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Resolves a binding expression path such as `results/{documentId}/{sys.randguid}.json`.
    pub fn resolve(&self, template: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in {template:?}"))?
                + start;
            let name = rest[start + 1..end].trim();
            let value = self.get(name).ok_or_else(|| {
                format!(
                    "binding expression {{{name}}} in {template:?} has no value for this invocation"
                )
            })?;
            out.push_str(&rest[..start]);
            out.push_str(value);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The `sys` object, and the matching binding data.
fn sys(function: &str, data: &mut BindingData) -> Value {
    let now = Utc::now();
    // .NET's round-trip format: seven fractional digits.
    let utc_now = format!(
        "{}.{:07}Z",
        now.format("%Y-%m-%dT%H:%M:%S"),
        now.timestamp_subsec_nanos() / 100
    );
    let guid = uuid::Uuid::new_v4().to_string();
    data.insert("sys.methodname", function);
    data.insert("sys.utcnow", utc_now.clone());
    data.insert("sys.randguid", guid.clone());
    data.insert("rand-guid", uuid::Uuid::new_v4().to_string());
    data.insert("DateTime", now.format("%Y-%m-%dT%H-%M-%SZ").to_string());
    json!({"MethodName": function, "UtcNow": utc_now, "RandGuid": guid})
}

/// `JsonConvert.SerializeObject` of a scalar: a JSON string holding JSON text (§1.3).
fn encoded(v: &Value) -> Value {
    Value::String(v.to_string())
}

fn encoded_str(s: &str) -> Value {
    encoded(&Value::String(s.to_string()))
}

/// `DateTime` (kind Unspecified): seconds precision, no offset.
fn datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// `DateTimeOffset`: seconds precision with `+00:00`.
fn datetime_offset(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// `DateTimeOffset.MaxValue`, what a message without expiry reports.
const NEVER: &str = "9999-12-31T23:59:59";

fn settlement_stubs(metadata: &mut Map<String, Value>, namespace: &str) {
    for key in [
        "MessageReceiver",
        "MessageSession",
        "MessageActions",
        "SessionActions",
        "ReceiveActions",
    ] {
        metadata.insert(key.into(), json!({}));
    }
    metadata.insert(
        "Client".into(),
        json!({"FullyQualifiedNamespace": namespace, "IsClosed": false, "TransportType": 0, "Identifier": format!("{namespace}-{}", uuid::Uuid::new_v4())}),
    );
}

fn properties_json(m: &Message) -> Value {
    let map: Map<String, Value> = m
        .properties
        .iter()
        .map(|(k, v)| {
            let value = match v {
                PropertyValue::String(s) => json!(s),
                PropertyValue::Int(n) => json!(n),
                PropertyValue::Double(x) => json!(x),
                PropertyValue::Bool(b) => json!(b),
                PropertyValue::DateTime(t) => json!(t.to_rfc3339()),
            };
            (k.clone(), value)
        })
        .collect();
    Value::Object(map)
}

/// The request for a `cardinality: one` Service Bus trigger.
pub fn service_bus_request(
    function: &str,
    trigger: &ServiceBusTrigger,
    m: &ReceivedMessage,
    namespace: &str,
) -> (Value, BindingData) {
    let mut data = BindingData::default();
    let mut md = Map::new();
    settlement_stubs(&mut md, namespace);
    let msg = &m.message;
    md.insert("DeliveryCount".into(), encoded(&json!(m.delivery_count)));
    if let Some(source) = &m.dead_letter_source {
        md.insert("DeadLetterSource".into(), encoded_str(source));
    }
    if let Some(token) = &m.lock_token {
        md.insert("LockToken".into(), encoded_str(token));
    }
    let (expires_utc, expires) = match m.expires_at {
        Some(t) => (datetime(t), datetime_offset(t)),
        None => (NEVER.to_string(), format!("{NEVER}+00:00")),
    };
    md.insert("ExpiresAtUtc".into(), json!(expires_utc));
    md.insert("ExpiresAt".into(), json!(expires));
    md.insert("EnqueuedTimeUtc".into(), json!(datetime(m.enqueued_time)));
    md.insert(
        "EnqueuedTime".into(),
        json!(datetime_offset(m.enqueued_time)),
    );
    data.insert("DeliveryCount", m.delivery_count.to_string());
    data.insert("SequenceNumber", m.sequence_number.to_string());
    let strings = [
        ("MessageId", &msg.message_id),
        ("ContentType", &msg.content_type),
        ("ReplyTo", &msg.reply_to),
        ("To", &msg.to),
        ("CorrelationId", &msg.correlation_id),
        ("SessionId", &msg.session_id),
        ("ReplyToSessionId", &msg.reply_to_session_id),
        ("PartitionKey", &msg.partition_key),
        ("TransactionPartitionKey", &msg.partition_key),
        ("Subject", &msg.subject),
        ("Label", &msg.subject),
    ];
    for (key, value) in strings {
        if let Some(v) = value {
            md.insert(key.into(), encoded_str(v));
            data.insert(key, v.clone());
        }
    }
    md.insert("SequenceNumber".into(), encoded(&json!(m.sequence_number)));
    md.insert("ApplicationProperties".into(), properties_json(msg));
    md.insert("UserProperties".into(), properties_json(msg));
    let body_value = match trigger.data_type.as_deref() {
        Some("binary") => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(&msg.body))
        }
        _ => {
            let text = String::from_utf8_lossy(&msg.body).into_owned();
            merge_body_properties(&text, &mut md, &mut data);
            encoded_str(&text)
        }
    };
    md.insert("sys".into(), sys(function, &mut data));
    let request = json!({"Data": {trigger.name.clone(): body_value}, "Metadata": md});
    (request, data)
}

/// `Utility.ApplyBindingData`: a JSON object body's top-level non-array properties are copied
/// into the (case-insensitive) binding data, overwriting Service Bus keys of the same name.
fn merge_body_properties(text: &str, md: &mut Map<String, Value>, data: &mut BindingData) {
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        return;
    }
    let Ok(Value::Object(props)) = serde_json::from_str::<Value>(trimmed) else {
        return;
    };
    for (key, value) in props {
        let (wire, plain) = match &value {
            Value::Array(_) => continue,
            Value::Object(_) => (value.clone(), None),
            Value::String(s) => (encoded_str(s), Some(s.clone())),
            Value::Null => continue,
            other => {
                let s = other.to_string();
                (encoded_str(&s), Some(s))
            }
        };
        let existing = md.keys().find(|k| k.eq_ignore_ascii_case(&key)).cloned();
        md.insert(existing.unwrap_or(key.clone()), wire);
        if let Some(p) = plain {
            data.insert(&key, p);
        }
    }
}

/// Why a batch cannot be bound (the whole batch is abandoned, as on Azure).
pub type BindError = String;

/// The request for a `cardinality: many` Service Bus trigger (§7).
pub fn service_bus_batch_request(
    function: &str,
    trigger: &ServiceBusTrigger,
    batch: &[ReceivedMessage],
    namespace: &str,
) -> Result<(Value, BindingData), BindError> {
    let mut data = BindingData::default();
    let bodies: Vec<Value> = batch
        .iter()
        .map(|m| match trigger.data_type.as_deref() {
            Some("binary") => Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(&m.message.body))),
            Some(_) => Ok(Value::String(String::from_utf8_lossy(&m.message.body).into_owned())),
            None => serde_json::from_slice::<Value>(&m.message.body).map_err(|e| {
                format!("message {} is not JSON and the trigger has no dataType, so the batch cannot be bound: {e}", m.sequence_number)
            }),
        })
        .collect::<Result<_, _>>()?;
    let mut md = Map::new();
    settlement_stubs(&mut md, namespace);
    let array = |f: &dyn Fn(&ReceivedMessage) -> Value| {
        Value::String(Value::Array(batch.iter().map(f).collect()).to_string())
    };
    let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    let stamp = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
    md.insert(
        "DeliveryCountArray".into(),
        array(&|m| json!(m.delivery_count)),
    );
    md.insert(
        "DeadLetterSourceArray".into(),
        array(&|m| opt(&m.dead_letter_source)),
    );
    md.insert("LockTokenArray".into(), array(&|m| opt(&m.lock_token)));
    md.insert(
        "ExpiresAtUtcArray".into(),
        array(&|m| json!(m.expires_at.map_or(format!("{NEVER}.999"), stamp))),
    );
    md.insert(
        "ExpiresAtArray".into(),
        array(&|m| {
            json!(format!(
                "{}+00:00",
                m.expires_at.map_or(format!("{NEVER}.999"), stamp)
            ))
        }),
    );
    md.insert(
        "EnqueuedTimeUtcArray".into(),
        array(&|m| json!(stamp(m.enqueued_time))),
    );
    md.insert(
        "EnqueuedTimeArray".into(),
        array(&|m| json!(format!("{}+00:00", stamp(m.enqueued_time)))),
    );
    md.insert(
        "MessageIdArray".into(),
        array(&|m| opt(&m.message.message_id)),
    );
    md.insert(
        "ContentTypeArray".into(),
        array(&|m| opt(&m.message.content_type)),
    );
    md.insert("ReplyToArray".into(), array(&|m| opt(&m.message.reply_to)));
    md.insert(
        "SequenceNumberArray".into(),
        array(&|m| json!(m.sequence_number)),
    );
    md.insert("ToArray".into(), array(&|m| opt(&m.message.to)));
    md.insert("SubjectArray".into(), array(&|m| opt(&m.message.subject)));
    md.insert("LabelArray".into(), array(&|m| opt(&m.message.subject)));
    md.insert(
        "CorrelationIdArray".into(),
        array(&|m| opt(&m.message.correlation_id)),
    );
    md.insert(
        "ApplicationPropertiesArray".into(),
        array(&|m| properties_json(&m.message)),
    );
    md.insert(
        "UserPropertiesArray".into(),
        array(&|m| properties_json(&m.message)),
    );
    md.insert(
        "SessionIdArray".into(),
        array(&|m| opt(&m.message.session_id)),
    );
    md.insert(
        "ReplyToSessionIdArray".into(),
        array(&|m| opt(&m.message.reply_to_session_id)),
    );
    md.insert(
        "PartitionKeyArray".into(),
        array(&|m| opt(&m.message.partition_key)),
    );
    md.insert(
        "TransactionPartitionKeyArray".into(),
        array(&|m| opt(&m.message.partition_key)),
    );
    md.insert("sys".into(), sys(function, &mut data));
    let request = json!({"Data": {trigger.name.clone(): Value::String(Value::Array(bodies).to_string())}, "Metadata": md});
    Ok((request, data))
}

/// An HTTP request as the host passes it in default mode (§4.2).
#[derive(Debug, Clone)]
pub struct HttpCall {
    /// Full URL.
    pub url: String,
    /// Method.
    pub method: String,
    /// Query parameters (repeated names comma-joined).
    pub query: Vec<(String, String)>,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Route parameters.
    pub params: Vec<(String, String)>,
    /// Body bytes.
    pub body: Bytes,
}

/// The request for an HTTP trigger in default payload mode.
pub fn http_request(function: &str, binding: &str, call: &HttpCall) -> (Value, BindingData) {
    let mut data = BindingData::default();
    let mut query = Map::new();
    for (k, v) in &call.query {
        let joined = match query.get(k).and_then(Value::as_str) {
            Some(prev) => format!("{prev},{v}"),
            None => v.clone(),
        };
        query.insert(k.clone(), Value::String(joined));
    }
    let mut headers: Map<String, Value> = Map::new();
    for (k, v) in &call.headers {
        match headers.get_mut(k) {
            Some(Value::Array(values)) => values.push(json!(v)),
            _ => {
                headers.insert(k.clone(), json!([v]));
            }
        }
    }
    let params: Map<String, Value> = call
        .params
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut req = json!({
        "Url": call.url, "Method": call.method, "Query": query, "Headers": headers, "Params": params,
        "Identities": [{"AuthenticationType": null, "IsAuthenticated": false, "Actor": null, "BootstrapContext": null,
            "Claims": [], "Label": null, "Name": null,
            "NameClaimType": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
            "RoleClaimType": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"}],
    });
    if !call.body.is_empty() {
        let content_type = call
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.to_ascii_lowercase())
            .unwrap_or_default();
        let binary = content_type.starts_with("application/octet-stream")
            || content_type.starts_with("multipart/");
        req["Body"] = if binary {
            json!(base64::engine::general_purpose::STANDARD.encode(&call.body))
        } else {
            json!(String::from_utf8_lossy(&call.body))
        };
    }
    let mut md = Map::new();
    md.insert("Query".into(), Value::Object(query.clone()));
    md.insert(
        "Headers".into(),
        Value::Object(
            headers
                .iter()
                .map(|(k, v)| (k.clone(), json!(v[0])))
                .collect(),
        ),
    );
    for (k, v) in &call.params {
        md.insert(k.clone(), encoded_str(v));
        data.insert(k, v.clone());
    }
    for (k, v) in &call.query {
        data.insert(&format!("Query.{k}"), v.clone());
    }
    md.insert("sys".into(), sys(function, &mut data));
    (json!({"Data": {binding: req}, "Metadata": md}), data)
}

/// A handler reply the host accepted.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// `Outputs`.
    pub outputs: Map<String, Value>,
    /// `Logs`.
    pub logs: Vec<String>,
    /// `ReturnValue`.
    pub return_value: Value,
}

/// Reads a reply as the host does; an error fails the invocation.
pub async fn read_reply(response: reqwest::Response) -> Result<Reply, String> {
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(format!(
            "the handler answered {status}: {}",
            body.chars().take(300).collect::<String>()
        ));
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading the handler's reply failed: {e}"))?;
    parse_reply(content_type.as_deref(), &body)
}

/// The host's reply rules (§2.1), on a 2xx answer.
pub fn parse_reply(content_type: Option<&str>, body: &[u8]) -> Result<Reply, String> {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() || text.trim() == "null" {
        return Err("the handler answered 2xx with an empty body; the real host would wait for it until functionTimeout".into());
    }
    match content_type {
        Some("application/json" | "text/json") => {}
        Some(other) => return Err(format!("the handler answered Content-Type {other}; the host reads only application/json")),
        None => return Err("the handler answered without a Content-Type; the host cannot read it (UnsupportedMediaTypeException)".into()),
    }
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("the handler's reply is not JSON: {e}"))?;
    let Value::Object(top) = value else {
        return Err("the handler's reply is not a JSON object".into());
    };
    let field = |name: &str| {
        top.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let outputs = match field("Outputs") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err("Outputs must be an object".into()),
    };
    let logs = match field("Logs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(_) | Value::Bool(_) => Ok(v.to_string()),
                Value::Null => Ok(String::new()),
                _ => Err(
                    "Logs must hold strings; an object or array element fails the invocation"
                        .to_string(),
                ),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("Logs must be an array of strings".into()),
    };
    Ok(Reply {
        outputs,
        logs,
        return_value: field("ReturnValue").unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_expressions() {
        let mut data = BindingData::default();
        data.insert("documentId", "doc-1");
        data.insert("MessageId", "m-1");
        assert_eq!(
            data.resolve("results/{DocumentId}/{messageid}.json")
                .unwrap(),
            "results/doc-1/m-1.json"
        );
        assert!(data.resolve("results/{missing}.json").is_err());
        assert!(data.resolve("results/{open").is_err());
    }

    #[test]
    fn reply_rules() {
        assert!(parse_reply(Some("application/json"), b"").is_err());
        assert!(parse_reply(Some("application/json"), b"null").is_err());
        assert!(parse_reply(None, b"{}").is_err());
        assert!(parse_reply(Some("text/plain"), b"{}").is_err());
        assert!(parse_reply(Some("application/json"), br#"{"Logs": [{"a": 1}]}"#).is_err());
        let reply = parse_reply(
            Some("text/json"),
            br#"{"outputs": {"o": 1}, "logs": ["a", 2, true], "returnValue": null}"#,
        )
        .unwrap();
        assert_eq!(reply.logs, vec!["a", "2", "true"]);
        assert_eq!(reply.outputs["o"], 1);
    }
}
