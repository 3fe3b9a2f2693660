//! The soak test (`make soak`; issue 18): the platform's `graph-complex` run by the `wasmflow`
//! binary for a few minutes under a steady load with one poison message in 100, through a broker
//! restart and a `kill -9` of wasmflow; it prints messages in, out, lost and duplicated, the
//! instance rebuilds and the resident memory at start and end, and fails on any loss or on
//! memory growing past the bound.
//!
//! # The load
//!
//! A publisher sends `--rate` QoS 1 messages a second (default 100): temperature readings
//! (even sequence numbers) and humidity readings (odd ones), each with an event time (`__ts`)
//! 100 ms after the one before, so one 10 s window of the graph's `window/delay` holds 100
//! messages and closes about once a second. Event time starts hours in the past, so the last
//! windows close when the input goes idle. Every hundredth message is a **poison**: a PNG
//! header claiming 6,000 × 6,000 pixels, which the graph's snapshot branch sends to
//! `format/map`; the decoder's 108 MB frame is within its own decode limit but not within the
//! module's memory (`--max-memory-mib 64`), so the module traps, the graph instance is rebuilt,
//! and the poison comes out as a dead letter (`--dead-letter-topic`).
//!
//! # Counting
//!
//! Outputs are windows, not messages, so each message is counted through the window it falls
//! in: its readings are distinct within a window (the sequence number modulo 1000), and each
//! output carries per category its `count`, `min`, `max` and `average`. A window whose counts
//! fall short lost messages; one whose counts exceed, or that came out twice, duplicated them
//! (allowed: delivery is at least once); one whose counts match but whose sums, minimum or
//! maximum do not lost one message and duplicated another (a failure, counted as both).
//! Poisons are counted by the sequence number their dead letter carries.
//!
//! # Two phases, and why
//!
//! The embedded broker lives inside the wasmflow process and keeps its sessions and queues in
//! memory (README, "MQTT"): a `kill -9` of wasmflow is also a crash of that broker and takes
//! what it had acknowledged and queued with it, by design. So "nothing lost" is asserted where
//! it is promised:
//!
//! 1. **embedded** — `wasmflow run graph-complex.yaml` with its own broker, most of the load;
//!    memory is measured on this one long-lived process. In the middle the load pauses, every
//!    window drains, and wasmflow (with its broker) restarts gracefully (SIGTERM), then the load
//!    resumes on the new process with new client connections: the embedded broker's restart.
//! 2. **mosquitto** — the same graph against mosquitto with persistence (`--mqtt`), under the same
//!    load: mosquitto is stopped and started again at a third of the load, and wasmflow is killed
//!    with SIGKILL at two thirds and started again on the same data directory and client id.
//!    Nothing may be lost (the broker keeps what wasmflow had not acknowledged).
//!
//! # Resident memory
//!
//! Measured on the embedded phase's first process (`VmRSS`, /proc) when the load has run for a
//! tenth of its time (warm: every module instantiated, compiled code loaded, windows open) and
//! at its end, before the pause. The bound: the end may be at most `--rss-growth-mib` (default
//! 32) MiB above the warm value. Flat memory is the expectation: windows are drained as they
//! close, traps rebuild into the same pool slot.
//!
//! `cargo bench -p wasmflow-cli --bench soak [-- --seconds S] [--rate R] [--rss-growth-mib M]`
//! (`--seconds` is the load time of each phase, default 75). Results as a Markdown table on
//! stdout, progress on stderr; BENCHMARKS.md, "Soak", has the latest figures.

#[path = "../all/support/mosquitto.rs"]
#[allow(dead_code)]
mod mosquitto;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;

use mosquitto::{free_port, user_prop, Client, Mosquitto};

