//! The `state-store` interface: an embedded, persistent key-value store (one redb file under the
//! data directory) with the semantics of the platform's state store: conditional sets as the lock
//! primitive, versions that serve as fencing tokens, expiry, and value-checked deletes.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableTable, TableDefinition};
use thiserror::Error;

use wasmflow_wire::Hlc;

pub mod host;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
/// The node id stamped on versions this store hands out.
pub const NODE_ID: &str = "wasmflow-state";

/// Failures of the store itself (not refusals, which are answers).
#[derive(Debug, Error)]
pub enum StateStoreError {
    /// The store file cannot be opened or created, also when another process has it open
    /// (two runs sharing a data directory).
    #[error("state store {path}: {source}")]
    Open {
        /// The store file.
        path: String,
        /// redb's reason.
        source: redb::DatabaseError,
    },
    /// A read or write of the store failed, or a stored record is unreadable.
    #[error("state store: {0}")]
    Storage(String),
    /// The key was written under a fencing token and the request came with an older one, or
    /// none; nothing was changed. Modules see it as a request error, not a refusal.
    #[error("fencing token {given} is older than the key's {current}")]
    StaleFencingToken {
        /// The request's token, or `(none)`.
        given: String,
        /// The newest token the key was written with.
        current: String,
    },
    /// A seed file ([`StateStore::seed_from_json`]: `run --state-seed`, a golden test's
    /// `state`) is unreadable or not a JSON object.
    #[error("state seed {path}: {reason}")]
    Seed {
        /// The seed file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn storage<E: std::fmt::Display>(e: E) -> StateStoreError {
    StateStoreError::Storage(e.to_string())
}

/// When a `set` may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetCondition {
    /// Only when the key is absent or expired: the first writer wins.
    OnlyIfDoesNotExist,
    /// The lock primitive: the holder (same value) renews, anyone else is refused.
    OnlyIfEqualOrDoesNotExist,
    /// Always, fencing token permitting.
    Unconditional,
}

/// A stored value with its version and, when it was written under a lock, the fencing token.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    version: (u64, u32, u64),
    expires_ms: Option<u64>,
    fence: Option<(u64, u32, u64)>,
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

/// Answer to `get`.
#[derive(Debug, Clone, PartialEq)]
pub struct GetResponse {
    /// `None` when the key is absent or expired.
    pub value: Option<Vec<u8>>,
    /// The version of `value`, its last write; `None` exactly when `value` is.
    pub version: Option<Hlc>,
}

/// Answer to `set`: whether it happened, and the new version (the fencing token of a lock).
#[derive(Debug, Clone, PartialEq)]
pub struct SetResponse {
    /// `false` when the condition refused the write (an answer, not an error).
    pub done: bool,
    /// The value's new version; `None` when not `done`.
    pub version: Option<Hlc>,
}

/// Answer to `del`/`vdel`: 1 deleted, 0 absent, -1 (`vdel`) value did not match.
#[derive(Debug, Clone, PartialEq)]
pub struct DelResponse {
    /// 1, 0 or -1 as above: the WIT answer is an `s64`.
    pub deleted: i64,
}

