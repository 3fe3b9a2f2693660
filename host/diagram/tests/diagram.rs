//! Pictures of the platform's graphs: the SVG is XML that names every node, Mermaid and DOT
//! name every node and edge, branch arms are labelled. The graphs are the platform's own
//! (`../shared/azure-compat`, read in place).

use std::path::PathBuf;

use wasmflow_diagram::{Counts, Diagram};

fn shared(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(file)
}

fn graph(file: &str) -> wasmflow_compose::ValidatedGraph {
    wasmflow_compose::load_graph(&shared(file)).unwrap_or_else(|e| panic!("{e}"))
}

/// Every text of the SVG, which must parse as XML.
fn svg_texts(svg: &str) -> String {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}\n{svg}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_complex_graph_as_svg_names_every_operation_and_labels_the_arms() {
    let g = graph("azure-compat/graph-complex.yaml");
    let d = Diagram::from_graph(&g, &[]);
    let texts = svg_texts(&d.to_svg());
    for op in &g.operations {
        assert!(
            texts.contains(&op.name),
            "{} is not named in the SVG:\n{texts}",
            op.name
        );
    }
    for module in [
        "window:1.0.0",
        "snapshot:1.0.0",
        "temperature:1.0.0",
        "collection:1.0.0",
    ] {
        assert!(texts.contains(module), "{module}");
    }
    assert!(texts.contains("[branch]") && texts.contains("[accumulate]"), "{texts}");
    assert_eq!(
        texts.matches("True").count(),
        2,
        "two branches, one True arm each:\n{texts}"
    );
    assert_eq!(texts.matches("False").count(), 2, "{texts}");
    assert!(texts.contains("Complex graph"), "the title");
}

#[test]
fn parameters_show_as_overrides_make_them_and_counts_when_set() {
    let g = graph("azure-compat/graph-simple.yaml");
    let overrides = [wasmflow_compose::Override::parse("conversion=fahrenheit-to-celsius").unwrap()];
    let mut d = Diagram::from_graph(&g, &overrides);
    d.set_counts(
        "Simple graph",
        "module-temperature/map",
        Counts {
            messages_in: 12,
            messages_out: 11,
            dropped: 1,
            errors: 1,
        },
    );
    let texts = svg_texts(&d.to_svg());
    assert!(texts.contains("conversion = fahrenheit-to-celsius"), "{texts}");
    assert!(texts.contains("in 12 · out 11 · dropped 1 · errors 1"), "{texts}");
}

#[test]
fn mermaid_and_dot_name_every_node_and_edge() {
    let g = graph("azure-compat/graph-complex.yaml");
    let d = Diagram::from_graph(&g, &[]);
    let (mermaid, dot) = (d.to_mermaid(), d.to_dot());
    assert!(mermaid.starts_with("flowchart TB\n"));
    assert!(dot.starts_with("digraph "));
    for op in &g.operations {
        assert!(mermaid.contains(&op.name), "{}", op.name);
        assert!(dot.contains(&format!("\"op:{}\"", op.name)), "{}", op.name);
    }
    assert_eq!(mermaid.matches("-->").count(), g.connections.len());
    assert_eq!(dot.matches(" -> ").count(), g.connections.len());
    assert!(dot.contains("[label=\"True\"]") && mermaid.contains("-->|\"False\"|"));
}

#[test]
fn a_dataflow_graph_draws_its_sources_the_artifacts_operations_and_its_destination() {
    let resource = r#"
apiVersion: connectivity.iotoperations.azure.com/v1beta1
kind: DataflowGraph
metadata:
  name: <GRAPH_NAME>
spec:
  nodes:
    - nodeType: Source
      name: temperature-source
      sourceSettings:
        endpointRef: default
        dataSources: [sensor/temperature/raw]
    - nodeType: Graph
      name: temperature-processor
      graphSettings:
        registryEndpointRef: acr
        artifact: graph-simple:1.0.0
        configuration: [{key: conversion, value: fahrenheit-to-celsius}]
    - nodeType: Destination
      name: temperature-destination
      destinationSettings:
        endpointRef: default
        dataDestination: sensor/temperature/processed
  nodeConnections:
    - {from: {name: temperature-source}, to: {name: temperature-processor}}
    - {from: {name: temperature-processor}, to: {name: temperature-destination}}
"#;
    let deployment = wasmflow_resources::parse(resource).unwrap();
    let df = &deployment.graphs[0];
    let g = graph("azure-compat/graph-simple.yaml");
    let inner = Diagram::from_graph(&g, &Diagram::overrides(df));
    let expanded = Diagram::from_dataflow(df, Some(inner));
    let texts = svg_texts(&expanded.to_svg());
    for name in [
        "temperature-source",
        "sensor/temperature/raw",
        "module-temperature/map",
        "conversion = fahrenheit-to-celsius",
        "temperature-destination",
        "sensor/temperature/processed",
    ] {
        assert!(texts.contains(name), "{name}:\n{texts}");
    }
    // Source node → graph source → map → graph sink → Destination node.
    assert_eq!(expanded.edges.len(), 4);
    let one_box = Diagram::from_dataflow(df, None);
    let texts = svg_texts(&one_box.to_svg());
    assert!(
        texts.contains("temperature-processor") && texts.contains("graph-simple:1.0.0"),
        "{texts}"
    );
    assert_eq!(one_box.edges.len(), 2);
}
