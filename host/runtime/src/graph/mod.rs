//! Running one composed graph: the router that moves items between the operations of its
//! instance.
//!
//! The composition exports every operation as its own instance; the router calls each one
//! directly, so an item costs exactly one cross-component call per operation it visits. The
//! parts, each in its own module: [`instance`] links the component and makes live instances
//! (at start and after a trap); [`call`] is the typed call into one operation; [`windows`]
//! keeps the items `accumulate` and `concatenate` wait for, and the frontier; [`lineage`] says
//! which inputs each output derives from. Windows live outside the instance, so a trap — which
//! poisons the whole store — loses nothing: the instance is rebuilt, every `init` runs again,
//! and the router carries on.

pub mod call;
mod composed;
pub mod instance;
pub mod lineage;
pub mod windows;

use std::collections::HashMap;
use std::sync::Arc;

use wasmflow_compose::{Arm, Manifest, OperationKind};
use wasmflow_transport::{Destination, Input, Output};
use wasmflow_wire::{Hlc, TS_PROPERTY};
use wasmtime::component::Component;
use wasmtime::Engine;

pub use call::{describe_trap, EPOCH_TICK, LATENCY_SAMPLE};
pub use instance::RunOptions;
pub use lineage::{Held, Traced};

use call::{CallFailure, Live, NodeStats, OpFuncs};
use composed::{Routed, RouterFuncs};
use instance::Instance;
use lineage::Lineage;
use windows::Windows;

use crate::bindings::HybridLogicalClock;
use crate::error::{Context, Result, RuntimeError};
use crate::item::{Body, Bytes, Item};
use crate::services::metrics::Metrics;
use crate::services::GraphServices;

/// A connection as the router follows it.
#[derive(Debug, Clone, Copy)]
struct Edge {
    /// `Some(arm)` on a branch's outputs: taken when the branch answers `arm`.
    arm: Option<bool>,
    to: usize,
    /// Which input of `to` this is (a concatenate tells its inputs apart by it).
    input: u32,
}

/// One running graph.
pub struct Graph {
    manifest: Arc<Manifest>,
    services: Arc<GraphServices>,
    options: RunOptions,
    instance: Instance,
    edges: Vec<Vec<Edge>>,
    order: Vec<usize>,
    stats: Vec<NodeStats>,
    live: Live,
    windows: Windows,
    lineage: Lineage,
    rebuilds: u64,
}

impl Graph {
    /// Links and instantiates a compiled graph and runs every operation's `init`. Fails with
    /// the operation's name when an `init` returns false or traps, or a parameter is missing.
    pub fn new(
        engine: &Engine,
        component: &Component,
        manifest: Manifest,
        services: Arc<GraphServices>,
        options: RunOptions,
    ) -> Result<Self> {
        let instance = Instance::new(engine, component, &manifest, &services, &options)?;
        let by_name: HashMap<&str, usize> = manifest
            .operations
            .iter()
            .enumerate()
            .map(|(i, o)| (o.name.as_str(), i))
            .collect();
        let mut edges = vec![Vec::new(); manifest.operations.len()];
        let mut inputs_seen = vec![0u32; manifest.operations.len()];
        for c in &manifest.connections {
            let (Some(&from), Some(&to)) = (by_name.get(c.from.as_str()), by_name.get(c.to.as_str())) else {
                return Err(RuntimeError::Graph(format!(
                    "connection {} → {} names an unknown operation",
                    c.from, c.to
                )));
            };
            let arm = c.arm.map(|a| matches!(a, Arm::True));
            edges[from].push(Edge {
                arm,
                to,
                input: inputs_seen[to],
            });
            inputs_seen[to] += 1;
        }
        let order = topological_order(&edges)?;
        let stats = services
            .operations
            .iter()
            .map(|who| {
                let l = Metrics::node_labels(who);
                let n = &services.metrics.nodes;
                NodeStats {
                    operation: who.operation.clone(),
                    messages_in: n.messages_in.get_or_create(&l).clone(),
                    messages_out: n.messages_out.get_or_create(&l).clone(),
                    dropped: n.dropped.get_or_create(&l).clone(),
                    errors: n.errors.get_or_create(&l).clone(),
                    traps: n.traps.get_or_create(&l).clone(),
                    latency: n.latency_seconds.get_or_create(&l).clone(),
                    calls: 0,
                }
            })
            .collect();
        let live = instance.instantiate(&manifest, &services, &options)?;
        Ok(Self {
            manifest: Arc::new(manifest),
            services,
            options,
            instance,
            edges,
            order,
            stats,
            live,
            windows: Windows::default(),
            lineage: Lineage::default(),
            rebuilds: 0,
        })
    }

