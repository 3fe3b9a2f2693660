//! `wasmflow`: the command-line entry point. It parses arguments, builds the process's one
//! tokio runtime, and hands both to the command, which calls the libraries. Errors are
//! printed here, once, with their chain of causes.

mod commands;
mod flags;
#[cfg(feature = "oci")]
mod progress;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = commands::Cli::parse();
    // One runtime for the whole process: transports, the embedded broker, the metrics endpoint,
    // registry transfers and signal handling all run on it; graphs run on the main thread (or a
    // thread each). Its workers mostly wait on sockets: one by default (`--io-threads`).
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.io_threads.get())
        .thread_name("wasmflow-io")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the I/O runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let (otlp, traces) = match commands::own_telemetry(&args.command, rt.handle()) {
        Ok(started) => started,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(1);
        }
    };
    commands::init_tracing(args.verbose, traces.as_ref());
    let code = match args.command.execute(rt.handle(), otlp.as_ref()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    };
    if let Some(t) = traces {
        let _in_runtime = rt.enter();
        t.shutdown();
    }
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
