//! Why the runtime cannot load, start or keep running a graph. Operator failures are not here:
//! a module's error or trap is the item's outcome (a dead letter, a rebuilt instance), never the
//! run's. What is here ends a run (or refuses to start it), so every message says which graph,
//! operation or file it is about.

use wasmflow_compose::ComposeError;
use wasmflow_state_store::StateStoreError;

use crate::services::wasi_nn::NnError;

/// What this crate's fallible functions return.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// A graph the runtime cannot load, start or keep running. wasmtime's own errors are part of
/// the message (with their causes), because wasmtime's error type is not a `std` error that
/// could be a `source`.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A graph file cannot be read.
    #[error("reading {origin}: {error}")]
    Read {
        /// The file, as the user named it.
        origin: String,
        /// Why it cannot be read.
        error: std::io::Error,
    },
    /// The graph definition does not compose, or a component's manifest cannot be read.
    #[error(transparent)]
    Compose(Box<ComposeError>),
    /// A `.wasm` that is not a graph `wasmflow compose` made.
    #[error("{origin} is not a composed wasmflow graph (no `wasmflow-graph` section); compose a graph definition with `wasmflow compose`")]
    NotAGraph {
        /// The file, as the user named it.
        origin: String,
    },
    /// wasmtime refused a step: configuring the engine, compiling, linking, instantiating.
    #[error("{step}: {error:#}")]
    Wasmtime {
        /// What the runtime was doing.
        step: String,
        /// wasmtime's error, with its causes.
        error: wasmtime::Error,
    },
    /// The composed graph cannot run as it is: its manifest and its component disagree, a
    /// module's `init` refused its configuration, an input names no source of the graph.
    #[error("{0}")]
    Graph(String),
    /// The state store could not be opened.
    #[error(transparent)]
    StateStore(#[from] StateStoreError),
    /// wasi-nn could not be started for a graph that imports it.
    #[error(transparent)]
    Nn(#[from] NnError),
    /// A thread of the runtime (the epoch clock) could not be started.
    #[error("starting the {name} thread: {error}")]
    Thread {
        /// Which thread.
        name: &'static str,
        /// Why it could not start.
        error: std::io::Error,
    },
    /// One of the above, and where it happened (loading which file, starting which graph,
    /// rebuilding after which trap).
    #[error("{context}: {error}")]
    Context {
        /// Where it happened.
        context: String,
        /// What happened.
        error: Box<RuntimeError>,
    },
}

impl From<ComposeError> for RuntimeError {
    fn from(e: ComposeError) -> Self {
        Self::Compose(Box::new(e))
    }
}

impl RuntimeError {
    /// This error, where it happened.
    pub fn context(self, context: impl Into<String>) -> Self {
        Self::Context {
            context: context.into(),
            error: Box::new(self),
        }
    }
}

/// Where the runtime was when a `Result` failed: [`RuntimeError::Context`] around its error.
pub(crate) trait Context<T> {
    /// The error, in `context`.
    fn context(self, context: impl Into<String>) -> Result<T>;
    /// The error, in the context `f` makes (only when there is one).
    fn with_context<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T> Context<T> for Result<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.context(context))
    }

    fn with_context<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.context(f()))
    }
}

/// wasmtime's error as the step that failed.
pub(crate) trait WasmtimeStep<T> {
    /// The error as [`RuntimeError::Wasmtime`] of `step`.
    fn step(self, step: impl Into<String>) -> Result<T>;
}

impl<T> WasmtimeStep<T> for wasmtime::Result<T> {
    fn step(self, step: impl Into<String>) -> Result<T> {
        self.map_err(|error| RuntimeError::Wasmtime {
            step: step.into(),
            error,
        })
    }
}
