//! Metrics: the meter instruments are created from, and the Prometheus text of what the
//! process recorded (`GET /metrics`).
//!
//! The meter provider [`crate::init_exporting`] installs always has a Prometheus pull reader,
//! so metrics can be scraped with no exporter configured; OTLP and Application Insights push
//! from the same provider when their variables are set (see [`crate::export`]).

use std::sync::OnceLock;

use opentelemetry::metrics::Meter;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::Encoder as _;

/// The `Content-Type` of [`text`]: Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket boundaries, in seconds, for durations from milliseconds (a lookup) to minutes (a
/// long document's LLM call, a queue backlog).
pub const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// The GenAI conventions' boundaries for `gen_ai.client.token.usage`.
pub const TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// The GenAI conventions' boundaries for `gen_ai.client.operation.duration`.
pub const GENAI_SECONDS_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// What a Prometheus pull reader collected into: rendered as text on demand.
#[derive(Debug, Clone)]
pub struct Exposition(prometheus::Registry);

impl Exposition {
    /// Everything recorded so far, in Prometheus text format.
    pub fn text(&self) -> String {
        let mut out = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.0.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// A Prometheus pull reader and the exposition it fills.
pub(crate) fn pull_reader()
-> Result<(opentelemetry_prometheus::PrometheusExporter, Exposition), String> {
    let registry = prometheus::Registry::new();
    let reader = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .map_err(|e| e.to_string())?;
    Ok((reader, Exposition(registry)))
}

/// A meter provider with a pull reader only, and its exposition: what a test records into.
pub fn pull_only() -> (SdkMeterProvider, Exposition) {
    let (reader, exposition) = pull_reader().expect("a fresh registry takes the exporter");
    (
        SdkMeterProvider::builder().with_reader(reader).build(),
        exposition,
    )
}

static SERVED: OnceLock<Exposition> = OnceLock::new();

/// Makes `exposition` the one [`text`] renders (the first one wins).
pub(crate) fn serve(exposition: Exposition) {
    let _ = SERVED.set(exposition);
}

/// The process's metrics in Prometheus text format; empty when telemetry was not initialised
/// with [`crate::init_exporting`].
pub fn text() -> String {
    SERVED.get().map(Exposition::text).unwrap_or_default()
}

/// The meter docflow's instruments are created from (the global provider's). Create
/// instruments once, after [`crate::init_exporting`]: one created before it records nothing.
pub fn meter() -> Meter {
    opentelemetry::global::meter("docflow")
}

#[cfg(test)]
mod tests {
    use opentelemetry::KeyValue;
    use opentelemetry::metrics::MeterProvider as _;

    use super::*;

    #[test]
    fn what_is_recorded_is_rendered_as_prometheus_text() {
        let (provider, exposition) = pull_only();
        let meter = provider.meter("docflow");
        let counter = meter.u64_counter("docflow.things").build();
        counter.add(3, &[KeyValue::new("function", "F")]);
        let seconds = meter
            .f64_histogram("docflow.wait")
            .with_unit("s")
            .with_boundaries(SECONDS_BUCKETS.to_vec())
            .build();
        seconds.record(0.2, &[]);
        let text = exposition.text();
        assert!(
            text.contains("docflow_things_total{function=\"F\",otel_scope_name=\"docflow\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("docflow_wait_seconds_bucket{otel_scope_name=\"docflow\",le=\"0.25\"} 1"),
            "{text}"
        );
        assert_eq!(super::text(), "", "nothing is served before init");
    }
}
