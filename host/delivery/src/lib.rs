//! At-least-once delivery: messages from brokers through a graph to its sinks, each inbound
//! message acknowledged only once everything derived from it is done.
//!
//! * [`pump`]: the transport-agnostic loop between a graph (on the calling thread) and its
//!   transports (on the process's tokio runtime);
//! * [`ack`]: the tracker that turns lineage into acknowledgements;
//! * [`journal`]: window entries persisted so their inputs can be acknowledged early;
//! * [`lines`]: line mode (`run --input`), where nothing is acknowledged;
//! * [`error`]: why a run cannot start or stops ([`DeliveryError`]), each message naming the
//!   graph, endpoint or topic it is about;
//! * [`deployment`]: several graphs in one process over shared connections (a run of
//!   DataflowGraph resources), with [`schema`] checking the connections that name a schema;
//! * this module: a [`Binding`] of a graph's source and sinks to broker topics (`[transport:]topic`;
//!   the prefix is needed only when more than one transport is configured, so a graph may read
//!   MQTT and write Kafka) and [`run`], which starts the transports and drives the pump. A new
//!   transport plugs in as a `TransportKind` variant, its configuration in `Binding`, and one
//!   arm in `start_sources`/`start_sink`.

#![warn(missing_docs)]

pub mod ack;
pub mod deployment;
pub mod error;
pub mod journal;
pub mod lines;
pub mod pump;
pub mod scale;
pub mod schema;
#[cfg(test)]
mod testing;
pub mod update;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

#[cfg(feature = "kafka")]
use wasmflow_kafka::{KafkaConfig, KafkaSink, KafkaSource};
#[cfg(feature = "mqtt")]
use wasmflow_mqtt::{MqttConfig, MqttSink, MqttSource};
use wasmflow_runtime::graph::Graph;
use wasmflow_transport::{Sink, Source};

pub use crate::error::{DeliveryError, Result};
use crate::journal::WindowJournal;
use crate::pump::{PumpOptions, PumpStats, Route, Routes};

/// Which kind of broker an endpoint is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// Written `mqtt:` before a topic; needs the `mqtt` feature.
    Mqtt,
    /// Written `kafka:` before a topic; needs the `kafka` feature.
    Kafka,
}

impl TransportKind {
    fn prefix(self) -> &'static str {
        match self {
            TransportKind::Mqtt => "mqtt",
            TransportKind::Kafka => "kafka",
        }
    }
}

/// A topic (or topic filter) on one transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Which configured broker; [`Binding::endpoint`] checks that it is configured.
    pub transport: TransportKind,
    /// Without the `mqtt:`/`kafka:` prefix. For a source, a filter as its transport takes it
    /// (MQTT wildcards and `$share/…`, Kafka `^regex`); for a sink, one topic.
    pub topic: String,
}

/// Everything `run` needs to connect a graph to its brokers.
#[derive(Debug, Clone, Default)]
pub struct Binding {
    /// The MQTT broker, when one is configured.
    #[cfg(feature = "mqtt")]
    pub mqtt: Option<MqttConfig>,
    /// The Kafka cluster, when one is configured.
    #[cfg(feature = "kafka")]
    pub kafka: Option<KafkaConfig>,
    /// Topic filters the graph's source reads (several allowed, on one or more transports).
    pub sources: Vec<Endpoint>,
    /// Where the graph's sinks publish.
    pub sink: Option<Endpoint>,
    /// Where items operators reject go, with `error` and `operation` user properties.
    pub dead_letter: Option<Endpoint>,
}

impl Binding {
    /// The MQTT broker, for a topic on `mqtt:`.
    #[cfg(feature = "mqtt")]
    fn mqtt_config(&self) -> Result<&MqttConfig> {
        self.mqtt
            .as_ref()
            .ok_or_else(|| DeliveryError::Binding("no MQTT broker configured".into()))
    }

