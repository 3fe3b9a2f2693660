//! What a module can reach through WASI: nothing unless granted (`components/testing/wasi-probe`
//! reports what it sees of the environment and the file system).

use crate::support::*;
use wasmflow_runtime::graph::RunOptions;
use wasmflow_runtime::store::WasiGrants;

fn probe(grants: WasiGrants, h: &Harness) -> Vec<String> {
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
    let secret_dir = h.dir.path().join("granted");
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(secret_dir.join("note.txt"), "hello from the host").unwrap();
    let mut g = h.start(
        &g,
        RunOptions {
            wasi: grants,
            ..Default::default()
        },
    );
    let host_file = secret_dir.join("note.txt");
    let inputs = vec![
        input(r#"{"env":"WASMFLOW_PROBE"}"#, 1),
        input(r#"{"env":"HOME"}"#, 2),
        input(&format!(r#"{{"file":"{}"}}"#, host_file.display()), 3),
        input(r#"{"file":"/data/note.txt"}"#, 4),
    ];
    run_all(&mut g, inputs).iter().map(payload).collect()
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
