//! A reply's outputs applied by the host's rules (protocol doc §2.2–2.4): `ReturnValue` merged,
//! Service Bus messages sent (body only, `text/plain`, stamped with the host's trace context as
//! the SDK does), blobs written once every path resolved, and the HTTP `res` handed back.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::config::{FunctionDef, Output};
use crate::invoke::{BindingData, Reply};
use docflow_blob::BlobStore;
use docflow_broker::Broker;
use docflow_custom_handler::protocol::host_rules;
use docflow_servicebus::message::{Message, PropertyValue};

/// The outputs after `ReturnValue` is applied: to `$return`, or, when it is an object and there is
/// no `$return` binding, copied over `Outputs` by name (§2.1).
fn effective_outputs(def: &FunctionDef, reply: &Reply) -> Map<String, Value> {
    let mut outputs = reply.outputs.clone();
    if def.outputs.iter().any(|o| o.name() == "$return") {
        outputs.insert("$return".into(), reply.return_value.clone());
    } else if let Value::Object(extra) = &reply.return_value {
        for (k, v) in extra {
            outputs.insert(k.clone(), v.clone());
        }
    }
    outputs
}

/// Applies a reply's outputs: Service Bus messages (body only, `text/plain`), blobs. Returns the
/// HTTP `res` value, if the function has one. Blob paths are resolved before anything is written.
pub async fn apply_outputs(
    def: &FunctionDef,
    reply: &Reply,
    data: &BindingData,
    broker: &Broker,
    blobs: &dyn BlobStore,
) -> Result<Option<Value>, String> {
    let outputs = effective_outputs(def, reply);
    let mut blob_writes = Vec::new();
    for output in &def.outputs {
        if let Output::Blob { name, path, binary } = output
            && let Some(value) = outputs.get(name).filter(|v| !v.is_null())
        {
            let resolved = data.resolve(path)?;
            let (container, blob) = resolved.split_once('/').ok_or_else(|| {
                format!("blob path {resolved:?} of binding {name} has no container")
            })?;
            let bytes = host_rules::blob_bytes(value, *binary)
                .ok_or_else(|| format!("blob output {name}: numbers and booleans are written as raw binary by the host; send a string or an object"))?;
            blob_writes.push((container.to_string(), blob.to_string(), bytes));
        }
    }
    let mut http = None;
    for output in &def.outputs {
        match output {
            Output::ServiceBus { name, entity } => {
                let Some(value) = outputs.get(name) else {
                    continue;
                };
                // The SDK the host sends with stamps the host's own context, as on Azure.
                let trace = docflow_telemetry::TraceContext::of_span(&tracing::Span::current());
                let messages: Vec<Message> = host_rules::service_bus_bodies(value)
                    .into_iter()
                    .map(|body| {
                        let mut message = Message::new(body).with_content_type("text/plain");
                        for (name, value) in trace
                            .as_ref()
                            .map(docflow_telemetry::TraceContext::application_properties)
                            .unwrap_or_default()
                        {
                            message
                                .properties
                                .insert(name.into(), PropertyValue::String(value));
                        }
                        message
                    })
                    .collect();
                if !messages.is_empty() {
                    broker
                        .send(entity, messages)
                        .await
                        .map_err(|e| format!("output binding {name} failed: {e}"))?;
                }
            }
            Output::Http { name } => http = outputs.get(name).cloned(),
            Output::Blob { .. } => {}
        }
    }
    for (container, blob, bytes) in blob_writes {
        blobs
            .put(
                &container,
                &blob,
                Bytes::from(bytes),
                "application/octet-stream",
            )
            .await
            .map_err(|e| format!("blob output {container}/{blob} failed: {e}"))?;
    }
    Ok(http)
}
