//! The manifest embedded in a composed component (custom section `wasmflow-graph`, JSON).
//!
//! It is how the host runs a `.wasm` without its YAML: which export is which operation, how the
//! operations are connected, which imports carry an operation's identity, and the parameters
//! (with compose-time overrides already baked into their defaults).

use serde::{Deserialize, Serialize};
use wasmparser::{Parser, Payload};

use crate::config::{resolve_configuration, ConfigResolver, ConfigTarget, Override, Parameter};
use crate::error::ComposeError;
use crate::model::{Connection, OperationKind};

/// Name of the custom section holding the manifest.
pub const MANIFEST_SECTION: &str = "wasmflow-graph";

/// The manifest format this crate writes (and the only one it reads).
pub const MANIFEST_FORMAT: u32 = 1;

/// The graph as the host needs it at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format of this document; [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The graph's name (`metadata.name`).
    pub name: String,
    /// `metadata.description`.
    #[serde(default)]
    pub description: Option<String>,
    /// `metadata.version`.
    #[serde(default)]
    pub version: Option<String>,
    /// Names from `moduleRequirements.features` (e.g. `wasi-nn`).
    #[serde(default)]
    pub features: Vec<String>,
    /// One per operation, in graph order (index `i` ↔ export `op{i}-…`, see
    /// [`naming`](crate::naming)).
    pub operations: Vec<ManifestOperation>,
    /// The edges the host routes items along.
    pub connections: Vec<Connection>,
    /// The graph's `schemas` section.
    #[serde(default)]
    pub schemas: Vec<ManifestSchema>,
    /// The export of the graph's own router (`wasmflow:graph/graph@0.1.0`), when it was
    /// composed with one (`--router composed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_export: Option<String>,
}

/// One operation of a composed graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestOperation {
    /// The operation's name.
    pub name: String,
    /// Its type (serialized lowercase).
    pub kind: OperationKind,
    /// The module reference as written in the graph (None for plumbing).
    #[serde(default)]
    pub module: Option<String>,
    /// The composition export serving it: `op{i}-{slug}` ([`export_name`](crate::naming::export_name)).
    pub export: String,
    /// `op{i}` for operator instances ([`import_prefix`](crate::naming::import_prefix)): their
    /// logger/metrics/state-store imports are `op{i}-logger`, `op{i}-metrics`, `op{i}-state-store`
    /// ([`import_name`](crate::naming::import_name)). None for plumbing.
    #[serde(default)]
    pub import_prefix: Option<String>,
    /// Whether its module imports `wasi:nn` (the host must link wasi-nn).
    #[serde(default)]
    pub imports_wasi_nn: bool,
    /// Its parameters (defaults include compose-time overrides).
    #[serde(default)]
    pub parameters: Vec<Parameter>,
}

/// One entry of the graph's `schemas` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSchema {
    /// Name connections refer to.
    pub name: String,
    /// Format / content type (e.g. `Delta/1.0`).
    pub format: String,
    /// The schema text.
    pub content: String,
}

impl Manifest {
    /// Reads the manifest from a composed component's top-level `wasmflow-graph` custom section;
    /// `Ok(None)` for a component without one (not made by `wasmflow compose`).
    pub fn from_component(bytes: &[u8]) -> Result<Option<Manifest>, ComposeError> {
        let invalid = ComposeError::InvalidComponent;
        let Some(data) = top_level_custom_section(bytes, MANIFEST_SECTION).map_err(invalid)? else {
            return Ok(None);
        };
        let manifest: Manifest = serde_json::from_slice(&data).map_err(|e| {
            invalid(format!(
                "its `{MANIFEST_SECTION}` section is not a wasmflow manifest: {e}"
            ))
        })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(invalid(format!(
                "its manifest has format {}, but this wasmflow reads format {MANIFEST_FORMAT}; recompose the graph with this version",
                manifest.format
            )));
        }
        Ok(Some(manifest))
    }

    /// The JSON written into the custom section.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain structs of strings, bools and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The `(key, value)` pairs operation `operation`'s `init` receives, with run-time
    /// `overrides` applied by the same rules as at compose time.
    pub fn configuration_for(
        &self,
        operation: &str,
        overrides: &[Override],
    ) -> Result<Vec<(String, String)>, ComposeError> {
        let targets = self
            .operations
            .iter()
            .map(|o| ConfigTarget::new(&o.name, o.kind, &o.parameters));
        resolve_configuration(&format!("graph `{}`", self.name), targets, operation, overrides)
    }

    /// [`configuration_for`](Self::configuration_for) every operation, in operation order, in
    /// time linear in the graph (calling it once per operation would be quadratic).
    pub fn configurations(&self, overrides: &[Override]) -> Result<Vec<Vec<(String, String)>>, ComposeError> {
        let file = format!("graph `{}`", self.name);
        let targets = self
            .operations
            .iter()
            .map(|o| ConfigTarget::new(&o.name, o.kind, &o.parameters));
        let resolver = ConfigResolver::new(&file, targets, overrides)?;
        self.operations.iter().map(|o| resolver.resolve(&o.name)).collect()
    }

    /// Looks an operation up by name.
    pub fn operation(&self, name: &str) -> Option<&ManifestOperation> {
        self.operations.iter().find(|o| o.name == name)
    }
}

/// Finds a custom section at the top level of a component or module (nested components and
/// modules are skipped, so a module's own sections are never mistaken for the graph's).
pub(crate) fn top_level_custom_section(bytes: &[u8], name: &str) -> Result<Option<Vec<u8>>, String> {
    if !bytes.starts_with(b"\0asm") {
        // wasmparser would say so too, with both magic numbers printed byte by byte.
        return Err("not a WebAssembly file (it does not start with `\\0asm`)".into());
    }
    let mut found = None;
    let mut depth = 0usize;
    // parse_all descends into nested modules and components; track how deep we are.
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| format!("not a readable WebAssembly component: {e}"))?;
        match payload {
            Payload::CustomSection(reader) if depth == 0 && reader.name() == name => {
                found = Some(reader.data().to_vec());
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(found)
}
