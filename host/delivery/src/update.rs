//! Hot update: a running graph replaced by a new version of itself without stopping intake.
//!
//! A [`Reloader`] (on a thread of its own) re-resolves the run's target on `SIGHUP`, and with
//! a watch interval whenever the target's fingerprint changes (a file's contents, a registry
//! tag's digest); a new version is composed and started there — its `init` runs — while the
//! old one keeps running. Only a version that started is handed to the pump
//! (the pump's `run_with_updates`), which switches intake between two messages: everything
//! before goes to the old version, everything after to the new one. The old version then
//! drains: what it emitted is delivered and acknowledged as before (one tracker, one journal,
//! lineage ids from one counter: `Graph::share_lineage_ids`), and its open windows close,
//! with the items it got before the switch, when event time passes them as it would have had it
//! kept running: it follows the new version's frontier (carried by the new version's input, or
//! the wall clock when input is idle). Nothing is lost and nothing is emitted twice by the
//! switch: each message is routed by exactly one version; a window open at the switch comes
//! out twice, the old version's part and the new one's. A version that does not resolve,
//! compose, keep the graph's name, or start (an `init` that fails) is logged and the running
//! one stays.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use wasmflow_runtime::graph::{Graph, Traced};
use wasmflow_runtime::LoadedGraph;
use wasmflow_wire::Hlc;

use crate::error::{BoxError, DeliveryError, Result};

/// A new version of the running graph, started and ready for input.
pub struct Update {
    /// Its `init`s ran.
    pub graph: Graph,
    /// `sha256:…` (shortened) of the composed component, for logs.
    pub version: String,
    /// The version it replaces, for logs.
    pub replaces: String,
}

/// Where new versions come from while the pump runs.
pub type Updates = mpsc::Receiver<Update>;

/// Old versions still closing their windows after a switch (the pump's side).
#[derive(Default)]
pub(crate) struct Draining {
    old: Vec<Old>,
}

struct Old {
    graph: Graph,
    version: String,
    /// The frontier it was last advanced to.
    advanced_to: Option<Hlc>,
}

impl Draining {
    /// Makes `update` the running graph; the one it replaces drains (when its windows hold
    /// anything) or is dropped.
    pub(crate) fn switch(&mut self, running: &mut Graph, update: Update) {
        let Update {
            mut graph,
            version,
            replaces: old_version,
        } = update;
        graph.share_lineage_ids(running);
        let old = std::mem::replace(running, graph);
        let held = old.pending();
        tracing::info!(
            "hot update: intake switched to version {version}; version {old_version} drains {held} window entr{}",
            if held == 1 { "y" } else { "ies" }
        );
        if held == 0 {
            tracing::info!("hot update: version {old_version} drained");
        } else {
            self.old.push(Old {
                graph: old,
                version: old_version,
                advanced_to: None,
            });
        }
    }

    /// Advances each old version to the running graph's frontier, so its windows close when
    /// they would have had it kept running (event time carried by the new version's input, or
    /// the wall clock when that is idle); their outputs go to `route`. Drained versions are
    /// dropped.
    pub(crate) fn tick(&mut self, running: &Graph, mut route: impl FnMut(Traced) -> Result<()>) -> Result<()> {
        let Some(frontier) = running.frontier() else {
            return Ok(());
        };
        for o in &mut self.old {
            if o.advanced_to.as_ref() != Some(&frontier) {
                route(o.graph.advance_traced(&frontier)?)?;
                o.advanced_to = Some(frontier.clone());
            }
        }
        self.old.retain(|o| {
            let drained = o.graph.pending() == 0;
            if drained {
                tracing::info!("hot update: version {} drained", o.version);
            }
            !drained
        });
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.old.is_empty()
    }
}

