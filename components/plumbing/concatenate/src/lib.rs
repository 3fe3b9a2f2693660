//! Plumbing that merges the items of several inputs in event-time order
//! (world `wasmflow:graph/concatenate-node`). The host hands over a batch once the progress
//! frontier has passed it; this puts it in `(secs, nanos, counter)` order, stably, so items
//! with equal timestamps keep the order the host gave (which keeps replays deterministic).

use wasmflow_guest::hlc::{stable_order, OrderKey};

/// Reorders `items` by `keys` (one key per item), stably.
pub fn sort_by_keys<T>(items: Vec<T>, keys: &[OrderKey]) -> Vec<T> {
    debug_assert_eq!(items.len(), keys.len());
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    stable_order(keys)
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

/// The key of an item without a timestamp (a bare payload): it sorts before every stamped item.
/// Sources always stamp, so this only orders items a custom operator stripped of their time.
pub const UNSTAMPED: OrderKey = (0, 0, 0);

#[cfg(target_arch = "wasm32")]
mod component {
    //! Component glue: the export of world `wasmflow:graph/concatenate-node`.
    use wasmflow_guest::glue::types::DataModel;
    use wasmflow_guest::glue::{timestamp_key, timestamp_of};

    use exports::wasmflow::graph::concatenate::Guest;

    wasmflow_guest::component_bindings!(plumbing, "concatenate-node", "../../../wit/wasmflow");

    struct Component;
    export!(Component);

    impl Guest for Component {
        fn merge(items: Vec<(u32, DataModel)>) -> Vec<DataModel> {
            let keys: Vec<_> = items
                .iter()
                .map(|(_, item)| timestamp_of(item).map_or(crate::UNSTAMPED, timestamp_key))
                .collect();
            crate::sort_by_keys(items.into_iter().map(|(_, item)| item).collect(), &keys)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_by_secs_nanos_counter_stably() {
        let items = vec!["late", "early-b", "early-a", "mid", "late-2", "unstamped"];
        let keys = [(10, 0, 0), (5, 0, 1), (5, 0, 0), (5, 1, 0), (10, 0, 0), UNSTAMPED];
        assert_eq!(
            sort_by_keys(items, &keys),
            vec!["unstamped", "early-a", "early-b", "mid", "late", "late-2"]
        );
    }

    #[test]
    fn counter_breaks_ties_before_arrival_order() {
        let items = vec![1, 2, 3];
        assert_eq!(sort_by_keys(items, &[(1, 0, 2), (1, 0, 1), (1, 0, 2)]), vec![2, 1, 3]);
        assert_eq!(sort_by_keys(Vec::<u8>::new(), &[]), Vec::<u8>::new());
    }
}
