//! Serde types of the graph definition YAML (Azure IoT Operations `aio-wasm-graph-config-1.0.0`).
//!
//! These mirror the document as written, so that a graph made for the platform loads unchanged.
//! Fields the schema leaves open (extra keys in parameters, module configurations and schemas)
//! are tolerated: the JSON schema check (module `schema`) runs first and decides what is
//! rejected, these types never add `deny_unknown_fields`.
//!
//! [`Connection`], the edge of a graph as validation produces it and the manifest records it,
//! lives here too, so that later stages share it without depending on each other.

use std::fmt;
use std::str::FromStr;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The whole graph definition document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphDefinition {
    /// Name, version and description of the graph.
    pub metadata: Metadata,
    /// Versions and features the graph's modules need from the runtime.
    pub module_requirements: ModuleRequirements,
    /// Parameters for each operation, keyed by operation name.
    #[serde(default)]
    pub module_configurations: Vec<ModuleConfiguration>,
    /// The nodes of the graph, in the order that fixes their export index.
    pub operations: Vec<OperationDefinition>,
    /// The edges of the graph.
    pub connections: Vec<ConnectionDefinition>,
    /// Message schemas the graph's operations refer to.
    #[serde(default)]
    pub schemas: Vec<SchemaDefinition>,
}

/// `metadata`: identifies the graph for humans and registries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// The JSON schema URL the document claims to follow.
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
    /// The graph's name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Who publishes it.
    #[serde(default)]
    pub vendor: Option<String>,
    /// The graph's own version.
    #[serde(default)]
    pub version: Option<String>,
}

/// `moduleRequirements`: the operator API and runtime version, and optional features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleRequirements {
    /// Operator API version, `1.1.0` for `wasm-graph:processor@1.1.0`.
    pub api_version: String,
    /// Runtime version the graph was written for.
    pub runtime_version: String,
    /// Optional features such as `wasi-nn`.
    #[serde(default)]
    pub features: Option<Vec<Feature>>,
}

/// One entry of `moduleRequirements.features`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// Feature name, e.g. `wasi-nn`.
    pub name: String,
    /// Optional value.
    #[serde(default)]
    pub value: Option<String>,
}

/// One entry of `moduleConfigurations`: the parameters of the operation of the same name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleConfiguration {
    /// The operation these parameters belong to.
    pub name: String,
    /// Parameter definitions; the map key is what the module's `init` receives.
    #[serde(default)]
    pub parameters: IndexMap<String, ParameterDefinition>,
}

/// A parameter definition under `moduleConfigurations[].parameters.<key>`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ParameterDefinition {
    /// Display name (informational: the map key is what reaches `init`).
    #[serde(default)]
    pub name: Option<String>,
    /// Free text shown by `wasmflow inspect`.
    #[serde(default)]
    pub description: Option<String>,
    /// When true, the graph does not start unless a value is known.
    #[serde(default)]
    pub required: bool,
    /// Value used when no override is given.
    #[serde(default)]
    pub default: Option<String>,
}

/// One entry of `operations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationDefinition {
    /// What the operation does; picks the interface its module must export.
    pub operation_type: OperationKind,
    /// Unique name, used by connections and module configurations.
    pub name: String,
    /// Module reference (OCI reference or path); none for source, sink and concatenate.
    #[serde(default)]
    pub module: Option<String>,
}

/// One entry of `connections`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionDefinition {
    /// The producing operation (and arm, for a branch).
    pub from: ConnectionFrom,
    /// The consuming operation.
    pub to: ConnectionTo,
}

/// `connections[].from`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionFrom {
    /// Operation name.
    pub name: String,
    /// Which arm of a branch this connection leaves from.
    #[serde(default)]
    pub arm: Option<Arm>,
    /// Name of a schema from `schemas` describing the items on this connection.
    #[serde(default)]
    pub schema_name: Option<String>,
}

/// `connections[].to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionTo {
    /// Operation name.
    pub name: String,
}

/// A directed edge of the graph, as the host routes items: from `from` (leaving by `arm` for a
/// branch) to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Connection {
    /// The producing operation's name.
    pub from: String,
    /// For connections leaving a branch, which arm.
    #[serde(default)]
    pub arm: Option<Arm>,
    /// The consuming operation's name.
    pub to: String,
}

