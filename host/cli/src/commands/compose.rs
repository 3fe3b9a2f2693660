use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::Args;

use crate::flags::GraphArgs;

#[derive(Args, Debug)]
pub struct ComposeCmd {
    /// The graph definition (YAML), or a registry reference to one.
    pub graph: PathBuf,
    /// Where to write the composed component.
    #[arg(short, long, default_value = "graph.wasm")]
    pub output: PathBuf,
    #[command(flatten)]
    pub graph_args: GraphArgs,
}

impl ComposeCmd {
    pub fn execute(self, rt: &tokio::runtime::Handle) -> Result<ExitCode> {
        let started = std::time::Instant::now();
        let data_dir = wasmflow_runtime::RuntimeConfig::default_data_dir();
        let (path, options) = self.graph_args.resolve_target(&self.graph, &data_dir, rt)?;
        let graph = wasmflow_compose::load_graph_with(&path, &options.limits).map_err(|e| anyhow!("{e}"))?;
        let composed = wasmflow_compose::compose(&graph, &options).map_err(|e| anyhow!("{e}"))?;
        std::fs::write(&self.output, &composed.bytes).with_context(|| format!("writing {}", self.output.display()))?;
        eprintln!(
            "composed {} operations of `{}` into {} ({} bytes, {:.0?})",
            composed.manifest.operations.len(),
            composed.manifest.name,
            self.output.display(),
            composed.bytes.len(),
            started.elapsed()
        );
        Ok(ExitCode::SUCCESS)
    }
}
