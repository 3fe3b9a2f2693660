//! In-process speed, side by side in one run (issue 7; BENCHMARKS.md says what every column means).
//!
//! Sections (`--section graphs|payload|scaling`, all by default):
//! * **graphs** — three workloads (`graph-simple`; `chain5`, a 5-operator map/filter chain;
//!   `complex`, `graphs/temperature-humidity.yaml`: windows, branch, accumulates, concatenate,
//!   state store) run five ways: **composed** (`Graph::push`, as `wasmflow run` runs it), **composed,
//!   plumbing calls** (the same with `RunOptions::native_plumbing = false`: source and sink are
//!   component calls), **composed, router in wasm** (composed with its own router,
//!   `--router composed`: operations call each other through it, component to component),
//!   **host-routed** (every operation its own instance of its module, the
//!   bench moves values between them: `support::routed`) and **native** (the sample crates' own
//!   Rust, the rlibs the components are built from, in one loop).
//! * **payload** — 100 B … 150 KB payloads through a map that reads its payload and one that
//!   passes it on unread (`faulty` with `payload = read | ignore`): composed, host-routed, native.
//! * **scaling** — graph-simple with 1 and 2 worker threads, one graph per thread.
//!
//! Before timing, every variant runs the first messages and their output payloads must be
//! byte-identical (the bench stops otherwise). Variants then take turns every `--chunk`
//! messages so a burst of load elsewhere hits all of them alike. Throughput = median over chunks;
//! latency = time between consecutive per-message `Instant::now()` readings.
//!
//! `cargo bench -p wasmflow-cli --bench inprocess [-- --quick] [--messages N --rounds R --chunk C]
//! [--section S] [--workload W] [--only VARIANT] [--on-demand [--perfmap]] [--svg FILE]`.
//! `--on-demand` uses on-demand instance allocation (valgrind cannot reserve the pooling
//! allocator's address space; graphs section only); `--perfmap` adds wasmtime's perf map
//! (`/tmp/perf-PID.map`), which names the compiled wasm functions for a profile. Tables go to stdout as Markdown, progress to stderr.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use wasmtime::component::{Component, TypedFunc};
use wasmtime::Engine;

use support::routed::{self, Chain, MapFn, Ops, Step};
use support::{arg, arg_str, clock_cost, fmt_int, quick, ratio, repo, selected, Row, Variant};
use wasmflow_compose::{ComposeOptions, Routing};
use wasmflow_runtime::bindings::{BufferOrString, DataModel, HybridLogicalClock, OperatorError, Timespec, Timestamp};
use wasmflow_runtime::graph::{Graph, RunOptions};
use wasmflow_runtime::identity::OpIdentity;
use wasmflow_runtime::services::metrics::Metrics;
use wasmflow_runtime::services::state_store::StateStore;
use wasmflow_runtime::services::GraphServices;
use wasmflow_runtime::{load_graph, LoadedGraph, Runtime, RuntimeConfig};
use wasmflow_transport::{Destination, Input};
use wasmflow_wire::Hlc;

const TOPIC: &str = "sensors/bench";
const NODE: &str = "bench";
/// A multiple of the 10 s window, so windows hold whole runs of messages.
const BASE_MS: u64 = 1_700_000_000_000;

// ---------------------------------------------------------------------------------------------
// Inputs

struct Inputs {
    topic: Arc<[u8]>,
    /// Indexed modulo their number.
    payloads: Vec<Arc<[u8]>>,
    ts: Vec<String>,
    ms: Vec<u64>,
}

impl Inputs {
    fn new(payloads: Vec<Arc<[u8]>>, total: usize, step_ms: u64) -> Self {
        let ms: Vec<u64> = (0..total as u64).map(|i| BASE_MS + i * step_ms).collect();
        let ts = ms.iter().map(|m| format!("{m:0>15}:{:0>5}:{NODE}", 0)).collect();
        Self {
            topic: Arc::from(TOPIC.as_bytes()),
            payloads,
            ts,
            ms,
        }
    }

    fn payload(&self, i: usize) -> &Arc<[u8]> {
        &self.payloads[i % self.payloads.len()]
    }

    fn hlc(&self, i: usize) -> Hlc {
        Hlc {
            secs: self.ms[i] / 1000,
            nanos: (self.ms[i] % 1000) as u32 * 1_000_000,
            counter: 0,
            node_id: NODE.to_owned(),
        }
    }

    fn input(&self, i: usize) -> Input {
        Input {
            topic: TOPIC.to_owned(),
            payload: self.payload(i).clone(),
            content_type: None,
            user_properties: vec![("__ts".to_owned(), self.ts[i].clone())],
        }
    }
}

/// `{"temperature":{"value":N,"unit":"F"}}`, N from -100.0 to 7000.0 °F in a scattered order:
/// about 88 % pass the default filter (-40 °C < v < 3422 °C).
fn temperature(i: usize) -> String {
    let tenths = (i as u64).wrapping_mul(7919) % 71_001;
    format!(
        r#"{{"temperature":{{"value":{},"unit":"F"}}}}"#,
        tenths as f64 / 10.0 - 100.0
    )
}

