use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use wasmflow_compose::ComposedCache;
use wasmflow_delivery::lines::{LineOptions, LineStats};
use wasmflow_delivery::scale;
use wasmflow_delivery::update::{ReloadOptions, Reloader, Target, Updates};
use wasmflow_runtime::engine::EngineLimits;
use wasmflow_runtime::graph::{Graph, RunOptions};
use wasmflow_runtime::services::metrics::Metrics;
use wasmflow_runtime::store::WasiGrants;
use wasmflow_runtime::{load_graph_cached, LoadedGraph, Runtime, RuntimeConfig};
use wasmflow_transport::health::Health;
use wasmflow_transport::lines::InputFormat;

use crate::flags::transport::TransportArgs;
use crate::flags::GraphArgs;

#[path = "run_dataflow.rs"]
mod dataflow;

#[derive(Args, Debug)]
pub struct RunCmd {
    /// A graph definition (YAML), a composed graph (.wasm), or a registry reference to either;
    /// or files of resources (DataflowGraph, DataflowEndpoint, RegistryEndpoint in Kubernetes
    /// YAML, several documents a file), whose DataflowGraphs all run in this process.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<PathBuf>,
    /// Newline-delimited messages to feed the graph's source (`-` for standard input) instead
    /// of a broker; outputs are printed as JSON lines.
    #[arg(long)]
    pub input: Option<String>,
    /// Input lines are JSON envelopes with topic, payload and user-properties.
    #[arg(long)]
    pub envelope: bool,
    /// Topic of input lines that do not name one.
    #[arg(long, default_value = "input")]
    pub topic: String,
    /// Data directory (compiled-code cache, state store).
    #[arg(long, env = "WASMFLOW_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Seed the state store from a JSON object file before starting.
    #[arg(long)]
    pub state_seed: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9090).
    #[arg(long)]
    pub metrics: Option<std::net::SocketAddr>,
    /// Print items that operators rejected as dead letters (with the error and operation).
    #[arg(long)]
    pub dead_letter: bool,
    /// Longest one operator call may run, in milliseconds (it is interrupted less than 100 ms
    /// after: the epoch clock ticks every 50 ms).
    #[arg(long, default_value_t = 5000)]
    pub call_timeout_ms: u64,
    /// Largest memory one module may use, in MiB (1 to 4096, wasm32's whole address space).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_memory_mib: u32,
    /// Largest memory all the graph's modules may use together, in MiB (1 to 65536).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_graph_memory_mib: u32,
    /// When no input arrives for this long (ms), advance event time to the wall clock.
    #[arg(long, default_value_t = 1000)]
    pub idle_ms: u64,
    /// Load the target again when it changes (a local file's contents, a registry tag's
    /// digest), looking every --watch-interval-secs, and switch to the new version without
    /// stopping (SIGHUP always does the same, once). Only with brokers, not --input.
    #[arg(long, conflicts_with = "input")]
    pub watch: bool,
    /// How often --watch looks at the target.
    #[arg(long, value_name = "SECS", default_value_t = 10, requires = "watch",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub watch_interval_secs: u64,
    /// Grant modules an environment variable (`KEY=VALUE`, or `KEY` to pass the host's).
    #[arg(long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Grant modules read-only access to a host directory (`HOST[::GUEST]`).
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    pub dirs: Vec<String>,
    /// Let modules write to standard error.
    #[arg(long)]
    pub inherit_stderr: bool,
    #[command(flatten)]
    pub graph_args: GraphArgs,
    #[command(flatten)]
    pub transport: TransportArgs,
    #[command(flatten)]
    pub schemas: crate::flags::SchemaArgs,
    #[cfg(feature = "wasi-nn")]
    #[command(flatten)]
    pub nn: crate::flags::nn::NnArgs,
    #[command(flatten)]
    pub resources: crate::flags::ResourceArgs,
    #[cfg(feature = "otel")]
    #[command(flatten)]
    pub otlp: crate::flags::otel::OtlpArgs,
    #[cfg(feature = "redis")]
    #[command(flatten)]
    pub state: crate::flags::state::StateArgs,
}

impl RunCmd {
    /// The runtime on `--state`'s store (the embedded one by default) with metrics labelled
    /// `instance`, and what `/readyz` checks: the state store now, broker connections once bound.
    fn runtime(
        &self,
        config: &RuntimeConfig,
        instance: &str,
        rt: &tokio::runtime::Handle,
    ) -> Result<(Runtime, Health)> {
        #[cfg(feature = "redis")]
        let shared_state = self.state.connect(rt)?;
        #[cfg(not(feature = "redis"))]
        let shared_state = {
            let _ = rt;
            None
        };
        let runtime = match shared_state {
            Some(state) => Runtime::with_state(config, state)?,
            None => Runtime::new(config)?,
        };
        let runtime = runtime.with_metrics(Metrics::with_instance(instance));
        let health = Health::default();
        let state = runtime.state.clone();
        health.probe(format!("state store {}", state.describe()), move || {
            let state = state.clone();
            Box::pin(async move { state.check().await.map_err(|e| e.to_string()) })
        });
        Ok((runtime, health))
    }
}

