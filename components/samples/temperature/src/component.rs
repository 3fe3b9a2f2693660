//! Component glue: the exports of world `wasmflow:samples/temperature`.

use std::sync::Mutex;

use wasmflow_guest::glue::hybrid_logical_clock::HybridLogicalClock;
use wasmflow_guest::glue::types::{BufferOrBytes, DataModel, Error, ModuleConfiguration};
use wasmflow_guest::glue::{bytes_of, config_value, error, finish_init, log_init};

use crate::{Bounds, MapOutcome};

wasmflow_guest::component_bindings!(operator, "temperature", "../../../wit/samples");

struct Component;
export!(Component);

/// Each operation has its own instance, so per-instance state is per-operation state.
static BOUNDS: Mutex<Bounds> = Mutex::new(Bounds::DEFAULT);

/// Applies the map to a payload, keeping the original (buffer or bytes) when it is unchanged.
fn map_payload(payload: BufferOrBytes) -> Result<BufferOrBytes, Error> {
    let outcome = crate::map(&bytes_of(&payload)).map_err(|e| error(format!("temperature/map: {e}")))?;
    Ok(match outcome {
        MapOutcome::Unchanged => payload,
        MapOutcome::Replaced(bytes) => BufferOrBytes::Bytes(bytes),
    })
}

impl exports::wasm_graph::processor::map::Guest for Component {
    fn init(configuration: ModuleConfiguration) -> bool {
        log_init("temperature/map", &configuration);
        true
    }

    fn process(message: DataModel) -> Result<DataModel, Error> {
        match message {
            DataModel::Message(mut message) => {
                message.payload = map_payload(message.payload)?;
                Ok(DataModel::Message(message))
            }
            DataModel::BufferOrBytes(payload) => Ok(DataModel::BufferOrBytes(map_payload(payload)?)),
            snapshot @ DataModel::Snapshot(_) => Ok(snapshot),
        }
    }
}

/// The payload of an item, `None` for a snapshot.
fn payload_of(item: &DataModel) -> Option<&BufferOrBytes> {
    match item {
        DataModel::Message(message) => Some(&message.payload),
        DataModel::BufferOrBytes(payload) => Some(payload),
        DataModel::Snapshot(_) => None,
    }
}

impl exports::wasm_graph::processor::branch::Guest for Component {
    fn init(configuration: ModuleConfiguration) -> bool {
        log_init("temperature/branch", &configuration);
        true
    }

    fn process(_timestamp: HybridLogicalClock, message: DataModel) -> Result<bool, Error> {
        Ok(payload_of(&message).is_some_and(|p| crate::is_temperature(&bytes_of(p))))
    }
}

impl exports::wasm_graph::processor::filter::Guest for Component {
    fn init(configuration: ModuleConfiguration) -> bool {
        let outcome = Bounds::from_config(|key| config_value(&configuration, key)).map(|bounds| {
            *BOUNDS.lock().unwrap_or_else(|e| e.into_inner()) = bounds;
            format!("passing °C readings in ({}, {})", bounds.lower, bounds.upper)
        });
        finish_init("temperature/filter", &configuration, outcome)
    }

    fn process(message: DataModel) -> Result<bool, Error> {
        let bounds = *BOUNDS.lock().unwrap_or_else(|e| e.into_inner());
        Ok(payload_of(&message).is_some_and(|p| crate::filter(&bytes_of(p), &bounds)))
    }
}

impl exports::wasm_graph::processor::accumulate::Guest for Component {
    fn init(configuration: ModuleConfiguration) -> bool {
        log_init("temperature/accumulate", &configuration);
        true
    }

    fn process(staged: DataModel, message: Vec<DataModel>) -> Result<DataModel, Error> {
        sample_common::glue::accumulate("temperature/accumulate", staged, message, crate::accumulate)
    }
}
