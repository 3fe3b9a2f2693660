//! wasi-nn end to end: the digits classifier (scripts/build-model.py) run by ONNX Runtime through
//! the `snapshot` operator, checked against the same model run by ONNX Runtime directly (Python
//! `onnxruntime`, computed here, not hard-coded); and the inputs that must be an item's `Err`.
//!
//! Needs what `make test` prepares: ONNX Runtime's library and the Python packages
//! (scripts/setup.sh), the model (scripts/build-model.py), the modules (build-components.sh).
//! A missing piece fails with what to run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::support::*;
use wasmflow_runtime::graph::RunOptions;
use wasmflow_runtime::services::wasi_nn::NnOptions;
use wasmflow_transport::{Destination, Input, Output};

fn models_dir() -> PathBuf {
    repo().join("target/models")
}

fn model_file(name: &str) -> PathBuf {
    let p = models_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `make model` (python3 scripts/build-model.py after scripts/setup.sh)",
        p.display()
    );
    p
}

/// Runs a Python snippet (argv after it) and returns its standard output.
fn python(code: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python3 is needed (scripts/setup.sh installs onnxruntime, onnx for it)")
        .succeeded("python failed (run scripts/setup.sh for onnxruntime/onnx)");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The held-out images as PNG files with their true labels (from the file names).
fn test_images() -> Vec<(PathBuf, String)> {
    let dir = model_file("digits-test");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("digits-test")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let stem = p.file_stem().and_then(|s| s.to_str()).expect("name").to_owned();
            let label = stem.rsplit('-').next().expect("<index>-<label>").to_owned();
            (p, label)
        })
        .collect()
}

/// Predictions of the model run by ONNX Runtime in Python: on the original test set, and on
/// the same images as the PNG files carry them (0..16 stored as `round(v * 255 / 16)`, read back
/// as `p * 16 / 255`, the way the snapshot operator reads an 8×8 image). The second is what
/// wasmflow is given, so it must predict exactly that; the first is the model's own accuracy
/// (the two can differ on an image or two near a decision boundary).
fn onnxruntime_predictions() -> (Vec<String>, Vec<String>) {
    let code = r#"
import json, sys
import numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
t = json.load(open(sys.argv[2]))
exact = np.array(t["images"], dtype=np.float32)
# As scripts/build-model.py writes the PNGs (Python's round), and as the operator reads them.
png = np.array([[min(255, round(v * 255 / 16)) for v in img] for img in t["images"]], dtype=np.float64)
as_read = (png * 16.0 / 255.0).astype(np.float32)
labels = lambda x: [str(int(i)) for i in s.run(None, {s.get_inputs()[0].name: x})[0].argmax(1)]
print(json.dumps([labels(exact), labels(as_read)]))
"#;
    let out = python(
        code,
        &[
            model_file("digits.onnx").to_str().unwrap(),
            model_file("digits-test.json").to_str().unwrap(),
        ],
    );
    serde_json::from_str(out.trim()).expect("predictions")
}

fn image_input(path: &Path, ms: u64) -> Input {
    Input {
        topic: "camera/test".into(),
        payload: Arc::from(std::fs::read(path).expect("image")),
        content_type: Some("image/png".into()),
        user_properties: vec![("__ts".into(), ts(ms))],
    }
}

/// source → snapshot map (`model` parameter when given) → sink.
fn classifier_graph(h: &Harness, model_param: Option<&str>) -> PathBuf {
    let config = match model_param {
        Some(m) => format!(
            "moduleConfigurations:\n  - name: classify\n    parameters:\n      model:\n        name: model\n        description: preloaded model\n        default: \"{m}\"\n"
        ),
        None => String::new(),
    };
    h.write_graph(
        "classify.yaml",
        "classify",
        "digits through wasi-nn",
        &format!(
            r#"  features:
    - name: "wasi-nn"
{config}operations:
  - {{operationType: source, name: source}}
  - {{operationType: map, name: classify, module: "azure-samples/explore-iot-operations/snapshot:1.0.0"}}
  - {{operationType: sink, name: sink}}
connections:
  - {{from: {{name: source}}, to: {{name: classify}}}}
  - {{from: {{name: classify}}, to: {{name: sink}}}}
"#
        ),
    )
}

fn label_of(o: &Output) -> String {
    let v: serde_json::Value = serde_json::from_slice(&o.payload).expect("json output");
    v["object"]["result"].as_str().expect("object.result").to_owned()
}

fn dead_letter(o: &Output) -> Option<(&str, &str)> {
    match &o.destination {
        Destination::DeadLetter { operation, error } => Some((operation.as_str(), error.as_str())),
        Destination::Sink(_) => None,
    }
}

fn with_nn(models: Vec<(String, PathBuf)>) -> Harness {
    Harness::new().with_wasi_nn(NnOptions {
        onnxruntime: None,
        models,
    })
}

