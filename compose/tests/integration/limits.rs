//! The limits of the loader (`wasmflow_compose::Limits`) and of composition: each is checked
//! before the work it bounds, with an error naming the file, the limit and the value, and a graph
//! exactly at a limit still goes through. The large inputs are generated here, never shipped.

use std::path::Path;

use wasmflow_compose::limits::{
    DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_MAX_NESTING_DEPTH, DEFAULT_MAX_OPERATIONS, MAX_COMPONENT_INSTANCES,
};
use wasmflow_compose::{
    compose, encode::encode, load_graph, load_graph_with, parse_graph, parse_graph_with, plan::plan, ComposeError,
    ComposeOptions, Limits, ValidatedGraph,
};

use crate::common::{self, fixture_modules, graph_yaml, operator_fixture};

const T: &str = "azure-samples/explore-iot-operations/temperature:1.0.0";

/// A source, `maps` map operations of module `T` in a chain, and a sink: `maps + 2` operations.
fn chain(maps: usize) -> String {
    let names: Vec<String> = (0..maps).map(|i| format!("map-{i}")).collect();
    let mut ops = vec![("source", "source", None)];
    ops.extend(names.iter().map(|n| ("map", n.as_str(), Some(T))));
    ops.push(("sink", "sink", None));
    let mut conns = Vec::with_capacity(maps + 1);
    let mut prev = "source";
    for n in &names {
        conns.push((prev, None, n.as_str()));
        prev = n;
    }
    conns.push((prev, None, "sink"));
    graph_yaml(&ops, &conns, "")
}

fn parse(text: &str) -> Result<ValidatedGraph, ComposeError> {
    parse_graph(Path::new("graphs/g.yaml"), text)
}

fn parse_with(text: &str, limits: &Limits) -> Result<ValidatedGraph, ComposeError> {
    parse_graph_with(Path::new("graphs/g.yaml"), text, limits)
}

/// Every limit raised out of the way.
fn unlimited() -> Limits {
    Limits {
        max_document_bytes: usize::MAX,
        max_nesting_depth: usize::MAX,
        max_operations: usize::MAX,
    }
}

fn options(modules: &Path) -> ComposeOptions {
    ComposeOptions {
        modules_dir: Some(modules.to_path_buf()),
        ..ComposeOptions::default()
    }
}

// ---------------------------------------------------------------- operations

