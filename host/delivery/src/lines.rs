//! Line mode: a graph fed newline-delimited messages from a file or standard input, its outputs
//! written as JSON lines (`wasmflow run --input`).
//!
//! Not the [`crate::pump`]: nothing here is acknowledged, so there is no lineage to keep,
//! nothing to wait for and no journal; outputs are written in the order the graph produced
//! them, dead letters included with their destination, and windows stay in memory and close at
//! the end of the input. What the two share is the idle rule (with no input for `idle`, event
//! time advances to the wall clock) and the shutdown signal.
//!
//! Lines are read as bytes: a payload line need not be UTF-8; a line that cannot become a
//! message is a warning with its line number, and the run goes on. When the reader of the
//! outputs goes away (`wasmflow run --input … | head`), the run stops there without an error,
//! as other command-line filters do: nothing was acknowledged, so nothing is lost.

use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::watch;
use wasmflow_runtime::graph::Graph;
use wasmflow_transport::lines::{output_json, parse_line, InputFormat};
use wasmflow_transport::Output;
use wasmflow_wire::Hlc;

use crate::error::{DeliveryError, Result};

/// How line mode reads its input.
#[derive(Debug, Clone)]
pub struct LineOptions {
    /// Payload lines or envelopes.
    pub format: InputFormat,
    /// Topic of lines that do not name one.
    pub topic: String,
    /// With no input for this long, event time advances to the wall clock (windows close).
    pub idle: Duration,
    /// How the input is named in messages (a file name, or `-`).
    pub name: String,
}

/// What a line-mode run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LineStats {
    /// Lines that became messages.
    pub read: usize,
    /// Lines that could not (warned about, skipped).
    pub bad: usize,
    /// Why the run ended.
    pub end: End,
}

/// Why a line-mode run ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The input ended: windows were flushed, every output written.
    #[default]
    Input,
    /// The shutdown signal: windows were left open (their count logged).
    Interrupted,
    /// The outputs' reader closed its end (a broken pipe): what was left is not written.
    OutputClosed,
}

enum Event {
    Line(usize, Vec<u8>),
    End,
    Failed(std::io::Error),
}

/// Runs `graph` on the lines of `input` (read on a thread of its own, so a quiet input still
/// lets idle windows close), writing each output to `out` as one JSON line, until the input
/// ends (windows flushed), `shutdown` turns true (windows left open, their count logged) or
/// `out` is closed by its reader ([`End`] says which).
pub fn run(
    graph: &mut Graph,
    input: Box<dyn BufRead + Send>,
    options: &LineOptions,
    out: &mut dyn Write,
    shutdown: watch::Receiver<bool>,
) -> Result<LineStats> {
    let (tx, rx) = mpsc::channel::<Event>();
    std::thread::Builder::new()
        .name("wasmflow-input".into())
        .spawn(move || read_lines(input, tx))
        .map_err(|error| DeliveryError::Thread {
            name: "the input reader",
            error,
        })?;
    let mut stats = LineStats::default();
    loop {
        if *shutdown.borrow() {
            tracing::info!("interrupted; {} items were waiting in open windows", graph.pending());
            stats.end = End::Interrupted;
            break;
        }
        let (outputs, last) = match rx.recv_timeout(options.idle) {
            Ok(Event::Line(n, line)) => match parse_line(&line, n, options.format, &options.topic) {
                Ok(Some(input)) => {
                    stats.read += 1;
                    (graph.push(None, input)?, false)
                }
                Ok(None) => continue,
                Err(e) => {
                    stats.bad += 1;
                    tracing::warn!("{}: {e}", options.name);
                    continue;
                }
            },
            Ok(Event::End) | Err(mpsc::RecvTimeoutError::Disconnected) => (graph.flush()?, true),
            Ok(Event::Failed(error)) => {
                return Err(DeliveryError::Input {
                    input: options.name.clone(),
                    error,
                })
            }
            Err(mpsc::RecvTimeoutError::Timeout) => (graph.advance_to(&Hlc::now("wasmflow"))?, false),
        };
        match print(outputs, out) {
            Ok(()) if last => break,
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                tracing::info!("the outputs' reader closed them; stopping");
                stats.end = End::OutputClosed;
                break;
            }
            Err(e) => return Err(DeliveryError::Output(e)),
        }
    }
    Ok(stats)
}

fn read_lines(mut input: Box<dyn BufRead + Send>, tx: mpsc::Sender<Event>) {
    let mut n = 0;
    loop {
        let mut line = Vec::new();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                n += 1;
                if tx.send(Event::Line(n, line)).is_err() {
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
}

fn print(outputs: Vec<Output>, out: &mut dyn Write) -> std::io::Result<()> {
    for o in outputs {
        writeln!(out, "{}", output_json(&o))?;
    }
    out.flush()
}