/// `sha256:` and the first 12 hex digits of the digest of `bytes`: a version's name in logs.
pub fn version_of(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let hex: String = d.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// What the [`Reloader`] asks of the run's target; the CLI implements it with the registry
/// client, the compiler and the runtime.
pub trait Target {
    /// The implementer's own error type (the CLI's, with its contexts): anything that becomes
    /// a boxed `std` error keeping its causes, so this crate need not know it. A failure is
    /// logged with those causes, as a [`DeliveryError::Update`].
    type Error: Into<BoxError>;
    /// The target as written, for messages.
    fn name(&self) -> String;
    /// A cheap look at what the target is now (a file's contents hashed, a tag's digest):
    /// when it differs from the last one, the target is loaded again.
    fn fingerprint(&mut self) -> Result<String, Self::Error>;
    /// Resolves (pulls) and composes the target.
    fn load(&mut self) -> Result<LoadedGraph, Self::Error>;
    /// Starts a composed graph (its `init`s run).
    fn start(&mut self, graph: &LoadedGraph) -> Result<Graph, Self::Error>;
}

/// The target's error as this crate's.
fn failed(e: impl Into<BoxError>) -> DeliveryError {
    DeliveryError::Update(e.into())
}

/// When the reloader looks.
#[derive(Debug, Clone, Copy)]
pub struct ReloadOptions {
    /// `--watch`: look at the target's fingerprint this often; `None`: only on `SIGHUP`.
    pub watch: Option<Duration>,
}

/// Re-resolves a run's target on `SIGHUP` (and, with [`ReloadOptions::watch`], when it
/// changes) and sends each new version that started to the pump; see the module doc.
pub struct Reloader<T: Target> {
    target: T,
    options: ReloadOptions,
    /// The running version's graph name, composed bytes and label, and the fingerprint it
    /// (or the last failed attempt) came from.
    name: String,
    bytes: Vec<u8>,
    version: String,
    fingerprint: String,
}

enum Trigger {
    Hangup,
    Poll,
    Stop,
}

impl<T: Target> Reloader<T> {
    /// `running` is the version the run started with.
    pub fn new(mut target: T, options: ReloadOptions, running: &LoadedGraph) -> Self {
        let fingerprint = target.fingerprint().unwrap_or_default();
        Self {
            target,
            options,
            name: running.manifest.name.clone(),
            bytes: running.bytes.clone(),
            version: version_of(&running.bytes),
            fingerprint,
        }
    }

    /// Runs until `stop` turns true (or its sender is gone), sending new versions to
    /// `updates`. `SIGHUP` is caught from the moment this is called; `rt` must not be the
    /// caller's own runtime thread (this blocks on it).
    pub fn run(mut self, rt: &tokio::runtime::Handle, mut stop: watch::Receiver<bool>, updates: mpsc::Sender<Update>) {
        #[cfg(unix)]
        let mut hangup = {
            let _context = rt.enter();
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!("SIGHUP will not reload the graph: its handler could not be set up: {e}");
                    None
                }
            }
        };
        let watch = self.options.watch;
        loop {
            let trigger = rt.block_on(async {
                let hup = async {
                    #[cfg(unix)]
                    if let Some(h) = hangup.as_mut() {
                        h.recv().await;
                        return;
                    }
                    std::future::pending::<()>().await
                };
                let poll = async {
                    match watch {
                        Some(every) => tokio::time::sleep(every).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = hup => Trigger::Hangup,
                    _ = poll => Trigger::Poll,
                    r = stop.changed() => if r.is_err() || *stop.borrow() { Trigger::Stop } else { Trigger::Poll },
                }
            });
            match trigger {
                Trigger::Stop => return,
                Trigger::Poll => match self.target.fingerprint().map_err(failed) {
                    Ok(f) if f == self.fingerprint => {}
                    Ok(f) => {
                        tracing::info!("hot update: {} changed; loading it", self.target.name());
                        self.fingerprint = f;
                        self.attempt(&updates);
                    }
                    Err(e) => tracing::debug!("hot update: looking at {}: {e}", self.target.name()),
                },
                Trigger::Hangup => {
                    tracing::info!("SIGHUP: loading {} again", self.target.name());
                    if let Ok(f) = self.target.fingerprint() {
                        self.fingerprint = f;
                    }
                    self.attempt(&updates);
                }
            }
        }
    }

    /// Loads and starts the target; a new version that started goes to `updates`, anything
    /// else is logged and the running version stays.
    fn attempt(&mut self, updates: &mpsc::Sender<Update>) {
        match self.next() {
            Ok(None) => tracing::info!(
                "hot update: {} is the running version {}; nothing to do",
                self.target.name(),
                self.version
            ),
            Ok(Some(update)) => {
                let version = update.version.clone();
                tracing::info!("hot update: version {version} started beside {}", self.version);
                if updates.blocking_send(update).is_err() {
                    return; // the pump has stopped
                }
                self.version = version;
            }
            Err(e) => tracing::warn!(
                "hot update of {} failed; version {} keeps running: {e}",
                self.target.name(),
                self.version
            ),
        }
    }

    fn next(&mut self) -> Result<Option<Update>> {
        let loaded = self.target.load().map_err(failed)?;
        if loaded.bytes == self.bytes {
            return Ok(None);
        }
        if loaded.manifest.name != self.name {
            return Err(DeliveryError::Renamed {
                new: loaded.manifest.name,
                running: self.name.clone(),
            });
        }
        let graph = self.target.start(&loaded).map_err(failed)?;
        self.bytes = loaded.bytes;
        Ok(Some(Update {
            graph,
            version: version_of(&self.bytes),
            replaces: self.version.clone(),
        }))
    }
}
