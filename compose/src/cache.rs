//! Composed graphs kept on disk, so a graph definition that did not change is neither validated
//! nor composed again.
//!
//! Why: validating a document against the published schema builds a `jsonschema` validator that
//! stays resident (megabytes for a 5 KB schema, see [`crate::schema`]), and composing costs
//! 10–30 ms; a run of an unchanged graph needs neither. An entry is keyed by a SHA-256 digest
//! of everything composing reads besides the modules: the definition's text and the name it was
//! given by, where modules are searched (`--modules`, `$WASMFLOW_MODULES`, the default
//! directory, references already fetched), the compose-time `-c` overrides, the limits, and
//! this compiler's own source ([`COMPILER_DIGEST`], so a rebuilt compiler never reuses what an
//! older one made). The entry records, per operation, the file its module reference resolved
//! to and the SHA-256 of that file's bytes; a lookup resolves every reference again and hashes
//! the files again, so a module that changed, appeared earlier on the search path or vanished
//! misses the cache. A miss composes as [`crate::compose`] does and stores the result.
//!
//! One file per key (`<key>.composed`): a header (JSON: the per-operation modules, the
//! manifest, the warnings) and the component's bytes, written to a temporary file and renamed,
//! so a reader sees a whole entry or none. A cache that cannot be read or written only costs a
//! compose: it is never an error (a write failure is added to the warnings).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ComposeError;
use crate::manifest::Manifest;
use crate::plan::{self, ComposeOptions};
use crate::resolve::ModuleResolver;
use crate::router::ROUTER_COMPONENT;
use crate::validate::{parse_graph_with, read_graph_text};
use crate::{encode, Composed};

/// The digest of this compiler's sources and schema, computed by `build.rs`: part of every key.
pub const COMPILER_DIGEST: &str = env!("WASMFLOW_COMPOSE_SOURCE_DIGEST");

/// The layout of an entry file; part of every key, so a new layout never reads an old file.
const ENTRY_FORMAT: u32 = 1;

/// What starts every entry file.
const MAGIC: &[u8] = b"wasmflow-composed\n";

/// Whether a graph came from the cache or was composed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComposeOutcome {
    /// Read from the cache: neither validated nor composed.
    Cached,
    /// Validated and composed now (and stored, when the cache is writable).
    Composed,
}

/// A directory of composed graphs, see the module documentation.
#[derive(Debug, Clone)]
pub struct ComposedCache {
    dir: PathBuf,
}

/// How a component file of the composition was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Lookup {
    /// An operation's module reference, as written.
    Reference(String),
    /// One of wasmflow's own components (plumbing, the router), by file name.
    Component(String),
}

/// A component file the composition was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct EntryModule {
    lookup: Lookup,
    /// The file it resolved to (lossy UTF-8: compared as text, backed by the digest).
    path: String,
    /// SHA-256 of the file's bytes, hex.
    sha256: String,
}

impl EntryModule {
    fn new(lookup: Lookup, path: &Path, bytes: &[u8]) -> Self {
        EntryModule {
            lookup,
            path: path.to_string_lossy().into_owned(),
            sha256: hex::encode(Sha256::digest(bytes)),
        }
    }
}

/// The header of an entry file.
#[derive(Debug, Serialize, Deserialize)]
struct EntryHeader {
    modules: Vec<EntryModule>,
    manifest: Manifest,
    warnings: Vec<String>,
    /// Length of the component's bytes that follow the header.
    component_len: usize,
}

impl ComposedCache {
    /// A cache rooted at `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Where this cache keeps its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The graph definition at `path` composed with `opts`: from the cache when neither it,
    /// nor any module it resolves to, nor the options changed; else read, validated and
    /// composed exactly as [`crate::load_graph_with`] and [`crate::compose`] do (the same
    /// errors), then stored.
    pub fn compose_file(&self, path: &Path, opts: &ComposeOptions) -> Result<(Composed, ComposeOutcome), ComposeError> {
        let text = read_graph_text(path, &opts.limits)?;
        let label = path.display().to_string();
        let resolver = resolver_for(path, opts);
        let key = entry_key(&label, &text, &resolver, opts);
        let file = self.dir.join(format!("{key}.composed"));
        if let Some(composed) = read_entry(&file, &resolver) {
            return Ok((composed, ComposeOutcome::Cached));
        }

        let graph = parse_graph_with(path, &text, &opts.limits)?;
        let plan = plan::plan(&graph, opts)?;
        let bytes = encode::encode(&plan)?;
        let mut modules: Vec<EntryModule> = Vec::with_capacity(plan.instances.len() + 1);
        for (inst, op) in plan.instances.iter().zip(&plan.manifest.operations) {
            let package = &plan.packages[inst.package];
            let lookup = match (&op.module, inst.kind.plumbing_component()) {
                (Some(reference), _) => Lookup::Reference(reference.clone()),
                (None, Some(file)) => Lookup::Component(file.to_string()),
                // Validation gives every other operation a module.
                (None, None) => Lookup::Reference(String::new()),
            };
            modules.push(EntryModule::new(lookup, &package.path, &package.bytes));
        }
        if let Some(router) = &plan.router {
            let lookup = Lookup::Component(ROUTER_COMPONENT.to_string());
            modules.push(EntryModule::new(lookup, &router.path, &router.bytes));
        }
        let mut composed = Composed {
            bytes,
            manifest: plan.manifest,
            warnings: plan.warnings,
        };
        if let Err(e) = write_entry(&file, modules, &composed) {
            composed.warnings.push(format!(
                "could not keep the composed graph in {} (the next run composes it again): {e}",
                self.dir.display()
            ));
        }
        Ok((composed, ComposeOutcome::Composed))
    }
}

