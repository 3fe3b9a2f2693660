//! Component glue on the SDK: the map operator.

use sample_common::glue::{bytes_of, finish_init};
use wasm_graph_sdk::macros::map_operator;

use crate::{answer, probe_of, Arrival};

fn init(configuration: ModuleConfiguration) -> bool {
    finish_init("wasi-probe/map", &configuration, Ok("probing".to_owned()))
}

#[map_operator(init = "init")]
fn probe(message: DataModel) -> Result<DataModel, Error> {
    let DataModel::Message(mut m) = message else {
        return Ok(message);
    };
    if let Some(probe) = probe_of(&bytes_of(&m.payload)) {
        let arrival = match m.payload {
            BufferOrBytes::Buffer(_) => Arrival::Buffer,
            BufferOrBytes::Bytes(_) => Arrival::Bytes,
        };
        m.payload = BufferOrBytes::Bytes(answer(&probe, arrival));
    }
    Ok(DataModel::Message(m))
}
