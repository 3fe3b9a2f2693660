use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::Args;

use super::GraphArgs;

#[derive(Args, Debug)]
pub struct ComposeCmd {
    /// The graph definition (YAML).
    pub graph: PathBuf,
    /// Where to write the composed component.
    #[arg(short, long, default_value = "graph.wasm")]
    pub output: PathBuf,
    #[command(flatten)]
    pub graph_args: GraphArgs,
}

impl ComposeCmd {
    pub fn execute(self) -> Result<ExitCode> {
        let started = std::time::Instant::now();
        let graph = wasmflow_compose::load_graph(&self.graph).map_err(|e| anyhow!("{e}"))?;
        let composed =
            wasmflow_compose::compose(&graph, &self.graph_args.compose_options()).map_err(|e| anyhow!("{e}"))?;
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
