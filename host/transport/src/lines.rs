//! Newline-delimited JSON in and out: how `wasmflow run --input` feeds messages and prints what
//! the graph emits, one JSON object per line.

use std::sync::Arc;

use serde_json::{json, Value};
use thiserror::Error;

use crate::{Destination, Input, Output};

/// A line of input that cannot become a message.
#[derive(Debug, Error, PartialEq)]
#[error("line {line}: {reason}")]
pub struct InputError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// How input lines are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Each line is a payload, published on the default topic.
    Payload,
    /// Each line is `{"topic"?, "payload", "content-type"?, "user-properties"?: {k: v} | [[k, v]]}`;
    /// a non-string payload is sent as its compact JSON text.
    Envelope,
}

/// Parses one input line (1-based `line` for messages). Blank lines yield `None`. A payload
/// line is taken as bytes (a payload may be binary: it need not be UTF-8); an envelope must
/// be UTF-8 JSON, and one that is not is that line's error only.
pub fn parse_line(
    bytes: &[u8],
    line: usize,
    format: InputFormat,
    default_topic: &str,
) -> Result<Option<Input>, InputError> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let err = |reason: String| InputError { line, reason };
    match format {
        InputFormat::Payload => Ok(Some(Input {
            topic: default_topic.to_owned(),
            payload: Arc::from(bytes),
            content_type: None,
            user_properties: vec![],
        })),
        InputFormat::Envelope => {
            let text = std::str::from_utf8(bytes).map_err(|e| err(format!("an envelope must be UTF-8 JSON: {e}")))?;
            let v: Value = serde_json::from_str(text).map_err(|e| err(format!("not JSON: {e}")))?;
            let Value::Object(mut o) = v else {
                return Err(err("expected a JSON object envelope".into()));
            };
            let payload = match o.remove("payload") {
                Some(Value::String(s)) => s.into_bytes(),
                Some(other) => other.to_string().into_bytes(),
                None => return Err(err("envelope has no `payload`".into())),
            };
            let topic = match o.remove("topic") {
                Some(Value::String(s)) => s,
                None => default_topic.to_owned(),
                Some(_) => return Err(err("`topic` must be a string".into())),
            };
            let content_type = match o.remove("content-type") {
                Some(Value::String(s)) => Some(s),
                None => None,
                Some(_) => return Err(err("`content-type` must be a string".into())),
            };
            let mut user_properties = vec![];
            match o.remove("user-properties") {
                None => {}
                Some(Value::Object(m)) => {
                    for (k, v) in m {
                        let v = v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
                        user_properties.push((k, v));
                    }
                }
                Some(Value::Array(a)) => {
                    for pair in a {
                        match pair.as_array().map(|p| p.as_slice()) {
                            Some([Value::String(k), Value::String(v)]) => user_properties.push((k.clone(), v.clone())),
                            _ => return Err(err("`user-properties` pairs must be [\"key\", \"value\"]".into())),
                        }
                    }
                }
                Some(_) => return Err(err("`user-properties` must be an object or a list of pairs".into())),
            }
            Ok(Some(Input {
                topic,
                payload: Arc::from(payload),
                content_type,
                user_properties,
            }))
        }
    }
}

/// One output as a JSON object: the payload as JSON when it is JSON, else as text (lossy UTF-8).
pub fn output_json(o: &Output) -> Value {
    let payload = serde_json::from_slice::<Value>(&o.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&o.payload).into_owned()));
    let props: Vec<Value> = o.user_properties.iter().map(|(k, v)| json!([k, v])).collect();
    let mut v = json!({
        "topic": o.topic,
        "payload": payload,
        "properties": { "user-properties": props },
    });
    if let Some(ct) = &o.content_type {
        v["content-type"] = json!(ct);
    }
    match &o.destination {
        Destination::Sink(s) => v["sink"] = json!(s),
        Destination::DeadLetter { operation, error } => {
            v["dead-letter"] = json!({"operation": operation, "error": error})
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_lines_use_the_default_topic() {
        let i = parse_line(b"{\"a\":1}\n", 1, InputFormat::Payload, "in")
            .unwrap()
            .unwrap();
        assert_eq!((i.topic.as_str(), &*i.payload), ("in", &b"{\"a\":1}"[..]));
        assert!(parse_line(b"  ", 2, InputFormat::Payload, "in").unwrap().is_none());
    }

    #[test]
    fn envelopes_carry_topic_and_properties() {
        let i = parse_line(
            br#"{"topic":"t","payload":{"x":1},"user-properties":{"__ts":"000000000001000:00000:a"}}"#,
            1,
            InputFormat::Envelope,
            "in",
        )
        .unwrap()
        .unwrap();
        assert_eq!(i.topic, "t");
        assert_eq!(&*i.payload, b"{\"x\":1}");
        assert_eq!(
            i.user_properties,
            vec![("__ts".to_string(), "000000000001000:00000:a".to_string())]
        );
    }

    #[test]
    fn bad_envelopes_name_the_line() {
        let e = parse_line(b"{nope", 7, InputFormat::Envelope, "in").unwrap_err();
        assert!(e.to_string().starts_with("line 7: not JSON"), "{e}");
        let e = parse_line(br#"{"topic":"t"}"#, 3, InputFormat::Envelope, "in").unwrap_err();
        assert_eq!(e.to_string(), "line 3: envelope has no `payload`");
    }

    #[test]
    fn outputs_print_json_payloads_as_json() {
        let o = Output {
            destination: Destination::Sink("sink".into()),
            topic: Some("out".into()),
            payload: Arc::from(&b"{\"t\":2.5}"[..]),
            content_type: None,
            user_properties: vec![("__ts".into(), "x".into())],
        };
        assert_eq!(
            output_json(&o).to_string(),
            r#"{"topic":"out","payload":{"t":2.5},"properties":{"user-properties":[["__ts","x"]]},"sink":"sink"}"#
        );
    }

    #[test]
    fn a_payload_line_may_be_binary_but_an_envelope_must_be_utf8() {
        let i = parse_line(b"\xff\xfe raw\n", 4, InputFormat::Payload, "in")
            .unwrap()
            .unwrap();
        assert_eq!(&*i.payload, b"\xff\xfe raw");
        let e = parse_line(b"{\"payload\":\"\xff\"}", 5, InputFormat::Envelope, "in").unwrap_err();
        assert_eq!(e.line, 5);
        assert!(e.reason.contains("UTF-8"), "{e}");
    }
}
