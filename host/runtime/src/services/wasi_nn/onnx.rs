//! wasi-nn's ONNX backend on ONNX Runtime loaded as a shared library (ort's `load-dynamic`):
//! `wasmtime-wasi-nn` provides the WIT host (resources, errors); the backend under it is ours
//! ([`CheckedOnnx`], `ort` sessions driven directly).
//!
//! Why the care around it:
//! * ONNX Runtime is a shared library found at run time (`--onnxruntime`, `ORT_DYLIB_PATH`, or
//!   where `scripts/setup.sh` puts it). A missing or too-old library *panics* inside `ort`, even
//!   when first touched from a guest's `graph.load`; so it is probed once, behind `catch_unwind`,
//!   before any graph may use it, and a graph that needs it fails to start with what to do.
//! * It is started only for graphs whose modules import `wasi:nn`, so every other graph runs on
//!   machines without ONNX Runtime.
//! * `wasmtime-wasi-nn`'s own ONNX backend hit `unimplemented!()` (a host panic) on non-float32
//!   inputs and a slice `unwrap` on data whose length is not a multiple of four, and copied each
//!   tensor several times per call; [`CheckedOnnx`] refuses such tensors (the item's `Err`),
//!   hands each input to ONNX Runtime as a view of its bytes (no copy) and copies each output
//!   once (BENCHMARKS.md, "Edge inference").
//! * Models preloaded by name (`--model NAME=PATH`, `graph.load-by-name`) are loaded once and
//!   shared by every store (one ORT session per model, behind the backend's lock).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use wasmflow_compose::Manifest;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi_nn::backend::{
    BackendError, BackendExecutionContext, BackendFromDir, BackendGraph, BackendInner, Id, NamedTensor,
};
use wasmtime_wasi_nn::wit::{ExecutionTarget, GraphEncoding, TensorType, WasiNnCtx, WasiNnView};
use wasmtime_wasi_nn::{Backend, ExecutionContext, Graph, GraphRegistry, Registry, Tensor};

/// The `moduleRequirements.features` name that declares a graph uses wasi-nn.
pub const FEATURE: &str = "wasi-nn";
/// The ONNX Runtime version `scripts/setup.sh` installs (ort 2.0.0-rc.10 needs 1.22 or newer).
pub const ONNXRUNTIME_VERSION: &str = "1.22.1";
/// Environment variable ort itself reads; honoured here too.
pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";

const INSTALL_HINT: &str =
    "install it with scripts/setup.sh (or `make setup`), or pass --onnxruntime PATH / set ORT_DYLIB_PATH to a libonnxruntime.so of version 1.22 or newer";

/// Why wasi-nn is not available, or a model could not be preloaded.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// No library file where [`locate_onnxruntime`] looked.
    #[error("ONNX Runtime was not found ({searched}); {INSTALL_HINT}")]
    NotFound {
        /// Where it looked, in words.
        searched: String,
    },
    /// The library is there but would not load: not ONNX Runtime, or older than ort accepts.
    /// The first outcome stands for the whole process (see [`init_onnxruntime`]).
    #[error("ONNX Runtime at {path} cannot be used: {reason}; {INSTALL_HINT}")]
    Unusable {
        /// The library asked for.
        path: PathBuf,
        /// The load's error or panic message, naming the library the process tried first.
        reason: String,
    },
    /// A `--model` argument without both a name and a path; the argument as given.
    #[error("--model `{0}`: expected NAME=PATH (a name for graph.load-by-name and an .onnx file)")]
    ModelSpec(String),
    /// A `--model` file that cannot be read or that ONNX Runtime refuses, or a name given
    /// twice. Stops start-up: a preloaded model is configuration, not one item's input.
    #[error("--model {name}={path}: {reason}")]
    Model {
        /// The name for `graph.load-by-name`.
        name: String,
        /// The model file.
        path: PathBuf,
        /// Which of the above, with ONNX Runtime's own reason.
        reason: String,
    },
    /// A graph imports `wasi:nn` and ONNX Runtime cannot be started ([`NnRuntime::for_manifest`]).
    #[error("operation(s) {operations} import wasi:nn, but {reason}")]
    Required {
        /// The operations that import it, each in backticks, comma-separated.
        operations: String,
        /// Why it cannot be started (the [`NnError::NotFound`] or [`NnError::Unusable`] message).
        reason: String,
    },
}

