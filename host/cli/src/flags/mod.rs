//! Flag groups several commands share, one place each.

#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "wasi-nn")]
pub mod nn;
#[cfg(feature = "otel")]
pub mod otel;
pub mod registry;
#[cfg(feature = "redis")]
pub mod state;
pub mod transport;

use std::path::{Path, PathBuf};

use anyhow::Result;

use clap::Args;
use wasmflow_compose::{ComposeOptions, Override, Routing};
use wasmflow_runtime::services::schema_registry::{Schema, Schemas};

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
    /// The most operations a graph may have. Raising it sizes the host's instance pool to
    /// match (for operators as large as a componentize-py one); past what one component can
    /// hold (about 164 operations) composing fails with the count it would need.
    #[arg(long, value_name = "N", default_value_t = wasmflow_compose::DEFAULT_MAX_OPERATIONS as u32,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_operations: u32,
    /// Who moves items between a graph's operations: `host` (this host calls each operation),
    /// or `composed` (a router composed into the graph calls them, component to component; the
    /// composed graph then also exports `wasmflow:graph/graph`).
    #[arg(long, value_name = "host|composed", default_value_t = Routing::Host)]
    pub router: Routing,
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
            limits: wasmflow_compose::Limits {
                max_operations: self.max_operations as usize,
                ..Default::default()
            },
            routing: self.router,
        }
    }

    /// Engine limits whose instance pool fits the graphs these flags let through.
    pub fn engine_limits(&self) -> wasmflow_runtime::engine::EngineLimits {
        wasmflow_runtime::engine::EngineLimits {
            max_operations: self.max_operations,
            ..Default::default()
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
        #[cfg(feature = "oci")]
        {
            let local =
                wasmflow_oci::target::resolve(target, &self.registry.options(), || self.registry.client(data_dir, rt))?;
            let mut options = self.compose_options();
            options.resolved = local.modules;
            Ok((local.path, options))
        }
        #[cfg(not(feature = "oci"))]
        {
            let _ = (data_dir, rt);
            if !target.exists() && self.registry.registry.is_some() {
                anyhow::bail!(
                    "{}: this wasmflow was built without registry support (the `oci` feature)",
                    target.display()
                );
            }
            Ok((target.to_path_buf(), self.compose_options()))
        }
    }
}

/// Schemas handed to modules at run time (`run`, `test`).
#[derive(Args, Debug, Clone, Default)]
pub struct SchemaArgs {
    /// A JSON schema for the schema registry and every module's `init` (`module-schemas`),
    /// as `NAME=FILE`; repeatable. Replaces the definition's schema of the same name.
    #[arg(long = "schema", value_name = "NAME=FILE", value_parser = Schemas::parse_spec)]
    pub schemas: Vec<Schema>,
}

/// What resource files (DataflowGraph, DataflowEndpoint, RegistryEndpoint) need from the
/// machine they run on (`run`, `graph`).
#[derive(Args, Debug, Clone, Default)]
pub struct ResourceArgs {
    /// The files of a Kubernetes secret or ConfigMap an endpoint names (a CA ConfigMap, an
    /// X509Certificate or SASL secret), as `NAME=PATH`: a directory holding its keys as files,
    /// as Kubernetes mounts it (`tls.crt`/`tls.key`, `username`/`password`), or for a CA
    /// ConfigMap the PEM file itself; repeatable.
    #[arg(long = "secret", value_name = "NAME=PATH", value_parser = parse_secret)]
    pub secrets: Vec<(String, PathBuf)>,
}

fn parse_secret(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok((name.to_owned(), PathBuf::from(path))),
        _ => Err(format!("`{s}`: expected NAME=PATH")),
    }
}
