//! Helpers shared by the integration tests: repository paths, small graph documents, and tiny
//! fixture components synthesized from WIT text (no binaries are shipped).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wit_component::{dummy_module, embed_component_metadata, ComponentEncoder, StringEncoding};
use wit_parser::{ManglingAndAbi, PackageId, Resolve};

/// The repository root (`compose/..`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The copies of the published Azure graphs carried by the repo.
pub fn azure_compat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/azure-compat")
}

/// The built sample modules.
pub fn modules_dir() -> PathBuf {
    repo_root().join("target/modules")
}

/// The built modules directory, after checking that it holds `names` (`temperature` for
/// `temperature.wasm`): a missing module fails the test with the command that builds it, since a
/// skipped composition test would hide a broken build.
pub fn require_modules(names: &[&str]) -> PathBuf {
    let dir = modules_dir();
    for name in names {
        let path = dir.join(format!("{name}.wasm"));
        assert!(
            path.is_file(),
            "{} is missing: run scripts/build-components.sh to build the sample and plumbing components",
            path.display()
        );
    }
    dir
}

/// A component built from WIT: `deps` are WIT directories pushed first (e.g. `wit/processor`),
/// `wit` is a package text, `world` the world to target.
pub fn component_from_wit(deps: &[&Path], wit: &str, world: &str) -> Vec<u8> {
    let mut resolve = Resolve::default();
    for dep in deps {
        resolve.push_dir(dep).expect("push WIT dir");
    }
    component_on(resolve, wit, world)
}

/// A component targeting `world` of the package text `wit`, pushed onto `resolve`.
fn component_on(mut resolve: Resolve, wit: &str, world: &str) -> Vec<u8> {
    let pkg = resolve.push_str("fixture.wit", wit).expect("parse fixture WIT");
    encode_world(&resolve, pkg, world)
}

/// A component with a dummy implementation of `world` of package `pkg`.
fn encode_world(resolve: &Resolve, pkg: PackageId, world: &str) -> Vec<u8> {
    let world = resolve.select_world(&[pkg], Some(world)).expect("select world");
    let mut module = dummy_module(resolve, world, ManglingAndAbi::Standard32);
    embed_component_metadata(&mut module, resolve, world, StringEncoding::UTF8).expect("embed metadata");
    ComponentEncoder::default()
        .module(&module)
        .expect("component encoder module")
        .validate(true)
        .encode()
        .expect("encode fixture component")
}

/// An operator fixture against the repo's `wasm-graph:processor@1.1.0` WIT that includes the
/// given `*-impl` worlds (e.g. `["map", "filter"]`).
pub fn operator_fixture(kinds: &[&str]) -> Vec<u8> {
    let includes: String = kinds
        .iter()
        .map(|k| format!("    include wasm-graph:processor/{k}-impl@1.1.0;\n"))
        .collect();
    let wit = format!("package fixture:op;\nworld op {{\n{includes}}}\n");
    component_from_wit(&[&repo_root().join("wit/processor")], &wit, "op")
}

/// A map operator fixture that also imports a (tiny) `wasi:nn/graph` interface.
pub fn wasi_nn_fixture() -> Vec<u8> {
    let mut resolve = Resolve::default();
    resolve
        .push_dir(repo_root().join("wit/processor"))
        .expect("push WIT dir");
    resolve
        .push_str(
            "nn.wit",
            "package wasi:nn@0.2.0-rc-2024-10-28;\ninterface graph { load-by-name: func(name: string) -> u32; }\n",
        )
        .expect("parse nn WIT");
    let wit = "package fixture:nn;\nworld op {\n    include wasm-graph:processor/map-impl@1.1.0;\n    import wasi:nn/graph@0.2.0-rc-2024-10-28;\n}\n";
    component_on(resolve, wit, "op")
}

/// A plumbing fixture: a component targeting `world` of the repo's `wit/wasmflow` package.
pub fn plumbing_fixture(world: &str) -> Vec<u8> {
    let wit_dir = repo_root().join("wit/wasmflow");
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve.push_dir(&wit_dir).expect("push wit/wasmflow");
    encode_world(&resolve, pkg, world)
}

/// A component exporting the public-preview `tinykube-graph:processor@1.0.0` map.
pub fn tinykube_fixture() -> Vec<u8> {
    let wit = "package tinykube-graph:processor@1.0.0;\n\
               interface %map { process: func(message: list<u8>) -> list<u8>; }\n\
               world map-impl { export %map; }\n";
    component_from_wit(&[], wit, "map-impl")
}

/// A component exporting a hypothetical `wasm-graph:processor@2.0.0` map.
pub fn future_major_fixture() -> Vec<u8> {
    let wit = "package wasm-graph:processor@2.0.0;\n\
               interface %map { process: func(message: list<u8>) -> result<list<u8>, string>; }\n\
               world map-impl { export %map; }\n";
    component_from_wit(&[], wit, "map-impl")
}

