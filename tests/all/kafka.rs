//! The Kafka transport against a real Kafka protocol peer: by default librdkafka's mock cluster
//! (`rdkafka::mocking::MockCluster`), which runs in this process and serves the Kafka wire
//! protocol (produce, fetch, consumer groups, offset commits, idempotent producers) on loopback
//! ports. It is a mock only in that it keeps its log in memory; the clients under test talk to
//! it over TCP exactly as to a broker. With `WASMFLOW_TEST_KAFKA=tansu` (`make
//! test-kafka-broker`) the same tests run against tansu, a Kafka-compatible broker in a process
//! of its own (`support::kafka_peer`), but for the one that injects faults, which only the mock
//! can. Every check reads back with plain rdkafka clients, not with the code under test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, FutureProducer, FutureRecord, Producer, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
use wasmflow_kafka::{KafkaSettings, KafkaSink, KafkaSource};
use wasmflow_transport::{Inbound, Outbound, Sink, Source, TransportError};

use crate::support::kafka_peer::KafkaPeer;
use crate::support::text;

/// The peer with `topics` (one partition each): the mock, or tansu under
/// `WASMFLOW_TEST_KAFKA=tansu`.
pub(crate) fn cluster(topics: &[&str]) -> KafkaPeer {
    crate::support::logs();
    let peer = match std::env::var("WASMFLOW_TEST_KAFKA").as_deref() {
        Ok("tansu") => KafkaPeer::tansu(),
        Ok("mock") | Err(_) => KafkaPeer::mock(),
        Ok(other) => Err(format!("WASMFLOW_TEST_KAFKA={other}: tansu or mock")),
    }
    .unwrap_or_else(|e| panic!("{e}"));
    peer.create_topics(topics).unwrap_or_else(|e| panic!("{e}"));
    peer
}

fn settings(bootstrap: &str) -> KafkaSettings {
    let mut s = KafkaSettings::new(bootstrap);
    s.connect_timeout = Duration::from_secs(5);
    // The mock's group coordinator, like a broker after a crashed member, waits the session
    // timeout (less 1 s) before a rejoin completes even when the old member left cleanly; keep
    // it at the smallest a broker accepts.
    s.property("session.timeout.ms=6000").unwrap();
    if let Ok(d) = std::env::var("KAFKA_DEBUG") {
        s.property(&format!("debug={d}")).unwrap();
    }
    s
}

/// A plain producer (not the code under test) writes `n` records `m0`…`m{n-1}` with key `k{i}`.
async fn produce_plain(bootstrap: &str, topic: &str, n: usize) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    for i in 0..n {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "__ts",
                value: Some(format!("{:0>15}:00000:src", 1_700_000_000_000u64 + i as u64).as_str()),
            })
            .insert(Header {
                key: "content-type",
                value: Some("application/json"),
            })
            .insert(Header {
                key: "site",
                value: Some("north"),
            });
        let payload = format!("m{i}");
        let key = format!("k{i}");
        p.send(
            FutureRecord::to(topic).payload(&payload).key(&key).headers(headers),
            Timeout::After(Duration::from_secs(5)),
        )
        .await
        .expect("plain produce");
    }
}

/// Records on partition 0 of `topic`, read from the beginning by a plain consumer outside any
/// group, until `n` arrived or 15 s passed: (key, payload, headers).
pub(crate) type Record = (Option<Vec<u8>>, Vec<u8>, Vec<(String, Vec<u8>)>);
pub(crate) fn read_plain(bootstrap: &str, topic: &str, n: usize) -> Vec<Record> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "wasmflow-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while out.len() < n && Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("read");
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default();
            out.push((
                m.key().map(<[u8]>::to_vec),
                m.payload().unwrap_or_default().to_vec(),
                headers,
            ));
        }
    }
    // Read to where it was asked; a consumer stopped part-way can hang in destroy (librdkafka).
    std::thread::spawn(move || drop(c));
    out
}

/// The offset the group committed for partition 0 of `topic` (asked of the group coordinator).
fn committed(bootstrap: &str, group: &str, topic: &str) -> Offset {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("offset reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    let offset = got.find_partition(topic, 0).expect("partition").offset();
    std::thread::spawn(move || drop(c));
    offset
}

/// A running source: its inbound channel, its shutdown switch and its task.
struct Running {
    rx: mpsc::Receiver<Inbound>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), TransportError>>,
}

