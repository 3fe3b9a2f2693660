//! The Kafka transport: a [`Source`] that reads topics as a member of a consumer group and a
//! [`Sink`] that produces to topics, both on librdkafka (`rdkafka`).
//!
//! **At-least-once.** The source never lets librdkafka commit on its own
//! (`enable.auto.commit=false`, `enable.auto.offset.store=false`). Each message it hands to the
//! runtime carries an [`Ack`]; per partition it keeps the offsets handed out and not yet
//! committed, and commits (every `commit_interval`, on a partition revocation, and on shutdown)
//! the first offset that is not acknowledged yet — so a committed offset never passes a message
//! whose outputs are not safely at their destination, whatever order the acks come in. Offsets
//! need not be contiguous (transaction markers and compaction leave gaps): the tracker follows the
//! offsets it actually handed out. After a crash the group resumes at the last commit and the
//! unacknowledged messages come again.
//!
//! The sink produces with `acks=all` and `enable.idempotence=true` (forced: a user setting that
//! contradicts them is an error), and [`Sink::send`] resolves on the delivery report.
//!
//! **Mapping.** Kafka headers ↔ user properties (values as UTF-8; invalid bytes are replaced),
//! except the `content-type` header, which is the message's content type. The record key
//! travels in [`Inbound::key`] / [`Outbound::key`].
//!
//! **Settings.** Any librdkafka property passes through ([`KafkaSettings::property`]:
//! `security.protocol=SASL_SSL`, `sasl.mechanism=SCRAM-SHA-512`, `ssl.ca.location=…`); secrets
//! come from the environment (`sasl.password=env:KAFKA_PASSWORD`) or a file
//! (`sasl.password=file:/run/secrets/kafka`, or a whole properties file). This build links
//! OpenSSL (TLS, SASL PLAIN/SCRAM/OAUTHBEARER); Kerberos (GSSAPI) is not compiled in.
//!
//! **Start and stop.** librdkafka retries an unreachable bootstrap server forever; both ends
//! probe the cluster's metadata first and fail with [`TransportError::Connect`] after
//! [`KafkaSettings::connect_timeout`] (librdkafka reconnects with backoff within that time).
//! Destroying a consumer joins librdkafka's threads and has been seen to hang (in librdkafka 2.x here), so
//! the consumer is closed on a thread of its own and awaited with a timeout, never on an async
//! worker.

#![warn(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sync_wrapper::SyncWrapper;
use tokio::sync::{mpsc, watch};

use wasmflow_transport::health::Health;
use wasmflow_transport::{
    secret, send_via_completion, Ack, BoxFuture, Bytes, Completion, Inbound, Input, Outbound, Sink, Source,
    TransportError,
};

/// The header that carries the content type (MQTT 5's content-type property has no Kafka field).
pub const CONTENT_TYPE_HEADER: &str = "content-type";

/// Where the cluster is and how to talk to it; shared by sources and sinks.
#[derive(Clone)]
pub struct KafkaSettings {
    /// `bootstrap.servers`: `host:port[,host:port…]`.
    pub brokers: String,
    /// librdkafka properties passed through as they are (secrets already resolved).
    pub properties: Vec<(String, String)>,
    /// How long to wait for the cluster at start before giving up with a clear error; also
    /// librdkafka's `socket.connection.setup.timeout.ms` (one connection attempt).
    pub connect_timeout: Duration,
    /// librdkafka's `socket.timeout.ms`: a broker that accepts a request and does not answer
    /// within it is treated as gone (the request fails or is retried on another connection).
    /// A `-X socket.timeout.ms=…` property wins over it.
    pub read_timeout: Duration,
    /// Where the source and sink register their readiness checks (`/readyz`): a metadata
    /// request to the cluster each time readiness is asked.
    pub health: Health,
}