/// The session options of every model wasi-nn runs, in words (the inference bench prints them,
/// and builds its direct ONNX Runtime session with [`session_builder`] so both sides match).
pub const SESSION_OPTIONS: &str =
    "CPU execution provider, graph optimisation level 3, one intra-op and one inter-op thread (the calling thread, no spinning pool)";

/// A session builder with the options of every model wasi-nn runs ([`SESSION_OPTIONS`]). One
/// thread: a graph calls its operators on one thread, and on an edge box's few cores ONNX
/// Runtime's default pool (a thread per core, spinning between runs) competed with that thread
/// and the transports for no gain at one image per call (BENCHMARKS.md, "Edge inference").
pub fn session_builder() -> ort::Result<ort::session::builder::SessionBuilder> {
    ort::session::Session::builder()?
        .with_execution_providers([ort::execution_providers::CPUExecutionProvider::default().build()])?
        .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)?
        .with_intra_threads(1)?
        .with_inter_threads(1)
}

/// What the user told the host about wasi-nn: where ONNX Runtime is and which models to preload.
#[derive(Debug, Clone, Default)]
pub struct NnOptions {
    /// `--onnxruntime PATH`; else `ORT_DYLIB_PATH`; else the set-up location.
    pub onnxruntime: Option<PathBuf>,
    /// `--model NAME=PATH`, loaded once for `graph.load-by-name`.
    pub models: Vec<(String, PathBuf)>,
}

/// Parses `NAME=PATH` of `--model`.
pub fn parse_model_spec(spec: &str) -> Result<(String, PathBuf), NnError> {
    match spec.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok((name.to_owned(), PathBuf::from(path))),
        _ => Err(NnError::ModelSpec(spec.to_owned())),
    }
}

/// Where `scripts/setup.sh` puts the library: `$WASMFLOW_ONNXRUNTIME_DIR`, else
/// `~/.cache/wasmflow/onnxruntime`.
pub fn install_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("WASMFLOW_ONNXRUNTIME_DIR") {
        return Some(d.into());
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/wasmflow/onnxruntime"))
}

/// The library to load: the flag, else `ORT_DYLIB_PATH`, else the set-up location (the pinned
/// version first, else any `libonnxruntime.so*` there).
pub fn locate_onnxruntime(flag: Option<&Path>) -> Result<PathBuf, NnError> {
    let explicit = flag.map(|p| (p.to_path_buf(), "--onnxruntime")).or_else(|| {
        std::env::var_os(ORT_DYLIB_PATH)
            .filter(|v| !v.is_empty())
            .map(|v| (PathBuf::from(v), ORT_DYLIB_PATH))
    });
    if let Some((path, from)) = explicit {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(NnError::NotFound {
                searched: format!("{from} names {}, which is not a file", path.display()),
            })
        };
    }
    let Some(dir) = install_dir() else {
        return Err(NnError::NotFound {
            searched: "no --onnxruntime, no ORT_DYLIB_PATH, and no HOME to find the set-up location".into(),
        });
    };
    let pinned = dir.join(format!("libonnxruntime.so.{ONNXRUNTIME_VERSION}"));
    if pinned.is_file() {
        return Ok(pinned);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    found.sort();
    found.pop().ok_or_else(|| NnError::NotFound {
        searched: format!("no --onnxruntime, no ORT_DYLIB_PATH, nothing in {}", dir.display()),
    })
}

/// The outcome of the one probe this process makes: ort binds one library per process, and a
/// failed load cannot be retried (its lazy state stays poisoned), so the first answer stands.
static PROBE: OnceLock<Result<(PathBuf, String), String>> = OnceLock::new();

