//! Bounds on the graph definitions the loader accepts, each checked before the work it bounds.
//!
//! The loader ([`crate::load_graph_with`]) checks them in pipeline order, so no stage
//! ever sees input it could choke on:
//!
//! 1. the size of the text ([`Limits::max_document_bytes`]), before it is read or parsed;
//! 2. how deeply the text nests ([`Limits::max_nesting_depth`]), by a linear scan of the text
//!    that follows the YAML parser's own tokenizer, before that parser runs;
//! 3. what the document's YAML aliases expand to: no more nodes than the text has bytes, no
//!    deeper than [`Limits::max_nesting_depth`], by a replay that builds nothing
//!    (compose/src/aliases.rs), before the document is built;
//! 4. how many operations the parsed document lists ([`Limits::max_operations`]), before the
//!    schema check, the semantic checks and planning.
//!
//! Planning adds one check that is not configurable: the composed component must stay within
//! [`MAX_COMPONENT_INSTANCES`] (see [`crate::CompositionPlan::component_instances`]).

/// The most instances one WebAssembly component may hold: wasmparser's `MAX_WASM_INSTANCES`,
/// which both wac-graph's encoder (validating what it encodes) and wasmtime (validating what it
/// compiles) apply. Core instances and component instances share the count; a composed graph has
/// no core instances of its own, so it counts its imported instances, its instantiations, the
/// aliases of their exports and its exports.
pub const MAX_COMPONENT_INSTANCES: usize = 1000;

/// The default [`Limits::max_document_bytes`]: 1 MiB.
///
/// The largest graph definitions in this repository (`graphs/`, `compose/tests/azure-compat/`)
/// are about 5 KB, and a graph at [`DEFAULT_MAX_OPERATIONS`] with parameters for every operation
/// is some 30 KB; 1 MiB leaves room for large embedded `schemas`, and bounds what the worst
/// document costs to load: about a second in a debug build (1 MiB of flow collections nested to
/// the depth limit: the scan, the YAML parser, the JSON conversion and the schema check).
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// The default [`Limits::max_nesting_depth`]: 32 levels.
///
/// A graph definition nests 5 levels of collections at its deepest (the document, the
/// `moduleConfigurations` list, one configuration, its `parameters`, one parameter); 32 leaves
/// room for flow-style values. It is below the 128 levels at which the YAML deserializer
/// (serde_yaml_ng) gives up, so a deep document gets this limit's message rather than that
/// library's. And it bounds the YAML parser's work, which grows with the nesting depth for every
/// token, so that it is linear in the size of the text: before this limit, 100,000 levels of
/// `{a: ` (400 KB) kept serde_yaml_ng busy for 46 s before it reported its recursion limit; the
/// scan refuses them in 0.1 s.
pub const DEFAULT_MAX_NESTING_DEPTH: usize = 32;

/// The default [`Limits::max_operations`]: 64 operations.
///
/// Two ceilings bound the operations of one graph, and this is the lower:
///
/// - **What the host instantiates: 64.** The host's pooling allocator
///   (`host/runtime/src/engine.rs`, `max_core_instances_per_component(256)`) admits at most 256
///   core module instances in one graph, and every component that scripts/build-components.sh
///   builds (the sample operators and the source, sink and concatenate plumbing) instantiates 4
///   core modules: its main module, the WASI adapter, the shim and the fixup module. 256 / 4 = 64.
///   Measured: 62 maps of the temperature sample between a source and a sink (64 operations)
///   compose and run; one map more composes but the host refuses to instantiate it ("contains
///   260 core module instances, which exceeds the configured maximum of 256"). Operators with
///   more core modules (a componentize-py build has 14) lower what the host runs, and the host
///   says so when it loads the graph.
/// - **What a component holds: 164.** Composition adds per operation one instantiation, one alias
///   of the interface it serves and one export of that alias (3 instances), plus, for an
///   operator, one imported instance for each of `logger`, `metrics` and `state-store` it imports
///   (up to 3): at most 6. The imports every operation shares (`types`, the WASI interfaces)
///   are counted once: 12 with the sample modules. (1000 − 12) / 6 = 164 operations fit within
///   [`MAX_COMPONENT_INSTANCES`] even when every operator imports all three.
///
/// A host configured for larger graphs can raise the limit up to the second ceiling; beyond it,
/// planning fails (before encoding) with the count of instances the component would need.
pub const DEFAULT_MAX_OPERATIONS: usize = 64;

