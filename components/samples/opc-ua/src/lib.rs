//! The `opc-ua` sample module: a map that flattens an OPC UA tag map
//! `{Tag: {"Value": v, "SourceTimestamp": t}, …}` into rows `[{"tag","value","timestamp"}, …]`
//! sorted by tag, which suits databases better than a map of DataValues.

use sample_common::json;
use serde_json::{Map, Value};

/// Configuration key: the schema reference to put on every output message (the original
/// schema no longer describes the flattened payload).
pub const DATASCHEMA_KEY: &str = "dataschema";
/// Configuration key: `hdr=col;hdr2=col2`, user properties copied into each row as columns.
pub const HEADERS_KEY: &str = "headers";
/// Configuration key: `"true"` copies entries that are not DataValues into each row.
pub const COPY_ALL_KEY: &str = "copy_all";

/// The operation's options, read once in `init`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    /// Registry reference to set as the message schema.
    pub dataschema: Option<String>,
    /// `(user property, column)` pairs in configuration order.
    pub headers: Vec<(String, String)>,
    /// Copy non-DataValue entries into every row.
    pub copy_all: bool,
}

impl Options {
    /// Reads the options (`lookup` returns a key's value). A malformed `headers` entry or a
    /// `copy_all` other than true/false is a configuration error, reported as a sentence.
    pub fn from_config<'a>(lookup: impl Fn(&str) -> Option<&'a str>) -> Result<Options, String> {
        let dataschema = lookup(DATASCHEMA_KEY)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let mut headers = Vec::new();
        for entry in lookup(HEADERS_KEY).unwrap_or("").split(';') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            match entry.split_once('=') {
                Some((header, column)) if !header.trim().is_empty() && !column.trim().is_empty() => {
                    headers.push((header.trim().to_owned(), column.trim().to_owned()));
                }
                _ => {
                    return Err(format!(
                        "configuration `{HEADERS_KEY}`: entry {entry:?} is not <header>=<column> (entries are separated by ';')"
                    ))
                }
            }
        }
        let copy_all = match lookup(COPY_ALL_KEY).map(str::trim) {
            None | Some("") => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(other) => {
                return Err(format!(
                    "configuration `{COPY_ALL_KEY}` = {other:?} is not true or false"
                ))
            }
        };
        Ok(Options {
            dataschema,
            headers,
            copy_all,
        })
    }
}

/// An OPC UA DataValue: an object with both `Value` and `SourceTimestamp`.
fn data_value(entry: &Value) -> Option<(&Value, &Value)> {
    let object = entry.as_object()?;
    Some((object.get("Value")?, object.get("SourceTimestamp")?))
}

/// The map. Rows have the columns `tag`, `value`, `timestamp`, then the configured header
/// columns (from the message's user properties; absent properties give no column), then with
/// `copy_all` every non-DataValue entry under its own key. Earlier columns are never
/// overwritten by later ones. A payload that is not a JSON object is an error.
pub fn flatten(payload: &[u8], options: &Options, user_properties: &[(String, String)]) -> Result<Vec<u8>, String> {
    let input = json::parse_object(payload)?;
    let mut extras: Vec<(&String, &Value)> = Vec::new();
    let mut rows: Vec<(&String, Map<String, Value>)> = Vec::new();
    for (tag, entry) in &input {
        match data_value(entry) {
            Some((value, timestamp)) => {
                let mut row = Map::new();
                row.insert("tag".to_owned(), Value::String(tag.clone()));
                row.insert("value".to_owned(), value.clone());
                row.insert("timestamp".to_owned(), timestamp.clone());
                rows.push((tag, row));
            }
            None => extras.push((tag, entry)),
        }
    }
    // Stable sort by tag text (byte order).
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let header_values: Vec<(&String, &String)> = options
        .headers
        .iter()
        .filter_map(|(header, column)| {
            user_properties
                .iter()
                .find(|(key, _)| key == header)
                .map(|(_, value)| (column, value))
        })
        .collect();
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(_, mut row)| {
            for (column, value) in &header_values {
                row.entry((*column).clone())
                    .or_insert_with(|| Value::String((*value).clone()));
            }
            if options.copy_all {
                for (key, value) in &extras {
                    row.entry((*key).clone()).or_insert_with(|| (*value).clone());
                }
            }
            Value::Object(row)
        })
        .collect();
    json::to_bytes(&rows)
}

#[cfg(target_arch = "wasm32")]
mod component {
    //! Component glue on the SDK: the map operator.
    use std::sync::Mutex;

    use sample_common::glue::{bytes_of, config_value, error, finish_init, string_of};
    use wasm_graph_sdk::macros::map_operator;

    use crate::Options;

    const CONTEXT: &str = "opc-ua/map";

    static OPTIONS: Mutex<Option<Options>> = Mutex::new(None);

    fn init(configuration: ModuleConfiguration) -> bool {
        let outcome = Options::from_config(|key| config_value(&configuration, key)).map(|options| {
            let detail = format!("{options:?}");
            *OPTIONS.lock().unwrap_or_else(|e| e.into_inner()) = Some(options);
            detail
        });
        finish_init(CONTEXT, &configuration, outcome)
    }

