//! Inference through wasmflow vs the same model called directly through ONNX Runtime, in one
//! run (BENCHMARKS.md, "Edge inference"), with the per-inference overhead apart from the graph.
//!
//! For each model, on the 450 held-out digit images of scripts/build-model.py (the model input
//! of each is what the `snapshot` map makes of its PNG: `snapshot::decode_image` and
//! `snapshot::to_model_input`, the map's own code, so every variant gets the same 64 floats):
//! * `ort`: `ort` directly, one `Session::run` per image (tensor built from the 64 floats each
//!   time, the output extracted), the session built with the host backend's own options
//!   (`wasi_nn::session_builder`): the floor any host can reach.
//! * `python`: the `onnxruntime` wheel, one `InferenceSession.run` per image (its defaults).
//! * `wasi-nn`: the per-inference path of wasmflow alone: the host calls the `nn-probe`
//!   component (components/testing/nn-probe) with the 64 floats, which makes the tensor,
//!   calls `compute` through wasi-nn (tensor into the host, the host's ONNX backend, output
//!   back into the guest) and returns the scores: the snapshot map's wasi-nn calls, no graph.
//!   Same store set-up, engine and wasi-nn host as a graph's.
//! * `graph`: a composed graph source → snapshot map → sink; each image is pushed as its 8×8 PNG
//!   message: source plumbing and event time, PNG decode and the 8×8 input in the guest, the
//!   wasi-nn path above, the JSON label, the sink.
//!
//! Before timing, every image goes through every variant and the bench fails unless the
//! `wasi-nn` scores are bit-identical to `ort`'s and the graph's label record is the one the
//! snapshot map's code (`best_label`, `object_record`) makes of `ort`'s scores.
//!
//! Models: `digits` (the LogisticRegression, 64→10: a few µs of math, so fixed costs show) and
//! `mlp` (a 64→1024→1024→10 ReLU network with fixed random weights, written here with the
//! `onnx` package: enough math that per-call costs are amortised, as for real image models).
//!
//! `cargo bench -p wasmflow-cli --bench inference [-- --quick] [--rounds R] [--model digits|mlp]
//! [--only ort|wasi-nn|graph[,…]] [--no-python] [--on-demand]` (needs `make model`, `make
//! components` and scripts/setup.sh). `--only ort,wasi-nn` interleaves those two without the
//! graph's chunks between them (which evict their caches: BENCHMARKS.md, "Edge inference",
//! "Timed"). For profiling one variant: `--model digits --only wasi-nn --no-python
//! --on-demand` under `valgrind --tool=callgrind --toggle-collect='*measure*'` (`--on-demand`:
//! valgrind cannot reserve the instance pool; the graph then starts without the compiled cache).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use wasmflow_runtime::engine::on_demand_engine;
use wasmflow_runtime::graph::{Graph, RunOptions};
use wasmflow_runtime::services::metrics::Metrics;
use wasmflow_runtime::services::state_store::StateStore;
use wasmflow_runtime::services::wasi_nn::{init_onnxruntime, locate_onnxruntime, session_builder, NnOptions, WasiNn};
use wasmflow_runtime::services::GraphServices;
use wasmflow_runtime::store::HostState;
use wasmflow_runtime::{linker, load_graph, LoadedGraph, Runtime, RuntimeConfig};
use wasmflow_transport::{Destination, Input};
use wasmtime::component::{Component, Linker, TypedFunc};
use wasmtime::Engine;

use support::routed::Ops;
use support::{arg, arg_str, fmt_int, interleave, quick, ratio, repo, selected, Row, Variant};

/// Per-inference overhead targets of issue 16 (wasmflow's wasi-nn path ÷ ONNX Runtime directly).
const TARGET_DIGITS: f64 = 2.0;
const TARGET_MLP: f64 = 1.10;

/// The held-out test set: each image's PNG and the model input the snapshot map makes of it.
struct TestSet {
    pngs: Vec<Arc<[u8]>>,
    inputs: Vec<Vec<f32>>,
}

fn test_set() -> Result<TestSet> {
    let dir = repo().join("target/models/digits-test");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}: run `make model`", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no PNG in {}: run `make model`", dir.display());
    }
    let mut pngs = Vec::with_capacity(files.len());
    let mut inputs = Vec::with_capacity(files.len());
    for file in &files {
        let png = std::fs::read(file).with_context(|| file.display().to_string())?;
        let gray = snapshot::decode_image(&png).map_err(|e| anyhow!("{}: {e}", file.display()))?;
        inputs.push(snapshot::to_model_input(&gray).to_vec());
        pngs.push(Arc::from(png));
    }
    Ok(TestSet { pngs, inputs })
}