/// Two temperature readings, then one `{"humidity":{"value":H}}` (H in 0.0..100.0).
fn mixed(i: usize) -> String {
    if i % 3 == 2 {
        let tenths = (i as u64).wrapping_mul(104_729) % 1_001;
        format!(r#"{{"humidity":{{"value":{}}}}}"#, tenths as f64 / 10.0)
    } else {
        temperature(i)
    }
}

fn pool(n: usize, f: impl Fn(usize) -> String) -> Vec<Arc<[u8]>> {
    (0..n).map(|i| Arc::from(f(i).into_bytes())).collect()
}

/// Image-like bytes (a PNG signature, then pseudo-random): not JSON, so a reader copies them
/// and gives up at the first byte; only the copy costs.
fn blob(size: usize, seed: u64) -> Arc<[u8]> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<u8> = b"\x89PNG\r\n\x1a\n".iter().copied().take(size).collect();
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    Arc::from(v)
}

// ---------------------------------------------------------------------------------------------
// Environment: one runtime (or, for valgrind, an on-demand engine) for every graph

struct Env {
    runtime: Option<Runtime>,
    engine: Engine,
    metrics: Metrics,
    state: StateStore,
    _dir: tempfile::TempDir,
}

impl Env {
    fn new(on_demand: bool) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        if on_demand {
            let mut config = wasmtime::Config::new();
            config.wasm_component_model(true);
            config.wasm_component_model_implements(true);
            config.epoch_interruption(true);
            if std::env::args().any(|a| a == "--perfmap") {
                config.profiler(wasmtime::ProfilingStrategy::PerfMap);
            }
            return Ok(Self {
                runtime: None,
                engine: Engine::new(&config).map_err(anyhow::Error::from)?,
                metrics: Metrics::new(),
                state: StateStore::in_memory()?,
                _dir: dir,
            });
        }
        let rt = Runtime::new(&RuntimeConfig {
            data_dir: dir.path().into(),
            ephemeral_state: true,
            cache_dir: None,
            limits: Default::default(),
        })?;
        Ok(Self {
            engine: rt.engine().clone(),
            metrics: rt.metrics.clone(),
            state: rt.state.clone(),
            runtime: Some(rt),
            _dir: dir,
        })
    }

    fn load(&self, path: &std::path::Path) -> Result<LoadedGraph> {
        load_graph(path, &support::compose_options()).map_err(|e| anyhow!("{}: {e:#}", path.display()))
    }

    /// The graph composed with its own router (`--router composed`).
    fn load_with_router(&self, path: &std::path::Path) -> Result<LoadedGraph> {
        let options = ComposeOptions {
            routing: Routing::Composed,
            ..support::compose_options()
        };
        load_graph(path, &options).map_err(|e| anyhow!("{}: {e:#}", path.display()))
    }

    /// Starts a graph as `wasmflow run` does (`Runtime::start`), or, on demand, with
    /// `Graph::new` directly (the same minus the compiled-code cache).
    fn start(&self, loaded: &LoadedGraph, options: RunOptions) -> Result<Graph> {
        match &self.runtime {
            Some(rt) => Ok(rt.start(loaded, options)?.0),
            None => {
                let component = Component::new(&self.engine, &loaded.bytes).map_err(anyhow::Error::from)?;
                let services = Arc::new(GraphServices::for_manifest(
                    &loaded.manifest,
                    self.metrics.clone(),
                    self.state.clone(),
                ));
                Ok(Graph::new(
                    &self.engine,
                    &component,
                    loaded.manifest.clone(),
                    services,
                    options,
                )?)
            }
        }
    }

    /// A store for host-routed instances, with `ops` operation identities for logs and metrics.
    fn ops(&self, name: &str, ops: usize) -> Result<Ops> {
        let graph: Arc<str> = format!("host-routed {name}").into();
        let services = Arc::new(GraphServices {
            graph: graph.clone(),
            operations: (0..ops)
                .map(|i| OpIdentity {
                    graph: graph.clone(),
                    operation: format!("op{i}").into(),
                })
                .collect(),
            metrics: self.metrics.clone(),
            state: self.state.clone(),
            schemas: Default::default(),
            nn: None,
        });
        Ops::new(&self.engine, services)
    }
}

// ---------------------------------------------------------------------------------------------
// Variants

/// `Graph::push`, one message at a time; outputs are what reached a sink.
struct Composed {
    graph: Graph,
    inputs: Arc<Inputs>,
}

impl Variant for Composed {
    fn run(&mut self, i: usize) -> Result<usize> {
        Ok(self.graph.push(None, self.inputs.input(i))?.len())
    }

    fn outputs(&mut self, i: usize) -> Result<Vec<Vec<u8>>> {
        let out = self.graph.push(None, self.inputs.input(i))?;
        if let Some(d) = out
            .iter()
            .find(|o| matches!(o.destination, Destination::DeadLetter { .. }))
        {
            bail!("composed dead-lettered message {i}: {:?}", d.destination);
        }
        Ok(out.into_iter().map(|o| o.payload.to_vec()).collect())
    }
}

/// A host-routed chain of maps and filters.
struct RoutedChain {
    chain: Chain,
    inputs: Arc<Inputs>,
}

impl RoutedChain {
    fn route(&mut self, i: usize) -> Result<Option<Arc<[u8]>>> {
        let inp = &self.inputs;
        let dm = self
            .chain
            .ops
            .message(&inp.topic, inp.payload(i), inp.ms[i], NODE, &inp.ts[i])?;
        self.chain.route(dm)
    }
}

impl Variant for RoutedChain {
    fn run(&mut self, i: usize) -> Result<usize> {
        Ok(self.route(i)?.is_some() as usize)
    }

    fn outputs(&mut self, i: usize) -> Result<Vec<Vec<u8>>> {
        Ok(self.route(i)?.into_iter().map(|p| p.to_vec()).collect())
    }
}

