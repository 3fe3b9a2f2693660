//! Runs composed wasmflow graphs in wasmtime.
//!
//! [`Runtime`] is what a process has once: one engine, one compiled-code cache ([`engine`]),
//! one metrics registry and one state store, shared by every graph it runs. [`graph::Graph`] is
//! one running graph: its instance and the router between its operations. The host services
//! operators import live in [`services`], each beside its WIT implementation; [`linker`] adds
//! them all to a graph's linker.
//!
//! Module order (each uses only those above it): `identity`, `buffer`, `bindings`, `item`,
//! `limits`, `stderr`, `services` (each service's `host.rs` included), `store`, `linker`,
//! `engine`, `graph`, this crate's root.

#![warn(missing_docs)]

pub mod bindings;
pub mod buffer;
pub mod engine;
pub mod error;
pub mod graph;
pub mod identity;
pub mod item;
pub mod limits;
pub mod linker;
pub mod services;
pub mod stderr;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use wasmflow_compose::{ComposeOptions, ComposedCache, Manifest};
use wasmtime::Engine;

use crate::engine::{
    engine_with_pool, on_demand_engine, CacheOutcome, CompiledCache, EngineLimits, Footprint, PoolLimits,
};
use crate::error::{Context, Result, RuntimeError};
use crate::graph::{Graph, RunOptions, EPOCH_TICK};
use crate::services::metrics::Metrics;
use crate::services::state_store::StateStore;
use crate::services::wasi_nn::{NnOptions, NnRuntime};
use crate::services::GraphServices;

/// Where the runtime keeps what must outlive a run.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Holds the compiled-code cache and, unless `ephemeral_state`, the state store file.
    pub data_dir: PathBuf,
    /// Keep the state store in memory (tests, `wasmflow test`): nothing is written.
    pub ephemeral_state: bool,
    /// Where compiled graphs are cached; `<data_dir>/cache` when `None`.
    pub cache_dir: Option<PathBuf>,
    /// Bounds on what graphs may consume.
    pub limits: EngineLimits,
}

impl RuntimeConfig {
    /// `$WASMFLOW_DATA_DIR`, else `$XDG_DATA_HOME/wasmflow`, else `~/.local/share/wasmflow`.
    pub fn default_data_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("WASMFLOW_DATA_DIR") {
            return d.into();
        }
        if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
            return PathBuf::from(d).join("wasmflow");
        }
        std::env::var_os("HOME").map_or_else(
            || PathBuf::from(".wasmflow"),
            |h| PathBuf::from(h).join(".local/share/wasmflow"),
        )
    }
}

/// A graph ready to run: the composed component and what it says about itself.
pub struct LoadedGraph {
    /// The composed component.
    pub bytes: Vec<u8>,
    /// What the component says about itself (its `wasmflow-graph` section).
    pub manifest: Manifest,
    /// Where it came from, for messages.
    pub origin: String,
}

/// The modules directory a build of this repository fills (`scripts/build-components.sh`).
pub fn default_modules_dir() -> PathBuf {
    // This crate is `host/runtime` of the repository.
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.ancestors().nth(2).unwrap_or(crate_dir).join("target/modules")
}

/// Reads a graph: a definition (`.yaml`/`.yml`, composed now) or a composed `.wasm`.
pub fn load_graph(target: &Path, compose: &ComposeOptions) -> Result<LoadedGraph> {
    load_graph_cached(target, compose, None)
}