impl RunCmd {
    /// The WASI grants the flags ask for; a `KEY` alone passes the host's value (error if unset).
    fn wasi_grants(&self) -> Result<WasiGrants> {
        let mut env = Vec::new();
        for e in &self.env {
            match e.split_once('=') {
                Some((k, v)) => env.push((k.to_owned(), v.to_owned())),
                None => env.push((
                    e.clone(),
                    std::env::var(e).map_err(|_| anyhow::anyhow!("--env {e}: not set in this environment"))?,
                )),
            }
        }
        let dirs = self
            .dirs
            .iter()
            .map(|d| match d.split_once("::") {
                Some((host, guest)) => (PathBuf::from(host), guest.to_owned()),
                None => (PathBuf::from(d), d.clone()),
            })
            .collect();
        Ok(WasiGrants {
            env,
            dirs,
            inherit_stderr: self.inherit_stderr,
        })
    }
}

impl RunCmd {
    pub fn execute(self, rt: &tokio::runtime::Handle, otlp: Option<&crate::commands::Otlp>) -> Result<ExitCode> {
        if self.targets.iter().any(|t| wasmflow_resources::is_resource_file(t)) {
            return dataflow::execute(self, rt, otlp);
        }
        let [given] = self.targets.as_slice() else {
            anyhow::bail!(
                "{} targets: `run` takes one graph, or resource files (DataflowGraph, …) whose graphs all run together",
                self.targets.len()
            );
        };
        // Malformed Kafka flags are refused before the graph is composed and started; the
        // binding reads them again with the graph's name for the default group.
        #[cfg(feature = "kafka")]
        self.transport
            .kafka
            .config("", Duration::from_secs(self.transport.connect_timeout_secs))?;
        let config = RuntimeConfig {
            data_dir: self.data_dir.clone().unwrap_or_else(RuntimeConfig::default_data_dir),
            ephemeral_state: false,
            cache_dir: None,
            limits: EngineLimits {
                max_memory_bytes: mib(self.max_memory_mib),
                ..self.graph_args.engine_limits()
            },
        };
        let instance = self.transport.instance();
        let (runtime, health) = self.runtime(&config, &instance, rt)?;
        #[cfg(feature = "wasi-nn")]
        let runtime = runtime.with_wasi_nn(self.nn.options());
        if let Some(seed) = &self.state_seed {
            let n = runtime.state.seed_from_json(seed)?;
            tracing::info!("seeded {n} state keys from {}", seed.display());
        }
        let (target, compose) = self.graph_args.resolve_target(given, &config.data_dir, rt)?;
        let cache = ComposedCache::new(config.data_dir.join("composed"));
        let loaded = load_graph_cached(&target, &compose, Some(&cache))?;
        let options = RunOptions {
            call_timeout: Duration::from_millis(self.call_timeout_ms),
            max_memory: mib(self.max_memory_mib),
            max_graph_memory: mib(self.max_graph_memory_mib),
            overrides: self.graph_args.config.clone(),
            dead_letter: self.dead_letter || self.transport.dead_letter_topic.is_some(),
            wasi: self.wasi_grants()?,
            schemas: self.schemas.schemas.clone(),
            routing: self.graph_args.router,
            ..RunOptions::default()
        };
        let started = std::time::Instant::now();
        let (mut graph, cache) = runtime.start(&loaded, options.clone())?;
        tracing::info!(graph = %loaded.manifest.name, ?cache, "started in {:.1?}", started.elapsed());

        let picture = wasmflow_diagram::Diagram::from_manifest(graph.manifest(), &self.graph_args.config);
        let _observed = self.observe(&runtime, vec![picture], &[graph.manifest()], &health, otlp, rt)?;

        let Some(input) = self.input.clone() else {
            let idle = Duration::from_millis(self.idle_ms);
            let this = Instance {
                name: &instance,
                state: runtime.state.describe(),
                health: &health,
            };
            // SIGHUP (and --watch) load the target again beside the running graph.
            let target = RunTarget {
                cmd: &self,
                target: given,
                runtime: &runtime,
                data_dir: &config.data_dir,
                rt,
                options,
            };
            let watch = self.watch.then(|| Duration::from_secs(self.watch_interval_secs));
            let reloader = Reloader::new(target, ReloadOptions { watch }, &loaded);
            return std::thread::scope(|s| {
                let (updates_tx, updates) = tokio::sync::mpsc::channel(1);
                let (stop, stopped) = tokio::sync::watch::channel(false);
                s.spawn(move || reloader.run(rt, stopped, updates_tx));
                let r = run_bound(&self.transport, &mut graph, &config.data_dir, idle, rt, this, updates);
                let _ = stop.send(true);
                r
            });
        };
        let reader: Box<dyn BufRead + Send> = if input == "-" {
            Box::new(std::io::BufReader::new(std::io::stdin()))
        } else {
            let f = std::fs::File::open(&input).with_context(|| format!("opening --input {input}"))?;
            Box::new(std::io::BufReader::new(f))
        };
        // Ctrl-C or SIGTERM ends the run between lines.
        let interrupted = wasmflow_delivery::shutdown_signal(rt, "stopping on a signal");
        let options = LineOptions {
            format: if self.envelope {
                InputFormat::Envelope
            } else {
                InputFormat::Payload
            },
            topic: self.topic.clone(),
            idle: Duration::from_millis(self.idle_ms),
            name: input.clone(),
        };
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let LineStats { read, bad, .. } =
            wasmflow_delivery::lines::run(&mut graph, reader, &options, &mut out, interrupted)?;
        tracing::info!(read, bad, rebuilds = graph.rebuilds(), "done");
        Ok(ExitCode::SUCCESS)
    }
}