/// Loads ONNX Runtime from `path` once per process and returns its build description. Later
/// calls return the first outcome (naming the library actually loaded).
pub fn init_onnxruntime(path: &Path) -> Result<String, NnError> {
    let outcome = PROBE.get_or_init(|| {
        let shown = path.display().to_string();
        let probe = catch_unwind(AssertUnwindSafe(|| {
            // `init_from` only records the path; `commit` loads the library and checks its
            // version (a panic when it is missing, not ONNX Runtime, or too old).
            ort::init_from(shown.clone())
                .with_name("wasmflow")
                .commit()
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(ort::info().to_owned())
        }));
        match probe {
            Ok(Ok(info)) => Ok((path.to_path_buf(), info)),
            Ok(Err(e)) => Err(format!("{shown}: {e}")),
            Err(panic) => {
                let reason = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "loading it panicked".into());
                Err(format!("{shown}: {reason}"))
            }
        }
    });
    match outcome {
        Ok((loaded, info)) if loaded == path => Ok(info.clone()),
        Ok((loaded, info)) => {
            tracing::warn!(
                "ONNX Runtime is already loaded from {} in this process; {} is not used",
                loaded.display(),
                path.display()
            );
            Ok(info.clone())
        }
        Err(reason) => Err(NnError::Unusable {
            path: path.to_path_buf(),
            reason: reason.clone(),
        }),
    }
}

/// wasi-nn ready to link: ONNX Runtime is loaded and the preloaded models are sessions.
pub struct WasiNn {
    /// The library in use, for messages.
    pub library: PathBuf,
    /// ONNX Runtime's build description.
    pub info: String,
    models: HashMap<String, Graph>,
}

impl WasiNn {
    /// Probes ONNX Runtime and loads every `--model` once. A model that ONNX Runtime refuses
    /// stops start-up with the flag and file named (a configuration error, not an item's).
    pub fn start(options: &NnOptions) -> Result<Self, NnError> {
        let library = locate_onnxruntime(options.onnxruntime.as_deref())?;
        let info = init_onnxruntime(&library)?;
        let mut backend = CheckedOnnx;
        let mut models = HashMap::new();
        for (name, path) in &options.models {
            let model_error = |reason: String| NnError::Model {
                name: name.clone(),
                path: path.clone(),
                reason,
            };
            let bytes = std::fs::read(path).map_err(|e| model_error(format!("cannot read it: {e}")))?;
            let graph = backend
                .load(&[&bytes], ExecutionTarget::Cpu)
                .map_err(|e| model_error(format!("ONNX Runtime cannot load it: {}", backend_reason(&e))))?;
            if models.insert(name.clone(), graph).is_some() {
                return Err(model_error("the name is given twice".into()));
            }
        }
        tracing::info!(library = %library.display(), models = models.len(), "wasi-nn: ONNX Runtime ready");
        Ok(Self { library, info, models })
    }

    /// The names of the preloaded models.
    pub fn model_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.models.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// A store's wasi-nn context: its own backend (for `graph.load`) and the shared models.
    pub fn ctx(&self) -> WasiNnCtx {
        WasiNnCtx::new(
            [Backend::from(CheckedOnnx)],
            Registry::from(SharedModels(self.models.clone())),
        )
    }
}

/// A store's wasi-nn context.
pub type NnCtx = WasiNnCtx;

/// The context of a store: the graph's wasi-nn, or an empty one when it uses none.
pub fn store_ctx(nn: Option<&WasiNn>) -> NnCtx {
    nn.map_or_else(disabled_ctx, WasiNn::ctx)
}

/// A context with no backend and no model: what a store holds when wasi-nn is not linked.
pub fn disabled_ctx() -> WasiNnCtx {
    WasiNnCtx::new([], Registry::from(SharedModels(HashMap::new())))
}

/// Adds the wasi-nn interfaces to `linker`; `view` gives a store's table and context.
pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> WasiNnView<'_>) -> wasmtime::Result<()> {
    wasmtime_wasi_nn::wit::add_to_linker(linker, view)
}

/// A view over a store's table and wasi-nn context (for the linker closure).
pub fn view<'a>(table: &'a mut ResourceTable, ctx: &'a mut WasiNnCtx) -> WasiNnView<'a> {
    WasiNnView::new(table, ctx)
}

/// wasi-nn for a runtime: started on first need, then shared by every graph.
#[derive(Default)]
pub struct NnRuntime {
    options: NnOptions,
    started: Mutex<Option<Arc<WasiNn>>>,
}

impl NnRuntime {
    /// wasi-nn as these options describe it (nothing is loaded until a graph needs it).
    pub fn new(options: NnOptions) -> Self {
        Self {
            options,
            started: Mutex::new(None),
        }
    }