/// A component built against an older `wasm-graph:processor@1.0.0`: it exports
/// `wasm-graph:processor/map@1.0.0` (and imports that version's logger).
pub fn old_minor_fixture() -> Vec<u8> {
    let wit = "package wasm-graph:processor@1.0.0;\n\
               interface logger { log: func(message: string); }\n\
               interface %map { process: func(message: list<u8>) -> list<u8>; }\n\
               world map-impl { import logger; export %map; }\n";
    component_from_wit(&[], wit, "map-impl")
}

/// A map operator of `wasm-graph:processor@1.1.0` that also imports `import` (an interface of
/// the repo's WIT, e.g. `command-invoker`, or `extra`, which is defined here).
pub fn extra_import_fixture(import: &str) -> Vec<u8> {
    let wit = format!(
        "package fixture:extra;\ninterface extra {{ ping: func(); }}\nworld op {{\n    \
         include wasm-graph:processor/map-impl@1.1.0;\n    import {import};\n}}\n"
    );
    component_from_wit(&[&repo_root().join("wit/processor")], &wit, "op")
}

/// Writes fixture files into a fresh temporary modules directory: operator fixtures named as
/// given plus the three plumbing components.
pub fn fixture_modules(operators: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in operators {
        std::fs::write(dir.path().join(format!("{name}.wasm")), bytes).unwrap();
    }
    write_plumbing(dir.path());
    dir
}

/// Writes the three plumbing fixtures into `dir`.
pub fn write_plumbing(dir: &Path) {
    for (file, world) in [
        ("wasmflow-source.wasm", "source-node"),
        ("wasmflow-sink.wasm", "sink-node"),
        ("wasmflow-concatenate.wasm", "concatenate-node"),
    ] {
        std::fs::write(dir.join(file), plumbing_fixture(world)).unwrap();
    }
}

/// A graph document from a compact description. `ops` are `(operationType, name, module)`,
/// `conns` are `(from, arm, to)`; `extra` is appended verbatim (e.g. moduleConfigurations).
pub fn graph_yaml(ops: &[(&str, &str, Option<&str>)], conns: &[(&str, Option<&str>, &str)], extra: &str) -> String {
    let mut s = String::from(
        "metadata:\n  name: \"test graph\"\n  version: \"1.0.0\"\n  $schema: \"https://www.schemastore.org/aio-wasm-graph-config-1.0.0.json\"\n\
         moduleRequirements:\n  apiVersion: \"1.1.0\"\n  runtimeVersion: \"1.1.0\"\noperations:\n",
    );
    for (kind, name, module) in ops {
        s.push_str(&format!("  - operationType: \"{kind}\"\n    name: \"{name}\"\n"));
        if let Some(m) = module {
            s.push_str(&format!("    module: \"{m}\"\n"));
        }
    }
    s.push_str("connections:\n");
    for (from, arm, to) in conns {
        s.push_str(&format!("  - from:\n      name: \"{from}\"\n"));
        if let Some(arm) = arm {
            s.push_str(&format!("      arm: {arm}\n"));
        }
        s.push_str(&format!("    to:\n      name: \"{to}\"\n"));
    }
    s.push_str(extra);
    s
}

/// The top-level imports, exports and per-component instantiation counts of a component, plus
/// the bytes of each nested component (to map indexes to files).
pub struct Shape {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// component index → number of `instantiate` of it at top level.
    pub instantiations: BTreeMap<u32, usize>,
    /// component index → its bytes (defined components only, in index order).
    pub components: Vec<Vec<u8>>,
}

/// Validates `bytes` with every feature wasmparser knows (including `implements`) and reads the
/// top-level shape.
pub fn shape(bytes: &[u8]) -> Shape {
    use wasmparser::{ComponentInstance, Parser, Payload, Validator, WasmFeatures};
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(bytes)
        .expect("composed component validates");
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut instantiations = BTreeMap::new();
    let mut components = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.unwrap() {
            Payload::ComponentSection { unchecked_range, .. } => {
                if depth == 0 {
                    components.push(bytes[unchecked_range.start as usize..unchecked_range.end as usize].to_vec());
                }
                depth += 1;
            }
            Payload::ModuleSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(r) if depth == 0 => {
                for i in r {
                    imports.push(i.unwrap().name.name.to_string());
                }
            }
            Payload::ComponentExportSection(r) if depth == 0 => {
                for e in r {
                    exports.push(e.unwrap().name.name.to_string());
                }
            }
            Payload::ComponentInstanceSection(r) if depth == 0 => {
                for inst in r {
                    if let ComponentInstance::Instantiate { component_index, .. } = inst.unwrap() {
                        *instantiations.entry(component_index).or_insert(0) += 1;
                    }
                }
            }
            _ => {}
        }
    }
    Shape {
        imports,
        exports,
        instantiations,
        components,
    }
}

