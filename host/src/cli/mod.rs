//! Argument parsing and dispatch, one module per subcommand (as in `wasmtime-cli`'s `commands/`).

mod compose;
mod inspect;
mod kafka;
mod nn;
mod pull;
mod push;
mod registry;
mod run;
mod test;
mod transport;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use wasmflow_compose::{ComposeOptions, Override};

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
    /// Run a graph bound to MQTT topics (--mqtt, --source, --sink), or on --input lines.
    /// Boxed: its flags (graph, run, transport) make it several times larger than the others.
    Run(Box<run::RunCmd>),
    /// Run golden-file tests: a graph, an input folder, expected JSON.
    Test(test::TestCmd),
    /// Push a component or graph definition to an OCI registry; prints the manifest digest.
    Push(push::PushCmd),
    /// Pull an artifact into the local cache (and optionally to a file); prints its digest.
    Pull(pull::PullCmd),
}

/// Options shared by every command that reads a graph definition.
#[derive(Args, Debug, Clone)]
pub struct GraphArgs {
    /// Directory of modules named by reference (`…/temperature:1.0.0` → `temperature.wasm`).
    #[arg(long, env = "WASMFLOW_MODULES")]
    pub modules: Option<PathBuf>,
    /// Configuration value for init: `key=value` (every operation declaring it) or `operation.key=value`.
    #[arg(short = 'c', long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<Override>,
    #[command(flatten)]
    pub registry: registry::RegistryArgs,
}

impl GraphArgs {
    pub fn compose_options(&self) -> ComposeOptions {
        ComposeOptions {
            modules_dir: self.modules.clone(),
            default_modules_dir: Some(wasmflow_host::runtime::default_modules_dir()),
            overrides: self.config.clone(),
            resolved: Default::default(),
        }
    }
}

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

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Compose(c) => c.execute(),
        Command::Inspect(c) => c.execute(),
        Command::Run(c) => c.execute(),
        Command::Test(c) => c.execute(),
        Command::Push(c) => c.execute(),
        Command::Pull(c) => c.execute(),
    }
}
