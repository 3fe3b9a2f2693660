//! The `wasi-probe` test module: a map that answers what its sandbox lets it see. An item
//! `{"env":"NAME"}` yields `{"env":"NAME","value":<the variable, or null>}`; an item
//! `{"file":"/path"}` yields `{"file":"/path","value":<the contents>}` or, when the file cannot
//! be read, `{"file":"/path","error":"<why>"}`. Not a sample; no shipped graph uses it.

use serde_json::{json, Value};

/// What an item asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Env(String),
    File(String),
}

/// The probe a payload asks for; `None` for anything else (passed through unchanged).
pub fn probe_of(payload: &[u8]) -> Option<Probe> {
    let Value::Object(o) = serde_json::from_slice(payload).ok()? else {
        return None;
    };
    match (
        o.get("env").and_then(Value::as_str),
        o.get("file").and_then(Value::as_str),
    ) {
        (Some(name), _) => Some(Probe::Env(name.to_owned())),
        (None, Some(path)) => Some(Probe::File(path.to_owned())),
        _ => None,
    }
}

/// Answers a probe with what the process (a WASI sandbox, in the component) can see.
pub fn answer(probe: &Probe) -> Vec<u8> {
    let v = match probe {
        Probe::Env(name) => json!({"env": name, "value": std::env::var(name).ok()}),
        Probe::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => json!({"file": path, "value": text}),
            Err(e) => json!({"file": path, "error": e.to_string()}),
        },
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
    }

    #[test]
    fn answers_natively_from_the_process() {
        let env = String::from_utf8(answer(&Probe::Env("WASI_PROBE_SURELY_UNSET".into()))).unwrap();
        assert_eq!(env, r#"{"env":"WASI_PROBE_SURELY_UNSET","value":null}"#);
        let file = String::from_utf8(answer(&Probe::File("/surely/not/here".into()))).unwrap();
        assert!(file.starts_with(r#"{"file":"/surely/not/here","error":"#), "{file}");
    }
}
