//! The `nn-probe` bench component (world `wasmflow:samples/nn-probe`): one wasi-nn inference per
//! call of its `infer` export, with the calls the `snapshot` map makes for an image (a `[1, N]`
//! FP32 tensor as input "0", `compute`, the first output's data) and nothing around them. The
//! inference bench (`tests/benches/inference.rs`) calls it from a plain wasmtime embedding to
//! measure the wasi-nn path (guest → host tensor copy, the host's ONNX backend, the output copy
//! back) apart from the graph (push, PNG decode, JSON, sink). Not an operator; no graph uses it.

/// The tensor conversions of the operators that run models (the `snapshot` map's), so the probe
/// pays what they pay.
pub use sample_common::tensor::{f32_bytes, f32_values};

#[cfg(target_arch = "wasm32")]
mod component;
