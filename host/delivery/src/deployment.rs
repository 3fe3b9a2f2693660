//! Several graphs in one process over shared connections: how a run of DataflowGraph resources
//! is driven.
//!
//! Each endpoint is connected once, whatever number of graphs use it: one source per endpoint
//! subscribes to the union of the graphs' topic filters there, and a dispatcher task hands each
//! message it receives to every graph one of whose filters matches its topic (a message two
//! graphs read is acknowledged when both are done with it); one sink per endpoint publishes for
//! every graph whose destination (or dead-letter topic) is there. Each graph runs the
//! ordinary [`pump`] on a thread of its own (a wasmtime store belongs to one
//! thread at a time), with its own window journal. A failure of any source, sink or graph stops
//! the whole run with its error, as a single graph's run does; what was not acknowledged stays
//! with its broker.
//!
//! A slow graph slows the dispatcher of every endpoint it reads (its inbound channel is
//! bounded): backpressure reaches the shared subscription rather than memory.

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

#[cfg(feature = "kafka")]
use wasmflow_kafka::{KafkaConfig, KafkaSink, KafkaSource};
#[cfg(feature = "mqtt")]
use wasmflow_mqtt::{MqttConfig, MqttSink, MqttSource};
use wasmflow_runtime::graph::Graph;
use wasmflow_transport::{Ack, Inbound, Sink, Source};

use crate::error::{Context, DeliveryError, Result};
use crate::journal::WindowJournal;
use crate::pump::{self, PumpOptions, PumpStats, Route, Routes};
use crate::schema::{CheckedSink, ConnectionCheck};
use wasmflow_resources::resolve::Connection;

/// How to reach one endpoint of a run.
pub enum EndpointConfig {
    /// An MQTT broker (the local one, `default`, included). Boxed: it is several times the size
    /// of the other variants.
    #[cfg(feature = "mqtt")]
    Mqtt(Box<MqttConfig>),
    /// A Kafka cluster.
    #[cfg(feature = "kafka")]
    Kafka(KafkaConfig),
    /// A destination that is only a sink, made by the caller (an OpenTelemetry collector).
    Sink(Arc<dyn Sink>),
}

impl EndpointConfig {
    fn label(&self) -> &'static str {
        match self {
            #[cfg(feature = "mqtt")]
            EndpointConfig::Mqtt(_) => "MQTT",
            #[cfg(feature = "kafka")]
            EndpointConfig::Kafka(_) => "Kafka",
            EndpointConfig::Sink(_) => "destination-only",
        }
    }
}

/// What the run's flags add to the endpoints its resources describe.
pub struct EndpointContext<'a> {
    /// The broker `default` names when no resource defines it: `--mqtt`, else the embedded one.
    #[cfg(feature = "mqtt")]
    pub local_broker: Option<MqttConfig>,
    /// How long to keep trying to reach a broker at start.
    pub connect_timeout: std::time::Duration,
    /// OTLP headers, timeouts (OpenTelemetry endpoints).
    #[cfg(feature = "otel")]
    pub otlp: OtlpContext,
    /// Where the endpoints' own counters go.
    pub metrics: &'a wasmflow_runtime::services::metrics::Metrics,
    /// The process's runtime.
    pub rt: &'a tokio::runtime::Handle,
}

/// The run's settings for OpenTelemetry endpoints.
#[cfg(feature = "otel")]
#[derive(Debug, Clone)]
pub struct OtlpContext {
    /// Sent with every export (`--otlp-header`).
    pub headers: Vec<(String, String)>,
    /// To open a connection.
    pub connect_timeout: std::time::Duration,
    /// For one export.
    pub request_timeout: std::time::Duration,
}

