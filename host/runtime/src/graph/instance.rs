//! The graph's instance: the composed component linked once (`InstancePre`), each operation's
//! exports resolved once, and a fresh store and instance with every `init` run, at start and
//! again after a trap.

use std::sync::Arc;
use std::time::Duration;

use wasmflow_compose::{Manifest, OperationKind, Override, Routing};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, TypedFunc};
use wasmtime::{Engine, Store};

use super::call::{describe_trap, ticks, with_stderr, Live, OpFuncs};
use super::composed::RouterExports;
use crate::bindings::{ModuleConfiguration, ModuleSchema};
use crate::error::{Context, Result, RuntimeError, WasmtimeStep};
use crate::limits::MemoryBudget;
use crate::linker;
use crate::services::schema_registry::Schema;
use crate::services::GraphServices;
use crate::store::{HostState, WasiGrants};

/// How a graph instance is run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Longest a single operator call may run before it is interrupted (an endless loop traps).
    pub call_timeout: Duration,
    /// Largest linear memory any module may grow to.
    pub max_memory: usize,
    /// Largest sum of every linear memory of the graph (one store holds them all).
    pub max_graph_memory: usize,
    /// Run-time configuration overrides (`-c key=value`, `-c op.key=value`).
    pub overrides: Vec<Override>,
    /// Send items an operator rejected (or trapped on) to the dead-letter output.
    pub dead_letter: bool,
    /// What WASI lets modules reach (nothing by default).
    pub wasi: WasiGrants,
    /// Run wasmflow's own source/sink plumbing natively (the default) instead of calling its
    /// components; `false` keeps every call in the instance (tests prove both give the same
    /// bytes; the bench measures the difference).
    pub native_plumbing: bool,
    /// Schemas given at run time (`--schema`, a test scenario's schema file), beside the
    /// definition's own: the schema registry answers for them and every `init` receives them.
    pub schemas: Vec<Schema>,
    /// Who moves items between operations: this host (the default), or the router composed
    /// into the graph (`--router composed`; the graph must have been composed with it).
    pub routing: Routing,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(5),
            max_memory: 256 << 20,
            max_graph_memory: 1 << 30,
            overrides: vec![],
            dead_letter: false,
            wasi: WasiGrants::default(),
            native_plumbing: true,
            schemas: vec![],
            routing: Routing::Host,
        }
    }
}

/// Export indices resolved once per component, reused by every rebuilt instance.
struct OpExports {
    process: ComponentExportIndex,
    init: Option<ComponentExportIndex>,
}

/// What is needed to make a live instance, as often as a trap asks for one.
pub(super) struct Instance {
    pre: InstancePre<HostState>,
    exports: Vec<OpExports>,
    /// The graph's own router, with [`Routing::Composed`].
    router: Option<RouterExports>,
    /// Each operation's `init` configuration (defaults with the overrides applied).
    configs: Vec<Vec<(String, String)>>,
}

/// The export of an operation's instance that the router calls.
fn entry_point(kind: OperationKind) -> &'static str {
    match kind {
        OperationKind::Source => "event-time",
        OperationKind::Sink => "ts-property",
        OperationKind::Concatenate => "merge",
        _ => "process",
    }
}

impl Instance {
    /// Links the component's imports and resolves every operation's exports. Fails naming the
    /// operation whose export is missing or whose configuration lacks a required parameter.
    pub fn new(
        engine: &Engine,
        component: &Component,
        manifest: &Manifest,
        services: &GraphServices,
        options: &RunOptions,
    ) -> Result<Self> {
        let mut linker = Linker::new(engine);
        linker::add_to_linker(&mut linker, component).step("linking host interfaces")?;
        linker::add_wasi_nn_to_linker(&mut linker, services).step("linking wasi-nn")?;
        let pre = linker
            .instantiate_pre(component)
            .step("the graph imports something this host does not provide")?;
        let mut exports = Vec::new();
        let mut configs = Vec::new();
        for op in &manifest.operations {
            let inst = component.get_export_index(None, &op.export).ok_or_else(|| {
                RuntimeError::Graph(format!(
                    "operation `{}`: the component has no export `{}`",
                    op.name, op.export
                ))
            })?;
            let process = component
                .get_export_index(Some(&inst), entry_point(op.kind))
                .ok_or_else(|| {
                    RuntimeError::Graph(format!(
                        "operation `{}`: export `{}` lacks `{}` of {}",
                        op.name,
                        op.export,
                        entry_point(op.kind),
                        op.kind.interface()
                    ))
                })?;
            let init = component.get_export_index(Some(&inst), "init");
            exports.push(OpExports { process, init });
            configs.push(manifest.configuration_for(&op.name, &options.overrides)?);
        }
        let router = match (options.routing, &manifest.graph_export) {
            (Routing::Host, _) => None,
            (Routing::Composed, Some(export)) => Some(RouterExports::resolve(component, export)?),
            (Routing::Composed, None) => {
                return Err(RuntimeError::Graph(format!(
                    "graph `{}` was composed without its router; compose it with --router composed to run it that way",
                    manifest.name
                )))
            }
        };
        Ok(Self {
            pre,
            exports,
            router,
            configs,
        })
    }

