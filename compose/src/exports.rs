//! What a component imports and exports, read with wac-types, and the checks that tie an
//! operation's type to the interface its module must export.
//!
//! Reading with `wac_types::Package::from_bytes` also fully validates the component, so a broken
//! module is reported here, naming the operation, rather than as an opaque encode failure.

use wac_types::{ItemKind, Package, Types};

use crate::model::OperationKind;

// The per-operation interfaces are part of the naming contract (module `naming`); this path
// keeps working.
pub use crate::naming::PER_OPERATION_INTERFACES;

/// The operator package and the version range wasmflow runs (`wasm-graph:processor@1.1.x`, and
/// later minors of major 1, which only add).
pub const OPERATOR_PACKAGE: &str = "wasm-graph:processor";

/// The interfaces of [`OPERATOR_PACKAGE`] that the host provides to operators (its linker,
/// `host/runtime/src/linker.rs`, adds exactly these): an operator importing any other interface
/// of the package cannot be instantiated.
pub const HOST_INTERFACES: [&str; 8] = [
    "types",
    "hybrid-logical-clock",
    "logger",
    "metrics",
    "state-store",
    "state-store-types",
    "schema-types",
    "schema-registry",
];

/// The imports of an operator module that the host cannot satisfy: interfaces of
/// [`OPERATOR_PACKAGE`] outside [`HOST_INTERFACES`], or of an unsupported package version, in
/// the module's order (empty when every import of the package is provided).
pub fn unsupported_imports(interfaces: &ComponentInterfaces) -> Vec<String> {
    interfaces
        .imports
        .iter()
        .filter(|import| {
            InterfaceName::parse(import).is_some_and(|n| {
                n.package == OPERATOR_PACKAGE
                    && (!HOST_INTERFACES.contains(&n.interface) || !supported_operator_version(n.version))
            })
        })
        .cloned()
        .collect()
}

/// The top-level imports and exports of a component, by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComponentInterfaces {
    /// Import names, e.g. `wasm-graph:processor/logger@1.1.0`, `wasi:cli/stdout@0.2.9`.
    pub imports: Vec<String>,
    /// Export names, e.g. `wasm-graph:processor/map@1.1.0`.
    pub exports: Vec<String>,
}

impl ComponentInterfaces {
    /// Reads (and validates) a component's imports and exports.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let mut types = Types::default();
        let package = catch(|| Package::from_bytes("wasmflow:inspected", None, bytes.to_vec(), &mut types))?
            .map_err(|e| format!("{e:#}"))?;
        let world = &types[package.ty()];
        Ok(ComponentInterfaces {
            imports: world.imports.keys().cloned().collect(),
            exports: world
                .exports
                .iter()
                .filter(|(_, kind)| !matches!(kind, ItemKind::Type(_)))
                .map(|(name, _)| name.clone())
                .collect(),
        })
    }

    /// Whether the component imports any `wasi:nn` interface.
    pub fn imports_wasi_nn(&self) -> bool {
        self.imports.iter().any(|i| i.starts_with("wasi:nn/"))
    }
}

/// A parsed interface name `namespace:package/interface@version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceName<'a> {
    /// `wasm-graph:processor`.
    pub package: &'a str,
    /// `map`.
    pub interface: &'a str,
    /// `1.1.0`, when versioned.
    pub version: Option<&'a str>,
}

impl<'a> InterfaceName<'a> {
    /// Parses `ns:pkg/iface@ver`; `None` for plain names (`op1-logger`, `exports`).
    pub fn parse(name: &'a str) -> Option<Self> {
        let (path, version) = match name.split_once('@') {
            Some((p, v)) => (p, Some(v)),
            None => (name, None),
        };
        let (package, interface) = path.split_once('/')?;
        package.contains(':').then_some(InterfaceName {
            package,
            interface,
            version,
        })
    }

    /// `package@version` as it appears in messages.
    pub fn package_version(&self) -> String {
        match self.version {
            Some(v) => format!("{}@{v}", self.package),
            None => self.package.to_string(),
        }
    }
}

/// Whether `version` of `wasm-graph:processor` is one wasmflow runs: major 1, minor ≥ 1.
pub fn supported_operator_version(version: Option<&str>) -> bool {
    match version.and_then(|v| semver::Version::parse(v).ok()) {
        Some(v) => v.major == 1 && v.minor >= 1 && v.pre.is_empty(),
        None => false,
    }
}

/// Why a module cannot serve an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportProblem {
    /// It does not export the needed interface at all.
    Missing,
    /// It exports operator interfaces of an unsupported package version (the first one found,
    /// e.g. `tinykube-graph:processor@1.0.0`).
    UnsupportedVersion(String),
}

/// Finds the export that serves an operation of `kind`: the exact `wasm-graph:processor/<kind>`
/// export of a supported version (or, for plumbing kinds, the `wasmflow:graph` interface).
pub fn find_operation_export(interfaces: &ComponentInterfaces, kind: OperationKind) -> Result<String, ExportProblem> {
    let needed = kind.interface();
    if interfaces.exports.iter().any(|e| e == needed) {
        return Ok(needed.to_string());
    }
    let Some(needed_name) = InterfaceName::parse(needed) else {
        return Err(ExportProblem::Missing);
    };
    if !kind.is_plumbing() {
        if let Some(found) = interfaces.exports.iter().find(|e| {
            InterfaceName::parse(e).is_some_and(|n| {
                n.package == OPERATOR_PACKAGE
                    && n.interface == needed_name.interface
                    && supported_operator_version(n.version)
            })
        }) {
            return Ok(found.clone());
        }
    }
    // Operator interfaces of another package version (the tinykube preview, a future major).
    let foreign = interfaces
        .exports
        .iter()
        .filter_map(|e| InterfaceName::parse(e))
        .find(|n| {
            let same_family = n.package == needed_name.package
                || n.package.ends_with(":processor") && needed_name.package == OPERATOR_PACKAGE;
            same_family && n.version != needed_name.version && !supported_operator_version(n.version)
        });
    match foreign {
        Some(n) => Err(ExportProblem::UnsupportedVersion(n.package_version())),
        None => Err(ExportProblem::Missing),
    }
}

/// For an operator module, its imports that become per-operation composition imports: pairs of
/// (short interface name such as `logger`, the module's import name).
pub fn per_operation_imports(interfaces: &ComponentInterfaces) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for short in PER_OPERATION_INTERFACES {
        if let Some(import) = interfaces
            .imports
            .iter()
            .find(|i| InterfaceName::parse(i).is_some_and(|n| n.package == OPERATOR_PACKAGE && n.interface == short))
        {
            out.push((short, import.clone()));
        }
    }
    out
}

/// Runs wac code that may panic on hostile input (it asserts on some malformed binaries) and
/// turns a panic into an error, so a bad module never takes the CLI down.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let detail = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".to_string());
        format!("internal error in the component library: {detail}")
    })
}