/// The endpoint a resolved connection describes.
// Built without any transport, every connection is refused and `cx` goes unread.
#[cfg_attr(
    not(any(feature = "mqtt", feature = "kafka", feature = "otel")),
    allow(unused_variables)
)]
pub fn endpoint_config(c: &Connection, cx: &EndpointContext) -> Result<EndpointConfig> {
    match c {
        #[cfg(feature = "mqtt")]
        Connection::DefaultBroker => cx
            .local_broker
            .clone()
            .map(|cfg| EndpointConfig::Mqtt(Box::new(cfg)))
            .ok_or_else(|| DeliveryError::Binding("`default` needs the local broker, and none is configured".into())),
        #[cfg(feature = "mqtt")]
        Connection::Mqtt(m) => {
            let mut cfg = MqttConfig::new(&m.url, &m.client_id)?;
            cfg.connect_timeout = cx.connect_timeout;
            if let Some(q) = m.qos {
                cfg.qos = q;
            }
            if let Some(s) = m.session_expiry_secs {
                cfg.session_expiry_secs = s;
            }
            if let Some(k) = m.keep_alive {
                cfg.keep_alive = k;
            }
            if let Some(n) = m.max_inflight {
                cfg.max_inflight = n;
            }
            if let Some(t) = &m.tls {
                cfg.tls = Some(wasmflow_mqtt::TlsFiles {
                    ca: t.ca.clone(),
                    client_cert: t.cert.clone(),
                    client_key: t.key.clone(),
                });
            }
            Ok(EndpointConfig::Mqtt(Box::new(cfg)))
        }
        #[cfg(feature = "kafka")]
        Connection::Kafka(k) => {
            let mut settings = wasmflow_kafka::KafkaSettings::new(&k.bootstrap);
            settings.connect_timeout = cx.connect_timeout;
            for (key, value) in &k.properties {
                settings.property(&format!("{key}={value}"))?;
            }
            Ok(EndpointConfig::Kafka(KafkaConfig {
                settings,
                group_id: k.group.clone(),
            }))
        }
        #[cfg(feature = "otel")]
        Connection::OpenTelemetry(o) => {
            use wasmflow_otel::{Batching, ExportConfig, Exporter, OtlpSink, Protocol, SinkCounters, TlsFiles};
            if o.token_expected
                && !cx
                    .otlp
                    .headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            {
                tracing::warn!(
                    "OpenTelemetry endpoint `{}` authenticates with a service account token: give the collector's token with --otlp-header authorization=env:NAME",
                    o.name
                );
            }
            let config = ExportConfig {
                url: o.url.clone(),
                protocol: match o.protocol {
                    wasmflow_resources::model::OtlpProtocol::Grpc => Protocol::Grpc,
                    wasmflow_resources::model::OtlpProtocol::HttpProtobuf => Protocol::HttpProtobuf,
                },
                tls: o
                    .tls
                    .as_ref()
                    .map(|t| TlsFiles {
                        ca: t.ca.clone(),
                        cert: t.cert.clone(),
                        key: t.key.clone(),
                    })
                    .unwrap_or_default(),
                headers: cx.otlp.headers.clone(),
                connect_timeout: cx.otlp.connect_timeout,
                request_timeout: cx.otlp.request_timeout,
            };
            let exporter = {
                let _in_runtime = cx.rt.enter();
                Exporter::new(&config)?
            };
            let labels = vec![("endpoint".to_owned(), o.name.clone())];
            let counter = |name: &str, help: &str| cx.metrics.host_counter(name, help).get_or_create(&labels).clone();
            let counters = SinkCounters {
                exported: counter(
                    "otlp_exported_messages",
                    "Messages whose data an OpenTelemetry collector accepted",
                ),
                invalid: counter(
                    "otlp_invalid_messages",
                    "Messages dropped as invalid OpenTelemetry payloads (acknowledged)",
                ),
                refused: counter(
                    "otlp_refused_messages",
                    "Messages dropped because the collector refused their batch as malformed",
                ),
            };
            let batching = Batching {
                latency: o.latency,
                max_messages: o.max_messages,
            };
            Ok(EndpointConfig::Sink(Arc::new(OtlpSink::start(
                &o.name, exporter, batching, counters, cx.rt,
            ))))
        }
        #[allow(unreachable_patterns)] // with every transport built in
        other => Err(DeliveryError::NotBuilt(format!("support for {other:?}"))),
    }
}

