use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use wasmflow_host::graph::RunOptions;
use wasmflow_host::hlc::Hlc;
use wasmflow_host::host_state::WasiGrants;
use wasmflow_host::jsonl::{output_json, parse_line, InputFormat};
use wasmflow_host::runtime::{load_graph, Runtime, RuntimeConfig};

use super::GraphArgs;

#[derive(Args, Debug)]
pub struct RunCmd {
    /// A graph definition (YAML), a composed graph (.wasm), or a registry reference to either.
    pub target: PathBuf,
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
    /// Longest one operator call may run, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub call_timeout_ms: u64,
    /// Largest memory one module may use, in MiB.
    #[arg(long, default_value_t = 256)]
    pub max_memory_mib: usize,
    /// When no input arrives for this long (ms), advance event time to the wall clock.
    #[arg(long, default_value_t = 1000)]
    pub idle_ms: u64,
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
    pub transport: super::transport::TransportArgs,
    #[command(flatten)]
    pub nn: super::nn::NnArgs,
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

enum Event {
    Line(usize, String),
    End,
    Failed(std::io::Error),
}

impl RunCmd {
    pub fn execute(self) -> Result<ExitCode> {
        let config = RuntimeConfig {
            data_dir: self.data_dir.clone().unwrap_or_else(RuntimeConfig::default_data_dir),
            ephemeral_state: false,
            cache_dir: None,
            limits: wasmflow_host::engine::EngineLimits {
                max_memory_bytes: self.max_memory_mib << 20,
                ..Default::default()
            },
        };
        let mut runtime = Runtime::new(&config)?;
        runtime.set_wasi_nn(self.nn.options());
        if let Some(seed) = &self.state_seed {
            let n = runtime.state.seed_from_json(seed)?;
            tracing::info!("seeded {n} state keys from {}", seed.display());
        }
        let (target, compose) = self.graph_args.resolve_target(&self.target, &config.data_dir)?;
        let loaded = load_graph(&target, &compose)?;
        let options = RunOptions {
            call_timeout: Duration::from_millis(self.call_timeout_ms),
            max_memory: self.max_memory_mib << 20,
            overrides: self.graph_args.config.clone(),
            dead_letter: self.dead_letter || self.transport.dead_letter_topic.is_some(),
            wasi: self.wasi_grants()?,
            ..RunOptions::default()
        };
        let started = std::time::Instant::now();
        let (mut graph, cache) = runtime.start(&loaded, options)?;
        tracing::info!(graph = %loaded.manifest.name, ?cache, "started in {:.1?}", started.elapsed());

        let _metrics_server = match self.metrics {
            Some(addr) => {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                let metrics = runtime.metrics.clone();
                let (bound, _) = rt.block_on(metrics.serve(addr))?;
                tracing::info!("metrics on http://{bound}/metrics");
                let handle = std::thread::spawn(move || rt.block_on(std::future::pending::<()>()));
                Some(handle)
            }
            None => None,
        };

        let Some(input) = self.input.clone() else {
            let idle = Duration::from_millis(self.idle_ms);
            return super::transport::run_bound(&self.transport, &mut graph, &config.data_dir, idle);
        };
        let (tx, rx) = mpsc::channel::<Event>();
        std::thread::spawn(move || {
            let reader: Box<dyn BufRead> = if input == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                match std::fs::File::open(&input) {
                    Ok(f) => Box::new(std::io::BufReader::new(f)),
                    Err(e) => {
                        let _ = tx.send(Event::Failed(std::io::Error::new(e.kind(), format!("{input}: {e}"))));
                        return;
                    }
                }
            };
            for (i, line) in reader.lines().enumerate() {
                match line {
                    Ok(l) => {
                        if tx.send(Event::Line(i + 1, l)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Event::Failed(e));
                        return;
                    }
                }
            }
            let _ = tx.send(Event::End);
        });
        // Ctrl-C or SIGTERM ends the run between lines, windows flushed; a small runtime of its
        // own, driven on its own thread, watches for them.
        let signals = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let interrupted = wasmflow_host::bind::shutdown_signal(&signals, "stopping on a signal");
        std::thread::spawn(move || signals.block_on(std::future::pending::<()>()));

        let format = if self.envelope {
            InputFormat::Envelope
        } else {
            InputFormat::Payload
        };
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let print = |outputs: Vec<wasmflow_host::graph::Output>, out: &mut dyn Write| -> Result<()> {
            for o in outputs {
                writeln!(out, "{}", output_json(&o))?;
            }
            out.flush()?;
            Ok(())
        };
        let (mut read, mut bad) = (0usize, 0usize);
        let idle = Duration::from_millis(self.idle_ms);
        loop {
            if *interrupted.borrow() {
                tracing::info!("interrupted; {} items were waiting in open windows", graph.pending());
                break;
            }
            match rx.recv_timeout(idle) {
                Ok(Event::Line(n, line)) => match parse_line(&line, n, format, &self.topic) {
                    Ok(Some(input)) => {
                        read += 1;
                        let outputs = graph.push(None, input)?;
                        print(outputs, &mut out)?;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        bad += 1;
                        tracing::warn!("{}: {e}", self.input.as_deref().unwrap_or("-"));
                    }
                },
                Ok(Event::End) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let outputs = graph.flush()?;
                    print(outputs, &mut out)?;
                    break;
                }
                Ok(Event::Failed(e)) => return Err(e).context("reading input"),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let outputs = graph.advance_to(&Hlc::now("wasmflow"))?;
                    print(outputs, &mut out)?;
                }
            }
        }
        tracing::info!(read, bad, rebuilds = graph.rebuilds(), "done");
        Ok(ExitCode::SUCCESS)
    }
}
