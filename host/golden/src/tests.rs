use super::*;

fn out(payload: &str) -> Output {
    out_with(payload, Some("sensors"), &[("__ts", "1")])
}

fn out_with(payload: &str, topic: Option<&str>, props: &[(&str, &str)]) -> Output {
    Output {
        destination: Destination::Sink("sink".into()),
        topic: topic.map(str::to_owned),
        payload: Arc::from(payload.as_bytes()),
        content_type: None,
        user_properties: props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
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
        seed: vec![],
        host_env_file: None,
        host_env: vec![],
        schemas: vec![],
        config: vec![],
    }
}

fn write(path: &Path, text: &str) {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(path, text).unwrap();
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
    assert_eq!(err, "output 0: $.payload.b[1]: expected 2, got 3");
}

#[test]
fn an_expected_string_payload_is_compared_with_the_bytes_as_json() {
    let d = tempfile::tempdir().unwrap();
    // t01's expectation: the payload as a JSON string, keys in another order than emitted.
    let t = test_with(
        d.path(),
        r#"{"payload": "{\"temperature\":{\"value\":653.8888888888889,\"unit\":\"C\",\"max\":0.0}}"}"#,
        &["payload"],
        &[],
    );
    let actual = r#"{ "temperature": { "max": 0, "unit": "C", "value": 653.8888888888889 } }"#;
    assert_eq!(t.compare(&[out(actual)], Instant::now()), Ok(()));
    let err = t
        .compare(
            &[out(r#"{"temperature":{"max":0,"unit":"C","value":654.0}}"#)],
            Instant::now(),
        )
        .unwrap_err();
    assert_eq!(
        err,
        "output 0: $.payload.temperature.value: expected 653.8888888888889, got 654.0"
    );
}

#[test]
fn numbers_compare_by_value_in_payloads() {
    let d = tempfile::tempdir().unwrap();
    let t = test_with(
        d.path(),
        r#"{"payload": "{\"v\": 653.88, \"n\": 1}"}"#,
        &["payload"],
        &[],
    );
    assert_eq!(t.compare(&[out(r#"{"v":653.880,"n":1.0}"#)], Instant::now()), Ok(()));
    let err = t.compare(&[out(r#"{"v":654.0,"n":1}"#)], Instant::now()).unwrap_err();
    assert_eq!(err, "output 0: $.payload.v: expected 653.88, got 654.0");
}

#[test]
fn text_payloads_compare_exactly() {
    let d = tempfile::tempdir().unwrap();
    let t = test_with(d.path(), r#"{"payload": "7; 3"}"#, &["payload"], &[]);
    assert_eq!(t.compare(&[out("7; 3")], Instant::now()), Ok(()));
    let err = t.compare(&[out("7;3")], Instant::now()).unwrap_err();
    assert_eq!(err, r#"output 0: $.payload: expected text "7; 3", got text "7;3""#);
    // A JSON expectation against bytes that are not JSON.
    let t = test_with(d.path(), r#"{"payload": "{\"a\":1}"}"#, &["payload"], &[]);
    let err = t.compare(&[out("a=1")], Instant::now()).unwrap_err();
    assert_eq!(err, r#"output 0: $.payload: expected JSON {"a":1}, got text "a=1""#);
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
        "topic not selected, last ignored (wasmflow's payload-relative form)"
    );
    let t = test_with(
        d.path(),
        r#"[{"payload": {"t": {"count": 2}}}]"#,
        &["payload.t.count"],
        &[],
    );
    let err = t.compare(&[out(r#"{"t":{"count":1}}"#)], Instant::now()).unwrap_err();
    assert_eq!(err, "output 0: $.payload.t.count: expected 2, got 1");
}

#[test]
fn platform_ignores_are_rooted_at_the_output() {
    let d = tempfile::tempdir().unwrap();
    // t02's form: the expected payload is a string and leaves out what is ignored.
    let t = test_with(
        d.path(),
        r#"{"payload": "{\"temperature\":[{\"count\":1}]}"}"#,
        &["payload"],
        &["payload.humidity", "payload.object"],
    );
    let actual = r#"{"temperature":[{"count":1}],"humidity":[{"count":3}],"object":[{"result":"7"}]}"#;
    assert_eq!(t.compare(&[out(actual)], Instant::now()), Ok(()));
    let t = test_with(
        d.path(),
        r#"{"payload": "{\"t\":[{\"c\":1,\"l\":2}]}"}"#,
        &[],
        &["payload.t[0].l"],
    );
    assert_eq!(t.compare(&[out(r#"{"t":[{"c":1,"l":3}]}"#)], Instant::now()), Ok(()));
    // A user property can be ignored too.
    let t = test_with(
        d.path(),
        r#"{"properties": {"user-properties": {"k": "v"}}}"#,
        &[],
        &["properties.user-properties.__ts"],
    );
    let o = out_with("x", None, &[("k", "v"), ("__ts", "9")]);
    assert_eq!(t.compare(&[o], Instant::now()), Ok(()));
}

#[test]
fn a_user_property_is_selected_by_its_whole_key() {
    let d = tempfile::tempdir().unwrap();
    // t11's form.
    let expected = r#"{
      "payload": "{\"temperature\":{\"value\":360,\"unit\":\"F\"}}",
      "properties": {"user-properties": {"otel/factoryId": "factoryA", "otel/machineId": "machineA", "a.b": "1"}}
    }"#;
    let select = [
        "payload",
        "properties.user-properties.otel/factoryId",
        "properties.user-properties.otel/machineId",
        "properties.user-properties.a.b",
    ];
    let t = test_with(d.path(), expected, &select, &[]);
    let payload = r#"{"temperature": {"unit": "F", "value": 360}}"#;
    let good = out_with(
        payload,
        Some("sensors"),
        &[
            ("__ts", "1"),
            ("otel/factoryId", "factoryA"),
            ("otel/machineId", "machineA"),
            ("a.b", "1"),
        ],
    );
    assert_eq!(t.compare(&[good], Instant::now()), Ok(()), "__ts is not selected");
    let missing = out_with(
        payload,
        Some("sensors"),
        &[("otel/factoryId", "factoryA"), ("a.b", "1")],
    );
    assert_eq!(
        t.compare(&[missing], Instant::now()).unwrap_err(),
        r#"output 0: $.properties.user-properties.otel/machineId: missing, expected "machineA""#
    );
    let wrong = out_with(
        payload,
        Some("sensors"),
        &[
            ("otel/factoryId", "factoryB"),
            ("otel/machineId", "machineA"),
            ("a.b", "1"),
        ],
    );
    assert_eq!(
        t.compare(&[wrong], Instant::now()).unwrap_err(),
        r#"output 0: $.properties.user-properties.otel/factoryId: expected "factoryA", got "factoryB""#
    );
}

#[test]
fn topic_and_content_type_are_selectable() {
    let d = tempfile::tempdir().unwrap();
    let t = test_with(
        d.path(),
        r#"{"topic": "sensors", "content-type": "application/json", "payload": "{}"}"#,
        &["topic", "content-type"],
        &[],
    );
    let mut o = out("not compared");
    o.content_type = Some("application/json".into());
    assert_eq!(t.compare(&[o.clone()], Instant::now()), Ok(()));
    o.topic = Some("other".into());
    assert_eq!(
        t.compare(&[o.clone()], Instant::now()).unwrap_err(),
        r#"output 0: $.topic: expected "sensors", got "other""#
    );
    o.topic = Some("sensors".into());
    o.content_type = None;
    assert_eq!(
        t.compare(&[o], Instant::now()).unwrap_err(),
        r#"output 0: $.content-type: missing, expected "application/json""#
    );
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
    let t = test_with(
        d.path(),
        r#"{"properties": {"user-properties": {"foo": "1"}}}"#,
        &[],
        &[],
    );
    let err = t.compare(&[out("x")], Instant::now()).unwrap_err();
    assert_eq!(
        err,
        r#"output 0: $.properties.user-properties.__ts: unexpected, got "1""#
    );
}

#[test]
fn a_list_is_compared_in_order_and_by_count() {
    let d = tempfile::tempdir().unwrap();
    let t = test_with(d.path(), r#"[{"payload": "1"}, {"payload": "{\"n\": 2}"}]"#, &[], &[]);
    assert_eq!(t.compare(&[out("1"), out(r#"{"n":2}"#)], Instant::now()), Ok(()));
    let err = t.compare(&[out(r#"{"n":2}"#), out("1")], Instant::now()).unwrap_err();
    assert_eq!(err, r#"output 0: $.payload: expected 1, got {"n":2}"#);
    let err = t.compare(&[out("1")], Instant::now()).unwrap_err();
    assert!(err.starts_with("expected 2 outputs, got 1:\n  {"), "{err}");
    let t = test_with(d.path(), "[]", &[], &[]);
    assert_eq!(t.compare(&[], Instant::now()), Ok(()));
    assert!(t
        .compare(&[out("1")], Instant::now())
        .unwrap_err()
        .starts_with("expected 0 outputs, got 1"));
}

#[test]
fn one_expected_object_is_compared_with_the_last_output() {
    let d = tempfile::tempdir().unwrap();
    let t = test_with(d.path(), r#"{"payload": "{\"n\": 2}"}"#, &["payload"], &[]);
    assert_eq!(
        t.compare(&[out(r#"{"n":1}"#), out(r#"{"n":2}"#)], Instant::now()),
        Ok(())
    );
    let err = t
        .compare(&[out(r#"{"n":2}"#), out(r#"{"n":1}"#)], Instant::now())
        .unwrap_err();
    assert_eq!(err, "output 1 (the last of 2): $.payload.n: expected 2, got 1");
    assert!(t.compare(&[], Instant::now()).unwrap_err().contains("got none"));
    // Dead letters are not outputs.
    let mut dead = out(r#"{"n":2}"#);
    dead.destination = Destination::DeadLetter {
        operation: "filter".into(),
        error: "no".into(),
    };
    assert!(t.compare(&[dead], Instant::now()).is_err());
}

#[test]
fn a_run_over_the_timeout_fails() {
    let d = tempfile::tempdir().unwrap();
    let mut t = test_with(d.path(), "[]", &[], &[]);
    t.timeout = Duration::from_millis(0);
    let started = Instant::now() - Duration::from_millis(5);
    assert!(t.compare(&[], started).unwrap_err().contains("timeout"));
}

#[test]
fn descriptors_resolve_relative_input_folders_and_send_files_in_name_order() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    write(&root.join("graph.yaml"), "");
    write(&root.join("scenario/data/b.json"), r#"{"n": 2}"#);
    write(&root.join("scenario/data/a.json"), r#"{"n": 1}"#);
    write(&root.join("scenario/data/c.raw"), "RAW");
    write(&root.join("scenario/data/d.png"), "PNG");
    write(
        &root.join("scenario/data/d.png.meta.json"),
        r#"{"topic": "camera", "content-type": "image/png", "user-properties": [["k", "v"]]}"#,
    );
    write(&root.join("scenario/data/.hidden"), "x");
    write(&root.join("scenario/data/output/1.txt"), "a previous run's output");
    write(
        &root.join("tests/t1/t1.test.yaml"),
        "name: \"relative\"\ngraph: \"../../graph.yaml\"\ninput: \"../../scenario/data\"\nexpected: \"./expected/expected.json\"\ntimeout: 90000\nselect: [\"payload\"]\n",
    );
    write(&root.join("tests/t1/expected/expected.json"), "[]");
    let t = GoldenTest::load(&root.join("tests/t1/t1.test.yaml")).unwrap();
    assert_eq!(t.name, "relative");
    assert_eq!(t.timeout, Duration::from_millis(90_000), "timeout is in milliseconds");
    assert_eq!(t.input, root.join("tests/t1/../../scenario/data"));
    assert_eq!(t.expected, root.join("tests/t1/expected/expected.json"));
    let inputs = t.inputs().unwrap();
    let seen: Vec<(&str, &[u8])> = inputs.iter().map(|i| (i.topic.as_str(), &*i.payload)).collect();
    assert_eq!(
        seen,
        vec![
            (DEFAULT_TOPIC, &br#"{"n": 1}"#[..]),
            (DEFAULT_TOPIC, &br#"{"n": 2}"#[..]),
            (RAW_TOPIC, &b"RAW"[..]),
            ("camera", &b"PNG"[..]),
        ]
    );
    assert_eq!(inputs[3].content_type.as_deref(), Some("image/png"));
    assert_eq!(inputs[3].user_properties, vec![("k".to_string(), "v".to_string())]);
    assert_eq!(t.expected().unwrap(), Vec::<Value>::new());
}

#[test]
fn defaults_follow_the_platform() {
    let d = tempfile::tempdir().unwrap();
    write(
        &d.path().join("x.test.yaml"),
        "graph: g.yaml\ninput: in\nexpected: e.json\nselect: payload\n",
    );
    let t = GoldenTest::load(&d.path().join("x.test.yaml")).unwrap();
    assert_eq!(t.name, "x");
    assert_eq!(t.timeout, Duration::from_millis(DEFAULT_TIMEOUT_MS));
    assert_eq!(t.select, vec!["payload".to_string()], "one string is a list of one");
    assert!(t.state.is_none() && t.seed.is_empty() && t.schemas.is_empty() && t.host_env.is_empty());
}

#[test]
fn descriptor_errors_name_the_file_and_the_field() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("bad.test.yaml");
    let load = |text: &str| {
        write(&f, text);
        format!("{:#}", GoldenTest::load(&f).unwrap_err())
    };
    let base = "graph: g.yaml\ninput: in\nexpected: e.json\n";
    let e = load(&format!("{base}selekt: [payload]\n"));
    assert!(e.contains("bad.test.yaml") && e.contains("selekt"), "{e}");
    let e = load(&format!("{base}select: [payload, color]\n"));
    assert!(e.contains("bad.test.yaml: select: `color`"), "{e}");
    let e = load(&format!("{base}ignores: [\"payload..x\"]\n"));
    assert!(e.contains("bad.test.yaml: ignores: `payload..x`"), "{e}");
    let e = load(&format!("{base}timeout: -1\n"));
    assert!(e.contains("bad.test.yaml") && e.contains("timeout"), "{e}");
    let e = load("graph: g.yaml\ninput: in\n");
    assert!(e.contains("bad.test.yaml") && e.contains("expected"), "{e}");
    let e = load("graph: \"\"\ninput: in\nexpected: e.json\n");
    assert!(e.contains("bad.test.yaml: `graph` is empty"), "{e}");
    // Input problems name the file.
    write(&f, base);
    let t = GoldenTest::load(&f).unwrap();
    let e = format!("{:#}", t.inputs().unwrap_err());
    assert!(e.contains("bad.test.yaml: input folder"), "{e}");
    write(&d.path().join("in/a.json"), "{}");
    write(&d.path().join("in/a.json.meta.json"), r#"{"topik": "x"}"#);
    let e = format!("{:#}", t.inputs().unwrap_err());
    assert!(e.contains("a.json.meta.json") && e.contains("topik"), "{e}");
    write(&d.path().join("e.json"), "[1]");
    let e = format!("{:#}", t.expected().unwrap_err());
    assert!(e.contains("e.json: element 0 is not an object"), "{e}");
}

#[test]
fn a_scenario_folder_provides_the_seed_and_the_schema() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    write(&root.join("scn/graph.dataflow.yaml"), "");
    write(
        &root.join("scn/statestore.json"),
        r#"[{"factoryId": "factoryA"}, {"machineId": "machineA"}]"#,
    );
    write(
        &root.join("scn/hostapp.env.list"),
        "TK_SCHEMA_CONFIG_PATH=tk_schema_config.json\nOTHER=1\n",
    );
    write(&root.join("scn/tk_schema_config.json"), r#"{"type": "object"}"#);
    write(&root.join("tests/t/input/a.json"), "{}");
    write(
        &root.join("tests/t/t.test.yaml"),
        "graph: ../../scn/graph.dataflow.yaml\ninput: ./input\nexpected: e.json\n",
    );
    let t = GoldenTest::load(&root.join("tests/t/t.test.yaml")).unwrap();
    assert_eq!(t.state, Some(root.join("tests/t/../../scn/statestore.json")));
    assert_eq!(
        t.seed,
        vec![
            (b"factoryId".to_vec(), b"factoryA".to_vec()),
            (b"machineId".to_vec(), b"machineA".to_vec())
        ]
    );
    assert_eq!(t.host_env_file, Some(root.join("tests/t/../../scn/hostapp.env.list")));
    assert_eq!(t.host_env[1], ("OTHER".to_string(), "1".to_string()));
    assert_eq!(t.schemas.len(), 1);
    assert_eq!(t.schemas[0].name, "tk_schema_config.json");
    assert_eq!(t.schemas[0].content, r#"{"type": "object"}"#);

    // The descriptor's own `state` wins over the scenario's.
    write(&root.join("tests/t/seed.json"), r#"{"overtemp": "true"}"#);
    write(
        &root.join("tests/t/t.test.yaml"),
        "graph: ../../scn/graph.dataflow.yaml\ninput: ./input\nexpected: e.json\nstate: seed.json\n",
    );
    let t = GoldenTest::load(&root.join("tests/t/t.test.yaml")).unwrap();
    assert_eq!(t.state, Some(root.join("tests/t/seed.json")));
    assert_eq!(t.seed, vec![(b"overtemp".to_vec(), b"true".to_vec())]);

    // Broken scenario files fail the load, naming the file.
    write(
        &root.join("tests/t/t.test.yaml"),
        "graph: ../../scn/graph.dataflow.yaml\ninput: ./input\nexpected: e.json\n",
    );
    write(&root.join("scn/statestore.json"), r#"{"factoryId": ["x"], "n": 1}"#);
    let t = GoldenTest::load(&root.join("tests/t/t.test.yaml")).unwrap();
    assert_eq!(
        t.seed[0],
        (b"factoryId".to_vec(), br#"["x"]"#.to_vec()),
        "wasmflow's object form"
    );
    write(&root.join("scn/statestore.json"), r#""factoryA""#);
    let e = format!("{:#}", GoldenTest::load(&root.join("tests/t/t.test.yaml")).unwrap_err());
    assert!(
        e.contains("t.test.yaml: state") && e.contains("statestore.json: state-store seed is a string"),
        "{e}"
    );
    write(
        &root.join("scn/statestore.json"),
        r#"[{"factoryId": "factoryA"}, "machineA"]"#,
    );
    let e = format!("{:#}", GoldenTest::load(&root.join("tests/t/t.test.yaml")).unwrap_err());
    assert!(
        e.contains("statestore.json: element 1 is a string; the platform's state-store seed is an array of {\"key\": \"value\"} objects"),
        "{e}"
    );
    write(&root.join("scn/statestore.json"), "{not json");
    let e = format!("{:#}", GoldenTest::load(&root.join("tests/t/t.test.yaml")).unwrap_err());
    assert!(e.contains("statestore.json: state-store seed is not JSON"), "{e}");
    write(&root.join("scn/statestore.json"), "[]");
    write(&root.join("scn/tk_schema_config.json"), "not json");
    let e = format!("{:#}", GoldenTest::load(&root.join("tests/t/t.test.yaml")).unwrap_err());
    assert!(
        e.contains("tk_schema_config.json: the schema") && e.contains("is not JSON"),
        "{e}"
    );
}

#[test]
fn discover_finds_descriptors_sorted() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("b/b.test.yaml"), "");
    write(&d.path().join("a/x/a.test.yaml"), "");
    write(&d.path().join("a/expected.json"), "");
    let found = discover(&[d.path().to_path_buf()]).unwrap();
    assert_eq!(
        found,
        vec![d.path().join("a/x/a.test.yaml"), d.path().join("b/b.test.yaml")]
    );
    assert!(discover(&[d.path().join("nope")]).is_err());
}