/// [`load_graph`], a definition taken from `cache` when neither it, its modules nor the
/// options changed since it was composed there (and stored there when it is composed now).
pub fn load_graph_cached(
    target: &Path,
    compose: &ComposeOptions,
    cache: Option<&ComposedCache>,
) -> Result<LoadedGraph> {
    let origin = target.display().to_string();
    let ext = target.extension().and_then(|e| e.to_str()).unwrap_or_default();
    if ext == "wasm" {
        let bytes = std::fs::read(target).map_err(|error| RuntimeError::Read {
            origin: origin.clone(),
            error,
        })?;
        let manifest = Manifest::from_component(&bytes)
            .map_err(|e| RuntimeError::from(e).context(origin.clone()))?
            .ok_or(RuntimeError::NotAGraph { origin: origin.clone() })?;
        return Ok(LoadedGraph {
            bytes,
            manifest,
            origin,
        });
    }
    let composed = match cache {
        Some(cache) => {
            let (composed, outcome) = cache.compose_file(target, compose)?;
            tracing::debug!(?outcome, cache = %cache.dir().display(), "{origin}");
            composed
        }
        None => {
            let graph = wasmflow_compose::load_graph_with(target, &compose.limits)?;
            wasmflow_compose::compose(&graph, compose)?
        }
    };
    for w in &composed.warnings {
        tracing::warn!("{origin}: {w}");
    }
    Ok(LoadedGraph {
        bytes: composed.bytes,
        manifest: composed.manifest,
        origin,
    })
}

/// Which engine a graph runs on (see [`Runtime::engine_for`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineChoice {
    /// The runtime's engine: its pool (sized for `--max-operations`) admits the graph.
    Default,
    /// An engine whose pool was sized from the graph's [`Footprint`], which the default pool
    /// does not admit.
    Sized(PoolLimits),
    /// An engine without a pool, for the logged reason.
    OnDemand(String),
}

/// Shared runtime state; dropping it stops the epoch clock.
pub struct Runtime {
    engine: Engine,
    /// What the default engine's pool admits per graph instance.
    pool: PoolLimits,
    limits: EngineLimits,
    /// Engines made for graphs the default pool does not admit (`None`: no pool), reused by
    /// later graphs they admit.
    sized: Mutex<Vec<(Option<PoolLimits>, Engine)>>,
    /// Every engine of this runtime, which the epoch clock advances.
    engines: Arc<Mutex<Vec<Engine>>>,
    cache: CompiledCache,
    /// The process's metrics registry (every graph's series).
    pub metrics: Metrics,
    /// The process's state store.
    pub state: StateStore,
    stop: Arc<AtomicBool>,
    /// wasi-nn, started for the first graph that imports it.
    nn: NnRuntime,
}

impl Runtime {
    /// Builds the engine, opens the embedded state store (in memory when `ephemeral_state`)
    /// and starts the epoch clock.
    pub fn new(config: &RuntimeConfig) -> Result<Self> {
        let state = if config.ephemeral_state {
            StateStore::in_memory()?
        } else {
            StateStore::open(&config.data_dir.join("state.redb"))?
        };
        Self::with_state(config, state)
    }