/// How large a graph definition may be, checked before the work each bound protects.
///
/// Build one from the defaults and change the fields that need it:
/// `Limits { max_operations: 100, ..Limits::default() }`, then pass it to
/// [`load_graph_with`](crate::load_graph_with) or
/// [`parse_graph_with`](crate::parse_graph_with). [`load_graph`](crate::load_graph)
/// and [`parse_graph`](crate::parse_graph) use [`Limits::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The most bytes of YAML accepted ([`DEFAULT_MAX_DOCUMENT_BYTES`]); checked before the file
    /// is read (from its metadata) and again on the text, so a huge file is never parsed.
    pub max_document_bytes: usize,
    /// The deepest nesting of collections (block or flow) accepted ([`DEFAULT_MAX_NESTING_DEPTH`]);
    /// checked by a linear scan of the text before the YAML parser runs. Above 128 it no longer
    /// matters: the YAML deserializer stops at 128 levels on its own (with a less helpful
    /// message).
    pub max_nesting_depth: usize,
    /// The most entries of `operations` accepted ([`DEFAULT_MAX_OPERATIONS`]); checked right
    /// after parsing, before the schema check, validation and planning.
    pub max_operations: usize,
}

impl Limits {
    /// The limits [`load_graph`](crate::load_graph) and [`parse_graph`](crate::parse_graph)
    /// apply: [`DEFAULT_MAX_DOCUMENT_BYTES`], [`DEFAULT_MAX_NESTING_DEPTH`] and
    /// [`DEFAULT_MAX_OPERATIONS`].
    pub const DEFAULT: Limits = Limits {
        max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
        max_nesting_depth: DEFAULT_MAX_NESTING_DEPTH,
        max_operations: DEFAULT_MAX_OPERATIONS,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// How deeply a YAML text nests, as [`nesting`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Nesting {
    /// The deepest nesting of collections anywhere in the text.
    pub max: usize,
    /// Where the nesting first went deeper than the limit given to [`nesting`]: 1-based line and
    /// column of the token that opened the collection one level too deep.
    pub first_over: Option<(usize, usize)>,
}

/// Measures how deeply `text` nests collections, without parsing it, in time linear in its length
/// and without recursion.
///
/// The scan follows the tokenizer of libyaml (the C library, translated to Rust as
/// unsafe-libyaml, that serde_yaml_ng parses with): it skips what libyaml skips (comments,
/// quoted, plain and block scalars, tags, anchors) by libyaml's own rules, and counts what opens
/// a collection: `[` and `{` (flow collections), and a block sequence or mapping starting at a
/// deeper indentation (libyaml's indentation stack) or a sequence written at its key's
/// indentation. Where libyaml would stop with an error, the scan stops too, since nothing after it
/// is parsed; where the text is merely odd, it goes on. For a document libyaml parses, the result
/// is the depth of the collections it builds (aliases aside, which repeat nodes without nesting
/// the text).
pub(crate) fn nesting(text: &str, limit: usize) -> Nesting {
    let mut scanner = Scanner::new(text, limit);
    scanner.run();
    Nesting {
        max: scanner.max,
        first_over: scanner.first_over,
    }
}

/// What kind of block collection an indentation level opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sequence,
    Mapping,
}

/// One entry of libyaml's indentation stack: a block collection at `column`.
#[derive(Debug, Clone, Copy)]
struct Level {
    column: usize,
    kind: Kind,
    /// A mapping whose current value is a sequence written at the mapping's own indentation
    /// (`key:` then `- item` lines at the column of `key`): one more level without an indent.
    indentless: bool,
}

/// A token that may turn out to be a mapping's key (libyaml's "simple key"): at flow level 0 a
/// block mapping's (which opens an indentation level), inside a flow sequence a single-pair
/// mapping's (`[k: v]`, which opens a level too).
#[derive(Debug, Clone, Copy)]
struct SimpleKey {
    line: usize,
    column: usize,
    index: usize,
}

impl SimpleKey {
    /// libyaml's `stale_simple_keys`: a key must end on its line and within 1024 characters.
    /// Position only grows, so checking when the key is used is checking at every token.
    fn fresh(self, line: usize, index: usize) -> bool {
        self.line == line && self.index + 1024 >= index
    }
}

/// One open flow collection.
#[derive(Debug, Clone, Copy)]
struct Flow {
    /// `[` rather than `{`.
    sequence: bool,
    /// The possible simple key at this level.
    key: Option<SimpleKey>,
    /// The deepest nesting inside `key` so far (collections in a key such as `[a]: b`).
    key_peak: usize,
    /// In a sequence, a single-pair mapping (`k: v` or `? k`) is open in the current entry.
    pair: bool,
    /// The deepest nesting inside this collection so far.
    peak: usize,
}

