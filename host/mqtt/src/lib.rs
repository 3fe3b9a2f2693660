//! MQTT transport (`rumqttc`; MQTT 5, or 3.1.1 for older brokers, see [`MqttVersion`]): a
//! source that subscribes and hands each message to the runtime with an [`Ack`] that sends its
//! PUBACK, and a sink whose publications complete on the broker's PUBACK.
//!
//! Delivery rests on the broker keeping what is not acknowledged: the source connects with
//! clean start off and a session expiry, acknowledges manually (a PUBACK only when the runtime
//! calls the `Ack`), and resubscribes on every connection; so after a crash or a lost
//! connection the broker delivers again whatever was not acknowledged. The source reads as fast
//! as the runtime takes messages (mosquitto drops messages for a client that lets its queue
//! fill), with TCP_NODELAY (Nagle batching costs milliseconds per acknowledgement). Lost
//! connections are retried with exponential backoff, forever once running; at start, a broker
//! that cannot be reached within `connect_timeout` is an error.
//!
//! [`broker`] is the embedded broker `wasmflow run` starts when no broker is named.

#![warn(missing_docs)]

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{ConnAck, Filter, Packet, PubAckReason, Publish, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{Event, MqttOptions};
use rumqttc::{NetworkOptions, Outgoing, TlsConfiguration, Transport};
use tokio::sync::{mpsc, watch};

pub mod broker;
mod connection;
mod in_order;

pub use connection::MqttVersion;
use connection::{AckOf, Client, EventLoop, PollError};
use in_order::{InOrder, Ticket};

use wasmflow_transport::health::{Health, HealthFlag};
use wasmflow_transport::{
    send_via_completion, Ack, BoxFuture, Completion, Inbound, Input, Outbound, Sink, Source, TransportError,
};

/// Whether subscribing to `filter` delivers a message published on `topic`: MQTT's `+` and `#`
/// (rumqttc's matcher), an exact name, and a shared subscription's `$share/<group>/` prefix.
/// Several graphs that share one connection tell by it which of them a message is for.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let filter = match filter.strip_prefix("$share/") {
        Some(rest) => rest.split_once('/').map_or(rest, |(_, f)| f),
        None => filter,
    };
    filter == topic || rumqttc::v5::mqttbytes::matches(topic, filter)
}

/// Environment variable a broker password may come from (else a file: [`read_secret`]).
pub const PASSWORD_ENV: &str = "WASMFLOW_MQTT_PASSWORD";

/// How to reach and talk to one MQTT broker.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// `mqtt://host[:1883]` or `mqtts://host[:8883]`, for messages.
    pub url: String,
    /// Host name or address from `url`, without the brackets of an IPv6 literal.
    pub host: String,
    /// From `url`; 1883 for `mqtt://`, 8883 for `mqtts://` when it names none.
    pub port: u16,
    /// Base client id; the source uses it as is, the sink appends `-out`. A persistent session
    /// is found again by its client id, so it must be stable across restarts.
    pub client_id: String,
    /// QoS of subscriptions and publications (0 or 1).
    pub qos: u8,
    /// How long the broker keeps the session (and queues for it) while disconnected, seconds.
    pub session_expiry_secs: u32,
    /// Longest silence before the client pings (default 30 s); the broker drops a client silent
    /// for 1.5 times this.
    pub keep_alive: Duration,
    /// At start, how long to keep trying to reach the broker before giving up.
    pub connect_timeout: Duration,
    /// `None` connects without credentials, and `password` is then not sent either.
    pub username: Option<String>,
    /// Never given on the command line: from [`PASSWORD_ENV`] or a file (see [`read_secret`]).
    pub password: Option<String>,
    /// `Some` speaks TLS (set for `mqtts://`, or when CA or client files are given); `None`
    /// is plain TCP.
    pub tls: Option<TlsFiles>,
    /// Publications the sink keeps unacknowledged at once (the broker may allow fewer).
    pub max_inflight: u16,
    /// MQTT 5 unless the broker speaks only 3.1.1 ([`MqttVersion::V311`] says what is lost).
    pub version: MqttVersion,
    /// Where the source and sink report whether they are connected (`/readyz`).
    pub health: Health,
}

