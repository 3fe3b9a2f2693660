//! The contract between the runtime and the transports that feed and drain a graph (MQTT,
//! Kafka, newline-delimited input): what a message looks like going in ([`Input`]) and coming
//! out ([`Output`]), and how it is acknowledged. Transports depend on this crate, not on the
//! router, so a new transport needs nothing of wasmtime.
//!
//! At-least-once delivery rests on one rule: a transport acknowledges an inbound message to its
//! origin (MQTT PUBACK, Kafka offset commit) only when the runtime calls its [`Ack`], and the
//! runtime does that only after every output derived from it was acknowledged by its
//! destination (a [`Sink::send`] that completed), was dropped by the graph, or is held in a
//! persisted window. An `Ack` dropped without being called leaves the message unacknowledged,
//! so the origin delivers it again after a restart.

#![warn(missing_docs)]

use std::future::Future;
use std::pin::Pin;

pub mod health;
pub mod lines;
pub mod secret;

/// The `tracing` target of the spans a run can export as traces (`run --otlp`): one `message`
/// span per input the delivery pump pushes, one `operation` span per operator call inside it.
/// Logging leaves this target off, so the spans cost a disabled callsite unless exported.
pub const TRACE_TARGET: &str = "wasmflow::trace";

/// Shared immutable bytes: one allocation, handed to any number of operators and sinks.
pub type Bytes = std::sync::Arc<[u8]>;

/// A message as a transport delivers it to a graph's source.
#[derive(Debug, Clone)]
pub struct Input {
    /// The topic it arrived on.
    pub topic: String,
    /// The payload, shared, never copied by the router.
    pub payload: Bytes,
    /// MQTT 5 content type or the Kafka `content-type` header.
    pub content_type: Option<String>,
    /// MQTT 5 user properties or Kafka headers, `__ts` among them.
    pub user_properties: Vec<(String, String)>,
}

/// What leaves a graph: a sink's publication, or a dead letter naming why.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Which sink it came from, or that it is a dead letter.
    pub destination: Destination,
    /// The message's topic, when the item was a message (a raw or snapshot item has none).
    pub topic: Option<String>,
    /// The payload bytes.
    pub payload: Bytes,
    /// The content type, when the item carried one.
    pub content_type: Option<String>,
    /// User properties with `__ts` written by the sink.
    pub user_properties: Vec<(String, String)>,
}

/// Where an output goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    /// A sink operation, by name.
    Sink(String),
    /// An item an operator rejected or trapped on.
    DeadLetter {
        /// The operation that rejected it.
        operation: String,
        /// Why (the operator's error, or `trap: …`).
        error: String,
    },
}

/// Acknowledges one inbound message to where it came from.
#[must_use = "an Ack that is never called leaves the message unacknowledged"]
pub struct Ack(Option<Box<dyn FnOnce() + Send>>);

impl Ack {
    /// An acknowledgement that runs `f` (send the PUBACK, mark the offset committable).
    pub fn new(f: impl FnOnce() + Send + 'static) -> Self {
        Self(Some(Box::new(f)))
    }

    /// For origins that need no acknowledgement (QoS 0, a file of lines).
    pub fn none() -> Self {
        Self(None)
    }

    /// Acknowledges the message. Consumes the token: a message is acknowledged at most once.
    pub fn ack(mut self) {
        if let Some(f) = self.0.take() {
            f()
        }
    }
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Ack(pending)" } else { "Ack(none)" })
    }
}

/// One message a source transport received, with the token that acknowledges it.
#[derive(Debug)]
pub struct Inbound {
    /// The message.
    pub input: Input,
    /// The Kafka record key; outputs derived from this message alone carry it on.
    pub key: Option<Bytes>,
    /// Acknowledges the message to its origin once everything derived from it is done.
    pub ack: Ack,
}

/// One publication for a sink transport.
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    /// The topic to publish on.
    pub topic: String,
    /// The payload bytes.
    pub payload: Bytes,
    /// MQTT 5 content type or the Kafka `content-type` header.
    pub content_type: Option<String>,
    /// Carried as MQTT 5 user properties or Kafka headers (`__ts` among them).
    pub user_properties: Vec<(String, String)>,
    /// The Kafka record key (from the input the output derives from alone).
    pub key: Option<Bytes>,
}

/// Why a transport could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Could not reach the broker at start, after the bounded retry.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The broker.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The destination refused or failed a publication.
    #[error("{url}: publishing to `{topic}` failed: {reason}")]
    Publish {
        /// The broker.
        url: String,
        /// The topic.
        topic: String,
        /// What the broker or client said.
        reason: String,
    },
    /// The transport was shut down before the operation completed.
    #[error("{0}: transport closed")]
    Closed(String),
    /// A setting is wrong (bad URL, unreadable CA file, …).
    #[error("{0}")]
    Config(String),
}

/// A boxed future, so transports of different kinds can sit behind one `dyn` trait.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A source transport: subscribes, and sends what it receives into `tx` until `shutdown` turns
/// true. `tx` is bounded, so a graph that falls behind slows intake instead of growing memory.
pub trait Source: Send {
    /// Runs the source until `shutdown` or a failure that ends it.
    fn run(
        self: Box<Self>,
        tx: tokio::sync::mpsc::Sender<Inbound>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> BoxFuture<Result<(), TransportError>>;
}

/// Called once with the outcome of one publication ([`Sink::send_with`]).
pub type Completion = Box<dyn FnOnce(Result<(), TransportError>) + Send>;

/// A sink transport. A publication is done when the destination acknowledged it (MQTT PUBACK
/// for QoS 1, Kafka delivery report with `acks=all`), which is what lets the runtime
/// acknowledge the inputs it came from.
pub trait Sink: Send + Sync {
    /// Publishes one message; completes when the destination acknowledged it.
    fn send(&self, msg: Outbound) -> BoxFuture<Result<(), TransportError>>;

    /// Publishes one message and calls `done` with the outcome, on whichever thread learns it.
    /// This is the pump's path: a transport that learns of acknowledgements in a task of its
    /// own (MQTT's connection) calls `done` from there, so a publication costs no task and no
    /// hop back to the graph's thread. Publications leave in the order of the calls, once the
    /// caller ended the batch with [`Sink::end_batch`] (a sink may hold them until then). Call it
    /// within a tokio runtime: the default runs [`Sink::send`]'s future as a task of its own.
    fn send_with(&self, msg: Outbound, done: Completion) {
        let sent = self.send(msg);
        tokio::spawn(async move { done(sent.await) });
    }

    /// Sends what [`Sink::send_with`] held back. The pump calls it once no more input waits (or
    /// after 256 inputs), so a sink may give their outputs to its client together (Kafka: one
    /// wake-up of librdkafka's broker thread and one produce request for the batch, where one
    /// per message cost its thread twice the CPU of a native relay's). A sink that sends each
    /// publication at once, as the default `send_with` does, has nothing to do here.
    fn end_batch(&self) {}
}

/// [`Sink::send`] for a sink whose own path is [`Sink::send_with`] (MQTT, Kafka): the completion
/// fills a oneshot the returned future waits on. A completion dropped without being called (the
/// connection went away with it) is [`TransportError::Closed`] naming `what`.
pub fn send_via_completion(
    send_with: impl FnOnce(Completion),
    what: impl Into<String>,
) -> BoxFuture<Result<(), TransportError>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    send_with(Box::new(move |r| {
        let _ = tx.send(r);
    }));
    let what = what.into();
    Box::pin(async move { rx.await.unwrap_or(Err(TransportError::Closed(what))) })
}