/// The embedded store, shared by every operation of every graph in the process.
#[derive(Clone)]
pub struct StateStore {
    db: Arc<Database>,
    clock: Arc<Mutex<(u64, u64)>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn to_hlc(v: (u64, u32, u64)) -> Hlc {
    Hlc {
        secs: v.0,
        nanos: v.1,
        counter: v.2,
        node_id: NODE_ID.into(),
    }
}

impl StateStore {
    /// Opens (or creates) the store file; its contents survive restarts.
    pub fn open(path: &Path) -> Result<Self, StateStoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(storage)?;
        }
        let db = Database::create(path).map_err(|source| StateStoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self::from_db(db))
    }

    /// A store that lives only in memory (tests, `wasmflow test`).
    pub fn in_memory() -> Result<Self, StateStoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(storage)?;
        Ok(Self::from_db(db))
    }

    fn from_db(db: Database) -> Self {
        Self {
            db: Arc::new(db),
            clock: Arc::new(Mutex::new((0, 0))),
        }
    }

    /// Seeds string keys and values from a JSON object file (`{"key": "value", …}`).
    pub fn seed_from_json(&self, path: &Path) -> Result<usize, StateStoreError> {
        let seed_err = |reason: String| StateStoreError::Seed {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| seed_err(e.to_string()))?;
        let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
            .map_err(|e| seed_err(format!("expected a JSON object of keys to values: {e}")))?;
        for (k, v) in &obj {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            self.set(k.as_bytes(), value.as_bytes(), None, SetCondition::Unconditional, None)?;
        }
        Ok(obj.len())
    }

    /// The next version: wall-clock milliseconds, with a counter that keeps versions strictly
    /// increasing when the clock stands still or steps back.
    fn next_version(&self) -> (u64, u32, u64) {
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
        if let Some(cur) = current.fence {
            let ok = given.is_some_and(|g| (g.secs, g.nanos, g.counter) >= cur);
            if !ok {
                return Err(StateStoreError::StaleFencingToken {
                    given: given.map_or_else(|| "(none)".into(), |g| g.to_string()),
                    current: to_hlc(cur).to_string(),
                });
            }
        }
        Ok(())
    }

    /// The value of `key` and its version; an expired key reads as absent.
    pub fn get(&self, key: &[u8]) -> Result<GetResponse, StateStoreError> {
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
            None => GetResponse {
                value: None,
                version: None,
            },
        })
    }

    /// A key once written with a fencing token only changes with a token at least as new.
    pub fn set(
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
                SetResponse {
                    done: false,
                    version: None,
                }
            }
        };
        tx.commit().map_err(storage)?;
        Ok(resp)
    }

    /// Deletes `key` whatever it holds; a key written under a fencing token needs one at least
    /// as new.
    pub fn del(&self, key: &[u8], fence: Option<&Hlc>) -> Result<DelResponse, StateStoreError> {
        self.delete(key, None, fence)
    }

    /// Deletes `key` only while it holds `value`: how a lock's holder releases it without
    /// releasing someone else's. Fencing as for [`StateStore::del`].
    pub fn vdel(&self, key: &[u8], value: &[u8], fence: Option<&Hlc>) -> Result<DelResponse, StateStoreError> {
        self.delete(key, Some(value), fence)
    }

    fn delete(&self, key: &[u8], expect: Option<&[u8]>, fence: Option<&Hlc>) -> Result<DelResponse, StateStoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_del_roundtrip() {
        let s = StateStore::in_memory().unwrap();
        assert_eq!(
            s.get(b"k").unwrap(),
            GetResponse {
                value: None,
                version: None
            }
        );
        let r = s.set(b"k", b"v", None, SetCondition::Unconditional, None).unwrap();
        assert!(r.done && r.version.is_some());
        let g = s.get(b"k").unwrap();
        assert_eq!(g.value.as_deref(), Some(&b"v"[..]));
        assert_eq!(g.version, r.version);
        assert_eq!(s.del(b"k", None).unwrap().deleted, 1);
        assert_eq!(s.del(b"k", None).unwrap().deleted, 0);
    }

    #[test]
    fn lock_primitive_renews_for_holder_and_refuses_others() {
        let s = StateStore::in_memory().unwrap();
        let a = s
            .set(b"lock", b"A", None, SetCondition::OnlyIfEqualOrDoesNotExist, None)
            .unwrap();
        assert!(a.done);
        let b = s
            .set(b"lock", b"B", None, SetCondition::OnlyIfEqualOrDoesNotExist, None)
            .unwrap();
        assert_eq!(
            b,
            SetResponse {
                done: false,
                version: None
            }
        );
        let renew = s
            .set(b"lock", b"A", None, SetCondition::OnlyIfEqualOrDoesNotExist, None)
            .unwrap();
        assert!(renew.done);
        assert!(
            renew.version > a.version,
            "versions increase: {:?} vs {:?}",
            renew.version,
            a.version
        );
        assert!(
            !s.set(b"lock", b"A", None, SetCondition::OnlyIfDoesNotExist, None)
                .unwrap()
                .done
        );
    }

    #[test]
    fn older_fencing_token_is_refused() {
        let s = StateStore::in_memory().unwrap();
        let old = s
            .set(b"lock", b"A", None, SetCondition::OnlyIfEqualOrDoesNotExist, None)
            .unwrap()
            .version
            .unwrap();
        let new = s
            .set(b"lock", b"A", None, SetCondition::OnlyIfEqualOrDoesNotExist, None)
            .unwrap()
            .version
            .unwrap();
        s.set(b"counter", b"1", Some(&new), SetCondition::Unconditional, None)
            .unwrap();
        let err = s
            .set(b"counter", b"2", Some(&old), SetCondition::Unconditional, None)
            .unwrap_err();
        assert!(matches!(err, StateStoreError::StaleFencingToken { .. }), "{err}");
        assert!(s.del(b"counter", None).is_err(), "no token at all is refused too");
        assert_eq!(s.get(b"counter").unwrap().value.as_deref(), Some(&b"1"[..]));
        assert_eq!(s.del(b"counter", Some(&new)).unwrap().deleted, 1);
    }

    #[test]
    fn vdel_only_deletes_a_matching_value() {
        let s = StateStore::in_memory().unwrap();
        s.set(b"k", b"mine", None, SetCondition::Unconditional, None).unwrap();
        assert_eq!(s.vdel(b"k", b"theirs", None).unwrap().deleted, -1);
        assert_eq!(s.vdel(b"k", b"mine", None).unwrap().deleted, 1);
        assert_eq!(s.vdel(b"k", b"mine", None).unwrap().deleted, 0);
    }

    #[test]
    fn expired_keys_vanish() {
        let s = StateStore::in_memory().unwrap();
        s.set(
            b"k",
            b"v",
            None,
            SetCondition::Unconditional,
            Some(Duration::from_millis(30)),
        )
        .unwrap();
        assert!(s.get(b"k").unwrap().value.is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(s.get(b"k").unwrap().value, None);
        assert!(
            s.set(b"k", b"w", None, SetCondition::OnlyIfDoesNotExist, None)
                .unwrap()
                .done
        );
    }

    #[test]
    fn survives_reopen_and_seeds_from_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let seed = dir.path().join("seed.json");
        std::fs::write(&seed, r#"{"overtemp":"true","n":3}"#).unwrap();
        {
            let s = StateStore::open(&path).unwrap();
            assert_eq!(s.seed_from_json(&seed).unwrap(), 2);
        }
        let s = StateStore::open(&path).unwrap();
        assert_eq!(s.get(b"overtemp").unwrap().value.as_deref(), Some(&b"true"[..]));
        assert_eq!(s.get(b"n").unwrap().value.as_deref(), Some(&b"3"[..]));
        std::fs::write(&seed, "[1]").unwrap();
        let err = s.seed_from_json(&seed).unwrap_err().to_string();
        assert!(err.contains("seed.json") && err.contains("JSON object"), "{err}");
    }
}
