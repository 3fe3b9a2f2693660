//! The `wasmflow` binary as a user runs it: exit codes, stdout, and error messages that name
//! the file and what is wrong.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::*;

fn wasmflow(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmflow"))
        .args(args)
        .current_dir(repo())
        .env("WASMFLOW_DATA_DIR", dir)
        .env_remove("WASMFLOW_MODULES")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run wasmflow")
}

#[test]
fn compose_writes_a_valid_component_that_inspect_describes() {
    module("temperature");
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("simple.wasm");
    let r = wasmflow(
        &[
            "compose",
            "compose/tests/azure-compat/graph-simple.yaml",
            "-o",
            out.to_str().unwrap(),
        ],
        d.path(),
    )
    .succeeded("wasmflow compose");
    assert!(text(&r.stderr).contains("composed 3 operations"), "{}", text(&r.stderr));

    // The standard tool agrees it is a valid component (the `implements` imports need --features all).
    Command::new("wasm-tools")
        .args(["validate", "--features", "all"])
        .arg(&out)
        .output()
        .expect("wasm-tools is installed by scripts/setup.sh")
        .succeeded("wasm-tools validate");

    let r = wasmflow(&["inspect", out.to_str().unwrap()], d.path()).succeeded("wasmflow inspect");
    let s = text(&r.stdout);
    for needle in [
        "import op1-logger: wasm-graph:processor/logger@1.1.0",
        "export op1-module-temperature-map: wasm-graph:processor/map@1.1.0",
        "module-temperature/map: map, module azure-samples/explore-iot-operations/temperature:1.0.0",
        "parameter key1",
    ] {
        assert!(s.contains(needle), "`{needle}` missing from:\n{s}");
    }
}

#[test]
fn run_prints_outputs_as_json_lines() {
    module("temperature");
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"temperature\":{\"value\":1209,\"unit\":\"F\"}}\n\n{\"temperature\":{\"value\":32,\"unit\":\"F\"}}\n",
    )
    .unwrap();
    let r = wasmflow(
        &[
            "run",
            "compose/tests/azure-compat/graph-simple.yaml",
            "--input",
            input.to_str().unwrap(),
        ],
        d.path(),
    )
    .succeeded("wasmflow run");
    let lines: Vec<serde_json::Value> = text(&r.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", text(&r.stdout));
    assert_eq!(
        lines[0]["payload"]["temperature"]["value"],
        serde_json::json!(653.8888888888889)
    );
    assert_eq!(lines[1]["payload"]["temperature"]["value"], serde_json::json!(0.0));
    assert_eq!(lines[0]["sink"], "sink");
}

#[test]
fn a_yaml_syntax_error_names_the_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.yaml");
    std::fs::write(&bad, "metadata:\n  name: x\noperations: [\n  - {").unwrap();
    let r = wasmflow(
        &[
            "compose",
            bad.to_str().unwrap(),
            "-o",
            d.path().join("x.wasm").to_str().unwrap(),
        ],
        d.path(),
    );
    assert_eq!(r.status.code(), Some(1));
    let e = text(&r.stderr);
    assert!(e.starts_with("error: "), "{e}");
    assert!(
        e.contains("bad.yaml:4:") && e.contains("YAML syntax error"),
        "file:line:column: {e}"
    );
    assert!(!e.contains("panicked"), "{e}");
}

/// A file that is not there is named, and the system's reason is printed once: each error of
/// the libraries carries what it wraps in its message, not again as a cause.
#[test]
fn a_missing_file_is_named_and_its_reason_printed_once() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("missing.yaml");
    let r = wasmflow(&["run", missing.to_str().unwrap(), "--input", "/dev/null"], d.path());
    assert_eq!(r.status.code(), Some(1));
    let e = text(&r.stderr);
    assert!(e.contains("missing.yaml: cannot read the graph definition: "), "{e}");
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");

    let r = wasmflow(&["push", missing.to_str().unwrap(), "127.0.0.1:1/x:y"], d.path());
    assert_eq!(r.status.code(), Some(1));
    let e = text(&r.stderr);
    assert!(e.contains("missing.yaml: "), "{e}");
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
}

