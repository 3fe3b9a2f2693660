//! How one output is compared with one expected object: field paths (`select`, `ignores`), the
//! payload rule (an expected string against the actual bytes), JSON value equality and the path
//! of the first difference.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use wasmflow_transport::Output;

/// The top-level fields of an output as the expectations name them.
pub(crate) const FIELDS: [&str; 4] = ["payload", "topic", "content-type", "properties"];

/// The prefix after which the rest of a path is one user-property key, dots included.
const USER_PROPERTIES: &str = "properties.user-properties";

/// What `select` accepts, for error messages.
pub(crate) const SELECT_FORMS: &str =
    "payload, payload.<path>, topic, content-type, properties, properties.user-properties, \
     properties.user-properties.<key>";

/// Splits a path as the descriptors write it into segments rooted at the output.
///
/// `properties.user-properties.<key>` keeps everything after the prefix as one key, because
/// user-property keys contain `/` and may contain dots (`otel/factoryId`). Elsewhere segments
/// are separated by `.`, and `a[0]` is the same as `a.0` (a number indexes an array).
///
/// With `payload_relative`, a path whose first segment is not one of [`FIELDS`] is taken to be
/// inside the payload: that is how wasmflow's own descriptors wrote `ignores` (`t.last`) before
/// they followed the platform's output-rooted form (`payload.humidity`).
pub(crate) fn parse_path(path: &str, payload_relative: bool) -> Result<Vec<String>, String> {
    if path == USER_PROPERTIES {
        return Ok(vec!["properties".into(), "user-properties".into()]);
    }
    if let Some(key) = path.strip_prefix(USER_PROPERTIES).and_then(|r| r.strip_prefix('.')) {
        if key.is_empty() {
            return Err(format!("`{path}`: no user-property key after `{USER_PROPERTIES}.`"));
        }
        return Ok(vec!["properties".into(), "user-properties".into(), key.into()]);
    }
    let mut segs = Vec::new();
    for part in path.split('.') {
        let (head, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if head.is_empty() && (segs.is_empty() || rest.is_empty()) {
            return Err(format!("`{path}`: empty segment"));
        }
        if !head.is_empty() {
            segs.push(head.to_string());
        }
        while !rest.is_empty() {
            let close = rest.find(']').ok_or_else(|| format!("`{path}`: `[` without `]`"))?;
            let index = &rest[1..close];
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("`{path}`: `[{index}]` is not an array index"));
            }
            segs.push(index.to_string());
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(format!("`{path}`: unexpected `{rest}` after `]`"));
            }
        }
    }
    match segs.first().map(String::as_str) {
        Some(f) if FIELDS.contains(&f) => Ok(segs),
        _ if payload_relative => {
            segs.insert(0, "payload".into());
            Ok(segs)
        }
        _ => Err(format!("`{path}`: not a field of an output (one of {SELECT_FORMS})")),
    }
}

/// Checks that a `select` path names something an output has.
pub(crate) fn check_select(path: &str) -> Result<Vec<String>, String> {
    let segs = parse_path(path, false)?;
    let ok = match segs[0].as_str() {
        "payload" => true,
        "topic" | "content-type" => segs.len() == 1,
        _ => segs.len() == 1 || segs[1] == "user-properties",
    };
    if ok {
        Ok(segs)
    } else {
        Err(format!("`{path}`: not a field of an output (one of {SELECT_FORMS})"))
    }
}

/// A payload as it is compared: JSON when it parses as JSON, its exact bytes otherwise.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    Json(Value),
    Text(Vec<u8>),
}

impl Payload {
    /// The actual payload: the bytes the sink emitted.
    pub(crate) fn actual(bytes: &[u8]) -> Self {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => Payload::Json(v),
            Err(_) => Payload::Text(bytes.to_vec()),
        }
    }

    /// The expected payload: a JSON string stands for the payload's bytes (the platform writes
    /// every payload that way), so its content is JSON when it parses, text otherwise; any other
    /// JSON value (wasmflow's own expectations) is the payload's JSON.
    pub(crate) fn expected(v: &Value) -> Self {
        match v {
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(j) => Payload::Json(j),
                Err(_) => Payload::Text(s.as_bytes().to_vec()),
            },
            other => Payload::Json(other.clone()),
        }
    }

    fn show(&self) -> String {
        match self {
            Payload::Json(v) => format!("JSON {}", show(v)),
            Payload::Text(t) => format!("text {}", show(&Value::String(String::from_utf8_lossy(t).into_owned()))),
        }
    }
}

