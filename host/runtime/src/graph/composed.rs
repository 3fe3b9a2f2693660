//! Calls into the router inside a graph composed with its router (`--router composed`): its
//! `wasmflow:graph/graph` export, and what the host makes of the events it returns.
//!
//! The router moves an item through every operation it reaches by component-to-component
//! calls, so the host lowers an item once per push and lifts only what leaves: outputs, items
//! arriving at windows (held here, as with host routing), rejections. Counts of what the
//! router's operations took in and passed on are fetched after each call.

use wasmflow_wire::Hlc;
use wasmtime::component::{ComponentExportIndex, Instance as WasmInstance, TypedFunc};
use wasmtime::Store;

use crate::bindings::{HybridLogicalClock, RouterCounts, RouterEvent, RouterItem};
use crate::error::{Result, RuntimeError, WasmtimeStep};
use crate::item::{Body, Bytes, Item};
use crate::store::HostState;

pub(super) type PushFn = TypedFunc<(u32, RouterItem, bool), (Vec<RouterEvent>,)>;
pub(super) type CloseFn = TypedFunc<(u32, HybridLogicalClock, Vec<(u32, RouterItem)>, bool), (Vec<RouterEvent>,)>;
pub(super) type CountsFn = TypedFunc<(), (Vec<RouterCounts>,)>;

/// The router's export indices, resolved once per component.
pub(super) struct RouterExports {
    push: ComponentExportIndex,
    close: ComponentExportIndex,
    counts: ComponentExportIndex,
}

impl RouterExports {
    /// The functions of the export `interface` (the manifest's `graph_export`).
    pub fn resolve(component: &wasmtime::component::Component, interface: &str) -> Result<Self> {
        let inst = component
            .get_export_index(None, interface)
            .ok_or_else(|| RuntimeError::Graph(format!("the component has no export `{interface}`")))?;
        let func = |name: &str| {
            component
                .get_export_index(Some(&inst), name)
                .ok_or_else(|| RuntimeError::Graph(format!("export `{interface}` lacks `{name}`")))
        };
        Ok(Self {
            push: func("push")?,
            close: func("close")?,
            counts: func("take-counts")?,
        })
    }

    /// The typed functions in a live instance.
    pub fn funcs(&self, instance: &WasmInstance, store: &mut Store<HostState>) -> Result<RouterFuncs> {
        let typed = |store: &mut Store<HostState>, index: &ComponentExportIndex| {
            instance
                .get_func(&mut *store, index)
                .ok_or_else(|| RuntimeError::Graph("the graph's router lacks a function".into()))
        };
        let push = typed(store, &self.push)?;
        let close = typed(store, &self.close)?;
        let counts = typed(store, &self.counts)?;
        let step = "the graph's router functions";
        Ok(RouterFuncs {
            push: push.typed(&*store).step(step)?,
            close: close.typed(&*store).step(step)?,
            counts: counts.typed(&*store).step(step)?,
        })
    }
}

/// The router's typed functions in a live instance.
#[derive(Clone, Copy)]
pub(super) struct RouterFuncs {
    pub push: PushFn,
    pub close: CloseFn,
    pub counts: CountsFn,
}

/// An item as the router takes it (the topic as bytes: the router copies items).
pub(super) fn lower(store: &mut Store<HostState>, item: &Item) -> wasmtime::Result<RouterItem> {
    Ok(RouterItem {
        ts: item.hlc(),
        value: item.lower_with(&mut store.data_mut().table, true)?,
    })
}

/// What the host does with one event.
pub(super) enum Routed {
    /// An item for operation `op` (a sink or a window) on its input `input`: the host delivers
    /// it as its own router would.
    Deliver { op: usize, input: u32, item: Item },
    /// Operation `op` rejected an item; `item` is `None` when the router did not keep it.
    Rejected {
        op: usize,
        ts: Hlc,
        error: String,
        item: Option<Item>,
    },
}

/// Lifts the router's events into host items (taking back their buffer handles). An item
/// that does not lift becomes its operation's rejection.
pub(super) fn lift_events(store: &mut Store<HostState>, events: Vec<RouterEvent>) -> Vec<Routed> {
    let table = &mut store.data_mut().table;
    let mut lift = |item: RouterItem| {
        let ts = Hlc::from(&item.ts);
        Item::lift(table, item.value, &ts).map_err(|e| (ts, format!("unusable result: {e}")))
    };
    events
        .into_iter()
        .map(|e| match e {
            RouterEvent::Output((op, item)) => deliver(op as usize, 0, lift(item)),
            RouterEvent::Held(h) => deliver(h.op as usize, h.input, lift(h.item)),
            RouterEvent::Rejected(r) => {
                let ts = Hlc::from(&r.ts);
                match r.item.map(&mut lift) {
                    Some(Err((ts, why))) => Routed::Rejected {
                        op: r.op as usize,
                        ts,
                        error: format!("{}; {why}", r.error),
                        item: None,
                    },
                    lifted => Routed::Rejected {
                        op: r.op as usize,
                        ts,
                        error: r.error,
                        item: lifted.and_then(Result::ok),
                    },
                }
            }
        })
        .collect()
}

fn deliver(op: usize, input: u32, item: Result<Item, (Hlc, String)>) -> Routed {
    match item {
        Ok(item) => Routed::Deliver { op, input, item },
        Err((ts, error)) => Routed::Rejected {
            op,
            ts,
            error,
            item: None,
        },
    }
}

/// The item a rejection names when the router kept none: its time and no content.
pub(super) fn placeholder(ts: Hlc) -> Item {
    Item {
        ts,
        body: Body::Raw(Bytes::from(&[][..])),
    }
}
