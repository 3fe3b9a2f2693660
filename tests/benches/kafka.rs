//! Kafka end to end (issue 16): `graph-simple` between two topics of a Kafka-protocol broker, two
//! relays side by side in one run:
//!
//! * **wasmflow** — the `wasmflow` binary: `run graph-simple.yaml --kafka … --source … --sink …`
//!   (consumer group with acked-prefix commits, `acks=all` idempotent producer), its defaults.
//! * **native** — this binary re-executed as a plain rdkafka relay with the same contract and the
//!   same client settings: a `StreamConsumer` in a group (offsets stored after the delivery
//!   report, committed every 500 ms as wasmflow does), the sample operator's own Rust logic
//!   (`temperature::map`, as `benches/inprocess.rs` uses it), a `FutureProducer` with `acks=all`,
//!   idempotence and `linger.ms=0`. No WebAssembly.
//!
//! **The broker**: [tansu](https://crates.io/crates/tansu) 0.6 (Apache-2.0, a Kafka-compatible
//! broker in Rust, in-memory storage) as a process of its own, when `scripts/setup.sh --bench`
//! installed it (`~/.cache/wasmflow/tansu/bin/tansu`, or `$WASMFLOW_TANSU`), and then also
//! librdkafka's mock cluster (inside this process), a table each: tansu is the real broker, the
//! mock the one every machine has (the tests' peer). Draining a backlog, both serve a relay
//! faster than it relays. `--broker tansu|mock` runs one.
//!
//! **Client settings** are librdkafka's defaults (what a user runs) except `linger.ms=0` on every
//! producer (wasmflow's sink default: latency first; the loader sends each reading on its own,
//! as a sensor gateway would) and, with the mock cluster only, `fetch.wait.max.ms=10`: the mock
//! answers a fetch only when that wait expires, where a broker answers as soon as
//! `fetch.min.bytes` (1) are there; with the default 500 ms its latency would be the mock's.
//!
//! Two measurements, relays taking turns round by round:
//! * **full speed**: `--messages` readings (default 20,000; on the mock at most 50,000, what it
//!   keeps: `MOCK_BACKLOG_MAX`) are loaded into the relay's input while the relay is stopped
//!   (`SIGSTOP`), then it is resumed and drains them: msgs/s = outputs ÷ (resume → last output),
//!   latency = resume (or the later send) → output. Loading while the relay ran made the
//!   loader's own produce rate into the broker the pace: with tansu, rounds of either relay ran
//!   at ≈ 16,000 or, at random, ≈ 25,000–32,000 msgs/s, whatever the relay.
//! * **fixed rate**: `--rate` msg/s (default 2,000) for `--seconds` (default 10) in rounds:
//!   latency = send → arrival of the output at a consumer in this process (two trips through
//!   the broker).
//!
//! CPU per message = the relay process's user+system time (`/proc/PID/stat`, all threads) over
//! the phase ÷ messages relayed. Every output's payload is checked against `temperature::map`
//! of its input. `cargo bench -p wasmflow-cli --bench kafka [-- --quick] [--broker tansu|mock]
//! [--rate R] [--seconds S] [--messages N] [--rounds K]`. Markdown tables on stdout.

#[path = "../all/support/kafka_peer.rs"]
#[allow(dead_code)] // `as_mock` is for the tests' fault injection
mod kafka_peer;
mod support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use kafka_peer::KafkaPeer;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, FutureProducer, FutureRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use support::{
    arg, arg_str, cpu_ticks, expected_outputs, fmt_int, produce, quick, ratio, reading, repo, signal, ticks_per_sec,
};

/// After the last send, how long without a new output ends a measurement (the rest is lost).
const QUIET_END: Duration = Duration::from_secs(5);

/// The largest backlog the bench loads into librdkafka's mock cluster. The mock keeps at most
/// 5 MiB and 100,000 message sets per partition and trims the oldest (`rdkafka_mock.c`); a
/// reading takes ≈ 87 bytes of its log, so of a 100,000 backlog only the last ≈ 60,000 are
/// still there when the relay resumes: both relays then "lose" the same 40 % to a fetch that
/// answers "Offset out of range". 50,000 leaves a margin; tansu relayed 100,000 whole.
const MOCK_BACKLOG_MAX: usize = 50_000;

