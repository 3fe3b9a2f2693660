//! The `window` sample module: a delay that closes 10 s tumbling windows by moving every item's
//! timestamp to the end of its window, so a downstream accumulate gathers one window per
//! timestamp.

use sample_common::hlc::{next_window_boundary, Hlc};

/// Window length in milliseconds (the platform's sample uses 10 s).
pub const WINDOW_MILLIS: u64 = 10_000;

/// The delay: the next 10 s boundary strictly after the item's time (ms precision; an item
/// exactly on a boundary moves to the next one, so time always advances), counter 0, node id
/// kept.
pub fn delay(timestamp: &Hlc) -> Result<Hlc, String> {
    let (secs, nanos) = next_window_boundary(timestamp.secs, timestamp.nanos, WINDOW_MILLIS)
        .ok_or_else(|| format!("timestamp {}s is too large to round up to a window", timestamp.secs))?;
    Ok(Hlc {
        secs,
        nanos,
        counter: 0,
        node_id: timestamp.node_id.clone(),
    })
}

#[cfg(target_arch = "wasm32")]
mod component {
    //! Component glue on the SDK: the delay operator.
    use sample_common::glue::{error, hlc_from_sdk, hlc_to_sdk, log_init};
    use wasm_graph_sdk::macros::delay_operator;

    fn init(configuration: ModuleConfiguration) -> bool {
        log_init("window/delay", &configuration);
        true
    }

    #[delay_operator(init = "init")]
    fn to_window_end(_data: DataModel, timestamp: HybridLogicalClock) -> Result<HybridLogicalClock, Error> {
        crate::delay(&hlc_from_sdk(&timestamp))
            .map(|t| hlc_to_sdk(&t))
            .map_err(|e| error(format!("window/delay: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: u64, counter: u64) -> Hlc {
        Hlc {
            secs: millis / 1000,
            nanos: (millis % 1000) as u32 * 1_000_000,
            counter,
            node_id: "edge".into(),
        }
    }

    #[test]
    fn rounds_up_to_the_next_ten_seconds() {
        let out = delay(&at(1_700_000_003_456, 9)).expect("ok");
        // 1_700_000_003_456 ms → 1_700_000_010_000 ms, counter reset, node kept.
        assert_eq!(
            out,
            Hlc {
                secs: 1_700_000_010,
                nanos: 0,
                counter: 0,
                node_id: "edge".into()
            }
        );
    }

    #[test]
    fn exact_boundary_moves_to_the_next_one() {
        assert_eq!(delay(&at(1_700_000_010_000, 0)).expect("ok").secs, 1_700_000_020);
        assert_eq!(delay(&at(1_700_000_009_999, 0)).expect("ok").secs, 1_700_000_010);
    }

    #[test]
    fn too_large_is_an_error() {
        let t = Hlc {
            secs: u64::MAX,
            ..Hlc::default()
        };
        assert!(delay(&t).expect_err("overflow").contains("too large"));
    }
}