impl RunCmd {
    /// Serves `/metrics` and the picture of the running graphs with their counts at `/graph`
    /// (`--metrics`), and exports wasmflow's own metrics over `otlp` (`--otlp`; stops exporting
    /// when the returned value is dropped).
    fn observe(
        &self,
        runtime: &wasmflow_runtime::Runtime,
        pictures: Vec<wasmflow_diagram::Diagram>,
        manifests: &[&wasmflow_compose::Manifest],
        health: &Health,
        otlp: Option<&crate::commands::Otlp>,
        rt: &tokio::runtime::Handle,
    ) -> Result<Observed> {
        let operations: Vec<(String, String)> = manifests
            .iter()
            .flat_map(|m| m.operations.iter().map(|o| (m.name.clone(), o.name.clone())))
            .collect();
        if let Some(addr) = self.metrics {
            let metrics = runtime.metrics.clone();
            let picture = wasmflow_diagram::Diagram::combine(pictures);
            let ops = operations.clone();
            runtime.metrics.add_page(
                "/graph",
                "image/svg+xml",
                std::sync::Arc::new(move || {
                    let mut d = picture.clone();
                    for (graph, op) in &ops {
                        let c = metrics.node_counts(graph, op);
                        d.set_counts(
                            graph,
                            op,
                            wasmflow_diagram::Counts {
                                messages_in: c.messages_in,
                                messages_out: c.messages_out,
                                dropped: c.dropped,
                                errors: c.errors,
                            },
                        );
                    }
                    d.to_svg()
                }),
            );
            let bound = rt.block_on(runtime.metrics.clone().serve_with_health(addr, health.clone()))?;
            tracing::info!(
                "metrics on http://{bound}/metrics, health on /healthz and /readyz, the graph with live counts on http://{bound}/graph"
            );
        }
        #[cfg(feature = "otel")]
        if let Some(collector) = otlp {
            let metrics = runtime.metrics.clone();
            let counts: wasmflow_otel::telemetry::Counts = std::sync::Arc::new(move || {
                operations
                    .iter()
                    .map(|(graph, op)| {
                        let c = metrics.node_counts(graph, op);
                        wasmflow_otel::telemetry::NodeCount {
                            graph: graph.clone(),
                            operation: op.clone(),
                            messages_in: c.messages_in,
                            messages_out: c.messages_out,
                            dropped: c.dropped,
                            errors: c.errors,
                            traps: c.traps,
                        }
                    })
                    .collect()
            });
            let _in_runtime = rt.enter();
            let interval = Duration::from_secs(self.otlp.otlp_interval_secs);
            let own = wasmflow_otel::telemetry::OwnMetrics::start(collector, interval, counts)?;
            tracing::info!("exporting wasmflow's metrics to {} every {interval:?}", collector.url());
            return Ok(Observed(Some(own)));
        }
        #[cfg(not(feature = "otel"))]
        let _ = otlp;
        Ok(Observed::default())
    }
}

/// What [`RunCmd::observe`] keeps running; dropping it makes the last OTLP export.
#[derive(Default)]
struct Observed(#[cfg(feature = "otel")] Option<wasmflow_otel::telemetry::OwnMetrics>);

impl Drop for Observed {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(own) = self.0.take() {
            own.shutdown();
        }
    }
}

/// Who this process is among the instances of a graph, for the start line and `/readyz`.
struct Instance<'a> {
    name: &'a str,
    state: &'a str,
    health: &'a Health,
}

