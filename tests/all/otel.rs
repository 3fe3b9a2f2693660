//! OpenTelemetry: the destination of OpenTelemetry endpoints (`wasmflow_otel`'s sink) and
//! wasmflow's own metrics (`--otlp`), received by `support::otlp`, a stand-in for the
//! OpenTelemetry Collector's OTLP receiver built on the OpenTelemetry project's protobuf
//! definitions; and a DataflowGraph whose destination is an OpenTelemetry endpoint, end to end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::logs::v1::SeverityNumber;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use wasmflow_otel::{Batching, ExportConfig, Exporter, OtlpSink, Protocol, SinkCounters, TlsFiles};
use wasmflow_transport::{Outbound, Sink};

use crate::support::mosquitto::{free_port, Client as MqttClient, Mosquitto};
use crate::support::otlp::{attributes, metrics, spans, Receiver};
use crate::support::process::Wasmflow;
use crate::support::{module, repo};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio")
}

fn outbound(payload: &str, props: &[(&str, &str)]) -> Outbound {
    Outbound {
        topic: "ignored".into(),
        payload: Arc::from(payload.as_bytes()),
        content_type: Some("application/json".into()),
        user_properties: props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        key: None,
    }
}

fn sink(
    rt: &tokio::runtime::Runtime,
    url: &str,
    protocol: Protocol,
    batching: Batching,
    headers: &[(&str, &str)],
) -> (OtlpSink, SinkCounters) {
    let config = ExportConfig {
        url: url.to_owned(),
        protocol,
        tls: TlsFiles::default(),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
    };
    let exporter = {
        let _in = rt.enter();
        Exporter::new(&config).expect("exporter")
    };
    let counters = SinkCounters::default();
    (
        OtlpSink::start("collector", exporter, batching, counters.clone(), rt.handle()),
        counters,
    )
}

