//! Scale-out (issue 17): graph-simple run by 1, 2 and 3 processes side by side, on one Kafka
//! topic of 3 partitions (librdkafka's mock cluster, in this process) and on one MQTT shared
//! subscription (a real mosquitto), for two relays:
//!
//! * **wasmflow** — `wasmflow run graph-simple.yaml` N times, in one consumer group
//!   (`--kafka-group`) or on one `$share/GROUP/…` filter (each with its own `--instance`, so its
//!   own client id);
//! * **native** — this binary re-executed N times as a plain client relay
//!   (`support::native`: rdkafka, rumqttc), the ceiling the machine and broker allow.
//!
//! For each N, once every process is in (the group assigned all partitions; every process
//! subscribed), `--messages` readings (default 20,000; 5,000 with `--quick`) go through and the
//! time until the last output arrives is measured: msgs/s, and the scaling factor against one
//! process. On Kafka the readings are a backlog, loaded while the processes are stopped
//! (`SIGSTOP`) and timed from their resumption: offered while they read, the loader's own rate
//! into the cluster set the pace (≈ 37,000 msgs/s for every N and both relays). On MQTT they
//! are offered as fast as the loader can (mosquitto keeps at most 1,000 queued per session, so
//! there is no backlog to load). On 2 cores the processes share the cores with
//! the broker (mosquitto, or the mock cluster in this process) and the loader: more processes
//! cannot do better than about 2×, and less when the broker is the bottleneck — which the
//! native relay's factor shows.
//!
//! `cargo bench -p wasmflow-cli --bench scaleout [-- --quick] [--messages M]`. Markdown on stdout,
//! progress on stderr (BENCHMARKS.md).

#[path = "../all/support/mosquitto.rs"]
#[allow(dead_code)]
mod mosquitto;
mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use support::{arg, fmt_int, produce, quick, ratio, reading, repo, signal};

const SIMPLE: &str = "compose/tests/azure-compat/graph-simple.yaml";
const PROCESSES: [usize; 3] = [1, 2, 3];

#[derive(Clone, Copy, PartialEq)]
enum Relay {
    Wasmflow,
    Native,
}

impl Relay {
    fn name(self) -> &'static str {
        match self {
            Relay::Wasmflow => "wasmflow",
            Relay::Native => "native",
        }
    }
}

/// One relay process, killed when dropped; its standard error in a file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(mut cmd: Command, log: PathBuf) -> Result<Self> {
        let file = std::fs::File::create(&log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .context("starting a relay")?;
        Ok(Self { child, log })
    }

    fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wasmflow(dir: &Path, i: usize, args: &[&str]) -> Result<Proc> {
    let data = dir.join(format!("data-{i}"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmflow"));
    cmd.current_dir(repo())
        .arg("run")
        .args(args)
        .args(["--instance", &format!("r{i}")])
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "info");
    Proc::start(cmd, dir.join(format!("relay-{i}.log")))
}

fn native(dir: &Path, i: usize, args: &[&str]) -> Result<Proc> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(args);
    Proc::start(cmd, dir.join(format!("relay-{i}.log")))
}

