//! The graph's entry plumbing (world `wasmflow:graph/source-node`): decides a delivery's event
//! time from its `__ts` user property, else from the arrival time the host supplies. The host
//! builds the message around the answer, so the payload never crosses into this component.

use wasmflow_guest::hlc::{parse_ts, Hlc};

/// The event time of a delivery whose first `__ts` property is `ts`: `ts` parsed when present
/// and well formed, else `arrival`. The second value is the reason when a `__ts` was present
/// but malformed (the host logs it; the item still flows, stamped with its arrival).
/// `arrival` is asked only then: a host running this natively reads no clock for a delivery
/// that carries its event time.
pub fn event_time(ts: Option<&str>, arrival: impl FnOnce() -> Hlc) -> (Hlc, Option<String>) {
    match ts {
        None => (arrival(), None),
        Some(value) => match parse_ts(value) {
            Ok(parts) => (parts.to_hlc(), None),
            Err(reason) => (arrival(), Some(reason)),
        },
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    //! Component glue: the export of world `wasmflow:graph/source-node`.
    use wasmflow_guest::glue::hlc_from_binding;
    use wasmflow_guest::glue::hybrid_logical_clock::{HybridLogicalClock, Timespec};

    use exports::wasmflow::graph::source::Guest;

    wasmflow_guest::component_bindings!(clock, "source-node", "../../../wit/wasmflow");

    struct Component;
    export!(Component);

    impl Guest for Component {
        fn event_time(ts: Option<String>, arrival: HybridLogicalClock) -> (HybridLogicalClock, Option<String>) {
            let (time, problem) = crate::event_time(ts.as_deref(), || hlc_from_binding(&arrival));
            let clock = HybridLogicalClock {
                timestamp: Timespec {
                    secs: time.secs,
                    nanos: time.nanos,
                },
                counter: time.counter,
                node_id: time.node_id,
            };
            (clock, problem)
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

    #[test]
    fn ts_property_sets_event_time() {
        let (time, problem) = event_time(Some("001700000003456:00002:sensor-1"), arrival);
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
    fn a_usable_ts_reads_no_clock() {
        let (time, _) = event_time(Some("5:0:n"), || panic!("the arrival time was asked for"));
        assert_eq!(time.counter, 0);
    }

    #[test]
    fn no_ts_means_arrival_time() {
        assert_eq!(event_time(None, arrival), (arrival(), None));
    }

    #[test]
    fn malformed_ts_falls_back_with_a_reason() {
        let (time, problem) = event_time(Some("yesterday"), arrival);
        assert_eq!(time, arrival());
        assert_eq!(
            problem.as_deref(),
            Some("`__ts` value \"yesterday\" is not <ms since epoch>:<counter>:<node id>")
        );
        let (_, problem) = event_time(Some("12:x:n"), arrival);
        assert!(problem.expect("reason").contains("counter \"x\""));
    }
}
