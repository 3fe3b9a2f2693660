//! The transport-agnostic pump: inbound messages → graph → sinks → acknowledgements.
//!
//! The graph is synchronous and stays on the thread that calls [`run`]; sources and sinks run
//! on a tokio runtime. Inbound messages come through a bounded channel, each output is sent on
//! the runtime and its completion comes back to this thread, where the [`Tracker`] turns
//! completions into acknowledgements of the inputs they derive from. Items entering a window are
//! written to the [`WindowJournal`] before their input is acknowledged. At most
//! `max_outstanding` outputs wait for their destination: beyond that, intake stops, the inbound
//! channel fills and the source stops reading (backpressure, not memory growth).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use tokio::sync::{mpsc, watch};

use wasmflow_runtime::graph::{Graph, Held, Traced};
use wasmflow_transport::{Bytes, Destination, Inbound, Outbound, Sink, TransportError};
use wasmflow_wire::Hlc;

use crate::ack::Tracker;
use crate::journal::WindowJournal;

/// Where one kind of output goes: a sink transport and the topic to publish on.
#[derive(Clone)]
pub struct Route {
    /// Connected already (the pump only sends); shared by every output on the route.
    pub sink: Arc<dyn Sink>,
    /// Every output on this route is published here, whatever topic the graph gave it.
    pub topic: String,
}

/// How the graph's outputs map to sink transports.
#[derive(Clone, Default)]
pub struct Routes {
    /// By sink operation name; a graph's sinks without an entry use `default`.
    pub sinks: HashMap<String, Route>,
    /// With `None`, every sink of the graph needs an entry in `sinks`, or [`run`] refuses
    /// to start.
    pub default: Option<Route>,
    /// Items operators rejected; dropped (and so acknowledged) when `None`.
    pub dead_letter: Option<Route>,
}

impl Routes {
    fn for_destination(&self, d: &Destination) -> Option<&Route> {
        match d {
            Destination::Sink(name) => self.sinks.get(name).or(self.default.as_ref()),
            Destination::DeadLetter { .. } => self.dead_letter.as_ref(),
        }
    }
}

/// Tuning of the pump.
#[derive(Debug, Clone)]
pub struct PumpOptions {
    /// With no input for this long, event time advances to the wall clock (windows close).
    pub idle: Duration,
    /// Outputs that may wait for their destination at once before intake pauses.
    pub max_outstanding: usize,
    /// On shutdown, how long to wait for outstanding outputs before leaving them unacknowledged.
    pub drain_timeout: Duration,
}