    /// What a graph gets: `None` when none of its modules imports `wasi:nn`; otherwise wasi-nn
    /// (started now if this is the first such graph), or an error saying which operations need
    /// it and how to get ONNX Runtime. A graph that imports wasi:nn without declaring the
    /// `wasi-nn` feature runs, with a warning.
    pub fn for_manifest(&self, manifest: &Manifest) -> Result<Option<Arc<WasiNn>>, NnError> {
        let users: Vec<&str> = manifest
            .operations
            .iter()
            .filter(|o| o.imports_wasi_nn)
            .map(|o| o.name.as_str())
            .collect();
        if users.is_empty() {
            if !self.options.models.is_empty() {
                // Said, so that a `--model` meant for this graph (a wrong graph file, a module
                // built without wasi-nn) is not ignored in silence.
                tracing::warn!(
                    graph = %manifest.name,
                    "no operation imports wasi:nn: the --model models are not loaded for this graph"
                );
            }
            return Ok(None);
        }
        let operations = users.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", ");
        if !manifest.features.iter().any(|f| f == FEATURE) {
            tracing::warn!(
                graph = %manifest.name,
                "operation(s) {operations} import wasi:nn but the graph does not declare the `{FEATURE}` feature (moduleRequirements.features); running with wasi-nn anyway"
            );
        }
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(nn) = started.as_ref() {
            return Ok(Some(nn.clone()));
        }
        let nn = Arc::new(WasiNn::start(&self.options).map_err(|e| match e {
            e @ NnError::Model { .. } => e,
            other => NnError::Required {
                operations,
                reason: other.to_string(),
            },
        })?);
        *started = Some(nn.clone());
        Ok(Some(nn))
    }
}

/// The inner reason of a backend error (its `Display` alone says "Failed while accessing backend").
fn backend_reason(e: &BackendError) -> String {
    match e {
        BackendError::BackendAccess(inner) => format!("{inner:#}"),
        other => other.to_string(),
    }
}

/// Preloaded models by name; cloning shares the sessions (a `Graph` is an `Arc`).
struct SharedModels(HashMap<String, Graph>);

impl GraphRegistry for SharedModels {
    fn get(&self, name: &str) -> Option<&Graph> {
        self.0.get(name)
    }
    fn get_mut(&mut self, name: &str) -> Option<&mut Graph> {
        self.0.get_mut(name)
    }
}

/// The ONNX backend: `ort` sessions driven directly (not `wasmtime-wasi-nn`'s ONNX backend,
/// which per `compute` cloned each input twice, converted it through two more vectors,
/// extracted and copied every output twice, and panicked on non-FP32 tensors: BENCHMARKS.md,
/// "Edge inference"). Sessions use [`session_builder`]'s options. Inputs must be FP32
/// ([`check_tensor`]); a bad tensor or a non-FP32 output is the call's error, never a panic.
struct CheckedOnnx;

impl BackendInner for CheckedOnnx {
    fn encoding(&self) -> GraphEncoding {
        GraphEncoding::Onnx
    }

    fn load(&mut self, builders: &[&[u8]], target: ExecutionTarget) -> Result<Graph, BackendError> {
        let [model] = builders else {
            return Err(BackendError::InvalidNumberOfBuilders(1, builders.len()));
        };
        if target != ExecutionTarget::Cpu {
            tracing::warn!("wasi-nn: execution target {target:?} is not available; the model runs on the CPU");
        }
        let session = session_builder()
            .and_then(|b| b.commit_from_memory(model))
            .map_err(|e| {
                tracing::warn!("wasi-nn: ONNX Runtime refused a model: {e}");
                BackendError::BackendAccess(wasmtime::Error::msg(e.to_string()))
            })?;
        let ports = |list: Vec<(String, &ort::value::ValueType)>| -> Vec<Port> {
            list.into_iter()
                .map(|(name, ty)| Port {
                    name,
                    dimensions: match ty {
                        ort::value::ValueType::Tensor { shape, .. } => Some(shape.to_vec()),
                        _ => None,
                    },
                })
                .collect()
        };
        let inputs = ports(session.inputs.iter().map(|i| (i.name.clone(), &i.input_type)).collect());
        let outputs = ports(
            session
                .outputs
                .iter()
                .map(|o| (o.name.clone(), &o.output_type))
                .collect(),
        );
        let graph: Box<dyn BackendGraph> = Box::new(OnnxModel(Arc::new(Model {
            session: Mutex::new(session),
            inputs,
            outputs,
        })));
        Ok(graph.into())
    }

