//! Why a run cannot start or keep going: what it was given cannot be bound, a transport, the
//! graph or the window journal failed, a sink failed for good, or a thread of the run could
//! not run. An operator's failure is not here: it is the item's (a dead letter). Each message
//! is complete however it is printed (what this crate wraps is part of it, not a `source`), so
//! a run of several graphs can report the first failure as it is, with its graph or endpoint.

use std::error::Error;
use std::fmt;

use wasmflow_runtime::error::RuntimeError;
use wasmflow_transport::TransportError;

use crate::journal::JournalError;

/// What this crate's fallible functions return.
pub type Result<T, E = DeliveryError> = std::result::Result<T, E>;

/// What a hot update's target (the CLI's registry client, compiler and runtime) may fail with:
/// any error, so this crate need not know the caller's error type. Its `source` chain is kept
/// and printed.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// A run that cannot start, or that stops: the caller prints it and exits, or (a hot update)
/// logs it and keeps the running version. Large inner errors are boxed, so a `Result` of this
/// crate stays small on the pump's hot path.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A topic, endpoint or route that cannot be bound as given: no broker (or more than one)
    /// for a topic, an endpoint used but not configured, a sink with no destination, a windowed
    /// graph on a shared subscription. The message says what to give instead; nothing was
    /// started.
    #[error("{0}")]
    Binding(String),
    /// The endpoint needs a transport this build leaves out (a cargo feature of
    /// `wasmflow-delivery`); what follows "built without" names it.
    #[error("this wasmflow was built without {0}")]
    NotBuilt(String),
    /// A broker could not be reached, refused a subscription or a setting, or closed.
    #[error(transparent)]
    Transport(Box<TransportError>),
    /// A sink failed for good. The inputs of its outputs stay unacknowledged, so the broker
    /// delivers them again after a restart; the message says so.
    #[error("a sink failed; unacknowledged inputs will be delivered again after a restart: {0}")]
    Sink(Box<TransportError>),
    /// An OpenTelemetry endpoint's exporter cannot be built (a bad URL or certificate).
    #[cfg(feature = "otel")]
    #[error(transparent)]
    Export(Box<wasmflow_otel::ExportError>),
    /// The graph could not take an input, advance, or restore its windows.
    #[error(transparent)]
    Runtime(Box<RuntimeError>),
    /// The window journal could not be opened, read or written; after a failed write the run
    /// stops rather than acknowledge inputs whose window entries are not durable.
    #[error(transparent)]
    Journal(Box<JournalError>),
    /// Line mode's input could not be read; `input` is how the user named it (a file, or `-`).
    #[error("reading {input}: {error}")]
    Input {
        /// The input, as named in messages.
        input: String,
        /// Why it could not be read.
        error: std::io::Error,
    },
    /// Line mode's outputs could not be written (a full disk). A reader that closed them is
    /// not an error: the run ends (`lines::End::OutputClosed`).
    #[error("writing the outputs: {0}")]
    Output(std::io::Error),
    /// A thread of the run could not be started; the system's reason.
    #[error("starting {name}: {error}")]
    Thread {
        /// Which thread, as the message says it: `the input reader`; `its thread` after a
        /// graph's name.
        name: &'static str,
        /// Why it could not start.
        error: std::io::Error,
    },
    /// A graph's thread panicked (a bug in wasmflow, not a failure of the graph's modules, whose
    /// traps are the item's outcome). It stops the run as any failure does; the panic's own
    /// message was printed when it happened.
    #[error("its thread panicked (a bug in wasmflow; the panic's message is printed above)")]
    Panicked,
    /// The hot update's target could not be looked at, loaded or started; the running version
    /// stays. The message is the target's error with its causes, as the target wrote it.
    #[error("{}", Chain(.0.as_ref()))]
    Update(BoxError),
    /// A hot update's new version is another graph: a version keeps its graph's name, because
    /// its window journal and consumer group go by it.
    #[error("the new version is graph `{new}`, not `{running}`: a hot update keeps the graph's name (its window journal and consumer group go by it)")]
    Renamed {
        /// The name the new version has.
        new: String,
        /// The running version's name.
        running: String,
    },
    /// One of the above, and where it happened (which graph, which endpoint).
    #[error("{context}: {error}")]
    Context {
        /// Where it happened.
        context: String,
        /// What happened.
        error: Box<DeliveryError>,
    },
}

impl DeliveryError {
    /// This error, where it happened: the caller's graph or endpoint goes in front of the
    /// message.
    pub fn context(self, context: impl Into<String>) -> Self {
        Self::Context {
            context: context.into(),
            error: Box::new(self),
        }
    }
}

impl From<TransportError> for DeliveryError {
    fn from(e: TransportError) -> Self {
        Self::Transport(Box::new(e))
    }
}

#[cfg(feature = "otel")]
impl From<wasmflow_otel::ExportError> for DeliveryError {
    fn from(e: wasmflow_otel::ExportError) -> Self {
        Self::Export(Box::new(e))
    }
}

impl From<RuntimeError> for DeliveryError {
    fn from(e: RuntimeError) -> Self {
        Self::Runtime(Box::new(e))
    }
}

impl From<JournalError> for DeliveryError {
    fn from(e: JournalError) -> Self {
        Self::Journal(Box::new(e))
    }
}

/// Where the run was when a `Result` failed: [`DeliveryError::Context`] around its error. (An
/// error at hand takes [`DeliveryError::context`].)
pub(crate) trait Context<T> {
    /// The error, in the context `f` makes (only when there is one).
    fn with_context<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T> Context<T> for Result<T> {
    fn with_context<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.context(f()))
    }
}

/// An error and its `source`s, joined by `: ` (as the CLI writes a chain of contexts on one
/// line): a target's error is often such a chain, whose outermost link alone would not say what
/// went wrong.
struct Chain<'a>(&'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_target_error_is_printed_with_its_causes() {
        let e = DeliveryError::Update(Box::new(Outer(std::io::Error::other("inner"))));
        assert_eq!(e.to_string(), "outer: inner");
        assert!(
            e.source().is_none(),
            "the causes are in the message, not repeated as a source"
        );
    }

    #[test]
    fn context_goes_in_front() {
        let e = DeliveryError::Binding("no source topic: give --source".into())
            .context("graph `g`")
            .context("endpoint `e`");
        assert_eq!(e.to_string(), "endpoint `e`: graph `g`: no source topic: give --source");
    }

    #[test]
    fn a_result_stays_small() {
        assert!(
            std::mem::size_of::<DeliveryError>() <= 48,
            "{}",
            std::mem::size_of::<DeliveryError>()
        );
    }
}
