//! The `collection` sample module: an accumulate that merges a window's temperature, humidity
//! and object-detection items into one `sensor_data` document for `enrichment`.

use sample_common::json;
use sample_common::records::{SensorData, SensorDataPayload};
use sample_common::Folded;
use serde_json::Value;

/// The array an item key goes to; `None` for keys that are not readings.
fn list<'a>(data: &'a mut SensorData, kind: &str) -> Option<&'a mut Vec<Value>> {
    match kind {
        "temperature" => Some(&mut data.temperature),
        "humidity" => Some(&mut data.humidity),
        "object" => Some(&mut data.object),
        _ => None,
    }
}

/// The accumulate: starts from the staged `sensor_data` (if any) and appends, in arrival order,
/// the inner object of every `{"temperature":{…}}`, `{"humidity":{…}}` and
/// `{"object":{"result":…}}` item; a `{"sensor_data":{…}}` item (an upstream collection) has its
/// arrays appended. Empty categories are left out of the output (an empty batch gives
/// `{"sensor_data":{}}`, see [`SensorData`]). Items of any other shape are ignored with a
/// warning; a staged value that is not `sensor_data` is an error.
pub fn accumulate(staged: Option<&[u8]>, items: &[Option<&[u8]>]) -> Result<Folded, String> {
    let mut data = match staged {
        None => SensorData::default(),
        Some(bytes) => {
            serde_json::from_slice::<SensorDataPayload>(bytes)
                .map_err(|e| format!("the staged value is not a sensor_data document: {e}"))?
                .sensor_data
        }
    };
    let mut warnings = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(bytes) = item else {
            warnings.push(format!(
                "batch item {index} is a snapshot, not a sensor reading; ignored"
            ));
            continue;
        };
        let object = match json::parse_object(bytes) {
            Ok(object) => object,
            Err(e) => {
                warnings.push(format!("batch item {index} ignored: {e}"));
                continue;
            }
        };
        let mut used = false;
        for (key, value) in object {
            if key == "sensor_data" {
                match serde_json::from_value::<SensorData>(value) {
                    Ok(more) => {
                        data.temperature.extend(more.temperature);
                        data.humidity.extend(more.humidity);
                        data.object.extend(more.object);
                        used = true;
                    }
                    Err(e) => warnings.push(format!("batch item {index}: `sensor_data` ignored: {e}")),
                }
                continue;
            }
            let Some(target) = list(&mut data, &key) else {
                continue;
            };
            if value.is_object() {
                target.push(value);
                used = true;
            } else {
                warnings.push(format!(
                    "batch item {index}: `{key}` is {}, expected an object; ignored",
                    json::kind(&value)
                ));
            }
        }
        if !used {
            warnings.push(format!(
                "batch item {index} has no temperature, humidity or object reading; ignored"
            ));
        }
    }
    Ok(Folded {
        payload: json::to_bytes(&SensorDataPayload { sensor_data: data })?,
        warnings,
    })
}

#[cfg(target_arch = "wasm32")]
mod component {
    //! Component glue on the SDK: the accumulate operator.
    use sample_common::glue::log_init;
    use wasm_graph_sdk::macros::accumulate_operator;

    const CONTEXT: &str = "collection/accumulate";

    fn init(configuration: ModuleConfiguration) -> bool {
        log_init(CONTEXT, &configuration);
        true
    }

    #[accumulate_operator(init = "init")]
    fn fold(staged: DataModel, message: Vec<DataModel>) -> Result<DataModel, Error> {
        sample_common::glue::accumulate(CONTEXT, staged, message, crate::accumulate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(staged: Option<&[u8]>, items: &[Option<&[u8]>]) -> (String, Vec<String>) {
        let f = accumulate(staged, items).expect("fold");
        (String::from_utf8(f.payload).expect("utf-8"), f.warnings)
    }

    #[test]
    fn merges_in_arrival_order() {
        let items: [Option<&[u8]>; 4] = [
            Some(br#"{"humidity":{"count":1,"max":50.0,"min":50.0,"average":50.0,"last":50.0}}"#),
            Some(br#"{"temperature":{"count":2,"max":30.0,"min":20.0,"average":25.0,"last":30.0,"unit":"C","overtemp":false}}"#),
            Some(br#"{"object":{"result":"cat"}}"#),
            Some(br#"{"temperature":{"count":1,"max":5.0,"min":5.0,"average":5.0,"last":5.0,"unit":"C","overtemp":false}}"#),
        ];
        let (out, warnings) = folded(None, &items);
        assert_eq!(
            out,
            concat!(
                r#"{"sensor_data":{"temperature":["#,
                r#"{"count":2,"max":30.0,"min":20.0,"average":25.0,"last":30.0,"unit":"C","overtemp":false},"#,
                r#"{"count":1,"max":5.0,"min":5.0,"average":5.0,"last":5.0,"unit":"C","overtemp":false}],"#,
                r#""humidity":[{"count":1,"max":50.0,"min":50.0,"average":50.0,"last":50.0}],"#,
                r#""object":[{"result":"cat"}]}}"#
            )
        );
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn empty_batch_has_no_categories() {
        let (out, warnings) = folded(None, &[]);
        assert_eq!(out, r#"{"sensor_data":{}}"#);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn only_present_categories_are_written() {
        let items: [Option<&[u8]>; 1] = [Some(br#"{"object":{"result":"dog"}}"#)];
        let (out, warnings) = folded(None, &items);
        assert_eq!(out, r#"{"sensor_data":{"object":[{"result":"dog"}]}}"#);
        assert!(warnings.is_empty(), "{warnings:?}");

        let items: [Option<&[u8]>; 1] = [Some(
            br#"{"temperature":{"count":1,"max":653.8888888888889,"min":653.8888888888889,"average":653.8888888888889,"last":653.8888888888889,"unit":"C","overtemp":false}}"#,
        )];
        let (out, _) = folded(None, &items);
        assert_eq!(
            out,
            r#"{"sensor_data":{"temperature":[{"count":1,"max":653.8888888888889,"min":653.8888888888889,"average":653.8888888888889,"last":653.8888888888889,"unit":"C","overtemp":false}]}}"#
        );
    }

    #[test]
    fn staged_document_is_extended() {
        // Empty arrays written by an older collection and missing keys read the same.
        for staged in [
            &br#"{"sensor_data":{"temperature":[],"humidity":[],"object":[{"result":"dog"}]}}"#[..],
            br#"{"sensor_data":{"object":[{"result":"dog"}]}}"#,
        ] {
            let items: [Option<&[u8]>; 1] = [Some(br#"{"object":{"result":"cat"}}"#)];
            let (out, _) = folded(Some(staged), &items);
            assert_eq!(out, r#"{"sensor_data":{"object":[{"result":"dog"},{"result":"cat"}]}}"#);
        }
    }

    #[test]
    fn other_items_are_ignored_with_warnings() {
        let items: [Option<&[u8]>; 4] = [
            Some(b"not json"),
            None,
            Some(br#"{"pressure":{"value":1}}"#),
            Some(br#"{"object":"cat"}"#),
        ];
        let (out, warnings) = folded(None, &items);
        assert_eq!(out, r#"{"sensor_data":{}}"#);
        assert_eq!(warnings.len(), 5, "{warnings:?}");
        assert!(warnings[0].starts_with("batch item 0 ignored: the payload is not JSON"));
        assert!(warnings[3].contains("`object` is a string"));
    }

    #[test]
    fn foreign_staged_value_is_an_error() {
        assert!(accumulate(Some(br#"{"temperature":{}}"#), &[])
            .expect_err("bad")
            .contains("not a sensor_data document"));
    }
}