/// The scan's state: a cursor on the text and the part of libyaml's scanner state that decides
/// what the next characters mean.
struct Scanner<'a> {
    text: &'a str,
    /// Byte offset of the current character.
    pos: usize,
    /// Byte offset where scanning ends: the text's end, or the first character libyaml's reader
    /// refuses (control characters), since the parser cannot get past it.
    end: usize,
    /// Characters before `pos` (libyaml's `mark.index`, for the 1024-character simple-key rule).
    index: usize,
    /// 0-based line and column (in characters) of `pos`.
    line: usize,
    column: usize,
    /// The open flow collections (libyaml's `flow_level` is their number).
    flows: Vec<Flow>,
    /// How many of them have a single-pair mapping open.
    pairs: usize,
    levels: Vec<Level>,
    indentless: usize,
    simple_key_allowed: bool,
    key: Option<SimpleKey>,
    /// Flow collections are open inside `key`: their depth is counted in `deferred` until the
    /// key is resolved, since a key may insert a mapping below them (`[a]: b`) or end the
    /// indentless sequence above them.
    deferring: bool,
    deferred: usize,
    /// Where the deferred depth first went over `limit - 1`, `limit` and `limit + 1`: the place
    /// to report once the key's adjustment (+1, 0, -1) is known.
    deferred_over: [Option<(usize, usize)>; 3],
    /// The last token at flow level 0 was a block mapping's `?` or `:` (possibly followed by an
    /// anchor or a tag): a `-` at the mapping's indentation now starts an indentless sequence,
    /// the key or value libyaml's parser expects.
    after_value: bool,
    limit: usize,
    max: usize,
    first_over: Option<(usize, usize)>,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Blank, line break or the end (`'\0'` stands for the end).
fn is_blankz(c: char) -> bool {
    is_blank(c) || is_breakz(c)
}

fn is_breakz(c: char) -> bool {
    is_break(c) || c == '\0'
}