/// An output, or an expected object, split into its payload and the rest.
pub(crate) struct View {
    payload: Option<Payload>,
    rest: Value,
}

impl View {
    /// An actual output; duplicate user-property keys keep the last value.
    pub(crate) fn of_output(o: &Output) -> Self {
        let props: Map<String, Value> = o
            .user_properties
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut rest = Map::new();
        rest.insert("topic".into(), o.topic.clone().map_or(Value::Null, Value::String));
        if let Some(ct) = &o.content_type {
            rest.insert("content-type".into(), Value::String(ct.clone()));
        }
        rest.insert("properties".into(), serde_json::json!({ "user-properties": props }));
        View {
            payload: Some(Payload::actual(&o.payload)),
            rest: Value::Object(rest),
        }
    }

    /// An expected object (user properties already normalised to a map).
    pub(crate) fn of_expected(e: &Value) -> Self {
        let mut rest = e.clone();
        let payload = rest
            .as_object_mut()
            .and_then(|o| o.shift_remove("payload"))
            .map(|p| Payload::expected(&p));
        View { payload, rest }
    }

    fn ignore(&mut self, segs: &[String]) {
        match segs.split_first() {
            Some((first, inner)) if first == "payload" => {
                if inner.is_empty() {
                    self.payload = None;
                } else if let Some(Payload::Json(v)) = &mut self.payload {
                    remove(v, inner);
                }
            }
            _ => remove(&mut self.rest, segs),
        }
    }
}

/// Compares one output with one expected object. `select` and `ignores` are descriptor paths;
/// with no `select`, every top-level key of the expected object is compared. The error is the
/// JSON path of the first difference and what differs there.
pub(crate) fn compare_one(
    actual: &View,
    expected: &Value,
    select: &[String],
    ignores: &[String],
) -> Result<(), String> {
    let mut a = View {
        payload: actual.payload.clone(),
        rest: actual.rest.clone(),
    };
    let mut e = View::of_expected(expected);
    for ig in ignores {
        let segs = parse_path(ig, true).map_err(|m| format!("ignores: {m}"))?;
        a.ignore(&segs);
        e.ignore(&segs);
    }
    let selected: Vec<Vec<String>> = if select.is_empty() {
        let keys: BTreeSet<&String> = expected.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        keys.into_iter().map(|k| vec![k.clone()]).collect()
    } else {
        select
            .iter()
            .map(|s| check_select(s).map_err(|m| format!("select: {m}")))
            .collect::<Result<_, _>>()?
    };
    for segs in &selected {
        if segs[0] == "payload" {
            compare_payload(a.payload.as_ref(), e.payload.as_ref(), &segs[1..])?;
        } else {
            let path = render(segs);
            let (ev, av) = (get(&e.rest, segs), get(&a.rest, segs));
            match (ev, av) {
                (None | Some(Value::Null), None | Some(Value::Null)) => {}
                (Some(ev), None) => return Err(format!("{path}: missing, expected {}", show(ev))),
                (None, Some(av)) => return Err(format!("{path}: unexpected, got {}", show(av))),
                (Some(ev), Some(av)) => {
                    if let Some(d) = diff(ev, av, &path) {
                        return Err(d);
                    }
                }
            }
        }
    }
    Ok(())
}

fn compare_payload(a: Option<&Payload>, e: Option<&Payload>, inner: &[String]) -> Result<(), String> {
    let root = "$.payload";
    if inner.is_empty() {
        return match (e, a) {
            (None, None) => Ok(()),
            (Some(e), None) => Err(format!("{root}: missing, expected {}", e.show())),
            (None, Some(a)) => Err(format!("{root}: unexpected, got {}", a.show())),
            (Some(Payload::Json(ev)), Some(Payload::Json(av))) => diff(ev, av, root).map_or(Ok(()), Err),
            (Some(Payload::Text(et)), Some(Payload::Text(at))) if et == at => Ok(()),
            (Some(e), Some(a)) => Err(format!("{root}: expected {}, got {}", e.show(), a.show())),
        };
    }
    let (ev, av) = (json_payload(e, "expected", inner)?, json_payload(a, "actual", inner)?);
    let mut segs = vec!["payload".to_string()];
    segs.extend(inner.iter().cloned());
    let path = render(&segs);
    match (ev.and_then(|v| get(v, inner)), av.and_then(|v| get(v, inner))) {
        (None, None) => Ok(()),
        (Some(ev), None) => Err(format!("{path}: missing, expected {}", show(ev))),
        (None, Some(av)) => Err(format!("{path}: unexpected, got {}", show(av))),
        (Some(ev), Some(av)) => diff(ev, av, &path).map_or(Ok(()), Err),
    }
}

