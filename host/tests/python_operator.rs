//! A Python operator next to Rust ones: `fahrenheit-py` (components/python/fahrenheit, built by
//! componentize-py into target/modules/fahrenheit-py.wasm by scripts/build-components.sh) runs
//! unmodified in graphs/python-mix.yaml, between the Rust window and the Rust filter, and writes
//! exactly the bytes the Rust `temperature` map writes.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::*;
use wasmflow_host::graph::{Destination, Graph, Input, Output, RunOptions};

const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z, on a 10 s boundary

const HOT_RECORD: &str = r#"{"temperature":{"value":653.8888888888889,"count":0,"max":0.0,"min":0.0,"average":0.0,"last":0.0,"unit":"C","overtemp":false}}"#;

/// The Python module, or a failure that says how to build it.
fn python_module() -> PathBuf {
    let p = wasmflow_host::runtime::default_modules_dir().join("fahrenheit-py.wasm");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build-components.sh (it builds the Python operator with componentize-py; scripts/setup.sh installs it)",
        p.display()
    );
    p
}

fn python_mix() -> PathBuf {
    python_module();
    repo().join("graphs/python-mix.yaml")
}

fn bytes_input(payload: &[u8], ms: u64) -> Input {
    Input { payload: Arc::from(payload), ..input("", ms) }
}

fn metric(h: &Harness, name: &str, op: &str) -> String {
    let text = h.runtime.metrics.render();
    text.lines()
        .find(|l| l.starts_with(name) && l.contains(&format!("operation=\"{op}\"")))
        .unwrap_or_else(|| panic!("no {name} for {op} in\n{text}"))
        .to_string()
}

#[test]
fn python_map_matches_the_rust_map_in_the_same_graph() {
    let h = Harness::new();
    let reading = r#"{"temperature":{"value":1209,"unit":"F"}}"#;
    let run = |graph: &std::path::Path| {
        let mut g = h.start(graph, RunOptions::default());
        run_all(&mut g, vec![input(reading, T0 + 1000)])
    };
    let python = run(&python_mix());
    let rust = run(&repo().join("graphs/temperature.yaml"));
    assert_eq!(python.len(), 1, "{python:?}");
    assert_eq!(payload(&python[0]), HOT_RECORD);
    assert_eq!(python, rust, "the Python graph's output is the Rust graph's");
    assert_eq!(python[0].destination, Destination::Sink("sink".into()));
    assert_eq!(python[0].topic.as_deref(), Some("sensors/test"));
    // Input 1767225601000 ms: the window moves it to the end of its 10 s window.
    assert_eq!(prop(&python[0], "__ts"), Some("001767225610000:00000:test"));
    assert_eq!(prop(&python[0], "__ts"), Some(ts(T0 + 10_000).as_str()));
}

