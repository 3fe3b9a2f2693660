//! Component glue: the export of world `wasmflow:graph/router-node` over the generated
//! bindings, and [`Operations`] as calls into the graph's dispatcher.

use std::cell::RefCell;

use wasmflow_guest::hlc::Hlc;

use exports::wasmflow::graph::graph::{Counts, Event, Guest, Held, Item, Rejected};
use wasm_graph::processor::hybrid_logical_clock::{HybridLogicalClock, Timespec};
use wasm_graph::processor::types::{
    BufferOrBytes, BufferOrString, DataModel, Message, MessageProperties, ModuleConfiguration, Timestamp,
};
use wasmflow::graph::operators;

use crate::{Kind, Operations, Router, Topology};

wit_bindgen::generate!({
    world: "router-node",
    path: "../../../wit/wasmflow",
    generate_all,
});

struct Component;
export!(Component);

thread_local! {
    /// The graph's router, made from the dispatcher's topology on first use.
    static ROUTER: RefCell<Option<Router>> = const { RefCell::new(None) };
}

/// Runs `f` with the router, reading the topology first if this is the first call.
fn with_router<R>(f: impl FnOnce(&mut Router) -> Result<R, String>) -> Result<R, String> {
    ROUTER.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = Some(Router::new(Topology::decode(&operators::topology())?));
        }
        match slot.as_mut() {
            Some(router) => f(router),
            None => Err("the router has no topology".into()),
        }
    })
}

/// The router cannot give its host an error through `push`/`close` (their results are events);
/// a graph it cannot route is a bug in the composition, so it traps with the reason.
fn or_trap<T>(r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("wasmflow router: {e}"))
}

fn hlc_of(c: &HybridLogicalClock) -> Hlc {
    Hlc {
        secs: c.timestamp.secs,
        nanos: c.timestamp.nanos,
        counter: c.counter,
        node_id: c.node_id.clone(),
    }
}

fn clock(h: &Hlc) -> HybridLogicalClock {
    HybridLogicalClock {
        timestamp: Timespec {
            secs: h.secs,
            nanos: h.nanos,
        },
        counter: h.counter,
        node_id: h.node_id.clone(),
    }
}

fn stamp(h: &Hlc) -> Timestamp {
    Timestamp {
        timestamp: Timespec {
            secs: h.secs,
            nanos: h.nanos,
        },
        counter: h.counter,
        node_id: BufferOrString::String(h.node_id.clone()),
    }
}

fn text_of(s: &BufferOrString) -> String {
    match s {
        BufferOrString::String(s) => s.clone(),
        BufferOrString::Buffer(b) => String::from_utf8_lossy(&b.read()).into_owned(),
    }
}

fn dup_bytes(b: &BufferOrBytes) -> BufferOrBytes {
    BufferOrBytes::Bytes(match b {
        BufferOrBytes::Bytes(v) => v.clone(),
        // A handle cannot be copied; its bytes can (the host's `read`).
        BufferOrBytes::Buffer(buffer) => buffer.read(),
    })
}

fn dup_str(s: &BufferOrString) -> BufferOrString {
    BufferOrString::String(text_of(s))
}

fn dup_timestamp(t: &Timestamp) -> Timestamp {
    Timestamp {
        timestamp: t.timestamp,
        counter: t.counter,
        node_id: dup_str(&t.node_id),
    }
}

fn time_of_stamp(t: &Timestamp) -> Hlc {
    Hlc {
        secs: t.timestamp.secs,
        nanos: t.timestamp.nanos,
        counter: t.counter,
        node_id: text_of(&t.node_id),
    }
}

/// [`Operations`] as calls into the dispatcher (`wasmflow:graph/operators`).
struct Dispatch;

impl Operations for Dispatch {
    type Value = DataModel;

    fn map(&mut self, op: u32, value: DataModel) -> Result<DataModel, String> {
        operators::map(op, value).map_err(|e| e.message)
    }

    fn filter(&mut self, op: u32, value: DataModel) -> Result<bool, String> {
        operators::filter(op, value).map_err(|e| e.message)
    }

    fn branch(&mut self, op: u32, ts: &Hlc, value: DataModel) -> Result<bool, String> {
        operators::branch(op, &clock(ts), value).map_err(|e| e.message)
    }

    fn delay(&mut self, op: u32, value: DataModel, ts: &Hlc) -> Result<Hlc, String> {
        operators::delay(op, value, &clock(ts))
            .map(|t| hlc_of(&t))
            .map_err(|e| e.message)
    }

    fn accumulate(&mut self, op: u32, staged: DataModel, items: Vec<DataModel>) -> Result<DataModel, String> {
        operators::accumulate(op, staged, items).map_err(|e| e.message)
    }