/// A topic on an endpoint of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointTopic {
    /// The endpoint's name (a key of the run's endpoints).
    pub endpoint: String,
    /// The topic.
    pub topic: String,
}

/// What a graph reads on one endpoint.
pub struct SourceBinding {
    /// The endpoint's name.
    pub endpoint: String,
    /// Topic filters (MQTT) or topics (Kafka).
    pub filters: Vec<String>,
    /// The schema of the connection from this source to the graph; failing messages never
    /// reach it.
    pub check: Option<ConnectionCheck>,
}

/// One graph of the run, started and ready.
pub struct GraphRun {
    /// Its name (the DataflowGraph's), for messages.
    pub name: String,
    /// The running graph.
    pub graph: Graph,
    /// Where its windows are kept.
    pub journal: WindowJournal,
    /// What it reads.
    pub sources: Vec<SourceBinding>,
    /// Where its outputs go.
    pub destination: EndpointTopic,
    /// The schema of the connection from the graph to its destination.
    pub output_check: Option<ConnectionCheck>,
    /// Where items operators reject (and items that break a connection's schema) go.
    pub dead_letter: Option<EndpointTopic>,
    /// Tuning of its pump.
    pub options: PumpOptions,
}

/// Runs `graphs` over `endpoints` until `shutdown` turns true (Ctrl-C or SIGTERM when `None`),
/// every graph on its own thread. Returns each graph's stats, in order.
pub fn run(
    graphs: Vec<GraphRun>,
    endpoints: BTreeMap<String, EndpointConfig>,
    rt: &tokio::runtime::Handle,
    shutdown: Option<watch::Receiver<bool>>,
) -> Result<Vec<(String, PumpStats)>> {
    let endpoint = |name: &str| {
        endpoints
            .get(name)
            .ok_or_else(|| DeliveryError::Binding(format!("endpoint `{name}` is used but not configured")))
    };
    // Sinks first, each connected once: a source would otherwise take messages it cannot yet
    // deliver.
    let mut sinks: HashMap<String, Arc<dyn Sink>> = HashMap::new();
    for g in &graphs {
        for et in std::iter::once(&g.destination).chain(g.dead_letter.as_ref()) {
            if !sinks.contains_key(&et.endpoint) {
                let sink = rt
                    .block_on(connect_sink(endpoint(&et.endpoint)?))
                    .with_context(|| format!("connecting to endpoint `{}`", et.endpoint))?;
                sinks.insert(et.endpoint.clone(), sink);
            }
        }
    }
    let route = |et: &EndpointTopic| Route {
        sink: sinks[&et.endpoint].clone(),
        topic: et.topic.clone(),
    };

    let shutdown = match shutdown {
        Some(s) => s,
        None => crate::shutdown_signal(rt, "stopping: unacknowledged inputs stay with the broker"),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    // The first failure of a source or a graph, kept as it is; any failure stops every graph.
    // What the others need is only that a failure happened (the stop signal); a later failure
    // is a consequence of the stop or of the first, and is dropped.
    let failure: Arc<Mutex<Option<DeliveryError>>> = Arc::default();
    let fail = {
        let (failure, stop) = (failure.clone(), stop_tx.clone());
        move |e: DeliveryError| {
            failure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_or_insert(e);
            let _ = stop.send(true);
        }
    };

    // Per graph: its routes and its inbound channel; per source endpoint: its subscribers.
    let mut subscribers: BTreeMap<String, Vec<Subscriber>> = BTreeMap::new();
    let mut runs = Vec::new();
    for g in graphs {
        let dead_letter = g.dead_letter.as_ref().map(route);
        let mut destination = route(&g.destination);
        if let Some(check) = g.output_check {
            destination.sink = Arc::new(CheckedSink {
                inner: destination.sink,
                check: Arc::new(check.with_dead_letter(dead_letter.clone())),
            });
        }
        let routes = Routes {
            sinks: HashMap::new(),
            default: Some(destination),
            dead_letter: dead_letter.clone(),
        };
        let (tx, rx) = mpsc::channel(256);
        for s in g.sources {
            subscribers.entry(s.endpoint.clone()).or_default().push(Subscriber {
                graph: g.name.clone(),
                filters: s.filters,
                check: s.check.map(|c| Arc::new(c.with_dead_letter(dead_letter.clone()))),
                tx: tx.clone(),
            });
        }
        runs.push((g.name, g.graph, g.journal, rx, routes, g.options));
    }

    for (name, subs) in subscribers {
        let config = endpoint(&name)?;
        let mut filters: Vec<String> = Vec::new();
        for f in subs.iter().flat_map(|s| s.filters.iter()) {
            if !filters.contains(f) {
                filters.push(f.clone());
            }
        }
        let (source, matcher) = start_source(config, filters).with_context(|| format!("endpoint `{name}`"))?;
        let (src_tx, src_rx) = mpsc::channel(256);
        {
            let (stop, fail, name) = (stop_rx.clone(), fail.clone(), name.clone());
            rt.spawn(async move {
                if let Err(e) = source.run(src_tx, stop).await {
                    fail(DeliveryError::from(e).context(format!("endpoint `{name}`")));
                }
            });
        }
        rt.spawn(dispatch(src_rx, subs, matcher, rt.clone()));
    }
    {
        let (mut sd, stop) = (shutdown, stop_tx.clone());
        rt.spawn(async move {
            while !*sd.borrow() {
                if sd.changed().await.is_err() {
                    return;
                }
            }
            let _ = stop.send(true);
        });
    }

    // Per graph: its stats, or `None` when it failed. Every failure of a graph (its pump's
    // error, a panic, a thread that cannot start) goes to `failure` with the graph's name and
    // stops the others, as a source's does.
    let stats: Vec<Option<(String, PumpStats)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|(name, mut graph, journal, rx, routes, options)| {
                let (stop_rx, fail) = (stop_rx.clone(), fail.clone());
                let in_graph = format!("graph `{name}`");
                let spawned = std::thread::Builder::new()
                    .name(format!("graph {name}"))
                    .spawn_scoped(scope, {
                        let (fail, in_graph) = (fail.clone(), in_graph.clone());
                        move || {
                            let run = catch_unwind(AssertUnwindSafe(|| {
                                pump::run(&mut graph, &journal, rx, &routes, rt, stop_rx, &options)
                            }));
                            match run {
                                Ok(Ok(stats)) => Some((name, stats)),
                                Ok(Err(e)) => {
                                    fail(e.context(in_graph));
                                    None
                                }
                                Err(_) => {
                                    fail(DeliveryError::Panicked.context(in_graph));
                                    None
                                }
                            }
                        }
                    });
                spawned
                    .map_err(|error| {
                        fail(
                            DeliveryError::Thread {
                                name: "its thread",
                                error,
                            }
                            .context(in_graph),
                        )
                    })
                    .ok()
            })
            .collect();
        // A joined thread cannot have panicked: its body catches the panic.
        handles
            .into_iter()
            .map(|h| h.and_then(|h| h.join().ok().flatten()))
            .collect()
    });
    if let Some(e) = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        return Err(e);
    }
    // No failure: every graph ran to its end and has its stats.
    Ok(stats.into_iter().flatten().collect())
}

