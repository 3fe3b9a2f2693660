//! Mermaid and DOT: a line per node and edge; the reader's renderer lays them out.

use std::fmt::Write;

use crate::{Diagram, NodeKind};
use wasmflow_compose::OperationKind;

/// Fill colour of a node of `kind` (also the SVG's).
pub(crate) fn fill(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Operation(OperationKind::Source | OperationKind::Sink) => "#e8e8e8",
        NodeKind::Operation(OperationKind::Map) => "#d6e9f8",
        NodeKind::Operation(OperationKind::Filter) => "#fdf1c7",
        NodeKind::Operation(OperationKind::Branch) => "#fbdcc4",
        NodeKind::Operation(OperationKind::Accumulate) => "#d7f0d2",
        NodeKind::Operation(OperationKind::Delay) => "#e6dcf5",
        NodeKind::Operation(OperationKind::Concatenate) => "#d3f0ee",
        NodeKind::DataflowSource | NodeKind::DataflowDestination => "#c9d3e6",
        NodeKind::DataflowGraph => "#f3e3f0",
    }
}

/// DOT's quoted string: backslash and quote escaped, a newline as `\n` (centred lines).
fn dot_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Mermaid's quoted label: `"` is written as its entity, and lines are joined with `<br/>`.
fn mermaid_quote(lines: &[String]) -> String {
    let text: Vec<String> = lines
        .iter()
        .map(|l| {
            l.replace('&', "&amp;")
                .replace('"', "#quot;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        })
        .collect();
    format!("\"{}\"", text.join("<br/>"))
}

impl Diagram {
    /// The diagram in Graphviz's DOT language (`dot -Tsvg` draws it).
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", dot_quote(&self.title));
        let _ = writeln!(out, "  label={}; labelloc=t; rankdir=TB;", dot_quote(&self.title));
        let _ = writeln!(
            out,
            "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];"
        );
        for n in &self.nodes {
            let _ = writeln!(
                out,
                "  {} [label={}, fillcolor=\"{}\"];",
                dot_quote(&n.id),
                dot_quote(&Self::lines(n).join("\n")),
                fill(n.kind)
            );
        }
        for e in &self.edges {
            let label = e
                .label
                .as_ref()
                .map(|l| format!(" [label={}]", dot_quote(l)))
                .unwrap_or_default();
            let _ = writeln!(out, "  {} -> {}{label};", dot_quote(&e.from), dot_quote(&e.to));
        }
        out.push_str("}\n");
        out
    }

    /// The diagram as a Mermaid flowchart (GitHub and most Markdown viewers draw it).
    pub fn to_mermaid(&self) -> String {
        // Mermaid ids are plain words: number the nodes.
        let id = |node_id: &str| {
            self.nodes
                .iter()
                .position(|n| n.id == node_id)
                .map_or_else(|| "unknown".to_owned(), |i| format!("n{i}"))
        };
        let mut out = String::from("flowchart TB\n");
        let _ = writeln!(out, "  %% {}", self.title.replace('\n', " "));
        for (i, n) in self.nodes.iter().enumerate() {
            let label = mermaid_quote(&Self::lines(n));
            let shape = match n.kind {
                NodeKind::Operation(OperationKind::Branch) => format!("{{{label}}}"),
                NodeKind::DataflowSource | NodeKind::DataflowDestination => format!("[({label})]"),
                _ => format!("[{label}]"),
            };
            let _ = writeln!(out, "  n{i}{shape}");
            let _ = writeln!(out, "  style n{i} fill:{}", fill(n.kind));
        }
        for e in &self.edges {
            match &e.label {
                Some(l) => {
                    let _ = writeln!(
                        out,
                        "  {} -->|{}| {}",
                        id(&e.from),
                        mermaid_quote(std::slice::from_ref(l)),
                        id(&e.to)
                    );
                }
                None => {
                    let _ = writeln!(out, "  {} --> {}", id(&e.from), id(&e.to));
                }
            }
        }
        out
    }
}
