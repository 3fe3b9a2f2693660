//! Every kind in both languages: the files are complete, no placeholder is left, the graph is
//! valid for wasmflow's compiler and the golden test loads with wasmflow's test runner. (Building
//! and running the projects is the integration test `tests/all/scaffold.rs`.)

use std::path::Path;

use wasmflow_scaffold::{create, Kind, Language, OperatorName, Request, ScaffoldError, Toolkit};

fn request(name: &str, kind: Kind, language: Language) -> Request {
    Request {
        name: OperatorName::parse(name).unwrap(),
        kind,
        language,
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn every_kind_in_both_languages_is_complete_and_valid() {
    let parent = tempfile::tempdir().unwrap();
    let toolkit = Toolkit::this_checkout();
    for language in [Language::Rust, Language::Python] {
        for kind in Kind::ALL {
            let name = format!("my-{kind}-{}", if language == Language::Rust { "rs" } else { "py" });
            let project = create(parent.path(), &request(&name, kind, language), &toolkit).unwrap();
            assert_eq!(project.dir, parent.path().join(&name));
            for file in &project.files {
                let text = read(&project.dir, file.to_str().unwrap());
                assert!(
                    !text.contains("{{"),
                    "{name}/{}: a placeholder is left:\n{text}",
                    file.display()
                );
            }
            let graph = wasmflow_compose::load_graph(&project.dir.join("graph.yaml"))
                .unwrap_or_else(|e| panic!("{name}/graph.yaml: {e}"));
            assert!(
                graph
                    .operations
                    .iter()
                    .any(|o| o.module.as_deref() == Some(&*format!("{name}.wasm"))),
                "{name}: the graph names {name}.wasm"
            );
            let test = wasmflow_golden::GoldenTest::load(&project.dir.join(format!("tests/{name}/{name}.test.yaml")))
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(
                test.graph.canonicalize().unwrap(),
                project.dir.join("graph.yaml").canonicalize().unwrap()
            );
            assert!(!test.inputs().unwrap().is_empty(), "{name}: no inputs");
            assert!(!test.expected().unwrap().is_empty(), "{name}: no expected output");
            let identifier = name.replace('-', "_");
            match language {
                Language::Rust => {
                    let lib = read(&project.dir, "src/lib.rs");
                    assert!(
                        lib.contains(&format!("#[{kind}_operator(init = \"{identifier}_init\")]")),
                        "{lib}"
                    );
                    let config = read(&project.dir, ".cargo/config.toml");
                    assert!(config.contains(&format!("wasm_graph_sdk = {{ path = \"{}\" }}", toolkit.sdk.display())));
                    assert!(read(&project.dir, "Cargo.toml").contains("registry = \"aio-wg\""));
                    assert!(read(&project.dir, "build.sh").contains(&toolkit.toolchain.display().to_string()));
                    assert!(
                        project.dir.join(".cargo/aio-wg-offline").is_dir(),
                        "the replaced registry exists"
                    );
                }
                Language::Python => {
                    let source = read(&project.dir, &format!("{identifier}.py"));
                    let world_module = format!("{kind}_impl");
                    assert!(
                        source.contains(&format!("from {world_module} import exports, imports")),
                        "{source}"
                    );
                    let build = read(&project.dir, "build.sh");
                    assert!(build.contains(&format!("-w {kind}-impl")), "{build}");
                    assert!(
                        read(&project.dir, &format!("test_{identifier}.py")).contains(&format!("import {identifier}"))
                    );
                }
            }
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(project.dir.join("build.sh"))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o111, 0o111, "{name}/build.sh is executable");
            }
        }
    }
}

#[test]
fn the_branch_graph_discards_arm_false() {
    let parent = tempfile::tempdir().unwrap();
    let project = create(
        parent.path(),
        &request("router", Kind::Branch, Language::Rust),
        &Toolkit::this_checkout(),
    )
    .unwrap();
    let graph = read(&project.dir, "graph.yaml");
    assert!(graph.contains("arm: \"True\" }\n    to: { name: \"sink\" }"), "{graph}");
    assert!(
        graph.contains("arm: \"False\" }\n    to: { name: \"discarded\" }"),
        "{graph}"
    );
}

#[test]
fn an_existing_folder_is_never_overwritten() {
    let parent = tempfile::tempdir().unwrap();
    std::fs::create_dir(parent.path().join("taken")).unwrap();
    std::fs::write(parent.path().join("taken/keep.txt"), "mine").unwrap();
    let e = create(
        parent.path(),
        &request("taken", Kind::Map, Language::Python),
        &Toolkit::this_checkout(),
    )
    .unwrap_err();
    assert!(matches!(e, ScaffoldError::Exists(_)), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "{} already exists: wasmflow new never overwrites, so choose another name or --dir",
            parent.path().join("taken").display()
        )
    );
    assert_eq!(read(parent.path(), "taken/keep.txt"), "mine");
}

#[test]
fn bad_names_and_kinds_are_one_sentence() {
    for (name, reason) in [
        ("", "it must have 1 to 64 characters"),
        ("9lives", "it must start with a lowercase letter"),
        ("Map", "it must start with a lowercase letter"),
        ("my op", "only lowercase letters, digits, `-` and `_` may follow"),
        ("../escape", "it must start with a lowercase letter"),
        ("a/b", "only lowercase letters, digits, `-` and `_` may follow"),
    ] {
        let e = OperatorName::parse(name).unwrap_err();
        assert_eq!(e.to_string(), format!("operator name `{name}` is not usable: {reason}"));
    }
    assert_eq!(OperatorName::parse("my-op_2").unwrap().identifier(), "my_op_2");
    assert_eq!(
        "window".parse::<Kind>().unwrap_err().to_string(),
        "unknown operator kind `window`: expected one of map, filter, branch, accumulate, delay"
    );
    assert_eq!("delay".parse::<Kind>().unwrap(), Kind::Delay);
}

#[test]
fn a_checkout_without_the_sdk_is_refused_before_anything_is_written() {
    let parent = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let e = create(
        parent.path(),
        &request("lonely", Kind::Map, Language::Rust),
        &Toolkit::at(empty.path()),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the SDK (components/sdk/Cargo.toml) is missing at "),
        "{e}"
    );
    assert!(!parent.path().join("lonely").exists());
}
