//! The host services operators import, each beside its WIT implementation (`host.rs`): the
//! service itself knows nothing of wasmtime's generated traits, and its `host` module maps the
//! WIT records to it.

pub mod logger;
pub mod metrics;
pub mod schema_registry;
pub mod state_store;
pub mod wasi_nn;

use std::sync::Arc;

use wasmtime::component::HasData;

use crate::identity::{OpId, OpIdentity};
use metrics::Metrics;
use schema_registry::Schemas;
use state_store::StateStore;
use wasi_nn::WasiNn;

/// What every store of one graph shares: who the operations are and the services they use.
pub struct GraphServices {
    /// The graph's name.
    pub graph: Arc<str>,
    /// One identity per operation, in manifest order (an `op{i}-…` import's index is its identity).
    pub operations: Vec<OpIdentity>,
    /// The process's metrics registry.
    pub metrics: Metrics,
    /// The process's state store.
    pub state: StateStore,
    /// The graph's `schemas`, answered by `schema-registry`.
    pub schemas: Schemas,
    /// wasi-nn, when a module of the graph imports it (see `NnRuntime::for_manifest`).
    pub nn: Option<Arc<WasiNn>>,
}

impl GraphServices {
    /// The services of a graph: one identity per operation of its manifest, in manifest order
    /// (so an `op{i}-…` import's index is its identity), and the graph's schemas.
    pub fn for_manifest(manifest: &wasmflow_compose::Manifest, metrics: Metrics, state: StateStore) -> Self {
        let graph: Arc<str> = manifest.name.clone().into();
        let operations = manifest
            .operations
            .iter()
            .map(|o| OpIdentity {
                graph: graph.clone(),
                operation: o.name.as_str().into(),
            })
            .collect();
        let schemas = Schemas::from_manifest(manifest);
        Self {
            graph,
            operations,
            metrics,
            state,
            schemas,
            nn: None,
        }
    }

    /// The identity behind an id, falling back to the graph itself for unnamed imports.
    pub fn identity(&self, id: OpId) -> OpIdentity {
        self.operations
            .get(id.0 as usize)
            .cloned()
            .unwrap_or_else(|| OpIdentity {
                graph: self.graph.clone(),
                operation: "(module)".into(),
            })
    }
}

/// The WIT interfaces of the services are implemented on `&GraphServices` (every `host.rs`
/// here), which the linker borrows from whichever store is calling, as `wasmtime_wasi`'s are on
/// its `WasiCtxView`: the services need no access to the store's data type, and a call cannot
/// reach anything of the store but the services.
impl HasData for GraphServices {
    type Data<'a> = &'a GraphServices;
}
