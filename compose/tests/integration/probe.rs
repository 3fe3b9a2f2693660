//! TEMPORARY probe (removed before the end).
use std::path::Path;
use std::time::Instant;

use wasmflow_compose::{compose, parse_graph, ComposeOptions};

fn chain(n: usize) -> String {
    let mut s = String::from(
        "metadata:\n  name: \"chain\"\n  version: \"1.0.0\"\n  $schema: \"https://www.schemastore.org/aio-wasm-graph-config-1.0.0.json\"\nmoduleRequirements:\n  apiVersion: \"1.1.0\"\n  runtimeVersion: \"1.1.0\"\noperations:\n  - operationType: \"source\"\n    name: \"source\"\n",
    );
    for i in 0..n {
        s.push_str(&format!("  - operationType: \"map\"\n    name: \"m{i}\"\n    module: \"azure-samples/explore-iot-operations/temperature:1.0.0\"\n"));
    }
    s.push_str("  - operationType: \"sink\"\n    name: \"sink\"\nconnections:\n");
    let mut prev = "source".to_string();
    for i in 0..n {
        s.push_str(&format!(
            "  - from:\n      name: \"{prev}\"\n    to:\n      name: \"m{i}\"\n"
        ));
        prev = format!("m{i}");
    }
    s.push_str(&format!(
        "  - from:\n      name: \"{prev}\"\n    to:\n      name: \"sink\"\n"
    ));
    s
}

fn stages(n: usize) {
    let text = chain(n);
    let t = Instant::now();
    let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    eprintln!("{n}: yaml parse {:?} ({} bytes)", t.elapsed(), text.len());
    let t = Instant::now();
    let j = serde_json::to_value(&y).unwrap();
    eprintln!("{n}: to json {:?}", t.elapsed());
    drop(j);
    let t = Instant::now();
    let g = parse_graph(Path::new("/tmp/probe/g.yaml"), &text);
    eprintln!("{n}: parse_graph {:?} ok={}", t.elapsed(), g.is_ok());
    let g = g.map_err(|e| e.to_string()).unwrap();
    let opts = ComposeOptions {
        modules_dir: None,
        default_modules_dir: Some(crate::common::modules_dir()),
        overrides: vec![],
        resolved: Default::default(),
    };
    let t = Instant::now();
    let p = wasmflow_compose::plan::plan(&g, &opts).unwrap();
    eprintln!("{n}: plan {:?}", t.elapsed());
    let t = Instant::now();
    let r = wasmflow_compose::encode::encode(&p);
    eprintln!(
        "{n}: encode {:?} {:?}",
        t.elapsed(),
        r.as_ref().map(|b| b.len()).map_err(|e| e.to_string())
    );
    if let Ok(b) = &r {
        count(b);
    }
    let _ = compose;
}

fn count(bytes: &[u8]) {
    use wasmparser::{ComponentAlias, ComponentExternalKind, ComponentTypeRef, Parser, Payload};
    let mut depth = 0usize;
    let (mut imp, mut inst, mut core, mut alias, mut exp, mut other_alias) = (0, 0, 0, 0, 0, 0);
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.unwrap() {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(r) if depth == 0 => {
                for i in r {
                    if matches!(i.unwrap().ty, ComponentTypeRef::Instance(_)) {
                        imp += 1
                    }
                }
            }
            Payload::ComponentInstanceSection(r) if depth == 0 => inst += r.count(),
            Payload::InstanceSection(r) if depth == 0 => core += r.count(),
            Payload::ComponentAliasSection(r) if depth == 0 => {
                for a in r {
                    match a.unwrap() {
                        ComponentAlias::InstanceExport {
                            kind: ComponentExternalKind::Instance,
                            ..
                        } => alias += 1,
                        _ => other_alias += 1,
                    }
                }
            }
            Payload::ComponentExportSection(r) if depth == 0 => {
                for e in r {
                    if e.unwrap().kind == ComponentExternalKind::Instance {
                        exp += 1
                    }
                }
            }
            _ => {}
        }
    }
    eprintln!("instance imports {imp}, instantiations {inst}, core instances {core}, instance aliases {alias} (other aliases {other_alias}), instance exports {exp}; total {}", imp + inst + core + alias + exp);
}

#[test]
#[ignore]
fn probe_stages() {
    let ns: Vec<usize> = std::env::var("PROBE_N")
        .unwrap()
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let stack: usize = std::env::var("PROBE_STACK")
        .ok()
        .map(|s| s.parse().unwrap())
        .unwrap_or(8 << 20);
    for n in ns {
        std::thread::Builder::new()
            .stack_size(stack)
            .spawn(move || stages(n))
            .unwrap()
            .join()
            .unwrap();
    }
}

#[test]
#[ignore]
fn probe_nesting() {
    let n: usize = std::env::var("PROBE_N").unwrap().parse().unwrap();
    let forms: Vec<(&str, String)> = vec![
        ("flow seq", format!("{}{}", "[".repeat(n), "]".repeat(n))),
        ("flow map", format!("{}{}", "{".repeat(n), "}".repeat(n))),
        ("block seq one line", format!("{}x\n", "- ".repeat(n))),
        ("explicit keys", format!("{}x\n", "? ".repeat(n))),
        ("flow seq lines", format!("{}{}", "[\n".repeat(n), "]\n".repeat(n))),
        ("flow map lines", format!("{}{}", "{\n".repeat(n), "}\n".repeat(n))),
        (
            "block seq lines",
            (0..n.min(3000))
                .map(|i| format!("{}-\n", " ".repeat(i)))
                .collect::<String>(),
        ),
    ];
    for (name, text) in forms {
        let t = Instant::now();
        let r: Result<serde_yaml_ng::Value, _> = serde_yaml_ng::from_str(&text);
        eprintln!(
            "{name} {n}: {:?} {:?}",
            t.elapsed(),
            r.map(|_| ()).map_err(|e| e.to_string())
        );
    }
}
