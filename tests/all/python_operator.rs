//! A Python operator next to Rust ones: `fahrenheit-py` (components/python/fahrenheit, built by
//! componentize-py into target/modules/fahrenheit-py.wasm by scripts/build-components.sh) runs
//! unmodified in graphs/python-mix.yaml, between the Rust window and the Rust filter, and writes
//! exactly the bytes the Rust `temperature` map writes.

use std::path::PathBuf;
use std::sync::Arc;

use crate::support::*;
use wasmflow_runtime::graph::{Graph, RunOptions};
use wasmflow_transport::{Destination, Input, Output};

const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z, on a 10 s boundary

const HOT_RECORD: &str = r#"{"temperature":{"value":653.8888888888889,"count":0,"max":0.0,"min":0.0,"average":0.0,"last":0.0,"unit":"C","overtemp":false}}"#;

/// The Python module, or a failure that says how to build it.
fn python_module() -> PathBuf {
    let p = wasmflow_runtime::default_modules_dir().join("fahrenheit-py.wasm");
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
    Input {
        payload: Arc::from(payload),
        ..input("", ms)
    }
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
    crate::support::logs();
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
    crate::support::logs();
    let h = Harness::new();
    let options = RunOptions {
        dead_letter: true,
        ..RunOptions::default()
    };
    let mut g = h.start(&python_mix(), options);
    let out = run_all(
        &mut g,
        vec![
            input(r#"{"humidity":{"value":41.5}}"#, T0 + 1000),
            input("not json", T0 + 2000),
        ],
    );
    assert!(
        out.is_empty(),
        "nothing reaches the sink, nothing is dead-lettered: {out:?}"
    );
    assert_eq!(g.rebuilds(), 0);
    let map = "module-fahrenheit-py/map";
    assert!(metric(&h, "wasmflow_messages_in_total", map).ends_with(" 2"));
    assert!(
        metric(&h, "wasmflow_messages_out_total", map).ends_with(" 2"),
        "the map passed both"
    );
    assert!(metric(&h, "wasmflow_messages_dropped_total", "module-temperature/filter").ends_with(" 2"));
}

/// `source -> map -> sink` on `module`.
fn map_graph(h: &Harness, module: &str) -> Graph {
    let body = format!(
        r#"operations:
  - {{ operationType: "source", name: "source" }}
  - {{ operationType: "map", name: "module-{module}/map", module: "wasmflow/{module}:1.0.0" }}
  - {{ operationType: "sink", name: "sink" }}
connections:
  - {{ from: {{ name: "source" }}, to: {{ name: "module-{module}/map" }} }}
  - {{ from: {{ name: "module-{module}/map" }}, to: {{ name: "sink" }} }}
"#
    );
    let path = h.write_graph(
        &format!("map-{module}.yaml"),
        &format!("map {module}"),
        "source, one map, sink",
        &body,
    );
    h.start(
        &path,
        RunOptions {
            dead_letter: true,
            ..RunOptions::default()
        },
    )
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

/// Every payload through `module`'s map alone. Each graph runs right after it starts: the host
/// re-arms the call deadline before operator calls but not before the source's (graph.rs
/// `ingest`), so a graph left idle for longer than `call_timeout` (while another one compiles)
/// loses its next message to an epoch trap.
fn through_map(h: &Harness, module: &str, payloads: &[&[u8]]) -> (Vec<Vec<Output>>, u64) {
    let mut g = map_graph(h, module);
    let outs = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| run_all(&mut g, vec![bytes_input(p, T0 + i as u64)]))
        .collect();
    (outs, g.rebuilds())
}

/// `{"temperature":{…,"x":…}}` nested `depth` levels deep, arrays or objects.
fn nested(depth: usize, objects: bool) -> Vec<u8> {
    let (open, empty, close) = if objects {
        (r#"{"a":"#, "{}", "}")
    } else {
        ("[", "[]", "]")
    };
    let inner = format!("{}{empty}{}", open.repeat(depth - 3), close.repeat(depth - 3));
    format!(r#"{{"temperature":{{"value":1,"unit":"F","x":{inner}}}}}"#).into_bytes()
}

/// Nesting the Python map reads (temperature_record.MAX_DEPTH), and serde_json too.
const MAX_DEPTH: usize = 500;

#[test]
fn python_and_rust_maps_write_the_same_bytes() {
    crate::support::logs();
    let h = Harness::new();
    let deep = [nested(MAX_DEPTH, false), nested(MAX_DEPTH, true)];
    let payloads: Vec<&[u8]> = AGREE_ON.iter().copied().chain(deep.iter().map(Vec::as_slice)).collect();
    let (rust, _) = through_map(&h, "temperature", &payloads);
    let (python, rebuilds) = through_map(&h, "fahrenheit-py", &payloads);
    for ((p, r), py) in payloads.iter().zip(&rust).zip(&python) {
        let shown = String::from_utf8_lossy(&p[..p.len().min(120)]);
        assert_eq!(py.len(), 1, "{shown}: {py:?}");
        assert_eq!(py[0].destination, Destination::Sink("sink".into()), "{shown}");
        assert_eq!(
            String::from_utf8_lossy(&py[0].payload),
            String::from_utf8_lossy(&r[0].payload),
            "{shown}"
        );
        assert_eq!(py, r, "{shown}");
    }
    assert_eq!(rebuilds, 0);
}

#[test]
fn python_map_leaves_non_temperatures_byte_for_byte() {
    crate::support::logs();
    let h = Harness::new();
    let too_deep = [nested(MAX_DEPTH + 1, false), nested(MAX_DEPTH + 1, true)];
    let very_deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let payloads: Vec<&[u8]> = vec![
        b"\x89PNG\r\n\x1a\n\0\0\xff",
        br#"{"humidity":{"value":40}}"#,
        br#"{"temperature":{"value":3,"unit":"K"}}"#,
        // Deeper than the Python map reads (the Rust map converts these): without the limit,
        // CPython's recursive parser exhausted the wasm stack at 1000-1500 levels and trapped.
        &too_deep[0],
        &too_deep[1],
        very_deep.as_bytes(),
    ];
    let (outs, rebuilds) = through_map(&h, "fahrenheit-py", &payloads);
    for (p, out) in payloads.iter().zip(&outs) {
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].destination, Destination::Sink("sink".into()));
        assert_eq!(&*out[0].payload, *p);
    }
    assert_eq!(rebuilds, 0, "no payload traps the Python interpreter");
}

#[test]
fn python_init_logs_through_the_imported_logger() {
    crate::support::logs();
    let h = Harness::new();
    drop(h.start(&python_mix(), RunOptions::default()));
    let logs = crate::support::logs().contents();
    let line = logs
        .lines()
        .find(|l| l.contains("fahrenheit-py/map"))
        .unwrap_or_else(|| panic!("no log record from the Python init:\n{logs}"));
    assert!(
        line.contains("INFO") && line.contains("init with 0 properties: []"),
        "{line}"
    );
    assert!(
        line.contains("module-fahrenheit-py/map"),
        "the record names the operation: {line}"
    );
}

/// Issue 14: many Python operators in one graph. Each componentize-py operator brings its own
/// CPython (14 core modules, some 400 KiB of component instance); before the instance pool was
/// sized per operation (host/runtime/src/engine.rs, `PER_OPERATION`), a third one failed to load
/// ("component instance size does not fit in pooling allocator requirements"). Eight chained
/// Python maps: the first converts, the others see Celsius and pass it on unchanged, so the output
/// is the Rust map's, and every one of the eight counted the message.
#[test]
fn eight_python_operators_run_in_one_graph() {
    crate::support::logs();
    python_module();
    let h = Harness::new();
    const N: usize = 8;
    let mut body = String::from("operations:\n  - { operationType: \"source\", name: \"source\" }\n");
    for i in 0..N {
        body += &format!("  - {{ operationType: \"map\", name: \"py{i}\", module: \"wasmflow/fahrenheit-py:1.0.0\" }}\n");
    }
    body += "  - { operationType: \"sink\", name: \"sink\" }\nconnections:\n";
    let names: Vec<String> = std::iter::once("source".to_owned())
        .chain((0..N).map(|i| format!("py{i}")))
        .chain(std::iter::once("sink".to_owned()))
        .collect();
    for pair in names.windows(2) {
        body += &format!("  - {{ from: {{ name: \"{}\" }}, to: {{ name: \"{}\" }} }}\n", pair[0], pair[1]);
    }
    let path = h.write_graph("eight-py.yaml", "eight python maps", "source, 8 Python maps, sink", &body);
    let mut g = h.start(&path, RunOptions::default());
    let out = run_all(&mut g, vec![input(r#"{"temperature":{"value":212,"unit":"F"}}"#, T0)]);
    assert_eq!(out.len(), 1, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&payload(&out[0])).expect("JSON");
    assert_eq!(v["temperature"]["unit"], "C", "{v}");
    assert_eq!(v["temperature"]["value"].as_f64(), Some(100.0), "{v}");
    for i in 0..N {
        assert!(metric(&h, "wasmflow_messages_in_total", &format!("py{i}")).ends_with(" 1"));
    }
    assert_eq!(g.rebuilds(), 0);
}