    /// The Kafka cluster, for a topic on `kafka:`.
    #[cfg(feature = "kafka")]
    fn kafka_config(&self) -> Result<&KafkaConfig> {
        self.kafka
            .as_ref()
            .ok_or_else(|| DeliveryError::Binding("no Kafka cluster configured".into()))
    }

    fn configured(&self) -> Vec<TransportKind> {
        #[allow(unused_mut)] // with neither transport built in
        let mut v = Vec::new();
        #[cfg(feature = "mqtt")]
        if self.mqtt.is_some() {
            v.push(TransportKind::Mqtt);
        }
        #[cfg(feature = "kafka")]
        if self.kafka.is_some() {
            v.push(TransportKind::Kafka);
        }
        v
    }

    /// Parses `[mqtt:|kafka:]topic`. Without a prefix the one configured transport is meant;
    /// with two configured, the prefix is required.
    pub fn endpoint(&self, spec: &str) -> Result<Endpoint> {
        let configured = self.configured();
        for kind in [TransportKind::Mqtt, TransportKind::Kafka] {
            if let Some(topic) = spec.strip_prefix(kind.prefix()).and_then(|s| s.strip_prefix(':')) {
                if !configured.contains(&kind) {
                    return Err(DeliveryError::Binding(format!(
                        "`{spec}` names {} but no {} broker is configured",
                        kind.prefix(),
                        kind.prefix()
                    )));
                }
                return Ok(Endpoint {
                    transport: kind,
                    topic: topic.to_owned(),
                });
            }
        }
        match configured.as_slice() {
            [one] => Ok(Endpoint {
                transport: *one,
                topic: spec.to_owned(),
            }),
            [] => Err(DeliveryError::Binding(format!("`{spec}`: no broker is configured"))),
            _ => Err(DeliveryError::Binding(format!(
                "`{spec}`: more than one broker is configured; prefix the topic with `mqtt:` or `kafka:`"
            ))),
        }
    }
}

/// Runs `graph` bound to its brokers until `shutdown` turns true, or (when `None`) until Ctrl-C
/// or SIGTERM. Window contents persist in `<data_dir>/windows.redb`.
pub fn run(
    graph: &mut Graph,
    data_dir: &Path,
    binding: &Binding,
    options: &PumpOptions,
    rt: &tokio::runtime::Handle,
    shutdown: Option<watch::Receiver<bool>>,
) -> Result<PumpStats> {
    run_with_updates(graph, data_dir, binding, options, rt, shutdown, None)
}

/// As [`run`], switching to each new version of the graph that comes on `updates` (hot update:
/// [`update`]).
pub fn run_with_updates(
    graph: &mut Graph,
    data_dir: &Path,
    binding: &Binding,
    options: &PumpOptions,
    rt: &tokio::runtime::Handle,
    shutdown: Option<watch::Receiver<bool>>,
    updates: Option<update::Updates>,
) -> Result<PumpStats> {
    if binding.sources.is_empty() {
        return Err(DeliveryError::Binding("no source topic: give --source".into()));
    }
    let journal = WindowJournal::open(&data_dir.join("windows.redb"), &graph.manifest().name)?;
    let shutdown = match shutdown {
        Some(s) => s,
        None => shutdown_signal(rt, "stopping: unacknowledged inputs stay with the broker"),
    };
    // Sinks first: a source would otherwise take messages it cannot yet deliver. One connection
    // per transport, shared by the sink and the dead letters (as `deployment` shares one per
    // endpoint): two connections with one client id would take turns throwing each other off
    // the broker.
    let mut sinks: HashMap<TransportKind, Arc<dyn Sink>> = HashMap::new();
    let mut route = |e: &Endpoint| -> Result<Route> {
        let sink = match sinks.get(&e.transport) {
            Some(s) => s.clone(),
            None => {
                let s = rt.block_on(start_sink(binding, e.transport))?;
                sinks.insert(e.transport, s.clone());
                s
            }
        };
        Ok(Route {
            sink,
            topic: e.topic.clone(),
        })
    };
    let routes = Routes {
        default: binding.sink.as_ref().map(&mut route).transpose()?,
        dead_letter: binding.dead_letter.as_ref().map(&mut route).transpose()?,
        ..Routes::default()
    };
    let (tx, rx) = mpsc::channel(256);
    // A source that fails (unreachable broker at start, refused subscription) stops the run
    // with its error; so does the caller's shutdown, without one.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let failure: Arc<Mutex<Option<DeliveryError>>> = Arc::default();
    for source in start_sources(binding)? {
        let (tx, sd, stop, failure) = (tx.clone(), stop_rx.clone(), stop_tx.clone(), failure.clone());
        rt.spawn(async move {
            if let Err(e) = source.run(tx, sd).await {
                failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get_or_insert(e.into());
                let _ = stop.send(true);
            }
        });
    }
    drop(tx);
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
    let stats = pump::run_with_updates(graph, &journal, rx, &routes, rt, stop_rx, options, updates);
    if let Some(e) = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        return Err(e);
    }
    stats
}

