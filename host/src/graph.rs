//! Running one composed graph: the wasmtime instance of the composition and the host-side
//! router that moves items between its operations.
//!
//! The composition exports every operation as its own instance; the router calls each one
//! directly, so an item costs exactly one cross-component call per operation it visits. Windows
//! (`accumulate`) and merges (`concatenate`) keep their pending items here, outside the instance,
//! so a trap — which poisons the whole store — loses nothing: the instance is rebuilt from the
//! pre-instantiated component, every `init` runs again, and the router carries on.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use wasmflow_compose::{Arm, Manifest, OperationKind, Override};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, TypedFunc};
use wasmtime::{Engine, Store};

use crate::bindings::{DataModel, HybridLogicalClock, ModuleConfiguration, OperatorError};
use crate::hlc::Hlc;
use crate::host_state::{self, GraphServices, HostState, WasiGrants};
use crate::item::{Body, Bytes, Item};
use crate::metrics::Metrics;

/// How a graph instance is run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Longest a single operator call may run before it is interrupted (an endless loop traps).
    pub call_timeout: Duration,
    /// Largest linear memory any module may grow to.
    pub max_memory: usize,
    /// Run-time configuration overrides (`-c key=value`, `-c op.key=value`).
    pub overrides: Vec<Override>,
    /// Send items an operator rejected (or trapped on) to the dead-letter output.
    pub dead_letter: bool,
    /// What WASI lets modules reach (nothing by default).
    pub wasi: WasiGrants,
    /// Run wasmflow's own source/sink plumbing natively (the default) instead of calling its
    /// components; `false` keeps every call in the instance (tests prove both give the same
    /// bytes; the bench measures the difference).
    pub native_plumbing: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(5),
            max_memory: 256 << 20,
            overrides: vec![],
            dead_letter: false,
            wasi: WasiGrants::default(),
            native_plumbing: true,
        }
    }
}

/// A message as a transport delivers it to a source.
#[derive(Debug, Clone)]
pub struct Input {
    pub topic: String,
    pub payload: Bytes,
    pub content_type: Option<String>,
    pub user_properties: Vec<(String, String)>,
}

/// What leaves the graph: a sink's publication, or a dead letter naming why.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub destination: Destination,
    pub topic: Option<String>,
    pub payload: Bytes,
    pub content_type: Option<String>,
    pub user_properties: Vec<(String, String)>,
}

/// Where an output goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    Sink(String),
    DeadLetter { operation: String, error: String },
}

/// The typed entry points of one operation in the live instance.
enum OpFuncs {
    Source(SourceFn),
    Sink(TypedFunc<(HybridLogicalClock,), (String,)>),
    /// wasmflow's own source plumbing (an operation without a module): the router runs the
    /// same Rust the component is built from (`wasmflow_source::event_time`) instead of a
    /// cross-component call per message. The component stays in the composition, so the
    /// artifact is complete for any host; this host knows what it does and skips the call.
    NativeSource,
    /// wasmflow's own sink plumbing, likewise (`wasmflow_sink::ts_value`).
    NativeSink,
    Concatenate(ConcatenateFn),
    Map(TypedFunc<(DataModel,), (Result<DataModel, OperatorError>,)>),
    Filter(TypedFunc<(DataModel,), (Result<bool, OperatorError>,)>),
    Branch(TypedFunc<(HybridLogicalClock, DataModel), (Result<bool, OperatorError>,)>),
    Accumulate(AccumulateFn),
    Delay(TypedFunc<(DataModel, HybridLogicalClock), (Result<HybridLogicalClock, OperatorError>,)>),
}

/// Export indices resolved once per component, reused by every rebuilt instance.
struct OpExports {
    process: ComponentExportIndex,
    init: Option<ComponentExportIndex>,
}

struct NodeStats {
    messages_in: Counter,
    messages_out: Counter,
    dropped: Counter,
    errors: Counter,
    traps: Counter,
    latency: Histogram,
    /// Calls of this operation so far: every [`LATENCY_SAMPLE`]th is timed.
    calls: u32,
}