impl std::fmt::Debug for KafkaSettings {
    /// Secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let props: Vec<String> = self
            .properties
            .iter()
            .map(|(k, v)| {
                if is_secret(k) {
                    format!("{k}=***")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("properties", &props)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

fn is_secret(key: &str) -> bool {
    ["password", "secret", "key.pem", "token", "sasl.jaas"]
        .iter()
        .any(|s| key.contains(s))
}

impl KafkaSettings {
    /// Settings for the cluster at `brokers`, with a 10 s start-up probe and a 30 s read timeout.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            properties: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            health: Health::default(),
        }
    }

    /// Adds one librdkafka property from `key=value`. A value `env:NAME` is read from the
    /// environment variable `NAME` and `file:PATH` from the file (trailing newline removed), so a
    /// secret need not appear on a command line.
    pub fn property(&mut self, spec: &str) -> Result<(), TransportError> {
        let (key, value) = spec
            .split_once('=')
            .map(|(k, v)| (k.trim(), v))
            .filter(|(k, _)| !k.is_empty())
            // Not repeated: a line without `=` may be a secret with the wrong separator
            // (`sasl.password: …`).
            .ok_or_else(|| {
                TransportError::Config(
                    "kafka property: expected KEY=VALUE (the text is not shown: it may hold a secret)".into(),
                )
            })?;
        let value = resolve_value(key, value)?;
        self.properties.push((key.to_owned(), value));
        Ok(())
    }

    /// Adds every `key=value` line of a properties file (`#` and `!` start comments; values may
    /// use `env:`/`file:` too). This is how a deployment hands over SASL/TLS settings and secrets.
    pub fn properties_file(&mut self, path: &Path) -> Result<(), TransportError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TransportError::Config(format!("kafka properties file {}: {e}", path.display())))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            self.property(line)
                .map_err(|e| TransportError::Config(format!("{}:{}: {e}", path.display(), n + 1)))?;
        }
        Ok(())
    }

    /// The client configuration: `defaults` (which the user's properties may override), the
    /// user's properties, then `forced` (which they may not contradict).
    fn client_config(
        &self,
        defaults: &[(&str, &str)],
        forced: &[(&str, &str)],
    ) -> Result<ClientConfig, TransportError> {
        if self.brokers.contains('@') {
            // Not repeated: what is before `@` would be a user name or password.
            return Err(TransportError::Config(
                "the Kafka broker list holds a `@`: credentials do not go in it (it shows in logs and `ps`); give them as SASL properties (`-X sasl.username=…`, `-X sasl.password=env:VAR`)".into(),
            ));
        }
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        config.set("socket.timeout.ms", self.read_timeout.as_millis().max(10).to_string());
        config.set(
            "socket.connection.setup.timeout.ms",
            self.connect_timeout.as_millis().max(1000).to_string(),
        );
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        for (k, v) in &self.properties {
            if k == "bootstrap.servers" && v != &self.brokers {
                return Err(TransportError::Config(format!(
                    "kafka property `bootstrap.servers` conflicts with the broker list `{}`: give the brokers once",
                    self.brokers
                )));
            }
            if let Some((_, want)) = forced.iter().find(|(fk, _)| fk == k) {
                if !v.eq_ignore_ascii_case(want) {
                    return Err(TransportError::Config(format!(
                        "kafka property `{k}={v}`: wasmflow sets `{k}={want}`, which at-least-once delivery needs"
                    )));
                }
            }
            config.set(k, v);
        }
        for (k, v) in forced {
            config.set(*k, *v);
        }
        Ok(config)
    }
}

/// A client librdkafka would not create, said without the offending property's value:
/// librdkafka's own message ends with it, and the value of a mistyped property may be a
/// secret (`-X sasl.pasword=…`).
fn not_created(client: &str, brokers: &str, e: KafkaError) -> TransportError {
    let reason = match e {
        KafkaError::ClientConfig(_, description, key, _value) => format!("property `{key}`: {description}"),
        other => other.to_string(),
    };
    TransportError::Config(format!("kafka {client} for {brokers}: {reason}"))
}

fn resolve_value(key: &str, value: &str) -> Result<String, TransportError> {
    secret::Value::parse(value)
        .read()
        .map_err(|e| TransportError::Config(format!("kafka property `{key}`: {e}")))
}

/// Asks the cluster for its metadata, waiting at most `connect_timeout`; on a blocking thread,
/// since librdkafka's call blocks.
async fn probe(
    client: impl FnOnce(Timeout) -> KafkaResult<usize> + Send + 'static,
    settings: &KafkaSettings,
) -> Result<(), TransportError> {
    let timeout = settings.connect_timeout;
    let result = tokio::task::spawn_blocking(move || client(Timeout::After(timeout)))
        .await
        .map_err(|e| TransportError::Connect {
            url: settings.brokers.clone(),
            reason: e.to_string(),
        })?;
    match result {
        Ok(brokers) if brokers > 0 => Ok(()),
        Ok(_) => Err(TransportError::Connect {
            url: settings.brokers.clone(),
            reason: "the cluster reported no brokers".into(),
        }),
        Err(e) => Err(TransportError::Connect {
            url: settings.brokers.clone(),
            reason: format!("no answer within {:?} ({e})", settings.connect_timeout),
        }),
    }
}

/// Registers a readiness check named `what` that asks the cluster for its metadata (on a
/// blocking thread, at most a second); `fetch` answers `None` once its client is gone.
fn watch_health<F>(settings: &KafkaSettings, what: &str, fetch: F)
where
    F: Fn(Timeout) -> Option<KafkaResult<usize>> + Clone + Send + Sync + 'static,
{
    settings
        .health
        .probe(format!("kafka {what} {}", settings.brokers), move || {
            let fetch = fetch.clone();
            Box::pin(async move {
                match tokio::task::spawn_blocking(move || fetch(Timeout::After(Duration::from_secs(1)))).await {
                    Ok(Some(Ok(n))) if n > 0 => Ok(()),
                    Ok(Some(Ok(_))) => Err("the cluster reported no brokers".into()),
                    Ok(Some(Err(e))) => Err(e.to_string()),
                    Ok(None) => Err("closed".into()),
                    Err(e) => Err(e.to_string()),
                }
            })
        });
}

