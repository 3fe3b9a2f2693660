//! The `faulty` test module: a map and an accumulate that misbehave on request, so the
//! runtime's fault handling (operator errors, guest panics, traps, runaway loops, memory
//! exhaustion, failing or trapping `init`) is tested against a real component instead of a
//! hand-made one. It is not a sample and no shipped graph uses it.
//!
//! An item asks for a fault with a top-level string `"fault"` in its JSON payload, e.g.
//! `{"fault":"panic"}`; see [`Fault`]. Items that ask for nothing pass (map) or are counted
//! (accumulate). `init` misbehaves through the configuration property `init`; see [`InitMode`].
//!
//! Only the decisions (which fault an item asks for, what `init` must do, the count payload)
//! live here and are tested natively; the faults themselves are in the wasm32-only `component`
//! module, since a native test cannot usefully trap, loop forever or exhaust memory.

use serde_json::Value;

/// The payload key an item names its fault with.
pub const FAULT_KEY: &str = "fault";
/// The configuration property that decides what `init` does.
pub const INIT_KEY: &str = "init";
/// The configuration property that decides whether the map reads payloads; see [`PayloadMode`].
pub const PAYLOAD_KEY: &str = "payload";
/// The error message of [`Fault::Err`], exactly (tests match on it).
pub const ERR_MESSAGE: &str = "faulty: asked to fail";
/// The panic message of [`Fault::Panic`].
pub const PANIC_MESSAGE: &str = "faulty: asked to panic";
/// The panic message of `init` with `init = trap`.
pub const INIT_PANIC_MESSAGE: &str = "faulty: asked to trap in init";

/// A misbehaviour an item can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `"err"`: `process` returns `Err` with [`ERR_MESSAGE`] (the graph keeps running).
    Err,
    /// `"panic"`: a Rust panic, which with `panic = "abort"` ends in a trap.
    Panic,
    /// `"unreachable"`: the wasm `unreachable` instruction, a trap with no panic message.
    Unreachable,
    /// `"loop"`: never returns; only the host's deadline (epoch/fuel) can stop it.
    Loop,
    /// `"oom"`: allocates until memory runs out (the allocation failure aborts: a trap).
    Oom,
}

impl Fault {
    /// Every fault, for tests and documentation.
    pub const ALL: [Fault; 5] = [Fault::Err, Fault::Panic, Fault::Unreachable, Fault::Loop, Fault::Oom];

    /// The value of `"fault"` that asks for this fault.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Err => "err",
            Fault::Panic => "panic",
            Fault::Unreachable => "unreachable",
            Fault::Loop => "loop",
            Fault::Oom => "oom",
        }
    }

    /// The fault named `name`; `None` for any other name (such an item asks for nothing, so a
    /// typo in a test shows up as a message that passed rather than as a different fault).
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// The fault a payload asks for: `Some` only for a JSON object whose top-level `"fault"` is a
/// string naming a [`Fault`]. Non-JSON, non-objects, a non-string or unknown `"fault"`, or a
/// `"fault"` nested deeper all ask for nothing.
pub fn fault_of(payload: &[u8]) -> Option<Fault> {
    match serde_json::from_slice::<Value>(payload).ok()? {
        Value::Object(object) => object.get(FAULT_KEY).and_then(Value::as_str).and_then(Fault::from_name),
        _ => None,
    }
}

/// The fault a batch asks for: that of the first item, in batch order, that asks for one
/// (`None` items are snapshots, which carry no JSON payload and ask for nothing). Lazy, so the
/// component reads host buffers only up to the first item that asks for a fault.
pub fn batch_fault<I, P>(items: I) -> Option<Fault>
where
    I: IntoIterator<Item = Option<P>>,
    P: AsRef<[u8]>,
{
    items
        .into_iter()
        .flatten()
        .find_map(|payload| fault_of(payload.as_ref()))
}

/// The accumulate's output payload when no item asks for a fault: `{"count":N}`.
pub fn count_payload(items: usize) -> Vec<u8> {
    format!(r#"{{"count":{items}}}"#).into_bytes()
}

/// What `init` does, from the configuration property `init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitMode {
    /// `ok` (the default when `init` is absent): returns `true`.
    Ok,
    /// `false`: returns `false`, a configuration error (the graph must not start).
    False,
    /// `trap`: panics (a trap during instantiation of the graph).
    Trap,
}

impl InitMode {
    /// Reads the `init` property (surrounding blanks ignored). Any value other than `ok`,
    /// `false` or `trap` is itself a configuration error, so a misspelt test setup fails loudly
    /// instead of silently running the `ok` case.
    pub fn from_config(value: Option<&str>) -> Result<InitMode, String> {
        match value.map(str::trim) {
            None | Some("ok") => Ok(InitMode::Ok),
            Some("false") => Ok(InitMode::False),
            Some("trap") => Ok(InitMode::Trap),
            Some(other) => Err(format!(
                "configuration `{INIT_KEY}` = {other:?} is not one of \"ok\", \"false\", \"trap\""
            )),
        }
    }
}