fn accuracy(predicted: &[String], truth: &[String]) -> f64 {
    let right = predicted.iter().zip(truth).filter(|(p, t)| p == t).count();
    right as f64 / truth.len() as f64
}

fn classify_all(h: &Harness, graph: &Path) -> Vec<String> {
    let images = test_images();
    let mut g = h.start(graph, RunOptions::default());
    let mut labels = Vec::new();
    for (i, (path, _)) in images.iter().enumerate() {
        let out = g
            .push(None, image_input(path, 1_767_225_600_000 + i as u64))
            .expect("push");
        assert_eq!(out.len(), 1, "{}: {out:?}", path.display());
        assert!(dead_letter(&out[0]).is_none(), "{}: {out:?}", path.display());
        labels.push(label_of(&out[0]));
    }
    labels
}

#[test]
fn held_out_digits_through_wasmflow_score_what_onnx_runtime_scores() {
    let truth: Vec<String> = test_images().into_iter().map(|(_, l)| l).collect();
    assert_eq!(truth.len(), 450, "build-model.py holds out 450 images");
    let (exact, direct) = onnxruntime_predictions();
    let model_accuracy = accuracy(&exact, &truth);
    let direct_accuracy = accuracy(&direct, &truth);

    // The model embedded in the module (graph.load) …
    let h = with_nn(vec![]);
    let embedded = classify_all(&h, &classifier_graph(&h, None));
    // … and the same file preloaded by the host (graph.load-by-name).
    let h2 = with_nn(vec![("digits".into(), model_file("digits.onnx"))]);
    let by_name = classify_all(&h2, &classifier_graph(&h2, Some("digits")));

    let a = accuracy(&embedded, &truth);
    println!(
        "accuracy: wasmflow {a:.4}, by name {:.4}, ONNX Runtime directly {direct_accuracy:.4} \
         (on the data set's exact values {model_accuracy:.4})",
        accuracy(&by_name, &truth)
    );
    assert!(
        model_accuracy >= 0.95 && direct_accuracy >= 0.95,
        "the model itself reaches only {model_accuracy} ({direct_accuracy} from the PNGs)"
    );
    assert_eq!(a, direct_accuracy, "wasmflow's accuracy differs from ONNX Runtime's");
    assert_eq!(embedded, direct, "per-image predictions differ");
    assert_eq!(by_name, direct, "load-by-name predictions differ");
}

#[test]
fn a_non_image_on_the_image_path_is_that_items_error_and_the_graph_goes_on() {
    let h = with_nn(vec![]);
    let mut g = h.start(
        &classifier_graph(&h, None),
        RunOptions {
            dead_letter: true,
            ..Default::default()
        },
    );
    // The 7 of the golden tests (held-out image 18; the model gets it right).
    let (seven, label) = test_images().swap_remove(18);
    assert_eq!(label, "7");
    let out = g
        .push(None, input(r#"{"temperature":{"value":20}}"#, 1_000))
        .expect("push");
    let (op, error) = dead_letter(&out[0]).expect("dead letter");
    assert_eq!(op, "classify");
    assert!(error.contains("not a PNG or JPEG image"), "{error}");
    // A PNG signature with garbage after it.
    let mut broken = input("", 2_000);
    broken.payload = Arc::from(&b"\x89PNG\r\n\x1a\ngarbage"[..]);
    let out = g.push(None, broken).expect("push");
    assert!(
        dead_letter(&out[0]).expect("dead letter").1.contains("does not decode"),
        "{out:?}"
    );
    let out = g.push(None, image_input(&seven, 3_000)).expect("push");
    assert_eq!(label_of(&out[0]), "7");
    assert_eq!(g.rebuilds(), 0, "bad items must not trap the instance");
}

/// An ONNX model written by the `onnx` Python package: `Relu` over a float input of `width`.
fn relu_model(dir: &Path, width: u32) -> PathBuf {
    let path = dir.join(format!("relu{width}.onnx"));
    python(
        r#"
import sys, onnx
from onnx import helper, TensorProto
w = int(sys.argv[2])
x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, w])
y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, w])
g = helper.make_graph([helper.make_node("Relu", ["X"], ["Y"])], "relu", [x], [y])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
"#,
        &[path.to_str().unwrap(), &width.to_string()],
    );
    path
}

#[test]
fn a_model_expecting_another_shape_fails_each_item_not_the_host() {
    let dir = tempfile::tempdir().unwrap();
    // Input [N, 32]: the operator's [1, 64] tensor does not fit.
    let h = with_nn(vec![("wrong".into(), relu_model(dir.path(), 32))]);
    let mut g = h.start(
        &classifier_graph(&h, Some("wrong")),
        RunOptions {
            dead_letter: true,
            ..Default::default()
        },
    );
    let (image, _) = &test_images()[0];
    for i in 0..2 {
        let out = g.push(None, image_input(image, 1_000 + i)).expect("push");
        let (op, error) = dead_letter(&out[0]).expect("dead letter");
        assert_eq!(op, "classify");
        assert!(error.contains("wasi-nn compute failed"), "{error}");
    }
    // Input [N, 64] but 64 outputs: the model runs, its output does not fit the 10 labels.
    let h = with_nn(vec![("wide".into(), relu_model(dir.path(), 64))]);
    let mut g = h.start(
        &classifier_graph(&h, Some("wide")),
        RunOptions {
            dead_letter: true,
            ..Default::default()
        },
    );
    let out = g.push(None, image_input(image, 1_000)).expect("push");
    let error = dead_letter(&out[0]).expect("dead letter").1;
    assert!(
        error.contains("the model gives 64 scores, but there are 10 labels"),
        "{error}"
    );
    assert_eq!(g.rebuilds(), 0);
}

