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
//! The module is encoded directly with `wasm-encoder` (which composing uses anyway; a text
//! parser would add its own weight to the installed binary for this one module) and made a
//! component by `wit-component` from a WIT world generated alongside, which validates it.

use std::collections::HashMap;
use std::fmt::Write as _;

use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection, Function, FunctionSection,
    GlobalSection, GlobalType, ImportSection, InstructionSink, MemArg, MemorySection, MemoryType, Module, TypeSection,
    ValType,
};
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

/// Every value the dispatcher handles is an `i32`, so a function type is its numbers of
/// parameters and results.
#[derive(Clone, Copy, PartialEq)]
struct Signature {
    params: usize,
    results: usize,
}

impl Signature {
    const fn new(params: usize, results: usize) -> Self {
        Signature { params, results }
    }
}

/// An operation's `init(configuration) -> bool`, lowered: the configuration's four flat values
/// (its two lists, a pointer and a length each).
const OPERATION_INIT: Signature = Signature::new(4, 1);
/// An operation's `process`, lowered: a pointer to its parameters, the return area.
const OPERATION_PROCESS: Signature = Signature::new(2, 0);
/// `cabi_realloc(old, old_size, align, size) -> pointer`.
const REALLOC: Signature = Signature::new(4, 1);
/// A post-return function: the pointer the call returned.
const POST_RETURN: Signature = Signature::new(1, 0);
/// `topology() -> list<u32>`, lifted: the pointer to its `(pointer, length)`.
const TOPOLOGY: Signature = Signature::new(0, 1);
/// `init(op, configuration) -> bool`, lifted: the operation, then the configuration's four flat
/// values.
const INIT: Signature = Signature::new(5, 1);
/// A forwarding function (`map`, `filter`, …), lifted: a pointer to its parameters (the
/// operation, then the operator's own), returning a pointer to the result.
const FORWARD: Signature = Signature::new(1, 1);

/// The module's one memory.
const MEMORY: u32 = 0;
/// The bump allocator's globals: where the heap starts (after the topology), and where its free
/// part starts.
const HEAP_BASE: u32 = 0;
const BUMP: u32 = 1;
/// The first parameter of `init` and of the forwarding functions: the operation's index
/// (`init`), or the pointer to the parameters, which start with it (the forwarding functions).
const FIRST_PARAMETER: u32 = 0;

/// `cabi_realloc`'s locals: its four parameters, then three of its own.
mod realloc_local {
    pub const OLD: u32 = 0;
    pub const OLD_SIZE: u32 = 1;
    pub const ALIGN: u32 = 2;
    pub const SIZE: u32 = 3;
    pub const PTR: u32 = 4;
    pub const END: u32 = 5;
    pub const PAGES: u32 = 6;
    /// The locals after the parameters (`PTR`, `END`, `PAGES`).
    pub const OWN: u32 = 3;
}

/// The offset, in the forwarding functions' parameters, of the operator's own parameters (after
/// the operation's index, every parameter type being aligned to at most 8; module docs).
const OPERATOR_PARAMETERS: i32 = 8;
/// `i32.load` of the operation's index, at the start of a forwarding function's parameters.
const LOAD_OPERATION: MemArg = MemArg {
    offset: 0,
    align: 2, // log2 of 4 bytes, a `u32`'s natural alignment
    memory_index: MEMORY,
};
/// The size of a page of memory, as a power of 2.
const PAGE_BITS: i32 = 16;

/// A core module being written: its sections, filled as items are added, and its function types,
/// each added at its first use (as the text format numbers them, so the encoding is the one the
/// WebAssembly text this replaced was parsed to; the tests compare them).
#[derive(Default)]
struct ModuleBuilder {
    signatures: Vec<Signature>,
    types: TypeSection,
    imports: ImportSection,
    imported_functions: u32,
    functions: FunctionSection,
    exports: ExportSection,
    code: CodeSection,
}

impl ModuleBuilder {
    /// The index of the function type `signature`, added if it is new.
    fn type_index(&mut self, signature: Signature) -> u32 {
        if let Some(index) = self.signatures.iter().position(|s| *s == signature) {
            return index as u32;
        }
        self.signatures.push(signature);
        self.types.ty().function(
            vec![ValType::I32; signature.params],
            vec![ValType::I32; signature.results],
        );
        self.types.len() - 1
    }