/// A graph reading an endpoint.
struct Subscriber {
    graph: String,
    filters: Vec<String>,
    check: Option<Arc<ConnectionCheck>>,
    tx: mpsc::Sender<Inbound>,
}

/// Tells whether a topic is one a filter subscribes to, as the endpoint's transport does.
type Matcher = fn(&str, &str) -> bool;

/// Hands each message of one endpoint's source to the graphs that read its topic.
async fn dispatch(
    mut rx: mpsc::Receiver<Inbound>,
    subs: Vec<Subscriber>,
    matches: Matcher,
    rt: tokio::runtime::Handle,
) {
    while let Some(m) = rx.recv().await {
        let targets: Vec<&Subscriber> = subs
            .iter()
            .filter(|s| s.filters.iter().any(|f| matches(f, &m.input.topic)))
            .collect();
        if targets.is_empty() {
            // A subscription an earlier run left in a persistent session: no graph reads it.
            tracing::debug!(topic = %m.input.topic, "no graph reads this topic; acknowledged");
            m.ack.ack();
            continue;
        }
        let acks = split(m.ack, targets.len());
        for (s, ack) in targets.into_iter().zip(acks) {
            let one = Inbound {
                input: m.input.clone(),
                key: m.key.clone(),
                ack,
            };
            if let Some(check) = &s.check {
                if let Some(v) = check.violation(&one.input.payload) {
                    check.reject_inbound(one, v, &rt);
                    continue;
                }
            }
            if s.tx.send(one).await.is_err() {
                tracing::debug!(graph = %s.graph, "the graph has stopped; its message stays unacknowledged");
            }
        }
    }
}

