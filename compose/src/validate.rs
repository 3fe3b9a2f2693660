//! From YAML text to a [`ValidatedGraph`]: syntax, schema, then the semantic checks the schema
//! cannot express (unique names, known endpoints, branch arms, acyclicity, reachability, modules).
//!
//! Everything after this module may rely on the graph being well-formed: every connection names
//! existing operations, branches have both arms, the graph is a DAG reachable from its sources.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;

use crate::config::{resolve_configuration, ConfigTarget, Override, Parameter};
use crate::error::ComposeError;
use crate::model::{Arm, GraphDefinition, OperationKind};
use crate::naming::export_name;
use crate::schema;

// `Connection` was first defined here; this path keeps working.
pub use crate::model::Connection;

/// One operation of a validated graph, with everything later stages need.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// 0-based position in `operations`; fixes the export and import names.
    pub index: usize,
    /// The name from the YAML.
    pub name: String,
    /// Its operation type.
    pub kind: OperationKind,
    /// The module reference as written (None for source, sink and concatenate).
    pub module: Option<String>,
    /// The export name of its instance in the composed component, `op{i}-{slug}`
    /// ([`naming::export_name`](crate::naming::export_name)).
    pub export: String,
    /// The parameters declared for it in `moduleConfigurations`.
    pub parameters: Vec<Parameter>,
}

/// A graph definition that passed every check: safe to plan and compose.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedGraph {
    /// The file it was read from (module paths are relative to its directory).
    pub file: PathBuf,
    /// The document as parsed.
    pub definition: GraphDefinition,
    /// The operations, in document order.
    pub operations: Vec<Operation>,
    /// The connections, in document order.
    pub connections: Vec<Connection>,
    /// Things that are allowed but probably unintended (printed by the CLI, never fatal).
    pub warnings: Vec<String>,
}

impl ValidatedGraph {
    /// The graph file as it starts error messages.
    pub fn file_label(&self) -> String {
        self.file.display().to_string()
    }

    /// The directory relative module paths are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        match self.file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Looks an operation up by name.
    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.iter().find(|o| o.name == name)
    }

    /// The `(key, value)` pairs operation `operation`'s `init` receives, given `overrides`
    /// (see [`crate::config`] for the precedence rules). Fails when a `required` parameter has
    /// no value, or an override names an operation the graph lacks.
    pub fn configuration_for(
        &self,
        operation: &str,
        overrides: &[Override],
    ) -> Result<Vec<(String, String)>, ComposeError> {
        let targets = self
            .operations
            .iter()
            .map(|o| ConfigTarget::new(&o.name, o.kind, &o.parameters));
        resolve_configuration(&self.file_label(), targets, operation, overrides)
    }

    /// Whether `moduleRequirements.features` lists `name` (e.g. `wasi-nn`).
    pub fn has_feature(&self, name: &str) -> bool {
        self.definition
            .module_requirements
            .features
            .iter()
            .flatten()
            .any(|f| f.name == name)
    }
}

/// Reads, parses and validates a graph definition file.
pub fn load_graph(path: &Path) -> Result<ValidatedGraph, ComposeError> {
    let text = std::fs::read_to_string(path).map_err(|source| ComposeError::ReadGraph {
        file: path.display().to_string(),
        source,
    })?;
    parse_graph(path, &text)
}

/// Parses and validates graph text; `file` is used for messages and as the base of relative
/// module paths (it need not exist, which keeps tests free of files).
pub fn parse_graph(file: &Path, text: &str) -> Result<ValidatedGraph, ComposeError> {
    let label = file.display().to_string();
    let document = parse_yaml(&label, text)?;
    precheck(&label, &document)?;
    schema::validate_document(&label, &document)?;
    let definition: GraphDefinition = serde_json::from_value(document).map_err(|e| ComposeError::Schema {
        file: label.clone(),
        path: "the document".to_string(),
        message: e.to_string(),
    })?;
    check(file, definition)
}

/// YAML text → JSON value (what the schema speaks), with YAML merge keys applied.
fn parse_yaml(label: &str, text: &str) -> Result<Value, ComposeError> {
    let syntax = |e: serde_yaml_ng::Error| {
        let location = e.location().map(|l| (l.line(), l.column()));
        let mut message = e.to_string();
        if let Some((line, column)) = location {
            // The location starts the message already; do not repeat it.
            message = message.replacen(&format!(" at line {line} column {column}"), "", 1);
        }
        ComposeError::YamlSyntax {
            file: label.to_string(),
            location,
            message,
        }
    };
    let mut yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(syntax)?;
    yaml.apply_merge().map_err(syntax)?;
    serde_json::to_value(&yaml).map_err(|e| ComposeError::Schema {
        file: label.to_string(),
        path: "the document".to_string(),
        message: format!("cannot be read as JSON: {e}"),
    })
}

