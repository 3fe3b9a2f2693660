//! Start-up, recovery and memory (issue 7; BENCHMARKS.md):
//! * compose time, engine creation, first start (compiles) vs cached start (on-disk cache), in
//!   process, and the `wasmflow` binary's own cached start in a child process;
//! * rebuild of a graph instance after a trap (`faulty`'s panic), as `tests/all/faults.rs` provokes it;
//! * resident memory of a child `wasmflow run` idle and under load, and per additional graph.
//!
//! `cargo bench -p wasmflow-cli --bench startup [-- --quick]`. Tables on stdout (Markdown),
//! progress on stderr. `--memory-child GRAPH N` is internal: it starts N graphs in a fresh
//! process and prints its resident memory after each.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use wasmflow_runtime::graph::RunOptions;
use wasmflow_runtime::{load_graph, Runtime, RuntimeConfig};
use wasmflow_transport::Input;

use support::{arg_str, median_ms, quick, repo, rss_mib};

const WASMFLOW: &str = env!("CARGO_BIN_EXE_wasmflow");

fn runtime(dir: &Path) -> Result<Runtime> {
    Ok(Runtime::new(&RuntimeConfig {
        data_dir: dir.into(),
        ephemeral_state: true,
        cache_dir: None,
        limits: Default::default(),
    })?)
}

fn simple() -> PathBuf {
    repo().join("compose/tests/azure-compat/graph-simple.yaml")
}

fn complex() -> PathBuf {
    repo().join("graphs/temperature-humidity.yaml")
}

fn cell(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "–".into()
    }
}

// ---------------------------------------------------------------------------------------------
// Start-up

struct StartTimes {
    compose: f64,
    engine: f64,
    first: f64,
    cached: f64,
    process_cached: f64,
}

/// `wasmflow run GRAPH --input -` with its own data directory (so its own compiled-code cache).
fn spawn_run(graph: &Path, data: &Path) -> Result<Child> {
    Command::new(WASMFLOW)
        .arg("run")
        .arg(graph)
        .args(["--input", "-", "--envelope"])
        .env("WASMFLOW_DATA_DIR", data)
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {WASMFLOW}"))
}

const READING: &str = r#"{"temperature":{"value":1209,"unit":"F"}}"#;
const T0: u64 = 1_700_000_000_000;

