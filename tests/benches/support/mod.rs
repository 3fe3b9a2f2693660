//! What every wasmflow bench binary shares: command-line flags, interleaved timing, and the
//! Markdown table it prints. The contract with `scripts/bench.sh` (BENCHMARKS.md): a bench
//! prints its Markdown tables on stdout and its progress on stderr, and `--quick` makes a short run.
#![allow(dead_code)]

pub mod native;
pub mod routed;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rdkafka::message::ToBytes;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
use wasmflow_compose::ComposeOptions;
use wasmflow_runtime::default_modules_dir;

/// The repository root.
/// Reading `i` of the relay benches (`broker`, `kafka`, `scaleout`): a Fahrenheit temperature,
/// 1,000 distinct values.
pub fn reading(i: usize) -> String {
    format!(r#"{{"temperature":{{"value":{},"unit":"F"}}}}"#, 32 + i % 1000)
}

/// What `graph-simple` must publish for `reading(i)`, for `i % 1000` (the collectors check):
/// its map's own logic (`temperature::map`, the rlib its component is built from).
pub fn expected_outputs() -> Result<Vec<Vec<u8>>> {
    (0..1000)
        .map(|i| {
            let input = reading(i);
            Ok(
                match temperature::map(input.as_bytes()).map_err(|e| anyhow!("temperature::map: {e}"))? {
                    temperature::MapOutcome::Unchanged => input.into_bytes(),
                    temperature::MapOutcome::Replaced(b) => b,
                },
            )
        })
        .collect()
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A built module; fails with what to run when it is missing.
pub fn module(name: &str) -> Result<PathBuf> {
    let p = default_modules_dir().join(format!("{name}.wasm"));
    if !p.is_file() {
        anyhow::bail!("{} is missing: run scripts/build-components.sh", p.display());
    }
    Ok(p)
}

pub fn compose_options() -> ComposeOptions {
    ComposeOptions {
        default_modules_dir: Some(default_modules_dir()),
        ..Default::default()
    }
}

/// `--quick` on the command line (or `WASMFLOW_BENCH_QUICK=1`): a short run.
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick") || std::env::var("WASMFLOW_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// A numeric flag `name VALUE`, else the environment variable `env`, else `default`.
pub fn arg(name: &str, env: &str, default: usize) -> Result<usize> {
    if let Some(v) = arg_str(name) {
        return v.parse().with_context(|| format!("{name} {v}"));
    }
    match std::env::var(env) {
        Ok(v) => v.parse().with_context(|| format!("{env}={v}")),
        Err(_) => Ok(default),
    }
}

/// A string flag `name VALUE`.
pub fn arg_str(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|p| args.get(p + 1).cloned())
}

/// `--only VARIANT` / `--workload NAME` / `--section NAME` filters (for profiling one thing);
/// a comma-separated list selects several (`--only ort,wasi-nn`: those two, still interleaved).
pub fn selected(flag: &str, name: &str) -> bool {
    arg_str(flag).is_none_or(|o| o.split(',').any(|o| o == name))
}

/// Something that processes message `i` of its inputs.
pub trait Variant {
    /// Processes message `i`; returns how many outputs it produced.
    fn run(&mut self, i: usize) -> Result<usize>;
    /// The output payloads of message `i` (for the cross-check before timing).
    fn outputs(&mut self, i: usize) -> Result<Vec<Vec<u8>>>;
}

#[derive(Default)]
pub struct Samples {
    /// Per-message latency, ns.
    pub latencies: Vec<u32>,
    /// Time and messages of each chunk.
    pub chunks: Vec<(Duration, usize)>,
    pub outputs: usize,
}

#[inline(never)] // a named frame for profilers (callgrind --toggle-collect='*measure*')
pub fn measure(v: &mut dyn Variant, range: std::ops::Range<usize>, samples: &mut Samples) -> Result<()> {
    let n = range.len();
    let mut outputs = 0;
    let start = Instant::now();
    let mut prev = start;
    for i in range {
        outputs += v.run(i)?;
        let now = Instant::now();
        samples
            .latencies
            .push((now - prev).as_nanos().min(u32::MAX as u128) as u32);
        prev = now;
    }
    samples.chunks.push((prev - start, n));
    samples.outputs += outputs;
    Ok(())
}

/// One line of a result table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub msgs_per_s: f64,
    pub ns_per_msg: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Outputs per input message.
    pub out_per_msg: f64,
}

