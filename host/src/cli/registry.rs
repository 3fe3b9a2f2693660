//! Registry flags shared by `push`, `pull`, `run`, `compose` and `test`.

use std::path::Path;

use anyhow::Result;
use clap::Args;
use wasmflow_compose::ComposeOptions;
use wasmflow_host::oci::{target, Credentials, RegistryOptions};

use super::GraphArgs;

/// How to reach OCI registries.
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Registry (`host[:port]`) for references that name none, and for the modules of a graph definition.
    #[arg(long, env = "WASMFLOW_REGISTRY")]
    pub registry: Option<String>,
    /// Use plain HTTP (loopback registries — localhost, 127.x, ::1 — use it without this flag).
    #[arg(long)]
    pub insecure: bool,
    /// Registry user (else the Docker config.json). Named `registry-…` so transport flags stay free.
    #[arg(long = "registry-username", env = "WASMFLOW_REGISTRY_USERNAME")]
    pub username: Option<String>,
    /// Registry password (prefer WASMFLOW_REGISTRY_PASSWORD: flags show in `ps`).
    #[arg(
        long = "registry-password",
        env = "WASMFLOW_REGISTRY_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
}

impl RegistryArgs {
    pub fn options(&self) -> RegistryOptions {
        RegistryOptions {
            registry: self.registry.clone(),
            insecure: self.insecure,
            credentials: Credentials {
                username: self.username.clone(),
                password: self.password.clone(),
                token: std::env::var("WASMFLOW_REGISTRY_TOKEN").ok().filter(|t| !t.is_empty()),
            },
        }
    }
}

impl GraphArgs {
    /// Makes `target` local (pulling a registry reference and the modules of a pulled graph
    /// definition into the cache under `data_dir`) and returns it with the compose options
    /// that point at the fetched modules.
    pub fn resolve_target(&self, target: &Path, data_dir: &Path) -> Result<(std::path::PathBuf, ComposeOptions)> {
        let local = target::resolve(target, data_dir, &self.registry.options())?;
        let mut options = self.compose_options();
        options.resolved = local.modules;
        Ok((local.path, options))
    }
}