/// Waits until every process's log shows `ready` (its last line with it, for Kafka's
/// assignments, via `settled`), at most 120 s.
fn await_ready(procs: &[Proc], settled: impl Fn(&[String]) -> bool) -> Result<()> {
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let logs: Vec<String> = procs.iter().map(Proc::log).collect();
        if settled(&logs) {
            return Ok(());
        }
        if Instant::now() > until {
            bail!("the relays were not ready within 120 s:\n{}", logs.join("\n---\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every process holds some partition and together they hold all `n` (Kafka).
fn group_settled(logs: &[String], partitions: usize) -> bool {
    let mut all = Vec::new();
    for log in logs {
        let Some(last) = log
            .lines()
            .rev()
            .find_map(|l| l.split_once("partitions assigned: ").map(|(_, a)| a.to_owned()))
        else {
            return false;
        };
        if !last.contains('[') {
            return false;
        }
        all.push(last);
    }
    // `in[0, 2]` (wasmflow) or `in[0] in[2]` (native): one per bracket, one per comma.
    let count: usize = all
        .iter()
        .map(|a| a.matches('[').count() + a.matches(',').count())
        .sum();
    count == partitions
}

// ---------------------------------------------------------------------------------------------
// Kafka

fn kafka_run(
    cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    relay: Relay,
    n: usize,
    m: usize,
) -> Result<f64> {
    let bs = cluster.bootstrap_servers();
    let (input, output, group) = (
        format!("in-{}-{n}", relay.name()),
        format!("out-{}-{n}", relay.name()),
        format!("g-{}-{n}", relay.name()),
    );
    cluster.create_topic(&input, 3, 1)?;
    cluster.create_topic(&output, 1, 1)?;
    let dir = tempfile::tempdir()?;
    let procs: Vec<Proc> = (0..n)
        .map(|i| match relay {
            Relay::Wasmflow => wasmflow(
                dir.path(),
                i,
                &[
                    SIMPLE,
                    "--kafka",
                    &bs,
                    "--source",
                    &input,
                    "--sink",
                    &output,
                    "--kafka-group",
                    &group,
                    "-X",
                    "session.timeout.ms=6000",
                    "-X",
                    "fetch.wait.max.ms=10",
                ],
            ),
            Relay::Native => native(dir.path(), i, &["--native-kafka", &bs, &input, &output, &group]),
        })
        .collect::<Result<_>>()?;
    await_ready(&procs, |logs| group_settled(logs, 3))?;

    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .set("group.id", "bench-collector")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&output, 0, Offset::Beginning)?;
    c.assign(&tpl)?;
    let p: ThreadedProducer<rdkafka::producer::DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .set("linger.ms", "5")
        .create()?;
    // The readings are a backlog the processes drain: loaded while they are stopped, so the
    // loader's own rate into the cluster is not what is measured.
    for proc in &procs {
        signal(proc.child.id(), "STOP")?;
    }
    for i in 0..m {
        let (payload, key) = (reading(i), format!("k{i}"));
        produce(&p, BaseRecord::to(&input).payload(&payload).key(&key));
    }
    p.flush(Duration::from_secs(60))?;
    let t0 = Instant::now();
    for proc in &procs {
        signal(proc.child.id(), "CONT")?;
    }
    let mut got = 0;
    let deadline = t0 + Duration::from_secs(300);
    while got < m && Instant::now() < deadline {
        if let Some(Ok(_)) = c.poll(Duration::from_millis(50)) {
            got += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    std::mem::forget(c); // librdkafka: never risk a hanging consumer destroy
    if got < m {
        bail!("kafka, {} × {n}: {got} of {m} outputs within 300 s", relay.name());
    }
    Ok(m as f64 / secs)
}

// ---------------------------------------------------------------------------------------------
// MQTT

fn mqtt_run(broker: &mosquitto::Mosquitto, relay: Relay, n: usize, m: usize) -> Result<f64> {
    let port = broker.port.to_string();
    let (input, output) = (format!("in/{}/{n}", relay.name()), format!("out/{}/{n}", relay.name()));
    let filter = format!("$share/g-{}-{n}/{input}", relay.name());
    let dir = tempfile::tempdir()?;
    let procs: Vec<Proc> = (0..n)
        .map(|i| match relay {
            Relay::Wasmflow => wasmflow(
                dir.path(),
                i,
                &[SIMPLE, "--mqtt", &broker.url(), "--source", &filter, "--sink", &output],
            ),
            Relay::Native => {
                let id = format!("native-{n}-{i}");
                native(dir.path(), i, &["--native-mqtt", &port, &filter, &output, &id])
            }
        })
        .collect::<Result<_>>()?;
    let ready = match relay {
        Relay::Wasmflow => "MQTT source subscribed",
        Relay::Native => "subscribed",
    };
    await_ready(&procs, |logs| logs.iter().all(|l| l.contains(ready)))?;
    let collector = mosquitto::Client::connect(broker.port, &format!("collector-{}-{n}", relay.name()), &[&output]);
    let publisher = mosquitto::Client::connect(broker.port, &format!("loader-{}-{n}", relay.name()), &[]);
    let t0 = Instant::now();
    publisher.publish_many(&input, m, 0, reading);
    let got = collector.wait_for(m, Duration::from_secs(300)).len();
    let secs = t0.elapsed().as_secs_f64();
    if got < m {
        bail!("mqtt, {} × {n}: {got} of {m} outputs within 300 s", relay.name());
    }
    Ok(m as f64 / secs)
}

// ---------------------------------------------------------------------------------------------

fn main() -> Result<()> {
    if let Some(r) = support::native::child_mode() {
        return r;
    }
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let m = arg(
        "--messages",
        "WASMFLOW_BENCH_SCALEOUT_MESSAGES",
        if quick() { 5_000 } else { 20_000 },
    )?;
    support::module("temperature")?;
    let mut rows: Vec<(&str, Relay, Vec<f64>)> = Vec::new();

    let cluster = MockCluster::new(1)?;
    for relay in [Relay::Wasmflow, Relay::Native] {
        let mut rates = Vec::new();
        for n in PROCESSES {
            eprintln!("kafka: {} × {n}, {m} readings …", relay.name());
            rates.push(kafka_run(&cluster, relay, n, m)?);
        }
        rows.push(("Kafka, 3 partitions", relay, rates));
    }
    drop(cluster);

    let broker = mosquitto::Mosquitto::start();
    for relay in [Relay::Wasmflow, Relay::Native] {
        let mut rates = Vec::new();
        for n in PROCESSES {
            eprintln!("mqtt: {} × {n}, {m} readings …", relay.name());
            rates.push(mqtt_run(&broker, relay, n, m)?);
        }
        rows.push(("MQTT shared subscription (QoS 1)", relay, rates));
    }

    println!(
        "\ngraph-simple run by 1, 2 and 3 processes, {} readings: on Kafka a backlog loaded while the \
         processes were stopped, msgs/s from their resumption to the last output; on MQTT offered as \
         fast as the loader can, msgs/s from the first send to the last output. {} CPUs: the processes share them with the \
         broker and the loader, so about 2× is the ceiling, and the native relay's factor is what \
         this machine and broker allow.\n",
        fmt_int(m as f64),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| transport | relay | 1 process msgs/s | 2 processes | 3 processes | 2 / 1 | 3 / 1 |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (transport, relay, r) in &rows {
        println!(
            "| {transport} | {} | {} | {} | {} | {} | {} |",
            relay.name(),
            fmt_int(r[0]),
            fmt_int(r[1]),
            fmt_int(r[2]),
            ratio(r[1], r[0]),
            ratio(r[2], r[0])
        );
    }
    Ok(())
}
