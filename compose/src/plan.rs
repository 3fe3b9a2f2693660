//! The composition plan: which files become packages, one instance per operation, which export
//! each instance offers and which of its imports are per-operation.
//!
//! The plan is everything encoding needs, computed without wac-graph, so tests can check the
//! shape of a composition (and the host can explain it) without encoding.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::config::{bake_parameters, Override};
use crate::error::ComposeError;
use crate::exports::{
    find_operation_export, per_operation_imports, unsupported_imports, ComponentInterfaces, ExportProblem,
};
use crate::limits::MAX_COMPONENT_INSTANCES;
use crate::manifest::{Manifest, ManifestOperation, ManifestSchema, MANIFEST_FORMAT};
use crate::model::OperationKind;
use crate::naming::import_name;
use crate::resolve::ModuleResolver;
use crate::router::ROUTER_COMPONENT;
use crate::validate::ValidatedGraph;

// The naming rules (module `naming`) were first defined here; these paths keep working.
pub use crate::naming::{export_name, import_prefix, slug};

/// How to compose: where modules are, and compose-time configuration overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComposeOptions {
    /// `--modules DIR`: searched first.
    pub modules_dir: Option<PathBuf>,
    /// The caller's default modules directory (the host passes `<repo>/target/modules`),
    /// searched after `$WASMFLOW_MODULES`.
    pub default_modules_dir: Option<PathBuf>,
    /// `-c` values given at compose time: checked against `required` parameters and baked into
    /// the manifest's defaults.
    pub overrides: Vec<Override>,
    /// Module references the caller has already fetched (the host pulls registry references into
    /// its OCI cache), reference → local file. Consulted before any search, so a graph pulled
    /// from a registry uses exactly the modules that registry holds; compose itself never fetches.
    pub resolved: BTreeMap<String, PathBuf>,
    /// Bounds on the definition read ([`crate::load_graph_with`]); a host configured for larger
    /// graphs raises them here and sizes its instance pool to match.
    pub limits: crate::Limits,
    /// Whether the composition carries its own router ([`Routing::Composed`]).
    pub routing: Routing,
}

/// Where a composed graph's routing runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Routing {
    /// The host calls each operation's export and moves items between them (every operation
    /// is exported as `op{i}-…`).
    #[default]
    Host,
    /// The composition also holds a router component ([`crate::router`]), linked to every
    /// operation through a generated dispatcher, and exports `wasmflow:graph/graph`: items move
    /// between operations by component-to-component calls. The operations stay exported too.
    Composed,
}

impl std::str::FromStr for Routing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "host" => Ok(Routing::Host),
            "composed" => Ok(Routing::Composed),
            other => Err(format!("`{other}`: the router is `host` or `composed`")),
        }
    }
}

impl std::fmt::Display for Routing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Routing::Host => "host",
            Routing::Composed => "composed",
        })
    }
}

/// The router of a composition with [`Routing::Composed`].
#[derive(Clone, PartialEq, Eq)]
pub struct PlannedRouter {
    /// The router component's file ([`crate::router::ROUTER_COMPONENT`]).
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its imports and exports.
    pub interfaces: ComponentInterfaces,
    /// The generated dispatcher component of this graph ([`crate::router::dispatcher`]).
    pub dispatcher: Vec<u8>,
}

impl std::fmt::Debug for PlannedRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedRouter")
            .field("path", &self.path)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .field("dispatcher", &format_args!("{} bytes", self.dispatcher.len()))
            .finish()
    }
}

/// A component file registered once in the composition.
#[derive(Clone, PartialEq, Eq)]
pub struct PlannedPackage {
    /// Unique package name in the composition, e.g. `wasmflow-module:temperature`.
    pub name: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// The module reference as first written in the graph; `None` for plumbing.
    pub reference: Option<String>,
    /// The component's bytes.
    pub bytes: Vec<u8>,
    /// Its imports and exports.
    pub interfaces: ComponentInterfaces,
}

impl std::fmt::Debug for PlannedPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedPackage")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("reference", &self.reference)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .field("interfaces", &self.interfaces)
            .finish()
    }
}

/// An import of one instance that gets its own composition import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerOperationImport {
    /// The composition's import name, e.g. `op1-logger` ([`import_name`]).
    pub name: String,
    /// The instance's import it satisfies, e.g. `wasm-graph:processor/logger@1.1.0`.
    pub interface: String,
}

