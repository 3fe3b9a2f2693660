//! Rust types for the WIT the host implements and calls, generated from `wit/`.
//!
//! The world `wasmflow:graph/host-runtime` gathers every interface the host touches, so the
//! operator data model, the host interfaces and the plumbing records share one set of types.
//! The data model's own interfaces (`types`, whose one resource is the `buffer`, and
//! `hybrid-logical-clock`, records only) are implemented here, on the store's resource table;
//! the services' interfaces beside each service (`services/*/host.rs`).

#![allow(missing_docs)] // generated

wasmtime::component::bindgen!({
    path: "../../wit/wasmflow",
    world: "wasmflow:graph/host-runtime",
    with: {
        "wasm-graph:processor/types.buffer": crate::buffer::Payload,
    },
    imports: { default: trappable },
    // Each operation gets its own logger/metrics/state-store import (named `op{i}-…`, marked
    // `implements` by the compiler); the id tells the host which operation is calling.
    named_imports: {
        "wasm-graph:processor/logger": crate::identity::OpId,
        "wasm-graph:processor/metrics": crate::identity::OpId,
        "wasm-graph:processor/state-store": crate::identity::OpId,
    },
});

pub use wasm_graph::processor::hybrid_logical_clock::{HybridLogicalClock, Timespec};
pub use wasm_graph::processor::types::{
    BufferOrBytes, BufferOrString, DataModel, Error as OperatorError, InlineSchema, Message, MessageProperties,
    MessageSchema, ModuleConfiguration, ModuleSchema, Snapshot, Timestamp,
};
/// What a graph composed with its router exports (`wasmflow:graph/graph`); imported by
/// `host-runtime` only so that its types are generated.
pub use wasmflow::graph::graph::{Counts as RouterCounts, Event as RouterEvent, Item as RouterItem};

use wasmflow_wire::Hlc;
use wasmtime::component::{Resource, ResourceTable};

use crate::buffer::{self, Payload};

impl wasm_graph::processor::types::HostBuffer for ResourceTable {
    fn read(&mut self, this: Resource<Payload>) -> wasmtime::Result<Vec<u8>> {
        buffer::read(self, &this)
    }

    fn drop(&mut self, this: Resource<Payload>) -> wasmtime::Result<()> {
        buffer::drop(self, this)
    }
}

impl wasm_graph::processor::types::Host for ResourceTable {}
impl wasm_graph::processor::hybrid_logical_clock::Host for ResourceTable {}

impl From<&HybridLogicalClock> for Hlc {
    fn from(h: &HybridLogicalClock) -> Self {
        Self {
            secs: h.timestamp.secs,
            nanos: h.timestamp.nanos,
            counter: h.counter,
            node_id: h.node_id.clone(),
        }
    }
}

impl From<&Hlc> for HybridLogicalClock {
    fn from(h: &Hlc) -> Self {
        HybridLogicalClock {
            timestamp: Timespec {
                secs: h.secs,
                nanos: h.nanos,
            },
            counter: h.counter,
            node_id: h.node_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_convert_to_and_from_wit() {
        let h = Hlc {
            secs: 3,
            nanos: 4,
            counter: 5,
            node_id: "n".into(),
        };
        let w: HybridLogicalClock = (&h).into();
        assert_eq!(Hlc::from(&w), h);
    }
}
