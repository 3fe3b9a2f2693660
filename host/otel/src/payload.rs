//! The payload an OpenTelemetry destination takes: the JSON the platform's otel graphs produce
//! (the output of its `otel-transform` operator), checked and turned into OTLP data.
//!
//! ```json
//! {"metrics": [{"name": "temperature", "type": "f64_gauge", "value": 72.5, "unit": "Cel",
//!               "description": "…", "timestamp": 1754851200000000000,
//!               "attributes": [{"key": "factoryId", "value": "factory1"}]}],
//!  "logs":    [{"value": "sensor initialized", "level": "info", "timestamp": …, "attributes": […]}]}
//! ```
//!
//! At least one of `metrics` and `logs`; `name`, `type`, `value` required for a metric, `value`
//! and `level` for a log; `timestamp` in nanoseconds since the epoch (the export's time when
//! absent); attribute values are strings. The message's user properties named `otel/<key>`
//! (what the platform's `otel-enrich` operator adds) become attributes `<key>` of every metric
//! and log in it; an attribute the payload gives itself wins. A payload that breaks any of this
//! is invalid as a whole: [`parse`] says why, naming the entry and field.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    Sum,
};
use serde_json::Value;

/// The prefix of user properties that become attributes.
pub const ATTRIBUTE_PROPERTY_PREFIX: &str = "otel/";

/// What one message carries, as OTLP data: one data point per metric entry (each its own
/// [`Metric`], merged with others of the same identity when a batch is exported), one record
/// per log entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Telemetry {
    /// Metrics, one data point each.
    pub metrics: Vec<Metric>,
    /// Log records.
    pub logs: Vec<LogRecord>,
}

/// The metric types the platform documents, by their names in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    U64Counter,
    F64Counter,
    I64UpDownCounter,
    F64UpDownCounter,
    U64Gauge,
    I64Gauge,
    F64Gauge,
    F64Histogram,
    U64Histogram,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "u64_counter" => Kind::U64Counter,
            "f64_counter" => Kind::F64Counter,
            "i64_up_down_counter" => Kind::I64UpDownCounter,
            "f64_up_down_counter" => Kind::F64UpDownCounter,
            "u64_gauge" => Kind::U64Gauge,
            "i64_gauge" => Kind::I64Gauge,
            "f64_gauge" => Kind::F64Gauge,
            "f64_histogram" => Kind::F64Histogram,
            "u64_histogram" => Kind::U64Histogram,
            _ => return None,
        })
    }

    /// The value as this type holds it: an integer type takes only integers in its range.
    fn value(self, v: &Value) -> Result<number_data_point::Value, &'static str> {
        use number_data_point::Value::{AsDouble, AsInt};
        match self {
            Kind::U64Counter | Kind::U64Gauge | Kind::U64Histogram => v
                .as_u64()
                .and_then(|u| i64::try_from(u).ok())
                .map(AsInt)
                .ok_or("not an unsigned integer (the type is u64)"),
            Kind::I64UpDownCounter | Kind::I64Gauge => v.as_i64().map(AsInt).ok_or("not an integer (the type is i64)"),
            _ => v.as_f64().map(AsDouble).ok_or("not a number"),
        }
    }
}

/// The platform's log levels, as OTLP severities.
fn severity(level: &str) -> Option<SeverityNumber> {
    Some(match level {
        "trace" => SeverityNumber::Trace,
        "debug" => SeverityNumber::Debug,
        "info" => SeverityNumber::Info,
        "warn" => SeverityNumber::Warn,
        "error" => SeverityNumber::Error,
        "fatal" => SeverityNumber::Fatal,
        _ => return None,
    })
}

fn string(s: impl Into<String>) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.into())),
    })
}

