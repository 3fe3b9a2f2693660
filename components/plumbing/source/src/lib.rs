//! The graph's entry plumbing (world `wasmflow:graph/source-node`): turns what a transport
//! delivered into the `data-model::message` every operator takes. The payload buffer is passed
//! through unread (it stays in host memory until an operator reads it); event time comes from
//! the `__ts` user property, else from the arrival time the host supplies.

use wasmflow_guest::hlc::{parse_ts, Hlc, TS_PROPERTY};

/// The event time of a delivery: its first `__ts` property when present and well formed, else
/// `arrival`. The second value is the reason when a `__ts` was present but malformed (the host
/// logs it; the item still flows, stamped with its arrival).
pub fn event_time(user_properties: &[(String, String)], arrival: Hlc) -> (Hlc, Option<String>) {
    match user_properties.iter().find(|(key, _)| key == TS_PROPERTY) {
        None => (arrival, None),
        Some((_, value)) => match parse_ts(value) {
            Ok(parts) => (parts.to_hlc(), None),
            Err(reason) => (arrival, Some(reason)),
        },
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    //! Component glue: the export of world `wasmflow:graph/source-node`.
    use wasmflow_guest::glue::hlc_from_binding;
    use wasmflow_guest::glue::hybrid_logical_clock::{HybridLogicalClock, Timespec};
    use wasmflow_guest::glue::types::{
        BufferOrBytes, BufferOrString, DataModel, Message, MessageProperties, Timestamp,
    };

    use exports::wasmflow::graph::source::{Delivery, Guest};

    wasmflow_guest::component_bindings!(plumbing, "source-node", "../../../wit/wasmflow");

    struct Component;
    export!(Component);

    impl Guest for Component {
        fn ingest(delivery: Delivery, arrival: HybridLogicalClock) -> (DataModel, Option<String>) {
            let (time, problem) = crate::event_time(&delivery.user_properties, hlc_from_binding(&arrival));
            let message = Message {
                timestamp: Timestamp {
                    timestamp: Timespec {
                        secs: time.secs,
                        nanos: time.nanos,
                    },
                    counter: time.counter,
                    node_id: BufferOrString::String(time.node_id),
                },
                topic: BufferOrBytes::Bytes(delivery.topic.into_bytes()),
                content_type: delivery.content_type.map(BufferOrString::String),
                payload: BufferOrBytes::Buffer(delivery.payload),
                properties: MessageProperties {
                    user_properties: delivery
                        .user_properties
                        .into_iter()
                        .map(|(k, v)| (BufferOrString::String(k), BufferOrString::String(v)))
                        .collect(),
                },
                schema: None,
            };
            (DataModel::Message(message), problem)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival() -> Hlc {
        Hlc {
            secs: 99,
            nanos: 5,
            counter: 1,
            node_id: "host".into(),
        }
    }

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn ts_property_sets_event_time() {
        let (time, problem) = event_time(
            &props(&[("a", "b"), ("__ts", "001700000003456:00002:sensor-1")]),
            arrival(),
        );
        assert_eq!(
            time,
            Hlc {
                secs: 1_700_000_003,
                nanos: 456_000_000,
                counter: 2,
                node_id: "sensor-1".into()
            }
        );
        assert_eq!(problem, None);
    }

    #[test]
    fn no_ts_means_arrival_time() {
        assert_eq!(event_time(&props(&[("x", "1")]), arrival()), (arrival(), None));
        assert_eq!(event_time(&[], arrival()), (arrival(), None));
    }

    #[test]
    fn malformed_ts_falls_back_with_a_reason() {
        let (time, problem) = event_time(&props(&[("__ts", "yesterday")]), arrival());
        assert_eq!(time, arrival());
        assert_eq!(
            problem.as_deref(),
            Some("`__ts` value \"yesterday\" is not <ms since epoch>:<counter>:<node id>")
        );
        let (_, problem) = event_time(&props(&[("__ts", "12:x:n")]), arrival());
        assert!(problem.expect("reason").contains("counter \"x\""));
    }

    #[test]
    fn first_ts_wins() {
        let (time, _) = event_time(&props(&[("__ts", "1000:0:a"), ("__ts", "2000:0:b")]), arrival());
        assert_eq!((time.secs, time.node_id.as_str()), (1, "a"));
    }
}