/// `temperature::map` / `temperature::filter` on the payload bytes, in one loop.
struct NativeChain {
    filters: Vec<bool>,
    bounds: temperature::Bounds,
    inputs: Arc<Inputs>,
}

impl NativeChain {
    fn route(&self, i: usize) -> Result<Option<Vec<u8>>> {
        let payload = self.inputs.payload(i);
        let mut owned: Option<Vec<u8>> = None;
        for &filter in &self.filters {
            let cur = owned.as_deref().unwrap_or(payload);
            if filter {
                if !temperature::filter(cur, &self.bounds) {
                    return Ok(None);
                }
            } else {
                match temperature::map(cur).map_err(|e| anyhow!(e))? {
                    temperature::MapOutcome::Unchanged => {}
                    temperature::MapOutcome::Replaced(b) => owned = Some(b),
                }
            }
        }
        Ok(Some(owned.unwrap_or_else(|| payload.to_vec())))
    }
}

impl Variant for NativeChain {
    fn run(&mut self, i: usize) -> Result<usize> {
        Ok(std::hint::black_box(self.route(i)?).is_some() as usize)
    }

    fn outputs(&mut self, i: usize) -> Result<Vec<Vec<u8>>> {
        Ok(self.route(i)?.into_iter().collect())
    }
}

// ---------------------------------------------------------------------------------------------
// The complex graph's shape, for host-routed and native: source → delay (10 s windows) → branch
// (temperature?) → [map → filter → temperature accumulate | humidity accumulate] → concatenate →
// collection accumulate → enrichment map → sink. Windows close as `Graph` closes them: when the
// frontier (the latest source event time) passes the window's time.

type Key = (u64, u32, u64);

#[derive(Clone, Copy)]
enum Acc {
    Temperature,
    Humidity,
    Collection,
}

trait WindowOps {
    type Item;
    /// Message `i` and its source event time.
    fn ingest(&mut self, i: usize) -> Result<(Self::Item, Hlc)>;
    /// The delay: moves the item to the end of its window, returns that time.
    fn delay(&mut self, item: &mut Self::Item, ts: &Hlc) -> Result<Hlc>;
    fn branch(&mut self, item: &Self::Item, ts: &Hlc) -> Result<bool>;
    fn map(&mut self, item: Self::Item) -> Result<Self::Item>;
    fn filter(&mut self, item: &Self::Item) -> Result<bool>;
    fn discard(&mut self, item: Self::Item) -> Result<()>;
    /// `None` when the accumulate rejects the window (dropped, as `Graph` drops it).
    fn accumulate(&mut self, acc: Acc, ts: &Hlc, items: Vec<Self::Item>) -> Result<Option<Self::Item>>;
    fn enrich(&mut self, item: Self::Item) -> Result<Arc<[u8]>>;
}

type Windows<T> = BTreeMap<Key, (Hlc, Vec<T>)>;

struct Windowed<O: WindowOps> {
    ops: O,
    temperature: Windows<O::Item>,
    humidity: Windows<O::Item>,
    frontier: Option<Key>,
}

impl<O: WindowOps> Windowed<O> {
    fn new(ops: O) -> Self {
        Self {
            ops,
            temperature: BTreeMap::new(),
            humidity: BTreeMap::new(),
            frontier: None,
        }
    }

    fn push(&mut self, i: usize) -> Result<Vec<Arc<[u8]>>> {
        let (mut item, src) = self.ops.ingest(i)?;
        let ts = self.ops.delay(&mut item, &src)?;
        let target = if self.ops.branch(&item, &ts)? {
            let item = self.ops.map(item)?;
            if self.ops.filter(&item)? {
                Some((&mut self.temperature, item))
            } else {
                self.ops.discard(item)?;
                None
            }
        } else {
            Some((&mut self.humidity, item))
        };
        if let Some((windows, item)) = target {
            windows
                .entry(ts.order_key())
                .or_insert_with(|| (ts.clone(), Vec::new()))
                .1
                .push(item);
        }
        let t = src.order_key();
        if self.frontier.is_none_or(|f| t > f) {
            self.frontier = Some(t);
        }
        let mut out = Vec::new();
        let Some(f) = self.frontier else { return Ok(out) };
        loop {
            let next = [self.temperature.keys().next(), self.humidity.keys().next()]
                .into_iter()
                .flatten()
                .min()
                .copied();
            let Some(key) = next.filter(|k| *k < f) else { break };
            let mut merged = Vec::new();
            for (acc, windows) in [
                (Acc::Temperature, &mut self.temperature),
                (Acc::Humidity, &mut self.humidity),
            ] {
                if let Some((ts, items)) = windows.remove(&key) {
                    if let Some(r) = self.ops.accumulate(acc, &ts, items)? {
                        merged.push((ts, r));
                    }
                }
            }
            let Some(ts) = merged.first().map(|(ts, _)| ts.clone()) else {
                continue;
            };
            let items = merged.into_iter().map(|(_, r)| r).collect();
            if let Some(c) = self.ops.accumulate(Acc::Collection, &ts, items)? {
                out.push(self.ops.enrich(c)?);
            }
        }
        Ok(out)
    }
}

impl<O: WindowOps> Variant for Windowed<O> {
    fn run(&mut self, i: usize) -> Result<usize> {
        Ok(self.push(i)?.len())
    }

    fn outputs(&mut self, i: usize) -> Result<Vec<Vec<u8>>> {
        Ok(self.push(i)?.into_iter().map(|p| p.to_vec()).collect())
    }
}

