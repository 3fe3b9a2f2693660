//! The subcommands, one module each: a clap struct with an `execute` that wires flags to the
//! libraries (as in `wasmtime-cli`'s `commands/`). Flag groups several commands share are in
//! `flags/`.

mod compose;
mod graph;
mod inspect;
mod new;
#[cfg(feature = "oci")]
mod pull;
#[cfg(feature = "oci")]
mod push;
mod run;
mod test;

use std::num::NonZeroUsize;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Streaming data-flow graphs of WebAssembly components.
#[derive(Parser, Debug)]
#[command(name = "wasmflow", version)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Worker threads of the process's I/O runtime (transports, the metrics endpoint, registry
    /// transfers); graphs run on threads of their own.
    ///
    /// With one, a message crosses threads twice (source → graph → sink), as in a hand-written
    /// relay. A second worker is woken to steal nearly every task: 16 % more CPU per message at
    /// 2,000 msg/s in wasmflow's broker benchmark. More help when one process serves many busy
    /// connections.
    #[arg(long, global = true, env = "WASMFLOW_IO_THREADS", value_name = "N", default_value_t = NonZeroUsize::MIN)]
    pub io_threads: NonZeroUsize,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compile a graph definition (YAML) into one composed component.
    Compose(compose::ComposeCmd),
    /// Show a graph's world, operations and parameters (a definition or a composed .wasm).
    Inspect(inspect::InspectCmd),
    /// Draw a graph definition, a composed graph or DataflowGraph resources (SVG, Mermaid, DOT).
    Graph(graph::GraphCmd),
    /// Run a graph bound to MQTT topics (--mqtt, --source, --sink), or on --input lines; or the
    /// DataflowGraphs of resource files over their endpoints.
    // Boxed: its flags (graph, run, transport) make it several times larger than the others.
    Run(Box<run::RunCmd>),
    /// Run golden-file tests: a graph, an input folder, expected JSON.
    Test(test::TestCmd),
    /// Create an operator project (Rust on the SDK, or --python) with a graph and a golden test.
    New(new::NewCmd),
    /// Push a component or graph definition to an OCI registry; prints the manifest digest.
    #[cfg(feature = "oci")]
    Push(push::PushCmd),
    /// Pull an artifact into the local cache (and optionally to a file); prints its digest.
    #[cfg(feature = "oci")]
    Pull(pull::PullCmd),
}

/// Logs to standard error: `-v`/`-vv` or `RUST_LOG` choose how much. With `traces` (`run
/// --otlp`), the spans of `wasmflow_transport::TRACE_TARGET` go to OTLP; the log never shows
/// them.
pub fn init_tracing(verbose: u8, traces: Option<&Traces>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let default = match verbose {
        // The embedded broker logs every connection, and every client that leaves, as errors
        // included: quiet unless asked (its start-up failures are wasmflow's own records).
        0 => "info,rumqttd=off",
        1 => "debug,rumqttd=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
        .add_directive(
            format!("{}=off", wasmflow_transport::TRACE_TARGET)
                .parse()
                .expect("a valid directive"),
        );
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .with_filter(filter);
    #[cfg(feature = "otel")]
    let traces = traces.map(|t| t.layer());
    #[cfg(not(feature = "otel"))]
    let traces = traces
        .map(|never| match *never {})
        .unwrap_or(None::<tracing_subscriber::layer::Identity>);
    tracing_subscriber::registry().with(log).with(traces).init();
}

/// What exports wasmflow's own traces, when `run --otlp` asks for it.
#[cfg(feature = "otel")]
pub type Traces = wasmflow_otel::telemetry::OwnTraces;
/// Without the `otel` feature nothing exports traces.
#[cfg(not(feature = "otel"))]
pub enum Traces {}

#[cfg(not(feature = "otel"))]
impl Traces {
    /// Never called: no value of this type exists.
    pub fn shutdown(self) {
        match self {}
    }
}

/// The connection to the `--otlp` collector, one per process: wasmflow's own traces and
/// metrics share it.
#[cfg(feature = "otel")]
pub type Otlp = wasmflow_otel::Exporter;
/// Without the `otel` feature there is no collector to connect to.
#[cfg(not(feature = "otel"))]
pub enum Otlp {}

/// The connection to the collector and the export of wasmflow's own traces over it, when the
/// command asks for them (`run --otlp`): made before logging starts (the traces are one of its
/// layers) within the runtime `rt`, which drives the exports (it connects on first use). The
/// run's own metrics take the same connection once its graphs are loaded.
pub fn own_telemetry(command: &Command, rt: &tokio::runtime::Handle) -> anyhow::Result<(Option<Otlp>, Option<Traces>)> {
    #[cfg(feature = "otel")]
    if let Command::Run(run) = command {
        if let Some(config) = run.otlp.own_telemetry()? {
            let _in_runtime = rt.enter();
            let otlp = Otlp::new(&config)?;
            let traces = Traces::start(&otlp, run.otlp.otlp_trace_ratio)?;
            return Ok((Some(otlp), Some(traces)));
        }
    }
    let _ = (command, rt);
    Ok((None, None))
}

impl Command {
    /// Runs the command; `rt` is the process's runtime for whatever does I/O, `otlp` the
    /// connection [`own_telemetry`] made for it.
    pub fn execute(self, rt: &tokio::runtime::Handle, otlp: Option<&Otlp>) -> anyhow::Result<ExitCode> {
        match self {
            Command::Compose(c) => c.execute(rt),
            Command::Inspect(c) => c.execute(),
            Command::Graph(c) => c.execute(rt),
            Command::Run(c) => c.execute(rt, otlp),
            Command::Test(c) => c.execute(rt),
            Command::New(c) => c.execute(),
            #[cfg(feature = "oci")]
            Command::Push(c) => c.execute(rt),
            #[cfg(feature = "oci")]
            Command::Pull(c) => c.execute(rt),
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks (unique names, valid defaults) over every command.
    #[test]
    fn the_command_line_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