/// PEM files for TLS: the CA that signed the broker's certificate, and optionally a client
/// certificate and key for mutual TLS.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// `None` trusts the system's root certificates.
    pub ca: Option<PathBuf>,
    /// Given with `client_key` or not at all; mutual TLS needs `ca` too.
    pub client_cert: Option<PathBuf>,
    /// The key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

/// Reads the broker password from a file (trailing newline removed), else from the environment
/// variable: the project's one rule for secrets ([`wasmflow_transport::secret`]).
pub fn read_secret(file: Option<&std::path::Path>, env: &str) -> Result<Option<String>, TransportError> {
    wasmflow_transport::secret::from_file_or_env(file, env).map_err(|e| TransportError::Config(e.to_string()))
}

impl MqttConfig {
    /// A configuration for `url` with the defaults: QoS 1, one-day session expiry, 10 s to
    /// reach the broker at start.
    pub fn new(url: &str, client_id: &str) -> Result<Self, TransportError> {
        let bad = |why: &str| TransportError::Config(format!("MQTT broker URL `{url}`: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected mqtt://host[:port]"))?;
        let tls = match scheme {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => return Err(bad(&format!("unknown scheme `{other}` (mqtt:// or mqtts://)"))),
        };
        let rest = rest.trim_end_matches('/');
        if let Some((_, after)) = rest.rsplit_once('@') {
            // The URL shows in logs, `ps` and shell history: said without what is before `@`.
            return Err(TransportError::Config(format!(
                "MQTT broker URL `{scheme}://…@{after}`: a user name or password does not go in the URL, which shows in logs, `ps` and shell history; give --mqtt-username, and the password in --mqtt-password-file or WASMFLOW_MQTT_PASSWORD"
            )));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad(&format!("bad port `{p}`")))?),
            None => (rest, if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Self {
            url: url.to_owned(),
            host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            port,
            client_id: client_id.to_owned(),
            qos: 1,
            session_expiry_secs: 86_400,
            keep_alive: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            username: None,
            password: None,
            tls: tls.then(TlsFiles::default),
            max_inflight: 100,
            version: MqttVersion::V5,
            health: Health::default(),
        })
    }

    fn qos(&self) -> Result<QoS, TransportError> {
        match self.qos {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            q => Err(TransportError::Config(format!(
                "MQTT QoS {q} is not supported (0 or 1)"
            ))),
        }
    }

    /// A connection (not yet connected: polling its event loop connects) as `client_id`.
    fn connection(&self, client_id: String) -> Result<(Client, EventLoop), TransportError> {
        let mut net = NetworkOptions::new();
        net.set_tcp_nodelay(true);
        let transport = match &self.tls {
            Some(tls) => Some(Transport::Tls(tls_config(tls)?)),
            None => None,
        };
        // Room for every outstanding output: a publish never waits for the request channel.
        const REQUESTS: usize = 4096;
        Ok(match self.version {
            MqttVersion::V5 => {
                let mut o = MqttOptions::new(client_id, self.host.clone(), self.port);
                o.set_keep_alive(self.keep_alive)
                    .set_clean_start(false)
                    .set_session_expiry_interval(Some(self.session_expiry_secs))
                    .set_manual_acks(true)
                    .set_outgoing_inflight_upper_limit(self.max_inflight.max(1))
                    .set_request_channel_capacity(REQUESTS);
                o.set_network_options(net);
                if let Some(user) = &self.username {
                    o.set_credentials(user.clone(), self.password.clone().unwrap_or_default());
                }
                if let Some(t) = transport {
                    o.set_transport(t);
                }
                let (c, el) = rumqttc::v5::AsyncClient::new(o, REQUESTS);
                (Client::V5(c), EventLoop::V5(el))
            }
            MqttVersion::V311 => {
                // 3.1.1 has no session expiry: the broker keeps a clean-session-off session as
                // long as its own configuration says.
                let mut o = rumqttc::MqttOptions::new(client_id, self.host.clone(), self.port);
                o.set_keep_alive(self.keep_alive)
                    .set_clean_session(false)
                    .set_manual_acks(true)
                    .set_inflight(self.max_inflight.max(1))
                    .set_request_channel_capacity(REQUESTS);
                if let Some(user) = &self.username {
                    o.set_credentials(user.clone(), self.password.clone().unwrap_or_default());
                }
                if let Some(t) = transport {
                    o.set_transport(t);
                }
                let (c, mut el) = rumqttc::AsyncClient::new(o, REQUESTS);
                el.set_network_options(net);
                (Client::V311(c), EventLoop::V311(el))
            }
        })
    }

    fn connect_error(&self, reason: impl std::fmt::Display) -> TransportError {
        TransportError::Connect {
            url: self.url.clone(),
            reason: reason.to_string(),
        }
    }

    /// Polls until the first CONNACK, retrying with backoff for `connect_timeout`. A broker that
    /// refuses the connection (bad credentials, not authorised) is an error at once.
    async fn first_connect(&self, el: &mut EventLoop) -> Result<ConnAck, TransportError> {
        let start = Instant::now();
        let mut backoff = Backoff::new();
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return Ok(ack),
                Ok(_) => {}
                Err(PollError::Refused(code)) => {
                    return Err(self.connect_error(format!("the broker refused the connection: {code}")))
                }
                Err(e) => {
                    if start.elapsed() >= self.connect_timeout {
                        return Err(self.connect_error(format!(
                            "{e} (gave up after {:.0?}; is the broker running?)",
                            self.connect_timeout
                        )));
                    }
                    tracing::debug!(url = %self.url, "connecting: {e}");
                    tokio::time::sleep(backoff.next()).await;
                }
            }
        }
    }
}

