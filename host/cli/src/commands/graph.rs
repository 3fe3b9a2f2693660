use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use wasmflow_diagram::Diagram;
use wasmflow_resources::resolve::ArtifactLocation;
use wasmflow_resources::ResolveOptions;

use crate::flags::{GraphArgs, ResourceArgs};

#[derive(Args, Debug)]
pub struct GraphCmd {
    /// A graph definition (YAML), a composed graph (.wasm), or files of resources with
    /// DataflowGraphs (each drawn with its artifact's operations when the artifact can be
    /// found: --modules, --registry, or its RegistryEndpoint).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// What to write.
    #[arg(long, default_value = "svg", value_parser = ["svg", "mermaid", "dot"])]
    pub format: String,
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Draw only the DataflowGraph of this name (default: every one in the file).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    #[command(flatten)]
    pub graph_args: GraphArgs,
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Where pulled artifacts are cached.
    #[arg(long, env = "WASMFLOW_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl GraphCmd {
    pub fn execute(self, rt: &tokio::runtime::Handle) -> Result<ExitCode> {
        let diagram = if self.files.iter().any(|f| wasmflow_resources::is_resource_file(f)) {
            self.dataflows(rt)?
        } else {
            let [file] = self.files.as_slice() else {
                bail!(
                    "{} files: `graph` draws one graph, or the DataflowGraphs of resource files",
                    self.files.len()
                );
            };
            if file.extension().and_then(|e| e.to_str()) == Some("wasm") {
                let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
                let m = wasmflow_compose::Manifest::from_component(&bytes)
                    .map_err(|e| anyhow!("{}: {e}", file.display()))?
                    .ok_or_else(|| anyhow!("{} is not a composed wasmflow graph", file.display()))?;
                Diagram::from_manifest(&m, &self.graph_args.config)
            } else {
                let g = wasmflow_compose::load_graph(file).map_err(|e| anyhow!("{e}"))?;
                Diagram::from_graph(&g, &self.graph_args.config)
            }
        };
        let text = match self.format.as_str() {
            "mermaid" => diagram.to_mermaid(),
            "dot" => diagram.to_dot(),
            _ => diagram.to_svg(),
        };
        match &self.output {
            Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
            None => std::io::stdout().write_all(text.as_bytes())?,
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The DataflowGraphs of the file, each with its artifact drawn in when it can be had.
    fn dataflows(&self, rt: &tokio::runtime::Handle) -> Result<Diagram> {
        let deployment = wasmflow_resources::load(&self.files)?;
        let options = ResolveOptions {
            registry: self.graph_args.registry.registry.clone(),
            modules_dir: self.graph_args.modules.clone(),
            secrets: self.resources.secrets.iter().cloned().collect(),
        };
        let mut pictures = Vec::new();
        for g in &deployment.graphs {
            if self.name.as_ref().is_some_and(|n| n != g.name()) {
                continue;
            }
            let inner = match wasmflow_resources::resolve::artifact(&deployment, g, &options) {
                Ok(location) => match self.definition(&location, rt) {
                    Ok(path) => {
                        let def = wasmflow_compose::load_graph(&path).map_err(|e| anyhow!("{e}"))?;
                        let mut overrides = Diagram::overrides(g);
                        overrides.extend(self.graph_args.config.iter().cloned());
                        Some(Diagram::from_graph(&def, &overrides))
                    }
                    Err(e) => {
                        tracing::warn!("{}: the artifact is drawn as one node: {e:#}", g.origin);
                        None
                    }
                },
                Err(e) => {
                    tracing::warn!("the artifact is drawn as one node: {e}");
                    None
                }
            };
            pictures.push(Diagram::from_dataflow(g, inner));
        }
        if pictures.is_empty() {
            bail!("no DataflowGraph named `{}`", self.name.as_deref().unwrap_or_default());
        }
        Ok(Diagram::combine(pictures))
    }

    /// The artifact's graph definition on this machine (pulled, without its modules).
    fn definition(&self, location: &ArtifactLocation, rt: &tokio::runtime::Handle) -> Result<PathBuf> {
        match location {
            ArtifactLocation::Local(p) => Ok(p.clone()),
            #[cfg(feature = "oci")]
            ArtifactLocation::Registry {
                reference, plain_http, ..
            } => {
                let mut options = self.graph_args.registry.options();
                options.insecure |= *plain_http;
                let data_dir = self
                    .data_dir
                    .clone()
                    .unwrap_or_else(wasmflow_runtime::RuntimeConfig::default_data_dir);
                let mut oci = wasmflow_oci::Oci::new(&data_dir, options, rt.clone())?;
                let r = oci.parse(reference)?;
                Ok(oci
                    .pull_parsed(&r, wasmflow_oci::TagPolicy::CachedWhenUnreachable)?
                    .path)
            }
            #[cfg(not(feature = "oci"))]
            ArtifactLocation::Registry { reference, .. } => {
                let _ = rt;
                bail!("`{reference}` is in a registry, and this wasmflow was built without registry support")
            }
        }
    }
}
