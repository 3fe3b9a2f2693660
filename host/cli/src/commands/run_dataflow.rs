//! `run` with resource files: every DataflowGraph among them runs in this process, each
//! endpoint connected once (`wasmflow_delivery::deployment`). Everything that can fail is
//! checked before anything connects: the files (`wasmflow_resources::load`), the references
//! between them (`resolve`), every artifact pulled and composed, every graph started.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use wasmflow_compose::{ComposeOptions, Override};
use wasmflow_delivery::deployment::{self, EndpointContext, EndpointTopic, GraphRun, SourceBinding};
use wasmflow_delivery::journal::WindowJournal;
use wasmflow_delivery::pump::PumpOptions;
use wasmflow_delivery::schema::ConnectionCheck;
use wasmflow_resources::model::{DataflowGraph, Mode, Persistence, SchemaRef, DEFAULT_ENDPOINT};
#[cfg(feature = "mqtt")]
use wasmflow_resources::resolve::Connection;
use wasmflow_resources::resolve::{ArtifactLocation, GraphPlan};
use wasmflow_resources::ResolveOptions;
use wasmflow_runtime::engine::EngineLimits;
use wasmflow_runtime::graph::RunOptions;
use wasmflow_runtime::{load_graph, Runtime, RuntimeConfig};

use super::{mib, RunCmd};