    fn as_dir_loadable(&mut self) -> Option<&mut dyn BackendFromDir> {
        None
    }
}

/// An input or output of a model: its name and, for a tensor, its dimensions (-1: any).
struct Port {
    name: String,
    dimensions: Option<Vec<i64>>,
}

/// One loaded model, shared by every execution context made from it (and, for a preloaded
/// model, by every store): `ort`'s `Session::run` takes `&mut self`, hence the lock.
struct Model {
    session: Mutex<ort::session::Session>,
    inputs: Vec<Port>,
    outputs: Vec<Port>,
}

struct OnnxModel(Arc<Model>);

impl BackendGraph for OnnxModel {
    fn init_execution_context(&self) -> Result<ExecutionContext, BackendError> {
        let context: Box<dyn BackendExecutionContext> = Box::new(CheckedContext {
            model: self.0.clone(),
            staged: (0..self.0.inputs.len()).map(|_| None).collect(),
            results: Vec::new(),
        });
        Ok(context.into())
    }
}

/// An execution context: the inputs `set-input` staged and the outputs of the last `compute`
/// (the WITX-style calls); the WIT `compute` passes its inputs and gets its outputs directly.
struct CheckedContext {
    model: Arc<Model>,
    staged: Vec<Option<Tensor>>,
    results: Vec<Tensor>,
}

fn access(message: String) -> BackendError {
    BackendError::BackendAccess(wasmtime::Error::msg(message))
}

impl CheckedContext {
    /// The index of the input named `name`, else of the decimal index `name` spells (as
    /// `wasmtime-wasi-nn` accepted, and as the `snapshot` map names its input "0").
    fn input_named(&self, name: &str) -> Option<usize> {
        let inputs = &self.model.inputs;
        inputs
            .iter()
            .position(|p| p.name == name)
            .or_else(|| name.parse::<usize>().ok().filter(|i| *i < inputs.len()))
    }

    /// The index of input `id` (an index, or a name as [`CheckedContext::input_named`] reads it).
    fn input_index(&self, id: &Id) -> Result<usize, BackendError> {
        let inputs = &self.model.inputs;
        let found = match id {
            Id::Index(i) => Some(*i as usize).filter(|i| *i < inputs.len()),
            Id::Name(n) => self.input_named(n),
        };
        found.ok_or_else(|| {
            access(format!(
                "the model has no input {id:?} (it has {})",
                self.model.inputs.len()
            ))
        })
    }

    /// Checks `tensor` against input `index` of the model: FP32, data of the right length,
    /// the model's rank and fixed dimensions.
    fn checked(&self, index: usize, tensor: &Tensor) -> Result<(), BackendError> {
        let port = &self.model.inputs[index];
        check_tensor(tensor).map_err(|e| refused(format!("input `{}`: {e}", port.name)))?;
        if let Some(expected) = &port.dimensions {
            let fits = expected.len() == tensor.dimensions.len()
                && expected
                    .iter()
                    .zip(&tensor.dimensions)
                    .all(|(&e, &d)| e < 0 || e == i64::from(d));
            if !fits {
                return Err(refused(format!(
                    "input `{}`: dimensions {:?} do not fit the model's {expected:?}",
                    port.name, tensor.dimensions
                )));
            }
        }
        Ok(())
    }

