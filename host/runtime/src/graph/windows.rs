//! Windows and the progress frontier, apart from the operators that fold them.
//!
//! Window operations (`accumulate`, `concatenate`) keep their pending items here, in the host
//! and outside the instance, so a trap, which poisons the whole store, loses none. Items wait
//! by event time; the frontier is the event time nothing older can arrive before (sources
//! deliver in event-time order, and an idle source advances it to the wall clock). A window's
//! items are ready once the frontier has passed their time, or all at the end of input.

use std::collections::{BTreeMap, HashMap};

use wasmflow_wire::OrderKey;

use crate::item::Item;

/// One waiting item: the input of the operation it arrived on, the item, its lineage id.
pub type Entry = (u32, Item, u64);

/// Items waiting in one window operation, by event time.
type Window = BTreeMap<OrderKey, Vec<Entry>>;

/// Every window of one graph, by operation index, and the frontier.
#[derive(Debug, Default)]
pub struct Windows {
    open: HashMap<usize, Window>,
    frontier: Option<OrderKey>,
}

impl Windows {
    /// Holds `entry` in the window of operation `op`.
    pub fn hold(&mut self, op: usize, entry: Entry) {
        let key = entry.1.ts.order_key();
        self.open.entry(op).or_default().entry(key).or_default().push(entry);
    }

    /// Whether an item at `ts` comes after the frontier passed it (its window closes at once).
    pub fn is_late(&self, ts: OrderKey) -> bool {
        self.frontier.is_some_and(|f| ts < f)
    }

    /// Nothing older than `t` can come any more.
    pub fn advance(&mut self, t: OrderKey) {
        if self.frontier.is_none_or(|f| t > f) {
            self.frontier = Some(t);
        }
    }

    /// The event time nothing older can arrive before, once anything arrived.
    pub fn frontier(&self) -> Option<OrderKey> {
        self.frontier
    }

    /// Whether no window holds anything.
    pub fn is_empty(&self) -> bool {
        self.open.values().all(BTreeMap::is_empty)
    }

    /// Takes what is ready in the window of `op`, one batch per event time, oldest first:
    /// everything before the frontier, or everything when `all` (end of input).
    pub fn take_ready(&mut self, op: usize, all: bool) -> Vec<Vec<Entry>> {
        let Some(w) = self.open.get_mut(&op) else {
            return Vec::new();
        };
        match (all, self.frontier) {
            (true, _) => std::mem::take(w).into_values().collect(),
            (false, None) => Vec::new(),
            (false, Some(f)) => {
                let rest = w.split_off(&f);
                std::mem::replace(w, rest).into_values().collect()
            }
        }
    }

    /// Number of items waiting in open windows.
    pub fn pending(&self) -> usize {
        self.open.values().flat_map(|w| w.values()).map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Body;
    use wasmflow_wire::Hlc;

    fn at(secs: u64) -> Item {
        Item {
            ts: Hlc { secs, ..Hlc::default() },
            body: Body::Raw(std::sync::Arc::from(&b"x"[..])),
        }
    }

    #[test]
    fn items_are_ready_once_the_frontier_passes_their_time() {
        let mut w = Windows::default();
        w.hold(3, (0, at(10), 1));
        w.hold(3, (1, at(10), 2));
        w.hold(3, (0, at(20), 3));
        assert!(w.take_ready(3, false).is_empty(), "no frontier yet");
        w.advance((15, 0, 0));
        let ready = w.take_ready(3, false);
        assert_eq!(ready.len(), 1, "one batch: time 10");
        assert_eq!(ready[0].iter().map(|e| e.2).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(w.pending(), 1);
        assert!(w.is_late((12, 0, 0)) && !w.is_late((16, 0, 0)));
        w.advance((12, 0, 0));
        assert!(w.take_ready(3, false).is_empty(), "the frontier never moves back");
        assert_eq!(w.take_ready(3, true).len(), 1, "end of input takes the rest");
        assert!(w.is_empty());
    }
}
