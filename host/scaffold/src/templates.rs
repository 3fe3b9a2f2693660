//! The files of a project: templates (`templates/`, with `{{placeholder}}`s) and the per-kind
//! golden test data, rendered for one [`Request`].

use std::path::PathBuf;

use crate::{Kind, Language, Request, Toolkit};

/// One file to write.
pub(crate) struct File {
    /// Relative to the project folder.
    pub path: PathBuf,
    pub contents: String,
    pub executable: bool,
}

/// The registry the platform's operators name for `wasm_graph_sdk` (their `.cargo/config.toml`);
/// the generated config replaces it, so it is never contacted.
const AIO_WG_INDEX: &str =
    "sparse+https://pkgs.dev.azure.com/azure-iot-sdks/iot-operations/_packaging/preview/Cargo/index/";

/// The golden test of a kind: input files (name, contents; `<file>.meta.json` beside a message
/// gives its `__ts`), the expected outputs in the platform's format, the fields compared, and
/// the parameter the graph declares.
struct Golden {
    inputs: &'static [(&'static str, &'static str)],
    expected: &'static str,
    select: &'static str,
    parameter: Option<(&'static str, &'static str, &'static str)>,
}

/// The event time every accumulate and delay input carries (2026-01-01T00:00:00Z), so the
/// accumulate's items share one batch and the delay's output time is known.
const TS_META: &str = "{\"user-properties\": {\"__ts\": \"001767225600000:00000:test\"}}\n";

fn golden(kind: Kind) -> Golden {
    match kind {
        Kind::Map => Golden {
            inputs: &[("reading.json", "{\"value\": 21}\n")],
            expected: "{\n  \"payload\": \"{\\\"value\\\":42.0}\"\n}\n",
            select: "[\"payload\"]",
            parameter: Some(("factor", "What `value` is multiplied by", "2")),
        },
        Kind::Filter | Kind::Branch => Golden {
            inputs: &[("1-warm.json", "{\"value\": 5}\n"), ("2-cold.json", "{\"value\": -3}\n")],
            expected: "[\n  { \"payload\": \"{\\\"value\\\": 5}\" }\n]\n",
            select: "[\"payload\"]",
            parameter: Some((
                "threshold",
                if kind == Kind::Filter {
                    "Items whose `value` is above it pass"
                } else {
                    "Items whose `value` is above it take arm True"
                },
                "0",
            )),
        },
        Kind::Accumulate => Golden {
            inputs: &[
                ("1.json", "{\"value\": 1}\n"),
                ("1.json.meta.json", TS_META),
                ("2.json", "{\"value\": 2}\n"),
                ("2.json.meta.json", TS_META),
                ("3.json", "{\"value\": 3}\n"),
                ("3.json.meta.json", TS_META),
            ],
            expected: "{\n  \"payload\": \"{\\\"count\\\":3,\\\"sum\\\":6.0}\"\n}\n",
            select: "[\"payload\"]",
            parameter: None,
        },
        Kind::Delay => Golden {
            inputs: &[("reading.json", "{\"value\": 7}\n"), ("reading.json.meta.json", TS_META)],
            expected: "{\n  \"payload\": \"{\\\"value\\\": 7}\",\n  \"properties\": {\n    \"user-properties\": { \"__ts\": \"001767225601000:00000:test\" }\n  }\n}\n",
            select: "[\"payload\", \"properties.user-properties.__ts\"]",
            parameter: Some(("delay_ms", "How many milliseconds later items move", "1000")),
        },
    }
}

/// Replaces every `{{key}}` of `template`.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    debug_assert!(!out.contains("{{"), "a placeholder is left in:\n{out}");
    out
}

fn rust_source(kind: Kind) -> &'static str {
    match kind {
        Kind::Map => include_str!("../templates/rust/map.rs.in"),
        Kind::Filter => include_str!("../templates/rust/filter.rs.in"),
        Kind::Branch => include_str!("../templates/rust/branch.rs.in"),
        Kind::Accumulate => include_str!("../templates/rust/accumulate.rs.in"),
        Kind::Delay => include_str!("../templates/rust/delay.rs.in"),
    }
}

