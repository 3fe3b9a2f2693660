//! The composed-graph cache: an unchanged graph comes from the cache, and any change to what
//! composing reads (the text, a module, an override, where modules are found) composes again.

use std::path::Path;

use wasmflow_compose::{compose, load_graph, ComposeOptions, ComposeOutcome, ComposedCache, Override};

use crate::common::{fixture_modules, graph_yaml, operator_fixture};

/// `source -> map (module m) -> sink` with a parameter `p` declared for the map.
fn graph(description: &str) -> String {
    graph_yaml(
        &[("source", "source", None), ("map", "m", Some("org/m:1.0.0")), ("sink", "sink", None)],
        &[("source", None, "m"), ("m", None, "sink")],
        &format!(
            "moduleConfigurations:\n  - name: m\n    parameters:\n      p:\n        name: p\n        description: \"{description}\"\n        default: \"1\"\n"
        ),
    )
}

fn opts(modules: &Path) -> ComposeOptions {
    ComposeOptions {
        modules_dir: Some(modules.to_path_buf()),
        ..Default::default()
    }
}

struct Setup {
    modules: tempfile::TempDir,
    work: tempfile::TempDir,
    cache: ComposedCache,
}

impl Setup {
    fn new() -> Self {
        let modules = fixture_modules(&[("m", operator_fixture(&["map"]))]);
        let work = tempfile::tempdir().unwrap();
        std::fs::write(work.path().join("g.yaml"), graph("first")).unwrap();
        let cache = ComposedCache::new(work.path().join("composed"));
        Setup { modules, work, cache }
    }

    fn file(&self) -> std::path::PathBuf {
        self.work.path().join("g.yaml")
    }

    fn run(&self, opts: &ComposeOptions) -> (wasmflow_compose::Composed, ComposeOutcome) {
        self.cache.compose_file(&self.file(), opts).unwrap()
    }

    fn entries(&self) -> usize {
        std::fs::read_dir(self.cache.dir()).map_or(0, |d| d.count())
    }
}

#[test]
fn an_unchanged_graph_comes_from_the_cache_with_the_same_bytes() {
    let s = Setup::new();
    let o = opts(s.modules.path());
    let (first, outcome) = s.run(&o);
    assert_eq!(outcome, ComposeOutcome::Composed);
    let (second, outcome) = s.run(&o);
    assert_eq!(outcome, ComposeOutcome::Cached);
    assert_eq!(second, first, "bytes, manifest and warnings as composed");
    // What composing without the cache gives, independently of it.
    let direct = compose(&load_graph(&s.file()).unwrap(), &o).unwrap();
    assert_eq!(first.bytes, direct.bytes);
    assert_eq!(first.manifest, direct.manifest);
    assert_eq!(s.entries(), 1);
}

#[test]
fn a_changed_graph_text_composes_again() {
    let s = Setup::new();
    let o = opts(s.modules.path());
    let (first, _) = s.run(&o);
    std::fs::write(s.file(), graph("second")).unwrap();
    let (changed, outcome) = s.run(&o);
    assert_eq!(outcome, ComposeOutcome::Composed);
    assert_ne!(changed.manifest, first.manifest);
    assert_eq!(
        changed.manifest.operations[1].parameters[0].description.as_deref(),
        Some("second")
    );
    // Changing it back finds the first entry again.
    std::fs::write(s.file(), graph("first")).unwrap();
    assert_eq!(s.run(&o).1, ComposeOutcome::Cached);
}

#[test]
fn a_changed_module_composes_again() {
    let s = Setup::new();
    let o = opts(s.modules.path());
    let (first, _) = s.run(&o);
    // Same exports, different bytes (one more interface): same size class, other digest.
    std::fs::write(s.modules.path().join("m.wasm"), operator_fixture(&["map", "filter"])).unwrap();
    let (changed, outcome) = s.run(&o);
    assert_eq!(outcome, ComposeOutcome::Composed);
    assert_ne!(changed.bytes, first.bytes);
    assert_eq!(s.run(&o).1, ComposeOutcome::Cached);
    // A plumbing component is a module too.
    let source = s.modules.path().join("wasmflow-source.wasm");
    let mut bytes = std::fs::read(&source).unwrap();
    wasm_encoder::ComponentSection::append_to_component(
        &wasm_encoder::CustomSection {
            name: "changed".into(),
            data: b"x".as_slice().into(),
        },
        &mut bytes,
    );
    std::fs::write(&source, bytes).unwrap();
    assert_eq!(s.run(&o).1, ComposeOutcome::Composed);
}