/// One instance: one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedInstance {
    /// Index of the operation in the graph.
    pub operation: usize,
    /// The operation's name.
    pub name: String,
    /// Its type.
    pub kind: OperationKind,
    /// Index into [`CompositionPlan::packages`].
    pub package: usize,
    /// The instance export that serves the operation, e.g. `wasm-graph:processor/map@1.1.0`.
    pub interface: String,
    /// The composition export re-exporting it, `op{i}-{slug}` ([`export_name`]).
    pub export: String,
    /// `op{i}` for operator instances ([`import_prefix`]); `None` for plumbing.
    pub import_prefix: Option<String>,
    /// Imports satisfied by per-operation composition imports.
    pub per_operation_imports: Vec<PerOperationImport>,
}

/// What to build: packages, instances, and the manifest to embed.
#[derive(Debug, Clone, PartialEq)]
pub struct CompositionPlan {
    /// The graph file (starts error messages of later stages).
    pub file: String,
    /// Distinct component files, each registered once.
    pub packages: Vec<PlannedPackage>,
    /// One per operation, in operation order.
    pub instances: Vec<PlannedInstance>,
    /// Imports left to the host and merged by name (types, clocks, WASI, wasi:nn…), sorted.
    pub shared_imports: Vec<String>,
    /// The manifest the composed component will carry.
    pub manifest: Manifest,
    /// Warnings from validation and planning.
    pub warnings: Vec<String>,
    /// The router and dispatcher, with [`Routing::Composed`].
    pub router: Option<PlannedRouter>,
}

impl CompositionPlan {
    /// The number of instances of package `package`.
    pub fn instance_count(&self, package: usize) -> usize {
        self.instances.iter().filter(|i| i.package == package).count()
    }

    /// The instances the composed component imports: one per shared import (each is an
    /// interface, so an instance) and one per per-operation import.
    pub fn imported_instances(&self) -> usize {
        self.shared_imports.len()
            + self
                .instances
                .iter()
                .map(|i| i.per_operation_imports.len())
                .sum::<usize>()
    }

    /// The instances the composed component holds, as WebAssembly validation counts them against
    /// [`MAX_COMPONENT_INSTANCES`]: the [`imported_instances`](Self::imported_instances), and for
    /// every operation its instantiation, the alias of the interface it serves and the export of
    /// that alias (an export adds an entry to the instance index space too). Planning refuses a
    /// graph over the limit, so encoding never builds a component only for validation to reject
    /// it.
    pub fn component_instances(&self) -> usize {
        // A router adds the dispatcher's and the router's instantiations, the alias of each
        // one's export, and the export of the graph interface.
        let router = if self.router.is_some() { 5 } else { 0 };
        self.imported_instances() + 3 * self.instances.len() + router
    }
}

/// Resolves modules, reads and checks their exports, and lays out the composition.
pub fn plan(graph: &ValidatedGraph, opts: &ComposeOptions) -> Result<CompositionPlan, ComposeError> {
    let resolver = ModuleResolver::new(
        &graph.base_dir(),
        opts.modules_dir.as_deref(),
        opts.default_modules_dir.as_deref(),
    )
    .with_resolved(opts.resolved.clone());
    let mut plan = plan_with(graph, &resolver, &opts.overrides)?;
    if opts.routing == Routing::Composed {
        add_router(&mut plan, &resolver)?;
    }
    Ok(plan)
}