fn python_source(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Map => (
            include_str!("../templates/python/map.py.in"),
            include_str!("../templates/python/test_map.py.in"),
        ),
        Kind::Filter => (
            include_str!("../templates/python/filter.py.in"),
            include_str!("../templates/python/test_filter.py.in"),
        ),
        Kind::Branch => (
            include_str!("../templates/python/branch.py.in"),
            include_str!("../templates/python/test_branch.py.in"),
        ),
        Kind::Accumulate => (
            include_str!("../templates/python/accumulate.py.in"),
            include_str!("../templates/python/test_accumulate.py.in"),
        ),
        Kind::Delay => (
            include_str!("../templates/python/delay.py.in"),
            include_str!("../templates/python/test_delay.py.in"),
        ),
    }
}

/// `graph.yaml`: source → the operator → sink; a branch's arm `False` ends in a concatenate
/// with no outgoing connection (its items are discarded, which compose notes as a warning), so
/// that the sink receives arm `True` alone and the golden test sees the branch's decision.
fn graph(request: &Request, golden: &Golden) -> String {
    let name = request.name.as_str();
    let kind = request.kind.name();
    let operation = format!("module-{name}/{kind}");
    let mut yaml = format!(
        "# Generated by `wasmflow new`: source -> {operation} -> sink. `wasmflow test tests` runs it.\n\
         metadata:\n  name: \"{name}\"\n  description: \"The {kind} operator {name} between a source and a sink\"\n  \
         version: \"1.0.0\"\n  $schema: \"https://www.schemastore.org/aio-wasm-graph-config-1.0.0.json\"\n  vendor: \"{name}\"\n\n\
         moduleRequirements:\n  apiVersion: \"1.1.0\"\n  runtimeVersion: \"1.1.0\"\n\n"
    );
    if let Some((key, description, default)) = golden.parameter {
        yaml += &format!(
            "moduleConfigurations:\n  - name: {operation}\n    parameters:\n      {key}:\n        name: {key}\n        \
             description: \"{description}\"\n        default: \"{default}\"\n\n"
        );
    }
    yaml += &format!(
        "operations:\n  - operationType: \"source\"\n    name: \"source\"\n  - operationType: \"{kind}\"\n    \
         name: \"{operation}\"\n    module: \"{name}.wasm\"\n"
    );
    if request.kind == Kind::Branch {
        yaml += "  - operationType: \"concatenate\"\n    name: \"discarded\"\n";
    }
    yaml += "  - operationType: \"sink\"\n    name: \"sink\"\n\nconnections:\n";
    yaml += &format!("  - from: {{ name: \"source\" }}\n    to: {{ name: \"{operation}\" }}\n");
    if request.kind == Kind::Branch {
        yaml += &format!(
            "  - from: {{ name: \"{operation}\", arm: \"True\" }}\n    to: {{ name: \"sink\" }}\n  \
             - from: {{ name: \"{operation}\", arm: \"False\" }}\n    to: {{ name: \"discarded\" }}\n"
        );
    } else {
        yaml += &format!("  - from: {{ name: \"{operation}\" }}\n    to: {{ name: \"sink\" }}\n");
    }
    yaml
}

fn readme(request: &Request, toolkit: &Toolkit) -> String {
    let name = request.name.as_str();
    let kind = request.kind.name();
    let (what, build, unit) = match request.language {
        Language::Rust => (
            format!(
                "A {kind} operator in Rust, on the open SDK `wasm_graph_sdk` ({}). `Cargo.toml` names \
                 the SDK as the platform's operators do; `.cargo/config.toml` is the one step that finds \
                 it (it patches the `aio-wg` registry's `wasm_graph_sdk` to wasmflow's SDK and replaces \
                 that registry by an empty directory, so cargo never contacts it).",
                toolkit.sdk.display()
            ),
            format!(
                "./build.sh           # {name}.wasm, with wasmflow's wasm32-wasip2 recipe ({})",
                toolkit.toolchain.display()
            ),
            "cargo test           # the logic's unit tests, natively".to_string(),
        ),
        Language::Python => (
            format!(
                "A {kind} operator in Python, built with componentize-py against wasmflow's operator WIT \
                 ({}, world `{}`), in the style of the platform's Python operators.",
                toolkit.wit.display(),
                request.kind.world()
            ),
            format!("./build.sh           # {name}.wasm (componentize-py)"),
            "./build.sh bindings && python3 -m unittest   # the logic's unit tests, natively".to_string(),
        ),
    };
    format!(
        "# {name}\n\n{what}\n\n```sh\n{unit}\n{build}\nwasmflow test tests  # graph.yaml on tests/{name}/input, \
         compared with tests/{name}/expected\n```\n\n`graph.yaml` names the module by its file (`{name}.wasm`, \
         beside the graph); wasmflow finds the source and sink in its own modules directory. The golden test \
         is in the platform's format (`*.test.yaml`, `input/`, `expected/expected.json`), so the platform's \
         test runner reads it too. Generated by `wasmflow new {name} --kind {kind}{}`.\n",
        if request.language == Language::Python {
            " --python"
        } else {
            ""
        }
    )
}