/// The sample crates' own functions.
struct NativeOps {
    inputs: Arc<Inputs>,
    bounds: temperature::Bounds,
    store: MemStore,
}

impl WindowOps for NativeOps {
    type Item = Arc<[u8]>;

    fn ingest(&mut self, i: usize) -> Result<(Self::Item, Hlc)> {
        Ok((self.inputs.payload(i).clone(), self.inputs.hlc(i)))
    }

    fn delay(&mut self, _item: &mut Self::Item, ts: &Hlc) -> Result<Hlc> {
        let t = wasmflow_guest::hlc::Hlc {
            secs: ts.secs,
            nanos: ts.nanos,
            counter: ts.counter,
            node_id: ts.node_id.clone(),
        };
        let d = window::delay(&t).map_err(|e| anyhow!(e))?;
        Ok(Hlc {
            secs: d.secs,
            nanos: d.nanos,
            counter: d.counter,
            node_id: d.node_id,
        })
    }

    fn branch(&mut self, item: &Self::Item, _ts: &Hlc) -> Result<bool> {
        Ok(temperature::is_temperature(item))
    }

    fn map(&mut self, item: Self::Item) -> Result<Self::Item> {
        Ok(match temperature::map(&item).map_err(|e| anyhow!(e))? {
            temperature::MapOutcome::Unchanged => item,
            temperature::MapOutcome::Replaced(b) => Arc::from(b),
        })
    }

    fn filter(&mut self, item: &Self::Item) -> Result<bool> {
        Ok(temperature::filter(item, &self.bounds))
    }

    fn discard(&mut self, _item: Self::Item) -> Result<()> {
        Ok(())
    }

    fn accumulate(&mut self, acc: Acc, _ts: &Hlc, items: Vec<Self::Item>) -> Result<Option<Self::Item>> {
        let views: Vec<Option<&[u8]>> = items.iter().map(|p| Some(&p[..])).collect();
        let folded = match acc {
            Acc::Temperature => temperature::accumulate(None, &views),
            Acc::Humidity => humidity::accumulate(None, &views),
            Acc::Collection => collection::accumulate(None, &views),
        };
        Ok(folded.ok().map(|f| Arc::from(f.payload)))
    }

    fn enrich(&mut self, item: Self::Item) -> Result<Arc<[u8]>> {
        let e = enrichment::enrich(&item, &mut self.store, "native").map_err(|e| anyhow!(e))?;
        Ok(Arc::from(e.payload))
    }
}

/// The state store semantics enrichment relies on, in a `HashMap` (native variant only).
#[derive(Default)]
struct MemStore(std::collections::HashMap<String, Vec<u8>>);

impl enrichment::StateStore for MemStore {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.get(key).cloned())
    }

    fn set(
        &mut self,
        key: &str,
        value: &[u8],
        _fencing_token: Option<&wasmflow_guest::hlc::Hlc>,
        condition: enrichment::SetCondition,
        _expires_millis: Option<u64>,
    ) -> Result<enrichment::SetResponse, String> {
        use enrichment::SetCondition::*;
        let applied = match (condition, self.0.get(key)) {
            (Unconditional, _) | (_, None) => true,
            (OnlyIfEqualOrDoesNotExist, Some(v)) => v == value,
            (OnlyIfDoesNotExist, Some(_)) => false,
        };
        if applied {
            self.0.insert(key.to_owned(), value.to_vec());
        }
        Ok(enrichment::SetResponse {
            applied,
            version: Some(wasmflow_guest::hlc::Hlc::default()),
        })
    }

    fn vdel(&mut self, key: &str, value: &[u8], _: Option<&wasmflow_guest::hlc::Hlc>) -> Result<i64, String> {
        Ok(match self.0.get(key) {
            None => 0,
            Some(v) if v == value => {
                self.0.remove(key);
                1
            }
            Some(_) => -1,
        })
    }
}

type DelayFn = TypedFunc<(DataModel, HybridLogicalClock), (Result<HybridLogicalClock, OperatorError>,)>;
type BranchFn = TypedFunc<(HybridLogicalClock, DataModel), (Result<bool, OperatorError>,)>;
type AccumulateFn = TypedFunc<(DataModel, Vec<DataModel>), (Result<DataModel, OperatorError>,)>;

/// Every operation of the complex graph as its own instance of its module.
struct RoutedOps {
    ops: Ops,
    inputs: Arc<Inputs>,
    delay: DelayFn,
    branch: BranchFn,
    map: MapFn,
    filter: routed::FilterFn,
    temperature: AccumulateFn,
    humidity: AccumulateFn,
    collection: AccumulateFn,
    enrichment: MapFn,
}

impl RoutedOps {
    fn new(mut ops: Ops, inputs: Arc<Inputs>) -> Result<Self> {
        let m = support::module;
        let (window, temp, hum, coll, enr) = (
            m("window")?,
            m("temperature")?,
            m("humidity")?,
            m("collection")?,
            m("enrichment")?,
        );
        let bounds = [("temperature_lower_bound", "-40"), ("temperature_upper_bound", "3422")];
        const P: &str = "wasm-graph:processor/";
        Ok(Self {
            delay: ops.operation(&window, &format!("{P}delay@1.1.0"), &[])?,
            branch: ops.operation(&temp, &format!("{P}branch@1.1.0"), &[])?,
            map: ops.operation(&temp, &format!("{P}map@1.1.0"), &[])?,
            filter: ops.operation(&temp, &format!("{P}filter@1.1.0"), &bounds)?,
            temperature: ops.operation(&temp, &format!("{P}accumulate@1.1.0"), &[])?,
            humidity: ops.operation(&hum, &format!("{P}accumulate@1.1.0"), &[])?,
            collection: ops.operation(&coll, &format!("{P}accumulate@1.1.0"), &[])?,
            enrichment: ops.operation(&enr, &format!("{P}map@1.1.0"), &[])?,
            ops,
            inputs,
        })
    }
}

