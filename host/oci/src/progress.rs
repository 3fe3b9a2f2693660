//! Progress of large transfers, as the library reports it: the library draws nothing, a front
//! end (the CLI's progress bars) implements [`Progress`].

/// Receives the transfers a client makes.
pub trait Progress: Send + Sync {
    /// A transfer of `len` bytes starts (`verb` is `uploading` or `downloading`, `what` names
    /// the artifact); the returned handle receives its progress.
    fn start(&self, verb: &str, what: &str, len: u64) -> Box<dyn Transfer>;
}

/// One transfer under way.
pub trait Transfer: Send + Sync {
    /// `bytes` more were moved.
    fn advance(&self, bytes: u64);
    /// The transfer ended (done or failed).
    fn finish(&self);
}

/// Reports nothing: the default, and what tests use.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _verb: &str, _what: &str, _len: u64) -> Box<dyn Transfer> {
        Box::new(NoProgress)
    }
}

impl Transfer for NoProgress {
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}
