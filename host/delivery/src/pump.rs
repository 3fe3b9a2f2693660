//! The transport-agnostic pump: inbound messages → graph → sinks → acknowledgements.
//!
//! The graph is synchronous and stays on the thread that calls [`run`]; sources and sinks run
//! on a tokio runtime. Inbound messages come through a bounded channel and are taken in batches
//! of what has queued up. Each output goes to its sink with [`Sink::send_with`], and each sink
//! learns where a batch ends ([`Sink::end_batch`], so Kafka produces it together); its completion
//! runs where the sink learns of it (MQTT: the connection's task, on the PUBACK) and there the
//! [`Tracker`] turns it into acknowledgements of the inputs it derives from, so an output
//! costs the graph's thread no wake-up and no task. Items entering a window are written to the
//! [`WindowJournal`] before their input is acknowledged. At most `max_outstanding` outputs wait
//! for their destination: beyond that, intake stops, the inbound channel fills and the source
//! stops reading (backpressure, not memory growth).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Notify};

use wasmflow_runtime::graph::{Graph, Held, Traced};
use wasmflow_transport::{Bytes, Destination, Inbound, Outbound, Sink, TransportError};
use wasmflow_wire::Hlc;

use crate::ack::Tracker;
use crate::error::{DeliveryError, Result};
use crate::journal::WindowJournal;
use crate::update::{Draining, Update, Updates};

/// Inbound messages taken at once when they queue up: they share one journal commit.
const BATCH: usize = 256;

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

/// What the pump and the sinks' completion callbacks share: the acknowledgement bookkeeping
/// lives here so that a destination's acknowledgement finishes its inputs on the thread that
/// learned of it (the transport's connection task), without waking the graph's thread.
#[derive(Default)]
struct Shared {
    tracker: Tracker,
    /// Outputs handed to a sink whose outcome is not known yet.
    outstanding: usize,
    /// Outputs their destination acknowledged.
    sent: u64,
    /// The first sink failure: it ends the run.
    failure: Option<TransportError>,
    /// While the pump waits for completions (no room under `max_outstanding`, or the final
    /// drain), it is woken once `outstanding` falls below this.
    wake_below: Option<usize>,
}

/// [`Shared`] behind its lock, and how a completion wakes the pump when it waits.
#[derive(Default)]
struct Completions {
    shared: Mutex<Shared>,
    wake: Notify,
}

impl Completions {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One output's outcome, on whatever thread the sink learned it. Wakes the pump only when
    /// it asked to be (or a sink failed), so a steady flow of acknowledgements costs it nothing.
    fn complete(&self, lineage: &[u64], r: Result<(), TransportError>) {
        let wake = {
            let mut s = self.lock();
            s.outstanding -= 1;
            match r {
                Ok(()) => {
                    s.sent += 1;
                    s.tracker.done(lineage);
                }
                Err(e) => {
                    s.failure.get_or_insert(e);
                }
            }
            s.failure.is_some() || s.wake_below.is_some_and(|n| s.outstanding < n)
        };
        if wake {
            self.wake.notify_one();
        }
    }

    /// The first sink failure, as the run's error.
    fn failed(&self) -> Result<()> {
        match self.lock().failure.take() {
            None => Ok(()),
            Some(e) => Err(DeliveryError::Sink(Box::new(e))),
        }
    }
}

/// Runs the graph on this thread until `shutdown` turns true or every source closed `inbound`
/// (then outstanding outputs are awaited). Sends run on `rt`. A sink that fails for good ends
/// the run with its error: the inputs its outputs derive from stay unacknowledged, so the
/// origin delivers them again after a restart.
///
/// The graph's calls run inside one `rt.block_on` on this thread; outputs go to their sink with
/// [`Sink::send_with`], whose callback finishes the inputs they derive from where the
/// acknowledgement arrives. This thread wakes for input, the idle timer, shutdown, a new
/// version of the graph ([`run_with_updates`]), and — only when it waits for room or for the
/// drain — completions.
pub fn run(
    graph: &mut Graph,
    journal: &WindowJournal,
    inbound: mpsc::Receiver<Inbound>,
    routes: &Routes,
    rt: &tokio::runtime::Handle,
    shutdown: watch::Receiver<bool>,
    options: &PumpOptions,
) -> Result<PumpStats> {
    run_with_updates(graph, journal, inbound, routes, rt, shutdown, options, None)
}

