//! Component glue shared by wasmflow's own operators (wasm32 only), over the types of the open
//! SDK (`wasm_graph_sdk`, `components/sdk`) that every one of them is written on: reading
//! payloads and configuration, the `init` log records, clock conversions, and the accumulate
//! plumbing common to `temperature`, `humidity`, `collection` and `snapshot` (output timestamp =
//! the latest input's, topic = the last input's).

use std::borrow::Cow;

use wasm_graph_sdk::logger::{self, Level};
use wasm_graph_sdk::{
    BufferOrBytes, BufferOrString, DataModel, Error, HybridLogicalClock, Message, MessageProperties,
    ModuleConfiguration, Timespec, Timestamp,
};

use crate::hlc::{self, Hlc, OrderKey};
use crate::Folded;

/// Content type of every JSON payload the samples write.
pub const JSON: &str = "application/json";

/// The bytes of a payload. A host buffer is read (one copy into guest memory); owned bytes are
/// borrowed, not copied (the SDK's `read()` would copy them).
pub fn bytes_of(payload: &BufferOrBytes) -> Cow<'_, [u8]> {
    match payload {
        BufferOrBytes::Buffer(buffer) => Cow::Owned(buffer.read()),
        BufferOrBytes::Bytes(bytes) => Cow::Borrowed(bytes),
    }
}

/// The text of a string field; a host buffer is read and must be UTF-8 (the error says so,
/// where the SDK's `to_string_lossy()` would replace what is not).
pub fn string_of(value: &BufferOrString) -> Result<Cow<'_, str>, String> {
    match value {
        BufferOrString::String(text) => Ok(Cow::Borrowed(text)),
        BufferOrString::Buffer(buffer) => String::from_utf8(buffer.read())
            .map(Cow::Owned)
            .map_err(|e| format!("a string buffer is not valid UTF-8: {e}")),
    }
}

/// The event-time ordering key of a message timestamp.
pub fn timestamp_key(ts: &Timestamp) -> OrderKey {
    (ts.timestamp.secs, ts.timestamp.nanos, ts.counter)
}

/// The timestamp an item carries, if any (a bare payload carries none).
pub fn timestamp_of(item: &DataModel) -> Option<&Timestamp> {
    match item {
        DataModel::Message(message) => Some(&message.timestamp),
        DataModel::Snapshot(snapshot) => Some(&snapshot.timestamp),
        DataModel::BufferOrBytes(_) => None,
    }
}

/// A copy of a message timestamp. `Timestamp` is not `Clone` (its node id may be a host
/// buffer), so a buffer node id is read into a string (an invalid one becomes empty).
pub fn copy_timestamp(ts: &Timestamp) -> Timestamp {
    Timestamp {
        timestamp: Timespec {
            secs: ts.timestamp.secs,
            nanos: ts.timestamp.nanos,
        },
        counter: ts.counter,
        node_id: BufferOrString::String(string_of(&ts.node_id).map(Cow::into_owned).unwrap_or_default()),
    }
}

/// The value of a configuration key; the last occurrence wins (run-time overrides come after
/// the graph's defaults).
pub fn config_value<'a>(configuration: &'a ModuleConfiguration, key: &str) -> Option<&'a str> {
    configuration
        .properties
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The configuration as one readable line, e.g. `2 properties: [a="1", b="2"]`.
pub fn describe_configuration(configuration: &ModuleConfiguration) -> String {
    let pairs: Vec<String> = configuration
        .properties
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    let noun = if pairs.len() == 1 { "property" } else { "properties" };
    format!("{} {noun}: [{}]", pairs.len(), pairs.join(", "))
}

/// Logs the configuration an operation received, once, from `init`, so a misconfigured graph
/// can be diagnosed from the log alone.
pub fn log_init(context: &str, configuration: &ModuleConfiguration) {
    logger::log(
        Level::Info,
        context,
        &format!("init with {}", describe_configuration(configuration)),
    );
}

/// Ends an `init` that parses configuration: logs one record (info with `detail` on success,
/// error with the reason on failure) and returns what `init` must return.
pub fn finish_init(context: &str, configuration: &ModuleConfiguration, outcome: Result<String, String>) -> bool {
    let config = describe_configuration(configuration);
    match outcome {
        Ok(detail) => {
            logger::log(Level::Info, context, &format!("init with {config}; {detail}"));
            true
        }
        Err(reason) => {
            logger::log(
                Level::Error,
                context,
                &format!("init with {config}: configuration error: {reason}"),
            );
            false
        }
    }
}

/// The operator error type from a message.
pub fn error(message: impl Into<String>) -> Error {
    Error {
        message: message.into(),
    }
}

/// An SDK clock → the plain [`Hlc`] the logic is written (and natively tested) on.
pub fn hlc_from_sdk(clock: &HybridLogicalClock) -> Hlc {
    Hlc {
        secs: clock.timestamp.secs,
        nanos: clock.timestamp.nanos,
        counter: clock.counter,
        node_id: clock.node_id.clone(),
    }
}

/// The plain [`Hlc`] → an SDK clock.
pub fn hlc_to_sdk(clock: &Hlc) -> HybridLogicalClock {
    HybridLogicalClock {
        timestamp: Timespec {
            secs: clock.secs,
            nanos: clock.nanos,
        },
        counter: clock.counter,
        node_id: clock.node_id.clone(),
    }
}

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
        logger::log(Level::Warn, context, warning);
    }

    // Timestamp of the latest item; items without one (bare payloads) do not count.
    let stamped: Vec<(usize, OrderKey)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| timestamp_of(item).map(|ts| (i, timestamp_key(ts))))
        .collect();
    let keys: Vec<OrderKey> = stamped.iter().map(|&(_, key)| key).collect();
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
