//! `run` flags for a state store shared with other processes (`--state redis://…`). Parsing
//! only: `wasmflow_state_store` connects. Without `--state` the embedded store in the data
//! directory is used, as before.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use wasmflow_state_store::{RedisConfig, StateStore, DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT};

/// Environment variable the Redis password may come from (else `--state-password-file`).
pub const PASSWORD_ENV: &str = "WASMFLOW_STATE_PASSWORD";

#[derive(Args, Debug, Clone)]
pub struct StateArgs {
    /// A Redis-protocol server (Redis, Valkey) holding the state store, shared with every
    /// process that names it: `redis://HOST[:PORT][/DB]`, `rediss://…` for TLS, an ACL user as
    /// `redis://USER@HOST`. Default: the embedded store in the data directory (this process only).
    #[arg(long, env = "WASMFLOW_STATE", value_name = "URL")]
    pub state: Option<String>,
    /// File holding the state store's password (else the WASMFLOW_STATE_PASSWORD environment
    /// variable; never the URL).
    #[arg(long, value_name = "FILE", requires = "state")]
    pub state_password_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the state store's certificate (`rediss://` with a
    /// private CA; default: the system's roots).
    #[arg(long, value_name = "FILE", requires = "state")]
    pub state_ca: Option<PathBuf>,
    /// How long connecting to the state store may take, at start and on each reconnect.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_CONNECT_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub state_connect_timeout_secs: u64,
    /// Read timeout: a state-store call not answered within this many milliseconds fails with
    /// `timeout` (the operator sees the error; the item is not lost to the store).
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_READ_TIMEOUT.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub state_read_timeout_ms: u64,
}

impl StateArgs {
    /// The shared store these flags name, connected on `rt`; `None` for the embedded one.
    pub fn connect(&self, rt: &tokio::runtime::Handle) -> Result<Option<StateStore>> {
        let Some(url) = &self.state else {
            return Ok(None);
        };
        let mut config = RedisConfig::new(url)?;
        config.password =
            wasmflow_transport::secret::from_file_or_env(self.state_password_file.as_deref(), PASSWORD_ENV)
                .context("--state-password-file")?;
        config.ca = self.state_ca.clone();
        config.connect_timeout = Duration::from_secs(self.state_connect_timeout_secs);
        config.read_timeout = Duration::from_millis(self.state_read_timeout_ms);
        Ok(Some(StateStore::connect_redis(config, rt)?))
    }
}
