use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::Args;

use crate::flags::GraphArgs;

#[derive(Args, Debug)]
pub struct InspectCmd {
    /// A graph definition (YAML) or a composed graph (.wasm).
    pub target: PathBuf,
    #[command(flatten)]
    pub graph_args: GraphArgs,
}

impl InspectCmd {
    pub fn execute(self) -> Result<ExitCode> {
        let is_wasm = self.target.extension().is_some_and(|e| e == "wasm");
        let text = if is_wasm {
            let bytes = std::fs::read(&self.target).with_context(|| format!("reading {}", self.target.display()))?;
            wasmflow_compose::inspect_component(&bytes).map_err(|e| anyhow!("{}: {e}", self.target.display()))?
        } else {
            let options = self.graph_args.compose_options();
            let graph = wasmflow_compose::load_graph_with(&self.target, &options.limits).map_err(|e| anyhow!("{e}"))?;
            let composed = wasmflow_compose::compose(&graph, &options).map_err(|e| anyhow!("{e}"))?;
            wasmflow_compose::inspect_component(&composed.bytes).map_err(|e| anyhow!("{e}"))?
        };
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
        Ok(ExitCode::SUCCESS)
    }
}
