//! Human-readable descriptions of a composed component or a graph, for `wasmflow inspect`.
//!
//! The world is read directly from the binary with wasmparser: `wasm-tools component wit`
//! panics on the `(implements "…")` imports compositions carry, so it cannot be relied on.

use std::collections::HashMap;
use std::fmt::Write as _;

use wasmparser::{ComponentExternalKind, ComponentTypeRef, Parser, Payload};

use crate::config::Parameter;
use crate::error::ComposeError;
use crate::manifest::{Manifest, ManifestOperation};
use crate::model::{Connection, OperationKind};
use crate::naming::operation_index;
use crate::validate::ValidatedGraph;

/// One top-level import or export of a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldItem {
    /// The extern name (`wasm-graph:processor/types@1.1.0`, `op1-logger`, `op1-…`).
    pub name: String,
    /// `instance`, `func`, `type`, `component`, `module` or `value`.
    pub kind: &'static str,
    /// The interface an `(implements "…")` item implements.
    pub implements: Option<String>,
}

/// The top-level imports and exports of a component, as written in the binary.
pub fn component_world(bytes: &[u8]) -> Result<(Vec<WorldItem>, Vec<WorldItem>), ComposeError> {
    let invalid = |e: wasmparser::BinaryReaderError| {
        ComposeError::InvalidComponent(format!("not a readable WebAssembly component: {e}"))
    };
    if !Parser::is_component(bytes) {
        return Err(ComposeError::InvalidComponent(
            "not a WebAssembly component (a core module or another file)".to_string(),
        ));
    }
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(invalid)?;
                    imports.push(WorldItem {
                        name: import.name.name.to_string(),
                        kind: type_ref_kind(&import.ty),
                        implements: import.name.implements.map(str::to_string),
                    });
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    exports.push(WorldItem {
                        name: export.name.name.to_string(),
                        kind: external_kind(export.kind),
                        implements: export.name.implements.map(str::to_string),
                    });
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}

fn type_ref_kind(ty: &ComponentTypeRef) -> &'static str {
    match ty {
        ComponentTypeRef::Module(_) => "module",
        ComponentTypeRef::Func(_) => "func",
        ComponentTypeRef::Value(_) => "value",
        ComponentTypeRef::Type(_) => "type",
        ComponentTypeRef::Instance(_) => "instance",
        ComponentTypeRef::Component(_) => "component",
    }
}

fn external_kind(kind: ComponentExternalKind) -> &'static str {
    match kind {
        ComponentExternalKind::Module => "module",
        ComponentExternalKind::Func => "func",
        ComponentExternalKind::Value => "value",
        ComponentExternalKind::Type => "type",
        ComponentExternalKind::Instance => "instance",
        ComponentExternalKind::Component => "component",
    }
}

