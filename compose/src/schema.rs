//! Validation of a graph document against the published JSON schema
//! (`aio-wasm-graph-config-1.0.0.json`, embedded at build time so the binary needs no files).
//!
//! The schema is the compatibility contract with Azure IoT Operations: what it rejects, the
//! platform rejects. Errors are rewritten into one sentence naming the field (as
//! `operations[1].operationType`) and the operation or connection it belongs to.

use std::sync::OnceLock;

use serde_json::Value;

use crate::error::ComposeError;

/// The published schema, as shipped in `compose/schema/`.
pub const GRAPH_SCHEMA: &str = include_str!("../schema/aio-wasm-graph-config-1.0.0.json");

fn validator() -> Result<&'static jsonschema::Validator, String> {
    static VALIDATOR: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let schema: Value = serde_json::from_str(GRAPH_SCHEMA)
                .map_err(|e| format!("the embedded graph schema is not JSON: {e}"))?;
            jsonschema::draft7::new(&schema).map_err(|e| format!("the embedded graph schema does not compile: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The most characters of jsonschema's description of a problem kept in a message: it quotes
/// the offending value, which for a document that is no graph at all is the whole document (up to
/// [`Limits::max_document_bytes`](crate::Limits)), and a message is one line for a person.
pub const MAX_PROBLEM_CHARS: usize = 300;

/// `text` cut to [`MAX_PROBLEM_CHARS`] characters, marked with `…` when cut.
fn shorten(text: String) -> String {
    match text.char_indices().nth(MAX_PROBLEM_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// Checks `document` (the YAML converted to JSON) against the schema.
///
/// `file` starts the error message. Only the first problem is described in full; the count of
/// the others is appended, so the user fixes one thing at a time with a precise pointer.
pub fn validate_document(file: &str, document: &Value) -> Result<(), ComposeError> {
    let validator = validator().map_err(|message| ComposeError::Schema {
        file: file.to_string(),
        path: "the document".to_string(),
        message,
    })?;
    let mut errors = validator.iter_errors(document);
    let Some(first) = errors.next() else {
        return Ok(());
    };
    let more = errors.count();
    let pointer = first.instance_path.to_string();
    let mut message = shorten(first.to_string());
    if matches!(first.kind, jsonschema::error::ValidationErrorKind::Type { .. })
        && matches!(first.instance.as_ref(), Value::Number(_) | Value::Bool(_))
    {
        message.push_str(" (quote the value so YAML reads it as a string)");
    }
    if more > 0 {
        message.push_str(&format!(
            " (and {more} more problem{})",
            if more == 1 { "" } else { "s" }
        ));
    }
    Err(ComposeError::Schema {
        file: file.to_string(),
        path: describe_pointer(document, &pointer),
        message,
    })
}

/// Turns a JSON pointer such as `/operations/1/operationType` into
/// `operations[1].operationType (operation `x`)`, naming the operation or connection the
/// field belongs to when the document says.
pub fn describe_pointer(document: &Value, pointer: &str) -> String {
    if pointer.is_empty() || pointer == "/" {
        return "the document".to_string();
    }
    let segments: Vec<String> = pointer
        .trim_start_matches('/')
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut text = String::new();
    let mut current = Some(document);
    for segment in &segments {
        let is_index = matches!(current, Some(Value::Array(_))) && segment.parse::<usize>().is_ok();
        if is_index {
            text.push_str(&format!("[{segment}]"));
        } else {
            if !text.is_empty() {
                text.push('.');
            }
            text.push_str(segment);
        }
        current = match current {
            Some(Value::Array(items)) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            Some(Value::Object(map)) => map.get(segment),
            _ => None,
        };
    }
    if let (Some(section), Some(index)) = (segments.first(), segments.get(1).and_then(|s| s.parse::<usize>().ok())) {
        let item = document.get(section).and_then(|s| s.get(index));
        let context = match (section.as_str(), item) {
            ("operations", Some(op)) => op
                .get("name")
                .and_then(Value::as_str)
                .map(|n| format!("operation `{n}`")),
            ("moduleConfigurations", Some(cfg)) => cfg
                .get("name")
                .and_then(Value::as_str)
                .map(|n| format!("configuration of operation `{n}`")),
            ("connections", Some(conn)) => {
                let from = conn.get("from").and_then(|f| f.get("name")).and_then(Value::as_str);
                let to = conn.get("to").and_then(|t| t.get("name")).and_then(Value::as_str);
                match (from, to) {
                    (Some(f), Some(t)) => Some(format!("`{f}` -> `{t}`")),
                    _ => None,
                }
            }
            ("schemas", Some(s)) => s.get("name").and_then(Value::as_str).map(|n| format!("schema `{n}`")),
            _ => None,
        };
        if let Some(context) = context {
            text.push_str(&format!(" ({context})"));
        }
    }
    text
}
