//! The `wasi-probe` test module: a map that answers what its sandbox lets it see. An item
//! `{"env":"NAME"}` yields `{"env":"NAME","value":<the variable, or null>}`; an item
//! `{"file":"/path"}` yields `{"file":"/path","value":<the contents>}` or, when the file cannot
//! be read, `{"file":"/path","error":"<why>"}`; an item `{"thread":"spawn"}` starts a thread and
//! yields `{"thread":"spawn","joined":true}`, or `{"thread":"spawn","error":"<io::ErrorKind>"}`
//! when the sandbox has none (crates such as `rayon` decide by that kind whether to run on the
//! calling thread instead); an item `{"payload":"shape"}` yields
//! `{"payload":"shape","arrived_as":"buffer"}` or `…"bytes"}`, the variant of `buffer-or-bytes`
//! the host handed its payload in as (the platform's Python samples call `read()` on it
//! unchecked, so it must be a buffer). Not a sample; no shipped graph uses it.

use serde_json::{json, Value};

/// What an item asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Env(String),
    File(String),
    Thread,
    PayloadShape,
}

/// The variant of `buffer-or-bytes` a payload came into the call as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    Buffer,
    Bytes,
}

/// The probe a payload asks for; `None` for anything else (passed through unchanged).
pub fn probe_of(payload: &[u8]) -> Option<Probe> {
    let Value::Object(o) = serde_json::from_slice(payload).ok()? else {
        return None;
    };
    // The first key present decides.
    let field = |key| o.get(key).and_then(Value::as_str);
    if let Some(name) = field("env") {
        Some(Probe::Env(name.to_owned()))
    } else if let Some(path) = field("file") {
        Some(Probe::File(path.to_owned()))
    } else if let Some(thread) = field("thread") {
        (thread == "spawn").then_some(Probe::Thread)
    } else {
        (field("payload")? == "shape").then_some(Probe::PayloadShape)
    }
}

/// Answers a probe with what the process (a WASI sandbox, in the component) can see, and how
/// the item's payload arrived.
pub fn answer(probe: &Probe, arrival: Arrival) -> Vec<u8> {
    let v = match probe {
        Probe::Env(name) => json!({"env": name, "value": std::env::var(name).ok()}),
        Probe::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => json!({"file": path, "value": text}),
            Err(e) => json!({"file": path, "error": e.to_string()}),
        },
        Probe::Thread => match std::thread::Builder::new().spawn(|| ()) {
            Ok(thread) => json!({"thread": "spawn", "joined": thread.join().is_ok()}),
            Err(e) => json!({"thread": "spawn", "error": format!("{:?}", e.kind())}),
        },
        Probe::PayloadShape => json!({
            "payload": "shape",
            "arrived_as": match arrival {
                Arrival::Buffer => "buffer",
                Arrival::Bytes => "bytes",
            },
        }),
    };
    v.to_string().into_bytes()
}

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_is_asked() {
        assert_eq!(probe_of(br#"{"env":"HOME"}"#), Some(Probe::Env("HOME".into())));
        assert_eq!(
            probe_of(br#"{"file":"/etc/hosts"}"#),
            Some(Probe::File("/etc/hosts".into()))
        );
        assert_eq!(probe_of(b"nope"), None);
        assert_eq!(probe_of(br#"{"other":1}"#), None);
        assert_eq!(probe_of(br#"{"thread":"spawn"}"#), Some(Probe::Thread));
        assert_eq!(probe_of(br#"{"thread":"other"}"#), None);
        assert_eq!(probe_of(br#"{"payload":"shape"}"#), Some(Probe::PayloadShape));
    }

    #[test]
    fn answers_natively_from_the_process() {
        let env = String::from_utf8(answer(&Probe::Env("WASI_PROBE_SURELY_UNSET".into()), Arrival::Bytes)).unwrap();
        assert_eq!(env, r#"{"env":"WASI_PROBE_SURELY_UNSET","value":null}"#);
        let file = String::from_utf8(answer(&Probe::File("/surely/not/here".into()), Arrival::Bytes)).unwrap();
        assert!(file.starts_with(r#"{"file":"/surely/not/here","error":"#), "{file}");
        let thread = String::from_utf8(answer(&Probe::Thread, Arrival::Bytes)).unwrap();
        assert_eq!(thread, r#"{"thread":"spawn","joined":true}"#);
        let shape = String::from_utf8(answer(&Probe::PayloadShape, Arrival::Buffer)).unwrap();
        assert_eq!(shape, r#"{"payload":"shape","arrived_as":"buffer"}"#);
    }
}
