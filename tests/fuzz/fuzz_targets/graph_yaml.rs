//! Graph definition text → validated graph (`wasmflow_compose::parse_graph`, the path of
//! `compose`, `inspect`, `run` and `test`), within the default limits.
//!
//! Beyond "no panic, no hang, no stack overflow, bounded memory" (libFuzzer's own checks), it
//! asserts what the loader promises: every error names the file; the nesting scan refuses what
//! would nest past the YAML parser's own recursion limit (so a deep document always gets the
//! limit's message); and a graph that validates keeps the invariants later stages rely on.

#![no_main]

use std::collections::HashSet;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wasmflow_compose::{naming, parse_graph, ComposeError, Limits};

const FILE: &str = "fuzz/graph.yaml";

fuzz_target!(|data: &[u8]| {
    // `load_graph` refuses text that is not UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_graph(Path::new(FILE), text) {
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.starts_with(FILE),
                "an error that does not name the file: {message}"
            );
            if let ComposeError::YamlSyntax { message, .. } = &e {
                assert!(
                    !message.contains("recursion limit exceeded"),
                    "the nesting scan let through a document the YAML parser finds too deep: {message}"
                );
            }
        }
        Ok(g) => {
            assert!(g.operations.len() <= Limits::DEFAULT.max_operations);
            let names: HashSet<&str> = g.operations.iter().map(|o| o.name.as_str()).collect();
            assert_eq!(names.len(), g.operations.len(), "operation names are unique");
            let mut exports = HashSet::new();
            for (i, op) in g.operations.iter().enumerate() {
                assert_eq!(op.index, i);
                assert!(exports.insert(op.export.as_str()), "export `{}` twice", op.export);
                assert_eq!(naming::operation_index(&op.export), Some(i as u32), "{}", op.export);
                assert_eq!(op.module.is_some(), !op.kind.is_plumbing(), "{op:?}");
            }
            for c in &g.connections {
                assert!(
                    names.contains(c.from.as_str()) && names.contains(c.to.as_str()),
                    "{c:?}"
                );
            }
            // Configuration resolution either gives every operation its values or names what
            // is missing; it never panics.
            if let Err(e) = g.configurations(&[]) {
                assert!(e.to_string().starts_with(FILE), "{e}");
            }
        }
    }
});
