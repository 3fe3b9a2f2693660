//! The wasmflow runtime: runs composed data-flow graphs in wasmtime and supplies the host
//! interfaces their operators import. One module per host capability; the CLI (`main.rs` and
//! `cli/`) only parses arguments and calls into this library.

pub mod bind;
pub mod bindings;
pub mod broker;
pub mod buffer;
pub mod delivery;
pub mod engine;
pub mod golden;
pub mod graph;
pub mod hlc;
pub mod host_state;
pub mod item;
pub mod jsonl;
pub mod kafka;
pub mod logger;
pub mod metrics;
pub mod mqtt;
pub mod oci;
pub mod pump;
pub mod runtime;
pub mod state_store;
pub mod transport;
pub mod wasi_nn;
