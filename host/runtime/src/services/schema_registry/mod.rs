//! The `schema-registry` interface: the schemas a graph definition carries (`schemas`), looked
//! up by name.

use wasmflow_compose::Manifest;

pub mod host;

/// One schema as the registry answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// The name modules ask for.
    pub name: String,
    /// Its content type (the definition's `format`).
    pub content_type: String,
    /// The schema text.
    pub content: String,
}

/// The schemas of one graph.
#[derive(Debug, Clone, Default)]
pub struct Schemas(Vec<Schema>);

impl Schemas {
    /// The schemas of a graph's manifest.
    pub fn from_manifest(manifest: &Manifest) -> Self {
        Self(
            manifest
                .schemas
                .iter()
                .map(|s| Schema {
                    name: s.name.clone(),
                    content_type: s.format.clone(),
                    content: s.content.clone(),
                })
                .collect(),
        )
    }

    /// The schema named `name`, if the graph has one.
    pub fn get(&self, name: &str) -> Option<&Schema> {
        self.0.iter().find(|s| s.name == name)
    }
}