    /// Imports a function; its index. Every import must come before the first definition.
    fn import(&mut self, module: &str, name: &str, signature: Signature) -> u32 {
        assert_eq!(self.functions.len(), 0, "imports precede definitions");
        let ty = self.type_index(signature);
        self.imports.import(module, name, EntityType::Function(ty));
        self.imported_functions += 1;
        self.imported_functions - 1
    }

    /// Defines a function with `locals` `i32` locals beyond its parameters and the body `body`
    /// writes (without its final `end`); its index.
    fn define(&mut self, signature: Signature, locals: u32, body: impl FnOnce(&mut InstructionSink<'_>)) -> u32 {
        let ty = self.type_index(signature);
        self.functions.function(ty);
        let mut function = Function::new((locals > 0).then_some((locals, ValType::I32)));
        body(&mut function.instructions());
        function.instructions().end();
        self.code.function(&function);
        self.imported_functions + self.functions.len() - 1
    }

    /// Exports function `index` as `name`.
    fn export(&mut self, name: &str, index: u32) {
        self.exports.export(name, ExportKind::Func, index);
    }
}

/// Writes a `br_table` dispatch over operation indexes (`n` of them): `selector` pushes the
/// index, `cases` are the operations that have a body, written by `body`; an index that is none
/// of them traps.
///
/// One block per case, nested in a block that ends in `unreachable`: the table branches out of
/// the innermost `j + 1` blocks for case `j`, so that its body follows their `end`, and out of
/// them all for an operation without a case.
fn dispatch(
    code: &mut InstructionSink<'_>,
    n: usize,
    selector: impl FnOnce(&mut InstructionSink<'_>),
    cases: &[usize],
    mut body: impl FnMut(&mut InstructionSink<'_>, usize),
) {
    let none = cases.len() as u32;
    code.block(BlockType::Empty);
    for _ in cases {
        code.block(BlockType::Empty);
    }
    selector(code);
    let targets = (0..n).map(|op| cases.iter().position(|&c| c == op).map_or(none, |j| j as u32));
    code.br_table(targets, none);
    for &op in cases {
        code.end();
        body(code, op);
    }
    code.end();
    code.unreachable();
}

/// The bump allocator's `cabi_realloc(old, old_size, align, size)`: what lifting allocates lives
/// until the call's post-return. A shrink (or same size) keeps `old`; otherwise the bump is
/// rounded up to `align`, the memory grown by whole pages when the end passes it (trapping if
/// it cannot, or if the end overflows), and `old`'s contents copied.
fn realloc_body(code: &mut InstructionSink<'_>) {
    use realloc_local::*;
    // if (old != 0 && size <= old_size) return old
    code.local_get(OLD).i32_const(0).i32_ne();
    code.local_get(SIZE).local_get(OLD_SIZE).i32_le_u();
    code.i32_and().if_(BlockType::Empty);
    code.local_get(OLD).return_();
    code.end();
    // ptr = (bump + align - 1) & -align
    code.global_get(BUMP).local_get(ALIGN).i32_const(1).i32_sub().i32_add();
    code.i32_const(0).local_get(ALIGN).i32_sub();
    code.i32_and().local_set(PTR);
    // end = ptr + size, trapping on overflow
    code.local_get(PTR).local_get(SIZE).i32_add().local_set(END);
    code.local_get(END).local_get(PTR).i32_lt_u();
    code.if_(BlockType::Empty).unreachable().end();
    // if end > memory's size in bytes: grow by ceil((end - size in bytes) / page), or trap
    let memory_bytes = |code: &mut InstructionSink<'_>| {
        code.memory_size(MEMORY).i32_const(PAGE_BITS).i32_shl();
    };
    code.local_get(END);
    memory_bytes(code);
    code.i32_gt_u().if_(BlockType::Empty);
    code.local_get(END);
    memory_bytes(code);
    code.i32_sub().i32_const((1 << PAGE_BITS) - 1).i32_add();
    code.i32_const(PAGE_BITS).i32_shr_u().local_set(PAGES);
    code.local_get(PAGES).memory_grow(MEMORY).i32_const(-1).i32_eq();
    code.if_(BlockType::Empty).unreachable().end();
    code.end();
    // bump = end; if old != 0, copy old_size bytes from old to ptr
    code.local_get(END).global_set(BUMP);
    code.local_get(OLD).i32_const(0).i32_ne().if_(BlockType::Empty);
    code.local_get(PTR)
        .local_get(OLD)
        .local_get(OLD_SIZE)
        .memory_copy(MEMORY, MEMORY);
    code.end();
    code.local_get(PTR);
}

/// The dispatcher's core module.
fn dispatcher_module(kinds: &[OperationKind], topology: &[u32]) -> Vec<u8> {
    let n = kinds.len();
    let operators: Vec<usize> = (0..n).filter(|&i| process_signature(kinds[i]).is_some()).collect();
    let heap = (TOPOLOGY_WORDS + 4 * topology.len() as u32).next_multiple_of(16);
    let mut m = ModuleBuilder::default();

    // Each operator's `init` and `process`, by operation index.
    let mut init_of = HashMap::new();
    let mut process_of = HashMap::new();
    for &i in &operators {
        let module = operation_import(i);
        init_of.insert(i, m.import(&module, "init", OPERATION_INIT));
        process_of.insert(i, m.import(&module, "process", OPERATION_PROCESS));
    }

    let realloc = m.define(REALLOC, realloc_local::OWN, realloc_body);
    let release = m.define(POST_RETURN, 0, |code| {
        code.global_get(HEAP_BASE).global_set(BUMP);
    });
    let topology_function = m.define(TOPOLOGY, 0, |code| {
        code.i32_const(TOPOLOGY_RESULT as i32);
    });
    // init(op, configuration): flat parameters, forwarded as they are.
    let init = m.define(INIT, 0, |code| {
        let selector = |code: &mut InstructionSink<'_>| {
            code.local_get(FIRST_PARAMETER);
        };
        dispatch(code, n, selector, &operators, |code, op| {
            for configuration in FIRST_PARAMETER + 1..INIT.params as u32 {
                code.local_get(configuration);
            }
            code.call(init_of[&op]).return_();
        });
    });
    // The exports in the order the text gave them: the forwarding functions' come below.
    m.exports.export("memory", ExportKind::Memory, MEMORY);
    m.export("cabi_realloc", realloc);
    m.export(&format!("{OPERATORS_INTERFACE}#topology"), topology_function);
    m.export(&format!("cabi_post_{OPERATORS_INTERFACE}#topology"), release);
    m.export(&format!("{OPERATORS_INTERFACE}#init"), init);
    m.export(&format!("cabi_post_{OPERATORS_INTERFACE}#init"), release);

    // map(op, …), filter(op, …), …: the operator's parameters forwarded in place, its result
    // returned from the return area.
    for (name, kind) in FORWARDS {
        let cases: Vec<usize> = operators.iter().copied().filter(|&i| kinds[i] == kind).collect();
        let forward = m.define(FORWARD, 0, |code| {
            let selector = |code: &mut InstructionSink<'_>| {
                code.local_get(FIRST_PARAMETER).i32_load(LOAD_OPERATION);
            };
            dispatch(code, n, selector, &cases, |code, op| {
                code.local_get(FIRST_PARAMETER).i32_const(OPERATOR_PARAMETERS).i32_add();
                code.i32_const(RETURN_AREA as i32).call(process_of[&op]);
                code.i32_const(RETURN_AREA as i32).return_();
            });
        });
        m.export(&format!("{OPERATORS_INTERFACE}#{name}"), forward);
        m.export(&format!("cabi_post_{OPERATORS_INTERFACE}#{name}"), release);
    }

    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    // HEAP_BASE, then BUMP: both start at the heap.
    let mut globals = GlobalSection::new();
    let global = |mutable| GlobalType {
        val_type: ValType::I32,
        mutable,
        shared: false,
    };
    globals.global(global(false), &ConstExpr::i32_const(heap as i32));
    globals.global(global(true), &ConstExpr::i32_const(heap as i32));
    let mut data = DataSection::new();
    let result = [TOPOLOGY_WORDS, topology.len() as u32];
    let bytes = |words: &[u32]| words.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
    data.active(MEMORY, &ConstExpr::i32_const(TOPOLOGY_RESULT as i32), bytes(&result));
    data.active(MEMORY, &ConstExpr::i32_const(TOPOLOGY_WORDS as i32), bytes(topology));