#[test]
fn a_graph_over_the_operation_limit_is_refused_right_after_parsing() {
    assert_eq!(Limits::default(), Limits::DEFAULT);
    assert_eq!(Limits::DEFAULT.max_operations, 64);
    let text = chain(DEFAULT_MAX_OPERATIONS - 1);
    let e = parse(&text).unwrap_err();
    assert!(
        matches!(
            e,
            ComposeError::TooManyOperations {
                count: 65,
                limit: 64,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "graphs/g.yaml: the graph has 65 operations, more than the limit of 64 (max_operations), which keeps a \
         composed graph within what the host instantiates; split the graph, or raise the limit (`--max-operations`) \
         for a host configured for larger graphs"
    );
    // Before the schema and the semantic checks: a broken operation does not change the error.
    let broken = text.replacen("operationType: \"map\"", "operationType: \"mapp\"", 1);
    assert!(matches!(parse(&broken), Err(ComposeError::TooManyOperations { .. })));
    // Raised, the same graph validates.
    let raised = Limits {
        max_operations: 65,
        ..Limits::default()
    };
    assert_eq!(parse_with(&text, &raised).unwrap().operations.len(), 65);
}

#[test]
fn a_chain_of_20000_operations_gets_the_count_error_not_a_stack_overflow() {
    let text = chain(19_998);
    // Some 3.4 MB: by default the size of the text is refused first.
    assert!(matches!(parse(&text), Err(ComposeError::DocumentTooLarge { .. })));
    let large = Limits {
        max_document_bytes: 8 << 20,
        ..Limits::default()
    };
    let e = parse_with(&text, &large).unwrap_err();
    assert!(
        matches!(
            e,
            ComposeError::TooManyOperations {
                count: 20_000,
                limit: 64,
                ..
            }
        ),
        "{e}"
    );
    // With every limit raised, validation walks the whole chain (cycle search included) without
    // recursing: a 1 MiB stack is plenty, where the recursive search overflowed 8 MiB.
    let operations = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || parse_with(&text, &unlimited()).map(|g| g.operations.len()))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(operations.unwrap(), 20_000);
}

#[test]
fn a_graph_at_the_operation_limit_composes_with_the_sample_modules() {
    let modules = common::require_modules(&["temperature", "wasmflow-source", "wasmflow-sink"]);
    let g = parse(&chain(DEFAULT_MAX_OPERATIONS - 2)).unwrap();
    assert_eq!(g.operations.len(), DEFAULT_MAX_OPERATIONS);
    let opts = ComposeOptions {
        default_modules_dir: Some(modules.clone()),
        ..ComposeOptions::default()
    };
    let p = plan(&g, &opts).unwrap();
    let composed = compose(&g, &opts).unwrap();
    common::assert_contract(&g, &composed, &modules);
    // The plan's count is the component's, and far from the ceiling.
    assert_eq!(common::instance_count(&composed.bytes), p.component_instances());
    assert!(
        p.component_instances() < MAX_COMPONENT_INSTANCES / 2,
        "{}",
        p.component_instances()
    );
}

#[test]
fn planning_refuses_a_graph_the_component_cannot_hold_before_encoding() {
    // Fixture operators import logger, metrics and state-store: 6 instances per operation.
    let dir = fixture_modules(&[("temperature", operator_fixture(&["map"]))]);
    let opts = options(dir.path());
    let one = plan(&parse(&chain(1)).unwrap(), &opts).unwrap();
    let shared = one.shared_imports.len();
    assert_eq!(
        one.component_instances(),
        shared + 3 + 3 + 6,
        "source, sink, one operator"
    );

    let fit = (MAX_COMPONENT_INSTANCES - shared - 3 - 3) / 6;
    assert!(
        fit + 2 >= DEFAULT_MAX_OPERATIONS,
        "the default operation limit is within the ceiling even for such operators: {fit} maps fit"
    );
    let at = plan(&parse_with(&chain(fit), &unlimited()).unwrap(), &opts).unwrap();
    assert!(at.component_instances() <= MAX_COMPONENT_INSTANCES);
    let bytes = encode(&at).unwrap();
    assert_eq!(common::instance_count(&bytes), at.component_instances());

    let over = parse_with(&chain(fit + 1), &unlimited()).unwrap();
    let e = plan(&over, &opts).unwrap_err();
    let count = shared + 3 + 3 + 6 * (fit + 1);
    match &e {
        ComposeError::TooManyInstances {
            count: c,
            imports,
            operations,
            limit: MAX_COMPONENT_INSTANCES,
            ..
        } => {
            assert_eq!((*c, *imports, *operations), (count, shared + 3 * (fit + 1), fit + 3));
        }
        _ => panic!("{e}"),
    }
    assert_eq!(
        e.to_string(),
        format!(
            "graphs/g.yaml: the composed component would hold {count} instances ({} imported interfaces, then \
             for each of the {} operations its instantiation, the alias of its interface and the export), more \
             than the 1000 a WebAssembly component may hold; split the graph",
            shared + 3 * (fit + 1),
            fit + 3
        )
    );
}

// ---------------------------------------------------------------- document size

#[test]
fn a_document_over_the_size_limit_is_refused_before_it_is_parsed() {
    assert_eq!(DEFAULT_MAX_DOCUMENT_BYTES, 1 << 20);
    let mut text = chain(1);
    // Padding in a comment, so the text is a valid graph of exactly the limit plus one byte.
    text.push('#');
    text.push_str(&"x".repeat(DEFAULT_MAX_DOCUMENT_BYTES - text.len()));
    text.push('\n');
    assert_eq!(text.len(), DEFAULT_MAX_DOCUMENT_BYTES + 1);
    let e = parse(&text).unwrap_err();
    assert!(
        matches!(
            e,
            ComposeError::DocumentTooLarge {
                size: Some(1_048_577),
                limit: 1_048_576,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "graphs/g.yaml: the graph definition is 1048577 bytes, more than the limit of 1048576 bytes \
         (max_document_bytes); graph definitions are a few kilobytes, so check that this is the right file, or \
         raise the limit if it is"
    );
    // The size comes first: a deep document that large gets the size error too.
    let deep = "[".repeat(DEFAULT_MAX_DOCUMENT_BYTES + 1);
    assert!(matches!(parse(&deep), Err(ComposeError::DocumentTooLarge { .. })));

    // From a file, the metadata says it before anything is read.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.yaml");
    std::fs::write(&file, &text).unwrap();
    let e = load_graph(&file).unwrap_err();
    assert!(
        matches!(
            e,
            ComposeError::DocumentTooLarge {
                size: Some(1_048_577),
                ..
            }
        ),
        "{e}"
    );
    assert!(e
        .to_string()
        .starts_with(&format!("{}: the graph definition is 1048577 bytes", file.display())));

    // One byte less, or a limit one byte higher, and it is a graph.
    let raised = Limits {
        max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES + 1,
        ..Limits::default()
    };
    assert_eq!(load_graph_with(&file, &raised).unwrap().operations.len(), 3);
    text.remove(text.len() - 2);
    parse(&text).unwrap();
}

#[cfg(unix)]
#[test]
fn an_endless_file_is_read_no_further_than_the_limit() {
    let e = load_graph(Path::new("/dev/zero")).unwrap_err();
    assert!(matches!(e, ComposeError::DocumentTooLarge { size: None, .. }), "{e}");
    assert!(
        e.to_string().starts_with(
            "/dev/zero: the graph definition goes on past the limit of 1048576 bytes (max_document_bytes)"
        ),
        "{e}"
    );
}

// ---------------------------------------------------------------- nesting

#[test]
fn a_hundred_thousand_levels_get_the_depth_error_before_the_yaml_parser_runs() {
    assert_eq!(DEFAULT_MAX_NESTING_DEPTH, 32);
    // `{a: ` nests the way that costs the YAML parser most (tens of seconds at this depth), `[`
    // and `- ` are the tersest flow and block nestings. The scan finds each in one pass.
    let cases = [
        ("{a: ".repeat(100_000), 129),
        (format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)), 33),
        (format!("{}x\n", "- ".repeat(100_000)), 65),
    ];
    for (text, col) in &cases {
        match parse(text) {
            Err(ComposeError::NestingTooDeep {
                line: 1,
                column,
                depth: 100_000,
                limit: 32,
                ..
            }) if column == *col => {}
            other => panic!("{:?}", other.map(|_| ()).map_err(|e| e.to_string())),
        }
    }
    assert_eq!(
        parse(&cases[0].0).unwrap_err().to_string(),
        "graphs/g.yaml:1:129: the document nests deeper than the limit of 32 levels here, 100000 levels at its \
         deepest (max_nesting_depth); graph definitions nest 5 levels"
    );
}

#[test]
fn nesting_at_the_limit_reaches_the_parser() {
    // A graph whose `schemas` nest: the document is one level, each bracket one more.
    let graph = |brackets: usize| {
        format!(
            "{}schemas: {}{}\n",
            chain(1),
            "[".repeat(brackets),
            "]".repeat(brackets)
        )
    };
    // 31 brackets: 32 levels, through the scan to the schema (which wants objects in `schemas`).
    let e = parse(&graph(31)).unwrap_err();
    assert!(matches!(e, ComposeError::Schema { .. }), "{e}");
    // 32 brackets: 33 levels, refused at the last bracket.
    let e = parse(&graph(32)).unwrap_err();
    assert!(
        matches!(
            e,
            ComposeError::NestingTooDeep {
                depth: 33,
                limit: 32,
                ..
            }
        ),
        "{e}"
    );
    // A raised limit lets it through to the schema.
    let raised = Limits {
        max_nesting_depth: 33,
        ..Limits::default()
    };
    assert!(matches!(
        parse_with(&graph(32), &raised),
        Err(ComposeError::Schema { .. })
    ));
    // Brackets in scalars and comments are no nesting.
    let quoted = format!("{}schemas: [] # {}\n", chain(1), "[".repeat(100));
    let quoted = quoted.replace("name: \"test graph\"", &format!("name: \"{}\"", "[".repeat(100)));
    parse(&quoted).unwrap();
}

// ---------------------------------------------------------------- aliases

#[test]
fn aliases_that_expand_past_the_text_are_refused_before_the_document_is_built() {
    // 2,000 aliases of a list of 1,000 strings: 2 million nodes from some 20 KB.
    let list = format!("[{}]", vec!["x"; 1000].join(","));
    let text = format!(
        "{}schemas:\n  - {{ name: big, format: &big {list} }}\n  - {{ name: many, format: [{}] }}\n",
        chain(1),
        vec!["*big"; 2000].join(",")
    );
    let e = parse(&text).unwrap_err();
    assert!(
        matches!(e, ComposeError::AliasExpansion { limit, .. } if limit == text.len() + 1),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "graphs/g.yaml: YAML aliases expand the document to more than {} nodes, one per byte of its text, \
             which a graph definition never needs; write the repeated parts out",
            text.len() + 1
        )
    );
    // Aliases that repeat a little (shared parameters) are fine.
    let shared = format!(
        "{}moduleConfigurations:\n  - name: map-0\n    parameters:\n      a: &p {{ name: a, default: \"1\" }}\n      b: *p\n",
        chain(1)
    );
    assert_eq!(parse(&shared).unwrap().operations[1].parameters.len(), 2);
}

