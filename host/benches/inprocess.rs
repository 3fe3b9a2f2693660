//! In-process speed: the same workload three ways, side by side, in one run (issue 3).
//!
//! * **composed** — `wasmflow_host::graph::Graph::push` on the composed graph (source and sink
//!   plumbing components included, metrics and timeouts on, exactly what `wasmflow run` does).
//! * **host-routed** — the same operator module (`temperature.wasm`) instantiated once per
//!   operation as separate component instances in one `Store`; the host builds the
//!   `data-model` itself (no source/sink plumbing calls), calls each `process` in turn and hands
//!   the returned value straight to the next call (a filter consumes its argument, so the host
//!   passes it a copy). Per-call epoch deadline as in `Graph`, no metrics.
//! * **native** — the sample operator's own Rust logic (`temperature::map` / `temperature::filter`,
//!   the rlib the component is built from), applied in one loop to the payload bytes.
//!
//! Workloads: `graph-simple` (source → temperature map → sink) and `graphs/bench-chain.yaml`
//! (source → map °F→°C → filter → map again → sink). Input `{"temperature":{"value":N,"unit":"F"}}`.
//!
//! Before timing, the first 2,000 messages go through every variant and their outputs must be
//! byte-identical. Variants then take turns every `--chunk` messages (default 10,000) so load
//! from elsewhere on the machine hits them alike. Latency is per message: one `Instant::now()`
//! after each message, latency = the difference to the previous reading (each message pays one
//! clock read, in every variant; the clock's cost is printed). Throughput = median over chunks.
//!
//! `cargo bench -p wasmflow-host --bench inprocess [-- --messages N --rounds R --chunk C]`, or
//! `WASMFLOW_BENCH_MESSAGES` / `WASMFLOW_BENCH_ROUNDS` / `WASMFLOW_BENCH_CHUNK`. Profiling:
//! `--only composed|host-routed|native`, `--workload graph-simple|bench-chain`, and
//! `--on-demand` (on-demand instance allocation: valgrind cannot reserve the pooling
//! allocator's address space). The table is printed to stdout as Markdown.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use wasmtime::component::{Component, Linker, TypedFunc};
use wasmtime::{Engine, Store};

use wasmflow_compose::ComposeOptions;
use wasmflow_host::bindings::{
    BufferOrBytes, BufferOrString, DataModel, Message, MessageProperties, ModuleConfiguration, OperatorError, Timespec,
    Timestamp,
};
use wasmflow_host::buffer::{new_buffer, take_buffer, Payload};
use wasmflow_host::graph::{Graph, Input, RunOptions, EPOCH_TICK};
use wasmflow_host::host_state::{self, GraphServices, HostState};
use wasmflow_host::logger::OpIdentity;
use wasmflow_host::metrics::Metrics;
use wasmflow_host::runtime::{default_modules_dir, load_graph, Runtime, RuntimeConfig};
use wasmflow_host::state_store::StateStore;

const TOPIC: &str = "sensors/bench";
const NODE: &str = "bench";
const BASE_MS: u64 = 1_700_000_000_000;

#[derive(Clone, Copy, PartialEq)]
enum Step {
    Map,
    Filter,
}

