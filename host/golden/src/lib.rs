//! Golden-file tests (`wasmflow test`): run a graph on a folder of input messages and compare
//! what its sinks emit with expected JSON. The descriptor is the platform's `*.test.yaml` (the
//! format of Azure IoT Operations' data-flow test runner) with two wasmflow additions, `state`
//! and `config`; `tests/golden/*/` holds wasmflow's own tests in it.
//!
//! ```yaml
//! name: one hot reading          # default: the file name without `.test.yaml`
//! graph: ../../graphs/temperature-humidity.yaml   # paths are relative to the descriptor
//! input: input/                  # a folder, anywhere (`../../statestore-scenario/data`)
//! expected: expected.json        # one output object, or an array of them
//! select: [payload, topic]       # fields compared (default: the keys of each expected object)
//! ignores: [payload.temperature.0.last]  # fields left out of the comparison
//! timeout: 10000                 # milliseconds for the whole run (default 60000)
//! state: seed.json               # wasmflow: state-store seed (default: see "Scenario folders")
//! config: ["module-temperature/filter.temperature_upper_bound=100"]   # wasmflow: overrides
//! ```
//!
//! # Inputs
//!
//! Every file of the input folder is one message, sent in file-name order (the platform
//! publishes them near-simultaneously, without an order; wasmflow makes the order the names').
//! Sub-folders (such as the `output/` a platform run leaves) and hidden files are skipped. A file
//! `<file>.meta.json` beside a message may give
//! `{"topic", "content-type", "user-properties": {k: v} | [[k, v], …]}` (wasmflow's own
//! addition; it is not sent itself). Without a topic, a message goes to the platform's default
//! topics: [`RAW_TOPIC`] (`snapshot_simulation`) for a `.raw` file, [`DEFAULT_TOPIC`]
//! (`sensors`) for any other file. The platform's publisher sends only `.json` and `.raw` files;
//! wasmflow sends any file, so a folder can hold PNG images too.
//!
//! # Expected outputs
//!
//! Only sink outputs count (dead letters do not). An expected file holding one object is
//! compared with the **last** output, as the platform does, and needs at least one; an array is
//! compared element by element, in order, and its length must equal the number of outputs (`[]`
//! asserts that nothing came out).
//!
//! Each expected object is written as an output looks:
//! `{"payload": …, "topic": …, "content-type": …, "properties": {"user-properties": {k: v}}}`
//! (user properties may also be `[[k, v], …]`). A `payload` that is a JSON **string** (how the
//! platform writes every payload) stands for the payload's bytes: when both the string and the
//! actual bytes parse as JSON they are compared as JSON values, otherwise as exact text. A
//! payload written as an object, array, number, boolean or null is the payload's JSON. JSON
//! values compare with object keys in any order and numbers by value (`1` equals `1.0`).
//!
//! A mismatch is reported as the output's index and the JSON path of the first difference, e.g.
//! `output 0: $.payload.temperature.value: expected 653.88, got 654.0`, or
//! `$.properties.user-properties.foo: missing, expected "x"`. The order is fixed: the `select`
//! paths as written (with no `select`, the expected object's keys sorted), object keys sorted,
//! array elements by index.
//!
//! # `select` and `ignores`
//!
//! Paths are rooted at the output: `payload`, `payload.<path>` (inside the JSON payload; `.0` or
//! `[0]` indexes an array), `topic`, `content-type`, `properties`, `properties.user-properties`,
//! and `properties.user-properties.<key>`, where everything after the prefix is the key, dots
//! included (keys such as `otel/factoryId`). `ignores` takes the same paths (the platform writes
//! `payload.humidity`); an ignore that does not start with one of those fields is a path inside
//! the payload, as wasmflow's descriptors wrote it before (`temperature.0.last`). An ignored
//! field is removed from both sides before comparing.
//!
//! # Scenario folders
//!
//! The platform's scenarios keep files next to their graph and data that its local host reads.
//! wasmflow looks for them in the graph's folder, then in the input folder's parent (so
//! `input: ../../statestore-scenario/data` finds `statestore-scenario/`), first found wins:
//!
//! - `statestore.json`, the state the graph expects: an array of `{"key": "value"}` objects. It
//!   is the seed when the descriptor names no `state`; [`GoldenTest::seed`] holds the pairs
//!   (either form, see [`parse_state_seed`]).
//! - `hostapp.env.list`, `KEY=VALUE` lines ([`parse_env_list`]): its `TK_SCHEMA_CONFIG_PATH`,
//!   relative to the list, names a JSON schema that modules receive at `init`
//!   ([`GoldenTest::schemas`]). With no env list, a `tk_schema_config.json` is used, as the
//!   platform's tooling generates the list with that name.
//!
//! This crate reads and checks these files; starting the graph with them is the caller's part.

