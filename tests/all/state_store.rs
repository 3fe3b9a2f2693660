//! Issue 17, item 1, through the `wasmflow` binary: `run --state redis://…` keeps a graph's state
//! in a real `redis-server` (started per test on a free loopback port); its password comes from
//! a file or the environment, never the URL; an unreachable server stops the start naming it;
//! and a server that goes away mid-run fails the operators' calls with the ABI's error (the
//! items become dead letters, promptly) until it is back, when the client has reconnected on
//! its own. The semantics of the store itself are tested against both backends in
//! `host/state-store/tests/suite.rs`. Checks read Redis with `redis-cli`.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::mosquitto::{free_port, user_prop, Client, Mosquitto};
use crate::support::process::Wasmflow;
use crate::support::redis::{Options, RedisServer};
use crate::support::{module, repo, OutputExt};

/// `wasmflow run ARGS` to completion (line mode), from the repository root.
fn run(data: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmflow"))
        .arg("run")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .current_dir(repo())
        .env_remove("WASMFLOW_STATE")
        .env_remove("WASMFLOW_STATE_PASSWORD")
        .envs(env.iter().copied())
        .output()
        .expect("run wasmflow")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_graph_keeps_its_state_in_redis() {
    module("enrichment");
    let redis = RedisServer::start();
    let data = tempfile::tempdir().unwrap();
    let seed = data.path().join("seed.json");
    std::fs::write(&seed, r#"{"site":"north"}"#).unwrap();
    let url = redis.url();
    let out = run(
        data.path(),
        &[
            "graphs/temperature-humidity.yaml",
            "--envelope",
            "--input",
            "graphs/demo/readings.jsonl",
            "--state",
            &url,
            "--state-seed",
            seed.to_str().unwrap(),
        ],
        &[],
    )
    .succeeded("wasmflow run --state redis");
    assert_eq!(redis.cli(&["HGET", "site", "v"]), "north", "the seed went to Redis");
    assert_eq!(redis.cli(&["HGET", "overtemp", "v"]), "true", "{}", stderr(&out));
    let windows: u64 = redis.cli(&["HGET", "overtemp_windows", "v"]).parse().expect("a count");
    assert!(windows >= 1);
    assert!(
        !data.path().join("state.redb").exists(),
        "no embedded store is opened with --state"
    );
}

#[test]
fn the_password_comes_from_a_file_or_the_environment_never_the_url() {
    module("temperature");
    let redis = RedisServer::with(Options {
        password: Some("s3cret".into()),
        ..Default::default()
    });
    let data = tempfile::tempdir().unwrap();
    let url = redis.url();
    let with = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "compose/tests/azure-compat/graph-simple.yaml",
            "--input",
            "-",
            "--state",
        ];
        args.extend(extra);
        run(data.path(), &args, env)
    };
    let in_url = format!("redis://:s3cret@127.0.0.1:{}", redis.port);
    let refused = with(&[&in_url], &[]);
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(
        err.contains("--state-password-file") && !err.contains("s3cret"),
        "{err}"
    );

    let file = data.path().join("pw");
    std::fs::write(&file, "s3cret\n").unwrap();
    with(&[&url, "--state-password-file", file.to_str().unwrap()], &[]).succeeded("wasmflow run --state-password-file");
    with(&[&url], &[("WASMFLOW_STATE_PASSWORD", "s3cret")]).succeeded("wasmflow run, WASMFLOW_STATE_PASSWORD");

    let wrong = with(&[&url], &[("WASMFLOW_STATE_PASSWORD", "guess")]);
    assert!(!wrong.status.success());
    let err = stderr(&wrong);
    assert!(err.contains(&url) && !err.contains("guess"), "{err}");
}

#[test]
fn an_unreachable_state_store_stops_the_start_naming_it() {
    module("temperature");
    let data = tempfile::tempdir().unwrap();
    let url = format!("redis://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let out = run(
        data.path(),
        &[
            "compose/tests/azure-compat/graph-simple.yaml",
            "--input",
            "-",
            "--state",
            &url,
            "--state-connect-timeout-secs",
            "1",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&url), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// source → enrichment → sink over mosquitto, state in Redis, dead letters on a topic. While
/// Redis is away, each item's state-store call fails with the ABI's error within the read
/// timeout and the item goes to the dead-letter topic saying so (nothing hangs, nothing is
/// lost); once Redis is back, items go through again without a restart.
#[test]
fn redis_going_away_mid_run_fails_calls_then_the_client_reconnects() {
    let h = crate::support::Harness::new();
    module("enrichment");
    let graph = h.write_graph(
        "enrich.yaml",
        "enrich",
        "the enrichment operator alone, on sensor_data documents",
        r#"operations:
  - { operationType: source, name: source }
  - { operationType: map, name: enrichment/map, module: "x/enrichment:1.0.0" }
  - { operationType: sink, name: sink }
connections:
  - { from: { name: source }, to: { name: enrichment/map } }
  - { from: { name: enrichment/map }, to: { name: sink } }
"#,
    );
    let mut redis = RedisServer::start();
    let broker = Mosquitto::start();
    let (url, state) = (broker.url(), redis.url());
    let data = tempfile::tempdir().unwrap();
    let mut wf = Wasmflow::start(
        data.path(),
        &[
            graph.to_str().unwrap(),
            "--mqtt",
            &url,
            "--source",
            "in",
            "--sink",
            "out",
            "--dead-letter-topic",
            "dead",
            "--state",
            &state,
            "--state-read-timeout-ms",
            "500",
        ],
    );
    wf.wait_for_log("MQTT source subscribed", Duration::from_secs(60));
    let sink = Client::connect(broker.port, "redis-out", &["out", "dead"]);
    let publisher = Client::connect(broker.port, "redis-in", &[]);
    let hot = r#"{"sensor_data":{"temperature":[{"max":150.0,"min":20.0,"unit":"C"}]}}"#;
    let next = |n: usize| {
        let got = sink.wait_for(n, Duration::from_secs(30));
        assert!(got.len() >= n, "output {n} did not arrive:\n{}", wf.log());
        got[n - 1].clone()
    };

    publisher.publish("in", hot, vec![("seq", "0")], None);
    let first = next(1);
    assert_eq!(&first.topic[..], b"out");
    assert_eq!(redis.cli(&["HGET", "overtemp_windows", "v"]), "1");

    redis.stop();
    let stopped = Instant::now();
    publisher.publish("in", hot, vec![("seq", "1")], None);
    let failed = next(2);
    assert!(
        stopped.elapsed() < Duration::from_secs(15),
        "took {:?}",
        stopped.elapsed()
    );
    assert_eq!(&failed.topic[..], b"dead", "{:?}", failed);
    let error = user_prop(&failed, "error").unwrap_or_default().to_owned();
    assert!(error.contains("state-store"), "{error}");
    assert!(
        wf.log().contains(&format!("state store {state} unavailable")),
        "the outage is logged:\n{}",
        wf.log()
    );

    redis.resume();
    // The client reconnects on its own; items go through again (Redis restarted empty).
    let until = Instant::now() + Duration::from_secs(30);
    let mut n = 2;
    loop {
        n += 1;
        publisher.publish("in", hot, vec![("seq", &n.to_string())], None);
        if &next(n).topic[..] == b"out" {
            break;
        }
        assert!(
            Instant::now() < until,
            "no item went through within 30 s of Redis' return:\n{}",
            wf.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(redis.cli(&["HGET", "overtemp", "v"]), "true");
    assert!(wf.log().contains("answers again"), "{}", wf.log());
}