const GRAPH: &str = "compose/tests/azure-compat/graph-complex.yaml";
const IN: &str = "wasmflow/in";
const OUT: &str = "wasmflow/out";
const DEAD: &str = "wasmflow/dead";
/// The window of the graph's `window/delay` (components/samples/window).
const WINDOW_MS: u64 = 10_000;
/// Messages per window of event time.
const PER_WINDOW: u64 = 100;
const STEP_MS: u64 = WINDOW_MS / PER_WINDOW;
const POISON_EVERY: u64 = 100;
/// The module memory bound that makes the poison trap (the decoder's limit is 128 MiB).
const MODULE_MEMORY_MIB: &str = "64";
/// How long to wait for the last windows after the load stops.
const DRAIN: Duration = Duration::from_secs(60);

/// The command line.
struct Settings {
    seconds: u64,
    rate: u64,
    rss_growth_mib: f64,
}

impl Settings {
    fn from_args() -> Result<Self> {
        let args: Vec<String> = std::env::args().collect();
        let value = |name: &str, default: u64| -> Result<u64> {
            match args.iter().position(|a| a == name) {
                None => Ok(default),
                Some(p) => args
                    .get(p + 1)
                    .ok_or_else(|| anyhow!("{name} needs a value"))?
                    .parse()
                    .with_context(|| name.to_string()),
            }
        };
        let s = Settings {
            seconds: value("--seconds", 75)?,
            rate: value("--rate", 100)?,
            rss_growth_mib: value("--rss-growth-mib", 32)? as f64,
        };
        if s.seconds < 10 || s.rate == 0 {
            bail!("--seconds must be at least 10 and --rate at least 1");
        }
        Ok(s)
    }
}

