//! Small helpers over the generated binding types, shared by the plumbing components (source,
//! sink, concatenate). wasmflow's operators are written on the SDK (`wasm_graph_sdk`) instead.

pub use crate::bindings::wasm_graph::processor::{hybrid_logical_clock, types};

use crate::hlc::{Hlc, OrderKey};
use hybrid_logical_clock::HybridLogicalClock;
use types::{DataModel, Timestamp};

/// The event-time ordering key of a message timestamp.
pub fn timestamp_key(ts: &Timestamp) -> OrderKey {
    (ts.timestamp.secs, ts.timestamp.nanos, ts.counter)
}

/// The timestamp an item carries, if any (a bare payload carries none).
pub fn timestamp_of(item: &DataModel) -> Option<&Timestamp> {
    match item {
        DataModel::Message(message) => Some(&message.timestamp),
        DataModel::Snapshot(snapshot) => Some(&snapshot.timestamp),
        DataModel::BufferOrBytes(_) => None,
    }
}

/// A binding clock → the plain [`Hlc`].
pub fn hlc_from_binding(clock: &HybridLogicalClock) -> Hlc {
    Hlc {
        secs: clock.timestamp.secs,
        nanos: clock.timestamp.nanos,
        counter: clock.counter,
        node_id: clock.node_id.clone(),
    }
}
