//! The graph's exit plumbing (world `wasmflow:graph/sink-node`): writes an item's event time as
//! the `__ts` user property value, so a downstream graph (or a replay) sees the same time. The
//! host assembles the publication around it; the payload never crosses into this component.

use wasmflow_guest::hlc::format_hlc;

/// The `__ts` value of a timestamp (`{:0>15}:{:0>5}:{}` of ms, counter, node id).
pub fn ts_value(secs: u64, nanos: u32, counter: u64, node_id: &str) -> String {
    format_hlc(secs, nanos, counter, node_id)
}

#[cfg(target_arch = "wasm32")]
mod component {
    //! Component glue: the export of world `wasmflow:graph/sink-node`.
    use wasmflow_guest::glue::hybrid_logical_clock::HybridLogicalClock;

    use exports::wasmflow::graph::sink::Guest;

    wasmflow_guest::component_bindings!(clock, "sink-node", "../../../wit/wasmflow");

    struct Component;
    export!(Component);

    impl Guest for Component {
        fn ts_property(ts: HybridLogicalClock) -> String {
            crate::ts_value(ts.timestamp.secs, ts.timestamp.nanos, ts.counter, &ts.node_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmflow_guest::hlc::parse_ts;

    #[test]
    fn ts_is_zero_padded_milliseconds() {
        assert_eq!(
            ts_value(1_700_000_003, 456_789_000, 7, "edge-1"),
            "001700000003456:00007:edge-1"
        );
        assert_eq!(ts_value(0, 0, 0, ""), "000000000000000:00000:");
    }

    #[test]
    fn what_the_sink_writes_the_source_reads_back() {
        let written = ts_value(1_700_000_010, 0, 3, "n:1");
        let parts = parse_ts(&written).expect("parses");
        assert_eq!(parts.to_hlc().secs, 1_700_000_010);
        assert_eq!((parts.counter, parts.node_id), (3, "n:1"));
    }
}
