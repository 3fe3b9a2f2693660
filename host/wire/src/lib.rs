//! Event time on the wire: the hybrid logical clock, the `__ts` user property, millisecond
//! conversions, window rounding and the ordering key of an HLC.
//!
//! One crate for the host and every guest component (`components/` depends on it by path), so
//! the host's router and the plumbing components read and write event time the same way. It has
//! no dependencies and builds for `wasm32-wasip2` and natively alike.
//!
//! The wire form of event time is the user property `__ts` =
//! `<ms since epoch>:<counter>:<node id>`, written zero-padded as `{:0>15}:{:0>5}:{}`. The source
//! parses it, the sink writes it, and both must agree byte for byte, so both live here.

#![warn(missing_docs)]

/// Name of the user property (MQTT) or header (Kafka) that carries an item's event time.
pub const TS_PROPERTY: &str = "__ts";

/// Nanoseconds in one millisecond.
const NANOS_PER_MILLI: u32 = 1_000_000;

/// A hybrid logical clock with owned parts, independent of any generated binding type, so
/// logic that handles timestamps (fencing tokens, windows) can be tested natively.
///
/// Ordered by time, then counter, then node id, so equal inputs always order the same way
/// (deterministic replay); [`Hlc::order_key`] leaves the node id out.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc {
    /// Whole seconds since the Unix epoch.
    pub secs: u64,
    /// Sub-second nanoseconds (below 1e9 in a well-formed clock).
    pub nanos: u32,
    /// Logical counter that orders events within the same wall time.
    pub counter: u64,
    /// The node that stamped the event.
    pub node_id: String,
}

impl Hlc {
    /// The wall clock now, stamped by `node_id`: arrival time and the idle frontier.
    pub fn now(node_id: &str) -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            secs: d.as_secs(),
            nanos: d.subsec_nanos(),
            counter: 0,
            node_id: node_id.to_owned(),
        }
    }

    /// Milliseconds since the epoch (the unit of the `__ts` property). `u128`, as in
    /// [`timespec_to_millis`]: a clock comes from a guest and may hold any `secs`, and `u64::MAX`
    /// seconds do not fit in `u64` milliseconds (the fuzz target `ts` found the overflow).
    pub fn millis(&self) -> u128 {
        timespec_to_millis(self.secs, self.nanos)
    }

    /// The key by which items are put in event-time order: `(secs, nanos, counter)`.
    /// The node id is deliberately not part of it (ties keep arrival order).
    pub fn order_key(&self) -> OrderKey {
        (self.secs, self.nanos, self.counter)
    }
}

impl std::fmt::Display for Hlc {
    /// The `__ts` wire form: `{ms:0>15}:{counter:0>5}:{node}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_hlc(self.secs, self.nanos, self.counter, &self.node_id))
    }
}

/// `(secs, nanos, counter)`: compares like event time.
pub type OrderKey = (u64, u32, u64);

/// The parts of a `__ts` value, borrowed from the string they were parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsParts<'a> {
    /// Milliseconds since the Unix epoch.
    pub millis: u64,
    /// The HLC counter.
    pub counter: u64,
    /// The node id: everything after the second `:` (it may itself contain `:`, or be empty).
    pub node_id: &'a str,
}

impl TsParts<'_> {
    /// The clock this `__ts` denotes (milliseconds split into seconds and nanoseconds).
    pub fn to_hlc(&self) -> Hlc {
        let (secs, nanos) = millis_to_timespec(self.millis);
        Hlc {
            secs,
            nanos,
            counter: self.counter,
            node_id: self.node_id.to_owned(),
        }
    }
}

/// Parses `<ms since epoch>:<counter>:<node id>`.
///
/// Strict on purpose: both numbers must be plain ASCII digits that fit in a `u64` (no sign, no
/// spaces), because a timestamp that is "almost" right would silently reorder a stream. The
/// error is a sentence the host can log as is.
pub fn parse_ts(value: &str) -> Result<TsParts<'_>, String> {
    let Some((millis, (counter, node_id))) = value
        .split_once(':')
        .and_then(|(millis, rest)| Some((millis, rest.split_once(':')?)))
    else {
        return Err(format!(
            "`{TS_PROPERTY}` value {value:?} is not <ms since epoch>:<counter>:<node id>"
        ));
    };
    let millis = parse_u64(millis).ok_or_else(|| {
        format!("`{TS_PROPERTY}` value {value:?}: milliseconds {millis:?} are not an unsigned 64-bit integer")
    })?;
    let counter = parse_u64(counter).ok_or_else(|| {
        format!("`{TS_PROPERTY}` value {value:?}: counter {counter:?} is not an unsigned 64-bit integer")
    })?;
    Ok(TsParts {
        millis,
        counter,
        node_id,
    })
}

