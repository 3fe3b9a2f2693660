use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use wasmflow_oci::TagPolicy;
use wasmflow_runtime::RuntimeConfig;

use crate::flags::registry::RegistryArgs;

#[derive(Args, Debug)]
pub struct PullCmd {
    /// `host[:port]/repository:tag` or `…@sha256:<digest>` (tags are resolved again; digests come from the cache when there).
    pub reference: String,
    /// Also write the artifact (the component or the graph definition) to this file.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Data directory holding the cache (`<data-dir>/oci`).
    #[arg(long, env = "WASMFLOW_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl PullCmd {
    pub fn execute(self, rt: &tokio::runtime::Handle) -> Result<ExitCode> {
        let data_dir = self.data_dir.clone().unwrap_or_else(RuntimeConfig::default_data_dir);
        let mut oci = self.registry.client(&data_dir, rt)?;
        let pulled = oci.pull(&self.reference, TagPolicy::Resolve)?;
        eprintln!(
            "{} {} ({}) {}",
            if pulled.fetched { "pulled" } else { "cached" },
            pulled.reference,
            pulled.kind,
            pulled.path.display()
        );
        if let Some(out) = &self.output {
            std::fs::copy(&pulled.path, out)
                .with_context(|| format!("writing {} to {}", pulled.reference, out.display()))?;
        }
        println!("{}", pulled.digest);
        Ok(ExitCode::SUCCESS)
    }
}
