//! The pump's contract with sinks (`wasmflow_delivery::pump`), on graph-simple with the real
//! sample module. The sink here records the calls the pump makes, in order: it stands in for the
//! Kafka sink, which holds what `send_with` hands it until `end_batch` (`kafka::` checks that side
//! against a broker). Last, what a run of graphs (`wasmflow_delivery::deployment`) does when a
//! graph's thread panics, with input from a real broker (mosquitto).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use wasmflow_delivery::deployment::{self, EndpointConfig, EndpointTopic, GraphRun, SourceBinding};
use wasmflow_delivery::journal::WindowJournal;
use wasmflow_delivery::pump::{self, PumpOptions, Route, Routes};
use wasmflow_runtime::graph::RunOptions;
use wasmflow_transport::{Ack, BoxFuture, Completion, Inbound, Outbound, Sink, TransportError};

use crate::support::mosquitto::{Client as MqttClient, Mosquitto};
use crate::support::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    SendWith,
    EndBatch,
}

/// Records the pump's calls and completes what it was handed at `end_batch`, as the Kafka sink
/// does once librdkafka reports delivery. The first output lets more input arrive (`arrivals`)
/// while the pump is still in its batch.
struct Recorder {
    calls: Mutex<Vec<Call>>,
    held: Mutex<Vec<Completion>>,
    arrivals: Mutex<Option<(mpsc::Sender<Inbound>, Vec<Inbound>)>>,
}

impl Sink for Recorder {
    fn send(&self, _: Outbound) -> BoxFuture<Result<(), TransportError>> {
        unreachable!("the pump sends with send_with")
    }

    fn send_with(&self, _: Outbound, done: Completion) {
        self.calls.lock().unwrap().push(Call::SendWith);
        self.held.lock().unwrap().push(done);
        if let Some((tx, more)) = self.arrivals.lock().unwrap().take() {
            for m in more {
                tx.try_send(m).expect("room in the inbound channel");
            }
        }
    }

    fn end_batch(&self) {
        self.calls.lock().unwrap().push(Call::EndBatch);
        for done in self.held.lock().unwrap().drain(..) {
            done(Ok(()));
        }
    }
}