    /// Runs the model on one tensor per input (model order) and returns every output.
    ///
    /// Per call this is the floor the `ort` API allows (BENCHMARKS.md, "Edge inference"): an
    /// input whose bytes are 4-aligned (the vector wasmtime lifted the guest's list into
    /// always is, from the system allocator) goes to ONNX Runtime as a borrowed view of those
    /// bytes, with no copy and no allocation; the shape stays inline (rank ≤ 4); an output's
    /// FP32 values are copied into its bytes in one go.
    fn run(&self, inputs: Vec<&Tensor>) -> Result<Vec<NamedTensor>, BackendError> {
        let mut values: Vec<ort::session::SessionInputValue<'_>> = Vec::with_capacity(inputs.len());
        for tensor in inputs {
            let shape = ort::tensor::Shape::new(tensor.dimensions.iter().map(|&d| i64::from(d)));
            let value = match fp32_view(&tensor.data) {
                Some(floats) => ort::value::TensorRef::from_array_view((shape, floats)).map(Into::into),
                // Unaligned (or big-endian host): one conversion into an owned vector.
                None => {
                    let data: Vec<f32> = tensor
                        .data
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                    ort::value::Tensor::from_array((shape, data)).map(Into::into)
                }
            }
            .map_err(|e| access(format!("cannot make the input tensor: {e}")))?;
            values.push(value);
        }
        let mut session = self.model.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session
            .run(values.as_slice())
            .map_err(|e| access(format!("ONNX Runtime: {e}")))?;
        let mut named = Vec::with_capacity(self.model.outputs.len());
        for (i, port) in self.model.outputs.iter().enumerate() {
            let (shape, values) = outputs[i].try_extract_tensor::<f32>().map_err(|e| {
                access(format!(
                    "output `{}`: wasi-nn here returns FP32 outputs only ({e})",
                    port.name
                ))
            })?;
            let dimensions = shape
                .iter()
                .map(|&d| u32::try_from(d).map_err(|_| access(format!("output `{}`: dimension {d}", port.name))))
                .collect::<Result<Vec<u32>, _>>()?;
            named.push(NamedTensor {
                name: port.name.clone(),
                tensor: Tensor::new(dimensions, TensorType::Fp32, fp32_bytes(values)),
            });
        }
        Ok(named)
    }
}

/// `data` as FP32 values in place, when it can be: a little-endian host (the tensor's byte
/// order) and 4-aligned data of a length divisible by 4 (checked; `None` otherwise).
fn fp32_view(data: &[u8]) -> Option<&[f32]> {
    if cfg!(target_endian = "little") {
        bytemuck::try_cast_slice(data).ok()
    } else {
        None
    }
}

/// The little-endian bytes of FP32 values (wasi-nn's `tensor-data`): one copy on a
/// little-endian host.
fn fp32_bytes(values: &[f32]) -> Vec<u8> {
    if cfg!(target_endian = "little") {
        bytemuck::cast_slice::<f32, u8>(values).to_vec()
    } else {
        let mut data = Vec::with_capacity(values.len() * 4);
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        data
    }
}

/// Refuses what the ONNX backend cannot take without panicking: a type other than FP32, or
/// data whose length does not match the dimensions.
pub fn check_tensor(tensor: &Tensor) -> Result<(), String> {
    if tensor.ty != TensorType::Fp32 {
        return Err(format!(
            "{} input: the ONNX backend takes only FP32 input tensors",
            type_name(tensor.ty)
        ));
    }
    let elements = tensor
        .dimensions
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d as usize));
    let needed = elements.and_then(|n| n.checked_mul(4));
    if needed != Some(tensor.data.len()) {
        return Err(format!(
            "FP32 input of dimensions {:?} needs {} bytes of data, got {}",
            tensor.dimensions,
            needed.map_or_else(|| "more than addressable".to_string(), |n| n.to_string()),
            tensor.data.len()
        ));
    }
    Ok(())
}

/// The WIT name of a tensor type (`FP32`, `I64`, …).
fn type_name(ty: TensorType) -> &'static str {
    match ty {
        TensorType::Fp16 => "FP16",
        TensorType::Fp32 => "FP32",
        TensorType::Fp64 => "FP64",
        TensorType::Bf16 => "BF16",
        TensorType::U8 => "U8",
        TensorType::I32 => "I32",
        TensorType::I64 => "I64",
    }
}

fn refused(what: String) -> BackendError {
    tracing::warn!("wasi-nn: refused a tensor: {what}");
    BackendError::UnsupportedTensorType(what)
}

fn logged(e: BackendError) -> BackendError {
    tracing::warn!("wasi-nn: inference failed: {}", backend_reason(&e));
    e
}

