//! Why a golden test cannot be read. Every error names the file it is about, and the field,
//! element or line where there is one, so `wasmflow test` can print it as it is.

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// What this crate's fallible functions return.
pub type Result<T, E = GoldenError> = std::result::Result<T, E>;

/// A descriptor, input, expectation or scenario file that cannot be used. The inner errors are
/// part of the message (not a `source`), so the message is complete however it is printed.
#[derive(Debug, thiserror::Error)]
pub enum GoldenError {
    /// The file (or folder) cannot be read; `what` says which part of the test it is
    /// (`"expected "`, `"state-store seed "`, `"schema "` or nothing).
    #[error("reading {what}{}: {error}", path.display())]
    Read {
        /// Which part of the test the file is, as a prefix of its path in the message.
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why it cannot be read.
        error: std::io::Error,
    },
    /// The file was read; what it holds is not what it must be.
    #[error("{}: {problem}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field or element.
        problem: String,
    },
    /// One line of a line-based file (an env list) is wrong.
    #[error("{}:{line}: {problem}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// A file the descriptor leads to is wrong: the descriptor, the step that read it, and the
    /// file's own error.
    #[error("{}: {step}: {error}", descriptor.display())]
    Within {
        /// The descriptor.
        descriptor: PathBuf,
        /// What the descriptor was reading (`state`, `scenario files`).
        step: &'static str,
        /// The other file's error.
        error: Box<GoldenError>,
    },
}

impl GoldenError {
    /// This error, found while `descriptor` was reading its `step`.
    pub(crate) fn within(self, descriptor: &Path, step: &'static str) -> Self {
        Self::Within {
            descriptor: descriptor.to_path_buf(),
            step,
            error: Box::new(self),
        }
    }
}

/// `path` holds something it must not.
pub(crate) fn invalid(path: &Path, problem: impl Display) -> GoldenError {
    GoldenError::Invalid {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    }
}

/// The text of `path`, which is `what` part of the test (see [`GoldenError::Read`]).
pub(crate) fn read_text(path: &Path, what: &'static str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|error| GoldenError::Read {
        what,
        path: path.to_path_buf(),
        error,
    })
}

/// The bytes of an input file.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| GoldenError::Read {
        what: "",
        path: path.to_path_buf(),
        error,
    })
}
