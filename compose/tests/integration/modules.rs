//! Composition of the real sample modules built by scripts/build-components.sh into
//! target/modules. A missing module fails the test with the command to run: a skipped
//! composition test would hide a broken build.

use std::path::{Path, PathBuf};

use wasmflow_compose::{compose, load_graph, ComposeOptions, Composed, ValidatedGraph};

use crate::common::{self, assert_contract, azure_compat_dir, repo_root, require_modules, shape};

const PLUMBING: [&str; 3] = ["wasmflow-source", "wasmflow-sink", "wasmflow-concatenate"];

fn compose_file(path: &Path, modules: &[&str]) -> (ValidatedGraph, Composed, PathBuf) {
    let mut all = modules.to_vec();
    all.extend(PLUMBING);
    let dir = require_modules(&all);
    let g = load_graph(path).unwrap();
    let opts = ComposeOptions {
        modules_dir: None,
        default_modules_dir: Some(dir.clone()),
        overrides: vec![],
        resolved: Default::default(),
        ..Default::default()
    };
    let composed = compose(&g, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_contract(&g, &composed, &dir);
    (g, composed, dir)
}

#[test]
fn graph_simple() {
    let (_, composed, _) = compose_file(&azure_compat_dir().join("graph-simple.yaml"), &["temperature"]);
    let s = shape(&composed.bytes);
    eprintln!("graph-simple imports: {:#?}\nexports: {:#?}", s.imports, s.exports);
    assert_eq!(s.exports, vec!["op0-source", "op1-module-temperature-map", "op2-sink"]);
    assert!(s.imports.iter().any(|i| i == "op1-logger"), "{:?}", s.imports);
    assert!(
        s.imports.iter().any(|i| i == "wasm-graph:processor/types@1.1.0"),
        "{:?}",
        s.imports
    );
    let ran = common::wasm_tools_validate(&composed.bytes);
    eprintln!("wasm-tools validate ran: {ran}");
}

#[test]
fn graph_opc_ua() {
    let (_, composed, _) = compose_file(&azure_compat_dir().join("graph-opc-ua.yaml"), &["opc-ua"]);
    assert_eq!(composed.manifest.operations[1].export, "op1-module-opc-map");
    assert_eq!(composed.manifest.operations[1].parameters.len(), 3);
}

#[test]
fn temperature_humidity_uses_one_module_four_times() {
    let (_, composed, _) = compose_file(
        &repo_root().join("graphs/temperature-humidity.yaml"),
        &["window", "temperature", "humidity", "collection", "enrichment"],
    );
    let uses = composed
        .manifest
        .operations
        .iter()
        .filter(|o| o.module.as_deref() == Some("azure-samples/explore-iot-operations/temperature:1.0.0"))
        .count();
    assert_eq!(uses, 4);
    common::wasm_tools_validate(&composed.bytes);
}

#[test]
fn temperature_demo() {
    let (g, composed, _) = compose_file(&repo_root().join("graphs/temperature.yaml"), &["window", "temperature"]);
    let config = composed
        .manifest
        .configuration_for("module-temperature/filter", &[])
        .unwrap();
    assert_eq!(config, g.configuration_for("module-temperature/filter", &[]).unwrap());
    assert_eq!(
        config,
        vec![
            ("temperature_lower_bound".to_string(), "-40".to_string()),
            ("temperature_upper_bound".to_string(), "3422".to_string()),
        ]
    );
}

#[test]
fn graph_complex_composes_with_the_snapshot_module() {
    let modules = [
        "window",
        "format",
        "snapshot",
        "temperature",
        "humidity",
        "collection",
        "enrichment",
    ];
    let (_, composed, _) = compose_file(&azure_compat_dir().join("graph-complex.yaml"), &modules);
    // The snapshot module imports wasi:nn: its three operations say so, the others do not, and
    // the graph (which declares no `wasi-nn` feature) composes with a warning.
    let nn: Vec<&str> = composed
        .manifest
        .operations
        .iter()
        .filter(|o| o.imports_wasi_nn)
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(
        nn,
        vec![
            "module-snapshot/map",
            "module-snapshot/branch",
            "module-snapshot/accumulate"
        ]
    );
    assert!(
        composed.warnings.iter().any(|w| w.contains("wasi-nn")),
        "{:?}",
        composed.warnings
    );
    let s = shape(&composed.bytes);
    assert!(
        s.imports.iter().any(|i| i == "wasi:nn/graph@0.2.0-rc-2024-10-28"),
        "{:?}",
        s.imports
    );
}
