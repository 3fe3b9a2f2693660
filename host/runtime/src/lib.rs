//! Runs composed wasmflow graphs in wasmtime.
//!
//! [`Runtime`] is what a process has once: one engine, one compiled-code cache ([`engine`]),
//! one metrics registry and one state store, shared by every graph it runs. [`graph::Graph`] is
//! one running graph: its instance and the router between its operations. The host services
//! operators import live in [`services`], each beside its WIT implementation; [`linker`] adds
//! them all to a graph's linker.
//!
//! Module order (each uses only those above it): `identity`, `buffer` (data), `bindings`,
//! `item`, `services`, `store`, `buffer::host` and `services::*::host`, `linker`, `engine`,
//! `graph`, this crate's root.

#![warn(missing_docs)]

pub mod bindings;
pub mod buffer;
pub mod engine;
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
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use wasmflow_compose::{ComposeOptions, Manifest};
use wasmtime::Engine;

use crate::engine::{new_engine, CacheOutcome, CompiledCache, EngineLimits};
use crate::graph::{Graph, RunOptions, EPOCH_TICK};
use crate::services::metrics::Metrics;
use crate::services::state_store::StateStore;
use crate::services::wasi_nn::{NnOptions, NnRuntime};
use crate::store::GraphServices;

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
    let origin = target.display().to_string();
    let ext = target.extension().and_then(|e| e.to_str()).unwrap_or_default();
    if ext == "wasm" {
        let bytes = std::fs::read(target).with_context(|| format!("reading {origin}"))?;
        let manifest = Manifest::from_component(&bytes)
            .map_err(|e| anyhow!("{e}"))?
            .ok_or_else(|| anyhow!("{origin} is not a composed wasmflow graph (no `wasmflow-graph` section); compose a graph definition with `wasmflow compose`"))?;
        return Ok(LoadedGraph {
            bytes,
            manifest,
            origin,
        });
    }
    let graph = wasmflow_compose::load_graph_with(target, &compose.limits).map_err(|e| anyhow!("{e}"))?;
    let composed = wasmflow_compose::compose(&graph, compose).map_err(|e| anyhow!("{e}"))?;
    for w in &composed.warnings {
        tracing::warn!("{origin}: {w}");
    }
    Ok(LoadedGraph {
        bytes: composed.bytes,
        manifest: composed.manifest,
        origin,
    })
}

/// Shared runtime state; dropping it stops the epoch clock.
pub struct Runtime {
    engine: Engine,
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
        let engine = new_engine(&config.limits)?;
        let stop = Arc::new(AtomicBool::new(false));
        // The epoch clock that lets wasmtime interrupt an operator stuck in a loop.
        let (e, s) = (engine.clone(), stop.clone());
        std::thread::Builder::new()
            .name("wasmflow-epoch".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    e.increment_epoch();
                }
            })?;
        Ok(Self {
            engine,
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

    /// The engine every graph of this runtime is compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles (or loads from cache) and starts a graph.
    pub fn start(&self, graph: &LoadedGraph, options: RunOptions) -> Result<(Graph, CacheOutcome)> {
        let (component, outcome) = self
            .cache
            .load(&self.engine, &graph.bytes)
            .with_context(|| format!("loading {}", graph.origin))?;
        let mut services = GraphServices::for_manifest(&graph.manifest, self.metrics.clone(), self.state.clone());
        services.schemas.extend(options.schemas.iter().cloned());
        services.nn = self
            .nn
            .for_manifest(&graph.manifest)
            .with_context(|| format!("starting graph `{}` from {}", graph.manifest.name, graph.origin))?;
        let services = Arc::new(services);
        let g = Graph::new(&self.engine, &component, graph.manifest.clone(), services, options)
            .with_context(|| format!("starting graph `{}` from {}", graph.manifest.name, graph.origin))?;
        Ok((g, outcome))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