// ---------------------------------------------------------------------------------------------
// Headers

/// Splits Kafka headers into the content type and the user properties.
fn from_headers<'a>(
    headers: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> (Option<String>, Vec<(String, String)>) {
    let mut content_type = None;
    let mut props = Vec::new();
    for (key, value) in headers {
        let value = value
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        if content_type.is_none() && key.eq_ignore_ascii_case(CONTENT_TYPE_HEADER) {
            content_type = Some(value);
        } else {
            props.push((key.to_owned(), value));
        }
    }
    (content_type, props)
}

/// Kafka headers for a publication: the user properties in order, then the content type.
fn to_headers(msg: &Outbound) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new_with_capacity(msg.user_properties.len() + 1);
    for (k, v) in &msg.user_properties {
        headers = headers.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    if let Some(ct) = &msg.content_type {
        headers = headers.insert(Header {
            key: CONTENT_TYPE_HEADER,
            value: Some(ct.as_bytes()),
        });
    }
    headers
}

fn to_input(m: &BorrowedMessage<'_>) -> (Input, Option<Bytes>) {
    let (content_type, user_properties) = match m.headers() {
        Some(h) => from_headers(h.iter().map(|h| (h.key, h.value))),
        None => (None, Vec::new()),
    };
    let input = Input {
        topic: m.topic().to_owned(),
        payload: Arc::from(m.payload().unwrap_or(&[])),
        content_type,
        user_properties,
    };
    (input, m.key().map(Arc::from))
}

// ---------------------------------------------------------------------------------------------
// Offset tracking

type PartitionId = (String, i32);

/// One assigned partition: the offsets handed out and not yet committed.
#[derive(Debug)]
struct PartitionState {
    /// Changes when the partition is revoked and assigned again, so acks of the old assignment
    /// (whose messages the group will deliver again) are ignored.
    epoch: u64,
    /// Offset → acknowledged?, for every message handed out since the last committed offset.
    inflight: BTreeMap<i64, bool>,
    /// The offset after the last message handed out.
    next: i64,
    /// The last offset a commit was requested for / the broker confirmed.
    requested: i64,
    confirmed: i64,
}

impl PartitionState {
    /// The offset to commit: every message before it is acknowledged.
    fn frontier(&mut self) -> i64 {
        while let Some(entry) = self.inflight.first_entry() {
            if !*entry.get() {
                return *entry.key();
            }
            entry.remove();
        }
        self.next
    }
}

/// Per-partition acknowledgement state of a source, shared by its acks and its consumer context.
#[derive(Debug, Default)]
struct Tracker {
    parts: HashMap<PartitionId, PartitionState>,
    next_epoch: u64,
    /// Ack tokens alive (handed out, neither acknowledged nor dropped).
    outstanding: usize,
}

impl Tracker {
    /// Records that the message at `offset` was handed out; returns the partition's epoch.
    fn delivered(&mut self, topic: &str, partition: i32, offset: i64) -> u64 {
        let key = (topic.to_owned(), partition);
        if !self.parts.contains_key(&key) {
            self.next_epoch += 1;
            self.parts.insert(
                key.clone(),
                PartitionState {
                    epoch: self.next_epoch,
                    inflight: BTreeMap::new(),
                    next: offset,
                    // Where this assignment started is where the group stood: nothing to commit yet.
                    requested: offset,
                    confirmed: offset,
                },
            );
        }
        let state = self.parts.get_mut(&key).expect("inserted above");
        state.inflight.insert(offset, false);
        state.next = state.next.max(offset + 1);
        self.outstanding += 1;
        state.epoch
    }

    /// An ack token went away: acknowledged (`acked`) or dropped without acknowledging.
    fn released(&mut self, part: &PartitionId, epoch: u64, offset: i64, acked: bool) {
        self.outstanding = self.outstanding.saturating_sub(1);
        if !acked {
            return;
        }
        if let Some(state) = self.parts.get_mut(part).filter(|s| s.epoch == epoch) {
            if let Some(a) = state.inflight.get_mut(&offset) {
                *a = true;
            }
        }
    }

    /// Partitions whose acknowledged prefix moved past the last commit requested for them.
    fn committable(&mut self) -> Vec<(PartitionId, i64)> {
        let mut out = Vec::new();
        for (part, state) in &mut self.parts {
            let f = state.frontier();
            if f > state.requested {
                state.requested = f;
                out.push((part.clone(), f));
            }
        }
        out
    }

    /// The broker confirmed (or refused) a commit.
    fn commit_result(&mut self, part: &PartitionId, offset: i64, ok: bool) {
        if let Some(state) = self.parts.get_mut(part) {
            if ok {
                state.confirmed = state.confirmed.max(offset);
            } else {
                // Ask again at the next commit.
                state.requested = state.confirmed;
            }
        }
    }

