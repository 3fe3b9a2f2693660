//! The temperature and humidity records, exactly as they are read and written.
//!
//! Input shapes: `{"temperature":{"value":f64,"unit":"F"|"C"}}` and `{"humidity":{"value":f64}}`.
//! Written records carry `count, max, min, average, last` (0 when unknown; serde_json prints
//! `0.0`), `unit` and `overtemp` (temperature only) and `value` only when present, in the order
//! `value, count, max, min, average, last, unit, overtemp`: struct field order is serialization
//! order, so the declarations below *are* the format.

use serde::{Deserialize, Serialize};

use crate::stats::Stats;

/// The unit of a temperature. Anything but `"F"` or `"C"` makes a payload "not a temperature".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TemperatureUnit {
    /// Degrees Fahrenheit, written `"F"`.
    #[serde(rename = "F")]
    Fahrenheit,
    /// Degrees Celsius, written `"C"`.
    #[serde(rename = "C")]
    Celsius,
}

/// A temperature reading or an accumulated temperature record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemperatureRecord {
    /// The reading, present on single measurements, absent on accumulated records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Number of readings folded into the statistics (0 for a single reading).
    #[serde(default)]
    pub count: u64,
    /// Largest folded reading (0.0 when unknown).
    #[serde(default)]
    pub max: f64,
    /// Smallest folded reading (0.0 when unknown).
    #[serde(default)]
    pub min: f64,
    /// Mean of the folded readings (0.0 when unknown).
    #[serde(default)]
    pub average: f64,
    /// The last folded reading in batch order (0.0 when unknown).
    #[serde(default)]
    pub last: f64,
    /// Required: a record without a unit cannot be converted or compared safely.
    pub unit: TemperatureUnit,
    /// Set by `enrichment` when the window was too hot.
    #[serde(default)]
    pub overtemp: bool,
}

impl TemperatureRecord {
    /// A single reading with every statistic unknown.
    pub fn reading(value: f64, unit: TemperatureUnit) -> Self {
        TemperatureRecord {
            value: Some(value),
            count: 0,
            max: 0.0,
            min: 0.0,
            average: 0.0,
            last: 0.0,
            unit,
            overtemp: false,
        }
    }

    /// The accumulated record of `stats` (no `value`), in `unit`, not over temperature.
    pub fn summary(stats: &Stats, unit: TemperatureUnit) -> Self {
        TemperatureRecord {
            value: None,
            count: stats.count(),
            max: stats.max(),
            min: stats.min(),
            average: stats.average(),
            last: stats.last(),
            unit,
            overtemp: false,
        }
    }

    /// What the record contributes to the statistics (see [`Stats::of_record`]), in its unit.
    pub fn stats(&self) -> Stats {
        Stats::of_record(self.value, self.count, self.max, self.min, self.average, self.last)
    }
}

/// `{"temperature": {…}}`: the payload envelope. Other top-level keys are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemperaturePayload {
    /// The record inside the envelope.
    pub temperature: TemperatureRecord,
}

/// A humidity reading or an accumulated humidity record (the temperature record without
/// `unit` and `overtemp`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumidityRecord {
    /// The reading, present on single measurements, absent on accumulated records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Number of readings folded into the statistics.
    #[serde(default)]
    pub count: u64,
    /// Largest folded reading (0.0 when unknown).
    #[serde(default)]
    pub max: f64,
    /// Smallest folded reading (0.0 when unknown).
    #[serde(default)]
    pub min: f64,
    /// Mean of the folded readings (0.0 when unknown).
    #[serde(default)]
    pub average: f64,
    /// The last folded reading in batch order (0.0 when unknown).
    #[serde(default)]
    pub last: f64,
}

impl HumidityRecord {
    /// The accumulated record of `stats` (no `value`).
    pub fn summary(stats: &Stats) -> Self {
        HumidityRecord {
            value: None,
            count: stats.count(),
            max: stats.max(),
            min: stats.min(),
            average: stats.average(),
            last: stats.last(),
        }
    }

    /// What the record contributes to the statistics (see [`Stats::of_record`]).
    pub fn stats(&self) -> Stats {
        Stats::of_record(self.value, self.count, self.max, self.min, self.average, self.last)
    }
}

/// `{"humidity": {…}}`: the payload envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumidityPayload {
    /// The record inside the envelope.
    pub humidity: HumidityRecord,
}

/// The merged readings of one window, as `collection` writes them and `enrichment` reads them:
/// `{"sensor_data":{"temperature":[…],"humidity":[…],"object":[…]}}`. Each element is the inner
/// object of one item (`{"count":…}` of a temperature, `{"result":…}` of an object detection),
/// kept as JSON so fields this crate does not know pass through in their original order.
///
/// A category with no records is left out when writing (one hot reading through the complex
/// graph must come out as exactly `{"temperature":[{…}]}`, with no `humidity` or `object` key),
/// and a missing category reads as empty, so both spellings of "nothing" are accepted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SensorData {
    /// Temperature records in arrival order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub temperature: Vec<serde_json::Value>,
    /// Humidity records in arrival order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub humidity: Vec<serde_json::Value>,
    /// Object-detection results in arrival order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub object: Vec<serde_json::Value>,
}

