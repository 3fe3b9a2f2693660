//! The `enrichment` sample module: a map that turns a window's `sensor_data` into the document
//! published on topic `sensors`, flagging over-temperature with a sticky flag kept in the state
//! store, and counting over-temperature windows under the state-store lock with a fencing token.
//!
//! The state-store logic is written against the small [`StateStore`] trait: the component
//! implements it with the imported `state-store` interface, the native tests with an in-memory
//! fake. That keeps the lock/fencing protocol testable without a host.

use sample_common::json;
use sample_common::records::{SensorData, SensorDataPayload};
use serde_json::Value;
use wasmflow_guest::hlc::Hlc;

/// Topic of every output message.
pub const OUTPUT_TOPIC: &str = "sensors";
/// State key of the sticky over-temperature flag (`"true"`/`"false"`).
pub const OVERTEMP_KEY: &str = "overtemp";
/// State key set to `"true"` once a humidity maximum went above [`WET_THRESHOLD`].
pub const WET_FLAG_KEY: &str = "wet_flag";
/// State key of the number of over-temperature windows seen (decimal text).
pub const WINDOWS_KEY: &str = "overtemp_windows";
/// State key of the lock that serialises updates of [`WINDOWS_KEY`] across instances.
pub const LOCK_KEY: &str = "enrichment_lock";
/// How long the lock lives if its holder dies before releasing it.
pub const LOCK_EXPIRY_MILLIS: u64 = 10_000;
/// A temperature maximum above this (°C) sets the flag.
pub const OVERTEMP_THRESHOLD: f64 = 100.0;
/// A temperature minimum below this (°C) clears the flag.
pub const UNDERTEMP_THRESHOLD: f64 = 0.0;
/// A humidity maximum above this (%) sets [`WET_FLAG_KEY`].
pub const WET_THRESHOLD: f64 = 80.0;

/// The condition of a state-store `set` (mirrors `state-store-types.set-conditions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetCondition {
    /// Only when the key is absent.
    OnlyIfDoesNotExist,
    /// When absent or holding the same value: the lock primitive (the holder renews it).
    OnlyIfEqualOrDoesNotExist,
    /// Always.
    Unconditional,
}

/// What a state-store `set` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetResponse {
    /// Whether the value was written.
    pub applied: bool,
    /// The key's new version: the fencing token of a lock.
    pub version: Option<Hlc>,
}

/// The part of the state store enrichment needs. Errors are sentences for the operator error.
pub trait StateStore {
    /// The value of `key`, `None` when absent.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Writes `key`; refused (`applied == false`) when the condition fails or the fencing token
    /// is older than the key's version.
    fn set(
        &mut self,
        key: &str,
        value: &[u8],
        fencing_token: Option<&Hlc>,
        condition: SetCondition,
        expires_millis: Option<u64>,
    ) -> Result<SetResponse, String>;
    /// Deletes `key` only if it holds `value`: 1 deleted, 0 absent, -1 value did not match.
    fn vdel(&mut self, key: &str, value: &[u8], fencing_token: Option<&Hlc>) -> Result<i64, String>;
}

/// The output of one enrichment.
#[derive(Debug, Clone, PartialEq)]
pub struct Enriched {
    /// `{"temperature":[…],"humidity":[…],"object":[…]}`, empty categories left out.
    pub payload: Vec<u8>,
    /// Things worth a warning that did not stop the item (lock busy, fenced out, …).
    pub warnings: Vec<String>,
    /// The over-temperature window this item counted, when it did: what instances sharing a
    /// state store can be checked by (counts 1, 2, 3, … under fencing tokens that increase).
    pub counted: Option<Counted>,
}

/// One increment of [`WINDOWS_KEY`] under the lock.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted {
    /// The count written.
    pub count: u64,
    /// The lock's fencing token it was written under (`None` when the store gave none).
    pub token: Option<Hlc>,
}

/// Reads the sticky flag once and remembers changes, so the store is read at most once and
/// written at most once per item, whatever the number of records.
struct Flag {
    value: Option<bool>,
    dirty: bool,
}

impl Flag {
    fn get(&mut self, store: &mut impl StateStore, warnings: &mut Vec<String>) -> Result<bool, String> {
        if let Some(value) = self.value {
            return Ok(value);
        }
        let stored = store
            .get(OVERTEMP_KEY)
            .map_err(|e| format!("state-store get `{OVERTEMP_KEY}` failed: {e}"))?;
        let value = match stored.as_deref() {
            None | Some(b"false") => false,
            Some(b"true") => true,
            Some(other) => {
                warnings.push(format!(
                    "state `{OVERTEMP_KEY}` holds {:?}, not \"true\"/\"false\"; taken as false",
                    String::from_utf8_lossy(other)
                ));
                false
            }
        };
        self.value = Some(value);
        Ok(value)
    }

    fn set(&mut self, value: bool) {
        self.value = Some(value);
        self.dirty = true;
    }
}

fn number(record: &serde_json::Map<String, Value>, key: &str) -> Option<f64> {
    record.get(key).and_then(Value::as_f64)
}