fn gauge(name: &str, value: f64, ts: u64) -> String {
    format!(r#"{{"metrics":[{{"name":"{name}","type":"f64_gauge","value":{value},"unit":"Cel","timestamp":{ts}}}]}}"#)
}

#[test]
fn a_full_batch_goes_over_grpc_with_its_headers_and_messages_complete_when_it_was_exported() {
    let rt = runtime();
    let receiver = Receiver::start();
    let batching = Batching {
        latency: Duration::from_secs(600),
        max_messages: 3,
    };
    let (sink, counters) = sink(
        &rt,
        &receiver.grpc,
        Protocol::Grpc,
        batching,
        &[("authorization", "Bearer t0ken")],
    );
    // An invalid payload is dropped and acknowledged at once, without an export.
    rt.block_on(sink.send(outbound(r#"{"metrics":[{"name":"x","type":"gauge","value":1}]}"#, &[])))
        .expect("an invalid payload completes");
    assert_eq!(counters.invalid.get(), 1);
    // Two of a batch of three: nothing is exported, nothing completes.
    let first: Vec<_> = (0..2)
        .map(|i| {
            rt.spawn(sink.send(outbound(
                &gauge("temperature", 20.0 + i as f64, 1_754_851_200_000_000_000 + i),
                &[("otel/site", "plant-7")],
            )))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        first.iter().all(|h| !h.is_finished()),
        "acknowledged before it was exported"
    );
    assert!(receiver.with(|r| r.metrics.is_empty()));
    // The third fills the batch: one request, three points, and all three complete.
    rt.block_on(sink.send(outbound(&gauge("temperature", 22.0, 1_754_851_200_000_000_002), &[])))
        .expect("exported");
    for h in first {
        rt.block_on(h).unwrap().expect("exported");
    }
    assert_eq!(counters.exported.get(), 3);
    receiver.with(|r| {
        assert_eq!(r.metrics.len(), 1, "one export for the batch");
        assert!(
            r.metrics[0]
                .0
                .contains(&("authorization".into(), "Bearer t0ken".into())),
            "{:?}",
            r.metrics[0].0
        );
        let ms = metrics(r);
        assert_eq!(ms.len(), 1, "points of one metric are merged");
        assert_eq!((ms[0].name.as_str(), ms[0].unit.as_str()), ("temperature", "Cel"));
        let Some(metric::Data::Gauge(g)) = &ms[0].data else {
            panic!("{:?}", ms[0])
        };
        // The first two were sent by two tasks at once: either may be first in the batch.
        let mut values: Vec<_> = g.data_points.iter().map(|p| (p.time_unix_nano, p.value)).collect();
        values.sort_by_key(|(time, _)| *time);
        assert_eq!(
            values,
            [20.0, 21.0, 22.0]
                .iter()
                .enumerate()
                .map(|(i, v)| (
                    1_754_851_200_000_000_000 + i as u64,
                    Some(number_data_point::Value::AsDouble(*v))
                ))
                .collect::<Vec<_>>(),
            "every reading with its own timestamp"
        );
        assert_eq!(
            attributes(&g.data_points[0].attributes),
            [("site".into(), "plant-7".into())]
        );
    });
}

#[test]
fn over_http_a_batch_goes_when_its_latency_has_passed_and_logs_become_records() {
    let rt = runtime();
    let receiver = Receiver::start();
    let batching = Batching {
        latency: Duration::from_millis(400),
        max_messages: 100,
    };
    let (sink, counters) = sink(
        &rt,
        &receiver.http,
        Protocol::HttpProtobuf,
        batching,
        &[("x-tenant", "a")],
    );
    let started = Instant::now();
    rt.block_on(sink.send(outbound(
        r#"{"metrics":[{"name":"requests","type":"u64_counter","value":5}],
            "logs":[{"value":"door opened","level":"warn","timestamp":1754851200000000000,"attributes":[{"key":"door","value":"3"}]}]}"#,
        &[],
    )))
    .expect("exported");
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(counters.exported.get(), 1);
    receiver.with(|r| {
        assert!(r.metrics[0].0.contains(&("x-tenant".into(), "a".into())));
        let ms = metrics(r);
        let Some(metric::Data::Sum(s)) = &ms[0].data else {
            panic!("{:?}", ms[0])
        };
        assert!(s.is_monotonic);
        assert_eq!(s.data_points[0].value, Some(number_data_point::Value::AsInt(5)));
        let log = &r.logs[0].1.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(log.severity_number, SeverityNumber::Warn as i32);
        assert_eq!(log.time_unix_nano, 1_754_851_200_000_000_000);
        assert_eq!(attributes(&log.attributes), [("door".into(), "3".into())]);
    });
}

#[test]
fn an_unavailable_collector_is_retried_and_nothing_completes_before_it_took_the_data() {
    let rt = runtime();
    let receiver = Receiver::start();
    receiver.refuse_next(2);
    let batching = Batching {
        latency: Duration::from_millis(50),
        max_messages: 10,
    };
    let (retrying, _) = sink(&rt, &receiver.grpc, Protocol::Grpc, batching, &[]);
    rt.block_on(retrying.send(outbound(&gauge("t", 1.0, 1), &[])))
        .expect("exported in the end");
    receiver.with(|r| {
        assert_eq!(r.refused, 2);
        assert_eq!(metrics(r).len(), 1);
    });
    // A collector that is not there at all: the message stays pending.
    let (gone, _) = sink(
        &rt,
        &format!("http://127.0.0.1:{}", free_port()),
        Protocol::Grpc,
        batching,
        &[],
    );
    let pending = rt.spawn(gone.send(outbound(&gauge("t", 1.0, 1), &[])));
    std::thread::sleep(Duration::from_secs(1));
    assert!(!pending.is_finished(), "a message is acknowledged only once exported");
}

/// OTLP/gRPC over TLS with the collector's CA and an authorization header; without that CA
/// (the system's roots) the export fails and says it is worth retrying, with the reason.
/// Credentials in a collector's URL would show in logs and `ps`: refused, and not repeated.
#[test]
fn credentials_in_the_collector_url_are_refused_without_being_shown() {
    for url in [
        "http://user:hunter2@127.0.0.1:4317",
        "https://hunter2@collector:4318/base",
    ] {
        let config = ExportConfig {
            url: url.into(),
            protocol: Protocol::Grpc,
            tls: TlsFiles::default(),
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
        };
        let e = Exporter::new(&config).err().expect("refused").to_string();
        assert!(e.contains("://…@") && e.contains("--otlp-header"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}

#[test]
fn an_export_over_tls_trusts_the_given_ca_and_only_it() {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::support::pki::make_pki(dir.path());
    let receiver = Receiver::start_tls(&pki);
    assert!(receiver.grpc.starts_with("https://"), "{}", receiver.grpc);
    let config = |ca: Option<std::path::PathBuf>| ExportConfig {
        url: receiver.grpc.clone(),
        protocol: Protocol::Grpc,
        tls: TlsFiles {
            ca,
            ..TlsFiles::default()
        },
        headers: vec![("authorization".into(), "Bearer t0ken".into())],
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
    };
    let export = |config: ExportConfig| {
        let _in = rt.enter();
        let exporter = Exporter::new(&config).expect("exporter");
        rt.block_on(exporter.metrics(ExportMetricsServiceRequest::default()))
    };
    let refused = export(config(None)).expect_err("an unknown CA is not trusted");
    assert!(
        matches!(refused, wasmflow_otel::ExportError::Retryable { .. }),
        "{refused}"
    );
    assert!(receiver.with(|r| r.metrics.is_empty()));
    export(config(Some(pki.join("ca.crt")))).expect("exported over TLS");
    receiver.with(|r| {
        assert_eq!(r.metrics.len(), 1);
        assert!(r.metrics[0]
            .0
            .contains(&("authorization".into(), "Bearer t0ken".into())));
    });
}

/// `run --otlp https://… --otlp-ca`: wasmflow's own metrics and traces reach a collector over
/// TLS (a run of three input lines, exported at its end).
#[test]
fn run_exports_its_own_metrics_and_traces_over_tls_with_the_given_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::support::pki::make_pki(dir.path());
    let receiver = Receiver::start_tls(&pki);
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"temperature\":{\"value\":50,\"unit\":\"F\"}}\n".repeat(3)).unwrap();
    let ca = pki.join("ca.crt");
    let mut wf = Wasmflow::start(
        dir.path(),
        &[
            "compose/tests/azure-compat/graph-simple.yaml",
            "--input",
            input.to_str().unwrap(),
            "--otlp",
            &receiver.grpc,
            "--otlp-ca",
            ca.to_str().unwrap(),
            "--otlp-trace-ratio",
            "1",
        ],
    );
    let status = wf.wait(Duration::from_secs(60)).expect("the run ends with its input");
    assert!(status.success(), "{}", wf.log());
    receiver.with(|r| {
        let calls: Vec<_> = spans(r)
            .into_iter()
            .filter(|s| s.name == "operation")
            .filter(|s| attributes(&s.attributes).contains(&("name".into(), "module-temperature/map".into())))
            .collect();
        assert_eq!(calls.len(), 3, "{}", wf.log());
        assert!(
            metrics(r).iter().any(|m| m.name == "wasmflow.messages_in"),
            "{}",
            wf.log()
        );
    });
}

#[test]
fn wasmflows_own_counts_are_exported_by_the_sdk() {
    let rt = runtime();
    let receiver = Receiver::start();
    let config = ExportConfig {
        url: receiver.grpc.clone(),
        protocol: Protocol::Grpc,
        tls: TlsFiles::default(),
        headers: vec![],
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
    };
    let counts: wasmflow_otel::telemetry::Counts = Arc::new(|| {
        vec![wasmflow_otel::telemetry::NodeCount {
            graph: "g".into(),
            operation: "module-temperature/map".into(),
            messages_in: 7,
            messages_out: 6,
            dropped: 1,
            errors: 1,
            traps: 0,
        }]
    });
    let own = {
        let _in = rt.enter();
        let collector = Exporter::new(&config).expect("exporter");
        wasmflow_otel::telemetry::OwnMetrics::start(&collector, Duration::from_millis(300), counts).expect("start")
    };
    assert!(
        receiver.wait(Duration::from_secs(10), |r| metrics(r)
            .iter()
            .any(|m| m.name == "wasmflow.messages_in")),
        "no export"
    );
    own.shutdown();
    receiver.with(|r| {
        let m = metrics(r)
            .into_iter()
            .find(|m| m.name == "wasmflow.messages_in")
            .unwrap();
        let Some(metric::Data::Sum(s)) = &m.data else {
            panic!("{m:?}")
        };
        let p = &s.data_points[0];
        assert_eq!(p.value, Some(number_data_point::Value::AsInt(7)));
        let attrs = attributes(&p.attributes);
        assert!(
            attrs.contains(&("operation".into(), "module-temperature/map".into())),
            "{attrs:?}"
        );
    });
}

/// `run --otlp` with every message traced: each message the graph takes from the broker is a
/// `message` span (graph, topic) with an `operation` span per operator call inside it, in the
/// same trace; the log shows none of them.
#[test]
fn wasmflows_own_traces_follow_each_message_through_its_operations() {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut wf, port) = Wasmflow::on_embedded_broker(
        dir.path(),
        "compose/tests/azure-compat/graph-simple.yaml",
        &["--otlp", &receiver.grpc, "--otlp-trace-ratio", "1"],
    );
    let c = MqttClient::connect(port, "test-traces", &["out"]);
    for v in [50, 60] {
        c.publish(
            "in",
            &format!(r#"{{"temperature":{{"value":{v},"unit":"F"}}}}"#),
            vec![],
            None,
        );
    }
    assert_eq!(c.wait_for(2, Duration::from_secs(30)).len(), 2, "{}", wf.log());
    wf.signal("TERM");
    assert!(wf.wait(Duration::from_secs(30)).is_some(), "{}", wf.log());
    let spans = receiver.with(spans);
    let messages: Vec<_> = spans.iter().filter(|s| s.name == "message").collect();
    assert_eq!(messages.len(), 2, "{spans:#?}\n{}", wf.log());
    for m in messages {
        let attrs = attributes(&m.attributes);
        assert!(attrs.contains(&("topic".into(), "in".into())), "{attrs:?}");
        assert!(attrs.contains(&("graph".into(), "Simple graph".into())), "{attrs:?}");
        let inside: Vec<_> = spans
            .iter()
            .filter(|s| s.trace_id == m.trace_id && s.parent_span_id == m.span_id)
            .map(|s| (s.name.as_str(), attributes(&s.attributes)))
            .collect();
        assert!(
            inside
                .iter()
                .any(|(n, a)| *n == "operation" && a.contains(&("name".into(), "module-temperature/map".into()))),
            "{inside:?}"
        );
    }
    assert!(
        !wf.log().contains("operation{"),
        "spans stay out of the log:\n{}",
        wf.log()
    );
    // Its own metrics went the same way: one connection to the collector carried both.
    receiver.with(|r| {
        assert!(!metrics(r).is_empty(), "no metrics exported:\n{}", wf.log());
        assert_eq!(r.grpc_connections, 1, "connections to the collector:\n{}", wf.log());
    });
}

/// A DataflowGraph reading MQTT and writing to an OpenTelemetry endpoint: the platform's
/// graph-simple (its map passes what is not a temperature unchanged) run from a local modules
/// directory; what reaches the collector is what was published, with the message's `otel/…`
/// properties as attributes; an invalid payload is counted on `/metrics`; `/graph` shows the
/// graph with its counts.
#[test]
fn a_dataflow_graph_exports_what_its_graph_emits_to_an_opentelemetry_endpoint() {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    std::fs::copy(
        repo().join("../shared/azure-samples/graph-simple.yaml"),
        modules.join("graph-simple.yaml"),
    )
    .unwrap();
    std::fs::copy(module("temperature"), modules.join("temperature.wasm")).unwrap();
    let resources = format!(
        r#"apiVersion: connectivity.iotoperations.azure.com/v1beta1
kind: DataflowGraph
metadata:
  name: telemetry
spec:
  nodes:
    - nodeType: Source
      name: readings
      sourceSettings:
        endpointRef: default
        dataSources: [telemetry/+/otel]
    - nodeType: Graph
      name: pass
      graphSettings:
        registryEndpointRef: acr
        artifact: graph-simple:1.0.0
    - nodeType: Destination
      name: collector
      destinationSettings:
        endpointRef: collector
        dataDestination: unused
  nodeConnections:
    - {{from: {{name: readings}}, to: {{name: pass}}}}
    - {{from: {{name: pass}}, to: {{name: collector}}}}
---
apiVersion: connectivity.iotoperations.azure.com/v1beta1
kind: DataflowEndpoint
metadata:
  name: collector
  annotations:
    wasmflow/otlp-protocol: http/protobuf
spec:
  endpointType: OpenTelemetry
  openTelemetrySettings:
    host: {}
    authentication:
      method: ServiceAccountToken
      serviceAccountTokenSettings: {{audience: otel}}
    batching:
      latencySeconds: 1
      maxMessages: 10
"#,
        receiver.http
    );
    let file = dir.path().join("telemetry.yaml");
    std::fs::write(&file, resources).unwrap();
    // mosquitto, not the embedded broker: the invalid message is acknowledged while the valid one
    // before it waits in its batch, and rumqttd drops a connection that acknowledges out of order.
    let broker = Mosquitto::start();
    let (port, metrics_port) = (broker.port, free_port());
    std::env::set_var("OTEL_TEST_TOKEN", "Bearer s3cret");
    let mut wasmflow = Wasmflow::start(
        dir.path(),
        &[
            file.to_str().unwrap(),
            "--modules",
            modules.to_str().unwrap(),
            "--mqtt",
            &broker.url(),
            "--metrics",
            &format!("127.0.0.1:{metrics_port}"),
            "--otlp-header",
            "authorization=env:OTEL_TEST_TOKEN",
        ],
    );
    wasmflow.wait_for_log("bound", Duration::from_secs(120));
    let publisher = MqttClient::connect(port, "sensor", &[]);
    publisher.publish(
        "telemetry/line-3/otel",
        r#"{"metrics":[{"name":"vibration","type":"f64_gauge","value":0.25,"unit":"mm/s"}]}"#,
        vec![("otel/line", "3")],
        None,
    );
    publisher.publish("telemetry/line-3/otel", "not telemetry", vec![], None);
    assert!(
        receiver.wait(Duration::from_secs(30), |r| !metrics(r).is_empty()),
        "nothing reached the collector:\n{}",
        wasmflow.log()
    );
    receiver.with(|r| {
        assert!(r.metrics[0]
            .0
            .contains(&("authorization".into(), "Bearer s3cret".into())));
        let m = &metrics(r)[0];
        assert_eq!((m.name.as_str(), m.unit.as_str()), ("vibration", "mm/s"));
        let Some(metric::Data::Gauge(g)) = &m.data else {
            panic!("{m:?}")
        };
        assert_eq!(g.data_points[0].value, Some(number_data_point::Value::AsDouble(0.25)));
        assert_eq!(attributes(&g.data_points[0].attributes), [("line".into(), "3".into())]);
    });
    let get = |path: &str| {
        let out = std::process::Command::new("curl")
            .args(["-sSf", &format!("http://127.0.0.1:{metrics_port}{path}")])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let until = Instant::now() + Duration::from_secs(10);
    let mut text = get("/metrics");
    while crate::support::prometheus_sample(&text, "wasmflow_otlp_invalid_messages_total", "endpoint=\"collector\"")
        != Some(1.0)
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(100));
        text = get("/metrics");
    }
    assert_eq!(
        crate::support::prometheus_sample(&text, "wasmflow_otlp_invalid_messages_total", "endpoint=\"collector\""),
        Some(1.0),
        "{text}\n{}",
        wasmflow.log()
    );
    assert_eq!(
        crate::support::prometheus_sample(&text, "wasmflow_otlp_exported_messages_total", "endpoint=\"collector\""),
        Some(1.0),
        "{text}"
    );
    let svg = get("/graph");
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
    let texts: String = doc
        .descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        texts.contains("module-temperature/map") && texts.contains("in 2 · out 2"),
        "{texts}"
    );
    assert!(texts.contains("readings") && texts.contains("collector"), "{texts}");
}
