//! Graphs composed with their own router (`--router composed`), run by wasmflow: the same
//! results as host routing, and a clear refusal when the graph was composed without it.

use std::process::Command;

use crate::support::*;
use wasmflow_compose::Routing;
use wasmflow_runtime::graph::RunOptions;

fn wasmflow(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wasmflow"))
        .args(args)
        .current_dir(repo())
        .env("WASMFLOW_DATA_DIR", dir)
        .env_remove("WASMFLOW_MODULES")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run wasmflow")
}

/// Every golden test of the repository (graph-simple, the complex graph with windows, branch,
/// accumulates, concatenate and the state store, …) passes with the router composed in.
#[test]
fn golden_tests_pass_with_the_router_composed() {
    module("temperature");
    let d = tempfile::tempdir().unwrap();
    let host = wasmflow(&["test", "tests/golden"], d.path());
    let composed = wasmflow(&["test", "tests/golden", "--router", "composed"], d.path())
        .succeeded("wasmflow test tests/golden --router composed");
    let (host, out) = (
        String::from_utf8_lossy(&host.stdout).into_owned(),
        String::from_utf8_lossy(&composed.stdout).into_owned(),
    );
    assert!(out.lines().any(|l| l.starts_with("PASS complex-temperature")), "{out}");
    let summary = |s: &str| s.lines().last().map(str::to_owned);
    assert!(summary(&out).is_some_and(|l| l.ends_with(" passed, 0 failed")), "{out}");
    assert_eq!(
        summary(&out).map(|l| l.split(' ').next().map(str::to_owned)),
        summary(&host).map(|l| l.split(' ').next().map(str::to_owned)),
        "as many tests pass as with host routing:\n{host}\n{out}"
    );
}

/// Asking to route in the composition a graph composed without its router is refused, naming it.
#[test]
fn a_graph_composed_without_its_router_is_refused_for_composed_routing() {
    let h = Harness::new();
    let loaded = h.load(&repo().join("compose/tests/azure-compat/graph-simple.yaml"));
    let options = RunOptions {
        routing: Routing::Composed,
        ..Default::default()
    };
    let e = match h.runtime.start(&loaded, options) {
        Ok(_) => panic!("a graph without its router must not start with composed routing"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains("composed without its router"), "{e}");
}
