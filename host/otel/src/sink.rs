//! The OpenTelemetry destination: a transport [`Sink`] that batches what reaches it and exports
//! each batch over OTLP.
//!
//! A message is checked first ([`crate::payload`]): an invalid one is dropped, counted, logged
//! and acknowledged at once (the platform's rule, so a bad message cannot block the flow).
//! Valid ones wait in a batch until it holds `max_messages` or `latency` has passed since its
//! first message; then its metrics and its logs are exported, and every message of the batch
//! completes when the collector accepted both requests — at least once: a message is
//! acknowledged only after its data was exported. A collector that cannot be reached, or asks
//! to be retried, is retried with backoff (up to 30 s between tries) for as long as the run
//! lasts; one that refuses the data as malformed has the batch dropped (logged, counted); one
//! that refuses the credentials fails the batch, which stops the run with its error.

use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{mpsc, oneshot};
use wasmflow_transport::{BoxFuture, Outbound, Sink, TransportError};

use crate::export::{ExportError, Exporter};
use crate::payload::{self, Telemetry};

/// When a batch is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Longest a message waits for its batch to be exported.
    pub latency: Duration,
    /// Most messages in one batch.
    pub max_messages: usize,
}

/// What the sink counts (the caller registers them; `wasmflow_otlp_…_total{endpoint}`).
#[derive(Debug, Clone, Default)]
pub struct SinkCounters {
    /// Messages whose data the collector accepted.
    pub exported: Counter,
    /// Messages dropped as invalid payloads.
    pub invalid: Counter,
    /// Messages dropped because the collector refused their batch as malformed.
    pub refused: Counter,
}

struct Pending {
    telemetry: Telemetry,
    done: oneshot::Sender<Result<(), TransportError>>,
}

/// An OpenTelemetry endpoint as a destination.
pub struct OtlpSink {
    name: String,
    tx: mpsc::Sender<Pending>,
    invalid: Counter,
}

impl OtlpSink {
    /// A sink for endpoint `name`, exporting through `exporter` from a task on `rt`.
    pub fn start(
        name: &str,
        exporter: Exporter,
        batching: Batching,
        counters: SinkCounters,
        rt: &tokio::runtime::Handle,
    ) -> Self {
        let (tx, rx) = mpsc::channel(batching.max_messages.clamp(1, 4096));
        let invalid = counters.invalid.clone();
        rt.spawn(batches(name.to_owned(), rx, exporter, batching, counters));
        Self {
            name: name.to_owned(),
            tx,
            invalid,
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Sink for OtlpSink {
    fn send(&self, msg: Outbound) -> BoxFuture<Result<(), TransportError>> {
        let telemetry = match payload::parse(&msg.payload, &msg.user_properties, now_ns()) {
            Ok(t) => t,
            Err(why) => {
                self.invalid.inc();
                tracing::warn!(
                    endpoint = %self.name,
                    "an output is not an OpenTelemetry payload; dropped and acknowledged: {why}"
                );
                return Box::pin(async { Ok(()) });
            }
        };
        let (done, answer) = oneshot::channel();
        let tx = self.tx.clone();
        let name = self.name.clone();
        let closed = move || TransportError::Closed(format!("OpenTelemetry endpoint `{name}`"));
        Box::pin(async move {
            tx.send(Pending { telemetry, done }).await.map_err(|_| closed())?;
            answer.await.map_err(|_| closed())?
        })
    }
}

/// Collects batches and exports them, one at a time, until every sender is gone.
async fn batches(
    name: String,
    mut rx: mpsc::Receiver<Pending>,
    exporter: Exporter,
    batching: Batching,
    counters: SinkCounters,
) {
    while let Some(first) = rx.recv().await {
        let deadline = Instant::now() + batching.latency;
        let mut batch = vec![first];
        while batch.len() < batching.max_messages {
            tokio::select! {
                p = rx.recv() => match p {
                    Some(p) => batch.push(p),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline.into()) => break,
            }
        }
        let n = batch.len() as u64;
        let (data, waiting): (Vec<Telemetry>, Vec<_>) = batch.into_iter().map(|p| (p.telemetry, p.done)).unzip();
        let result = export(&name, &exporter, data).await;
        match &result {
            Ok(true) => {
                counters.exported.inc_by(n);
            }
            Ok(false) => {
                counters.refused.inc_by(n);
            }
            Err(_) => {}
        }
        for w in waiting {
            let _ = w.send(match &result {
                Ok(_) => Ok(()),
                Err(reason) => Err(TransportError::Publish {
                    url: exporter.url().to_owned(),
                    topic: format!("OpenTelemetry endpoint `{name}`"),
                    reason: reason.clone(),
                }),
            });
        }
    }
}

/// Exports one batch, retrying what may succeed later. `Ok(true)`: exported; `Ok(false)`:
/// refused as malformed and dropped; `Err`: refused for good (the credentials).
async fn export(name: &str, exporter: &Exporter, data: Vec<Telemetry>) -> Result<bool, String> {
    let (metrics, logs): (Vec<_>, Vec<_>) = data.into_iter().map(|t| (t.metrics, t.logs)).unzip();
    let metrics = payload::merge(metrics.into_iter().flatten().collect());
    let logs: Vec<_> = logs.into_iter().flatten().collect();
    let resource = Some(resource());
    let scope = Some(scope());
    let mut backoff = Duration::from_millis(200);
    let mut wait = || {
        let delay = backoff;
        backoff = (backoff * 2).min(Duration::from_secs(30));
        tokio::time::sleep(delay)
    };
    // Metrics first, then logs; a retry repeats only the request that failed.
    if !metrics.is_empty() {
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: resource.clone(),
                scope_metrics: vec![ScopeMetrics {
                    scope: scope.clone(),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        loop {
            match settle(name, exporter.metrics(req.clone()).await)? {
                Some(outcome) => {
                    if !outcome {
                        return Ok(false);
                    }
                    break;
                }
                None => wait().await,
            }
        }
    }
    if !logs.is_empty() {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource,
                scope_logs: vec![ScopeLogs {
                    scope,
                    log_records: logs,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        loop {
            match settle(name, exporter.logs(req.clone()).await)? {
                Some(outcome) => return Ok(outcome),
                None => wait().await,
            }
        }
    }
    Ok(true)
}

/// `Some(true)` exported, `Some(false)` refused as malformed, `None` retry; `Err` stops.
fn settle(name: &str, r: Result<Option<String>, ExportError>) -> Result<Option<bool>, String> {
    match r {
        Ok(partial) => {
            if let Some(p) = partial {
                tracing::warn!(endpoint = %name, "the collector took part of a batch: {p}");
            }
            Ok(Some(true))
        }
        Err(e @ ExportError::Retryable { .. }) => {
            tracing::warn!(endpoint = %name, "{e}");
            Ok(None)
        }
        Err(ExportError::Refused {
            invalid_data: true,
            reason,
            url,
        }) => {
            tracing::error!(endpoint = %name, "{url} refused a batch as malformed; it is dropped: {reason}");
            Ok(Some(false))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The resource every export names: this process.
fn resource() -> Resource {
    Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                    "wasmflow".into(),
                )),
            }),
        }],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "wasmflow".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}
