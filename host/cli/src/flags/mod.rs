//! Flag groups several commands share, one place each.

pub mod kafka;
pub mod nn;
pub mod registry;
pub mod transport;

use std::path::{Path, PathBuf};

use anyhow::Result;

use clap::Args;
use wasmflow_compose::{ComposeOptions, Override};

use registry::RegistryArgs;

/// Options shared by every command that reads a graph definition.
#[derive(Args, Debug, Clone)]
pub struct GraphArgs {
    /// Directory of modules named by reference (`…/temperature:1.0.0` → `temperature.wasm`).
    #[arg(long, env = "WASMFLOW_MODULES")]
    pub modules: Option<PathBuf>,
    /// Configuration value for init: `key=value` (every operation declaring it) or `operation.key=value`.
    #[arg(short = 'c', long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<Override>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl GraphArgs {
    /// Compose options from the flags (no registry modules resolved yet).
    pub fn compose_options(&self) -> ComposeOptions {
        ComposeOptions {
            modules_dir: self.modules.clone(),
            default_modules_dir: Some(wasmflow_runtime::default_modules_dir()),
            overrides: self.config.clone(),
            resolved: Default::default(),
        }
    }

    /// Makes `target` local (pulling a registry reference and the modules of a pulled graph
    /// definition into the cache under `data_dir`) and returns it with the compose options
    /// that point at the fetched modules.
    pub fn resolve_target(
        &self,
        target: &Path,
        data_dir: &Path,
        rt: &tokio::runtime::Handle,
    ) -> Result<(PathBuf, ComposeOptions)> {
        let local =
            wasmflow_oci::target::resolve(target, &self.registry.options(), || self.registry.client(data_dir, rt))?;
        let mut options = self.compose_options();
        options.resolved = local.modules;
        Ok((local.path, options))
    }
}
