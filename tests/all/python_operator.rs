//! Python operators: `fahrenheit-py` (components/python/fahrenheit, built by componentize-py into
//! target/modules/fahrenheit-py.wasm by scripts/build-components.sh) runs unmodified in
//! graphs/python-mix.yaml, between the Rust window and the Rust filter, and writes exactly the
//! bytes the Rust `temperature` map writes; six componentize-py operators (the platform's map,
//! built from the seed document with componentize-py 0.14 and 0.25.1, and four of ours) share one
//! graph, on an instance pool sized from the composed component.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::support::*;
use wasmflow_runtime::engine::{engine_with_pool, CompiledCache, EngineLimits, Footprint, PoolLimits};
use wasmflow_runtime::graph::{Graph, RunOptions};
use wasmflow_runtime::EngineChoice;
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
    // Other tests run fahrenheit-py too: the record of this graph's operation.
    let line = logs
        .lines()
        .find(|l| l.contains("fahrenheit-py/map") && l.contains("graph=\"Python mix\""))
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
        body +=
            &format!("  - {{ operationType: \"map\", name: \"py{i}\", module: \"wasmflow/fahrenheit-py:1.0.0\" }}\n");
    }
    body += "  - { operationType: \"sink\", name: \"sink\" }\nconnections:\n";
    let names: Vec<String> = std::iter::once("source".to_owned())
        .chain((0..N).map(|i| format!("py{i}")))
        .chain(std::iter::once("sink".to_owned()))
        .collect();
    for pair in names.windows(2) {
        body += &format!(
            "  - {{ from: {{ name: \"{}\" }}, to: {{ name: \"{}\" }} }}\n",
            pair[0], pair[1]
        );
    }
    let path = h.write_graph(
        "eight-py.yaml",
        "eight python maps",
        "source, 8 Python maps, sink",
        &body,
    );
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

// ---- Issue 14: six componentize-py operators, three of them the platform's --------------------

/// componentize-py 0.14, the version the platform's documentation pins (`pip install
/// "componentize-py==0.14"`), which scripts/setup.sh installs in a venv of its own.
fn componentize_py_014() -> PathBuf {
    let dir = std::env::var_os("WASMFLOW_COMPONENTIZE_PY_014_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/wasmflow/componentize-py-0.14")
        });
    let exe = dir.join("bin/componentize-py");
    assert!(
        exe.is_file(),
        "{} is missing: run scripts/setup.sh (it installs componentize-py 0.14 in a venv of its own)",
        exe.display()
    );
    exe
}

/// The platform's Python map as the seed document prints it (`temperature_converter.py`, its
/// "Create a simple module"), extracted at test time from ../shared: it is the platform's code
/// and is not copied into the repository.
fn seed_map_source() -> String {
    let seed = repo().join("../shared/seeds/howto-develop-wasm-modules.md");
    let text = std::fs::read_to_string(&seed).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the platform's seed documents are in ../shared)",
            seed.display()
        )
    });
    text.split("```python\n")
        .skip(1)
        .filter_map(|block| block.split_once("```").map(|(code, _)| code))
        .find(|code| code.starts_with("# temperature_converter.py"))
        .unwrap_or_else(|| panic!("{} prints no `temperature_converter.py`", seed.display()))
        .to_string()
}

/// The two componentize-py versions the seed's map is built with.
#[derive(Clone, Copy, Debug)]
enum Componentize {
    /// 0.14, the platform's pin, exactly the seed's command.
    Pinned,
    /// 0.25.1, the current one on PATH (scripts/setup.sh); it names the bindings package
    /// `wit_world` unless `--world-module map_impl` asks for the seed's name.
    Current,
}