    /// Forgets revoked partitions; returns what may still be committed for them.
    fn revoke(&mut self, parts: &[PartitionId]) -> Vec<(PartitionId, i64)> {
        let mut out = Vec::new();
        for part in parts {
            if let Some(mut state) = self.parts.remove(part) {
                let f = state.frontier();
                if f > state.confirmed {
                    out.push((part.clone(), f));
                }
            }
        }
        out
    }

    /// Messages handed out whose fate is still open.
    fn outstanding(&self) -> usize {
        self.outstanding
    }
}

fn lock(tracker: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    tracker.lock().unwrap_or_else(|e| e.into_inner())
}

/// The acknowledgement of one message: its drop (acknowledged or not) releases the token.
struct AckToken {
    tracker: Arc<Mutex<Tracker>>,
    part: PartitionId,
    epoch: u64,
    offset: i64,
    acked: bool,
}

impl Drop for AckToken {
    fn drop(&mut self) {
        lock(&self.tracker).released(&self.part, self.epoch, self.offset, self.acked);
    }
}

fn ack_for(tracker: &Arc<Mutex<Tracker>>, topic: &str, partition: i32, offset: i64) -> Ack {
    let epoch = lock(tracker).delivered(topic, partition, offset);
    let token = AckToken {
        tracker: tracker.clone(),
        part: (topic.to_owned(), partition),
        epoch,
        offset,
        acked: false,
    };
    Ack::new(move || {
        let mut token = token;
        token.acked = true;
    })
}

fn to_tpl(offsets: &[(PartitionId, i64)]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::with_capacity(offsets.len());
    for ((topic, partition), offset) in offsets {
        // Cannot fail for a partition added just now with a concrete offset.
        let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
    }
    tpl
}

/// The consumer's context: commits what it may when partitions are revoked, and learns which
/// commits the broker confirmed.
struct SourceContext {
    tracker: Arc<Mutex<Tracker>>,
}