struct Workload {
    name: &'static str,
    graph: PathBuf,
    steps: &'static [Step],
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

// ---------------------------------------------------------------------------------------------
// Inputs

struct Inputs {
    payloads: Vec<Arc<[u8]>>,
    ts: Vec<String>,
}

/// `{"temperature":{"value":N,"unit":"F"}}` with N from -100.0 to 7000.0 °F in a scattered
/// order: about 88 % pass the default filter (-40 °C < v < 3422 °C).
fn inputs(n: usize) -> Inputs {
    let mut payloads = Vec::with_capacity(n);
    let mut ts = Vec::with_capacity(n);
    for i in 0..n {
        let tenths = (i as u64).wrapping_mul(7919) % 71_001;
        let v = tenths as f64 / 10.0 - 100.0;
        payloads.push(Arc::from(
            format!(r#"{{"temperature":{{"value":{v},"unit":"F"}}}}"#).into_bytes(),
        ));
        ts.push(format!("{:0>15}:{:0>5}:{NODE}", BASE_MS + i as u64, 0));
    }
    Inputs { payloads, ts }
}

// ---------------------------------------------------------------------------------------------
// Variants

trait Variant {
    /// Processes message `i`; returns how many outputs it produced (0 or 1 here).
    fn run(&mut self, inputs: &Inputs, i: usize) -> Result<usize>;
    /// The output payloads of message `i` (for the cross-check before timing).
    fn outputs(&mut self, inputs: &Inputs, i: usize) -> Result<Vec<Vec<u8>>>;
}

struct Composed {
    graph: Graph,
}

impl Composed {
    fn input(inputs: &Inputs, i: usize) -> Input {
        Input {
            topic: TOPIC.to_owned(),
            payload: inputs.payloads[i].clone(),
            content_type: None,
            user_properties: vec![("__ts".to_owned(), inputs.ts[i].clone())],
        }
    }
}

impl Variant for Composed {
    fn run(&mut self, inputs: &Inputs, i: usize) -> Result<usize> {
        Ok(self.graph.push(None, Self::input(inputs, i))?.len())
    }

    fn outputs(&mut self, inputs: &Inputs, i: usize) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .graph
            .push(None, Self::input(inputs, i))?
            .into_iter()
            .map(|o| o.payload.to_vec())
            .collect())
    }
}

type MapFn = TypedFunc<(DataModel,), (Result<DataModel, OperatorError>,)>;
type FilterFn = TypedFunc<(DataModel,), (Result<bool, OperatorError>,)>;

enum Call {
    Map(MapFn),
    Filter(FilterFn),
}

struct HostRouted {
    store: Store<HostState>,
    calls: Vec<Call>,
    ticks: u64,
}