/// As [`run`], switching intake to each new version of the graph that comes on `updates`
/// (between two messages); the replaced version drains beside it ([`crate::update`]). On
/// return `graph` is the version running last.
#[allow(clippy::too_many_arguments)]
pub fn run_with_updates(
    graph: &mut Graph,
    journal: &WindowJournal,
    inbound: mpsc::Receiver<Inbound>,
    routes: &Routes,
    rt: &tokio::runtime::Handle,
    shutdown: watch::Receiver<bool>,
    options: &PumpOptions,
    updates: Option<Updates>,
) -> Result<PumpStats> {
    check_routes(graph, routes)?;
    let completions = Arc::new(Completions::default());
    let mut stats = PumpStats::default();
    completions.lock().tracker = Tracker::for_journal(journal);
    let restored = journal.load()?;
    stats.restored = restored.len() as u64;
    if !restored.is_empty() {
        tracing::info!("restored {} items in open windows", restored.len());
        let mut s = completions.lock();
        for h in &restored {
            s.tracker.held(h);
        }
        drop(s);
        graph.restore_held(restored)?;
    }
    let mut pump = Pump {
        routes,
        journal,
        completions,
        stats,
    };
    rt.block_on(pump.run(graph, inbound, shutdown, options, updates))?;
    let s = pump.completions.lock();
    tracing::info!(
        open = s.tracker.open_count(),
        windowed = graph.pending(),
        "pump stopped"
    );
    pump.stats.sent = s.sent;
    Ok(pump.stats)
}

/// The pump's working set, borrowed for one run.
struct Pump<'a> {
    routes: &'a Routes,
    journal: &'a WindowJournal,
    completions: Arc<Completions>,
    stats: PumpStats,
}

