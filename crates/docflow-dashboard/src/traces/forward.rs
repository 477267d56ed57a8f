//! The copy of every received export to the user's own OTLP endpoint: `docflow dev` points the
//! handler's traces at the dashboard, and the user's `OTEL_EXPORTER_OTLP_*` settings keep
//! working through this. Best effort, off the request path: bodies wait in a bounded queue and
//! are dropped (and counted) when it is full, so ingestion never waits on the user's endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

/// Bodies waiting to be forwarded at most: a few seconds of a busy handler's exports.
pub const QUEUE: usize = 256;
/// How long one forward may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where to forward, as the OTLP exporter's variables say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardOptions {
    /// The traces endpoint: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`; none: nothing is forwarded.
    pub endpoint: Option<String>,
    /// Headers (`OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`:
    /// `key=value` pairs separated by commas, values percent-encoded).
    pub headers: Vec<(String, String)>,
}

impl ForwardOptions {
    /// Reads the variables through `lookup` (the user's environment, before `docflow dev`
    /// points the handler at the dashboard).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let endpoint = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
            get("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        });
        let headers = get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .or_else(|| get("OTEL_EXPORTER_OTLP_HEADERS"))
            .map(|h| parse_headers(&h))
            .unwrap_or_default();
        Self { endpoint, headers }
    }
}

/// `k1=v1,k2=v2`, values percent-decoded; malformed pairs are skipped.
fn parse_headers(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_owned(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The sending end of the queue.
#[derive(Debug, Clone)]
pub struct Forwarder {
    tx: mpsc::Sender<bytes::Bytes>,
    dropped: Arc<AtomicU64>,
}

impl Forwarder {
    /// Starts the task that forwards to `options.endpoint` (none: `None`); it ends when every
    /// forwarder is dropped.
    pub fn start(options: ForwardOptions) -> Option<Self> {
        let endpoint = options.endpoint?;
        let (tx, mut rx) = mpsc::channel::<bytes::Bytes>(QUEUE);
        let client = reqwest::Client::builder().timeout(TIMEOUT).build().ok()?;
        let headers = options.headers;
        tokio::spawn(async move {
            let mut failing = false;
            while let Some(body) = rx.recv().await {
                let mut request = client
                    .post(&endpoint)
                    .header("content-type", "application/json")
                    .body(body);
                for (k, v) in &headers {
                    request = request.header(k, v);
                }
                let outcome = match request.send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("answered {}", r.status())),
                    Err(e) => Err(e.to_string()),
                };
                // Said once per run of failures, not once per body.
                match outcome {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, endpoint = %endpoint, "forwarding traces failed");
                    }
                    Err(_) => {}
                }
            }
        });
        Some(Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues a body; when the queue is full it is dropped.
    pub fn send(&self, body: bytes::Bytes) {
        if self.tx.try_send(body).is_err() && self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!("the traces forwarding queue is full: exports are dropped");
        }
    }

    /// Bodies dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_and_headers_follow_the_exporters_variables() {
        let options = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            ForwardOptions::from_lookup(|k| {
                vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            })
        };
        assert_eq!(options(&[]), ForwardOptions::default());
        let base = options(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=a%3Db, x-team = docs ,broken",
            ),
        ]);
        assert_eq!(
            base.endpoint.as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(
            base.headers,
            vec![
                ("api-key".into(), "a=b".into()),
                ("x-team".into(), "docs".into())
            ]
        );
        let traces = options(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://collector:4318/custom",
            ),
        ]);
        assert_eq!(
            traces.endpoint.as_deref(),
            Some("http://collector:4318/custom")
        );
    }
}
