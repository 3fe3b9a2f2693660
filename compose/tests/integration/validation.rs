//! Pure tests: parsing, schema, semantic validation, configuration overrides, module resolution.
//! No module is read here; every error message is asserted in full or in its key parts.
//!
//! Graphs that must be rejected are folders of `tests/graphs/` (a `graph.yaml` and its
//! `error.txt`, format in that folder's README), all run by `bad_graphs_fail_with_their_error`.

use std::path::{Path, PathBuf};

use wasmflow_compose::{
    load_graph, parse_graph, ComposeError, ModuleResolver, OperationKind, Override, ValidatedGraph,
};

use crate::common::{self, azure_compat_dir, graph_yaml};

const T: &str = "azure-samples/explore-iot-operations/temperature:1.0.0";

fn parse(text: &str) -> Result<ValidatedGraph, ComposeError> {
    parse_graph(Path::new("graphs/g.yaml"), text)
}

fn simple_ops() -> Vec<(&'static str, &'static str, Option<&'static str>)> {
    vec![
        ("source", "source", None),
        ("map", "module-temperature/map", Some(T)),
        ("sink", "sink", None),
    ]
}

fn simple_conns() -> Vec<(&'static str, Option<&'static str>, &'static str)> {
    vec![
        ("source", None, "module-temperature/map"),
        ("module-temperature/map", None, "sink"),
    ]
}

// ---------------------------------------------------------------- azure-compat

#[test]
fn the_four_published_graphs_parse_and_validate() {
    for name in [
        "graph-simple.yaml",
        "graph-complex.yaml",
        "graph-opc-ua.yaml",
        "graph.dataflow.yaml",
    ] {
        let g = load_graph(&azure_compat_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!g.operations.is_empty(), "{name}");
    }
    let complex = load_graph(&azure_compat_dir().join("graph-complex.yaml")).unwrap();
    assert_eq!(complex.operations.len(), 15);
    assert_eq!(complex.connections.len(), 16);
    let concat = complex.operation("concatenate1").unwrap();
    assert_eq!(concat.kind, OperationKind::Concatenate);
    assert_eq!(concat.module, None, "an empty `module:` is no module");
    assert_eq!(complex.operations[6].export, "op6-module-temperature-map");
    let dataflow = load_graph(&azure_compat_dir().join("graph.dataflow.yaml")).unwrap();
    assert!(dataflow.has_feature("wasi-nn"));
    let filter = dataflow.operation("module-temperature/filter").unwrap();
    assert_eq!(filter.parameters.len(), 2);
    assert_eq!(filter.parameters[0].key, "temperature_lower_bound");
    assert_eq!(filter.parameters[0].default.as_deref(), Some("-273.15"));
}