fn start_source(source: KafkaSource) -> Running {
    let (tx, rx) = mpsc::channel(64);
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(Box::new(source).run(tx, shutdown));
    Running { rx, stop, task }
}

impl Running {
    async fn next(&mut self) -> Inbound {
        tokio::time::timeout(Duration::from_secs(20), self.rx.recv())
            .await
            .expect("a message within 20 s (a group join takes ~3 s)")
            .expect("source still running")
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        let r = tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the source stops within 20 s");
        r.expect("source task").expect("source ran cleanly");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_carries_key_headers_and_content_type() {
    let c = cluster(&["in"]);
    let bs = c.bootstrap_servers();
    produce_plain(&bs, "in", 2).await;

    let mut run = start_source(KafkaSource::new(settings(&bs), "g-rt", vec!["in".into()]));
    for i in 0..2 {
        let m = run.next().await;
        assert_eq!(m.input.topic, "in");
        assert_eq!(text(&m.input.payload), format!("m{i}"));
        assert_eq!(m.key.as_deref().map(text), Some(format!("k{i}")));
        assert_eq!(m.input.content_type.as_deref(), Some("application/json"));
        assert_eq!(
            m.input.user_properties,
            vec![
                (
                    "__ts".to_owned(),
                    format!("{:0>15}:00000:src", 1_700_000_000_000u64 + i)
                ),
                ("site".to_owned(), "north".to_owned()),
            ]
        );
        m.ack.ack();
    }
    run.stop().await;
    assert_eq!(
        committed(&bs, "g-rt", "in"),
        Offset::Offset(2),
        "both acknowledged → committed up to 2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_writes_key_headers_and_content_type() {
    let c = cluster(&["out"]);
    let bs = c.bootstrap_servers();
    let sink = KafkaSink::connect(&settings(&bs)).await.expect("sink");
    sink.send(Outbound {
        topic: "out".into(),
        payload: Arc::from(&b"{\"t\":1}"[..]),
        content_type: Some("application/json".into()),
        user_properties: vec![
            ("__ts".into(), "000001700000000000:00001:n".into()),
            ("a".into(), "b".into()),
        ],
        key: Some(Arc::from(&b"sensor-7"[..])),
    })
    .await
    .expect("delivered");
    sink.send(Outbound {
        topic: "out".into(),
        payload: Arc::from(&b"plain"[..]),
        content_type: None,
        user_properties: vec![],
        key: None,
    })
    .await
    .expect("delivered");

    let got = read_plain(&bs, "out", 2);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0.as_deref(), Some(&b"sensor-7"[..]));
    assert_eq!(got[0].1, b"{\"t\":1}");
    assert_eq!(
        got[0].2,
        vec![
            ("__ts".to_owned(), b"000001700000000000:00001:n".to_vec()),
            ("a".to_owned(), b"b".to_vec()),
            ("content-type".to_owned(), b"application/json".to_vec()),
        ]
    );
    assert_eq!(
        (got[1].0.clone(), got[1].1.clone(), got[1].2.clone()),
        (None, b"plain".to_vec(), vec![])
    );
}

/// Consume 10, acknowledge 0–5 and 7 (not 6, 8, 9), stop, restart in the same group: the group
/// resumes at 6, so 6–9 come again (7 a duplicate) and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_at_the_first_unacknowledged_message() {
    let c = cluster(&["in"]);
    let bs = c.bootstrap_servers();
    produce_plain(&bs, "in", 10).await;

    let source = || {
        KafkaSource::new(settings(&bs), "g-resume", vec!["in".into()])
            .commit_interval(Duration::from_millis(100))
            .drain_timeout(Duration::from_millis(500))
    };
    let mut run = start_source(source());
    let mut held = Vec::new();
    for i in 0..10 {
        let m = run.next().await;
        assert_eq!(text(&m.input.payload), format!("m{i}"));
        held.push(m);
    }
    let mut unacked = Vec::new();
    // Acknowledge out of order, as outputs of different messages complete.
    for (i, m) in held.into_iter().enumerate().rev() {
        if i <= 5 || i == 7 {
            m.ack.ack();
        } else {
            unacked.push(m);
        }
    }
    // The periodic commit reaches 6 while the source runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while committed(&bs, "g-resume", "in") != Offset::Offset(6) {
        assert!(Instant::now() < deadline, "offset 6 was not committed within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(unacked); // lost with the process: never acknowledged
    run.stop().await;
    assert_eq!(
        committed(&bs, "g-resume", "in"),
        Offset::Offset(6),
        "the commit never passes offset 6"
    );

    let mut run = start_source(source());
    let again: Vec<String> = {
        let mut v = Vec::new();
        for _ in 6..10 {
            let m = run.next().await;
            v.push(text(&m.input.payload));
            m.ack.ack();
        }
        v
    };
    assert_eq!(again, ["m6", "m7", "m8", "m9"]);
    run.stop().await;
    assert_eq!(committed(&bs, "g-resume", "in"), Offset::Offset(10));
}

/// Produce requests fail (retriably) and time out while the broker has already appended: an
/// idempotent producer retries without writing a record twice or out of order.
///
/// One produce request at a time: the mock checks no sequence numbers of a producer without a
/// transactional id, so with requests in flight together it appends a later batch after an
/// earlier one failed, where a broker refuses it as out of order. librdkafka then takes the
/// later batch's acknowledgement as proof that the earlier one, "possibly persisted", was
/// written, and reports it delivered: under load this test saw 498 of 500 records, messages 0
/// and 1 missing, all 500 reported delivered (librdkafka's `eos,msg` log: `[0..2)` refused
/// with `NOT_ENOUGH_REPLICAS_AFTER_APPEND` while `[2..500)` was delivered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_delivers_each_message_once_and_in_order_through_retries() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

    let c = cluster(&["out"]);
    let Some(mock) = c.as_mock() else {
        eprintln!(
            "not run against {}: injecting produce errors needs the mock",
            c.describe()
        );
        return;
    };
    let bs = c.bootstrap_servers();
    let mut one_request_at_a_time = settings(&bs);
    one_request_at_a_time
        .property("max.in.flight.requests.per.connection=1")
        .expect("property");
    let sink = KafkaSink::connect(&one_request_at_a_time).await.expect("sink");
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ],
    );
    const N: usize = 500;
    let sends: Vec<_> = (0..N)
        .map(|i| {
            sink.send(Outbound {
                topic: "out".into(),
                payload: Arc::from(format!("{i}").into_bytes()),
                content_type: None,
                user_properties: vec![],
                key: None,
            })
        })
        .collect();
    for (i, s) in sends.into_iter().enumerate() {
        s.await.unwrap_or_else(|e| panic!("message {i}: {e}"));
    }
    let got: Vec<String> = read_plain(&bs, "out", N + 10).into_iter().map(|r| text(&r.1)).collect();
    let want: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    assert_eq!(got.len(), N, "duplicates or losses");
    assert_eq!(got, want);
}

