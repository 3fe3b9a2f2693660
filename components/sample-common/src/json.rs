//! JSON helpers that turn serde errors into sentences an operator can return as its error.

use serde::Serialize;
use serde_json::{Map, Value};

/// Serializes a value to bytes. Serialization of our own records cannot fail in practice
/// (string keys, finite numbers), but the error is still returned, never unwrapped.
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("could not serialize the output as JSON: {e}"))
}

/// Parses a payload that must be a JSON object; the error says what it was instead.
pub fn parse_object(payload: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "the payload is JSON but not an object (found {})",
            kind(&other)
        )),
        Err(e) => Err(format!("the payload is not JSON ({} bytes): {e}", payload.len())),
    }
}

/// A short name of a JSON value's type, for error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_parse_and_other_values_are_named() {
        let map = parse_object(br#"{"b":1,"a":2}"#).expect("object");
        // preserve_order: keys stay in arrival order.
        assert_eq!(map.keys().cloned().collect::<Vec<_>>(), vec!["b", "a"]);
        assert_eq!(
            parse_object(b"[1]").expect_err("array"),
            "the payload is JSON but not an object (found an array)"
        );
        assert!(parse_object(b"\x89PNG")
            .expect_err("binary")
            .starts_with("the payload is not JSON (4 bytes)"));
    }

    #[test]
    fn serializes() {
        assert_eq!(
            to_bytes(&serde_json::json!({"x": 1.0})).expect("ok"),
            br#"{"x":1.0}"#.to_vec()
        );
    }
}
