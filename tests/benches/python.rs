//! Memory per running componentize-py operator (issue 14; BENCHMARKS.md): a child
//! `wasmflow run` of a chain of N `fahrenheit-py` maps (components/python, CPython inside each
//! instance), for N = 1 and N = 6, each on a warm compiled-code cache; its `VmRSS` once every
//! operator has handled a reading, and its `VmHWM`. The difference per added operator is what a
//! running Python operator costs: its own linear memories (CPython's heap and the snapshot of
//! its initialised interpreter) and its instance state; the compiled code of the module is
//! shared by all N instances.
//!
//! `cargo bench -p wasmflow-cli --bench python [-- --quick]`. A table on stdout (Markdown),
//! progress on stderr.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use support::{module, quick, rss_mib};

const WASMFLOW: &str = env!("CARGO_BIN_EXE_wasmflow");

/// source → `n` × fahrenheit-py → sink.
fn chain(dir: &Path, n: usize) -> Result<PathBuf> {
    module("fahrenheit-py")?;
    let mut yaml = String::from(
        "metadata:\n  name: \"python chain\"\n  description: \"fahrenheit-py maps in a row\"\n  version: \"1.0.0\"\n  \
         $schema: \"https://www.schemastore.org/aio-wasm-graph-config-1.0.0.json\"\n  vendor: \"wasmflow bench\"\n\
         moduleRequirements:\n  apiVersion: \"1.1.0\"\n  runtimeVersion: \"1.1.0\"\noperations:\n  \
         - { operationType: \"source\", name: \"source\" }\n",
    );
    for i in 0..n {
        yaml +=
            &format!("  - {{ operationType: \"map\", name: \"py{i}\", module: \"wasmflow/fahrenheit-py:1.0.0\" }}\n");
    }
    yaml += "  - { operationType: \"sink\", name: \"sink\" }\nconnections:\n";
    let names: Vec<String> = std::iter::once("source".to_string())
        .chain((0..n).map(|i| format!("py{i}")))
        .chain(std::iter::once("sink".to_string()))
        .collect();
    for pair in names.windows(2) {
        yaml += &format!(
            "  - {{ from: {{ name: \"{}\" }}, to: {{ name: \"{}\" }} }}\n",
            pair[0], pair[1]
        );
    }
    let path = dir.join(format!("chain-{n}.yaml"));
    std::fs::write(&path, yaml)?;
    Ok(path)
}

/// `VmRSS` after the first output (every operator has run once) and `VmHWM` then, in MiB, of a
/// child `wasmflow run` of `graph`; the run before it fills the compiled-code cache.
fn resident(graph: &Path, data: &Path) -> Result<(f64, f64)> {
    let mut last = (0.0, 0.0);
    for warm in [false, true] {
        let mut child = Command::new(WASMFLOW)
            .arg("run")
            .arg(graph)
            .args(["--input", "-"])
            .env("WASMFLOW_DATA_DIR", data)
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {WASMFLOW}"))?;
        let pid = child.id().to_string();
        let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        writeln!(stdin, r#"{{"temperature":{{"value":1209,"unit":"F"}}}}"#)?;
        stdin.flush()?;
        let mut out = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        if !line.contains("653.88") {
            bail!("`wasmflow run {}` gave {line:?}", graph.display());
        }
        std::thread::sleep(Duration::from_millis(500));
        if warm {
            last = rss_mib(&pid)?;
        }
        drop(stdin);
        std::io::copy(&mut out, &mut std::io::sink())?;
        child.wait()?;
    }
    Ok(last)
}

fn main() -> Result<()> {
    let reps = if quick() { 1 } else { 3 };
    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for n in [1usize, 6] {
        let graph = chain(dir.path(), n)?;
        let data = tempfile::tempdir()?;
        // The median of `reps` runs (each a fresh process on a warm cache).
        let mut runs: Vec<(f64, f64)> = (0..reps)
            .map(|_| resident(&graph, data.path()))
            .collect::<Result<_>>()?;
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (rss, hwm) = runs[runs.len() / 2];
        eprintln!("  python: {n} operator(s): VmRSS {rss:.1} MiB, VmHWM {hwm:.1} MiB");
        rows.push((n, rss, hwm));
    }
    println!("Resident memory of `wasmflow run` with N componentize-py operators (`fahrenheit-py` maps in a row, one reading through all; MiB, median of {reps} runs on a warm cache).");
    println!();
    println!("| Python operators | VmRSS after the reading | VmHWM |");
    println!("|---:|---:|---:|");
    for (n, rss, hwm) in &rows {
        println!("| {n} | {rss:.1} | {hwm:.1} |");
    }
    let (n1, r1, h1) = rows[0];
    let (n6, r6, h6) = rows[1];
    let per = |a: f64, b: f64| (b - a) / (n6 - n1) as f64;
    println!(
        "| **each running Python operator** (({n6} − {n1}) / {}) | **{:.1}** | **{:.1}** |",
        n6 - n1,
        per(r1, r6),
        per(h1, h6)
    );
    println!();
    Ok(())
}
