//! Issue 17, item 4: a running graph updated without stopping. `wasmflow run` over a real
//! mosquitto loads its target again on SIGHUP (a local file rewritten) or, with `--watch`, when
//! a registry tag moves (a real docker-registry); the new version starts beside the old one,
//! intake switches between two messages, and the old version drains its windows. Outputs are
//! told apart by what each version does (v1 converts °F to °C, v2 passes readings through) and
//! checked by a plain MQTT client: every input out exactly once, v1 before the switch, v2 after.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::mqtt::{await_all, reading};
use crate::support::mosquitto::{user_prop, Client, Mosquitto};
use crate::support::process::Wasmflow;
use crate::support::{module, repo, Harness, OutputExt};

/// A version of the graph: source → `convert` (a map of `module`) → sink, after `configurations`
/// (a `moduleConfigurations:` block, or nothing).
fn version(module: &str, configurations: &str) -> String {
    format!(
        r#"{configurations}operations:
  - {{ operationType: source, name: source }}
  - {{ operationType: map, name: convert, module: "x/{module}:1.0.0" }}
  - {{ operationType: sink, name: sink }}
connections:
  - {{ from: {{ name: source }}, to: {{ name: convert }} }}
  - {{ from: {{ name: convert }}, to: {{ name: sink }} }}
"#
    )
}

/// °F → °C: the temperature module's map.
fn v1() -> String {
    version("temperature", "")
}

/// Readings through unchanged: the faulty module's map, asked for nothing.
fn v2() -> String {
    version("faulty", "")
}

/// Composes, but its `init` refuses its configuration.
const INIT_FAILS: &str = r#"moduleConfigurations:
  - name: convert
    parameters:
      init:
        name: init
        description: what the faulty module's init does
        default: "false"
"#;

/// Which version produced an output: v1 writes °C, v2 leaves the reading in °F.
fn unit(p: &rumqttc::v5::mqttbytes::v5::Publish) -> String {
    let v: serde_json::Value = serde_json::from_slice(&p.payload).expect("JSON output");
    v["temperature"]["unit"].as_str().unwrap_or_default().to_owned()
}

fn start(graph: &str, broker: &Mosquitto, data: &std::path::Path, extra: &[&str]) -> Wasmflow {
    let url = broker.url();
    let mut args = vec![graph, "--mqtt", &url, "--source", "in", "--sink", "out"];
    args.extend(extra);
    let mut wf = Wasmflow::start(data, &args);
    wf.wait_for_log("MQTT source subscribed", Duration::from_secs(60));
    wf
}