/// One `--envelope` input line: `payload` at event time `ms`.
fn envelope(payload: &str, ms: u64) -> String {
    format!(r#"{{"topic":"bench","payload":{payload},"user-properties":{{"__ts":"{ms:0>15}:00000:bench"}}}}"#)
}

/// Reading `i` of a stream 100 ms apart (100 per 10 s window): two temperatures, one humidity.
fn reading(i: usize) -> String {
    let payload = if i % 3 == 2 {
        format!(r#"{{"humidity":{{"value":{}}}}}"#, (i % 100) as f64 + 0.5)
    } else {
        format!(
            r#"{{"temperature":{{"value":{},"unit":"F"}}}}"#,
            (i % 7000) as f64 - 100.0
        )
    };
    envelope(&payload, T0 + 100 * i as u64)
}

/// Time from spawning `wasmflow run` to its first output line (compose, engine, cached or
/// compiled start, then a reading and one 20 s later, which closes the first reading's window in
/// a windowed graph), then end it by closing its input.
fn time_to_first_output(graph: &Path, data: &Path) -> Result<Duration> {
    let start = Instant::now();
    let mut child = spawn_run(graph, data)?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
    writeln!(stdin, "{}\n{}", envelope(READING, T0), envelope(READING, T0 + 20_000))?;
    stdin.flush()?;
    let mut out = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    let elapsed = start.elapsed();
    drop(stdin);
    std::io::copy(&mut out, &mut std::io::sink())?;
    let status = child.wait()?;
    if line.is_empty() || !status.success() {
        bail!(
            "`wasmflow run {}` gave no output for one reading (exit {status})",
            graph.display()
        );
    }
    Ok(elapsed)
}

fn start_times(graph: &Path, reps: usize) -> Result<StartTimes> {
    let opts = support::compose_options();
    let compose: Vec<Duration> = (0..reps.max(3))
        .map(|_| {
            let t = Instant::now();
            load_graph(graph, &opts).map(|_| t.elapsed())
        })
        .collect::<Result<_, _>>()?;
    let loaded = load_graph(graph, &opts)?;
    let (mut engine, mut first) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let dir = tempfile::tempdir()?;
        let t = Instant::now();
        let rt = runtime(dir.path())?;
        engine.push(t.elapsed());
        let t = Instant::now();
        let (_g, outcome) = rt.start(&loaded, RunOptions::default())?;
        first.push(t.elapsed());
        if outcome != wasmflow_runtime::engine::CacheOutcome::Compiled {
            bail!("a fresh cache must compile");
        }
    }
    let dir = tempfile::tempdir()?;
    let rt = runtime(dir.path())?;
    drop(rt.start(&loaded, RunOptions::default())?);
    let mut cached = Vec::new();
    for _ in 0..reps.max(3) * 3 {
        let t = Instant::now();
        let (g, outcome) = rt.start(&loaded, RunOptions::default())?;
        cached.push(t.elapsed());
        if outcome != wasmflow_runtime::engine::CacheOutcome::Hit {
            bail!("the second start must hit the cache");
        }
        drop(g);
    }
    // The binary: one run to fill its cache, then timed runs.
    let data = tempfile::tempdir()?;
    time_to_first_output(graph, data.path())?;
    let process: Vec<Duration> = (0..reps.max(3))
        .map(|_| time_to_first_output(graph, data.path()))
        .collect::<Result<_>>()?;
    Ok(StartTimes {
        compose: median_ms(compose),
        engine: median_ms(engine),
        first: median_ms(first),
        cached: median_ms(cached),
        process_cached: median_ms(process),
    })
}

fn startup_table(reps: usize) -> Result<()> {
    let s = start_times(&simple(), reps)?;
    eprintln!("  startup: graph-simple done");
    let c = start_times(&complex(), reps)?;
    eprintln!("  startup: complex done");
    println!("Start-up, milliseconds (median; in process unless noted). A start = load from the cache or compile, link, instantiate, run every `init`.");
    println!();
    println!("| what | graph-simple | complex | target |");
    println!("|---|---:|---:|---|");
    let rows: [(&str, f64, f64, &str); 5] = [
        ("compose (YAML → composed component)", s.compose, c.compose, ""),
        ("engine + runtime (`Runtime::new`)", s.engine, c.engine, ""),
        ("first start (compiles)", s.first, c.first, ""),
        (
            "cached start (`Runtime::start`, on-disk cache hit)",
            s.cached,
            c.cached,
            "< 50 ms (graph-simple)",
        ),
        (
            "`wasmflow run GRAPH.yaml` (child process, compose included), cached: spawn → first output",
            s.process_cached,
            c.process_cached,
            "",
        ),
    ];
    for (what, a, b, target) in rows {
        println!("| {what} | {} | {} | {target} |", cell(a), cell(b));
    }
    println!();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rebuild after a trap

/// `source → faulty map → [temperature map → filter] × extra → sink`.
fn faulty_graph(dir: &Path, extra: usize) -> Result<PathBuf> {
    let mut ops = String::from(
        "  - operationType: source\n    name: source\n  - operationType: map\n    name: faulty/map\n    module: \"test/faulty:1.0.0\"\n",
    );
    let mut names = vec!["source".to_owned(), "faulty/map".to_owned()];
    for i in 0..extra {
        for (kind, name) in [("map", format!("t/map-{i}")), ("filter", format!("t/filter-{i}"))] {
            ops.push_str(&format!(
                "  - operationType: {kind}\n    name: {name}\n    module: \"azure-samples/explore-iot-operations/temperature:1.0.0\"\n"
            ));
            names.push(name);
        }
    }
    ops.push_str("  - operationType: sink\n    name: sink\n");
    names.push("sink".into());
    let connections: String = names
        .windows(2)
        .map(|w| format!("  - from: {{ name: \"{}\" }}\n    to: {{ name: \"{}\" }}\n", w[0], w[1]))
        .collect();
    let path = dir.join(format!("faulty-{extra}.yaml"));
    std::fs::write(
        &path,
        format!(
            "metadata:\n  name: \"Faulty {extra}\"\n  description: \"a trapping map in front of {} operators\"\n  version: \"1.0.0\"\n  $schema: \"https://www.schemastore.org/aio-wasm-graph-config-1.0.0.json\"\n  vendor: \"wasmflow\"\nmoduleRequirements:\n  apiVersion: \"1.1.0\"\n  runtimeVersion: \"1.1.0\"\noperations:\n{ops}connections:\n{connections}",
            2 * extra
        ),
    )?;
    Ok(path)
}

fn input(payload: &str, ms: u64) -> Input {
    Input {
        topic: "bench".into(),
        payload: Arc::from(payload.as_bytes()),
        content_type: None,
        user_properties: vec![("__ts".into(), format!("{ms:0>15}:00000:bench"))],
    }
}

/// (median push of a good reading, median push that traps and rebuilds), ms.
fn rebuild_times(rt: &Runtime, graph: &Path, reps: usize) -> Result<(f64, f64, usize)> {
    let loaded = load_graph(graph, &support::compose_options())?;
    let mut g = rt.start(&loaded, RunOptions::default())?.0;
    let instances = loaded.manifest.operations.len();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for i in 0..reps {
        let ms = 1_700_000_000_000 + i as u64;
        let t = Instant::now();
        let out = g.push(None, input(READING, ms))?;
        good.push(t.elapsed());
        if out.len() != 1 {
            bail!("a good reading must come out once, got {out:?}");
        }
        let before = g.rebuilds();
        let t = Instant::now();
        let out = g.push(None, input(r#"{"fault":"panic"}"#, ms))?;
        bad.push(t.elapsed());
        if g.rebuilds() != before + 1 || !out.is_empty() {
            bail!("a panic must rebuild the instance and drop the item");
        }
    }
    Ok((median_ms(good), median_ms(bad), instances))
}

fn rebuild_table(reps: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let rt = runtime(dir.path())?;
    println!("Rebuild after a trap (a `faulty` map panics; the graph instance is rebuilt from the pre-instantiated component and every `init` runs again), milliseconds, median of {reps}.");
    println!();
    println!("| graph | operations | push of a good reading | push that traps (trap + rebuild + re-init) | difference ≈ rebuild | target |");
    println!("|---|---:|---:|---:|---:|---|");
    for extra in [0, 4] {
        let (good, bad, ops) = rebuild_times(&rt, &faulty_graph(dir.path(), extra)?, reps)?;
        println!(
            "| faulty map{} | {ops} | {} | {} | {} | < 1 ms |",
            if extra > 0 {
                format!(" + {} temperature ops", 2 * extra)
            } else {
                String::new()
            },
            cell(good),
            cell(bad),
            cell(bad - good)
        );
    }
    println!();
    eprintln!("  rebuild: done");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Memory

/// Internal: start `n` graphs in this (fresh) process with the compiled-code cache in `dir`,
/// printing `rss <graphs> <MiB>` after each, and `rss 0 <MiB>` before the first (runtime
/// created, graph composed). With `n = 0` it only fills the cache.
fn memory_child(graph: &str, n: usize, dir: &Path) -> Result<()> {
    let rt = runtime(dir)?;
    let loaded = load_graph(Path::new(graph), &support::compose_options())?;
    if n == 0 {
        drop(rt.start(&loaded, RunOptions::default())?);
        return Ok(());
    }
    println!("rss 0 {}", rss_mib("self")?.0);
    let mut graphs = Vec::new();
    for k in 1..=n {
        let mut g = rt.start(&loaded, RunOptions::default())?.0;
        g.push(None, input(READING, 1_700_000_000_000))?;
        graphs.push(g);
        println!("rss {k} {}", rss_mib("self")?.0);
    }
    Ok(())
}

/// Resident MiB after 0 and after `n` graphs, from a fresh child process.
fn per_graph(graph: &Path, n: usize) -> Result<(f64, f64)> {
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    let mut out = None;
    for k in [0, n] {
        let o = Command::new(&exe)
            .args(["--memory-child", &graph.display().to_string(), &k.to_string()])
            .arg(dir.path())
            .stderr(Stdio::inherit())
            .output()?;
        if !o.status.success() {
            bail!("memory child failed ({})", o.status);
        }
        out = Some(o);
    }
    let out = out.ok_or_else(|| anyhow!("no memory child ran"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rss = std::collections::HashMap::new();
    for l in text.lines() {
        let parts: Vec<&str> = l.split_whitespace().collect();
        if let ["rss", k, v] = parts[..] {
            rss.insert(k.parse::<usize>()?, v.parse::<f64>()?);
        }
    }
    let (Some(a), Some(b)) = (rss.get(&0), rss.get(&n)) else {
        bail!("memory child printed {text:?}");
    };
    Ok((*a, *b))
}

/// VmRSS of a child `wasmflow run` idle after one reading, the highest VmRSS seen while `load`
/// readings stream through it, and its VmHWM at the end.
fn run_memory(graph: &Path, load: usize) -> Result<(f64, f64, f64)> {
    let data = tempfile::tempdir()?;
    time_to_first_output(graph, data.path())?; // fill the cache
    let mut child = spawn_run(graph, data.path())?;
    let pid = child.id().to_string();
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
    let mut out = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?);
    writeln!(stdin, "{}\n{}", envelope(READING, T0), envelope(READING, T0 + 20_000))?;
    stdin.flush()?;
    let mut line = String::new();
    out.read_line(&mut line)?;
    std::thread::sleep(Duration::from_millis(500));
    let (idle, _) = rss_mib(&pid)?;
    let reader = std::thread::spawn(move || {
        let mut n = 0usize;
        let mut line = String::new();
        while out.read_line(&mut line).is_ok_and(|k| k > 0) {
            n += 1;
            line.clear();
        }
        n
    });
    let mut peak = idle;
    let mut w = std::io::BufWriter::new(stdin);
    for i in 0..load {
        writeln!(w, "{}", reading(1000 + i))?;
        if i % 5000 == 0 {
            w.flush()?;
            peak = peak.max(rss_mib(&pid)?.0);
        }
    }
    w.flush()?;
    peak = peak.max(rss_mib(&pid)?.0);
    let (_, hwm) = rss_mib(&pid)?;
    drop(w);
    let outputs = reader.join().map_err(|_| anyhow!("reader panicked"))?;
    child.wait()?;
    // graph-simple: one output per reading; complex: one per 10 s window (100 readings).
    if outputs < load / 200 {
        bail!("only {outputs} outputs for {load} readings");
    }
    Ok((idle, peak, hwm))
}

fn memory_table(load: usize, graphs: usize) -> Result<()> {
    println!("Resident memory (MiB, `/proc/<pid>/status`).");
    println!();
    println!("| what | graph-simple | complex | target |");
    println!("|---|---:|---:|---|");
    let (si, sp, sh) = run_memory(&simple(), load)?;
    let (ci, cp, ch) = run_memory(&complex(), load)?;
    eprintln!("  memory: wasmflow run done");
    println!(
        "| `wasmflow run`, idle after one reading (VmRSS) | {} | {} | < 30 MiB |",
        cell(si),
        cell(ci)
    );
    println!(
        "| `wasmflow run`, under load ({load} readings piped in as fast as it takes them; highest VmRSS seen) | {} | {} | |",
        cell(sp),
        cell(cp)
    );
    println!("| `wasmflow run`, VmHWM at the end | {} | {} | |", cell(sh), cell(ch));
    let dir = tempfile::tempdir()?;
    let mut idle_wasm = Vec::new();
    for (name, graph) in [("simple", simple()), ("complex", complex())] {
        let wasm = dir.path().join(format!("{name}.wasm"));
        let status = Command::new(WASMFLOW)
            .arg("compose")
            .arg(&graph)
            .arg("-o")
            .arg(&wasm)
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("`wasmflow compose {}` failed ({status})", graph.display());
        }
        idle_wasm.push(run_memory(&wasm, 1000)?.0);
    }
    println!(
        "| `wasmflow run GRAPH.wasm` (composed beforehand), idle after one reading (VmRSS) | {} | {} | < 30 MiB |",
        cell(idle_wasm[0]),
        cell(idle_wasm[1])
    );
    let (s0, sn) = per_graph(&simple(), graphs)?;
    let (c0, cn) = per_graph(&complex(), graphs)?;
    eprintln!("  memory: per graph done");
    println!(
        "| bench process with runtime and composed graph, no instance yet (cached code; VmRSS) | {} | {} | |",
        cell(s0),
        cell(c0)
    );
    println!(
        "| each additional running graph (({graphs} graphs − none) / {graphs}) | {} | {} | |",
        cell((sn - s0) / graphs as f64),
        cell((cn - c0) / graphs as f64)
    );
    println!();
    Ok(())
}

fn main() -> Result<()> {
    if let Some(graph) = arg_str("--memory-child") {
        let args: Vec<String> = std::env::args().collect();
        let p = args.iter().position(|a| a == "--memory-child").unwrap_or(0);
        let n = args.get(p + 2).and_then(|v| v.parse().ok()).unwrap_or(1);
        let dir = args.get(p + 3).ok_or_else(|| anyhow!("--memory-child GRAPH N DIR"))?;
        return memory_child(&graph, n, Path::new(dir));
    }
    support::module("faulty")?;
    let quick = quick();
    eprintln!(
        "startup: start-up, rebuild and memory{}",
        if quick { " (--quick)" } else { "" }
    );
    if support::selected("--section", "startup") {
        startup_table(if quick { 1 } else { 3 })?;
    }
    if support::selected("--section", "rebuild") {
        rebuild_table(if quick { 20 } else { 100 })?;
    }
    if support::selected("--section", "memory") {
        memory_table(if quick { 20_000 } else { 100_000 }, 8)?;
    }
    Ok(())
}