/// The resolver [`plan::plan`] builds for this graph and these options.
fn resolver_for(path: &Path, opts: &ComposeOptions) -> ModuleResolver {
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    ModuleResolver::new(&base, opts.modules_dir.as_deref(), opts.default_modules_dir.as_deref())
        .with_resolved(opts.resolved.clone())
}

/// Feeds fields into a digest, each prefixed by its length so that no two different sequences
/// of fields hash the same bytes.
struct KeyHasher(Sha256);

impl KeyHasher {
    fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    fn path(&mut self, path: &Path) {
        self.field(path.as_os_str().as_encoded_bytes());
    }
}

/// The key of a graph text composed with these options (module contents are checked apart).
fn entry_key(label: &str, text: &str, resolver: &ModuleResolver, opts: &ComposeOptions) -> String {
    let mut h = KeyHasher(Sha256::new());
    h.field(&ENTRY_FORMAT.to_le_bytes());
    h.field(COMPILER_DIGEST.as_bytes());
    h.field(label.as_bytes());
    h.field(text.as_bytes());
    h.path(&resolver.base_dir);
    h.field(&(resolver.dirs.len() as u64).to_le_bytes());
    for dir in &resolver.dirs {
        h.path(dir);
    }
    h.field(&(resolver.resolved.len() as u64).to_le_bytes());
    for (reference, file) in &resolver.resolved {
        h.field(reference.as_bytes());
        h.path(file);
    }
    h.field(&(opts.overrides.len() as u64).to_le_bytes());
    for o in &opts.overrides {
        h.field(o.operation.as_deref().unwrap_or("\u{0}").as_bytes());
        h.field(o.key.as_bytes());
        h.field(o.value.as_bytes());
    }
    h.field(opts.routing.to_string().as_bytes());
    let l = &opts.limits;
    for n in [l.max_document_bytes, l.max_nesting_depth, l.max_operations] {
        h.field(&(n as u64).to_le_bytes());
    }
    hex::encode(&h.0.finalize()[..20])
}

/// The entry in `file`, if it exists, is whole, and every module still resolves to the same
/// file with the same bytes; `None` otherwise (the caller composes).
fn read_entry(file: &Path, resolver: &ModuleResolver) -> Option<Composed> {
    let data = std::fs::read(file).ok()?;
    let rest = data.strip_prefix(MAGIC)?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    let header = rest.get(..len)?;
    let component = rest.get(len..)?;
    let header: EntryHeader = serde_json::from_slice(header).ok()?;
    if header.component_len != component.len() {
        return None;
    }
    let mut digests: HashMap<PathBuf, String> = HashMap::new();
    for m in &header.modules {
        let found = match &m.lookup {
            Lookup::Reference(reference) => resolver.resolve(reference).ok()?,
            Lookup::Component(file) => resolver.resolve_component(file).ok()?,
        };
        if found.to_string_lossy() != m.path {
            return None;
        }
        let digest = match digests.get(&found) {
            Some(d) => d.clone(),
            None => {
                let d = hex::encode(Sha256::digest(std::fs::read(&found).ok()?));
                digests.insert(found, d.clone());
                d
            }
        };
        if digest != m.sha256 {
            return None;
        }
    }
    Some(Composed {
        bytes: component.to_vec(),
        manifest: header.manifest,
        warnings: header.warnings,
    })
}

/// Writes an entry through a temporary file in the same directory, renamed into place.
fn write_entry(file: &Path, modules: Vec<EntryModule>, composed: &Composed) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let header = EntryHeader {
        modules,
        manifest: composed.manifest.clone(),
        warnings: composed.warnings.clone(),
        component_len: composed.bytes.len(),
    };
    let header = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(MAGIC)?;
    tmp.write_all(&(header.len() as u64).to_le_bytes())?;
    tmp.write_all(&header)?;
    tmp.write_all(&composed.bytes)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}