/// Describes a component: its world (imports, exports with the interface each serves when the
/// manifest says), then the graph's operations, parameters and connections if it carries a
/// wasmflow manifest.
pub fn inspect_component(bytes: &[u8]) -> Result<String, ComposeError> {
    let (imports, exports) = component_world(bytes)?;
    let manifest = Manifest::from_component(bytes)?;
    // Exports by name and identity imports by operation, indexed once: lookups per operation,
    // not scans, so describing a graph stays linear in its size.
    let mut by_export: HashMap<&str, &ManifestOperation> = HashMap::new();
    for op in manifest.iter().flat_map(|m| &m.operations) {
        by_export.entry(op.export.as_str()).or_insert(op);
    }
    let mut identity_imports: HashMap<usize, Vec<&str>> = HashMap::new();
    for imp in &imports {
        if let Some(n) = operation_index(&imp.name) {
            identity_imports.entry(n as usize).or_default().push(imp.name.as_str());
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "component ({} bytes)", bytes.len());
    let _ = writeln!(out, "world:");
    for i in &imports {
        let _ = match &i.implements {
            Some(iface) => writeln!(out, "  import {}: {} ({}, implements)", i.name, iface, i.kind),
            None => writeln!(out, "  import {} ({})", i.name, i.kind),
        };
    }
    for e in &exports {
        let op = by_export.get(e.name.as_str()).copied();
        let _ = match (op, &e.implements) {
            (Some(op), _) => writeln!(
                out,
                "  export {}: {} ({}, operation `{}`)",
                e.name,
                op.kind.interface(),
                e.kind,
                op.name
            ),
            (None, Some(iface)) => writeln!(out, "  export {}: {} ({})", e.name, iface, e.kind),
            (None, None) => writeln!(out, "  export {} ({})", e.name, e.kind),
        };
    }
    match &manifest {
        None => {
            let _ = writeln!(out, "no wasmflow-graph manifest: not a graph composed by wasmflow");
        }
        Some(m) => {
            let header = match &m.version {
                Some(v) => format!("graph `{}` version {v}", m.name),
                None => format!("graph `{}`", m.name),
            };
            let _ = writeln!(out, "{header}");
            if let Some(d) = &m.description {
                let _ = writeln!(out, "  {d}");
            }
            if !m.features.is_empty() {
                let _ = writeln!(out, "features: {}", m.features.join(", "));
            }
            let _ = writeln!(out, "operations:");
            for (i, op) in m.operations.iter().enumerate() {
                let identity = match &op.import_prefix {
                    Some(_) => match identity_imports.get(&i) {
                        Some(mine) => format!(", imports {}", mine.join(", ")),
                        None => String::new(),
                    },
                    None => String::new(),
                };
                let nn = if op.imports_wasi_nn { ", uses wasi:nn" } else { "" };
                write_operation(
                    &mut out,
                    i,
                    &op.name,
                    op.kind,
                    op.module.as_deref(),
                    &op.export,
                    &format!("{identity}{nn}"),
                );
                write_parameters(&mut out, &op.parameters);
            }
            write_connections(&mut out, &m.connections);
            if !m.schemas.is_empty() {
                let _ = writeln!(out, "schemas:");
                for s in &m.schemas {
                    let _ = writeln!(out, "  {} ({}, {} bytes)", s.name, s.format, s.content.len());
                }
            }
        }
    }
    Ok(out)
}

/// Describes a validated graph (before composition): operations with the export each will get,
/// their parameters, the connections, and any warnings.
pub fn inspect_graph(graph: &ValidatedGraph) -> String {
    let mut out = String::new();
    let meta = &graph.definition.metadata;
    let _ = match &meta.version {
        Some(v) => writeln!(out, "graph `{}` version {v} ({})", meta.name, graph.file.display()),
        None => writeln!(out, "graph `{}` ({})", meta.name, graph.file.display()),
    };
    if let Some(d) = &meta.description {
        let _ = writeln!(out, "  {d}");
    }
    let features: Vec<&str> = graph
        .definition
        .module_requirements
        .features
        .iter()
        .flatten()
        .map(|f| f.name.as_str())
        .collect();
    if !features.is_empty() {
        let _ = writeln!(out, "features: {}", features.join(", "));
    }
    let _ = writeln!(out, "operations:");
    for op in &graph.operations {
        write_operation(
            &mut out,
            op.index,
            &op.name,
            op.kind,
            op.module.as_deref(),
            &op.export,
            "",
        );
        write_parameters(&mut out, &op.parameters);
    }
    write_connections(&mut out, &graph.connections);
    for w in &graph.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

fn write_operation(
    out: &mut String,
    index: usize,
    name: &str,
    kind: OperationKind,
    module: Option<&str>,
    export: &str,
    extra: &str,
) {
    let module = match (module, kind.plumbing_component()) {
        (Some(m), _) => format!("module {m}"),
        (None, Some(p)) => format!("wasmflow plumbing {p}"),
        (None, None) => "no module".to_string(),
    };
    let _ = writeln!(out, "  [{index}] {name}: {kind}, {module}, export {export}{extra}");
}

fn write_parameters(out: &mut String, parameters: &[Parameter]) {
    for p in parameters {
        let required = if p.required { "required" } else { "optional" };
        let default = match &p.default {
            Some(d) => format!("default {d:?}"),
            None => "no default".to_string(),
        };
        let description = p.description.as_deref().map(|d| format!(" - {d}")).unwrap_or_default();
        let _ = writeln!(out, "      parameter {}: {required}, {default}{description}", p.key);
    }
}

fn write_connections(out: &mut String, connections: &[Connection]) {
    let _ = writeln!(out, "connections:");
    for c in connections {
        let _ = match c.arm {
            Some(arm) => writeln!(out, "  {} [{arm}] -> {}", c.from, c.to),
            None => writeln!(out, "  {} -> {}", c.from, c.to),
        };
    }
}
