//! Composition tests on fixture components synthesized from WIT (dummy implementations): the
//! plan, the encoded shape, the module export checks. They need no built modules.

use std::path::Path;

use wasmflow_compose::{
    compose, inspect_component, inspect_graph, load_graph, parse_graph, plan::plan, ComposeOptions, Manifest,
    OperationKind, ValidatedGraph,
};

use crate::common::{self, fixture_modules, graph_yaml, operator_fixture, shape};

fn opts(dir: &Path) -> ComposeOptions {
    ComposeOptions {
        modules_dir: Some(dir.to_path_buf()),
        default_modules_dir: None,
        overrides: vec![],
        resolved: Default::default(),
        ..Default::default()
    }
}

fn sample_fixtures() -> tempfile::TempDir {
    fixture_modules(&[
        (
            "temperature",
            operator_fixture(&["map", "branch", "filter", "accumulate"]),
        ),
        ("humidity", operator_fixture(&["accumulate"])),
        ("window", operator_fixture(&["delay"])),
        ("collection", operator_fixture(&["accumulate"])),
        ("enrichment", operator_fixture(&["map"])),
    ])
}

fn temperature_humidity() -> ValidatedGraph {
    load_graph(&common::repo_root().join("graphs/temperature-humidity.yaml")).unwrap()
}

#[test]
fn plan_has_one_instance_per_operation_and_one_package_per_file() {
    let dir = sample_fixtures();
    let g = temperature_humidity();
    let p = plan(&g, &opts(dir.path())).unwrap();
    assert_eq!(p.instances.len(), g.operations.len());
    assert_eq!(
        p.packages.len(),
        8,
        "5 modules + source, sink, concatenate: {:#?}",
        p.packages
    );
    let temp = p
        .packages
        .iter()
        .position(|pk| pk.name == "wasmflow-module:temperature")
        .unwrap();
    assert_eq!(p.instance_count(temp), 4);
    assert_eq!(
        p.packages[temp].reference.as_deref(),
        Some("azure-samples/explore-iot-operations/temperature:1.0.0")
    );

    let branch = &p.instances[2];
    assert_eq!(branch.name, "module-temperature/branch");
    assert_eq!(branch.export, "op2-module-temperature-branch");
    assert_eq!(branch.interface, "wasm-graph:processor/branch@1.1.0");
    assert_eq!(branch.import_prefix.as_deref(), Some("op2"));
    let per_op: Vec<(&str, &str)> = branch
        .per_operation_imports
        .iter()
        .map(|i| (i.name.as_str(), i.interface.as_str()))
        .collect();
    assert_eq!(
        per_op,
        vec![
            ("op2-logger", "wasm-graph:processor/logger@1.1.0"),
            ("op2-metrics", "wasm-graph:processor/metrics@1.1.0"),
            ("op2-state-store", "wasm-graph:processor/state-store@1.1.0"),
        ]
    );
    let concat = p
        .instances
        .iter()
        .find(|i| i.kind == OperationKind::Concatenate)
        .unwrap();
    assert_eq!(concat.interface, "wasmflow:graph/concatenate@0.1.0");
    assert_eq!(concat.import_prefix, None);
    assert!(concat.per_operation_imports.is_empty());
    assert!(
        p.shared_imports
            .contains(&"wasm-graph:processor/types@1.1.0".to_string()),
        "{:?}",
        p.shared_imports
    );
    assert!(
        !p.shared_imports.iter().any(|i| i.contains("/logger@")),
        "{:?}",
        p.shared_imports
    );

    let filter = p.manifest.operation("module-temperature/filter").unwrap();
    assert_eq!(filter.parameters.len(), 2);
    assert_eq!(filter.parameters[1].default.as_deref(), Some("3422"));
}

#[test]
fn composed_fixture_graph_has_the_host_contract() {
    let dir = sample_fixtures();
    let g = temperature_humidity();
    let composed = compose(&g, &opts(dir.path())).unwrap();
    common::assert_contract(&g, &composed, dir.path());
    common::wasm_tools_validate(&composed.bytes);
}

#[test]
fn compose_time_overrides_are_baked_into_the_manifest() {
    let dir = sample_fixtures();
    let g = temperature_humidity();
    let mut o = opts(dir.path());
    o.overrides = vec!["module-temperature/filter.temperature_upper_bound=100".parse().unwrap()];
    let composed = compose(&g, &o).unwrap();
    let m = Manifest::from_component(&composed.bytes).unwrap().unwrap();
    let config = m.configuration_for("module-temperature/filter", &[]).unwrap();
    assert_eq!(
        config,
        vec![
            ("temperature_lower_bound".to_string(), "-40".to_string()),
            ("temperature_upper_bound".to_string(), "100".to_string()),
        ]
    );
    let config = m
        .configuration_for(
            "module-temperature/filter",
            &["temperature_upper_bound=50".parse().unwrap()],
        )
        .unwrap();
    assert_eq!(config[1].1, "50");
}