fn timestamp(ts: &Hlc) -> Timestamp {
    Timestamp {
        timestamp: Timespec {
            secs: ts.secs,
            nanos: ts.nanos,
        },
        counter: ts.counter,
        node_id: BufferOrString::String(ts.node_id.clone()),
    }
}

impl WindowOps for RoutedOps {
    type Item = DataModel;

    fn ingest(&mut self, i: usize) -> Result<(Self::Item, Hlc)> {
        let inp = &self.inputs;
        let dm = self
            .ops
            .message(&inp.topic, inp.payload(i), inp.ms[i], NODE, &inp.ts[i])?;
        Ok((dm, inp.hlc(i)))
    }

    fn delay(&mut self, item: &mut Self::Item, ts: &Hlc) -> Result<Hlc> {
        let copy = self.ops.dup(item)?;
        let (r,) = self.ops.call(&self.delay, (copy, ts.into()))?;
        let new = Hlc::from(&r.map_err(|e| anyhow!("delay: {}", e.message))?);
        if let DataModel::Message(m) = item {
            m.timestamp = timestamp(&new);
        }
        Ok(new)
    }

    fn branch(&mut self, item: &Self::Item, ts: &Hlc) -> Result<bool> {
        let copy = self.ops.dup(item)?;
        let (r,) = self.ops.call(&self.branch, (ts.into(), copy))?;
        r.map_err(|e| anyhow!("branch: {}", e.message))
    }

    fn map(&mut self, item: Self::Item) -> Result<Self::Item> {
        let (r,) = self.ops.call(&self.map, (item,))?;
        r.map_err(|e| anyhow!("map: {}", e.message))
    }

    fn filter(&mut self, item: &Self::Item) -> Result<bool> {
        let copy = self.ops.dup(item)?;
        let (r,) = self.ops.call(&self.filter, (copy,))?;
        r.map_err(|e| anyhow!("filter: {}", e.message))
    }

    fn discard(&mut self, item: Self::Item) -> Result<()> {
        self.ops.release(item)
    }

    fn accumulate(&mut self, acc: Acc, ts: &Hlc, items: Vec<Self::Item>) -> Result<Option<Self::Item>> {
        let empty: Arc<[u8]> = Arc::from(&[][..]);
        // The empty message an accumulate starts from (`Item::empty_message`).
        let staged = match self.ops.message(&empty, &empty, 0, NODE, "")? {
            DataModel::Message(mut m) => {
                m.timestamp = timestamp(ts);
                m.properties.user_properties.clear();
                DataModel::Message(m)
            }
            other => other,
        };
        let f = match acc {
            Acc::Temperature => &self.temperature,
            Acc::Humidity => &self.humidity,
            Acc::Collection => &self.collection,
        };
        let (r,) = self.ops.call(f, (staged, items))?;
        Ok(r.ok())
    }

    fn enrich(&mut self, item: Self::Item) -> Result<Arc<[u8]>> {
        let (r,) = self.ops.call(&self.enrichment, (item,))?;
        let dm = r.map_err(|e| anyhow!("enrichment: {}", e.message))?;
        self.ops.take_payload(dm)
    }
}

// ---------------------------------------------------------------------------------------------
// Tables

struct Table {
    title: String,
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn print(&self) {
        println!("{}", self.title);
        println!();
        println!("| {} |", self.header.join(" | "));
        let align: Vec<&str> = self
            .header
            .iter()
            .enumerate()
            .map(|(i, _)| if i < 2 { "---" } else { "---:" })
            .collect();
        println!("|{}|", align.join("|"));
        for r in &self.rows {
            println!("| {} |", r.join(" | "));
        }
        println!();
    }
}

fn row_cells(r: &Row) -> Vec<String> {
    vec![
        fmt_int(r.msgs_per_s),
        format!("{:.0}", r.ns_per_msg),
        format!("{:.2}", r.p50_us),
        format!("{:.2}", r.p99_us),
    ]
}

// ---------------------------------------------------------------------------------------------
// Section: graphs

struct Params {
    n: usize,
    rounds: usize,
    chunk: usize,
    check: usize,
}

/// (workload, variant, msgs/s) for the chart.
type Bars = Vec<(String, String, f64)>;

