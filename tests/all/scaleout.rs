//! Issue 17: several `wasmflow run` processes (instances) of one graph share the work, survive
//! the loss of one, and share one state store. Real peers: librdkafka's mock cluster in this
//! process, or tansu under `WASMFLOW_TEST_KAFKA=tansu` (`kafka.rs` says what each is), a real mosquitto, a real `redis-server`; the instances
//! are child processes. Every check reads outputs with plain clients, and each instance's
//! share from its own `/metrics` (`wasmflow_messages_in_total` of its source).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use crate::kafka::{cluster, collect, produce_stream, read_plain, SIMPLE};
use crate::mqtt::{await_all, reading};
use crate::support::http::{get, metric_sum};
use crate::support::mosquitto::{free_port, Client, Mosquitto};
use crate::support::process::Wasmflow;
use crate::support::redis::RedisServer;

/// One instance: its process, data directory and metrics address.
struct Instance {
    name: String,
    wf: Wasmflow,
    metrics: String,
    _data: tempfile::TempDir,
}

impl Instance {
    /// `wasmflow run ARGS --instance NAME --metrics 127.0.0.1:PORT` with a data directory of
    /// its own (as on its own machine).
    fn start(name: &str, args: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let metrics = format!("127.0.0.1:{}", free_port());
        let mut all = args.to_vec();
        all.extend(["--instance", name, "--metrics", &metrics]);
        Self {
            name: name.into(),
            wf: Wasmflow::start(data.path(), &all),
            metrics,
            _data: data,
        }
    }

    /// Inputs its graph's source took so far, from its `/metrics`, checked to be labelled
    /// with this instance; `None` when it does not answer.
    fn received(&self) -> Option<u64> {
        let (status, text) = get(&self.metrics, "/metrics")?;
        assert_eq!(status, 200, "{text}");
        let n = metric_sum(
            &text,
            "wasmflow_messages_in_total",
            &[("operation", "source"), ("instance", &self.name)],
        );
        Some(n as u64)
    }

    /// This instance's last `kafka: partitions assigned: …` line (its current share), if any.
    fn assignment(&self) -> Option<String> {
        self.wf
            .log()
            .lines()
            .rev()
            .find_map(|l| l.split_once("kafka: partitions assigned: ").map(|(_, a)| a.to_owned()))
    }
}

