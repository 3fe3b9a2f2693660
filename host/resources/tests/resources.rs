//! The resource files of a run: what they become, and what every mistake in them is told as.
//! The seed's own examples are run end to end by `tests/all/dataflow.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use wasmflow_resources::model::{EndpointKind, Mode, OtlpProtocol, Persistence};
use wasmflow_resources::resolve::{ArtifactLocation, Connection};
use wasmflow_resources::{load, parse, resolve, ResolveOptions, ResourceError};

const GRAPH: &str = r#"
apiVersion: connectivity.iotoperations.azure.com/v1beta1
kind: DataflowGraph
metadata:
  name: <GRAPH_NAME>
  namespace: azure-iot-operations
spec:
  mode: disabled
  requestDiskPersistence: Enabled
  profileRef: default
  nodes:
    - nodeType: Source
      name: temperature-source
      sourceSettings:
        endpointRef: default
        dataSources:
          - sensor/temperature/raw
    - nodeType: Graph
      name: temperature-processor
      graphSettings:
        registryEndpointRef: <REGISTRY_ENDPOINT_NAME>
        artifact: graph-simple:1.0.0
        configuration:
          - key: conversion
            value: fahrenheit-to-celsius
          - key: precision
            value: 2
    - nodeType: Destination
      name: temperature-destination
      destinationSettings:
        endpointRef: collector
        dataDestination: sensor/temperature/processed
  nodeConnections:
    - from:
        name: temperature-source
        schema:
          schemaRef: sensor-input-schema:1
          serializationFormat: Json
      to:
        name: temperature-processor
    - from:
        name: temperature-processor
      to:
        name: temperature-destination
"#;

const ENDPOINTS: &str = r#"
apiVersion: connectivity.iotoperations.azure.com/v1beta1
kind: RegistryEndpoint
metadata:
  name: <REGISTRY_ENDPOINT_NAME>
spec:
  host: https://127.0.0.1:5000
  authentication:
    method: SystemAssignedManagedIdentity
    systemAssignedManagedIdentitySettings:
      audience: https://management.azure.com/
---
apiVersion: connectivity.iotoperations.azure.com/v1
kind: DataflowEndpoint
metadata:
  name: collector
  annotations:
    wasmflow/otlp-protocol: http/protobuf
spec:
  endpointType: OpenTelemetry
  openTelemetrySettings:
    host: http://127.0.0.1:4318
    authentication:
      method: Anonymous
      anonymousSettings: {}
    batching:
      latencySeconds: 5
      maxMessages: 100
---
apiVersion: connectivity.iotoperations.azure.com/v1
kind: DataflowEndpoint
metadata:
  name: site-kafka
spec:
  endpointType: Kafka
  kafkaSettings:
    host: kafka-1:9092,kafka-2:9092
    consumerGroupId: line-3
    batching:
      latencyMs: 5
      maxMessages: 1000
    compression: Gzip
"#;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn two_files_of_several_documents_become_one_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        write(&dir, "graph.yaml", GRAPH),
        write(&dir, "endpoints.yaml", ENDPOINTS),
    ];
    let d = load(&files).unwrap();
    assert_eq!(d.graphs.len(), 1);
    let g = &d.graphs[0];
    assert_eq!(g.name(), "<GRAPH_NAME>");
    assert_eq!(g.mode, Mode::Disabled, "the mode is read whatever its case");
    assert_eq!(g.persistence, Persistence::Disk);
    assert_eq!(g.sources[0].data_sources, ["sensor/temperature/raw"]);
    let schema = g.sources[0].schema.as_ref().expect("the source connection's schema");
    assert_eq!(schema.name, "sensor-input-schema:1");
    assert_eq!(schema.connection, "temperature-source → temperature-processor");
    assert_eq!(
        g.processor.configuration,
        [
            ("conversion".to_owned(), "fahrenheit-to-celsius".to_owned()),
            ("precision".to_owned(), "2".to_owned())
        ],
        "a number is taken as written"
    );
    let EndpointKind::OpenTelemetry(o) = &d.endpoints["collector"].kind else {
        panic!("collector is an OpenTelemetry endpoint")
    };
    assert_eq!(o.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!((o.latency.as_secs(), o.max_messages), (5, 100));

    let plan = resolve(&d, &ResolveOptions::default()).unwrap();
    let gp = &plan.graphs[0];
    assert_eq!(
        gp.artifact,
        ArtifactLocation::Registry {
            reference: "127.0.0.1:5000/graph-simple:1.0.0".into(),
            registry: "127.0.0.1:5000".into(),
            plain_http: false,
            via: "RegistryEndpoint `<REGISTRY_ENDPOINT_NAME>`".into(),
        }
    );
    assert!(
        plan.endpoints.is_empty(),
        "a disabled graph connects nothing: {:?}",
        plan.endpoints
    );
}

