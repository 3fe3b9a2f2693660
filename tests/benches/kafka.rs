//! Kafka end to end (issue 4): `graph-simple` between two topics of librdkafka's mock cluster
//! (a real Kafka protocol peer, in this process, on loopback), two relays side by side in one run:
//!
//! * **wasmflow** — the `wasmflow` binary: `run graph-simple.yaml --kafka … --source … --sink …`
//!   (consumer group with acked-prefix commits, `acks=all` idempotent producer).
//! * **native** — this binary re-executed as a plain rdkafka relay: a `StreamConsumer` in a
//!   group (offsets stored after the delivery report, auto-committed), the sample operator's own
//!   Rust logic (`temperature::map`, as `benches/inprocess.rs` uses it), a `FutureProducer` with
//!   `acks=all` and idempotence. The same at-least-once contract, no WebAssembly.
//!
//! Both are child processes; CPU is their user+system time from /proc over the measured
//! window, divided by the messages they relayed. Input is offered at a fixed rate (default 2,000
//! msg/s for 10 s) with the send time in a header; latency is from that send to the output's
//! arrival at a consumer in this process (so it includes two trips through the cluster for
//! both). Both relays and all clients use `fetch.wait.max.ms=10` (the mock holds an empty fetch
//! for that long; the 500 ms default would dominate the latency).
//!
//! `cargo bench -p wasmflow-cli --bench kafka [-- --rate R --seconds S]`. Prints a Markdown table.

mod support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, FutureProducer, FutureRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use support::{cpu_ticks, repo, ticks_per_sec};

const FETCH_WAIT: &str = "10";

// ---------------------------------------------------------------------------------------------
// The native relay (child mode)

fn native_relay(bootstrap: &str, input: &str, output: &str, group: &str) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", FETCH_WAIT)
            .set("session.timeout.ms", "6000")
            .create()?;
        let consumer = Arc::new(consumer);
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create()?;
        consumer.subscribe(&[input])?;
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
// Driver

struct Relay {
    name: &'static str,
    child: Child,
    input: String,
    output: String,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Row {
    name: &'static str,
    sent: usize,
    received: usize,
    secs: f64,
    cpu_us_per_msg: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn producer(bootstrap: &str) -> Result<ThreadedProducer<rdkafka::producer::DefaultProducerContext>> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        .set("enable.idempotence", "true")
        .create()?)
}

fn reading(i: usize) -> String {
    format!(r#"{{"temperature":{{"value":{},"unit":"F"}}}}"#, 32 + i % 1000)
}

/// A consumer reading `topic` from its current end.
fn tail(bootstrap: &str, topic: &str) -> Result<BaseConsumer> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-collector")
        .set("fetch.wait.max.ms", FETCH_WAIT)
        .create()?;
    let (_, high) = c.fetch_watermarks(topic, 0, Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(high))?;
    c.assign(&tpl)?;
    Ok(c)
}

/// Sends until an output comes back (the relay joined its group and is warm).
fn warm_up(bootstrap: &str, relay: &Relay) -> Result<()> {
    let p = producer(bootstrap)?;
    let c = tail(bootstrap, &relay.output)?;
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
    while c.poll(Duration::from_millis(500)).is_some() {}
    std::mem::forget(c); // librdkafka: never risk a hanging consumer destroy
    Ok(())
}