#![warn(missing_docs)]

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use wasmflow_transport::{Destination, Input, Output};

mod compare;
mod error;
mod scenario;

pub use error::GoldenError;
use error::{invalid, read_bytes, read_text, Result};

pub use scenario::{
    load_schema, parse_env_list, parse_state_seed, Schema, DEFAULT_SCHEMA_FILE, ENV_LIST_FILE, SCHEMA_CONTENT_TYPE,
    SCHEMA_VAR, STATESTORE_FILE,
};

/// The topic of an input message that names none: the platform's runner publishes `.json` files
/// there. Its descriptors show it: `t08-schema-valid` and `t10-schema-mixed` expect topic
/// `sensors` from a graph whose only operator is a filter (which cannot change a topic), and the
/// platform's documented local run prints its outputs on `sensors`.
pub const DEFAULT_TOPIC: &str = "sensors";
/// The topic of a `.raw` input file that names none: the platform publishes raw images there,
/// which its samples' snapshot branch expects (`snapshot_topic` defaults to it).
pub const RAW_TOPIC: &str = "snapshot_simulation";
/// The platform's default `timeout`, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;

/// A parsed descriptor, paths resolved against its directory, with what its scenario folders
/// provide. Loading checks every field, so a broken descriptor fails before a graph starts.
#[derive(Debug, Clone)]
pub struct GoldenTest {
    /// The test's name, for `PASS`/`FAIL` lines.
    pub name: String,
    /// The descriptor, for messages.
    pub file: PathBuf,
    /// The graph to run.
    pub graph: PathBuf,
    /// The folder of input messages ([`GoldenTest::inputs`]).
    pub input: PathBuf,
    /// The expected-output file ([`GoldenTest::expected`]).
    pub expected: PathBuf,
    /// The fields compared, as written (checked at load); empty means the expected keys.
    pub select: Vec<String>,
    /// The fields left out of the comparison, as written (checked at load).
    pub ignores: Vec<String>,
    /// How long the run may take.
    pub timeout: Duration,
    /// The state-store seed file: the descriptor's `state`, or else a scenario folder's
    /// `statestore.json`. It may be in the platform's form, which the runtime's
    /// `seed_from_json` does not read; set [`GoldenTest::seed`] instead.
    pub state: Option<PathBuf>,
    /// The seed's `(key, value)` pairs in file order, parsed from `state` in either form.
    pub seed: Vec<(Vec<u8>, Vec<u8>)>,
    /// The scenario's `hostapp.env.list`, when there is one.
    pub host_env_file: Option<PathBuf>,
    /// Its variables, in file order (`TK_SCHEMA_CONFIG_PATH` among them).
    pub host_env: Vec<(String, String)>,
    /// The schemas modules receive in `init` (`module-schemas`): the one
    /// `TK_SCHEMA_CONFIG_PATH` names, or none.
    pub schemas: Vec<Schema>,
    /// `config` overrides (`<operation>.<parameter>=<value>`), as written.
    pub config: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Descriptor {
    name: Option<String>,
    graph: PathBuf,
    input: PathBuf,
    expected: PathBuf,
    #[serde(default, deserialize_with = "one_or_many")]
    select: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    ignores: Vec<String>,
    #[serde(default = "default_timeout")]
    timeout: u64,
    state: Option<PathBuf>,
    #[serde(default, deserialize_with = "one_or_many")]
    config: Vec<String>,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// A list of strings, or one string for a list of one.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => vec![],
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Meta {
    topic: Option<String>,
    #[serde(rename = "content-type")]
    content_type: Option<String>,
    #[serde(rename = "user-properties", default)]
    user_properties: Option<Value>,
}

impl GoldenTest {
    /// Reads a descriptor and the scenario files it implies; every problem names the file and
    /// the field.
    pub fn load(file: &Path) -> Result<Self> {
        let text = read_text(file, "")?;
        let mut test = Self::parse(file, &text)?;
        test.read_scenario()?;
        Ok(test)
    }

    /// The descriptor `text` (read from `file`) alone, checked, its paths resolved against
    /// `file`'s directory; no other file is read, so the test has what its descriptor names
    /// (its `state` file unread) and none of what scenario folders add. [`GoldenTest::load`] is
    /// this and then the scenario. Every problem names the file and the field.
    pub fn parse(file: &Path, text: &str) -> Result<Self> {
        let d: Descriptor = serde_yaml_ng::from_str(text).map_err(|e| invalid(file, e))?;
        let dir = file.parent().unwrap_or(Path::new("."));
        let resolve = |field: &str, p: &Path| -> Result<PathBuf> {
            if p.as_os_str().is_empty() {
                return Err(invalid(file, format!("`{field}` is empty")));
            }
            Ok(clean(&dir.join(p)))
        };
        let graph = resolve("graph", &d.graph)?;
        let input = resolve("input", &d.input)?;
        let expected = resolve("expected", &d.expected)?;
        for s in &d.select {
            compare::check_select(s).map_err(|m| invalid(file, format!("select: {m}")))?;
        }
        for s in &d.ignores {
            compare::parse_path(s, true).map_err(|m| invalid(file, format!("ignores: {m}")))?;
        }
        let name = match d.name {
            Some(n) if !n.trim().is_empty() => n,
            _ => {
                let f = file
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                f.strip_suffix(".test.yaml")
                    .or_else(|| f.strip_suffix(".yaml"))
                    .unwrap_or(&f)
                    .to_string()
            }
        };
        let state = d.state.as_deref().map(|s| resolve("state", s)).transpose()?;
        Ok(Self {
            name,
            file: file.to_path_buf(),
            graph,
            input,
            expected,
            select: d.select,
            ignores: d.ignores,
            timeout: Duration::from_millis(d.timeout),
            state,
            seed: vec![],
            host_env_file: None,
            host_env: vec![],
            schemas: vec![],
            config: d.config,
        })
    }

    /// Reads what the scenario folders hold (see the crate docs) and the state seed.
    fn read_scenario(&mut self) -> Result<()> {
        let file = &self.file;
        let mut dirs: Vec<PathBuf> = Vec::new();
        for d in [self.graph.parent(), self.input.parent()].into_iter().flatten() {
            let d = if d.as_os_str().is_empty() { Path::new(".") } else { d };
            if !dirs.iter().any(|x| x == d) {
                dirs.push(d.to_path_buf());
            }
        }
        let extras = scenario::find(&dirs).map_err(|e| e.within(file, "scenario files"))?;
        if self.state.is_none() {
            self.state = extras.state;
        }
        if let Some(s) = &self.state {
            self.seed = parse_state_seed(s).map_err(|e| e.within(file, "state"))?;
        }
        self.host_env_file = extras.env_file;
        self.host_env = extras.env;
        self.schemas = extras.schemas;
        Ok(())
    }

    /// The input messages, in file-name order (see the crate docs for topics and metadata).
    pub fn inputs(&self) -> Result<Vec<Input>> {
        let unreadable = |e: std::io::Error| invalid(&self.file, format!("input folder {}: {e}", self.input.display()));
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.input).map_err(unreadable)? {
            let path = entry.map_err(unreadable)?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if path.is_file() && !name.starts_with('.') && !name.ends_with(".meta.json") {
                files.push((name, path));
            }
        }
        files.sort();
        files.iter().map(|(_, f)| read_input(f)).collect()
    }

    /// The expected outputs: one object gives a list of one (compared with the last output).
    pub fn expected(&self) -> Result<Vec<Value>> {
        Ok(self.read_expected()?.0)
    }

    fn read_expected(&self) -> Result<(Vec<Value>, bool)> {
        let f = &self.expected;
        let text = read_text(f, "expected ")?;
        let v: Value = serde_json::from_str(&text).map_err(|e| invalid(f, format!("not JSON: {e}")))?;
        let (list, single) = match v {
            Value::Array(a) => (a, false),
            one @ Value::Object(_) => (vec![one], true),
            _ => return Err(invalid(f, "expected one JSON object or an array of them")),
        };
        if let Some(i) = list.iter().position(|e| !e.is_object()) {
            return Err(invalid(f, format!("element {i} is not an object")));
        }
        Ok((list.iter().map(normalize_expected).collect(), single))
    }

    /// Compares sink outputs with the expectation; `Err` names the output and the first
    /// difference. `started` is when the graph started, for the timeout.
    pub fn compare(&self, outputs: &[Output], started: Instant) -> Result<(), String> {
        if started.elapsed() > self.timeout {
            return Err(format!(
                "took {:.1?}, over the {:?} timeout",
                started.elapsed(),
                self.timeout
            ));
        }
        let (expected, single) = self.read_expected().map_err(|e| e.to_string())?;
        let actual: Vec<&Output> = outputs
            .iter()
            .filter(|o| matches!(o.destination, Destination::Sink(_)))
            .collect();
        let listing = || {
            actual
                .iter()
                .map(|o| format!("  {}", compare::show(&comparable(o))))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let pairs: Vec<(usize, &Output, &Value)> = if single {
            match actual.last() {
                Some(last) => vec![(actual.len() - 1, *last, &expected[0])],
                None => return Err("expected an output (compared with the last), got none".into()),
            }
        } else if actual.len() != expected.len() {
            return Err(format!(
                "expected {} outputs, got {}:\n{}",
                expected.len(),
                actual.len(),
                listing()
            ));
        } else {
            actual
                .iter()
                .zip(&expected)
                .enumerate()
                .map(|(i, (a, e))| (i, *a, e))
                .collect()
        };
        for (i, a, e) in pairs {
            compare::compare_one(&compare::View::of_output(a), e, &self.select, &self.ignores).map_err(|d| {
                if single && actual.len() > 1 {
                    format!("output {i} (the last of {}): {d}", actual.len())
                } else {
                    format!("output {i}: {d}")
                }
            })?;
        }
        Ok(())
    }
}

fn read_input(f: &Path) -> Result<Input> {
    let payload = read_bytes(f)?;
    let meta_path = PathBuf::from(format!("{}.meta.json", f.display()));
    let meta: Meta = if meta_path.is_file() {
        serde_json::from_slice(&read_bytes(&meta_path)?).map_err(|e| invalid(&meta_path, e))?
    } else {
        Meta::default()
    };
    let user_properties = match meta.user_properties {
        None => vec![],
        Some(v) => user_properties(&v).map_err(|m| invalid(&meta_path, format!("user-properties: {m}")))?,
    };
    let raw = f.extension().is_some_and(|e| e.eq_ignore_ascii_case("raw"));
    Ok(Input {
        topic: meta
            .topic
            .unwrap_or_else(|| if raw { RAW_TOPIC } else { DEFAULT_TOPIC }.into()),
        payload: Arc::from(payload),
        content_type: meta.content_type,
        user_properties,
    })
}

/// `{k: v}` or `[[k, v], …]`; a value that is not a string is its JSON text.
fn user_properties(v: &Value) -> Result<Vec<(String, String)>, String> {
    let text = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    match v {
        Value::Object(o) => Ok(o.iter().map(|(k, v)| (k.clone(), text(v))).collect()),
        Value::Array(pairs) => pairs
            .iter()
            .enumerate()
            .map(|(i, p)| match p.as_array().map(Vec::as_slice) {
                Some([Value::String(k), v]) => Ok((k.clone(), text(v))),
                _ => Err(format!("element {i} is not [key, value]")),
            })
            .collect(),
        _ => Err("expected {key: value} or [[key, value], …]".into()),
    }
}

/// An output as the JSON the expectations are written in: the payload as JSON when it parses,
/// else as text; used to list outputs in messages.
pub fn comparable(o: &Output) -> Value {
    let payload = serde_json::from_slice::<Value>(&o.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&o.payload).into_owned()));
    let props: Map<String, Value> = o
        .user_properties
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut v = serde_json::json!({ "payload": payload, "topic": o.topic, "properties": { "user-properties": props } });
    if let (Some(ct), Some(obj)) = (&o.content_type, v.as_object_mut()) {
        obj.insert("content-type".into(), Value::String(ct.clone()));
    }
    v
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

/// Drops `.` components (`./input` → `input`) so messages show the path once; `..` stays, as
/// resolving it without the file system could be wrong across symbolic links.
fn clean(p: &Path) -> PathBuf {
    let c: PathBuf = p.components().filter(|c| !matches!(c, Component::CurDir)).collect();
    if c.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        c
    }
}

/// Finds descriptors: files given directly, and `*.test.yaml` below directories, sorted.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                let unreadable = |error| GoldenError::Read {
                    what: "",
                    path: d.clone(),
                    error,
                };
                for e in std::fs::read_dir(&d).map_err(unreadable)? {
                    let path = e.map_err(unreadable)?.path();
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
            return Err(invalid(p, "no such test descriptor or folder"));
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests;