/// `n` acknowledgements that acknowledge `ack` when all of them were called (any dropped
/// uncalled leaves it unacknowledged).
fn split(ack: Ack, n: usize) -> Vec<Ack> {
    if n == 1 {
        return vec![ack];
    }
    let left = Arc::new(AtomicUsize::new(n));
    let ack = Arc::new(Mutex::new(Some(ack)));
    (0..n)
        .map(|_| {
            let (left, ack) = (left.clone(), ack.clone());
            Ack::new(move || {
                if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                    if let Some(a) = ack.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
                        a.ack();
                    }
                }
            })
        })
        .collect()
}

async fn connect_sink(config: &EndpointConfig) -> Result<Arc<dyn Sink>> {
    Ok(match config {
        #[cfg(feature = "mqtt")]
        EndpointConfig::Mqtt(cfg) => Arc::new(MqttSink::connect(MqttConfig::clone(cfg)).await?),
        #[cfg(feature = "kafka")]
        EndpointConfig::Kafka(cfg) => Arc::new(KafkaSink::connect(&cfg.settings).await?),
        EndpointConfig::Sink(sink) => sink.clone(),
    })
}

fn start_source(config: &EndpointConfig, filters: Vec<String>) -> Result<(Box<dyn Source>, Matcher)> {
    #[cfg(not(any(feature = "mqtt", feature = "kafka")))]
    let _ = &filters;
    match config {
        #[cfg(feature = "mqtt")]
        EndpointConfig::Mqtt(cfg) => Ok((
            Box::new(MqttSource::new(MqttConfig::clone(cfg), filters)?),
            wasmflow_mqtt::filter_matches,
        )),
        #[cfg(feature = "kafka")]
        EndpointConfig::Kafka(cfg) => Ok((
            Box::new(KafkaSource::new(cfg.settings.clone(), cfg.group_id.clone(), filters)),
            |topic_name, topic| topic_name == topic,
        )),
        other => Err(DeliveryError::Binding(format!(
            "a {} endpoint cannot be a source",
            other.label()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_ack_acks_once_when_every_part_did() {
        let n = Arc::new(AtomicUsize::new(0));
        let counted = n.clone();
        let parts = split(
            Ack::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            }),
            3,
        );
        let mut parts = parts.into_iter();
        parts.next().unwrap().ack();
        parts.next().unwrap().ack();
        assert_eq!(n.load(Ordering::SeqCst), 0);
        parts.next().unwrap().ack();
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_dropped_part_leaves_the_message_unacknowledged() {
        let n = Arc::new(AtomicUsize::new(0));
        let counted = n.clone();
        let mut parts = split(
            Ack::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            }),
            2,
        )
        .into_iter();
        parts.next().unwrap().ack();
        drop(parts);
        assert_eq!(n.load(Ordering::SeqCst), 0);
    }
}