#[test]
fn an_unknown_model_name_is_each_items_error() {
    let h = with_nn(vec![]);
    let mut g = h.start(
        &classifier_graph(&h, Some("nosuchmodel")),
        RunOptions {
            dead_letter: true,
            ..Default::default()
        },
    );
    let (image, _) = &test_images()[0];
    let out = g.push(None, image_input(image, 1_000)).expect("push");
    let error = dead_letter(&out[0]).expect("dead letter").1;
    assert!(error.contains("load-by-name `nosuchmodel`"), "{error}");
    assert!(error.contains("NotFound"), "{error}");
}

#[test]
fn a_corrupt_preloaded_model_stops_start_up_naming_the_flag_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("corrupt.onnx");
    std::fs::write(&bad, b"this is not an ONNX model").unwrap();
    let h = with_nn(vec![("digits".into(), bad.clone())]);
    let loaded = h.load(&classifier_graph(&h, Some("digits")));
    let e = format!(
        "{:#}",
        h.runtime
            .start(&loaded, RunOptions::default())
            .err()
            .expect("must fail")
    );
    assert!(e.contains(&format!("--model digits={}", bad.display())), "{e}");
    assert!(e.contains("ONNX Runtime cannot load it"), "{e}");
}

#[test]
fn graphs_without_wasi_nn_never_touch_onnx_runtime() {
    // A library path that does not exist: fine as long as no module imports wasi:nn.
    let h = Harness::new().with_wasi_nn(NnOptions {
        onnxruntime: Some("/nonexistent/libonnxruntime.so".into()),
        models: vec![],
    });
    let mut g = h.start(
        &repo().join("compose/tests/azure-compat/graph-simple.yaml"),
        RunOptions::default(),
    );
    let out = run_all(
        &mut g,
        vec![input(r#"{"temperature":{"value":1209,"unit":"F"}}"#, 1_000)],
    );
    assert_eq!(out.len(), 1);
}

fn wasmflow(args: &[&str], stdin: &[u8]) -> (bool, String, String) {
    use std::io::Write;
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmflow"))
        .args(args)
        .current_dir(repo())
        .env("WASMFLOW_DATA_DIR", data.path())
        .env_remove("WASMFLOW_MODULES")
        .env_remove("ORT_DYLIB_PATH")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run wasmflow");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_onnx_runtime_a_wasi_nn_graph_says_what_to_install() {
    module("snapshot");
    // Not there at all.
    let (ok, _, err) = wasmflow(
        &[
            "run",
            "graphs/graph-dataflow.yaml",
            "--onnxruntime",
            "/nonexistent/libonnxruntime.so",
        ],
        b"",
    );
    assert!(!ok, "{err}");
    assert!(err.contains("import wasi:nn"), "{err}");
    assert!(err.contains("`module-snapshot/map`"), "{err}");
    assert!(err.contains("scripts/setup.sh"), "{err}");
    // There, but no ONNX Runtime: ort panics loading it; the probe turns that into an error.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so.1.22.1");
    std::fs::write(&fake, b"not a shared library").unwrap();
    let (ok, _, err) = wasmflow(
        &[
            "run",
            "graphs/graph-dataflow.yaml",
            "--onnxruntime",
            fake.to_str().unwrap(),
        ],
        b"",
    );
    assert!(!ok, "{err}");
    assert!(
        err.contains(&format!("ONNX Runtime at {} cannot be used", fake.display())),
        "{err}"
    );
    assert!(!err.contains("panicked at") || err.contains("cannot be used"), "{err}");
}

#[test]
fn a_graph_importing_wasi_nn_without_the_feature_runs_with_a_warning() {
    // The platform's graph-complex.yaml declares no features; its snapshot module imports wasi:nn.
    // (`run --input` reads text lines; the image path of this graph is covered by its golden test.)
    module("snapshot");
    let (ok, out, err) = wasmflow(
        &["run", "compose/tests/azure-compat/graph-complex.yaml", "--input", "-"],
        b"{\"temperature\":{\"value\":1209,\"unit\":\"F\"}}\n",
    );
    assert!(ok, "{err}");
    assert!(err.contains("does not declare the `wasi-nn` feature"), "{err}");
    assert!(out.contains("653.8888888888889"), "{out}");
}
