//! Making a `run`/`compose` target local: a registry reference is pulled (a graph definition
//! with its modules), a local graph definition gets its module references fetched when
//! `--registry` is given. Compose then only sees files ([`wasmflow_compose::ComposeOptions::resolved`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use super::{reference, ArtifactKind, Oci, OciError, RegistryOptions, TagPolicy};

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
) -> Result<LocalTarget> {
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
            fetch_modules(&mut oci, &pulled.path, &registry, true)
                .with_context(|| format!("graph definition {}", pulled.reference))?
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
) -> Result<BTreeMap<String, PathBuf>> {
    let g = wasmflow_compose::load_graph(graph).map_err(|e| anyhow!("{e}"))?;
    let mut modules = BTreeMap::new();
    for op in &g.operations {
        let Some(written) = op.module.as_deref().map(str::trim) else {
            continue;
        };
        if written.ends_with(".wasm") && from_registry {
            return Err(anyhow!(
                "operation `{}` names the local file `{written}`; a graph definition from a registry may only reference modules in a registry",
                op.name
            ));
        }
        if written.ends_with(".wasm") || modules.contains_key(written) {
            continue;
        }
        let context = || format!("module `{written}` of operation `{}`", op.name);
        let r = reference::parse(written, Some(registry)).with_context(context)?;
        let pulled = oci
            .pull_parsed(&r, TagPolicy::CachedWhenUnreachable)
            .with_context(context)?;
        if pulled.kind != ArtifactKind::Component {
            return Err(anyhow!(
                "{}: {} is a graph definition, not a wasm module",
                context(),
                pulled.reference
            ));
        }
        tracing::debug!("{written} → {} ({})", pulled.reference, pulled.digest);
        modules.insert(written.to_string(), pulled.path);
    }
    Ok(modules)
}
