//! Component glue: world `wasmflow:samples/wasi-probe`.

use wasmflow_guest::glue::types::{BufferOrBytes, DataModel, Error, ModuleConfiguration};
use wasmflow_guest::glue::{bytes_of, finish_init};

use crate::{answer, probe_of};

wasmflow_guest::component_bindings!(operator, "wasi-probe", "../../../wit/samples");

struct Component;
export!(Component);

impl exports::wasm_graph::processor::map::Guest for Component {
    fn init(configuration: ModuleConfiguration) -> bool {
        finish_init("wasi-probe/map", &configuration, Ok("probing".to_owned()))
    }

    fn process(message: DataModel) -> Result<DataModel, Error> {
        let DataModel::Message(mut m) = message else {
            return Ok(message);
        };
        if let Some(probe) = probe_of(&bytes_of(&m.payload)) {
            m.payload = BufferOrBytes::Bytes(answer(&probe));
        }
        Ok(DataModel::Message(m))
    }
}
