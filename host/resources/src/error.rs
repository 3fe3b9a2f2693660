//! The one error type of the resources crate. Every message starts with where the fault is: the
//! file, then the resource (`Kind `name``), the node and the field, so a user knows which line of
//! which document to change.

use std::fmt;

/// A resource in the input: the file it came from and its kind and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file as the user named it.
    pub file: String,
    /// 1-based position of the document in its file (`---` separates documents).
    pub document: usize,
    /// `DataflowGraph`, `DataflowEndpoint`, `RegistryEndpoint`, …
    pub kind: String,
    /// `metadata.name` as written (a documentation placeholder such as `<GRAPH_NAME>` included).
    pub name: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} `{}`", self.file, self.kind, self.name)
    }
}

/// A document of a kind or apiVersion wasmflow does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// Where it is.
    pub origin: Origin,
    /// Its `apiVersion`.
    pub api_version: String,
}

/// Why a set of resource files cannot be run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceError {
    /// The file could not be read.
    #[error("{file}: cannot read: {reason}")]
    Read {
        /// The file.
        file: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is larger than resource files ever are.
    #[error("{file}: {size} bytes, more than the {limit} a resource file may have; is it the right file?")]
    TooLarge {
        /// The file.
        file: String,
        /// Its size.
        size: usize,
        /// [`crate::MAX_FILE_BYTES`].
        limit: usize,
    },
    /// The file is Bicep: the platform documents each resource in Bicep and in Kubernetes YAML.
    #[error("{file} is Bicep, not YAML: wasmflow reads the Kubernetes YAML form of the resources (the `Kubernetes` tab beside each Bicep example in the platform's documentation)")]
    Bicep {
        /// The file.
        file: String,
    },
    /// A document is not YAML, or not a Kubernetes resource (no `apiVersion`, `kind`,
    /// `metadata.name`).
    #[error("{file}, document {document}: {reason}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based document number.
        document: usize,
        /// The parser's message (with line and column) or what is missing.
        reason: String,
    },
    /// Documents of kinds or apiVersions wasmflow does not run, all of them listed.
    #[error("{}", list_unsupported(.0))]
    Unsupported(Vec<Unsupported>),
    /// A field of a resource is wrong: unknown, of the wrong type, a value not allowed, or a
    /// reference to something no resource defines.
    #[error("{at}{}, field `{field}`: {reason}", node_part(.node))]
    Field {
        /// The resource (boxed: errors travel in `Result`s of every parsing step, and should
        /// not make each of them large).
        at: Box<Origin>,
        /// The node of a DataflowGraph the field belongs to.
        node: Option<String>,
        /// The field's path in the document (`spec.nodes[1].graphSettings.artifact`).
        field: String,
        /// What is wrong and, where there is one, what to do.
        reason: String,
    },
    /// Something about a resource as a whole (two resources of one kind and name).
    #[error("{at}: {reason}")]
    Resource {
        /// The resource (boxed, as in `Field`).
        at: Box<Origin>,
        /// What is wrong.
        reason: String,
    },
    /// Nothing to run.
    #[error("{files}: no DataflowGraph resource; `run` with resource files runs the DataflowGraphs among them")]
    NoGraph {
        /// The files given, comma-separated.
        files: String,
    },
}

fn node_part(node: &Option<String>) -> String {
    node.as_ref().map(|n| format!(", node `{n}`")).unwrap_or_default()
}

fn list_unsupported(list: &[Unsupported]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|u| format!("{} ({})", u.origin, u.api_version))
        .collect();
    format!(
        "not supported: {}. wasmflow runs {} of apiVersion {}",
        items.join("; "),
        crate::SUPPORTED_KINDS.join(", "),
        crate::SUPPORTED_API_VERSIONS.join(" or ")
    )
}