pub(super) fn execute(
    cmd: RunCmd,
    rt: &tokio::runtime::Handle,
    otlp: Option<&crate::commands::Otlp>,
) -> Result<ExitCode> {
    for (given, flag) in [
        (cmd.input.is_some(), "--input"),
        (!cmd.transport.sources.is_empty(), "--source"),
        (cmd.transport.sink.is_some(), "--sink"),
        (cmd.transport.kafka_brokers().is_some(), "--kafka"),
        (cmd.watch, "--watch"),
    ] {
        if given {
            bail!("{flag}: with resource files, the DataflowGraphs' nodes and DataflowEndpoints say what is read and written");
        }
    }
    let deployment = wasmflow_resources::load(&cmd.targets)?;
    for w in &deployment.warnings {
        tracing::warn!("{w}");
    }
    let options = ResolveOptions {
        registry: cmd.graph_args.registry.registry.clone(),
        modules_dir: cmd.graph_args.modules.clone(),
        secrets: cmd.resources.secrets.iter().cloned().collect(),
    };
    let mut plan = wasmflow_resources::resolve(&deployment, &options)?;
    if let Some(topic) = &cmd.transport.dead_letter_topic {
        let c = wasmflow_resources::resolve::connection(&deployment, DEFAULT_ENDPOINT, &options)
            .map_err(|why| anyhow!("--dead-letter-topic {topic} goes to the `{DEFAULT_ENDPOINT}` endpoint: {why}"))?;
        plan.endpoints.entry(DEFAULT_ENDPOINT.to_owned()).or_insert(c);
    }

    let config = RuntimeConfig {
        data_dir: cmd.data_dir.clone().unwrap_or_else(RuntimeConfig::default_data_dir),
        ephemeral_state: false,
        cache_dir: None,
        limits: EngineLimits {
            max_memory_bytes: mib(cmd.max_memory_mib),
            ..cmd.graph_args.engine_limits()
        },
    };
    let (runtime, health) = cmd.runtime(&config, &cmd.transport.instance(), rt)?;
    #[cfg(feature = "wasi-nn")]
    let runtime = runtime.with_wasi_nn(cmd.nn.options());
    if let Some(seed) = &cmd.state_seed {
        let n = runtime.state.seed_from_json(seed)?;
        tracing::info!("seeded {n} state keys from {}", seed.display());
    }

    // Every artifact pulled and composed, every graph started, before anything connects.
    let mut runs = Vec::new();
    let mut pictures = Vec::new();
    for gp in &plan.graphs {
        let g = &gp.graph;
        let (path, compose) = artifact(&cmd, gp, &config.data_dir, rt)?;
        let mut loaded = load_graph(&path, &compose).with_context(|| {
            format!(
                "{}, node `{}`: graph artifact `{}` ({})",
                g.origin,
                g.processor.name,
                g.processor.artifact.written,
                path.display()
            )
        })?;
        // Logs, metrics and the window journal know the graph by its resource's name.
        loaded.manifest.name = g.name().to_owned();
        if g.mode == Mode::Disabled {
            tracing::info!(
                "{}: mode Disabled: its artifact is loaded and valid ({} operations); not started",
                g.origin,
                loaded.manifest.operations.len()
            );
            continue;
        }
        let options = RunOptions {
            call_timeout: Duration::from_millis(cmd.call_timeout_ms),
            max_memory: mib(cmd.max_memory_mib),
            max_graph_memory: mib(cmd.max_graph_memory_mib),
            overrides: compose.overrides.clone(),
            dead_letter: cmd.dead_letter || cmd.transport.dead_letter_topic.is_some(),
            wasi: cmd.wasi_grants()?,
            schemas: cmd.schemas.schemas.clone(),
            ..RunOptions::default()
        };
        let (graph, cache) = runtime
            .start(&loaded, options)
            .with_context(|| format!("{}", g.origin))?;
        tracing::info!(graph = %g.name(), ?cache, artifact = %g.processor.artifact.written, "started");
        let inner = wasmflow_diagram::Diagram::from_manifest(graph.manifest(), &compose.overrides);
        pictures.push(wasmflow_diagram::Diagram::from_dataflow(g, Some(inner)));
        let journal = match g.persistence {
            Persistence::Disk => WindowJournal::open(&journal_path(&config.data_dir, g.name()), g.name())?,
            Persistence::Memory => WindowJournal::in_memory(g.name()),
        };
        let check = |s: &SchemaRef| connection_check(&cmd, &runtime, g, s);
        runs.push(GraphRun {
            name: g.name().to_owned(),
            journal,
            sources: g
                .sources
                .iter()
                .map(|s| {
                    Ok(SourceBinding {
                        endpoint: s.endpoint.clone(),
                        filters: s.data_sources.clone(),
                        check: s.schema.as_ref().map(check).transpose()?,
                    })
                })
                .collect::<Result<_>>()?,
            destination: EndpointTopic {
                endpoint: g.destination.endpoint.clone(),
                topic: g.destination.topic.clone(),
            },
            output_check: g.processor.schema.as_ref().map(check).transpose()?,
            dead_letter: cmd.transport.dead_letter_topic.as_ref().map(|topic| EndpointTopic {
                endpoint: DEFAULT_ENDPOINT.to_owned(),
                topic: topic.clone(),
            }),
            options: PumpOptions {
                idle: Duration::from_millis(cmd.idle_ms),
                ..Default::default()
            },
            graph,
        });
    }
    if runs.is_empty() {
        tracing::info!("no DataflowGraph is Enabled: nothing to run");
        return Ok(ExitCode::SUCCESS);
    }

    let cx = EndpointContext {
        #[cfg(feature = "mqtt")]
        local_broker: local_broker(&cmd, &plan.endpoints, rt)?,
        connect_timeout: Duration::from_secs(cmd.transport.connect_timeout_secs),
        #[cfg(feature = "otel")]
        otlp: {
            let (connect_timeout, request_timeout) = cmd.otlp.timeouts();
            deployment::OtlpContext {
                headers: cmd.otlp.headers()?,
                connect_timeout,
                request_timeout,
            }
        },
        metrics: &runtime.metrics,
        rt,
    };
    let mut endpoints = BTreeMap::new();
    for (name, c) in &plan.endpoints {
        let e = deployment::endpoint_config(c, &cx).with_context(|| format!("endpoint `{name}`"))?;
        endpoints.insert(name.clone(), e);
    }
    let manifests: Vec<_> = runs.iter().map(|r| r.graph.manifest().clone()).collect();
    let _observed = cmd.observe(
        &runtime,
        pictures,
        &manifests.iter().collect::<Vec<_>>(),
        &health,
        otlp,
        rt,
    )?;
    for r in &runs {
        tracing::info!(
            graph = %r.name,
            sources = ?r.sources.iter().map(|s| format!("{}: {}", s.endpoint, s.filters.join(", "))).collect::<Vec<_>>(),
            destination = %format!("{}: {}", r.destination.endpoint, r.destination.topic),
            "bound"
        );
    }
    let stats = deployment::run(runs, endpoints, rt, None)?;
    for (name, s) in stats {
        tracing::info!(graph = %name, received = s.received, sent = s.sent, dead_letters = s.dead_letters, "done");
    }
    Ok(ExitCode::SUCCESS)
}

