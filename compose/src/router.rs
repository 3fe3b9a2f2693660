//! The router inside a composed graph (`--router composed`): the graph's shape as the router
//! reads it, and the dispatcher that connects the router to every operation.
//!
//! A component's imports are fixed when it is built, while graphs vary, so the router
//! (`components/plumbing/router`, built once) imports one interface that names operations by
//! index, `wasmflow:graph/operators`, and the compiler generates per graph a small component
//! that exports it: the **dispatcher**. Its core module imports each operation's interface
//! (`op{i}`, plugged with that operation's instance) and forwards a call for operation `op` to
//! it through a `br_table`; it also returns the graph's [`topology`] from a data segment.
//!
//! Forwarding copies nothing itself: by the canonical ABI, a call whose parameters do not fit
//! in 16 flat values receives them in the callee's memory at one pointer, laid out as the tuple
//! of its parameters, and an import with such parameters is called the same way. The
//! dispatcher's `map(op, message)` receives `(u32, data-model)`; every parameter type here is
//! aligned to at most 8, so the operation's own arguments start at offset 8, laid out exactly as
//! its `process` expects them, and the pointer plus 8 is passed on. Results come back in a
//! static return area. The memory that lifting allocates (a bump allocator, `cabi_realloc`) is
//! released after each call (`cabi_post_…`), so the dispatcher holds nothing between calls.
//!
//! The module is written as WebAssembly text (readable, and checked by the `wat` parser) and
//! made a component by `wit-component` from a WIT world generated alongside.

use std::collections::HashMap;
use std::fmt::Write as _;

use wit_component::{embed_component_metadata, ComponentEncoder, StringEncoding};
use wit_parser::{Resolve, SourceMap};

use crate::manifest::Manifest;
use crate::model::{Arm, OperationKind};

/// The interface a graph composed with its router exports.
pub const GRAPH_INTERFACE: &str = "wasmflow:graph/graph@0.1.0";
/// The interface the router imports and the dispatcher exports.
pub const OPERATORS_INTERFACE: &str = "wasmflow:graph/operators@0.1.0";
/// The router component's file, found like the plumbing components.
pub const ROUTER_COMPONENT: &str = "wasmflow-router.wasm";

/// The WIT the dispatcher is typed against, embedded so composing needs no files.
const PROCESSOR_WIT: [(&str, &str); 4] = [
    ("host.wit", include_str!("../../wit/processor/host.wit")),
    (
        "hybrid-logical-clock.wit",
        include_str!("../../wit/processor/hybrid-logical-clock.wit"),
    ),
    ("operators.wit", include_str!("../../wit/processor/operators.wit")),
    ("types.wit", include_str!("../../wit/processor/types.wit")),
];
const GRAPH_WIT: &str = include_str!("../../wit/wasmflow/graph.wit");

/// The code of a kind in the topology (as `wit/wasmflow/graph.wit` documents it).
fn kind_code(kind: OperationKind) -> u32 {
    match kind {
        OperationKind::Source => 0,
        OperationKind::Map => 1,
        OperationKind::Filter => 2,
        OperationKind::Branch => 3,
        OperationKind::Accumulate => 4,
        OperationKind::Delay => 5,
        OperationKind::Concatenate => 6,
        OperationKind::Sink => 7,
    }
}

/// The graph's shape as the router reads it (`operators.topology`):
/// `[1, n, kind × n, e, (from, to, arm, input) × e]`, connections in declaration order, `input`
/// counted per target in that order (as the host router counts them).
pub fn topology(manifest: &Manifest) -> Result<Vec<u32>, String> {
    let by_name: HashMap<&str, usize> = manifest
        .operations
        .iter()
        .enumerate()
        .map(|(i, o)| (o.name.as_str(), i))
        .collect();
    let n = manifest.operations.len();
    let mut words = vec![1, n as u32];
    words.extend(manifest.operations.iter().map(|o| kind_code(o.kind)));
    words.push(manifest.connections.len() as u32);
    let mut inputs = vec![0u32; n];
    for c in &manifest.connections {
        let index = |name: &str| {
            by_name
                .get(name)
                .copied()
                .ok_or_else(|| format!("connection {} → {} names an unknown operation", c.from, c.to))
        };
        let (from, to) = (index(&c.from)?, index(&c.to)?);
        let arm = match c.arm {
            None => 0,
            Some(Arm::False) => 1,
            Some(Arm::True) => 2,
        };
        words.extend([from as u32, to as u32, arm, inputs[to]]);
        inputs[to] += 1;
    }
    Ok(words)
}