    // In the order the binary format requires; a graph without operators imports nothing, and
    // an empty section is left out (as the text format's encoder does).
    let mut module = Module::new();
    module.section(&m.types);
    if !m.imports.is_empty() {
        module.section(&m.imports);
    }
    module.section(&m.functions);
    module.section(&memories);
    module.section(&globals);
    module.section(&m.exports);
    module.section(&m.code);
    module.section(&data);
    module.finish()
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
    let mut module = dispatcher_module(kinds, topology);
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).map_err(|e| format!("{e:#}"))?;
    ComponentEncoder::default()
        .module(&module)
        .map_err(|e| format!("{e:#}"))?
        .validate(true)
        .encode()
        .map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;
    use OperationKind::*;

    /// The dispatcher's core module as WebAssembly text, as the compiler wrote it before it
    /// encoded the module itself: the specification [`dispatcher_module`] must keep to.
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
            dispatch_wat("(local.get 0)", n, &init_cases)
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
                dispatch_wat("(i32.load (local.get 0))", n, &cases)
            );
        }
        wat.push_str(")\n");
        wat
    }

    /// A `br_table` dispatch over operation indexes, as text: `cases` are `(operation, body)`.
    fn dispatch_wat(selector: &str, n: usize, cases: &[(usize, String)]) -> String {
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

    /// Bytes as a WebAssembly text string (`\hh` escapes).
    fn le_bytes(bytes: &[u8]) -> String {
        bytes.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "\\{b:02x}");
            s
        })
    }

    /// A module's sections, `(id, contents)` in order: custom sections keep their name in their
    /// contents.
    fn sections(module: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut reader = wasmparser::BinaryReader::new(module, 0);
        assert_eq!(
            reader.read_bytes(8).unwrap(),
            b"\0asm\x01\0\0\0",
            "a core module's header"
        );
        let mut sections = Vec::new();
        while !reader.eof() {
            let id = reader.read_u8().unwrap();
            let size = reader.read_var_u32().unwrap() as usize;
            sections.push((id, reader.read_bytes(size).unwrap().to_vec()));
        }
        sections
    }

    /// Whether a section is the custom `name` section (names of functions, locals, labels and
    /// globals the text gave, which the encoded module leaves out: debugging information only,
    /// and none of it named a function a call goes through).
    fn is_names(section: &(u8, Vec<u8>)) -> bool {
        section.0 == 0 && section.1.starts_with(b"\x04name")
    }

    /// Graph shapes as the router tests have them: the simple graph, the complex one with two
    /// operators of one kind among every kind, several of a kind in a row, operators of one kind
    /// only, and none at all; with topologies long and short (the heap starts after them).
    fn shapes() -> Vec<(Vec<OperationKind>, Vec<u32>)> {
        let topology = |kinds: &[OperationKind], extra: usize| {
            let mut words = vec![1, kinds.len() as u32];
            words.extend(kinds.iter().map(|&k| kind_code(k)));
            words.push(extra as u32);
            words.extend((0..4 * extra as u32).map(|w| w.wrapping_mul(0x9e37_79b9)));
            words
        };
        [
            (vec![Source, Map, Sink], 2),
            (
                vec![
                    Source,
                    Map,
                    Filter,
                    Branch,
                    Map,
                    Accumulate,
                    Delay,
                    Concatenate,
                    Accumulate,
                    Sink,
                ],
                11,
            ),
            (vec![Source, Map, Map, Map, Filter, Sink, Sink], 6),
            (vec![Filter, Filter], 1),
            (vec![Source, Concatenate, Sink], 0),
        ]
        .into_iter()
        .map(|(kinds, extra)| {
            let words = topology(&kinds, extra);
            (kinds, words)
        })
        .collect()
    }

    #[test]
    fn the_dispatcher_module_is_the_one_its_text_gave() {
        for (kinds, topology) in shapes() {
            let text = wat::parse_str(dispatcher_wat(&kinds, &topology)).expect("the text parses");
            let expected: Vec<_> = sections(&text).into_iter().filter(|s| !is_names(s)).collect();
            let module = dispatcher_module(&kinds, &topology);
            let actual = sections(&module);
            assert_eq!(
                actual.iter().map(|s| s.0).collect::<Vec<_>>(),
                expected.iter().map(|s| s.0).collect::<Vec<_>>(),
                "the same sections for {kinds:?}"
            );
            for (a, e) in actual.iter().zip(&expected) {
                assert_eq!(a, e, "section {} for {kinds:?}", a.0);
            }
            wasmparser::Validator::new()
                .validate_all(&module)
                .unwrap_or_else(|e| panic!("{kinds:?}: {e}"));
        }
    }

    #[test]
    fn every_shape_makes_a_dispatcher_component() {
        for (kinds, topology) in shapes() {
            let component = dispatcher(&kinds, &topology).unwrap_or_else(|e| panic!("{kinds:?}: {e}"));
            assert!(wasmparser::Parser::is_component(&component), "{kinds:?}");
        }
    }
}