/// Whether the map looks at payloads, from the configuration property `payload`. `ignore` makes
/// the map a pure pass-through that never reads its buffer: the benchmarks (BENCHMARKS.md,
/// payload size scaling) compare it with `read` to show what reading a payload costs and that
/// passing one through costs nothing per byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadMode {
    /// `read` (the default when `payload` is absent): every payload is read and checked for a
    /// fault.
    Read,
    /// `ignore`: the item is returned as it came, unread (so it can ask for no fault).
    Ignore,
}

impl PayloadMode {
    /// Reads the `payload` property (surrounding blanks ignored); any value other than `read` or
    /// `ignore` is a configuration error.
    pub fn from_config(value: Option<&str>) -> Result<PayloadMode, String> {
        match value.map(str::trim) {
            None | Some("read") => Ok(PayloadMode::Read),
            Some("ignore") => Ok(PayloadMode::Ignore),
            Some(other) => Err(format!(
                "configuration `{PAYLOAD_KEY}` = {other:?} is not one of \"read\", \"ignore\""
            )),
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_is_recognised_by_name() {
        for fault in Fault::ALL {
            let payload = format!(r#"{{"fault":"{}"}}"#, fault.name());
            assert_eq!(fault_of(payload.as_bytes()), Some(fault), "{payload}");
        }
        assert_eq!(
            fault_of(br#"{"temperature":{"value":1,"unit":"C"},"fault":"oom"}"#),
            Some(Fault::Oom)
        );
    }

    #[test]
    fn anything_else_asks_for_nothing() {
        for payload in [
            &br#"{"fault":"explode"}"#[..],
            br#"{"fault":"ERR"}"#,
            br#"{"fault":" err"}"#,
            br#"{"fault":1}"#,
            br#"{"fault":null}"#,
            br#"{"fault":["err"]}"#,
            br#"{"nested":{"fault":"err"}}"#,
            br#"["fault","err"]"#,
            br#""err""#,
            br#"{"temperature":{"value":1209,"unit":"F"}}"#,
            br#"{"fault":"err""#,
            b"not json",
            b"\x89PNG\r\n\x1a\n",
            b"",
        ] {
            assert_eq!(fault_of(payload), None, "{}", String::from_utf8_lossy(payload));
        }
    }

    #[test]
    fn a_batch_does_the_first_fault_asked_for() {
        let items: [Option<&[u8]>; 5] = [
            Some(br#"{"humidity":{"value":40}}"#),
            None,
            Some(br#"{"fault":"nonsense"}"#),
            Some(br#"{"fault":"loop"}"#),
            Some(br#"{"fault":"err"}"#),
        ];
        assert_eq!(batch_fault(items), Some(Fault::Loop));
        assert_eq!(batch_fault(items[..3].iter().copied()), None);
        assert_eq!(batch_fault(Vec::<Option<&[u8]>>::new()), None);
    }

    #[test]
    fn count_payload_is_exact_json() {
        assert_eq!(count_payload(0), br#"{"count":0}"#.to_vec());
        assert_eq!(count_payload(3), br#"{"count":3}"#.to_vec());
        let parsed: Value = serde_json::from_slice(&count_payload(12)).expect("json");
        assert_eq!(parsed, serde_json::json!({"count": 12}));
    }

    #[test]
    fn payload_mode_from_configuration() {
        assert_eq!(PayloadMode::from_config(None), Ok(PayloadMode::Read));
        assert_eq!(PayloadMode::from_config(Some("read")), Ok(PayloadMode::Read));
        assert_eq!(PayloadMode::from_config(Some(" ignore ")), Ok(PayloadMode::Ignore));
        let err = PayloadMode::from_config(Some("skip")).expect_err("unknown value");
        assert!(err.contains("`payload` = \"skip\""), "{err}");
    }

    #[test]
    fn init_mode_from_configuration() {
        assert_eq!(InitMode::from_config(None), Ok(InitMode::Ok));
        assert_eq!(InitMode::from_config(Some("ok")), Ok(InitMode::Ok));
        assert_eq!(InitMode::from_config(Some(" false ")), Ok(InitMode::False));
        assert_eq!(InitMode::from_config(Some("trap")), Ok(InitMode::Trap));
        let err = InitMode::from_config(Some("true")).expect_err("unknown value");
        assert!(err.contains("`init` = \"true\""), "{err}");
    }
}
