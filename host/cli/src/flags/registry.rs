//! Registry flags shared by `push`, `pull`, `run`, `compose` and `test`.

use std::path::Path;
use std::sync::Arc;

use clap::Args;
use wasmflow_oci::{Credentials, Oci, OciError, RegistryOptions};

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
    /// The registry options from the flags and the environment.
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

    /// A registry client caching under `data_dir`, running on `rt`, drawing progress bars.
    pub fn client(&self, data_dir: &Path, rt: &tokio::runtime::Handle) -> Result<Oci, OciError> {
        Ok(Oci::new(data_dir, self.options(), rt.clone())?.with_progress(Arc::new(crate::progress::Bars)))
    }
}
