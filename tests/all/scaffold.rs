//! `wasmflow new`: projects created by the `wasmflow` binary build with the repository's tools
//! and pass the tests they are generated with.
//!
//! One build per language (a build is the slow part: std for wasm32-wasip2, or CPython): the Rust
//! map is built with the project's `build.sh` (scripts/wasm-toolchain.sh) and the Python map with
//! componentize-py, and both run their generated golden test with `wasmflow test`. Every other
//! kind is created in both languages and runs its generated unit tests natively (`cargo test`,
//! which compiles the operator against the SDK with its macros; `./build.sh bindings && python3
//! -m unittest`, which runs the operator on the bindings componentize-py generates).
//!
//! Rust builds use the components workspace's target directory (`$COMPONENTS_TARGET_DIR`, else
//! components/target), where std for wasm32-wasip2 and the SDK's dependencies are already built
//! (the generated release profile is the components'), offline: the crates they need are the ones
//! that workspace fetched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{describe, repo, OutputExt};

fn wasmflow(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmflow"))
        .args(args)
        .current_dir(cwd)
        .env_remove("WASMFLOW_MODULES")
        .env("WASMFLOW_DATA_DIR", cwd.join(".wasmflow-data"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run wasmflow")
}

/// `wasmflow new NAME --kind KIND [--python] --dir parent`; the project folder.
fn new_project(parent: &Path, name: &str, kind: &str, python: bool) -> PathBuf {
    let dir = parent.to_str().unwrap();
    let mut args = vec!["new", name, "--kind", kind, "--dir", dir];
    if python {
        args.push("--python");
    }
    let out = wasmflow(&args, parent).succeeded(format_args!("wasmflow new {name}"));
    let project = parent.join(name);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&format!("created {}", project.display())),
        "{}",
        describe(&out)
    );
    project
}

/// The components workspace's target directory, shared so std and the SDK build once.
fn components_target() -> PathBuf {
    std::env::var_os("COMPONENTS_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("components/target"))
}

/// Runs `program args` in `dir` with the host build's flags removed; fails the test with its
/// output unless it succeeds.
fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", components_target())
        // The crates these projects need are the ones the components workspace already fetched.
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
        .succeeded(format_args!("{program} {args:?} in {}", dir.display()))
}

/// The generated golden test passes (`wasmflow test tests` in the project, as its README says).
fn golden_test_passes(project: &Path) {
    let out = wasmflow(&["test", "tests"], project);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.lines().any(|l| l == "1 passed, 0 failed"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_rust_map_project_builds_with_the_toolchain_script_and_passes_its_test() {
    let parent = tempfile::tempdir().unwrap();
    let project = new_project(parent.path(), "demo-map", "map", false);
    run(&project, "bash", &["build.sh"]);
    assert!(project.join("demo-map.wasm").is_file());
    golden_test_passes(&project);
    run(&project, "cargo", &["test", "--quiet"]);
}

#[test]
fn a_python_map_project_builds_with_componentize_py_and_passes_its_test() {
    let parent = tempfile::tempdir().unwrap();
    let project = new_project(parent.path(), "demo-py-map", "map", true);
    run(&project, "bash", &["build.sh"]);
    assert!(project.join("demo-py-map.wasm").is_file());
    golden_test_passes(&project);
    run(&project, "bash", &["build.sh", "bindings"]);
    run(&project, "python3", &["-m", "unittest", "--quiet"]);
}

#[test]
fn every_other_kind_passes_its_unit_tests_in_both_languages() {
    let parent = tempfile::tempdir().unwrap();
    for kind in ["filter", "branch", "accumulate", "delay"] {
        let rust = new_project(parent.path(), &format!("demo-{kind}"), kind, false);
        let out = run(&rust, "cargo", &["test"]);
        let tests = String::from_utf8_lossy(&out.stdout);
        assert!(
            tests.contains("test result: ok.") && !tests.contains(" 0 passed"),
            "{kind}: {tests}"
        );
        let python = new_project(parent.path(), &format!("demo-py-{kind}"), kind, true);
        run(&python, "bash", &["build.sh", "bindings"]);
        let out = run(&python, "python3", &["-m", "unittest", "-v"]);
        let report = String::from_utf8_lossy(&out.stderr);
        assert!(
            report.contains("Ran 2 tests") && report.contains("OK"),
            "{kind}: {report}"
        );
    }
}

#[test]
fn new_refuses_a_bad_name_and_an_existing_folder() {
    let parent = tempfile::tempdir().unwrap();
    let out = wasmflow(&["new", "Bad Name", "--kind", "map"], parent.path());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("operator name `Bad Name` is not usable: it must start with a lowercase letter"),
        "{}",
        describe(&out)
    );
    let out = wasmflow(&["new", "x", "--kind", "window"], parent.path());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("unknown operator kind `window`: expected one of map, filter, branch, accumulate, delay"),
        "{}",
        describe(&out)
    );
    new_project(parent.path(), "twice", "map", true);
    let out = wasmflow(&["new", "twice", "--kind", "map"], parent.path());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("twice already exists: wasmflow new never overwrites"),
        "{}",
        describe(&out)
    );
}