/// Every file of the project.
pub(crate) fn render(request: &Request, toolkit: &Toolkit) -> Vec<File> {
    let name = request.name.as_str();
    let identifier = request.name.identifier();
    let world = request.kind.world();
    let world_module = world.replace('-', "_");
    let sdk = toolkit.sdk.display().to_string();
    let wit = toolkit.wit.display().to_string();
    let toolchain = toolkit.toolchain.display().to_string();
    let values: [(&str, &str); 9] = [
        ("name", name),
        ("crate", &identifier),
        ("module", &identifier),
        ("world", &world),
        ("world_module", &world_module),
        ("sdk", &sdk),
        ("wit", &wit),
        ("toolchain", &toolchain),
        ("registry", AIO_WG_INDEX),
    ];
    let file = |path: &str, template: &str| File {
        path: PathBuf::from(path),
        contents: fill(template, &values),
        executable: path.ends_with(".sh"),
    };
    let mut files = match request.language {
        Language::Rust => vec![
            file("Cargo.toml", include_str!("../templates/rust/Cargo.toml.in")),
            file(".cargo/config.toml", include_str!("../templates/rust/config.toml.in")),
            // The empty registry the config points at, kept by its README (cargo ignores files).
            file(
                ".cargo/aio-wg-offline/README.md",
                include_str!("../templates/rust/offline-readme.md.in"),
            ),
            file("src/lib.rs", rust_source(request.kind)),
            file("build.sh", include_str!("../templates/rust/build.sh.in")),
            file(".gitignore", include_str!("../templates/rust/gitignore.in")),
        ],
        Language::Python => {
            let (source, tests) = python_source(request.kind);
            let header = include_str!("../templates/python/test_header.py.in");
            vec![
                file(&format!("{identifier}.py"), source),
                file(&format!("test_{identifier}.py"), &format!("{header}{tests}")),
                file("build.sh", include_str!("../templates/python/build.sh.in")),
                file(".gitignore", include_str!("../templates/python/gitignore.in")),
            ]
        }
    };
    let golden = golden(request.kind);
    files.push(File {
        path: PathBuf::from("graph.yaml"),
        contents: graph(request, &golden),
        executable: false,
    });
    let test_dir = PathBuf::from("tests").join(name);
    // A Python module's first run compiles CPython to native code (a minute or more on a busy
    // machine; cached after), within the test's timeout.
    let timeout = match request.language {
        Language::Rust => "60000",
        Language::Python => "600000",
    };
    files.push(File {
        path: test_dir.join(format!("{name}.test.yaml")),
        contents: format!(
            "name: \"{name}: the generated {kind} test\"\ngraph: \"../../graph.yaml\"\ninput: \"./input\"\n\
             expected: \"./expected/expected.json\"\ntimeout: {timeout}\nselect: {}\n",
            golden.select,
            kind = request.kind.name()
        ),
        executable: false,
    });
    for (input, contents) in golden.inputs {
        files.push(File {
            path: test_dir.join("input").join(input),
            contents: contents.to_string(),
            executable: false,
        });
    }
    files.push(File {
        path: test_dir.join("expected/expected.json"),
        contents: golden.expected.to_string(),
        executable: false,
    });
    files.push(File {
        path: PathBuf::from("README.md"),
        contents: readme(request, toolkit),
        executable: false,
    });
    files
}
