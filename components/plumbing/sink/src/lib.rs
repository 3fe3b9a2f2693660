//! The graph's exit plumbing (world `wasmflow:graph/sink-node`): turns an item back into what
//! a transport publishes, writing its event time as the `__ts` user property so a downstream
//! graph (or a replay) sees the same time. The payload is passed through: a host buffer stays a
//! buffer and is never read here.

use wasmflow_guest::hlc::{format_hlc, TS_PROPERTY};

/// User properties with `__ts` set to `ts`: the first existing `__ts` is replaced in place,
/// later duplicates are dropped, and it is appended when there was none.
pub fn with_ts(mut properties: Vec<(String, String)>, ts: String) -> Vec<(String, String)> {
    let mut ts = Some(ts);
    properties.retain_mut(|(key, value)| {
        if key != TS_PROPERTY {
            return true;
        }
        match ts.take() {
            Some(new) => {
                *value = new;
                true
            }
            None => false,
        }
    });
    if let Some(ts) = ts {
        properties.push((TS_PROPERTY.to_owned(), ts));
    }
    properties
}

/// The `__ts` value of a timestamp (`{:0>15}:{:0>5}:{}` of ms, counter, node id).
pub fn ts_value(secs: u64, nanos: u32, counter: u64, node_id: &str) -> String {
    format_hlc(secs, nanos, counter, node_id)
}

#[cfg(target_arch = "wasm32")]
mod component {
    //! Component glue: the export of world `wasmflow:graph/sink-node`.
    use wasmflow_guest::glue::types::{BufferOrBytes, DataModel, Error, Timestamp};
    use wasmflow_guest::glue::{error, string_of};

    use exports::wasmflow::graph::sink::{Guest, Publication};

    wasmflow_guest::component_bindings!(plumbing, "sink-node", "../../../wit/wasmflow");

    struct Component;
    export!(Component);

    fn ts_of(ts: &Timestamp) -> Result<String, Error> {
        let node = string_of(&ts.node_id).map_err(|e| error(format!("sink: node id: {e}")))?;
        Ok(crate::ts_value(
            ts.timestamp.secs,
            ts.timestamp.nanos,
            ts.counter,
            &node,
        ))
    }

    impl Guest for Component {
        fn emit(item: DataModel) -> Result<Publication, Error> {
            match item {
                DataModel::Message(message) => {
                    let topic = match &message.topic {
                        BufferOrBytes::Bytes(bytes) => String::from_utf8(bytes.clone()),
                        BufferOrBytes::Buffer(buffer) => String::from_utf8(buffer.read()),
                    }
                    .map_err(|e| error(format!("sink: the message topic is not valid UTF-8: {e}")))?;
                    let content_type = match &message.content_type {
                        Some(ct) => Some(
                            string_of(ct)
                                .map_err(|e| error(format!("sink: content type: {e}")))?
                                .into_owned(),
                        ),
                        None => None,
                    };
                    let mut properties = Vec::with_capacity(message.properties.user_properties.len() + 1);
                    for (key, value) in &message.properties.user_properties {
                        let key = string_of(key).map_err(|e| error(format!("sink: user property name: {e}")))?;
                        let value = string_of(value).map_err(|e| error(format!("sink: user property {key:?}: {e}")))?;
                        properties.push((key.into_owned(), value.into_owned()));
                    }
                    let ts = ts_of(&message.timestamp)?;
                    Ok(Publication {
                        topic: Some(topic),
                        payload: message.payload,
                        content_type,
                        user_properties: crate::with_ts(properties, ts),
                    })
                }
                DataModel::BufferOrBytes(payload) => Ok(Publication {
                    topic: None,
                    payload,
                    content_type: None,
                    user_properties: Vec::new(),
                }),
                // A frame has no topic or content type; its shape travels as user properties.
                DataModel::Snapshot(snapshot) => {
                    let format = string_of(&snapshot.format)
                        .map_err(|e| error(format!("sink: snapshot format: {e}")))?
                        .into_owned();
                    let properties = vec![
                        ("snapshot-format".to_owned(), format),
                        ("snapshot-width".to_owned(), snapshot.width.to_string()),
                        ("snapshot-height".to_owned(), snapshot.height.to_string()),
                    ];
                    let ts = ts_of(&snapshot.timestamp)?;
                    Ok(Publication {
                        topic: None,
                        payload: snapshot.frame,
                        content_type: None,
                        user_properties: crate::with_ts(properties, ts),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmflow_guest::hlc::parse_ts;

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn ts_is_zero_padded_milliseconds() {
        assert_eq!(
            ts_value(1_700_000_003, 456_789_000, 7, "edge-1"),
            "001700000003456:00007:edge-1"
        );
        assert_eq!(ts_value(0, 0, 0, ""), "000000000000000:00000:");
    }

    #[test]
    fn ts_is_added_when_absent() {
        assert_eq!(
            with_ts(props(&[("a", "1")]), "T".into()),
            props(&[("a", "1"), ("__ts", "T")])
        );
        assert_eq!(with_ts(Vec::new(), "T".into()), props(&[("__ts", "T")]));
    }

    #[test]
    fn ts_is_replaced_in_place_and_duplicates_dropped() {
        let before = props(&[("__ts", "old"), ("a", "1"), ("__ts", "older")]);
        assert_eq!(with_ts(before, "new".into()), props(&[("__ts", "new"), ("a", "1")]));
    }

    #[test]
    fn what_the_sink_writes_the_source_reads_back() {
        let written = ts_value(1_700_000_010, 0, 3, "n:1");
        let parts = parse_ts(&written).expect("parses");
        assert_eq!(parts.to_hlc().secs, 1_700_000_010);
        assert_eq!((parts.counter, parts.node_id), (3, "n:1"));
    }
}