/// Reads one message's payload; `now` (ns since the epoch) stamps entries without a timestamp.
pub fn parse(payload: &[u8], user_properties: &[(String, String)], now: u64) -> Result<Telemetry, String> {
    let doc: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(top) = &doc else {
        return Err("not a JSON object with `metrics` or `logs`".into());
    };
    let list = |key: &str| match top.get(key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(format!("`{key}` is not an array")),
    };
    let (metrics, logs) = (list("metrics")?, list("logs")?);
    if metrics.is_none() && logs.is_none() {
        return Err("neither `metrics` nor `logs` is present".into());
    }
    let enrich: Vec<KeyValue> = user_properties
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(ATTRIBUTE_PROPERTY_PREFIX).map(|key| KeyValue {
                key: key.to_owned(),
                value: string(v.clone()),
            })
        })
        .collect();
    let mut out = Telemetry::default();
    for (i, m) in metrics.into_iter().flatten().enumerate() {
        out.metrics
            .push(metric(m, &enrich, now).map_err(|e| format!("metrics[{i}]: {e}"))?);
    }
    for (i, l) in logs.into_iter().flatten().enumerate() {
        out.logs
            .push(log(l, &enrich, now).map_err(|e| format!("logs[{i}]: {e}"))?);
    }
    Ok(out)
}

