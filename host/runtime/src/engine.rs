//! The wasmtime engine every graph runs on, and the on-disk cache of compiled code.
//!
//! Compiling a composed graph costs 0.3–0.6 s; a cached start must not pay it again, so
//! compiled components are serialized under the data directory, keyed by a SHA-256 digest of
//! the component's bytes and of the engine's compatibility hash (a wasmtime upgrade or a
//! different configuration misses the cache instead of loading incompatible code).
//!
//! Why not wasmtime's own `cache` feature (not enabled): it keeps its entries in a directory
//! of its own configured by a TOML file, outside the data directory the rest of a run's state
//! lives in, and still goes through `Component::new` on a hit; here a hit is one
//! `Component::deserialize_file` (an `mmap`). The key is a cryptographic digest written byte
//! for byte, so it is the same across Rust releases (std's `DefaultHasher` is not).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use crate::error::{Result, WasmtimeStep};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

mod footprint;
pub use footprint::{Footprint, FootprintError};

/// Limits that bound what one graph may consume; they protect the host from a bad module.
#[derive(Debug, Clone)]
pub struct EngineLimits {
    /// Largest linear memory a single module may grow to; growing past it traps the module.
    pub max_memory_bytes: usize,
    /// How many graph instances may exist at once (each rebuild after a trap needs one).
    pub max_graph_instances: u32,
    /// The most operations one graph may have: the default instance pool is sized for this many
    /// operations of the largest kind of operator ([`PER_OPERATION`]). The CLI passes the same
    /// number to compose (`--max-operations`), so what composes also instantiates; a graph that
    /// needs more than the default pool gets an engine sized from its [`Footprint`].
    pub max_operations: u32,
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 256 << 20,
            max_graph_instances: 16,
            max_operations: wasmflow_compose::DEFAULT_MAX_OPERATIONS as u32,
        }
    }
}

/// What one operation may take of the default instance pool, sized for the largest operators
/// built here: a componentize-py operator (`components/python`, CPython inside) instantiates 14
/// core modules with 3 memories and 4 tables, and adds some 400 KiB to the composed component's
/// instance (three of them needed 1,223,776 bytes); a Rust operator on the SDK needs 4 core
/// modules, 1–2 memories and 16 KiB. The pool is only a bound: slots are reserved address space,
/// committed when used, so sizing for Python costs a Rust graph nothing it touches. A graph that
/// needs more than this gets an engine sized from its own [`Footprint`] (`Runtime::start`).
#[derive(Debug, Clone, Copy)]
pub struct PoolPerOperation {
    /// Core module instances.
    pub core_instances: u32,
    /// Linear memories.
    pub memories: u32,
    /// Tables.
    pub tables: u32,
    /// Bytes of the composed component's instance (its `VMComponentContext`).
    pub component_instance_bytes: usize,
}

/// See [`PoolPerOperation`].
pub const PER_OPERATION: PoolPerOperation = PoolPerOperation {
    core_instances: 16,
    memories: 4,
    tables: 4,
    component_instance_bytes: 512 << 10,
};

/// Memories and tables the pool holds in all (their slots are address space reserved up
/// front), unless one graph and its rebuild need more: 2,048 of each.
const POOL_SLOTS: u32 = 16 * 128;

/// wasmtime's default bounds that the default pool keeps: a core instance's context, the
/// elements of one table, one memory and one table per core module.
const DEFAULT_CORE_INSTANCE_BYTES: usize = 1 << 20;
const DEFAULT_TABLE_ELEMENTS: usize = 20_000;

/// What one instance of a graph may take of an engine's pool; the engine's pool holds
/// [`EngineLimits::max_graph_instances`] of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Core module instances of one graph instance.
    pub core_instances: u32,
    /// Memories of one graph instance.
    pub memories: u32,
    /// Tables of one graph instance.
    pub tables: u32,
    /// wasmtime's "component instance size": the component's context and all its core
    /// instances' contexts.
    pub component_instance_bytes: usize,
    /// The largest context of one core instance.
    pub core_instance_bytes: usize,
    /// The most elements one table slot holds.
    pub table_elements: usize,
    /// Memories one core module may define.
    pub memories_per_module: u32,
    /// Tables one core module may define.
    pub tables_per_module: u32,
}

impl PoolLimits {
    /// The default pool: `operations` operations as large as a componentize-py one
    /// ([`PER_OPERATION`]).
    pub fn for_operations(operations: u32) -> Self {
        let ops = operations.max(1);
        Self {
            core_instances: ops.saturating_mul(PER_OPERATION.core_instances),
            memories: ops.saturating_mul(PER_OPERATION.memories),
            tables: ops.saturating_mul(PER_OPERATION.tables),
            component_instance_bytes: (1 << 20).max(ops as usize * PER_OPERATION.component_instance_bytes),
            core_instance_bytes: DEFAULT_CORE_INSTANCE_BYTES,
            table_elements: DEFAULT_TABLE_ELEMENTS,
            memories_per_module: 1,
            tables_per_module: 1,
        }
    }

