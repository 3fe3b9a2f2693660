//! From YAML text to a [`ValidatedGraph`]: syntax, schema, then the semantic checks the schema
//! cannot express (unique names, known endpoints, branch arms, acyclicity, reachability, modules).
//!
//! Everything after this module may rely on the graph being well-formed: every connection names
//! existing operations, branches have both arms, the graph is a DAG reachable from its sources.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;

use crate::aliases::{self, Expansion};
use crate::config::{resolve_configuration, ConfigResolver, ConfigTarget, Override, Parameter};
use crate::error::ComposeError;
use crate::limits::{nesting, Limits};
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

    /// [`configuration_for`](Self::configuration_for) every operation, in operation order, in
    /// time linear in the graph (calling it once per operation would be quadratic).
    pub fn configurations(&self, overrides: &[Override]) -> Result<Vec<Vec<(String, String)>>, ComposeError> {
        let file = self.file_label();
        let targets = self
            .operations
            .iter()
            .map(|o| ConfigTarget::new(&o.name, o.kind, &o.parameters));
        let resolver = ConfigResolver::new(&file, targets, overrides)?;
        self.operations.iter().map(|o| resolver.resolve(&o.name)).collect()
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

/// Reads, parses and validates a graph definition file, within [`Limits::DEFAULT`].
pub fn load_graph(path: &Path) -> Result<ValidatedGraph, ComposeError> {
    load_graph_with(path, &Limits::DEFAULT)
}

/// [`load_graph`] within `limits`: a file larger than [`Limits::max_document_bytes`] is refused
/// from its metadata, before it is read, and reading stops past the limit (for files whose size
/// the metadata does not tell, such as pipes).
pub fn load_graph_with(path: &Path, limits: &Limits) -> Result<ValidatedGraph, ComposeError> {
    let text = read_graph_text(path, limits)?;
    parse_graph_with(path, &text, limits)
}

/// The text of the graph definition at `path`, refused past [`Limits::max_document_bytes`]
/// before it is read (from its metadata) or while it is read (pipes, files that grew).
pub(crate) fn read_graph_text(path: &Path, limits: &Limits) -> Result<String, ComposeError> {
    let file = path.display().to_string();
    let read_error = |error| ComposeError::ReadGraph {
        file: file.clone(),
        error,
    };
    let too_large = |size| ComposeError::DocumentTooLarge {
        file: file.clone(),
        size,
        limit: limits.max_document_bytes,
    };
    let handle = std::fs::File::open(path).map_err(read_error)?;
    let metadata = handle.metadata().map_err(read_error)?;
    if metadata.is_file() && metadata.len() > limits.max_document_bytes as u64 {
        return Err(too_large(Some(metadata.len())));
    }
    let mut text = String::new();
    handle
        .take((limits.max_document_bytes as u64).saturating_add(1))
        .read_to_string(&mut text)
        .map_err(read_error)?;
    if text.len() > limits.max_document_bytes {
        // Not a regular file, or one that grew since its metadata was read: its size is unknown.
        return Err(too_large(None));
    }
    Ok(text)
}

/// Parses and validates graph text within [`Limits::DEFAULT`]; `file` is used for messages and as
/// the base of relative module paths (it need not exist, which keeps tests free of files).
pub fn parse_graph(file: &Path, text: &str) -> Result<ValidatedGraph, ComposeError> {
    parse_graph_with(file, text, &Limits::DEFAULT)
}

/// [`parse_graph`] within `limits`, each checked before the work it bounds: the size of `text`,
/// then its nesting (a linear scan, before the YAML parser), then what its aliases expand to (a
/// replay that builds nothing), then the number of operations (right after parsing, before the
/// schema and the semantic checks).
pub fn parse_graph_with(file: &Path, text: &str, limits: &Limits) -> Result<ValidatedGraph, ComposeError> {
    let label = file.display().to_string();
    if text.len() > limits.max_document_bytes {
        return Err(ComposeError::DocumentTooLarge {
            file: label,
            size: Some(text.len() as u64),
            limit: limits.max_document_bytes,
        });
    }
    let depth = nesting(text, limits.max_nesting_depth);
    if let Some((line, column)) = depth.first_over {
        return Err(ComposeError::NestingTooDeep {
            file: label,
            line,
            column,
            depth: depth.max,
            limit: limits.max_nesting_depth,
        });
    }
    // Only an alias (`*name`) makes the document larger or deeper than its text.
    if text.contains('*') {
        match aliases::measure(text, limits.max_nesting_depth) {
            None => {}
            Some(Expansion::TooLarge { limit }) => return Err(ComposeError::AliasExpansion { file: label, limit }),
            Some(Expansion::TooDeep { limit }) => return Err(ComposeError::AliasNesting { file: label, limit }),
        }
    }
    let document = parse_yaml(&label, text)?;
    if let Some(count) = document.get("operations").and_then(Value::as_array).map(Vec::len) {
        if count > limits.max_operations {
            return Err(ComposeError::TooManyOperations {
                file: label,
                count,
                limit: limits.max_operations,
            });
        }
    }
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

/// Checks the schema would also catch, but with a sharper message: a definition in the
/// public preview's form says what to change; an unknown `operationType` names the operation
/// and the accepted types; a bad arm names the connection.
fn precheck(label: &str, document: &Value) -> Result<(), ComposeError> {
    let requirements = document.get("moduleRequirements");
    if let Some(hostlib) = requirements.and_then(|r| r.get("hostlibVersion")) {
        let as_written = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
        return Err(ComposeError::PreviewDefinition {
            file: label.to_string(),
            hostlib_version: as_written(hostlib),
            api_version: requirements.and_then(|r| r.get("apiVersion")).map(as_written),
        });
    }
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
    // Sets, not scans of `connections`: each check stays linear in the size of the graph.
    let mut seen: HashSet<(&str, Option<Arm>, &str)> = HashSet::with_capacity(definition.connections.len());
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
        if !seen.insert((from, c.from.arm, to)) {
            warnings.push(format!(
                "{label}: {described} repeats an earlier connection; items will be delivered twice"
            ));
        }
        connections.push(connection);
    }

    // Branches need both arms.
    let arms: HashSet<(&str, Option<Arm>)> = seen.iter().map(|&(from, arm, _)| (from, arm)).collect();
    for op in definition
        .operations
        .iter()
        .filter(|o| o.operation_type == OperationKind::Branch)
    {
        for arm in [Arm::True, Arm::False] {
            if !arms.contains(&(op.name.as_str(), Some(arm))) {
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
    // One edge per pair of operations (`update_edge` would scan the edges of `from` each time).
    let mut edges: HashSet<(usize, usize)> = HashSet::with_capacity(connections.len());
    for c in &connections {
        let (from, to) = (index_of[c.from.as_str()], index_of[c.to.as_str()]);
        if edges.insert((from, to)) {
            graph.add_edge(nodes[from], nodes[to], ());
        }
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
    let producers: HashSet<&str> = seen.iter().map(|&(from, _, _)| from).collect();
    for op in &definition.operations {
        if op.operation_type != OperationKind::Sink && !producers.contains(op.name.as_str()) {
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
    // later keys winning, in the place of their first occurrence).
    let mut configured: HashMap<&str, IndexMap<&str, Parameter>> = HashMap::new();
    for cfg in &definition.module_configurations {
        let parameters = configured.entry(cfg.name.as_str()).or_default();
        for (key, p) in &cfg.parameters {
            parameters.insert(
                key.as_str(),
                Parameter {
                    key: key.clone(),
                    description: p.description.clone(),
                    required: p.required,
                    default: p.default.clone(),
                },
            );
        }
    }
    let operations = definition
        .operations
        .iter()
        .enumerate()
        .map(|(index, op)| {
            let parameters: Vec<Parameter> = configured
                .remove(op.name.as_str())
                .map(|p| p.into_values().collect())
                .unwrap_or_default();
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
///
/// Every walk here is iterative, so no graph can overflow the stack: petgraph's `kosaraju_scc`
/// runs on explicit stacks (its `tarjan_scc` recurses once per node of a path, and a chain of
/// 20,000 operations overflowed the 8 MiB main thread), and the search for the cycle is a
/// breadth-first queue.
fn find_cycle(graph: &DiGraph<usize, ()>) -> Option<Vec<usize>> {
    let mut cycles: Vec<Vec<NodeIndex>> = petgraph::algo::kosaraju_scc(graph)
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