fn text<'a>(entry: &'a Value, key: &str, required: bool) -> Result<Option<&'a str>, String> {
    match entry.get(key) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(format!("`{key}` is missing")),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{key}` is not a string")),
    }
}

fn timestamp(entry: &Value, now: u64) -> Result<u64, String> {
    match entry.get("timestamp") {
        None | Some(Value::Null) => Ok(now),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| "`timestamp` is not nanoseconds since the epoch (an unsigned integer)".to_owned()),
    }
}

/// The entry's `attributes`, then the message's `otel/…` properties it does not override.
fn attributes(entry: &Value, enrich: &[KeyValue]) -> Result<Vec<KeyValue>, String> {
    let mut out = Vec::new();
    match entry.get("attributes") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, a) in list.iter().enumerate() {
                let key = text(a, "key", true).map_err(|e| format!("attributes[{i}]: {e}"))?;
                let value = text(a, "value", true).map_err(|e| format!("attributes[{i}]: {e}"))?;
                out.push(KeyValue {
                    key: key.unwrap_or_default().to_owned(),
                    value: string(value.unwrap_or_default()),
                });
            }
        }
        Some(_) => return Err("`attributes` is not an array".into()),
    }
    for e in enrich {
        if !out.iter().any(|a| a.key == e.key) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

fn metric(m: &Value, enrich: &[KeyValue], now: u64) -> Result<Metric, String> {
    let name = text(m, "name", true)?.unwrap_or_default();
    if name.is_empty() {
        return Err("`name` is empty".into());
    }
    let ty = text(m, "type", true)?.unwrap_or_default();
    let kind = Kind::parse(ty).ok_or_else(|| format!("`type` `{ty}` is not a supported metric type"))?;
    let raw = m.get("value").ok_or("`value` is missing")?;
    let value = kind.value(raw).map_err(|why| format!("`value` {raw} is {why}"))?;
    let time = timestamp(m, now)?;
    let attributes = attributes(m, enrich)?;
    let point = NumberDataPoint {
        attributes: attributes.clone(),
        start_time_unix_nano: time,
        time_unix_nano: time,
        value: Some(value),
        ..Default::default()
    };
    let delta = AggregationTemporality::Delta as i32;
    let data = match kind {
        Kind::U64Counter | Kind::F64Counter => metric::Data::Sum(Sum {
            data_points: vec![point],
            aggregation_temporality: delta,
            is_monotonic: true,
        }),
        Kind::I64UpDownCounter | Kind::F64UpDownCounter => metric::Data::Sum(Sum {
            data_points: vec![point],
            aggregation_temporality: delta,
            is_monotonic: false,
        }),
        Kind::U64Gauge | Kind::I64Gauge | Kind::F64Gauge => metric::Data::Gauge(Gauge {
            data_points: vec![point],
        }),
        Kind::F64Histogram | Kind::U64Histogram => {
            let v = match value {
                number_data_point::Value::AsDouble(d) => d,
                number_data_point::Value::AsInt(i) => i as f64,
            };
            // One recorded value: a histogram of one observation, in one bucket.
            metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes,
                    start_time_unix_nano: time,
                    time_unix_nano: time,
                    count: 1,
                    sum: Some(v),
                    bucket_counts: vec![1],
                    explicit_bounds: vec![],
                    min: Some(v),
                    max: Some(v),
                    ..Default::default()
                }],
                aggregation_temporality: delta,
            })
        }
    };
    Ok(Metric {
        name: name.to_owned(),
        description: text(m, "description", false)?.unwrap_or_default().to_owned(),
        unit: text(m, "unit", false)?.unwrap_or_default().to_owned(),
        data: Some(data),
        ..Default::default()
    })
}

fn log(l: &Value, enrich: &[KeyValue], now: u64) -> Result<LogRecord, String> {
    let value = text(l, "value", true)?.unwrap_or_default();
    let level = text(l, "level", true)?.unwrap_or_default();
    let severity = severity(level).ok_or_else(|| format!("`level` `{level}` is not a supported log level"))?;
    Ok(LogRecord {
        time_unix_nano: timestamp(l, now)?,
        observed_time_unix_nano: now,
        severity_number: severity as i32,
        severity_text: level.to_owned(),
        body: string(value),
        attributes: attributes(l, enrich)?,
        ..Default::default()
    })
}

/// Puts the data points of metrics with the same name, type, unit and description (and, for
/// sums, temporality and monotonicity) into one [`Metric`]: the shape an exporter sends.
pub fn merge(metrics: Vec<Metric>) -> Vec<Metric> {
    let mut out: Vec<Metric> = Vec::new();
    for m in metrics {
        let same = out.iter_mut().find(|o| {
            o.name == m.name
                && o.unit == m.unit
                && o.description == m.description
                && match (&o.data, &m.data) {
                    (Some(metric::Data::Gauge(_)), Some(metric::Data::Gauge(_))) => true,
                    (Some(metric::Data::Histogram(_)), Some(metric::Data::Histogram(_))) => true,
                    (Some(metric::Data::Sum(a)), Some(metric::Data::Sum(b))) => a.is_monotonic == b.is_monotonic,
                    _ => false,
                }
        });
        match (same, m.data) {
            (Some(o), Some(metric::Data::Gauge(g))) => {
                if let Some(metric::Data::Gauge(og)) = &mut o.data {
                    og.data_points.extend(g.data_points);
                }
            }
            (Some(o), Some(metric::Data::Sum(s))) => {
                if let Some(metric::Data::Sum(os)) = &mut o.data {
                    os.data_points.extend(s.data_points);
                }
            }
            (Some(o), Some(metric::Data::Histogram(h))) => {
                if let Some(metric::Data::Histogram(oh)) = &mut o.data {
                    oh.data_points.extend(h.data_points);
                }
            }
            (_, data) => out.push(Metric { data, ..m }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_documented_example_becomes_a_gauge_point_with_its_attributes_and_time() {
        let t = parse(
            br#"{"metrics":[{"name":"temperature","description":"The temperature reading from sensor","type":"f64_gauge","value":72.5,"timestamp":1754851200000000000,"attributes":[{"key":"factoryId","value":"factory1"},{"key":"location","value":"warehouse"}]}]}"#,
            &props(&[("otel/line", "3"), ("otel/location", "ignored: the payload names it"), ("other", "x")]),
            7,
        )
        .unwrap();
        let m = &t.metrics[0];
        assert_eq!(
            (m.name.as_str(), m.description.as_str()),
            ("temperature", "The temperature reading from sensor")
        );
        let Some(metric::Data::Gauge(g)) = &m.data else {
            panic!("{m:?}")
        };
        let p = &g.data_points[0];
        assert_eq!(p.time_unix_nano, 1_754_851_200_000_000_000);
        assert_eq!(p.value, Some(number_data_point::Value::AsDouble(72.5)));
        let attrs: Vec<(String, String)> = p
            .attributes
            .iter()
            .map(|a| match &a.value {
                Some(AnyValue {
                    value: Some(any_value::Value::StringValue(s)),
                }) => (a.key.clone(), s.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            attrs,
            props(&[("factoryId", "factory1"), ("location", "warehouse"), ("line", "3")])
        );
    }

    #[test]
    fn every_type_and_level_maps_and_a_log_without_time_gets_now() {
        let t = parse(
            br#"{"metrics":[{"name":"a","type":"u64_counter","value":3},{"name":"b","type":"i64_up_down_counter","value":-2},{"name":"c","type":"f64_histogram","value":1.5}],
                "logs":[{"value":"hello","level":"warn"}]}"#,
            &[],
            42,
        )
        .unwrap();
        assert!(
            matches!(&t.metrics[0].data, Some(metric::Data::Sum(s)) if s.is_monotonic && s.data_points[0].value == Some(number_data_point::Value::AsInt(3)))
        );
        assert!(matches!(&t.metrics[1].data, Some(metric::Data::Sum(s)) if !s.is_monotonic));
        assert!(matches!(&t.metrics[2].data, Some(metric::Data::Histogram(h)) if h.data_points[0].sum == Some(1.5)));
        assert_eq!(t.logs[0].severity_number, SeverityNumber::Warn as i32);
        assert_eq!(t.logs[0].time_unix_nano, 42);
    }

    #[test]
    fn invalid_payloads_say_which_entry_and_field() {
        for (payload, why) in [
            (&b"nope"[..], "not JSON"),
            (br#"{"other":[]}"#, "neither `metrics` nor `logs`"),
            (br#"{"metrics":{}}"#, "`metrics` is not an array"),
            (
                br#"{"metrics":[{"type":"f64_gauge","value":1}]}"#,
                "metrics[0]: `name` is missing",
            ),
            (
                br#"{"metrics":[{"name":"x","type":"gauge","value":1}]}"#,
                "metrics[0]: `type` `gauge` is not a supported metric type",
            ),
            (
                br#"{"metrics":[{"name":"x","type":"u64_counter","value":-1}]}"#,
                "metrics[0]: `value` -1 is not an unsigned integer",
            ),
            (
                br#"{"metrics":[{"name":"x","type":"f64_gauge","value":"1"}]}"#,
                "metrics[0]: `value` \"1\" is not a number",
            ),
            (
                br#"{"metrics":[{"name":"x","type":"f64_gauge","value":1,"timestamp":"now"}]}"#,
                "`timestamp` is not nanoseconds",
            ),
            (
                br#"{"logs":[{"value":"x","level":"loud"}]}"#,
                "logs[0]: `level` `loud` is not a supported log level",
            ),
            (
                br#"{"logs":[{"value":"x","level":"info","attributes":[{"key":"k","value":1}]}]}"#,
                "logs[0]: attributes[0]: `value` is not a string",
            ),
        ] {
            let e = parse(payload, &[], 0).unwrap_err();
            assert!(e.contains(why), "{e} / {why}");
        }
    }

    #[test]
    fn a_batch_merges_points_of_one_metric() {
        let one = |v: f64| {
            parse(
                format!(r#"{{"metrics":[{{"name":"t","type":"f64_gauge","value":{v},"unit":"Cel"}}]}}"#).as_bytes(),
                &[],
                0,
            )
            .unwrap()
            .metrics
        };
        let mut all = one(1.0);
        all.extend(one(2.0));
        all.extend(
            parse(br#"{"metrics":[{"name":"t","type":"f64_counter","value":1}]}"#, &[], 0)
                .unwrap()
                .metrics,
        );
        let merged = merge(all);
        assert_eq!(merged.len(), 2, "a gauge and a counter of one name stay apart");
        let Some(metric::Data::Gauge(g)) = &merged[0].data else {
            panic!()
        };
        assert_eq!(g.data_points.len(), 2);
    }
}