    /// Takes lineage ids from `other`'s counter from now on: a new version of a graph running
    /// beside the old one while it drains (hot update) gives out ids the old one never will,
    /// so one tracker and one window journal serve both.
    pub fn share_lineage_ids(&mut self, other: &Graph) {
        self.lineage.share_ids(&other.lineage);
    }

    /// The progress frontier: the event time nothing older can arrive before (windows before
    /// it have closed); `None` before the first input.
    pub fn frontier(&self) -> Option<Hlc> {
        self.windows.frontier().map(|(secs, nanos, counter)| Hlc {
            secs,
            nanos,
            counter,
            node_id: "wasmflow".into(),
        })
    }

    /// The graph's manifest (operations, connections, parameters).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// How many times the instance was rebuilt after a trap.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds
    }

    /// Feeds one delivery into the graph through `source` (the first source when `None`), runs
    /// it as far as it goes, closes the windows its time completes, and returns what came out.
    pub fn push(&mut self, source: Option<&str>, input: Input) -> Result<Vec<Output>> {
        self.lineage.begin(Vec::new(), false);
        self.push_inner(source, input)
    }

    /// [`Graph::push`], telling which outputs derive from the input (whose lineage id it
    /// returns) and which from the windows the push closed.
    pub fn push_traced(&mut self, source: Option<&str>, input: Input) -> Result<(u64, Traced)> {
        let origin = self.lineage.new_id();
        self.lineage.begin(vec![origin], true);
        let outputs = self.push_inner(source, input)?;
        Ok((origin, self.lineage.finish(outputs)))
    }

    /// [`Graph::advance_to`], with lineage.
    pub fn advance_traced(&mut self, now: &Hlc) -> Result<Traced> {
        self.lineage.begin(Vec::new(), true);
        let outputs = self.advance_inner(now)?;
        Ok(self.lineage.finish(outputs))
    }

    /// [`Graph::flush`], with lineage.
    pub fn flush_traced(&mut self) -> Result<Traced> {
        self.lineage.begin(Vec::new(), true);
        let outputs = self.flush_inner()?;
        Ok(self.lineage.finish(outputs))
    }

    /// Puts persisted window entries back (after a restart), before any input is pushed. Later
    /// lineage ids are above theirs.
    pub fn restore_held(&mut self, held: Vec<Held>) -> Result<()> {
        for h in held {
            let op = self
                .manifest
                .operations
                .iter()
                .position(|o| {
                    o.name == h.operation && matches!(o.kind, OperationKind::Accumulate | OperationKind::Concatenate)
                })
                .ok_or_else(|| {
                    RuntimeError::Graph(format!(
                        "a persisted window item belongs to operation `{}`, which this graph has no window named",
                        h.operation
                    ))
                })?;
            self.lineage.restored(h.id);
            self.windows.hold(op, (h.input, h.item, h.id));
        }
        Ok(())
    }

    /// Records an output with the lineage of what is being routed.
    fn output(&mut self, o: Output, out: &mut Vec<Output>) {
        self.lineage.output();
        out.push(o);
    }

    fn push_inner(&mut self, source: Option<&str>, input: Input) -> Result<Vec<Output>> {
        let src = match source {
            Some(name) => self
                .manifest
                .operations
                .iter()
                .position(|o| o.name == name && o.kind == OperationKind::Source)
                .ok_or_else(|| RuntimeError::Graph(format!("the graph has no source named `{name}`")))?,
            None => self
                .manifest
                .operations
                .iter()
                .position(|o| o.kind == OperationKind::Source)
                .ok_or_else(|| RuntimeError::Graph("the graph has no source".into()))?,
        };
        let mut out = Vec::new();
        self.stats[src].messages_in.inc();
        let Some(item) = self.ingest(src, input, &mut out)? else {
            return Ok(out);
        };
        let t = item.ts.order_key();
        self.stats[src].messages_out.inc();
        match self.live.router {
            Some(router) => self.push_composed(router, src, item, &mut out)?,
            None => self.forward(src, item, &mut out)?,
        }
        // Sources deliver in event-time order: nothing older than `t` can come any more.
        self.windows.advance(t);
        self.close_windows(false, &mut out)?;
        Ok(out)
    }

    /// Advances the progress frontier to `now` (sources idle): windows before it close.
    pub fn advance_to(&mut self, now: &Hlc) -> Result<Vec<Output>> {
        self.lineage.begin(Vec::new(), false);
        self.advance_inner(now)
    }

    fn advance_inner(&mut self, now: &Hlc) -> Result<Vec<Output>> {
        self.windows.advance(now.order_key());
        let mut out = Vec::new();
        self.close_windows(false, &mut out)?;
        Ok(out)
    }

    /// Closes every open window (end of input): nothing more will come.
    pub fn flush(&mut self) -> Result<Vec<Output>> {
        self.lineage.begin(Vec::new(), false);
        self.flush_inner()
    }

    fn flush_inner(&mut self) -> Result<Vec<Output>> {
        let mut out = Vec::new();
        self.close_windows(true, &mut out)?;
        Ok(out)
    }

    /// Number of items waiting in open windows.
    pub fn pending(&self) -> usize {
        self.windows.pending()
    }

    /// Asks the source plumbing for the input's event time (from its first `__ts`), and builds
    /// the message around it. A trap there rebuilds the instance and dead-letters the input.
    fn ingest(&mut self, src: usize, input: Input, out: &mut Vec<Output>) -> Result<Option<Item>> {
        let ts = input
            .user_properties
            .iter()
            .find(|(k, _)| k == TS_PROPERTY)
            .map(|(_, v)| v.as_str());
        let answer = match &self.live.funcs[src] {
            OpFuncs::NativeSource => {
                let (time, warning) = wasmflow_source::event_time(ts, arrival_time);
                Ok((time, warning))
            }
            OpFuncs::Source(f) => {
                let f = *f;
                let ts = ts.map(str::to_owned);
                self.live
                    .timed(&mut self.stats[src], |s| f.call(s, (ts, (&arrival_time()).into())))
                    .map(|((time, warning),)| (Hlc::from(&time), warning))
            }
            _ => return Err(RuntimeError::Graph(format!("operation {src} is not a source"))),
        };
        let (ts, failure) = match answer {
            Ok((time, warning)) => {
                if let Some(w) = warning {
                    let op = &self.manifest.operations[src].name;
                    tracing::warn!(graph = &*self.services.graph, operation = %op, "{w}; using arrival time");
                }
                (time, None)
            }
            Err(failure) => (arrival_time(), Some(failure)),
        };
        let item = Item {
            ts,
            body: Body::Message {
                topic: Bytes::from(input.topic.into_bytes()),
                content_type: input.content_type,
                payload: input.payload,
                properties: input.user_properties,
                schema: None,
            },
        };
        match failure {
            None => Ok(Some(item)),
            Some(failure) => {
                self.failed(src, failure, item, out)?;
                Ok(None)
            }
        }
    }

    /// Routes `item` from source `src` through the graph's own router. After a trap the
    /// instance is rebuilt and the item goes through this host's routing instead, which finds
    /// the operation that traps, dead-letters the item there, and delivers what other paths
    /// produce: nothing is lost that host routing would keep.
    fn push_composed(&mut self, router: RouterFuncs, src: usize, item: Item, out: &mut Vec<Output>) -> Result<()> {
        let keep = self.options.dead_letter;
        let answer = self.live.routed(|s| {
            let arg = composed::lower(s, &item)?;
            router.push.call(s, (src as u32, arg, keep)).map(|(events,)| events)
        });
        match answer {
            Ok(events) => {
                let routed = composed::lift_events(&mut self.live.store, events);
                self.take_counts(router)?;
                self.route(routed, None, out)
            }
            Err(trap) => {
                self.rebuild_after_router_trap(&trap)?;
                self.forward(src, item, out)
            }
        }
    }

    /// Acts on what the graph's router handed back: items for sinks and windows are delivered
    /// as this host's routing delivers them, rejections dead-lettered. A rejection without its
    /// item from window `window.0` (an accumulate that refused its window) stands for every
    /// item of the batch `window.1`.
    fn route(&mut self, routed: Vec<Routed>, window: Option<(usize, &[Item])>, out: &mut Vec<Output>) -> Result<()> {
        for r in routed {
            match r {
                Routed::Deliver { op, input, item } => self.deliver(op, input, item, out)?,
                Routed::Rejected { op, ts, error, item } => match (item, window) {
                    (Some(item), _) => self.failed(op, CallFailure::Rejected(error), item, out)?,
                    (None, Some((w, items))) if w == op => {
                        for item in items {
                            self.failed(op, CallFailure::Rejected(error.clone()), item.clone(), out)?;
                        }
                    }
                    (None, _) => self.failed(op, CallFailure::Rejected(error), composed::placeholder(ts), out)?,
                },
            }
        }
        Ok(())
    }

    /// Adds what the router's operations counted to their series.
    fn take_counts(&mut self, router: RouterFuncs) -> Result<()> {
        let counts = self
            .live
            .routed(|s| router.counts.call(s, ()).map(|(c,)| c))
            .map_err(|e| RuntimeError::Graph(format!("the graph's router could not report its counts: {e}")))?;
        for (stats, c) in self.stats.iter().zip(counts) {
            if c.received > 0 {
                stats.messages_in.inc_by(c.received);
            }
            if c.emitted > 0 {
                stats.messages_out.inc_by(c.emitted);
            }
            if c.dropped > 0 {
                stats.dropped.inc_by(c.dropped);
            }
        }
        Ok(())
    }

    fn rebuild_after_router_trap(&mut self, trap: &str) -> Result<()> {
        tracing::error!(
            graph = &*self.services.graph,
            "a call through the graph's router trapped: {trap}; rebuilding the graph instance and routing the item through the host"
        );
        self.live = self
            .instance
            .instantiate(&self.manifest, &self.services, &self.options)
            .context("rebuilding the graph after a trap in its router")?;
        self.rebuilds += 1;
        Ok(())
    }

    /// Sends `item` along every edge out of `from` (all arms).
    fn forward(&mut self, from: usize, item: Item, out: &mut Vec<Output>) -> Result<()> {
        self.forward_arm(from, None, item, out)
    }

    fn forward_arm(&mut self, from: usize, arm: Option<bool>, item: Item, out: &mut Vec<Output>) -> Result<()> {
        let takes = |e: &Edge| arm.is_none() || e.arm == arm;
        // The last target gets the item itself, earlier ones a clone (it shares the payload).
        let Some(last) = self.edges[from].iter().rposition(takes) else {
            return Ok(());
        };
        for i in 0..last {
            let e = self.edges[from][i];
            if takes(&e) {
                self.deliver(e.to, e.input, item.clone(), out)?;
            }
        }
        let e = self.edges[from][last];
        self.deliver(e.to, e.input, item, out)
    }

    /// Runs `item` through operation `op` and onwards.
    fn deliver(&mut self, op: usize, input_ix: u32, item: Item, out: &mut Vec<Output>) -> Result<()> {
        self.stats[op].messages_in.inc();
        let kind = self.manifest.operations[op].kind;
        let stats = &mut self.stats[op];
        match kind {
            OperationKind::Accumulate | OperationKind::Concatenate => {
                let name = &self.manifest.operations[op].name;
                if self.windows.is_late(item.ts.order_key()) {
                    tracing::debug!(operation = %name, ts = %item.ts, "late item: its window closes at once");
                }
                let id = self.lineage.new_id();
                self.lineage.hold(id, name, input_ix, &item);
                self.windows.hold(op, (input_ix, item, id));
                Ok(())
            }
            OperationKind::Map => match self.live.map(op, stats, &item) {
                Ok(next) => self.emit(op, None, next, out),
                Err(f) => self.failed(op, f, item, out),
            },
            OperationKind::Filter => match self.live.filter(op, stats, &item) {
                Ok(true) => self.emit(op, None, item, out),
                Ok(false) => {
                    self.stats[op].dropped.inc();
                    Ok(())
                }
                Err(f) => self.failed(op, f, item, out),
            },
            OperationKind::Branch => match self.live.branch(op, stats, &item) {
                Ok(arm) => self.emit(op, Some(arm), item, out),
                Err(f) => self.failed(op, f, item, out),
            },
            OperationKind::Delay => match self.live.delay(op, stats, &item) {
                Ok(ts) => {
                    let mut item = item;
                    item.set_ts(ts);
                    self.emit(op, None, item, out)
                }
                Err(f) => self.failed(op, f, item, out),
            },
            OperationKind::Sink => match self.call_sink(op, item) {
                Ok(o) => {
                    self.stats[op].messages_out.inc();
                    self.output(o, out);
                    Ok(())
                }
                Err((f, item)) => self.failed(op, f, *item, out),
            },
            OperationKind::Source => Err(RuntimeError::Graph(format!(
                "connection into source `{}`",
                self.manifest.operations[op].name
            ))),
        }
    }

    fn emit(&mut self, op: usize, arm: Option<bool>, item: Item, out: &mut Vec<Output>) -> Result<()> {
        self.stats[op].messages_out.inc();
        self.forward_arm(op, arm, item, out)
    }

    /// An operator rejected or trapped on `item`: drop it on this path, count it, log it with
    /// the operation, dead-letter it when asked, and rebuild the instance after a trap.
    fn failed(&mut self, op: usize, failure: CallFailure, item: Item, out: &mut Vec<Output>) -> Result<()> {
        let name = self.manifest.operations[op].name.clone();
        self.stats[op].dropped.inc();
        let error = match failure {
            CallFailure::Rejected(e) => {
                self.stats[op].errors.inc();
                tracing::warn!(graph = &*self.services.graph, operation = %name, ts = %item.ts, "item dropped: {e}");
                e
            }
            CallFailure::Trapped(e) => {
                self.trapped(op, &e)?;
                format!("trap: {e}")
            }
        };
        if self.options.dead_letter {
            let (topic, content_type, user_properties) = match &item.body {
                Body::Message {
                    topic,
                    content_type,
                    properties,
                    ..
                } => (
                    Some(String::from_utf8_lossy(topic).into_owned()),
                    content_type.clone(),
                    properties.clone(),
                ),
                _ => (None, None, vec![]),
            };
            let mut user_properties = user_properties;
            user_properties.retain(|(k, _)| k != "__ts" && k != "error" && k != "operation");
            user_properties.push(("__ts".into(), item.ts.to_string()));
            user_properties.push(("operation".into(), name.clone()));
            user_properties.push(("error".into(), error.clone()));
            let o = Output {
                destination: Destination::DeadLetter { operation: name, error },
                topic,
                payload: item.payload().clone(),
                content_type,
                user_properties,
            };
            self.output(o, out);
        }
        Ok(())
    }

    fn trapped(&mut self, op: usize, msg: &str) -> Result<()> {
        let name = &self.manifest.operations[op].name;
        self.stats[op].traps.inc();
        tracing::error!(graph = &*self.services.graph, operation = %name, "operator trapped: {msg}; rebuilding the graph instance");
        self.live = self
            .instance
            .instantiate(&self.manifest, &self.services, &self.options)
            .with_context(|| format!("rebuilding the graph after a trap in `{name}`"))?;
        self.rebuilds += 1;
        Ok(())
    }

    /// Closes windows whose time the frontier has passed (all of them when `all`), in
    /// topological order so a window's output reaches downstream windows before they close. An
    /// accumulate folds each closed time on its own; a concatenate merges everything it releases
    /// in one call, which orders it by event time.
    fn close_windows(&mut self, all: bool, out: &mut Vec<Output>) -> Result<()> {
        if self.windows.is_empty() {
            return Ok(());
        }
        for i in 0..self.order.len() {
            let op = self.order[i];
            let ready = self.windows.take_ready(op, all);
            if ready.is_empty() {
                continue;
            }
            if self.manifest.operations[op].kind == OperationKind::Concatenate {
                self.close_one(op, ready.into_iter().flatten().collect(), out)?;
            } else {
                for batch in ready {
                    self.close_one(op, batch, out)?;
                }
            }
        }
        Ok(())
    }

    /// Closes one batch with the lineage of its entries, then restores the lineage of what was
    /// being routed before.
    fn close_one(&mut self, op: usize, batch: Vec<windows::Entry>, out: &mut Vec<Output>) -> Result<()> {
        let outer = self.lineage.enter(batch.iter().map(|(_, _, id)| *id).collect());
        let batch = batch.into_iter().map(|(ix, item, _)| (ix, item)).collect();
        let r = self.close_batch(op, batch, out);
        self.lineage.leave(outer);
        r
    }

    fn close_batch(&mut self, op: usize, batch: Vec<(u32, Item)>, out: &mut Vec<Output>) -> Result<()> {
        match self.live.router {
            Some(router) => self.close_composed(router, op, batch, out),
            None => self.close_hosted(op, batch, out),
        }
    }

    /// [`Graph::close_batch`] through the graph's own router; after a trap, through this host's
    /// routing on the rebuilt instance (as [`Graph::push_composed`]).
    fn close_composed(
        &mut self,
        router: RouterFuncs,
        op: usize,
        batch: Vec<(u32, Item)>,
        out: &mut Vec<Output>,
    ) -> Result<()> {
        let Some(first) = batch.first() else { return Ok(()) };
        let ts: HybridLogicalClock = (&first.1.ts).into();
        let keep = self.options.dead_letter;
        let answer = self.live.routed(|s| {
            let mut items = Vec::with_capacity(batch.len());
            for (input, item) in &batch {
                items.push((*input, composed::lower(s, item)?));
            }
            router
                .close
                .call(s, (op as u32, ts, items, keep))
                .map(|(events,)| events)
        });
        match answer {
            Ok(events) => {
                let routed = composed::lift_events(&mut self.live.store, events);
                self.take_counts(router)?;
                let items: Vec<Item> = batch.into_iter().map(|(_, item)| item).collect();
                self.route(routed, Some((op, &items)), out)
            }
            Err(trap) => {
                self.rebuild_after_router_trap(&trap)?;
                self.close_hosted(op, batch, out)
            }
        }
    }

    fn close_hosted(&mut self, op: usize, batch: Vec<(u32, Item)>, out: &mut Vec<Output>) -> Result<()> {
        let Some(first) = batch.first() else { return Ok(()) };
        let ts = first.1.ts.clone();
        match self.manifest.operations[op].kind {
            OperationKind::Accumulate => {
                let items: Vec<Item> = batch.into_iter().map(|(_, i)| i).collect();
                match self.live.accumulate(op, &mut self.stats[op], &ts, &items) {
                    Ok(result) => self.emit(op, None, result, out),
                    Err(failure) => {
                        // The whole window fails together: one rebuild (if it trapped), and every
                        // item in it is dropped on this path and dead-lettered with the error.
                        let error = match &failure {
                            CallFailure::Rejected(e) => e.clone(),
                            CallFailure::Trapped(e) => format!("trap: {e}"),
                        };
                        let mut items = items.into_iter();
                        if let Some(first) = items.next() {
                            self.failed(op, failure, first, out)?;
                        }
                        for item in items {
                            self.failed(op, CallFailure::Rejected(error.clone()), item, out)?;
                        }
                        Ok(())
                    }
                }
            }
            OperationKind::Concatenate => {
                let merged = match self.live.concatenate(op, &mut self.stats[op], &ts, batch) {
                    Ok(m) => m,
                    Err(CallFailure::Trapped(e) | CallFailure::Rejected(e)) => {
                        return Err(RuntimeError::Graph(format!(
                            "concatenate `{}` failed: {e}",
                            self.manifest.operations[op].name
                        )))
                    }
                };
                for item in merged {
                    self.emit(op, None, item, out)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Asks the sink plumbing how to write the item's event time, and builds the publication:
    /// `__ts` replaces the first existing one in place (later duplicates dropped) or is appended.
    /// Takes the item (its properties become the output's without a copy) and gives it back
    /// with the failure, for the dead-letter output.
    fn call_sink(&mut self, op: usize, item: Item) -> Result<Output, (CallFailure, Box<Item>)> {
        let ts = match &self.live.funcs[op] {
            OpFuncs::NativeSink => {
                let t = &item.ts;
                wasmflow_sink::ts_value(t.secs, t.nanos, t.counter, &t.node_id)
            }
            OpFuncs::Sink(f) => {
                let f = *f;
                let hlc = item.hlc();
                match self.live.timed(&mut self.stats[op], |s| f.call(s, (hlc,))) {
                    Ok((ts,)) => ts,
                    Err(failure) => return Err((failure, Box::new(item))),
                }
            }
            _ => unreachable!("kind checked by caller"),
        };
        if let Body::Message { topic, .. } = &item.body {
            if let Err(e) = std::str::from_utf8(topic) {
                let why = format!("sink: the message topic is not valid UTF-8: {e}");
                return Err((CallFailure::Rejected(why), Box::new(item)));
            }
        }
        let (topic, payload, content_type, properties) = match item.body {
            Body::Message {
                topic,
                content_type,
                payload,
                properties,
                ..
            } => {
                // Checked above: the conversion borrows, and `into_owned` is the one copy.
                let topic = String::from_utf8_lossy(&topic).into_owned();
                (Some(topic), payload, content_type, properties)
            }
            Body::Raw(payload) => (None, payload, None, vec![]),
            // A frame has no topic or content type; its shape travels as user properties.
            Body::Snapshot {
                format,
                width,
                height,
                frame,
            } => (
                None,
                frame,
                None,
                vec![
                    ("snapshot-format".to_owned(), format),
                    ("snapshot-width".to_owned(), width.to_string()),
                    ("snapshot-height".to_owned(), height.to_string()),
                ],
            ),
        };
        Ok(Output {
            destination: Destination::Sink(self.manifest.operations[op].name.clone()),
            topic,
            payload,
            content_type,
            user_properties: with_ts(properties, ts),
        })
    }
}

/// When a delivery reached this host, stamped by it: the event time of one that carries none.
fn arrival_time() -> Hlc {
    Hlc::now("wasmflow")
}

/// `properties` with `__ts` set to `ts`: the first existing `__ts` is replaced in place, later
/// duplicates are dropped, and it is appended when there was none.
fn with_ts(mut properties: Vec<(String, String)>, ts: String) -> Vec<(String, String)> {
    let mut ts = Some(ts);
    properties.retain_mut(|(key, value)| {
        if key != TS_PROPERTY {
            return true;
        }
        match ts.take() {
            Some(new) => {
                *value = new;
                true
            }
            None => false,
        }
    });
    if let Some(ts) = ts {
        properties.push((TS_PROPERTY.to_owned(), ts));
    }
    properties
}

/// Kahn's algorithm; validation already refused cycles, so one here is an internal error.
/// Hand-written rather than petgraph's `toposort` (which compose uses) because the router
/// needs an order fixed by the order operations and connections are declared (a stack seeded
/// in declaration order), so windows close in the same order on every run; petgraph's
/// `toposort` promises none.
fn topological_order(edges: &[Vec<Edge>]) -> Result<Vec<usize>> {
    let n = edges.len();
    let mut indeg = vec![0usize; n];
    for es in edges {
        for e in es {
            indeg[e.to] += 1;
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| indeg[i] == 0).rev().collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop() {
        order.push(i);
        for e in edges[i].iter().rev() {
            indeg[e.to] -= 1;
            if indeg[e.to] == 0 {
                ready.push(e.to);
            }
        }
    }
    if order.len() != n {
        return Err(RuntimeError::Graph("the graph has a cycle".into()));
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn ts_is_added_when_absent() {
        assert_eq!(
            with_ts(props(&[("a", "1")]), "T".into()),
            props(&[("a", "1"), ("__ts", "T")])
        );
        assert_eq!(with_ts(Vec::new(), "T".into()), props(&[("__ts", "T")]));
    }

    #[test]
    fn ts_is_replaced_in_place_and_duplicates_dropped() {
        let before = props(&[("__ts", "old"), ("a", "1"), ("__ts", "older")]);
        assert_eq!(with_ts(before, "new".into()), props(&[("__ts", "new"), ("a", "1")]));
    }
}