fn json_payload<'a>(p: Option<&'a Payload>, side: &str, inner: &[String]) -> Result<Option<&'a Value>, String> {
    match p {
        Some(Payload::Json(v)) => Ok(Some(v)),
        None => Ok(None),
        Some(t) => Err(format!(
            "$.payload: `payload.{}` is selected, but the {side} payload is not JSON: {}",
            inner.join("."),
            t.show()
        )),
    }
}

/// The first difference between two JSON values, as `<path>: <what>`, or `None` when they are
/// equal. Object keys are order-insensitive and visited in sorted order, array elements by
/// index, numbers compare by value (`1 == 1.0`, `653.88 == 653.880`), so the difference reported
/// is the same on every run.
pub(crate) fn diff(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let keys: BTreeSet<&String> = e.keys().chain(a.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = format!("{path}{}", key_segment(k));
                match (e.get(k), a.get(k)) {
                    (Some(ev), Some(av)) => diff(ev, av, &p),
                    (Some(ev), None) => Some(format!("{p}: missing, expected {}", show(ev))),
                    (None, Some(av)) => Some(format!("{p}: unexpected, got {}", show(av))),
                    (None, None) => None,
                }
            })
        }
        (Value::Array(e), Value::Array(a)) => (0..e.len().max(a.len())).find_map(|i| {
            let p = format!("{path}[{i}]");
            match (e.get(i), a.get(i)) {
                (Some(ev), Some(av)) => diff(ev, av, &p),
                (Some(ev), None) => Some(format!("{p}: missing, expected {}", show(ev))),
                (None, Some(av)) => Some(format!("{p}: unexpected, got {}", show(av))),
                (None, None) => None,
            }
        }),
        (Value::Number(en), Value::Number(an)) if numbers_equal(en, an) => None,
        (Value::Number(_), Value::Number(_)) => Some(format!("{path}: expected {expected}, got {actual}")),
        (e, a) if e == a => None,
        (e, a) => Some(format!("{path}: expected {}, got {}", show(e), show(a))),
    }
}

/// Numbers are equal by value: integers exactly, anything with a fraction or exponent as f64.
fn numbers_equal(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    let int = |n: &serde_json::Number| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x == y,
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

/// `$.a.b[0]`; keys that are not plain words are written `["k.e y"]`.
pub(crate) fn render(segs: &[String]) -> String {
    let mut s = String::from("$");
    for (i, seg) in segs.iter().enumerate() {
        // A number after the first segment is shown as an index; the value decides at lookup.
        if i > 0 && !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) && !is_user_property(segs, i) {
            s.push_str(&format!("[{seg}]"));
        } else {
            s.push_str(&key_segment(seg));
        }
    }
    s
}

fn is_user_property(segs: &[String], i: usize) -> bool {
    i == 2 && segs[0] == "properties" && segs[1] == "user-properties"
}

fn key_segment(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '/' | '@' | ':' | '$'));
    if plain {
        format!(".{k}")
    } else {
        format!("[{}]", Value::String(k.to_string()))
    }
}