/// librdkafka's local queue holds 4 messages here: publications past it wait in the sink's
/// backlog and must still leave in call order, each completed once, also when room comes back
/// while some still wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_local_queue_holds_publications_back_in_call_order() {
    let c = cluster(&["out"]);
    let bs = c.bootstrap_servers();
    let mut s = settings(&bs);
    s.property("queue.buffering.max.messages=4").expect("property");
    let sink = KafkaSink::connect(&s).await.expect("sink");
    const N: usize = 300;
    let mut sends = Vec::with_capacity(N);
    for i in 0..N {
        sends.push(sink.send(Outbound {
            topic: "out".into(),
            payload: Arc::from(format!("{i}").into_bytes()),
            content_type: None,
            user_properties: vec![],
            key: None,
        }));
        if i % 10 == 9 {
            // Bursts: room comes back between them while earlier ones still wait their turn.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    for (i, s) in sends.into_iter().enumerate() {
        tokio::time::timeout(Duration::from_secs(30), s)
            .await
            .unwrap_or_else(|_| panic!("message {i} never completed"))
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
    }
    let got: Vec<String> = read_plain(&bs, "out", N + 10).into_iter().map(|r| text(&r.1)).collect();
    let want: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    assert_eq!(got, want, "every publication once, in call order");
}