    /// A pool for exactly what `footprint` measured (its sizes are already upper bounds), and
    /// never less than wasmtime's defaults per core instance and table.
    pub fn for_footprint(footprint: &Footprint) -> Self {
        Self {
            core_instances: footprint.core_instances.max(1),
            memories: footprint.memories.max(1),
            tables: footprint.tables.max(1),
            component_instance_bytes: footprint.component_instance_bytes,
            core_instance_bytes: DEFAULT_CORE_INSTANCE_BYTES.max(footprint.largest_core_instance_bytes),
            table_elements: DEFAULT_TABLE_ELEMENTS
                .max(usize::try_from(footprint.max_table_elements).unwrap_or(usize::MAX)),
            memories_per_module: footprint.max_memories_per_module.max(1),
            tables_per_module: footprint.max_tables_per_module.max(1),
        }
    }

    /// The larger of two pools, limit by limit.
    pub fn max(self, other: PoolLimits) -> Self {
        Self {
            core_instances: self.core_instances.max(other.core_instances),
            memories: self.memories.max(other.memories),
            tables: self.tables.max(other.tables),
            component_instance_bytes: self.component_instance_bytes.max(other.component_instance_bytes),
            core_instance_bytes: self.core_instance_bytes.max(other.core_instance_bytes),
            table_elements: self.table_elements.max(other.table_elements),
            memories_per_module: self.memories_per_module.max(other.memories_per_module),
            tables_per_module: self.tables_per_module.max(other.tables_per_module),
        }
    }

    /// `Ok` when one instance of a component of `footprint` fits; else the first limit it
    /// exceeds, as a phrase (`"112 core instances, more than 64"`).
    pub fn admits(&self, footprint: &Footprint) -> Result<(), String> {
        let over = |what: &str, needed: u64, limit: u64| {
            (needed > limit).then(|| format!("{needed} {what}, more than {limit}"))
        };
        let checks = [
            over(
                "core instances",
                footprint.core_instances.into(),
                self.core_instances.into(),
            ),
            over("memories", footprint.memories.into(), self.memories.into()),
            over("tables", footprint.tables.into(), self.tables.into()),
            over(
                "bytes of instance state",
                footprint.component_instance_bytes as u64,
                self.component_instance_bytes as u64,
            ),
            over(
                "bytes of one core instance's state",
                footprint.largest_core_instance_bytes as u64,
                self.core_instance_bytes as u64,
            ),
            over(
                "table elements",
                footprint.max_table_elements,
                self.table_elements as u64,
            ),
            over(
                "memories in one module",
                footprint.max_memories_per_module.into(),
                self.memories_per_module.into(),
            ),
            over(
                "tables in one module",
                footprint.max_tables_per_module.into(),
                self.tables_per_module.into(),
            ),
        ];
        match checks.into_iter().flatten().next() {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }
}

/// Builds the engine: component model, `implements` imports (per-operation host interfaces),
/// epoch interruption (endless operators), and the pooling allocator (fast rebuilds after traps),
/// sized from [`EngineLimits::max_operations`] ([`PoolLimits::for_operations`]).
pub fn new_engine(limits: &EngineLimits) -> Result<Engine> {
    engine_with_pool(limits, &PoolLimits::for_operations(limits.max_operations))
}

/// The configuration every engine shares, whatever its allocator.
fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_implements(true);
    config.epoch_interruption(true);
    config
}

/// An engine whose pool holds [`EngineLimits::max_graph_instances`] graph instances of `pool`.
pub fn engine_with_pool(limits: &EngineLimits, pool: &PoolLimits) -> Result<Engine> {
    let mut config = base_config();
    let graphs = limits.max_graph_instances.max(1);
    let slots = |per_graph: u32| POOL_SLOTS.max(per_graph.saturating_mul(2));
    let mut pooling = PoolingAllocationConfig::new();
    pooling
        .total_component_instances(graphs)
        .max_core_instances_per_component(pool.core_instances)
        .max_memories_per_component(pool.memories)
        .max_tables_per_component(pool.tables)
        .total_core_instances(graphs.saturating_mul(pool.core_instances))
        .total_memories(slots(pool.memories))
        .total_tables(slots(pool.tables))
        .max_memory_size(limits.max_memory_bytes)
        .max_component_instance_size(pool.component_instance_bytes)
        .max_core_instance_size(pool.core_instance_bytes)
        .table_elements(pool.table_elements)
        .max_memories_per_module(pool.memories_per_module)
        .max_tables_per_module(pool.tables_per_module);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config).step("configuring the wasmtime engine")
}