/// The seed's map built as the seed says (`componentize-py -d <schema> -w map-impl componentize
/// temperature_converter -o …`), with wasmflow's `wit/processor` in the role of the platform's
/// `schema` folder. Built once per version and source (kept in the test target's tmp directory,
/// as a build takes 20-30 s), by one test at a time.
fn seed_map(version: Componentize) -> PathBuf {
    use sha2::{Digest, Sha256};
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let source = seed_map_source();
    let wit = repo().join("wit/processor");
    let mut digest = Sha256::new();
    digest.update(source.as_bytes());
    let mut wit_files: Vec<PathBuf> = std::fs::read_dir(&wit).unwrap().map(|e| e.unwrap().path()).collect();
    wit_files.sort();
    for f in wit_files {
        digest.update(std::fs::read(f).unwrap());
    }
    let key = format!("{version:?}-{}", &hex::encode(digest.finalize())[..16]);
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("seed-python");
    let out = cache.join(format!("temperature-converter-{key}.wasm"));
    if out.is_file() {
        return out;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("temperature_converter.py"), &source).unwrap();
    let built = dir.path().join("temperature_converter.wasm");
    let wit = wit.to_str().unwrap();
    let mut command = match version {
        Componentize::Pinned => {
            let mut c = std::process::Command::new(componentize_py_014());
            c.args(["-d", wit, "-w", "map-impl"]);
            c
        }
        Componentize::Current => {
            let mut c = std::process::Command::new("componentize-py");
            c.args(["-d", wit, "-w", "map-impl", "--world-module", "map_impl"]);
            c
        }
    };
    let status = command
        .args(["componentize", "temperature_converter", "-o"])
        .arg(&built)
        .current_dir(dir.path())
        .status()
        .unwrap_or_else(|e| panic!("componentize-py ({version:?}): {e}; run scripts/setup.sh"));
    assert!(
        status.success(),
        "componentize-py ({version:?}) failed to build the seed's map"
    );
    std::fs::create_dir_all(&cache).unwrap();
    // Whole or not at all: another test binary may be looking for the same file.
    let tmp = tempfile::NamedTempFile::new_in(&cache).unwrap();
    std::fs::copy(&built, tmp.path()).unwrap();
    tmp.persist(&out).unwrap();
    out
}

/// Six componentize-py operators in one graph: the platform's map (the seed's
/// `temperature_converter`) built with componentize-py 0.14 and with 0.25.1, and four of ours in
/// the platform's style (components/python: `window-py`, `branch-py`, `filter-py`,
/// `fahrenheit-py`).
///
/// ```text
/// source ─┬─ platform-map@0.14 ── window-py ──────────────────────────── sink `a`
///         └─ platform-map@0.25 ── branch-py ─ True ── filter-py ── fahrenheit-py ── sink `b`
///                                           └ False ─────────────────────────────── sink `other`
/// ```
fn six_python_graph(h: &Harness) -> PathBuf {
    for m in ["window-py", "branch-py", "filter-py", "fahrenheit-py"] {
        crate::support::module(m);
    }
    let pinned = seed_map(Componentize::Pinned);
    let current = seed_map(Componentize::Current);
    let body = format!(
        r#"operations:
  - {{ operationType: "source", name: "source" }}
  - {{ operationType: "map", name: "platform-map-014", module: "{pinned}" }}
  - {{ operationType: "delay", name: "window-py", module: "wasmflow/window-py:1.0.0" }}
  - {{ operationType: "map", name: "platform-map-025", module: "{current}" }}
  - {{ operationType: "branch", name: "branch-py", module: "wasmflow/branch-py:1.0.0" }}
  - {{ operationType: "filter", name: "filter-py", module: "wasmflow/filter-py:1.0.0" }}
  - {{ operationType: "map", name: "fahrenheit-py", module: "wasmflow/fahrenheit-py:1.0.0" }}
  - {{ operationType: "sink", name: "a" }}
  - {{ operationType: "sink", name: "b" }}
  - {{ operationType: "sink", name: "other" }}
connections:
  - {{ from: {{ name: "source" }}, to: {{ name: "platform-map-014" }} }}
  - {{ from: {{ name: "platform-map-014" }}, to: {{ name: "window-py" }} }}
  - {{ from: {{ name: "window-py" }}, to: {{ name: "a" }} }}
  - {{ from: {{ name: "source" }}, to: {{ name: "platform-map-025" }} }}
  - {{ from: {{ name: "platform-map-025" }}, to: {{ name: "branch-py" }} }}
  - {{ from: {{ name: "branch-py", arm: "True" }}, to: {{ name: "filter-py" }} }}
  - {{ from: {{ name: "branch-py", arm: "False" }}, to: {{ name: "other" }} }}
  - {{ from: {{ name: "filter-py" }}, to: {{ name: "fahrenheit-py" }} }}
  - {{ from: {{ name: "fahrenheit-py" }}, to: {{ name: "b" }} }}
"#,
        pinned = pinned.display(),
        current = current.display()
    );
    h.write_graph(
        "six-py.yaml",
        "six python operators",
        "the platform's map twice and four of ours",
        &body,
    )
}

