//! At-least-once bookkeeping: when may an inbound message be acknowledged?
//!
//! The graph reports lineage ([`crate::graph::Traced`]): every output names the inputs or
//! window entries it derives from, every item entering a window is a [`Held`] entry naming its
//! parents, and a closing window releases its entries. The [`Tracker`] counts, per lineage id,
//! what is still open: outputs not yet acknowledged by their destination and window entries not
//! yet persisted. An input is acknowledged when its push is over and its count is zero; a window
//! entry is deleted from the [`WindowJournal`] when its window closed and its outputs are
//! acknowledged. Window entries are persisted (in `windows.redb` in the data directory), so an
//! input held in a window is acknowledged at once instead of stalling the broker's in-flight
//! window (mosquitto delivers only 20 unacknowledged QoS 1 messages per client), and a restart
//! gives the open windows back.

use std::collections::HashMap;
use std::path::Path;

use redb::{Database, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::graph::Held;
use crate::hlc::Hlc;
use crate::item::{Body, Item, Schema};
use crate::transport::Ack;

/// Window entries of every graph in one data directory, keyed by (graph name, lineage id).
const WINDOWS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("windows");

/// Why the window journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("opening the window journal {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("window journal {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("window journal {path}: entry {id} of graph `{graph}` is unreadable: {reason}")]
    Corrupt {
        path: String,
        graph: String,
        id: u64,
        reason: String,
    },
}

/// Durable copy of the items the graph holds in open windows.
pub struct WindowJournal {
    db: Database,
    path: String,
    graph: String,
}

impl WindowJournal {
    /// Opens (or creates) `path` for the graph named `graph`.
    pub fn open(path: &Path, graph: &str) -> Result<Self, JournalError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| JournalError::Open {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
        }
        let db = Database::create(path).map_err(|e| JournalError::Open {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            db,
            path: shown,
            graph: graph.to_owned(),
        })
    }

    fn io(&self, e: impl std::fmt::Display) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// The entries a previous run left in open windows, oldest id first.
    pub fn load(&self) -> Result<Vec<Held>, JournalError> {
        let tx = self.db.begin_read().map_err(|e| self.io(e))?;
        let table = match tx.open_table(WINDOWS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.io(e)),
        };
        let range = table
            .range((self.graph.as_str(), 0)..=(self.graph.as_str(), u64::MAX))
            .map_err(|e| self.io(e))?;
        let mut out = Vec::new();
        for entry in range {
            let (k, v) = entry.map_err(|e| self.io(e))?;
            let id = k.value().1;
            let record: Record = serde_json::from_slice(v.value()).map_err(|e| JournalError::Corrupt {
                path: self.path.clone(),
                graph: self.graph.clone(),
                id,
                reason: e.to_string(),
            })?;
            out.push(record.into_held(id));
        }
        Ok(out)
    }

    /// Adds and removes entries in one durable transaction.
    pub fn commit(&self, add: &[Held], remove: &[u64]) -> Result<(), JournalError> {
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write().map_err(|e| self.io(e))?;
        {
            let mut table = tx.open_table(WINDOWS).map_err(|e| self.io(e))?;
            for h in add {
                let bytes = serde_json::to_vec(&Record::from_held(h)).map_err(|e| self.io(e))?;
                table
                    .insert((self.graph.as_str(), h.id), bytes.as_slice())
                    .map_err(|e| self.io(e))?;
            }
            for id in remove {
                table.remove((self.graph.as_str(), *id)).map_err(|e| self.io(e))?;
            }
        }
        tx.commit().map_err(|e| self.io(e))
    }
}

/// A window entry as stored: plain data, independent of the graph instance.
#[derive(Serialize, Deserialize)]
struct Record {
    operation: String,
    input: u32,
    ts: (u64, u32, u64, String),
    body: BodyRecord,
}

#[derive(Serialize, Deserialize)]
enum BodyRecord {
    Raw(Vec<u8>),
    Message {
        topic: Vec<u8>,
        content_type: Option<String>,
        payload: Vec<u8>,
        properties: Vec<(String, String)>,
        schema: Option<SchemaRecord>,
    },
    Snapshot {
        format: String,
        width: u32,
        height: u32,
        frame: Vec<u8>,
    },
}

