//! The `__ts` user property (`wasmflow_wire`): what every source parses from every message
//! and every sink writes back.
//!
//! A value that parses is written back in the canonical zero-padded form and reads back as
//! the same parts (the clock it denotes too); the clock arithmetic (milliseconds, window
//! boundaries) is exercised on arbitrary clocks, as a guest may hand the host any clock.

#![no_main]

use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use wasmflow_wire::{format_hlc, format_ts, next_window_boundary, parse_ts, timespec_to_millis, Hlc};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(parts) = parse_ts(text) {
            let canonical = format_ts(u128::from(parts.millis), parts.counter, parts.node_id);
            assert_eq!(parse_ts(&canonical), Ok(parts), "{text:?} → {canonical:?}");
            let hlc = parts.to_hlc();
            assert_eq!(u128::from(hlc.millis()), u128::from(parts.millis));
            assert_eq!(hlc.to_string(), canonical);
            assert!(text.ends_with(parts.node_id));
        }
    }
    let mut u = Unstructured::new(data);
    let (Ok(secs), Ok(nanos), Ok(counter), Ok(window)) = (
        u64::arbitrary(&mut u),
        u32::arbitrary(&mut u),
        u64::arbitrary(&mut u),
        u64::arbitrary(&mut u),
    ) else {
        return;
    };
    let node_id = String::arbitrary(&mut u).unwrap_or_default();
    let hlc = Hlc {
        secs,
        nanos,
        counter,
        node_id,
    };
    let millis = timespec_to_millis(secs, nanos);
    assert_eq!(u128::from(hlc.millis()), millis);
    let written = format_hlc(secs, nanos, counter, &hlc.node_id);
    if let Ok(back) = parse_ts(&written) {
        assert_eq!(
            (u128::from(back.millis), back.counter, back.node_id),
            (millis, counter, &*hlc.node_id)
        );
    } else {
        assert!(millis > u128::from(u64::MAX), "{written:?} does not read back");
    }
    if let Some((s, n)) = next_window_boundary(secs, nanos, window) {
        let boundary = timespec_to_millis(s, n);
        assert!(boundary > millis && boundary % u128::from(window) == 0);
        assert!(boundary - millis <= u128::from(window));
    }
});
