//! The "host-routed" baseline: each operation is its own instance of its module (not composed),
//! all in one `Store` on the same engine (pooling allocator, memory limiter, per-call epoch
//! deadline), and the bench's own code moves `data-model` values between them. It hands each
//! returned value straight to the next call (no lift into the router's `Item` and lower again);
//! an operator that consumes its argument but whose item goes on (filter, branch, delay) gets a
//! copy with new buffer handles onto the same host bytes. No metrics, no dead letters, no trap
//! recovery: the floor for "the host calls each operator", not a complete runtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use wasmtime::component::{Component, ComponentNamedList, InstancePre, Lift, Linker, Lower, ResourceTable, TypedFunc};
use wasmtime::{Engine, Store};

use wasmflow_runtime::bindings::{
    BufferOrBytes, BufferOrString, DataModel, Message, MessageProperties, ModuleConfiguration, OperatorError, Timespec,
    Timestamp,
};
use wasmflow_runtime::buffer::{new_buffer, take_buffer, Payload};
use wasmflow_runtime::graph::{RunOptions, EPOCH_TICK};
use wasmflow_runtime::item::lower_payload;
use wasmflow_runtime::linker;
use wasmflow_runtime::services::GraphServices;
use wasmflow_runtime::store::HostState;

pub type MapFn = TypedFunc<(DataModel,), (Result<DataModel, OperatorError>,)>;
pub type FilterFn = TypedFunc<(DataModel,), (Result<bool, OperatorError>,)>;

/// One store holding separately instantiated operator modules.
pub struct Ops {
    pub store: Store<HostState>,
    engine: Engine,
    ticks: u64,
    modules: HashMap<PathBuf, (Component, InstancePre<HostState>)>,
}

impl Ops {
    pub fn new(engine: &Engine, services: Arc<GraphServices>) -> Result<Self> {
        let options = RunOptions::default();
        let mut store = Store::new(
            engine,
            HostState::new(
                services,
                wasmflow_runtime::limits::MemoryBudget::new(options.max_memory, options.max_graph_memory),
                &options.wasi,
            )?,
        );
        store.limiter(|s| &mut s.limits);
        let ticks = (options.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        Ok(Self {
            store,
            engine: engine.clone(),
            ticks,
            modules: HashMap::new(),
        })
    }

    /// A new instance of `module` (compiled once per module), its `init` run with `config`;
    /// returns `process` of export `iface` (e.g. `wasm-graph:processor/map@1.1.0`).
    pub fn operation<P, R>(&mut self, module: &Path, iface: &str, config: &[(&str, &str)]) -> Result<TypedFunc<P, R>>
    where
        P: ComponentNamedList + Lower + Send + Sync + 'static,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        if !self.modules.contains_key(module) {
            let component = Component::from_file(&self.engine, module)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("compiling {}", module.display()))?;
            let mut linker = Linker::new(&self.engine);
            linker::add_to_linker(&mut linker, &component)?;
            let pre = linker.instantiate_pre(&component).map_err(anyhow::Error::from)?;
            self.modules.insert(module.to_owned(), (component, pre));
        }
        let (component, pre) = &self.modules[module];
        let name = module.display();
        let ix = component
            .get_export_index(None, iface)
            .ok_or_else(|| anyhow!("{name} lacks {iface}"))?;
        let process = component
            .get_export_index(Some(&ix), "process")
            .ok_or_else(|| anyhow!("{name}: {iface} has no process"))?;
        let init = component
            .get_export_index(Some(&ix), "init")
            .ok_or_else(|| anyhow!("{name}: {iface} has no init"))?;
        let instance = pre.instantiate(&mut self.store).map_err(anyhow::Error::from)?;
        let init: TypedFunc<(ModuleConfiguration,), (bool,)> = instance
            .get_typed_func(&mut self.store, init)
            .map_err(anyhow::Error::from)?;
        let properties = config.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let (ok,) = init
            .call(
                &mut self.store,
                (ModuleConfiguration {
                    properties,
                    module_schemas: vec![],
                },),
            )
            .map_err(anyhow::Error::from)?;
        if !ok {
            bail!("{name}: {iface} init refused {config:?}");
        }
        instance
            .get_typed_func(&mut self.store, process)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{name}: {iface} process"))
    }

    /// Calls an operation with the per-call deadline `Graph` sets.
    pub fn call<P, R>(&mut self, f: &TypedFunc<P, R>, args: P) -> Result<R>
    where
        P: ComponentNamedList + Lower + Send + Sync + 'static,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        self.store.set_epoch_deadline(self.ticks);
        f.call(&mut self.store, args).map_err(anyhow::Error::from)
    }

    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.store.data_mut().table
    }

    /// The message the source plumbing would have produced, built by the host directly: payload
    /// and topic lowered as the router lowers them, `__ts` kept as a user property.
    pub fn message(
        &mut self,
        topic: &Arc<[u8]>,
        payload: &Arc<[u8]>,
        ms: u64,
        node: &str,
        ts: &str,
    ) -> Result<DataModel> {
        let table = self.table();
        // The runtime's own rule (inline when small), so both measure routing, not payload form.
        let payload = lower_payload(table, payload)?;
        let topic = new_buffer(table, topic.clone())?;
        Ok(DataModel::Message(Message {
            timestamp: Timestamp {
                timestamp: Timespec {
                    secs: ms / 1000,
                    nanos: (ms % 1000) as u32 * 1_000_000,
                },
                counter: 0,
                node_id: BufferOrString::String(node.to_owned()),
            },
            topic: BufferOrBytes::Buffer(topic),
            content_type: None,
            payload,
            properties: MessageProperties {
                user_properties: vec![(
                    BufferOrString::String("__ts".to_owned()),
                    BufferOrString::String(ts.to_owned()),
                )],
            },
            schema: None,
        }))
    }

    /// A copy of a message for an operator that consumes its argument (buffers get new handles
    /// onto the same host bytes; no payload copy).
    pub fn dup(&mut self, dm: &DataModel) -> Result<DataModel> {
        let table = self.table();
        let DataModel::Message(m) = dm else {
            bail!("the bench only routes messages")
        };
        let mut props = Vec::with_capacity(m.properties.user_properties.len());
        for (k, v) in &m.properties.user_properties {
            props.push((dup_str(table, k)?, dup_str(table, v)?));
        }
        Ok(DataModel::Message(Message {
            timestamp: Timestamp {
                timestamp: m.timestamp.timestamp,
                counter: m.timestamp.counter,
                node_id: dup_str(table, &m.timestamp.node_id)?,
            },
            topic: dup_bytes(table, &m.topic)?,
            content_type: m.content_type.as_ref().map(|c| dup_str(table, c)).transpose()?,
            payload: dup_bytes(table, &m.payload)?,
            properties: MessageProperties { user_properties: props },
            schema: None,
        }))
    }

    /// Drops the host side of every buffer handle an item still holds.
    pub fn release(&mut self, dm: DataModel) -> Result<()> {
        self.take_payload(dm).map(drop)
    }

    /// The payload of an item that leaves the graph; every other handle it holds is released.
    pub fn take_payload(&mut self, dm: DataModel) -> Result<Arc<[u8]>> {
        let table = self.table();
        let DataModel::Message(m) = dm else {
            bail!("expected a message")
        };
        let mut strs = vec![m.timestamp.node_id];
        strs.extend(m.content_type);
        for (k, v) in m.properties.user_properties {
            strs.push(k);
            strs.push(v);
        }
        for s in strs {
            if let BufferOrString::Buffer(h) = s {
                take_buffer(table, h)?;
            }
        }
        if let BufferOrBytes::Buffer(h) = m.topic {
            take_buffer(table, h)?;
        }
        Ok(match m.payload {
            BufferOrBytes::Bytes(b) => Arc::from(b),
            BufferOrBytes::Buffer(h) => take_buffer(table, h)?,
        })
    }
}

