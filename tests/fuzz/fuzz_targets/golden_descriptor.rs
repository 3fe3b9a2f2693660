//! A golden-test descriptor (`*.test.yaml`, `wasmflow_golden::GoldenTest::parse`): the
//! platform's test-runner format that `wasmflow test` reads.
//!
//! Either a test whose paths are resolved against the descriptor's folder (or absolute, as
//! written) and whose name is never empty, or an error naming the descriptor.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wasmflow_golden::GoldenTest;

const FILE: &str = "tests/golden/fuzz/fuzz.test.yaml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match GoldenTest::parse(Path::new(FILE), text) {
        Err(e) => {
            let message = format!("{e:#}");
            assert!(
                message.starts_with(FILE),
                "an error that does not name the descriptor: {message}"
            );
        }
        Ok(t) => {
            assert!(!t.name.trim().is_empty(), "{t:?}");
            for p in [Some(&t.graph), Some(&t.input), Some(&t.expected), t.state.as_ref()]
                .into_iter()
                .flatten()
            {
                assert!(
                    p.is_absolute() || p.starts_with("tests/golden/fuzz"),
                    "{} is not resolved against the descriptor's folder",
                    p.display()
                );
            }
        }
    }
});
