//! The wasi-nn flags `run` and `test` share.

use std::path::PathBuf;

use clap::Args;
use wasmflow_runtime::services::wasi_nn::{parse_model_spec, NnError, NnOptions};

/// Where ONNX Runtime is and which models to preload (used only by graphs importing wasi:nn).
#[derive(Args, Debug, Clone, Default)]
pub struct NnArgs {
    /// ONNX Runtime shared library for wasi-nn (default: $ORT_DYLIB_PATH, else where scripts/setup.sh installs it).
    #[arg(long, value_name = "PATH")]
    pub onnxruntime: Option<PathBuf>,
    /// Preload an ONNX model for wasi-nn's graph.load-by-name (repeatable).
    #[arg(long = "model", value_name = "NAME=PATH", value_parser = parse_model)]
    pub models: Vec<(String, PathBuf)>,
}

fn parse_model(spec: &str) -> Result<(String, PathBuf), NnError> {
    parse_model_spec(spec)
}

impl NnArgs {
    /// The runtime's wasi-nn options from the flags.
    pub fn options(&self) -> NnOptions {
        NnOptions {
            onnxruntime: self.onnxruntime.clone(),
            models: self.models.clone(),
        }
    }
}
