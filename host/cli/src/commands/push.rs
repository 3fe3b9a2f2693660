use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use wasmflow_runtime::RuntimeConfig;

use crate::flags::registry::RegistryArgs;

#[derive(Args, Debug)]
pub struct PushCmd {
    /// A component (`.wasm`: an operator module or a composed graph) or a graph definition (YAML).
    pub file: PathBuf,
    /// Where to push: `host[:port]/repository:tag` (or `repository:tag` with --registry).
    pub reference: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl PushCmd {
    pub fn execute(self, rt: &tokio::runtime::Handle) -> Result<ExitCode> {
        let mut oci = self.registry.client(&RuntimeConfig::default_data_dir(), rt)?;
        let pushed = oci.push(&self.file, &self.reference)?;
        eprintln!(
            "pushed {} ({}, {} bytes) to {}",
            self.file.display(),
            pushed.kind,
            pushed.size,
            pushed.reference
        );
        println!("{}", pushed.digest);
        Ok(ExitCode::SUCCESS)
    }
}