fn python(code: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("python3").arg("-c").arg(code).args(args).output()?;
    if !out.status.success() {
        bail!("python: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// A 64→1024→1024→10 ReLU MLP with fixed random weights (seed 0).
fn write_mlp(path: &Path) -> Result<()> {
    python(
        r#"
import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
rng = np.random.default_rng(0)
sizes = [64, 1024, 1024, 10]
inits, nodes, prev = [], [], "X"
for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
    w = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
    c = np.zeros(b, dtype=np.float32)
    inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(c, f"B{i}")]
    nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"B{i}"], [f"G{i}"]))
    prev = f"G{i}"
    if b != 10:
        nodes.append(helper.make_node("Relu", [prev], [f"R{i}"]))
        prev = f"R{i}"
nodes.append(helper.make_node("Softmax", [prev], ["probabilities"], axis=1))
x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 64])
y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 10])
m = helper.make_model(helper.make_graph(nodes, "mlp", [x], [y], inits), opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8
onnx.save(m, sys.argv[1])
"#,
        &[path.to_str().unwrap_or_default()],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Environment: a runtime as `wasmflow run` has, or (`--on-demand`, for valgrind, which cannot
// reserve the instance pool) an engine without a pool and `Graph::new` directly

struct Env {
    runtime: Option<Runtime>,
    engine: Engine,
    metrics: Metrics,
    state: StateStore,
    /// wasi-nn for the probe (and, with `--on-demand`, the graph): its own sessions.
    nn: Arc<WasiNn>,
}

impl Env {
    fn new(data_dir: &Path, options: NnOptions, on_demand: bool) -> Result<Self> {
        let nn = Arc::new(WasiNn::start(&options)?);
        if on_demand {
            return Ok(Self {
                runtime: None,
                engine: on_demand_engine()?,
                metrics: Metrics::new(),
                state: StateStore::in_memory()?,
                nn,
            });
        }
        let runtime = Runtime::new(&RuntimeConfig {
            data_dir: data_dir.into(),
            ephemeral_state: true,
            cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasmflow-cache")),
            limits: Default::default(),
        })?
        .with_wasi_nn(options);
        Ok(Self {
            engine: runtime.engine().clone(),
            metrics: runtime.metrics.clone(),
            state: runtime.state.clone(),
            runtime: Some(runtime),
            nn,
        })
    }

    /// Starts a graph as `wasmflow run` does (`Runtime::start`), or, on demand, with
    /// `Graph::new` (the same minus the compiled-code cache).
    fn start(&self, loaded: &LoadedGraph) -> Result<Graph> {
        match &self.runtime {
            Some(rt) => Ok(rt.start(loaded, RunOptions::default())?.0),
            None => {
                let component = Component::new(&self.engine, &loaded.bytes).map_err(anyhow::Error::from)?;
                let mut services =
                    GraphServices::for_manifest(&loaded.manifest, self.metrics.clone(), self.state.clone());
                services.nn = Some(self.nn.clone());
                Ok(Graph::new(
                    &self.engine,
                    &component,
                    loaded.manifest.clone(),
                    Arc::new(services),
                    RunOptions::default(),
                )?)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Variants

/// ONNX Runtime called directly.
struct Direct<'a> {
    session: ort::session::Session,
    set: &'a TestSet,
}

impl Scores for Direct<'_> {
    fn scores(&mut self, i: usize) -> Result<Vec<f32>> {
        let input = &self.set.inputs[i % self.set.inputs.len()];
        let tensor = ort::value::Tensor::from_array(([1i64, input.len() as i64], input.clone()))?;
        let outputs = self.session.run(ort::inputs![tensor])?;
        let (_, scores) = outputs[0].try_extract_tensor::<f32>()?;
        Ok(scores.to_vec())
    }
}

/// A variant that computes the model's scores for image `i`: timed as they are, compared as bytes.
trait Scores {
    fn scores(&mut self, i: usize) -> Result<Vec<f32>>;
}

impl<T: Scores> Variant for T {
    fn run(&mut self, i: usize) -> Result<usize> {
        std::hint::black_box(self.scores(i)?);
        Ok(1)
    }
    fn outputs(&mut self, i: usize) -> Result<Vec<Vec<u8>>> {
        Ok(vec![snapshot::f32_bytes(&self.scores(i)?)])
    }
}

type InferFn = TypedFunc<(Vec<f32>,), (Result<Vec<f32>, String>,)>;
type LoadFn = TypedFunc<(Option<String>, Vec<u8>), (Result<(), String>,)>;

/// The `nn-probe` component: wasmflow's wasi-nn path, no graph.
struct Probe<'a> {
    ops: Ops,
    infer: InferFn,
    set: &'a TestSet,
}

impl<'a> Probe<'a> {
    /// An instance of the probe in a store set up as a graph's (`HostState`, the runtime's
    /// engine and linker, wasi-nn from `nn`), with `model` loaded: a preloaded name, else the file.
    fn new(env: &Env, model: (Option<&str>, &Path), set: &'a TestSet) -> Result<Self> {
        let engine = &env.engine;
        let graph: Arc<str> = "nn-probe".into();
        let services = Arc::new(GraphServices {
            graph,
            operations: Vec::new(),
            metrics: env.metrics.clone(),
            state: env.state.clone(),
            schemas: Default::default(),
            nn: Some(env.nn.clone()),
        });
        let mut ops = Ops::new(engine, services.clone())?;
        let module = support::module("nn-probe")?;
        let component = Component::from_file(engine, &module)
            .map_err(anyhow::Error::from)
            .with_context(|| module.display().to_string())?;
        let mut linker: Linker<HostState> = Linker::new(engine);
        linker::add_to_linker(&mut linker, &component)?;
        linker::add_wasi_nn_to_linker(&mut linker, &services)?;
        let instance = linker
            .instantiate(&mut ops.store, &component)
            .map_err(anyhow::Error::from)?;
        let load: LoadFn = instance
            .get_typed_func(&mut ops.store, "load")
            .map_err(anyhow::Error::from)?;
        let infer: InferFn = instance
            .get_typed_func(&mut ops.store, "infer")
            .map_err(anyhow::Error::from)?;
        let (name, path) = model;
        let bytes = match name {
            Some(_) => Vec::new(),
            None => std::fs::read(path).with_context(|| path.display().to_string())?,
        };
        let (loaded,) = ops.call(&load, (name.map(str::to_owned), bytes))?;
        loaded.map_err(|e| anyhow!("nn-probe load: {e}"))?;
        Ok(Self { ops, infer, set })
    }
}

impl Scores for Probe<'_> {
    fn scores(&mut self, i: usize) -> Result<Vec<f32>> {
        let input = self.set.inputs[i % self.set.inputs.len()].clone();
        let (scores,) = self.ops.call(&self.infer, (input,))?;
        scores.map_err(|e| anyhow!("nn-probe infer: {e}"))
    }
}

/// The whole graph, one `Graph::push` per PNG.
struct Pushed<'a> {
    graph: Graph,
    set: &'a TestSet,
    ms: u64,
}

impl Pushed<'_> {
    fn push(&mut self, i: usize) -> Result<Vec<u8>> {
        self.ms += 1;
        let out = self.graph.push(
            None,
            Input {
                topic: "camera".into(),
                payload: self.set.pngs[i % self.set.pngs.len()].clone(),
                content_type: None,
                user_properties: vec![("__ts".into(), format!("{:0>15}:00000:bench", self.ms))],
            },
        )?;
        match out.as_slice() {
            [one] if matches!(one.destination, Destination::Sink(_)) => Ok(one.payload.to_vec()),
            other => bail!(
                "image {i}: expected one label at the sink, got {:?}",
                other
                    .iter()
                    .map(|o| (&o.destination, String::from_utf8_lossy(&o.payload)))
                    .collect::<Vec<_>>()
            ),
        }
    }
}