async fn start_sink(binding: &Binding, kind: TransportKind) -> Result<Arc<dyn Sink>> {
    match kind {
        #[cfg(feature = "mqtt")]
        TransportKind::Mqtt => Ok(Arc::new(MqttSink::connect(binding.mqtt_config()?.clone()).await?)),
        #[cfg(feature = "kafka")]
        TransportKind::Kafka => Ok(Arc::new(KafkaSink::connect(&binding.kafka_config()?.settings).await?)),
        #[allow(unreachable_patterns)] // with both transports built in
        other => {
            let _ = binding;
            Err(DeliveryError::NotBuilt(format!("{} support", other.prefix())))
        }
    }
}

/// One source per transport, reading all of that transport's topic filters.
fn start_sources(binding: &Binding) -> Result<Vec<Box<dyn Source>>> {
    let mut out = Vec::new();
    for kind in [TransportKind::Mqtt, TransportKind::Kafka] {
        let topics: Vec<String> = binding
            .sources
            .iter()
            .filter(|e| e.transport == kind)
            .map(|e| e.topic.clone())
            .collect();
        if !topics.is_empty() {
            out.push(start_source(binding, kind, topics)?);
        }
    }
    Ok(out)
}

/// The source of one transport, reading `topics`.
fn start_source(binding: &Binding, kind: TransportKind, topics: Vec<String>) -> Result<Box<dyn Source>> {
    match kind {
        #[cfg(feature = "mqtt")]
        TransportKind::Mqtt => Ok(Box::new(MqttSource::new(binding.mqtt_config()?.clone(), topics)?)),
        #[cfg(feature = "kafka")]
        TransportKind::Kafka => {
            let cfg = binding.kafka_config()?;
            Ok(Box::new(KafkaSource::new(
                cfg.settings.clone(),
                cfg.group_id.clone(),
                topics,
            )))
        }
        #[allow(unreachable_patterns)] // with both transports built in
        other => {
            let _ = (binding, topics);
            Err(DeliveryError::NotBuilt(format!("{} support", other.prefix())))
        }
    }
}

/// A shutdown signal that turns true on Ctrl-C or SIGTERM, logging `message` then. The handlers
/// are registered before this returns (not when the task first runs): registered later, a
/// signal that came while the graph started met the default action and killed the process
/// (seen in CI). `rt` must be running: the process's multi-thread runtime.
pub fn shutdown_signal(rt: &tokio::runtime::Handle, message: &'static str) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let stopped = move || {
        tracing::info!("{message}");
        let _ = tx.send(true);
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let _context = rt.enter();
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut interrupt), Ok(mut term)) => {
                rt.spawn(async move {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = term.recv() => {}
                    }
                    stopped();
                });
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("Ctrl-C and SIGTERM will end the run abruptly: their handlers could not be set up: {e}");
            }
        }
    }
    #[cfg(not(unix))]
    rt.spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stopped();
    });
    rx
}