/// An engine without a pool: every instance is allocated when it is made. The fallback when a
/// pooled engine cannot be configured for a graph (slower rebuilds after traps, no other limit).
pub fn on_demand_engine() -> Result<Engine> {
    let mut config = base_config();
    config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    Engine::new(&config).step("configuring the wasmtime engine")
}

/// Feeds what a `Hash` impl writes into SHA-256, so the result is stable: `Hasher` is the only
/// way wasmtime hands out its configuration's identity.
struct DigestHasher(Sha256);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // Never read: the digest is taken from the inner SHA-256.
        0
    }
}

/// Compiled components on disk, one file per (component digest, engine configuration).
#[derive(Debug, Clone)]
pub struct CompiledCache {
    dir: PathBuf,
}

/// Whether a component came from the cache or was compiled now (shown to users and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from the cache: no compilation.
    Hit,
    /// Compiled now (and stored, if the cache is writable).
    Compiled,
}

impl CompiledCache {
    /// A cache rooted at `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Where this cache keeps its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file name of `bytes` compiled by `engine`: the digest of both.
    fn key(engine: &Engine, bytes: &[u8]) -> String {
        let mut config = DigestHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut config);
        let config = config.0.finalize();
        let component = Sha256::digest(bytes);
        format!("{}-{}.cwasm", hex::encode(&component[..16]), hex::encode(&config[..8]))
    }

    /// Loads the compiled form of `bytes`, compiling and storing it on a miss. A cache that
    /// cannot be written only costs the next start a compile; it is logged, not fatal.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> Result<(Component, CacheOutcome)> {
        let path = self.dir.join(Self::key(engine, bytes));
        if path.is_file() {
            // SAFETY: the file was written by `Component::serialize` of this same engine
            // configuration (the key includes its compatibility hash) into our own cache
            // directory; wasmtime re-checks the header and refuses incompatible artifacts.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => tracing::warn!(path = %path.display(), "ignoring unusable cache entry: {e:#}"),
            }
        }
        let component = Component::new(engine, bytes).step("compiling the graph component")?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(dir = %self.dir.display(), "could not cache compiled graph: {e:#}");
        }
        release_compiler_memory();
        Ok((component, CacheOutcome::Compiled))
    }

    /// Only logged when it fails (see [`CompiledCache::load`]), so the error type is the
    /// plainest that carries both kinds of failure.
    fn store(&self, path: &Path, component: &Component) -> std::result::Result<(), Box<dyn std::error::Error>> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, component.serialize()?)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

/// Gives the heap that compiling left behind back to the operating system: Cranelift frees
/// what it allocated while compiling, but glibc keeps freed memory in its arenas (one per
/// compiling thread). A run that compiled graph-simple idles 7 MiB lower for it (BENCHMARKS.md,
/// "Idle memory"). Only glibc needs this; elsewhere it does nothing.
fn release_compiler_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes no pointers; it returns free pages of every arena to the
    // system and may be called at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component there is: the header alone.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    #[test]
    fn a_changed_engine_setting_misses_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompiledCache::new(dir.path());
        let engine = new_engine(&EngineLimits::default()).unwrap();
        assert_eq!(cache.load(&engine, EMPTY_COMPONENT).unwrap().1, CacheOutcome::Compiled);
        assert_eq!(cache.load(&engine, EMPTY_COMPONENT).unwrap().1, CacheOutcome::Hit);

        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(false);
        let other = Engine::new(&config).unwrap();
        assert_ne!(
            CompiledCache::key(&engine, EMPTY_COMPONENT),
            CompiledCache::key(&other, EMPTY_COMPONENT)
        );
        assert_eq!(cache.load(&other, EMPTY_COMPONENT).unwrap().1, CacheOutcome::Compiled);
    }

    #[test]
    fn the_key_is_the_digest_of_the_bytes_and_the_configuration() {
        let engine = new_engine(&EngineLimits::default()).unwrap();
        let key = CompiledCache::key(&engine, EMPTY_COMPONENT);
        assert_eq!(key, CompiledCache::key(&engine, EMPTY_COMPONENT), "deterministic");
        let digest = hex::encode(&Sha256::digest(EMPTY_COMPONENT)[..16]);
        assert!(key.starts_with(&digest), "{key}");
        assert_ne!(key, CompiledCache::key(&engine, b"\0asm\x0d\x00\x01\x00\x00"));
    }
}
