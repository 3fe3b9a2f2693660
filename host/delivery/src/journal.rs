//! The window journal: items held in open windows, persisted (in `windows.redb` in the data
//! directory) before the inputs they came from are acknowledged, and given back after a
//! restart. So an input held in a window is acknowledged at once instead of stalling the
//! broker's in-flight window (mosquitto delivers only 20 unacknowledged QoS 1 messages per
//! client).

use std::path::Path;

use redb::{Database, TableDefinition};
use serde::{Deserialize, Serialize};
use wasmflow_runtime::graph::Held;
use wasmflow_runtime::item::{Body, Item, Schema};
use wasmflow_wire::Hlc;

/// Window entries of every graph in one data directory, keyed by (graph name, lineage id).
const WINDOWS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("windows");

/// Why the window journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file or its directory cannot be created or opened, also when another process has
    /// it open (two runs sharing a data directory).
    #[error("opening the window journal {path}: {reason}")]
    Open {
        /// The journal file.
        path: String,
        /// The file system's or redb's reason.
        reason: String,
    },
    /// A read or a commit failed. After a failed commit the entries it held are not durable,
    /// so the run stops rather than acknowledge their inputs.
    #[error("window journal {path}: {reason}")]
    Io {
        /// The journal file.
        path: String,
        /// redb's reason.
        reason: String,
    },
    /// An entry does not decode (written by an incompatible wasmflow, or damaged). Loading
    /// fails, so the run does not start rather than drop held items.
    #[error("window journal {path}: entry {id} of graph `{graph}` is unreadable: {reason}")]
    Corrupt {
        /// The journal file.
        path: String,
        /// The graph name the entry is filed under.
        graph: String,
        /// The entry's lineage id.
        id: u64,
        /// The decoder's reason.
        reason: String,
    },
}

/// Durable copy of the items the graph holds in open windows, or (made with
/// [`WindowJournal::in_memory`]) none: then nothing is written, and the pump keeps the inputs of
/// windowed items unacknowledged until the window's output is delivered.
pub struct WindowJournal {
    /// `None`: windows are kept in memory only.
    db: Option<Database>,
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
            db: Some(db),
            path: shown,
            graph: graph.to_owned(),
        })
    }

    /// No journal: windows live in memory only, for a graph that asked for no disk persistence
    /// (`requestDiskPersistence: Disabled`). Their inputs are acknowledged when the window's
    /// outputs are, so a crash loses nothing either; the broker holds them meanwhile.
    pub fn in_memory(graph: &str) -> Self {
        Self {
            db: None,
            path: "(in memory)".into(),
            graph: graph.to_owned(),
        }
    }

    /// Whether entries survive the process: if not, an item held in a window does not let its
    /// input be acknowledged (the ack tracker's `for_journal`).
    pub fn is_durable(&self) -> bool {
        self.db.is_some()
    }

    fn io(&self, e: impl std::fmt::Display) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// The entries a previous run left in open windows, oldest id first.
    pub fn load(&self) -> Result<Vec<Held>, JournalError> {
        let Some(db) = &self.db else {
            return Ok(Vec::new());
        };
        let tx = db.begin_read().map_err(|e| self.io(e))?;
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
        let Some(db) = self.db.as_ref().filter(|_| !(add.is_empty() && remove.is_empty())) else {
            return Ok(());
        };
        let tx = db.begin_write().map_err(|e| self.io(e))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::held;

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
