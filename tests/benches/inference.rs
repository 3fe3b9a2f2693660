//! Inference through wasmflow vs the same model called directly through ONNX Runtime, in one
//! run (BENCHMARKS.md, "Edge inference").
//!
//! For each model, on the 450 held-out digit images of scripts/build-model.py:
//! * `ort (Rust)`: `ort` 2.0.0-rc.10 directly, one `Session::run` per image (tensor built from
//!   the 64 floats each time, output extracted; session options as wasi-nn's backend sets them):
//!   the floor any host can reach.
//! * `ort (Python)`: the `onnxruntime` wheel, one `InferenceSession.run` per image.
//! * `wasmflow`: a composed graph source → snapshot map → sink; each image is pushed as its
//!   8×8 PNG message: source plumbing and event time, PNG decode + 8×8 input in the guest,
//!   wasi-nn (tensor copy into the host, ORT run, output copy back), the JSON label, the sink.
//!
//! Models: `digits` (the LogisticRegression, 64→10: a few µs of math, so fixed costs show) and
//! `mlp` (a 64→1024→1024→10 ReLU network with fixed random weights, written here with the
//! `onnx` package: enough math that per-call costs are amortised, as for real image models).
//!
//! `cargo bench -p wasmflow-cli --bench inference` (needs `make model` and scripts/setup.sh).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use wasmflow_runtime::graph::RunOptions;
use wasmflow_runtime::services::wasi_nn::{init_onnxruntime, locate_onnxruntime, NnOptions};
use wasmflow_runtime::{default_modules_dir, load_graph, Runtime, RuntimeConfig};
use wasmflow_transport::{Destination, Input};

const ROUNDS: usize = 5;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct TestSet {
    images: Vec<Vec<f32>>,
    pngs: Vec<Vec<u8>>,
}

