//! OpenTelemetry providers from the standard environment.
//!
//! - OTLP over http/protobuf when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the signal's own
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`) is set; headers, timeout
//!   and the batch settings (`OTEL_BSP_*`, `OTEL_METRIC_EXPORT_INTERVAL`) are read by the SDK.
//! - Application Insights when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set: SERVER and
//!   CONSUMER spans become requests, CLIENT and PRODUCER spans dependencies, so one document is
//!   one operation in the transaction view.
//!
//! - Metrics always: the meter provider has a Prometheus pull reader whatever is set (its text
//!   is [`crate::metrics::text`], served as `GET /metrics`); the push readers above are added
//!   when configured.
//!
//! The batch processors run on their own threads with a blocking HTTP client, so export never
//! competes with the handler's runtime.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};

use crate::metrics::{Exposition, pull_reader};

/// Where telemetry goes, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSettings {
    /// OTLP traces are exported.
    pub otlp_traces: bool,
    /// OTLP metrics are exported.
    pub otlp_metrics: bool,
    /// The Application Insights connection string.
    pub app_insights: Option<String>,
    /// OTLP's encoding of traces: http/protobuf, or http/json when
    /// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` (or `OTEL_EXPORTER_OTLP_PROTOCOL`) says so.
    pub traces_protocol: Protocol,
    /// The same for metrics (`OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`).
    pub metrics_protocol: Protocol,
    /// Traces go here (OTLP/HTTP, JSON, in batches this often) rather than to the
    /// environment's OTLP endpoint: `docflow dev` sends its own spans to its dashboard, which
    /// passes them on to the user's endpoint. Application Insights, when configured, still
    /// gets them directly.
    pub traces_to: Option<(String, Duration)>,
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            otlp_traces: false,
            otlp_metrics: false,
            app_insights: None,
            traces_protocol: Protocol::HttpBinary,
            metrics_protocol: Protocol::HttpBinary,
            traces_to: None,
        }
    }
}

impl ExportSettings {
    /// Reads the standard variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| lookup(name).is_some_and(|v| !v.trim().is_empty());
        Self {
            otlp_traces: set("OTEL_EXPORTER_OTLP_ENDPOINT")
                || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            otlp_metrics: set("OTEL_EXPORTER_OTLP_ENDPOINT")
                || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
            app_insights: lookup("APPLICATIONINSIGHTS_CONNECTION_STRING")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
            traces_protocol: protocol(
                lookup("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                    .or_else(|| lookup("OTEL_EXPORTER_OTLP_PROTOCOL")),
            ),
            metrics_protocol: protocol(
                lookup("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
                    .or_else(|| lookup("OTEL_EXPORTER_OTLP_PROTOCOL")),
            ),
            traces_to: None,
        }
    }

    /// These settings with OTLP traces sent to `endpoint` (JSON, a batch every `delay`) instead
    /// of the environment's endpoint (whoever listens there forwards them).
    pub fn traces_to(mut self, endpoint: &str, delay: Duration) -> Self {
        self.otlp_traces = true;
        self.traces_protocol = Protocol::HttpJson;
        self.traces_to = Some((endpoint.to_owned(), delay));
        self
    }

    /// Reads the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Whether spans are exported anywhere.
    pub fn traces(&self) -> bool {
        self.otlp_traces || self.app_insights.is_some()
    }

    /// Whether metrics are pushed anywhere (they are always collected for `GET /metrics`).
    pub fn metrics(&self) -> bool {
        self.otlp_metrics || self.app_insights.is_some()
    }
}

/// Why export cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The OTLP exporter refused its settings.
    #[error("OTLP exporter: {0}")]
    Otlp(String),
    /// The Application Insights connection string is unusable.
    #[error("APPLICATIONINSIGHTS_CONNECTION_STRING: {0}")]
    AppInsights(String),
    /// The Prometheus reader could not be set up.
    #[error("Prometheus reader: {0}")]
    Prometheus(String),
}

/// The providers export was set up with; shut them down to flush.
#[derive(Debug, Default)]
pub struct Providers {
    /// Spans, when exported.
    pub tracer: Option<SdkTracerProvider>,
    /// Metrics: always built by [`Providers::build`] and [`Providers::pull_only`].
    pub meter: Option<SdkMeterProvider>,
    /// The Prometheus text of what `meter` recorded.
    pub exposition: Option<Exposition>,
}

