//! End to end through a real mosquitto (started by the tests on a free loopback port): the
//! `wasmflow` binary bound with `--mqtt/--source/--sink`, real modules from `target/modules`.

mod common;
#[path = "common/mosquitto.rs"]
mod mosquitto;

use std::time::Duration;

use common::module;
use common::process::Wasmflow;
use mosquitto::{user_prop, Client, Mosquitto};

/// Waits until the run says the graph is bound (subscribed), then one round trip more for the
/// subscription to follow the connection.
fn wait_bound(wf: &mut Wasmflow) {
    wf.wait_for_log("bound to", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
}

const SIMPLE: &str = "compose/tests/azure-compat/graph-simple.yaml";

fn fahrenheit(v: f64) -> String {
    format!("{{\"temperature\":{{\"value\":{v},\"unit\":\"F\"}}}}")
}

fn celsius_of(p: &rumqttc::v5::mqttbytes::v5::Publish) -> f64 {
    let v: serde_json::Value = serde_json::from_slice(&p.payload).expect("JSON payload");
    assert_eq!(v["temperature"]["unit"], "C", "{v}");
    v["temperature"]["value"].as_f64().expect("a number")
}

#[test]
fn a_graph_converts_what_it_reads_from_wildcard_topics_and_carries_properties() {
    module("temperature");
    let broker = Mosquitto::start();
    let data = tempfile::tempdir().unwrap();
    let url = broker.url();
    let mut wf = Wasmflow::start(
        data.path(),
        &[
            SIMPLE,
            "--mqtt",
            &url,
            "--source",
            "sensor/+/raw",
            "--sink",
            "sensor/processed",
        ],
    );
    wait_bound(&mut wf);
    let c = Client::connect(broker.port, "test-collector", &["sensor/processed"]);
    c.publish(
        "sensor/a/raw",
        &fahrenheit(212.0),
        vec![("seq", "1"), ("__ts", "000001700000000:00000:sensor-a")],
        Some("application/json"),
    );
    c.publish(
        "sensor/b/raw",
        &fahrenheit(32.0),
        vec![("seq", "2"), ("__ts", "not a timestamp")],
        None,
    );
    c.publish("other/topic", &fahrenheit(50.0), vec![("seq", "3")], None);
    let got = c.wait_for(2, Duration::from_secs(20));
    assert_eq!(got.len(), 2, "two messages match sensor/+/raw: {got:?}\n{}", wf.log());
    std::thread::sleep(Duration::from_millis(300));
    let got = c.received.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "other/topic must not be read: {got:?}");
    let by_seq = |s: &str| {
        got.iter()
            .find(|p| user_prop(p, "seq") == Some(s))
            .expect("seq carried")
    };
    let a = by_seq("1");
    assert_eq!(celsius_of(a), 100.0);
    assert_eq!(&a.topic[..], b"sensor/processed");
    assert_eq!(
        user_prop(a, "__ts"),
        Some("000001700000000:00000:sensor-a"),
        "event time kept"
    );
    assert_eq!(
        a.properties.as_ref().and_then(|p| p.content_type.as_deref()),
        Some("application/json")
    );
    let b = by_seq("2");
    assert_eq!(celsius_of(b), 0.0);
    let ts = user_prop(b, "__ts").expect("__ts written");
    assert_ne!(ts, "not a timestamp", "a malformed __ts is replaced by arrival time");
    let ms: u64 = ts.split(':').next().unwrap().parse().expect("ms");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(now.abs_diff(ms) < 60_000, "arrival time, got {ts}");
    assert!(
        wf.log().contains("using arrival time"),
        "the malformed __ts is logged:\n{}",
        wf.log()
    );
}

#[test]
fn an_unreachable_broker_at_start_is_a_clear_error() {
    module("temperature");
    let data = tempfile::tempdir().unwrap();
    let port = mosquitto::free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let mut wf = Wasmflow::start(data.path(), &[SIMPLE, "--mqtt", &url, "--connect-timeout-secs", "2"]);
    let status = wf
        .wait(Duration::from_secs(60))
        .expect("gives up within the connect timeout");
    assert_eq!(status.code(), Some(1));
    let log = wf.log();
    assert!(
        log.contains(&format!("cannot connect to {url}")) && log.contains("gave up after"),
        "{log}"
    );
}

