//! The state store operators reach through the `state-store` interface, with the semantics of
//! the platform's (`../shared/OPERATOR-ABI.md`): conditional sets as the lock primitive, versions
//! that serve as fencing tokens, expiry, and value-checked deletes.
//!
//! Two backends behind one [`StateStore`] handle, with the same answers:
//! * embedded (the default): one redb file per process ([`StateStore::open`]), or memory;
//! * Redis-protocol servers (Redis, Valkey; feature `redis`): [`StateStore::connect_redis`],
//!   shared by every process that names the same server, so N processes of a graph see one
//!   `overtemp` flag and one lock. Conditions and fencing are checked in Lua scripts on the
//!   server, atomically; versions come from one clock on the server, so fencing tokens handed
//!   to different processes still increase strictly.
//!
//! This is its own crate, not part of `wasmflow-runtime`, so the Redis client and its TLS stay
//! out of a runtime built without them, and so the one suite of semantics tests
//! (`tests/suite.rs`) runs against both backends. The WIT side (`state-store` host functions)
//! stays in `wasmflow-runtime` (`services/state_store/host.rs`), beside the bindings it
//! implements.

#![warn(missing_docs)]

mod embedded;
#[cfg(feature = "redis")]
mod redis_backend;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use wasmflow_wire::Hlc;

#[cfg(feature = "redis")]
pub use redis_backend::{RedisConfig, CLOCK_KEY, DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT};

/// The node id stamped on versions this store hands out.
pub const NODE_ID: &str = "wasmflow-state";

/// A version as stored: seconds, nanoseconds, counter (an [`Hlc`] without its node id).
pub(crate) type Version = (u64, u32, u64);

