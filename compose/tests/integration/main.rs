//! The integration tests of wasmflow-compose, built as one test binary: each file below is a
//! module, and the helpers in `common` are compiled once for all of them (so none is unused).
//!
//! Data they read lives beside this folder: `tests/azure-compat/` (copies of the published Azure
//! graphs) and `tests/graphs/` (bad graphs with their expected errors, see its README).

#![allow(clippy::result_large_err)]

mod cache;
mod common;
mod composition;
mod limits;
mod modules;
mod validation;