fn test_set() -> Result<TestSet> {
    let models = repo().join("target/models");
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(models.join("digits-test.json")).context("target/models/digits-test.json: run `make model`")?,
    )?;
    let images: Vec<Vec<f32>> = json["images"]
        .as_array()
        .ok_or_else(|| anyhow!("digits-test.json has no images"))?
        .iter()
        .map(|row| {
            row.as_array()
                .map(|r| r.iter().map(|v| v.as_f64().unwrap_or(0.0) as f32).collect())
                .unwrap_or_default()
        })
        .collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(models.join("digits-test"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    let pngs = files.iter().map(std::fs::read).collect::<std::io::Result<Vec<_>>>()?;
    if pngs.len() != images.len() {
        bail!("{} PNGs but {} images", pngs.len(), images.len());
    }
    Ok(TestSet { images, pngs })
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

/// Latencies of one variant over `ROUNDS` passes of the test set.
struct Measured {
    total: Duration,
    n: usize,
    latencies: Vec<Duration>,
}

impl Measured {
    fn per_item(&self) -> Duration {
        self.total / self.n as u32
    }
    fn pct(&self, p: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l[((l.len() - 1) as f64 * p) as usize]
    }
}

fn measure(n: usize, mut f: impl FnMut(usize) -> Result<()>) -> Result<Measured> {
    for i in 0..n.min(50) {
        f(i)?; // warm-up
    }
    let mut latencies = Vec::with_capacity(n * ROUNDS);
    let start = Instant::now();
    for _ in 0..ROUNDS {
        for i in 0..n {
            let t = Instant::now();
            f(i)?;
            latencies.push(t.elapsed());
        }
    }
    Ok(Measured {
        total: start.elapsed(),
        n: n * ROUNDS,
        latencies,
    })
}

fn ort_direct(model: &Path, set: &TestSet) -> Result<Measured> {
    // The same session options wasmtime-wasi-nn's ONNX backend uses (CPU, optimisation level 3).
    let mut session = ort::session::Session::builder()?
        .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)?
        .commit_from_file(model)?;
    measure(set.images.len(), |i| {
        let tensor = ort::value::Tensor::from_array(([1i64, 64], set.images[i].clone()))?;
        let outputs = session.run(ort::inputs![tensor])?;
        let (_, scores) = outputs[0].try_extract_tensor::<f32>()?;
        std::hint::black_box(scores.to_vec());
        Ok(())
    })
}

/// Python's per-inference mean and p50 (µs) over the same passes.
fn ort_python(model: &Path) -> Result<(f64, f64)> {
    let out = python(
        &format!(
            r#"
import json, sys, time, numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
name = s.get_inputs()[0].name
imgs = [np.array([r], dtype=np.float32) for r in json.load(open(sys.argv[2]))["images"]]
for x in imgs[:50]: s.run(None, {{name: x}})
lat = []
t0 = time.perf_counter()
for _ in range({ROUNDS}):
    for x in imgs:
        t = time.perf_counter(); s.run(None, {{name: x}}); lat.append(time.perf_counter() - t)
total = time.perf_counter() - t0
lat.sort()
print(total / len(lat) * 1e6, lat[len(lat) // 2] * 1e6)
"#
        ),
        &[
            model.to_str().unwrap_or_default(),
            repo()
                .join("target/models/digits-test.json")
                .to_str()
                .unwrap_or_default(),
        ],
    )?;
    let v: Vec<f64> = out.split_whitespace().filter_map(|s| s.parse().ok()).collect();
    match v.as_slice() {
        [mean, p50] => Ok((*mean, *p50)),
        _ => bail!("python printed {out:?}"),
    }
}

fn wasmflow(runtime: &Runtime, graph: &Path, set: &TestSet) -> Result<Measured> {
    let loaded = load_graph(
        graph,
        &wasmflow_compose::ComposeOptions {
            default_modules_dir: Some(default_modules_dir()),
            ..Default::default()
        },
    )?;
    let (mut g, _) = runtime.start(&loaded, RunOptions::default())?;
    let payloads: Vec<Arc<[u8]>> = set.pngs.iter().map(|p| Arc::from(p.as_slice())).collect();
    let mut ms = 1_767_225_600_000u64;
    measure(set.pngs.len(), |i| {
        ms += 1;
        let out = g.push(
            None,
            Input {
                topic: "camera".into(),
                payload: payloads[i].clone(),
                content_type: None,
                user_properties: vec![("__ts".into(), format!("{ms:0>15}:00000:bench"))],
            },
        )?;
        match out.first().map(|o| &o.destination) {
            Some(Destination::Sink(_)) => Ok(()),
            other => bail!("no label for image {i}: {other:?}"),
        }
    })
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

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() -> Result<()> {
    let set = test_set()?;
    let dir = tempfile::tempdir()?;
    let digits = repo().join("target/models/digits.onnx");
    let mlp = dir.path().join("mlp.onnx");
    write_mlp(&mlp)?;
    let library = locate_onnxruntime(None)?;
    let info = init_onnxruntime(&library)?;

    let runtime = Runtime::new(&RuntimeConfig {
        data_dir: dir.path().into(),
        ephemeral_state: true,
        cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasmflow-cache")),
        limits: Default::default(),
    })?;
    let runtime = runtime.with_wasi_nn(NnOptions {
        onnxruntime: Some(library.clone()),
        models: vec![("mlp".into(), mlp.clone())],
    });

    println!(
        "inference: {} held-out digits × {ROUNDS} passes, one image per call; ONNX Runtime {} ({})",
        set.images.len(),
        library.display(),
        info.split(',').next().unwrap_or_default()
    );
    println!(
        "{:<8} {:<14} {:>10} {:>10} {:>10} {:>12} {:>10}",
        "model", "variant", "mean µs", "p50 µs", "p99 µs", "items/s", "vs ort"
    );
    for (name, model, param) in [("digits", &digits, None), ("mlp", &mlp, Some("mlp"))] {
        let direct = ort_direct(model, &set)?;
        let (py_mean, py_p50) = ort_python(model)?;
        let through = wasmflow(&runtime, &graph_file(dir.path(), param)?, &set)?;
        let base = us(direct.per_item());
        let row = |variant: &str, mean: f64, p50: f64, p99: Option<f64>| {
            println!(
                "{name:<8} {variant:<14} {mean:>10.1} {p50:>10.1} {:>10} {:>12.0} {:>9.2}×",
                p99.map_or("-".to_string(), |v| format!("{v:.1}")),
                1e6 / mean,
                mean / base
            );
        };
        row("ort (Rust)", base, us(direct.pct(0.5)), Some(us(direct.pct(0.99))));
        row("ort (Python)", py_mean, py_p50, None);
        row(
            "wasmflow",
            us(through.per_item()),
            us(through.pct(0.5)),
            Some(us(through.pct(0.99))),
        );
        println!(
            "{name:<8} wasmflow overhead per inference: {:+.1} µs ({:+.0}%)",
            us(through.per_item()) - base,
            (us(through.per_item()) / base - 1.0) * 100.0
        );
    }
    Ok(())
}
