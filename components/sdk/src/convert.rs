//! Conveniences over the generated types: the methods and conversions the platform's SDK gives
//! its operators (`BufferOrBytes::read`, `Duration` ⇄ `Timespec`, `Timestamp` →
//! `HybridLogicalClock`, `BufferOrString` → `String`, `SetOptions::default()`), plus a few
//! obvious companions.

use std::cmp::Ordering;
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use crate::state_store::{Duration as StoreDuration, SetConditions, SetOptions};
use crate::{BufferOrBytes, BufferOrString, HybridLogicalClock, Timespec, Timestamp};

impl BufferOrBytes {
    /// The bytes: a host buffer is read (one copy into the module), owned bytes are cloned.
    pub fn read(&self) -> Vec<u8> {
        match self {
            BufferOrBytes::Buffer(buffer) => buffer.read(),
            BufferOrBytes::Bytes(bytes) => bytes.clone(),
        }
    }

    /// The bytes, by value: owned bytes are moved (no copy), a host buffer is read.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            BufferOrBytes::Buffer(buffer) => buffer.read(),
            BufferOrBytes::Bytes(bytes) => bytes,
        }
    }
}

impl BufferOrString {
    /// The bytes of the text: a host buffer is read (one copy into the module), an owned
    /// string's bytes are copied.
    pub fn read(&self) -> Vec<u8> {
        match self {
            BufferOrString::Buffer(buffer) => buffer.read(),
            BufferOrString::String(string) => string.as_bytes().to_vec(),
        }
    }

    /// The text; invalid UTF-8 in a host buffer becomes U+FFFD.
    pub fn to_string_lossy(&self) -> String {
        match self {
            BufferOrString::Buffer(buffer) => String::from_utf8_lossy(&buffer.read()).into_owned(),
            BufferOrString::String(string) => string.clone(),
        }
    }
}

impl From<BufferOrString> for String {
    /// The text: an owned string is moved, a host buffer is read (invalid UTF-8 becomes U+FFFD).
    fn from(value: BufferOrString) -> Self {
        match value {
            BufferOrString::Buffer(buffer) => match String::from_utf8(buffer.read()) {
                Ok(text) => text,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            },
            BufferOrString::String(string) => string,
        }
    }
}

impl From<String> for BufferOrString {
    /// An owned string.
    fn from(value: String) -> Self {
        BufferOrString::String(value)
    }
}

impl From<&str> for BufferOrString {
    /// An owned copy of the text.
    fn from(value: &str) -> Self {
        BufferOrString::String(value.to_owned())
    }
}

impl From<BufferOrBytes> for Vec<u8> {
    /// The bytes (see [`BufferOrBytes::into_bytes`]).
    fn from(value: BufferOrBytes) -> Self {
        value.into_bytes()
    }
}

impl From<Vec<u8>> for BufferOrBytes {
    /// Owned bytes.
    fn from(value: Vec<u8>) -> Self {
        BufferOrBytes::Bytes(value)
    }
}

impl From<Timespec> for StdDuration {
    /// The time since the Unix epoch.
    fn from(value: Timespec) -> Self {
        StdDuration::new(value.secs, 0) + StdDuration::from_nanos(u64::from(value.nanos))
    }
}

impl From<StdDuration> for Timespec {
    /// The point in time that lies `value` after the Unix epoch.
    fn from(value: StdDuration) -> Self {
        Timespec {
            secs: value.as_secs(),
            nanos: value.subsec_nanos(),
        }
    }
}

impl Eq for Timespec {}

impl PartialOrd for Timespec {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timespec {
    /// Earlier first (seconds, then nanoseconds).
    fn cmp(&self, other: &Self) -> Ordering {
        (self.secs, self.nanos).cmp(&(other.secs, other.nanos))
    }
}

impl From<StoreDuration> for StdDuration {
    /// The same span.
    fn from(value: StoreDuration) -> Self {
        StdDuration::new(value.seconds, 0) + StdDuration::from_nanos(u64::from(value.nanos))
    }
}

impl From<StdDuration> for StoreDuration {
    /// The same span.
    fn from(value: StdDuration) -> Self {
        StoreDuration {
            seconds: value.as_secs(),
            nanos: value.subsec_nanos(),
        }
    }
}

impl Default for SetOptions {
    /// An unconditional set that never expires.
    fn default() -> Self {
        SetOptions {
            conditions: SetConditions::Unconditional,
            expires: None,
        }
    }
}

impl HybridLogicalClock {
    /// The clock at the current wall time, counter 0, no node id.
    pub fn new() -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        HybridLogicalClock {
            timestamp: now.into(),
            counter: 0,
            node_id: String::new(),
        }
    }
}

impl Default for HybridLogicalClock {
    /// [`HybridLogicalClock::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl From<Timestamp> for HybridLogicalClock {
    /// The clock a message carries (a node id in a host buffer is read).
    fn from(value: Timestamp) -> Self {
        HybridLogicalClock {
            timestamp: value.timestamp,
            counter: value.counter,
            node_id: value.node_id.into(),
        }
    }
}

impl From<HybridLogicalClock> for Timestamp {
    /// A message timestamp of that clock.
    fn from(value: HybridLogicalClock) -> Self {
        Timestamp {
            timestamp: value.timestamp,
            counter: value.counter,
            node_id: BufferOrString::String(value.node_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespec_and_duration_round_trip() {
        let t = Timespec {
            secs: 1_700_000_003,
            nanos: 456_000_000,
        };
        let d = StdDuration::from(t);
        assert_eq!(d.as_millis(), 1_700_000_003_456);
        let back: Timespec = (d + StdDuration::from_millis(6_544)).into();
        assert_eq!(
            back,
            Timespec {
                secs: 1_700_000_010,
                nanos: 0
            }
        );
        assert!(t < back);
    }

    #[test]
    fn store_durations_convert() {
        let d: StoreDuration = StdDuration::from_millis(10_500).into();
        assert_eq!(
            d,
            StoreDuration {
                seconds: 10,
                nanos: 500_000_000
            }
        );
        assert_eq!(StdDuration::from(d), StdDuration::from_millis(10_500));
    }

    #[test]
    fn set_options_default_to_an_unconditional_set() {
        let o = SetOptions::default();
        assert_eq!(o.conditions, SetConditions::Unconditional);
        assert_eq!(o.expires, None);
    }

    #[test]
    fn owned_payloads_read_without_the_host() {
        let b = BufferOrBytes::Bytes(b"abc".to_vec());
        assert_eq!(b.read(), b"abc");
        assert_eq!(Vec::from(b), b"abc");
        let s = BufferOrString::from("x=1");
        assert_eq!(s.read(), b"x=1");
        assert_eq!(s.to_string_lossy(), "x=1");
        assert_eq!(String::from(s), "x=1");
    }

    #[test]
    fn timestamps_and_clocks_convert() {
        let ts = Timestamp {
            timestamp: Timespec { secs: 5, nanos: 6 },
            counter: 7,
            node_id: BufferOrString::String("edge".into()),
        };
        let hlc = HybridLogicalClock::from(ts);
        assert_eq!(hlc.node_id, "edge");
        assert_eq!((hlc.timestamp.secs, hlc.timestamp.nanos, hlc.counter), (5, 6, 7));
        let back = Timestamp::from(hlc.clone());
        assert_eq!(back.counter, 7);
        assert!(HybridLogicalClock::new().timestamp.secs > 1_600_000_000);
    }
}