    fn duplicate(&mut self, value: &DataModel) -> DataModel {
        use wasm_graph::processor::types::{InlineSchema, MessageSchema, Snapshot};
        match value {
            DataModel::BufferOrBytes(b) => DataModel::BufferOrBytes(dup_bytes(b)),
            DataModel::Message(m) => DataModel::Message(Message {
                timestamp: dup_timestamp(&m.timestamp),
                topic: dup_bytes(&m.topic),
                content_type: m.content_type.as_ref().map(dup_str),
                payload: dup_bytes(&m.payload),
                properties: MessageProperties {
                    user_properties: m
                        .properties
                        .user_properties
                        .iter()
                        .map(|(k, v)| (dup_str(k), dup_str(v)))
                        .collect(),
                },
                schema: m.schema.as_ref().map(|s| match s {
                    MessageSchema::RegistryReference(r) => MessageSchema::RegistryReference(dup_str(r)),
                    MessageSchema::Inline(i) => MessageSchema::Inline(InlineSchema {
                        name: dup_str(&i.name),
                        content: dup_str(&i.content),
                    }),
                }),
            }),
            DataModel::Snapshot(s) => DataModel::Snapshot(Snapshot {
                timestamp: dup_timestamp(&s.timestamp),
                format: dup_str(&s.format),
                width: s.width,
                height: s.height,
                frame: dup_bytes(&s.frame),
            }),
        }
    }

    fn empty_message(&mut self, ts: &Hlc) -> DataModel {
        DataModel::Message(Message {
            timestamp: stamp(ts),
            topic: BufferOrBytes::Bytes(Vec::new()),
            content_type: None,
            payload: BufferOrBytes::Bytes(Vec::new()),
            properties: MessageProperties {
                user_properties: Vec::new(),
            },
            schema: None,
        })
    }

    fn time_of(&self, value: &DataModel) -> Option<Hlc> {
        match value {
            DataModel::Message(m) => Some(time_of_stamp(&m.timestamp)),
            DataModel::Snapshot(s) => Some(time_of_stamp(&s.timestamp)),
            DataModel::BufferOrBytes(_) => None,
        }
    }

    fn set_time(&mut self, value: &mut DataModel, ts: &Hlc) {
        match value {
            DataModel::Message(m) => m.timestamp = stamp(ts),
            DataModel::Snapshot(s) => s.timestamp = stamp(ts),
            DataModel::BufferOrBytes(_) => {}
        }
    }
}

fn events(list: Vec<crate::Event<DataModel>>) -> Vec<Event> {
    list.into_iter()
        .map(|e| match e {
            crate::Event::Output { op, ts, value } => Event::Output((op, Item { ts: clock(&ts), value })),
            crate::Event::Held { op, input, ts, value } => Event::Held(Held {
                op,
                input,
                item: Item { ts: clock(&ts), value },
            }),
            crate::Event::Rejected { op, ts, error, value } => Event::Rejected(Rejected {
                op,
                ts: clock(&ts),
                error,
                item: value.map(|value| Item { ts: clock(&ts), value }),
            }),
        })
        .collect()
}

impl Guest for Component {
    fn init(configurations: Vec<ModuleConfiguration>) -> Result<(), String> {
        let kinds = with_router(|r| Ok(r.topology().kinds.clone()))?;
        let mut configurations = configurations.into_iter();
        for (op, kind) in kinds.into_iter().enumerate() {
            let configuration = configurations
                .next()
                .ok_or_else(|| format!("operation {op} has no configuration (one per operation)"))?;
            if matches!(kind, Kind::Source | Kind::Sink | Kind::Concatenate) {
                continue;
            }
            if !operators::init(op as u32, &configuration) {
                return Err(format!(
                    "operation {op} refused its configuration (init returned false)"
                ));
            }
        }
        Ok(())
    }

    fn push(source: u32, item: Item, keep_rejected: bool) -> Vec<Event> {
        let ts = hlc_of(&item.ts);
        events(or_trap(with_router(|r| {
            r.push(&mut Dispatch, source, ts, item.value, keep_rejected)
        })))
    }

    fn close(op: u32, ts: HybridLogicalClock, items: Vec<(u32, Item)>, keep_rejected: bool) -> Vec<Event> {
        let batch = items
            .into_iter()
            .map(|(input, item)| (input, hlc_of(&item.ts), item.value))
            .collect();
        events(or_trap(with_router(|r| {
            r.close(&mut Dispatch, op, hlc_of(&ts), batch, keep_rejected)
        })))
    }

    fn take_counts() -> Vec<Counts> {
        or_trap(with_router(|r| Ok(r.take_counts())))
            .into_iter()
            .map(|c| Counts {
                received: c.received,
                emitted: c.emitted,
                dropped: c.dropped,
            })
            .collect()
    }
}