#[test]
fn an_enabled_graph_resolves_default_to_the_local_broker_and_kafka_settings_to_properties() {
    let graph = GRAPH
        .replace("mode: disabled", "mode: Enabled")
        .replace("endpointRef: default", "endpointRef: site-kafka");
    let d = parse(&format!("{graph}\n---\n{ENDPOINTS}")).unwrap();
    let plan = resolve(&d, &ResolveOptions::default()).unwrap();
    let Connection::Kafka(k) = &plan.endpoints["site-kafka"] else {
        panic!("{:?}", plan.endpoints)
    };
    assert_eq!(k.group, "line-3");
    for p in [
        ("linger.ms", "5"),
        ("batch.num.messages", "1000"),
        ("compression.type", "gzip"),
        ("security.protocol", "PLAINTEXT"),
    ] {
        assert!(
            k.properties.contains(&(p.0.into(), p.1.into())),
            "{p:?} in {:?}",
            k.properties
        );
    }
    assert!(matches!(plan.endpoints["collector"], Connection::OpenTelemetry(_)));

    let d = parse(&format!("{}\n---\n{ENDPOINTS}", GRAPH.replace("mode: disabled", ""))).unwrap();
    let plan = resolve(&d, &ResolveOptions::default()).unwrap();
    assert_eq!(plan.endpoints["default"], Connection::DefaultBroker);
}

#[test]
fn modules_and_registry_flags_decide_where_the_artifact_comes_from() {
    let dir = tempfile::tempdir().unwrap();
    let d = parse(&GRAPH.replace("endpointRef: collector", "endpointRef: default")).unwrap();
    let with = |modules: Option<PathBuf>, registry: Option<&str>| ResolveOptions {
        registry: registry.map(str::to_owned),
        modules_dir: modules,
        secrets: BTreeMap::new(),
    };
    let e = resolve(&d, &with(None, None)).unwrap_err().to_string();
    assert!(
        e.contains("<input>: DataflowGraph `<GRAPH_NAME>`, node `temperature-processor`, field `graphSettings.registryEndpointRef`: `<REGISTRY_ENDPOINT_NAME>` is not defined"),
        "{e}"
    );
    let plan = resolve(&d, &with(None, Some("localhost:5000"))).unwrap();
    assert!(matches!(&plan.graphs[0].artifact,
        ArtifactLocation::Registry { reference, .. } if reference == "localhost:5000/graph-simple:1.0.0"));
    write(&dir, "graph-simple.yaml", "whatever");
    let plan = resolve(&d, &with(Some(dir.path().into()), Some("localhost:5000"))).unwrap();
    assert_eq!(
        plan.graphs[0].artifact,
        ArtifactLocation::Local(dir.path().join("graph-simple.yaml"))
    );
}

#[test]
fn the_documentations_placeholder_host_is_named_when_it_would_be_used() {
    let registry = r#"
apiVersion: connectivity.iotoperations.azure.com/v1beta1
kind: RegistryEndpoint
metadata:
  name: <REGISTRY_ENDPOINT_NAME>
  namespace: azure-iot-operations
spec:
  host: <YOUR_ACR_NAME>.azurecr.io
  authentication:
    method: SystemAssignedManagedIdentity
    systemAssignedManagedIdentitySettings:
      audience: https://management.azure.com/
"#;
    let graph = GRAPH.replace("endpointRef: collector", "endpointRef: default");
    let d = parse(&format!("{graph}---{registry}")).unwrap();
    let e = resolve(&d, &ResolveOptions::default()).unwrap_err().to_string();
    assert!(e.contains("placeholder host `<YOUR_ACR_NAME>.azurecr.io`"), "{e}");
    assert!(e.contains("--registry HOST"), "{e}");
}