#[test]
fn other_payloads_pass_the_python_map_and_the_filter_drops_them() {
    let h = Harness::new();
    let options = RunOptions { dead_letter: true, ..RunOptions::default() };
    let mut g = h.start(&python_mix(), options);
    let out = run_all(&mut g, vec![input(r#"{"humidity":{"value":41.5}}"#, T0 + 1000), input("not json", T0 + 2000)]);
    assert!(out.is_empty(), "nothing reaches the sink, nothing is dead-lettered: {out:?}");
    assert_eq!(g.rebuilds(), 0);
    let map = "module-fahrenheit-py/map";
    assert!(metric(&h, "wasmflow_messages_in_total", map).ends_with(" 2"));
    assert!(metric(&h, "wasmflow_messages_out_total", map).ends_with(" 2"), "the map passed both");
    assert!(metric(&h, "wasmflow_messages_dropped_total", "module-temperature/filter").ends_with(" 2"));
}

/// `source -> map -> sink` on `module`.
fn map_graph(h: &Harness, module: &str) -> Graph {
    let yaml = format!(
        r#"
metadata: {{ name: "map {module}", version: "1.0.0" }}
moduleRequirements: {{ apiVersion: "1.1.0", runtimeVersion: "1.1.0" }}
operations:
  - {{ operationType: "source", name: "source" }}
  - {{ operationType: "map", name: "module-{module}/map", module: "wasmflow/{module}:1.0.0" }}
  - {{ operationType: "sink", name: "sink" }}
connections:
  - {{ from: {{ name: "source" }}, to: {{ name: "module-{module}/map" }} }}
  - {{ from: {{ name: "module-{module}/map" }}, to: {{ name: "sink" }} }}
"#
    );
    let path = h.write_graph(&format!("map-{module}.yaml"), &yaml);
    h.start(&path, RunOptions { dead_letter: true, ..RunOptions::default() })
}

/// Payloads on which the two maps must agree byte for byte: readings, summaries, the float
/// formats serde_json writes, and what serde does or does not read as a temperature.
const AGREE_ON: &[&[u8]] = &[
    br#"{"temperature":{"value":1209,"unit":"F"}}"#,
    br#"{"temperature":{"value":68,"unit":"F"}}"#,
    br#"{"temperature":{"value":32,"unit":"F"}}"#,
    br#"{"temperature":{"unit":"C","value":21.5}}"#,
    br#"{"temperature":{"count":2,"max":212,"min":32,"average":122,"last":212,"unit":"F"}}"#,
    br#"{"temperature":{"count":3,"max":40.0,"min":5.0,"average":20.0,"last":40.0,"unit":"C","overtemp":true}}"#,
    br#"{"temperature":{"value":1e20,"unit":"F"}}"#,
    br#"{"temperature":{"value":32.00001,"unit":"F"}}"#,
    br#"{"temperature":{"value":-1.7976931348623157e308,"unit":"F"}}"#,
    br#"{"temperature":{"value":-0,"unit":"C"}}"#,
    br#"{"temperature":{"value":12345678901234567890123,"unit":"F"}}"#,
    br#"{"temperature":{"value":1,"unit":"F"},"other":[1,{"x":null}]}"#,
    br#"{"temperature":{"value":1,"unit":"F","extra":1e400}}"#,
    b"{\"temperature\":{\"value\":1,\"unit\":\"F\",\"extra\":\"\xff\"}}",
    br#"{"temperature":{"value":1,"unit":{"F":null}}}"#,
    br#"{"temperature":[1,0,0,0,0,0,"F"]}"#,
    br#"[{"value":1,"unit":"F"}]"#,
    br#"{"humidity":{"value":40}}"#,
    b"not json",
    b"\x89PNG\r\n\x1a\n\0\0",
    b"",
    br#"{"temperature":{"value":3,"unit":"K"}}"#,
    br#"{"temperature":{"value":NaN,"unit":"F"}}"#,
    br#"{"temperature":{"value":1e400,"unit":"F"}}"#,
    br#"{"temperature":{"value":1,"value":2,"unit":"F"}}"#,
    br#"{"temperature":{"count":1.0,"unit":"F"}}"#,
    br#"{"temperature":{"value":true,"unit":"F"}}"#,
    b"{\"temperature\":{\"value\":1,\"unit\":\"F\",\"\xff\":0}}",
    b"\xef\xbb\xbf{\"temperature\":{\"value\":1,\"unit\":\"F\"}}",
];

#[test]
fn python_and_rust_maps_write_the_same_bytes() {
    let h = Harness::new();
    let mut rust = map_graph(&h, "temperature");
    let mut python = map_graph(&h, "fahrenheit-py");
    for (i, p) in AGREE_ON.iter().enumerate() {
        let ms = T0 + i as u64;
        let r = run_all(&mut rust, vec![bytes_input(p, ms)]);
        let py = run_all(&mut python, vec![bytes_input(p, ms)]);
        let shown = String::from_utf8_lossy(p);
        assert_eq!(py.len(), 1, "{shown}: {py:?}");
        assert_eq!(py[0].destination, Destination::Sink("sink".into()), "{shown}");
        assert_eq!(
            String::from_utf8_lossy(&py[0].payload),
            String::from_utf8_lossy(&r[0].payload),
            "{shown}"
        );
        assert_eq!(py, r, "{shown}");
    }
    assert_eq!(python.rebuilds(), 0);
}

#[test]
fn python_map_leaves_non_temperatures_byte_for_byte() {
    let h = Harness::new();
    let mut python = map_graph(&h, "fahrenheit-py");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for p in [&b"\x89PNG\r\n\x1a\n\0\0\xff"[..], br#"{"humidity":{"value":40}}"#, br#"{"temperature":{"value":3,"unit":"K"}}"#, deep.as_bytes()] {
        let out: Vec<Output> = run_all(&mut python, vec![bytes_input(p, T0)]);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(&*out[0].payload, p);
    }
    assert_eq!(python.rebuilds(), 0, "no payload traps the Python interpreter");
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn python_init_logs_through_the_imported_logger() {
    let h = Harness::new();
    let cap = Capture::default();
    let w = cap.clone();
    let sub = tracing_subscriber::fmt().with_writer(move || w.clone()).with_ansi(false).finish();
    let graph = python_mix();
    tracing::subscriber::with_default(sub, || drop(h.start(&graph, RunOptions::default())));
    let logs = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("fahrenheit-py/map"))
        .unwrap_or_else(|| panic!("no log record from the Python init:\n{logs}"));
    assert!(line.contains("INFO") && line.contains("init with 0 properties: []"), "{line}");
    assert!(line.contains("module-fahrenheit-py/map"), "the record names the operation: {line}");
}
