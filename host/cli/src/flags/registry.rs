//! Registry flags shared by `push`, `pull`, `run`, `compose` and `test`.

use clap::Args;

/// How to reach OCI registries.
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Registry (`host[:port]`) for references that name none, and for the modules of a graph definition.
    #[arg(long, env = "WASMFLOW_REGISTRY")]
    pub registry: Option<String>,
    /// Use plain HTTP (loopback registries — localhost, 127.x, ::1 — use it without this flag).
    #[arg(long)]
    pub insecure: bool,
    /// Registry user (else the credentials in the Docker config.json).
    // Named `registry-…` so the transport flags' `--username`-like names stay free.
    #[arg(long = "registry-username", env = "WASMFLOW_REGISTRY_USERNAME")]
    pub username: Option<String>,
    /// Registry password (prefer WASMFLOW_REGISTRY_PASSWORD: flags show in `ps`).
    #[arg(
        long = "registry-password",
        env = "WASMFLOW_REGISTRY_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// How long to wait for a registry to accept a connection, in seconds.
    #[arg(long = "registry-connect-timeout-secs", value_name = "SECS", default_value_t = 10)]
    pub registry_connect_timeout_secs: u64,
    /// How long a registry may go silent mid-response before the transfer fails, in seconds.
    #[arg(long = "registry-read-timeout-secs", value_name = "SECS", default_value_t = 30)]
    pub registry_read_timeout_secs: u64,
}

#[cfg(feature = "oci")]
impl RegistryArgs {
    /// The registry options from the flags and the environment.
    pub fn options(&self) -> wasmflow_oci::RegistryOptions {
        wasmflow_oci::RegistryOptions {
            registry: self.registry.clone(),
            insecure: self.insecure,
            credentials: wasmflow_oci::Credentials {
                username: self.username.clone(),
                password: self.password.clone(),
                token: std::env::var("WASMFLOW_REGISTRY_TOKEN").ok().filter(|t| !t.is_empty()),
            },
            timeouts: wasmflow_oci::Timeouts {
                connect: std::time::Duration::from_secs(self.registry_connect_timeout_secs),
                read: std::time::Duration::from_secs(self.registry_read_timeout_secs),
            },
        }
    }

    /// A registry client caching under `data_dir`, running on `rt`, drawing progress bars.
    pub fn client(
        &self,
        data_dir: &std::path::Path,
        rt: &tokio::runtime::Handle,
    ) -> Result<wasmflow_oci::Oci, wasmflow_oci::OciError> {
        Ok(wasmflow_oci::Oci::new(data_dir, self.options(), rt.clone())?
            .with_progress(std::sync::Arc::new(crate::progress::Bars)))
    }
}