fn tls_config(files: &TlsFiles) -> Result<TlsConfiguration, TransportError> {
    // rustls needs one process-wide crypto provider; a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |p: &PathBuf, what: &str| {
        std::fs::read(p).map_err(|e| TransportError::Config(format!("reading the MQTT {what} {}: {e}", p.display())))
    };
    let client_auth = match (&files.client_cert, &files.client_key) {
        (Some(c), Some(k)) => Some((read(c, "client certificate")?, read(k, "client key")?)),
        (None, None) => None,
        _ => {
            return Err(TransportError::Config(
                "MQTT TLS: a client certificate needs its key and a key its certificate".into(),
            ))
        }
    };
    match &files.ca {
        Some(ca) => Ok(TlsConfiguration::Simple {
            ca: read(ca, "CA file")?,
            alpn: None,
            client_auth,
        }),
        None if client_auth.is_none() => Ok(TlsConfiguration::default()),
        None => Err(TransportError::Config(
            "MQTT TLS with a client certificate needs the CA file too".into(),
        )),
    }
}

/// Exponential backoff from 100 ms to 5 s. Hand-written: it is a doubling and a cap, and a
/// backoff crate would bring its own timer and jitter policy to a loop that has tokio's.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Self(Duration::from_millis(100))
    }
    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        d
    }
}

/// Subscribes to topic filters (wildcards and `$share/group/…` included) and feeds the runtime.
pub struct MqttSource {
    config: MqttConfig,
    filters: Vec<String>,
}

impl MqttSource {
    /// A source reading `filters` as `config.client_id`. An empty filter list or a QoS other
    /// than 0 or 1 is refused here, before anything connects.
    pub fn new(config: MqttConfig, filters: Vec<String>) -> Result<Self, TransportError> {
        if filters.is_empty() {
            return Err(TransportError::Config(
                "an MQTT source needs at least one topic filter".into(),
            ));
        }
        config.qos()?;
        Ok(Self { config, filters })
    }