impl HostRouted {
    fn new(engine: &Engine, module: &Path, steps: &[Step], services: Arc<GraphServices>) -> Result<Self> {
        let component = Component::from_file(engine, module)
            .map_err(anyhow::Error::from)
            .context("compiling temperature.wasm")?;
        let mut linker = Linker::new(engine);
        host_state::add_to_linker(&mut linker, &component)?;
        let pre = linker.instantiate_pre(&component).map_err(anyhow::Error::from)?;
        let options = RunOptions::default();
        let mut store = Store::new(engine, HostState::new(services, options.max_memory, &options.wasi)?);
        store.limiter(|s| &mut s.limits);
        let ticks = (options.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let mut calls = Vec::new();
        for step in steps {
            // One instance per operation, as the composition has.
            let instance = pre.instantiate(&mut store).map_err(anyhow::Error::from)?;
            let iface = match step {
                Step::Map => "wasm-graph:processor/map@1.1.0",
                Step::Filter => "wasm-graph:processor/filter@1.1.0",
            };
            let ix = component
                .get_export_index(None, iface)
                .ok_or_else(|| anyhow!("temperature.wasm lacks {iface}"))?;
            let process = component
                .get_export_index(Some(&ix), "process")
                .ok_or_else(|| anyhow!("no process"))?;
            let init = component
                .get_export_index(Some(&ix), "init")
                .ok_or_else(|| anyhow!("no init"))?;
            let init: TypedFunc<(ModuleConfiguration,), (bool,)> =
                instance.get_typed_func(&mut store, init).map_err(anyhow::Error::from)?;
            let properties = match step {
                Step::Map => vec![],
                Step::Filter => vec![
                    ("temperature_lower_bound".to_owned(), "-40".to_owned()),
                    ("temperature_upper_bound".to_owned(), "3422".to_owned()),
                ],
            };
            let (ok,) = init
                .call(
                    &mut store,
                    (ModuleConfiguration {
                        properties,
                        module_schemas: vec![],
                    },),
                )
                .map_err(anyhow::Error::from)?;
            if !ok {
                bail!("init refused");
            }
            calls.push(match step {
                Step::Map => Call::Map(
                    instance
                        .get_typed_func(&mut store, process)
                        .map_err(anyhow::Error::from)?,
                ),
                Step::Filter => Call::Filter(
                    instance
                        .get_typed_func(&mut store, process)
                        .map_err(anyhow::Error::from)?,
                ),
            });
        }
        Ok(Self { store, calls, ticks })
    }

    /// The data model the source plumbing would have produced, built by the host directly.
    fn lower(&mut self, inputs: &Inputs, i: usize) -> Result<DataModel> {
        let payload = new_buffer(&mut self.store.data_mut().table, inputs.payloads[i].clone())?;
        let ms = BASE_MS + i as u64;
        Ok(DataModel::Message(Message {
            timestamp: Timestamp {
                timestamp: Timespec {
                    secs: ms / 1000,
                    nanos: (ms % 1000) as u32 * 1_000_000,
                },
                counter: 0,
                node_id: BufferOrString::String(NODE.to_owned()),
            },
            topic: BufferOrBytes::Bytes(TOPIC.as_bytes().to_vec()),
            content_type: None,
            payload: BufferOrBytes::Buffer(payload),
            properties: MessageProperties {
                user_properties: vec![(
                    BufferOrString::String("__ts".to_owned()),
                    BufferOrString::String(inputs.ts[i].clone()),
                )],
            },
            schema: None,
        }))
    }

    /// Runs one item through every call; `Some(payload)` when it comes out the end.
    fn route(&mut self, inputs: &Inputs, i: usize) -> Result<Option<Arc<[u8]>>> {
        let mut dm = self.lower(inputs, i)?;
        for call in &self.calls {
            self.store.set_epoch_deadline(self.ticks);
            match call {
                Call::Map(f) => {
                    let (r,) = f.call(&mut self.store, (dm,)).map_err(anyhow::Error::from)?;
                    dm = r.map_err(|e| anyhow!("map: {}", e.message))?;
                }
                Call::Filter(f) => {
                    let copy = dup(&mut self.store.data_mut().table, &dm)?;
                    let (r,) = f.call(&mut self.store, (copy,)).map_err(anyhow::Error::from)?;
                    if !r.map_err(|e| anyhow!("filter: {}", e.message))? {
                        release(&mut self.store.data_mut().table, dm)?;
                        return Ok(None);
                    }
                }
            }
        }
        let table = &mut self.store.data_mut().table;
        let DataModel::Message(m) = dm else {
            bail!("expected a message")
        };
        let payload = match m.payload {
            BufferOrBytes::Bytes(b) => Arc::from(b),
            BufferOrBytes::Buffer(b) => take_buffer(table, b)?,
        };
        if let BufferOrBytes::Buffer(b) = m.topic {
            take_buffer(table, b)?;
        }
        Ok(Some(payload))
    }
}

fn dup_bytes(table: &mut wasmtime::component::ResourceTable, b: &BufferOrBytes) -> Result<BufferOrBytes> {
    Ok(match b {
        BufferOrBytes::Bytes(v) => BufferOrBytes::Bytes(v.clone()),
        BufferOrBytes::Buffer(h) => {
            let bytes = table.get::<Payload>(h)?.0.clone();
            BufferOrBytes::Buffer(new_buffer(table, bytes)?)
        }
    })
}

fn dup_str(table: &mut wasmtime::component::ResourceTable, s: &BufferOrString) -> Result<BufferOrString> {
    Ok(match s {
        BufferOrString::String(v) => BufferOrString::String(v.clone()),
        BufferOrString::Buffer(h) => {
            let bytes = table.get::<Payload>(h)?.0.clone();
            BufferOrString::Buffer(new_buffer(table, bytes)?)
        }
    })
}

/// A copy of a message for an operator that consumes its argument (buffers get new handles
/// onto the same host bytes; no payload copy).
fn dup(table: &mut wasmtime::component::ResourceTable, dm: &DataModel) -> Result<DataModel> {
    let DataModel::Message(m) = dm else {
        bail!("the bench only routes messages")
    };
    let mut props = Vec::with_capacity(m.properties.user_properties.len());
    for (k, v) in &m.properties.user_properties {
        props.push((dup_str(table, k)?, dup_str(table, v)?));
    }
    Ok(DataModel::Message(Message {
        timestamp: Timestamp {
            timestamp: m.timestamp.timestamp,
            counter: m.timestamp.counter,
            node_id: dup_str(table, &m.timestamp.node_id)?,
        },
        topic: dup_bytes(table, &m.topic)?,
        content_type: m.content_type.as_ref().map(|c| dup_str(table, c)).transpose()?,
        payload: dup_bytes(table, &m.payload)?,
        properties: MessageProperties { user_properties: props },
        schema: None,
    }))
}

/// Drops the host side of every buffer handle a dropped item still holds.
fn release(table: &mut wasmtime::component::ResourceTable, dm: DataModel) -> Result<()> {
    let DataModel::Message(m) = dm else { return Ok(()) };
    let mut strs = vec![m.timestamp.node_id];
    strs.extend(m.content_type);
    for (k, v) in m.properties.user_properties {
        strs.push(k);
        strs.push(v);
    }
    for s in strs {
        if let BufferOrString::Buffer(h) = s {
            take_buffer(table, h)?;
        }
    }
    for b in [m.topic, m.payload] {
        if let BufferOrBytes::Buffer(h) = b {
            take_buffer(table, h)?;
        }
    }
    Ok(())
}

impl Variant for HostRouted {
    fn run(&mut self, inputs: &Inputs, i: usize) -> Result<usize> {
        Ok(self.route(inputs, i)?.is_some() as usize)
    }