/// Throughput: the median over chunks (the machine is noisy; the median ignores bursts).
/// Latency: percentiles over every message.
pub fn summarize(s: &mut Samples) -> Row {
    if s.chunks.is_empty() {
        return Row {
            msgs_per_s: f64::NAN,
            ns_per_msg: f64::NAN,
            p50_us: f64::NAN,
            p99_us: f64::NAN,
            out_per_msg: f64::NAN,
        };
    }
    let mut per_msg: Vec<f64> = s.chunks.iter().map(|(d, n)| d.as_nanos() as f64 / *n as f64).collect();
    per_msg.sort_by(f64::total_cmp);
    let ns = per_msg[per_msg.len() / 2];
    s.latencies.sort_unstable();
    let pct = |p: f64| s.latencies[((s.latencies.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    let total: usize = s.chunks.iter().map(|(_, n)| n).sum();
    Row {
        msgs_per_s: 1e9 / ns,
        ns_per_msg: ns,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        out_per_msg: s.outputs as f64 / total as f64,
    }
}

/// Runs every variant over the first `check` messages and fails unless their output payloads
/// are byte-identical (this also warms them up).
pub fn cross_check(what: &str, variants: &mut [(String, Box<dyn Variant + '_>)], check: usize) -> Result<()> {
    let mut reference: Option<(String, Vec<Vec<Vec<u8>>>)> = None;
    for (vname, v) in variants.iter_mut() {
        let outs: Vec<Vec<Vec<u8>>> = (0..check).map(|i| v.outputs(i)).collect::<Result<_>>()?;
        match &reference {
            None => reference = Some((vname.clone(), outs)),
            Some((rname, r)) => {
                if let Some(i) = (0..check).find(|&i| r[i] != outs[i]) {
                    let show = |p: &Vec<Vec<u8>>| {
                        p.iter()
                            .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned())
                            .collect::<Vec<_>>()
                    };
                    anyhow::bail!(
                        "{what}: {vname} disagrees with {rname} on message {i}: {:?} vs {:?}",
                        show(&outs[i]),
                        show(&r[i])
                    );
                }
            }
        }
    }
    let produced: usize = reference.map_or(0, |(_, r)| r.iter().map(Vec::len).sum());
    if produced == 0 {
        anyhow::bail!("{what}: no variant produced any output in the cross-check");
    }
    Ok(())
}

/// Times `variants` over messages `start..start+n` (per round), taking turns every `chunk`
/// messages so a burst of load from elsewhere on the machine hits all of them alike; the order
/// rotates so none always goes first. Round `r` uses messages `start + r*n ..`.
pub fn interleave(
    what: &str,
    variants: &mut [(String, Box<dyn Variant + '_>)],
    start: usize,
    n: usize,
    rounds: usize,
    chunk: usize,
) -> Result<Vec<Row>> {
    let mut samples: Vec<Samples> = variants.iter().map(|_| Samples::default()).collect();
    for r in 0..rounds {
        let base = start + r * n;
        let chunks: Vec<std::ops::Range<usize>> = (base..base + n)
            .step_by(chunk)
            .map(|s| s..(s + chunk).min(base + n))
            .collect();
        for (c, range) in chunks.iter().enumerate() {
            for k in 0..variants.len() {
                let j = (k + r + c) % variants.len();
                if !selected("--only", &variants[j].0) {
                    continue;
                }
                measure(variants[j].1.as_mut(), range.clone(), &mut samples[j])?;
            }
        }
        eprintln!("  {what}: round {}/{rounds} done", r + 1);
    }
    Ok(samples.iter_mut().map(summarize).collect())
}

/// Cost of one `Instant::now()`, included once in every per-message latency.
pub fn clock_cost() -> f64 {
    let n = 1_000_000;
    let start = Instant::now();
    let mut last = start;
    for _ in 0..n {
        last = std::hint::black_box(Instant::now());
    }
    (last - start).as_nanos() as f64 / n as f64
}

/// `1234567.8` → `1,234,568`.
pub fn fmt_int(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let s = format!("{:.0}", v);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::from(sign);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio for a table cell.
pub fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "–".into()
    }
}

/// The median of some durations, in milliseconds.
pub fn median_ms(mut d: Vec<Duration>) -> f64 {
    if d.is_empty() {
        return f64::NAN;
    }
    d.sort();
    d[d.len() / 2].as_secs_f64() * 1000.0
}

/// `VmRSS` and `VmHWM` of a process, in MiB (`/proc/<pid>/status`; `self` for this one).
pub fn rss_mib(pid: &str) -> Result<(f64, f64)> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| anyhow!("{path} has no {name}"))?;
        let kb: f64 = line
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| anyhow!("{path}: bad {name} line {line:?}"))?
            .parse()
            .with_context(|| format!("{path}: {line}"))?;
        Ok(kb / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Hands `rec` to the producer, waiting while librdkafka's local queue is full: the Kafka
/// benches' loaders produce faster than it drains.
pub fn produce<K, P>(p: &ThreadedProducer<DefaultProducerContext>, mut rec: BaseRecord<'_, K, P>)
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    while let Err((_, r)) = p.send(rec) {
        rec = r;
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// `kill -SIG pid`: the end-to-end benches hold a relay with `STOP` while its input is loaded
/// and let it drain that backlog with `CONT`, so the loader's pace is not what they measure.
pub fn signal(pid: u32, sig: &str) -> Result<()> {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .context("running kill")?
        .success();
    if !ok {
        return Err(anyhow!("kill -{sig} {pid}: failed"));
    }
    Ok(())
}

/// CPU time (user + system, in clock ticks) process `pid` has used so far: the end-to-end benches
/// divide its growth over a window by the messages relayed.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, s)| s)
        .with_context(|| format!("{path}: no `)` after the command name"))?;
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the name.
    let field = |i: usize| -> Result<u64> {
        f.get(i)
            .with_context(|| format!("{path}: too few fields"))?
            .parse()
            .with_context(|| format!("{path}: field {}", i + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 where it cannot be asked).
pub fn ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}
