//! OpenTelemetry for wasmflow: the destination for endpoints of type OpenTelemetry, and the
//! export of wasmflow's own metrics and traces.
//!
//! * [`payload`]: the JSON the platform's otel graphs produce (`{"metrics": […], "logs": […]}`)
//!   checked and turned into OTLP data, one point per reading with its own timestamp;
//! * [`export`]: OTLP over gRPC or HTTP/protobuf, TLS, headers, timeouts;
//! * [`sink`]: the transport sink that batches (`latencySeconds`, `maxMessages`), exports and
//!   acknowledges a message only when its data was exported;
//! * [`telemetry`]: wasmflow's own per-operation counts and traces, exported by the OpenTelemetry SDK
//!   (`opentelemetry-otlp`) beside the Prometheus endpoint.
//!
//! Why the destination builds OTLP requests from the OpenTelemetry project's generated
//! protobuf types (`opentelemetry-proto`) and sends them with its generated tonic clients,
//! rather than through the SDK's instruments: the SDK aggregates what is recorded between two
//! exports (a gauge keeps its last value per attribute set) and stamps the collection time,
//! and its exporters take only the SDK's own aggregated data. A destination must forward every
//! reading with the timestamp its payload carries, and know which messages an export held to
//! acknowledge exactly those; so it sends the requests itself, with the same generated code
//! the SDK's exporter uses. wasmflow's own metrics are counters the SDK aggregates correctly,
//! so [`telemetry`] uses the SDK.

#![warn(missing_docs)]

pub mod export;
pub mod payload;
pub mod sink;
pub mod telemetry;

pub use export::{ExportConfig, ExportError, Exporter, Protocol, TlsFiles};
pub use sink::{Batching, OtlpSink, SinkCounters};