/// The pump hands the sink a batch's outputs with `send_with`, then calls `end_batch`: nothing
/// leaves before it (so librdkafka gets the batch at once, not one wake-up per message), and
/// everything leaves after it, in call order, each completed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_leaves_at_its_end_in_call_order() {
    let c = cluster(&["out"]);
    let bs = c.bootstrap_servers();
    let sink = KafkaSink::connect(&settings(&bs)).await.expect("sink");
    const N: usize = 50;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    for i in 0..N {
        let done_tx = done_tx.clone();
        sink.send_with(
            Outbound {
                topic: "out".into(),
                payload: Arc::from(format!("{i}").into_bytes()),
                content_type: None,
                user_properties: vec![],
                key: None,
            },
            Box::new(move |r| {
                let _ = done_tx.send((i, r.is_ok()));
            }),
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        done_rx.try_recv().is_err(),
        "a publication left before the end of its batch"
    );
    sink.end_batch();
    let mut completed = Vec::new();
    while completed.len() < N {
        let (i, ok) = tokio::time::timeout(Duration::from_secs(15), done_rx.recv())
            .await
            .expect("every publication completes")
            .expect("completions pending");
        assert!(ok, "publication {i} failed");
        completed.push(i);
    }
    assert_eq!(
        completed,
        (0..N).collect::<Vec<_>>(),
        "completed once each, in call order"
    );
    let got: Vec<String> = read_plain(&bs, "out", N + 10).into_iter().map(|r| text(&r.1)).collect();
    assert_eq!(got, (0..N).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bootstrap_server_fails_after_the_bounded_wait() {
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let brokers = format!("127.0.0.1:{port}");
    let mut s = KafkaSettings::new(&brokers);
    s.connect_timeout = Duration::from_secs(1);

    let started = Instant::now();
    let err = KafkaSink::connect(&s).await.err().expect("the sink must not connect");
    assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&brokers), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );

    let (tx, _rx) = mpsc::channel(1);
    let (_stop, shutdown) = watch::channel(false);
    let source = Box::new(KafkaSource::new(s, "g", vec!["in".into()]));
    let err = tokio::time::timeout(Duration::from_secs(20), source.run(tx, shutdown))
        .await
        .expect("the source gives up within 20 s")
        .expect_err("the source must not start");
    assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&brokers), "{err}");
}

/// Issue 18: a peer that accepts the connection and never answers (a hung broker, or a port
/// behind a stalled proxy) is not waited on forever: the start-up probe gives up within the
/// connect timeout and names the servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_server_that_accepts_and_never_answers_fails_after_the_bounded_wait() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let brokers = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let held = std::thread::spawn(move || listener.incoming().take(8).flatten().collect::<Vec<_>>());
    let mut s = KafkaSettings::new(&brokers);
    s.connect_timeout = Duration::from_secs(2);
    s.read_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let err = KafkaSink::connect(&s).await.err().expect("the sink must not connect");
    assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&brokers), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    drop(held);
}

// ---------------------------------------------------------------------------------------------
// End to end: the `wasmflow` binary between two topics of the mock cluster (which lives in this
// test process; the runtime is a child process that reaches it over loopback).

pub(crate) const SIMPLE: &str = "compose/tests/azure-compat/graph-simple.yaml";

fn fahrenheit(i: usize) -> f64 {
    32.0 + (i % 1000) as f64
}