#[test]
fn the_repo_copies_match_the_shared_originals() {
    let shared = common::repo_root().join("../shared/azure-compat");
    if !shared.is_dir() {
        return; // CI clones carry shared/ beside the repo; a lone checkout tests the copies only.
    }
    for name in [
        "graph-simple.yaml",
        "graph-complex.yaml",
        "graph-opc-ua.yaml",
        "graph.dataflow.yaml",
    ] {
        let original = std::fs::read_to_string(shared.join(name)).unwrap();
        let copy = std::fs::read_to_string(azure_compat_dir().join(name)).unwrap();
        assert_eq!(original, copy, "{name} differs from shared/azure-compat");
        load_graph(&shared.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let schema = std::fs::read_to_string(shared.join("aio-wasm-graph-config-1.0.0.json")).unwrap();
    assert_eq!(schema, wasmflow_compose::schema::GRAPH_SCHEMA);
}

#[test]
fn the_shipped_graphs_validate() {
    for name in ["temperature.yaml", "temperature-humidity.yaml"] {
        let path = common::repo_root().join("graphs").join(name);
        load_graph(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn export_names_follow_the_kebab_rule() {
    use wasmflow_compose::naming::{export_name, slug};
    assert_eq!(export_name(1, "module-temperature/map"), "op1-module-temperature-map");
    assert_eq!(slug("Module_Temperature//Map "), "module-temperature-map");
    assert_eq!(slug("2nd stage/3x"), "x2nd-stage-x3x");
    assert_eq!(export_name(4, "///"), "op4");
    assert_eq!(export_name(0, "source"), "op0-source");
}

// ---------------------------------------------------------------- bad graphs (tests/graphs)

/// The folder of bad-graph cases.
fn bad_graphs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/graphs")
}

/// The keywords that start every line of an `error.txt` in parts form.
const PART_KEYWORDS: [&str; 4] = ["starts-with: ", "contains: ", "ends-with: ", "lacks: "];

/// Checks `message` against the text of an `error.txt`; `Err` says what does not hold.
fn check_error_text(message: &str, expected: &str) -> Result<(), String> {
    let lines: Vec<&str> = expected.lines().collect();
    let Some(first) = lines.first() else {
        return Err("error.txt is empty".to_string());
    };
    if !PART_KEYWORDS.iter().any(|k| first.starts_with(k)) {
        // The whole message, on one line.
        if lines.len() != 1 {
            return Err(format!(
                "error.txt holds {} lines but no keyword: a whole message is one line, parts start with one of {PART_KEYWORDS:?}",
                lines.len()
            ));
        }
        return if message == *first {
            Ok(())
        } else {
            Err(format!("the message is not exactly\n  {first}\nit is\n  {message}"))
        };
    }
    let mut unmet = Vec::new();
    for line in &lines {
        let holds = if let Some(text) = line.strip_prefix("starts-with: ") {
            message.starts_with(text)
        } else if let Some(text) = line.strip_prefix("contains: ") {
            message.contains(text)
        } else if let Some(text) = line.strip_prefix("ends-with: ") {
            message.ends_with(text)
        } else if let Some(text) = line.strip_prefix("lacks: ") {
            !message.contains(text)
        } else {
            return Err(format!(
                "error.txt line {line:?} starts with none of {PART_KEYWORDS:?} (in parts form, every line does)"
            ));
        };
        if !holds {
            unmet.push(format!("  {line}"));
        }
    }
    if unmet.is_empty() {
        Ok(())
    } else {
        Err(format!("the message\n  {message}\ndoes not meet\n{}", unmet.join("\n")))
    }
}

/// Runs one case folder: its `graph.yaml` must be rejected as its `error.txt` says.
fn check_bad_graph(dir: &Path) -> Result<(), String> {
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).map_err(|e| format!("cannot read {file}: {e}"));
    let graph = read("graph.yaml")?;
    let expected = read("error.txt")?;
    match parse(&graph) {
        Ok(_) => Err("graph.yaml parses and validates, but the case expects an error".to_string()),
        Err(e) => check_error_text(&e.to_string(), &expected),
    }
}

#[test]
fn bad_graphs_fail_with_their_error() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(bad_graphs_dir())
        .expect("tests/graphs is readable")
        .map(|entry| entry.expect("tests/graphs entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no case folders in {}", bad_graphs_dir().display());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|dir| {
            let case = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
            check_bad_graph(dir).err().map(|why| format!("{case}: {why}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} bad-graph cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn error_text_forms() {
    let message = "graphs/g.yaml: operation `x` is wrong";
    assert!(check_error_text(message, "graphs/g.yaml: operation `x` is wrong\n").is_ok());
    assert!(check_error_text(message, "graphs/g.yaml: operation `x` is").is_err());
    assert!(check_error_text(message, "graphs/g.yaml: operation `x` is wrong\nmore\n").is_err());
    assert!(check_error_text(message, "").is_err());
    let parts = "starts-with: graphs/g.yaml: \ncontains: `x`\nends-with: wrong\nlacks: right\n";
    assert!(check_error_text(message, parts).is_ok());
    for unmet in [
        "starts-with: operation",
        "contains: `y`",
        "ends-with: is",
        "lacks: wrong",
        "contains: `x`\nplain line",
    ] {
        assert!(check_error_text(message, unmet).is_err(), "{unmet:?}");
    }
}

// ---------------------------------------------------------------- semantics

fn branch_graph(arms: &[(Option<&'static str>, &'static str)]) -> String {
    let ops = vec![
        ("source", "source", None),
        ("branch", "br", Some(T)),
        ("map", "m", Some(T)),
        ("sink", "sink", None),
    ];
    let mut conns = vec![("source", None, "br"), ("m", None, "sink")];
    for (arm, to) in arms {
        conns.push(("br", *arm, to));
    }
    graph_yaml(&ops, &conns, "")
}

#[test]
fn branch_with_both_arms_is_valid() {
    let g = parse(&branch_graph(&[(Some("\"True\""), "m"), (Some("\"False\""), "sink")])).unwrap();
    assert_eq!(g.connections.iter().filter(|c| c.arm.is_some()).count(), 2);
}

#[test]
fn several_sources_and_sinks_are_allowed() {
    let ops = vec![
        ("source", "s1", None),
        ("source", "s2", None),
        ("map", "m", Some(T)),
        ("sink", "k1", None),
        ("sink", "k2", None),
    ];
    let conns = vec![
        ("s1", None, "m"),
        ("s2", None, "m"),
        ("m", None, "k1"),
        ("m", None, "k2"),
    ];
    let g = parse(&graph_yaml(&ops, &conns, "")).unwrap();
    assert_eq!(g.operations.len(), 5);
    assert!(g.warnings.is_empty(), "{:?}", g.warnings);
}

#[test]
fn dangling_output_is_a_warning() {
    let ops = vec![
        ("source", "source", None),
        ("map", "module-temperature/map", Some(T)),
        ("map", "dead-end", Some(T)),
        ("sink", "sink", None),
    ];
    let mut conns = simple_conns();
    conns.push(("source", None, "dead-end"));
    let g = parse(&graph_yaml(&ops, &conns, "")).unwrap();
    assert_eq!(g.warnings.len(), 1);
    assert!(
        g.warnings[0].contains("`dead-end` has no outgoing connection"),
        "{:?}",
        g.warnings
    );
}

#[test]
fn unreadable_graph_file() {
    let e = load_graph(Path::new("/nonexistent/graph.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("/nonexistent/graph.yaml: cannot read the graph definition:"),
        "{e}"
    );
}

// ---------------------------------------------------------------- configuration

fn configured() -> ValidatedGraph {
    let extra = "moduleConfigurations:\n  - name: module-temperature/map\n    parameters:\n      \
                 temperature_lower_bound:\n        name: temperature_lower_bound\n        default: \"-40\"\n      \
                 temperature_upper_bound:\n        name: temperature_upper_bound\n        description: upper\n        default: \"3422\"\n      \
                 topic:\n        name: topic\n        required: true\n";
    parse(&graph_yaml(&simple_ops(), &simple_conns(), extra)).unwrap()
}

fn ov(s: &str) -> Override {
    s.parse().unwrap()
}

#[test]
fn override_parsing() {
    assert_eq!(
        ov("a=b"),
        Override {
            operation: None,
            key: "a".into(),
            value: "b".into()
        }
    );
    assert_eq!(
        ov("module-temperature/map.k=v=w"),
        Override {
            operation: Some("module-temperature/map".into()),
            key: "k".into(),
            value: "v=w".into()
        }
    );
    assert_eq!(
        ov("my.op/v1.2.k="),
        Override {
            operation: Some("my.op/v1.2".into()),
            key: "k".into(),
            value: "".into()
        }
    );
    assert_eq!(ov("op.k=v").to_string(), "op.k=v");
    for (bad, why) in [
        ("novalue", "it has no `=`"),
        ("=v", "the key before `=` is empty"),
        (".k=v", "the operation before `.` is empty"),
        ("op.=v", "the key after the last `.` is empty"),
    ] {
        let e = Override::parse(bad).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("invalid configuration override `{bad}`: {why}; expected key=value or operation.key=value")
        );
    }
}

#[test]
fn required_parameter_without_value() {
    let g = configured();
    let e = g
        .configuration_for("module-temperature/map", &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "graphs/g.yaml: operation `module-temperature/map` requires parameter `topic`, which has no default and was given no value; pass -c 'module-temperature/map.topic=VALUE'"
    );
}

#[test]
fn defaults_then_global_then_operation_overrides() {
    let g = configured();
    let config = g
        .configuration_for(
            "module-temperature/map",
            &[
                ov("module-temperature/map.temperature_lower_bound=-10"),
                ov("temperature_lower_bound=0"),
                ov("topic=t"),
            ],
        )
        .unwrap();
    assert_eq!(
        config,
        vec![
            ("temperature_lower_bound".to_string(), "-10".to_string()),
            ("temperature_upper_bound".to_string(), "3422".to_string()),
            ("topic".to_string(), "t".to_string()),
        ]
    );
    // A global key declared by some operation does not reach the others.
    assert_eq!(g.configuration_for("source", &[ov("topic=t")]).unwrap(), vec![]);
    // An undeclared global key reaches every module-backed operation, not plumbing.
    let c = g
        .configuration_for("module-temperature/map", &[ov("topic=t"), ov("extra=1")])
        .unwrap();
    assert!(c.contains(&("extra".to_string(), "1".to_string())), "{c:?}");
    assert_eq!(g.configuration_for("sink", &[ov("extra=1")]).unwrap(), vec![]);
    // An operation override may add an undeclared key.
    let c = g.configuration_for("sink", &[ov("sink.topic=out")]).unwrap();
    assert_eq!(c, vec![("topic".to_string(), "out".to_string())]);
}

#[test]
fn override_naming_an_unknown_operation() {
    let g = configured();
    let e = g
        .configuration_for("source", &[ov("module-temp/map.x=1")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "graphs/g.yaml: configuration override `module-temp/map.x=1` names operation `module-temp/map`, which the graph does not define (operations: `source`, `module-temperature/map`, `sink`)"
    );
}

// ---------------------------------------------------------------- resolution

#[test]
fn module_names_from_references() {
    use wasmflow_compose::resolve::module_name;
    assert_eq!(
        module_name("azure-samples/explore-iot-operations/temperature:1.0.0"),
        "temperature"
    );
    assert_eq!(module_name("localhost:5000/org/window@sha256:abcd"), "window");
    assert_eq!(module_name("ghcr.io/org/repo/humidity"), "humidity");
    assert_eq!(module_name("../modules/collection.wasm"), "collection");
    assert_eq!(module_name("format"), "format");
}

#[test]
fn resolution_order_and_paths() {
    let root = tempfile::tempdir().unwrap();
    let (graph_dir, explicit, env, default) = (
        root.path().join("g"),
        root.path().join("x"),
        root.path().join("e"),
        root.path().join("d"),
    );
    for d in [&graph_dir, &explicit, &env, &default] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(graph_dir.join("local.wasm"), b"").unwrap();
    std::fs::write(default.join("temperature.wasm"), b"").unwrap();
    std::fs::write(env.join("temperature.wasm"), b"").unwrap();
    std::fs::write(default.join("wasmflow-source.wasm"), b"").unwrap();
    std::fs::write(explicit.join("window.wasm"), b"").unwrap();

    let r = ModuleResolver::with_env(&graph_dir, Some(&explicit), Some(&env), Some(&default));
    assert_eq!(r.dirs, vec![explicit.clone(), env.clone(), default.clone()]);
    assert_eq!(r.resolve("local.wasm").unwrap(), graph_dir.join("local.wasm"));
    let abs = graph_dir.join("local.wasm");
    assert_eq!(r.resolve(abs.to_str().unwrap()).unwrap(), abs);
    assert_eq!(
        r.resolve(T).unwrap(),
        env.join("temperature.wasm"),
        "env before default"
    );
    assert_eq!(r.resolve("reg.io/a/window:2").unwrap(), explicit.join("window.wasm"));
    assert_eq!(
        r.resolve_plumbing(OperationKind::Source).unwrap().unwrap(),
        default.join("wasmflow-source.wasm")
    );
    assert!(r.resolve_plumbing(OperationKind::Map).is_none());

    let nf = r
        .resolve("azure-samples/explore-iot-operations/snapshot:1.0.0")
        .unwrap_err();
    assert_eq!(nf.module, "snapshot");
    assert_eq!(nf.searched, vec![explicit.clone(), env.clone(), default.clone()]);
    let nf = r.resolve("missing.wasm").unwrap_err();
    assert_eq!(nf.direct, Some(graph_dir.join("missing.wasm")));

    // References the caller already fetched (the host's registry pulls) win over every search.
    let fetched = graph_dir.join("pulled-blob");
    let r = r.with_resolved([(T.to_string(), fetched.clone())].into());
    assert_eq!(r.resolve(T).unwrap(), fetched);
    assert_eq!(r.resolve("reg.io/a/window:2").unwrap(), explicit.join("window.wasm"));

    let r = ModuleResolver::with_env(&graph_dir, None, None, Some(&default));
    assert_eq!(r.resolve(T).unwrap(), default.join("temperature.wasm"));
}

#[test]
fn missing_module_is_not_found_locally() {
    let dir = tempfile::tempdir().unwrap();
    common::write_plumbing(dir.path());
    let g = parse(&graph_yaml(&simple_ops(), &simple_conns(), "")).unwrap();
    let opts = wasmflow_compose::ComposeOptions {
        modules_dir: Some(dir.path().to_path_buf()),
        default_modules_dir: None,
        overrides: vec![],
        resolved: Default::default(),
        ..Default::default()
    };
    let e = wasmflow_compose::plan::plan(&g, &opts).unwrap_err().to_string();
    let expected_start = format!(
        "graphs/g.yaml: module `temperature` (reference `{T}`, operation `module-temperature/map`) is not found locally: looked for temperature.wasm in {}",
        dir.path().display()
    );
    assert!(e.starts_with(&expected_start), "{e}");
}

#[test]
fn missing_plumbing_says_to_build_components() {
    let dir = tempfile::tempdir().unwrap();
    let r = ModuleResolver::with_env(Path::new("graphs"), Some(dir.path()), None, None);
    let g = parse(&graph_yaml(&simple_ops(), &simple_conns(), "")).unwrap();
    let e = wasmflow_compose::plan::plan_with(&g, &r, &[]).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "graphs/g.yaml: plumbing component `wasmflow-source.wasm` for source operation `source` is not found:"
        ),
        "{e}"
    );
    assert!(e.ends_with("run scripts/build-components.sh to build it"), "{e}");
    let r = ModuleResolver::with_env(Path::new("graphs"), None, None, None);
    let e = wasmflow_compose::plan::plan_with(&g, &r, &[]).unwrap_err().to_string();
    assert!(e.contains("no modules directory is configured"), "{e}");
}

#[test]
fn required_parameter_checked_at_compose_time() {
    let g = configured();
    let dir = tempfile::tempdir().unwrap();
    let r = ModuleResolver::with_env(Path::new("graphs"), Some(dir.path()), None, None);
    // The configuration check runs before any module is looked for.
    let e = wasmflow_compose::plan::plan_with(&g, &r, &[]).unwrap_err();
    assert!(matches!(e, ComposeError::RequiredParameter { .. }), "{e}");
}