fn reading(i: usize) -> String {
    fahrenheit(32.0 + (i % 1000) as f64)
}

/// Waits until every seq in `0..n` arrived at `c` (or `timeout`); returns (missing, duplicates).
fn await_all(c: &Client, n: usize, timeout: Duration) -> (Vec<usize>, usize) {
    let until = std::time::Instant::now() + timeout;
    loop {
        let (seen, dups) = c.seqs();
        if seen.len() >= n || std::time::Instant::now() >= until {
            let missing: Vec<usize> = (0..n).filter(|i| !seen.contains(i)).collect();
            return (missing, dups);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (a) of the delivery guarantee: `kill -9` of the runtime at a random moment while 10,000
/// QoS 1 messages flow, then a restart on the same data directory and client id: every
/// input's output arrives at least once. Duplicates are counted and reported.
#[test]
fn kill_9_mid_stream_then_restart_loses_nothing() {
    module("temperature");
    let broker = Mosquitto::start();
    let data = tempfile::tempdir().unwrap();
    let url = broker.url();
    let args = [
        SIMPLE,
        "--mqtt",
        &url,
        "--source",
        "in/+",
        "--sink",
        "out",
        "--client-id",
        "wf-kill",
    ];
    let mut wf = Wasmflow::start(data.path(), &args);
    wait_bound(&mut wf);
    let collector = Client::connect(broker.port, "kill-collector", &["out"]);
    let publisher = Client::connect(broker.port, "kill-publisher", &[]);
    const N: usize = 10_000;
    publisher.publish_many("in/a", N, 5, reading);
    // A random moment while messages flow (2,000 ms of publishing at 5/ms).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let at = Duration::from_millis(100 + nanos % 1500);
    std::thread::sleep(at);
    let before = collector.seqs().0.len();
    wf.kill9();
    eprintln!("killed after {at:?}: {before} outputs had arrived");
    assert_eq!(
        publisher.wait_pubacks(N, Duration::from_secs(60)),
        N,
        "the broker took every input"
    );
    let mut wf = Wasmflow::start(data.path(), &args);
    let (missing, dups) = await_all(&collector, N, Duration::from_secs(90));
    eprintln!(
        "kill -9 at {at:?}: {} of {N} inputs arrived, {dups} duplicates",
        N - missing.len()
    );
    assert!(
        missing.is_empty(),
        "{} inputs lost (first: {:?})\nwasmflow log:\n{}\nmosquitto log:\n{}",
        missing.len(),
        &missing[..missing.len().min(10)],
        wf.log(),
        broker.log()
    );
    assert!(wf.wait(Duration::from_millis(10)).is_none(), "still running");
}

/// (b): the broker stops for 5 s mid-stream and comes back (with its persisted sessions): the
/// runtime reconnects with backoff and nothing is lost.
#[test]
fn a_broker_restart_mid_stream_loses_nothing() {
    module("temperature");
    let mut broker = Mosquitto::start();
    let data = tempfile::tempdir().unwrap();
    let url = broker.url();
    let mut wf = Wasmflow::start(
        data.path(),
        &[
            SIMPLE,
            "--mqtt",
            &url,
            "--source",
            "in/+",
            "--sink",
            "out",
            "--client-id",
            "wf-restart",
        ],
    );
    wait_bound(&mut wf);
    let collector = Client::connect(broker.port, "restart-collector", &["out"]);
    let publisher = Client::connect(broker.port, "restart-publisher", &[]);
    const N: usize = 4_000;
    publisher.publish_many("in/a", N, 1, reading);
    std::thread::sleep(Duration::from_millis(1500));
    broker.stop();
    std::thread::sleep(Duration::from_secs(5));
    broker.resume();
    let (missing, dups) = await_all(&collector, N, Duration::from_secs(60));
    eprintln!(
        "broker restart: {} of {N} arrived, {dups} duplicates",
        N - missing.len()
    );
    let log = wf.log();
    assert!(
        missing.is_empty(),
        "{} lost (first: {:?})\nwasmflow log:\n{log}\nmosquitto log:\n{}",
        missing.len(),
        &missing[..missing.len().min(10)],
        broker.log()
    );
    assert!(log.contains("MQTT source reconnected"), "{log}");
    assert!(log.contains("retrying in"), "backoff is logged: {log}");
}