fn dup_bytes(table: &mut ResourceTable, b: &BufferOrBytes) -> Result<BufferOrBytes> {
    Ok(match b {
        BufferOrBytes::Bytes(v) => BufferOrBytes::Bytes(v.clone()),
        BufferOrBytes::Buffer(h) => {
            let bytes = table.get::<Payload>(h)?.0.clone();
            BufferOrBytes::Buffer(new_buffer(table, bytes)?)
        }
    })
}

fn dup_str(table: &mut ResourceTable, s: &BufferOrString) -> Result<BufferOrString> {
    Ok(match s {
        BufferOrString::String(v) => BufferOrString::String(v.clone()),
        BufferOrString::Buffer(h) => {
            let bytes = table.get::<Payload>(h)?.0.clone();
            BufferOrString::Buffer(new_buffer(table, bytes)?)
        }
    })
}

/// One step of a chain of maps and filters, each its own instance of `module`.
#[derive(Clone)]
pub struct Step {
    pub filter: bool,
    pub config: Vec<(&'static str, &'static str)>,
}

enum Call {
    Map(MapFn),
    Filter(FilterFn),
}

/// A chain of maps and filters, host-routed.
pub struct Chain {
    pub ops: Ops,
    calls: Vec<Call>,
}

impl Chain {
    pub fn new(ops: Ops, module: &Path, steps: &[Step]) -> Result<Self> {
        let mut ops = ops;
        let mut calls = Vec::new();
        for s in steps {
            calls.push(if s.filter {
                Call::Filter(ops.operation(module, "wasm-graph:processor/filter@1.1.0", &s.config)?)
            } else {
                Call::Map(ops.operation(module, "wasm-graph:processor/map@1.1.0", &s.config)?)
            });
        }
        Ok(Self { ops, calls })
    }

    /// Runs one item through every call; `Some(payload)` when it comes out the end.
    pub fn route(&mut self, mut dm: DataModel) -> Result<Option<Arc<[u8]>>> {
        for call in &self.calls {
            match call {
                Call::Map(f) => {
                    let (r,) = self.ops.call(f, (dm,))?;
                    dm = r.map_err(|e| anyhow!("map: {}", e.message))?;
                }
                Call::Filter(f) => {
                    let copy = self.ops.dup(&dm)?;
                    let (r,) = self.ops.call(f, (copy,))?;
                    if !r.map_err(|e| anyhow!("filter: {}", e.message))? {
                        self.ops.release(dm)?;
                        return Ok(None);
                    }
                }
            }
        }
        self.ops.take_payload(dm).map(Some)
    }
}
