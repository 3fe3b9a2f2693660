//! The host services operators import, each beside its WIT implementation (`host.rs`): the
//! service itself knows nothing of wasmtime's generated traits, and its `host` module maps the
//! WIT records to it.

pub mod logger;
pub mod metrics;
pub mod schema_registry;
pub mod state_store;
pub mod wasi_nn;