impl Variant for Pushed<'_> {
    fn run(&mut self, i: usize) -> Result<usize> {
        self.push(i)?;
        Ok(1)
    }
    fn outputs(&mut self, i: usize) -> Result<Vec<Vec<u8>>> {
        Ok(vec![self.push(i)?])
    }
}

fn graph_file(dir: &Path, model: Option<&str>) -> Result<PathBuf> {
    let config = model.map_or(String::new(), |m| {
        format!("moduleConfigurations:\n  - name: classify\n    parameters:\n      model:\n        name: model\n        description: preloaded\n        default: \"{m}\"\n")
    });
    let yaml = format!(
        r#"metadata:
  name: "bench-inference"
  description: "source, snapshot map (wasi-nn), sink"
  version: "1.0.0"
  $schema: "https://www.schemastore.org/aio-wasm-graph-config-1.0.0.json"
  vendor: "wasmflow bench"
moduleRequirements:
  apiVersion: "1.1.0"
  runtimeVersion: "1.1.0"
  features:
    - name: "wasi-nn"
{config}operations:
  - {{operationType: source, name: source}}
  - {{operationType: map, name: classify, module: "azure-samples/explore-iot-operations/snapshot:1.0.0"}}
  - {{operationType: sink, name: sink}}
connections:
  - {{from: {{name: source}}, to: {{name: classify}}}}
  - {{from: {{name: classify}}, to: {{name: sink}}}}
"#
    );
    let path = dir.join(format!("bench-{}.yaml", model.unwrap_or("embedded")));
    std::fs::write(&path, yaml)?;
    Ok(path)
}

