//! Pictures of graphs: a graph definition, a composed graph's manifest, or a DataflowGraph
//! (its Source nodes, the operations of its artifact, its Destination node), drawn as SVG,
//! Mermaid or DOT, optionally with each node's live counts.
//!
//! [`Diagram`] is what is drawn, independent of the format: nodes by kind (each with its
//! module and parameters), edges with a branch's arm as their label. The builders
//! ([`Diagram::from_graph`], [`Diagram::from_manifest`], [`Diagram::from_dataflow`]) make one
//! from the compiler's and the resources' types; the renderers ([`Diagram::to_svg`],
//! [`Diagram::to_mermaid`], [`Diagram::to_dot`]) draw it. SVG layout is `layout-rs`'s (a
//! Sugiyama layout like Graphviz's dot, in Rust); Mermaid and DOT are text formats whose
//! renderers lay out themselves, written here (a line per node and edge, with quoting).

#![warn(missing_docs)]

mod svg;
mod text;

use wasmflow_compose::{Arm, Manifest, OperationKind, Override, ValidatedGraph};
use wasmflow_resources::model::DataflowGraph;

/// What a node is, which decides its colour and its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// An operation of a graph definition.
    Operation(OperationKind),
    /// A DataflowGraph's Source node (an endpoint and its topics).
    DataflowSource,
    /// A DataflowGraph's Graph node drawn as one box (its artifact's operations unknown).
    DataflowGraph,
    /// A DataflowGraph's Destination node.
    DataflowDestination,
}

impl NodeKind {
    /// The word shown on the node.
    pub fn label(self) -> &'static str {
        match self {
            NodeKind::Operation(k) => match k {
                OperationKind::Source => "source",
                OperationKind::Map => "map",
                OperationKind::Filter => "filter",
                OperationKind::Branch => "branch",
                OperationKind::Accumulate => "accumulate",
                OperationKind::Delay => "delay",
                OperationKind::Concatenate => "concatenate",
                OperationKind::Sink => "sink",
            },
            NodeKind::DataflowSource => "Source node",
            NodeKind::DataflowGraph => "Graph node",
            NodeKind::DataflowDestination => "Destination node",
        }
    }
}

/// A node's live counts (from the runtime's per-operation metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Items in.
    pub messages_in: u64,
    /// Items out.
    pub messages_out: u64,
    /// Items dropped (filtered, rejected, trapped on).
    pub dropped: u64,
    /// Items its operator rejected.
    pub errors: u64,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Unique in the diagram.
    pub id: String,
    /// The graph it belongs to (whose metrics carry its counts).
    pub graph: String,
    /// The name shown first (the operation's or the node's name).
    pub name: String,
    /// Its kind.
    pub kind: NodeKind,
    /// Lines under the name: the module, parameters, endpoint and topics.
    pub details: Vec<String>,
    /// Live counts, when known.
    pub counts: Option<Counts>,
}

/// One edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// A node id.
    pub from: String,
    /// A node id.
    pub to: String,
    /// `True`/`False` on a branch's arms.
    pub label: Option<String>,
}

/// What is drawn.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagram {
    /// Shown above the graph.
    pub title: String,
    /// In the order they were added.
    pub nodes: Vec<Node>,
    /// In the order they were added.
    pub edges: Vec<Edge>,
}

/// An operation as the builders see it, from a definition or a manifest.
struct OperationView<'a> {
    name: &'a str,
    kind: OperationKind,
    module: Option<&'a str>,
    configuration: Vec<(String, String)>,
    /// Declared parameters, valued or not.
    declared: Vec<&'a str>,
}

fn op_id(name: &str) -> String {
    format!("op:{name}")
}

/// `azure-samples/explore-iot-operations/temperature:1.0.0` → `temperature:1.0.0`.
fn short_module(m: &str) -> &str {
    m.rsplit('/').next().unwrap_or(m)
}