impl BackendExecutionContext for CheckedContext {
    fn set_input(&mut self, id: Id, tensor: &Tensor) -> Result<(), BackendError> {
        let index = self.input_index(&id)?;
        self.checked(index, tensor)?;
        self.staged[index] = Some(tensor.clone());
        Ok(())
    }

    fn get_output(&mut self, id: Id) -> Result<Tensor, BackendError> {
        let outputs = &self.model.outputs;
        let index = match &id {
            Id::Index(i) => Some(*i as usize),
            Id::Name(n) => outputs.iter().position(|p| &p.name == n),
        };
        index
            .and_then(|i| self.results.get(i))
            .cloned()
            .ok_or_else(|| access(format!("no output {id:?}: unknown, or `compute` has not run")))
    }

    fn compute(&mut self, inputs: Option<Vec<NamedTensor>>) -> Result<Option<Vec<NamedTensor>>, BackendError> {
        match inputs {
            // WIT: the inputs come with the call and the outputs go back with its result.
            Some(inputs) => {
                let mut slots: Vec<Option<&Tensor>> = vec![None; self.model.inputs.len()];
                for input in &inputs {
                    let index = self.input_named(&input.name).ok_or_else(|| {
                        access(format!(
                            "the model has no input {:?} (it has {})",
                            input.name,
                            self.model.inputs.len()
                        ))
                    })?;
                    self.checked(index, &input.tensor)?;
                    slots[index] = Some(&input.tensor);
                }
                let tensors = self.complete(slots)?;
                self.run(tensors).map(Some).map_err(logged)
            }
            // WITX: the inputs were staged by `set-input`; the outputs wait for `get-output`.
            None => {
                let slots: Vec<Option<&Tensor>> = self.staged.iter().map(Option::as_ref).collect();
                let tensors = self.complete(slots)?;
                let outputs = self.run(tensors).map_err(logged)?;
                self.results = outputs.into_iter().map(|o| o.tensor).collect();
                Ok(None)
            }
        }
    }
}

