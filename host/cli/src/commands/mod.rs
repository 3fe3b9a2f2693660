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

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Streaming data-flow graphs of WebAssembly components.
#[derive(Parser, Debug)]
#[command(name = "wasmflow", version, about)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
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
    /// Boxed: its flags (graph, run, transport) make it several times larger than the others.
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

/// Logs to standard error: `-v`/`-vv` or `RUST_LOG` choose how much.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        // The embedded broker logs every connection, and every client that leaves, as errors
        // included: quiet unless asked (its start-up failures are wasmflow's own records).
        0 => "info,rumqttd=off",
        1 => "debug,rumqttd=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}

impl Command {
    /// Runs the command; `rt` is the process's runtime for whatever does I/O.
    pub fn execute(self, rt: &tokio::runtime::Handle) -> anyhow::Result<ExitCode> {
        match self {
            Command::Compose(c) => c.execute(rt),
            Command::Inspect(c) => c.execute(),
            Command::Graph(c) => c.execute(rt),
            Command::Run(c) => c.execute(rt),
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