fn graphs(env: &Env, p: &Params, bars: &mut Bars) -> Result<Table> {
    let total = p.check + p.n * p.rounds;
    const CHAIN5: [bool; 5] = [false, true, false, true, false];
    struct W {
        name: &'static str,
        graph: std::path::PathBuf,
        filters: &'static [bool],
    }
    let workloads = [
        W {
            name: "graph-simple",
            graph: repo().join("compose/tests/azure-compat/graph-simple.yaml"),
            filters: &[false],
        },
        W {
            name: "chain5",
            graph: repo().join("graphs/bench-chain5.yaml"),
            filters: &CHAIN5,
        },
        W {
            name: "complex",
            graph: repo().join("graphs/temperature-humidity.yaml"),
            filters: &[],
        },
    ];
    let mut table = Table {
        title: format!(
            "In-process throughput and latency: {} messages × {} rounds per variant, interleaved every {} messages.",
            p.n, p.rounds, p.chunk
        ),
        header: vec![
            "workload",
            "variant",
            "msgs/s",
            "ns/msg",
            "p50 µs",
            "p99 µs",
            "out/msg",
            "vs native (a/c)",
            "vs host-routed (a/b)",
        ],
        rows: vec![],
    };
    let temperature_wasm = support::module("temperature")?;
    for w in &workloads {
        if !selected("--workload", w.name) {
            continue;
        }
        let complex = w.name == "complex";
        let inputs = Arc::new(if complex {
            // 100 messages per 10 s window.
            Inputs::new(pool(3 * 1024, mixed), total, 100)
        } else {
            Inputs::new(pool(71_001.min(total), temperature), total, 1)
        });
        let loaded = env.load(&w.graph)?;
        let composed = env.start(&loaded, RunOptions::default())?;
        let components = env.start(
            &loaded,
            RunOptions {
                native_plumbing: false,
                ..Default::default()
            },
        )?;
        let with_router = env.load_with_router(&w.graph)?;
        let in_wasm = env.start(
            &with_router,
            RunOptions {
                routing: Routing::Composed,
                ..Default::default()
            },
        )?;
        let ops = env.ops(w.name, loaded.manifest.operations.len())?;
        let (routed, native): (Box<dyn Variant>, Box<dyn Variant>) = if complex {
            (
                Box::new(Windowed::new(RoutedOps::new(ops, inputs.clone())?)),
                Box::new(Windowed::new(NativeOps {
                    inputs: inputs.clone(),
                    bounds: temperature::Bounds::DEFAULT,
                    store: MemStore::default(),
                })),
            )
        } else {
            let steps: Vec<Step> = w
                .filters
                .iter()
                .map(|&filter| Step { filter, config: vec![] })
                .collect();
            (
                Box::new(RoutedChain {
                    chain: Chain::new(ops, &temperature_wasm, &steps)?,
                    inputs: inputs.clone(),
                }),
                Box::new(NativeChain {
                    filters: w.filters.to_vec(),
                    bounds: temperature::Bounds::DEFAULT,
                    inputs: inputs.clone(),
                }),
            )
        };
        let mut variants: Vec<(String, Box<dyn Variant>)> = vec![
            (
                "composed".into(),
                Box::new(Composed {
                    graph: composed,
                    inputs: inputs.clone(),
                }),
            ),
            (
                "composed, plumbing calls".into(),
                Box::new(Composed {
                    graph: components,
                    inputs: inputs.clone(),
                }),
            ),
            (
                "composed, router in wasm".into(),
                Box::new(Composed {
                    graph: in_wasm,
                    inputs: inputs.clone(),
                }),
            ),
            ("host-routed".into(), routed),
            ("native".into(), native),
        ];
        support::cross_check(w.name, &mut variants, p.check)?;
        eprintln!("  {}: outputs of {} messages agree across variants", w.name, p.check);
        let rows = support::interleave(w.name, &mut variants, p.check, p.n, p.rounds, p.chunk)?;
        let (native, host) = (rows[4].msgs_per_s, rows[3].msgs_per_s);
        for ((vname, _), r) in variants.iter().zip(&rows) {
            let mut cells = vec![w.name.to_owned(), vname.clone()];
            cells.extend(row_cells(r));
            cells.push(format!("{:.3}", r.out_per_msg));
            cells.push(ratio(r.msgs_per_s, native));
            cells.push(ratio(r.msgs_per_s, host));
            table.rows.push(cells);
            bars.push((w.name.to_owned(), vname.clone(), r.msgs_per_s));
        }
    }
    Ok(table)
}

// ---------------------------------------------------------------------------------------------
// Section: payload size scaling

/// `source → faulty map (payload = read | ignore) → sink`.
fn payload_graph(dir: &std::path::Path, mode: &str) -> Result<std::path::PathBuf> {
    let path = dir.join(format!("bench-payload-{mode}.yaml"));
    std::fs::write(
        &path,
        format!(
            r#"metadata:
  name: "Payload {mode}"
  description: "A map that does `{mode}` with its payload (benchmark workload)"
  version: "1.0.0"
  $schema: "https://www.schemastore.org/aio-wasm-graph-config-1.0.0.json"
  vendor: "wasmflow"
moduleRequirements:
  apiVersion: "1.1.0"
  runtimeVersion: "1.1.0"
moduleConfigurations:
  - name: faulty/map
    parameters:
      payload:
        name: payload
        description: "read | ignore"
        default: "{mode}"
operations:
  - operationType: source
    name: source
  - operationType: map
    name: faulty/map
    module: "test/faulty:1.0.0"
  - operationType: sink
    name: sink
connections:
  - from: {{ name: source }}
    to: {{ name: faulty/map }}
  - from: {{ name: faulty/map }}
    to: {{ name: sink }}
"#
        ),
    )?;
    Ok(path)
}

/// What the native side of the payload comparison does: `read` copies the payload out and looks
/// at it (`faulty::fault_of`), as the component does after `buffer.read`; `ignore` hands it on.
struct NativePayload {
    read: bool,
    inputs: Arc<Inputs>,
}

impl NativePayload {
    fn route(&self, i: usize) -> Result<Arc<[u8]>> {
        let p = self.inputs.payload(i);
        if self.read {
            let copy = p.to_vec();
            if let Some(f) = faulty::fault_of(std::hint::black_box(&copy)) {
                bail!("payload {i} asks for fault {}", f.name());
            }
        }
        Ok(p.clone())
    }
}

