//! The `schema-registry` WIT interface on [`HostState`].

use crate::bindings::wasm_graph::processor as wit;
use crate::store::HostState;

use wit::state_store_types::Duration as WitDuration;

impl wit::schema_types::Host for HostState {}

impl wit::schema_registry::Host for HostState {
    fn get(
        &mut self,
        id: String,
        _version: String,
        _timeout: WitDuration,
    ) -> wasmtime::Result<Result<wit::schema_types::Schema, wit::schema_types::SchemaError>> {
        Ok(self
            .services
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
