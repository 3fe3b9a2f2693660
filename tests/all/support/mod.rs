//! Shared set-up for the integration tests: real modules from `target/modules` (built by
//! scripts/build-components.sh), composed and run in process; the `wasmflow` binary; the real
//! peers (mosquitto, the registry's token service) the areas talk to.

pub mod http;
pub mod kafka_peer;
pub mod mosquitto;
pub mod otlp;
pub mod process;
pub mod proxy;
pub mod redis;
pub mod token_server;

pub use process::{describe, OutputExt};
/// Test certificates: declared by `redis` (whose `#[path]` users need them too).
pub use redis::pki;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmflow_compose::ComposeOptions;
use wasmflow_runtime::graph::{Graph, RunOptions};
use wasmflow_runtime::{default_modules_dir, load_graph, LoadedGraph, Runtime, RuntimeConfig};
use wasmflow_transport::{Input, Output};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn module(name: &str) -> PathBuf {
    let p = default_modules_dir().join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build-components.sh",
        p.display()
    );
    p
}

pub fn compose_options() -> ComposeOptions {
    ComposeOptions {
        default_modules_dir: Some(default_modules_dir()),
        ..Default::default()
    }
}

/// The compiled-code cache the tests share (compiling a graph in a debug build takes a second
/// or two, a graph of Python operators much longer).
pub fn shared_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasmflow-cache")
}

/// A runtime with its own data directory (dropped with it) and an in-memory state store.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub runtime: Runtime,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_state(true)
    }

    /// A runtime whose compiled-code cache is shared by the tests (compiling a graph in a
    /// debug build takes a second or two); state is in memory unless `ephemeral_state` is false.
    pub fn with_state(ephemeral_state: bool) -> Self {
        Self::build(ephemeral_state, Some(shared_cache()), Default::default())
    }

    /// A runtime with a cache of its own, empty at first.
    pub fn with_fresh_cache() -> Self {
        Self::build(true, None, Default::default())
    }

    /// A runtime (shared cache, in-memory state) whose engine has these limits.
    pub fn with_limits(limits: wasmflow_runtime::engine::EngineLimits) -> Self {
        Self::build(true, Some(shared_cache()), limits)
    }

    fn build(
        ephemeral_state: bool,
        cache_dir: Option<PathBuf>,
        limits: wasmflow_runtime::engine::EngineLimits,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = RuntimeConfig {
            data_dir: dir.path().into(),
            ephemeral_state,
            cache_dir,
            limits,
        };
        let runtime = Runtime::new(&config).expect("runtime");
        Self { dir, runtime }
    }

    /// The same harness, its runtime given these wasi-nn options.
    pub fn with_wasi_nn(self, options: wasmflow_runtime::services::wasi_nn::NnOptions) -> Self {
        Self {
            dir: self.dir,
            runtime: self.runtime.with_wasi_nn(options),
        }
    }

    pub fn load(&self, graph: &Path) -> LoadedGraph {
        // Make sure the modules exist before blaming the compiler.
        module("temperature");
        load_graph(graph, &compose_options()).unwrap_or_else(|e| panic!("{}: {e:#}", graph.display()))
    }

    /// Composes `graph` for `options.routing` (with its router for `Routing::Composed`) and starts it.
    pub fn start(&self, graph: &Path, options: RunOptions) -> Graph {
        let loaded = match options.routing {
            wasmflow_compose::Routing::Host => self.load(graph),
            routing => {
                module("temperature");
                let compose = ComposeOptions {
                    routing,
                    ..compose_options()
                };
                load_graph(graph, &compose).unwrap_or_else(|e| panic!("{}: {e:#}", graph.display()))
            }
        };
        self.runtime
            .start(&loaded, options)
            .unwrap_or_else(|e| panic!("{e:#}"))
            .0
    }

    /// Writes a graph definition into the harness directory: the metadata and module
    /// requirements every definition needs, then `body` (operations, connections, …).
    pub fn write_graph(&self, file: &str, name: &str, description: &str, body: &str) -> PathBuf {
        let yaml = format!(
            r#"metadata:
  name: "{name}"
  description: "{description}"
  version: "1.0.0"
  $schema: "https://www.schemastore.org/aio-wasm-graph-config-1.0.0.json"
  vendor: "wasmflow tests"
moduleRequirements:
  apiVersion: "1.1.0"
  runtimeVersion: "1.1.0"
{body}"#
        );
        let p = self.dir.path().join(file);
        std::fs::write(&p, yaml).expect("write graph");
        p
    }
}

/// source → `faulty/map` → sink: the map rejects (`Err`) an item whose JSON payload asks for
/// `{"fault":"err"}` and passes every other one on unchanged; for dead-letter tests.
pub fn faulty_map_graph(h: &Harness) -> PathBuf {
    module("faulty");
    h.write_graph(
        "faulty-map.yaml",
        "dead letters",
        "A map that rejects what asks for it",
        r#"operations:
  - { operationType: source, name: source }
  - { operationType: map, name: faulty/map, module: "test/faulty:1.0.0" }
  - { operationType: sink, name: sink }
connections:
  - { from: { name: source }, to: { name: faulty/map } }
  - { from: { name: faulty/map }, to: { name: sink } }
"#,
    )
}

/// `__ts` for `ms` since the epoch, as sensors write it.
pub fn ts(ms: u64) -> String {
    format!("{ms:0>15}:{:0>5}:test", 0)
}

pub fn input(payload: &str, ms: u64) -> Input {
    Input {
        topic: "sensors/test".into(),
        payload: Arc::from(payload.as_bytes()),
        content_type: None,
        user_properties: vec![("__ts".into(), ts(ms))],
    }
}

pub fn payload(o: &Output) -> String {
    String::from_utf8(o.payload.to_vec()).expect("utf-8 payload")
}

pub fn prop<'a>(o: &'a Output, key: &str) -> Option<&'a str> {
    o.user_properties
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Feeds every input, then closes all windows; returns everything that came out.
pub fn run_all(g: &mut Graph, inputs: Vec<Input>) -> Vec<Output> {
    let mut out = Vec::new();
    for i in inputs {
        out.extend(g.push(None, i).expect("push"));
    }
    out.extend(g.flush().expect("flush"));
    out
}

/// Log records written by this test binary (every area's), kept for tests that check what
/// was logged.
#[derive(Clone, Default)]
pub struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl Capture {
    /// Everything logged so far.
    pub fn contents(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The test binary's one global subscriber, set on first use, before any graph starts (a
/// thread-scoped one missed records while other tests ran in parallel). Every area that needs
/// log records calls this; one binary has room for one global subscriber.
pub fn logs() -> &'static Capture {
    static LOGS: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let cap = Capture::default();
        let w = cap.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(sub).expect("the only global subscriber");
        cap
    })
}

/// The value of the Prometheus sample `name{…labels…}` in `text` whatever labels come before
/// `labels` (every metric carries `instance` first); `None` when there is no such sample.
pub fn prometheus_sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (inner, value) = rest.split_once("} ")?;
        (inner == labels || inner.ends_with(&format!(",{labels}"))).then(|| value.trim().parse().ok())?
    })
}

/// A command's output as text (lossy UTF-8), for assertions and failure messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
