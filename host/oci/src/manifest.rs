//! What a pulled manifest says: which kind of artifact it is and the one layer to fetch.
//!
//! The manifest comes from the registry (or the cache) and is the first thing of a pull that a
//! registry controls, so [`classify`] accepts exactly the two artifact forms wasmflow pushes and
//! the platform's (see the crate documentation), and checks the layer's digest before anything
//! uses it to name a file: whatever it returns can be fetched and cached as is. Fuzzed
//! (`tests/fuzz`, target `oci_manifest`).

use oci_client::manifest::{OciDescriptor, OciImageManifest};

use crate::cache;
use crate::error::OciError;

/// Config media type of a wasm component artifact (CNCF wasm artifact, as oci-wasm writes it).
pub const WASM_CONFIG_MEDIA_TYPE: &str = crate::wasm_config::WASM_MANIFEST_CONFIG_MEDIA_TYPE;
/// Layer media type of a wasm component artifact.
pub const WASM_LAYER_MEDIA_TYPE: &str = crate::wasm_config::WASM_LAYER_MEDIA_TYPE;
/// The layer type the platform's samples CI pushes modules with; accepted on pull.
pub const WASM_CONTENT_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// Config media type of a graph definition artifact (Azure IoT Operations).
pub const GRAPH_CONFIG_MEDIA_TYPE: &str = "application/vnd.microsoft.aio.graph.v1+yaml";
/// Layer media type of a graph definition artifact.
pub const GRAPH_LAYER_MEDIA_TYPE: &str = "application/yaml";
/// What an artifact holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// A wasm component: an operator module or a composed graph.
    Component,
    /// A graph definition (YAML).
    GraphDefinition,
}

impl std::fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArtifactKind::Component => "wasm component",
            ArtifactKind::GraphDefinition => "graph definition",
        })
    }
}

impl ArtifactKind {
    /// File extension the loaders expect.
    pub fn extension(self) -> &'static str {
        match self {
            ArtifactKind::Component => "wasm",
            ArtifactKind::GraphDefinition => "yaml",
        }
    }
}

/// What a manifest holds, and the one layer to fetch; `reference` names the artifact in errors.
/// The layer's digest is `sha256:<64 hex>` (the only form the cache stores), so it is safe to
/// turn into a file name.
pub fn classify(bytes: &[u8], reference: &str) -> Result<(ArtifactKind, OciDescriptor), OciError> {
    let unsupported = |detail: String| OciError::UnsupportedArtifact {
        reference: reference.to_string(),
        detail,
    };
    let m: OciImageManifest = serde_json::from_slice(bytes)
        .map_err(|e| unsupported(format!("its manifest is not an OCI image manifest: {e}")))?;
    let kind = match m.config.media_type.as_str() {
        GRAPH_CONFIG_MEDIA_TYPE => ArtifactKind::GraphDefinition,
        WASM_CONFIG_MEDIA_TYPE | "application/vnd.wasm.config.v1+json" => ArtifactKind::Component,
        other => {
            // The platform's CI pushes modules with `oras` and an arbitrary config; the layer decides.
            if m.layers.len() == 1 && m.layers[0].media_type == WASM_CONTENT_LAYER_MEDIA_TYPE {
                ArtifactKind::Component
            } else {
                return Err(unsupported(format!("config media type `{other}`")));
            }
        }
    };
    let wanted: &[&str] = match kind {
        ArtifactKind::Component => &[WASM_LAYER_MEDIA_TYPE, WASM_CONTENT_LAYER_MEDIA_TYPE],
        ArtifactKind::GraphDefinition => &[GRAPH_LAYER_MEDIA_TYPE],
    };
    let layers: Vec<&OciDescriptor> = m
        .layers
        .iter()
        .filter(|l| wanted.contains(&l.media_type.as_str()))
        .collect();
    match layers.as_slice() {
        [one] => {
            cache::sha256_hex(&one.digest)?;
            Ok((kind, (*one).clone()))
        }
        _ => Err(unsupported(format!(
            "expected exactly one layer of type {}, found [{}]",
            wanted.join(" or "),
            m.layers
                .iter()
                .map(|l| l.media_type.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