/// Binds the graph to its brokers and runs it until Ctrl-C / SIGTERM.
fn run_bound(
    args: &TransportArgs,
    graph: &mut Graph,
    data_dir: &std::path::Path,
    idle: Duration,
    rt: &tokio::runtime::Handle,
    instance: Instance<'_>,
    updates: Updates,
) -> Result<ExitCode> {
    // With no broker given, the graph talks to one of its own (it lives until the process exits).
    let url = match &args.mqtt {
        Some(url) => Some(url.clone()),
        None if args.kafka_brokers().is_none() => Some(embedded_broker(args, rt)?),
        None => None,
    };
    let mut binding = args.binding(&graph.manifest().name, url.as_deref())?;
    scale::check_windows(graph.manifest(), &binding)?;
    binding.report_health_to(instance.health);
    tracing::info!(
        instance = instance.name,
        "instance `{}` of graph `{}`: {}; state store {}",
        instance.name,
        graph.manifest().name,
        scale::describe(&binding),
        instance.state
    );
    tracing::info!(
        sources = ?binding.sources.iter().map(|e| &e.topic).collect::<Vec<_>>(),
        sink = ?binding.sink.as_ref().map(|e| &e.topic),
        "bound to {}",
        [url.clone(), args.kafka_brokers().map(|k| format!("kafka {k}"))]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" and ")
    );
    let options = wasmflow_delivery::pump::PumpOptions {
        idle,
        ..Default::default()
    };
    let stats = wasmflow_delivery::run_with_updates(graph, data_dir, &binding, &options, rt, None, Some(updates))?;
    tracing::info!(
        received = stats.received,
        sent = stats.sent,
        dead_letters = stats.dead_letters,
        "done"
    );
    Ok(ExitCode::SUCCESS)
}

/// Starts the embedded MQTT broker on `--listen`; its URL.
#[cfg(feature = "mqtt")]
fn embedded_broker(args: &TransportArgs, rt: &tokio::runtime::Handle) -> Result<String> {
    use crate::flags::transport::{DEFAULT_SINK, DEFAULT_SOURCE};
    let broker = wasmflow_mqtt::broker::EmbeddedBroker::start(args.listen, rt)?;
    tracing::info!(
        "embedded MQTT broker (3.1.1 and 5) on {}: publish to {}, subscribe to {}",
        broker.addr(),
        args.sources.first().map_or(DEFAULT_SOURCE, String::as_str),
        args.sink.as_deref().unwrap_or(DEFAULT_SINK),
    );
    Ok(broker.url())
}

/// Without MQTT built in there is no embedded broker: a run needs `--kafka` or `--input`.
#[cfg(not(feature = "mqtt"))]
fn embedded_broker(_args: &TransportArgs, _rt: &tokio::runtime::Handle) -> Result<String> {
    anyhow::bail!(
        "no broker: give --kafka or --input (this wasmflow was built without MQTT, so it has no embedded broker)"
    )
}

/// Mebibytes as bytes (the flags' bounds keep it within `usize`).
fn mib(n: u32) -> usize {
    (n as usize) << 20
}

/// The run's target as the hot-update reloader sees it: resolved (pulled) and composed as at
/// start, started by the same runtime with the same options.
struct RunTarget<'a> {
    cmd: &'a RunCmd,
    target: &'a std::path::Path,
    runtime: &'a Runtime,
    data_dir: &'a std::path::Path,
    rt: &'a tokio::runtime::Handle,
    options: RunOptions,
}

impl Target for RunTarget<'_> {
    /// Boxed by the reloader with its context chain, which the log line prints in full.
    type Error = anyhow::Error;

    fn name(&self) -> String {
        self.target.display().to_string()
    }

    /// The resolved file's contents and the files of the modules pulled for it (cached by
    /// digest, so a moved tag names other files); a module found in a modules directory is
    /// not looked at (SIGHUP composes anyway).
    fn fingerprint(&mut self) -> Result<String> {
        let (path, compose) = self
            .cmd
            .graph_args
            .resolve_target(self.target, self.data_dir, self.rt)?;
        let mut bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        for (reference, file) in &compose.resolved {
            bytes.extend_from_slice(reference.as_bytes());
            bytes.extend_from_slice(file.as_os_str().as_encoded_bytes());
        }
        Ok(wasmflow_delivery::update::version_of(&bytes))
    }

    fn load(&mut self) -> Result<LoadedGraph> {
        let (path, compose) = self
            .cmd
            .graph_args
            .resolve_target(self.target, self.data_dir, self.rt)?;
        let cache = ComposedCache::new(self.data_dir.join("composed"));
        Ok(load_graph_cached(&path, &compose, Some(&cache))?)
    }

    fn start(&mut self, graph: &LoadedGraph) -> Result<Graph> {
        Ok(self.runtime.start(graph, self.options.clone())?.0)
    }
}