impl ClientContext for SourceContext {}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts: Vec<PartitionId> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect();
            let offsets = lock(&self.tracker).revoke(&parts);
            if !offsets.is_empty() {
                if let Err(e) = consumer.commit(&to_tpl(&offsets), CommitMode::Async) {
                    tracing::warn!("kafka: committing revoked partitions failed: {e}");
                }
            }
            tracing::info!("kafka: {} partition(s) revoked", parts.len());
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            // One line per rebalance naming this instance's share of the group's partitions.
            let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for e in tpl.elements() {
                by_topic.entry(e.topic().to_owned()).or_default().push(e.partition());
            }
            let share: Vec<String> = by_topic
                .iter_mut()
                .map(|(t, p)| {
                    p.sort_unstable();
                    format!("{t}{p:?}")
                })
                .collect();
            if share.is_empty() {
                tracing::info!("kafka: partitions assigned: none (more instances than partitions: this one waits)");
            } else {
                tracing::info!("kafka: partitions assigned: {}", share.join(" "));
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = &result {
            tracing::warn!("kafka: offset commit failed: {e}");
        }
        let mut tracker = lock(&self.tracker);
        for e in offsets.elements() {
            if let Offset::Offset(o) = e.offset() {
                let ok = result.is_ok() && e.error().is_ok();
                tracker.commit_result(&(e.topic().to_owned(), e.partition()), o, ok);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Source

/// A graph's Kafka connection as `run` binds it: the cluster, and the consumer group its
/// source joins (a restart in the same group resumes at the last commit).
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// The cluster, for the source and the sink alike.
    pub settings: KafkaSettings,
    /// `group.id` of the source (the sink joins no group). Without `--kafka-group`, `run` uses
    /// `wasmflow-<graph name>`, so a renamed graph starts a new group with no commits.
    pub group_id: String,
}

/// Reads topics as a member of a consumer group; see the module doc for the commit rule.
pub struct KafkaSource {
    settings: KafkaSettings,
    group_id: String,
    topics: Vec<String>,
    commit_interval: Duration,
    drain_timeout: Duration,
}

impl KafkaSource {
    /// A member of `group_id` reading `topics` (names, or `^regex` patterns as librdkafka
    /// takes them). A new group starts at the earliest offset unless `auto.offset.reset` says
    /// otherwise.
    pub fn new(settings: KafkaSettings, group_id: impl Into<String>, topics: Vec<String>) -> Self {
        Self {
            settings,
            group_id: group_id.into(),
            topics,
            commit_interval: Duration::from_millis(500),
            drain_timeout: Duration::from_secs(5),
        }
    }

    /// How often acknowledged offsets are committed (default 500 ms): what a crash may deliver again.
    pub fn commit_interval(mut self, every: Duration) -> Self {
        self.commit_interval = every;
        self
    }

    /// At shutdown, how long to wait for messages already handed out to be acknowledged
    /// before the last commit (default 5 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    async fn run_inner(
        self,
        tx: mpsc::Sender<Inbound>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), TransportError> {
        if self.topics.is_empty() {
            return Err(TransportError::Config("kafka source: no topic to read".into()));
        }
        let config = self.settings.client_config(
            &[("auto.offset.reset", "earliest")],
            &[
                ("group.id", self.group_id.as_str()),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
            ],
        )?;
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let consumer: StreamConsumer<SourceContext> = config
            .create_with_context(SourceContext {
                tracker: tracker.clone(),
            })
            .map_err(|e| not_created("consumer", &self.settings.brokers, e))?;
        let consumer = Arc::new(consumer);

        let c = consumer.clone();
        let probed = probe(
            move |t| c.fetch_metadata(None, t).map(|m| m.brokers().len()),
            &self.settings,
        )
        .await;
        if probed.is_ok() {
            // A weak reference: the check must not keep the consumer (and its group
            // membership) alive past shutdown.
            let weak = Arc::downgrade(&consumer);
            watch_health(&self.settings, "source", move |t| {
                weak.upgrade()
                    .map(|c| c.fetch_metadata(None, t).map(|m| m.brokers().len()))
            });
        }
        let run = match probed {
            Ok(()) => match self.consume(&consumer, &tracker, &tx, &mut shutdown).await {
                Err(TransportError::Closed(_)) => Ok(()), // asked to stop
                r => r,
            },
            Err(e) => Err(e),
        };
        if run.is_ok() {
            wait_for_acks(&tracker, self.drain_timeout).await;
        }
        close_consumer(consumer, tracker, self.drain_timeout + Duration::from_secs(5)).await;
        run
    }

    async fn consume(
        &self,
        consumer: &StreamConsumer<SourceContext>,
        tracker: &Arc<Mutex<Tracker>>,
        tx: &mpsc::Sender<Inbound>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), TransportError> {
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| TransportError::Config(format!("kafka: subscribing to {topics:?}: {e}")))?;
        tracing::info!(brokers = %self.settings.brokers, group = %self.group_id, ?topics, "kafka source subscribed");
        let mut ticker = tokio::time::interval(self.commit_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let commit = || {
            let offsets = lock(tracker).committable();
            if !offsets.is_empty() {
                if let Err(e) = consumer.commit(&to_tpl(&offsets), CommitMode::Async) {
                    tracing::warn!("kafka: offset commit failed: {e}");
                    let mut t = lock(tracker);
                    for (part, o) in &offsets {
                        t.commit_result(part, *o, false);
                    }
                }
            }
        };
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let inbound = tokio::select! {
                _ = shutdown.changed() => continue_or_stop(shutdown)?,
                _ = ticker.tick() => { commit(); None }
                m = consumer.recv() => match m {
                    Ok(m) => {
                        let (input, key) = to_input(&m);
                        let ack = ack_for(tracker, m.topic(), m.partition(), m.offset());
                        Some(Inbound { input, key, ack })
                    }
                    Err(e) => {
                        tracing::warn!("kafka: receiving from {}: {e}", self.settings.brokers);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        None
                    }
                },
            };
            let Some(inbound) = inbound else { continue };
            // A full channel holds intake here (backpressure); commits go on meanwhile.
            let send = tx.send(inbound);
            tokio::pin!(send);
            loop {
                tokio::select! {
                    r = &mut send => {
                        if r.is_err() {
                            return Ok(()); // the runtime stopped listening
                        }
                        break;
                    }
                    _ = ticker.tick() => commit(),
                    _ = shutdown.changed() => { continue_or_stop(shutdown)?; }
                }
            }
        }
    }
}

/// `Err` ends the run loop cleanly (`?` in a select arm), `Ok(None)` goes on.
fn continue_or_stop(shutdown: &watch::Receiver<bool>) -> Result<Option<Inbound>, TransportError> {
    // A dropped sender means nobody can ask for shutdown any more: treat it as asked.
    if *shutdown.borrow() || shutdown.has_changed().is_err() {
        Err(TransportError::Closed("kafka source".into()))
    } else {
        Ok(None)
    }
}