/// `{"sensor_data": {…}}`: the payload envelope.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SensorDataPayload {
    /// The merged readings.
    pub sensor_data: SensorData,
}

/// Fahrenheit → Celsius, exactly `(v - 32) * 5 / 9` in this order, so results are bit-for-bit
/// those of the platform's samples (1209 °F → 653.8888888888889).
pub fn fahrenheit_to_celsius(value: f64) -> f64 {
    (value - 32.0) * 5.0 / 9.0
}

/// The payload as a temperature, `None` when it is not one (not JSON, no `temperature` object,
/// a field of the wrong type, or a unit other than `F`/`C`).
pub fn parse_temperature(payload: &[u8]) -> Option<TemperatureRecord> {
    serde_json::from_slice::<TemperaturePayload>(payload)
        .ok()
        .map(|p| p.temperature)
}

/// The payload as a humidity, `None` when it is not one.
pub fn parse_humidity(payload: &[u8]) -> Option<HumidityRecord> {
    serde_json::from_slice::<HumidityPayload>(payload)
        .ok()
        .map(|p| p.humidity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).expect("records serialize")
    }

    #[test]
    fn temperature_record_field_order_and_defaults() {
        let reading = TemperaturePayload {
            temperature: TemperatureRecord::reading(653.8888888888889, TemperatureUnit::Celsius),
        };
        assert_eq!(
            write(&reading),
            r#"{"temperature":{"value":653.8888888888889,"count":0,"max":0.0,"min":0.0,"average":0.0,"last":0.0,"unit":"C","overtemp":false}}"#
        );
        let mut record = reading.temperature.clone();
        record.value = None;
        record.count = 2;
        record.overtemp = true;
        assert_eq!(
            write(&record),
            r#"{"count":2,"max":0.0,"min":0.0,"average":0.0,"last":0.0,"unit":"C","overtemp":true}"#
        );
    }

    #[test]
    fn humidity_record_has_no_unit_or_overtemp() {
        let record = HumidityRecord {
            value: Some(41.5),
            count: 0,
            max: 0.0,
            min: 0.0,
            average: 0.0,
            last: 0.0,
        };
        assert_eq!(
            write(&HumidityPayload { humidity: record }),
            r#"{"humidity":{"value":41.5,"count":0,"max":0.0,"min":0.0,"average":0.0,"last":0.0}}"#
        );
    }

    #[test]
    fn conversion_is_the_exact_formula() {
        assert_eq!(fahrenheit_to_celsius(1209.0).to_string(), "653.8888888888889");
        assert_eq!(fahrenheit_to_celsius(32.0), 0.0);
        assert_eq!(fahrenheit_to_celsius(212.0), 100.0);
    }

    #[test]
    fn parsing_temperatures() {
        let t = parse_temperature(br#"{"temperature":{"value":1209,"unit":"F"}}"#).expect("temperature");
        assert_eq!(t.value, Some(1209.0));
        assert_eq!(t.unit, TemperatureUnit::Fahrenheit);
        assert_eq!(t.count, 0);
        assert!(parse_temperature(br#"{"temperature":{"value":1,"unit":"K"}}"#).is_none());
        assert!(parse_temperature(br#"{"temperature":{"value":1}}"#).is_none());
        assert!(parse_temperature(br#"{"temperature":{"value":"hot","unit":"C"}}"#).is_none());
        assert!(parse_temperature(br#"{"humidity":{"value":1}}"#).is_none());
        assert!(parse_temperature(b"\xff\xd8\xff").is_none());
        assert!(parse_temperature(b"").is_none());
    }

    #[test]
    fn sensor_data_omits_empty_categories_and_reads_missing_ones_as_empty() {
        let data = SensorData {
            object: vec![serde_json::json!({"result": "dog"})],
            ..SensorData::default()
        };
        assert_eq!(
            write(&SensorDataPayload {
                sensor_data: data.clone()
            }),
            r#"{"sensor_data":{"object":[{"result":"dog"}]}}"#
        );
        assert_eq!(write(&SensorData::default()), "{}");
        for input in [
            &br#"{"object":[{"result":"dog"}]}"#[..],
            br#"{"temperature":[],"humidity":[],"object":[{"result":"dog"}]}"#,
        ] {
            assert_eq!(serde_json::from_slice::<SensorData>(input).expect("sensor data"), data);
        }
    }

    #[test]
    fn parsing_humidity() {
        assert_eq!(
            parse_humidity(br#"{"humidity":{"value":55}}"#).and_then(|h| h.value),
            Some(55.0)
        );
        assert!(parse_humidity(br#"{"temperature":{"value":1,"unit":"C"}}"#).is_none());
        assert!(parse_humidity(br#"{"humidity":7}"#).is_none());
    }
}