impl Diagram {
    /// A graph definition, its parameters as `overrides` make them.
    pub fn from_graph(g: &ValidatedGraph, overrides: &[Override]) -> Self {
        let configs = g.configurations(overrides).unwrap_or_default();
        let ops = g.operations.iter().enumerate().map(|(i, o)| OperationView {
            name: &o.name,
            kind: o.kind,
            module: o.module.as_deref(),
            configuration: configs.get(i).cloned().unwrap_or_default(),
            declared: o.parameters.iter().map(|p| p.key.as_str()).collect(),
        });
        let mut d = Self {
            title: g.definition.metadata.name.clone(),
            ..Self::default()
        };
        d.add_operations(
            &g.definition.metadata.name,
            ops,
            g.connections.iter().map(|c| (c.from.as_str(), c.to.as_str(), c.arm)),
        );
        d
    }

    /// A composed graph (or one about to run), its parameters as `overrides` make them.
    pub fn from_manifest(m: &Manifest, overrides: &[Override]) -> Self {
        let configs = m.configurations(overrides).unwrap_or_default();
        let ops = m.operations.iter().enumerate().map(|(i, o)| OperationView {
            name: &o.name,
            kind: o.kind,
            module: o.module.as_deref(),
            configuration: configs.get(i).cloned().unwrap_or_default(),
            declared: o.parameters.iter().map(|p| p.key.as_str()).collect(),
        });
        let mut d = Self {
            title: m.name.clone(),
            ..Self::default()
        };
        d.add_operations(
            &m.name,
            ops,
            m.connections.iter().map(|c| (c.from.as_str(), c.to.as_str(), c.arm)),
        );
        d
    }

