//! Golden-file tests (`wasmflow test`): run a graph on a folder of input messages and compare
//! what its sinks emit with expected JSON.
//!
//! A descriptor (`*.test.yaml`):
//! ```yaml
//! name: one hot reading
//! graph: ../../graphs/temperature-humidity.yaml   # relative to the descriptor
//! input: input/                # one file per message, sent in name order; `<file>.meta.json`
//!                              # may give {"topic", "content-type", "user-properties": {k: v}}
//! expected: expected.json      # one output object or an array of them
//! select: [payload, topic]     # dotted paths compared (default: the keys of each expected object)
//! ignores: [temperature.0.last] # dotted paths inside JSON payloads left out of the comparison
//! timeout: 10000               # ms for the whole run
//! state: seed.json             # optional state-store seed
//! config: ["module-temperature/filter.temperature_upper_bound=100"]
//! ```
//! An output compares as `{"payload": <JSON, or the text>, "topic": …,
//! "properties": {"user-properties": {k: v}}}`; JSON payloads compare as values, so formatting
//! does not matter.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::graph::{Destination, Input, Output};

/// A parsed descriptor, paths resolved against its directory.
#[derive(Debug, Clone)]
pub struct GoldenTest {
    pub name: String,
    pub file: PathBuf,
    pub graph: PathBuf,
    pub input: PathBuf,
    pub expected: PathBuf,
    pub select: Vec<String>,
    pub ignores: Vec<String>,
    pub timeout: Duration,
    pub state: Option<PathBuf>,
    pub config: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Descriptor {
    name: Option<String>,
    graph: PathBuf,
    input: PathBuf,
    expected: PathBuf,
    #[serde(default)]
    select: Vec<String>,
    #[serde(default)]
    ignores: Vec<String>,
    #[serde(default = "default_timeout")]
    timeout: u64,
    state: Option<PathBuf>,
    #[serde(default)]
    config: Vec<String>,
}

fn default_timeout() -> u64 {
    30_000
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Meta {
    topic: Option<String>,
    #[serde(rename = "content-type")]
    content_type: Option<String>,
    #[serde(rename = "user-properties", default)]
    user_properties: Map<String, Value>,
}

impl GoldenTest {
    /// Reads a descriptor; every problem names the file and the field.
    pub fn load(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let d: Descriptor = serde_yaml_ng::from_str(&text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
        let dir = file.parent().unwrap_or(Path::new("."));
        let name = d.name.unwrap_or_else(|| {
            file.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        Ok(Self {
            name,
            file: file.to_path_buf(),
            graph: dir.join(d.graph),
            input: dir.join(d.input),
            expected: dir.join(d.expected),
            select: d.select,
            ignores: d.ignores,
            timeout: Duration::from_millis(d.timeout),
            state: d.state.map(|s| dir.join(s)),
            config: d.config,
        })
    }

    /// The input messages, in file-name order.
    pub fn inputs(&self) -> Result<Vec<Input>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.input)
            .with_context(|| format!("{}: input folder {}", self.file.display(), self.input.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && !p.to_string_lossy().ends_with(".meta.json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| {
                let payload = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
                let meta_path = PathBuf::from(format!("{}.meta.json", f.display()));
                let meta: Meta = if meta_path.is_file() {
                    serde_json::from_slice(&std::fs::read(&meta_path)?)
                        .map_err(|e| anyhow!("{}: {e}", meta_path.display()))?
                } else {
                    Meta::default()
                };
                let user_properties = meta
                    .user_properties
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
                    .collect();
                Ok(Input {
                    topic: meta.topic.unwrap_or_else(|| "input".into()),
                    payload: Arc::from(payload),
                    content_type: meta.content_type,
                    user_properties,
                })
            })
            .collect()
    }

    /// The expected outputs.
    pub fn expected(&self) -> Result<Vec<Value>> {
        let text =
            std::fs::read_to_string(&self.expected).with_context(|| format!("reading {}", self.expected.display()))?;
        match serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", self.expected.display()))? {
            Value::Array(a) => Ok(a),
            one @ Value::Object(_) => Ok(vec![one]),
            _ => bail!(
                "{}: expected one JSON object or an array of them",
                self.expected.display()
            ),
        }
    }

    /// Compares sink outputs with the expectation; `Err` carries a readable difference.
    pub fn compare(&self, outputs: &[Output], started: Instant) -> Result<(), String> {
        if started.elapsed() > self.timeout {
            return Err(format!(
                "took {:.1?}, over the {:?} timeout",
                started.elapsed(),
                self.timeout
            ));
        }
        let expected = self.expected().map_err(|e| e.to_string())?;
        let actual: Vec<Value> = outputs
            .iter()
            .filter(|o| matches!(o.destination, Destination::Sink(_)))
            .map(comparable)
            .collect();
        if actual.len() != expected.len() {
            return Err(format!(
                "expected {} outputs, got {}:\n{}",
                expected.len(),
                actual.len(),
                actual.iter().map(|a| format!("  {a}")).collect::<Vec<_>>().join("\n")
            ));
        }
        for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
            let e = normalize_expected(e);
            let paths: Vec<String> = if self.select.is_empty() {
                e.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
            } else {
                self.select.clone()
            };
            for p in &paths {
                let (mut av, mut ev) = (
                    get(a, p).cloned().unwrap_or(Value::Null),
                    get(&e, p).cloned().unwrap_or(Value::Null),
                );
                if p == "payload" || p.starts_with("payload.") {
                    for ig in &self.ignores {
                        let rel = if p == "payload" {
                            ig.clone()
                        } else {
                            ig.strip_prefix(&format!("{}.", &p["payload.".len()..]))
                                .unwrap_or("")
                                .to_string()
                        };
                        if !rel.is_empty() {
                            remove(&mut av, &rel);
                            remove(&mut ev, &rel);
                        }
                    }
                }
                if av != ev {
                    return Err(format!("output {i}, `{p}`:\n  expected {ev}\n  actual   {av}"));
                }
            }
        }
        Ok(())
    }
}

/// An output as the JSON the expectations are written in.
pub fn comparable(o: &Output) -> Value {
    let payload = serde_json::from_slice::<Value>(&o.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&o.payload).into_owned()));
    let props: Map<String, Value> = o
        .user_properties
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    serde_json::json!({ "payload": payload, "topic": o.topic, "properties": { "user-properties": props } })
}

