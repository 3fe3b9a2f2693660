//! wasi-nn tensor data (`tensor-data`: the little-endian bytes of the elements) to and from FP32
//! values, for every operator that runs a model (the `snapshot` map, and the inference bench's
//! `nn-probe`, which must pay what the map pays).
//!
//! Measured in the guest (callgrind, BENCHMARKS.md, "Edge inference"): the `flat_map` below is
//! already the cheap form. A flat map over fixed-size arrays has an exact length, so `collect`
//! sizes the vector once and writes into it. A zeroed vector filled with `copy_from_slice` cost
//! about 360 instructions more per 64-float input (calloc zeroing it, then a `memory.copy`).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_data_round_trips_and_odd_lengths_are_refused() {
        let values = [0.0f32, -1.5, 16.0, f32::MIN_POSITIVE, f32::NAN, -0.0];
        let bytes = f32_bytes(&values);
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[4..8], &(-1.5f32).to_le_bytes());
        assert_eq!(&bytes[20..], &(-0.0f32).to_le_bytes());
        let back = f32_values(&bytes).expect("a multiple of 4");
        assert!(back.iter().map(|v| v.to_bits()).eq(values.iter().map(|v| v.to_bits())));
        assert_eq!(f32_values(&bytes[..15]), None);
        assert_eq!(f32_bytes(&[]), Vec::<u8>::new());
        assert_eq!(f32_values(&[]), Some(Vec::new()));
    }
}