#[test]
fn a_module_that_vanished_or_moved_composes_again() {
    let s = Setup::new();
    let o = opts(s.modules.path());
    s.run(&o);
    // The same module found earlier on the search path: the reference resolves elsewhere.
    let earlier = tempfile::tempdir().unwrap();
    std::fs::copy(s.modules.path().join("m.wasm"), earlier.path().join("m.wasm")).unwrap();
    let mut moved = o.clone();
    moved.modules_dir = Some(earlier.path().to_path_buf());
    moved.default_modules_dir = Some(s.modules.path().to_path_buf());
    assert_eq!(s.run(&moved).1, ComposeOutcome::Composed);
    assert_eq!(s.run(&moved).1, ComposeOutcome::Cached);
    std::fs::remove_file(earlier.path().join("m.wasm")).unwrap();
    // Now found in the default directory again: another resolution, another compose.
    assert_eq!(s.run(&moved).1, ComposeOutcome::Composed);
    // Gone everywhere: the compose error, not a stale entry.
    std::fs::remove_file(s.modules.path().join("m.wasm")).unwrap();
    let e = s.cache.compose_file(&s.file(), &moved).unwrap_err().to_string();
    assert!(e.contains("org/m:1.0.0"), "{e}");
}

#[test]
fn a_changed_override_composes_again() {
    let s = Setup::new();
    let o = opts(s.modules.path());
    let (first, _) = s.run(&o);
    let mut with = o.clone();
    with.overrides = vec![Override::parse("m.p=2").unwrap()];
    let (changed, outcome) = s.run(&with);
    assert_eq!(outcome, ComposeOutcome::Composed);
    assert_eq!(
        changed.manifest.operations[1].parameters[0].default.as_deref(),
        Some("2")
    );
    assert_ne!(changed.bytes, first.bytes);
    assert_eq!(s.run(&with).1, ComposeOutcome::Cached);
    with.overrides = vec![Override::parse("m.p=3").unwrap()];
    assert_eq!(s.run(&with).1, ComposeOutcome::Composed);
    assert_eq!(s.run(&o).1, ComposeOutcome::Cached, "the first entry is still there");
}

#[test]
fn a_damaged_entry_is_composed_again_and_replaced() {
    let s = Setup::new();
    let o = opts(s.modules.path());
    let (first, _) = s.run(&o);
    let entry = std::fs::read_dir(s.cache.dir())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&entry).unwrap();
    std::fs::write(&entry, &bytes[..bytes.len() - 1]).unwrap();
    let (again, outcome) = s.run(&o);
    assert_eq!(outcome, ComposeOutcome::Composed);
    assert_eq!(again, first);
    assert_eq!(s.run(&o).1, ComposeOutcome::Cached);
}

#[test]
fn an_invalid_graph_is_refused_as_without_a_cache_and_nothing_is_stored() {
    let s = Setup::new();
    std::fs::write(s.file(), "metadata: [").unwrap();
    let o = opts(s.modules.path());
    let e = s.cache.compose_file(&s.file(), &o).unwrap_err().to_string();
    let direct = load_graph(&s.file()).unwrap_err().to_string();
    assert_eq!(e, direct);
    assert_eq!(s.entries(), 0);
}

#[test]
fn an_unwritable_cache_still_composes_and_says_so() {
    let s = Setup::new();
    // A file where the cache directory should be.
    let blocked = s.work.path().join("blocked");
    std::fs::write(&blocked, "").unwrap();
    let cache = ComposedCache::new(&blocked);
    let (composed, outcome) = cache.compose_file(&s.file(), &opts(s.modules.path())).unwrap();
    assert_eq!(outcome, ComposeOutcome::Composed);
    assert!(
        composed
            .warnings
            .iter()
            .any(|w| w.contains("could not keep the composed graph")),
        "{:?}",
        composed.warnings
    );
}
