//! One line of `run --input` (`wasmflow_transport::lines::parse_line`), as a payload and as an
//! `--envelope`.
//!
//! A payload line is its bytes (any bytes: a payload may be binary) without the line end; an
//! envelope either becomes a message or is an error naming its line, and a message written
//! back as an envelope (the pair-list form of user properties, which keeps repeated keys)
//! reads back as the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use wasmflow_transport::lines::{output_json, parse_line, InputFormat};
use wasmflow_transport::{Destination, Output};

const LINE: usize = 7;

fuzz_target!(|data: &[u8]| {
    let content = data.strip_suffix(b"\n").unwrap_or(data);
    let content = content.strip_suffix(b"\r").unwrap_or(content);
    match parse_line(data, LINE, InputFormat::Payload, "in") {
        Ok(None) => assert!(content.iter().all(u8::is_ascii_whitespace)),
        Ok(Some(i)) => {
            assert_eq!(&*i.payload, content);
            assert_eq!(i.topic, "in");
        }
        Err(e) => panic!("a payload line is never an error: {e}"),
    }
    match parse_line(data, LINE, InputFormat::Envelope, "in") {
        Ok(None) => assert!(content.iter().all(u8::is_ascii_whitespace)),
        Err(e) => {
            assert_eq!(e.line, LINE);
            assert!(e.to_string().starts_with("line 7: "), "{e}");
        }
        Ok(Some(i)) => {
            let payload = std::str::from_utf8(&i.payload).expect("an envelope's payload is text");
            let pairs: Vec<Value> = i.user_properties.iter().map(|(k, v)| json!([k, v])).collect();
            let mut envelope = json!({"topic": i.topic, "payload": payload, "user-properties": pairs});
            if let Some(ct) = &i.content_type {
                envelope["content-type"] = json!(ct);
            }
            let again = parse_line(envelope.to_string().as_bytes(), LINE, InputFormat::Envelope, "in")
                .expect("a message written as an envelope parses")
                .expect("and is not blank");
            assert_eq!(
                (
                    &again.topic,
                    &*again.payload,
                    &again.content_type,
                    &again.user_properties
                ),
                (&i.topic, &*i.payload, &i.content_type, &i.user_properties)
            );
            // What the graph emits is printed the same way: never a panic, always an object.
            let out = output_json(&Output {
                destination: Destination::Sink("sink".into()),
                topic: Some(i.topic.clone()),
                payload: i.payload.clone(),
                content_type: i.content_type.clone(),
                user_properties: i.user_properties.clone(),
            });
            assert!(out.is_object());
        }
    }
});