    #[map_operator(init = "init")]
    fn flatten(message: DataModel) -> Result<DataModel, Error> {
        let options = OPTIONS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default();
        match message {
            DataModel::Message(mut message) => {
                let properties: Vec<(String, String)> = if options.headers.is_empty() {
                    Vec::new()
                } else {
                    message
                        .properties
                        .user_properties
                        .iter()
                        .filter_map(|(k, v)| Some((string_of(k).ok()?.into_owned(), string_of(v).ok()?.into_owned())))
                        .collect()
                };
                let rows = crate::flatten(&bytes_of(&message.payload), &options, &properties)
                    .map_err(|e| error(format!("{CONTEXT}: {e}")))?;
                message.payload = BufferOrBytes::Bytes(rows);
                if let Some(schema) = &options.dataschema {
                    message.schema = Some(MessageSchema::RegistryReference(BufferOrString::String(schema.clone())));
                }
                Ok(DataModel::Message(message))
            }
            DataModel::BufferOrBytes(payload) => {
                let rows =
                    crate::flatten(&bytes_of(&payload), &options, &[]).map_err(|e| error(format!("{CONTEXT}: {e}")))?;
                Ok(DataModel::BufferOrBytes(BufferOrBytes::Bytes(rows)))
            }
            DataModel::Snapshot(_) => Err(error(format!("{CONTEXT}: expects a JSON message, got a snapshot"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(payload: &str, options: &Options, properties: &[(&str, &str)]) -> String {
        let properties: Vec<(String, String)> = properties.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        String::from_utf8(flatten(payload.as_bytes(), options, &properties).expect("flatten")).expect("utf-8")
    }

    const INPUT: &str = r#"{"Pressure":{"Value":101.3,"SourceTimestamp":"2024-01-01T00:00:01Z"},"Line":"L1","Alarm":{"Value":false,"SourceTimestamp":"2024-01-01T00:00:02Z","StatusCode":0},"Meta":{"Quality":"good"},"Flow":{"Value":7,"SourceTimestamp":"2024-01-01T00:00:00Z"}}"#;

    #[test]
    fn flattens_sorted_by_tag() {
        assert_eq!(
            rows(INPUT, &Options::default(), &[]),
            concat!(
                r#"[{"tag":"Alarm","value":false,"timestamp":"2024-01-01T00:00:02Z"},"#,
                r#"{"tag":"Flow","value":7,"timestamp":"2024-01-01T00:00:00Z"},"#,
                r#"{"tag":"Pressure","value":101.3,"timestamp":"2024-01-01T00:00:01Z"}]"#
            )
        );
    }

    #[test]
    fn copy_all_and_headers_add_columns() {
        let options = Options {
            dataschema: None,
            headers: vec![("site".into(), "plant".into()), ("missing".into(), "nothing".into())],
            copy_all: true,
        };
        let out = rows(
            r#"{"B":{"Value":2,"SourceTimestamp":"t2"},"Line":"L1","A":{"Value":1,"SourceTimestamp":"t1"},"Meta":{"Quality":"good"}}"#,
            &options,
            &[("site", "Graz"), ("other", "x")],
        );
        assert_eq!(
            out,
            concat!(
                r#"[{"tag":"A","value":1,"timestamp":"t1","plant":"Graz","Line":"L1","Meta":{"Quality":"good"}},"#,
                r#"{"tag":"B","value":2,"timestamp":"t2","plant":"Graz","Line":"L1","Meta":{"Quality":"good"}}]"#
            )
        );
    }

    #[test]
    fn fixed_columns_are_never_overwritten() {
        let options = Options {
            copy_all: true,
            ..Options::default()
        };
        assert_eq!(
            rows(r#"{"A":{"Value":1,"SourceTimestamp":"t"},"tag":"oops"}"#, &options, &[]),
            r#"[{"tag":"A","value":1,"timestamp":"t"}]"#
        );
    }

    #[test]
    fn empty_and_invalid_payloads() {
        assert_eq!(rows("{}", &Options::default(), &[]), "[]");
        assert!(flatten(b"not json", &Options::default(), &[])
            .expect_err("not json")
            .starts_with("the payload is not JSON"));
        assert!(flatten(b"[1,2]", &Options::default(), &[])
            .expect_err("array")
            .contains("not an object"));
    }

    #[test]
    fn options_from_configuration() {
        let config = |key: &str| match key {
            DATASCHEMA_KEY => Some("opcua-rows:1"),
            HEADERS_KEY => Some("site=plant; line = line_id;"),
            COPY_ALL_KEY => Some("TRUE"),
            _ => None,
        };
        assert_eq!(
            Options::from_config(config).expect("valid"),
            Options {
                dataschema: Some("opcua-rows:1".into()),
                headers: vec![("site".into(), "plant".into()), ("line".into(), "line_id".into())],
                copy_all: true
            }
        );
        assert_eq!(Options::from_config(|_| None).expect("empty"), Options::default());
        let bad_headers = |key: &str| (key == HEADERS_KEY).then_some("site;x=y");
        assert!(Options::from_config(bad_headers).expect_err("bad").contains("\"site\""));
        let bad_copy = |key: &str| (key == COPY_ALL_KEY).then_some("yes");
        assert!(Options::from_config(bad_copy).expect_err("bad").contains("copy_all"));
    }
}