#[test]
fn references_to_nothing_name_resource_node_and_field() {
    let bad = GRAPH.replace(
        "      to:\n        name: temperature-destination",
        "      to:\n        name: temperature-sink",
    );
    let e = err(&bad);
    assert_eq!(
        e,
        "<input>: DataflowGraph `<GRAPH_NAME>`, field `spec.nodeConnections[1].to.name`: names node `temperature-sink`, which is not in spec.nodes (nodes: temperature-source, temperature-processor, temperature-destination)"
    );

    let d = parse(&GRAPH.replace("endpointRef: collector", "endpointRef: nowhere")).unwrap();
    let e = resolve(&d, &ResolveOptions::default()).unwrap_err().to_string();
    assert_eq!(
        e,
        "<input>: DataflowGraph `<GRAPH_NAME>`, node `temperature-destination`, field `destinationSettings.endpointRef`: `nowhere` is not defined (no DataflowEndpoint is among the files); `default` is the local broker"
    );
}

#[test]
fn an_opentelemetry_endpoint_cannot_be_a_source() {
    let graph = GRAPH.replace("endpointRef: default", "endpointRef: collector");
    let d = parse(&format!("{graph}---{ENDPOINTS}")).unwrap();
    let e = resolve(&d, &ResolveOptions::default()).unwrap_err().to_string();
    assert!(
        e.contains("node `temperature-source`, field `sourceSettings.endpointRef`: `collector` is an OpenTelemetry endpoint, and those are destinations only"),
        "{e}"
    );
}

#[test]
fn unsupported_kinds_and_api_versions_are_all_listed() {
    let text = format!(
        "{GRAPH}---\napiVersion: connectivity.iotoperations.azure.com/v1\nkind: Dataflow\nmetadata: {{name: bridge}}\nspec: {{}}\n---\napiVersion: connectivity.iotoperations.azure.com/v2\nkind: DataflowGraph\nmetadata: {{name: future}}\nspec: {{}}\n"
    );
    let e = err(&text);
    assert!(e.starts_with("not supported: <input>: Dataflow `bridge` (connectivity.iotoperations.azure.com/v1); <input>: DataflowGraph `future` (connectivity.iotoperations.azure.com/v2)."), "{e}");
    assert!(e.contains("DataflowGraph, DataflowEndpoint, RegistryEndpoint"), "{e}");
}

#[test]
fn bicep_is_recognised_and_refused_saying_so() {
    let bicep = "param aioInstanceName string = '<AIO_INSTANCE_NAME>'\n\nresource aioInstance 'Microsoft.IoTOperations/instances@2024-11-01' existing = {\n  name: aioInstanceName\n}\n";
    let dir = tempfile::tempdir().unwrap();
    for name in ["graph.bicep", "graph.yaml"] {
        let f = write(&dir, name, bicep);
        assert!(wasmflow_resources::is_resource_file(&f), "{name}");
        let e = load(std::slice::from_ref(&f)).unwrap_err();
        assert_eq!(
            e,
            ResourceError::Bicep {
                file: f.display().to_string()
            }
        );
        assert!(e.to_string().contains("is Bicep, not YAML"), "{e}");
    }
}

#[test]
fn a_misspelt_field_is_named_with_its_node() {
    let e = err(&GRAPH.replace("dataSources:", "dataSource:"));
    assert!(
        e.starts_with(
            "<input>: DataflowGraph `<GRAPH_NAME>`, node `temperature-source`, field `spec.nodes[0].sourceSettings"
        ),
        "{e}"
    );
    assert!(e.contains("unknown field `dataSource`"), "{e}");
}

