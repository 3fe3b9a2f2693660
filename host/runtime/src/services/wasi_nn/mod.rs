//! wasi-nn (`wasi:nn@0.2.0-rc-2024-10-28`) for operators that run models.
//!
//! With the `wasi-nn` feature (the default) this is the ONNX backend on ONNX Runtime; without
//! it, a graph whose modules import `wasi:nn` fails to start saying how this build was made,
//! and the rest of the runtime builds and runs without ONNX Runtime or `wasmtime-wasi-nn`.

#[cfg(feature = "wasi-nn")]
mod onnx;
#[cfg(feature = "wasi-nn")]
pub use onnx::*;

#[cfg(not(feature = "wasi-nn"))]
mod disabled;
#[cfg(not(feature = "wasi-nn"))]
pub use disabled::*;