    async fn run_inner(
        self,
        tx: mpsc::Sender<Inbound>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), TransportError> {
        let cfg = &self.config;
        let qos = cfg.qos()?;
        let (client, mut el) = cfg.connection(cfg.client_id.clone())?;
        let (slow_tx, mut slow_rx) = mpsc::unbounded_channel::<(u64, AckOf)>();
        let acks = Arc::new(Acks {
            client: client.clone(),
            order: Mutex::new(AckOrder::default()),
            slow: slow_tx,
        });
        let acker = {
            let acks = acks.clone();
            tokio::spawn(async move {
                while let Some((g, a)) = slow_rx.recv().await {
                    if g == acks.lock().tickets.generation() {
                        let _ = acks.client.ack(a).await;
                        let mut order = acks.lock();
                        if g == order.tickets.generation() {
                            order.slow -= 1;
                        }
                    }
                }
            })
        };
        let _abort = AbortOnDrop(acker);
        let ready = cfg.health.flag(format!("mqtt source {}", cfg.url));
        cfg.first_connect(&mut el).await?;
        self.connected(&client, &acks).await?;
        ready.up();
        let mut backoff = Backoff::new();
        loop {
            let event = tokio::select! {
                biased;
                r = shutdown.changed() => {
                    if r.is_err() || *shutdown.borrow() { break }
                    continue;
                }
                e = el.poll() => e,
            };
            match event {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    backoff = Backoff::new();
                    let ack = if p.qos == QoS::AtMostOnce {
                        Ack::none()
                    } else {
                        let (acks, a) = (acks.clone(), AckOf::of(&p));
                        let ticket = acks.lock().tickets.received();
                        Ack::new(move || acks.ack(ticket, a))
                    };
                    let inbound = Inbound {
                        input: input_of(p),
                        key: None,
                        ack,
                    };
                    // A full channel waits here: the broker holds the rest (backpressure).
                    tokio::select! {
                        r = tx.send(inbound) => if r.is_err() { break },
                        _ = shutdown.changed() => break,
                    }
                }
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    tracing::info!(url = %cfg.url, session_present = ack.session_present, "MQTT source reconnected");
                    self.connected(&client, &acks).await?;
                    ready.up();
                }
                Ok(Event::Incoming(Packet::SubAck(s))) => {
                    for (f, code) in self.filters.iter().zip(&s.return_codes) {
                        if !matches!(code, rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)) {
                            return Err(TransportError::Config(format!(
                                "{}: the broker refused the subscription to `{f}`: {code:?}",
                                cfg.url
                            )));
                        }
                    }
                    let _ = qos;
                    tracing::info!(url = %cfg.url, filters = ?self.filters, "MQTT source subscribed");
                }
                Ok(Event::Incoming(Packet::Disconnect(d))) => {
                    tracing::warn!(url = %cfg.url, "the broker disconnected the source: {:?}", d.reason_code);
                }
                Ok(_) => {}
                Err(e) => {
                    let wait = backoff.next();
                    tracing::warn!(url = %cfg.url, "MQTT source connection lost: {e}; retrying in {wait:?}");
                    ready.down(format!("connection lost: {e}"));
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => break,
                    }
                }
            }
        }
        // A normal DISCONNECT keeps the session (it has an expiry): unacknowledged messages wait.
        client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            while !matches!(el.poll().await, Err(_) | Ok(Event::Outgoing(Outgoing::Disconnect))) {}
        })
        .await;
        Ok(())
    }

    /// A new connection: PUBACKs of earlier connections are void; (re)subscribe.
    async fn connected(&self, client: &Client, acks: &Acks) -> Result<(), TransportError> {
        acks.reconnected();
        let qos = self.config.qos()?;
        let filters: Vec<Filter> = self.filters.iter().map(|f| Filter::new(f.clone(), qos)).collect();
        client
            .subscribe_many(filters)
            .await
            .map_err(|e| TransportError::Closed(format!("{}: subscribing: {e}", self.config.url)))
    }
}