/// Waits until each instance holds exactly one partition of a `partitions`-partition topic,
/// together all of them (the group settled).
fn await_one_partition_each(instances: &[Instance], partitions: usize) {
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let shares: Vec<Option<String>> = instances.iter().map(Instance::assignment).collect();
        let settled = shares.iter().all(|s| {
            s.as_deref()
                .is_some_and(|a| a.matches(',').count() == 0 && a.contains('[') && !a.contains("[]"))
        }) && {
            let mut all: Vec<&str> = shares.iter().flatten().map(String::as_str).collect();
            all.sort_unstable();
            all.dedup();
            all.len() == partitions
        };
        if settled {
            eprintln!("group settled: {shares:?}");
            return;
        }
        assert!(
            Instant::now() < until,
            "the group did not settle one partition per instance within 90 s: {shares:?}\n{}",
            instances[0].wf.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The start line of issue 17: instance, share and state store, once.
fn assert_start_line(i: &Instance, share: &str, state: &str) {
    let log = i.wf.log();
    let line = log
        .lines()
        .find(|l| l.contains(&format!("instance `{}` of graph", i.name)))
        .unwrap_or_else(|| panic!("no start line naming the instance:\n{log}"));
    assert!(line.contains(share) && line.contains(state), "{line}");
}

const N: usize = 30_000;

/// Three instances of graph-simple in one Kafka consumer group on a topic of 3 partitions;
/// 30,000 readings; one instance killed with SIGKILL halfway. The group moves its partition
/// to the survivors, which resume at its last commit: every reading comes out (converted, its
/// key kept) at least once, and every instance handled a share.
#[test]
fn three_instances_share_a_kafka_topic_and_survive_a_kill_9() {
    crate::support::module("temperature");
    let c = cluster(&["out"]);
    c.create_topic("in", 3).expect("create topic");
    let bs = c.bootstrap_servers();
    let args = [
        SIMPLE,
        "--kafka",
        &bs,
        "--source",
        "in",
        "--sink",
        "out",
        "--kafka-group",
        "wf-scale",
        "-X",
        "session.timeout.ms=6000",
    ];
    let mut instances: Vec<Instance> = (0..3).map(|i| Instance::start(&format!("wf-{i}"), &args)).collect();
    await_one_partition_each(&instances, 3);
    for i in &instances {
        assert_start_line(i, "Kafka consumer group `wf-scale`", "state store embedded (");
    }
    let outputs = collect(&bs, "out");
    // 30,000 distinct keys: librdkafka's partitioner spreads them over the 3 partitions.
    let producer = produce_stream(&bs, "in", N, 3);

    let until = Instant::now() + Duration::from_secs(120);
    while outputs.lock().unwrap().count.len() < N / 2 {
        assert!(Instant::now() < until, "half the outputs did not arrive in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed_share = instances[1].received().expect("instance wf-1 answers before the kill");
    instances[1].wf.kill9();
    let at = outputs.lock().unwrap().count.len();
    producer.join().expect("producer");

    let until = Instant::now() + Duration::from_secs(180);
    while outputs.lock().unwrap().count.len() < N && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let col = outputs.lock().unwrap();
    let missing: Vec<usize> = (0..N).filter(|i| !col.count.contains_key(i)).collect();
    let dups: usize = col.count.values().map(|n| n - 1).sum();
    let shares: BTreeMap<&str, u64> = [
        (instances[0].name.as_str(), instances[0].received().unwrap_or(0)),
        (instances[1].name.as_str(), killed_share),
        (instances[2].name.as_str(), instances[2].received().unwrap_or(0)),
    ]
    .into_iter()
    .collect();
    eprintln!(
        "kafka: wf-1 killed after {at} outputs; {} of {N} out, {dups} duplicates; inputs per instance {shares:?}",
        N - missing.len()
    );
    assert!(col.problem.is_none(), "{}", col.problem.as_deref().unwrap_or_default());
    assert!(
        missing.is_empty(),
        "{} readings lost (first: {:?})\n{}",
        missing.len(),
        &missing[..missing.len().min(10)],
        instances[0].wf.log()
    );
    for (name, n) in &shares {
        assert!(*n > 0, "instance {name} handled nothing: {shares:?}");
    }
    assert!(
        shares.values().sum::<u64>() >= N as u64,
        "the instances' counts cover every reading: {shares:?}"
    );
    drop(instances);
}

/// Three instances of graph-simple on one MQTT shared subscription (mosquitto), each with a
/// persistent session of its own (client id from `--instance`); 30,000 readings; one instance
/// killed with SIGKILL halfway and started again (a pod rescheduled under its name). Its share
/// waited at the broker: every reading comes out at least once, and every instance handled a
/// share.
#[test]
fn three_instances_share_an_mqtt_subscription_and_survive_a_kill_9() {
    crate::support::module("temperature");
    let broker = Mosquitto::start();
    let url = broker.url();
    let args = [
        SIMPLE,
        "--mqtt",
        &url,
        "--source",
        "$share/wf/sensors/in",
        "--sink",
        "sensors/out",
    ];
    let mut instances: Vec<Instance> = (0..3).map(|i| Instance::start(&format!("wf-{i}"), &args)).collect();
    for i in &mut instances {
        i.wf.wait_for_log("MQTT source subscribed", Duration::from_secs(60));
        assert_start_line(
            i,
            "MQTT shared subscription `$share/wf/sensors/in`",
            "state store embedded (",
        );
    }
    let collector = Client::connect(broker.port, "scale-collector", &["sensors/out"]);
    let publisher = Client::connect(broker.port, "scale-publisher", &[]);
    publisher.publish_many("sensors/in", N, 3, reading);

    let until = Instant::now() + Duration::from_secs(120);
    while collector.seqs().0.len() < N / 2 {
        assert!(Instant::now() < until, "half the outputs did not arrive in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed_share = instances[1].received().expect("instance wf-1 answers before the kill");
    instances[1].wf.kill9();
    let at = collector.seqs().0.len();
    assert_eq!(
        publisher.wait_pubacks(N, Duration::from_secs(120)),
        N,
        "the broker took every reading"
    );
    // Back under the same name: its session (and its share, queued meanwhile) is resumed.
    let restarted = Instance::start("wf-1", &args);
    let (missing, dups) = await_all(&collector, N, Duration::from_secs(180));
    let shares: BTreeMap<&str, u64> = [
        (instances[0].name.as_str(), instances[0].received().unwrap_or(0)),
        ("wf-1 (before the kill)", killed_share),
        ("wf-1 (restarted)", restarted.received().unwrap_or(0)),
        (instances[2].name.as_str(), instances[2].received().unwrap_or(0)),
    ]
    .into_iter()
    .collect();
    eprintln!(
        "mqtt: wf-1 killed after {at} outputs; {} of {N} out, {dups} duplicates; inputs per instance {shares:?}",
        N - missing.len()
    );
    assert!(
        missing.is_empty(),
        "{} readings lost (first: {:?})\n{}\nmosquitto:\n{}",
        missing.len(),
        &missing[..missing.len().min(10)],
        restarted.wf.log(),
        broker.log()
    );
    for name in ["wf-0", "wf-1 (before the kill)", "wf-2"] {
        assert!(shares[name] > 0, "instance {name} handled nothing: {shares:?}");
    }
}

/// A windowed graph on a shared subscription is refused at start, saying why and what to do
/// (README, "Scaling out").
#[test]
fn a_windowed_graph_on_a_shared_subscription_is_refused() {
    let broker = Mosquitto::start();
    let data = tempfile::tempdir().unwrap();
    let url = broker.url();
    let mut wf = Wasmflow::start(
        data.path(),
        &[
            "graphs/temperature-humidity.yaml",
            "--mqtt",
            &url,
            "--source",
            "$share/wf/sensors/#",
        ],
    );
    let status = wf.wait(Duration::from_secs(60)).expect("it stops by itself");
    assert!(!status.success());
    let log = wf.log();
    assert!(
        log.contains("has windows") && log.contains("$share/wf/sensors/#") && log.contains("Kafka"),
        "{log}"
    );
}

/// Two instances of the temperature-humidity graph (windows, then the enrichment operator) in
/// one Kafka group over 2 partitions, keyed by sensor (one sensor per partition, so each
/// instance windows its own sensor), sharing one Redis state store. Every window is hot; the
/// enrichment operator counts it in `overtemp_windows` under the `enrichment_lock`, logging each
/// count with its fencing token. The lock is held by one instance at a time: the counts logged
/// by both instances together are 1, 2, 3, … each once, Redis holds the last, and the fencing
/// tokens increase strictly with the count (a lost update would repeat a count; an overlap would
/// reorder tokens). Windows not counted because the other instance held the lock say so.
#[test]
fn two_instances_share_the_overtemp_count_through_redis() {
    crate::support::module("enrichment");
    let redis = RedisServer::start();
    let c = cluster(&["out"]);
    c.create_topic("in", 2).expect("create topic");
    let bs = c.bootstrap_servers();
    let state = redis.url();
    let args = [
        "graphs/temperature-humidity.yaml",
        "--kafka",
        &bs,
        "--source",
        "in",
        "--sink",
        "out",
        "--kafka-group",
        "wf-enrich",
        "-X",
        "session.timeout.ms=6000",
        "--state",
        &state,
    ];
    let instances: Vec<Instance> = (0..2).map(|i| Instance::start(&format!("wf-{i}"), &args)).collect();
    await_one_partition_each(&instances, 2);
    for i in &instances {
        assert_start_line(
            i,
            "Kafka consumer group `wf-enrich`",
            &format!("state store redis ({state})"),
        );
    }

    // WINDOWS 10 s windows of event time per sensor, one hot reading (1209 °F) in each, the
    // two sensors' windows at the same event times so the instances close them together.
    const WINDOWS: u64 = 60;
    const T0: u64 = 1_767_225_600_000;
    let p: ThreadedProducer<rdkafka::producer::DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .create()
        .expect("producer");
    for w in 0..WINDOWS {
        for partition in 0..2 {
            let ts = format!("{:0>15}:00000:sensor-{partition}", T0 + w * 10_000 + 1_000);
            let record = BaseRecord::to("in")
                .partition(partition)
                .key("sensor")
                .payload(r#"{"temperature":{"value":1209,"unit":"F"}}"#)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "__ts",
                    value: Some(ts.as_str()),
                }));
            p.send(record).map_err(|(e, _)| e).expect("produce");
        }
    }
    p.flush(Duration::from_secs(30)).expect("flush");
    let windows = read_plain(&bs, "out", (2 * WINDOWS) as usize);
    assert_eq!(
        windows.len(),
        (2 * WINDOWS) as usize,
        "one output per window and instance:\n{}",
        instances[0].wf.log()
    );
    for (_, payload, _) in &windows {
        let v: serde_json::Value = serde_json::from_slice(payload).expect("JSON");
        assert_eq!(v["temperature"][0]["overtemp"], true, "{v}");
    }

    let mut counted: Vec<(u64, wasmflow_wire::OrderKey, &str)> = Vec::new();
    let mut refused = 0;
    let logs: Vec<String> = instances.iter().map(|i| i.wf.log()).collect();
    for (i, log) in logs.iter().enumerate() {
        for line in log.lines() {
            if let Some((_, rest)) = line.split_once("counted over-temperature window ") {
                let (n, token) = rest.split_once(" under lock token ").expect("count and token");
                let ts = wasmflow_wire::parse_ts(token.trim()).expect("a token in __ts form");
                counted.push((
                    n.parse().expect("a count"),
                    (ts.millis / 1000, (ts.millis % 1000) as u32 * 1_000_000, ts.counter),
                    instances[i].name.as_str(),
                ));
            }
            if line.contains("is held by another instance") {
                refused += 1;
            }
        }
    }
    counted.sort();
    let by: BTreeMap<&str, usize> = counted.iter().fold(BTreeMap::new(), |mut m, (_, _, who)| {
        *m.entry(*who).or_default() += 1;
        m
    });
    eprintln!(
        "redis: {} windows counted ({by:?}), {refused} not counted because the other instance held the lock",
        counted.len()
    );
    let counts: Vec<u64> = counted.iter().map(|c| c.0).collect();
    assert_eq!(
        counts,
        (1..=counted.len() as u64).collect::<Vec<_>>(),
        "each count once: {counted:?}"
    );
    for w in counted.windows(2) {
        assert!(w[0].1 < w[1].1, "fencing tokens increase with the count: {w:?}");
    }
    assert_eq!(
        counted.len() + refused,
        windows.len(),
        "every hot window counted or said why not"
    );
    assert_eq!(redis.cli(&["HGET", "overtemp_windows", "v"]), counted.len().to_string());
    assert_eq!(redis.cli(&["HGET", "overtemp", "v"]), "true");
    assert!(by.len() == 2, "both instances counted windows: {by:?}");
}
