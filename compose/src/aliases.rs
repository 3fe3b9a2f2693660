//! What YAML aliases make of a document, measured before it is built.
//!
//! An alias (`*name`) repeats the node its anchor (`&name`) marks, and the YAML deserializer
//! expands every repetition: 170 KB of text that refers 50,000 times to a list of 1,000 strings
//! is 50 million values (the fuzz target `graph_yaml` took it past 4 GB), and aliases of
//! aliases nest deeper than the text does (the nesting scan in [`crate::limits`] reads the text,
//! where an alias is one token). So before the document is built, [`measure`] replays it the way
//! the deserializer will, building nothing, and stops at the first node past either bound:
//!
//! - **size**: no more nodes than the text has bytes (and one for the empty document, a null).
//!   A document without aliases needs at least two bytes per node (`[1,1]`: five bytes, three
//!   nodes), so the bound never refuses one, and a document with aliases may expand to no more
//!   than a document of its size could hold without them;
//! - **depth**: collections no deeper than [`Limits::max_nesting_depth`](crate::Limits), the
//!   bound the scan applies to the text (and counted as it counts them: the document's top
//!   collection is level 1, scalars and tags add none).
//!
//! A document the deserializer refuses is left to it: the parse that follows reports the error
//! with its location, as it would without this pass.

use std::cell::Cell;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

/// What the expanded document would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expansion {
    /// More nodes than `limit`.
    TooLarge {
        /// The bound: one node per byte of text, plus one.
        limit: usize,
    },
    /// Nested deeper than `limit`.
    TooDeep {
        /// [`Limits::max_nesting_depth`](crate::Limits).
        limit: usize,
    },
}

/// Replays `text` as the deserializer expands it, counting nodes and depth; the first bound
/// it would cross, if any.
pub(crate) fn measure(text: &str, max_depth: usize) -> Option<Expansion> {
    let state = State {
        max_nodes: text.len() + 1,
        nodes_left: Cell::new(text.len() + 1),
        max_depth,
        exceeded: Cell::new(None),
    };
    // A syntax error ends the replay; the real parse reports it.
    let _ = Node {
        state: &state,
        depth: 0,
    }
    .deserialize(serde_yaml_ng::Deserializer::from_str(text));
    state.exceeded.get()
}

/// The budget shared by every node of one replay.
struct State {
    max_nodes: usize,
    nodes_left: Cell<usize>,
    max_depth: usize,
    exceeded: Cell<Option<Expansion>>,
}

/// One node of the replay, at `depth` (the document's top node is at 1; a tag's value at the
/// tag's depth).
#[derive(Clone, Copy)]
struct Node<'a> {
    state: &'a State,
    depth: usize,
}

impl Node<'_> {
    /// Counts this node (a collection's depth against the limit); an error, which ends the
    /// replay, once a bound is crossed.
    fn count<E: de::Error>(self, collection: bool) -> Result<(), E> {
        let s = self.state;
        let exceeded = match s.nodes_left.get().checked_sub(1) {
            None => Some(Expansion::TooLarge { limit: s.max_nodes }),
            Some(left) => {
                s.nodes_left.set(left);
                (collection && self.depth > s.max_depth).then_some(Expansion::TooDeep { limit: s.max_depth })
            }
        };
        match exceeded {
            None => Ok(()),
            Some(e) => {
                s.exceeded.set(Some(e));
                Err(E::custom("the expanded document exceeds a limit"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(Node {
            depth: self.depth + 1,
            ..self
        })
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.count(false)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.count(false)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.count(false)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.count(false)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.count(false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.count(false)
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.count(false)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.count(true)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.count(true)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    /// A tagged node (`!tag value`): the tag (a string), then the value at the same depth.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let ((), value) = data.variant_seed(self)?;
        value.newtype_variant_seed(Node {
            depth: self.depth - 1,
            ..self
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_without_aliases_are_within_both_bounds() {
        for text in ["[1,1,1,1,1,1]", "a: {b: [c, d]}\n", "- - - x\n", "!t {a: 1}", "~", ""] {
            assert_eq!(measure(text, 4), None, "{text}");
        }
    }

    /// Found with the fuzz target `graph_yaml`, whose memory limit stopped a 170 KB document
    /// (tests/fuzz/corpus/graph_yaml/alias-expansion.yaml is the case in a graph): a few
    /// kilobytes of aliases expand to millions of nodes.
    #[test]
    fn aliases_that_expand_past_the_text_are_refused_before_they_are_built() {
        let big = format!("[{}]", vec!["x"; 1000].join(","));
        let text = format!("a: &a {big}\nb: [{}]\n", vec!["*a"; 50_000].join(","));
        assert_eq!(measure(&text, 32), Some(Expansion::TooLarge { limit: text.len() + 1 }));
        // A few repetitions of a small anchor (shared parameters, say) are fine.
        let shared = "p: &p {name: x, default: '1'}\nq: *p\nr: *p\n";
        assert_eq!(measure(shared, 32), None);
    }

    #[test]
    fn aliases_nesting_past_the_depth_limit_are_refused() {
        let text = "a: &a [[[x]]]\nb: &b [[[*a]]]\nc: [[[*b]]]\n";
        assert_eq!(measure(text, 9), Some(Expansion::TooDeep { limit: 9 }));
        assert_eq!(
            measure(text, 10),
            None,
            "10 levels: the document, then three brackets each of c, b and a"
        );
    }

    #[test]
    fn syntax_errors_are_left_to_the_parse() {
        assert_eq!(measure("a: [", 32), None);
    }
}
