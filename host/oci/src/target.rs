//! Making a `run`/`compose` target local: a registry reference is pulled (a graph definition
//! with its modules), a local graph definition gets its module references fetched when
//! `--registry` is given. Compose then only sees files ([`wasmflow_compose::ComposeOptions::resolved`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wasmflow_compose::ComposeError;

use super::{reference, ArtifactKind, Oci, OciError, RegistryOptions, TagPolicy};

/// Why a target cannot be made local: the registry's error, or what the graph definition
/// asks of it, naming the operation and module.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Pulling the target itself, or making the client.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// The graph definition whose modules are to be fetched does not load.
    #[error(transparent)]
    Graph(Box<ComposeError>),
    /// A module reference cannot be parsed or pulled.
    #[error("module `{module}` of operation `{operation}`: {error}")]
    Module {
        /// The reference as the graph writes it.
        module: String,
        /// The operation that names it.
        operation: String,
        /// The registry's error.
        error: Box<OciError>,
    },
    /// A module reference names an artifact that is a graph definition.
    #[error("module `{module}` of operation `{operation}`: {reference} is a graph definition, not a wasm module")]
    NotAModule {
        /// The reference as the graph writes it.
        module: String,
        /// The operation that names it.
        operation: String,
        /// The artifact it resolved to.
        reference: String,
    },
    /// A graph definition pulled from a registry names a file on this machine.
    #[error("operation `{operation}` names the local file `{module}`; a graph definition from a registry may only reference modules in a registry")]
    LocalModule {
        /// The file name as the graph writes it.
        module: String,
        /// The operation that names it.
        operation: String,
    },
    /// One of the above, for the modules of a graph definition pulled from a registry.
    #[error("graph definition {reference}: {error}")]
    InGraph {
        /// The graph definition's reference.
        reference: String,
        /// What went wrong with its modules.
        error: Box<TargetError>,
    },
}

/// A target on this machine, and the module references already fetched for it.
#[derive(Debug, Clone, Default)]
pub struct LocalTarget {
    /// A graph definition (`.yaml`) or a component (`.wasm`) to load.
    pub path: PathBuf,
    /// Module reference (as written in the graph) → cached module file.
    pub modules: BTreeMap<String, PathBuf>,
}

/// Resolves `target` (a path, or a registry reference when no such path exists; see
/// [`mod@reference`] for the rule) into local files. `client` makes the registry client (its
/// cache, runtime and progress are the caller's) when one is needed.
pub fn resolve(
    target: &Path,
    options: &RegistryOptions,
    client: impl Fn() -> Result<Oci, OciError>,
) -> Result<LocalTarget, TargetError> {
    let text = target.to_string_lossy();
    let is_yaml = |p: &Path| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    if target.exists() {
        let mut local = LocalTarget {
            path: target.to_path_buf(),
            modules: BTreeMap::new(),
        };
        if let (Some(registry), true) = (options.registry.clone(), is_yaml(target)) {
            let mut oci = client()?;
            local.modules = fetch_modules(&mut oci, target, &registry, false)?;
        }
        return Ok(local);
    }
    if !reference::looks_like_reference(&text, options.registry.as_deref()) {
        // Not a reference either: the loaders report the missing file as they always have.
        return Ok(LocalTarget {
            path: target.to_path_buf(),
            modules: BTreeMap::new(),
        });
    }
    let mut oci = client()?;
    let r = oci.parse(&text)?;
    let pulled = oci.pull_parsed(&r, TagPolicy::CachedWhenUnreachable)?;
    tracing::info!(
        "{} is {} ({})",
        pulled.reference,
        pulled.digest,
        if pulled.fetched { "pulled" } else { "cached" }
    );
    let modules = match pulled.kind {
        ArtifactKind::Component => BTreeMap::new(),
        ArtifactKind::GraphDefinition => {
            // The platform resolves a graph's relative module references against the graph's
            // own registry; `--registry` overrides it.
            let registry = options
                .registry
                .clone()
                .unwrap_or_else(|| r.resolve_registry().to_string());
            fetch_modules(&mut oci, &pulled.path, &registry, true).map_err(|e| TargetError::InGraph {
                reference: pulled.reference.clone(),
                error: Box::new(e),
            })?
        }
    };
    Ok(LocalTarget {
        path: pulled.path,
        modules,
    })
}

/// Pulls every registry-style module reference of the graph definition at `graph`. In a local
/// graph a reference ending in `.wasm` is a path and left to compose; a graph that came from a
/// registry may not name files on this machine.
fn fetch_modules(
    oci: &mut Oci,
    graph: &Path,
    registry: &str,
    from_registry: bool,
) -> Result<BTreeMap<String, PathBuf>, TargetError> {
    let g = wasmflow_compose::load_graph(graph).map_err(|e| TargetError::Graph(Box::new(e)))?;
    let mut modules = BTreeMap::new();
    for op in &g.operations {
        let Some(written) = op.module.as_deref().map(str::trim) else {
            continue;
        };
        // Only an error needs them as owned strings.
        let (module, operation) = (|| written.to_string(), || op.name.to_string());
        if written.ends_with(".wasm") && from_registry {
            return Err(TargetError::LocalModule {
                module: module(),
                operation: operation(),
            });
        }
        if written.ends_with(".wasm") || modules.contains_key(written) {
            continue;
        }
        let pulled = reference::parse(written, Some(registry))
            .and_then(|r| oci.pull_parsed(&r, TagPolicy::CachedWhenUnreachable))
            .map_err(|error| TargetError::Module {
                module: module(),
                operation: operation(),
                error: Box::new(error),
            })?;
        if pulled.kind != ArtifactKind::Component {
            return Err(TargetError::NotAModule {
                module: module(),
                operation: operation(),
                reference: pulled.reference,
            });
        }
        tracing::debug!("{written} → {} ({})", pulled.reference, pulled.digest);
        modules.insert(written.to_string(), pulled.path);
    }
    Ok(modules)
}
