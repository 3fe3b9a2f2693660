//! The one error type of the graph compiler.
//!
//! Every message is one sentence that starts with the graph file (or, for a composed component,
//! the graph's name) and names the operation or connection at fault, so that the CLI can print
//! it as it is and a user knows where to look without a backtrace.

use std::path::PathBuf;

use crate::model::{Arm, OperationKind};

/// Everything that can go wrong between reading a graph definition and holding composed bytes.
///
/// The `file` field of each variant is the text that starts the message: the graph file's path
/// as the caller gave it, or ``graph `NAME` `` for a composed component.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// The graph file could not be read from disk.
    #[error("{file}: cannot read the graph definition: {error}")]
    ReadGraph {
        /// The graph file.
        file: String,
        /// The I/O error (part of the message, not a `source`: printed once).
        error: std::io::Error,
    },

    /// The graph definition is larger than [`Limits::max_document_bytes`](crate::Limits): it is
    /// refused before it is read or parsed.
    #[error("{file}: the graph definition {} (max_document_bytes); graph definitions are a few kilobytes, so check that this is the right file, or raise the limit if it is", fmt_size(*.size, *.limit))]
    DocumentTooLarge {
        /// The graph file.
        file: String,
        /// Its size in bytes; `None` when it is not a regular file and reading stopped past the
        /// limit.
        size: Option<u64>,
        /// The limit it exceeds.
        limit: usize,
    },

    /// The graph definition nests collections deeper than
    /// [`Limits::max_nesting_depth`](crate::Limits): found by a scan of the text, before the
    /// YAML parser runs.
    #[error("{file}:{line}:{column}: the document nests deeper than the limit of {limit} levels here, {depth} levels at its deepest (max_nesting_depth); graph definitions nest 5 levels")]
    NestingTooDeep {
        /// The graph file.
        file: String,
        /// 1-based line of the collection that first goes past the limit.
        line: usize,
        /// 1-based column of it.
        column: usize,
        /// The deepest nesting in the document.
        depth: usize,
        /// The limit it exceeds.
        limit: usize,
    },

    /// YAML aliases expand the graph definition to more nodes than its text has bytes, which
    /// no document without aliases can hold: measured by replaying the document before it is
    /// built (compose/src/aliases.rs), since building it could take gigabytes.
    #[error("{file}: YAML aliases expand the document to more than {limit} nodes, one per byte of its text, which a graph definition never needs; write the repeated parts out")]
    AliasExpansion {
        /// The graph file.
        file: String,
        /// The bound: one node per byte of the text, plus one.
        limit: usize,
    },

    /// YAML aliases nest the graph definition deeper than
    /// [`Limits::max_nesting_depth`](crate::Limits), which the scan of the text cannot see (an
    /// alias is one token there).
    #[error("{file}: YAML aliases nest the document deeper than the limit of {limit} levels (max_nesting_depth); graph definitions nest 5 levels")]
    AliasNesting {
        /// The graph file.
        file: String,
        /// The limit it exceeds.
        limit: usize,
    },

    /// The graph lists more operations than [`Limits::max_operations`](crate::Limits): refused
    /// right after parsing, before any check or plan walks the operations.
    #[error("{file}: the graph has {count} operations, more than the limit of {limit} (max_operations), which keeps a composed graph within what the host instantiates; split the graph, or raise the limit (`--max-operations`) for a host configured for larger graphs")]
    TooManyOperations {
        /// The graph file.
        file: String,
        /// The number of entries of `operations`.
        count: usize,
        /// The limit it exceeds.
        limit: usize,
    },

    /// The composed component would hold more instances than a WebAssembly component may
    /// ([`MAX_COMPONENT_INSTANCES`](crate::limits::MAX_COMPONENT_INSTANCES)); found while
    /// planning, before encoding.
    #[error("{file}: the composed component would hold {count} instances ({imports} imported interfaces, then for each of the {operations} operations its instantiation, the alias of its interface and the export), more than the {limit} a WebAssembly component may hold; split the graph")]
    TooManyInstances {
        /// The graph file.
        file: String,
        /// The instances the component would hold.
        count: usize,
        /// How many of them are imports.
        imports: usize,
        /// The graph's operations.
        operations: usize,
        /// The limit ([`MAX_COMPONENT_INSTANCES`](crate::limits::MAX_COMPONENT_INSTANCES)).
        limit: usize,
    },

    /// The graph file is not well-formed YAML.
    #[error("{file}{}: YAML syntax error: {message}", fmt_location(*.location))]
    YamlSyntax {
        /// The graph file.
        file: String,
        /// 1-based line and column of the error, when the parser knows it.
        location: Option<(usize, usize)>,
        /// The parser's description.
        message: String,
    },

    /// The graph is YAML but does not match the published JSON schema.
    #[error("{file}: {path} does not match the graph schema (aio-wasm-graph-config-1.0.0): {message}")]
    Schema {
        /// The graph file.
        file: String,
        /// Where in the document, e.g. `operations[1].operationType (operation `x`)`.
        path: String,
        /// What is wrong there.
        message: String,
    },

    /// Two operations share a name, so connections and configurations would be ambiguous.
    #[error("{file}: operation `{operation}` is defined more than once; operation names must be unique")]
    DuplicateOperation {
        /// The graph file.
        file: String,
        /// The repeated name.
        operation: String,
    },

    /// An operation's `operationType` is not one of the eight the platform defines.
    #[error("{file}: operation `{operation}` has unknown operationType `{found}`; expected one of source, map, filter, branch, accumulate, delay, concatenate, sink")]
    UnknownOperationType {
        /// The graph file.
        file: String,
        /// The operation's name.
        operation: String,
        /// The value written in the file.
        found: String,
    },

    /// A connection names an operation the graph does not define.
    #[error("{file}: {connection} refers to unknown operation `{operation}` in its `{end}` end; the graph defines no operation of that name")]
    UnknownConnectionEndpoint {
        /// The graph file.
        file: String,
        /// The connection, e.g. `connections[2] (`a` -> `b`)`.
        connection: String,
        /// `from` or `to`.
        end: &'static str,
        /// The unknown name.
        operation: String,
    },

    /// The connections form a cycle; component instantiation (and event time) need a DAG.
    #[error("{file}: the connections form a cycle through {}; a graph must be acyclic", fmt_cycle(.operations))]
    Cycle {
        /// The graph file.
        file: String,
        /// The operations on the cycle, in flow order (the first is not repeated).
        operations: Vec<String>,
    },

    /// A branch has no connection for one of its two arms, so its items would vanish.
    #[error("{file}: branch operation `{operation}` has no connection for arm \"{arm}\"; a branch needs connections for both arms \"True\" and \"False\"")]
    BranchMissingArm {
        /// The graph file.
        file: String,
        /// The branch.
        operation: String,
        /// The arm without a connection.
        arm: Arm,
    },

    /// A connection from a branch does not say which arm it leaves from.
    #[error("{file}: {connection} leaves branch operation `{operation}` without an `arm`; say arm: \"True\" or arm: \"False\"")]
    BranchConnectionWithoutArm {
        /// The graph file.
        file: String,
        /// The connection.
        connection: String,
        /// The branch.
        operation: String,
    },

    /// A connection from an operation that is not a branch carries an arm.
    #[error("{file}: {connection} has arm \"{arm}\", but `{operation}` is a {kind} operation; only connections from a branch take an arm")]
    ArmOnNonBranch {
        /// The graph file.
        file: String,
        /// The connection.
        connection: String,
        /// The `from` operation.
        operation: String,
        /// Its type.
        kind: OperationKind,
        /// The arm written.
        arm: Arm,
    },

    /// A definition in the form of the platform's public preview (`ConfigGraph`: no
    /// `metadata`, `moduleRequirements.hostlibVersion`), which the published schema no longer
    /// accepts: said as what to change, not as the schema's first complaint.
    #[error("{file}: this graph definition is in the form of the platform's public preview (`moduleRequirements.hostlibVersion: {hostlib_version}`{}); wasmflow runs the current form (aio-wasm-graph-config-1.0.0): add `metadata` ($schema, name, version), write `runtimeVersion` for `hostlibVersion`, and give apiVersion and runtimeVersion \"1.1.0\" with modules built against wasm-graph:processor@1.1.0", fmt_api_version(.api_version))]
    PreviewDefinition {
        /// The graph file.
        file: String,
        /// `moduleRequirements.hostlibVersion` as written.
        hostlib_version: String,
        /// `moduleRequirements.apiVersion` as written, when there is one.
        api_version: Option<String>,
    },

    /// An arm value other than the strings "True" and "False".
    #[error("{file}: {connection} has arm {found}; an arm is the string \"True\" or \"False\" (quoted, so YAML keeps it a string)")]
    InvalidArm {
        /// The graph file.
        file: String,
        /// The connection.
        connection: String,
        /// The value as written (rendered as JSON).
        found: String,
    },

    /// An operation that no item can ever reach.
    #[error("{file}: operation `{operation}` cannot be reached from any source; connect it or remove it")]
    Unreachable {
        /// The graph file.
        file: String,
        /// The operation.
        operation: String,
    },

    /// The graph has no operation of type `source` (or `sink`).
    #[error("{file}: the graph has no {kind} operation; it needs at least one (operationType: {kind})")]
    MissingEndpoint {
        /// The graph file.
        file: String,
        /// [`OperationKind::Source`] or [`OperationKind::Sink`].
        kind: OperationKind,
    },

    /// A connection goes into a source or out of a sink.
    #[error("{file}: {connection} goes {direction} {kind} operation `{operation}`, which has no {side}")]
    EndpointMisconnected {
        /// The graph file.
        file: String,
        /// The connection.
        connection: String,
        /// `into` or `out of`.
        direction: &'static str,
        /// source or sink.
        kind: OperationKind,
        /// The operation.
        operation: String,
        /// `input` or `output`.
        side: &'static str,
    },

    /// An operator operation without a `module`.
    #[error("{file}: {kind} operation `{operation}` has no `module`; every operation except source, sink and concatenate names the module that implements it")]
    MissingModule {
        /// The graph file.
        file: String,
        /// The operation.
        operation: String,
        /// Its type.
        kind: OperationKind,
    },

    /// A source, sink or concatenate operation that names a module, which would be ignored.
    #[error("{file}: {kind} operation `{operation}` names module `{module}`, but source, sink and concatenate operations are provided by wasmflow and take no module")]
    UnexpectedModule {
        /// The graph file.
        file: String,
        /// The operation.
        operation: String,
        /// Its type.
        kind: OperationKind,
        /// The reference written.
        module: String,
    },

    /// A module reference resolves to no file on this machine.
    #[error("{file}: module `{module}` (reference `{reference}`, operation `{operation}`) is not found locally: {}; build it into a modules directory or pass --modules DIR (or --registry HOST to pull it)", fmt_searched(&format!("{module}.wasm"), .searched, .direct.as_ref()))]
    ModuleNotFound {
        /// The graph file.
        file: String,
        /// The module's name (last path segment of the reference, without tag or digest).
        module: String,
        /// The reference as written in the graph.
        reference: String,
        /// The first operation that uses it.
        operation: String,
        /// The modules directories searched, in order.
        searched: Vec<PathBuf>,
        /// The path tried when the reference looked like a file path.
        direct: Option<PathBuf>,
    },

    /// A wasmflow plumbing component (source, sink, concatenate) is not built.
    #[error("{file}: plumbing component `{component}` for {kind} operation `{operation}` is not found: {}; run scripts/build-components.sh to build it", fmt_searched(.component, .searched, None))]
    PlumbingNotFound {
        /// The graph file.
        file: String,
        /// The file name looked for, e.g. `wasmflow-source.wasm`.
        component: String,
        /// The first operation that needs it.
        operation: String,
        /// Its type.
        kind: OperationKind,
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
    },

    /// A module file exists but cannot be read.
    #[error("{file}: cannot read module `{reference}` for operation `{operation}` from {}: {error}", .path.display())]
    ReadModule {
        /// The graph file.
        file: String,
        /// The reference.
        reference: String,
        /// The operation.
        operation: String,
        /// The file.
        path: PathBuf,
        /// The I/O error (part of the message, not a `source`: printed once).
        error: std::io::Error,
    },

    /// A module file is not a valid WebAssembly component.
    #[error("{file}: module `{reference}` ({}) used by operation `{operation}` is not a valid WebAssembly component: {message}", .path.display())]
    InvalidModule {
        /// The graph file.
        file: String,
        /// The reference.
        reference: String,
        /// The operation.
        operation: String,
        /// The file.
        path: PathBuf,
        /// The parser's description.
        message: String,
    },

    /// A module does not export the interface the operation's type needs.
    #[error("{file}: operation `{operation}` is a {kind}, but module `{reference}` ({}) does not export `{needed}`; it exports {}", .path.display(), fmt_list(.found))]
    MissingExport {
        /// The graph file.
        file: String,
        /// The operation.
        operation: String,
        /// Its type.
        kind: OperationKind,
        /// The module reference.
        reference: String,
        /// The module file.
        path: PathBuf,
        /// The export the operation needs.
        needed: String,
        /// What the module exports.
        found: Vec<String>,
    },

    /// A module built against a version of the operator WIT that wasmflow does not run.
    #[error("{file}: module `{reference}` ({}) used by {kind} operation `{operation}` is built against `{found}`, which wasmflow does not support; rebuild it against wasm-graph:processor@1.1.0 so it exports `{needed}`", .path.display())]
    UnsupportedWitVersion {
        /// The graph file.
        file: String,
        /// The operation.
        operation: String,
        /// Its type.
        kind: OperationKind,
        /// The module reference.
        reference: String,
        /// The module file.
        path: PathBuf,
        /// The package and version found, e.g. `tinykube-graph:processor@1.0.0`.
        found: String,
        /// The export the operation needs.
        needed: String,
    },

    /// An operator module imports an interface of the operator package that the host does not
    /// provide (one it does not implement, or of an unsupported version).
    #[error("{file}: module `{reference}` ({}) used by {kind} operation `{operation}` imports {}, which wasmflow does not provide; operators may import wasm-graph:processor@1.1.0's {}", .path.display(), fmt_list(.imports), crate::exports::HOST_INTERFACES.join(", "))]
    UnsupportedImport {
        /// The graph file.
        file: String,
        /// The operation.
        operation: String,
        /// Its type.
        kind: OperationKind,
        /// The module reference.
        reference: String,
        /// The module file.
        path: PathBuf,
        /// The imports the host does not provide, e.g. `wasm-graph:processor/command-invoker@1.1.0`.
        imports: Vec<String>,
    },

    /// A `required` parameter has no default and no override gives it a value.
    #[error("{file}: operation `{operation}` requires parameter `{key}`, which has no default and was given no value; pass -c '{operation}.{key}=VALUE'")]
    RequiredParameter {
        /// The graph file (or composed graph).
        file: String,
        /// The operation.
        operation: String,
        /// The parameter key.
        key: String,
    },

    /// A configuration override that is not `key=value` or `operation.key=value`.
    #[error("invalid configuration override `{input}`: {reason}; expected key=value or operation.key=value")]
    InvalidOverride {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A configuration override scoped to an operation the graph does not have.
    #[error("{file}: configuration override `{input}` names operation `{operation}`, which the graph does not define (operations: {})", fmt_list(.known))]
    UnknownOverrideOperation {
        /// The graph file (or composed graph).
        file: String,
        /// The override as given.
        input: String,
        /// The operation it names.
        operation: String,
        /// The graph's operations.
        known: Vec<String>,
    },

    /// A caller asked about an operation the graph does not have.
    #[error("{file}: the graph has no operation `{operation}`")]
    UnknownOperation {
        /// The graph file (or composed graph).
        file: String,
        /// The name asked for.
        operation: String,
    },

    /// The router component a composition with `--router composed` needs is not built.
    #[error("{file}: the graph's router `{component}` (--router composed) is not found: {}; run scripts/build-components.sh to build it", fmt_searched(.component, .searched, None))]
    RouterNotFound {
        /// The graph file.
        file: String,
        /// The file name looked for ([`ROUTER_COMPONENT`](crate::router::ROUTER_COMPONENT)).
        component: String,
        /// The directories searched, in order.
        searched: Vec<PathBuf>,
    },

    /// wac-graph refused a step of the composition (a type mismatch between modules, usually).
    #[error("{file}: composing {} failed: {message}", .operation.as_ref().map(|o| format!("operation `{o}`")).unwrap_or_else(|| "the graph".to_string()))]
    Composition {
        /// The graph file.
        file: String,
        /// The operation being linked, if the failure is tied to one.
        operation: Option<String>,
        /// wac-graph's description, with its causes.
        message: String,
    },

    /// Bytes handed to `inspect_component`, `component_world` or `Manifest::from_component`
    /// are not a readable component, or carry a `wasmflow-graph` section that is not a
    /// manifest. Those functions see bytes, not a file: the caller names the file.
    #[error("{0}")]
    InvalidComponent(String),
}

