//! The `temperature` sample module: one component serving four operation types (map, branch,
//! filter, accumulate), as the platform's sample of the same name does.
//!
//! The logic is plain functions over payload bytes so it is tested natively; the `component`
//! module (wasm32 only) is the thin layer that reads buffers and builds the data model.

use sample_common::json;
use sample_common::records::{
    fahrenheit_to_celsius, parse_temperature, TemperaturePayload, TemperatureRecord, TemperatureUnit,
};
use sample_common::stats;
use sample_common::Folded;

/// What the map does to a payload.
#[derive(Debug, Clone, PartialEq)]
pub enum MapOutcome {
    /// Not a temperature: the item passes exactly as it came (a host buffer stays a buffer).
    Unchanged,
    /// A temperature, rewritten in °C as a full record.
    Replaced(Vec<u8>),
}

/// The map: a °F temperature becomes °C (`(v-32)*5/9`, unit `"C"`), a °C temperature is
/// re-serialized as a full record, anything else is left alone.
pub fn map(payload: &[u8]) -> Result<MapOutcome, String> {
    let Some(record) = parse_temperature(payload) else {
        return Ok(MapOutcome::Unchanged);
    };
    let record = to_celsius(record);
    json::to_bytes(&TemperaturePayload { temperature: record }).map(MapOutcome::Replaced)
}

/// A record in °C. Statistics of a °F record are converted too, but only when it summarises
/// readings (`count > 0`): unknown statistics stay 0.0.
fn to_celsius(mut record: TemperatureRecord) -> TemperatureRecord {
    if record.unit == TemperatureUnit::Fahrenheit {
        record.value = record.value.map(fahrenheit_to_celsius);
        if record.count > 0 {
            record.max = fahrenheit_to_celsius(record.max);
            record.min = fahrenheit_to_celsius(record.min);
            record.average = fahrenheit_to_celsius(record.average);
            record.last = fahrenheit_to_celsius(record.last);
        }
        record.unit = TemperatureUnit::Celsius;
    }
    record
}

/// The branch: `true` (arm "True") iff the payload is a temperature.
pub fn is_temperature(payload: &[u8]) -> bool {
    parse_temperature(payload).is_some()
}

/// Configuration key of the filter's lower bound (exclusive).
pub const LOWER_BOUND_KEY: &str = "temperature_lower_bound";
/// Configuration key of the filter's upper bound (exclusive).
pub const UPPER_BOUND_KEY: &str = "temperature_upper_bound";

/// The filter's open interval, in °C.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Readings must be strictly above this.
    pub lower: f64,
    /// Readings must be strictly below this (a malfunctioning probe reports more than the
    /// melting point of tungsten, 3422 °C).
    pub upper: f64,
}

impl Bounds {
    /// The bounds used when the configuration names none.
    pub const DEFAULT: Bounds = Bounds {
        lower: -40.0,
        upper: 3422.0,
    };

    /// Reads the bounds from configuration (`lookup` returns a key's value). A value that is
    /// not a finite number, or bounds that leave no value to pass, are configuration errors.
    pub fn from_config<'a>(lookup: impl Fn(&str) -> Option<&'a str>) -> Result<Bounds, String> {
        let read = |key: &str, default: f64| -> Result<f64, String> {
            match lookup(key) {
                None => Ok(default),
                Some(text) => match text.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => Err(format!("configuration `{key}` = {text:?} is not a finite number")),
                },
            }
        };
        let bounds = Bounds {
            lower: read(LOWER_BOUND_KEY, Bounds::DEFAULT.lower)?,
            upper: read(UPPER_BOUND_KEY, Bounds::DEFAULT.upper)?,
        };
        if bounds.lower >= bounds.upper {
            return Err(format!(
                "`{LOWER_BOUND_KEY}` ({}) must be below `{UPPER_BOUND_KEY}` ({}): nothing could pass",
                bounds.lower, bounds.upper
            ));
        }
        Ok(bounds)
    }
}

/// The filter: passes (`true`) a °C temperature reading with `lower < value < upper`; anything
/// else (°F, no value, not a temperature) is dropped.
pub fn filter(payload: &[u8], bounds: &Bounds) -> bool {
    match parse_temperature(payload) {
        Some(TemperatureRecord {
            value: Some(value),
            unit: TemperatureUnit::Celsius,
            ..
        }) => bounds.lower < value && value < bounds.upper,
        _ => false,
    }
}