/// Failures of the store itself (not refusals, which are answers).
#[derive(Debug, Error)]
pub enum StateStoreError {
    /// The store file cannot be opened or created, also when another process has it open
    /// (two runs sharing a data directory).
    #[error("state store {path}: {error}")]
    Open {
        /// The store file.
        path: String,
        /// redb's reason (part of the message, not a `source`: printed once).
        error: redb::DatabaseError,
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
    /// `--state` names something that is not a state store this build can use.
    #[error("--state {url}: {reason}")]
    Config {
        /// What was given (without any secret).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server is not reachable (at start, or lost since: calls fail with this until it
    /// is back, and the client reconnects on its own).
    #[error("state store {url} unavailable: {reason}")]
    Unavailable {
        /// The server.
        url: String,
        /// The client's reason.
        reason: String,
    },
    /// The server took longer than the read timeout to answer.
    #[error("state store {url} did not answer within {after:?}")]
    Timeout {
        /// The server.
        url: String,
        /// The read timeout.
        after: Duration,
    },
    /// The server answered something this client does not understand (or refused the
    /// request: a key of another type, a script error), naming the key when there is one.
    #[error("state store {url}: {reason}")]
    Protocol {
        /// The server.
        url: String,
        /// What came back.
        reason: String,
    },
}

pub(crate) fn storage<E: std::fmt::Display>(e: E) -> StateStoreError {
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

/// Answer to `get`.
#[derive(Debug, Clone, PartialEq)]
pub struct GetResponse {
    /// `None` when the key is absent or expired.
    pub value: Option<Vec<u8>>,
    /// The version of `value`, its last write; `None` exactly when `value` is.
    pub version: Option<Hlc>,
}

impl GetResponse {
    pub(crate) const ABSENT: Self = Self {
        value: None,
        version: None,
    };
}

/// Answer to `set`: whether it happened, and the new version (the fencing token of a lock).
#[derive(Debug, Clone, PartialEq)]
pub struct SetResponse {
    /// `false` when the condition refused the write (an answer, not an error).
    pub done: bool,
    /// The value's new version; `None` when not `done`.
    pub version: Option<Hlc>,
}

impl SetResponse {
    pub(crate) const REFUSED: Self = Self {
        done: false,
        version: None,
    };
}

/// Answer to `del`/`vdel`: 1 deleted, 0 absent, -1 (`vdel`) value did not match.
#[derive(Debug, Clone, PartialEq)]
pub struct DelResponse {
    /// 1, 0 or -1 as above: the WIT answer is an `s64`.
    pub deleted: i64,
}

pub(crate) fn to_hlc(v: Version) -> Hlc {
    Hlc {
        secs: v.0,
        nanos: v.1,
        counter: v.2,
        node_id: NODE_ID.into(),
    }
}

/// The fencing rule both backends apply (the Redis backend in its scripts): a key written
/// under token `current` changes only with a token at least as new.
pub(crate) fn check_fence(current: Version, given: Option<&Hlc>) -> Result<(), StateStoreError> {
    let ok = given.is_some_and(|g| (g.secs, g.nanos, g.counter) >= current);
    if ok {
        Ok(())
    } else {
        Err(StateStoreError::StaleFencingToken {
            given: given.map_or_else(|| "(none)".into(), |g| g.to_string()),
            current: to_hlc(current).to_string(),
        })
    }
}

#[derive(Clone)]
enum Backend {
    Embedded(Arc<embedded::Embedded>),
    #[cfg(feature = "redis")]
    Redis(Arc<redis_backend::RedisStore>),
}

/// The store, shared by every operation of every graph in the process; clones share it.
#[derive(Clone)]
pub struct StateStore {
    backend: Backend,
    /// For the start-up log line and health reports.
    description: Arc<str>,
}

impl StateStore {
    /// Opens (or creates) the embedded store file; its contents survive restarts.
    pub fn open(path: &Path) -> Result<Self, StateStoreError> {
        Ok(Self {
            backend: Backend::Embedded(Arc::new(embedded::Embedded::open(path)?)),
            description: format!("embedded ({})", path.display()).into(),
        })
    }

    /// An embedded store that lives only in memory (tests, `wasmflow test`).
    pub fn in_memory() -> Result<Self, StateStoreError> {
        Ok(Self {
            backend: Backend::Embedded(Arc::new(embedded::Embedded::in_memory()?)),
            description: "embedded (in memory)".into(),
        })
    }

    /// Connects to a Redis-protocol server on `rt` (the process's runtime), within the
    /// configured connect timeout; an unreachable server is an error naming it.
    ///
    /// Calls block the calling thread (a graph's) until the server answers or the read timeout
    /// passes; they must not be made from inside `rt`'s own tasks.
    #[cfg(feature = "redis")]
    pub fn connect_redis(config: RedisConfig, rt: &tokio::runtime::Handle) -> Result<Self, StateStoreError> {
        let description = format!("redis ({})", config.display_url()).into();
        let store = redis_backend::RedisStore::connect(config, rt)?;
        Ok(Self {
            backend: Backend::Redis(Arc::new(store)),
            description,
        })
    }

    /// What the store is, for logs: `embedded (/path/state.redb)`, `redis (redis://host:6379/0)`.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// Whether the store answers now (a Redis `PING` within the read timeout; the embedded
    /// store always does): what `/readyz` asks.
    pub async fn check(&self) -> Result<(), StateStoreError> {
        match &self.backend {
            Backend::Embedded(_) => Ok(()),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.ping().await,
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

    /// The value of `key` and its version; an expired key reads as absent.
    pub fn get(&self, key: &[u8]) -> Result<GetResponse, StateStoreError> {
        match &self.backend {
            Backend::Embedded(e) => e.get(key),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.get(key),
        }
    }

    /// Writes `key` when `cond` allows; a key once written with a fencing token only changes
    /// with a token at least as new (else [`StateStoreError::StaleFencingToken`]). The
    /// answer's version is the key's new version: a lock's fencing token.
    pub fn set(
        &self,
        key: &[u8],
        value: &[u8],
        fence: Option<&Hlc>,
        cond: SetCondition,
        expires: Option<Duration>,
    ) -> Result<SetResponse, StateStoreError> {
        match &self.backend {
            Backend::Embedded(e) => e.set(key, value, fence, cond, expires),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.set(key, value, fence, cond, expires),
        }
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
        match &self.backend {
            Backend::Embedded(e) => e.delete(key, expect, fence),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.delete(key, expect, fence),
        }
    }
}
