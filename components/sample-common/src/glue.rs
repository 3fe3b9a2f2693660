//! Component glue shared by the sample accumulators (wasm32 only).

use std::borrow::Cow;

use wasmflow_guest::glue::hybrid_logical_clock::Timespec;
use wasmflow_guest::glue::logger::Level;
use wasmflow_guest::glue::types::{
    BufferOrBytes, BufferOrString, DataModel, Error, Message, MessageProperties, Timestamp,
};
use wasmflow_guest::glue::{bytes_of, copy_timestamp, error, log, timestamp_key, timestamp_of};
use wasmflow_guest::hlc;

use crate::Folded;

/// Content type of every JSON payload the samples write.
pub const JSON: &str = "application/json";

/// Runs an accumulate: reads the staged payload (empty = nothing staged yet) and every item's
/// payload (`None` for a snapshot, which is no JSON payload), lets `fold` compute the new
/// payload, logs its warnings, and builds the output message: the staged message with the new
/// payload, the timestamp of the latest item (by `(secs, nanos, counter)`), the topic of the
/// last message in the batch, and content type `application/json`.
pub fn accumulate(
    context: &str,
    staged: DataModel,
    items: Vec<DataModel>,
    fold: impl FnOnce(Option<&[u8]>, &[Option<&[u8]>]) -> Result<Folded, String>,
) -> Result<DataModel, Error> {
    let mut base = match staged {
        DataModel::Message(message) => message,
        DataModel::BufferOrBytes(payload) => Message {
            timestamp: Timestamp {
                timestamp: Timespec { secs: 0, nanos: 0 },
                counter: 0,
                node_id: BufferOrString::String(String::new()),
            },
            topic: BufferOrBytes::Bytes(Vec::new()),
            content_type: None,
            payload,
            properties: MessageProperties {
                user_properties: Vec::new(),
            },
            schema: None,
        },
        DataModel::Snapshot(_) => {
            return Err(error(format!(
                "{context}: the staged value is a snapshot, expected a message with the accumulated JSON"
            )))
        }
    };

    let folded = {
        let staged_bytes = bytes_of(&base.payload);
        let staged_bytes = if staged_bytes.is_empty() {
            None
        } else {
            Some(staged_bytes)
        };
        let item_bytes: Vec<Option<Cow<'_, [u8]>>> = items
            .iter()
            .map(|item| match item {
                DataModel::Message(message) => Some(bytes_of(&message.payload)),
                DataModel::BufferOrBytes(payload) => Some(bytes_of(payload)),
                DataModel::Snapshot(_) => None,
            })
            .collect();
        let views: Vec<Option<&[u8]>> = item_bytes.iter().map(|b| b.as_deref()).collect();
        fold(staged_bytes.as_deref(), &views).map_err(|e| error(format!("{context}: {e}")))?
    };
    for warning in &folded.warnings {
        log(Level::Warn, context, warning);
    }

    // Timestamp of the latest item; items without one (bare payloads) do not count.
    let stamped: Vec<(usize, hlc::OrderKey)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| timestamp_of(item).map(|ts| (i, timestamp_key(ts))))
        .collect();
    let keys: Vec<hlc::OrderKey> = stamped.iter().map(|&(_, key)| key).collect();
    if let Some(latest) = hlc::latest(&keys) {
        if let Some(ts) = timestamp_of(&items[stamped[latest].0]) {
            base.timestamp = copy_timestamp(ts);
        }
    }
    // Topic of the last message in batch order.
    if let Some(topic) = items.into_iter().rev().find_map(|item| match item {
        DataModel::Message(message) => Some(message.topic),
        _ => None,
    }) {
        base.topic = topic;
    }
    base.payload = BufferOrBytes::Bytes(folded.payload);
    base.content_type = Some(BufferOrString::String(JSON.to_owned()));
    Ok(DataModel::Message(base))
}

/// The whole component of a sample that is one accumulate (`humidity`, `collection`): the
/// exports of world `wasmflow:samples/<world>`, whose `init` logs its configuration and whose
/// `process` runs [`accumulate`] with `fold` under the context `<world>/accumulate`.
///
/// `sample_common::accumulate_component!("humidity", crate::accumulate);` at the sample's crate
/// root (wasm32 only); the crate needs `wasmflow-guest` and `wit-bindgen` as dependencies, and
/// the WIT is read from `../../../wit/samples` relative to its manifest.
#[macro_export]
macro_rules! accumulate_component {
    ($world:tt, $fold:path) => {
        mod component {
            use ::wasmflow_guest::glue::log_init;
            use ::wasmflow_guest::glue::types::{DataModel, Error, ModuleConfiguration};

            ::wasmflow_guest::component_bindings!(operator, $world, "../../../wit/samples");

            struct Component;
            export!(Component);

            impl exports::wasm_graph::processor::accumulate::Guest for Component {
                fn init(configuration: ModuleConfiguration) -> bool {
                    log_init(concat!($world, "/accumulate"), &configuration);
                    true
                }

                fn process(staged: DataModel, message: Vec<DataModel>) -> Result<DataModel, Error> {
                    $crate::glue::accumulate(concat!($world, "/accumulate"), staged, message, $fold)
                }
            }
        }
    };
}
