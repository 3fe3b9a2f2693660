//! Component glue on the SDK: one operator function per kind (map, branch, filter,
//! accumulate), each marked with its `wasm_graph_sdk` macro, as the platform's `temperature`
//! module is written.

use std::sync::Mutex;

use sample_common::glue::{bytes_of, config_value, error, finish_init, log_init};
use wasm_graph_sdk::macros::{accumulate_operator, branch_operator, filter_operator, map_operator};

use crate::{Bounds, MapOutcome};

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

/// The payload of an item, `None` for a snapshot.
fn payload_of(item: &DataModel) -> Option<&BufferOrBytes> {
    match item {
        DataModel::Message(message) => Some(&message.payload),
        DataModel::BufferOrBytes(payload) => Some(payload),
        DataModel::Snapshot(_) => None,
    }
}

fn map_init(configuration: ModuleConfiguration) -> bool {
    log_init("temperature/map", &configuration);
    true
}

#[map_operator(init = "map_init")]
fn to_celsius(message: DataModel) -> Result<DataModel, Error> {
    match message {
        DataModel::Message(mut message) => {
            message.payload = map_payload(message.payload)?;
            Ok(DataModel::Message(message))
        }
        DataModel::BufferOrBytes(payload) => Ok(DataModel::BufferOrBytes(map_payload(payload)?)),
        snapshot @ DataModel::Snapshot(_) => Ok(snapshot),
    }
}

fn branch_init(configuration: ModuleConfiguration) -> bool {
    log_init("temperature/branch", &configuration);
    true
}

#[branch_operator(init = "branch_init")]
fn is_temperature(_timestamp: HybridLogicalClock, message: DataModel) -> Result<bool, Error> {
    Ok(payload_of(&message).is_some_and(|p| crate::is_temperature(&bytes_of(p))))
}

fn filter_init(configuration: ModuleConfiguration) -> bool {
    let outcome = Bounds::from_config(|key| config_value(&configuration, key)).map(|bounds| {
        *BOUNDS.lock().unwrap_or_else(|e| e.into_inner()) = bounds;
        format!("passing °C readings in ({}, {})", bounds.lower, bounds.upper)
    });
    finish_init("temperature/filter", &configuration, outcome)
}

#[filter_operator(init = "filter_init")]
fn within_bounds(message: DataModel) -> Result<bool, Error> {
    let bounds = *BOUNDS.lock().unwrap_or_else(|e| e.into_inner());
    Ok(payload_of(&message).is_some_and(|p| crate::filter(&bytes_of(p), &bounds)))
}

fn accumulate_init(configuration: ModuleConfiguration) -> bool {
    log_init("temperature/accumulate", &configuration);
    true
}

#[accumulate_operator(init = "accumulate_init")]
fn statistics(staged: DataModel, message: Vec<DataModel>) -> Result<DataModel, Error> {
    sample_common::glue::accumulate("temperature/accumulate", staged, message, crate::accumulate)
}