/// The graph definition of `gp`'s artifact on this machine, and the compose options (module
/// lookup, the graph node's `configuration` then `-c` as overrides) for it.
fn artifact(
    cmd: &RunCmd,
    gp: &GraphPlan,
    data_dir: &Path,
    rt: &tokio::runtime::Handle,
) -> Result<(PathBuf, ComposeOptions)> {
    let g = &gp.graph;
    let mut compose = cmd.graph_args.compose_options();
    compose.overrides = g
        .processor
        .configuration
        .iter()
        .map(|(key, value)| Override {
            operation: None,
            key: key.clone(),
            value: value.clone(),
        })
        .chain(cmd.graph_args.config.iter().cloned())
        .collect();
    match &gp.artifact {
        ArtifactLocation::Local(path) => Ok((path.clone(), compose)),
        #[cfg(feature = "oci")]
        ArtifactLocation::Registry {
            reference,
            registry,
            plain_http,
            via,
        } => {
            let mut options = cmd.graph_args.registry.options();
            options.insecure |= *plain_http;
            let client = || {
                Ok(wasmflow_oci::Oci::new(data_dir, options.clone(), rt.clone())?
                    .with_progress(std::sync::Arc::new(crate::progress::Bars)))
            };
            let local = wasmflow_oci::target::resolve(Path::new(reference), &options, client).with_context(|| {
                format!(
                    "{}, node `{}`, field `graphSettings.artifact`: pulling `{reference}` from registry {registry} ({via})",
                    g.origin, g.processor.name
                )
            })?;
            compose.resolved = local.modules;
            Ok((local.path, compose))
        }
        #[cfg(not(feature = "oci"))]
        ArtifactLocation::Registry { reference, .. } => {
            let _ = (data_dir, rt);
            bail!(
                "{}, node `{}`: `{reference}` is in a registry, and this wasmflow was built without registry support (the `oci` feature); give --modules DIR",
                g.origin,
                g.processor.name
            )
        }
    }
}

/// `<data-dir>/dataflows/<graph>/windows.redb`: one journal per graph (a redb file is opened
/// by one handle at a time).
fn journal_path(data_dir: &Path, graph: &str) -> PathBuf {
    let safe: String = graph
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    data_dir.join("dataflows").join(safe).join("windows.redb")
}

/// The check of a connection that names a schema: the schema given with `--schema NAME=FILE`
/// under the `schemaRef` as written, or under its name without the `:version`.
fn connection_check(cmd: &RunCmd, runtime: &Runtime, g: &DataflowGraph, s: &SchemaRef) -> Result<ConnectionCheck> {
    let bare = s.name.split(':').next().unwrap_or(&s.name);
    let schema = cmd
        .schemas
        .schemas
        .iter()
        .rev()
        .find(|x| x.name == s.name || x.name == bare)
        .ok_or_else(|| {
            anyhow!(
                "{}, connection `{}`, field `from.schema.schemaRef`: schema `{}` is not known: give its file with --schema {}=FILE",
                g.origin,
                s.connection,
                s.name,
                s.name
            )
        })?;
    let counter = runtime
        .metrics
        .host_counter("schema_violations", "Items that broke their connection's schema")
        .get_or_create(&vec![
            ("graph".to_owned(), g.name().to_owned()),
            ("connection".to_owned(), s.connection.clone()),
        ])
        .clone();
    ConnectionCheck::new(g.name(), &s.name, &s.connection, &schema.content, counter)
        .map_err(|e| anyhow!("{}, connection `{}`: {e}", g.origin, s.connection))
}

/// The broker `default` names: `--mqtt`, else an embedded one on `--listen`; only when a graph
/// (or the dead-letter topic) uses it.
#[cfg(feature = "mqtt")]
fn local_broker(
    cmd: &RunCmd,
    endpoints: &BTreeMap<String, Connection>,
    rt: &tokio::runtime::Handle,
) -> Result<Option<wasmflow_mqtt::MqttConfig>> {
    if !endpoints.values().any(|c| *c == Connection::DefaultBroker) {
        return Ok(None);
    }
    let url = match &cmd.transport.mqtt {
        Some(url) => url.clone(),
        None => {
            let broker = wasmflow_mqtt::broker::EmbeddedBroker::start(cmd.transport.listen, rt)?;
            tracing::info!(
                "embedded MQTT broker (3.1.1 and 5) on {}: the `{DEFAULT_ENDPOINT}` endpoint",
                broker.addr()
            );
            broker.url()
        }
    };
    Ok(cmd.transport.binding(DEFAULT_ENDPOINT, Some(&url))?.mqtt)
}