#[derive(Serialize, Deserialize)]
enum SchemaRecord {
    Registry(String),
    Inline { name: String, content: String },
}

impl Record {
    fn from_held(h: &Held) -> Self {
        let ts = &h.item.ts;
        let body = match &h.item.body {
            Body::Raw(b) => BodyRecord::Raw(b.to_vec()),
            Body::Message {
                topic,
                content_type,
                payload,
                properties,
                schema,
            } => BodyRecord::Message {
                topic: topic.to_vec(),
                content_type: content_type.clone(),
                payload: payload.to_vec(),
                properties: properties.clone(),
                schema: schema.as_ref().map(|s| match s {
                    Schema::Registry(r) => SchemaRecord::Registry(r.clone()),
                    Schema::Inline { name, content } => SchemaRecord::Inline {
                        name: name.clone(),
                        content: content.clone(),
                    },
                }),
            },
            Body::Snapshot {
                format,
                width,
                height,
                frame,
            } => BodyRecord::Snapshot {
                format: format.clone(),
                width: *width,
                height: *height,
                frame: frame.to_vec(),
            },
        };
        Self {
            operation: h.operation.clone(),
            input: h.input,
            ts: (ts.secs, ts.nanos, ts.counter, ts.node_id.clone()),
            body,
        }
    }

    fn into_held(self, id: u64) -> Held {
        let body = match self.body {
            BodyRecord::Raw(b) => Body::Raw(b.into()),
            BodyRecord::Message {
                topic,
                content_type,
                payload,
                properties,
                schema,
            } => Body::Message {
                topic: topic.into(),
                content_type,
                payload: payload.into(),
                properties,
                schema: schema.map(|s| match s {
                    SchemaRecord::Registry(r) => Schema::Registry(r),
                    SchemaRecord::Inline { name, content } => Schema::Inline { name, content },
                }),
            },
            BodyRecord::Snapshot {
                format,
                width,
                height,
                frame,
            } => Body::Snapshot {
                format,
                width,
                height,
                frame: frame.into(),
            },
        };
        let (secs, nanos, counter, node_id) = self.ts;
        Held {
            id,
            operation: self.operation,
            input: self.input,
            item: Item {
                ts: Hlc {
                    secs,
                    nanos,
                    counter,
                    node_id,
                },
                body,
            },
            parents: Vec::new(),
        }
    }
}

/// What finishing a lineage id does.
enum Done {
    /// An inbound message: acknowledge it to its origin.
    Ack(Ack),
    /// A window entry: delete it from the journal.
    Delete,
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
}

impl Tracker {
    pub fn new() -> Self {
        Self::default()
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
                done: Done::Delete,
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
                Done::Delete => self.finished_entries.push(id),
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

    fn counting_ack(n: &Arc<AtomicUsize>) -> Ack {
        let n = n.clone();
        Ack::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
        })
    }

    fn held(id: u64, parents: Vec<u64>) -> Held {
        Held {
            id,
            operation: "window".into(),
            input: 0,
            item: Item {
                ts: Hlc {
                    secs: 1,
                    nanos: 2,
                    counter: 3,
                    node_id: "n".into(),
                },
                body: Body::Message {
                    topic: b"t".to_vec().into(),
                    content_type: Some("application/json".into()),
                    payload: b"{}".to_vec().into(),
                    properties: vec![("a".into(), "b".into())],
                    schema: None,
                },
            },
            parents,
        }
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
    fn journal_round_trips_entries() {
        let dir = tempfile::tempdir().unwrap();
        let j = WindowJournal::open(&dir.path().join("windows.redb"), "g").unwrap();
        let (a, b) = (held(5, vec![]), held(9, vec![]));
        j.commit(&[a.clone(), b.clone()], &[]).unwrap();
        j.commit(&[], &[5]).unwrap();
        drop(j);
        let j = WindowJournal::open(&dir.path().join("windows.redb"), "g").unwrap();
        assert_eq!(j.load().unwrap(), vec![b]);
        let other = WindowJournal::open(&dir.path().join("other.redb"), "h").unwrap();
        assert!(other.load().unwrap().is_empty());
    }
}