/// The accumulate: folds the batch's temperatures (in batch order, so `last` is the last
/// reading) into the staged record, if any, each converted to °C, and writes
/// `{"temperature":{count,max,min,average,last,unit:"C",overtemp:false}}`.
/// Items that are not temperatures are ignored with a warning; a staged value that is not a
/// temperature record is an error (it can only come from a miswired graph). When neither the
/// batch nor the staged record holds a reading the window is an error, not a record of zeros:
/// whatever was routed here becomes a dead letter (see [`stats::fold`]).
pub fn accumulate(staged: Option<&[u8]>, items: &[Option<&[u8]>]) -> Result<Folded, String> {
    stats::fold(
        "temperature",
        staged,
        items,
        |payload| parse_temperature(payload).map(|record| to_celsius(record).stats()),
        |stats| {
            json::to_bytes(&TemperaturePayload {
                temperature: TemperatureRecord::summary(stats, TemperatureUnit::Celsius),
            })
        },
    )
}

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(test)]
mod tests {
    use super::*;

    fn replaced(outcome: MapOutcome) -> String {
        match outcome {
            MapOutcome::Replaced(bytes) => String::from_utf8(bytes).expect("utf-8"),
            MapOutcome::Unchanged => panic!("expected a replaced payload"),
        }
    }