/// Every image through every variant: `wasi-nn`'s scores must be bit-identical to `ort`'s, and
/// the graph's record the one the snapshot map's code makes of `ort`'s scores.
fn check_equal(name: &str, direct: &mut Direct, probe: &mut Probe, graph: &mut Pushed, n: usize) -> Result<()> {
    let labels = snapshot::parse_labels(None).map_err(|e| anyhow!(e))?;
    for i in 0..n {
        let reference = direct.scores(i)?;
        let through = probe.scores(i)?;
        if reference
            .iter()
            .map(|v| v.to_bits())
            .ne(through.iter().map(|v| v.to_bits()))
        {
            bail!("{name}, image {i}: wasi-nn scores {through:?} differ from ONNX Runtime's {reference:?}");
        }
        let label = snapshot::best_label(&snapshot::f32_bytes(&reference), &labels).map_err(|e| anyhow!(e))?;
        let expected = snapshot::object_record(&label);
        let record = graph.push(i)?;
        if record != expected {
            bail!(
                "{name}, image {i}: the graph emitted {} where ONNX Runtime's scores make {}",
                String::from_utf8_lossy(&record),
                String::from_utf8_lossy(&expected)
            );
        }
    }
    eprintln!("  {name}: {n} images, wasi-nn scores bit-identical to ONNX Runtime's, graph labels equal");
    Ok(())
}

