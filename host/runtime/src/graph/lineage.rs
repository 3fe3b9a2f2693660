//! Lineage: which inputs and window entries each output derives from, so at-least-once
//! delivery can acknowledge an input once everything derived from it is done.
//!
//! Every call into the graph routes one thing at a time (an input, or the entries of a closing
//! window); its lineage ids are `current`. An output records them; an item entering a window
//! becomes a [`Held`] entry with a fresh id naming them as parents; a closing window releases
//! its entries' ids. Plain calls (`push`, `advance_to`, `flush`) keep none of this: it costs
//! allocations per output.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use wasmflow_transport::Output;

use crate::item::Item;

/// An item a window operation holds until its window closes. At-least-once delivery persists
/// these (so the input they came from can be acknowledged before the window closes) and gives
/// them back with [`super::Graph::restore_held`] after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// Lineage id of this window entry; outputs of the window name it.
    pub id: u64,
    /// The window operation's name.
    pub operation: String,
    /// Which input of the operation it arrived on (a concatenate tells its inputs apart by it).
    pub input: u32,
    /// The item itself.
    pub item: Item,
    /// Lineage ids of what it derives from (an input, or entries of an upstream window).
    pub parents: Vec<u64>,
}

/// What one call into the graph did, by lineage, so a transport can acknowledge each input
/// once everything derived from it is done.
#[derive(Debug, Default)]
pub struct Traced {
    /// Each output with the lineage ids (inputs or window entries) it derives from.
    pub outputs: Vec<(Output, Vec<u64>)>,
    /// Items that entered a window during the call.
    pub held: Vec<Held>,
    /// Window entries whose window closed during the call: after this, nothing more derives
    /// from them than the outputs (and held items) listed here.
    pub released: Vec<u64>,
}

/// The lineage bookkeeping of one graph.
#[derive(Debug)]
pub struct Lineage {
    /// Ids of what is being routed now.
    current: Vec<u64>,
    /// Lineage of each output of the current call, in order.
    outputs: Vec<Vec<u64>>,
    /// Whether the current call keeps lineage.
    keep: bool,
    held: Vec<Held>,
    released: Vec<u64>,
    /// The next id. Shared by the versions of a graph that run side by side during a hot update
    /// ([`Lineage::share_ids`]), so their ids never meet in the pump's tracker or journal.
    next_id: Arc<AtomicU64>,
}

impl Default for Lineage {
    fn default() -> Self {
        Self {
            current: Vec::new(),
            outputs: Vec::new(),
            keep: false,
            held: Vec::new(),
            released: Vec::new(),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl Lineage {
    /// A fresh id, above every id given out or restored so far.
    pub fn new_id(&mut self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes later ids larger than `id` (a restored window entry's).
    pub fn restored(&mut self, id: u64) {
        self.next_id.fetch_max(id + 1, Ordering::Relaxed);
    }

    /// From now on, ids come from `other`'s counter (after every id either gave out); call it
    /// before this lineage routes anything.
    pub fn share_ids(&mut self, other: &Lineage) {
        other
            .next_id
            .fetch_max(self.next_id.load(Ordering::Relaxed), Ordering::Relaxed);
        self.next_id = other.next_id.clone();
    }

    /// Starts a call that routes `current`; `keep` for a traced call.
    pub fn begin(&mut self, current: Vec<u64>, keep: bool) {
        self.keep = keep;
        self.current = current;
        self.outputs.clear();
        self.held.clear();
        self.released.clear();
    }

    /// Whether the current call keeps lineage.
    pub fn keeps(&self) -> bool {
        self.keep
    }

    /// An output was produced from what is being routed.
    pub fn output(&mut self) {
        if self.keep {
            self.outputs.push(self.current.clone());
        }
    }

    /// An item entered window `operation` as entry `id`, derived from what is being routed.
    pub fn hold(&mut self, id: u64, operation: &str, input: u32, item: &Item) {
        if self.keep {
            self.held.push(Held {
                id,
                operation: operation.to_owned(),
                input,
                item: item.clone(),
                parents: self.current.clone(),
            });
        }
    }

    /// A window closes with entries `ids`: they are released and become what is routed until
    /// [`Lineage::leave`] gives back the returned outer lineage.
    pub fn enter(&mut self, ids: Vec<u64>) -> Vec<u64> {
        self.released.extend_from_slice(&ids);
        std::mem::replace(&mut self.current, ids)
    }

    /// Back to what was routed before [`Lineage::enter`].
    pub fn leave(&mut self, outer: Vec<u64>) {
        self.current = outer;
    }

    /// Ends a traced call: its outputs with their lineage, what it held and released.
    pub fn finish(&mut self, outputs: Vec<Output>) -> Traced {
        debug_assert_eq!(outputs.len(), self.outputs.len());
        Traced {
            outputs: outputs.into_iter().zip(self.outputs.drain(..)).collect(),
            held: std::mem::take(&mut self.held),
            released: std::mem::take(&mut self.released),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Body;
    use wasmflow_wire::Hlc;

    fn output() -> Output {
        Output {
            destination: wasmflow_transport::Destination::Sink("s".into()),
            topic: None,
            payload: std::sync::Arc::from(&b""[..]),
            content_type: None,
            user_properties: vec![],
        }
    }

    fn item() -> Item {
        Item {
            ts: Hlc::default(),
            body: Body::Raw(std::sync::Arc::from(&b"x"[..])),
        }
    }

    #[test]
    fn outputs_name_what_was_routed_and_windows_their_entries() {
        let mut l = Lineage::default();
        let input = l.new_id();
        l.begin(vec![input], true);
        l.output();
        let entry = l.new_id();
        l.hold(entry, "w", 0, &item());
        let outer = l.enter(vec![entry]);
        l.output();
        l.leave(outer);
        l.output();
        let t = l.finish(vec![output(), output(), output()]);
        let lineage: Vec<Vec<u64>> = t.outputs.into_iter().map(|(_, l)| l).collect();
        assert_eq!(lineage, vec![vec![input], vec![entry], vec![input]]);
        assert_eq!(t.held.len(), 1);
        assert_eq!(t.held[0].parents, vec![input]);
        assert_eq!(t.released, vec![entry]);
    }

    #[test]
    fn a_plain_call_keeps_nothing_and_ids_pass_restored_ones() {
        let mut l = Lineage::default();
        l.begin(vec![], false);
        l.output();
        l.hold(7, "w", 0, &item());
        let t = l.finish(Vec::new());
        assert!(t.outputs.is_empty() && t.held.is_empty());
        l.restored(41);
        assert_eq!(l.new_id(), 42);
    }

    #[test]
    fn lineages_that_share_ids_never_give_out_the_same_one() {
        let (mut old, mut new) = (Lineage::default(), Lineage::default());
        old.restored(99);
        new.share_ids(&old);
        let ids = [old.new_id(), new.new_id(), old.new_id(), new.new_id()];
        assert_eq!(ids, [100, 101, 102, 103]);
    }
}
