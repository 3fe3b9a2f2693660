//! A pulled manifest (`wasmflow_oci::manifest::classify`): the first bytes of a pull that a
//! registry controls.
//!
//! Either the kind of artifact and its one layer, of a media type that kind takes and with a
//! digest that names a file inside the cache, or an error naming the reference.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wasmflow_oci::manifest::{classify, ArtifactKind};
use wasmflow_oci::{Cache, GRAPH_LAYER_MEDIA_TYPE, WASM_CONTENT_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};

const REFERENCE: &str = "127.0.0.1:5000/fuzz/artifact:1.0.0";

fuzz_target!(|data: &[u8]| {
    match classify(data, REFERENCE) {
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(REFERENCE) || message.starts_with("unsupported digest"),
                "{message}"
            );
        }
        Ok((kind, layer)) => {
            let wanted: &[&str] = match kind {
                ArtifactKind::Component => &[WASM_LAYER_MEDIA_TYPE, WASM_CONTENT_LAYER_MEDIA_TYPE],
                ArtifactKind::GraphDefinition => &[GRAPH_LAYER_MEDIA_TYPE],
            };
            assert!(
                wanted.contains(&layer.media_type.as_str()),
                "{kind:?}: {}",
                layer.media_type
            );
            let root = Path::new("/nonexistent/wasmflow-fuzz");
            let blob = Cache::new(root)
                .blob_path(&layer.digest)
                .expect("the layer's digest is checked");
            assert_eq!(blob.parent(), Some(root.join("oci/blobs/sha256").as_path()));
        }
    }
});