#[test]
fn aliases_nesting_past_the_depth_limit_get_the_depth_error() {
    // Each anchor nests 10 brackets inside the one before: 41 levels through the aliases, 11 in
    // the text.
    let text = format!(
        "{}schemas: [{{ name: a, format: &a {}x{} }}, {{ name: b, format: &b {}*a{} }}, {{ name: c, format: &c {}*b{} }}, {{ name: d, format: {}*c{} }}]\n",
        chain(1),
        "[".repeat(10),
        "]".repeat(10),
        "[".repeat(10),
        "]".repeat(10),
        "[".repeat(10),
        "]".repeat(10),
        "[".repeat(10),
        "]".repeat(10)
    );
    let e = parse(&text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "graphs/g.yaml: YAML aliases nest the document deeper than the limit of 32 levels (max_nesting_depth); \
         graph definitions nest 5 levels"
    );
}

#[test]
fn the_published_and_shipped_graphs_are_far_from_every_limit() {
    let tight = Limits {
        max_document_bytes: 16 << 10,
        max_nesting_depth: 5,
        max_operations: 16,
    };
    for path in [
        common::azure_compat_dir().join("graph-simple.yaml"),
        common::azure_compat_dir().join("graph-complex.yaml"),
        common::azure_compat_dir().join("graph-opc-ua.yaml"),
        common::azure_compat_dir().join("graph.dataflow.yaml"),
        common::repo_root().join("graphs/temperature.yaml"),
        common::repo_root().join("graphs/temperature-humidity.yaml"),
    ] {
        load_graph_with(&path, &tight).unwrap_or_else(|e| panic!("{e}"));
    }
}