/// One operator call in this many is timed into `operator_latency_seconds`. Timing every call
/// costs two clock reads and the histogram's lock per call, and graphs that share series (the
/// same graph run on several threads) would take turns on that lock; one in 16 still fills the
/// buckets within a second at any rate worth a histogram.
pub const LATENCY_SAMPLE: u32 = 16;

struct Live {
    store: Store<HostState>,
    funcs: Vec<OpFuncs>,
}

/// Why an operator call did not produce a value.
enum CallFailure {
    /// `process` returned `Err`: the item is dropped on this path.
    Rejected(String),
    /// The call trapped (panic, out-of-bounds, interrupted loop, memory limit).
    Trapped(String),
}

/// A connection as the router follows it.
#[derive(Debug, Clone, Copy)]
struct Edge {
    /// `Some(arm)` on a branch's outputs: taken when the branch answers `arm`.
    arm: Option<bool>,
    to: usize,
    /// Which input of `to` this is (a concatenate tells its inputs apart by it).
    input: u32,
}

/// Items waiting in one window operation, by event time, with the input each came from and
/// the lineage id of the entry (see [`Held`]).
type Window = BTreeMap<(u64, u32, u64), Vec<(u32, Item, u64)>>;

/// An item a window operation holds until its window closes. At-least-once delivery persists
/// these (so the input they came from can be acknowledged before the window closes) and gives
/// them back with [`Graph::restore_held`] after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// Lineage id of this window entry; outputs of the window name it.
    pub id: u64,
    /// The window operation's name.
    pub operation: String,
    /// Which input of the operation it arrived on (a concatenate tells its inputs apart by it).
    pub input: u32,
    pub item: Item,
    /// Lineage ids of what it derives from (an input, or entries of an upstream window).
    pub parents: Vec<u64>,
}

/// What one call into the graph did, by lineage, so a transport can acknowledge each input
/// once everything derived from it is done.
#[derive(Debug, Default)]
pub struct Traced {
    /// Each output with the lineage ids (inputs or window entries) it derives from.
    pub outputs: Vec<(Output, Vec<u64>)>,
    /// Items that entered a window during the call.
    pub held: Vec<Held>,
    /// Window entries whose window closed during the call: after this, nothing more derives
    /// from them than the outputs (and held items) listed here.
    pub released: Vec<u64>,
}

type SourceFn = TypedFunc<(Option<String>, HybridLogicalClock), ((HybridLogicalClock, Option<String>),)>;
type ConcatenateFn = TypedFunc<(Vec<(u32, DataModel)>,), (Vec<DataModel>,)>;
type AccumulateFn = TypedFunc<(DataModel, Vec<DataModel>), (Result<DataModel, OperatorError>,)>;

/// Tick length of the epoch clock that bounds operator calls.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// One running graph.
pub struct Graph {
    manifest: Arc<Manifest>,
    services: Arc<GraphServices>,
    options: RunOptions,
    pre: InstancePre<HostState>,
    exports: Vec<OpExports>,
    configs: Vec<Vec<(String, String)>>,
    edges: Vec<Vec<Edge>>,
    order: Vec<usize>,
    stats: Vec<NodeStats>,
    live: Live,
    /// Pending items per window operation, keyed by event time.
    windows: HashMap<usize, Window>,
    frontier: Option<(u64, u32, u64)>,
    rebuilds: u64,
    /// Lineage ids of the item being routed now (an input, or the entries of a closing window).
    lineage: Vec<u64>,
    /// Lineage of each output pushed during the current call, in order.
    out_lineage: Vec<Vec<u64>>,
    /// Whether the current call keeps lineage (the `*_traced` calls) or only returns outputs.
    keep_lineage: bool,
    held: Vec<Held>,
    released: Vec<u64>,
    next_id: u64,
}