impl Source for MqttSource {
    fn run(
        self: Box<Self>,
        tx: mpsc::Sender<Inbound>,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<Result<(), TransportError>> {
        Box::pin(self.run_inner(tx, shutdown))
    }
}

/// The runtime's view of a received publication (its properties moved, not copied).
fn input_of(p: Publish) -> Input {
    let (content_type, user_properties) = match p.properties {
        Some(props) => (props.content_type, props.user_properties),
        None => (None, Vec::new()),
    };
    Input {
        topic: String::from_utf8_lossy(&p.topic).into_owned(),
        payload: Arc::from(&p.payload[..]),
        content_type,
        user_properties,
    }
}

/// How a source's [`Ack`]s reach the broker: in the order the publications arrived
/// ([`in_order`]), queued on the connection directly from the thread that finishes the message
/// (the sink's connection task, when the output's PUBACK finished the input), through the
/// acknowledgement task only when the request channel is full, and then every later one behind
/// it until it is queued.
struct Acks {
    client: Client,
    order: Mutex<AckOrder>,
    slow: mpsc::UnboundedSender<(u64, AckOf)>,
}

#[derive(Default)]
struct AckOrder {
    tickets: InOrder<AckOf>,
    /// PUBACKs of this connection handed to the acknowledgement task and not yet queued.
    slow: usize,
}

impl Acks {
    fn lock(&self) -> std::sync::MutexGuard<'_, AckOrder> {
        self.order.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn ack(&self, ticket: Ticket, a: AckOf) {
        let mut order = self.lock();
        let AckOrder { tickets, slow } = &mut *order;
        let generation = tickets.generation();
        tickets.finished(ticket, a, |a| {
            if *slow > 0 || !self.client.try_ack(a) {
                *slow += 1;
                let _ = self.slow.send((generation, a));
            }
        });
    }