/// Adds the router component and this graph's dispatcher to a plan, the router's imports to
/// the shared ones, and the graph export to the manifest.
pub fn add_router(plan: &mut CompositionPlan, resolver: &ModuleResolver) -> Result<(), ComposeError> {
    let file = plan.file.clone();
    let failed = |message: String| ComposeError::Composition {
        file: file.clone(),
        operation: None,
        message,
    };
    let path = resolver
        .resolve_component(ROUTER_COMPONENT)
        .map_err(|nf| ComposeError::RouterNotFound {
            file: file.clone(),
            component: ROUTER_COMPONENT.to_string(),
            searched: nf.searched,
        })?;
    let bytes = std::fs::read(&path).map_err(|e| failed(format!("reading the router {}: {e}", path.display())))?;
    let interfaces = ComponentInterfaces::from_bytes(&bytes)
        .map_err(|m| failed(format!("the router {} is not a component: {m}", path.display())))?;
    let kinds: Vec<OperationKind> = plan.manifest.operations.iter().map(|o| o.kind).collect();
    let topology = crate::router::topology(&plan.manifest).map_err(&failed)?;
    let dispatcher = crate::router::dispatcher(&kinds, &topology)
        .map_err(|m| failed(format!("generating the graph's dispatcher: {m}")))?;
    let dispatcher_imports = ComponentInterfaces::from_bytes(&dispatcher)
        .map_err(|m| failed(format!("the generated dispatcher does not read back: {m}")))?;
    let mut shared: BTreeSet<String> = plan.shared_imports.iter().cloned().collect();
    let own = |i: &String| i == crate::router::OPERATORS_INTERFACE || crate::router::is_operation_import(i);
    shared.extend(interfaces.imports.iter().filter(|i| !own(i)).cloned());
    shared.extend(dispatcher_imports.imports.iter().filter(|i| !own(i)).cloned());
    plan.shared_imports = shared.into_iter().collect();
    plan.manifest.graph_export = Some(crate::router::GRAPH_INTERFACE.to_string());
    plan.router = Some(PlannedRouter {
        path,
        bytes,
        interfaces,
        dispatcher,
    });
    let count = plan.component_instances();
    if count > MAX_COMPONENT_INSTANCES {
        return Err(ComposeError::TooManyInstances {
            file: plan.file.clone(),
            count,
            imports: plan.imported_instances(),
            operations: plan.instances.len(),
            limit: MAX_COMPONENT_INSTANCES,
        });
    }
    Ok(())
}

