//! The data of one graph's wasmtime `Store`, and the glue from generated WIT traits to the host
//! capabilities (buffer, logger, metrics, state store, schema registry, WASI).
//!
//! Operation identity arrives as the [`OpId`] that wasmtime's `named_imports` passes to every
//! call on an `op{i}-…` import, so logs, metric labels and state-store errors name the caller.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::wasm_graph::processor as wit;
use crate::bindings::{named_imports, HybridLogicalClock, Timespec};
use crate::buffer::{self, Payload};
use crate::hlc::Hlc;
use crate::logger::{self, OpIdentity};
use crate::metrics::{Metrics, MetricsError};
use crate::state_store::{self, SetCondition, StateStore};

/// Index of an operation in its graph's manifest; `OpId::UNNAMED` for imports that were not
/// given a per-operation name (a module run on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpId(pub u32);

impl OpId {
    pub const UNNAMED: OpId = OpId(u32::MAX);

    /// Reads the operation index from a per-operation import name such as `op3-logger`.
    pub fn from_import_name(name: &str) -> Option<OpId> {
        let rest = name.strip_prefix("op")?;
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let after = &rest[digits.len()..];
        (!digits.is_empty() && after.starts_with('-'))
            .then(|| digits.parse().ok().map(OpId))
            .flatten()
    }
}

/// What every store of one graph shares: who the operations are and the services they use.
pub struct GraphServices {
    pub graph: Arc<str>,
    pub operations: Vec<OpIdentity>,
    pub metrics: Metrics,
    pub state: StateStore,
    /// `(name, content-type, content)` from the graph's `schemas`, answered by `schema-registry`.
    pub schemas: Vec<(String, String, String)>,
    /// wasi-nn, when a module of the graph imports it (see `wasi_nn::NnRuntime::for_manifest`).
    pub nn: Option<Arc<crate::wasi_nn::WasiNn>>,
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
        let schemas = manifest
            .schemas
            .iter()
            .map(|s| (s.name.clone(), s.format.clone(), s.content.clone()))
            .collect();
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

/// What WASI lets modules reach. Nothing by default: no environment, no files, no network, no
/// standard streams; each grant is the user's explicit choice.
#[derive(Debug, Clone, Default)]
pub struct WasiGrants {
    /// Environment variables modules see.
    pub env: Vec<(String, String)>,
    /// Host directories modules may read, as `(host path, guest path)`; read-only.
    pub dirs: Vec<(std::path::PathBuf, String)>,
    /// Let modules write to the host's standard error (debug printing).
    pub inherit_stderr: bool,
}

impl WasiGrants {
    fn build(&self) -> anyhow::Result<WasiCtx> {
        let mut b = WasiCtx::builder();
        b.envs(&self.env);
        for (host, guest) in &self.dirs {
            b.preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadOnly)
                .map_err(|e| anyhow::anyhow!("cannot grant directory {}: {e}", host.display()))?;
        }
        if self.inherit_stderr {
            b.inherit_stderr();
        }
        Ok(b.build())
    }
}

/// The per-store data: resource table, WASI context (only what was granted), limits and services.
pub struct HostState {
    pub table: ResourceTable,
    wasi: WasiCtx,
    pub limits: StoreLimits,
    pub services: Arc<GraphServices>,
    /// This store's wasi-nn context (empty unless the graph uses wasi-nn).
    pub nn: wasmtime_wasi_nn::wit::WasiNnCtx,
}

impl HostState {
    /// `max_memory` bounds each linear memory; exceeding it makes `memory.grow` fail, which a
    /// guest's allocator turns into a trap.
    pub fn new(services: Arc<GraphServices>, max_memory: usize, grants: &WasiGrants) -> anyhow::Result<Self> {
        Ok(Self {
            table: ResourceTable::new(),
            wasi: grants.build()?,
            limits: StoreLimitsBuilder::new().memory_size(max_memory).build(),
            nn: services
                .nn
                .as_ref()
                .map_or_else(crate::wasi_nn::disabled_ctx, |nn| nn.ctx()),
            services,
        })
    }
}

