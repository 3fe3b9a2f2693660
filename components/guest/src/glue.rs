//! Small helpers over the generated binding types, shared by every component so the per-crate
//! glue stays a thin layer of `match`es around natively tested logic.

use std::borrow::Cow;

pub use crate::bindings::wasm_graph::processor::{
    hybrid_logical_clock, logger, metrics, state_store, state_store_types, types,
};

use crate::hlc::{Hlc, OrderKey};
use hybrid_logical_clock::{HybridLogicalClock, Timespec};
use types::{BufferOrBytes, BufferOrString, DataModel, ModuleConfiguration, Timestamp};

/// The bytes of a payload. A host buffer is read (one copy into guest memory); owned bytes are
/// borrowed, not copied.
pub fn bytes_of(payload: &BufferOrBytes) -> Cow<'_, [u8]> {
    match payload {
        BufferOrBytes::Buffer(buffer) => Cow::Owned(buffer.read()),
        BufferOrBytes::Bytes(bytes) => Cow::Borrowed(bytes),
    }
}

/// The text of a string field; a host buffer is read and must be UTF-8 (the error says so).
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
/// buffer), so a buffer node id is read into a string.
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

/// Logs one record through the host's `logger`.
pub fn log(level: logger::Level, context: &str, message: &str) {
    logger::log(level, context, message);
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
    log(
        logger::Level::Info,
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
            log(logger::Level::Info, context, &format!("init with {config}; {detail}"));
            true
        }
        Err(reason) => {
            log(
                logger::Level::Error,
                context,
                &format!("init with {config}: configuration error: {reason}"),
            );
            false
        }
    }
}

/// The operator error type from a message.
pub fn error(message: impl Into<String>) -> types::Error {
    types::Error {
        message: message.into(),
    }
}

/// A binding clock → the plain [`Hlc`].
pub fn hlc_from_binding(clock: &HybridLogicalClock) -> Hlc {
    Hlc {
        secs: clock.timestamp.secs,
        nanos: clock.timestamp.nanos,
        counter: clock.counter,
        node_id: clock.node_id.clone(),
    }
}

/// The plain [`Hlc`] → a binding clock.
pub fn hlc_to_binding(clock: &Hlc) -> HybridLogicalClock {
    HybridLogicalClock {
        timestamp: Timespec {
            secs: clock.secs,
            nanos: clock.nanos,
        },
        counter: clock.counter,
        node_id: clock.node_id.clone(),
    }
}