#[test]
fn required_parameter_is_checked_again_at_run_time() {
    let dir = sample_fixtures();
    let extra = "moduleConfigurations:\n  - name: m\n    parameters:\n      topic:\n        name: topic\n        required: true\n";
    let text = map_graph_yaml("m", "enrichment", extra);
    let g = parse_graph(Path::new("g.yaml"), &text).unwrap();
    let e = compose(&g, &opts(dir.path())).unwrap_err().to_string();
    assert!(e.starts_with("g.yaml: operation `m` requires parameter `topic`"), "{e}");
    let mut o = opts(dir.path());
    // Supplied at compose time: the value is baked in and run time needs nothing more.
    o.overrides = vec!["m.topic=a".parse().unwrap()];
    let m = compose(&g, &o).unwrap().manifest;
    assert_eq!(
        m.configuration_for("m", &[]).unwrap(),
        vec![("topic".to_string(), "a".to_string())]
    );
    // A manifest whose required parameter has no value fails at run time, naming the graph.
    let mut m2 = m.clone();
    m2.operations[1].parameters[0].default = None;
    let e = m2.configuration_for("m", &[]).unwrap_err().to_string();
    assert_eq!(
        e,
        "graph `test graph`: operation `m` requires parameter `topic`, which has no default and was given no value; pass -c 'm.topic=VALUE'"
    );
    assert_eq!(
        m2.configuration_for("m", &["m.topic=b".parse().unwrap()]).unwrap()[0].1,
        "b"
    );
}

/// `source -> map -> sink`, the map named `name` and using `module`; `extra` as in [`graph_yaml`].
fn map_graph_yaml(name: &str, module: &str, extra: &str) -> String {
    graph_yaml(
        &[
            ("source", "source", None),
            ("map", name, Some(module)),
            ("sink", "sink", None),
        ],
        &[("source", None, name), (name, None, "sink")],
        extra,
    )
}

fn single_map_graph(module: &str) -> ValidatedGraph {
    let text = map_graph_yaml("module-x/map", module, "");
    parse_graph(Path::new("g.yaml"), &text).unwrap()
}

#[test]
fn module_without_the_needed_export() {
    let dir = fixture_modules(&[("humidity", operator_fixture(&["accumulate"]))]);
    let e = plan(&single_map_graph("org/humidity:1.0.0"), &opts(dir.path()))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "g.yaml: operation `module-x/map` is a map, but module `org/humidity:1.0.0` ({}) does not export `wasm-graph:processor/map@1.1.0`; it exports `wasm-graph:processor/accumulate@1.1.0`",
            dir.path().join("humidity.wasm").display()
        )
    );
}

#[test]
fn module_built_against_an_unsupported_wit_version() {
    let dir = fixture_modules(&[
        ("old", common::tinykube_fixture()),
        ("next", common::future_major_fixture()),
    ]);
    let e = plan(&single_map_graph("org/old:1.0.0"), &opts(dir.path()))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "g.yaml: module `org/old:1.0.0` ({}) used by map operation `module-x/map` is built against `tinykube-graph:processor@1.0.0`, which wasmflow does not support; rebuild it against wasm-graph:processor@1.1.0 so it exports `wasm-graph:processor/map@1.1.0`",
            dir.path().join("old.wasm").display()
        )
    );
    let e = plan(&single_map_graph("next"), &opts(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("is built against `wasm-graph:processor@2.0.0`, which wasmflow does not support"),
        "{e}"
    );
}

#[test]
fn module_built_against_an_older_minor_of_the_operator_wit() {
    let dir = fixture_modules(&[("old", common::old_minor_fixture())]);
    let e = plan(&single_map_graph("org/old:1.0.0"), &opts(dir.path()))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "g.yaml: module `org/old:1.0.0` ({}) used by map operation `module-x/map` is built against `wasm-graph:processor@1.0.0`, which wasmflow does not support; rebuild it against wasm-graph:processor@1.1.0 so it exports `wasm-graph:processor/map@1.1.0`",
            dir.path().join("old.wasm").display()
        )
    );
}

#[test]
fn an_operator_importing_what_the_host_does_not_provide_is_refused() {
    let dir = fixture_modules(&[
        (
            "rpc",
            common::extra_import_fixture("wasm-graph:processor/command-invoker@1.1.0"),
        ),
        ("own", common::extra_import_fixture("extra")),
    ]);
    let e = plan(&single_map_graph("org/rpc:1.0.0"), &opts(dir.path()))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "g.yaml: module `org/rpc:1.0.0` ({}) used by map operation `module-x/map` imports `wasm-graph:processor/rpc-types@1.1.0`, `wasm-graph:processor/command-invoker@1.1.0`, which wasmflow does not provide; operators may import wasm-graph:processor@1.1.0's types, hybrid-logical-clock, logger, metrics, state-store, state-store-types, schema-types, schema-registry",
            dir.path().join("rpc.wasm").display()
        )
    );
    // An import of another package is not the operator ABI's business: it composes (and the
    // host reports it at link time if nothing provides it).
    plan(&single_map_graph("org/own:1.0.0"), &opts(dir.path())).expect("an import of its own package composes");
}

