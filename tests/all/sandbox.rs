//! What a module can reach through WASI: nothing unless granted (`components/testing/wasi-probe`
//! reports what it sees of the environment and the file system), and what it is handed: one
//! thread, and its payload as a `buffer`.

use crate::support::*;
use wasmflow_runtime::graph::RunOptions;
use wasmflow_runtime::store::WasiGrants;

/// Runs `payloads` through the probe with `grants`; its answers, in order.
fn run_probe(grants: WasiGrants, h: &Harness, payloads: &[String]) -> Vec<String> {
    module("wasi-probe");
    let g = h.write_graph(
        "probe.yaml",
        "probe",
        "what WASI lets a module see",
        r#"operations:
  - { operationType: source, name: source }
  - { operationType: map, name: probe, module: "x/wasi-probe:1.0.0" }
  - { operationType: sink, name: sink }
connections:
  - { from: { name: source }, to: { name: probe } }
  - { from: { name: probe }, to: { name: sink } }
"#,
    );
    let mut g = h.start(
        &g,
        RunOptions {
            wasi: grants,
            ..Default::default()
        },
    );
    let inputs = (1..).zip(payloads).map(|(ms, p)| input(p, ms)).collect();
    run_all(&mut g, inputs).iter().map(payload).collect()
}

/// Asks for two variables and two files: one on the host, one where a grant would mount it.
fn probe(grants: WasiGrants, h: &Harness) -> Vec<String> {
    let secret_dir = h.dir.path().join("granted");
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(secret_dir.join("note.txt"), "hello from the host").unwrap();
    let host_file = secret_dir.join("note.txt");
    let payloads = [
        r#"{"env":"WASMFLOW_PROBE"}"#.to_string(),
        r#"{"env":"HOME"}"#.to_string(),
        format!(r#"{{"file":"{}"}}"#, host_file.display()),
        r#"{"file":"/data/note.txt"}"#.to_string(),
    ];
    run_probe(grants, h, &payloads)
}

#[test]
fn nothing_is_granted_by_default() {
    let h = Harness::new();
    let out = probe(WasiGrants::default(), &h);
    assert_eq!(out[0], r#"{"env":"WASMFLOW_PROBE","value":null}"#);
    assert_eq!(
        out[1], r#"{"env":"HOME","value":null}"#,
        "the host's environment is not inherited"
    );
    assert!(
        out[2].contains(r#""error":"#),
        "host files are out of reach: {}",
        out[2]
    );
    assert!(out[3].contains(r#""error":"#), "{}", out[3]);
}

#[test]
fn granted_variables_and_directories_are_visible() {
    let h = Harness::new();
    let grants = WasiGrants {
        env: vec![("WASMFLOW_PROBE".into(), "granted".into())],
        dirs: vec![(h.dir.path().join("granted"), "/data".into())],
        inherit_stderr: false,
    };
    std::fs::create_dir_all(h.dir.path().join("granted")).unwrap();
    let out = probe(grants, &h);
    assert_eq!(out[0], r#"{"env":"WASMFLOW_PROBE","value":"granted"}"#);
    assert_eq!(out[1], r#"{"env":"HOME","value":null}"#, "only what was granted");
    assert!(
        out[2].contains(r#""error":"#),
        "the host path itself stays hidden: {}",
        out[2]
    );
    assert_eq!(out[3], r#"{"file":"/data/note.txt","value":"hello from the host"}"#);
}

/// A module has one thread. Asking for another fails as unsupported, the answer the platform's
/// toolchain gives its modules, which crates such as `rayon` (the platform's `format` operator
/// reaches it) take as the cue to run on the calling thread; any other answer makes `rayon`
/// panic. Where the WASI libc has no threads at all, the SDK's stand-in gives that answer
/// (components/sdk/src/wasi_pthread.rs); without it the module would not even link.
#[test]
fn a_module_cannot_start_a_thread_and_is_told_it_is_unsupported() {
    let h = Harness::new();
    let out = run_probe(
        WasiGrants::default(),
        &h,
        &[r#"{"thread":"spawn"}"#.to_string(), r#"{"env":"HOME"}"#.to_string()],
    );
    assert_eq!(out[0], r#"{"thread":"spawn","error":"Unsupported"}"#);
    assert_eq!(out[1], r#"{"env":"HOME","value":null}"#, "the module goes on answering");
}

/// Every payload, however small, comes in as a `buffer`, as the platform hands it: its Python
/// samples (`map.py`, `filter.py`) call `read()` on the payload without looking at the variant,
/// so inline `bytes` made the map trap on every message and the filter pass everything.
#[test]
fn a_payload_arrives_as_a_buffer_however_small() {
    let h = Harness::new();
    let shape = r#"{"payload":"shape"}"#;
    let big = format!(r#"{{"payload":"shape","pad":"{}"}}"#, "x".repeat(100_000));
    let out = run_probe(WasiGrants::default(), &h, &[shape.to_string(), big]);
    for (i, answer) in out.iter().enumerate() {
        assert_eq!(answer, r#"{"payload":"shape","arrived_as":"buffer"}"#, "input {i}");
    }
}