/// Waits until `text` appears `n` times in the log.
fn await_log_count(wf: &mut Wasmflow, text: &str, n: usize) {
    let until = Instant::now() + Duration::from_secs(60);
    while wf.log().matches(text).count() < n {
        assert!(Instant::now() < until, "`{text}` not logged {n} times:\n{}", wf.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_switches_to_the_new_file_mid_stream_and_a_bad_version_leaves_the_running_one() {
    module("temperature");
    module("faulty");
    let h = Harness::new();
    let graph = h.write_graph("hot.yaml", "hot", "v1: °F to °C", &v1());
    let broker = Mosquitto::start();
    let data = tempfile::tempdir().unwrap();
    let mut wf = start(graph.to_str().unwrap(), &broker, data.path(), &[]);
    let collector = Client::connect(broker.port, "hot-out", &["out"]);
    let publisher = Client::connect(broker.port, "hot-in", &[]);

    // 8 s of readings; the new version goes in after the first thousand are out.
    const N: usize = 8_000;
    publisher.publish_many("in", N, 1, reading);
    collector.wait_for(1_000, Duration::from_secs(60));
    h.write_graph("hot.yaml", "hot", "v2: readings through", &v2());
    wf.signal("HUP");
    wf.wait_for_log(
        "hot update: intake switched to version sha256:",
        Duration::from_secs(60),
    );
    let (missing, dups) = await_all(&collector, N, Duration::from_secs(120));
    assert!(
        missing.is_empty(),
        "{} lost (first {:?}):\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        wf.log()
    );
    assert_eq!(dups, 0, "nothing emitted twice");

    let by_seq: BTreeMap<usize, String> = collector
        .received
        .lock()
        .unwrap()
        .iter()
        .filter_map(|p| Some((user_prop(p, "seq")?.parse().ok()?, unit(p))))
        .collect();
    let switch = by_seq
        .iter()
        .find(|(_, u)| u.as_str() == "F")
        .map(|(s, _)| *s)
        .expect("some outputs by the new version");
    assert!(switch > 0 && switch < N, "the switch came mid-stream: {switch}");
    for (seq, u) in &by_seq {
        let want = if *seq < switch { "C" } else { "F" };
        assert_eq!(u, want, "seq {seq}: v1 before the switch at {switch}, v2 after");
    }
    eprintln!("hot update: switched at seq {switch} of {N}");

    // A version that does not compose, then one whose init fails: logged, v2 keeps running.
    for (body, why, n) in [
        // Does not compose: no such module.
        (version("no-such-module", ""), "no-such-module", 1),
        (version("faulty", INIT_FAILS), "refused its configuration", 2),
    ] {
        h.write_graph("hot.yaml", "hot", "a bad version", &body);
        wf.signal("HUP");
        await_log_count(&mut wf, "keeps running", n);
        let log = wf.log();
        let line = log
            .lines()
            .filter(|l| l.contains("keeps running"))
            .nth(n - 1)
            .unwrap_or_default();
        assert!(line.contains(why) && line.contains("hot update of"), "{line}");
    }
    publisher.publish("in", &reading(1), vec![("seq", "after")], None);
    let last = collector.wait_for(N + 1, Duration::from_secs(30));
    assert_eq!(last.len(), N + 1, "{}", wf.log());
    assert_eq!(unit(&last[N]), "F", "v2 still runs");
}

/// Windows: v1 counts readings per 10 s window (`{"count":N}`), v2 is the temperature
/// statistics (`{"temperature":{"count":N,…}}`). The window open at the switch keeps the
/// readings v1 got before it — v1 emits it while draining, when the readings v2 gets take event
/// time past it — and v2's window of the same interval holds those after; every reading is
/// counted in exactly one output.
#[test]
fn the_old_version_drains_its_open_windows_after_the_switch() {
    module("window");
    module("faulty");
    module("temperature");
    let window = |accumulate: &str| {
        format!(
            r#"operations:
  - {{ operationType: source, name: source }}
  - {{ operationType: delay, name: window, module: "x/window:1.0.0" }}
  - {{ operationType: map, name: convert, module: "x/temperature:1.0.0" }}
  - {{ operationType: accumulate, name: stats, module: "{accumulate}" }}
  - {{ operationType: sink, name: sink }}
connections:
  - {{ from: {{ name: source }}, to: {{ name: window }} }}
  - {{ from: {{ name: window }}, to: {{ name: convert }} }}
  - {{ from: {{ name: convert }}, to: {{ name: stats }} }}
  - {{ from: {{ name: stats }}, to: {{ name: sink }} }}
"#
        )
    };
    let h = Harness::new();
    let graph = h.write_graph("win.yaml", "win", "v1 counts", &window("x/faulty:1.0.0"));
    let broker = Mosquitto::start();
    let data = tempfile::tempdir().unwrap();
    // Event time moves only with readings here (no idle advance within the test).
    let mut wf = start(graph.to_str().unwrap(), &broker, data.path(), &["--idle-ms", "600000"]);
    let collector = Client::connect(broker.port, "win-out", &["out"]);
    let publisher = Client::connect(broker.port, "win-in", &[]);
    const T0: u64 = 1_767_225_600_000;
    let send = |secs: &[u64]| {
        for s in secs {
            let ts = crate::support::ts(T0 + s * 1000);
            publisher.publish(
                "in",
                r#"{"temperature":{"value":212,"unit":"F"}}"#,
                vec![("__ts", &ts)],
                None,
            );
        }
    };
    // Windows [0,10) and [10,20) close as later readings arrive; [20,30) is open at the switch.
    send(&[1, 2, 3, 11, 12, 13, 21, 22]);
    assert_eq!(collector.wait_for(2, Duration::from_secs(30)).len(), 2, "{}", wf.log());
    h.write_graph("win.yaml", "win", "v2 statistics", &window("x/temperature:1.0.0"));
    wf.signal("HUP");
    wf.wait_for_log("drains 2 window entries", Duration::from_secs(60));
    // 31 takes event time past [20,30) in both versions; 41 past [30,40) (and stays open).
    send(&[23, 31, 32, 41]);
    wf.wait_for_log("drained", Duration::from_secs(30));
    let out = collector.wait_for(5, Duration::from_secs(30));
    assert_eq!(out.len(), 5, "{}", wf.log());
    let mut by_version: BTreeMap<(&str, String), u64> = BTreeMap::new();
    for p in &out {
        let v: serde_json::Value = serde_json::from_slice(&p.payload).expect("JSON");
        let window = user_prop(p, "__ts").unwrap_or_default()[..15].to_owned();
        let (version, count) = match v.get("temperature") {
            Some(stats) => ("v2", &stats["count"]),
            None => ("v1", &v["count"]),
        };
        *by_version.entry((version, window)).or_default() += count.as_u64().expect("a count");
    }
    let counts: Vec<(&str, u64)> = by_version.iter().map(|((v, _), n)| (*v, *n)).collect();
    assert_eq!(
        counts.iter().map(|(_, n)| n).sum::<u64>(),
        11,
        "each reading of a closed window counted once: {by_version:?}"
    );
    assert_eq!(
        counts,
        [("v1", 3), ("v1", 3), ("v1", 2), ("v2", 1), ("v2", 2)],
        "v1: [0,10) [10,20) and its part of [20,30); v2: the rest: {by_version:?}"
    );
}

/// `wasmflow ARGS` with its own data directory; its stdout.
fn wasmflow(data: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmflow"))
        .args(args)
        .current_dir(repo())
        .env("WASMFLOW_DATA_DIR", data)
        .env_remove("WASMFLOW_MODULES")
        .output()
        .expect("run wasmflow")
        .succeeded(format_args!("wasmflow {args:?}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `--watch` on a registry tag: pushing a new version under the same tag switches the running
/// graph, no signal needed.
#[test]
fn watch_follows_a_registry_tag() {
    module("temperature");
    module("faulty");
    let registry = crate::oci::Registry::start();
    let h = Harness::new();
    let pusher = tempfile::tempdir().unwrap();
    let reference = registry.reference("hot/graph:1.0.0");
    let push = |name: &str, body: &str| {
        let yaml = h.write_graph(&format!("{name}.yaml"), "hot", name, body);
        let wasm = h.dir.path().join(format!("{name}.wasm"));
        wasmflow(
            pusher.path(),
            &["compose", yaml.to_str().unwrap(), "-o", wasm.to_str().unwrap()],
        );
        wasmflow(pusher.path(), &["push", wasm.to_str().unwrap(), &reference]);
    };
    push("v1", &v1());
    let broker = Mosquitto::start();
    let data = tempfile::tempdir().unwrap();
    let mut wf = start(
        &reference,
        &broker,
        data.path(),
        &["--watch", "--watch-interval-secs", "1"],
    );
    let collector = Client::connect(broker.port, "watch-out", &["out"]);
    let publisher = Client::connect(broker.port, "watch-in", &[]);
    publisher.publish("in", &reading(180), vec![("seq", "0")], None);
    let first = collector.wait_for(1, Duration::from_secs(30));
    assert_eq!(unit(&first[0]), "C", "{}", wf.log());

    push("v2", &v2());
    wf.wait_for_log("hot update: intake switched", Duration::from_secs(60));
    assert!(wf.log().contains("changed; loading it"), "{}", wf.log());
    publisher.publish("in", &reading(180), vec![("seq", "1")], None);
    let both = collector.wait_for(2, Duration::from_secs(30));
    assert_eq!(both.len(), 2, "{}", wf.log());
    assert_eq!(unit(&both[1]), "F", "the new version runs");
}