/// Expected user properties may be written as `[[k, v], …]` too.
fn normalize_expected(e: &Value) -> Value {
    let mut e = e.clone();
    if let Some(Value::Array(pairs)) = e.pointer("/properties/user-properties").cloned() {
        let map: Map<String, Value> = pairs
            .iter()
            .filter_map(|p| match p.as_array().map(Vec::as_slice) {
                Some([Value::String(k), v]) => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect();
        if let Some(slot) = e.pointer_mut("/properties/user-properties") {
            *slot = Value::Object(map);
        }
    }
    e
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, seg| match v {
        Value::Object(o) => o.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn remove(v: &mut Value, path: &str) {
    let (parent, last) = match path.rsplit_once('.') {
        Some((p, l)) => (Some(p), l),
        None => (None, path),
    };
    let target = match parent {
        None => Some(v),
        Some(p) => p.split('.').try_fold(v, |v, seg| match v {
            Value::Object(o) => o.get_mut(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        }),
    };
    match target {
        Some(Value::Object(o)) => {
            o.remove(last);
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

/// Finds descriptors: files given directly, and `*.test.yaml` below directories, sorted.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
                    let path = e?.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.to_string_lossy().ends_with(".test.yaml") {
                        found.push(path);
                    }
                }
            }
        } else if p.is_file() {
            found.push(p.clone());
        } else {
            bail!("{}: no such test descriptor or folder", p.display());
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(payload: &str) -> Output {
        Output {
            destination: Destination::Sink("sink".into()),
            topic: Some("sensors".into()),
            payload: Arc::from(payload.as_bytes()),
            content_type: None,
            user_properties: vec![("__ts".into(), "1".into())],
        }
    }

    fn test_with(dir: &Path, expected: &str, select: &[&str], ignores: &[&str]) -> GoldenTest {
        let e = dir.join("expected.json");
        std::fs::write(&e, expected).unwrap();
        GoldenTest {
            name: "t".into(),
            file: dir.join("t.test.yaml"),
            graph: dir.join("g.yaml"),
            input: dir.join("input"),
            expected: e,
            select: select.iter().map(|s| s.to_string()).collect(),
            ignores: ignores.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_secs(5),
            state: None,
            config: vec![],
        }
    }

    #[test]
    fn json_payloads_compare_as_values() {
        let d = tempfile::tempdir().unwrap();
        let t = test_with(
            d.path(),
            r#"{"payload": {"a": 1,   "b": [1, 2]}, "topic": "sensors"}"#,
            &[],
            &[],
        );
        assert_eq!(t.compare(&[out(r#"{"b":[1,2],"a":1}"#)], Instant::now()), Ok(()));
        let err = t.compare(&[out(r#"{"b":[1,3],"a":1}"#)], Instant::now()).unwrap_err();
        assert!(err.contains("output 0, `payload`"), "{err}");
    }

    #[test]
    fn select_and_ignores_narrow_the_comparison() {
        let d = tempfile::tempdir().unwrap();
        let t = test_with(
            d.path(),
            r#"[{"payload": {"t": {"count": 1, "last": 9}}, "topic": "other"}]"#,
            &["payload"],
            &["t.last"],
        );
        assert_eq!(
            t.compare(&[out(r#"{"t":{"count":1,"last":5}}"#)], Instant::now()),
            Ok(()),
            "topic not selected, last ignored"
        );
        let t = test_with(
            d.path(),
            r#"[{"payload": {"t": {"count": 2}}}]"#,
            &["payload.t.count"],
            &[],
        );
        assert!(t.compare(&[out(r#"{"t":{"count":1}}"#)], Instant::now()).is_err());
    }

    #[test]
    fn user_properties_compare_as_a_map_in_either_form() {
        let d = tempfile::tempdir().unwrap();
        let t = test_with(
            d.path(),
            r#"{"properties": {"user-properties": [["__ts", "1"]]}}"#,
            &[],
            &[],
        );
        assert_eq!(t.compare(&[out("x")], Instant::now()), Ok(()));
    }

    #[test]
    fn a_missing_output_is_reported_with_what_came() {
        let d = tempfile::tempdir().unwrap();
        let t = test_with(d.path(), r#"[{"payload": 1}, {"payload": 2}]"#, &[], &[]);
        let err = t.compare(&[out("1")], Instant::now()).unwrap_err();
        assert!(err.starts_with("expected 2 outputs, got 1"), "{err}");
    }
}