/// One entry of `schemas`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaDefinition {
    /// Name connections refer to.
    pub name: String,
    /// Schema format / content type, e.g. `Delta/1.0`.
    pub format: String,
    /// The schema text.
    pub schema: String,
}

/// The eight operation types of the platform.
///
/// Serialized lowercase, as in the YAML and the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    /// Entry of the graph (wasmflow plumbing `wasmflow:graph/source`).
    Source,
    /// One in, one out (`wasm-graph:processor/map`).
    Map,
    /// Passes or drops (`wasm-graph:processor/filter`).
    Filter,
    /// Routes to arm "True" or "False" (`wasm-graph:processor/branch`).
    Branch,
    /// Folds the items sharing a timestamp (`wasm-graph:processor/accumulate`).
    Accumulate,
    /// Moves an item's timestamp forward (`wasm-graph:processor/delay`).
    Delay,
    /// Merges inputs in time order (wasmflow plumbing `wasmflow:graph/concatenate`).
    Concatenate,
    /// Exit of the graph (wasmflow plumbing `wasmflow:graph/sink`).
    Sink,
}

impl OperationKind {
    /// All kinds, in the order the schema lists them.
    pub const ALL: [OperationKind; 8] = [
        OperationKind::Source,
        OperationKind::Map,
        OperationKind::Filter,
        OperationKind::Branch,
        OperationKind::Concatenate,
        OperationKind::Accumulate,
        OperationKind::Delay,
        OperationKind::Sink,
    ];

    /// The name used in YAML (`operationType`) and in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Source => "source",
            OperationKind::Map => "map",
            OperationKind::Filter => "filter",
            OperationKind::Branch => "branch",
            OperationKind::Accumulate => "accumulate",
            OperationKind::Delay => "delay",
            OperationKind::Concatenate => "concatenate",
            OperationKind::Sink => "sink",
        }
    }

    /// True for the kinds wasmflow provides itself (source, sink, concatenate): they take no
    /// module and are instances of the plumbing components.
    pub fn is_plumbing(self) -> bool {
        matches!(
            self,
            OperationKind::Source | OperationKind::Sink | OperationKind::Concatenate
        )
    }

    /// The fully qualified interface an instance of this kind exports, e.g.
    /// `wasm-graph:processor/map@1.1.0` or `wasmflow:graph/source@0.1.0` (component-level
    /// names carry no `%`).
    pub fn interface(self) -> &'static str {
        match self {
            OperationKind::Source => "wasmflow:graph/source@0.1.0",
            OperationKind::Sink => "wasmflow:graph/sink@0.1.0",
            OperationKind::Concatenate => "wasmflow:graph/concatenate@0.1.0",
            OperationKind::Map => "wasm-graph:processor/map@1.1.0",
            OperationKind::Filter => "wasm-graph:processor/filter@1.1.0",
            OperationKind::Branch => "wasm-graph:processor/branch@1.1.0",
            OperationKind::Accumulate => "wasm-graph:processor/accumulate@1.1.0",
            OperationKind::Delay => "wasm-graph:processor/delay@1.1.0",
        }
    }

    /// For plumbing kinds, the file name of the component that implements them.
    pub fn plumbing_component(self) -> Option<&'static str> {
        match self {
            OperationKind::Source => Some("wasmflow-source.wasm"),
            OperationKind::Sink => Some("wasmflow-sink.wasm"),
            OperationKind::Concatenate => Some("wasmflow-concatenate.wasm"),
            _ => None,
        }
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OperationKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OperationKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown operationType `{s}`"))
    }
}

/// The two outputs of a branch: `false` → "False", `true` → "True".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Arm {
    /// Taken when the branch's `process` returns `false`.
    False,
    /// Taken when the branch's `process` returns `true`.
    True,
}

impl Arm {
    /// The arm a branch result selects.
    pub fn from_result(value: bool) -> Arm {
        if value {
            Arm::True
        } else {
            Arm::False
        }
    }

    /// `"True"` or `"False"`, as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::False => "False",
            Arm::True => "True",
        }
    }
}

impl fmt::Display for Arm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
