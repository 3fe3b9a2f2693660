//! Module references → files on this machine.
//!
//! A reference is either a path to a `.wasm` file (relative to the graph file's directory, or
//! absolute), used as it is, or an OCI-style reference (`registry/org/repo/temperature:1.0.0`,
//! `…/temperature@sha256:…`) whose last path segment, without tag or digest, names
//! `<segment>.wasm` in a modules directory. Registry pulls happen in the host, which passes the
//! files it fetched as [`ModuleResolver::resolved`]; a reference that neither answers is an
//! error naming where it looked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::model::OperationKind;

/// The environment variable naming a modules directory (after `--modules`, before the default).
pub const MODULES_ENV: &str = "WASMFLOW_MODULES";

/// Where a reference was looked for when it was not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound {
    /// The module name derived from the reference (file name without `.wasm`).
    pub module: String,
    /// When the reference looked like a path, the file that does not exist.
    pub direct: Option<PathBuf>,
    /// The modules directories searched, in order.
    pub searched: Vec<PathBuf>,
}

/// Finds module and plumbing component files.
///
/// Directories are searched in order: the explicit one (`--modules`), `$WASMFLOW_MODULES`, then
/// the caller's default (the host passes `<repo>/target/modules`); the first hit wins, so a
/// user's directory may hold just their module while plumbing comes from the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleResolver {
    /// Directory of the graph file: base of relative path references.
    pub base_dir: PathBuf,
    /// The modules directories, in search order.
    pub dirs: Vec<PathBuf>,
    /// References already fetched by the caller (e.g. from an OCI registry): used as they are.
    pub resolved: BTreeMap<String, PathBuf>,
}

impl ModuleResolver {
    /// A resolver for a graph in `base_dir`, reading `$WASMFLOW_MODULES` from the environment.
    pub fn new(base_dir: &Path, explicit: Option<&Path>, default: Option<&Path>) -> Self {
        let env = std::env::var_os(MODULES_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Self::with_env(base_dir, explicit, env.as_deref(), default)
    }

    /// Like [`ModuleResolver::new`] with the environment value given (for tests and callers
    /// that already read it).
    pub fn with_env(base_dir: &Path, explicit: Option<&Path>, env: Option<&Path>, default: Option<&Path>) -> Self {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for dir in [explicit, env, default].into_iter().flatten() {
            let dir = dir.to_path_buf();
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        ModuleResolver {
            base_dir: base_dir.to_path_buf(),
            dirs,
            resolved: BTreeMap::new(),
        }
    }

    /// Adds references the caller has already turned into files (the host's registry pulls);
    /// they win over every search, so compose stays free of network access.
    pub fn with_resolved(mut self, resolved: BTreeMap<String, PathBuf>) -> Self {
        self.resolved = resolved;
        self
    }

    /// Resolves a module reference to an existing file.
    pub fn resolve(&self, reference: &str) -> Result<PathBuf, NotFound> {
        let reference = reference.trim();
        if let Some(path) = self.resolved.get(reference) {
            return Ok(path.clone());
        }
        let looks_like_path = reference.ends_with(".wasm");
        let direct = self.base_dir.join(reference);
        if looks_like_path && direct.is_file() {
            return Ok(direct);
        }
        let module = module_name(reference);
        let file = format!("{module}.wasm");
        match self.find_in_dirs(&file) {
            Some(path) => Ok(path),
            None => Err(NotFound {
                module,
                direct: looks_like_path.then_some(direct),
                searched: self.dirs.clone(),
            }),
        }
    }

    /// Finds the plumbing component for a source, sink or concatenate operation.
    ///
    /// Returns `None` for other kinds.
    pub fn resolve_plumbing(&self, kind: OperationKind) -> Option<Result<PathBuf, NotFound>> {
        let file = kind.plumbing_component()?;
        Some(self.find_in_dirs(file).ok_or_else(|| NotFound {
            module: file.trim_end_matches(".wasm").to_string(),
            direct: None,
            searched: self.dirs.clone(),
        }))
    }

    /// Finds one of wasmflow's own components (a plumbing file, the router) by file name in
    /// the modules directories.
    pub fn resolve_component(&self, file: &str) -> Result<PathBuf, NotFound> {
        self.find_in_dirs(file).ok_or_else(|| NotFound {
            module: file.trim_end_matches(".wasm").to_string(),
            direct: None,
            searched: self.dirs.clone(),
        })
    }

    fn find_in_dirs(&self, file: &str) -> Option<PathBuf> {
        self.dirs.iter().map(|d| d.join(file)).find(|p| p.is_file())
    }
}

/// The module name a reference designates: its last path segment without digest (`@…`), tag
/// (`:…`, only after the last `/`, so a registry port is not mistaken for one) or `.wasm`.
///
/// `azure-samples/explore-iot-operations/temperature:1.0.0` → `temperature`.
pub fn module_name(reference: &str) -> String {
    let without_digest = reference.split_once('@').map_or(reference, |(r, _)| r);
    let segment = without_digest.rsplit(['/', '\\']).next().unwrap_or(without_digest);
    let without_tag = segment.split_once(':').map_or(segment, |(s, _)| s);
    without_tag.strip_suffix(".wasm").unwrap_or(without_tag).to_string()
}