    fn outputs(&mut self, inputs: &Inputs, i: usize) -> Result<Vec<Vec<u8>>> {
        Ok(self.route(inputs, i)?.into_iter().map(|p| p.to_vec()).collect())
    }
}

struct Native {
    steps: &'static [Step],
    bounds: temperature::Bounds,
}

impl Native {
    fn route(&self, payload: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut owned: Option<Vec<u8>> = None;
        for step in self.steps {
            let cur = owned.as_deref().unwrap_or(payload);
            match step {
                Step::Map => match temperature::map(cur).map_err(|e| anyhow!(e))? {
                    temperature::MapOutcome::Unchanged => {}
                    temperature::MapOutcome::Replaced(b) => owned = Some(b),
                },
                Step::Filter => {
                    if !temperature::filter(cur, &self.bounds) {
                        return Ok(None);
                    }
                }
            }
        }
        Ok(Some(owned.unwrap_or_else(|| payload.to_vec())))
    }
}

impl Variant for Native {
    fn run(&mut self, inputs: &Inputs, i: usize) -> Result<usize> {
        Ok(std::hint::black_box(self.route(&inputs.payloads[i])?).is_some() as usize)
    }

    fn outputs(&mut self, inputs: &Inputs, i: usize) -> Result<Vec<Vec<u8>>> {
        Ok(self.route(&inputs.payloads[i])?.into_iter().collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Measurement

#[derive(Default)]
struct Samples {
    /// Per-message latency, ns.
    latencies: Vec<u32>,
    /// Total time and messages of each round.
    rounds: Vec<(Duration, usize)>,
    outputs: usize,
}

#[inline(never)] // a named frame for profilers (callgrind --toggle-collect)
fn measure(v: &mut dyn Variant, inputs: &Inputs, range: std::ops::Range<usize>, samples: &mut Samples) -> Result<()> {
    let n = range.len();
    let mut outputs = 0;
    let start = Instant::now();
    let mut prev = start;
    for i in range {
        outputs += v.run(inputs, i)?;
        let now = Instant::now();
        samples
            .latencies
            .push((now - prev).as_nanos().min(u32::MAX as u128) as u32);
        prev = now;
    }
    samples.rounds.push((prev - start, n));
    samples.outputs += outputs;
    Ok(())
}

struct Row {
    msgs_per_s: f64,
    ns_per_msg: f64,
    p50: f64,
    p99: f64,
    pass: f64,
}

fn summarize(s: &mut Samples) -> Row {
    if s.rounds.is_empty() {
        return Row {
            msgs_per_s: f64::NAN,
            ns_per_msg: f64::NAN,
            p50: f64::NAN,
            p99: f64::NAN,
            pass: f64::NAN,
        };
    }
    // Throughput: the median over chunks (the machine is noisy; the median ignores bursts).
    let mut per_msg: Vec<f64> = s.rounds.iter().map(|(d, n)| d.as_nanos() as f64 / *n as f64).collect();
    per_msg.sort_by(f64::total_cmp);
    let ns = per_msg[per_msg.len() / 2];
    s.latencies.sort_unstable();
    let pct = |p: f64| s.latencies[((s.latencies.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    let total: usize = s.rounds.iter().map(|(_, n)| n).sum();
    Row {
        msgs_per_s: 1e9 / ns,
        ns_per_msg: ns,
        p50: pct(0.50),
        p99: pct(0.99),
        pass: s.outputs as f64 / total as f64,
    }
}

fn clock_cost() -> f64 {
    let n = 1_000_000;
    let start = Instant::now();
    let mut last = start;
    for _ in 0..n {
        last = std::hint::black_box(Instant::now());
    }
    (last - start).as_nanos() as f64 / n as f64
}

fn arg(name: &str, env: &str, default: usize) -> Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(p) = args.iter().position(|a| a == name) {
        let v = args.get(p + 1).ok_or_else(|| anyhow!("{name} needs a value"))?;
        return v.parse().with_context(|| format!("{name} {v}"));
    }
    match std::env::var(env) {
        Ok(v) => v.parse().with_context(|| format!("{env}={v}")),
        Err(_) => Ok(default),
    }
}

/// `--only VARIANT` / `--workload NAME` (for profiling one of them under callgrind or perf).
fn arg_str(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|p| args.get(p + 1).cloned())
}

fn fmt_int(v: f64) -> String {
    let s = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The engine of `wasmflow_host::engine::new_engine` with on-demand instance allocation.
fn on_demand_engine() -> Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_implements(true);
    config.epoch_interruption(true);
    Engine::new(&config).map_err(anyhow::Error::from)
}

fn main() -> Result<()> {
    let n = arg("--messages", "WASMFLOW_BENCH_MESSAGES", 200_000)?;
    let rounds = arg("--rounds", "WASMFLOW_BENCH_ROUNDS", 3)?.max(1);
    let chunk = arg("--chunk", "WASMFLOW_BENCH_CHUNK", 10_000)?.max(1);
    let module = default_modules_dir().join("temperature.wasm");
    if !module.is_file() {
        bail!("{} is missing: run scripts/build-components.sh", module.display());
    }
    let workloads = [
        Workload {
            name: "graph-simple",
            graph: repo().join("compose/tests/azure-compat/graph-simple.yaml"),
            steps: &[Step::Map],
        },
        Workload {
            name: "bench-chain",
            graph: repo().join("graphs/bench-chain.yaml"),
            steps: &[Step::Map, Step::Filter, Step::Map],
        },
    ];

    let dir = tempfile::tempdir()?;
    // `--on-demand`: for valgrind, which cannot reserve the pooling allocator's address space.
    // Same engine flags, on-demand instance allocation, graphs started with `Graph::new`
    // directly (what `Runtime::start` does, minus the compiled-code cache).
    let on_demand = std::env::args().any(|a| a == "--on-demand");
    let runtime = if on_demand {
        None
    } else {
        Some(Runtime::new(&RuntimeConfig {
            data_dir: dir.path().into(),
            ephemeral_state: true,
            cache_dir: None,
            limits: Default::default(),
        })?)
    };
    let (engine, metrics, state) = match &runtime {
        Some(rt) => (rt.engine().clone(), rt.metrics.clone(), rt.state.clone()),
        None => (on_demand_engine()?, Metrics::new(), StateStore::in_memory()?),
    };
    let compose = ComposeOptions {
        default_modules_dir: Some(default_modules_dir()),
        ..Default::default()
    };
    let inputs = inputs(n);
    let clock = clock_cost();
    eprintln!("inprocess: {n} messages × {rounds} rounds per variant; Instant::now() ≈ {clock:.0} ns");

    let only = arg_str("--only");
    let only_workload = arg_str("--workload");
    let mut table = Vec::new();
    for w in &workloads {
        if only_workload.as_deref().is_some_and(|o| o != w.name) {
            continue;
        }
        let loaded = load_graph(&w.graph, &compose).map_err(|e| anyhow!("{}: {e:#}", w.graph.display()))?;
        let graph = match &runtime {
            Some(rt) => rt.start(&loaded, RunOptions::default())?.0,
            None => {
                let component = Component::new(&engine, &loaded.bytes).map_err(anyhow::Error::from)?;
                let services = Arc::new(GraphServices::for_manifest(
                    &loaded.manifest,
                    metrics.clone(),
                    state.clone(),
                ));
                Graph::new(
                    &engine,
                    &component,
                    loaded.manifest.clone(),
                    services,
                    RunOptions::default(),
                )?
            }
        };
        let name: Arc<str> = format!("host-routed {}", w.name).into();
        let services = Arc::new(GraphServices {
            graph: name.clone(),
            operations: w
                .steps
                .iter()
                .enumerate()
                .map(|(i, _)| OpIdentity {
                    graph: name.clone(),
                    operation: format!("op{i}").into(),
                })
                .collect(),
            metrics: metrics.clone(),
            state: state.clone(),
            schemas: vec![],
            nn: None,
        });
        let mut variants: Vec<(&str, Box<dyn Variant>)> = vec![
            ("composed", Box::new(Composed { graph })),
            (
                "host-routed",
                Box::new(HostRouted::new(&engine, &module, w.steps, services)?),
            ),
            (
                "native",
                Box::new(Native {
                    steps: w.steps,
                    bounds: temperature::Bounds::DEFAULT,
                }),
            ),
        ];

        // Cross-check: every variant produces the same payloads (and warms up).
        let check = inputs.payloads.len().min(2_000);
        let mut reference: Option<Vec<Vec<Vec<u8>>>> = None;
        for (vname, v) in &mut variants {
            let outs: Vec<Vec<Vec<u8>>> = (0..check).map(|i| v.outputs(&inputs, i)).collect::<Result<_>>()?;
            match &reference {
                None => reference = Some(outs),
                Some(r) => {
                    if let Some(i) = (0..check).find(|&i| r[i] != outs[i]) {
                        bail!(
                            "{}: {vname} disagrees with composed on message {i}: {:?} vs {:?}",
                            w.name,
                            r[i].iter()
                                .map(|p| String::from_utf8_lossy(p).into_owned())
                                .collect::<Vec<_>>(),
                            outs[i]
                                .iter()
                                .map(|p| String::from_utf8_lossy(p).into_owned())
                                .collect::<Vec<_>>()
                        );
                    }
                }
            }
        }

        let mut samples: Vec<Samples> = variants.iter().map(|_| Samples::default()).collect();
        let chunks: Vec<std::ops::Range<usize>> = (0..n).step_by(chunk).map(|s| s..(s + chunk).min(n)).collect();
        for r in 0..rounds {
            // Variants take turns every `chunk` messages, so a burst of load from elsewhere on
            // the machine hits all of them alike; the order rotates so none always goes first.
            for (c, range) in chunks.iter().enumerate() {
                for k in 0..variants.len() {
                    let j = (k + r + c) % variants.len();
                    if only.as_deref().is_some_and(|o| o != variants[j].0) {
                        continue;
                    }
                    // Every round feeds the same inputs (same `__ts`): harmless here, the graphs
                    // have no windows, so the progress frontier decides nothing.
                    measure(variants[j].1.as_mut(), &inputs, range.clone(), &mut samples[j])?;
                }
            }
            eprintln!("  {}: round {}/{rounds} done", w.name, r + 1);
        }
        let rows: Vec<Row> = samples.iter_mut().map(summarize).collect();
        table.push((w.name, variants.iter().map(|(n, _)| *n).collect::<Vec<_>>(), rows));
    }

    println!();
    println!("In-process, {n} messages × {rounds} rounds per variant, variants interleaved every {chunk} messages (throughput: median over those chunks; latency: every message).");
    println!("Latency = time between consecutive per-message `Instant::now()` readings (≈{clock:.0} ns clock cost included).");
    println!();
    println!(
        "| workload | variant | msgs/s | ns/msg | p50 µs | p99 µs | passed | throughput vs native | vs host-routed |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (wname, names, rows) in &table {
        let native = rows[2].msgs_per_s;
        let host = rows[1].msgs_per_s;
        for (vname, r) in names.iter().zip(rows) {
            println!(
                "| {wname} | {vname} | {} | {:.0} | {:.2} | {:.2} | {:.1}% | {:.2}× | {:.2}× |",
                fmt_int(r.msgs_per_s),
                r.ns_per_msg,
                r.p50,
                r.p99,
                r.pass * 100.0,
                r.msgs_per_s / native,
                r.msgs_per_s / host
            );
        }
    }
    println!();
    for (wname, _, rows) in &table {
        let c = rows[0].msgs_per_s;
        println!(
            "- {wname}: composed/native = {:.2}× (target ≥ 0.33×), composed/host-routed = {:.2}× (target ≥ 1.00×)",
            c / rows[2].msgs_per_s,
            c / rows[1].msgs_per_s
        );
    }
    Ok(())
}