/// Produces `n` readings to `topic` at about `per_ms` a millisecond, each with a `seq` header
/// and key `k{seq}`, from a thread of its own (so the runtime reads while they arrive).
pub(crate) fn produce_stream(
    bootstrap: &str,
    topic: &'static str,
    n: usize,
    per_ms: usize,
) -> std::thread::JoinHandle<()> {
    let p: ThreadedProducer<rdkafka::producer::DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("load producer");
    std::thread::spawn(move || {
        let started = Instant::now();
        for i in 0..n {
            let payload = format!("{{\"temperature\":{{\"value\":{},\"unit\":\"F\"}}}}", fahrenheit(i));
            let key = format!("k{i}");
            let seq = i.to_string();
            let mut record = BaseRecord::to(topic)
                .payload(&payload)
                .key(&key)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "seq",
                    value: Some(seq.as_str()),
                }));
            loop {
                match p.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        // Local queue full: let it drain.
                        record = r;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            if i % per_ms == per_ms - 1 {
                let due = Duration::from_millis((i / per_ms) as u64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        p.flush(Duration::from_secs(30))
            .expect("all readings delivered to the cluster");
    })
}

/// What arrived on the output topic: how many times each `seq`, and the first wrong record.
#[derive(Default)]
pub(crate) struct Collected {
    pub(crate) count: HashMap<usize, usize>,
    pub(crate) problem: Option<String>,
}

/// Reads partition 0 of `topic` from the beginning on a thread of its own, checking each
/// output against its input independently: key `k{seq}` kept, °F converted to °C.
pub(crate) fn collect(bootstrap: &str, topic: &str) -> Arc<Mutex<Collected>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "wasmflow-test-collector")
        .set("enable.auto.commit", "false")
        .create()
        .expect("collector");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    c.assign(&tpl).expect("assign");
    let out = Arc::new(Mutex::new(Collected::default()));
    let o = out.clone();
    std::thread::spawn(move || loop {
        let Some(m) = c.poll(Duration::from_millis(100)) else {
            if Arc::strong_count(&o) == 1 {
                // The test is over; the consumer is left to process exit (see read_plain).
                std::mem::forget(c);
                return;
            }
            continue;
        };
        let m = match m {
            Ok(m) => m,
            // The cluster went away with the test, or a transient error (it reconnects).
            Err(_) if Arc::strong_count(&o) == 1 => return std::mem::forget(c),
            Err(_) => continue,
        };
        let seq = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "seq").and_then(|h| h.value))
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<usize>().ok());
        let mut col = o.lock().unwrap();
        let Some(seq) = seq else {
            col.problem
                .get_or_insert(format!("an output without a seq header: {m:?}"));
            continue;
        };
        *col.count.entry(seq).or_default() += 1;
        let key_ok = m.key() == Some(format!("k{seq}").as_bytes());
        let celsius = serde_json::from_slice::<serde_json::Value>(m.payload().unwrap_or_default())
            .ok()
            .and_then(|v| (v["temperature"]["unit"] == "C").then(|| v["temperature"]["value"].as_f64())?);
        let want = (fahrenheit(seq) - 32.0) * 5.0 / 9.0;
        if !key_ok || celsius.is_none_or(|c| (c - want).abs() > 1e-6) {
            col.problem.get_or_insert(format!(
                "seq {seq}: key {:?}, payload {:?}, want {want} °C",
                m.key().map(text),
                m.payload().map(text)
            ));
        }
    });
    out
}

