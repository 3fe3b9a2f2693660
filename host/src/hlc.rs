//! Event time: hybrid logical clock values as the runtime orders and compares them.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::bindings::{HybridLogicalClock, Timespec};

/// An HLC value in the form the router keys windows and frontiers by. Ordered by time, then
/// counter, then node id, so equal inputs always order the same way (deterministic replay).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc {
    pub secs: u64,
    pub nanos: u32,
    pub counter: u64,
    pub node_id: String,
}

impl Hlc {
    /// The wall clock now, stamped by `node_id`; used for arrival time and the idle frontier.
    pub fn now(node_id: &str) -> Self {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            secs: d.as_secs(),
            nanos: d.subsec_nanos(),
            counter: 0,
            node_id: node_id.to_owned(),
        }
    }

    /// Milliseconds since the epoch (the unit of the `__ts` property).
    pub fn millis(&self) -> u64 {
        self.secs * 1000 + u64::from(self.nanos) / 1_000_000
    }

    /// `(secs, nanos, counter)`: the part of the clock that orders event time.
    pub fn time_key(&self) -> (u64, u32, u64) {
        (self.secs, self.nanos, self.counter)
    }
}

impl From<&HybridLogicalClock> for Hlc {
    fn from(h: &HybridLogicalClock) -> Self {
        Self {
            secs: h.timestamp.secs,
            nanos: h.timestamp.nanos,
            counter: h.counter,
            node_id: h.node_id.clone(),
        }
    }
}

impl From<&Hlc> for HybridLogicalClock {
    fn from(h: &Hlc) -> Self {
        HybridLogicalClock {
            timestamp: Timespec {
                secs: h.secs,
                nanos: h.nanos,
            },
            counter: h.counter,
            node_id: h.node_id.clone(),
        }
    }
}

impl std::fmt::Display for Hlc {
    /// The `__ts` wire form: `{ms:0>15}:{counter:0>5}:{node}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&wasmflow_guest::hlc::format_hlc(
            self.secs,
            self.nanos,
            self.counter,
            &self.node_id,
        ))
    }
}

/// The guests' clock type: what the plumbing crates, run natively, take and return.
impl From<wasmflow_guest::hlc::Hlc> for Hlc {
    fn from(h: wasmflow_guest::hlc::Hlc) -> Self {
        Self {
            secs: h.secs,
            nanos: h.nanos,
            counter: h.counter,
            node_id: h.node_id,
        }
    }
}

impl From<&Hlc> for wasmflow_guest::hlc::Hlc {
    fn from(h: &Hlc) -> Self {
        Self {
            secs: h.secs,
            nanos: h.nanos,
            counter: h.counter,
            node_id: h.node_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_time_then_counter() {
        let a = Hlc {
            secs: 1,
            nanos: 5,
            counter: 9,
            node_id: "z".into(),
        };
        let b = Hlc {
            secs: 1,
            nanos: 6,
            counter: 0,
            node_id: "a".into(),
        };
        let c = Hlc {
            secs: 1,
            nanos: 6,
            counter: 1,
            node_id: "a".into(),
        };
        assert!(a < b && b < c);
    }

    #[test]
    fn displays_in_ts_wire_form() {
        let h = Hlc {
            secs: 1_700_000_000,
            nanos: 123_000_000,
            counter: 7,
            node_id: "df".into(),
        };
        assert_eq!(h.to_string(), "001700000000123:00007:df");
    }

    #[test]
    fn converts_to_and_from_wit() {
        let h = Hlc {
            secs: 3,
            nanos: 4,
            counter: 5,
            node_id: "n".into(),
        };
        let w: HybridLogicalClock = (&h).into();
        assert_eq!(Hlc::from(&w), h);
    }
}
