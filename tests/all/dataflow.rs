//! The seed's deployment as written: its `DataflowGraph` resources (Examples 1 and 2 of
//! `../shared/seeds/howto-dataflow-graph-wasm.md`, read from the seed's Kubernetes YAML blocks,
//! not copied) run by `wasmflow run FILE…`, their artifacts pushed by the test to a real
//! registry (Debian's docker-registry on loopback, `oci::Registry`) and pulled through the
//! seed's `RegistryEndpoint` — the one change to the printed resources is that endpoint's
//! host, the documentation's `<YOUR_ACR_NAME>.azurecr.io`, which becomes the test registry.
//! Messages go in and out with the mosquitto clients the seed uses; expected outputs are
//! computed here from the inputs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::oci::{Client as RegistryClient, Registry};
use crate::support::mosquitto::{free_port, Client as MqttClient, Mosquitto};
use crate::support::process::Wasmflow;
use crate::support::{module, repo, OutputExt};

fn seed() -> String {
    let p = repo().join("../shared/seeds/howto-dataflow-graph-wasm.md");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The seed's ```yaml (or ```bicep) block that contains every one of `needles`.
fn seed_block(lang: &str, needles: &[&str]) -> String {
    let text = seed();
    let fence = format!("```{lang}\n");
    let blocks: Vec<&str> = text
        .split(fence.as_str())
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .filter(|b| needles.iter().all(|n| b.contains(n)))
        .collect();
    assert_eq!(blocks.len(), 1, "one {lang} block of the seed holds {needles:?}");
    blocks[0].to_owned()
}

/// Example 1 (`graph-simple:1.0.0`) and Example 2 (`graph-complex:1.0.0`), as printed.
fn example(artifact: &str) -> String {
    seed_block("yaml", &["kind: DataflowGraph", artifact])
}

/// The seed's RegistryEndpoint, its placeholder host replaced by the test registry.
fn registry_endpoint(registry: &Registry) -> String {
    let printed = seed_block("yaml", &["kind: RegistryEndpoint"]);
    assert!(printed.contains("host: <YOUR_ACR_NAME>.azurecr.io"), "{printed}");
    printed.replace("<YOUR_ACR_NAME>.azurecr.io", &registry.host)
}

/// A test registry holding the platform's sample graphs, pushed as the seed's "Push modules to
/// your registry" step does: `graph-simple:1.0.0`, `graph-complex:1.0.0`, and the modules they
/// name (`azure-samples/explore-iot-operations/<module>:1.0.0`), built from this repository.
fn registry_with_samples() -> Registry {
    let registry = Registry::start();
    let client = RegistryClient::new();
    for graph in ["graph-simple", "graph-complex"] {
        let file = repo().join(format!("../shared/azure-samples/{graph}.yaml"));
        client.ok(&[
            "push",
            file.to_str().unwrap(),
            &registry.reference(&format!("{graph}:1.0.0")),
        ]);
    }
    for m in [
        "temperature",
        "window",
        "snapshot",
        "format",
        "humidity",
        "collection",
        "enrichment",
    ] {
        let reference = registry.reference(&format!("azure-samples/explore-iot-operations/{m}:1.0.0"));
        client.ok(&["push", module(m).to_str().unwrap(), &reference]);
    }
    registry
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `mosquitto_pub` as the seed runs it (MQTT 5, QoS 1, the `__ts` user property).
fn mosquitto_pub(port: u16, topic: &str, payload: &str, ts_ms: u64) {
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv5", "-q", "1"])
        .args(["-t", topic, "-m", payload])
        .args(["-D", "PUBLISH", "user-property", "__ts", &crate::support::ts(ts_ms)])
        .output()
        .expect("mosquitto_pub is missing: scripts/setup.sh installs mosquitto-clients")
        .succeeded("mosquitto_pub");
}

fn celsius(f: f64) -> f64 {
    (f - 32.0) * 5.0 / 9.0
}

fn assert_close(got: &Value, want: f64, what: &str) {
    let g = got.as_f64().unwrap_or_else(|| panic!("{what}: {got} is not a number"));
    assert!((g - want).abs() < 1e-9, "{what}: {g} != {want}");
}

/// One window of readings in °F and humidity, published on the seed's topics with event times
/// inside one 10 s window; the statistics Example 2's graph must report for it, computed here.
struct Window {
    start_ms: u64,
    fahrenheit: [f64; 3],
    humidity: [f64; 2],
}

impl Window {
    fn new() -> Self {
        // A window boundary well in the past: it closes as soon as the input goes idle.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        Self {
            start_ms: (now / 10_000 - 6) * 10_000 + 1_000,
            fahrenheit: [50.0, 104.0, 230.0],
            humidity: [40.0, 60.0],
        }
    }

    fn publish(&self, port: u16) {
        for (i, f) in self.fahrenheit.iter().enumerate() {
            let payload = json!({"temperature": {"value": f, "unit": "F"}}).to_string();
            mosquitto_pub(port, "sensor/temperature/raw", &payload, self.start_ms + 100 * i as u64);
        }
        for (i, h) in self.humidity.iter().enumerate() {
            let payload = json!({"humidity": {"value": h}}).to_string();
            mosquitto_pub(
                port,
                "sensor/humidity/raw",
                &payload,
                self.start_ms + 500 + 100 * i as u64,
            );
        }
    }

    /// Example 2's output for this window: temperature and humidity statistics, enriched.
    fn check(&self, payload: &[u8]) {
        let v: Value = serde_json::from_slice(payload).expect("JSON output");
        let c: Vec<f64> = self.fahrenheit.iter().map(|f| celsius(*f)).collect();
        let t = &v["temperature"][0];
        assert_eq!(t["count"], json!(3), "{v}");
        assert_close(&t["max"], c.iter().cloned().fold(f64::MIN, f64::max), "temperature max");
        assert_close(&t["min"], c.iter().cloned().fold(f64::MAX, f64::min), "temperature min");
        assert_close(&t["average"], c.iter().sum::<f64>() / 3.0, "temperature average");
        assert_close(&t["last"], c[2], "temperature last");
        assert_eq!(t["unit"], "C", "{v}");
        assert_eq!(
            t["overtemp"],
            json!(true),
            "a maximum above 100 °C is over temperature: {v}"
        );
        let h = &v["humidity"][0];
        assert_eq!(h["count"], json!(2), "{v}");
        assert_close(&h["max"], 60.0, "humidity max");
        assert_close(&h["min"], 40.0, "humidity min");
        assert_close(&h["average"], 50.0, "humidity average");
        assert_close(&h["last"], 60.0, "humidity last");
        // graph-complex's concatenation leaves out the branch that received nothing.
        assert!(v.get("object").is_none(), "no image in this window: {v}");
    }
}

/// The golden test: Example 2's resource exactly as printed, its artifact pulled from a
/// loopback registry through the seed's RegistryEndpoint, on the embedded broker (no broker
/// flags, `endpointRef: default`); temperature and humidity in with `mosquitto_pub`, the
/// window's statistics out on `analytics/sensor/processed`.
#[test]
fn the_seeds_example_2_runs_end_to_end_from_a_registry_on_the_embedded_broker() {
    let registry = registry_with_samples();
    let dir = tempfile::tempdir().unwrap();
    let graph = write(
        dir.path(),
        "complex-dataflow-graph.yaml",
        &example("graph-complex:1.0.0"),
    );
    let endpoint = write(dir.path(), "registry-endpoint.yaml", &registry_endpoint(&registry));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut wasmflow = Wasmflow::start(
        dir.path(),
        &[graph.to_str().unwrap(), endpoint.to_str().unwrap(), "--listen", &listen],
    );
    wasmflow.wait_for_log("bound", Duration::from_secs(180));
    let log = wasmflow.log();
    assert!(log.contains("pulled"), "the artifact came from the registry:\n{log}");
    assert!(log.contains("embedded MQTT broker"), "{log}");

    let out = MqttClient::connect(port, "analytics", &["analytics/sensor/processed"]);
    let window = Window::new();
    window.publish(port);
    let got = out.wait_for(1, Duration::from_secs(60));
    assert_eq!(got.len(), 1, "one window, one output:\n{}", wasmflow.log());
    assert_eq!(got[0].topic, "analytics/sensor/processed");
    window.check(&got[0].payload);
}

/// `wasmflow run` of `resources` (DataflowGraph documents) and the test registry's
/// RegistryEndpoint over `broker`, once it has bound every graph.
fn run_resources(dir: &Path, registry: &Registry, resources: &str, broker: &Mosquitto) -> Wasmflow {
    let graphs = write(dir, "graphs.yaml", resources);
    let endpoint = write(dir, "registry-endpoint.yaml", &registry_endpoint(registry));
    let mut wasmflow = Wasmflow::start(
        dir,
        &[
            graphs.to_str().unwrap(),
            endpoint.to_str().unwrap(),
            "--mqtt",
            &broker.url(),
        ],
    );
    wasmflow.wait_for_log("bound", Duration::from_secs(180));
    wasmflow
}

/// Both examples in one run, on a site broker (mosquitto): one process, one connection per
/// endpoint (a subscriber and a publisher, whatever the number of graphs), every message on a
/// topic both graphs read reaching both; a Disabled graph loaded but not started.
#[test]
fn two_dataflow_graphs_share_one_process_and_one_connection_per_endpoint() {
    let registry = registry_with_samples();
    // Connections are logged at notice level.
    let broker = Mosquitto::with_config(Default::default(), "allow_anonymous true\nlog_type notice\n");
    let dir = tempfile::tempdir().unwrap();
    let disabled = example("graph-simple:1.0.0")
        .replace("name: <GRAPH_NAME>", "name: paused")
        .replace("spec:\n", "spec:\n  mode: Disabled\n");
    let resources = format!(
        "{}\n---\n{}\n---\n{}",
        example("graph-simple:1.0.0"),
        example("graph-complex:1.0.0"),
        disabled
    );
    let wasmflow = run_resources(dir.path(), &registry, &resources, &broker);
    let log = wasmflow.log();
    assert!(log.contains("DataflowGraph `paused`: mode Disabled"), "{log}");
    let started = log
        .lines()
        .filter(|l| l.contains(" started graph=") && l.contains("artifact="))
        .count();
    assert_eq!(started, 2, "two graphs started, the disabled one not:\n{log}");

    let out = MqttClient::connect(
        broker.port,
        "readers",
        &["sensor/temperature/processed", "analytics/sensor/processed"],
    );
    let window = Window::new();
    window.publish(broker.port);
    let got = out.wait_for(4, Duration::from_secs(60));
    let simple: Vec<_> = got
        .iter()
        .filter(|p| p.topic == "sensor/temperature/processed")
        .collect();
    let complex: Vec<_> = got.iter().filter(|p| p.topic == "analytics/sensor/processed").collect();
    assert_eq!(
        simple.len(),
        3,
        "Example 1 converts every temperature:\n{}",
        wasmflow.log()
    );
    for (p, f) in simple.iter().zip(window.fahrenheit) {
        let v: Value = serde_json::from_slice(&p.payload).unwrap();
        assert_close(&v["temperature"]["value"], celsius(f), "Example 1's °C");
        assert_eq!(v["temperature"]["unit"], "C");
    }
    assert_eq!(complex.len(), 1, "Example 2 sums the window up once");
    window.check(&complex[0].payload);

    // mosquitto saw one subscriber and one publisher of wasmflow's, not one per graph.
    let clients: std::collections::BTreeSet<String> = broker
        .log()
        .lines()
        .filter_map(|l| l.split(" as ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|id| id.starts_with("wasmflow"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        clients,
        ["wasmflow-default", "wasmflow-default-out"].map(String::from).into(),
        "{}",
        broker.log()
    );
}

/// A graph whose destination refuses its outputs for good (mosquitto's ACL: PUBACK "not
/// authorized") stops the whole run, the other graph's included, and the error names that graph.
#[test]
fn a_graph_whose_sink_fails_for_good_stops_the_run_and_is_named() {
    let registry = registry_with_samples();
    let dir = tempfile::tempdir().unwrap();
    // Readable by the `mosquitto` user the broker drops to. Inputs and Example 2's output may
    // be written; Example 1's output (sensor/temperature/processed) may not.
    let acl_dir = tempfile::tempdir().unwrap();
    let acl = acl_dir.path().join("acl");
    std::fs::write(
        &acl,
        "topic read #\ntopic write sensor/+/raw\ntopic write analytics/#\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(acl_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&acl, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let broker = Mosquitto::with_config(
        Default::default(),
        &format!("allow_anonymous true\nacl_file {}\n", acl.display()),
    );
    let resources = format!(
        "{}\n---\n{}",
        example("graph-simple:1.0.0").replace("name: <GRAPH_NAME>", "name: converter"),
        example("graph-complex:1.0.0"),
    );
    let mut wasmflow = run_resources(dir.path(), &registry, &resources, &broker);
    Window::new().publish(broker.port);
    let status = wasmflow
        .wait(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("the run goes on:\n{}", wasmflow.log()));
    let log = wasmflow.log();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(
            "error: graph `converter`: a sink failed; unacknowledged inputs will be delivered again after a restart"
        ),
        "{log}"
    );
}

/// `wasmflow run` and its error, before anything starts.
fn run_fails(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmflow"))
        .arg("run")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .current_dir(repo())
        .env_remove("WASMFLOW_MODULES")
        .env_remove("WASMFLOW_REGISTRY")
        .output()
        .expect("run wasmflow");
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn what_is_missing_or_wrong_in_the_seeds_files_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // Example 1 alone: its registry endpoint is not among the files.
    let graph = write(dir.path(), "dataflow-graph.yaml", &example("graph-simple:1.0.0"));
    let e = run_fails(dir.path(), &[graph.to_str().unwrap()]);
    assert!(
        e.contains("dataflow-graph.yaml: DataflowGraph `<GRAPH_NAME>`, node `temperature-processor`, field `graphSettings.registryEndpointRef`: `<REGISTRY_ENDPOINT_NAME>` is not defined"),
        "{e}"
    );
    // With the seed's RegistryEndpoint as printed: its placeholder host.
    let endpoint = write(
        dir.path(),
        "registry-endpoint.yaml",
        &seed_block("yaml", &["kind: RegistryEndpoint"]),
    );
    let e = run_fails(dir.path(), &[graph.to_str().unwrap(), endpoint.to_str().unwrap()]);
    assert!(e.contains("placeholder host `<YOUR_ACR_NAME>.azurecr.io`"), "{e}");
    // The Bicep tab instead of the Kubernetes one.
    let bicep = write(
        dir.path(),
        "dataflow-graph.bicep",
        &seed_block("bicep", &["graph-simple:1.0.0"]),
    );
    let e = run_fails(dir.path(), &[bicep.to_str().unwrap()]);
    assert!(e.contains("is Bicep, not YAML"), "{e}");
    // An artifact the registry does not have: which registry, which reference, why.
    let registry = Registry::start();
    let e = run_fails(
        dir.path(),
        &[
            graph.to_str().unwrap(),
            endpoint.to_str().unwrap(),
            "--registry",
            &registry.host,
        ],
    );
    assert!(
        e.contains("node `temperature-processor`, field `graphSettings.artifact`: pulling"),
        "{e}"
    );
    assert!(e.contains("graph-simple:1.0.0"), "{e}");
    assert!(e.contains("is not in the registry"), "{e}");
}

/// Connection schemas: what breaks the schema of the source → graph connection never reaches
/// the graph, what the graph emits that breaks the graph → destination schema never reaches
/// the destination; both go to the dead-letter topic with the schema and the first violation,
/// and are counted per connection.
#[test]
fn connection_schemas_send_what_breaks_them_to_the_dead_letter_topic_and_count_it() {
    let dir = tempfile::tempdir().unwrap();
    let modules = dir.path().join("modules");
    std::fs::create_dir(&modules).unwrap();
    std::fs::copy(
        repo().join("../shared/azure-samples/graph-simple.yaml"),
        modules.join("graph-simple.yaml"),
    )
    .unwrap();
    std::fs::copy(module("temperature"), modules.join("temperature.wasm")).unwrap();
    let reading = write(
        dir.path(),
        "reading.json",
        r#"{"type":"object","required":["temperature"],"properties":{"temperature":{"type":"object","required":["value","unit"],"properties":{"value":{"type":"number"},"unit":{"enum":["F","C"]}}}}}"#,
    );
    let celsius_schema = write(
        dir.path(),
        "celsius.json",
        r#"{"type":"object","properties":{"temperature":{"type":"object","properties":{"value":{"type":"number","maximum":1000},"unit":{"const":"C"}}}}}"#,
    );
    let graph = example("graph-simple:1.0.0").replace(
        "    - from:\n        name: temperature-source\n      to:",
        "    - from:\n        name: temperature-source\n        schema:\n          schemaRef: temperature-reading:1\n          serializationFormat: Json\n      to:",
    );
    let graph = graph.replace(
        "    - from:\n        name: temperature-processor\n      to:",
        "    - from:\n        name: temperature-processor\n        schema:\n          schemaRef: celsius:1\n          serializationFormat: Json\n      to:",
    );
    assert_eq!(graph.matches("schemaRef").count(), 2, "{graph}");
    let file = write(dir.path(), "dataflow-graph.yaml", &graph);
    let (port, metrics_port) = (free_port(), free_port());
    let mut wasmflow = Wasmflow::start(
        dir.path(),
        &[
            file.to_str().unwrap(),
            "--modules",
            modules.to_str().unwrap(),
            "--schema",
            &format!("temperature-reading={}", reading.display()),
            "--schema",
            &format!("celsius:1={}", celsius_schema.display()),
            "--dead-letter-topic",
            "dead",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics",
            &format!("127.0.0.1:{metrics_port}"),
        ],
    );
    wasmflow.wait_for_log("bound", Duration::from_secs(120));
    let out = MqttClient::connect(port, "reader", &["sensor/temperature/processed", "dead"]);
    let t = Window::new().start_ms;
    mosquitto_pub(
        port,
        "sensor/temperature/raw",
        r#"{"temperature":{"value":212,"unit":"F"}}"#,
        t,
    );
    mosquitto_pub(
        port,
        "sensor/temperature/raw",
        r#"{"temperature":{"value":"hot","unit":"F"}}"#,
        t + 1,
    );
    mosquitto_pub(
        port,
        "sensor/temperature/raw",
        r#"{"temperature":{"value":3000,"unit":"F"}}"#,
        t + 2,
    );
    let got = out.wait_for(3, Duration::from_secs(30));
    assert_eq!(got.len(), 3, "{}", wasmflow.log());
    let good: Vec<_> = got
        .iter()
        .filter(|p| p.topic == "sensor/temperature/processed")
        .collect();
    assert_eq!(good.len(), 1);
    let v: Value = serde_json::from_slice(&good[0].payload).unwrap();
    assert_close(&v["temperature"]["value"], 100.0, "212 °F");
    let dead: Vec<_> = got.iter().filter(|p| p.topic == "dead").collect();
    let prop = |p: &rumqttc::v5::mqttbytes::v5::Publish, k: &str| {
        crate::support::mosquitto::user_prop(p, k).map(str::to_owned)
    };
    let input = dead
        .iter()
        .find(|p| prop(p, "schema").as_deref() == Some("temperature-reading:1"))
        .expect("the input's dead letter");
    assert_eq!(
        prop(input, "connection").as_deref(),
        Some("temperature-source → temperature-processor")
    );
    assert!(
        prop(input, "error").unwrap().contains("/temperature/value"),
        "{:?}",
        prop(input, "error")
    );
    assert_eq!(&input.payload[..], br#"{"temperature":{"value":"hot","unit":"F"}}"#);
    let output = dead
        .iter()
        .find(|p| prop(p, "schema").as_deref() == Some("celsius:1"))
        .expect("the output's dead letter");
    assert_eq!(
        prop(output, "connection").as_deref(),
        Some("temperature-processor → temperature-destination")
    );
    assert!(
        prop(output, "error").unwrap().contains("maximum"),
        "{:?}",
        prop(output, "error")
    );

    let metrics = Command::new("curl")
        .args(["-sSf", &format!("http://127.0.0.1:{metrics_port}/metrics")])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&metrics.stdout);
    for connection in [
        "temperature-source → temperature-processor",
        "temperature-processor → temperature-destination",
    ] {
        let labels = format!("graph=\"<GRAPH_NAME>\",connection=\"{connection}\"");
        let n = crate::support::prometheus_sample(&text, "wasmflow_schema_violations_total", &labels);
        assert_eq!(n, Some(1.0), "{labels}\n{text}");
    }
}
