//! The names that tie a composed component to the host: the one place that writes and reads them.
//!
//! - Operation `i` (its 0-based position in the graph's `operations`) is exported as
//!   `op{i}-{slug}`, where the slug is the kebab-case form of the operation's name ([`slug`],
//!   [`export_name`]); just `op{i}` when the name has no letter or digit.
//! - An operator's per-operation imports, through which the host learns which operation called,
//!   are `op{i}-logger`, `op{i}-metrics` and `op{i}-state-store` ([`import_name`],
//!   [`PER_OPERATION_INTERFACES`]).
//! - The host reads `i` back from any of these names with [`operation_index`].
//!
//! Every other import of a composed component is shared by all operations and keeps its
//! interface name.

/// Host interfaces that get one composition import per operation, `op{i}-<interface>`, so the
/// host knows which operation called: the short names of `wasm-graph:processor/logger`,
/// `…/metrics` and `…/state-store`.
pub const PER_OPERATION_INTERFACES: [&str; 3] = ["logger", "metrics", "state-store"];

/// The kebab-case form of an operation name used in export names: lowercase, every run of
/// characters other than `[a-z0-9]` becomes `-`, trimmed, and each word starting with a digit
/// gets an `x` prefix (component-model names forbid words starting with a digit).
///
/// `module-temperature/map` → `module-temperature-map`; `2nd stage` → `x2nd-stage`.
pub fn slug(name: &str) -> String {
    let lower = name.to_lowercase();
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    for c in lower.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            current.push(c);
        } else if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
        .into_iter()
        .map(|w| {
            if w.starts_with(|c: char| c.is_ascii_digit()) {
                format!("x{w}")
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The export name of operation `index` named `name`: `op{index}-{slug}` (just `op{index}` when
/// the name has no letters or digits at all).
pub fn export_name(index: usize, name: &str) -> String {
    let s = slug(name);
    if s.is_empty() {
        import_prefix(index)
    } else {
        format!("{}-{s}", import_prefix(index))
    }
}

/// The prefix every name of operation `index` starts with: `op{index}`. The manifest records it
/// for operator operations (their per-operation imports are `op{index}-logger`…).
pub fn import_prefix(index: usize) -> String {
    format!("op{index}")
}

/// The composition import through which operation `index` reaches host interface `interface`
/// (one of [`PER_OPERATION_INTERFACES`]): `op{index}-{interface}`, e.g. `op1-logger`.
pub fn import_name(index: usize, interface: &str) -> String {
    format!("{}-{interface}", import_prefix(index))
}

/// The operation index a name of this contract carries: `op3-logger` → `Some(3)`,
/// `op12-state-store` → `Some(12)`, `op0-module-temperature-map` → `Some(0)`, `op4` → `Some(4)`.
///
/// `None` for anything else: a name not starting with `op` and decimal digits (`logger`,
/// `opx-logger`), digits not followed by `-` or the end (`op3logger`), nothing after the `-`
/// (`op3-`), a leading zero (`op03-logger`: no index is written that way, so each index has one
/// spelling), or an index beyond `u32`.
pub fn operation_index(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("op")?;
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let (number, after) = rest.split_at(digits);
    if number.is_empty() || (number.len() > 1 && number.starts_with('0')) {
        return None;
    }
    // After the digits: the end of the name, or `-` and something.
    let ends_well = match after.strip_prefix('-') {
        Some(tail) => !tail.is_empty(),
        None => after.is_empty(),
    };
    if !ends_well {
        return None;
    }
    number.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_is_kebab_case_with_no_word_starting_with_a_digit() {
        assert_eq!(slug("module-temperature/map"), "module-temperature-map");
        assert_eq!(slug("Module_Temperature//Map "), "module-temperature-map");
        assert_eq!(slug("2nd stage/3x"), "x2nd-stage-x3x");
        assert_eq!(slug("  --a--  "), "a");
        assert_eq!(slug("///"), "");
        assert_eq!(slug("Ünïcode op"), "n-code-op");
    }

    #[test]
    fn export_names() {
        assert_eq!(export_name(1, "module-temperature/map"), "op1-module-temperature-map");
        assert_eq!(export_name(0, "source"), "op0-source");
        assert_eq!(export_name(4, "///"), "op4");
        assert_eq!(export_name(12, "2nd stage"), "op12-x2nd-stage");
    }

    #[test]
    fn per_operation_import_names() {
        assert_eq!(import_prefix(7), "op7");
        let names: Vec<String> = PER_OPERATION_INTERFACES.iter().map(|i| import_name(3, i)).collect();
        assert_eq!(names, ["op3-logger", "op3-metrics", "op3-state-store"]);
    }

    #[test]
    fn operation_index_reads_the_names_of_the_contract() {
        assert_eq!(operation_index("op3-logger"), Some(3));
        assert_eq!(operation_index("op12-state-store"), Some(12));
        assert_eq!(operation_index("op0-metrics"), Some(0));
        assert_eq!(operation_index("op6-module-temperature-map"), Some(6));
        assert_eq!(operation_index("op4"), Some(4));
        assert_eq!(operation_index("op4294967295-logger"), Some(u32::MAX));
    }

    #[test]
    fn operation_index_rejects_other_names() {
        for name in [
            "",
            "op",
            "op-logger",
            "logger",
            "opx-logger",
            "op3logger",
            "op3-",
            "op03-logger",
            "op00",
            "Op3-logger",
            "xop3-logger",
            "op+3-logger",
            "op٣-logger",
            "op4294967296-logger",
            "wasm-graph:processor/logger@1.1.0",
        ] {
            assert_eq!(operation_index(name), None, "{name:?}");
        }
    }

    #[test]
    fn every_built_name_reads_back_its_index() {
        for index in [0usize, 1, 9, 10, 99, 1234] {
            for name in ["source", "module-temperature/map", "///", "2nd"] {
                assert_eq!(operation_index(&export_name(index, name)), Some(index as u32), "{name}");
            }
            for interface in PER_OPERATION_INTERFACES {
                assert_eq!(operation_index(&import_name(index, interface)), Some(index as u32));
            }
        }
    }
}
