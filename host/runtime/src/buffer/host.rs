//! The `types` interface on [`HostState`] (its `buffer` resource; the rest are records), and
//! `hybrid-logical-clock` (records only).

use super::Payload;
use crate::bindings::wasm_graph::processor as wit;
use crate::store::HostState;

impl wit::types::HostBuffer for HostState {
    fn read(&mut self, this: wasmtime::component::Resource<Payload>) -> wasmtime::Result<Vec<u8>> {
        super::read(&self.table, &this)
    }

    fn drop(&mut self, this: wasmtime::component::Resource<Payload>) -> wasmtime::Result<()> {
        super::drop(&mut self.table, this)
    }
}

impl wit::types::Host for HostState {}
impl wit::hybrid_logical_clock::Host for HostState {}
