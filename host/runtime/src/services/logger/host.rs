//! The `logger` WIT interface on [`GraphServices`]: per-operation (`op{i}-logger`) and shared.

use crate::bindings::named_imports;
use crate::bindings::wasm_graph::processor as wit;
use crate::identity::OpId;
use crate::services::GraphServices;

impl named_imports::wasm_graph::processor::logger::Host for &GraphServices {
    fn log(&mut self, id: OpId, level: wit::logger::Level, context: String, message: String) -> wasmtime::Result<()> {
        super::log(&self.identity(id), level, &context, &message);
        Ok(())
    }
}

impl wit::logger::Host for &GraphServices {
    fn log(&mut self, level: wit::logger::Level, context: String, message: String) -> wasmtime::Result<()> {
        named_imports::wasm_graph::processor::logger::Host::log(self, OpId::UNNAMED, level, context, message)
    }
}
