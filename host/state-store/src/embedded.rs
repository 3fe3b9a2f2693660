//! The embedded store: one redb file under the data directory (or memory), for one process.
//! Conditions, fencing and expiry are checked inside one redb write transaction, so they hold
//! for every graph of the process; they do not reach other processes (that is the Redis
//! backend's job).

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableTable, TableDefinition};

use wasmflow_wire::Hlc;

use crate::{storage, to_hlc, DelResponse, GetResponse, SetCondition, SetResponse, StateStoreError, Version};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");

/// A stored value with its version and, when it was written under a lock, the fencing token.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    version: Version,
    expires_ms: Option<u64>,
    fence: Option<Version>,
    value: Vec<u8>,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(49 + self.value.len());
        b.extend_from_slice(&self.version.0.to_le_bytes());
        b.extend_from_slice(&self.version.1.to_le_bytes());
        b.extend_from_slice(&self.version.2.to_le_bytes());
        b.extend_from_slice(&self.expires_ms.unwrap_or(0).to_le_bytes());
        let f = self.fence.unwrap_or_default();
        b.push(u8::from(self.fence.is_some()));
        b.extend_from_slice(&f.0.to_le_bytes());
        b.extend_from_slice(&f.1.to_le_bytes());
        b.extend_from_slice(&f.2.to_le_bytes());
        b.extend_from_slice(&self.value);
        b
    }

    fn decode(b: &[u8]) -> Result<Self, StateStoreError> {
        if b.len() < 49 {
            return Err(StateStoreError::Storage("corrupt record".into()));
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default());
        Ok(Self {
            version: (u64_at(0), u32_at(8), u64_at(12)),
            expires_ms: Some(u64_at(20)).filter(|&e| e != 0),
            fence: (b[28] == 1).then(|| (u64_at(29), u32_at(37), u64_at(41))),
            value: b[49..].to_vec(),
        })
    }

    fn expired(&self, now_ms: u64) -> bool {
        self.expires_ms.is_some_and(|e| e <= now_ms)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The redb store.
pub(crate) struct Embedded {
    db: Database,
    clock: Mutex<(u64, u64)>,
}

impl Embedded {
    pub(crate) fn open(path: &Path) -> Result<Self, StateStoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| storage(format!("creating {}: {e}", dir.display())))?;
        }
        let db = Database::create(path).map_err(|error| StateStoreError::Open {
            path: path.display().to_string(),
            error,
        })?;
        Ok(Self::from_db(db))
    }

    pub(crate) fn in_memory() -> Result<Self, StateStoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(storage)?;
        Ok(Self::from_db(db))
    }

    fn from_db(db: Database) -> Self {
        Self {
            db,
            clock: Mutex::new((0, 0)),
        }
    }

    /// The next version: wall-clock milliseconds, with a counter that keeps versions strictly
    /// increasing when the clock stands still or steps back.
    fn next_version(&self) -> Version {
        let mut c = self.clock.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        *c = if now > c.0 { (now, 0) } else { (c.0, c.1 + 1) };
        (c.0 / 1000, ((c.0 % 1000) * 1_000_000) as u32, c.1)
    }

    fn live(
        table: &impl ReadableTable<&'static [u8], &'static [u8]>,
        key: &[u8],
    ) -> Result<Option<Record>, StateStoreError> {
        let Some(v) = table.get(key).map_err(storage)? else {
            return Ok(None);
        };
        let r = Record::decode(v.value())?;
        Ok((!r.expired(now_ms())).then_some(r))
    }

    fn check_fence(current: &Record, given: Option<&Hlc>) -> Result<(), StateStoreError> {
        match current.fence {
            Some(cur) => crate::check_fence(cur, given),
            None => Ok(()),
        }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<GetResponse, StateStoreError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let rec = match tx.open_table(TABLE) {
            Ok(t) => Self::live(&t, key)?,
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(storage(e)),
        };
        Ok(match rec {
            Some(r) => GetResponse {
                value: Some(r.value),
                version: Some(to_hlc(r.version)),
            },
            None => GetResponse::ABSENT,
        })
    }

    pub(crate) fn set(
        &self,
        key: &[u8],
        value: &[u8],
        fence: Option<&Hlc>,
        cond: SetCondition,
        expires: Option<Duration>,
    ) -> Result<SetResponse, StateStoreError> {
        let tx = self.db.begin_write().map_err(storage)?;
        let resp = {
            let mut t = tx.open_table(TABLE).map_err(storage)?;
            let cur = Self::live(&t, key)?;
            if let Some(c) = &cur {
                Self::check_fence(c, fence)?;
            }
            let allowed = match (cond, &cur) {
                (SetCondition::Unconditional, _) | (_, None) => true,
                (SetCondition::OnlyIfDoesNotExist, Some(_)) => false,
                (SetCondition::OnlyIfEqualOrDoesNotExist, Some(c)) => c.value == value,
            };
            if allowed {
                let version = self.next_version();
                let rec = Record {
                    version,
                    expires_ms: expires.map(|d| now_ms() + d.as_millis() as u64),
                    fence: fence
                        .map(|f| (f.secs, f.nanos, f.counter))
                        .or(cur.and_then(|c| c.fence)),
                    value: value.to_vec(),
                };
                t.insert(key, rec.encode().as_slice()).map_err(storage)?;
                SetResponse {
                    done: true,
                    version: Some(to_hlc(version)),
                }
            } else {
                SetResponse::REFUSED
            }
        };
        tx.commit().map_err(storage)?;
        Ok(resp)
    }

    pub(crate) fn delete(
        &self,
        key: &[u8],
        expect: Option<&[u8]>,
        fence: Option<&Hlc>,
    ) -> Result<DelResponse, StateStoreError> {
        let tx = self.db.begin_write().map_err(storage)?;
        let deleted = {
            let mut t = tx.open_table(TABLE).map_err(storage)?;
            match Self::live(&t, key)? {
                None => 0,
                Some(c) => {
                    Self::check_fence(&c, fence)?;
                    if expect.is_some_and(|v| v != c.value.as_slice()) {
                        -1
                    } else {
                        t.remove(key).map_err(storage)?;
                        1
                    }
                }
            }
        };
        tx.commit().map_err(storage)?;
        Ok(DelResponse { deleted })
    }
}
