//! Shared by wasmflow's guest components: event time for all of them, bindings for the
//! plumbing (source, sink, concatenate). The operators are written on the open SDK
//! (`wasm_graph_sdk`, `components/sdk`) and take only [`hlc`] from here (through
//! `sample-common`).
//!
//! * [`hlc`]: event time on the wire (`wasmflow-wire`, in `host/wire`: the `__ts` user
//!   property, millisecond conversions, window rounding, ordering keys). One crate for the host
//!   and every guest, so the host's router, the source, the sink and the `window` operator
//!   agree on one definition.
//! * `bindings` (wasm32 only): one set of generated bindings for the `wasm-graph:processor@1.1.0`
//!   interfaces the plumbing sees (`types`, `hybrid-logical-clock`). Each plumbing component
//!   maps them to this module with wit-bindgen's `with`, so they share the helpers in [`glue`].

/// Event time on the wire, shared with the host.
pub use wasmflow_wire as hlc;

/// Generated bindings of the imported `wasm-graph:processor` interfaces, shared by all guests.
#[cfg(target_arch = "wasm32")]
pub mod bindings {
    wit_bindgen::generate!({
        inline: r#"
            package wasmflow:guest@0.1.0;

            world guest {
                import wasm-graph:processor/types@1.1.0;
                import wasm-graph:processor/hybrid-logical-clock@1.1.0;
            }
        "#,
        path: "../../wit/processor",
        generate_all,
    });
}

#[cfg(target_arch = "wasm32")]
pub mod glue;

/// Generates a plumbing component's bindings (its exports) against the shared imports in
/// [`bindings`].
///
/// `plumbing` maps `types` and `hybrid-logical-clock` (concatenate), `clock` only
/// `hybrid-logical-clock` (source and sink, which see event time but never an item).
/// wit-bindgen rejects mappings a world does not use. Mapping instead of regenerating means one
/// set of types across crates, so the helpers in [`glue`] work for every component.
#[cfg(target_arch = "wasm32")]
#[macro_export]
macro_rules! component_bindings {
    (clock, $world:tt, $path:tt) => {
        wit_bindgen::generate!({
            world: $world,
            path: $path,
            with: {
                "wasm-graph:processor/hybrid-logical-clock@1.1.0": ::wasmflow_guest::glue::hybrid_logical_clock,
            },
        });
    };
    (plumbing, $world:tt, $path:tt) => {
        wit_bindgen::generate!({
            world: $world,
            path: $path,
            with: {
                "wasm-graph:processor/types@1.1.0": ::wasmflow_guest::glue::types,
                "wasm-graph:processor/hybrid-logical-clock@1.1.0": ::wasmflow_guest::glue::hybrid_logical_clock,
            },
        });
    };
}
