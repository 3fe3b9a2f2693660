//! wasmflow's own metrics over OTLP (`run --otlp URL`), beside the Prometheus endpoint: the
//! per-operation counts (`wasmflow.messages_in`, `…_out`, `…_dropped`, `wasmflow.operator_errors`,
//! `wasmflow.operator_traps`, attributes `graph` and `operation`) as cumulative sums, read from
//! the runtime's counters at each collection by the OpenTelemetry SDK and exported with
//! `opentelemetry-otlp` on a fixed interval and once more at shutdown.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{MetricExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::Resource;

use crate::export::{ExportConfig, ExportError, Exporter, Protocol};

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
    /// Starts exporting every `interval`; must be called within the tokio runtime that will
    /// drive the exports.
    pub fn start(config: &ExportConfig, interval: Duration, counts: Counts) -> Result<Self, ExportError> {
        let bad = |e: opentelemetry_otlp::ExporterBuildError| ExportError::Config {
            url: config.url.clone(),
            reason: e.to_string(),
        };
        // The same transport as the destination's (TLS, headers, timeouts), handed to the SDK.
        let exporter = match Exporter::new(config)?.into_parts() {
            crate::export::Parts::Grpc { channel, headers } => MetricExporter::builder()
                .with_tonic()
                .with_channel(channel)
                .with_metadata(headers)
                .with_timeout(config.request_timeout)
                .build()
                .map_err(bad)?,
            crate::export::Parts::Http { client, headers } => MetricExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_endpoint(format!("{}/v1/metrics", config.url.trim_end_matches('/')))
                .with_headers(headers)
                .with_timeout(config.request_timeout)
                .build()
                .map_err(bad)?,
        };
        debug_assert!(matches!(config.protocol, Protocol::Grpc | Protocol::HttpProtobuf));
        let reader = PeriodicReader::builder(exporter, opentelemetry_sdk::runtime::Tokio)
            .with_interval(interval)
            .build();
        let provider = SdkMeterProvider::builder()
            .with_reader(reader)
            .with_resource(Resource::builder().with_service_name("wasmflow").build())
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