    /// A fresh store and instance with every `init` run: start-up, and recovery after a trap.
    pub fn instantiate(
        &self,
        manifest: &Manifest,
        services: &Arc<GraphServices>,
        options: &RunOptions,
    ) -> Result<Live> {
        let mut store = Store::new(
            self.pre.engine(),
            HostState::new(
                services.clone(),
                MemoryBudget::new(options.max_memory, options.max_graph_memory),
                &options.wasi,
            )?,
        );
        store.limiter(|s| &mut s.limits);
        let ticks = ticks(options.call_timeout);
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let instance = self.pre.instantiate(&mut store).step("instantiating the graph")?;
        let module_schemas: Vec<ModuleSchema> = services
            .schemas
            .all()
            .into_iter()
            .map(|s| ModuleSchema {
                name: s.name.clone(),
                content_type: s.content_type.clone(),
                content: s.content.clone(),
            })
            .collect();
        let mut funcs = Vec::with_capacity(self.exports.len());
        for ((op, ex), config) in manifest.operations.iter().zip(&self.exports).zip(&self.configs) {
            let ctx = || {
                format!(
                    "operation `{}`: {} does not have the expected signature",
                    op.name,
                    op.kind.interface()
                )
            };
            let p = &ex.process;
            macro_rules! typed {
                ($variant:ident) => {
                    OpFuncs::$variant(instance.get_typed_func(&mut store, p).step(ctx())?)
                };
            }
            let ours = options.native_plumbing && op.module.is_none();
            funcs.push(match op.kind {
                OperationKind::Source if ours => OpFuncs::NativeSource,
                OperationKind::Sink if ours => OpFuncs::NativeSink,
                OperationKind::Source => typed!(Source),
                OperationKind::Sink => typed!(Sink),
                OperationKind::Concatenate => typed!(Concatenate),
                OperationKind::Map => typed!(Map),
                OperationKind::Filter => typed!(Filter),
                OperationKind::Branch => typed!(Branch),
                OperationKind::Accumulate => typed!(Accumulate),
                OperationKind::Delay => typed!(Delay),
            });
            if let Some(init) = &ex.init {
                let init: TypedFunc<(ModuleConfiguration,), (bool,)> =
                    instance.get_typed_func(&mut store, init).step(ctx())?;
                let cfg = ModuleConfiguration {
                    properties: config.clone(),
                    module_schemas: module_schemas.clone(),
                };
                store.set_epoch_deadline(ticks);
                let mark = store.data().stderr_mark();
                match init.call(&mut store, (cfg,)) {
                    Ok((true,)) => {}
                    Ok((false,)) => {
                        return Err(RuntimeError::Graph(format!(
                            "operation `{}` refused its configuration (init returned false); configuration given: {}",
                            op.name,
                            fmt_config(config)
                        )))
                    }
                    Err(trap) => {
                        return Err(RuntimeError::Graph(format!(
                            "operation `{}` trapped in init: {}",
                            op.name,
                            with_stderr(describe_trap(&trap), &store.data().stderr_since(mark))
                        )))
                    }
                }
            }
        }
        let router = match &self.router {
            Some(r) => Some(r.funcs(&instance, &mut store).context("the graph's router")?),
            None => None,
        };
        Ok(Live {
            store,
            funcs,
            ticks,
            router,
        })
    }
}

fn fmt_config(c: &[(String, String)]) -> String {
    if c.is_empty() {
        return "(none)".into();
    }
    c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}
