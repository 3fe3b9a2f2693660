//! Embeds the classifier the `map` runs when no `model` parameter names a preloaded one: the
//! digits model `scripts/build-model.py` writes to `<repo>/target/models/digits.onnx`, or the
//! file `WASMFLOW_SNAPSHOT_MODEL` names. Only the component (wasm32) needs it; native unit tests
//! get an empty placeholder, so `cargo test` works before the model is built.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=WASMFLOW_SNAPSHOT_MODEL");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let model = std::env::var_os("WASMFLOW_SNAPSHOT_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../../target/models/digits.onnx"));
    println!("cargo:rerun-if-changed={}", model.display());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("model.onnx");
    let wasm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "wasm32");
    let bytes = match std::fs::read(&model) {
        Ok(bytes) => bytes,
        Err(e) if wasm => panic!(
            "the snapshot operator embeds {}, which cannot be read ({e}); build it with `python3 scripts/build-model.py` (make model)",
            model.display()
        ),
        Err(_) => Vec::new(),
    };
    std::fs::write(&out, bytes).expect("write the embedded model into OUT_DIR");
}
