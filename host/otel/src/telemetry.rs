//! wasmflow's own metrics and traces over OTLP (`run --otlp URL`), beside the Prometheus
//! endpoint.
//!
//! * [`OwnMetrics`]: the per-operation counts (`wasmflow.messages_in`, `…_out`, `…_dropped`,
//!   `wasmflow.operator_errors`, `wasmflow.operator_traps`, attributes `graph` and `operation`)
//!   as cumulative sums, read from the runtime's counters at each collection by the
//!   OpenTelemetry SDK and exported with `opentelemetry-otlp` on a fixed interval and once more
//!   at shutdown.
//! * [`OwnTraces`]: the spans of [`wasmflow_transport::TRACE_TARGET`] (a `message` span per input,
//!   an `operation` span per operator call inside it) turned into OpenTelemetry spans by
//!   `tracing-opentelemetry`, a ratio of the messages sampled, exported in batches.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use crate::export::{ExportError, Exporter};

/// The SDK's exporter of `$kind` over `$exporter`'s connection (its TLS, headers and timeouts:
/// [`Exporter`]); a macro because the SDK's metric and span exporter builders are distinct types
/// with the same methods.
macro_rules! otlp_exporter {
    ($kind:ident, $exporter:expr, $path:literal) => {{
        let exporter: &Exporter = $exporter;
        let bad = |e: opentelemetry_otlp::ExporterBuildError| ExportError::Config {
            url: exporter.url().to_owned(),
            reason: e.to_string(),
        };
        match exporter.clone().into_parts() {
            crate::export::Parts::Grpc { channel, headers } => $kind::builder()
                .with_tonic()
                .with_channel(channel)
                .with_metadata(headers)
                .with_timeout(exporter.request_timeout())
                .build()
                .map_err(bad)?,
            crate::export::Parts::Http { client, headers } => $kind::builder()
                .with_http()
                .with_http_client(client)
                .with_endpoint(format!("{}{}", exporter.url(), $path))
                .with_headers(headers)
                .with_timeout(exporter.request_timeout())
                .build()
                .map_err(bad)?,
        }
    }};
}

fn resource() -> Resource {
    Resource::builder().with_service_name("wasmflow").build()
}

/// One operation's counts, as `/metrics` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeCount {
    /// The graph's name.
    pub graph: String,
    /// The operation's name.
    pub operation: String,
    /// Items that entered it.
    pub messages_in: u64,
    /// Items it emitted.
    pub messages_out: u64,
    /// Items that went no further there.
    pub dropped: u64,
    /// Items its operator rejected.
    pub errors: u64,
    /// Traps.
    pub traps: u64,
}

/// Reads the current counts of every operation of the run.
pub type Counts = Arc<dyn Fn() -> Vec<NodeCount> + Send + Sync>;

/// The export of wasmflow's own metrics; dropping it without [`OwnMetrics::shutdown`] skips
/// the last export.
pub struct OwnMetrics {
    provider: SdkMeterProvider,
}

impl OwnMetrics {
    /// Starts exporting every `interval` over `collector` (shared with [`OwnTraces`]); must be
    /// called within the tokio runtime that will drive the exports.
    pub fn start(collector: &Exporter, interval: Duration, counts: Counts) -> Result<Self, ExportError> {
        let exporter = otlp_exporter!(MetricExporter, collector, "/v1/metrics");
        let reader = PeriodicReader::builder(exporter, opentelemetry_sdk::runtime::Tokio)
            .with_interval(interval)
            .build();
        let provider = SdkMeterProvider::builder()
            .with_reader(reader)
            .with_resource(resource())
            .build();
        let meter = provider.meter("wasmflow");
        type Pick = fn(&NodeCount) -> u64;
        let series: [(&str, &str, Pick); 5] = [
            ("wasmflow.messages_in", "Items that entered an operation", |c| {
                c.messages_in
            }),
            ("wasmflow.messages_out", "Items an operation emitted", |c| {
                c.messages_out
            }),
            (
                "wasmflow.messages_dropped",
                "Items an operation dropped (filter, error, trap)",
                |c| c.dropped,
            ),
            ("wasmflow.operator_errors", "process() calls that returned Err", |c| {
                c.errors
            }),
            ("wasmflow.operator_traps", "Traps raised while an operation ran", |c| {
                c.traps
            }),
        ];
        for (name, help, pick) in series {
            let counts = counts.clone();
            meter
                .u64_observable_counter(name)
                .with_description(help)
                .with_unit("{item}")
                .with_callback(move |o| {
                    for c in counts() {
                        o.observe(
                            pick(&c),
                            &[KeyValue::new("graph", c.graph), KeyValue::new("operation", c.operation)],
                        );
                    }
                })
                .build();
        }
        Ok(Self { provider })
    }

    /// Exports once more and stops.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!("exporting wasmflow's metrics at shutdown: {e}");
        }
    }
}

/// The export of wasmflow's own traces; dropping it without [`OwnTraces::shutdown`] loses the
/// spans of the last batch.
pub struct OwnTraces {
    provider: SdkTracerProvider,
}

impl OwnTraces {
    /// Starts exporting the spans of a `ratio` (0 to 1) of the messages, sampled by trace id,
    /// over `collector` (shared with [`OwnMetrics`]); must be called within the tokio runtime
    /// that will drive the exports.
    pub fn start(collector: &Exporter, ratio: f64) -> Result<Self, ExportError> {
        let exporter = otlp_exporter!(SpanExporter, collector, "/v1/traces");
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build())
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio))))
            .with_resource(resource())
            .build();
        Ok(Self { provider })
    }

    /// The `tracing` layer that turns the spans of [`wasmflow_transport::TRACE_TARGET`] into
    /// OpenTelemetry spans (every other span and event stays with the log).
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        use tracing_subscriber::Layer as _;
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("wasmflow"))
            .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                m.target() == wasmflow_transport::TRACE_TARGET
            }))
    }

    /// Exports what is left and stops.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!("exporting wasmflow's traces at shutdown: {e}");
        }
    }
}