/// Checks the schema would also catch, but with a sharper message: an unknown `operationType`
/// names the operation and the accepted types; a bad arm names the connection.
fn precheck(label: &str, document: &Value) -> Result<(), ComposeError> {
    if let Some(ops) = document.get("operations").and_then(Value::as_array) {
        for (i, op) in ops.iter().enumerate() {
            if let Some(found) = op.get("operationType").and_then(Value::as_str) {
                if found.parse::<OperationKind>().is_err() {
                    let operation = op
                        .get("name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("operations[{i}]"));
                    return Err(ComposeError::UnknownOperationType {
                        file: label.to_string(),
                        operation,
                        found: found.to_string(),
                    });
                }
            }
        }
    }
    if let Some(conns) = document.get("connections").and_then(Value::as_array) {
        for (i, conn) in conns.iter().enumerate() {
            match conn.get("from").and_then(|f| f.get("arm")) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s == "True" || s == "False" => {}
                Some(other) => {
                    let name = |end: &str| {
                        conn.get(end)
                            .and_then(|e| e.get("name"))
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                            .to_string()
                    };
                    return Err(ComposeError::InvalidArm {
                        file: label.to_string(),
                        connection: describe_connection(i, &name("from"), &name("to")),
                        found: other.to_string(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// How messages name a connection: `connections[2] (`a` -> `b`)`.
pub(crate) fn describe_connection(index: usize, from: &str, to: &str) -> String {
    format!("connections[{index}] (`{from}` -> `{to}`)")
}

/// The semantic checks, in the order a user would fix them.
fn check(file: &Path, definition: GraphDefinition) -> Result<ValidatedGraph, ComposeError> {
    let label = file.display().to_string();
    let mut warnings = Vec::new();

    // Unique names.
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    for (i, op) in definition.operations.iter().enumerate() {
        if index_of.insert(op.name.as_str(), i).is_some() {
            return Err(ComposeError::DuplicateOperation {
                file: label,
                operation: op.name.clone(),
            });
        }
    }

    // Modules: operators need one, plumbing takes none.
    for op in &definition.operations {
        let module = op.module.as_deref().map(str::trim).filter(|m| !m.is_empty());
        match (op.operation_type.is_plumbing(), module) {
            (false, None) => {
                return Err(ComposeError::MissingModule {
                    file: label,
                    operation: op.name.clone(),
                    kind: op.operation_type,
                })
            }
            (true, Some(m)) => {
                return Err(ComposeError::UnexpectedModule {
                    file: label,
                    operation: op.name.clone(),
                    kind: op.operation_type,
                    module: m.to_string(),
                })
            }
            _ => {}
        }
    }

    // At least one source and one sink.
    for kind in [OperationKind::Source, OperationKind::Sink] {
        if !definition.operations.iter().any(|o| o.operation_type == kind) {
            return Err(ComposeError::MissingEndpoint { file: label, kind });
        }
    }

    // Connections: endpoints, arms, direction.
    let kind_of = |name: &str| index_of.get(name).map(|&i| definition.operations[i].operation_type);
    let mut connections = Vec::with_capacity(definition.connections.len());
    for (i, c) in definition.connections.iter().enumerate() {
        let (from, to) = (c.from.name.as_str(), c.to.name.as_str());
        let described = describe_connection(i, from, to);
        let unknown = |end: &'static str, operation: &str| ComposeError::UnknownConnectionEndpoint {
            file: label.clone(),
            connection: described.clone(),
            end,
            operation: operation.to_string(),
        };
        let from_kind = kind_of(from).ok_or_else(|| unknown("from", from))?;
        let to_kind = kind_of(to).ok_or_else(|| unknown("to", to))?;
        match (from_kind, c.from.arm) {
            (OperationKind::Branch, None) => {
                return Err(ComposeError::BranchConnectionWithoutArm {
                    file: label.clone(),
                    connection: described,
                    operation: from.to_string(),
                })
            }
            (OperationKind::Branch, Some(_)) | (_, None) => {}
            (kind, Some(arm)) => {
                return Err(ComposeError::ArmOnNonBranch {
                    file: label.clone(),
                    connection: described,
                    operation: from.to_string(),
                    kind,
                    arm,
                })
            }
        }
        if from_kind == OperationKind::Sink {
            return Err(ComposeError::EndpointMisconnected {
                file: label.clone(),
                connection: described,
                direction: "out of",
                kind: from_kind,
                operation: from.to_string(),
                side: "output",
            });
        }
        if to_kind == OperationKind::Source {
            return Err(ComposeError::EndpointMisconnected {
                file: label.clone(),
                connection: described,
                direction: "into",
                kind: to_kind,
                operation: to.to_string(),
                side: "input",
            });
        }
        let connection = Connection {
            from: from.to_string(),
            arm: c.from.arm,
            to: to.to_string(),
        };
        if connections.contains(&connection) {
            warnings.push(format!(
                "{label}: {described} repeats an earlier connection; items will be delivered twice"
            ));
        }
        connections.push(connection);
    }

    // Branches need both arms.
    for op in definition
        .operations
        .iter()
        .filter(|o| o.operation_type == OperationKind::Branch)
    {
        for arm in [Arm::True, Arm::False] {
            if !connections.iter().any(|c| c.from == op.name && c.arm == Some(arm)) {
                return Err(ComposeError::BranchMissingArm {
                    file: label,
                    operation: op.name.clone(),
                    arm,
                });
            }
        }
    }

    // Acyclic.
    let mut graph: DiGraph<usize, ()> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..definition.operations.len()).map(|i| graph.add_node(i)).collect();
    for c in &connections {
        graph.update_edge(nodes[index_of[c.from.as_str()]], nodes[index_of[c.to.as_str()]], ());
    }
    if let Some(cycle) = find_cycle(&graph) {
        return Err(ComposeError::Cycle {
            file: label,
            operations: cycle
                .into_iter()
                .map(|i| definition.operations[i].name.clone())
                .collect(),
        });
    }

    // Reachable from a source.
    let mut reached = vec![false; definition.operations.len()];
    let mut queue: VecDeque<usize> = definition
        .operations
        .iter()
        .enumerate()
        .filter(|(_, o)| o.operation_type == OperationKind::Source)
        .map(|(i, _)| i)
        .collect();
    while let Some(i) = queue.pop_front() {
        if std::mem::replace(&mut reached[i], true) {
            continue;
        }
        queue.extend(graph.neighbors(nodes[i]).map(|n| graph[n]));
    }
    if let Some(i) = reached.iter().position(|r| !r) {
        return Err(ComposeError::Unreachable {
            file: label,
            operation: definition.operations[i].name.clone(),
        });
    }

    // Allowed but suspicious.
    for op in &definition.operations {
        if op.operation_type != OperationKind::Sink && !connections.iter().any(|c| c.from == op.name) {
            warnings.push(format!(
                "{label}: operation `{}` has no outgoing connection; its output is discarded",
                op.name
            ));
        }
    }
    for cfg in &definition.module_configurations {
        if !index_of.contains_key(cfg.name.as_str()) {
            warnings.push(format!(
                "{label}: moduleConfigurations names `{}`, which is not an operation of the graph; its parameters are ignored",
                cfg.name
            ));
        }
    }

    // Operations with their parameters (several configuration entries for one operation merge,
    // later keys winning).
    let operations = definition
        .operations
        .iter()
        .enumerate()
        .map(|(index, op)| {
            let mut parameters: Vec<Parameter> = Vec::new();
            for cfg in definition.module_configurations.iter().filter(|c| c.name == op.name) {
                for (key, p) in &cfg.parameters {
                    let param = Parameter {
                        key: key.clone(),
                        description: p.description.clone(),
                        required: p.required,
                        default: p.default.clone(),
                    };
                    match parameters.iter_mut().find(|q| q.key == *key) {
                        Some(slot) => *slot = param,
                        None => parameters.push(param),
                    }
                }
            }
            Operation {
                index,
                name: op.name.clone(),
                kind: op.operation_type,
                module: op
                    .module
                    .as_deref()
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string),
                export: export_name(index, &op.name),
                parameters,
            }
        })
        .collect();

    Ok(ValidatedGraph {
        file: file.to_path_buf(),
        definition,
        operations,
        connections,
        warnings,
    })
}

/// Finds one cycle and returns its node weights in flow order, starting at the lowest index.
fn find_cycle(graph: &DiGraph<usize, ()>) -> Option<Vec<usize>> {
    let mut cycles: Vec<Vec<NodeIndex>> = petgraph::algo::tarjan_scc(graph)
        .into_iter()
        .filter(|scc| scc.len() > 1 || graph.contains_edge(scc[0], scc[0]))
        .collect();
    cycles.sort_by_key(|scc| scc.iter().map(|n| graph[*n]).min());
    let scc = cycles.into_iter().next()?;
    let members: HashSet<NodeIndex> = scc.iter().copied().collect();
    let start = *scc.iter().min_by_key(|n| graph[**n])?;
    // Breadth-first search inside the component for the shortest way back to `start`.
    let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    let mut seen = HashSet::from([start]);
    while let Some(n) = queue.pop_front() {
        let mut next: Vec<NodeIndex> = graph.neighbors(n).filter(|m| members.contains(m)).collect();
        next.sort_by_key(|m| graph[*m]);
        for m in next {
            if m == start {
                let mut path = vec![n];
                let mut cur = n;
                while let Some(&p) = parent.get(&cur) {
                    path.push(p);
                    cur = p;
                }
                path.reverse();
                return Some(path.into_iter().map(|n| graph[n]).collect());
            }
            if seen.insert(m) {
                parent.insert(m, n);
                queue.push_back(m);
            }
        }
    }
    Some(vec![graph[start]])
}