impl Pump<'_> {
    async fn run(
        &mut self,
        graph: &mut Graph,
        mut inbound: mpsc::Receiver<Inbound>,
        mut shutdown: watch::Receiver<bool>,
        options: &PumpOptions,
        mut updates: Option<Updates>,
    ) -> Result<()> {
        let mut last_input = Instant::now();
        // Reset only when it fires (a message meanwhile moved the deadline): one timer event
        // per idle period, not a timer per message.
        let idle = tokio::time::sleep_until((last_input + options.idle).into());
        tokio::pin!(idle);
        let mut batch = Vec::with_capacity(BATCH);
        let mut draining = Draining::default();
        // Inputs pushed since the sinks last ended a batch (see `end_batch`).
        let mut unended = 0;
        loop {
            self.completions.failed()?;
            if *shutdown.borrow() {
                break;
            }
            let room = options
                .max_outstanding
                .saturating_sub(self.completions.lock().outstanding);
            if room == 0 {
                // Intake pauses; the inbound channel fills and the source stops reading. What
                // the sinks hold back must leave, or nothing would complete.
                self.end_batch(&mut unended);
                self.wait_for_room(options.max_outstanding, &mut shutdown).await;
                continue;
            }
            tokio::select! {
                biased;
                _ = self.completions.wake.notified() => {}
                r = shutdown.changed() => if r.is_err() {
                    break; // nobody can ask for shutdown any more: take it as asked
                },
                u = next_update(&mut updates) => match u {
                    Some(u) => match check_routes(&u.graph, self.routes) {
                        Ok(()) => draining.switch(graph, u),
                        Err(e) => tracing::warn!("hot update: version {} not switched to: {e}", u.version),
                    },
                    None => updates = None,
                },
                n = inbound.recv_many(&mut batch, room.min(BATCH)) => {
                    if n == 0 {
                        break; // every source closed its side
                    }
                    last_input = Instant::now();
                    // One journal commit for the batch.
                    let pushed = graph_calls(|| {
                        let mut held = Vec::new();
                        for m in batch.drain(..) {
                            self.push(graph, m, &mut held)?;
                        }
                        self.persist(held)?;
                        self.drain_old(&mut draining, graph)
                    });
                    unended += n;
                    // While more input waits, the next batch's outputs join this one's, up to
                    // `BATCH` inputs: under load the sinks get fewer, larger batches, and a lone
                    // message still leaves at once.
                    if pushed.is_err() || inbound.is_empty() || unended >= BATCH {
                        self.end_batch(&mut unended);
                    }
                    pushed?;
                }
                _ = &mut idle => {
                    let now = Instant::now();
                    if now >= last_input + options.idle {
                        last_input = now;
                        let advanced = graph_calls(|| {
                            let traced = graph.advance_traced(&Hlc::now("wasmflow"))?;
                            let mut held = Vec::new();
                            self.traced(traced, &mut held, |_| None)?;
                            self.persist(held)?;
                            self.drain_old(&mut draining, graph)
                        });
                        self.end_batch(&mut unended);
                        advanced?;
                    }
                    idle.as_mut().reset((last_input + options.idle).into());
                }
            }
        }
        // Stop intake; give what is on its way a moment to be acknowledged.
        drop(inbound);
        self.end_batch(&mut unended);
        self.drain(options.drain_timeout).await;
        self.completions.failed()?;
        self.persist(Vec::new())
    }

    /// Lets every sink send what it was handed since the last call ([`Sink::end_batch`]).
    fn end_batch(&self, unended: &mut usize) {
        *unended = 0;
        let r = self.routes;
        for route in r.default.iter().chain(r.sinks.values()).chain(&r.dead_letter) {
            route.sink.end_batch();
        }
    }

    /// Moves the versions a hot update replaced along the running graph's frontier.
    fn drain_old(&mut self, draining: &mut Draining, running: &Graph) -> Result<()> {
        if draining.is_empty() {
            return Ok(());
        }
        draining.tick(running, |traced| {
            let mut held = Vec::new();
            self.traced(traced, &mut held, |_| None)?;
            self.persist(held)
        })
    }

    /// Waits until an output completes below `limit` outstanding (or a sink fails, or shutdown).
    async fn wait_for_room(&self, limit: usize, shutdown: &mut watch::Receiver<bool>) {
        {
            let mut s = self.completions.lock();
            if s.outstanding < limit || s.failure.is_some() {
                return;
            }
            s.wake_below = Some(limit);
        }
        tokio::select! {
            _ = self.completions.wake.notified() => {}
            r = shutdown.changed() => if r.is_err() {
                // Nobody can ask for shutdown any more: wait for room alone.
                self.completions.wake.notified().await;
            },
        }
        self.completions.lock().wake_below = None;
    }

    /// Waits at most `timeout` for every outstanding output to complete.
    async fn drain(&self, timeout: Duration) {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            {
                let mut s = self.completions.lock();
                if s.outstanding == 0 || s.failure.is_some() {
                    s.wake_below = None;
                    return;
                }
                s.wake_below = Some(1);
            }
            if tokio::time::timeout_at(until, self.completions.wake.notified())
                .await
                .is_err()
            {
                let mut s = self.completions.lock();
                s.wake_below = None;
                tracing::warn!(
                    "{} outputs were not acknowledged before shutdown; their inputs will be delivered again",
                    s.outstanding
                );
                return;
            }
        }
    }

    /// Feeds one inbound message to the graph; its key goes with outputs derived from it alone.
    fn push(&mut self, graph: &mut Graph, m: Inbound, held: &mut Vec<Held>) -> Result<()> {
        self.stats.received += 1;
        let _span = tracing::info_span!(
            target: wasmflow_transport::TRACE_TARGET,
            "message",
            graph = %graph.manifest().name,
            topic = %m.input.topic
        )
        .entered();
        let key = m.key;
        let (origin, traced) = graph.push_traced(None, m.input)?;
        self.completions.lock().tracker.input(origin, m.ack);
        self.traced(
            traced,
            held,
            |lineage| if lineage == [origin] { key.clone() } else { None },
        )?;
        self.completions.lock().tracker.seal(origin);
        Ok(())
    }

    /// Registers what a graph call produced and sends its outputs.
    fn traced(
        &mut self,
        traced: Traced,
        held: &mut Vec<Held>,
        key_for: impl Fn(&[u64]) -> Option<Bytes>,
    ) -> Result<()> {
        let mut sends = Vec::with_capacity(traced.outputs.len());
        {
            // Everything an output's completion may finish is registered before it is sent: a
            // sink may complete it at once, on this thread (MQTT QoS 0).
            let mut s = self.completions.lock();
            for h in &traced.held {
                s.tracker.held(h);
            }
            for (output, lineage) in traced.outputs {
                let Some(route) = self.routes.for_destination(&output.destination) else {
                    // No dead-letter topic: the rejected item is dropped, which finishes it.
                    continue;
                };
                if matches!(output.destination, Destination::DeadLetter { .. }) {
                    self.stats.dead_letters += 1;
                }
                s.tracker.add(&lineage);
                s.outstanding += 1;
                let msg = Outbound {
                    topic: route.topic.clone(),
                    key: key_for(&lineage),
                    payload: output.payload,
                    content_type: output.content_type,
                    user_properties: output.user_properties,
                };
                sends.push((route, msg, lineage));
            }
        }
        held.extend(traced.held);
        for (route, msg, lineage) in sends {
            let c = self.completions.clone();
            route.sink.send_with(msg, Box::new(move |r| c.complete(&lineage, r)));
        }
        if !traced.released.is_empty() {
            let mut s = self.completions.lock();
            for id in traced.released {
                s.tracker.seal(id);
            }
        }
        Ok(())
    }

    /// Writes newly held window entries and deletes finished ones, then lets the parents of
    /// the new entries be acknowledged.
    fn persist(&mut self, held: Vec<Held>) -> Result<()> {
        let finished = self.completions.lock().tracker.take_finished_entries();
        self.journal.commit(&held, &finished)?;
        if !held.is_empty() {
            self.completions.lock().tracker.persisted(&held);
        }
        // Persisting may finish entries (a window output acknowledged meanwhile): next commit.
        Ok(())
    }
}

/// Runs graph calls with this thread outside the runtime it is blocked on. A module's WASI
/// calls block on the runtime themselves (wasmtime-wasi's synchronous bindings: writing to
/// standard error, as a Rust operator's panic does), which tokio refuses inside `block_on`;
/// `block_in_place` lets them, on the multi-threaded runtime the CLI builds. Elsewhere (a
/// current-thread runtime in an embedder's test) the calls run as they are.
fn graph_calls<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The next new version of the graph; never, without a source of them.
async fn next_update(updates: &mut Option<Updates>) -> Option<Update> {
    match updates {
        Some(u) => u.recv().await,
        None => std::future::pending().await,
    }
}

/// Every sink of the graph must have a route, or its outputs would never be acknowledged.
fn check_routes(graph: &Graph, routes: &Routes) -> Result<()> {
    if routes.default.is_some() {
        return Ok(());
    }
    for op in &graph.manifest().operations {
        if op.kind == wasmflow_compose::OperationKind::Sink && !routes.sinks.contains_key(&op.name) {
            return Err(DeliveryError::Binding(format!(
                "graph `{}`: sink `{}` has no destination (give --sink)",
                graph.manifest().name,
                op.name
            )));
        }
    }
    Ok(())
}