    /// As [`Runtime::new`], with a state store opened by the caller (`run --state redis://…`
    /// connects one shared with other processes); `ephemeral_state` is not looked at.
    pub fn with_state(config: &RuntimeConfig, state: StateStore) -> Result<Self> {
        let pool = PoolLimits::for_operations(config.limits.max_operations);
        let engine = engine_with_pool(&config.limits, &pool)?;
        let stop = Arc::new(AtomicBool::new(false));
        let engines = Arc::new(Mutex::new(vec![engine.clone()]));
        // The epoch clock that lets wasmtime interrupt an operator stuck in a loop.
        let (e, s) = (engines.clone(), stop.clone());
        std::thread::Builder::new()
            .name("wasmflow-epoch".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    for engine in e.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                        engine.increment_epoch();
                    }
                }
            })
            .map_err(|error| RuntimeError::Thread {
                name: "epoch clock",
                error,
            })?;
        Ok(Self {
            engine,
            pool,
            limits: config.limits.clone(),
            sized: Mutex::new(Vec::new()),
            engines,
            cache: CompiledCache::new(
                config
                    .cache_dir
                    .clone()
                    .unwrap_or_else(|| config.data_dir.join("cache")),
            ),
            metrics: Metrics::new(),
            state,
            stop,
            nn: Default::default(),
        })
    }

    /// Where ONNX Runtime is and which models to preload, for graphs that use wasi-nn (by
    /// default: found through `ORT_DYLIB_PATH` or the set-up location, no models).
    pub fn with_wasi_nn(mut self, options: NnOptions) -> Self {
        self.nn = NnRuntime::new(options);
        self
    }

    /// Replaces the metrics registry (one labelled with the process's instance:
    /// [`Metrics::with_instance`]); call before starting graphs, whose series it then holds.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The runtime's default engine, whose pool is sized for `--max-operations` operations.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine `graph` runs on. Its [`Footprint`] (read from the composed component) decides:
    /// the default engine when its pool admits the graph; else an engine whose pool is sized
    /// from the footprint (made once, reused for later graphs it admits); an engine without a
    /// pool when such a pool cannot be configured. Every choice but the default is logged with
    /// its reason.
    pub fn engine_for(&self, graph: &LoadedGraph) -> Result<(Engine, EngineChoice)> {
        let footprint = match Footprint::of_component(&graph.bytes) {
            Ok(footprint) => footprint,
            Err(e) => {
                tracing::warn!(
                    "{}: the graph's footprint cannot be read ({e}); it runs on the default instance pool",
                    graph.origin
                );
                return Ok((self.engine.clone(), EngineChoice::Default));
            }
        };
        let Err(reason) = self.pool.admits(&footprint) else {
            return Ok((self.engine.clone(), EngineChoice::Default));
        };
        let mut sized = self.sized.lock().unwrap_or_else(|p| p.into_inner());
        let fits = |pool: &Option<PoolLimits>| pool.as_ref().is_none_or(|p| p.admits(&footprint).is_ok());
        if let Some((pool, engine)) = sized.iter().find(|(pool, _)| fits(pool)) {
            let choice = match pool {
                Some(pool) => EngineChoice::Sized(*pool),
                None => EngineChoice::OnDemand(format!("{reason} in the default pool")),
            };
            return Ok((engine.clone(), choice));
        }
        let name = &graph.manifest.name;
        let pool = PoolLimits::for_footprint(&footprint).max(self.pool);
        let (engine, kept, choice) = match engine_with_pool(&self.limits, &pool) {
            Ok(engine) => {
                tracing::info!(
                    "graph `{name}` needs {footprint}: {reason} in the instance pool sized for {} operations \
                     (--max-operations); it runs on an engine whose pool is sized from the component",
                    self.limits.max_operations
                );
                (engine, Some(pool), EngineChoice::Sized(pool))
            }
            Err(e) => {
                let why = format!(
                    "graph `{name}` needs {footprint} ({reason} in the default pool) and a pool sized for it \
                     cannot be configured: {e:#}"
                );
                tracing::warn!("{why}; its instances are allocated on demand");
                (on_demand_engine()?, None, EngineChoice::OnDemand(why))
            }
        };
        sized.push((kept, engine.clone()));
        self.engines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(engine.clone());
        Ok((engine, choice))
    }

    /// Compiles (or loads from cache) and starts a graph, on the engine [`Runtime::engine_for`]
    /// chooses.
    pub fn start(&self, graph: &LoadedGraph, options: RunOptions) -> Result<(Graph, CacheOutcome)> {
        let (engine, _) = self.engine_for(graph)?;
        let (component, outcome) = self
            .cache
            .load(&engine, &graph.bytes)
            .with_context(|| format!("loading {}", graph.origin))?;
        let mut services = GraphServices::for_manifest(&graph.manifest, self.metrics.clone(), self.state.clone());
        services.schemas.extend(options.schemas.iter().cloned());
        services.nn = self
            .nn
            .for_manifest(&graph.manifest)
            .map_err(RuntimeError::from)
            .with_context(|| format!("starting graph `{}` from {}", graph.manifest.name, graph.origin))?;
        let services = Arc::new(services);
        let g = Graph::new(&engine, &component, graph.manifest.clone(), services, options)
            .with_context(|| format!("starting graph `{}` from {}", graph.manifest.name, graph.origin))?;
        Ok((g, outcome))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
