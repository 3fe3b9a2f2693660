//! Computes `WASMFLOW_COMPOSE_SOURCE_DIGEST`: a digest of this crate's sources, manifest and
//! schema, which keys the composed-graph cache (`src/cache.rs`), so a compiler built from other
//! sources never reuses a graph an older one composed. Hashed with FNV-1a, written out here: a
//! build script of the compiler should not need a dependency for sixteen lines, and the value
//! only has to differ when the inputs do.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut all = vec![root.join("Cargo.toml")];
    for dir in ["src", "schema"] {
        println!("cargo:rerun-if-changed={dir}");
        files(&root.join(dir), &mut all);
    }
    println!("cargo:rerun-if-changed=Cargo.toml");
    all.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for path in &all {
        feed(path.strip_prefix(&root).unwrap_or(path).to_string_lossy().as_bytes());
        feed(&std::fs::read(path).unwrap_or_default());
    }
    println!(
        "cargo:rustc-env=WASMFLOW_COMPOSE_SOURCE_DIGEST={}-{hash:016x}",
        env!("CARGO_PKG_VERSION")
    );
}
