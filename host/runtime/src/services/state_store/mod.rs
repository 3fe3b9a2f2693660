//! The `state-store` interface: the store itself is `wasmflow-state-store` (embedded redb, or a
//! Redis-protocol server shared by several processes); this module re-exports it and maps the
//! WIT calls onto it (`host`).

pub mod host;

pub use wasmflow_state_store::*;