/// Digits only, in one pass (`u64::from_str` would also accept a leading `+`; sources parse one
/// of these per message).
fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.bytes().try_fold(0u64, |n, b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Writes a `__ts` value in the zero-padded form `{:0>15}:{:0>5}:{}`, so that values compare
/// as strings in the same order as in time for the next few thousand years.
///
/// Written by hand rather than with `format!`: sinks write one per message, and padded
/// formatting through `core::fmt` cost several times more than the digits themselves.
pub fn format_ts(millis: u128, counter: u64, node_id: &str) -> String {
    let mut out = String::with_capacity(15 + 1 + 5 + 1 + node_id.len());
    push_padded(&mut out, millis, 15);
    out.push(':');
    push_padded(&mut out, u128::from(counter), 5);
    out.push(':');
    out.push_str(node_id);
    out
}

/// Appends `n` in decimal, left-padded with zeros to `width` digits (never truncated).
fn push_padded(out: &mut String, n: u128, width: usize) {
    let mut digits = [b'0'; 39]; // u128::MAX has 39 digits
    let mut start = digits.len();
    // Digits come off in u64 arithmetic once the rest fits: a u128 division is a library call
    // per digit, and every real `__ts` fits in u64 from the start.
    let mut wide = n;
    while wide > u128::from(u64::MAX) {
        start -= 1;
        digits[start] = b'0' + (wide % 10) as u8;
        wide /= 10;
    }
    let mut n = wide as u64; // fits: the loop above ran until it did
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = start.min(digits.len().saturating_sub(width));
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
}

/// The `__ts` value of a clock (sub-millisecond nanoseconds are truncated: `__ts` has ms precision).
pub fn format_hlc(secs: u64, nanos: u32, counter: u64, node_id: &str) -> String {
    format_ts(timespec_to_millis(secs, nanos), counter, node_id)
}

/// Milliseconds since the epoch → `(secs, nanos)`.
pub fn millis_to_timespec(millis: u64) -> (u64, u32) {
    // `millis % 1000` is below 1000, so the product is below 1e9 and fits in u32.
    (millis / 1000, (millis % 1000) as u32 * NANOS_PER_MILLI)
}

/// `(secs, nanos)` → milliseconds since the epoch, truncating below the millisecond.
/// `u128` because `u64::MAX` seconds do not fit in `u64` milliseconds.
pub fn timespec_to_millis(secs: u64, nanos: u32) -> u128 {
    u128::from(secs) * 1000 + u128::from(nanos / NANOS_PER_MILLI)
}

/// The end of the tumbling window that contains `(secs, nanos)`: the next multiple of
/// `window_millis` strictly after the instant truncated to milliseconds (an instant exactly on
/// a boundary moves to the next one, so the result is always later). `None` when the result
/// does not fit in a timespec, or the window is zero.
pub fn next_window_boundary(secs: u64, nanos: u32, window_millis: u64) -> Option<(u64, u32)> {
    if window_millis == 0 {
        return None;
    }
    let window = u128::from(window_millis);
    let millis = timespec_to_millis(secs, nanos);
    let boundary = (millis / window + 1) * window;
    let secs = u64::try_from(boundary / 1000).ok()?;
    // Below 1000 ms × 1e6: fits in u32.
    let nanos = (boundary % 1000) as u32 * NANOS_PER_MILLI;
    Some((secs, nanos))
}

/// Indexes of `keys` in stable event-time order: equal keys keep their relative order.
pub fn stable_order(keys: &[OrderKey]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    // `sort_by_key` is a stable sort.
    order.sort_by_key(|&i| keys[i]);
    order
}

/// Index of the latest key (the last one among equal maxima), `None` for no keys.
pub fn latest(keys: &[OrderKey]) -> Option<usize> {
    keys.iter().enumerate().max_by_key(|&(_, key)| *key).map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    #[test]
    fn orders_by_time_then_counter() {
        let at = |nanos, counter, node: &str| Hlc {
            secs: 1,
            nanos,
            counter,
            node_id: node.into(),
        };
        assert!(at(5, 9, "z") < at(6, 0, "a") && at(6, 0, "a") < at(6, 1, "a"));
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
        assert_eq!(h.millis(), 1_700_000_000_123);
    }

    /// Found by the fuzz target `ts` (tests/fuzz/corpus/ts/text: its bytes read as a clock):
    /// `millis` multiplied `secs` by 1000 in `u64` and overflowed.
    #[test]
    fn millis_of_the_largest_clock_do_not_overflow() {
        let h = Hlc {
            secs: u64::MAX,
            nanos: 999_999_999,
            ..Hlc::default()
        };
        assert_eq!(h.millis(), u128::from(u64::MAX) * 1000 + 999);
    }

    use super::*;

    #[test]
    fn parses_a_well_formed_ts() {
        let parts = parse_ts("001700000003456:00007:edge-1").expect("valid");
        assert_eq!(parts.millis, 1_700_000_003_456);
        assert_eq!(parts.counter, 7);
        assert_eq!(parts.node_id, "edge-1");
        assert_eq!(
            parts.to_hlc(),
            Hlc {
                secs: 1_700_000_003,
                nanos: 456_000_000,
                counter: 7,
                node_id: "edge-1".into()
            }
        );
    }

    #[test]
    fn node_id_keeps_colons_and_may_be_empty() {
        assert_eq!(parse_ts("5:0:a:b:c").expect("valid").node_id, "a:b:c");
        assert_eq!(parse_ts("5:0:").expect("valid").node_id, "");
    }

    #[test]
    fn formats_like_padded_format_macro() {
        for (millis, counter) in [
            (0u128, 0u64),
            (9, 99_999),
            (1_700_000_003_456, 7),
            (999_999_999_999_999, 100_000),
            (1_000_000_000_000_000, u64::MAX),
            (u128::MAX, 12_345),
        ] {
            assert_eq!(
                format_ts(millis, counter, "id:x"),
                format!("{millis:0>15}:{counter:0>5}:id:x"),
                "millis {millis}, counter {counter}"
            );
        }
    }

    #[test]
    fn formats_zero_padded() {
        assert_eq!(format_ts(1_700_000_003_456, 7, "n"), "001700000003456:00007:n");
        assert_eq!(format_ts(0, 0, ""), "000000000000000:00000:");
        // Wider than the padding: printed in full, never cut.
        assert_eq!(
            format_ts(12_345_678_901_234_567, 123_456, "x"),
            "12345678901234567:123456:x"
        );
        assert_eq!(
            format_hlc(1_700_000_003, 456_999_999, 3, "z"),
            "001700000003456:00003:z"
        );
    }

    #[test]
    fn round_trips_through_the_wire_form() {
        for (millis, counter, node) in [
            (0u64, 0u64, ""),
            (1_700_000_003_456, 42, "node:7"),
            (u64::MAX, u64::MAX, "m"),
        ] {
            let text = format_ts(u128::from(millis), counter, node);
            let parts = parse_ts(&text).expect("own output parses");
            assert_eq!((parts.millis, parts.counter, parts.node_id), (millis, counter, node));
            let hlc = parts.to_hlc();
            assert_eq!(format_hlc(hlc.secs, hlc.nanos, hlc.counter, &hlc.node_id), text);
        }
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "1700000003456",
            "1700000003456:7",
            ":7:n",
            "17x:7:n",
            "1700000003456::n",
            "+1:2:n",
            "1:-2:n",
            " 1:2:n",
            "18446744073709551616:0:n", // u64::MAX + 1
        ] {
            let err = parse_ts(bad).expect_err(bad);
            assert!(err.contains("__ts"), "{err}");
        }
        assert!(parse_ts("12a:0:n")
            .expect_err("bad ms")
            .contains("milliseconds \"12a\""));
        assert!(parse_ts("12:zz:n").expect_err("bad counter").contains("counter \"zz\""));
    }

    #[test]
    fn millisecond_conversions() {
        assert_eq!(millis_to_timespec(1_700_000_003_456), (1_700_000_003, 456_000_000));
        assert_eq!(millis_to_timespec(999), (0, 999_000_000));
        assert_eq!(timespec_to_millis(1_700_000_003, 456_789_123), 1_700_000_003_456);
        assert_eq!(timespec_to_millis(u64::MAX, 0), u128::from(u64::MAX) * 1000);
    }

    #[test]
    fn window_rounds_up_strictly() {
        // 1_700_000_003_456 ms → 1_700_000_010_000 ms.
        assert_eq!(
            next_window_boundary(1_700_000_003, 456_000_000, 10_000),
            Some((1_700_000_010, 0))
        );
        // Exactly on a boundary: the next one.
        assert_eq!(next_window_boundary(1_700_000_010, 0, 10_000), Some((1_700_000_020, 0)));
        // Sub-millisecond part is below the precision: still the next boundary.
        assert_eq!(
            next_window_boundary(1_700_000_019, 999_999_999, 10_000),
            Some((1_700_000_020, 0))
        );
        assert_eq!(next_window_boundary(0, 0, 10_000), Some((10, 0)));
        // Non-second windows keep the millisecond part.
        assert_eq!(next_window_boundary(1, 0, 1_500), Some((1, 500_000_000)));
        assert_eq!(next_window_boundary(u64::MAX, 0, 10_000), None);
        assert_eq!(next_window_boundary(5, 0, 0), None);
    }

    #[test]
    fn ordering_is_stable_and_latest_is_last_maximum() {
        let keys = [(2, 0, 0), (1, 5, 0), (1, 5, 0), (1, 0, 9), (2, 0, 0)];
        assert_eq!(stable_order(&keys), vec![3, 1, 2, 0, 4]);
        assert_eq!(latest(&keys), Some(4));
        assert_eq!(latest(&[]), None);
        let hlc = Hlc {
            secs: 1,
            nanos: 2,
            counter: 3,
            node_id: "n".into(),
        };
        assert_eq!(hlc.order_key(), (1, 2, 3));
    }
}