/// A Kafka properties line without `=` is named by file and line on one line, without its text
/// (it may be a secret written with another separator); a bad `-X` is named by its position.
/// Both before the graph is looked at: the graph named here does not exist.
#[test]
fn a_malformed_kafka_property_is_named_without_its_text() {
    let d = tempfile::tempdir().unwrap();
    let props = d.path().join("client.properties");
    std::fs::write(&props, "security.protocol=SASL_SSL\nsasl.password: hunter2\n").unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "missing.yaml",
            "--kafka",
            "127.0.0.1:1",
            "--source",
            "in",
            "--sink",
            "out",
        ];
        args.extend_from_slice(extra);
        let r = wasmflow(&args, d.path());
        assert_eq!(r.status.code(), Some(1));
        text(&r.stderr)
    };
    let e = run(&["--kafka-config", props.to_str().unwrap()]);
    let expected = format!(
        "error: --kafka-config: {}:2: kafka property: expected KEY=VALUE",
        props.display()
    );
    assert!(e.starts_with(&expected), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(!e.contains("hunter2"), "{e}");

    let e = run(&["-X", "acks=all", "-X", "sasl.password hunter2"]);
    assert!(e.starts_with("error: -X #2: kafka property: expected KEY=VALUE"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

/// `--model` for a graph none of whose operations imports wasi:nn is not loaded: said, so a
/// model meant for another graph (or a module built without wasi-nn) is not ignored in silence.
#[test]
fn a_model_no_operation_can_use_is_warned_about() {
    module("temperature");
    let d = tempfile::tempdir().unwrap();
    let r = wasmflow(
        &[
            "run",
            "compose/tests/azure-compat/graph-simple.yaml",
            "--input",
            "/dev/null",
            "--model",
            "digits=/nonexistent/digits.onnx",
        ],
        d.path(),
    )
    .succeeded("wasmflow run --model");
    let e = text(&r.stderr);
    assert!(
        e.contains("no operation imports wasi:nn: the --model models are not loaded"),
        "{e}"
    );
}

#[test]
fn a_missing_module_is_named() {
    let d = tempfile::tempdir().unwrap();
    let simple = std::fs::read_to_string(repo().join("compose/tests/azure-compat/graph-simple.yaml")).unwrap();
    let graph = d.path().join("absent.yaml");
    std::fs::write(
        &graph,
        simple.replace(
            "explore-iot-operations/temperature:1.0.0",
            "explore-iot-operations/absent:1.0.0",
        ),
    )
    .unwrap();
    let r = wasmflow(&["run", graph.to_str().unwrap(), "--input", "/dev/null"], d.path());
    assert_eq!(r.status.code(), Some(1));
    let e = text(&r.stderr);
    assert!(e.contains("module `absent`") && e.contains("not found locally"), "{e}");
}

#[test]
fn run_refuses_a_wasm_that_is_not_a_composed_graph() {
    let d = tempfile::tempdir().unwrap();
    let r = wasmflow(
        &["run", module("temperature").to_str().unwrap(), "--input", "/dev/null"],
        d.path(),
    );
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("is not a composed wasmflow graph"),
        "{}",
        text(&r.stderr)
    );
    // A `.wasm` that is not WebAssembly at all, and one cut short: named, with what is wrong.
    for (name, bytes, why) in [
        ("text.wasm", &b"hello\n"[..], "not a WebAssembly file"),
        (
            "short.wasm",
            &b"\0asm\x01\0\0\0\x01"[..],
            "not a readable WebAssembly component",
        ),
    ] {
        let file = d.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let r = wasmflow(&["run", file.to_str().unwrap(), "--input", "/dev/null"], d.path());
        assert_eq!(r.status.code(), Some(1));
        let e = text(&r.stderr);
        assert!(e.contains(&format!("{}: {why}", file.display())), "{e}");
        // `graph` draws a composed graph's manifest: it names the file too.
        let r = wasmflow(&["graph", file.to_str().unwrap()], d.path());
        assert_eq!(r.status.code(), Some(1));
        let e = text(&r.stderr);
        assert!(e.contains(&file.display().to_string()) && e.contains(why), "{e}");
    }
}

#[test]
fn golden_tests_pass_and_a_wrong_expectation_fails() {
    module("temperature");
    let d = tempfile::tempdir().unwrap();
    let r = wasmflow(&["test", "tests/golden"], d.path()).succeeded("wasmflow test tests/golden");
    let out = text(&r.stdout);
    assert!(out.lines().any(|l| l.starts_with("PASS complex-temperature")), "{out}");
    assert!(
        out.lines().last().is_some_and(|l| l.ends_with(" passed, 0 failed")),
        "{out}"
    );

    // The same test with one digit changed in the expectation must fail.
    let copy = d.path().join("golden");
    let src = repo().join("tests/golden/graph-simple");
    std::fs::create_dir_all(copy.join("input")).unwrap();
    for f in ["input/000.json", "input/000.json.meta.json", "expected.json"] {
        std::fs::copy(src.join(f), copy.join(f)).unwrap();
    }
    let descriptor = std::fs::read_to_string(src.join("graph-simple.test.yaml")).unwrap();
    let descriptor = descriptor.replace("../../../compose", repo().join("compose").to_str().unwrap());
    std::fs::write(copy.join("broken.test.yaml"), descriptor).unwrap();
    let expected = std::fs::read_to_string(copy.join("expected.json"))
        .unwrap()
        .replace("653.8888888888889", "653.8888888888888");
    std::fs::write(copy.join("expected.json"), expected).unwrap();
    let r = wasmflow(&["test", copy.to_str().unwrap()], d.path());
    let out = text(&r.stdout);
    assert_eq!(r.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAIL graph-simple") && out.contains("653.8888888888888"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("0 passed, 1 failed"), "{out}");
}

/// `wasmflow run` of graph-simple on standard input (with `args` after it and `env` set), fed
/// one 212 °F reading: the child with its standard input still open, once its first output
/// line (returned) has arrived.
fn graph_simple_answering(
    args: &[&str],
    env: &[(&str, &str)],
    data_dir: &Path,
) -> (std::process::Child, std::process::ChildStdin, String) {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmflow"))
        .args(["run", "compose/tests/azure-compat/graph-simple.yaml", "--input", "-"])
        .args(args)
        .current_dir(repo())
        .env("WASMFLOW_DATA_DIR", data_dir)
        .env_remove("WASMFLOW_MODULES")
        .env_remove("WASMFLOW_IO_THREADS")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, r#"{{"temperature":{{"value":212,"unit":"F"}}}}"#).unwrap();
    stdin.flush().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, stdin, line)
}

#[test]
fn ctrl_c_stops_a_run_cleanly() {
    use std::time::{Duration, Instant};
    module("temperature");
    let d = tempfile::tempdir().unwrap();
    let (mut child, stdin, line) = graph_simple_answering(&["--idle-ms", "100"], &[], d.path());
    assert!(
        line.contains(r#""value":100.0"#),
        "output arrives while input stays open: {line}"
    );
    // Standard input is still open: only the interrupt can end the run.
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running 10 s after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    drop(stdin);
}

/// A line that is not UTF-8 is a payload like any other (payloads may be binary), and an
/// envelope that is not UTF-8 is a warning for that line only: the lines after it still run.
/// (Before, one such line ended the run: "stream did not contain valid UTF-8".)
/// `wasmflow run --input - | head -1`: when the reader of the outputs goes away, the run ends
/// as a command-line filter's does, with success and no error (nothing was acknowledged, so
/// nothing is lost). Before, it failed with "error: Broken pipe (os error 32)".
#[test]
fn a_reader_that_closes_the_outputs_ends_the_run_without_an_error() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;

    module("temperature");
    let d = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmflow"))
        .args(["run", "compose/tests/azure-compat/graph-simple.yaml", "--input", "-"])
        .current_dir(repo())
        .env("WASMFLOW_DATA_DIR", d.path())
        .env_remove("WASMFLOW_MODULES")
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wasmflow");
    let mut stdin = child.stdin.take().expect("piped");
    let reading = b"{\"temperature\":{\"value\":212,\"unit\":\"F\"}}\n";
    stdin.write_all(reading).unwrap();
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains(r#""value":100.0"#), "{first}");
    drop(stdout); // as `head -1` does after its line
                  // The next output finds no reader. (wasmflow may be gone by the second write.)
    let _ = stdin.write_all(reading).and_then(|()| stdin.flush());
    drop(stdin);
    let r = child.wait_with_output().expect("wait for wasmflow");
    let err = text(&r.stderr);
    assert!(r.status.success(), "{:?}: {err}", r.status);
    assert!(!err.contains("error"), "{err}");
    assert!(err.contains("the outputs' reader closed them; stopping"), "{err}");
}

#[test]
fn a_line_that_is_not_utf8_loses_no_later_message() {
    module("temperature");
    let d = tempfile::tempdir().unwrap();
    let good = |f: u32| format!(r#"{{"temperature":{{"value":{f},"unit":"F"}}}}"#);
    let mut payloads = Vec::new();
    payloads.extend_from_slice(good(212).as_bytes());
    payloads.extend_from_slice(b"\n\xff\xfe not text\n");
    payloads.extend_from_slice(good(32).as_bytes());
    payloads.push(b'\n');
    let file = d.path().join("payloads.jsonl");
    std::fs::write(&file, &payloads).unwrap();
    let r = wasmflow(
        &[
            "run",
            "compose/tests/azure-compat/graph-simple.yaml",
            "--input",
            file.to_str().unwrap(),
        ],
        d.path(),
    )
    .succeeded("wasmflow run");
    let out = text(&r.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "every line reaches the graph:\n{out}");
    assert!(lines[0].contains(r#""value":100.0"#), "{out}");
    assert!(
        lines[2].contains(r#""value":0.0"#),
        "the line after the binary one: {out}"
    );

    let mut envelopes = Vec::new();
    envelopes.extend_from_slice(b"{\"payload\":\"\xff\"}\n");
    envelopes.extend_from_slice(format!(r#"{{"payload":{}}}"#, good(212)).as_bytes());
    envelopes.push(b'\n');
    let file = d.path().join("envelopes.jsonl");
    std::fs::write(&file, &envelopes).unwrap();
    let r = wasmflow(
        &[
            "run",
            "compose/tests/azure-compat/graph-simple.yaml",
            "--envelope",
            "--input",
            file.to_str().unwrap(),
        ],
        d.path(),
    )
    .succeeded("wasmflow run --envelope");
    let err = text(&r.stderr);
    assert!(
        err.contains("line 1") && err.contains("UTF-8"),
        "the bad line is named: {err}"
    );
    let out = text(&r.stdout);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(r#""value":100.0"#), "{out}");
}

/// Memory flags are bounded: 0 (which wasmtime cannot configure) and more than wasm32 can
/// address are refused by the flag parser, naming the flag and the range.
#[test]
fn memory_flags_out_of_range_are_refused() {
    let d = tempfile::tempdir().unwrap();
    for (flag, value) in [
        ("--max-memory-mib", "0"),
        ("--max-memory-mib", "4097"),
        ("--max-graph-memory-mib", "0"),
    ] {
        let r = wasmflow(
            &[
                "run",
                "compose/tests/azure-compat/graph-simple.yaml",
                flag,
                value,
                "--input",
                "-",
            ],
            d.path(),
        );
        assert_eq!(r.status.code(), Some(2), "{flag} {value}: {}", text(&r.stderr));
        let err = text(&r.stderr);
        assert!(err.contains(flag) && err.contains("1.."), "{flag} {value}: {err}");
    }
}

#[test]
fn run_composes_a_graph_once_and_again_after_it_changed() {
    module("temperature");
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.jsonl");
    std::fs::write(&input, "{\"temperature\":{\"value\":1209,\"unit\":\"F\"}}\n").unwrap();
    let graph = d.path().join("graph.yaml");
    let yaml = std::fs::read_to_string(repo().join("compose/tests/azure-compat/graph-simple.yaml")).unwrap();
    std::fs::write(&graph, &yaml).unwrap();
    let run = || {
        let r = wasmflow(
            &["run", graph.to_str().unwrap(), "--input", input.to_str().unwrap()],
            d.path(),
        )
        .succeeded("wasmflow run");
        // The payload: the event time (`__ts`) is the time of the run.
        let line: serde_json::Value = serde_json::from_str(text(&r.stdout).trim()).expect("one JSON line");
        line["payload"].clone()
    };
    let entries = || std::fs::read_dir(d.path().join("composed")).map_or(0, |e| e.count());

    let first = run();
    assert_eq!(first["temperature"]["value"], serde_json::json!(653.8888888888889));
    assert_eq!(entries(), 1, "the first run keeps its composed graph");
    assert_eq!(run(), first, "the cached graph gives the same outputs");
    assert_eq!(entries(), 1, "an unchanged graph is not composed again");

    std::fs::write(&graph, format!("# changed\n{yaml}")).unwrap();
    assert_eq!(run(), first);
    assert_eq!(entries(), 2, "a changed definition is composed again");
}

/// A source, `maps` maps of the temperature module in a chain, and a sink, in flow style.
fn chain_graph(maps: usize) -> String {
    let mut yaml = String::from(
        "metadata: { name: chain, version: \"1.0.0\" }\n\
         moduleRequirements: { apiVersion: \"1.1.0\", runtimeVersion: \"1.1.0\" }\n\
         operations:\n  - { operationType: source, name: source }\n",
    );
    for i in 0..maps {
        yaml.push_str(&format!(
            "  - {{ operationType: map, name: map-{i}, module: \"azure-samples/explore-iot-operations/temperature:1.0.0\" }}\n"
        ));
    }
    yaml.push_str("  - { operationType: sink, name: sink }\nconnections:\n");
    let names: Vec<String> = std::iter::once("source".to_string())
        .chain((0..maps).map(|i| format!("map-{i}")))
        .chain(std::iter::once("sink".to_string()))
        .collect();
    for pair in names.windows(2) {
        yaml.push_str(&format!(
            "  - {{ from: {{ name: {} }}, to: {{ name: {} }} }}\n",
            pair[0], pair[1]
        ));
    }
    yaml
}

/// Issue 18, probe 1: a graph of 20,000 chained maps aborted `compose`, `inspect` and `run` with
/// a stack overflow (SIGABRT, exit 134), and from 1,000 operations on composing failed only
/// after encoding, in time quadratic in the graph. Each command now refuses such a graph before
/// that work, with exit code 1 and an error naming the file and the limit: the size of the
/// document for 20,000 operations, the number of operations (and the flag that raises it) for
/// 1,000.
#[test]
fn huge_graphs_are_refused_by_every_command_naming_the_limit() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out.wasm");
    for (maps, limit) in [(19_998, "(max_document_bytes)"), (998, "--max-operations")] {
        let file = d.path().join(format!("chain-{maps}.yaml"));
        std::fs::write(&file, chain_graph(maps)).unwrap();
        let f = file.to_str().unwrap();
        for args in [
            vec!["compose", f, "-o", out.to_str().unwrap()],
            vec!["inspect", f],
            vec!["run", f, "--input", "-"],
        ] {
            let r = wasmflow(&args, d.path());
            let err = text(&r.stderr);
            assert_eq!(r.status.code(), Some(1), "{args:?}: {err}");
            assert!(err.contains(f) && err.contains(limit), "{args:?}: {err}");
        }
    }
    assert!(!out.exists(), "nothing was composed");
}

/// `--io-threads` (and `WASMFLOW_IO_THREADS`) sizes the I/O runtime: one worker by default,
/// which keeps a message to two thread hand-offs (BENCHMARKS.md, "What changed", item 5). The
/// workers are the threads named `wasmflow-io` (`/proc/PID/task/*/comm`), counted once the run
/// has answered a reading. 0 is refused by the flag parser, naming the flag.
#[test]
fn io_threads_sizes_the_io_runtime() {
    module("temperature");
    let d = tempfile::tempdir().unwrap();
    let workers = |args: &[&str], env: &[(&str, &str)]| -> usize {
        let (mut child, stdin, line) = graph_simple_answering(args, env, d.path());
        assert!(line.contains(r#""value":100.0"#), "{args:?} {env:?}: {line}");
        let named_io = std::fs::read_dir(format!("/proc/{}/task", child.id()))
            .unwrap()
            .filter(|t| {
                let comm = t.as_ref().unwrap().path().join("comm");
                std::fs::read_to_string(comm).is_ok_and(|c| c.trim() == "wasmflow-io")
            })
            .count();
        drop(stdin);
        assert!(child.wait().unwrap().success());
        named_io
    };
    assert_eq!(workers(&[], &[]), 1, "the default");
    assert_eq!(workers(&["--io-threads", "3"], &[]), 3, "--io-threads 3");
    assert_eq!(
        workers(&[], &[("WASMFLOW_IO_THREADS", "2")]),
        2,
        "WASMFLOW_IO_THREADS=2"
    );
    let r = wasmflow(&["--io-threads", "0", "run", "graphs/temperature.yaml"], d.path());
    assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));
    assert!(text(&r.stderr).contains("--io-threads"), "{}", text(&r.stderr));
}