impl Source for KafkaSource {
    fn run(
        self: Box<Self>,
        tx: mpsc::Sender<Inbound>,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<Result<(), TransportError>> {
        Box::pin(self.run_inner(tx, shutdown))
    }
}

/// Waits until every message handed out was acknowledged or dropped, at most `timeout`.
async fn wait_for_acks(tracker: &Mutex<Tracker>, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = lock(tracker).outstanding();
        if n == 0 {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!("kafka: {n} message(s) still unacknowledged at shutdown; they will be delivered again");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Commits the acknowledged prefix and destroys the consumer on a thread of its own, waiting at
/// most `timeout` (librdkafka's destroy can block indefinitely; the process may exit past it).
async fn close_consumer(consumer: Arc<StreamConsumer<SourceContext>>, tracker: Arc<Mutex<Tracker>>, timeout: Duration) {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("kafka-consumer-close".into())
        .spawn(move || {
            let offsets = lock(&tracker).committable();
            if !offsets.is_empty() {
                match consumer.commit(&to_tpl(&offsets), CommitMode::Sync) {
                    Ok(()) => tracing::debug!("kafka: committed {offsets:?} at shutdown"),
                    Err(e) => tracing::warn!("kafka: final offset commit failed: {e}"),
                }
            }
            consumer.unsubscribe();
            drop(consumer);
            let _ = done_tx.send(());
        });
    if spawned.is_err() {
        tracing::warn!("kafka: could not start a thread to close the consumer");
        return;
    }
    if tokio::time::timeout(timeout, done_rx).await.is_err() {
        tracing::warn!("kafka: the consumer did not close within {timeout:?}; leaving it to process exit");
    }
}

// ---------------------------------------------------------------------------------------------
// Sink

/// A publication's completion while librdkafka holds the message: the delivery report's opaque.
/// librdkafka hands opaques across threads by reference, so they must be `Sync`; a completion
/// is only ever taken out once, which `SyncWrapper` expresses without a lock.
type Pending = Box<SyncWrapper<Completion>>;

/// The producer's context: each delivery report finishes its publication's completion, on
/// the producer's polling thread, with no task and no hop through the runtime.
struct Deliveries {
    brokers: String,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Pending;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Pending) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err((e, m)) => Err(TransportError::Publish {
                url: self.brokers.clone(),
                topic: m.topic().to_owned(),
                reason: e.to_string(),
            }),
        };
        (pending.into_inner())(outcome);
    }
}

/// Produces to Kafka with `acks=all` and idempotence; a send completes on the delivery report.
#[derive(Clone)]
pub struct KafkaSink {
    producer: ThreadedProducer<Deliveries>,
    brokers: String,
    /// Publications waiting for room in librdkafka's local queue, in call order.
    backlog: Arc<Mutex<Backlog>>,
}

/// What [`KafkaSink::send_with`] has not given to librdkafka yet: the publications of the
/// current batch, held until [`Sink::end_batch`], and those librdkafka's local queue had no room
/// for (`queue.buffering.max.messages`), behind which later publications line up, so they still
/// leave in call order, while one task retries from the front.
#[derive(Default)]
struct Backlog {
    batch: Vec<(Outbound, Completion)>,
    queued: std::collections::VecDeque<(Outbound, Completion)>,
    retrying: bool,
}

impl KafkaSink {
    /// A producer for the cluster, after checking within `connect_timeout` that it answers.
    /// `linger.ms` defaults to 0 (latency first; raise it with a property for throughput).
    pub async fn connect(settings: &KafkaSettings) -> Result<Self, TransportError> {
        let config = settings.client_config(
            &[("linger.ms", "0")],
            &[("acks", "all"), ("enable.idempotence", "true")],
        )?;
        let producer: ThreadedProducer<Deliveries> = config
            .create_with_context(Deliveries {
                brokers: settings.brokers.clone(),
            })
            .map_err(|e| not_created("producer", &settings.brokers, e))?;
        let p = producer.clone();
        probe(
            move |t| p.client().fetch_metadata(None, t).map(|m| m.brokers().len()),
            settings,
        )
        .await?;
        let p = producer.clone();
        watch_health(settings, "sink", move |t| {
            Some(p.client().fetch_metadata(None, t).map(|m| m.brokers().len()))
        });
        Ok(Self {
            producer,
            brokers: settings.brokers.clone(),
            backlog: Arc::default(),
        })
    }

    /// Waits (on a blocking thread) at most `timeout` for messages still queued to be delivered.
    pub async fn flush(&self, timeout: Duration) -> Result<(), TransportError> {
        let p = self.producer.clone();
        tokio::task::spawn_blocking(move || p.flush(Timeout::After(timeout)))
            .await
            .map_err(|e| TransportError::Closed(format!("kafka producer: {e}")))?
            .map_err(|e| TransportError::Closed(format!("kafka producer for {}: flush: {e}", self.brokers)))
    }

    /// Hands one publication to librdkafka, or gives its completion back when the local queue
    /// is full. Any other refusal (an unknown topic, a message over `message.max.bytes`) is the
    /// publication's outcome.
    fn try_enqueue(&self, msg: &Outbound, done: Completion) -> Result<(), Completion> {
        let mut record = BaseRecord::with_opaque_to(&msg.topic, Box::new(SyncWrapper::new(done)))
            .payload(&msg.payload[..])
            .headers(to_headers(msg));
        if let Some(k) = &msg.key {
            record = record.key(&k[..]);
        }
        match self.producer.send(record) {
            Ok(()) => Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => Err(r.delivery_opaque.into_inner()),
            Err((e, r)) => {
                (r.delivery_opaque.into_inner())(Err(TransportError::Publish {
                    url: self.brokers.clone(),
                    topic: msg.topic.clone(),
                    reason: e.to_string(),
                }));
                Ok(())
            }
        }
    }