impl Default for PumpOptions {
    fn default() -> Self {
        Self {
            idle: Duration::from_millis(1000),
            max_outstanding: 1024,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// What a run did, for the log line at the end and for tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct PumpStats {
    /// Inbound messages pushed into the graph.
    pub received: u64,
    /// Outputs their destination acknowledged, dead letters included.
    pub sent: u64,
    /// Items handed to the dead-letter route (acknowledged or not); 0 when there is none.
    pub dead_letters: u64,
    /// Window entries the journal gave back at start, left by an earlier run.
    pub restored: u64,
}

type Completion = (Vec<u64>, Result<(), TransportError>);

/// Runs the graph on this thread until `shutdown` turns true or every source closed `inbound`
/// (then outstanding outputs are awaited). Sends run on `rt`. A sink that fails for good ends
/// the run with its error: the inputs its outputs derive from stay unacknowledged, so the
/// origin delivers them again after a restart.
pub fn run(
    graph: &mut Graph,
    journal: &WindowJournal,
    mut inbound: mpsc::Receiver<Inbound>,
    routes: &Routes,
    rt: &tokio::runtime::Handle,
    shutdown: watch::Receiver<bool>,
    options: &PumpOptions,
) -> Result<PumpStats> {
    check_routes(graph, routes)?;
    let mut stats = PumpStats::default();
    let mut tracker = Tracker::for_journal(journal);
    let restored = journal.load()?;
    stats.restored = restored.len() as u64;
    if !restored.is_empty() {
        tracing::info!("restored {} items in open windows", restored.len());
        for h in &restored {
            tracker.held(h);
        }
        graph.restore_held(restored)?;
    }
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Completion>();
    let mut outstanding = 0usize;
    let mut last_input = Instant::now();
    let mut closed = false;
    let mut pump = Pump {
        routes,
        rt,
        done_tx: &done_tx,
        journal,
        tracker: &mut tracker,
        outstanding: &mut outstanding,
        stats: &mut stats,
    };
    loop {
        while let Ok(c) = done_rx.try_recv() {
            pump.completed(c)?;
        }
        if *shutdown.borrow() || (closed && *pump.outstanding == 0) {
            break;
        }
        if *pump.outstanding >= options.max_outstanding || closed {
            match rt.block_on(done_rx.recv()) {
                Some(c) => pump.completed(c)?,
                None => break,
            }
            continue;
        }
        // Read what is there without blocking, in a batch that shares one journal commit.
        let mut batch = Vec::new();
        while batch.len() < 256 && *pump.outstanding + batch.len() < options.max_outstanding {
            match inbound.try_recv() {
                Ok(m) => batch.push(m),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            last_input = Instant::now();
            let mut held = Vec::new();
            for m in batch {
                pump.push(graph, m, &mut held)?;
            }
            pump.persist(held)?;
            continue;
        }
        let deadline = last_input + options.idle;
        let mut sd = shutdown.clone();
        let woke = rt.block_on(async {
            tokio::select! {
                m = inbound.recv() => Wake::Inbound(m),
                c = done_rx.recv() => Wake::Done(c),
                _ = tokio::time::sleep_until(deadline.into()) => Wake::Idle,
                _ = sd.changed() => Wake::Shutdown,
            }
        });
        match woke {
            Wake::Inbound(Some(m)) => {
                last_input = Instant::now();
                let mut held = Vec::new();
                pump.push(graph, m, &mut held)?;
                pump.persist(held)?;
            }
            Wake::Inbound(None) => closed = true,
            Wake::Done(Some(c)) => pump.completed(c)?,
            Wake::Done(None) => break,
            Wake::Idle => {
                last_input = Instant::now();
                let traced = graph.advance_traced(&Hlc::now("wasmflow"))?;
                let mut held = Vec::new();
                pump.traced(traced, &mut held, |_| None)?;
                pump.persist(held)?;
            }
            Wake::Shutdown => {}
        }
    }
    // Stop intake; give what is on its way a moment to be acknowledged.
    drop(inbound);
    let until = Instant::now() + options.drain_timeout;
    while *pump.outstanding > 0 {
        let c = rt.block_on(async { tokio::time::timeout_at(until.into(), done_rx.recv()).await });
        match c {
            Ok(Some(c)) => pump.completed(c)?,
            _ => {
                tracing::warn!(
                    "{} outputs were not acknowledged before shutdown; their inputs will be delivered again",
                    pump.outstanding
                );
                break;
            }
        }
    }
    pump.persist(Vec::new())?;
    tracing::info!(
        open = pump.tracker.open_count(),
        windowed = graph.pending(),
        "pump stopped"
    );
    Ok(stats)
}

enum Wake {
    Inbound(Option<Inbound>),
    Done(Option<Completion>),
    Idle,
    Shutdown,
}

/// The pump's working set, borrowed for one run.
struct Pump<'a> {
    routes: &'a Routes,
    rt: &'a tokio::runtime::Handle,
    done_tx: &'a mpsc::UnboundedSender<Completion>,
    journal: &'a WindowJournal,
    tracker: &'a mut Tracker,
    outstanding: &'a mut usize,
    stats: &'a mut PumpStats,
}

impl Pump<'_> {
    /// Feeds one inbound message to the graph; its key goes with outputs derived from it alone.
    fn push(&mut self, graph: &mut Graph, m: Inbound, held: &mut Vec<Held>) -> Result<()> {
        self.stats.received += 1;
        let key = m.key;
        let (origin, traced) = graph.push_traced(None, m.input)?;
        self.tracker.input(origin, m.ack);
        self.traced(
            traced,
            held,
            |lineage| if lineage == [origin] { key.clone() } else { None },
        )?;
        self.tracker.seal(origin);
        Ok(())
    }

    /// Registers what a graph call produced and sends its outputs.
    fn traced(
        &mut self,
        traced: Traced,
        held: &mut Vec<Held>,
        key_for: impl Fn(&[u64]) -> Option<Bytes>,
    ) -> Result<()> {
        for h in &traced.held {
            self.tracker.held(h);
        }
        held.extend(traced.held);
        for (output, lineage) in traced.outputs {
            let Some(route) = self.routes.for_destination(&output.destination) else {
                // No dead-letter topic: the rejected item is dropped, which finishes it.
                continue;
            };
            if matches!(output.destination, Destination::DeadLetter { .. }) {
                self.stats.dead_letters += 1;
            }
            self.tracker.add(&lineage);
            *self.outstanding += 1;
            let msg = Outbound {
                topic: route.topic.clone(),
                key: key_for(&lineage),
                payload: output.payload,
                content_type: output.content_type,
                user_properties: output.user_properties,
            };
            let sink = route.sink.clone();
            let tx = self.done_tx.clone();
            self.rt.spawn(async move {
                let r = sink.send(msg).await;
                let _ = tx.send((lineage, r));
            });
        }
        for id in traced.released {
            self.tracker.seal(id);
        }
        Ok(())
    }

    fn completed(&mut self, (lineage, r): Completion) -> Result<()> {
        *self.outstanding -= 1;
        r.context("a sink failed; unacknowledged inputs will be delivered again after a restart")?;
        self.stats.sent += 1;
        self.tracker.done(&lineage);
        Ok(())
    }

    /// Writes newly held window entries and deletes finished ones, then lets the parents of
    /// the new entries be acknowledged.
    fn persist(&mut self, held: Vec<Held>) -> Result<()> {
        let finished = self.tracker.take_finished_entries();
        self.journal.commit(&held, &finished)?;
        self.tracker.persisted(&held);
        // Persisting may finish entries (a window output acknowledged meanwhile): next commit.
        Ok(())
    }
}

/// Every sink of the graph must have a route, or its outputs would never be acknowledged.
fn check_routes(graph: &Graph, routes: &Routes) -> Result<()> {
    if routes.default.is_some() {
        return Ok(());
    }
    for op in &graph.manifest().operations {
        if op.kind == wasmflow_compose::OperationKind::Sink && !routes.sinks.contains_key(&op.name) {
            return Err(anyhow!(
                "graph `{}`: sink `{}` has no destination (give --sink)",
                graph.manifest().name,
                op.name
            ));
        }
    }
    Ok(())
}