/// The map: `sensor_data` in, `{"temperature":[…],"humidity":[…],"object":[…]}` out, with the
/// categories that have no records left out (see [`SensorData`]).
///
/// For each temperature record (its `value` removed): `max > 100` → `overtemp = true` and state
/// `overtemp = "true"`; else `min < 0` → `overtemp = false` and state `overtemp = "false"`;
/// otherwise the stored flag (default false). Humidity `max > 80` → state `wet_flag = "true"`.
/// A window with any over-temperature record increments `overtemp_windows` under the lock
/// (see [`count_overtemp_window`]). `owner` identifies this instance as the lock holder.
pub fn enrich(payload: &[u8], store: &mut impl StateStore, owner: &str) -> Result<Enriched, String> {
    let mut data: SensorData = serde_json::from_slice::<SensorDataPayload>(payload)
        .map_err(|e| format!("the payload is not a sensor_data document: {e}"))?
        .sensor_data;
    let mut warnings = Vec::new();
    let mut flag = Flag {
        value: None,
        dirty: false,
    };
    let mut hot_window = false;

    for (index, record) in data.temperature.iter_mut().enumerate() {
        let Value::Object(record) = record else {
            warnings.push(format!(
                "temperature record {index} is {}, not an object; left as is",
                json::kind(record)
            ));
            continue;
        };
        record.shift_remove("value");
        let overtemp = if number(record, "max").is_some_and(|max| max > OVERTEMP_THRESHOLD) {
            flag.set(true);
            true
        } else if number(record, "min").is_some_and(|min| min < UNDERTEMP_THRESHOLD) {
            flag.set(false);
            false
        } else {
            flag.get(store, &mut warnings)?
        };
        record.insert("overtemp".to_owned(), Value::Bool(overtemp));
        hot_window |= overtemp;
    }
    if flag.dirty {
        let value: &[u8] = if flag.value == Some(true) { b"true" } else { b"false" };
        store
            .set(OVERTEMP_KEY, value, None, SetCondition::Unconditional, None)
            .map_err(|e| format!("state-store set `{OVERTEMP_KEY}` failed: {e}"))?;
    }

    let wet = data.humidity.iter().any(|record| {
        record
            .as_object()
            .and_then(|r| number(r, "max"))
            .is_some_and(|max| max > WET_THRESHOLD)
    });
    if wet {
        store
            .set(WET_FLAG_KEY, b"true", None, SetCondition::Unconditional, None)
            .map_err(|e| format!("state-store set `{WET_FLAG_KEY}` failed: {e}"))?;
    }

    let counted = if hot_window {
        count_overtemp_window(store, owner, &mut warnings)?
    } else {
        None
    };
    Ok(Enriched {
        payload: json::to_bytes(&data)?,
        warnings,
        counted,
    })
}

/// Increments `overtemp_windows` under the state-store lock:
/// 1. `set enrichment_lock = owner` with `only-if-equal-or-does-not-exist`, expiring after
///    10 s; the returned `version` is the fencing token;
/// 2. `get overtemp_windows`, add one, `set` it passing the fencing token (a holder whose lock
///    expired and was taken over is refused by the store instead of overwriting);
/// 3. `vdel enrichment_lock` (only if it still holds `owner`), whatever step 2 did.
///
/// A lock held by another instance is not waited for (a guest cannot sleep): the window is not
/// counted and a warning says so. Store failures are errors. Answers the count written, with
/// its token, when the window was counted.
pub fn count_overtemp_window(
    store: &mut impl StateStore,
    owner: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<Counted>, String> {
    let lock = store
        .set(
            LOCK_KEY,
            owner.as_bytes(),
            None,
            SetCondition::OnlyIfEqualOrDoesNotExist,
            Some(LOCK_EXPIRY_MILLIS),
        )
        .map_err(|e| format!("state-store set `{LOCK_KEY}` failed: {e}"))?;
    if !lock.applied {
        warnings.push(format!(
            "`{LOCK_KEY}` is held by another instance; this over-temperature window was not counted"
        ));
        return Ok(None);
    }
    let token = lock.version;
    if token.is_none() {
        warnings.push(format!(
            "the state store returned no version for `{LOCK_KEY}`; counting without a fencing token"
        ));
    }
    let counted = increment_windows(store, token.as_ref(), warnings);
    let released = store
        .vdel(LOCK_KEY, owner.as_bytes(), token.as_ref())
        .map_err(|e| format!("state-store vdel `{LOCK_KEY}` failed: {e}"));
    let counted = counted?;
    if released? == -1 {
        warnings.push(format!(
            "`{LOCK_KEY}` was no longer held by this instance when releasing it (expired?)"
        ));
    }
    Ok(counted.map(|count| Counted { count, token }))
}

/// The count written, `None` when the store refused it.
fn increment_windows(
    store: &mut impl StateStore,
    token: Option<&Hlc>,
    warnings: &mut Vec<String>,
) -> Result<Option<u64>, String> {
    let current = store
        .get(WINDOWS_KEY)
        .map_err(|e| format!("state-store get `{WINDOWS_KEY}` failed: {e}"))?;
    let count: u64 = match current.as_deref() {
        None => 0,
        Some(bytes) => match std::str::from_utf8(bytes).ok().and_then(|s| s.parse().ok()) {
            Some(n) => n,
            None => {
                warnings.push(format!(
                    "state `{WINDOWS_KEY}` holds {:?}, not a count; restarting from 0",
                    String::from_utf8_lossy(bytes)
                ));
                0
            }
        },
    };
    let next = count.saturating_add(1);
    let written = store
        .set(
            WINDOWS_KEY,
            next.to_string().as_bytes(),
            token,
            SetCondition::Unconditional,
            None,
        )
        .map_err(|e| format!("state-store set `{WINDOWS_KEY}` failed: {e}"))?;
    if !written.applied {
        warnings.push(format!(
            "`{WINDOWS_KEY}` update refused (fencing token outdated); window not counted"
        ));
        return Ok(None);
    }
    Ok(Some(next))
}

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(test)]
mod tests;