/// Python's per-inference mean and p50 (µs) over `rounds` passes of the same inputs.
fn ort_python(model: &Path, inputs: &Path, rounds: usize) -> Result<(f64, f64)> {
    let out = python(
        &format!(
            r#"
import json, sys, time, numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
name = s.get_inputs()[0].name
imgs = [np.array([r], dtype=np.float32) for r in json.load(open(sys.argv[2]))]
for x in imgs[:50]: s.run(None, {{name: x}})
lat = []
t0 = time.perf_counter()
for _ in range({rounds}):
    for x in imgs:
        t = time.perf_counter(); s.run(None, {{name: x}}); lat.append(time.perf_counter() - t)
total = time.perf_counter() - t0
lat.sort()
print(total / len(lat) * 1e6, lat[len(lat) // 2] * 1e6)
"#
        ),
        &[model.to_str().unwrap_or_default(), inputs.to_str().unwrap_or_default()],
    )?;
    let v: Vec<f64> = out.split_whitespace().filter_map(|s| s.parse().ok()).collect();
    match v.as_slice() {
        [mean, p50] => Ok((*mean, *p50)),
        _ => bail!("python printed {out:?}"),
    }
}

fn main() -> Result<()> {
    let quick = quick();
    let rounds = arg("--rounds", "WASMFLOW_BENCH_ROUNDS", if quick { 1 } else { 5 })?.max(1);
    let with_python = !std::env::args().any(|a| a == "--no-python");
    let set = test_set()?;
    let n = set.inputs.len();
    let dir = tempfile::tempdir()?;
    let digits = repo().join("target/models/digits.onnx");
    let mlp = dir.path().join("mlp.onnx");
    write_mlp(&mlp)?;
    let inputs_json = dir.path().join("inputs.json");
    std::fs::write(&inputs_json, serde_json::to_vec(&set.inputs)?)?;
    let library = locate_onnxruntime(None)?;
    let info = init_onnxruntime(&library)?;

    let options = NnOptions {
        onnxruntime: Some(library.clone()),
        models: vec![("mlp".into(), mlp.clone())],
    };
    let env = Env::new(dir.path(), options, std::env::args().any(|a| a == "--on-demand"))?;

    println!(
        "inference: {n} held-out digits × {rounds} rounds, one image per call, variants taking turns every 50 images; \
         ONNX Runtime {} ({}); sessions: {}",
        library.display(),
        info.split(',').next().unwrap_or_default(),
        wasmflow_runtime::services::wasi_nn::SESSION_OPTIONS,
    );
    println!();
    println!("| model | variant | µs per inference | p50 µs | p99 µs | inferences/s | vs ort |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let mut summary = Vec::new();
    for (name, model, preloaded) in [("digits", &digits, None), ("mlp", &mlp, Some("mlp"))] {
        if !selected("--model", name) {
            continue;
        }
        let mut direct = Direct {
            session: session_builder()?.commit_from_file(model)?,
            set: &set,
        };
        let mut probe = Probe::new(&env, (preloaded, model), &set)?;
        let loaded = load_graph(&graph_file(dir.path(), preloaded)?, &support::compose_options())?;
        let mut graph = Pushed {
            graph: env.start(&loaded)?,
            set: &set,
            ms: 1_767_225_600_000,
        };
        check_equal(name, &mut direct, &mut probe, &mut graph, n)?;
        let mut variants: Vec<(String, Box<dyn Variant + '_>)> = vec![
            ("ort".into(), Box::new(direct)),
            ("wasi-nn".into(), Box::new(probe)),
            ("graph".into(), Box::new(graph)),
        ];
        let rows = interleave(name, &mut variants, 0, n, rounds, 50)?;
        let python = if with_python && selected("--only", "python") {
            Some(ort_python(model, &inputs_json, rounds)?)
        } else {
            None
        };
        let us = |r: &Row| r.ns_per_msg / 1000.0;
        let [ort, wasi_nn, graph] = [rows[0], rows[1], rows[2]];
        let line = |variant: &str, mean: f64, p50: f64, p99: Option<f64>| {
            if mean.is_nan() {
                return; // not timed (`--only`)
            }
            println!(
                "| {name} | {variant} | {mean:.1} | {p50:.1} | {} | {} | {} |",
                p99.map_or("–".to_string(), |v| format!("{v:.1}")),
                fmt_int(1e6 / mean),
                ratio(mean, us(&ort))
            );
        };
        line("ort (Rust), directly", us(&ort), ort.p50_us, Some(ort.p99_us));
        if let Some((mean, p50)) = python {
            line("ort (Python), directly", mean, p50, None);
        }
        line(
            "wasmflow: wasi-nn from a component",
            us(&wasi_nn),
            wasi_nn.p50_us,
            Some(wasi_nn.p99_us),
        );
        line(
            "wasmflow: graph, PNG in, label out",
            us(&graph),
            graph.p50_us,
            Some(graph.p99_us),
        );
        summary.push((name, us(&ort), us(&wasi_nn), us(&graph)));
    }
    println!();
    println!("Where the time of one graph push goes (µs, medians of the interleaved chunks):");
    println!();
    println!("| model | ONNX Runtime | + wasi-nn path (component call, tensor copies, host backend) | + graph around it (push, PNG decode, JSON, sink) | per-inference overhead (wasi-nn ÷ ort) | target |");
    println!("|---|---:|---:|---:|---:|---|");
    for (name, ort, wasi_nn, graph) in summary {
        let target = if name == "digits" { TARGET_DIGITS } else { TARGET_MLP };
        let ratio = wasi_nn / ort;
        // A variant `--only` left out is NaN: its cells are "–".
        let cell = |v: f64, text: String| if v.is_nan() { "–".to_string() } else { text };
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            cell(ort, format!("{ort:.1}")),
            cell(wasi_nn - ort, format!("{:+.1}", wasi_nn - ort)),
            cell(graph - wasi_nn, format!("{:+.1}", graph - wasi_nn)),
            cell(ratio, format!("{ratio:.2}×")),
            cell(
                ratio,
                format!("≤ {target:.2}×: {}", if ratio <= target { "met" } else { "**missed**" })
            ),
        );
    }
    if arg_str("--only").is_some() {
        println!("\n(`--only`: the other variants were not timed.)");
    }
    Ok(())
}
