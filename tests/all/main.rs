//! The one integration-test binary (like wasmtime's `tests/all`): a module per area, all
//! sharing [`support`] and one link of wasmtime. Each area's module comment says what it runs
//! against; `cargo test -p wasmflow-cli --test all -- mqtt::` runs one area.

mod support;

mod cli;
mod dataflow;
mod faults;
mod graphs;
mod kafka;
mod mqtt;
mod oci;
mod otel;
mod python_operator;
mod sandbox;
mod wasi_nn;