/// The `process` signature of each operator kind, as in `wit/processor/operators.wit`, and the
/// dispatcher function that forwards to it.
fn process_signature(kind: OperationKind) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        OperationKind::Map => (
            "map",
            "process: func(message: data-model) -> result<data-model, error>;",
        ),
        OperationKind::Filter => ("filter", "process: func(message: data-model) -> result<bool, error>;"),
        OperationKind::Branch => (
            "branch",
            "process: func(timestamp: hybrid-logical-clock, message: data-model) -> result<bool, error>;",
        ),
        OperationKind::Accumulate => (
            "accumulate",
            "process: func(staged: data-model, message: list<data-model>) -> result<data-model, error>;",
        ),
        OperationKind::Delay => (
            "delay",
            "process: func(data: data-model, timestamp: hybrid-logical-clock) -> result<hybrid-logical-clock, error>;",
        ),
        OperationKind::Source | OperationKind::Sink | OperationKind::Concatenate => return None,
    })
}

/// The dispatcher's import of operation `i`.
pub fn operation_import(i: usize) -> String {
    format!("op{i}")
}

/// Whether `name` is a dispatcher's import of an operation ([`operation_import`]): satisfied
/// inside the composition, never by the host.
pub fn is_operation_import(name: &str) -> bool {
    name.strip_prefix("op")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The WIT package of the dispatcher of a graph whose operations are `kinds`.
fn dispatcher_wit(kinds: &[OperationKind]) -> String {
    let mut wit = String::from("package wasmflow:dispatch@0.1.0;\n\nworld dispatch {\n");
    for (i, kind) in kinds.iter().enumerate() {
        if let Some((_, process)) = process_signature(*kind) {
            // Exactly the types the operator's interface uses, so its instance is a subtype.
            let clock = if process.contains("hybrid-logical-clock") {
                "        use wasm-graph:processor/hybrid-logical-clock@1.1.0.{hybrid-logical-clock};\n"
            } else {
                ""
            };
            let _ = write!(
                wit,
                "    import {}: interface {{\n{clock}        use wasm-graph:processor/types@1.1.0.{{data-model, error, module-configuration}};\n        init: func(configuration: module-configuration) -> bool;\n        {process}\n    }}\n",
                operation_import(i)
            );
        }
    }
    wit.push_str("    export wasmflow:graph/operators@0.1.0;\n}\n");
    wit
}

/// Where the dispatcher keeps things in its memory: the `(pointer, length)` that `topology`
/// returns, the return area of the forwarding functions (larger than any result here; the
/// largest, `result<data-model, error>`, takes 136 bytes), the topology words, then the heap.
const TOPOLOGY_RESULT: u32 = 16;
const RETURN_AREA: u32 = 64;
const TOPOLOGY_WORDS: u32 = 1024;

/// The forwarding functions: `(name in the interface, operator kind)`.
const FORWARDS: [(&str, OperationKind); 5] = [
    ("map", OperationKind::Map),
    ("filter", OperationKind::Filter),
    ("branch", OperationKind::Branch),
    ("accumulate", OperationKind::Accumulate),
    ("delay", OperationKind::Delay),
];

/// A `br_table` dispatch over operation indexes: `cases` are `(operation, body)`; an index
/// that is none of them traps.
fn dispatch(selector: &str, n: usize, cases: &[(usize, String)]) -> String {
    let mut wat = String::new();
    let _ = writeln!(wat, "    (block $none");
    for j in (0..cases.len()).rev() {
        let _ = writeln!(wat, "    (block $case{j}");
    }
    let targets: Vec<String> = (0..n)
        .map(|op| {
            cases
                .iter()
                .position(|(o, _)| *o == op)
                .map_or("$none".to_string(), |j| format!("$case{j}"))
        })
        .collect();
    let _ = writeln!(wat, "      (br_table {} $none {selector})", targets.join(" "));
    for (j, (_, body)) in cases.iter().enumerate() {
        let _ = writeln!(wat, "    ) ;; $case{j}\n      {body}");
    }
    let _ = writeln!(wat, "    ) ;; $none\n    unreachable");
    wat
}

/// The dispatcher's core module, as WebAssembly text.
fn dispatcher_wat(kinds: &[OperationKind], topology: &[u32]) -> String {
    let n = kinds.len();
    let operators: Vec<usize> = (0..n).filter(|&i| process_signature(kinds[i]).is_some()).collect();
    let heap = (TOPOLOGY_WORDS + 4 * topology.len() as u32).next_multiple_of(16);
    let mut wat = String::from("(module\n");
    for &i in &operators {
        let m = operation_import(i);
        let _ = writeln!(
            wat,
            "  (import \"{m}\" \"init\" (func $init{i} (param i32 i32 i32 i32) (result i32)))\n  (import \"{m}\" \"process\" (func $process{i} (param i32 i32)))"
        );
    }
    let words: String = topology.iter().map(|w| le_bytes(&w.to_le_bytes())).collect();
    let pair = le_bytes(&[TOPOLOGY_WORDS.to_le_bytes(), (topology.len() as u32).to_le_bytes()].concat());
    let _ = write!(
        wat,
        r#"  (memory (export "memory") 1)
  (global $heap_base i32 (i32.const {heap}))
  (global $bump (mut i32) (i32.const {heap}))
  (data (i32.const {TOPOLOGY_RESULT}) "{pair}")
  (data (i32.const {TOPOLOGY_WORDS}) "{words}")
  ;; A bump allocator: what lifting allocates lives until the call's post-return.
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32) (local $end i32) (local $pages i32)
    (if (i32.and (i32.ne (local.get $old) (i32.const 0)) (i32.le_u (local.get $size) (local.get $old_size)))
      (then (return (local.get $old))))
    (local.set $ptr (i32.and (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.lt_u (local.get $end) (local.get $ptr)) (then unreachable))
    (if (i32.gt_u (local.get $end) (i32.shl (memory.size) (i32.const 16)))
      (then
        (local.set $pages (i32.shr_u (i32.add (i32.sub (local.get $end) (i32.shl (memory.size) (i32.const 16)))
                                              (i32.const 65535)) (i32.const 16)))
        (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1)) (then unreachable))))
    (global.set $bump (local.get $end))
    (if (i32.ne (local.get $old) (i32.const 0))
      (then (memory.copy (local.get $ptr) (local.get $old) (local.get $old_size))))
    (local.get $ptr))
  (func $release (param i32) (global.set $bump (global.get $heap_base)))
  (func (export "{OPERATORS_INTERFACE}#topology") (result i32) (i32.const {TOPOLOGY_RESULT}))
  (export "cabi_post_{OPERATORS_INTERFACE}#topology" (func $release))