    fn reconnected(&self) {
        let mut order = self.lock();
        order.tickets.reconnected();
        order.slow = 0;
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A QoS 1 publication waiting for its PUBACK: what to call then, and its topic for the error.
struct Waiter {
    done: Completion,
    topic: String,
}

impl Waiter {
    fn finish(self, r: Result<(), String>, url: &str) {
        let topic = self.topic;
        (self.done)(r.map_err(|reason| TransportError::Publish {
            url: url.to_owned(),
            topic,
            reason,
        }))
    }
}

/// QoS 1 publications waiting for their PUBACK. rumqttc numbers publications itself and
/// reports the packet id as it sends each (`Outgoing::Publish`) in the order they were queued,
/// so waiters queue in `queued` until their packet id is known.
#[derive(Default)]
struct Waiting {
    queued: VecDeque<Waiter>,
    by_pkid: HashMap<u16, VecDeque<Waiter>>,
}

impl Waiting {
    /// A publication went out with `pkid`. A retransmission (after a reconnect, or the
    /// delayed send of a packet id collision) already has its waiter.
    fn sent(&mut self, pkid: u16, collided: bool) {
        let slot = self.by_pkid.entry(pkid).or_default();
        if collided || slot.is_empty() {
            if let Some(w) = self.queued.pop_front() {
                slot.push_back(w);
            }
        }
    }

    /// The waiter the PUBACK for `pkid` answers (called after the lock is released).
    fn acked(&mut self, pkid: u16) -> Option<Waiter> {
        self.by_pkid.get_mut(&pkid).and_then(VecDeque::pop_front)
    }

    /// The broker lost the session: every waiting publication fails.
    fn take_all(&mut self) -> Vec<Waiter> {
        self.queued
            .drain(..)
            .chain(self.by_pkid.drain().flat_map(|(_, q)| q))
            .collect()
    }
}

/// Publishes outputs; a publication completes on its PUBACK (QoS 1), called from the
/// connection's task, or once queued on the connection (QoS 0, which the broker does not
/// acknowledge).
pub struct MqttSink {
    client: Client,
    qos: QoS,
    url: Arc<str>,
    waiting: Arc<Mutex<Waiting>>,
    _task: AbortOnDrop,
}

impl MqttSink {
    /// Connects (bounded retry, see [`MqttConfig::connect_timeout`]) and starts the
    /// connection's task on the current tokio runtime.
    pub async fn connect(config: MqttConfig) -> Result<Self, TransportError> {
        let qos = config.qos()?;
        let (client, mut el) = config.connection(format!("{}-out", config.client_id))?;
        let ready = config.health.flag(format!("mqtt sink {}", config.url));
        config.first_connect(&mut el).await?;
        ready.up();
        if config.version == MqttVersion::V311 {
            tracing::warn!(url = %config.url, "MQTT 3.1.1: outputs go without user properties (`__ts` among them) and content type");
        }
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        let url: Arc<str> = config.url.into();
        let task = {
            let (waiting, url) = (waiting.clone(), url.clone());
            tokio::spawn(async move { sink_loop(el, waiting, url, ready).await })
        };
        Ok(Self {
            client,
            qos,
            url,
            waiting,
            _task: AbortOnDrop(task),
        })
    }
}

fn lock_waiting(w: &Mutex<Waiting>) -> std::sync::MutexGuard<'_, Waiting> {
    w.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn sink_loop(mut el: EventLoop, waiting: Arc<Mutex<Waiting>>, url: Arc<str>, ready: HealthFlag) {
    let mut backoff = Backoff::new();
    let lock = || lock_waiting(&waiting);
    loop {
        match el.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) if pkid != 0 => lock().sent(pkid, false),
            Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => lock().sent(pkid, true),
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                let r = match ack.reason {
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                    other => Err(format!("the broker refused the publication: {other:?}")),
                };
                let waiter = lock().acked(ack.pkid);
                if let Some(w) = waiter {
                    w.finish(r, &url);
                }
                backoff = Backoff::new();
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                tracing::info!(%url, session_present = ack.session_present, "MQTT sink reconnected");
                ready.up();
                if !ack.session_present {
                    // Publications not yet acknowledged were in the lost session.
                    let lost = lock().take_all();
                    for w in lost {
                        w.finish(
                            Err("the broker lost the sink's session; unacknowledged publications are gone".into()),
                            &url,
                        );
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                let wait = backoff.next();
                tracing::warn!(%url, "MQTT sink connection lost: {e}; retrying in {wait:?}");
                ready.down(format!("connection lost: {e}"));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

impl Sink for MqttSink {
    fn send(&self, msg: Outbound) -> BoxFuture<Result<(), TransportError>> {
        send_via_completion(|done| self.send_with(msg, done), self.url.to_string())
    }

    /// Queues the publication on the connection now, in call order, its waiter beside it: the
    /// publish future is polled once here, which puts the request in rumqttc's channel (or, when
    /// the channel is full, in line for it, in order); only then does a task finish it.
    fn send_with(&self, msg: Outbound, done: Completion) {
        let properties = PublishProperties {
            content_type: msg.content_type,
            user_properties: msg.user_properties,
            ..Default::default()
        };
        let acked = self.qos != QoS::AtMostOnce;
        let topic = if acked { msg.topic.clone() } else { String::new() };
        let mut publish = Box::pin(self.client.clone().publish(
            msg.topic,
            self.qos,
            bytes::Bytes::from_owner(msg.payload),
            properties,
        ));
        let mut done = Some(done);
        let mut waiting = lock_waiting(&self.waiting);
        if acked {
            waiting.queued.push_back(Waiter {
                done: done.take().expect("taken once"),
                topic: topic.clone(),
            });
        }
        let polled = publish
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        match polled {
            std::task::Poll::Ready(Ok(())) => {
                drop(waiting);
                if let Some(done) = done {
                    done(Ok(()));
                }
            }
            std::task::Poll::Ready(Err(reason)) => {
                // Never queued: its waiter (the last one pushed) must not answer another's PUBACK.
                let done = done.or_else(|| waiting.queued.pop_back().map(|w| w.done));
                drop(waiting);
                if let Some(done) = done {
                    done(Err(TransportError::Publish {
                        url: self.url.to_string(),
                        topic,
                        reason,
                    }));
                }
            }
            std::task::Poll::Pending => {
                drop(waiting);
                let (waiting, url) = (self.waiting.clone(), self.url.clone());
                tokio::spawn(async move {
                    if let Err(reason) = publish.await {
                        // The connection is gone (the sink is being dropped): nothing will answer.
                        let lost = lock_waiting(&waiting).take_all();
                        for w in lost {
                            w.finish(Err(reason.clone()), &url);
                        }
                        if let Some(done) = done {
                            done(Err(TransportError::Closed(url.to_string())));
                        }
                    } else if let Some(done) = done {
                        done(Ok(()));
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    #[test]
    fn urls() {
        let c = MqttConfig::new("mqtt://localhost:1884", "id").unwrap();
        assert_eq!((c.host.as_str(), c.port, c.tls.is_some()), ("localhost", 1884, false));
        let c = MqttConfig::new("mqtts://broker.example", "id").unwrap();
        assert_eq!((c.port, c.tls.is_some()), (8883, true));
        for bad in ["localhost:1883", "http://x", "mqtt://:1", "mqtt://h:port"] {
            let e = MqttConfig::new(bad, "id").unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        // Credentials are refused, and not repeated.
        for secret in ["mqtt://user:hunter2@broker:1883", "mqtts://hunter2@broker"] {
            let e = MqttConfig::new(secret, "id").unwrap_err().to_string();
            assert!(e.contains("…@broker") && e.contains("--mqtt-password-file"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn filters_match_as_a_broker_delivers() {
        for (filter, topic, yes) in [
            ("sensor/+/raw", "sensor/temperature/raw", true),
            ("sensor/#", "sensor/images/raw", true),
            ("sensor/temperature/raw", "sensor/temperature/raw", true),
            ("$share/g/sensor/+/raw", "sensor/humidity/raw", true),
            ("sensor/+/raw", "sensor/a/b/raw", false),
            ("sensor/temperature/raw", "sensor/humidity/raw", false),
            ("#", "$SYS/broker/uptime", false),
        ] {
            assert_eq!(filter_matches(filter, topic), yes, "{filter} / {topic}");
        }
    }

    #[test]
    fn waiters_follow_packet_ids_and_skip_retransmissions() {
        let waiter = |topic: &str| {
            let (tx, rx) = oneshot::channel();
            let done: Completion = Box::new(move |r| {
                let _ = tx.send(r.map_err(|e| e.to_string()));
            });
            (
                Waiter {
                    done,
                    topic: topic.into(),
                },
                rx,
            )
        };
        let mut w = Waiting::default();
        let ((a, mut ra), (b, mut rb)) = (waiter("a"), waiter("b"));
        w.queued.extend([a, b]);
        w.sent(1, false);
        w.sent(1, false); // retransmission of 1: b must not be taken by it
        w.sent(2, false);
        w.acked(2).expect("b waits for 2").finish(Ok(()), "mqtt://x");
        assert_eq!(rb.try_recv().unwrap(), Ok(()));
        assert!(ra.try_recv().is_err());
        w.acked(1)
            .expect("a waits for 1")
            .finish(Err("refused".into()), "mqtt://x");
        let e = ra.try_recv().unwrap().unwrap_err();
        assert!(e.contains("`a`") && e.contains("refused"), "{e}");
        assert!(w.acked(1).is_none(), "answered once");
    }
}
