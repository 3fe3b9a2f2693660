//! The one integration-test binary (like wasmtime's `tests/all`): a module per area, all
//! sharing [`support`] and one link of wasmtime. Each area's module comment says what it runs
//! against; `cargo test -p wasmflow-cli --test all -- mqtt::` runs one area.

mod support;

mod cli;
mod dataflow;
mod deploy;
mod embedding;
mod faults;
mod graphs;
mod hot_update;
mod kafka;
mod mqtt;
mod oci;
mod operate;
mod otel;
mod pump;
mod python_operator;
mod router;
mod sandbox;
mod scaffold;
mod scaleout;
mod state_store;
mod wasi_nn;