fn entry_point(kind: OperationKind) -> &'static str {
    match kind {
        OperationKind::Source => "event-time",
        OperationKind::Sink => "ts-property",
        OperationKind::Concatenate => "merge",
        _ => "process",
    }
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
        let mut linker = Linker::new(engine);
        host_state::add_to_linker(&mut linker, component).context("linking host interfaces")?;
        host_state::add_wasi_nn_to_linker(&mut linker, &services).context("linking wasi-nn")?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .context("the graph imports something this host does not provide")?;
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
                bail!("connection {} → {} names an unknown operation", c.from, c.to);
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
        let mut exports = Vec::new();
        let mut configs = Vec::new();
        for op in &manifest.operations {
            let inst = component
                .get_export_index(None, &op.export)
                .ok_or_else(|| anyhow!("operation `{}`: the component has no export `{}`", op.name, op.export))?;
            let process = component
                .get_export_index(Some(&inst), entry_point(op.kind))
                .ok_or_else(|| {
                    anyhow!(
                        "operation `{}`: export `{}` lacks `{}` of {}",
                        op.name,
                        op.export,
                        entry_point(op.kind),
                        op.kind.interface()
                    )
                })?;
            let init = component.get_export_index(Some(&inst), "init");
            exports.push(OpExports { process, init });
            configs.push(
                manifest
                    .configuration_for(&op.name, &options.overrides)
                    .map_err(|e| anyhow!("{e}"))?,
            );
        }
        let stats = services
            .operations
            .iter()
            .map(|who| {
                let l = Metrics::node_labels(who);
                let n = &services.metrics.nodes;
                NodeStats {
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
        let manifest = Arc::new(manifest);
        let live = Self::instantiate(&pre, &manifest, &services, &options, &exports, &configs)?;
        Ok(Self {
            manifest,
            services,
            options,
            pre,
            exports,
            configs,
            edges,
            order,
            stats,
            live,
            windows: HashMap::new(),
            frontier: None,
            rebuilds: 0,
            lineage: Vec::new(),
            out_lineage: Vec::new(),
            keep_lineage: false,
            held: Vec::new(),
            released: Vec::new(),
            next_id: 1,
        })
    }

    /// A fresh store and instance with every `init` run: start-up, and recovery after a trap.
    fn instantiate(
        pre: &InstancePre<HostState>,
        manifest: &Manifest,
        services: &Arc<GraphServices>,
        options: &RunOptions,
        exports: &[OpExports],
        configs: &[Vec<(String, String)>],
    ) -> Result<Live> {
        let mut store = Store::new(
            pre.engine(),
            HostState::new(services.clone(), options.max_memory, &options.wasi)?,
        );
        store.limiter(|s| &mut s.limits);
        let ticks = (options.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let instance = pre
            .instantiate(&mut store)
            .map_err(anyhow::Error::from)
            .context("instantiating the graph")?;
        let mut funcs = Vec::with_capacity(exports.len());
        for ((op, ex), config) in manifest.operations.iter().zip(exports).zip(configs) {
            let ctx = || {
                format!(
                    "operation `{}`: {} does not have the expected signature",
                    op.name,
                    op.kind.interface()
                )
            };
            let p = &ex.process;
            let ours = options.native_plumbing && op.module.is_none();
            funcs.push(match op.kind {
                OperationKind::Source if ours => OpFuncs::NativeSource,
                OperationKind::Sink if ours => OpFuncs::NativeSink,
                OperationKind::Source => OpFuncs::Source(
                    instance
                        .get_typed_func(&mut store, p)
                        .map_err(anyhow::Error::from)
                        .with_context(ctx)?,
                ),
                OperationKind::Sink => OpFuncs::Sink(
                    instance
                        .get_typed_func(&mut store, p)
                        .map_err(anyhow::Error::from)
                        .with_context(ctx)?,
                ),
                OperationKind::Concatenate => OpFuncs::Concatenate(
                    instance
                        .get_typed_func(&mut store, p)
                        .map_err(anyhow::Error::from)
                        .with_context(ctx)?,
                ),
                OperationKind::Map => OpFuncs::Map(
                    instance
                        .get_typed_func(&mut store, p)
                        .map_err(anyhow::Error::from)
                        .with_context(ctx)?,
                ),
                OperationKind::Filter => OpFuncs::Filter(
                    instance
                        .get_typed_func(&mut store, p)
                        .map_err(anyhow::Error::from)
                        .with_context(ctx)?,
                ),
                OperationKind::Branch => OpFuncs::Branch(
                    instance
                        .get_typed_func(&mut store, p)
                        .map_err(anyhow::Error::from)
                        .with_context(ctx)?,
                ),
                OperationKind::Accumulate => OpFuncs::Accumulate(
                    instance
                        .get_typed_func(&mut store, p)
                        .map_err(anyhow::Error::from)
                        .with_context(ctx)?,
                ),
                OperationKind::Delay => OpFuncs::Delay(
                    instance
                        .get_typed_func(&mut store, p)
                        .map_err(anyhow::Error::from)
                        .with_context(ctx)?,
                ),
            });
            if let Some(init) = &ex.init {
                let init: TypedFunc<(ModuleConfiguration,), (bool,)> = instance
                    .get_typed_func(&mut store, init)
                    .map_err(anyhow::Error::from)
                    .with_context(ctx)?;
                let cfg = ModuleConfiguration {
                    properties: config.clone(),
                    module_schemas: vec![],
                };
                store.set_epoch_deadline(ticks);
                match init.call(&mut store, (cfg,)) {
                    Ok((true,)) => {}
                    Ok((false,)) => bail!(
                        "operation `{}` refused its configuration (init returned false); configuration given: {}",
                        op.name,
                        fmt_config(config)
                    ),
                    Err(trap) => bail!("operation `{}` trapped in init: {}", op.name, describe_trap(&trap)),
                }
            }
        }
        Ok(Live { store, funcs })
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
        self.begin(Vec::new(), false);
        self.push_inner(source, input)
    }

    /// [`Graph::push`], telling which outputs derive from the input (whose lineage id it
    /// returns) and which from the windows the push closed.
    pub fn push_traced(&mut self, source: Option<&str>, input: Input) -> Result<(u64, Traced)> {
        let origin = self.new_id();
        self.begin(vec![origin], true);
        let r = self.push_inner(source, input);
        let traced = self.end(r)?;
        Ok((origin, traced))
    }

    /// [`Graph::advance_to`], with lineage.
    pub fn advance_traced(&mut self, now: &Hlc) -> Result<Traced> {
        self.begin(Vec::new(), true);
        let r = self.advance_inner(now);
        self.end(r)
    }

    /// [`Graph::flush`], with lineage.
    pub fn flush_traced(&mut self) -> Result<Traced> {
        self.begin(Vec::new(), true);
        let r = self.flush_inner();
        self.end(r)
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
                    anyhow!(
                        "a persisted window item belongs to operation `{}`, which this graph has no window named",
                        h.operation
                    )
                })?;
            self.next_id = self.next_id.max(h.id + 1);
            self.windows
                .entry(op)
                .or_default()
                .entry(h.item.ts.time_key())
                .or_default()
                .push((h.input, h.item, h.id));
        }
        Ok(())
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Starts a call into the graph; `keep_lineage` for [`Traced`] (a plain `push` skips that
    /// bookkeeping: it costs allocations per output).
    fn begin(&mut self, lineage: Vec<u64>, keep_lineage: bool) {
        self.keep_lineage = keep_lineage;
        self.lineage = lineage;
        self.out_lineage.clear();
        self.held.clear();
        self.released.clear();
    }

    fn end(&mut self, r: Result<Vec<Output>>) -> Result<Traced> {
        let outputs = r?;
        debug_assert_eq!(outputs.len(), self.out_lineage.len());
        Ok(Traced {
            outputs: outputs.into_iter().zip(self.out_lineage.drain(..)).collect(),
            held: std::mem::take(&mut self.held),
            released: std::mem::take(&mut self.released),
        })
    }

    /// Records an output with the lineage of what is being routed.
    fn output(&mut self, o: Output, out: &mut Vec<Output>) {
        if self.keep_lineage {
            self.out_lineage.push(self.lineage.clone());
        }
        out.push(o);
    }

    fn push_inner(&mut self, source: Option<&str>, input: Input) -> Result<Vec<Output>> {
        let src = match source {
            Some(name) => self
                .manifest
                .operations
                .iter()
                .position(|o| o.name == name && o.kind == OperationKind::Source)
                .ok_or_else(|| anyhow!("the graph has no source named `{name}`"))?,
            None => self
                .manifest
                .operations
                .iter()
                .position(|o| o.kind == OperationKind::Source)
                .ok_or_else(|| anyhow!("the graph has no source"))?,
        };
        let mut out = Vec::new();
        self.stats[src].messages_in.inc();
        let Some(item) = self.ingest(src, input, &mut out)? else {
            return Ok(out);
        };
        let t = item.ts.time_key();
        self.stats[src].messages_out.inc();
        self.forward(src, item, &mut out)?;
        // Sources deliver in event-time order: nothing older than `t` can come any more.
        if self.frontier.is_none_or(|f| t > f) {
            self.frontier = Some(t);
        }
        self.close_windows(false, &mut out)?;
        Ok(out)
    }

    /// Advances the progress frontier to `now` (sources idle): windows before it close.
    pub fn advance_to(&mut self, now: &Hlc) -> Result<Vec<Output>> {
        self.begin(Vec::new(), false);
        self.advance_inner(now)
    }

    fn advance_inner(&mut self, now: &Hlc) -> Result<Vec<Output>> {
        let t = now.time_key();
        if self.frontier.is_none_or(|f| t > f) {
            self.frontier = Some(t);
        }
        let mut out = Vec::new();
        self.close_windows(false, &mut out)?;
        Ok(out)
    }

    /// Closes every open window (end of input): nothing more will come.
    pub fn flush(&mut self) -> Result<Vec<Output>> {
        self.begin(Vec::new(), false);
        self.flush_inner()
    }

    fn flush_inner(&mut self) -> Result<Vec<Output>> {
        let mut out = Vec::new();
        self.close_windows(true, &mut out)?;
        Ok(out)
    }

    /// Number of items waiting in open windows.
    pub fn pending(&self) -> usize {
        self.windows.values().flat_map(|w| w.values()).map(Vec::len).sum()
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
                let (time, warning) = wasmflow_source::event_time(ts, || (&arrival_time()).into());
                Ok((Hlc::from(time), warning))
            }
            OpFuncs::Source(f) => {
                let f = *f;
                let ts = ts.map(str::to_owned);
                self.timed(src, |s| f.call(s, (ts, (&arrival_time()).into())))
                    .map(|((time, warning),)| (Hlc::from(&time), warning))
            }
            _ => bail!("operation {src} is not a source"),
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
        match kind {
            OperationKind::Accumulate | OperationKind::Concatenate => {
                let late = self.frontier.is_some_and(|f| item.ts.time_key() < f);
                if late {
                    tracing::debug!(operation = %self.manifest.operations[op].name, ts = %item.ts, "late item: its window closes at once");
                }
                let id = self.new_id();
                if self.keep_lineage {
                    self.held.push(Held {
                        id,
                        operation: self.manifest.operations[op].name.clone(),
                        input: input_ix,
                        item: item.clone(),
                        parents: self.lineage.clone(),
                    });
                }
                self.windows
                    .entry(op)
                    .or_default()
                    .entry(item.ts.time_key())
                    .or_default()
                    .push((input_ix, item, id));
                Ok(())
            }
            OperationKind::Map => match self.call_map(op, &item) {
                Ok(next) => self.emit(op, None, next, out),
                Err(f) => self.failed(op, f, item, out),
            },
            OperationKind::Filter => match self.call_filter(op, &item) {
                Ok(true) => self.emit(op, None, item, out),
                Ok(false) => {
                    self.stats[op].dropped.inc();
                    Ok(())
                }
                Err(f) => self.failed(op, f, item, out),
            },
            OperationKind::Branch => match self.call_branch(op, &item) {
                Ok(arm) => self.emit(op, Some(arm), item, out),
                Err(f) => self.failed(op, f, item, out),
            },
            OperationKind::Delay => match self.call_delay(op, &item) {
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
            OperationKind::Source => bail!("connection into source `{}`", self.manifest.operations[op].name),
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
        self.live = Self::instantiate(
            &self.pre,
            &self.manifest,
            &self.services,
            &self.options,
            &self.exports,
            &self.configs,
        )
        .with_context(|| format!("rebuilding the graph after a trap in `{name}`"))?;
        self.rebuilds += 1;
        Ok(())
    }

    /// Closes windows whose time the frontier has passed (all of them when `all`), in
    /// topological order so a window's output reaches downstream windows before they close. An
    /// accumulate folds each closed time on its own; a concatenate merges everything it releases
    /// in one call, which orders it by event time.
    fn close_windows(&mut self, all: bool, out: &mut Vec<Output>) -> Result<()> {
        if self.windows.values().all(BTreeMap::is_empty) {
            return Ok(());
        }
        for i in 0..self.order.len() {
            let op = self.order[i];
            let Some(w) = self.windows.get_mut(&op) else { continue };
            let ready: Vec<_> = match (all, self.frontier) {
                (true, _) => std::mem::take(w).into_values().collect(),
                (false, None) => continue,
                (false, Some(f)) => {
                    let rest = w.split_off(&f);
                    std::mem::replace(w, rest).into_values().collect()
                }
            };
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
    fn close_one(&mut self, op: usize, batch: Vec<(u32, Item, u64)>, out: &mut Vec<Output>) -> Result<()> {
        let ids: Vec<u64> = batch.iter().map(|(_, _, id)| *id).collect();
        self.released.extend_from_slice(&ids);
        let outer = std::mem::replace(&mut self.lineage, ids);
        let batch = batch.into_iter().map(|(ix, item, _)| (ix, item)).collect();
        let r = self.close_batch(op, batch, out);
        self.lineage = outer;
        r
    }

    fn close_batch(&mut self, op: usize, batch: Vec<(u32, Item)>, out: &mut Vec<Output>) -> Result<()> {
        let Some(first) = batch.first() else { return Ok(()) };
        let ts = first.1.ts.clone();
        match self.manifest.operations[op].kind {
            OperationKind::Accumulate => {
                let items: Vec<Item> = batch.into_iter().map(|(_, i)| i).collect();
                match self.call_accumulate(op, &ts, &items) {
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
                let merged = match self.call_concatenate(op, &ts, batch) {
                    Ok(m) => m,
                    Err(CallFailure::Trapped(e) | CallFailure::Rejected(e)) => {
                        bail!("concatenate `{}` failed: {e}", self.manifest.operations[op].name)
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

    fn timed<R>(
        &mut self,
        op: usize,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallFailure> {
        let ticks = (self.options.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        self.live.store.set_epoch_deadline(ticks);
        let stats = &mut self.stats[op];
        let sampled = stats.calls.is_multiple_of(LATENCY_SAMPLE);
        stats.calls = stats.calls.wrapping_add(1);
        let r = if sampled {
            let started = Instant::now();
            let r = f(&mut self.live.store);
            self.stats[op].latency.observe(started.elapsed().as_secs_f64());
            r
        } else {
            f(&mut self.live.store)
        };
        r.map_err(|t| CallFailure::Trapped(describe_trap(&t)))
    }

    fn lower(&mut self, item: &Item) -> Result<DataModel, CallFailure> {
        item.lower(&mut self.live.store.data_mut().table)
            .map_err(|e| CallFailure::Trapped(e.to_string()))
    }

    fn lift(&mut self, dm: DataModel, ts: &Hlc) -> Result<Item, CallFailure> {
        Item::lift(&mut self.live.store.data_mut().table, dm, ts)
            .map_err(|e| CallFailure::Rejected(format!("unusable result: {e}")))
    }

    fn call_map(&mut self, op: usize, item: &Item) -> Result<Item, CallFailure> {
        let OpFuncs::Map(f) = &self.live.funcs[op] else {
            unreachable!("kind checked by caller")
        };
        let f = *f;
        let arg = self.lower(item)?;
        let (r,) = self.timed(op, |s| f.call(s, (arg,)))?;
        let dm = r.map_err(|e| CallFailure::Rejected(e.message))?;
        self.lift(dm, &item.ts)
    }

    fn call_filter(&mut self, op: usize, item: &Item) -> Result<bool, CallFailure> {
        let OpFuncs::Filter(f) = &self.live.funcs[op] else {
            unreachable!("kind checked by caller")
        };
        let f = *f;
        let arg = self.lower(item)?;
        let (r,) = self.timed(op, |s| f.call(s, (arg,)))?;
        r.map_err(|e| CallFailure::Rejected(e.message))
    }

    fn call_branch(&mut self, op: usize, item: &Item) -> Result<bool, CallFailure> {
        let OpFuncs::Branch(f) = &self.live.funcs[op] else {
            unreachable!("kind checked by caller")
        };
        let f = *f;
        let arg = self.lower(item)?;
        let hlc = item.hlc();
        let (r,) = self.timed(op, |s| f.call(s, (hlc, arg)))?;
        r.map_err(|e| CallFailure::Rejected(e.message))
    }

    fn call_delay(&mut self, op: usize, item: &Item) -> Result<Hlc, CallFailure> {
        let OpFuncs::Delay(f) = &self.live.funcs[op] else {
            unreachable!("kind checked by caller")
        };
        let f = *f;
        let arg = self.lower(item)?;
        let hlc = item.hlc();
        let (r,) = self.timed(op, |s| f.call(s, (arg, hlc)))?;
        let new = r.map_err(|e| CallFailure::Rejected(e.message))?;
        let new = Hlc::from(&new);
        if new < item.ts {
            return Err(CallFailure::Rejected(format!(
                "delay moved the timestamp back from {} to {new}",
                item.ts
            )));
        }
        Ok(new)
    }

    fn call_accumulate(&mut self, op: usize, ts: &Hlc, items: &[Item]) -> Result<Item, CallFailure> {
        let OpFuncs::Accumulate(f) = &self.live.funcs[op] else {
            unreachable!("kind checked by caller")
        };
        let f = *f;
        let staged = self.lower(&Item::empty_message(ts.clone()))?;
        let mut args = Vec::with_capacity(items.len());
        for i in items {
            args.push(self.lower(i)?);
        }
        let (r,) = self.timed(op, |s| f.call(s, (staged, args)))?;
        let dm = r.map_err(|e| CallFailure::Rejected(e.message))?;
        self.lift(dm, ts)
    }

    fn call_concatenate(&mut self, op: usize, ts: &Hlc, batch: Vec<(u32, Item)>) -> Result<Vec<Item>, CallFailure> {
        let OpFuncs::Concatenate(f) = &self.live.funcs[op] else {
            unreachable!("kind checked by caller")
        };
        let f = *f;
        let mut args = Vec::with_capacity(batch.len());
        for (ix, i) in &batch {
            args.push((*ix, self.lower(i)?));
        }
        let (r,) = self.timed(op, |s| f.call(s, (args,)))?;
        r.into_iter().map(|dm| self.lift(dm, ts)).collect()
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
                match self.timed(op, |s| f.call(s, (hlc,))) {
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

/// The event-time user property, read by the source plumbing and written by the sink's.
pub const TS_PROPERTY: &str = "__ts";

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

fn fmt_config(c: &[(String, String)]) -> String {
    if c.is_empty() {
        return "(none)".into();
    }
    c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// A trap as one line: the trap code and the guest's backtrace frames when present.
pub fn describe_trap(e: &wasmtime::Error) -> String {
    let mut s = String::new();
    if let Some(t) = e.downcast_ref::<wasmtime::Trap>() {
        s.push_str(&t.to_string());
    } else {
        s.push_str(&e.to_string());
    }
    if let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        let frames: Vec<String> = bt
            .frames()
            .iter()
            .take(4)
            .filter_map(|f| f.func_name().map(str::to_owned))
            .collect();
        if !frames.is_empty() {
            s.push_str(" at ");
            s.push_str(&frames.join(" ← "));
        }
    }
    s
}

/// Kahn's algorithm; validation already refused cycles, so one here is an internal error.
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
        bail!("the graph has a cycle");
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