    fn add_operations<'a>(
        &mut self,
        graph: &str,
        ops: impl Iterator<Item = OperationView<'a>>,
        connections: impl Iterator<Item = (&'a str, &'a str, Option<Arm>)>,
    ) {
        for o in ops {
            let mut details = Vec::new();
            if let Some(m) = o.module {
                details.push(short_module(m).to_owned());
            }
            details.extend(o.configuration.iter().map(|(k, v)| format!("{k} = {v}")));
            details.extend(
                o.declared
                    .iter()
                    .filter(|k| !o.configuration.iter().any(|(c, _)| c == *k))
                    .map(|k| format!("{k} (unset)")),
            );
            self.nodes.push(Node {
                id: op_id(o.name),
                graph: graph.to_owned(),
                name: o.name.to_owned(),
                kind: NodeKind::Operation(o.kind),
                details,
                counts: None,
            });
        }
        for (from, to, arm) in connections {
            self.edges.push(Edge {
                from: op_id(from),
                to: op_id(to),
                label: arm.map(|a| match a {
                    Arm::True => "True".to_owned(),
                    Arm::False => "False".to_owned(),
                }),
            });
        }
    }

    /// A DataflowGraph: its Source nodes, then the diagram of its artifact when it is known
    /// (built with the Graph node's `configuration` as overrides: [`DataflowGraph`]'s
    /// [`overrides`](Diagram::overrides)), else the Graph node as one box, then its Destination
    /// node.
    pub fn from_dataflow(g: &DataflowGraph, artifact: Option<Diagram>) -> Self {
        let mut d = Self {
            title: format!("DataflowGraph {}", g.name()),
            ..Self::default()
        };
        for s in &g.sources {
            let mut details = vec![format!("endpoint {}", s.endpoint)];
            details.extend(s.data_sources.iter().cloned());
            d.nodes.push(Node {
                id: format!("src:{}", s.name),
                graph: g.name().to_owned(),
                name: s.name.clone(),
                kind: NodeKind::DataflowSource,
                details,
                counts: None,
            });
        }
        let (entries, exits): (Vec<String>, Vec<String>) = match artifact {
            Some(inner) => {
                d.title = format!(
                    "DataflowGraph {} ({}: {})",
                    g.name(),
                    g.processor.name,
                    g.processor.artifact.written
                );
                let ids = |kind: OperationKind| -> Vec<String> {
                    inner
                        .nodes
                        .iter()
                        .filter(|n| n.kind == NodeKind::Operation(kind))
                        .map(|n| n.id.clone())
                        .collect()
                };
                let (entries, exits) = (ids(OperationKind::Source), ids(OperationKind::Sink));
                d.nodes.extend(inner.nodes);
                d.edges.extend(inner.edges);
                (entries, exits)
            }
            None => {
                let id = format!("graph:{}", g.processor.name);
                let mut details = vec![
                    g.processor.artifact.written.clone(),
                    format!("registry {}", g.processor.registry),
                ];
                details.extend(g.processor.configuration.iter().map(|(k, v)| format!("{k} = {v}")));
                d.nodes.push(Node {
                    id: id.clone(),
                    graph: g.name().to_owned(),
                    name: g.processor.name.clone(),
                    kind: NodeKind::DataflowGraph,
                    details,
                    counts: None,
                });
                (vec![id.clone()], vec![id])
            }
        };
        let dest = &g.destination;
        let dest_id = format!("dst:{}", dest.name);
        d.nodes.push(Node {
            id: dest_id.clone(),
            graph: g.name().to_owned(),
            name: dest.name.clone(),
            kind: NodeKind::DataflowDestination,
            details: vec![format!("endpoint {}", dest.endpoint), dest.topic.clone()],
            counts: None,
        });
        for s in &g.sources {
            for e in &entries {
                d.edges.push(Edge {
                    from: format!("src:{}", s.name),
                    to: e.clone(),
                    label: s.schema.as_ref().map(|sc| format!("schema {}", sc.name)),
                });
            }
        }
        for x in &exits {
            d.edges.push(Edge {
                from: x.clone(),
                to: dest_id.clone(),
                label: g.processor.schema.as_ref().map(|sc| format!("schema {}", sc.name)),
            });
        }
        d
    }

    /// The Graph node's `configuration` as overrides for every operation (what a run gives the
    /// artifact's operations).
    pub fn overrides(g: &DataflowGraph) -> Vec<Override> {
        g.processor
            .configuration
            .iter()
            .map(|(k, v)| Override {
                operation: None,
                key: k.clone(),
                value: v.clone(),
            })
            .collect()
    }

    /// Sets the counts of operation `operation` of graph `graph` (no effect if there is none).
    pub fn set_counts(&mut self, graph: &str, operation: &str, counts: Counts) {
        if let Some(n) = self
            .nodes
            .iter_mut()
            .find(|n| matches!(n.kind, NodeKind::Operation(_)) && n.graph == graph && n.name == operation)
        {
            n.counts = Some(counts);
        }
    }

    /// Several diagrams side by side in one (the graphs of one run); one is returned as it is.
    pub fn combine(mut diagrams: Vec<Diagram>) -> Diagram {
        if diagrams.len() == 1 {
            return diagrams.remove(0);
        }
        let mut out = Diagram {
            title: diagrams
                .iter()
                .map(|d| d.title.as_str())
                .collect::<Vec<_>>()
                .join(" · "),
            ..Diagram::default()
        };
        for (i, d) in diagrams.into_iter().enumerate() {
            let prefix = |id: &str| format!("{i}/{id}");
            out.nodes
                .extend(d.nodes.into_iter().map(|n| Node { id: prefix(&n.id), ..n }));
            out.edges.extend(d.edges.into_iter().map(|e| Edge {
                from: prefix(&e.from),
                to: prefix(&e.to),
                label: e.label,
            }));
        }
        out
    }

    /// The lines a node shows: name, kind, details, counts.
    fn lines(node: &Node) -> Vec<String> {
        let mut lines = vec![node.name.clone(), format!("[{}]", node.kind.label())];
        lines.extend(node.details.iter().cloned());
        if let Some(c) = node.counts {
            lines.push(format!(
                "in {} · out {} · dropped {} · errors {}",
                c.messages_in, c.messages_out, c.dropped, c.errors
            ));
        }
        lines
    }
}