    /// Retries the backlog from its front until it is empty (librdkafka makes room as delivery
    /// reports come in).
    async fn retry_backlog(self) {
        loop {
            {
                let mut backlog = lock_backlog(&self.backlog);
                while let Some((msg, done)) = backlog.queued.pop_front() {
                    if let Err(done) = self.try_enqueue(&msg, done) {
                        backlog.queued.push_front((msg, done));
                        break;
                    }
                }
                if backlog.queued.is_empty() {
                    backlog.retrying = false;
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn lock_backlog(backlog: &Mutex<Backlog>) -> MutexGuard<'_, Backlog> {
    backlog.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sink for KafkaSink {
    fn send(&self, msg: Outbound) -> BoxFuture<Result<(), TransportError>> {
        send_via_completion(
            |done| {
                self.send_with(msg, done);
                self.end_batch();
            },
            format!("kafka producer for {}", self.brokers),
        )
    }

    /// Holds the publication until [`Sink::end_batch`]; its delivery report calls `done` on
    /// the producer's polling thread.
    fn send_with(&self, msg: Outbound, done: Completion) {
        lock_backlog(&self.backlog).batch.push((msg, done));
    }

    /// Enqueues the batch in librdkafka, in call order. Given one at a time, as the graph
    /// made them, each found the broker thread idle and woke it for a produce request of its
    /// own. Only when the local queue is full does a task wait for room, publications after
    /// it lining up behind it so they still leave in call order.
    fn end_batch(&self) {
        let mut backlog = lock_backlog(&self.backlog);
        let backlog = &mut *backlog;
        for (msg, done) in backlog.batch.drain(..) {
            if backlog.queued.is_empty() {
                match self.try_enqueue(&msg, done) {
                    Ok(()) => continue,
                    Err(done) => backlog.queued.push_back((msg, done)),
                }
            } else {
                backlog.queued.push_back((msg, done));
            }
        }
        if !backlog.queued.is_empty() && !backlog.retrying {
            backlog.retrying = true;
            tokio::spawn(self.clone().retry_backlog());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_cannot_be_created_names_the_property_but_not_its_value() {
        let e = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9092")
            .set("sasl.pasword", "hunter2")
            .create::<BaseConsumer>()
            .err()
            .expect("librdkafka has no such property");
        assert!(
            e.to_string().contains("hunter2"),
            "librdkafka's own message shows the value: {e}"
        );
        let said = not_created("consumer", "127.0.0.1:9092", e).to_string();
        assert!(
            said.contains("kafka consumer for 127.0.0.1:9092: property `sasl.pasword`: "),
            "{said}"
        );
        assert!(!said.contains("hunter2"), "{said}");
    }

    #[test]
    fn credentials_in_the_broker_list_are_refused_without_being_shown() {
        let settings = KafkaSettings {
            brokers: "user:hunter2@broker:9092".into(),
            properties: Vec::new(),
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            health: Health::default(),
        };
        let e = settings.client_config(&[], &[]).expect_err("refused").to_string();
        assert!(e.contains("sasl.password"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn frontier_waits_for_the_first_unacknowledged_offset() {
        let mut t = Tracker::default();
        let p = ("t".to_owned(), 0);
        let e = t.delivered("t", 0, 10);
        for o in [11, 13, 14] {
            // 12 is a gap (a transaction marker): never handed out, never waited for.
            t.delivered("t", 0, o);
        }
        assert_eq!(t.outstanding(), 4);
        t.released(&p, e, 11, true);
        t.released(&p, e, 13, true);
        assert_eq!(t.committable(), vec![]);
        t.released(&p, e, 10, true);
        assert_eq!(t.committable(), vec![(p.clone(), 14)]);
        assert_eq!(t.committable(), vec![], "nothing new to commit");
        t.released(&p, e, 14, true);
        assert_eq!(t.committable(), vec![(p.clone(), 15)]);
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn a_dropped_ack_holds_the_commit_back() {
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let a0 = ack_for(&tracker, "t", 1, 0);
        let a1 = ack_for(&tracker, "t", 1, 1);
        drop(a0); // lost in the graph without an acknowledgement
        a1.ack();
        let mut t = lock(&tracker);
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.committable(), vec![], "offset 0 was never acknowledged");
    }

    #[test]
    fn a_refused_commit_is_asked_again() {
        let mut t = Tracker::default();
        let p = ("t".to_owned(), 2);
        let e = t.delivered("t", 2, 5);
        t.released(&p, e, 5, true);
        assert_eq!(t.committable(), vec![(p.clone(), 6)]);
        t.commit_result(&p, 6, false);
        assert_eq!(t.committable(), vec![(p.clone(), 6)]);
        t.commit_result(&p, 6, true);
        assert_eq!(t.committable(), vec![]);
    }

    #[test]
    fn acks_of_a_revoked_assignment_are_ignored() {
        let mut t = Tracker::default();
        let p = ("t".to_owned(), 0);
        let old = t.delivered("t", 0, 0);
        t.delivered("t", 0, 1);
        t.released(&p, old, 0, true);
        assert_eq!(t.revoke(std::slice::from_ref(&p)), vec![(p.clone(), 1)]);
        // Assigned again, from the committed offset 1.
        let new = t.delivered("t", 0, 1);
        assert_ne!(old, new);
        t.released(&p, old, 1, true); // the old assignment's ack
        assert_eq!(t.committable(), vec![]);
        t.released(&p, new, 1, true);
        assert_eq!(t.committable(), vec![(p, 2)]);
    }

    #[test]
    fn headers_map_to_user_properties_and_content_type() {
        let headers: Vec<(&str, Option<&[u8]>)> = vec![
            ("__ts", Some(b"1700000000000:00000:n")),
            ("Content-Type", Some(b"application/json")),
            ("empty", None),
            ("bin", Some(&[0xff, b'a'])),
        ];
        let (ct, props) = from_headers(headers.into_iter());
        assert_eq!(ct.as_deref(), Some("application/json"));
        assert_eq!(
            props,
            vec![
                ("__ts".to_owned(), "1700000000000:00000:n".to_owned()),
                ("empty".to_owned(), String::new()),
                ("bin".to_owned(), "\u{fffd}a".to_owned()),
            ]
        );
        let out = Outbound {
            topic: "o".into(),
            payload: Arc::from(&b"x"[..]),
            content_type: Some("text/plain".into()),
            user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            key: None,
        };
        let h = to_headers(&out);
        let pairs: Vec<(String, Vec<u8>)> = h
            .iter()
            .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("a".to_owned(), b"1".to_vec()),
                ("a".to_owned(), b"2".to_vec()),
                ("content-type".to_owned(), b"text/plain".to_vec()),
            ]
        );
    }

    #[test]
    fn properties_resolve_secrets_and_refuse_to_weaken_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("pw");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let props = dir.path().join("client.properties");
        std::fs::write(
            &props,
            format!(
                "# comment\nsecurity.protocol=SASL_SSL\nsasl.password=file:{}\n\nsasl.username = alice\n",
                secret.display()
            ),
        )
        .unwrap();
        let mut s = KafkaSettings::new("127.0.0.1:9092");
        s.properties_file(&props).unwrap();
        assert_eq!(
            s.properties,
            vec![
                ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
                ("sasl.password".to_owned(), "s3cret".to_owned()),
                ("sasl.username".to_owned(), " alice".to_owned()),
            ]
        );
        assert!(!format!("{s:?}").contains("s3cret"), "{s:?}");

        let err = s
            .property("sasl.password=env:WASMFLOW_TEST_UNSET_VARIABLE")
            .unwrap_err();
        assert!(err.to_string().contains("WASMFLOW_TEST_UNSET_VARIABLE"), "{err}");
        let err = s.property("sasl.password: hunter2").unwrap_err();
        assert!(err.to_string().contains("expected KEY=VALUE"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = KafkaSettings::new("x:1")
            .properties_file(&dir.path().join("missing"))
            .unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");

        let mut weak = KafkaSettings::new("127.0.0.1:9092");
        weak.property("acks=1").unwrap();
        let err = weak.client_config(&[], &[("acks", "all")]).unwrap_err();
        assert!(err.to_string().contains("`acks=1`"), "{err}");
        let mut same = KafkaSettings::new("127.0.0.1:9092");
        same.property("enable.idempotence=TRUE").unwrap();
        same.property("linger.ms=20").unwrap();
        let c = same
            .client_config(&[("linger.ms", "0")], &[("enable.idempotence", "true")])
            .unwrap();
        assert_eq!(c.get("linger.ms"), Some("20"), "the user's value wins over a default");
        assert_eq!(c.get("enable.idempotence"), Some("true"));
    }

    #[test]
    fn connect_and_read_timeouts_reach_librdkafka_and_a_property_wins() {
        let mut s = KafkaSettings::new("127.0.0.1:9092");
        s.connect_timeout = Duration::from_secs(3);
        s.read_timeout = Duration::from_millis(1500);
        let c = s.client_config(&[], &[]).unwrap();
        assert_eq!(c.get("socket.timeout.ms"), Some("1500"));
        assert_eq!(c.get("socket.connection.setup.timeout.ms"), Some("3000"));
        s.property("socket.timeout.ms=9000").unwrap();
        let c = s.client_config(&[], &[]).unwrap();
        assert_eq!(c.get("socket.timeout.ms"), Some("9000"), "-X wins over the flag");
    }
}
