//! What wasmflow's own operators share, so that no two of them disagree on a record's shape:
//!
//! * [`records`]: the temperature and humidity JSON records (field order and defaults are part
//!   of the observable behaviour the README and the tests state).
//! * [`stats`]: the running statistics (`count, max, min, average, last`) and the fold both
//!   statistics accumulators (`temperature`, `humidity`) run.
//! * [`json`]: small JSON helpers that turn serde errors into operator error sentences.
//! * [`tensor`]: wasi-nn tensor data to and from FP32 values (the operators that run models).
//! * `glue` (wasm32 only): helpers over the types of the open SDK (`wasm_graph_sdk`), which
//!   every operator here is written on, and the accumulate plumbing common to `temperature`,
//!   `humidity`, `collection` and `snapshot` (output timestamp = the latest input's, topic = the
//!   last input's).

pub mod json;
pub mod records;
pub mod stats;
pub mod tensor;

#[cfg(target_arch = "wasm32")]
pub mod glue;

pub use wasmflow_guest::hlc;

/// The error of an accumulate whose window holds no reading of `what`, neither in the batch
/// nor staged: `no humidity readings in the window (2 items ignored)`. Returning it (rather than
/// a record of zeros) makes the window's items dead letters.
pub fn no_readings(what: &str, ignored: usize) -> String {
    let noun = if ignored == 1 { "item" } else { "items" };
    format!("no {what} readings in the window ({ignored} {noun} ignored)")
}

/// The result of folding a batch: the new payload plus one warning per ignored item, which the
/// component logs at `warn` (kept as data so native tests can check them).
#[derive(Debug, Clone, PartialEq)]
pub struct Folded {
    /// The serialized accumulated value.
    pub payload: Vec<u8>,
    /// One sentence per item that was ignored, naming its position in the batch.
    pub warnings: Vec<String>,
}