impl Variant for NativePayload {
    fn run(&mut self, i: usize) -> Result<usize> {
        std::hint::black_box(self.route(i)?);
        Ok(1)
    }

    fn outputs(&mut self, i: usize) -> Result<Vec<Vec<u8>>> {
        Ok(vec![self.route(i)?.to_vec()])
    }
}

fn payload(env: &Env, p: &Params) -> Result<Table> {
    let dir = tempfile::tempdir()?;
    let faulty_wasm = support::module("faulty")?;
    let mut table = Table {
        title: "Payload size scaling: `source → map → sink`, the map reads its payload (`buffer.read` copies it into the guest) or passes it on unread (`faulty`, `payload = read | ignore`).".into(),
        header: vec![
            "payload",
            "map / variant",
            "msgs/s",
            "ns/msg",
            "p50 µs",
            "p99 µs",
            "vs native (a/c)",
            "vs host-routed (a/b)",
        ],
        rows: vec![],
    };
    for (label, size, scale) in [
        ("100 B", 100, 1),
        ("1 KB", 1024, 1),
        ("10 KB", 10 * 1024, 2),
        ("150 KB", 150 * 1024, 10),
    ] {
        if !selected("--workload", label) {
            continue;
        }
        let n = (p.n / scale).max(p.chunk.min(p.n));
        let check = (p.check / 10).max(20);
        let chunk = (p.chunk / scale).max(100);
        let inputs = Arc::new(Inputs::new(
            (0..16).map(|s| blob(size, s)).collect(),
            check + n * p.rounds,
            1,
        ));
        let mut variants: Vec<(String, Box<dyn Variant>)> = Vec::new();
        for mode in ["read", "ignore"] {
            let loaded = env.load(&payload_graph(dir.path(), mode)?)?;
            let graph = env.start(&loaded, RunOptions::default())?;
            variants.push((
                format!("{mode}s / composed"),
                Box::new(Composed {
                    graph,
                    inputs: inputs.clone(),
                }),
            ));
            let step = Step {
                filter: false,
                config: vec![("payload", mode)],
            };
            variants.push((
                format!("{mode}s / host-routed"),
                Box::new(RoutedChain {
                    chain: Chain::new(env.ops("payload", 1)?, &faulty_wasm, &[step])?,
                    inputs: inputs.clone(),
                }),
            ));
            variants.push((
                format!("{mode}s / native"),
                Box::new(NativePayload {
                    read: mode == "read",
                    inputs: inputs.clone(),
                }),
            ));
        }
        support::cross_check(label, &mut variants, check)?;
        let rows = support::interleave(label, &mut variants, check, n, p.rounds, chunk)?;
        for (k, ((vname, _), r)) in variants.iter().zip(&rows).enumerate() {
            let base = k / 3 * 3;
            let mut cells = vec![label.to_owned(), vname.replace("ignores", "passes")];
            cells.extend(row_cells(r));
            cells.push(ratio(r.msgs_per_s, rows[base + 2].msgs_per_s));
            cells.push(ratio(r.msgs_per_s, rows[base + 1].msgs_per_s));
            table.rows.push(cells);
        }
    }
    Ok(table)
}

// ---------------------------------------------------------------------------------------------
// Section: scaling over worker threads

