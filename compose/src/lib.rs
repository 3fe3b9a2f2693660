//! wasmflow-compose: the graph compiler.
//!
//! Turns an Azure IoT Operations graph definition (YAML) into ONE WebAssembly component that the
//! wasmflow host runs. The pipeline is pure and testable without running wasm:
//!
//! 1. [`load_graph`] / [`parse_graph`]: size and nesting of the text, what its YAML aliases
//!    expand to, YAML syntax, number of operations ([`limits`]) → JSON schema ([`schema`]) → semantic checks ([`validate`]) →
//!    [`ValidatedGraph`]; [`load_graph_with`] / [`parse_graph_with`] take other [`Limits`];
//! 2. [`plan()`](plan::plan): module references → files ([`resolve`]), what each file exports
//!    ([`exports`]) → [`CompositionPlan`] (one instance per operation);
//! 3. [`encode()`](encode::encode): wac-graph → bytes, with the [`Manifest`] appended as the
//!    `wasmflow-graph` custom section.
//!
//! The composed component's contract with the host: operation `i` is exported as `op{i}-{slug}`
//! (its `wasm-graph:processor/<kind>@1.1.0` instance, or a plumbing `wasmflow:graph/…`
//! instance); an operator's logger/metrics/state-store imports are the composition imports
//! `op{i}-logger`, `op{i}-metrics`, `op{i}-state-store`; every other import is shared by name.
//! [`naming`] builds these names and reads the index back ([`naming::operation_index`]).
//!
//! Modules depend on each other in one direction only (each uses only modules listed before
//! it): [`model`] and [`naming`] (the document's types and the name contract), [`limits`],
//! `aliases`, [`error`],
//! [`schema`], [`config`], [`resolve`], [`exports`], then [`validate`] (syntax → validated
//! graph), [`manifest`], [`plan`] (validated graph + files → plan), [`encode`] (plan → bytes)
//! and [`inspect`]; this root only re-exports and chains them in [`compose`].

#![deny(missing_docs)]
// Errors are rare and carry the context that makes their message useful; size does not matter.
#![allow(clippy::result_large_err)]

mod aliases;
pub mod config;
pub mod encode;
pub mod error;
pub mod exports;
pub mod inspect;
pub mod limits;
pub mod manifest;
pub mod model;
pub mod naming;
pub mod plan;
pub mod resolve;
pub mod schema;
pub mod validate;

pub use config::{Override, Parameter};
pub use error::ComposeError;
pub use inspect::{inspect_component, inspect_graph};
pub use limits::{Limits, DEFAULT_MAX_OPERATIONS};
pub use manifest::{Manifest, ManifestOperation, ManifestSchema, MANIFEST_SECTION};
pub use model::{Arm, Connection, GraphDefinition, OperationKind};
pub use plan::{ComposeOptions, CompositionPlan, PerOperationImport, PlannedInstance, PlannedPackage};
pub use resolve::{ModuleResolver, MODULES_ENV};
pub use validate::{load_graph, load_graph_with, parse_graph, parse_graph_with, Operation, ValidatedGraph};

/// A composed graph: the component's bytes (manifest included) and the manifest itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Composed {
    /// The encoded, validated component.
    pub bytes: Vec<u8>,
    /// The manifest embedded in `bytes`.
    pub manifest: Manifest,
    /// Non-fatal findings of validation and planning, for the CLI to print.
    pub warnings: Vec<String>,
}

/// Composes a validated graph into one component: plan, then encode.
pub fn compose(graph: &ValidatedGraph, opts: &ComposeOptions) -> Result<Composed, ComposeError> {
    let plan = plan::plan(graph, opts)?;
    let bytes = encode::encode(&plan)?;
    Ok(Composed {
        bytes,
        manifest: plan.manifest,
        warnings: plan.warnings,
    })
}