#[test]
fn a_file_that_is_not_a_component() {
    let dir = fixture_modules(&[]);
    std::fs::write(dir.path().join("junk.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let e = plan(&single_map_graph("junk.wasm"), &opts(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("g.yaml: module `junk.wasm` (")
            && e.contains("used by operation `module-x/map` is not a valid WebAssembly component"),
        "{e}"
    );
}

#[test]
fn a_module_given_by_path_relative_to_the_graph() {
    let dir = fixture_modules(&[]);
    let sub = dir.path().join("graphs");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("mine.wasm"), operator_fixture(&["map"])).unwrap();
    let text = map_graph_yaml("m", "mine.wasm", "");
    let g = parse_graph(&sub.join("g.yaml"), &text).unwrap();
    let composed = compose(&g, &opts(dir.path())).unwrap();
    assert_eq!(composed.manifest.operations[1].module.as_deref(), Some("mine.wasm"));
    common::assert_contract(&g, &composed, dir.path());
}

#[test]
fn wasi_nn_imports_are_recorded_and_warned_about() {
    let dir = fixture_modules(&[("nn", common::wasi_nn_fixture())]);
    let g = single_map_graph("org/nn:1");
    let composed = compose(&g, &opts(dir.path())).unwrap();
    assert!(composed.manifest.operations[1].imports_wasi_nn);
    assert!(!composed.manifest.operations[0].imports_wasi_nn);
    assert!(
        composed.warnings.iter().any(|w| w.contains("wasi-nn")),
        "{:?}",
        composed.warnings
    );
    let s = shape(&composed.bytes);
    assert!(
        s.imports.iter().any(|i| i == "wasi:nn/graph@0.2.0-rc-2024-10-28"),
        "{:?}",
        s.imports
    );
}

#[test]
fn inspect_shows_world_operations_and_parameters() {
    let dir = sample_fixtures();
    let g = temperature_humidity();
    let composed = compose(&g, &opts(dir.path())).unwrap();
    let text = inspect_component(&composed.bytes).unwrap();
    assert!(
        text.contains("  import op2-logger: wasm-graph:processor/logger@1.1.0 (instance, implements)"),
        "{text}"
    );
    assert!(
        text.contains("  import wasm-graph:processor/types@1.1.0 (instance)"),
        "{text}"
    );
    assert!(
        text.contains("  export op2-module-temperature-branch: wasm-graph:processor/branch@1.1.0 (instance, operation `module-temperature/branch`)"),
        "{text}"
    );
    assert!(
        text.contains("graph `Temperature and humidity` version 1.0.0"),
        "{text}"
    );
    assert!(text.contains("[4] module-temperature/filter: filter, module azure-samples/explore-iot-operations/temperature:1.0.0, export op4-module-temperature-filter, imports op4-logger, op4-metrics, op4-state-store"), "{text}");
    assert!(
        text.contains("parameter temperature_upper_bound: optional, default \"3422\" - Maximum valid temperature"),
        "{text}"
    );
    assert!(
        text.contains("module-temperature/branch [True] -> module-temperature/map"),
        "{text}"
    );

    let text = inspect_graph(&g);
    assert!(
        text.contains(
            "[7] concatenate1: concatenate, wasmflow plumbing wasmflow-concatenate.wasm, export op7-concatenate1"
        ),
        "{text}"
    );

    let e = inspect_component(b"not wasm").unwrap_err().to_string();
    assert!(e.starts_with("not a WebAssembly component"), "{e}");
    assert_eq!(Manifest::from_component(&operator_fixture(&["map"])).unwrap(), None);
}

#[test]
fn schemas_reach_the_manifest() {
    let dir = sample_fixtures();
    let extra = "schemas:\n  - name: temperature-delta\n    format: Delta/1.0\n    schema: '{\"type\":\"object\"}'\n";
    let text = map_graph_yaml("m", "enrichment", extra).replace(
        "      name: \"m\"\n    to:",
        "      name: \"m\"\n      schemaName: temperature-delta\n    to:",
    );
    let g = parse_graph(Path::new("g.yaml"), &text).unwrap();
    let m = compose(&g, &opts(dir.path())).unwrap().manifest;
    assert_eq!(
        m.schemas,
        vec![wasmflow_compose::ManifestSchema {
            name: "temperature-delta".into(),
            format: "Delta/1.0".into(),
            content: "{\"type\":\"object\"}".into(),
        }]
    );
}
