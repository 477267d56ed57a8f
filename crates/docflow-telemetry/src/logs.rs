//! The global subscriber. `serve` writes JSON lines to stderr (the host forwards stderr to its
//! own log), each with the invocation span's fields (invocation id, function, message id, task
//! id, correlation id), the instance's id when Azure names it (`instance_id`, from
//! `WEBSITE_INSTANCE_ID`: the lines of a scaled-out app's instances told apart) and, when spans
//! are exported, the `trace_id` and `span_id` of the span it was written in. Interactive
//! commands write compact text.

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::export::{ExportSettings, Providers};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// What [`init`] set up; [`Telemetry::shutdown`] flushes exported spans and metrics.
#[derive(Debug, Default)]
pub struct Telemetry {
    providers: Providers,
}

impl Telemetry {
    /// Whether spans are exported (an OpenTelemetry layer traces this process).
    pub fn traced(&self) -> bool {
        self.providers.tracer.is_some()
    }

    /// The meter provider (metrics are always collected; pushed when configured).
    pub fn meter_provider(&self) -> Option<&opentelemetry_sdk::metrics::SdkMeterProvider> {
        self.providers.meter.as_ref()
    }

    /// Flushes and stops export. Blocking: call it outside the runtime or in `spawn_blocking`.
    pub fn shutdown(&self) {
        self.providers.shutdown();
    }
}

/// Installs the global subscriber for logs only; `RUST_LOG` overrides the default `info` level.
pub fn init(format: LogFormat) {
    init_with_default(format, "info");
}

/// Installs the global subscriber for logs only, with `default` as the level when `RUST_LOG`
/// is unset.
pub fn init_with_default(format: LogFormat, default: &str) {
    install(format, default, None);
}

/// Installs the global subscriber with OpenTelemetry export when the environment asks for it
/// (see [`crate::export`]). An export that cannot be set up is reported on stderr and left
/// off: telemetry never stops the app. Keep the result and [`Telemetry::shutdown`] it at exit.
/// `service` names the process (`service.name`) unless `OTEL_SERVICE_NAME` does.
pub fn init_exporting(format: LogFormat, service: &str) -> Telemetry {
    init_exporting_with(format, service, &ExportSettings::from_env())
}

/// [`init_exporting`] with `settings` rather than the environment's.
pub fn init_exporting_with(
    format: LogFormat,
    service: &str,
    settings: &ExportSettings,
) -> Telemetry {
    let providers = Providers::build(settings, service).unwrap_or_else(|e| {
        eprintln!("docflow: telemetry export is off: {e}");
        Providers::pull_only("docflow")
    });
    if let Some(meter) = &providers.meter {
        opentelemetry::global::set_meter_provider(meter.clone());
    }
    if let Some(exposition) = &providers.exposition {
        crate::metrics::serve(exposition.clone());
    }
    install(format, "info", providers.tracer.as_ref());
    Telemetry { providers }
}

fn install(
    format: LogFormat,
    default: &str,
    tracer: Option<&opentelemetry_sdk::trace::SdkTracerProvider>,
) {
    // Logs follow RUST_LOG; exported spans are the app's own at info and above, whatever
    // the log level (an exporter's own diagnostics never become spans).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let otel = tracer.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("docflow"))
            .with_threads(false)
            .with_location(false)
            .with_tracked_inactivity(false)
            .with_filter(EnvFilter::new(SPAN_FILTER))
    });
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .map_event_format(|inner| WithTraceIds {
                inner,
                instance: instance_field(std::env::var("WEBSITE_INSTANCE_ID").ok()),
            })
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => fmt
            .compact()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(filter)
            .boxed(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(otel)
        .with(fmt)
        .try_init();
}

/// What becomes a span when spans are exported.
const SPAN_FILTER: &str = "info,opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,\
                           opentelemetry_http=off,opentelemetry_application_insights=off,\
                           reqwest=off,hyper=off,hyper_util=off,h2=off";

/// A JSON line formatter that appends the instance's id, and the `trace_id` and `span_id` of
/// the span an event was written in when that span is traced. It reads them through the global
/// dispatcher (the one `init` installs): inside a subscriber's callback a scoped one is not
/// reachable.
struct WithTraceIds<F> {
    inner: F,
    /// `,"instance_id":"…"`, or nothing.
    instance: String,
}

/// The JSON field naming instance `id` (none or empty: no field).
fn instance_field(id: Option<String>) -> String {
    id.filter(|id| !id.is_empty())
        .map(|id| format!(",\"instance_id\":{}", serde_json::Value::String(id)))
        .unwrap_or_default()
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let ids = ctx
            .parent_span()
            .map(|span| span.id())
            .and_then(|id| {
                tracing::dispatcher::get_default(|d| {
                    tracing_opentelemetry::get_otel_context(&id, d)
                })
            })
            .and_then(|context| {
                let span = context.span();
                let ids = span.span_context();
                ids.is_valid().then(|| (ids.trace_id(), ids.span_id()))
            });
        let Some(head) = line.strip_suffix("}\n") else {
            return writer.write_str(&line);
        };
        writer.write_str(head)?;
        writer.write_str(&self.instance)?;
        if let Some((trace, span)) = ids {
            write!(writer, ",\"trace_id\":\"{trace}\",\"span_id\":\"{span}\"")?;
        }
        writer.write_str("}\n")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;
    use crate::TraceContext;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn json_lines_carry_the_ids_of_a_span_parented_on_an_incoming_context() {
        let _alone = crate::subscriber_lock();
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(buffer.clone())
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .flatten_event(true)
                    .map_event_format(|inner| WithTraceIds {
                        inner,
                        instance: instance_field(Some("7f3a".into())),
                    }),
            );
        let incoming = TraceContext::parse(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            None,
        )
        .unwrap();
        // The global default, as `init` installs it: a scoped default is not reachable from
        // inside the formatter (tracing's re-entrancy guard hides it).
        tracing::subscriber::set_global_default(subscriber).unwrap();
        let outgoing = {
            let span = tracing::info_span!("invocation", invocation_id = "i-1");
            incoming.parent(&span);
            let _entered = span.enter();
            tracing::info!("inside");
            TraceContext::of_span(&span).unwrap()
        };
        drop(provider);
        assert_eq!(outgoing.trace_id(), incoming.trace_id());
        assert_ne!(outgoing.span_id(), incoming.span_id());
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        // Other tests of this binary may write through the global subscriber meanwhile.
        let line: serde_json::Value = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l["message"] == "inside")
            .unwrap();
        assert_eq!(line["trace_id"], incoming.trace_id());
        assert_eq!(line["span_id"], outgoing.span_id());
        assert_eq!(line["span"]["invocation_id"], "i-1");
        assert_eq!(line["instance_id"], "7f3a");
        let spans = exporter.get_finished_spans().unwrap();
        let invocation = spans.iter().find(|s| s.name == "invocation").unwrap();
        assert_eq!(invocation.parent_span_id.to_string(), incoming.span_id());
    }

    #[test]
    fn the_instance_field_is_json_and_absent_without_an_id() {
        assert_eq!(instance_field(None), "");
        assert_eq!(instance_field(Some(String::new())), "");
        assert_eq!(
            instance_field(Some("a\"b".into())),
            ",\"instance_id\":\"a\\\"b\""
        );
    }
}
