//! At-least-once bookkeeping: when may an inbound message be acknowledged?
//!
//! The graph reports lineage ([`wasmflow_runtime::graph::Traced`]): every output names the
//! inputs or window entries it derives from, every item entering a window is a [`Held`] entry
//! naming its parents, and a closing window releases its entries. The [`Tracker`] counts, per
//! lineage id, what is still open: outputs not yet acknowledged by their destination and window
//! entries not yet persisted. An input is acknowledged when its push is over and its count is
//! zero; a window entry is deleted from the window journal (`journal.rs`) when its window
//! closed and its outputs are acknowledged.

use std::collections::HashMap;

use wasmflow_runtime::graph::Held;
use wasmflow_transport::Ack;

/// What finishing a lineage id does.
enum Done {
    /// An inbound message: acknowledge it to its origin.
    Ack(Ack),
    /// A window entry: delete it from the journal; with an in-memory journal, also finish its
    /// parents, which waited for it.
    Delete(Vec<u64>),
}

struct Open {
    /// Outputs not yet acknowledged, and held items not yet persisted, that derive from it.
    pending: usize,
    /// Nothing more can derive from it (its push returned, or its window closed).
    sealed: bool,
    done: Done,
}

/// Open lineage ids and what finishing each does. Lives on the thread that runs the graph.
#[derive(Default)]
pub struct Tracker {
    open: HashMap<u64, Open>,
    /// Window entries finished since the last journal commit.
    finished_entries: Vec<u64>,
    /// Window entries are not persisted: an input waits for the entries it became until they
    /// are finished, not until they are written.
    volatile: bool,
}

impl Tracker {
    /// Nothing open yet. The pump makes one per run and registers the journal's restored
    /// entries in it before the first input.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tracker for a run with `journal`: [`Tracker::new`] for a durable one; for an
    /// in-memory one, a tracker in which [`Tracker::persisted`] releases nothing and a window
    /// entry releases its parents only when its outputs are done.
    pub fn for_journal(journal: &crate::journal::WindowJournal) -> Self {
        Self {
            volatile: !journal.is_durable(),
            ..Self::default()
        }
    }

    /// An inbound message entered the graph under lineage id `id`.
    pub fn input(&mut self, id: u64, ack: Ack) {
        self.open.insert(
            id,
            Open {
                pending: 0,
                sealed: false,
                done: Done::Ack(ack),
            },
        );
    }

    /// A window entry exists (restored from the journal, or just held). Its parents each wait
    /// for it to be persisted ([`Tracker::persisted`]) unless it was restored.
    pub fn held(&mut self, h: &Held) {
        self.open.insert(
            h.id,
            Open {
                pending: 0,
                sealed: false,
                // Only an in-memory journal's entries release their parents when finished.
                done: Done::Delete(if self.volatile { h.parents.clone() } else { Vec::new() }),
            },
        );
        self.add(&h.parents);
    }

    /// Outputs (or held items) deriving from `lineage` are now open.
    pub fn add(&mut self, lineage: &[u64]) {
        for id in lineage {
            if let Some(o) = self.open.get_mut(id) {
                o.pending += 1;
            }
        }
    }

    /// One output (or held item) deriving from `lineage` is done: acknowledged by its
    /// destination, dropped, or persisted.
    pub fn done(&mut self, lineage: &[u64]) {
        for id in lineage {
            if let Some(o) = self.open.get_mut(id) {
                o.pending = o.pending.saturating_sub(1);
            }
            self.finish_if_done(*id);
        }
    }

    /// Held items were persisted: their parents no longer wait for them.
    pub fn persisted(&mut self, held: &[Held]) {
        if self.volatile {
            return;
        }
        for h in held {
            self.done(&h.parents);
        }
    }

    /// Nothing more will derive from `id`.
    pub fn seal(&mut self, id: u64) {
        if let Some(o) = self.open.get_mut(&id) {
            o.sealed = true;
        }
        self.finish_if_done(id);
    }

    fn finish_if_done(&mut self, id: u64) {
        if !self.open.get(&id).is_some_and(|o| o.sealed && o.pending == 0) {
            return;
        }
        if let Some(o) = self.open.remove(&id) {
            match o.done {
                Done::Ack(ack) => ack.ack(),
                Done::Delete(parents) => {
                    self.finished_entries.push(id);
                    if self.volatile {
                        self.done(&parents);
                    }
                }
            }
        }
    }

    /// Window entries to delete from the journal (taken: the caller deletes them).
    pub fn take_finished_entries(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.finished_entries)
    }

    /// Lineage ids still open (inputs not yet acknowledged, window entries not yet finished).
    pub fn open_count(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::testing::held;

    fn counting_ack(n: &Arc<AtomicUsize>) -> Ack {
        let n = n.clone();
        Ack::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[test]
    fn input_is_acked_only_after_every_output() {
        let acks = Arc::new(AtomicUsize::new(0));
        let mut t = Tracker::new();
        t.input(1, counting_ack(&acks));
        t.add(&[1]);
        t.add(&[1]);
        t.seal(1);
        assert_eq!(acks.load(Ordering::SeqCst), 0);
        t.done(&[1]);
        assert_eq!(acks.load(Ordering::SeqCst), 0, "one output is still unacknowledged");
        t.done(&[1]);
        assert_eq!(acks.load(Ordering::SeqCst), 1);
        assert_eq!(t.open_count(), 0);
    }

    #[test]
    fn dropped_input_is_acked_when_sealed() {
        let acks = Arc::new(AtomicUsize::new(0));
        let mut t = Tracker::new();
        t.input(1, counting_ack(&acks));
        t.seal(1);
        assert_eq!(acks.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn windowed_input_waits_for_persistence_and_entry_for_its_outputs() {
        let acks = Arc::new(AtomicUsize::new(0));
        let mut t = Tracker::new();
        t.input(1, counting_ack(&acks));
        let h = held(2, vec![1]);
        t.held(&h);
        t.seal(1);
        assert_eq!(acks.load(Ordering::SeqCst), 0, "not persisted yet");
        t.persisted(std::slice::from_ref(&h));
        assert_eq!(acks.load(Ordering::SeqCst), 1);
        // The window closes with one output.
        t.add(&[2]);
        t.seal(2);
        assert!(t.take_finished_entries().is_empty());
        t.done(&[2]);
        assert_eq!(t.take_finished_entries(), vec![2]);
    }

    #[test]
    fn without_a_durable_journal_a_windowed_input_waits_for_the_windows_output() {
        let acks = Arc::new(AtomicUsize::new(0));
        let mut t = Tracker::for_journal(&crate::journal::WindowJournal::in_memory("g"));
        t.input(1, counting_ack(&acks));
        let h = held(2, vec![1]);
        t.held(&h);
        t.seal(1);
        t.persisted(std::slice::from_ref(&h));
        assert_eq!(
            acks.load(Ordering::SeqCst),
            0,
            "nothing was written: the input must wait"
        );
        t.add(&[2]);
        t.seal(2);
        assert_eq!(
            acks.load(Ordering::SeqCst),
            0,
            "the window's output is not delivered yet"
        );
        t.done(&[2]);
        assert_eq!(acks.load(Ordering::SeqCst), 1);
        assert_eq!(t.open_count(), 0);
    }
}
