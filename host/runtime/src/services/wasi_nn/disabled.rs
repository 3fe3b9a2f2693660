//! wasi-nn in a build without the `wasi-nn` feature: nothing to link, and a clear refusal for
//! graphs that need it.

use std::path::PathBuf;
use std::sync::Arc;

use wasmflow_compose::Manifest;

/// A store's wasi-nn context: nothing in this build.
pub struct NnCtx;

/// wasi-nn ready to link: cannot exist in this build.
pub enum WasiNn {}

/// The context of a store (always empty here).
pub fn store_ctx(_nn: Option<&WasiNn>) -> NnCtx {
    NnCtx
}

/// What the user told the host about wasi-nn (unused in this build).
#[derive(Debug, Clone, Default)]
pub struct NnOptions {
    /// Where ONNX Runtime is.
    pub onnxruntime: Option<PathBuf>,
    /// Models to preload by name.
    pub models: Vec<(String, PathBuf)>,
}

/// Why wasi-nn is not available.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// A graph needs wasi-nn.
    #[error("operation(s) {operations} import wasi:nn, but this wasmflow was built without the `wasi-nn` feature")]
    Required {
        /// The operations that import it.
        operations: String,
    },
}

/// wasi-nn for a runtime: refuses every graph that needs it.
#[derive(Default)]
pub struct NnRuntime;

impl NnRuntime {
    /// Options are accepted and ignored.
    pub fn new(_options: NnOptions) -> Self {
        Self
    }

    /// `None` for a graph that does not import `wasi:nn`; an error for one that does.
    pub fn for_manifest(&self, manifest: &Manifest) -> Result<Option<Arc<WasiNn>>, NnError> {
        let users: Vec<String> = manifest
            .operations
            .iter()
            .filter(|o| o.imports_wasi_nn)
            .map(|o| format!("`{}`", o.name))
            .collect();
        if users.is_empty() {
            Ok(None)
        } else {
            Err(NnError::Required {
                operations: users.join(", "),
            })
        }
    }
}