/// Runs [`six_python_graph`] and checks every sink's outputs and every operator's count.
fn run_six_python(h: &Harness, mut g: Graph) {
    let inputs = vec![
        input(r#"{"temperature":{"value":1209,"unit":"F"}}"#, T0 + 1000),
        input(r#"{"humidity":{"value":41.5}}"#, T0 + 2000),
        // No unit: the platform's map converts it (it converts any `value`), fahrenheit-py reads
        // no temperature without a unit: its full record below shows the platform's map ran.
        input(r#"{"temperature":{"value":212}}"#, T0 + 3000),
        // 10 °C: below filter-py's 20 °C.
        input(r#"{"temperature":{"value":50,"unit":"F"}}"#, T0 + 4000),
    ];
    let out = run_all(&mut g, inputs);
    let at = |sink: &str| -> Vec<(String, String)> {
        out.iter()
            .filter(|o| o.destination == Destination::Sink(sink.into()))
            .map(|o| (payload(o), prop(o, "__ts").unwrap_or_default().to_string()))
            .collect()
    };
    let window_end = ts(T0 + 10_000);
    // The platform's map writes with Python's json.dumps (", " and ": "); window-py moves
    // every item to the end of its 10 s window.
    assert_eq!(
        at("a"),
        vec![
            (
                r#"{"temperature": {"value": 653.8888888888889, "unit": "C"}}"#.to_string(),
                window_end.clone()
            ),
            (r#"{"humidity":{"value":41.5}}"#.to_string(), window_end.clone()),
            (
                r#"{"temperature": {"value": 100.0, "unit": "C"}}"#.to_string(),
                window_end.clone()
            ),
            (
                r#"{"temperature": {"value": 10.0, "unit": "C"}}"#.to_string(),
                window_end
            ),
        ],
        "{out:#?}"
    );
    assert_eq!(
        at("b"),
        vec![
            (HOT_RECORD.to_string(), ts(T0 + 1000)),
            (
                r#"{"temperature":{"value":100.0,"count":0,"max":0.0,"min":0.0,"average":0.0,"last":0.0,"unit":"C","overtemp":false}}"#
                    .to_string(),
                ts(T0 + 3000)
            ),
        ],
        "{out:#?}"
    );
    assert_eq!(
        at("other"),
        vec![(r#"{"humidity":{"value":41.5}}"#.to_string(), ts(T0 + 2000))]
    );
    for (op, n) in [
        ("platform-map-014", 4),
        ("window-py", 4),
        ("platform-map-025", 4),
        ("branch-py", 4),
        ("filter-py", 3),
        ("fahrenheit-py", 2),
    ] {
        let line = metric(h, "wasmflow_messages_in_total", op);
        assert!(line.ends_with(&format!(" {n}")), "{line}");
    }
    assert_eq!(g.rebuilds(), 0);
}

#[test]
fn six_componentize_py_operators_run_in_one_graph() {
    crate::support::logs();
    let h = Harness::new();
    let graph = six_python_graph(&h);
    let g = h.start(&graph, RunOptions::default());
    run_six_python(&h, g);
}

/// The instance pool is sized from the composed component: a runtime whose default pool holds
/// one operation (`--max-operations 1`) reads the six-operator graph's footprint, runs it on an
/// engine sized for it, and says so.
#[test]
fn the_instance_pool_is_sized_from_the_composed_component() {
    crate::support::logs();
    let h = Harness::with_limits(EngineLimits {
        max_operations: 1,
        ..EngineLimits::default()
    });
    let graph = six_python_graph(&h);
    let loaded = h.load(&graph);
    let footprint = Footprint::of_component(&loaded.bytes).expect("footprint");
    let (_, choice) = h.runtime.engine_for(&loaded).expect("engine");
    let EngineChoice::Sized(pool) = choice else {
        panic!("expected an engine sized for {footprint}, got {choice:?}");
    };
    assert_eq!(pool.admits(&footprint), Ok(()));
    assert!(
        PoolLimits::for_operations(1).admits(&footprint).is_err(),
        "the default pool of one operation does not hold six CPythons"
    );
    // A second graph that fits reuses the sized engine rather than making another.
    assert_eq!(
        h.runtime.engine_for(&loaded).expect("engine").1,
        EngineChoice::Sized(pool)
    );
    let logs = crate::support::logs().contents();
    assert!(
        logs.contains("graph `six python operators` needs ")
            && logs.contains("runs on an engine whose pool is sized from the component"),
        "{logs}"
    );
    let g = h.start(&graph, RunOptions::default());
    run_six_python(&h, g);
}

/// The footprint is what wasmtime itself counts: a pool of exactly the footprint admits the
/// component, one core instance, memory or table less is refused with wasmtime's count (which
/// must be the footprint's), and the instance size wasmtime reports is within the footprint's
/// upper bound (and not far below it).
#[test]
fn the_footprint_is_what_wasmtime_counts() {
    crate::support::logs();
    let h = Harness::new();
    let graphs = [six_python_graph(&h), repo().join("graphs/temperature-humidity.yaml")];
    let cache = CompiledCache::new(shared_cache());
    let limits = EngineLimits::default();
    for graph in graphs {
        let loaded = h.load(&graph);
        let fp = Footprint::of_component(&loaded.bytes).expect("footprint");
        let exact = PoolLimits::for_footprint(&fp);
        let engine = engine_with_pool(&limits, &exact).expect("engine");
        let (component, _) = cache
            .load(&engine, &loaded.bytes)
            .unwrap_or_else(|e| panic!("{}: a pool of its footprint ({fp}) refuses it: {e:#}", graph.display()));
        // Compiled once; every other pool checks the same compiled component when loading it.
        let compiled = component.serialize().expect("serialize");
        let load = |pool: &PoolLimits| {
            let engine = engine_with_pool(&limits, pool).expect("engine");
            // SAFETY: `compiled` was serialized just above by this wasmtime, with the same
            // compilation settings (only the pool differs, which is checked on load).
            unsafe { wasmtime::component::Component::deserialize(&engine, &compiled) }
                .map(|_| ())
                .map_err(|e| format!("{e:#}"))
        };
        for (pool, said) in [
            (
                PoolLimits {
                    core_instances: fp.core_instances - 1,
                    ..exact
                },
                format!("transitively contains {} core module instances", fp.core_instances),
            ),
            (
                PoolLimits {
                    memories: fp.memories - 1,
                    ..exact
                },
                format!("transitively contains {} Wasm linear memories", fp.memories),
            ),
            (
                PoolLimits {
                    tables: fp.tables - 1,
                    ..exact
                },
                format!("transitively contains {} tables", fp.tables),
            ),
        ] {
            let e = load(&pool).expect_err("one less than the footprint");
            assert!(e.contains(&said), "{}: {e}", graph.display());
        }
        let e = load(&PoolLimits {
            component_instance_bytes: 1,
            ..exact
        })
        .expect_err("1 byte");
        let needed: usize = e
            .split("requires ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no size in: {e}"));
        assert!(
            needed <= fp.component_instance_bytes && fp.component_instance_bytes <= 2 * needed + (64 << 10),
            "{}: wasmtime needs {needed} bytes, the footprint says {}",
            graph.display(),
            fp.component_instance_bytes
        );
    }
}
