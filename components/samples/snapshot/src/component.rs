//! Component glue on the SDK: the map, branch and accumulate operators, and the wasi-nn calls
//! (bindings of the `wasi:nn` imports alone: world `wasmflow:samples/nn`).

use std::cell::RefCell;

use sample_common::glue::{bytes_of, config_value, copy_timestamp, error, finish_init, log_init, string_of};
use wasm_graph_sdk::macros::{accumulate_operator, branch_operator, map_operator};

use wasi::nn::graph::{self, ExecutionTarget, GraphEncoding};
use wasi::nn::inference::GraphExecutionContext;
use wasi::nn::tensor::{Tensor, TensorType};

wit_bindgen::generate!({
    world: "nn",
    path: "../../../wit/samples",
    generate_all,
});

/// The digits classifier `build.rs` embedded (`scripts/build-model.py`).
static EMBEDDED_MODEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/model.onnx"));

const MAP: &str = "snapshot/map";
const BRANCH: &str = "snapshot/branch";
const ACCUMULATE: &str = "snapshot/accumulate";

/// What the map was configured with (each operation is its own instance).
struct MapConfig {
    /// A model the host preloaded (`graph.load-by-name`); the embedded model when `None`.
    model: Option<String>,
    labels: Vec<String>,
    /// Topic of the messages the map emits.
    topic: String,
}

thread_local! {
    static CONFIG: RefCell<Option<MapConfig>> = const { RefCell::new(None) };
    /// The loaded model's execution context, made on the first item (kept: the session stays
    /// loaded for the instance's life).
    static CONTEXT: RefCell<Option<GraphExecutionContext>> = const { RefCell::new(None) };
    static SNAPSHOT_TOPIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn nn_error(step: &str, e: wasi::nn::errors::Error) -> String {
    format!("wasi-nn {step} failed ({:?}: {})", e.code(), e.data())
}

/// The execution context of the configured model, loading it on first use.
fn with_context<R>(f: impl FnOnce(&GraphExecutionContext) -> Result<R, String>) -> Result<R, String> {
    CONTEXT.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            let model = CONFIG.with(|c| c.borrow().as_ref().and_then(|c| c.model.clone()));
            let graph = match &model {
                Some(name) => graph::load_by_name(name).map_err(|e| nn_error(&format!("load-by-name `{name}`"), e))?,
                None => {
                    if EMBEDDED_MODEL.is_empty() {
                        return Err("this build embeds no model; set the `model` parameter".into());
                    }
                    graph::load(&[EMBEDDED_MODEL.to_vec()], GraphEncoding::Onnx, ExecutionTarget::Cpu)
                        .map_err(|e| nn_error("load of the embedded model", e))?
                }
            };
            let context = graph
                .init_execution_context()
                .map_err(|e| nn_error("init-execution-context", e))?;
            *slot = Some(context);
        }
        match slot.as_ref() {
            Some(context) => f(context),
            None => Err("the model is not loaded".into()),
        }
    })
}

/// Runs the model on one 8×8 input and returns the best label.
fn classify(input: &[f32; crate::SIDE * crate::SIDE]) -> Result<String, String> {
    let labels = CONFIG.with(|c| c.borrow().as_ref().map(|c| c.labels.clone()));
    let labels = labels.ok_or("the map was not initialised")?;
    with_context(|context| {
        let tensor = Tensor::new(
            &[1, (crate::SIDE * crate::SIDE) as u32],
            TensorType::Fp32,
            &crate::f32_bytes(input),
        );
        // "0": the model's first input, whatever it is named.
        let outputs = context
            .compute(vec![("0".to_string(), tensor)])
            .map_err(|e| nn_error("compute", e))?;
        let (_, first) = outputs.first().ok_or("the model returned no output")?;
        crate::best_label(&first.data(), &labels)
    })
}

fn emit(timestamp: Timestamp, label: &str) -> DataModel {
    let topic = CONFIG
        .with(|c| c.borrow().as_ref().map(|c| c.topic.clone()))
        .unwrap_or_default();
    DataModel::Message(Message {
        timestamp,
        topic: BufferOrBytes::Bytes(topic.into_bytes()),
        content_type: Some(BufferOrString::String(sample_common::glue::JSON.to_owned())),
        payload: BufferOrBytes::Bytes(crate::object_record(label)),
        properties: MessageProperties {
            user_properties: Vec::new(),
        },
        schema: None,
    })
}

fn map_init(configuration: ModuleConfiguration) -> bool {
    let outcome = crate::parse_labels(config_value(&configuration, "labels")).map(|labels| {
        let model = config_value(&configuration, "model")
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        let topic = config_value(&configuration, "snapshot_topic")
            .filter(|t| !t.is_empty())
            .unwrap_or("snapshot")
            .to_owned();
        let detail = format!(
            "model: {}, {} labels",
            model
                .as_deref()
                .map_or("embedded".to_string(), |m| format!("`{m}` (preloaded by the host)")),
            labels.len()
        );
        CONFIG.with(|c| *c.borrow_mut() = Some(MapConfig { model, labels, topic }));
        CONTEXT.with(|c| *c.borrow_mut() = None);
        detail
    });
    finish_init(MAP, &configuration, outcome)
}

#[map_operator(init = "map_init")]
fn classify_image(message: DataModel) -> Result<DataModel, Error> {
    let fail = |e: String| error(format!("{MAP}: {e}"));
    let (timestamp, gray) = match message {
        DataModel::Snapshot(snapshot) => {
            let format = string_of(&snapshot.format).map_err(fail)?;
            let gray = crate::frame_to_gray(&format, snapshot.width, snapshot.height, &bytes_of(&snapshot.frame))
                .map_err(fail)?;
            (snapshot.timestamp, gray)
        }
        DataModel::Message(message) => {
            let gray = crate::decode_image(&bytes_of(&message.payload)).map_err(fail)?;
            (message.timestamp, gray)
        }
        DataModel::BufferOrBytes(_) => {
            return Err(fail(
                "expects a snapshot or a message (the label takes its timestamp), got a bare payload".into(),
            ))
        }
    };
    let label = classify(&crate::to_model_input(&gray)).map_err(fail)?;
    Ok(emit(copy_timestamp(&timestamp), &label))
}

fn branch_init(configuration: ModuleConfiguration) -> bool {
    log_init(BRANCH, &configuration);
    let topic = config_value(&configuration, "snapshot_topic")
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    SNAPSHOT_TOPIC.with(|t| *t.borrow_mut() = topic);
    true
}

#[branch_operator(init = "branch_init")]
fn is_image(_timestamp: HybridLogicalClock, message: DataModel) -> Result<bool, Error> {
    Ok(match &message {
        DataModel::Snapshot(_) => true,
        DataModel::Message(message) => {
            let on_topic = SNAPSHOT_TOPIC.with(|t| {
                t.borrow()
                    .as_deref()
                    .is_some_and(|topic| bytes_of(&message.topic).as_ref() == topic.as_bytes())
            });
            on_topic || crate::looks_like_image(&bytes_of(&message.payload))
        }
        DataModel::BufferOrBytes(payload) => crate::looks_like_image(&bytes_of(payload)),
    })
}

fn accumulate_init(configuration: ModuleConfiguration) -> bool {
    log_init(ACCUMULATE, &configuration);
    true
}

#[accumulate_operator(init = "accumulate_init")]
fn join_labels(staged: DataModel, message: Vec<DataModel>) -> Result<DataModel, Error> {
    sample_common::glue::accumulate(ACCUMULATE, staged, message, crate::accumulate)
}