fn fmt_location(location: Option<(usize, usize)>) -> String {
    match location {
        Some((line, column)) => format!(":{line}:{column}"),
        None => String::new(),
    }
}

fn fmt_api_version(api_version: &Option<String>) -> String {
    match api_version {
        Some(v) => format!(", `apiVersion: {v}`"),
        None => String::new(),
    }
}

fn fmt_size(size: Option<u64>, limit: usize) -> String {
    match size {
        Some(size) => format!("is {size} bytes, more than the limit of {limit} bytes"),
        None => format!("goes on past the limit of {limit} bytes"),
    }
}

fn fmt_cycle(operations: &[String]) -> String {
    let mut parts: Vec<String> = operations.iter().map(|o| format!("`{o}`")).collect();
    if let Some(first) = parts.first().cloned() {
        parts.push(first);
    }
    parts.join(" -> ")
}

fn fmt_list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_string()
    } else {
        items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
    }
}

fn fmt_searched(name: &str, dirs: &[PathBuf], direct: Option<&PathBuf>) -> String {
    let mut parts = Vec::new();
    if let Some(direct) = direct {
        parts.push(format!("no file {}", direct.display()));
    }
    if dirs.is_empty() {
        parts.push(format!(
            "no modules directory is configured to look for {name} in (pass --modules DIR or set WASMFLOW_MODULES)"
        ));
    } else {
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        parts.push(format!("looked for {name} in {}", dirs.join(", ")));
    }
    parts.join(", and ")
}