impl wit::types::HostBuffer for HostState {
    fn read(&mut self, this: wasmtime::component::Resource<Payload>) -> wasmtime::Result<Vec<u8>> {
        buffer::read(&self.table, &this)
    }

    fn drop(&mut self, this: wasmtime::component::Resource<Payload>) -> wasmtime::Result<()> {
        buffer::drop(&mut self.table, this)
    }
}

impl wit::types::Host for HostState {}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Adds every host interface to `linker`. Per-operation imports are found by inspecting the
/// component's `implements` imports, so this needs the component being linked.
pub fn add_to_linker(linker: &mut Linker<HostState>, component: &wasmtime::component::Component) -> anyhow::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    fn getter(s: &mut HostState) -> &mut HostState {
        s
    }
    wit::types::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    wit::hybrid_logical_clock::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    wit::state_store_types::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    wit::logger::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    wit::metrics::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    wit::state_store::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    wit::schema_types::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    wit::schema_registry::add_to_linker::<HostState, HasSelf<HostState>>(linker, getter)?;
    let lookup = |name: &str| {
        OpId::from_import_name(name).ok_or_else(|| {
            wasmtime::Error::msg(format!(
                "import `{name}` does not name an operation (expected `op<N>-…`)"
            ))
        })
    };
    named_imports::wasm_graph::processor::logger::add_to_linker::<HostState, HasSelf<HostState>>(
        linker, component, lookup, getter,
    )?;
    named_imports::wasm_graph::processor::metrics::add_to_linker::<HostState, HasSelf<HostState>>(
        linker, component, lookup, getter,
    )?;
    named_imports::wasm_graph::processor::state_store::add_to_linker::<HostState, HasSelf<HostState>>(
        linker, component, lookup, getter,
    )?;
    Ok(())
}

/// Adds wasi-nn to `linker` when the graph's services carry it (a module imports `wasi:nn`).
pub fn add_wasi_nn_to_linker(linker: &mut Linker<HostState>, services: &GraphServices) -> anyhow::Result<()> {
    if services.nn.is_some() {
        crate::wasi_nn::add_to_linker(linker, |s| crate::wasi_nn::view(&mut s.table, &mut s.nn))?;
    }
    Ok(())
}

impl wit::hybrid_logical_clock::Host for HostState {}
impl wit::state_store_types::Host for HostState {}
impl wit::schema_types::Host for HostState {}

impl named_imports::wasm_graph::processor::logger::Host for HostState {
    fn log(&mut self, id: OpId, level: wit::logger::Level, context: String, message: String) -> wasmtime::Result<()> {
        logger::log(&self.services.identity(id), level, &context, &message);
        Ok(())
    }
}

impl wit::logger::Host for HostState {
    fn log(&mut self, level: wit::logger::Level, context: String, message: String) -> wasmtime::Result<()> {
        named_imports::wasm_graph::processor::logger::Host::log(self, OpId::UNNAMED, level, context, message)
    }
}

fn labels(l: Option<Vec<wit::metrics::Label>>) -> Vec<(String, String)> {
    l.unwrap_or_default().into_iter().map(|l| (l.key, l.value)).collect()
}

fn metrics_error(e: MetricsError) -> wit::metrics::MetricsError {
    match e {
        MetricsError::IncompatibleType(..) => wit::metrics::MetricsError::IncompatibleType(e.to_string()),
        MetricsError::Lock => wit::metrics::MetricsError::LockError(e.to_string()),
    }
}

impl named_imports::wasm_graph::processor::metrics::Host for HostState {
    fn add_to_counter(
        &mut self,
        id: OpId,
        name: String,
        value: wit::metrics::CounterValue,
        l: Option<Vec<wit::metrics::Label>>,
    ) -> wasmtime::Result<Result<(), wit::metrics::MetricsError>> {
        let wit::metrics::CounterValue::U64(v) = value;
        let who = self.services.identity(id);
        Ok(self
            .services
            .metrics
            .add_to_counter(&who, &name, v, &labels(l))
            .map_err(metrics_error))
    }