/// A reading whose acknowledgement counts into `acked`.
fn inbound(ms: u64, acked: &Arc<AtomicUsize>) -> Inbound {
    let acked = acked.clone();
    Inbound {
        input: input(r#"{"temperature":{"value":100,"unit":"F"}}"#, ms),
        key: None,
        ack: Ack::new(move || {
            acked.fetch_add(1, Ordering::SeqCst);
        }),
    }
}

/// Waits (at most 30 s) until `sink` recorded `n` calls; the pump's idle advance is an hour
/// away, so only its batch logic can end a batch meanwhile.
fn calls(sink: &Recorder, n: usize) -> Vec<Call> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let calls = sink.calls.lock().unwrap().clone();
        if calls.len() >= n || Instant::now() > until {
            return calls;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Input that arrives while the pump is in a batch joins that batch: the sink gets one
/// `end_batch` for all of it (one produce request, not one per message), and a lone message
/// still ends its batch at once. Every input is acknowledged.
#[test]
fn input_that_waits_joins_the_batch_and_a_lone_message_leaves_at_once() {
    let h = Harness::new();
    let mut graph = h.start(
        &repo().join("compose/tests/azure-compat/graph-simple.yaml"),
        RunOptions::default(),
    );
    let acked = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel(16);
    let sink = Arc::new(Recorder {
        calls: Mutex::default(),
        held: Mutex::default(),
        arrivals: Mutex::new(Some((tx.clone(), vec![inbound(2, &acked), inbound(3, &acked)]))),
    });
    let routes = Routes {
        default: Some(Route {
            sink: sink.clone(),
            topic: "out".into(),
        }),
        ..Routes::default()
    };
    let (stop, shutdown) = watch::channel(false);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let journal = WindowJournal::in_memory("graph-simple");
    let options = PumpOptions {
        idle: Duration::from_secs(3600),
        ..PumpOptions::default()
    };
    let (first, second, stats) = std::thread::scope(|s| {
        let pumping = s.spawn(|| pump::run(&mut graph, &journal, rx, &routes, rt.handle(), shutdown, &options));
        tx.blocking_send(inbound(1, &acked)).expect("pump listening");
        let first = calls(&sink, 4);
        tx.blocking_send(inbound(4, &acked)).expect("pump listening");
        let second = calls(&sink, first.len() + 2);
        // Stopped before anything is asserted, so a failure cannot leave the pump running.
        stop.send(true).expect("pump listening");
        let stats = pumping.join().expect("pump thread").expect("pump run");
        (first, second, stats)
    });
    use Call::*;
    assert_eq!(
        first,
        [SendWith, SendWith, SendWith, EndBatch],
        "the two inputs that came during the first one's batch joined it"
    );
    assert_eq!(
        second[4..],
        [SendWith, EndBatch],
        "a lone message ends its batch at once"
    );
    assert_eq!((stats.received, stats.sent), (4, 4));
    assert_eq!(acked.load(Ordering::SeqCst), 4, "every input acknowledged");
}

/// Stands in for a bug on a graph's thread: wasmflow's own code, not an operator (an operator's
/// trap is recovered from, `faults::`). Panics when the first output is handed to it, or, as
/// `Collect`, keeps the payloads and completes each at once.
enum TestSink {
    Panics,
    Collect(Mutex<Vec<String>>),
}

impl TestSink {
    fn collected(&self) -> Vec<String> {
        match self {
            TestSink::Collect(got) => got.lock().unwrap().clone(),
            TestSink::Panics => Vec::new(),
        }
    }
}

impl Sink for TestSink {
    fn send(&self, _: Outbound) -> BoxFuture<Result<(), TransportError>> {
        unreachable!("the pump sends with send_with")
    }

    fn send_with(&self, msg: Outbound, done: Completion) {
        match self {
            TestSink::Panics => panic!("a bug on the graph's thread"),
            TestSink::Collect(got) => {
                got.lock().unwrap().push(text(&msg.payload));
                done(Ok(()));
            }
        }
    }
}

/// A panic on a graph's thread (a bug in wasmflow) ends the run with an error that names the
/// graph, and loses nothing: the input it was working on stays unacknowledged, so the broker
/// delivers it again when the graph's session comes back.
#[test]
fn a_panic_on_a_graphs_thread_names_the_graph_and_loses_nothing() {
    let broker = Mosquitto::start();
    let port = broker.port;
    // The graph's session exists before the reading is published, so the broker keeps it for
    // the graph while no run is connected.
    drop(MqttClient::connect(port, "panicking-graph", &["readings"]));
    let sensor = MqttClient::connect(port, "sensor", &[]);
    sensor.publish("readings", r#"{"temperature":{"value":212,"unit":"F"}}"#, vec![], None);
    assert_eq!(
        sensor.wait_pubacks(1, Duration::from_secs(10)),
        1,
        "the broker took the reading"
    );

    let h = Harness::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let graph_simple = repo().join("compose/tests/azure-compat/graph-simple.yaml");
    let run = |sink: Arc<TestSink>, shutdown| {
        let mqtt = wasmflow_mqtt::MqttConfig::new(&broker.url(), "panicking-graph").expect("broker URL");
        let endpoints = BTreeMap::from([
            ("broker".to_owned(), EndpointConfig::Mqtt(Box::new(mqtt))),
            ("out".to_owned(), EndpointConfig::Sink(sink)),
        ]);
        let graph = GraphRun {
            name: "thermostat".into(),
            graph: h.start(&graph_simple, RunOptions::default()),
            journal: WindowJournal::in_memory("thermostat"),
            sources: vec![SourceBinding {
                endpoint: "broker".into(),
                filters: vec!["readings".into()],
                check: None,
            }],
            destination: EndpointTopic {
                endpoint: "out".into(),
                topic: "out".into(),
            },
            output_check: None,
            dead_letter: None,
            options: PumpOptions::default(),
        };
        deployment::run(vec![graph], endpoints, rt.handle(), Some(shutdown))
    };

    // Nobody asks this run to stop before 60 s: the panic must end it.
    let (ended_by_itself, first) = supervised(|shutdown| run(Arc::new(TestSink::Panics), shutdown), || false);
    assert!(ended_by_itself, "the panic ended the run");
    let e = first.expect_err("a panicking graph ends the run").to_string();
    assert!(e.contains("graph `thermostat`") && e.contains("panicked"), "{e}");

    let collect = Arc::new(TestSink::Collect(Mutex::default()));
    let (_, again) = supervised(
        |shutdown| run(collect.clone(), shutdown),
        || !collect.collected().is_empty(),
    );
    again.expect("the second run");
    let out = collect.collected();
    assert_eq!(out.len(), 1, "the reading, delivered again: {out:?}");
    let v: serde_json::Value = serde_json::from_str(&out[0]).expect("JSON out");
    assert_eq!(v["temperature"]["unit"], "C", "{v}");
    assert_eq!(v["temperature"]["value"].as_f64(), Some(100.0), "{v}");
}

/// Runs `run` on a thread of its own until `done` or 60 s, then asks it to stop (so a failure
/// cannot leave it going); says whether it had ended by itself, and what it returned.
fn supervised<R: Send>(run: impl FnOnce(watch::Receiver<bool>) -> R + Send, done: impl Fn() -> bool) -> (bool, R) {
    let (stop, shutdown) = watch::channel(false);
    std::thread::scope(|s| {
        let running = s.spawn(|| run(shutdown));
        let until = Instant::now() + Duration::from_secs(60);
        while !running.is_finished() && !done() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let ended_by_itself = running.is_finished();
        let _ = stop.send(true);
        (ended_by_itself, running.join().expect("the run's thread"))
    })
}