/// [`plan`] with an explicit resolver (tests, or callers that control the search path).
pub fn plan_with(
    graph: &ValidatedGraph,
    resolver: &ModuleResolver,
    overrides: &[Override],
) -> Result<CompositionPlan, ComposeError> {
    let file = graph.file_label();

    // Configuration first: a missing required value needs no module to be reported.
    let configurations = graph.configurations(overrides)?;

    // Resolve every file before reading any, so a missing module is reported before a bad one.
    let mut paths = Vec::with_capacity(graph.operations.len());
    for op in &graph.operations {
        let path = match &op.module {
            Some(reference) => resolver.resolve(reference).map_err(|nf| ComposeError::ModuleNotFound {
                file: file.clone(),
                module: nf.module,
                reference: reference.clone(),
                operation: op.name.clone(),
                searched: nf.searched,
                direct: nf.direct,
            })?,
            None => match resolver.resolve_plumbing(op.kind) {
                Some(found) => found.map_err(|nf| ComposeError::PlumbingNotFound {
                    file: file.clone(),
                    component: format!("{}.wasm", nf.module),
                    operation: op.name.clone(),
                    kind: op.kind,
                    searched: nf.searched,
                })?,
                None => {
                    return Err(ComposeError::MissingModule {
                        file: file.clone(),
                        operation: op.name.clone(),
                        kind: op.kind,
                    })
                }
            },
        };
        paths.push(path);
    }

    let mut packages: Vec<PlannedPackage> = Vec::new();
    // File identity → package, and the package names taken: lookups, so that planning stays
    // linear however many distinct files the graph uses.
    let mut identities: HashMap<PathBuf, usize> = HashMap::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut instances = Vec::with_capacity(graph.operations.len());
    let mut manifest_ops = Vec::with_capacity(graph.operations.len());
    let mut warnings = graph.warnings.clone();
    let mut any_wasi_nn = false;

    for ((op, path), config) in graph.operations.iter().zip(&paths).zip(&configurations) {
        let reference = op.module.clone().unwrap_or_else(|| path.display().to_string());
        let identity = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        let package = match identities.get(&identity) {
            Some(&i) => i,
            None => {
                let bytes = std::fs::read(path).map_err(|error| ComposeError::ReadModule {
                    file: file.clone(),
                    reference: reference.clone(),
                    operation: op.name.clone(),
                    path: path.clone(),
                    error,
                })?;
                let interfaces =
                    ComponentInterfaces::from_bytes(&bytes).map_err(|message| ComposeError::InvalidModule {
                        file: file.clone(),
                        reference: reference.clone(),
                        operation: op.name.clone(),
                        path: path.clone(),
                        message,
                    })?;
                let name = unique_package_name(&mut names, path, op.kind.is_plumbing());
                packages.push(PlannedPackage {
                    name,
                    path: path.clone(),
                    reference: op.module.clone(),
                    bytes,
                    interfaces,
                });
                identities.insert(identity, packages.len() - 1);
                packages.len() - 1
            }
        };
        let pkg = &packages[package];
        let interface = find_operation_export(&pkg.interfaces, op.kind).map_err(|problem| match problem {
            ExportProblem::Missing => ComposeError::MissingExport {
                file: file.clone(),
                operation: op.name.clone(),
                kind: op.kind,
                reference: reference.clone(),
                path: path.clone(),
                needed: op.kind.interface().to_string(),
                found: pkg.interfaces.exports.clone(),
            },
            ExportProblem::UnsupportedVersion(found) => ComposeError::UnsupportedWitVersion {
                file: file.clone(),
                operation: op.name.clone(),
                kind: op.kind,
                reference: reference.clone(),
                path: path.clone(),
                found,
                needed: op.kind.interface().to_string(),
            },
        })?;
        if !op.kind.is_plumbing() {
            let unsupported = unsupported_imports(&pkg.interfaces);
            if !unsupported.is_empty() {
                return Err(ComposeError::UnsupportedImport {
                    file: file.clone(),
                    operation: op.name.clone(),
                    kind: op.kind,
                    reference: reference.clone(),
                    path: path.clone(),
                    imports: unsupported,
                });
            }
        }
        let (prefix, per_op) = if op.kind.is_plumbing() {
            (None, Vec::new())
        } else {
            let per_op = per_operation_imports(&pkg.interfaces)
                .into_iter()
                .map(|(short, import)| PerOperationImport {
                    name: import_name(op.index, short),
                    interface: import,
                })
                .collect();
            (Some(import_prefix(op.index)), per_op)
        };
        let imports_wasi_nn = pkg.interfaces.imports_wasi_nn();
        any_wasi_nn |= imports_wasi_nn;
        instances.push(PlannedInstance {
            operation: op.index,
            name: op.name.clone(),
            kind: op.kind,
            package,
            interface,
            export: op.export.clone(),
            import_prefix: prefix.clone(),
            per_operation_imports: per_op,
        });
        manifest_ops.push(ManifestOperation {
            name: op.name.clone(),
            kind: op.kind,
            module: op.module.clone(),
            export: op.export.clone(),
            import_prefix: prefix,
            imports_wasi_nn,
            parameters: bake_parameters(&op.parameters, config),
        });
    }

    if any_wasi_nn && !graph.has_feature("wasi-nn") {
        warnings.push(format!(
            "{file}: a module imports wasi:nn but moduleRequirements.features does not list wasi-nn; the graph runs, but declare the feature"
        ));
    }

    let mut shared: BTreeSet<String> = BTreeSet::new();
    for inst in &instances {
        for import in &packages[inst.package].interfaces.imports {
            if !inst.per_operation_imports.iter().any(|p| p.interface == *import) {
                shared.insert(import.clone());
            }
        }
    }

    let def = &graph.definition;
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        name: def.metadata.name.clone(),
        description: def.metadata.description.clone(),
        version: def.metadata.version.clone(),
        features: def
            .module_requirements
            .features
            .iter()
            .flatten()
            .map(|f| f.name.clone())
            .collect(),
        operations: manifest_ops,
        connections: graph.connections.clone(),
        schemas: def
            .schemas
            .iter()
            .map(|s| ManifestSchema {
                name: s.name.clone(),
                format: s.format.clone(),
                content: s.schema.clone(),
            })
            .collect(),
        graph_export: None,
    };

    let plan = CompositionPlan {
        file,
        packages,
        instances,
        shared_imports: shared.into_iter().collect(),
        manifest,
        warnings,
        router: None,
    };
    // Encoding would build the whole component only for its validation to refuse it.
    let count = plan.component_instances();
    if count > MAX_COMPONENT_INSTANCES {
        return Err(ComposeError::TooManyInstances {
            file: plan.file.clone(),
            count,
            imports: plan.imported_instances(),
            operations: plan.instances.len(),
            limit: MAX_COMPONENT_INSTANCES,
        });
    }
    Ok(plan)
}

/// `wasmflow-module:<file stem>` (or `wasmflow-plumbing:<stem>`), made unique with a numeric
/// suffix when two files share a stem; the name is added to `taken`.
fn unique_package_name(taken: &mut HashSet<String>, path: &Path, plumbing: bool) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).map(slug).unwrap_or_default();
    let stem = if stem.is_empty() { "module".to_string() } else { stem };
    let namespace = if plumbing {
        "wasmflow-plumbing"
    } else {
        "wasmflow-module"
    };
    let base = format!("{namespace}:{stem}");
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}
