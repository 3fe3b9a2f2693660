//! The `nn-probe` bench component (world `wasmflow:samples/nn-probe`): one wasi-nn inference per
//! call of its `infer` export, with the calls the `snapshot` map makes for an image (a `[1, N]`
//! FP32 tensor as input "0", `compute`, the first output's data) and nothing around them. The
//! inference bench (`tests/benches/inference.rs`) calls it from a plain wasmtime embedding to
//! measure the wasi-nn path (guest → host tensor copy, the host's ONNX backend, the output copy
//! back) apart from the graph (push, PNG decode, JSON, sink). Not an operator; no graph uses it.

/// The little-endian bytes of an FP32 tensor (what wasi-nn's `tensor-data` holds).
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// FP32 values from little-endian tensor data; `None` when the length is not a multiple of 4.
pub fn f32_values(data: &[u8]) -> Option<Vec<f32>> {
    if !data.len().is_multiple_of(4) {
        return None;
    }
    Some(
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_data_round_trips_and_odd_lengths_are_refused() {
        let values = [0.0f32, -1.5, 16.0, f32::MIN_POSITIVE];
        let bytes = f32_bytes(&values);
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[4..8], &(-1.5f32).to_le_bytes());
        assert_eq!(f32_values(&bytes), Some(values.to_vec()));
        assert_eq!(f32_values(&bytes[..15]), None);
    }
}
