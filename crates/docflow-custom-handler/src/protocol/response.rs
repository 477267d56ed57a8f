//! Building the JSON the handler returns to the host: `{"Outputs", "Logs", "ReturnValue"}`.
//!
//! Every constructor here picks the one encoding that the host turns back into exactly the
//! intended bytes, avoiding the base64 trap of §2.2 (a string output that happens to be valid
//! base64 is decoded to bytes, and a Service Bus body then becomes the literal `System.Byte[]`).

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

/// The handler's reply to one invocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvocationResponse {
    outputs: Map<String, Value>,
    logs: Vec<String>,
    /// Always null: a JSON object here would be copied over `Outputs` by the host (§2.1).
    return_value: Option<()>,
}

impl InvocationResponse {
    /// An empty response (`{"Outputs":{},"Logs":[],"ReturnValue":null}`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Service Bus output: one message per body, each sent with exactly these bytes.
    ///
    /// Uses the array-of-strings form (§2.3): string elements of an array are neither
    /// base64-decoded nor re-indented by the host.
    pub fn service_bus_messages<I, S>(mut self, binding: &str, bodies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let bodies: Vec<Value> = bodies
            .into_iter()
            .map(|b| Value::String(b.into()))
            .collect();
        self.outputs
            .insert(binding.to_string(), Value::Array(bodies));
        self
    }

    /// Blob output (binding without `dataType`) written with exactly these bytes.
    ///
    /// The bytes are sent as base64, which the host always decodes for such a binding (§2.4), so
    /// text that itself looks like base64 cannot be mangled.
    pub fn blob_bytes(mut self, binding: &str, bytes: &[u8]) -> Self {
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.outputs
            .insert(binding.to_string(), Value::String(encoded));
        self
    }

    /// Blob output written as compact JSON (§2.4: objects and arrays are written compact).
    /// A value JSON cannot hold (a map with non-string keys, a failing `Serialize`) is an error
    /// for the caller, not a panic.
    pub fn blob_json<T: Serialize>(
        mut self,
        binding: &str,
        value: &T,
    ) -> Result<Self, serde_json::Error> {
        let value = serde_json::to_value(value)?;
        self.outputs.insert(binding.to_string(), value);
        Ok(self)
    }

    /// The `res` output of an HTTP trigger (§4.3).
    pub fn http(mut self, binding: &str, response: HttpResponseData) -> Self {
        let value = serde_json::to_value(response).expect("an HTTP response serializes");
        self.outputs.insert(binding.to_string(), value);
        self
    }

    /// A line the host logs at Information under the invocation (only on 2xx).
    pub fn log(mut self, line: impl Into<String>) -> Self {
        self.logs.push(line.into());
        self
    }

    /// The outputs set so far.
    pub fn outputs(&self) -> &Map<String, Value> {
        &self.outputs
    }

    /// The log lines set so far.
    pub fn logs(&self) -> &[String] {
        &self.logs
    }
}

/// The `res` output of an HTTP trigger: `statusCode` (not `status`), flat string headers, body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpResponseData {
    /// HTTP status code.
    pub status_code: u16,
    /// Response headers; set `Content-Type` yourself, the host defaults to text/plain.
    pub headers: Map<String, Value>,
    /// The body, written as-is.
    pub body: String,
}

impl HttpResponseData {
    /// A JSON response: `Content-Type: application/json` and the compact JSON body.
    pub fn json<T: Serialize>(mut status_code: u16, body: &T) -> Self {
        let mut headers = Map::new();
        headers.insert(
            "Content-Type".into(),
            Value::String("application/json".into()),
        );
        Self {
            status_code,
            headers,
            body: serde_json::to_string(body).unwrap_or_else(|e| {
                // Only a type JSON cannot hold gets here: say so rather than crash.
                status_code = 500;
                serde_json::json!({"error": format!("the response body cannot be written as JSON: {e}")})
                    .to_string()
            }),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers
            .insert(name.to_string(), Value::String(value.into()));
        self
    }
}