/// A value for a message, compact and cut at 200 characters.
pub(crate) fn show(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

fn get<'a>(v: &'a Value, segs: &[String]) -> Option<&'a Value> {
    segs.iter().try_fold(v, |v, seg| match v {
        Value::Object(o) => o.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn remove(v: &mut Value, segs: &[String]) {
    let Some((last, parent)) = segs.split_last() else {
        return;
    };
    let target = parent.iter().try_fold(v, |v, seg| match v {
        Value::Object(o) => o.get_mut(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
        _ => None,
    });
    match target {
        Some(Value::Object(o)) => {
            o.shift_remove(last);
        }
        Some(Value::Array(a)) => {
            if let Ok(i) = last.parse::<usize>() {
                if i < a.len() {
                    a.remove(i);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn segs(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn paths_parse_dots_brackets_and_user_property_keys() {
        assert_eq!(
            parse_path("payload.t[0].last", false),
            Ok(segs(&["payload", "t", "0", "last"]))
        );
        assert_eq!(
            parse_path("payload.t.0.last", false),
            Ok(segs(&["payload", "t", "0", "last"]))
        );
        assert_eq!(
            parse_path("properties.user-properties.otel/factoryId", false),
            Ok(segs(&["properties", "user-properties", "otel/factoryId"]))
        );
        assert_eq!(
            parse_path("properties.user-properties.a.b", false),
            Ok(segs(&["properties", "user-properties", "a.b"])),
            "the rest after the prefix is one key"
        );
        assert_eq!(parse_path("t.last", true), Ok(segs(&["payload", "t", "last"])));
        assert_eq!(parse_path("payload.humidity", true), Ok(segs(&["payload", "humidity"])));
        assert!(parse_path("t.last", false).is_err());
        assert!(parse_path("payload..x", false).is_err());
        assert!(parse_path("payload.t[x]", false).is_err());
        assert!(check_select("topic.x").is_err());
        assert!(check_select("properties.other").is_err());
        assert!(check_select("content-type").is_ok());
    }

    #[test]
    fn numbers_compare_by_value() {
        assert_eq!(
            diff(&json!(653.88), &serde_json::from_str("653.880").unwrap(), "$"),
            None
        );
        assert_eq!(diff(&json!(1), &json!(1.0), "$"), None);
        assert_eq!(diff(&json!(-3), &json!(-3.0), "$"), None);
        assert_eq!(diff(&json!(u64::MAX), &json!(u64::MAX), "$"), None);
        assert_eq!(
            diff(&json!(653.88), &json!(654.0), "$.payload.temperature.value").as_deref(),
            Some("$.payload.temperature.value: expected 653.88, got 654.0")
        );
        assert!(diff(&json!(1), &json!("1"), "$").is_some(), "a number is not a string");
    }

    #[test]
    fn objects_ignore_key_order_and_report_the_first_difference_in_sorted_order() {
        let e = json!({"b": {"y": 1, "x": [1, 2]}, "a": true});
        let a = json!({"a": true, "b": {"x": [1, 2], "y": 1}});
        assert_eq!(diff(&e, &a, "$"), None);
        let a = json!({"a": false, "b": {"x": [1, 3], "y": 2}});
        assert_eq!(diff(&e, &a, "$").as_deref(), Some("$.a: expected true, got false"));
        let a = json!({"a": true, "b": {"x": [1, 3], "y": 2}});
        assert_eq!(diff(&e, &a, "$").as_deref(), Some("$.b.x[1]: expected 2, got 3"));
        let a = json!({"a": true, "b": {"x": [1], "y": 1}});
        assert_eq!(diff(&e, &a, "$").as_deref(), Some("$.b.x[1]: missing, expected 2"));
        let a = json!({"a": true, "b": {"x": [1, 2], "y": 1, "z": 0}});
        assert_eq!(diff(&e, &a, "$").as_deref(), Some("$.b.z: unexpected, got 0"));
        assert_eq!(
            diff(&json!({"a.b": 1}), &json!({"a.b": 2}), "$").as_deref(),
            Some(r#"$["a.b"]: expected 1, got 2"#)
        );
    }

    #[test]
    fn an_expected_string_is_the_payload_bytes() {
        assert!(matches!(Payload::expected(&json!("{\"a\":1}")), Payload::Json(_)));
        assert!(matches!(Payload::expected(&json!("hello")), Payload::Text(_)));
        assert!(matches!(Payload::expected(&json!({"a": 1})), Payload::Json(_)));
        assert!(matches!(Payload::actual(b"\xff\xfe"), Payload::Text(_)));
    }

    #[test]
    fn paths_render_indices_and_odd_keys() {
        assert_eq!(render(&segs(&["payload", "t", "0", "last"])), "$.payload.t[0].last");
        assert_eq!(
            render(&segs(&["properties", "user-properties", "otel/factoryId"])),
            "$.properties.user-properties.otel/factoryId"
        );
        assert_eq!(
            render(&segs(&["properties", "user-properties", "7"])),
            "$.properties.user-properties.7"
        );
        assert_eq!(
            render(&segs(&["properties", "user-properties", "a b"])),
            r#"$.properties.user-properties["a b"]"#
        );
    }
}