/// The characters libyaml's reader accepts (YAML 1.1 `c-printable`).
fn is_allowed(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Characters of an anchor or alias name in libyaml.
fn is_alpha(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Characters of a tag in libyaml; `verbatim` (`!<…>`) also allows `,`, `[` and `]`.
fn is_uri_char(c: char, verbatim: bool) -> bool {
    is_alpha(c) || ";/?:@&=+$.%!~*'()".contains(c) || verbatim && ",[]".contains(c)
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str, limit: usize) -> Self {
        // libyaml's reader drops a leading byte order mark and stops at a refused character.
        let start = if text.starts_with('\u{FEFF}') {
            '\u{FEFF}'.len_utf8()
        } else {
            0
        };
        let end = text[start..]
            .char_indices()
            .find(|(_, c)| !is_allowed(*c))
            .map_or(text.len(), |(i, _)| start + i);
        Scanner {
            text,
            pos: start,
            end,
            index: 0,
            line: 0,
            column: 0,
            flows: Vec::new(),
            pairs: 0,
            levels: Vec::new(),
            indentless: 0,
            simple_key_allowed: true,
            key: None,
            deferring: false,
            deferred: 0,
            deferred_over: [None; 3],
            after_value: false,
            limit,
            max: 0,
            first_over: None,
        }
    }

    /// The character at byte offset `pos` and its length; `('\0', 0)` at the end.
    fn char_at(&self, pos: usize) -> (char, usize) {
        if pos >= self.end {
            return ('\0', 0);
        }
        let byte = self.text.as_bytes()[pos];
        if byte.is_ascii() {
            return (byte as char, 1);
        }
        // `pos` is always on a character boundary: it only moves by whole characters.
        let c = self.text[pos..].chars().next().unwrap_or('\0');
        (c, c.len_utf8())
    }

    /// The current character; `'\0'` at the end.
    fn c(&self) -> char {
        self.char_at(self.pos).0
    }

    /// The character `n` characters ahead; `'\0'` past the end.
    fn peek(&self, n: usize) -> char {
        let mut pos = self.pos;
        for _ in 0..n {
            let (c, len) = self.char_at(pos);
            if c == '\0' {
                return c;
            }
            pos += len;
        }
        self.char_at(pos).0
    }

    fn advance(&mut self) {
        let (_, len) = self.char_at(self.pos);
        if len > 0 {
            self.pos += len;
            self.index += 1;
            self.column += 1;
        }
    }

    /// Consumes one line break (`\r\n` is one).
    fn skip_line(&mut self) {
        if self.c() == '\r' && self.peek(1) == '\n' {
            self.advance();
        }
        self.advance();
        self.line += 1;
        self.column = 0;
    }

    /// libyaml's current indentation: the column of the innermost block collection, -1 for none.
    fn indent(&self) -> isize {
        self.levels.last().map_or(-1, |l| l.column as isize)
    }

    fn depth(&self) -> usize {
        self.flows.len() + self.pairs + self.levels.len() + self.indentless
    }

    /// Records the depth after a collection opened at 0-based `line`, `column`.
    fn opened(&mut self, line: usize, column: usize) {
        self.record(self.depth(), line, column);
    }

    /// Records that the text nests `depth` levels at 0-based `line`, `column`.
    fn record(&mut self, depth: usize, line: usize, column: usize) {
        if let Some(flow) = self.flows.last_mut() {
            flow.peak = flow.peak.max(depth);
            if self.deferring {
                self.deferred = self.deferred.max(depth);
                for (i, over) in self.deferred_over.iter_mut().enumerate() {
                    // depth > limit - 1 + i, without going below 0.
                    if over.is_none() && depth + 1 > self.limit.saturating_add(i) {
                        *over = Some((line + 1, column + 1));
                    }
                }
                return;
            }
        }
        self.max = self.max.max(depth);
        if depth > self.limit && self.first_over.is_none() {
            self.first_over = Some((line + 1, column + 1));
        }
    }

    /// The block-level key is resolved (`adjust` is +1 if it inserted a mapping below what it
    /// nests, -1 if it ended an indentless sequence above it) or is no key after all (0): what
    /// its flow collections nest is recorded, adjusted.
    fn settle_key(&mut self, adjust: isize) {
        if !std::mem::take(&mut self.deferring) {
            return;
        }
        let deferred = std::mem::take(&mut self.deferred);
        let over = std::mem::take(&mut self.deferred_over);
        if deferred > 0 {
            self.max = self.max.max(deferred.saturating_add_signed(adjust));
            if self.first_over.is_none() {
                self.first_over = over[(1 - adjust) as usize];
            }
        }
    }

    /// A mapping was inserted below a key that turned out to be one (at 0-based `line`,
    /// `column`): whatever the key nests is one level deeper than it was counted.
    fn key_resolved(&mut self, key_peak: usize, line: usize, column: usize) {
        if key_peak > 0 {
            self.record(key_peak + 1, line, column);
        }
    }

    /// At a `---` or `...` line start.
    fn at_document_indicator(&self) -> bool {
        self.column == 0
            && (1..3).all(|n| self.peek(n) == self.c())
            && matches!(self.c(), '-' | '.')
            && is_blankz(self.peek(3))
    }

    /// libyaml's `roll_indent`: a block collection of `kind` starts at `column` if that is deeper
    /// than the current indentation. Returns whether it did.
    fn roll(&mut self, line: usize, column: usize, kind: Kind) -> bool {
        if !self.flows.is_empty() || self.indent() >= column as isize {
            return false;
        }
        self.levels.push(Level {
            column,
            kind,
            indentless: false,
        });
        self.opened(line, column);
        true
    }

    /// A key or value of the mapping at `column` (`?`, `:` or a simple key there) ends the
    /// indentless sequence of its previous value, as libyaml's parser does.
    /// Returns whether it did.
    fn end_indentless(&mut self, column: usize) -> bool {
        let Some(top) = self.levels.last_mut().filter(|l| l.indentless && l.column == column) else {
            return false;
        };
        top.indentless = false;
        self.indentless -= 1;
        true
    }

    /// libyaml's `unroll_indent`: block collections deeper than `column` end.
    fn unroll(&mut self, column: isize) {
        if !self.flows.is_empty() {
            return;
        }
        while self.indent() > column {
            if let Some(level) = self.levels.pop() {
                if level.indentless {
                    self.indentless -= 1;
                }
            }
        }
    }

    /// libyaml's `save_simple_key`: the token here may be a key, at the current flow level.
    fn save_key(&mut self) {
        if !self.simple_key_allowed {
            return;
        }
        let key = Some(SimpleKey {
            line: self.line,
            column: self.column,
            index: self.index,
        });
        match self.flows.last_mut() {
            Some(flow) => (flow.key, flow.key_peak) = (key, 0),
            None => {
                self.settle_key(0);
                self.key = key;
            }
        }
    }

    /// libyaml's `remove_simple_key`, at the current flow level.
    fn remove_key(&mut self) {
        match self.flows.last_mut() {
            Some(flow) => flow.key = None,
            None => {
                self.settle_key(0);
                self.key = None;
            }
        }
    }

    /// A key token in the current flow collection: in a sequence, it opens a single-pair mapping
    /// (libyaml's parser, `parse_flow_sequence_entry`), at the key's position.
    /// Returns whether it did.
    fn flow_key(&mut self, line: usize, column: usize) -> bool {
        let Some(flow) = self.flows.last_mut().filter(|f| f.sequence && !f.pair) else {
            return false;
        };
        flow.pair = true;
        self.pairs += 1;
        self.opened(line, column);
        true
    }

    /// The end of an entry of the current flow collection (`,` or its end) ends its pair.
    fn end_flow_entry(&mut self) {
        if let Some(flow) = self.flows.last_mut().filter(|f| f.pair) {
            flow.pair = false;
            self.pairs -= 1;
        }
    }

    /// Runs libyaml's token loop (`fetch_next_token`) to the end of the text or the first error.
    fn run(&mut self) {
        loop {
            self.skip_to_token();
            if self.key.is_some_and(|k| !k.fresh(self.line, self.index)) {
                self.settle_key(0);
                self.key = None;
            }
            self.unroll(self.column as isize);
            let c = self.c();
            if c == '\0' {
                self.settle_key(0);
                return;
            }
            let block_entry = c == '-' && is_blankz(self.peek(1));
            let after_value = std::mem::take(&mut self.after_value);
            let ok = if self.column == 0 && c == '%' {
                // A directive: nothing on its line opens a collection.
                self.remove_key();
                self.simple_key_allowed = false;
                while !is_breakz(self.c()) {
                    self.advance();
                }
                true
            } else if self.at_document_indicator() {
                self.unroll(-1);
                self.remove_key();
                self.simple_key_allowed = false;
                (0..3).for_each(|_| self.advance());
                true
            } else {
                self.token(c, block_entry, after_value)
            };
            if !ok {
                self.settle_key(0);
                return;
            }
        }
    }

    /// libyaml's `scan_to_next_token`: spaces, comments and line breaks.
    fn skip_to_token(&mut self) {
        loop {
            if self.column == 0 && self.c() == '\u{FEFF}' {
                self.advance();
            }
            while self.c() == ' ' || (!self.flows.is_empty() || !self.simple_key_allowed) && self.c() == '\t' {
                self.advance();
            }
            if self.c() == '#' {
                while !is_breakz(self.c()) {
                    self.advance();
                }
            }
            if !is_break(self.c()) {
                return;
            }
            self.skip_line();
            if self.flows.is_empty() {
                self.simple_key_allowed = true;
            }
        }
    }

    /// One token starting with `c`; false where libyaml stops with an error.
    fn token(&mut self, c: char, block_entry: bool, after_value: bool) -> bool {
        let (line, column) = (self.line, self.column);
        let next = self.peek(1);
        match c {
            '[' | '{' => {
                self.save_key();
                if self.flows.is_empty() && self.key.is_some() {
                    self.deferring = true;
                }
                self.flows.push(Flow {
                    sequence: c == '[',
                    key: None,
                    key_peak: 0,
                    pair: false,
                    peak: 0,
                });
                self.simple_key_allowed = true;
                self.opened(line, column);
                self.advance();
            }
            ']' | '}' => {
                self.remove_key();
                self.end_flow_entry();
                if let Some(closed) = self.flows.pop() {
                    // What it nested counts for its parent, and for a key it may be part of.
                    if let Some(parent) = self.flows.last_mut() {
                        parent.peak = parent.peak.max(closed.peak);
                        parent.key_peak = parent.key_peak.max(closed.peak);
                    }
                }
                self.simple_key_allowed = false;
                self.advance();
            }
            ',' => {
                self.remove_key();
                self.end_flow_entry();
                self.simple_key_allowed = true;
                self.advance();
            }
            '-' if block_entry => {
                if self.flows.is_empty() && !self.roll(line, column, Kind::Sequence) && after_value {
                    if let Some(top) = self
                        .levels
                        .last_mut()
                        .filter(|l| l.kind == Kind::Mapping && l.column == column && !l.indentless)
                    {
                        top.indentless = true;
                        self.indentless += 1;
                        self.opened(line, column);
                    }
                }
                self.remove_key();
                self.simple_key_allowed = true;
                self.advance();
            }
            '?' if !self.flows.is_empty() || is_blankz(next) => {
                if self.flows.is_empty() && !self.roll(line, column, Kind::Mapping) {
                    self.end_indentless(column);
                }
                self.flow_key(line, column);
                self.remove_key();
                self.simple_key_allowed = self.flows.is_empty();
                self.after_value = self.flows.is_empty();
                self.advance();
            }
            ':' if !self.flows.is_empty() || is_blankz(next) => {
                let (at, index) = (self.line, self.index);
                match self.flows.last_mut() {
                    None => {
                        match self.key {
                            Some(key) => {
                                let adjust = if self.roll(key.line, key.column, Kind::Mapping) {
                                    1
                                } else if self.end_indentless(key.column) {
                                    -1
                                } else {
                                    0
                                };
                                self.settle_key(adjust);
                                self.key = None;
                                self.simple_key_allowed = false;
                            }
                            None => {
                                if !self.roll(line, column, Kind::Mapping) {
                                    self.end_indentless(column);
                                }
                                self.simple_key_allowed = true;
                            }
                        }
                        self.after_value = true;
                    }
                    Some(flow) => {
                        let peak = flow.key_peak;
                        if let Some(key) = flow.key.take().filter(|k| k.fresh(at, index)) {
                            if self.flow_key(key.line, key.column) {
                                self.key_resolved(peak, key.line, key.column);
                            }
                        }
                        self.simple_key_allowed = false;
                    }
                }
                self.advance();
            }
            '*' | '&' => {
                self.save_key();
                self.simple_key_allowed = false;
                self.advance();
                while is_alpha(self.c()) {
                    self.advance();
                }
                // An anchor still belongs to the node after a `:`; an alias is that node.
                self.after_value = after_value && c == '&';
            }
            '!' => {
                self.save_key();
                self.simple_key_allowed = false;
                let verbatim = next == '<';
                self.advance();
                if verbatim {
                    self.advance();
                }
                while is_uri_char(self.c(), verbatim) {
                    self.advance();
                }
                if verbatim {
                    if self.c() != '>' {
                        return false;
                    }
                    self.advance();
                }
                self.after_value = after_value;
            }
            '|' | '>' if self.flows.is_empty() => {
                self.remove_key();
                self.simple_key_allowed = true;
                return self.block_scalar();
            }
            '\'' | '"' => {
                self.save_key();
                self.simple_key_allowed = false;
                return self.quoted_scalar(c);
            }
            _ if self.starts_plain(c, next) => {
                self.save_key();
                self.simple_key_allowed = false;
                return self.plain_scalar();
            }
            // "found character that cannot start any token"
            _ => return false,
        }
        true
    }

    /// Whether `c` (followed by `next`) starts a plain scalar, as libyaml decides it.
    fn starts_plain(&self, c: char, next: char) -> bool {
        !(is_blankz(c) || "-?:,[]{}#&*!|>'\"%@`".contains(c))
            || c == '-' && !is_blank(next)
            || self.flows.is_empty() && (c == '?' || c == ':') && !is_blankz(next)
    }

    /// libyaml's `scan_plain_scalar`: the scalar may go on over several lines.
    fn plain_scalar(&mut self) -> bool {
        let indent = self.indent() + 1;
        let mut leading_blanks = false;
        loop {
            if self.at_document_indicator() || self.c() == '#' {
                break;
            }
            while !is_blankz(self.c()) {
                let (c, next) = (self.c(), self.peek(1));
                if !self.flows.is_empty() && c == ':' && ",?[]{}".contains(next) {
                    return false; // "found unexpected ':'"
                }
                if c == ':' && is_blankz(next) || !self.flows.is_empty() && ",[]{}".contains(c) {
                    break;
                }
                self.advance();
            }
            if !(is_blank(self.c()) || is_break(self.c())) {
                break;
            }
            while is_blank(self.c()) || is_break(self.c()) {
                if is_blank(self.c()) {
                    if leading_blanks && (self.column as isize) < indent && self.c() == '\t' {
                        return false; // "found a tab character that violates indentation"
                    }
                    self.advance();
                } else {
                    self.skip_line();
                    leading_blanks = true;
                }
            }
            if self.flows.is_empty() && (self.column as isize) < indent {
                break;
            }
        }
        if leading_blanks {
            self.simple_key_allowed = true;
        }
        true
    }

    /// libyaml's `scan_flow_scalar`: a single- (`''` escapes a quote) or double-quoted (`\`
    /// escapes) scalar, over any number of lines.
    fn quoted_scalar(&mut self, quote: char) -> bool {
        let single = quote == '\'';
        self.advance();
        loop {
            if self.at_document_indicator() || self.c() == '\0' {
                return false; // "found unexpected document indicator / end of stream"
            }
            while !is_blankz(self.c()) {
                let (c, next) = (self.c(), self.peek(1));
                if single && c == '\'' && next == '\'' {
                    self.advance();
                    self.advance();
                } else if c == quote {
                    break;
                } else if !single && c == '\\' && is_break(next) {
                    self.advance();
                    self.skip_line();
                    break;
                } else if !single && c == '\\' {
                    self.advance();
                    self.advance();
                } else {
                    self.advance();
                }
            }
            if self.c() == quote {
                self.advance();
                return true;
            }
            while is_blank(self.c()) || is_break(self.c()) {
                if is_blank(self.c()) {
                    self.advance();
                } else {
                    self.skip_line();
                }
            }
        }
    }

    /// libyaml's `scan_block_scalar`: `|` or `>`, its header, then every line indented at least
    /// as much as the first one (or the explicit indentation).
    fn block_scalar(&mut self) -> bool {
        self.advance();
        let mut increment = 0isize;
        let digit = |c: char| c.to_digit(10).map(|d| d as isize);
        if matches!(self.c(), '+' | '-') {
            self.advance();
            if let Some(d) = digit(self.c()) {
                if d == 0 {
                    return false;
                }
                increment = d;
                self.advance();
            }
        } else if let Some(d) = digit(self.c()) {
            if d == 0 {
                return false;
            }
            increment = d;
            self.advance();
            if matches!(self.c(), '+' | '-') {
                self.advance();
            }
        }
        while is_blank(self.c()) {
            self.advance();
        }
        if self.c() == '#' {
            while !is_breakz(self.c()) {
                self.advance();
            }
        }
        if !is_breakz(self.c()) {
            return false; // "did not find expected comment or line break"
        }
        if is_break(self.c()) {
            self.skip_line();
        }
        let parent = self.indent();
        let mut indent = match increment {
            0 => 0,
            n if parent >= 0 => parent + n,
            n => n,
        };
        if !self.block_scalar_breaks(&mut indent, parent) {
            return false;
        }
        while self.column as isize == indent && self.c() != '\0' {
            while !is_breakz(self.c()) {
                self.advance();
            }
            if self.c() == '\0' {
                break;
            }
            self.skip_line();
            if !self.block_scalar_breaks(&mut indent, parent) {
                return false;
            }
        }
        true
    }

    /// libyaml's `scan_block_scalar_breaks`: empty lines and indentation; fixes the
    /// indentation from the first non-empty line when the header gave none.
    fn block_scalar_breaks(&mut self, indent: &mut isize, parent: isize) -> bool {
        let mut max_indent = 0isize;
        loop {
            while (*indent == 0 || (self.column as isize) < *indent) && self.c() == ' ' {
                self.advance();
            }
            max_indent = max_indent.max(self.column as isize);
            if (*indent == 0 || (self.column as isize) < *indent) && self.c() == '\t' {
                return false; // "found a tab character where an indentation space is expected"
            }
            if !is_break(self.c()) {
                break;
            }
            self.skip_line();
        }
        if *indent == 0 {
            *indent = max_indent.max(parent + 1).max(1);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(text: &str) -> usize {
        nesting(text, usize::MAX).max
    }

    /// The nesting of a parsed value (what serde_yaml_ng's recursion limit counts).
    fn value_depth(value: &serde_yaml_ng::Value) -> usize {
        use serde_yaml_ng::Value;
        // Iterative, like the code under test: (value, depth of its parent).
        let mut stack = vec![(value, 0usize)];
        let mut max = 0;
        while let Some((v, d)) = stack.pop() {
            match v {
                Value::Sequence(items) => {
                    max = max.max(d + 1);
                    stack.extend(items.iter().map(|i| (i, d + 1)));
                }
                Value::Mapping(map) => {
                    max = max.max(d + 1);
                    for (k, v) in map {
                        stack.push((k, d + 1));
                        stack.push((v, d + 1));
                    }
                }
                Value::Tagged(t) => stack.push((&t.value, d)),
                _ => {}
            }
        }
        max
    }

    #[test]
    fn block_and_flow_collections_count_one_level_each() {
        assert_eq!(depth(""), 0);
        assert_eq!(depth("just a scalar\n"), 0);
        assert_eq!(depth("a: b\n"), 1);
        assert_eq!(depth("a:\n  b:\n    c: d\n"), 3);
        assert_eq!(depth("- - - x\n"), 3);
        assert_eq!(depth("a:\n- b\n- c\n"), 2, "an indentless sequence is a level");
        assert_eq!(depth("a:\n- b: 1\n  c: 2\nd: 3\n"), 3);
        assert_eq!(depth("a: [b, {c: [d]}]\n"), 4);
        assert_eq!(depth("? [a, [b]]\n: c\n"), 3);
        assert_eq!(depth("a: !t [x]\nb: &n {y: 1}\n"), 2);
    }

    #[test]
    fn scalars_comments_and_tags_hide_their_brackets() {
        assert_eq!(depth("a: '[[[[' # [[[[\n"), 1);
        assert_eq!(depth("a: \"{{\\\"{{\"\n"), 1);
        assert_eq!(depth("a: it's [[[ plain\n  and [[[ more\n"), 1);
        assert_eq!(depth("a: |\n  [[[[\n  {{{{\nb: x\n"), 1);
        assert_eq!(depth("a: >-\n   [[[\n\n   ]]]\n"), 1);
        assert_eq!(depth("a: !<tag:[x]> b\n"), 1);
        assert_eq!(depth("a: 'multi\n  line [[[ ''quoted'''\n"), 1);
    }

    #[test]
    fn brackets_hidden_only_where_libyaml_hides_them() {
        // A quote inside a plain scalar is not one; the next line is structure.
        assert_eq!(depth("a: b 'c\nd: [[[x]]]\n"), 4);
        // In flow context a plain scalar ends at a bracket.
        assert_eq!(depth("[a'b, [c]]\n"), 2);
        // A comment ends at any YAML line break, NEL included.
        assert_eq!(depth("# x\u{85}[[[x]]]\n"), 3);
        // Tags do not take brackets unless verbatim.
        assert_eq!(depth("[!t[x]]\n"), 2);
    }

    #[test]
    fn the_first_collection_over_the_limit_is_located() {
        let n = nesting("a:\n  b: [[[x]]]\n", 3);
        assert_eq!(n.max, 5);
        assert_eq!(n.first_over, Some((2, 7)));
        assert_eq!(nesting("a: [b]\n", 2).first_over, None);
        // Inside what may be a key, the place is the collection's, not the key's.
        assert_eq!(nesting(&"{a: ".repeat(100), 32).first_over, Some((1, 129)));
        assert_eq!(nesting("[[[x]]]: y\n", 3).first_over, Some((1, 3)));
    }

    #[test]
    fn a_hundred_thousand_levels_are_measured() {
        for text in [
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            "{a: ".repeat(100_000),
            format!("{}x\n", "- ".repeat(100_000)),
            format!("{}x\n", "? ".repeat(100_000)),
        ] {
            assert_eq!(depth(&text), 100_000);
        }
    }

    #[test]
    fn a_refused_character_ends_the_scan() {
        assert_eq!(depth("a: b\u{1}[[[["), 1);
    }

    /// A small deterministic generator (no dependency for randomness).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % n as u64) as usize
        }
    }

    /// Fragments of YAML that exercise every rule of the scan: flow and block indicators,
    /// quoted, plain and block scalars over several lines, comments, tags, anchors, keys that are
    /// collections, pairs in flow sequences, every kind of line break, document markers.
    const PIECES: [&str; 64] = [
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        ": ",
        "- ",
        "? ",
        "a",
        "b c",
        "'q'",
        "'it''s'",
        "\"d\\\"q\"",
        "\"x\\\n y\"",
        "#c [",
        " ",
        "  ",
        "\n",
        "\n  ",
        "\n    ",
        "\t",
        "|\n",
        ">-\n",
        "|2\n",
        "&x ",
        "!t ",
        "!<u> ",
        "\r\n",
        "\u{85}",
        "---\n",
        "...\n",
        "'[' ",
        "\"{\" ",
        "a:b",
        "-x",
        "k: v\n",
        "é",
        "\u{2028}",
        ":x",
        "[a]: ",
        "{a: b}: ",
        "? - ",
        "- ? ",
        ": - ",
        "\n- ",
        "\n  - ",
        "!t\n",
        "&a\n",
        "a: |-\n  x\n",
        "\n   ",
        "'a\n b'",
        "x\n  y",
        "- - ",
        "? ? ",
        "a:\n",
        "[? a]",
        "[a: b, c]",
        "{? x}",
        "\n-\n",
        "!t [",
        "&a {",
        "  - ",
        "-\n",
    ];

    fn random_text(rng: &mut Lcg, pieces: usize) -> String {
        (0..pieces).map(|_| PIECES[rng.next(PIECES.len())]).collect()
    }

    /// For every text libyaml parses, the scan measures exactly the nesting of what it builds.
    #[test]
    fn the_scan_agrees_with_the_parser() {
        let mut rng = Lcg(7);
        let mut parsed = 0;
        for _ in 0..20_000 {
            let pieces = 1 + rng.next(24);
            let text = random_text(&mut rng, pieces);
            if let Ok(value) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text) {
                parsed += 1;
                let d = value_depth(&value);
                assert_eq!(depth(&text), d, "{text:?}");
                assert_eq!(nesting(&text, d).first_over, None, "{text:?}");
                if d > 0 {
                    assert!(nesting(&text, d - 1).first_over.is_some(), "{text:?}");
                }
            }
        }
        assert!(parsed > 2_000, "only {parsed} texts parsed: the generator needs tuning");
    }

    /// Whatever precedes a deep part, when the parser reaches it (and stops at its recursion
    /// limit of 128), the scan has seen it too: no text hides nesting from the scan.
    #[test]
    fn no_prefix_hides_deep_nesting() {
        let mut rng = Lcg(11);
        let deep = ["[".repeat(200), "{a: ".repeat(200), "- ".repeat(200), "? ".repeat(200)];
        let mut reached = 0;
        for _ in 0..10_000 {
            let pieces = rng.next(12);
            let mut text = random_text(&mut rng, pieces);
            text.push_str(&deep[rng.next(deep.len())]);
            let pieces = rng.next(4);
            text.push_str(&random_text(&mut rng, pieces));
            let Err(e) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text) else {
                continue;
            };
            if e.to_string().starts_with("recursion limit exceeded") {
                reached += 1;
                assert!(depth(&text) > 128, "{text:?}: scan {}, parser over 128", depth(&text));
            }
        }
        assert!(reached > 1_000, "only {reached} texts reached the deep part");
    }
}