impl Providers {
    /// Builds the providers `settings` ask for, for a service named `service`.
    pub fn build(settings: &ExportSettings, service: &str) -> Result<Self, ExportError> {
        let resource = resource(service);
        let app_insights = settings
            .app_insights
            .as_deref()
            .map(|cs| {
                opentelemetry_application_insights::Exporter::new_from_connection_string(
                    cs,
                    blocking_client(),
                )
                .map_err(|e| ExportError::AppInsights(e.to_string()))
            })
            .transpose()?;
        let tracer = if settings.traces() {
            // A remote parent that was not sampled (an SDK's Diagnostic-Id without tracing on)
            // still gets its spans recorded: docflow's own trace is the one operators read.
            let mut builder = SdkTracerProvider::builder()
                .with_resource(resource.clone())
                .with_sampler(Sampler::AlwaysOn);
            if let Some((endpoint, delay)) = &settings.traces_to {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(settings.traces_protocol)
                    .with_endpoint(endpoint)
                    .build()
                    .map_err(|e| ExportError::Otlp(e.to_string()))?;
                let config = BatchConfigBuilder::default()
                    .with_scheduled_delay(*delay)
                    .build();
                builder = builder.with_span_processor(
                    BatchSpanProcessor::builder(exporter)
                        .with_batch_config(config)
                        .build(),
                );
            } else if settings.otlp_traces {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(settings.traces_protocol)
                    .build()
                    .map_err(|e| ExportError::Otlp(e.to_string()))?;
                builder = builder.with_batch_exporter(exporter);
            }
            if let Some(exporter) = &app_insights {
                builder = builder.with_batch_exporter(exporter.clone());
            }
            Some(builder.build())
        } else {
            None
        };
        let (reader, exposition) = pull_reader().map_err(ExportError::Prometheus)?;
        let meter = {
            let mut builder = SdkMeterProvider::builder()
                .with_resource(resource)
                .with_reader(reader);
            if settings.otlp_metrics {
                let exporter = opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_protocol(settings.metrics_protocol)
                    .build()
                    .map_err(|e| ExportError::Otlp(e.to_string()))?;
                builder = builder.with_periodic_exporter(exporter);
            }
            if let Some(exporter) = app_insights {
                builder = builder.with_reader(
                    PeriodicReader::builder(exporter)
                        .with_interval(Duration::from_secs(60))
                        .build(),
                );
            }
            builder.build()
        };
        Ok(Self {
            tracer,
            meter: Some(meter),
            exposition: Some(exposition),
        })
    }

    /// Metrics for `GET /metrics` only: what is left when export cannot be set up.
    pub fn pull_only(service: &str) -> Self {
        let Ok((reader, exposition)) = pull_reader() else {
            return Self::default();
        };
        let meter = SdkMeterProvider::builder()
            .with_resource(resource(service))
            .with_reader(reader)
            .build();
        Self {
            tracer: None,
            meter: Some(meter),
            exposition: Some(exposition),
        }
    }

    /// Flushes and stops export (blocking: up to the exporters' timeouts).
    pub fn shutdown(&self) {
        if let Some(tracer) = &self.tracer
            && let Err(e) = tracer.shutdown()
        {
            eprintln!("docflow: flushing traces: {e}");
        }
        if let Some(meter) = &self.meter
            && let Err(e) = meter.shutdown()
        {
            eprintln!("docflow: flushing metrics: {e}");
        }
    }
}

/// `http/json` is JSON; anything else http/protobuf (gRPC is not built in: it is reported by
/// the exporter's endpoint failing, as with any unreachable collector).
fn protocol(value: Option<String>) -> Protocol {
    match value.as_deref().map(str::trim) {
        Some("http/json") => Protocol::HttpJson,
        _ => Protocol::HttpBinary,
    }
}

fn resource(service: &str) -> Resource {
    let mut builder = Resource::builder();
    // OTEL_SERVICE_NAME, when set, names the service (the builder reads it).
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        builder = builder.with_service_name(service.to_owned());
    }
    builder = builder.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    // Azure Functions names the instance; Application Insights shows it as the role instance.
    if let Ok(id) = std::env::var("WEBSITE_INSTANCE_ID") {
        builder = builder.with_attribute(KeyValue::new("service.instance.id", id));
    }
    builder.build()
}

/// A blocking client must not be built on a runtime thread.
fn blocking_client() -> reqwest::blocking::Client {
    std::thread::spawn(|| {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client with the default TLS settings builds")
    })
    .join()
    .expect("the HTTP client thread finishes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_follow_the_standard_variables() {
        let none = ExportSettings::from_lookup(|_| None);
        assert!(!none.traces() && !none.metrics());
        let otlp = ExportSettings::from_lookup(|k| {
            (k == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").then(|| "http://x/v1/traces".into())
        });
        assert!(otlp.traces() && !otlp.metrics());
        let blank = ExportSettings::from_lookup(|_| Some("  ".into()));
        assert_eq!(blank, ExportSettings::default());
        let json = ExportSettings::from_lookup(|k| {
            (k == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "http/json".into())
        });
        assert_eq!(
            (json.traces_protocol, json.metrics_protocol),
            (Protocol::HttpJson, Protocol::HttpJson)
        );
        let ai = ExportSettings::from_lookup(|k| {
            (k == "APPLICATIONINSIGHTS_CONNECTION_STRING").then(|| "InstrumentationKey=k".into())
        });
        assert!(ai.traces() && ai.metrics());
    }
}