    fn record_to_histogram(
        &mut self,
        id: OpId,
        name: String,
        value: wit::metrics::HistogramValue,
        l: Option<Vec<wit::metrics::Label>>,
    ) -> wasmtime::Result<Result<(), wit::metrics::MetricsError>> {
        let v = match value {
            wit::metrics::HistogramValue::F64(v) => v,
            wit::metrics::HistogramValue::U64(v) => v as f64,
        };
        let who = self.services.identity(id);
        Ok(self
            .services
            .metrics
            .record_to_histogram(&who, &name, v, &labels(l))
            .map_err(metrics_error))
    }
}

impl wit::metrics::Host for HostState {
    fn add_to_counter(
        &mut self,
        name: String,
        value: wit::metrics::CounterValue,
        l: Option<Vec<wit::metrics::Label>>,
    ) -> wasmtime::Result<Result<(), wit::metrics::MetricsError>> {
        named_imports::wasm_graph::processor::metrics::Host::add_to_counter(self, OpId::UNNAMED, name, value, l)
    }

    fn record_to_histogram(
        &mut self,
        name: String,
        value: wit::metrics::HistogramValue,
        l: Option<Vec<wit::metrics::Label>>,
    ) -> wasmtime::Result<Result<(), wit::metrics::MetricsError>> {
        named_imports::wasm_graph::processor::metrics::Host::record_to_histogram(self, OpId::UNNAMED, name, value, l)
    }
}

use wit::state_store_types::{
    Duration as WitDuration, SetConditions, SetOptions, StateStoreDelResponse, StateStoreError as WitStateError,
    StateStoreGetResponse, StateStoreSetResponse,
};

fn wit_hlc(h: Hlc) -> HybridLogicalClock {
    HybridLogicalClock {
        timestamp: Timespec {
            secs: h.secs,
            nanos: h.nanos,
        },
        counter: h.counter,
        node_id: h.node_id,
    }
}

fn store_error(who: &OpIdentity, e: state_store::StateStoreError) -> WitStateError {
    tracing::debug!(
        graph = &*who.graph,
        operation = &*who.operation,
        "state store refused: {e}"
    );
    WitStateError::RequestError(e.to_string())
}

impl named_imports::wasm_graph::processor::state_store::Host for HostState {
    fn get(
        &mut self,
        id: OpId,
        key: Vec<u8>,
        _timeout: Option<WitDuration>,
    ) -> wasmtime::Result<Result<StateStoreGetResponse, WitStateError>> {
        let who = self.services.identity(id);
        Ok(self
            .services
            .state
            .get(&key)
            .map(|r| StateStoreGetResponse {
                response: r.value,
                version: r.version.map(wit_hlc),
            })
            .map_err(|e| store_error(&who, e)))
    }

    fn set(
        &mut self,
        id: OpId,
        key: Vec<u8>,
        value: Vec<u8>,
        _timeout: Option<WitDuration>,
        fencing_token: Option<HybridLogicalClock>,
        options: SetOptions,
    ) -> wasmtime::Result<Result<StateStoreSetResponse, WitStateError>> {
        let who = self.services.identity(id);
        let cond = match options.conditions {
            SetConditions::OnlyIfDoesNotExist => SetCondition::OnlyIfDoesNotExist,
            SetConditions::OnlyIfEqualOrDoesNotExist => SetCondition::OnlyIfEqualOrDoesNotExist,
            SetConditions::Unconditional => SetCondition::Unconditional,
        };
        let expires = options.expires.map(|d| Duration::new(d.seconds, d.nanos));
        let fence = fencing_token.as_ref().map(Hlc::from);
        Ok(self
            .services
            .state
            .set(&key, &value, fence.as_ref(), cond, expires)
            .map(|r| StateStoreSetResponse {
                response: r.done,
                version: r.version.map(wit_hlc),
            })
            .map_err(|e| store_error(&who, e)))
    }

