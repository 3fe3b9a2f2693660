//! Every descriptor wasmflow knows of must load, produce its inputs and its expected list: the
//! repository's own `tests/golden/*/`, and the platform's published tests in
//! `../shared/azure-samples/tests/` (outside the repository, read in place, never copied).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use wasmflow_golden::{discover, GoldenTest, DEFAULT_TOPIC};
use wasmflow_transport::{Destination, Output};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn samples() -> PathBuf {
    let dir = manifest_dir().join("../../../shared/azure-samples");
    assert!(
        dir.join("tests").is_dir(),
        "the platform's samples are not at {} (host/golden → ../../../shared/azure-samples); \
         they are test data kept outside the repository, see its README",
        dir.display()
    );
    dir
}

fn load_all(dir: &Path) -> Vec<GoldenTest> {
    let files = discover(&[dir.to_path_buf()]).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!files.is_empty(), "no descriptors below {}", dir.display());
    files
        .iter()
        .map(|f| {
            let t = GoldenTest::load(f).unwrap_or_else(|e| panic!("{e:#}"));
            let inputs = t.inputs().unwrap_or_else(|e| panic!("{e:#}"));
            assert!(!inputs.is_empty(), "{}: no inputs", f.display());
            t.expected().unwrap_or_else(|e| panic!("{e:#}"));
            t
        })
        .collect()
}

/// An output that is what an expected object describes, with the payload re-encoded (pretty,
/// keys reversed) so only a comparison by JSON value accepts it.
fn output_for(e: &Value) -> Output {
    let payload = match e.get("payload") {
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v) => serde_json::to_vec_pretty(&reversed(&v)).unwrap(),
            Err(_) => s.clone().into_bytes(),
        },
        Some(v) => serde_json::to_vec_pretty(&reversed(v)).unwrap(),
        None => b"{}".to_vec(),
    };
    let mut user_properties = vec![("__ts".to_string(), "000:0:test".to_string())];
    if let Some(Value::Object(props)) = e.pointer("/properties/user-properties") {
        for (k, v) in props.iter().rev() {
            user_properties.push((k.clone(), v.as_str().unwrap().to_string()));
        }
    }
    Output {
        destination: Destination::Sink("sink".into()),
        topic: Some(e.get("topic").and_then(Value::as_str).unwrap_or("sensors").to_string()),
        payload: Arc::from(payload),
        content_type: None,
        user_properties,
    }
}

fn reversed(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(o.iter().rev().map(|(k, v)| (k.clone(), reversed(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(reversed).collect()),
        other => other.clone(),
    }
}

#[test]
fn the_platform_samples_load_and_accept_what_they_describe() {
    let tests = load_all(&samples().join("tests"));
    assert_eq!(tests.len(), 4, "t01, t02, t08, t11");
    for t in &tests {
        let expected = t.expected().unwrap();
        let outputs: Vec<Output> = expected.iter().map(output_for).collect();
        assert_eq!(t.compare(&outputs, Instant::now()), Ok(()), "{}", t.file.display());
        // And a changed payload is caught.
        let mut wrong = outputs.clone();
        if let Some(last) = wrong.last_mut() {
            last.payload = Arc::from(&b"{\"changed\":true}"[..]);
        }
        let err = t.compare(&wrong, Instant::now()).unwrap_err();
        assert!(err.contains("$.payload"), "{}: {err}", t.file.display());
    }
    let by = |prefix: &str| {
        tests
            .iter()
            .find(|t| {
                t.file
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
            })
            .unwrap_or_else(|| panic!("no {prefix} test"))
    };

    let t01 = by("t01");
    assert_eq!(t01.name, "Temperature F to C conversion");
    assert_eq!(t01.timeout.as_millis(), 90_000);
    assert!(t01.inputs().unwrap().iter().all(|i| i.topic == DEFAULT_TOPIC));
    assert_eq!(DEFAULT_TOPIC, "sensors", "the platform runner's input topic");
    assert!(t01.state.is_none() && t01.schemas.is_empty());

    let t02 = by("t02");
    assert_eq!(t02.ignores, ["payload.humidity", "payload.object"]);

    let t08 = by("t08");
    assert_eq!(t08.select, ["topic", "payload"]);
    // t08's graph is one filter, which passes its input as it came: the expected topic is the
    // topic the runner published the input on.
    assert_eq!(t08.expected().unwrap()[0]["topic"], DEFAULT_TOPIC);
    assert!(t08.inputs().unwrap().iter().all(|i| i.topic == DEFAULT_TOPIC));
    assert_eq!(t08.schemas.len(), 1);
    let schema: Value = serde_json::from_str(&t08.schemas[0].content).unwrap();
    assert_eq!(schema["properties"]["humidity"]["type"], "integer");
    assert_eq!(t08.host_env[0].0, "TK_SCHEMA_CONFIG_PATH");

    let t11 = by("t11");
    assert!(
        t11.input.ends_with("statestore-scenario/data"),
        "{}",
        t11.input.display()
    );
    assert!(t11
        .state
        .as_ref()
        .is_some_and(|s| s.ends_with("statestore-scenario/statestore.json")));
    assert_eq!(
        t11.seed,
        vec![
            (b"factoryId".to_vec(), b"factoryA".to_vec()),
            (b"machineId".to_vec(), b"machineA".to_vec())
        ]
    );
    let err = t11
        .compare(
            &[output_for(
                &serde_json::json!({"payload": "{\"temperature\":{\"value\":360,\"unit\":\"F\"}}"}),
            )],
            Instant::now(),
        )
        .unwrap_err();
    assert_eq!(
        err,
        r#"output 0: $.properties.user-properties.otel/factoryId: missing, expected "factoryA""#
    );
}

#[test]
fn the_repository_golden_tests_load() {
    let dir = manifest_dir().join("../../tests/golden");
    assert!(dir.is_dir(), "no golden tests at {}", dir.display());
    for t in load_all(&dir) {
        let expected = t.expected().unwrap();
        assert!(!expected.is_empty(), "{}", t.file.display());
        assert!(t.inputs().unwrap().iter().all(|i| !i.topic.is_empty()));
    }
}
