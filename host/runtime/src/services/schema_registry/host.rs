//! The `schema-registry` WIT interface on [`GraphServices`].

use crate::bindings::wasm_graph::processor as wit;
use crate::services::GraphServices;

use wit::state_store_types::Duration as WitDuration;

impl wit::schema_types::Host for &GraphServices {}

impl wit::schema_registry::Host for &GraphServices {
    fn get(
        &mut self,
        id: String,
        _version: String,
        _timeout: WitDuration,
    ) -> wasmtime::Result<Result<wit::schema_types::Schema, wit::schema_types::SchemaError>> {
        Ok(self
            .schemas
            .get(&id)
            .map(|s| wit::schema_types::Schema {
                name: s.name.clone(),
                content_type: s.content_type.clone(),
                content: s.content.clone(),
            })
            .ok_or(wit::schema_types::SchemaError::NotFound))
    }
}