    fn del(
        &mut self,
        id: OpId,
        key: Vec<u8>,
        fencing_token: Option<HybridLogicalClock>,
        _timeout: Option<WitDuration>,
    ) -> wasmtime::Result<Result<StateStoreDelResponse, WitStateError>> {
        let who = self.services.identity(id);
        let fence = fencing_token.as_ref().map(Hlc::from);
        Ok(self
            .services
            .state
            .del(&key, fence.as_ref())
            .map(|r| StateStoreDelResponse {
                response: r.deleted,
                version: None,
            })
            .map_err(|e| store_error(&who, e)))
    }

    fn vdel(
        &mut self,
        id: OpId,
        key: Vec<u8>,
        value: Vec<u8>,
        fencing_token: Option<HybridLogicalClock>,
        _timeout: Option<WitDuration>,
    ) -> wasmtime::Result<Result<StateStoreDelResponse, WitStateError>> {
        let who = self.services.identity(id);
        let fence = fencing_token.as_ref().map(Hlc::from);
        Ok(self
            .services
            .state
            .vdel(&key, &value, fence.as_ref())
            .map(|r| StateStoreDelResponse {
                response: r.deleted,
                version: None,
            })
            .map_err(|e| store_error(&who, e)))
    }
}

impl wit::state_store::Host for HostState {
    fn get(
        &mut self,
        key: Vec<u8>,
        t: Option<WitDuration>,
    ) -> wasmtime::Result<Result<StateStoreGetResponse, WitStateError>> {
        named_imports::wasm_graph::processor::state_store::Host::get(self, OpId::UNNAMED, key, t)
    }
    fn set(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        t: Option<WitDuration>,
        f: Option<HybridLogicalClock>,
        o: SetOptions,
    ) -> wasmtime::Result<Result<StateStoreSetResponse, WitStateError>> {
        named_imports::wasm_graph::processor::state_store::Host::set(self, OpId::UNNAMED, key, value, t, f, o)
    }
    fn del(
        &mut self,
        key: Vec<u8>,
        f: Option<HybridLogicalClock>,
        t: Option<WitDuration>,
    ) -> wasmtime::Result<Result<StateStoreDelResponse, WitStateError>> {
        named_imports::wasm_graph::processor::state_store::Host::del(self, OpId::UNNAMED, key, f, t)
    }
    fn vdel(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        f: Option<HybridLogicalClock>,
        t: Option<WitDuration>,
    ) -> wasmtime::Result<Result<StateStoreDelResponse, WitStateError>> {
        named_imports::wasm_graph::processor::state_store::Host::vdel(self, OpId::UNNAMED, key, value, f, t)
    }
}

impl wit::schema_registry::Host for HostState {
    fn get(
        &mut self,
        id: String,
        _version: String,
        _timeout: WitDuration,
    ) -> wasmtime::Result<Result<wit::schema_types::Schema, wit::schema_types::SchemaError>> {
        Ok(self
            .services
            .schemas
            .iter()
            .find(|(name, _, _)| *name == id)
            .map(|(name, content_type, content)| wit::schema_types::Schema {
                name: name.clone(),
                content_type: content_type.clone(),
                content: content.clone(),
            })
            .ok_or(wit::schema_types::SchemaError::NotFound))
    }
}

#[cfg(test)]
mod tests {
    use super::OpId;

    #[test]
    fn op_ids_come_from_import_names() {
        assert_eq!(OpId::from_import_name("op3-logger"), Some(OpId(3)));
        assert_eq!(OpId::from_import_name("op12-state-store"), Some(OpId(12)));
        assert_eq!(OpId::from_import_name("logger"), None);
        assert_eq!(OpId::from_import_name("opx-logger"), None);
        assert_eq!(OpId::from_import_name("op3logger"), None);
    }
}
