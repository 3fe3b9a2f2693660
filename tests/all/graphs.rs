//! The shipped graphs, run in process on the real sample modules, against outputs worked out by
//! hand from the sample operators' semantics (°C = (°F − 32) × 5 / 9; windows round event time up
//! to the next 10 s; statistics over each window).

use crate::support::*;
use wasmflow_runtime::engine::CacheOutcome;
use wasmflow_runtime::graph::RunOptions;
use wasmflow_transport::Destination;

const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z, on a 10 s boundary

#[test]
fn graph_simple_converts_fahrenheit() {
    let h = Harness::new();
    let mut g = h.start(
        &repo().join("compose/tests/azure-compat/graph-simple.yaml"),
        RunOptions::default(),
    );
    let out = run_all(
        &mut g,
        vec![input(r#"{"temperature":{"value":1209,"unit":"F"}}"#, T0 + 1000)],
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        payload(&out[0]),
        r#"{"temperature":{"value":653.8888888888889,"count":0,"max":0.0,"min":0.0,"average":0.0,"last":0.0,"unit":"C","overtemp":false}}"#
    );
    assert_eq!(out[0].destination, Destination::Sink("sink".into()));
    assert_eq!(out[0].topic.as_deref(), Some("sensors/test"));
    assert_eq!(
        prop(&out[0], "__ts"),
        Some(ts(T0 + 1000).as_str()),
        "event time is carried through"
    );
}

#[test]
fn non_temperature_payloads_pass_the_map_unchanged() {
    let h = Harness::new();
    let mut g = h.start(
        &repo().join("compose/tests/azure-compat/graph-simple.yaml"),
        RunOptions::default(),
    );
    let out = run_all(
        &mut g,
        vec![input("not json", T0), input(r#"{"humidity":{"value":3}}"#, T0 + 1)],
    );
    let payloads: Vec<_> = out.iter().map(payload).collect();
    assert_eq!(payloads, ["not json", r#"{"humidity":{"value":3}}"#]);
}

fn temperature_humidity() -> std::path::PathBuf {
    repo().join("graphs/temperature-humidity.yaml")
}

#[test]
fn one_hot_reading_through_the_complex_graph() {
    let h = Harness::new();
    let mut g = h.start(&temperature_humidity(), RunOptions::default());
    let out = run_all(
        &mut g,
        vec![input(r#"{"temperature":{"value":1209,"unit":"F"}}"#, T0 + 1000)],
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        payload(&out[0]),
        r#"{"temperature":[{"count":1,"max":653.8888888888889,"min":653.8888888888889,"average":653.8888888888889,"last":653.8888888888889,"unit":"C","overtemp":true}]}"#
    );
    assert_eq!(out[0].topic.as_deref(), Some("sensors"));
    assert_eq!(
        prop(&out[0], "__ts"),
        Some(ts(T0 + 10_000).as_str()),
        "the window's time"
    );
}

#[test]
fn temperature_and_humidity_share_a_window() {
    let h = Harness::new();
    let mut g = h.start(&temperature_humidity(), RunOptions::default());
    let out = run_all(
        &mut g,
        vec![
            input(r#"{"temperature":{"value":68,"unit":"F"}}"#, T0 + 1000),
            input(r#"{"humidity":{"value":41.5}}"#, T0 + 2000),
            input(r#"{"temperature":{"value":1209,"unit":"F"}}"#, T0 + 3000),
        ],
    );
    assert_eq!(out.len(), 1, "{out:?}");
    // 68 °F = 20 °C; mean of 20 and 653.888… = 336.944…; one humidity reading.
    assert_eq!(
        payload(&out[0]),
        concat!(
            r#"{"temperature":[{"count":2,"max":653.8888888888889,"min":20.0,"average":336.94444444444446,"last":653.8888888888889,"unit":"C","overtemp":true}],"#,
            r#""humidity":[{"count":1,"max":41.5,"min":41.5,"average":41.5,"last":41.5}]}"#
        )
    );
}

#[test]
fn implausible_temperatures_are_filtered_out() {
    let h = Harness::new();
    let mut g = h.start(&temperature_humidity(), RunOptions::default());
    // -100 °F = -73.3 °C, below the filter's -40 °C bound: the window has nothing to report.
    let out = run_all(
        &mut g,
        vec![input(r#"{"temperature":{"value":-100,"unit":"F"}}"#, T0 + 1000)],
    );
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn a_window_closes_when_event_time_passes_it() {
    let h = Harness::new();
    let mut g = h.start(&temperature_humidity(), RunOptions::default());
    let t = r#"{"temperature":{"value":50,"unit":"F"}}"#;
    assert!(g.push(None, input(t, T0 + 1000)).unwrap().is_empty());
    assert!(
        g.push(None, input(t, T0 + 9000)).unwrap().is_empty(),
        "window [0, 10 s) still open"
    );
    assert_eq!(g.pending(), 2);
    let out = g.push(None, input(t, T0 + 10_500)).unwrap();
    assert_eq!(out.len(), 1, "event time 10.5 s closed the first window: {out:?}");
    assert!(
        payload(&out[0]).starts_with(r#"{"temperature":[{"count":2,"#),
        "{}",
        payload(&out[0])
    );
    assert_eq!(g.pending(), 1, "the 10.5 s reading waits in the next window");
}

#[test]
fn replay_is_byte_identical() {
    let lines = std::fs::read_to_string(repo().join("graphs/demo/readings.jsonl")).unwrap();
    let run = || {
        let h = Harness::new();
        let mut g = h.start(&temperature_humidity(), RunOptions::default());
        let inputs = lines
            .lines()
            .enumerate()
            .filter_map(|(i, l)| {
                wasmflow_transport::lines::parse_line(
                    l.as_bytes(),
                    i + 1,
                    wasmflow_transport::lines::InputFormat::Envelope,
                    "in",
                )
                .unwrap()
            })
            .collect();
        run_all(&mut g, inputs)
            .iter()
            .map(|o| wasmflow_transport::lines::output_json(o).to_string())
            .collect::<Vec<_>>()
    };
    let first = run();
    assert!(first.len() >= 3, "{first:?}");
    assert_eq!(first, run());
}

/// The router runs wasmflow's own plumbing natively by default; the components it replaces must
/// give the same bytes: event time from `__ts` (first one wins, duplicates dropped on the way out),
/// arrival time for a missing or malformed one.
#[test]
fn native_plumbing_matches_the_plumbing_components() {
    let graph = repo().join("compose/tests/azure-compat/graph-simple.yaml");
    let mut duplicate = input(r#"{"temperature":{"value":212,"unit":"F"}}"#, 1_700_000_000_500);
    duplicate.user_properties.insert(0, ("site".into(), "north".into()));
    duplicate.user_properties.push(("__ts".into(), ts(1)));
    let mut missing = input(r#"{"temperature":{"value":32,"unit":"F"}}"#, 0);
    missing.user_properties.clear();
    let mut malformed = input(r#"{"temperature":{"value":50,"unit":"F"}}"#, 0);
    malformed.user_properties = vec![("__ts".into(), "yesterday".into())];
    let inputs = vec![
        input(r#"{"temperature":{"value":1209,"unit":"F"}}"#, 1_700_000_000_000),
        duplicate,
        missing,
        malformed,
    ];
    let run = |native_plumbing| {
        let h = Harness::new();
        let mut g = h.start(
            &graph,
            RunOptions {
                native_plumbing,
                ..RunOptions::default()
            },
        );
        let before = wasmflow_wire::Hlc::now("test").millis();
        (run_all(&mut g, inputs.clone()), before)
    };
    let ((native, t0), (component, t1)) = (run(true), run(false));
    assert_eq!(native.len(), 4, "{native:?}");
    // Timed inputs: identical publications, `__ts` carried through (the first of two kept).
    assert_eq!(native[..2], component[..2]);
    assert_eq!(prop(&native[1], "__ts"), Some(ts(1_700_000_000_500).as_str()));
    assert_eq!(native[1].user_properties.iter().filter(|(k, _)| k == "__ts").count(), 1);
    // Untimed or badly timed inputs: stamped with their arrival, same payloads either way.
    for (o, start) in native[2..]
        .iter()
        .zip([t0, t0])
        .chain(component[2..].iter().zip([t1, t1]))
    {
        let ts = prop(o, "__ts").expect("__ts written");
        let millis: u128 = ts.split(':').next().and_then(|m| m.parse().ok()).expect("ms");
        assert!(
            millis >= start && millis < start + 60_000,
            "{ts} is not an arrival time"
        );
    }
    assert_eq!(payload(&native[2]), payload(&component[2]));
    assert_eq!(payload(&native[3]), payload(&component[3]));
}

#[test]
fn second_start_uses_the_compiled_cache() {
    let h = Harness::with_fresh_cache();
    let loaded = h.load(&repo().join("compose/tests/azure-compat/graph-simple.yaml"));
    let (_, first) = h.runtime.start(&loaded, RunOptions::default()).unwrap();
    let (_, second) = h.runtime.start(&loaded, RunOptions::default()).unwrap();
    assert_eq!((first, second), (CacheOutcome::Compiled, CacheOutcome::Hit));
}

#[test]
fn runtime_metrics_name_each_operation() {
    let h = Harness::new();
    let mut g = h.start(&temperature_humidity(), RunOptions::default());
    run_all(
        &mut g,
        vec![
            input(r#"{"temperature":{"value":-100,"unit":"F"}}"#, T0),
            input(r#"{"temperature":{"value":50,"unit":"F"}}"#, T0 + 1),
        ],
    );
    let text = h.runtime.metrics.render();
    let line = |name: &str, op: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains(&format!("operation=\"{op}\"")))
            .unwrap_or_else(|| panic!("no {name} for {op} in\n{text}"))
            .to_string()
    };
    assert!(line("wasmflow_messages_in_total", "module-temperature/filter").ends_with(" 2"));
    assert!(line("wasmflow_messages_dropped_total", "module-temperature/filter").ends_with(" 1"));
    assert!(line("wasmflow_messages_out_total", "module-enrichment/map").ends_with(" 1"));
}

#[test]
fn latency_histogram_times_one_call_in_sixteen() {
    let h = Harness::new();
    let mut g = h.start(&temperature_humidity(), RunOptions::default());
    let calls = 2 * wasmflow_runtime::graph::LATENCY_SAMPLE as u64 + 1;
    let inputs = (0..calls)
        .map(|i| input(r#"{"temperature":{"value":50,"unit":"F"}}"#, T0 + i))
        .collect();
    run_all(&mut g, inputs);
    let text = h.runtime.metrics.render();
    let count = text
        .lines()
        .find(|l| {
            l.starts_with("wasmflow_operator_latency_seconds_count")
                && l.contains("operation=\"module-temperature/filter\"")
        })
        .unwrap_or_else(|| panic!("no latency count for the filter in\n{text}"));
    // Calls 0, 16 and 32 of 33 are timed.
    assert!(count.ends_with(" 3"), "{count}");
    assert!(
        text.contains("one call in 16 is timed"),
        "the help text says it is sampled"
    );
}

#[test]
fn enrichment_state_persists_in_the_data_directory() {
    let h = Harness::with_state(false);
    {
        let mut g = h.start(&temperature_humidity(), RunOptions::default());
        run_all(&mut g, vec![input(r#"{"temperature":{"value":1209,"unit":"F"}}"#, T0)]);
    }
    let data_dir = h.dir.path().to_path_buf();
    drop(h.runtime);
    let store = wasmflow_runtime::services::state_store::StateStore::open(&data_dir.join("state.redb")).unwrap();
    assert_eq!(store.get(b"overtemp").unwrap().value.as_deref(), Some(&b"true"[..]));
    assert_eq!(
        store.get(b"overtemp_windows").unwrap().value.as_deref(),
        Some(&b"1"[..])
    );
}

#[test]
fn concatenate_merges_its_inputs_in_event_time_order() {
    let h = Harness::new();
    let g = h.write_graph(
        "merge.yaml",
        "merge",
        "temperature windows and everything else, merged back in event-time order",
        r#"operations:
  - { operationType: source, name: source }
  - { operationType: branch, name: is-temperature, module: "x/temperature:1.0.0" }
  - { operationType: accumulate, name: stats, module: "x/temperature:1.0.0" }
  - { operationType: concatenate, name: merge }
  - { operationType: sink, name: sink }
connections:
  - { from: { name: source }, to: { name: is-temperature } }
  - { from: { name: is-temperature, arm: "True" }, to: { name: stats } }
  - { from: { name: is-temperature, arm: "False" }, to: { name: merge } }
  - { from: { name: stats }, to: { name: merge } }
  - { from: { name: merge }, to: { name: sink } }
"#,
    );
    let mut g = h.start(&g, RunOptions::default());
    let t = r#"{"temperature":{"value":212,"unit":"F"}}"#;
    // The temperature path holds each reading in a window until event time passes it; the
    // other path is immediate. Without the merge, "a" would overtake the 1 s window.
    let out = run_all(
        &mut g,
        vec![
            input(t, T0 + 1000),
            input("a", T0 + 2000),
            input(t, T0 + 3000),
            input("b", T0 + 4000),
        ],
    );
    let order: Vec<_> = out
        .iter()
        .map(|o| prop(o, "__ts").unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        order,
        [ts(T0 + 1000), ts(T0 + 2000), ts(T0 + 3000), ts(T0 + 4000)],
        "{out:?}"
    );
    let stats = r#"{"temperature":{"count":1,"max":100.0,"min":100.0,"average":100.0,"last":100.0,"unit":"C","overtemp":false}}"#;
    let payloads: Vec<_> = out.iter().map(payload).collect();
    assert_eq!(payloads, [stats, "a", stats, "b"]);
}

#[test]
fn an_idle_graph_takes_its_next_message() {
    // The call deadline is counted from each call, not from start-up: a pause longer than the
    // call timeout must not interrupt the next call.
    let h = Harness::new();
    let options = RunOptions {
        call_timeout: std::time::Duration::from_millis(100),
        ..RunOptions::default()
    };
    let mut g = h.start(&repo().join("compose/tests/azure-compat/graph-simple.yaml"), options);
    std::thread::sleep(std::time::Duration::from_millis(400));
    let out = g
        .push(None, input(r#"{"temperature":{"value":32,"unit":"F"}}"#, T0))
        .unwrap();
    assert_eq!((out.len(), g.rebuilds()), (1, 0), "{out:?}");
}