fn measure(bootstrap: &str, relay: &Relay, rate: usize, secs: u64, tps: f64) -> Result<Row> {
    let p = producer(bootstrap)?;
    let c = tail(bootstrap, &relay.output)?;
    let t0 = Instant::now();
    let n = rate * secs as usize;
    let cpu0 = cpu_ticks(relay.child.id())?;
    let collector = std::thread::spawn(move || {
        let mut lat = Vec::with_capacity(n);
        let mut seen = HashMap::new();
        let deadline = Duration::from_secs(secs + 10);
        while lat.len() < n && t0.elapsed() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                let now = t0.elapsed().as_nanos() as u64;
                let sent = m
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == "sent-ns").and_then(|h| h.value))
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok());
                if let Some(s) = sent {
                    if seen.insert(s, ()).is_none() {
                        lat.push(now.saturating_sub(s));
                    }
                }
            }
        }
        let last = t0.elapsed();
        std::mem::forget(c);
        (lat, last)
    });
    for i in 0..n {
        let due = Duration::from_nanos((i as u64 * 1_000_000_000) / rate as u64);
        if let Some(w) = due.checked_sub(t0.elapsed()) {
            std::thread::sleep(w);
        }
        let payload = reading(i);
        let sent = t0.elapsed().as_nanos().to_string();
        let mut rec = BaseRecord::<(), _>::to(&relay.input)
            .payload(&payload)
            .headers(OwnedHeaders::new().insert(Header {
                key: "sent-ns",
                value: Some(sent.as_str()),
            }));
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
    p.flush(Duration::from_secs(10))?;
    let (mut lat, last) = collector.join().map_err(|_| anyhow!("collector panicked"))?;
    let cpu = cpu_ticks(relay.child.id())? - cpu0;
    lat.sort_unstable();
    let pct = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1e6
    };
    Ok(Row {
        name: relay.name,
        sent: n,
        received: lat.len(),
        secs: last.as_secs_f64(),
        cpu_us_per_msg: cpu as f64 / tps * 1e6 / lat.len().max(1) as f64,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    })
}

fn arg(args: &[String], name: &str, default: u64) -> Result<u64> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .context(name.to_owned())?
            .parse()
            .context(name.to_owned()),
        None => Ok(default),
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--native-relay") {
        let a = &args[i + 1..];
        if a.len() < 4 {
            bail!("--native-relay BOOTSTRAP IN OUT GROUP");
        }
        return native_relay(&a[0], &a[1], &a[2], &a[3]);
    }
    if args.iter().any(|a| a == "--list") {
        return Ok(()); // `cargo bench -- --list`: nothing to list
    }
    let rate = arg(&args, "--rate", 2000)? as usize;
    let secs = arg(&args, "--seconds", 10)?;
    let tps = ticks_per_sec();

    let cluster = MockCluster::new(1)?;
    let bs = cluster.bootstrap_servers();
    for t in ["in-wasmflow", "out-wasmflow", "in-native", "out-native"] {
        cluster.create_topic(t, 1, 1)?;
    }
    let data = tempfile::tempdir()?;
    let wasmflow = Relay {
        name: "wasmflow",
        child: Command::new(env!("CARGO_BIN_EXE_wasmflow"))
            .current_dir(repo())
            .args(["run", "compose/tests/azure-compat/graph-simple.yaml", "--kafka", &bs])
            .args([
                "--source",
                "in-wasmflow",
                "--sink",
                "out-wasmflow",
                "--kafka-group",
                "bench-wasmflow",
            ])
            .args([
                "-X",
                "session.timeout.ms=6000",
                "-X",
                &format!("fetch.wait.max.ms={FETCH_WAIT}"),
            ])
            .arg("--data-dir")
            .arg(data.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("starting wasmflow")?,
        input: "in-wasmflow".into(),
        output: "out-wasmflow".into(),
    };
    let native = Relay {
        name: "native rdkafka relay",
        child: Command::new(std::env::current_exe()?)
            .args(["--native-relay", &bs, "in-native", "out-native", "bench-native"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("starting the native relay")?,
        input: "in-native".into(),
        output: "out-native".into(),
    };
    for r in [&wasmflow, &native] {
        warm_up(&bs, r)?;
    }
    let mut rows = Vec::new();
    for r in [&wasmflow, &native] {
        eprintln!("measuring {} at {rate} msg/s for {secs} s …", r.name);
        rows.push(measure(&bs, r, rate, secs, tps)?);
    }
    println!("\ngraph-simple through librdkafka's mock cluster, {rate} msg/s offered for {secs} s\n");
    println!("| relay | sent | received | msgs/s | CPU µs/msg | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.0} | {:.1} | {:.2} | {:.2} |",
            r.name,
            r.sent,
            r.received,
            r.received as f64 / r.secs.min(secs as f64 + 10.0),
            r.cpu_us_per_msg,
            r.p50_ms,
            r.p99_ms
        );
    }
    let (w, n) = (&rows[0], &rows[1]);
    println!(
        "| **wasmflow / native** | | | | **{:.2}×** | **{:.2}×** | **{:.2}×** |",
        w.cpu_us_per_msg / n.cpu_us_per_msg,
        w.p50_ms / n.p50_ms,
        w.p99_ms / n.p99_ms
    );
    drop((wasmflow, native));
    Ok(())
}