/// (c) of the delivery guarantee, for Kafka: 10,000 readings flow from topic `in` through
/// graph-simple to topic `out`; the runtime is killed with SIGKILL at a random moment while
/// they flow and restarted in the same consumer group. Every input's output arrives at least
/// once; duplicates are counted and reported.
#[test]
fn kill_9_mid_stream_then_restart_in_the_same_group_loses_nothing() {
    crate::support::module("temperature");
    let c = cluster(&["out"]);
    c.create_topic("in", 2).expect("create topic");
    let bs = c.bootstrap_servers();
    let data = tempfile::tempdir().unwrap();
    let args = [
        SIMPLE,
        "--kafka",
        &bs,
        "--source",
        "in",
        "--sink",
        "out",
        "--kafka-group",
        "wf-kill",
        "-X",
        "session.timeout.ms=6000",
    ];
    const N: usize = 10_000;
    let outputs = collect(&bs, "out");
    let mut wf = crate::support::process::Wasmflow::start(data.path(), &args);
    wf.wait_for_log("kafka source subscribed", Duration::from_secs(60));
    // ~10 s of input: longer than joining the consumer group can take on a loaded machine, so
    // the kill below lands while readings still flow (at 5 a millisecond, a slow join left the
    // whole stream already produced and consumed before the kill).
    let producer = produce_stream(&bs, "in", N, 1);

    // A random moment while readings flow, after the first outputs arrived.
    let until = Instant::now() + Duration::from_secs(60);
    while outputs.lock().unwrap().count.is_empty() {
        assert!(Instant::now() < until, "no output within 60 s:\n{}", wf.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let at = Duration::from_millis(nanos % 1000);
    std::thread::sleep(at);
    let before = outputs.lock().unwrap().count.len();
    wf.kill9();
    let first_log = wf.log();
    assert!(
        before < N,
        "the runtime finished before the kill: make the stream longer"
    );
    producer.join().expect("producer");

    let mut wf = crate::support::process::Wasmflow::start(data.path(), &args);
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = outputs.lock().unwrap().count.len();
        if seen >= N || Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let col = outputs.lock().unwrap();
    let missing: Vec<usize> = (0..N).filter(|i| !col.count.contains_key(i)).collect();
    let dups: usize = col.count.values().map(|n| n - 1).sum();
    eprintln!(
        "kafka kill -9 {at:?} after the first output ({before} outputs had arrived): {} of {N} inputs arrived, {dups} duplicates",
        N - missing.len()
    );
    assert!(col.problem.is_none(), "{}", col.problem.as_deref().unwrap_or_default());
    assert!(
        missing.is_empty(),
        "{} inputs lost (first: {:?})\nfirst run:\n{first_log}\nsecond run:\n{}",
        missing.len(),
        &missing[..missing.len().min(10)],
        wf.log()
    );
    assert!(
        wf.wait(Duration::from_millis(10)).is_none(),
        "still running:\n{}",
        wf.log()
    );
}

/// Issue 4, bad input, for Kafka: an item the operator rejects goes to `--dead-letter-topic` with
/// its key and the `error` and `operation` headers; the next item goes on to the sink.
#[test]
fn a_rejected_item_goes_to_the_dead_letter_topic() {
    let h = crate::support::Harness::new();
    let graph = crate::support::faulty_map_graph(&h);
    let c = cluster(&["in", "out", "dead"]);
    let bs = c.bootstrap_servers();
    let data = tempfile::tempdir().unwrap();
    let graph = graph.to_str().expect("UTF-8 path");
    let mut wf = crate::support::process::Wasmflow::start(
        data.path(),
        &[
            graph,
            "--kafka",
            &bs,
            "--source",
            "in",
            "--sink",
            "out",
            "--dead-letter-topic",
            "dead",
            "-X",
            "session.timeout.ms=6000",
        ],
    );
    wf.wait_for_log("kafka source subscribed", Duration::from_secs(60));
    let p: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .create()
        .expect("producer");
    for (key, payload) in [("bad", r#"{"fault":"err"}"#), ("good", r#"{"reading":2}"#)] {
        p.send(BaseRecord::<str, str>::to("in").key(key).payload(payload))
            .map_err(|(e, _)| e)
            .expect("produce");
    }
    p.flush(Duration::from_secs(5)).expect("flush");
    let dead = read_plain(&bs, "dead", 1);
    assert_eq!(dead.len(), 1, "one dead letter:\n{}", wf.log());
    let (key, payload, headers) = &dead[0];
    assert_eq!(key.as_deref(), Some(&b"bad"[..]));
    assert_eq!(payload, br#"{"fault":"err"}"#, "the item as it came");
    let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| text(v));
    assert_eq!(header("operation").as_deref(), Some("faulty/map"));
    assert!(header("error").is_some_and(|e| !e.is_empty()), "{headers:?}");
    let out = read_plain(&bs, "out", 1);
    assert_eq!(out.len(), 1, "the good item:\n{}", wf.log());
    assert_eq!(out[0].0.as_deref(), Some(&b"good"[..]));
    assert_eq!(out[0].1, br#"{"reading":2}"#);
}

/// Issue 4, binding: one graph reads MQTT and writes Kafka (`mqtt:`/`kafka:` prefixes). The
/// reading goes in through mosquitto with `__ts`; it comes out of Kafka converted, with `__ts`
/// as a header.
#[test]
fn a_graph_reads_mqtt_and_writes_kafka() {
    crate::support::module("temperature");
    let broker = crate::support::mosquitto::Mosquitto::start();
    let c = cluster(&["processed"]);
    let bs = c.bootstrap_servers();
    let data = tempfile::tempdir().unwrap();
    let url = broker.url();
    let mut wf = crate::support::process::Wasmflow::start(
        data.path(),
        &[
            SIMPLE,
            "--mqtt",
            &url,
            "--kafka",
            &bs,
            "--source",
            "mqtt:sensor/+/raw",
            "--sink",
            "kafka:processed",
        ],
    );
    wf.wait_for_log("MQTT source subscribed", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    let m = crate::support::mosquitto::Client::connect(broker.port, "test-mixed", &[]);
    m.publish(
        "sensor/a/raw",
        r#"{"temperature":{"value":212,"unit":"F"}}"#,
        vec![("__ts", "001700000000000:00000:sensor-a")],
        None,
    );
    let out = read_plain(&bs, "processed", 1);
    assert_eq!(out.len(), 1, "one record in Kafka:\n{}", wf.log());
    let v: serde_json::Value = serde_json::from_slice(&out[0].1).expect("JSON");
    assert_eq!(v["temperature"]["value"].as_f64(), Some(100.0), "{v}");
    let ts = out[0].2.iter().find(|(k, _)| k == "__ts").map(|(_, v)| text(v));
    assert_eq!(ts.as_deref(), Some("001700000000000:00000:sensor-a"));
}