    #[test]
    fn map_converts_fahrenheit_to_a_full_celsius_record() {
        let out = map(br#"{"temperature":{"value":1209,"unit":"F"}}"#).expect("ok");
        assert_eq!(
            replaced(out),
            r#"{"temperature":{"value":653.8888888888889,"count":0,"max":0.0,"min":0.0,"average":0.0,"last":0.0,"unit":"C","overtemp":false}}"#
        );
    }

    #[test]
    fn map_reserializes_celsius() {
        let out = map(br#"{"temperature":{"unit":"C","value":21.5}}"#).expect("ok");
        assert_eq!(
            replaced(out),
            r#"{"temperature":{"value":21.5,"count":0,"max":0.0,"min":0.0,"average":0.0,"last":0.0,"unit":"C","overtemp":false}}"#
        );
    }

    #[test]
    fn map_converts_statistics_of_a_fahrenheit_summary() {
        let out =
            map(br#"{"temperature":{"count":2,"max":212,"min":32,"average":122,"last":212,"unit":"F"}}"#).expect("ok");
        assert_eq!(
            replaced(out),
            r#"{"temperature":{"count":2,"max":100.0,"min":0.0,"average":50.0,"last":100.0,"unit":"C","overtemp":false}}"#
        );
    }

    #[test]
    fn map_leaves_other_payloads_alone() {
        for payload in [
            &br#"{"humidity":{"value":40}}"#[..],
            b"not json",
            b"\x89PNG\r\n\x1a\n\0\0",
            b"",
            br#"{"temperature":{"value":3,"unit":"K"}}"#,
        ] {
            assert_eq!(map(payload).expect("ok"), MapOutcome::Unchanged);
        }
    }

    #[test]
    fn branch_recognises_temperatures() {
        assert!(is_temperature(br#"{"temperature":{"value":70,"unit":"F"}}"#));
        assert!(is_temperature(
            br#"{"temperature":{"count":1,"max":1,"min":1,"average":1,"last":1,"unit":"C","overtemp":false}}"#
        ));
        assert!(!is_temperature(br#"{"humidity":{"value":70}}"#));
        assert!(!is_temperature(b"\xff\xd8\xff\xe0"));
    }

    #[test]
    fn filter_bounds_from_configuration() {
        let none = |_: &str| None;
        assert_eq!(
            Bounds::from_config(none).expect("defaults"),
            Bounds {
                lower: -40.0,
                upper: 3422.0
            }
        );
        let given = |k: &str| match k {
            LOWER_BOUND_KEY => Some("0"),
            UPPER_BOUND_KEY => Some(" 100.5 "),
            _ => None,
        };
        assert_eq!(
            Bounds::from_config(given).expect("valid"),
            Bounds {
                lower: 0.0,
                upper: 100.5
            }
        );
        let bad = |k: &str| (k == UPPER_BOUND_KEY).then_some("hot");
        assert!(Bounds::from_config(bad)
            .expect_err("not a number")
            .contains("temperature_upper_bound"));
        let nan = |k: &str| (k == LOWER_BOUND_KEY).then_some("NaN");
        assert!(Bounds::from_config(nan).is_err());
        let crossed = |k: &str| (k == LOWER_BOUND_KEY).then_some("5000");
        assert!(Bounds::from_config(crossed)
            .expect_err("crossed")
            .contains("must be below"));
    }

    #[test]
    fn filter_passes_celsius_strictly_inside_the_bounds() {
        let b = Bounds::DEFAULT;
        assert!(filter(br#"{"temperature":{"value":653.8888888888889,"unit":"C"}}"#, &b));
        assert!(filter(br#"{"temperature":{"value":-39.99,"unit":"C"}}"#, &b));
        // Bounds are exclusive.
        assert!(!filter(br#"{"temperature":{"value":-40,"unit":"C"}}"#, &b));
        assert!(!filter(br#"{"temperature":{"value":3422,"unit":"C"}}"#, &b));
        assert!(!filter(br#"{"temperature":{"value":5000,"unit":"C"}}"#, &b));
        // °F, no value, other payloads: dropped.
        assert!(!filter(br#"{"temperature":{"value":50,"unit":"F"}}"#, &b));
        assert!(!filter(br#"{"temperature":{"count":3,"unit":"C"}}"#, &b));
        assert!(!filter(br#"{"humidity":{"value":50}}"#, &b));
        assert!(!filter(b"garbage", &b));
    }

    fn folded(staged: Option<&[u8]>, items: &[Option<&[u8]>]) -> (String, Vec<String>) {
        let f = accumulate(staged, items).expect("fold");
        (String::from_utf8(f.payload).expect("utf-8"), f.warnings)
    }

    #[test]
    fn accumulate_three_readings() {
        let items: [Option<&[u8]>; 3] = [
            Some(br#"{"temperature":{"value":10.5,"unit":"C"}}"#),
            Some(br#"{"temperature":{"value":20.25,"unit":"C"}}"#),
            Some(br#"{"temperature":{"value":0.75,"unit":"C"}}"#),
        ];
        // count 3, max 20.25, min 0.75, average (10.5+20.25+0.75)/3 = 10.5, last 0.75.
        let (out, warnings) = folded(None, &items);
        assert_eq!(
            out,
            r#"{"temperature":{"count":3,"max":20.25,"min":0.75,"average":10.5,"last":0.75,"unit":"C","overtemp":false}}"#
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn accumulate_folds_into_the_staged_record() {
        let staged = br#"{"temperature":{"count":2,"max":15.0,"min":5.0,"average":10.0,"last":5.0,"unit":"C","overtemp":false}}"#;
        let items: [Option<&[u8]>; 1] = [Some(br#"{"temperature":{"value":40,"unit":"C"}}"#)];
        // (10*2 + 40) / 3 = 20.
        let (out, _) = folded(Some(staged), &items);
        assert_eq!(
            out,
            r#"{"temperature":{"count":3,"max":40.0,"min":5.0,"average":20.0,"last":40.0,"unit":"C","overtemp":false}}"#
        );
    }

    #[test]
    fn accumulate_ignores_other_items_with_a_warning_and_converts_fahrenheit() {
        let items: [Option<&[u8]>; 3] = [
            Some(br#"{"humidity":{"value":40}}"#),
            None,
            Some(br#"{"temperature":{"value":212,"unit":"F"}}"#),
        ];
        let (out, warnings) = folded(None, &items);
        assert_eq!(
            out,
            r#"{"temperature":{"count":1,"max":100.0,"min":100.0,"average":100.0,"last":100.0,"unit":"C","overtemp":false}}"#
        );
        assert_eq!(
            warnings,
            vec![
                "batch item 0 is not a temperature (25 bytes); ignored".to_owned(),
                "batch item 1 is not a temperature (a snapshot); ignored".to_owned()
            ]
        );
    }

    #[test]
    fn accumulate_of_a_window_without_readings_is_an_error() {
        let items: [Option<&[u8]>; 3] = [Some(br#"{"humidity":{"value":40}}"#), Some(b"not json"), None];
        assert_eq!(
            accumulate(None, &items).expect_err("no readings"),
            "no temperature readings in the window (3 items ignored)"
        );
        // A parsed record that summarises nothing is no reading either.
        let empty: [Option<&[u8]>; 1] = [Some(br#"{"temperature":{"count":0,"unit":"C"}}"#)];
        assert_eq!(
            accumulate(None, &empty).expect_err("no readings"),
            "no temperature readings in the window (1 item ignored)"
        );
        // Nor is a staged record of zeros, or nothing at all.
        let zeros =
            br#"{"temperature":{"count":0,"max":0.0,"min":0.0,"average":0.0,"last":0.0,"unit":"C","overtemp":false}}"#;
        assert!(accumulate(Some(zeros), &items).is_err());
        assert_eq!(
            accumulate(None, &[]).expect_err("no readings"),
            "no temperature readings in the window (0 items ignored)"
        );
    }

    #[test]
    fn accumulate_keeps_a_staged_reading_when_the_batch_has_none() {
        let staged = br#"{"temperature":{"count":2,"max":15.0,"min":5.0,"average":10.0,"last":5.0,"unit":"C","overtemp":false}}"#;
        let items: [Option<&[u8]>; 1] = [Some(b"not json")];
        let (out, warnings) = folded(Some(staged), &items);
        assert_eq!(
            out,
            r#"{"temperature":{"count":2,"max":15.0,"min":5.0,"average":10.0,"last":5.0,"unit":"C","overtemp":false}}"#
        );
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn accumulate_rejects_a_foreign_staged_value() {
        let err = accumulate(Some(b"{\"humidity\":{}}"), &[]).expect_err("not a temperature");
        assert!(err.starts_with("the staged value is not a temperature record"), "{err}");
    }
}