/// The entries of a component's top-level instance index space, which WebAssembly validation
/// limits to 1000 (`wasmflow_compose::limits::MAX_COMPONENT_INSTANCES`): imported instances,
/// instantiations (component and core), aliases of instance exports that are instances, and
/// exported instances.
pub fn instance_count(bytes: &[u8]) -> usize {
    use wasmparser::{ComponentAlias, ComponentExternalKind, ComponentTypeRef, Parser, Payload};
    let mut depth = 0usize;
    let mut count = 0;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.unwrap() {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(r) if depth == 0 => {
                count += r
                    .into_iter()
                    .filter(|i| matches!(i.as_ref().unwrap().ty, ComponentTypeRef::Instance(_)))
                    .count();
            }
            Payload::ComponentInstanceSection(r) if depth == 0 => count += r.count() as usize,
            Payload::InstanceSection(r) if depth == 0 => count += r.count() as usize,
            Payload::ComponentAliasSection(r) if depth == 0 => {
                count += r
                    .into_iter()
                    .filter(|a| {
                        matches!(
                            a.as_ref().unwrap(),
                            ComponentAlias::InstanceExport {
                                kind: ComponentExternalKind::Instance,
                                ..
                            }
                        )
                    })
                    .count();
            }
            Payload::ComponentExportSection(r) if depth == 0 => {
                count += r
                    .into_iter()
                    .filter(|e| e.as_ref().unwrap().kind == ComponentExternalKind::Instance)
                    .count();
            }
            _ => {}
        }
    }
    count
}

/// Whether a composition import name is a host interface: `wasm-graph:processor/…`, `wasi:…`,
/// or `op{i}-logger|metrics|state-store`.
pub fn is_host_import(name: &str) -> bool {
    if name.starts_with("wasm-graph:processor/") || name.starts_with("wasi:") {
        return true;
    }
    let Some(rest) = name.strip_prefix("op") else {
        return false;
    };
    let Some((digits, iface)) = rest.split_once('-') else {
        return false;
    };
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && matches!(iface, "logger" | "metrics" | "state-store")
}

/// Runs `wasm-tools validate` on `bytes` when the tool is installed; returns whether it ran.
pub fn wasm_tools_validate(bytes: &[u8]) -> bool {
    let candidates = [
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/wasm-tools")),
        Some(PathBuf::from("wasm-tools")),
    ];
    for tool in candidates.into_iter().flatten() {
        let Ok(out) = std::process::Command::new(&tool).arg("--version").output() else {
            continue;
        };
        if !out.status.success() {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("composed.wasm");
        std::fs::write(&file, bytes).unwrap();
        let out = std::process::Command::new(&tool)
            .args(["validate", "--features", "all"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "wasm-tools validate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return true;
    }
    false
}

/// Asserts what the host relies on: the component validates; its imports are host interfaces
/// only; its exports are exactly the operations' `op{i}-…` names; each module file is defined
/// once and instantiated once per operation using it; operators have their `op{i}-…` identity
/// imports; the embedded manifest round-trips.
pub fn assert_contract(
    graph: &wasmflow_compose::ValidatedGraph,
    composed: &wasmflow_compose::Composed,
    modules: &Path,
) {
    use wasmflow_compose::{Manifest, ModuleResolver};
    let s = shape(&composed.bytes);
    for import in &s.imports {
        assert!(
            is_host_import(import),
            "composition import `{import}` is not a host interface: {:?}",
            s.imports
        );
    }
    let expected: Vec<String> = graph.operations.iter().map(|o| o.export.clone()).collect();
    let mut exports = s.exports.clone();
    exports.sort();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(exports, sorted, "exports are exactly the op{{i}}-… names");

    // Which file each operation uses, and how often each file is instantiated.
    let resolver = ModuleResolver::with_env(&graph.base_dir(), Some(modules), None, None);
    let mut per_file: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for op in &graph.operations {
        let path = match &op.module {
            Some(r) => resolver.resolve(r).unwrap(),
            None => resolver.resolve_plumbing(op.kind).unwrap().unwrap(),
        };
        *per_file.entry(path).or_insert(0) += 1;
    }
    assert_eq!(s.components.len(), per_file.len(), "each module file is defined once");
    for (path, uses) in &per_file {
        let bytes = std::fs::read(path).unwrap();
        let index = s
            .components
            .iter()
            .position(|c| *c == bytes)
            .unwrap_or_else(|| panic!("{} is embedded verbatim", path.display()));
        assert_eq!(
            s.instantiations.get(&(index as u32)).copied().unwrap_or(0),
            *uses,
            "{} is instantiated once per operation",
            path.display()
        );
    }

    let manifest = Manifest::from_component(&composed.bytes)
        .unwrap()
        .expect("manifest section");
    assert_eq!(manifest, composed.manifest, "manifest round-trips");
    assert_eq!(manifest.format, 1);
    for (i, op) in manifest.operations.iter().enumerate() {
        assert_eq!(op.export, graph.operations[i].export);
        match &op.import_prefix {
            Some(prefix) => {
                assert_eq!(*prefix, format!("op{i}"));
                assert!(!op.kind.is_plumbing());
                assert!(
                    s.imports.iter().any(|n| n.starts_with(&format!("{prefix}-"))),
                    "operator {i} has identity imports: {:?}",
                    s.imports
                );
            }
            None => assert!(op.kind.is_plumbing(), "operation {i} lacks an import prefix"),
        }
    }
}