/// Client properties every Kafka client of the bench gets (see the module doc): the fetch wait
/// from `--fetch-wait-ms` (default 10).
fn client_props() -> Result<Vec<(String, String)>> {
    let wait = arg("--fetch-wait-ms", "WASMFLOW_BENCH_FETCH_WAIT_MS", 10)?;
    Ok(vec![("fetch.wait.max.ms".into(), wait.to_string())])
}

fn config(bootstrap: &str, props: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    for (k, v) in props {
        c.set(k, v);
    }
    c
}

// ---------------------------------------------------------------------------------------------
// The native relay (child mode)

fn native_relay(bootstrap: &str, input: &str, output: &str, group: &str, props: &[(String, String)]) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let consumer: StreamConsumer = config(bootstrap, props)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .create()?;
        let consumer = Arc::new(consumer);
        let producer: FutureProducer = config(bootstrap, props)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create()?;
        consumer.subscribe(&[input])?;
        // Offsets stored after their delivery report are committed every 500 ms (as wasmflow).
        {
            let c = consumer.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                loop {
                    tick.tick().await;
                    let _ = c.commit_consumer_state(CommitMode::Async);
                }
            });
        }
        loop {
            let m = consumer.recv().await?;
            let payload = m.payload().unwrap_or_default();
            let out = match temperature::map(payload).map_err(|e| anyhow!(e))? {
                temperature::MapOutcome::Unchanged => payload.to_vec(),
                temperature::MapOutcome::Replaced(b) => b,
            };
            let mut headers = OwnedHeaders::new();
            if let Some(h) = m.headers() {
                for h in h.iter() {
                    headers = headers.insert(Header {
                        key: h.key,
                        value: h.value,
                    });
                }
            }
            let mut record = FutureRecord::to(output).payload(&out).headers(headers);
            if let Some(k) = m.key() {
                record = record.key(k);
            }
            let delivery = producer.send_result(record).map_err(|(e, _)| e)?;
            let (c, topic, partition, offset) = (consumer.clone(), m.topic().to_owned(), m.partition(), m.offset());
            tokio::spawn(async move {
                if let Ok(Ok(_)) = delivery.await {
                    let _ = c.store_offset(&topic, partition, offset);
                }
            });
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The broker

/// The broker: the Kafka tests' own peer (`tests/all/support/kafka_peer.rs`), started by name.
fn start_broker(kind: &str) -> Result<KafkaPeer> {
    match kind {
        "mock" => KafkaPeer::mock(),
        "tansu" => KafkaPeer::tansu(),
        other => Err(format!("--broker {other}: tansu or mock")),
    }
    .map_err(|e| anyhow!(e))
}

// ---------------------------------------------------------------------------------------------
// Driver

struct Relay {
    name: &'static str,
    child: Child,
    input: String,
    output: String,
}

impl Relay {
    fn check(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("the {} relay exited ({status})", self.name);
        }
        Ok(())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One relay in one kind of measurement, summed over rounds.
#[derive(Default)]
struct Row {
    sent: usize,
    received: usize,
    wrong: usize,
    /// First send (a backlog: the relay's resumption) → last output, summed over rounds.
    active_secs: f64,
    cpu_secs: f64,
    latencies_ns: Vec<u64>,
}

impl Row {
    fn msgs_per_s(&self) -> f64 {
        self.received as f64 / self.active_secs
    }
    fn cpu_us_per_msg(&self) -> f64 {
        self.cpu_secs * 1e6 / self.received.max(1) as f64
    }
    fn pct_ms(&self, q: f64) -> f64 {
        let mut lat = self.latencies_ns.clone();
        if lat.is_empty() {
            return f64::NAN;
        }
        lat.sort_unstable();
        lat[((lat.len() - 1) as f64 * q).round() as usize] as f64 / 1e6
    }
}

fn producer(
    bootstrap: &str,
    props: &[(String, String)],
) -> Result<ThreadedProducer<rdkafka::producer::DefaultProducerContext>> {
    Ok(config(bootstrap, props)
        .set("linger.ms", "0")
        .set("enable.idempotence", "true")
        .create()?)
}

/// A consumer reading `topic` from its current end.
fn tail(bootstrap: &str, topic: &str, props: &[(String, String)]) -> Result<BaseConsumer> {
    let c: BaseConsumer = config(bootstrap, props).set("group.id", "bench-collector").create()?;
    let (_, high) = c.fetch_watermarks(topic, 0, Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(high))?;
    c.assign(&tpl)?;
    Ok(c)
}

fn header<'a>(m: &'a rdkafka::message::BorrowedMessage<'_>, key: &str) -> Option<&'a str> {
    m.headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
}

/// Sends until outputs come back (the relay joined its group and is warm), then lets it finish.
fn warm_up(bootstrap: &str, relay: &Relay, props: &[(String, String)]) -> Result<()> {
    let p = producer(bootstrap, props)?;
    let c = tail(bootstrap, &relay.output, props)?;
    let until = Instant::now() + Duration::from_secs(90);
    let mut i = 0;
    let mut got = 0;
    while got < 200 {
        if Instant::now() > until {
            bail!("{}: no output within 90 s", relay.name);
        }
        let payload = reading(i);
        let _ = p.send(BaseRecord::<(), _>::to(&relay.input).payload(&payload));
        i += 1;
        if let Some(Ok(_)) = c.poll(Duration::from_millis(5)) {
            got += 1;
        }
    }
    p.flush(Duration::from_secs(10))?;
    // Let the relay finish the warm-up backlog.
    while c.poll(Duration::from_millis(1000)).is_some() {}
    std::mem::forget(c); // librdkafka: never risk a hanging consumer destroy
    Ok(())
}

/// Offers `n` readings to `relay` (at `rate` msg/s; with `None`, all at once while the relay is
/// stopped, a backlog it drains once resumed) and adds what came back to `row`.
#[allow(clippy::too_many_arguments)]
fn measure(
    bootstrap: &str,
    relay: &mut Relay,
    n: usize,
    rate: Option<usize>,
    props: &[(String, String)],
    expected: &Arc<Vec<Vec<u8>>>,
    tps: f64,
    row: &mut Row,
) -> Result<()> {
    relay.check()?;
    let p = producer(bootstrap, props)?;
    let c = tail(bootstrap, &relay.output, props)?;
    let t0 = Instant::now();
    let cpu0 = cpu_ticks(relay.child.id())?;
    let backlog = rate.is_none();
    if backlog {
        signal(relay.child.id(), "STOP")?;
    }
    let expected = expected.clone();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Instant>();
    let collector = std::thread::spawn(move || {
        // (sent, arrived) in ns since t0, for each first arrival.
        let mut lat = Vec::with_capacity(n);
        let mut seen = HashMap::new();
        let mut wrong = 0;
        let mut last = t0;
        let mut sent_all: Option<Instant> = None;
        while lat.len() < n {
            if let Ok(t) = done_rx.try_recv() {
                sent_all = Some(t);
            }
            if sent_all.is_some_and(|s| last.max(s).elapsed() > QUIET_END) {
                break;
            }
            let Some(Ok(m)) = c.poll(Duration::from_millis(20)) else {
                continue;
            };
            let now = t0.elapsed().as_nanos() as u64;
            let sent = header(&m, "sent-ns").and_then(|v| v.parse::<u64>().ok());
            let seq = header(&m, "seq").and_then(|v| v.parse::<usize>().ok());
            let (Some(sent), Some(seq)) = (sent, seq) else {
                wrong += 1;
                continue;
            };
            if expected.get(seq % 1000).is_none_or(|e| Some(&e[..]) != m.payload()) {
                wrong += 1;
                continue;
            }
            if seen.insert(seq, ()).is_none() {
                lat.push((sent, now));
                last = Instant::now();
            }
        }
        std::mem::forget(c);
        (lat, wrong, last)
    });
    for i in 0..n {
        if let Some(rate) = rate {
            let due = Duration::from_nanos((i as u64 * 1_000_000_000) / rate as u64);
            if let Some(w) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(w);
            }
        }
        let payload = reading(i);
        let sent = t0.elapsed().as_nanos().to_string();
        let seq = i.to_string();
        let rec = BaseRecord::<(), _>::to(&relay.input).payload(&payload).headers(
            OwnedHeaders::new()
                .insert(Header {
                    key: "sent-ns",
                    value: Some(sent.as_str()),
                })
                .insert(Header {
                    key: "seq",
                    value: Some(seq.as_str()),
                }),
        );
        produce(&p, rec);
    }
    p.flush(Duration::from_secs(30))?;
    // The relay's clock starts here: at its resumption, or at the first send.
    let start = if backlog {
        let now = Instant::now();
        signal(relay.child.id(), "CONT")?;
        now
    } else {
        t0
    };
    let _ = done_tx.send(Instant::now());
    let (arrivals, wrong, last) = collector.join().map_err(|_| anyhow!("collector panicked"))?;
    let cpu = cpu_ticks(relay.child.id())? - cpu0;
    relay.check()?;
    let start_ns = start.saturating_duration_since(t0).as_nanos() as u64;
    let mut lat: Vec<u64> = arrivals
        .iter()
        .map(|&(sent, arrived)| arrived.saturating_sub(sent.max(start_ns)))
        .collect();
    row.sent += n;
    row.received += lat.len();
    row.wrong += wrong;
    row.active_secs += last.saturating_duration_since(start).as_secs_f64();
    row.cpu_secs += cpu as f64 / tps;
    row.latencies_ns.append(&mut lat);
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--native-relay") {
        let a = &args[i + 1..];
        if a.len() < 4 {
            bail!("--native-relay BOOTSTRAP IN OUT GROUP [KEY=VALUE…]");
        }
        let props: Vec<(String, String)> = a[4..]
            .iter()
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        return native_relay(&a[0], &a[1], &a[2], &a[3], &props);
    }
    if args.iter().any(|a| a == "--list") {
        return Ok(()); // `cargo bench -- --list`: nothing to list
    }
    let quick = quick();
    let rate = arg("--rate", "WASMFLOW_BENCH_RATE", 2000)?.max(1);
    let secs = arg("--seconds", "WASMFLOW_BENCH_SECONDS", if quick { 3 } else { 10 })?.max(1);
    let rounds = arg("--rounds", "WASMFLOW_BENCH_ROUNDS", if quick { 1 } else { 3 })?.max(1);
    let full_n = arg(
        "--messages",
        "WASMFLOW_BENCH_MESSAGES",
        if quick { 5000 } else { 20_000 },
    )?
    .max(1);
    let tps = ticks_per_sec();
    let expected = Arc::new(expected_outputs()?);

    // Both brokers when tansu is installed (it is the real one); the mock alone otherwise.
    let asked = arg_str("--broker");
    let kinds: Vec<&str> = match asked.as_deref() {
        Some(k) => vec![k],
        None if KafkaPeer::tansu_binary().is_some() => vec!["tansu", "mock"],
        None => vec!["mock"],
    };
    if kinds.contains(&"mock") && full_n > MOCK_BACKLOG_MAX {
        bail!(
            "--messages {full_n}: librdkafka's mock cluster trims a partition past 5 MiB, so a backlog \
             above {MOCK_BACKLOG_MAX} readings would be lost before the relay reads it; use \
             --broker tansu for a larger one"
        );
    }
    for kind in kinds {
        let setup = Setup {
            rate,
            secs,
            rounds,
            full_n,
            tps,
        };
        run_on(start_broker(kind)?, &setup, &expected)?;
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct Setup {
    rate: usize,
    secs: usize,
    rounds: usize,
    full_n: usize,
    tps: f64,
}

/// Both relays on `broker`: full-speed and fixed-rate rounds, then the table.
fn run_on(broker: KafkaPeer, setup: &Setup, expected: &Arc<Vec<Vec<u8>>>) -> Result<()> {
    let Setup {
        rate,
        secs,
        rounds,
        full_n,
        tps,
    } = *setup;
    let bs = broker.bootstrap_servers();
    let props = client_props()?;
    broker
        .create_topics(&["in-wasmflow", "out-wasmflow", "in-native", "out-native"])
        .map_err(|e| anyhow!(e))?;
    eprintln!("broker: {} at {bs}", broker.describe());
    let data = tempfile::tempdir()?;
    let mut wasmflow_cmd = Command::new(env!("CARGO_BIN_EXE_wasmflow"));
    wasmflow_cmd
        .current_dir(repo())
        .args(["run", "compose/tests/azure-compat/graph-simple.yaml", "--kafka", &bs])
        .args([
            "--source",
            "in-wasmflow",
            "--sink",
            "out-wasmflow",
            "--kafka-group",
            "bench-wasmflow",
        ]);
    for (k, v) in &props {
        wasmflow_cmd.args(["-X", &format!("{k}={v}")]);
    }
    let mut native_cmd = Command::new(std::env::current_exe()?);
    native_cmd.args(["--native-relay", &bs, "in-native", "out-native", "bench-native"]);
    for (k, v) in &props {
        native_cmd.arg(format!("{k}={v}"));
    }
    let mut relays = [
        Relay {
            name: "wasmflow",
            child: wasmflow_cmd
                .arg("--data-dir")
                .arg(data.path())
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .context("starting wasmflow")?,
            input: "in-wasmflow".into(),
            output: "out-wasmflow".into(),
        },
        Relay {
            name: "native rdkafka relay",
            child: native_cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .context("starting the native relay")?,
            input: "in-native".into(),
            output: "out-native".into(),
        },
    ];
    for r in &relays {
        eprintln!("warming up {} …", r.name);
        warm_up(&bs, r, &props)?;
    }
    let mut full: [Row; 2] = Default::default();
    let mut fixed: [Row; 2] = Default::default();
    let per_round = rate * secs / rounds;
    for k in 0..rounds {
        for j in 0..relays.len() {
            let j = (j + k) % relays.len();
            eprintln!(
                "round {}/{rounds}: {} at full speed, {full_n} messages …",
                k + 1,
                relays[j].name
            );
            let mut once = Row::default();
            measure(&bs, &mut relays[j], full_n, None, &props, expected, tps, &mut once)?;
            eprintln!(
                "  {} msgs/s ({} of {full_n}), CPU {:.1} µs/msg",
                fmt_int(once.msgs_per_s()),
                once.received,
                once.cpu_us_per_msg()
            );
            add(&mut full[j], once);
        }
        for j in 0..relays.len() {
            let j = (j + k + 1) % relays.len();
            eprintln!(
                "round {}/{rounds}: {} at {rate} msg/s, {per_round} messages …",
                k + 1,
                relays[j].name
            );
            measure(
                &bs,
                &mut relays[j],
                per_round,
                Some(rate),
                &props,
                expected,
                tps,
                &mut fixed[j],
            )?;
        }
    }
    for (i, r) in relays.iter().enumerate() {
        let wrong = full[i].wrong + fixed[i].wrong;
        if wrong > 0 {
            bail!("{}: {wrong} outputs were not temperature::map of their input", r.name);
        }
    }
    let settings = format!(
        "librdkafka defaults except linger.ms=0 on producers and {}",
        props
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "\ngraph-simple through {}, wasmflow vs a native rdkafka relay, {rounds} rounds each, relays taking turns; \
         client settings: {settings}; CPU = the relay process's user+system time / messages relayed\n",
        broker.describe()
    );
    println!("| relay | load | received | msgs/s | vs native | CPU µs/msg | vs native | p50 ms | p99 ms |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (what, rows) in [("full speed", &full), ("fixed", &fixed)] {
        for (i, r) in rows.iter().enumerate() {
            let load = if what == "full speed" {
                format!("full speed: a backlog of {} msgs", fmt_int(r.sent as f64))
            } else {
                format!("{}/s × {secs} s", fmt_int(rate as f64))
            };
            let bold = |x: String| if i == 0 { format!("**{x}**") } else { x };
            println!(
                "| {} | {load} | {}/{} | {} | {} | {:.1} | {} | {:.2} | {:.2} |",
                relays[i].name,
                r.received,
                r.sent,
                fmt_int(r.msgs_per_s()),
                bold(ratio(r.msgs_per_s(), rows[1].msgs_per_s())),
                r.cpu_us_per_msg(),
                bold(ratio(r.cpu_us_per_msg(), rows[1].cpu_us_per_msg())),
                r.pct_ms(0.5),
                r.pct_ms(0.99)
            );
        }
    }
    let r = full[0].msgs_per_s() / full[1].msgs_per_s();
    println!(
        "\nTarget (issue 16): wasmflow full-speed throughput ≥ 0.9× native: {r:.2}× — {}.",
        if r >= 0.9 { "met" } else { "**missed**" }
    );
    drop(relays);
    Ok(())
}

fn add(row: &mut Row, mut other: Row) {
    row.sent += other.sent;
    row.received += other.received;
    row.wrong += other.wrong;
    row.active_secs += other.active_secs;
    row.cpu_secs += other.cpu_secs;
    row.latencies_ns.append(&mut other.latencies_ns);
}