fn scaling(env: &Env, p: &Params) -> Result<Table> {
    let Some(rt) = &env.runtime else {
        bail!("the scaling section needs the pooling runtime (not --on-demand)")
    };
    let n = p.n / 2;
    let inputs = Arc::new(Inputs::new(pool(71_001.min(n), temperature), n, 1));
    let loaded = env.load(&repo().join("compose/tests/azure-compat/graph-simple.yaml"))?;
    let component = Component::new(&env.engine, &loaded.bytes).map_err(anyhow::Error::from)?;
    #[derive(Clone, Copy, PartialEq)]
    enum How {
        /// `Runtime::start`: every thread's graph has the same name, so the same metric series.
        Composed,
        /// `Graph::new` with a graph name per thread: metric series of its own.
        OwnSeries,
        Native,
    }
    // Throughput (msgs/s, all threads together) of `threads` workers running `n` messages each.
    let run = |threads: usize, how: How| -> Result<f64> {
        let barrier = Barrier::new(threads + 1);
        let elapsed = std::thread::scope(|s| -> Result<Duration> {
            let handles: Vec<_> = (0..threads)
                .map(|k| {
                    let (barrier, inputs, loaded, component) = (&barrier, inputs.clone(), &loaded, &component);
                    s.spawn(move || -> Result<Duration> {
                        let mut v: Box<dyn Variant> = match how {
                            How::Native => Box::new(NativeChain {
                                filters: vec![false],
                                bounds: temperature::Bounds::DEFAULT,
                                inputs,
                            }),
                            How::Composed => Box::new(Composed {
                                graph: rt.start(loaded, RunOptions::default())?.0,
                                inputs,
                            }),
                            How::OwnSeries => {
                                let mut services = GraphServices::for_manifest(
                                    &loaded.manifest,
                                    env.metrics.clone(),
                                    env.state.clone(),
                                );
                                let name: Arc<str> = format!("{} #{k}", services.graph).into();
                                services.graph = name.clone();
                                for op in &mut services.operations {
                                    op.graph = name.clone();
                                }
                                let graph = Graph::new(
                                    &env.engine,
                                    component,
                                    loaded.manifest.clone(),
                                    Arc::new(services),
                                    RunOptions::default(),
                                )?;
                                Box::new(Composed { graph, inputs })
                            }
                        };
                        barrier.wait();
                        let start = Instant::now();
                        for i in 0..n {
                            v.run(i)?;
                        }
                        Ok(start.elapsed())
                    })
                })
                .collect();
            barrier.wait();
            let mut longest = Duration::ZERO;
            for h in handles {
                longest = longest.max(h.join().map_err(|_| anyhow!("worker panicked"))??);
            }
            Ok(longest)
        })?;
        Ok((threads * n) as f64 / elapsed.as_secs_f64())
    };
    let mut table = Table {
        title: format!(
            "Scaling: graph-simple, one graph (one `Store`) per worker thread, {n} messages per thread, median of {} alternating runs; machine has {} CPUs.",
            p.rounds.max(3),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        header: vec!["variant", "threads", "msgs/s (all threads)", "vs 1 thread"],
        rows: vec![],
    };
    for how in [How::Composed, How::OwnSeries, How::Native] {
        let mut one = Vec::new();
        let mut two = Vec::new();
        for r in 0..p.rounds.max(3) {
            if r % 2 == 0 {
                one.push(run(1, how)?);
                two.push(run(2, how)?);
            } else {
                two.push(run(2, how)?);
                one.push(run(1, how)?);
            }
        }
        let med = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (a, b) = (med(one), med(two));
        let name = match how {
            How::Composed => "composed (`Runtime::start`)",
            How::OwnSeries => "composed, metric series per graph",
            How::Native => "native",
        };
        table
            .rows
            .push(vec![name.into(), "1".into(), fmt_int(a), "1.00×".into()]);
        table.rows.push(vec![name.into(), "2".into(), fmt_int(b), ratio(b, a)]);
        eprintln!("  scaling: {name} done");
    }
    Ok(table)
}

// ---------------------------------------------------------------------------------------------
// Chart

/// A horizontal bar chart of the graphs section's throughput (log scale: native is an order of
/// magnitude beyond the rest), hand-written SVG.
fn svg(bars: &Bars) -> String {
    let (w, bar_h, gap, left, top) = (860.0, 18.0, 6.0, 300.0, 40.0);
    let max = bars.iter().map(|b| b.2).fold(1.0, f64::max);
    let lo = 1e3_f64;
    let scale = |v: f64| (v.max(lo) / lo).log10() / (max * 1.5 / lo).log10() * (w - left - 20.0);
    let h = top + bars.len() as f64 * (bar_h + gap) + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">wasmflow in-process throughput, msgs/s (log scale)</text>"#
    );
    let colors = ["#2b6cb0", "#63b3ed", "#dd6b20", "#38a169"];
    let variants: Vec<&String> = {
        let mut v: Vec<&String> = Vec::new();
        for b in bars {
            if !v.contains(&&b.1) {
                v.push(&b.1);
            }
        }
        v
    };
    for (i, (wl, var, v)) in bars.iter().enumerate() {
        let y = top + i as f64 * (bar_h + gap);
        let c = colors[variants.iter().position(|x| *x == var).unwrap_or(0) % colors.len()];
        let len = scale(*v);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{wl} · {var}</text>"#,
            left - 8.0,
            y + 13.0
        );
        let _ = writeln!(
            s,
            r#"<rect x="{left}" y="{y}" width="{len:.1}" height="{bar_h}" fill="{c}"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}">{}</text>"#,
            left + len + 4.0,
            y + 13.0,
            fmt_int(*v)
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

// ---------------------------------------------------------------------------------------------

fn main() -> Result<()> {
    let quick = quick();
    let p = Params {
        n: arg(
            "--messages",
            "WASMFLOW_BENCH_MESSAGES",
            if quick { 20_000 } else { 150_000 },
        )?,
        rounds: arg("--rounds", "WASMFLOW_BENCH_ROUNDS", if quick { 1 } else { 3 })?.max(1),
        chunk: arg("--chunk", "WASMFLOW_BENCH_CHUNK", if quick { 5_000 } else { 10_000 })?.max(1),
        check: 2_000,
    };
    let on_demand = std::env::args().any(|a| a == "--on-demand");
    let env = Env::new(on_demand)?;
    let clock = clock_cost();
    eprintln!(
        "inprocess: {} messages × {} rounds per variant{}; Instant::now() ≈ {clock:.0} ns",
        p.n,
        p.rounds,
        if quick { " (--quick)" } else { "" }
    );
    let mut tables = Vec::new();
    let mut bars = Bars::new();
    if selected("--section", "graphs") {
        tables.push(graphs(&env, &p, &mut bars)?);
    }
    if selected("--section", "payload") && !on_demand {
        tables.push(payload(&env, &p)?);
    }
    if selected("--section", "scaling") && !on_demand {
        tables.push(scaling(&env, &p)?);
    }
    println!();
    println!("Latency = time between consecutive per-message `Instant::now()` readings (≈{clock:.0} ns clock cost included); throughput = median over chunks; ratios are throughput ratios measured in this run.");
    println!();
    for t in &tables {
        t.print();
    }
    if let Some(path) = arg_str("--svg") {
        if !bars.is_empty() {
            std::fs::write(&path, svg(&bars)).map_err(|e| anyhow!("writing {path}: {e}"))?;
            eprintln!("inprocess: chart written to {path}");
        }
    }
    Ok(())
}