"#
    );
    // init(op, configuration): flat parameters, forwarded as they are.
    let init_cases: Vec<(usize, String)> = operators
        .iter()
        .map(|&i| {
            (
                i,
                format!("(return (call $init{i} (local.get 1) (local.get 2) (local.get 3) (local.get 4)))"),
            )
        })
        .collect();
    let _ = write!(
        wat,
        "  (func (export \"{OPERATORS_INTERFACE}#init\") (param i32 i32 i32 i32 i32) (result i32)\n{}  )\n  (export \"cabi_post_{OPERATORS_INTERFACE}#init\" (func $release))\n",
        dispatch("(local.get 0)", n, &init_cases)
    );
    for (name, kind) in FORWARDS {
        let cases: Vec<(usize, String)> = operators
            .iter()
            .filter(|&&i| kinds[i] == kind)
            .map(|&i| {
                (
                    i,
                    format!(
                        "(call $process{i} (i32.add (local.get 0) (i32.const 8)) (i32.const {RETURN_AREA})) (return (i32.const {RETURN_AREA}))"
                    ),
                )
            })
            .collect();
        let _ = write!(
            wat,
            "  (func (export \"{OPERATORS_INTERFACE}#{name}\") (param i32) (result i32)\n{}  )\n  (export \"cabi_post_{OPERATORS_INTERFACE}#{name}\" (func $release))\n",
            dispatch("(i32.load (local.get 0))", n, &cases)
        );
    }
    wat.push_str(")\n");
    wat
}

/// Bytes as a WebAssembly text string (`\hh` escapes).
fn le_bytes(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "\\{b:02x}");
        s
    })
}

/// The dispatcher component of a graph whose operations are `kinds`, returning `topology`.
pub fn dispatcher(kinds: &[OperationKind], topology: &[u32]) -> Result<Vec<u8>, String> {
    let mut resolve = Resolve::default();
    let mut push = |files: &[(&str, &str)]| -> Result<wit_parser::PackageId, String> {
        let mut map = SourceMap::default();
        for &(name, text) in files {
            map.push_str(name, text);
        }
        let group = map.parse().map_err(|(_, e)| format!("{e}"))?;
        resolve.push_group(group).map_err(|e| format!("{e:#}"))
    };
    push(&PROCESSOR_WIT)?;
    push(&[("graph.wit", GRAPH_WIT)])?;
    let pkg = push(&[("dispatch.wit", &dispatcher_wit(kinds))])?;
    let world = resolve
        .select_world(&[pkg], Some("dispatch"))
        .map_err(|e| format!("{e:#}"))?;
    let mut module = wat::parse_str(dispatcher_wat(kinds, topology)).map_err(|e| format!("{e:#}"))?;
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).map_err(|e| format!("{e:#}"))?;
    ComponentEncoder::default()
        .module(&module)
        .map_err(|e| format!("{e:#}"))?
        .validate(true)
        .encode()
        .map_err(|e| format!("{e:#}"))
}