impl CheckedContext {
    /// One tensor per model input, or an error naming the first one missing.
    fn complete<'a>(&self, slots: Vec<Option<&'a Tensor>>) -> Result<Vec<&'a Tensor>, BackendError> {
        slots
            .into_iter()
            .zip(&self.model.inputs)
            .map(|(t, port)| t.ok_or_else(|| refused(format!("input `{}` is missing", port.name))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(dimensions: Vec<u32>, ty: TensorType, len: usize) -> Tensor {
        Tensor::new(dimensions, ty, vec![0; len])
    }

    #[test]
    fn tensors_that_would_panic_the_backend_are_refused() {
        assert_eq!(check_tensor(&tensor(vec![1, 64], TensorType::Fp32, 256)), Ok(()));
        assert_eq!(
            check_tensor(&tensor(vec![1, 64], TensorType::I64, 512)),
            Err("I64 input: the ONNX backend takes only FP32 input tensors".into())
        );
        assert_eq!(
            check_tensor(&tensor(vec![1, 64], TensorType::Fp32, 255)),
            Err("FP32 input of dimensions [1, 64] needs 256 bytes of data, got 255".into())
        );
        assert!(check_tensor(&tensor(vec![u32::MAX, u32::MAX, u32::MAX], TensorType::Fp32, 4)).is_err());
    }

    #[test]
    fn tensor_bytes_are_viewed_in_place_only_when_aligned() {
        let values = [1.5f32, -0.0, f32::MAX, 3.25];
        let bytes = fp32_bytes(&values);
        let reference: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(bytes, reference);
        // A `Vec<u8>` from the system allocator is aligned: viewed in place, the same values.
        let view = fp32_view(&bytes).expect("aligned");
        assert!(view.iter().map(|v| v.to_bits()).eq(values.iter().map(|v| v.to_bits())));
        // Shifted by one byte (unaligned) or cut short: no view, the caller converts.
        let mut shifted = vec![0u8; bytes.len() + 1];
        shifted[1..].copy_from_slice(&bytes);
        assert!(fp32_view(&shifted[1..]).is_none());
        assert!(fp32_view(&bytes[..15]).is_none());
    }

    /// ONNX Runtime for the tests that run it (installed by scripts/setup.sh; fails if absent).
    fn real_onnxruntime() {
        let lib = locate_onnxruntime(None).unwrap_or_else(|e| panic!("{e}"));
        init_onnxruntime(&lib).unwrap_or_else(|e| panic!("{e}"));
    }

    /// A one-node model written by the `onnx` Python package (scripts/setup.sh installs it):
    /// `Cast` of an int64 [1, 4] input to float32.
    fn int64_input_model() -> Vec<u8> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cast.onnx");
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(
                r#"
import sys, onnx
from onnx import helper, TensorProto
x = helper.make_tensor_value_info("X", TensorProto.INT64, [1, 4])
y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])
g = helper.make_graph([helper.make_node("Cast", ["X"], ["Y"], to=TensorProto.FLOAT)], "cast", [x], [y])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8
onnx.save(m, sys.argv[1])
"#,
            )
            .arg(&path)
            .output()
            .expect("python3 (scripts/setup.sh installs onnx)");
        assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::read(path).expect("model")
    }

    #[test]
    fn the_checked_backend_turns_would_be_panics_into_errors() {
        real_onnxruntime();
        let mut backend = CheckedOnnx;
        // A corrupt model (what a guest's graph.load may pass): an error, not a panic.
        let e = backend
            .load(&[b"not an onnx model"], ExecutionTarget::Cpu)
            .err()
            .expect("corrupt model");
        assert!(backend_reason(&e).contains("protobuf"), "{}", backend_reason(&e));
        // An int64 input matching the model reaches the backend's `unimplemented!()` unchecked.
        let graph = backend
            .load(&[&int64_input_model()], ExecutionTarget::Cpu)
            .expect("cast model");
        let mut ctx = graph.init_execution_context().expect("context");
        let ints = Tensor::new(vec![1, 4], TensorType::I64, vec![0; 32]);
        let e = ctx
            .compute_with_io(vec![NamedTensor {
                name: "X".into(),
                tensor: ints.clone(),
            }])
            .err()
            .expect("I64 refused");
        assert_eq!(
            e.to_string(),
            "Unsupported tensor type: input `X`: I64 input: the ONNX backend takes only FP32 input tensors"
        );
        assert!(ctx.set_input(Id::Name("X".into()), &ints).is_err());
        // FP32 data of the wrong length reaches a slice `unwrap` unchecked.
        let short = Tensor::new(vec![1, 4], TensorType::Fp32, vec![0; 15]);
        assert!(ctx.set_input(Id::Index(0), &short).is_err());
        // Dimensions the model does not take, an input it does not have, and FP32 data where
        // the model wants int64 (ONNX Runtime's own refusal): each an error naming why.
        let run = |ctx: &mut ExecutionContext, name: &str, dimensions: Vec<u32>| {
            let tensor = Tensor::new(dimensions, TensorType::Fp32, vec![0; 16]);
            ctx.compute_with_io(vec![NamedTensor {
                name: name.into(),
                tensor,
            }])
            .err()
            .map(|e| backend_reason(&e))
            .expect("refused")
        };
        let e = run(&mut ctx, "X", vec![2, 2]);
        assert!(e.contains("dimensions [2, 2] do not fit the model's [1, 4]"), "{e}");
        let e = run(&mut ctx, "nope", vec![1, 4]);
        assert!(e.contains("the model has no input"), "{e}");
        let e = run(&mut ctx, "X", vec![1, 4]);
        assert!(e.contains("ONNX Runtime"), "{e}");
    }

    #[test]
    fn model_specs_need_a_name_and_a_path() {
        assert_eq!(
            parse_model_spec("digits=target/models/digits.onnx").unwrap(),
            ("digits".to_string(), PathBuf::from("target/models/digits.onnx"))
        );
        for bad in ["digits", "=x.onnx", "digits="] {
            let e = parse_model_spec(bad).unwrap_err().to_string();
            assert!(e.contains("expected NAME=PATH"), "{e}");
        }
    }

    #[test]
    fn an_explicit_library_that_is_not_there_says_what_to_do() {
        let e = locate_onnxruntime(Some(Path::new("/nonexistent/libonnxruntime.so")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--onnxruntime names /nonexistent/libonnxruntime.so"), "{e}");
        assert!(e.contains("scripts/setup.sh"), "{e}");
    }
}