#[test]
fn shapes_wasmflow_does_not_run_are_refused_with_the_reason() {
    let two_graphs = GRAPH.replace(
        "    - nodeType: Destination",
        "    - nodeType: Graph\n      name: second\n      graphSettings:\n        registryEndpointRef: r\n        artifact: x:1\n    - nodeType: Destination",
    );
    assert!(err(&two_graphs).contains("node `second`, field `spec.nodes`: a second Graph node"));
    let two_destinations = GRAPH.replace(
        "  nodeConnections:",
        "    - nodeType: Destination\n      name: also-out\n      destinationSettings:\n        endpointRef: collector\n        dataDestination: x\n  nodeConnections:",
    );
    let e = err(&two_destinations);
    assert!(
        e.contains("node `also-out`, field `spec.nodes`: a second Destination node"),
        "{e}"
    );
    // A node taken out: the nodes' own check names it before the connections that lead to it.
    let without = |from: &str, to: &str| {
        let (start, end) = (GRAPH.find(from).unwrap(), GRAPH.find(to).unwrap());
        format!("{}{}", &GRAPH[..start], &GRAPH[end..])
    };
    let e = err(&without("    - nodeType: Destination", "  nodeConnections:"));
    assert!(e.contains("field `spec.nodes`: no Destination node"), "{e}");
    let e = err(&without("    - nodeType: Graph", "    - nodeType: Destination"));
    assert!(e.contains("field `spec.nodes`: no Graph node"), "{e}");
    let e = err(&GRAPH.replace(
        "artifact: graph-simple:1.0.0",
        "artifact: myacr.azurecr.io/graph-simple:1.0.0",
    ));
    assert!(e.contains("field `spec.nodes[1].graphSettings.artifact`"), "{e}");
    assert!(e.contains("names a registry host"), "{e}");
    let e = err(&GRAPH.replace("mode: disabled", "mode: Paused"));
    assert!(
        e.contains(", field `spec.mode`: `Paused`: expected Enabled or Disabled"),
        "{e}"
    );
    let e = err(&GRAPH.replace("serializationFormat: Json", "serializationFormat: Parquet"));
    assert!(e.contains("nodeConnections[0].from.schema.serializationFormat"), "{e}");
}

#[test]
fn endpoints_that_need_a_cluster_identity_say_so() {
    let ep = "apiVersion: connectivity.iotoperations.azure.com/v1\nkind: DataflowEndpoint\nmetadata: {name: default}\nspec:\n  endpointType: Mqtt\n  mqttSettings:\n    host: aio-broker:18883\n    authentication:\n      method: ServiceAccountToken\n      serviceAccountTokenSettings: {audience: aio-internal}\n";
    let e = err(ep);
    assert!(e.contains("DataflowEndpoint `default`, field `spec.mqttSettings.authentication.method`: `ServiceAccountToken` authenticates with an identity of an Azure IoT Operations cluster"), "{e}");
    let storage = "apiVersion: connectivity.iotoperations.azure.com/v1\nkind: DataflowEndpoint\nmetadata: {name: lake}\nspec:\n  endpointType: DataLakeStorage\n  dataLakeStorageSettings: {host: x}\n";
    assert!(err(storage).contains("endpoint type `DataLakeStorage`"));
}

#[test]
fn garbage_is_an_error_never_a_panic() {
    for text in [
        "",
        "---\n---\n",
        "[",
        "a: [b, {c: d}",
        "apiVersion: 1\nkind: []\nmetadata: 3",
        "kind: DataflowGraph\n",
        "apiVersion: connectivity.iotoperations.azure.com/v1\nkind: DataflowGraph\nmetadata: {name: g}\nspec: {nodes: [{nodeType: Graph, name: g, graphSettings: {registryEndpointRef: r, artifact: ':'}}]}",
        "&a [*a, *a]",
        "\u{0}\u{1}\u{ffff}",
    ] {
        let _ = parse(text);
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse(&deep).is_err());
}

#[test]
fn a_node_with_the_settings_of_another_type_is_refused_naming_them() {
    for (before, after, node, field) in [
        (
            "      graphSettings:\n        registryEndpointRef",
            "      sourceSettings: {endpointRef: default, dataSources: [x]}\n      graphSettings:\n        registryEndpointRef",
            "temperature-processor",
            "spec.nodes[1].sourceSettings",
        ),
        (
            "      destinationSettings:\n        endpointRef: collector",
            "      graphSettings: {registryEndpointRef: r, artifact: 'g:1'}\n      destinationSettings:\n        endpointRef: collector",
            "temperature-destination",
            "spec.nodes[2].graphSettings",
        ),
    ] {
        assert!(GRAPH.contains(before), "{before}");
        let e = err(&GRAPH.replace(before, after));
        let settings = field.rsplit('.').next().unwrap_or_default();
        assert!(
            e.contains(&format!("node `{node}`, field `{field}`: a ")) && e.ends_with(&format!(" node takes no {settings}")),
            "{e}"
        );
    }
}
