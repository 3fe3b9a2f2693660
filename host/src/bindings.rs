//! Rust types for the WIT the host implements and calls, generated from `wit/`.
//!
//! The world `wasmflow:graph/host-runtime` gathers every interface the host touches, so the
//! operator data model, the host interfaces and the plumbing records share one set of types.

wasmtime::component::bindgen!({
    path: "../wit/wasmflow",
    world: "wasmflow:graph/host-runtime",
    with: {
        "wasm-graph:processor/types.buffer": crate::buffer::Payload,
    },
    imports: { default: trappable },
    // Each operation gets its own logger/metrics/state-store import (named `op{i}-…`, marked
    // `implements` by the compiler); the id tells the host which operation is calling.
    named_imports: {
        "wasm-graph:processor/logger": crate::host_state::OpId,
        "wasm-graph:processor/metrics": crate::host_state::OpId,
        "wasm-graph:processor/state-store": crate::host_state::OpId,
    },
});

pub use wasm_graph::processor::hybrid_logical_clock::{HybridLogicalClock, Timespec};
pub use wasm_graph::processor::types::{
    BufferOrBytes, BufferOrString, DataModel, Error as OperatorError, InlineSchema, Message, MessageProperties,
    MessageSchema, ModuleConfiguration, ModuleSchema, Snapshot, Timestamp,
};
