use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use wasmflow_compose::{ComposedCache, Override};
use wasmflow_golden::{discover, GoldenTest};
use wasmflow_runtime::graph::RunOptions;
use wasmflow_runtime::services::schema_registry::Schema;
use wasmflow_runtime::services::state_store::SetCondition;
use wasmflow_runtime::{load_graph_cached, Runtime, RuntimeConfig};

use crate::flags::GraphArgs;

#[derive(Args, Debug)]
pub struct TestCmd {
    /// Test descriptors (`*.test.yaml`) or folders to search for them.
    #[arg(default_value = "tests/golden")]
    pub paths: Vec<PathBuf>,
    /// Data directory (the compiled-code cache; state is in memory for tests).
    #[arg(long, env = "WASMFLOW_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub graph_args: GraphArgs,
    #[command(flatten)]
    pub schemas: crate::flags::SchemaArgs,
    #[cfg(feature = "wasi-nn")]
    #[command(flatten)]
    pub nn: crate::flags::nn::NnArgs,
}

impl TestCmd {
    pub fn execute(self, rt: &tokio::runtime::Handle) -> Result<ExitCode> {
        let descriptors = discover(&self.paths)?;
        if descriptors.is_empty() {
            return Err(anyhow!("no test descriptors (*.test.yaml) found in {:?}", self.paths));
        }
        let data_dir = self.data_dir.clone().unwrap_or_else(RuntimeConfig::default_data_dir);
        let (mut passed, mut failed) = (0, 0);
        for file in descriptors {
            let started = Instant::now();
            let label = file.display().to_string();
            match self.run_one(&file, &data_dir, rt) {
                Ok((name, Ok(()))) => {
                    passed += 1;
                    println!("PASS {name} ({label}, {:.0?})", started.elapsed());
                }
                Ok((name, Err(diff))) => {
                    failed += 1;
                    println!("FAIL {name} ({label}): {diff}");
                }
                Err(e) => {
                    failed += 1;
                    println!("FAIL {label}: {e:#}");
                }
            }
        }
        println!("{passed} passed, {failed} failed");
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    fn run_one(
        &self,
        file: &std::path::Path,
        data_dir: &std::path::Path,
        rt: &tokio::runtime::Handle,
    ) -> Result<(String, Result<(), String>)> {
        let t = GoldenTest::load(file)?;
        // A fresh in-memory state store per test, so tests cannot leak into each other.
        let config = RuntimeConfig {
            data_dir: data_dir.to_path_buf(),
            ephemeral_state: true,
            cache_dir: None,
            limits: self.graph_args.engine_limits(),
        };
        let runtime = Runtime::new(&config)?;
        #[cfg(feature = "wasi-nn")]
        let runtime = runtime.with_wasi_nn(self.nn.options());
        for (key, value) in &t.seed {
            runtime
                .state
                .set(key, value, None, SetCondition::Unconditional, None)
                .with_context(|| format!("{}: seeding the state store", file.display()))?;
        }
        // The scenario's schema file, then `--schema` (which wins for a name given twice).
        let mut schemas: Vec<Schema> = t
            .schemas
            .iter()
            .map(|s| Schema {
                name: s.name.clone(),
                content_type: s.content_type.clone(),
                content: s.content.clone(),
            })
            .collect();
        schemas.extend(self.schemas.schemas.iter().cloned());
        let mut overrides = self.graph_args.config.clone();
        for c in &t.config {
            overrides.push(Override::parse(c).map_err(|e| anyhow!("{}: config: {e}", file.display()))?);
        }
        let (graph_file, mut compose) = self.graph_args.resolve_target(&t.graph, data_dir, rt)?;
        compose.overrides = overrides.clone();
        let cache = ComposedCache::new(data_dir.join("composed"));
        let loaded = load_graph_cached(&graph_file, &compose, Some(&cache))?;
        let started = Instant::now();
        let (mut graph, _) = runtime.start(
            &loaded,
            RunOptions {
                overrides,
                schemas,
                routing: self.graph_args.router,
                ..Default::default()
            },
        )?;
        let mut outputs = Vec::new();
        for input in t.inputs()? {
            outputs.extend(graph.push(None, input)?);
        }
        outputs.extend(graph.flush()?);
        Ok((t.name.clone(), t.compare(&outputs, started)))
    }
}