fn main() -> ExitCode {
    match soak() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("[soak] FAILED: see the table above");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("[soak] error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn log(message: impl std::fmt::Display) {
    eprintln!("[soak] {message}");
}

fn soak() -> Result<bool> {
    let s = Settings::from_args()?;
    for m in [
        "window",
        "format",
        "snapshot",
        "temperature",
        "humidity",
        "collection",
        "enrichment",
    ] {
        let p = repo().join("target/modules").join(format!("{m}.wasm"));
        if !p.is_file() {
            bail!("{} is missing: run `make components`", p.display());
        }
    }
    log(format!(
        "{GRAPH}: {} msg/s, {} s of load per phase, one poison in {POISON_EVERY}",
        s.rate, s.seconds
    ));
    let embedded = embedded_phase(&s)?;
    let brokered = mosquitto_phase(&s)?;
    println!("| phase | messages in | out | lost | duplicated | windows re-emitted | poisons in | dead letters | rebuilds | RSS warm (MiB) | RSS end (MiB) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in [&embedded, &brokered] {
        r.print_row();
    }
    let rss_ok = embedded.rss_end - embedded.rss_warm <= s.rss_growth_mib;
    println!();
    println!(
        "Resident memory of the embedded phase's process: {:.1} MiB warm, {:.1} MiB at the end ({:+.1} MiB; bound {:+.0} MiB){}.",
        embedded.rss_warm,
        embedded.rss_end,
        embedded.rss_end - embedded.rss_warm,
        s.rss_growth_mib,
        if rss_ok { "" } else { ": **over the bound**" }
    );
    for r in [&embedded, &brokered] {
        for problem in &r.problems {
            println!("- {}: {problem}", r.name);
        }
    }
    Ok(rss_ok && embedded.passed() && brokered.passed())
}

/// Phase 1: the embedded broker, a graceful restart of wasmflow in the middle.
fn embedded_phase(s: &Settings) -> Result<Outcome> {
    log("phase 1: the embedded broker");
    let data = tempfile::tempdir()?;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = ["--listen", listen.as_str()];
    let plan = Plan::new(s, 0);
    let first = plan.total * 3 / 4;

    let wf = Wasmflow::start(data.path(), &args)?;
    let (mut collector, publisher) = clients(port, "embedded")?;
    let rss_idle = wf.rss_mib()?;
    let load = plan.publish(&publisher, 0..first);
    std::thread::sleep(Duration::from_secs(s.seconds / 10));
    let rss_warm = wf.rss_mib()?;
    log(format!("  RSS idle {rss_idle:.1} MiB, warm {rss_warm:.1} MiB"));
    load.wait(&publisher)?;
    let rss_end = wf.rss_mib()?;
    log(format!("  RSS at the end of the load {rss_end:.1} MiB"));
    plan.drain(&collector, 0..first);
    let mut rebuilds = wf.rebuilds()?;
    log("  graceful restart of wasmflow and its broker (SIGTERM)");
    wf.terminate()?;
    let mut received = std::mem::take(&mut *lock(&collector.received));
    drop((collector, publisher));
    let wf = Wasmflow::start(data.path(), &args)?;
    let (c, publisher) = clients(port, "embedded-2")?;
    collector = c;
    plan.publish(&publisher, first..plan.total).wait(&publisher)?;
    plan.drain(&collector, first..plan.total);
    rebuilds += wf.rebuilds()?;
    wf.terminate()?;
    received.append(&mut lock(&collector.received));
    Ok(plan.outcome("embedded", &received, rebuilds, rss_warm, rss_end))
}

/// Phase 2: mosquitto with persistence, restarted at a third; wasmflow killed at two thirds.
fn mosquitto_phase(s: &Settings) -> Result<Outcome> {
    log("phase 2: mosquitto (persistence), a broker restart and a kill -9 of wasmflow");
    let mut broker = Mosquitto::start();
    let data = tempfile::tempdir()?;
    let url = broker.url();
    let args = [
        "--mqtt",
        url.as_str(),
        "--source",
        IN,
        "--sink",
        OUT,
        "--client-id",
        "soak-wasmflow",
    ];
    let plan = Plan::new(s, 1);
    let wf = Wasmflow::start(data.path(), &args)?;
    let (collector, publisher) = clients(broker.port, "mosquitto")?;
    let load = plan.publish(&publisher, 0..plan.total);
    std::thread::sleep(Duration::from_secs(s.seconds / 10));
    let rss_warm = wf.rss_mib()?;
    std::thread::sleep(Duration::from_secs(s.seconds / 3 - s.seconds / 10));
    log("  mosquitto stops (SIGTERM) for 3 s");
    broker.stop();
    std::thread::sleep(Duration::from_secs(3));
    broker.resume();
    std::thread::sleep(Duration::from_secs(s.seconds / 3));
    let mut rebuilds = wf.rebuilds()?;
    log("  kill -9 of wasmflow, then a restart on the same data directory");
    wf.kill9();
    let wf = Wasmflow::start(data.path(), &args)?;
    load.wait(&publisher)?;
    let rss_end = wf.rss_mib()?;
    plan.drain(&collector, 0..plan.total);
    rebuilds += wf.rebuilds()?;
    wf.terminate()?;
    let received = lock(&collector.received).clone();
    let mut outcome = plan.outcome("mosquitto", &received, rebuilds, rss_warm, rss_end);
    if outcome.lost > 0 {
        outcome.problems.push(format!("mosquitto's log:\n{}", broker.log()));
    }
    Ok(outcome)
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The collector (outputs and dead letters) and the publisher, on the broker at `port`.
fn clients(port: u16, name: &str) -> Result<(Client, Client)> {
    let collector = Client::connect(port, &format!("soak-{name}-collector"), &[OUT, DEAD]);
    let publisher = Client::connect(port, &format!("soak-{name}-publisher"), &[]);
    Ok((collector, publisher))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// ------------------------------------------------------------------------------- the messages

/// What message `i` is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Message {
    Temperature(f64),
    Humidity(f64),
    Poison,
}

impl Message {
    fn of(i: u64) -> Self {
        let reading = (i % 1000) as f64;
        if i % POISON_EVERY == POISON_EVERY - 1 {
            Message::Poison
        } else if i.is_multiple_of(2) {
            Message::Temperature(reading)
        } else {
            Message::Humidity(reading)
        }
    }

    fn payload(self) -> Vec<u8> {
        match self {
            Message::Temperature(v) => format!(r#"{{"temperature":{{"value":{v},"unit":"C"}}}}"#).into_bytes(),
            Message::Humidity(v) => format!(r#"{{"humidity":{{"value":{v}}}}}"#).into_bytes(),
            Message::Poison => png_bomb(6000, 6000),
        }
    }
}

/// A PNG that claims `width` × `height` RGB pixels: the signature, the header, a few bytes of
/// image data (an empty zlib stream) and the end. Small on the wire, large once decoded.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, no filter, no interlace
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// A phase's messages: their number and event times.
struct Plan {
    total: u64,
    rate: u64,
    /// Event time of message 0 (ms since the epoch): a window boundary hours in the past.
    t0: u64,
}

/// The publisher's task, sending a range of messages.
struct Load {
    sent: u64,
    done: std::sync::mpsc::Receiver<()>,
}

impl Load {
    /// Waits until every message was sent and acknowledged by the broker (a publisher that
    /// reconnects after a broker restart sends again what was not).
    fn wait(self, publisher: &Client) -> Result<()> {
        self.done
            .recv_timeout(Duration::from_secs(3600))
            .map_err(|_| anyhow!("the publisher stopped"))?;
        let acked = publisher.wait_pubacks(self.sent as usize, Duration::from_secs(120));
        if acked < self.sent as usize {
            bail!("the broker acknowledged {acked} of {} messages", self.sent);
        }
        Ok(())
    }
}

impl Plan {
    fn new(s: &Settings, phase: u64) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // Two days back, the phases a day apart: every window is in the past.
        let t0 = (now / WINDOW_MS) * WINDOW_MS - (2 - phase) * 86_400_000;
        Plan {
            total: s.seconds * s.rate,
            rate: s.rate,
            t0,
        }
    }

    fn event_ms(&self, i: u64) -> u64 {
        self.t0 + 50 + i * STEP_MS
    }

    /// The end of the window message `i` falls in: what its output's `__ts` says.
    fn window_end(&self, i: u64) -> u64 {
        (self.event_ms(i) / WINDOW_MS + 1) * WINDOW_MS
    }

    /// Sends messages `range` at the plan's rate from the publisher's runtime.
    fn publish(&self, publisher: &Client, range: std::ops::Range<u64>) -> Load {
        let (tx, done) = std::sync::mpsc::channel();
        let client = publisher.client.clone();
        let (rate, sent) = (self.rate, range.end - range.start);
        let messages: Vec<(u64, u64)> = range.map(|i| (i, self.event_ms(i))).collect();
        publisher.rt.spawn(async move {
            let start = tokio::time::Instant::now();
            for (n, (i, ms)) in messages.into_iter().enumerate() {
                tokio::time::sleep_until(start + Duration::from_micros(n as u64 * 1_000_000 / rate)).await;
                let properties = PublishProperties {
                    user_properties: vec![
                        ("seq".into(), i.to_string()),
                        ("__ts".into(), format!("{ms:0>15}:00000:soak")),
                    ],
                    ..Default::default()
                };
                let payload = Message::of(i).payload();
                if client
                    .publish_with_properties(IN, QoS::AtLeastOnce, false, payload, properties)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let _ = tx.send(());
        });
        Load { sent, done }
    }

    /// Waits until every window of `range` came out and every poison of it was dead-lettered,
    /// or [`DRAIN`] passed.
    fn drain(&self, collector: &Client, range: std::ops::Range<u64>) {
        let started = Instant::now();
        loop {
            let received = lock(&collector.received).clone();
            let seen = Seen::of(&received);
            let missing = range.clone().filter(|&i| match Message::of(i) {
                Message::Poison => !seen.dead.contains_key(&i),
                _ => !seen.windows.contains_key(&self.window_end(i)),
            });
            if missing.count() == 0 {
                log(format!("  drained in {:.1?}", started.elapsed()));
                return;
            }
            if started.elapsed() > DRAIN {
                log(format!("  not drained after {DRAIN:?}"));
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// What the phase's outputs say about its messages.
    fn outcome(&self, name: &'static str, received: &[Publish], rebuilds: u64, rss_warm: f64, rss_end: f64) -> Outcome {
        let mut expected: BTreeMap<u64, Window> = BTreeMap::new();
        let mut poisons = 0;
        for i in 0..self.total {
            let w = expected.entry(self.window_end(i)).or_default();
            match Message::of(i) {
                Message::Temperature(v) => w.temperature.add(1, v, v, v),
                Message::Humidity(v) => w.humidity.add(1, v, v, v),
                Message::Poison => poisons += 1,
            }
        }
        let seen = Seen::of(received);
        let mut o = Outcome {
            name,
            messages_in: self.total - poisons,
            poisons_in: poisons,
            dead_letters: seen.dead.len() as u64,
            rebuilds,
            rss_warm,
            rss_end,
            ..Outcome::default()
        };
        o.problems.extend(seen.problems.iter().cloned());
        for (end, window) in &expected {
            let got = seen.windows.get(end).cloned().unwrap_or_default();
            o.windows_reemitted += got.outputs.saturating_sub(1);
            for (category, want, have) in [
                ("temperature", &window.temperature, &got.temperature),
                ("humidity", &window.humidity, &got.humidity),
            ] {
                o.out += have.count.min(want.count);
                if have.count < want.count {
                    o.lost += want.count - have.count;
                    o.problems.push(format!(
                        "window ending {end}: {} of {} {category} readings",
                        have.count, want.count
                    ));
                } else if have.count > want.count {
                    o.duplicated += have.count - want.count;
                } else if !have.same_readings(want) {
                    o.lost += 1;
                    o.duplicated += 1;
                    o.problems.push(format!(
                        "window ending {end}: {category} readings differ (expected {want:?}, got {have:?})"
                    ));
                }
            }
        }
        for end in seen.windows.keys().filter(|e| !expected.contains_key(e)) {
            o.problems
                .push(format!("an output for window {end}, which no message falls in"));
        }
        let missing_dead = (0..self.total)
            .filter(|&i| Message::of(i) == Message::Poison && !seen.dead.contains_key(&i))
            .count() as u64;
        if missing_dead > 0 {
            o.lost += missing_dead;
            o.problems.push(format!("{missing_dead} poisons without a dead letter"));
        }
        o.duplicated += seen.dead.values().map(|n| n - 1).sum::<u64>();
        o
    }
}

// ------------------------------------------------------------------------------- the outputs

/// Readings of one category in one window: what was sent, or what the outputs say.
#[derive(Debug, Clone, Default)]
struct Readings {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Readings {
    fn add(&mut self, count: u64, sum: f64, min: f64, max: f64) {
        if self.count == 0 {
            (self.min, self.max) = (min, max);
        } else {
            (self.min, self.max) = (self.min.min(min), self.max.max(max));
        }
        self.count += count;
        self.sum += sum;
    }

    fn same_readings(&self, other: &Readings) -> bool {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0);
        close(self.sum, other.sum) && self.min == other.min && self.max == other.max
    }
}

/// One window's outputs summed.
#[derive(Debug, Clone, Default)]
struct Window {
    outputs: u64,
    temperature: Readings,
    humidity: Readings,
}

/// What the collector received, by window end, and the dead letters by sequence number.
#[derive(Default)]
struct Seen {
    windows: BTreeMap<u64, Window>,
    dead: BTreeMap<u64, u64>,
    problems: BTreeSet<String>,
}

impl Seen {
    fn of(received: &[Publish]) -> Self {
        let mut seen = Seen::default();
        for p in received {
            if &p.topic[..] == DEAD.as_bytes() {
                match user_prop(p, "seq").and_then(|s| s.parse().ok()) {
                    Some(seq) => *seen.dead.entry(seq).or_default() += 1,
                    None => {
                        seen.problems.insert("a dead letter without its seq".into());
                    }
                }
                continue;
            }
            if let Err(e) = seen.add_output(p) {
                seen.problems
                    .insert(format!("an output that is not a window summary: {e:#}"));
            }
        }
        seen
    }

    fn add_output(&mut self, p: &Publish) -> Result<()> {
        let ts = user_prop(p, "__ts").ok_or_else(|| anyhow!("no __ts"))?;
        let end: u64 = ts.split(':').next().unwrap_or_default().parse().context("__ts")?;
        let v: serde_json::Value = serde_json::from_slice(&p.payload).context("payload")?;
        let w = self.windows.entry(end).or_default();
        w.outputs += 1;
        for (category, readings) in [("temperature", &mut w.temperature), ("humidity", &mut w.humidity)] {
            for r in v[category].as_array().into_iter().flatten() {
                let field = |f: &str| r[f].as_f64().ok_or_else(|| anyhow!("{category}.{f} in {v}"));
                let count = r["count"].as_u64().ok_or_else(|| anyhow!("{category}.count in {v}"))?;
                readings.add(count, field("average")? * count as f64, field("min")?, field("max")?);
            }
        }
        Ok(())
    }
}

/// A phase's result.
#[derive(Default)]
struct Outcome {
    name: &'static str,
    messages_in: u64,
    out: u64,
    lost: u64,
    duplicated: u64,
    windows_reemitted: u64,
    poisons_in: u64,
    dead_letters: u64,
    rebuilds: u64,
    rss_warm: f64,
    rss_end: f64,
    problems: Vec<String>,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.lost == 0 && self.out == self.messages_in && self.dead_letters == self.poisons_in
    }

    fn print_row(&self) {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} |",
            self.name,
            self.messages_in,
            self.out,
            self.lost,
            self.duplicated,
            self.windows_reemitted,
            self.poisons_in,
            self.dead_letters,
            self.rebuilds,
            self.rss_warm,
            self.rss_end
        );
    }
}

// ------------------------------------------------------------------------------- the process

/// A `wasmflow run` of the graph: its log in its data directory, killed when dropped.
struct Wasmflow {
    child: Child,
    log: PathBuf,
    metrics: u16,
}

impl Wasmflow {
    /// Starts `wasmflow run GRAPH ARGS` with the soak's settings and waits until its source
    /// is subscribed.
    fn start(data: &Path, args: &[&str]) -> Result<Self> {
        let log_file = data.join("wasmflow.log");
        let metrics = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_wasmflow"))
            .arg("run")
            .arg(GRAPH)
            .args(args)
            .args(["--data-dir", &data.display().to_string()])
            .args(["--metrics", &format!("127.0.0.1:{metrics}")])
            .args(["--dead-letter-topic", DEAD, "--max-memory-mib", MODULE_MEMORY_MIB])
            .current_dir(repo())
            .env_remove("WASMFLOW_MODULES")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::OpenOptions::new().create(true).append(true).open(&log_file)?)
            .spawn()
            .context("starting wasmflow")?;
        let mut wf = Wasmflow {
            child,
            log: log_file,
            metrics,
        };
        let until = Instant::now() + Duration::from_secs(300);
        while !wf.log().contains("MQTT source subscribed") {
            if let Some(status) = wf.child.try_wait()? {
                bail!("wasmflow exited ({status}) before subscribing:\n{}", wf.log());
            }
            if Instant::now() > until {
                bail!("wasmflow did not subscribe within 300 s:\n{}", wf.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        log(format!("  wasmflow {} running", wf.child.id()));
        Ok(wf)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `VmRSS` in MiB.
    fn rss_mib(&self) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| {
                anyhow!(
                    "no VmRSS in /proc/{}/status (has wasmflow exited?); its log:\n{}",
                    self.child.id(),
                    self.log()
                )
            })?;
        Ok(kib / 1024.0)
    }

    /// Instance rebuilds so far: the traps the metrics endpoint counts (one rebuild each).
    fn rebuilds(&self) -> Result<u64> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.metrics))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nhost: soak\r\nconnection: close\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with("wasmflow_operator_traps_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64)
    }

    /// SIGTERM, and waits for a clean exit.
    fn terminate(mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("wasmflow exited with {status} on SIGTERM:\n{}", self.log());
                }
                return Ok(());
            }
            if Instant::now() > until {
                bail!("wasmflow still running 30 s after SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown code runs.
    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Wasmflow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
