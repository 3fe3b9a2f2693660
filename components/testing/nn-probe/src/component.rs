//! The component: the `load` and `infer` exports over the `wasi:nn` imports.

use std::cell::RefCell;

use wasi::nn::graph::{self, ExecutionTarget, GraphEncoding};
use wasi::nn::inference::GraphExecutionContext;
use wasi::nn::tensor::{Tensor, TensorType};

wit_bindgen::generate!({
    world: "nn-probe",
    path: "../../../wit/samples",
    generate_all,
});

thread_local! {
    /// The execution context `load` made (kept for the instance's life, as the snapshot map's).
    static CONTEXT: RefCell<Option<GraphExecutionContext>> = const { RefCell::new(None) };
}

fn nn_error(step: &str, e: wasi::nn::errors::Error) -> String {
    format!("wasi-nn {step} failed ({:?}: {})", e.code(), e.data())
}

struct Probe;

impl Guest for Probe {
    fn load(name: Option<String>, model: Vec<u8>) -> Result<(), String> {
        let graph = match &name {
            Some(name) => graph::load_by_name(name).map_err(|e| nn_error(&format!("load-by-name `{name}`"), e))?,
            None => {
                graph::load(&[model], GraphEncoding::Onnx, ExecutionTarget::Cpu).map_err(|e| nn_error("load", e))?
            }
        };
        let context = graph
            .init_execution_context()
            .map_err(|e| nn_error("init-execution-context", e))?;
        CONTEXT.with(|slot| *slot.borrow_mut() = Some(context));
        Ok(())
    }

    fn infer(input: Vec<f32>) -> Result<Vec<f32>, String> {
        CONTEXT.with(|slot| {
            let slot = slot.borrow();
            let context = slot.as_ref().ok_or("`load` was not called")?;
            let tensor = Tensor::new(&[1, input.len() as u32], TensorType::Fp32, &crate::f32_bytes(&input));
            let outputs = context
                .compute(vec![("0".to_string(), tensor)])
                .map_err(|e| nn_error("compute", e))?;
            let (_, first) = outputs.first().ok_or("the model returned no output")?;
            crate::f32_values(&first.data()).ok_or_else(|| "the first output is not FP32 data".to_string())
        })
    }
}

export!(Probe);
