//! MQTT end to end (issue 4): `graph-simple` (°F → °C) through a real mosquitto, two relays side
//! by side in one run, so the comparison is between runtimes, not between machines or moments:
//!
//! * **wasmflow** — the `wasmflow` binary: `run compose/tests/azure-compat/graph-simple.yaml
//!   --mqtt mqtt://127.0.0.1:PORT --source … --sink … --qos Q` (persistent session, manual
//!   acknowledgements: an input's PUBACK only after its output's PUBACK, TCP_NODELAY).
//! * **native** — this binary re-executed as a plain rumqttc relay (MQTT 5, `rumqttc::v5`): a
//!   source connection subscribed at QoS Q with manual acks, the sample operator's own Rust logic
//!   (`temperature::map`, the rlib the component is built from, as `benches/inprocess.rs` and
//!   `benches/kafka.rs` use it), a sink connection publishing at QoS Q with the input's user
//!   properties and content type, and the input acknowledged after the output's PUBACK. The same
//!   at-least-once contract, the same two connections (source and `-out` sink), TCP_NODELAY,
//!   persistent session; no WebAssembly, no router, no metrics.
//!
//! * **node-red** — Node-RED (installed by `scripts/setup.sh --bench`; `$WASMFLOW_NODE_RED` names
//!   its `red.js`), headless, running a flow written here: `mqtt in` → a `function` doing the same
//!   conversion → `mqtt out` (MQTT 5, persistent session). Left out when not installed, or with
//!   `--no-node-red`. It acknowledges inputs on receipt: a weaker contract than the two above.
//! * **wasmflow-base** — with `WASMFLOW_BENCH_BASELINE=/path/to/wasmflow`, another build of
//!   wasmflow in the same run (before/after measurements).
//!
//! All are child processes, each on topics of its own (`bench/qQ/<relay>/in` → `…/out`).
//! The loader and the collector are rumqttc clients in this process (TCP_NODELAY). For QoS 0
//! and QoS 1 in turn, input is offered at a fixed rate (default 2,000 msg/s for 10 s, in
//! `--rounds` rounds with the relays taking turns, so a burst of load from elsewhere on the
//! machine hits both alike) with the send time, a sequence number and a run id in user
//! properties (and a valid `__ts`, as a sensor would send it); the collector subscribes to the
//! relay's output at the same QoS and measures latency (send → arrival at the collector: two
//! trips through the broker), loss (inputs whose output never arrived) and duplicates, and
//! checks every output payload against `temperature::map` of its input. CPU per message = the
//! relay process's utime + stime (`/proc/PID/stat`, clock ticks) over the measured window ÷
//! messages relayed; context switches per message (all the relay's threads, /proc/PID/task)
//! show where that CPU goes at a fixed rate: waking threads. Then **full speed** at QoS 1: `--full-rounds` rounds (default 3), relays
//! taking turns, of `--full-speed` messages (default 10,000) published as fast as the loader
//! can, reporting msgs/s and loss.
//!
//! The broker runs with mosquitto's default limits **written out** in its configuration
//! (`max_inflight_messages 20`, `max_queued_messages 1000`): issue 4 measured that mosquitto
//! acknowledges a QoS 1 publish and then drops it when a subscriber lags beyond them, so a relay
//! that reads too slowly loses data even at QoS 1; the targets are stated against these limits.
//! Drops the broker reports ("Outgoing messages are being dropped for client …", log level
//! notice) are listed under the table with the client they hit, so a loss is attributed to the
//! relay or to the collector. The broker also sets TCP_NODELAY on its sockets
//! (`set_tcp_nodelay true`; mosquitto's default is false): otherwise Nagle's algorithm on the
//! broker's side delays QoS 0 deliveries (nothing comes back to release them) by milliseconds,
//! for both relays alike, and the latency measured is the broker's, not the relay's.
//! `--broker-nagle` keeps mosquitto's default to see that. On 2 cores the broker, loader and
//! collector take much of the CPU, which is why CPU per message and latency, not msgs/s alone,
//! are the comparison.
//!
//! `cargo bench -p wasmflow-cli --bench broker [-- --quick] [--rate R] [--seconds S]
//! [--rounds N] [--full-speed N] [--broker-nagle]`. Markdown tables on stdout, progress on
//! stderr (BENCHMARKS.md). The graph's module comes from `$WASMFLOW_MODULES` or target/modules.

mod support;

use std::collections::VecDeque;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, Publish, PublishProperties, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{NetworkOptions, Outgoing};

use support::{arg, cpu_ticks, expected_outputs, fmt_int, quick, ratio, reading, repo, ticks_per_sec};

/// mosquitto's defaults (mosquitto.conf(5)), written into the broker's configuration.
const MAX_INFLIGHT: u32 = 20;
const MAX_QUEUED: u32 = 1000;
/// After the last send, how long without a new output ends a run early (the rest is lost).
const QUIET_END: Duration = Duration::from_secs(3);

/// One clock for send and arrival times (loader and collector are both in this process).
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ns() -> u64 {
    EPOCH.elapsed().as_nanos() as u64
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn qos_of(q: u8) -> Result<QoS> {
    match q {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        q => bail!("QoS {q}: only 0 and 1 are compared"),
    }
}

fn user_prop<'a>(p: &'a Publish, key: &str) -> Option<&'a str> {
    p.properties
        .as_ref()?
        .user_properties
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// rumqttc options every client here uses: MQTT 5, TCP_NODELAY (Nagle costs milliseconds per
/// acknowledgement, issue 4), 100 outgoing publications in flight at most (the broker may
/// allow fewer).
fn options(id: &str, port: u16, persistent: bool) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_start(!persistent)
        .set_session_expiry_interval(persistent.then_some(86_400))
        .set_outgoing_inflight_upper_limit(100)
        .set_request_channel_capacity(4096);
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    o.set_network_options(net);
    o
}

// ---------------------------------------------------------------------------------------------
// The native relay (child mode)

/// Inputs waiting for their output's PUBACK: in publication order until the sink's event loop
/// gives the output a packet id, then by packet id (as `host/mqtt/src/lib.rs` pairs them).
#[derive(Default)]
struct Pending {
    queued: VecDeque<Publish>,
    by_pkid: std::collections::HashMap<u16, VecDeque<Publish>>,
}

impl Pending {
    /// An output went out with `pkid`; a retransmission already has its input.
    fn sent(&mut self, pkid: u16, collided: bool) {
        let slot = self.by_pkid.entry(pkid).or_default();
        if collided || slot.is_empty() {
            if let Some(p) = self.queued.pop_front() {
                slot.push_back(p);
            }
        }
    }

    fn acked(&mut self, pkid: u16) -> Option<Publish> {
        self.by_pkid.get_mut(&pkid).and_then(VecDeque::pop_front)
    }
}

fn native_relay(port: u16, input: &str, output: &str, qos: u8, id: &str) -> Result<()> {
    let qos = qos_of(qos)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (input, output, id) = (input.to_owned(), output.to_owned(), id.to_owned());
    rt.block_on(async move {
        let mut src_opts = options(&id, port, true);
        src_opts.set_manual_acks(true);
        let (src, mut src_el) = AsyncClient::new(src_opts, 4096);
        let (out, mut out_el) = AsyncClient::new(options(&format!("{id}-out"), port, true), 4096);
        let pending = Arc::new(Mutex::new(Pending::default()));
        // Acknowledgements go through a task of their own, so the sink's event loop never waits
        // on the source's request channel.
        let (ack_tx, mut ack_rx) = tokio::sync::mpsc::unbounded_channel::<Publish>();
        {
            let src = src.clone();
            tokio::spawn(async move {
                while let Some(p) = ack_rx.recv().await {
                    if src.ack(&p).await.is_err() {
                        break;
                    }
                }
            });
        }
        {
            let (pending, ack_tx) = (pending.clone(), ack_tx.clone());
            tokio::spawn(async move {
                loop {
                    match out_el.poll().await {
                        Ok(Event::Outgoing(Outgoing::Publish(pkid))) if pkid != 0 => lock(&pending).sent(pkid, false),
                        Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => lock(&pending).sent(pkid, true),
                        Ok(Event::Incoming(Packet::PubAck(a))) => {
                            let input = lock(&pending).acked(a.pkid);
                            match (input, a.reason) {
                                (Some(p), PubAckReason::Success | PubAckReason::NoMatchingSubscribers) => {
                                    let _ = ack_tx.send(p);
                                }
                                // Refused: the input stays unacknowledged (the broker redelivers
                                // it on the next connection).
                                (_, reason) => eprintln!("native relay: publication {} refused: {reason:?}", a.pkid),
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            eprintln!("native relay: sink connection: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
        }
        src.subscribe(input.clone(), qos).await?;
        loop {
            match src_el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let payload: bytes::Bytes = match temperature::map(&p.payload) {
                        Ok(temperature::MapOutcome::Unchanged) => p.payload.clone(),
                        Ok(temperature::MapOutcome::Replaced(b)) => b.into(),
                        Err(e) => {
                            // Dropped, as wasmflow does without a dead-letter topic.
                            eprintln!("native relay: temperature::map: {e}");
                            let _ = ack_tx.send(p);
                            continue;
                        }
                    };
                    let properties = PublishProperties {
                        user_properties: p
                            .properties
                            .as_ref()
                            .map(|x| x.user_properties.clone())
                            .unwrap_or_default(),
                        content_type: p.properties.as_ref().and_then(|x| x.content_type.clone()),
                        ..Default::default()
                    };
                    let needs_ack = p.qos != QoS::AtMostOnce;
                    if needs_ack && qos != QoS::AtMostOnce {
                        lock(&pending).queued.push_back(p);
                    } else if needs_ack {
                        let _ = ack_tx.send(p);
                    }
                    // A full request channel waits here: the broker holds the rest (backpressure).
                    out.publish_with_properties(output.clone(), qos, false, payload, properties)
                        .await
                        .context("publishing")?;
                }
                Ok(Event::Incoming(Packet::SubAck(s))) => {
                    if !s
                        .return_codes
                        .iter()
                        .all(|c| matches!(c, SubscribeReasonCode::Success(_)))
                    {
                        bail!("the broker refused the subscription to {input}: {:?}", s.return_codes);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("native relay: source connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The broker

fn mosquitto_binary() -> Result<PathBuf> {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .context("mosquitto is not installed: run scripts/setup.sh (apt-get install mosquitto)")
}

struct Mosquitto {
    port: u16,
    log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// mosquitto on a free loopback port with its default limits written out. Its log goes to
    /// its standard error, a file opened here (it drops privileges when started as root).
    fn start(nodelay: bool) -> Result<Self> {
        let bin = mosquitto_binary()?;
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free loopback port")?
            .port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\n\
                 allow_anonymous true\n\
                 persistence false\n\
                 max_inflight_messages {MAX_INFLIGHT}\n\
                 max_queued_messages {MAX_QUEUED}\n\
                 max_queued_bytes 0\n\
                 set_tcp_nodelay {nodelay}\n\
                 log_dest stderr\n\
                 log_type error\n\
                 log_type warning\n\
                 log_type notice\n"
            ),
        )
        .with_context(|| format!("writing {}", conf.display()))?;
        let log = dir.path().join("mosquitto.log");
        let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let m = Self {
            port,
            log,
            child,
            _dir: dir,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > until {
                bail!(
                    "mosquitto did not listen on {port} within 10 s; its log:\n{}",
                    m.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(m)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Clients the broker said it dropped messages for, in its log after byte `from`.
    fn drops_since(&self, from: usize) -> Vec<String> {
        let text = self.log_text();
        let mut clients: Vec<String> = text
            .get(from..)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.split_once("being dropped for client ")
                    .map(|(_, c)| c.trim_end_matches('.').to_owned())
            })
            .collect();
        clients.sort();
        clients.dedup();
        clients
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Clients in this process

/// A client's event loop, run on the bench's runtime; stopped when dropped.
struct Conn {
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        let _ = self.client.try_disconnect();
        self.task.abort();
    }
}

/// Connects `id` (clean session), subscribes to `subscribe` if given, and returns once the
/// broker acknowledged the connection (and subscription). `on_publish` sees every message.
fn connect(
    rt: &tokio::runtime::Runtime,
    id: &str,
    port: u16,
    cap: usize,
    subscribe: Option<(&str, QoS)>,
    mut on_publish: impl FnMut(Publish) + Send + 'static,
) -> Result<Conn> {
    let (client, mut el) = AsyncClient::new(options(id, port, false), cap);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let wants_suback = subscribe.is_some();
    let task = rt.spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => on_publish(p),
                Ok(Event::Incoming(Packet::ConnAck(_))) if !wants_suback => {
                    let _ = ready_tx.send(Ok(()));
                }
                Ok(Event::Incoming(Packet::SubAck(s))) => {
                    let ok = s
                        .return_codes
                        .iter()
                        .all(|c| matches!(c, SubscribeReasonCode::Success(_)));
                    let _ = ready_tx.send(if ok {
                        Ok(())
                    } else {
                        Err(format!("subscription refused: {:?}", s.return_codes))
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    let conn = Conn { client, task };
    if let Some((topic, qos)) = subscribe {
        rt.block_on(conn.client.subscribe(topic, qos)).context("subscribing")?;
    }
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match ready_rx.recv_timeout(left) {
            Ok(Ok(())) => return Ok(conn),
            Ok(Err(e)) if Instant::now() < until => eprintln!("  {id}: {e}; retrying"),
            Ok(Err(e)) => bail!("{id}: {e}"),
            Err(_) => bail!("{id}: not connected to 127.0.0.1:{port} within 10 s"),
        }
    }
}

/// What the collector saw of one run.
struct Collected {
    run: String,
    seen: Vec<bool>,
    latencies_ns: Vec<u64>,
    dups: usize,
    wrong: usize,
    first_wrong: Option<String>,
    last_arrival: Option<Instant>,
}

fn collector(
    rt: &tokio::runtime::Runtime,
    port: u16,
    topic: &str,
    qos: QoS,
    run: &str,
    n: usize,
    expected: Arc<Vec<Vec<u8>>>,
) -> Result<(Conn, Arc<Mutex<Collected>>)> {
    let state = Arc::new(Mutex::new(Collected {
        run: run.to_owned(),
        seen: vec![false; n],
        latencies_ns: Vec::with_capacity(n),
        dups: 0,
        wrong: 0,
        first_wrong: None,
        last_arrival: None,
    }));
    let s = state.clone();
    let conn = connect(
        rt,
        &format!("bench-collector-{run}"),
        port,
        64,
        Some((topic, qos)),
        move |p| {
            let now = now_ns();
            let mut c = lock(&s);
            if user_prop(&p, "run") != Some(c.run.as_str()) {
                return;
            }
            c.last_arrival = Some(Instant::now());
            let seq = user_prop(&p, "seq").and_then(|v| v.parse::<usize>().ok());
            let sent = user_prop(&p, "sent-ns").and_then(|v| v.parse::<u64>().ok());
            let (Some(seq), Some(sent)) = (seq, sent) else {
                c.wrong += 1;
                return;
            };
            if seq >= c.seen.len() || expected.get(seq % 1000).is_none_or(|e| e[..] != p.payload[..]) {
                c.wrong += 1;
                if c.first_wrong.is_none() {
                    c.first_wrong = Some(format!("seq {seq}: {}", String::from_utf8_lossy(&p.payload)));
                }
                return;
            }
            if std::mem::replace(&mut c.seen[seq], true) {
                c.dups += 1;
            } else {
                c.latencies_ns.push(now.saturating_sub(sent));
            }
        },
    )?;
    Ok((conn, state))
}

// ---------------------------------------------------------------------------------------------
// Driver

/// Context switches (voluntary and not) of every thread of `pid` so far: each is a thread
/// going to sleep or being preempted, so per message they show how many hand-offs a relay makes.
fn ctx_switches(pid: u32) -> Result<u64> {
    let dir = format!("/proc/{pid}/task");
    let mut total = 0;
    for task in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let path = task?.path().join("status");
        // A thread that just exited has no status any more.
        let Ok(status) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in status.lines() {
            if let Some(v) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += v
                    .trim()
                    .parse::<u64>()
                    .with_context(|| format!("{}: {line}", path.display()))?;
            }
        }
    }
    Ok(total)
}

struct Relay {
    /// Also its topics' and client ids' middle part (`bench/qQ/<name>/in`).
    name: &'static str,
    qos: QoS,
    child: Child,
    input: String,
    output: String,
    /// The child's standard error.
    log: PathBuf,
}

impl Relay {
    fn start(name: &'static str, q: u8, mut cmd: Command, logs: &std::path::Path) -> Result<Self> {
        let log = logs.join(format!("{name}-q{q}.log"));
        let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting the {name} relay"))?;
        Ok(Self {
            name,
            qos: qos_of(q)?,
            child,
            input: topic(q, name, "in"),
            output: topic(q, name, "out"),
            log,
        })
    }

    /// Fails (with the relay's log) when it exited.
    fn check(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: String = log
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            bail!("the {} relay exited ({status}); its log:\n{tail}", self.name);
        }
        Ok(())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn topic(q: u8, relay: &str, end: &str) -> String {
    format!("bench/q{q}/{relay}/{end}")
}

#[derive(Clone, Copy)]
enum Load {
    /// `rate` msg/s for `secs` seconds.
    Rate { rate: usize, secs: f64 },
    /// `n` messages as fast as the loader can publish them.
    Full { n: usize },
}

impl Load {
    fn messages(self) -> usize {
        match self {
            Load::Rate { rate, secs } => (rate as f64 * secs).round() as usize,
            Load::Full { n } => n,
        }
    }
}

/// One relay at one QoS and load, summed over the rounds it was measured in.
struct Row {
    relay: &'static str,
    qos: u8,
    /// The whole load (all rounds).
    load: Load,
    sent: usize,
    /// Time the loader took to publish (all rounds).
    sending_secs: f64,
    received: usize,
    dups: usize,
    /// First send → last arrival, summed over rounds.
    active_secs: f64,
    cpu_secs: f64,
    ctx_switches: u64,
    /// Send → arrival of each first arrival, ns.
    latencies_ns: Vec<u64>,
    /// Clients mosquitto reported dropping messages for during the measurement.
    broker_drops: Vec<String>,
}

impl Row {
    fn new(relay: &Relay, load: Load) -> Self {
        Self {
            relay: relay.name,
            qos: if relay.qos == QoS::AtMostOnce { 0 } else { 1 },
            load,
            sent: 0,
            sending_secs: 0.0,
            received: 0,
            dups: 0,
            active_secs: 0.0,
            cpu_secs: 0.0,
            ctx_switches: 0,
            latencies_ns: Vec::new(),
            broker_drops: Vec::new(),
        }
    }

    fn lost(&self) -> usize {
        self.sent - self.received
    }

    fn offered_per_s(&self) -> f64 {
        self.sent as f64 / self.sending_secs
    }

    fn msgs_per_s(&self) -> f64 {
        self.received as f64 / self.active_secs
    }

    /// CPU time of the relay per message relayed, µs.
    fn cpu_us_per_msg(&self) -> f64 {
        self.cpu_secs * 1e6 / self.received.max(1) as f64
    }

    fn ctx_per_msg(&self) -> f64 {
        self.ctx_switches as f64 / self.received.max(1) as f64
    }

    /// Another round of the same relay and load, summed in.
    fn add(&mut self, mut other: Row) {
        self.sent += other.sent;
        self.sending_secs += other.sending_secs;
        self.received += other.received;
        self.dups += other.dups;
        self.active_secs += other.active_secs;
        self.cpu_secs += other.cpu_secs;
        self.ctx_switches += other.ctx_switches;
        self.latencies_ns.append(&mut other.latencies_ns);
        for d in other.broker_drops {
            if !self.broker_drops.contains(&d) {
                self.broker_drops.push(d);
            }
        }
    }

    /// Latency percentile, ms.
    fn pct_ms(&self, q: f64) -> f64 {
        let mut lat = self.latencies_ns.clone();
        if lat.is_empty() {
            return f64::NAN;
        }
        lat.sort_unstable();
        lat[((lat.len() - 1) as f64 * q).round() as usize] as f64 / 1e6
    }
}

struct Bench {
    rt: tokio::runtime::Runtime,
    broker: Mosquitto,
    expected: Arc<Vec<Vec<u8>>>,
    tps: f64,
    runs: usize,
}

impl Bench {
    /// Publishes a reading every 100 ms until one comes back through `relay` (it subscribed
    /// and, for wasmflow, compiled its graph).
    fn wait_ready(&mut self, relay: &mut Relay) -> Result<()> {
        self.runs += 1;
        let run = format!("ready-{}", self.runs);
        let n = 1200;
        let (_c, got) = collector(
            &self.rt,
            self.broker.port,
            &relay.output,
            relay.qos,
            &run,
            n,
            self.expected.clone(),
        )?;
        let loader = connect(
            &self.rt,
            &format!("bench-loader-{run}"),
            self.broker.port,
            16,
            None,
            |_| {},
        )?;
        for i in 0..n {
            relay.check()?;
            if !lock(&got).latencies_ns.is_empty() {
                return Ok(());
            }
            self.rt
                .block_on(loader.client.publish_with_properties(
                    relay.input.clone(),
                    QoS::AtLeastOnce,
                    false,
                    reading(i),
                    properties(&run, i),
                ))
                .context("publishing")?;
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("the {} relay relayed nothing within {} s", relay.name, n / 10)
    }

    /// Offers `load` to `relay` once and adds what happened to `row`.
    fn measure(&mut self, relay: &mut Relay, load: Load, row: &mut Row) -> Result<()> {
        relay.check()?;
        self.runs += 1;
        let run = format!("{}-{}", relay.name, self.runs);
        let n = load.messages();
        let port = self.broker.port;
        let (_c, got) = collector(&self.rt, port, &relay.output, relay.qos, &run, n, self.expected.clone())?;
        // A small request channel, so a send time is close to when the message went out.
        let loader = connect(&self.rt, &format!("bench-loader-{run}"), port, 16, None, |_| {})?;
        let log_from = self.broker.log_text().len();
        let pid = relay.child.id();
        let cpu0 = cpu_ticks(pid)?;
        let ctx0 = ctx_switches(pid)?;
        let start = Instant::now();
        for i in 0..n {
            if let Load::Rate { rate, .. } = load {
                let due = start + Duration::from_nanos(i as u64 * 1_000_000_000 / rate as u64);
                if let Some(w) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(w);
                }
            }
            self.rt
                .block_on(loader.client.publish_with_properties(
                    relay.input.clone(),
                    relay.qos,
                    false,
                    reading(i),
                    properties(&run, i),
                ))
                .context("publishing")?;
        }
        let sending = start.elapsed();
        let sent_at = Instant::now();
        let (received, last) = loop {
            std::thread::sleep(Duration::from_millis(10));
            let c = lock(&got);
            let last = c.last_arrival.unwrap_or(sent_at).max(sent_at);
            if c.latencies_ns.len() == n || last.elapsed() > QUIET_END || sent_at.elapsed() > Duration::from_secs(60) {
                break (c.latencies_ns.len(), c.last_arrival);
            }
        };
        let cpu = cpu_ticks(pid)?.saturating_sub(cpu0);
        let ctx = ctx_switches(pid)?.saturating_sub(ctx0);
        // Duplicates may trail.
        std::thread::sleep(Duration::from_millis(200));
        relay.check()?;
        let mut c = lock(&got);
        if c.wrong > 0 {
            bail!(
                "{}: {} outputs were not temperature::map of their input (first: {})",
                relay.name,
                c.wrong,
                c.first_wrong.as_deref().unwrap_or("no seq / sent-ns property")
            );
        }
        row.sent += n;
        row.sending_secs += sending.as_secs_f64();
        row.received += received;
        row.dups += c.dups;
        row.active_secs += last
            .map_or(sending, |l| l.saturating_duration_since(start))
            .as_secs_f64();
        row.cpu_secs += cpu as f64 / self.tps;
        row.ctx_switches += ctx;
        row.latencies_ns.append(&mut c.latencies_ns);
        for d in self.broker.drops_since(log_from) {
            if !row.broker_drops.contains(&d) {
                row.broker_drops.push(d);
            }
        }
        Ok(())
    }
}

/// The loader's user properties: run id, sequence number, send time (ns on this process's
/// clock), and a valid `__ts` (wall-clock milliseconds) as a sensor sends it.
fn properties(run: &str, i: usize) -> PublishProperties {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    PublishProperties {
        user_properties: vec![
            ("__ts".into(), format!("{ms:015}:00000:bench-loader")),
            ("run".into(), run.to_owned()),
            ("seq".into(), i.to_string()),
            ("sent-ns".into(), now_ns().to_string()),
        ],
        ..Default::default()
    }
}

struct Setup {
    rate: usize,
    secs: usize,
    rounds: usize,
    full_n: usize,
    full_rounds: usize,
    broker_nagle: bool,
}

/// The relays compared, in table order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Wasmflow,
    Native,
    NodeRed,
    /// Another `wasmflow` binary (`$WASMFLOW_BENCH_BASELINE`), for before/after measurements.
    Baseline,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Wasmflow => "wasmflow",
            Kind::Native => "native",
            Kind::NodeRed => "node-red",
            Kind::Baseline => "wasmflow-base",
        }
    }
}

fn print_tables(rows: &[Row], kinds: &[Kind], setup: &Setup) {
    let Setup {
        rate,
        secs,
        rounds,
        full_n,
        full_rounds,
        ..
    } = *setup;
    let relays: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    println!(
        "\ngraph-simple through {}: {} vs a native rumqttc relay; {} msg/s offered for {secs} s per QoS \
         ({rounds} rounds of {:.1} s, relays taking turns), then full speed at QoS 1 ({full_rounds} rounds of {} messages, \
         relays taking turns); latency = send → arrival at a subscriber in the bench (two trips through the broker); \
         CPU = the relay process's user+system time (all its threads, `/proc/PID/stat`) over the phase / messages relayed; \
         ctx switches = context switches of all the relay's threads / messages relayed\n",
        broker_version(),
        relays.join(", "),
        fmt_int(rate as f64),
        secs as f64 / rounds as f64,
        fmt_int(full_n as f64),
    );
    println!(
        "Broker configuration: max_inflight_messages {MAX_INFLIGHT}, max_queued_messages {MAX_QUEUED} (mosquitto's \
         defaults, written out), set_tcp_nodelay {}.\n",
        !setup.broker_nagle
    );
    println!(
        "| relay | QoS | offered | msgs/s | vs native | loss | dups | CPU µs/msg | vs native | p50 ms | p99 ms | ctx switches/msg |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let find = |relay: &str, q: u8, full: bool| {
        rows.iter()
            .find(|r| r.relay == relay && r.qos == q && matches!(r.load, Load::Full { .. }) == full)
    };
    for (full, q) in [(false, 0), (false, 1), (true, 1)] {
        let native = find("native", q, full);
        for relay in &relays {
            let Some(r) = find(relay, q, full) else { continue };
            let offered = match r.load {
                Load::Rate { rate, secs } => format!("{}/s × {secs} s", fmt_int(rate as f64)),
                Load::Full { n } => format!(
                    "full speed: {} msgs at {}/s",
                    fmt_int(n as f64),
                    fmt_int(r.offered_per_s())
                ),
            };
            let vs = |f: fn(&Row) -> f64| native.map_or("–".into(), |n| ratio(f(r), f(n)));
            let bold = |x: String| if *relay == "wasmflow" { format!("**{x}**") } else { x };
            println!(
                "| {} | {} | {offered} | {} | {} | {} ({:.2} %) | {} | {:.1} | {} | {:.3} | {:.3} | {:.1} |",
                r.relay,
                r.qos,
                fmt_int(r.msgs_per_s()),
                if full {
                    bold(vs(Row::msgs_per_s))
                } else {
                    vs(Row::msgs_per_s)
                },
                r.lost(),
                100.0 * r.lost() as f64 / r.sent.max(1) as f64,
                r.dups,
                r.cpu_us_per_msg(),
                if full {
                    vs(Row::cpu_us_per_msg)
                } else {
                    bold(vs(Row::cpu_us_per_msg))
                },
                r.pct_ms(0.50),
                r.pct_ms(0.99),
                r.ctx_per_msg()
            );
        }
    }
    let drops: Vec<String> = rows
        .iter()
        .filter(|r| !r.broker_drops.is_empty())
        .map(|r| {
            let what = match r.load {
                Load::Rate { .. } => "fixed rate",
                Load::Full { .. } => "full speed",
            };
            format!("{} QoS {} {what}: {}", r.relay, r.qos, r.broker_drops.join(", "))
        })
        .collect();
    if drops.is_empty() {
        println!("\nmosquitto reported no dropped messages.");
    } else {
        println!(
            "\nmosquitto reported dropping messages for (run: clients): {}.",
            drops.join("; ")
        );
    }
    if relays.contains(&"node-red") {
        println!(
            "\nNode-RED acknowledges an input when it receives it (MQTT.js), not after its output's PUBACK: a weaker \
             guarantee than the two relays above, which acknowledge only what reached the broker again."
        );
    }

    println!("\nTargets (issue 16), from this run:\n");
    println!("| target | QoS 0 | QoS 1 | status |");
    println!("|---|---:|---:|---|");
    let status = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    };
    let per_q = |f: &dyn Fn(u8) -> Option<(String, bool)>| {
        let (a, b) = (f(0), f(1));
        let ok = match (&a, &b) {
            (None, None) => None,
            _ => Some([&a, &b].iter().all(|x| x.as_ref().is_none_or(|(_, ok)| *ok))),
        };
        let cell = |x: &Option<(String, bool)>| x.as_ref().map_or("–".to_owned(), |(s, _)| s.clone());
        (cell(&a), cell(&b), status(ok))
    };
    let (a, b, s) = per_q(&|q| {
        let (w, n) = (find("wasmflow", q, false)?, find("native", q, false)?);
        let r = w.cpu_us_per_msg() / n.cpu_us_per_msg();
        Some((
            format!("{r:.2}× ({:.1} vs {:.1} µs)", w.cpu_us_per_msg(), n.cpu_us_per_msg()),
            r <= 1.25,
        ))
    });
    println!(
        "| wasmflow CPU per message ≤ 1.25× native at {} msg/s | {a} | {b} | {s} |",
        fmt_int(rate as f64)
    );
    let (a, b, s) = per_q(&|q| {
        let w = find("wasmflow", q, false)?;
        Some((format!("{:.3} ms", w.pct_ms(0.99)), w.pct_ms(0.99) <= 1.5))
    });
    println!(
        "| wasmflow p99 ≤ 1.5 ms at {} msg/s | {a} | {b} | {s} |",
        fmt_int(rate as f64)
    );
    let (a, b, s) = per_q(&|q| {
        let w = find("wasmflow", q, false)?;
        Some((format!("{} lost", w.lost()), w.lost() == 0))
    });
    println!(
        "| wasmflow no loss at {} msg/s | {a} | {b} | {s} |",
        fmt_int(rate as f64)
    );
    let (a, b, s) = per_q(&|q| {
        let (w, n) = (find("wasmflow", q, true)?, find("native", q, true)?);
        let r = w.msgs_per_s() / n.msgs_per_s();
        Some((
            format!(
                "{r:.2}× ({} vs {} msgs/s)",
                fmt_int(w.msgs_per_s()),
                fmt_int(n.msgs_per_s())
            ),
            r >= 0.9,
        ))
    });
    println!("| wasmflow full-speed throughput ≥ 0.9× native | {a} | {b} | {s} |");
    let (a, b, s) = per_q(&|q| {
        let (w, n) = (find("wasmflow", q, true)?, find("native", q, true)?);
        Some((
            format!("{} vs {} lost of {}", w.lost(), n.lost(), fmt_int(w.sent as f64)),
            w.lost() <= n.lost(),
        ))
    });
    println!("| wasmflow full-speed loss ≤ native's (default limits) | {a} | {b} | {s} |");
}

/// `mosquitto 2.0.11`, from its `-h` banner.
fn broker_version() -> String {
    Command::new(mosquitto_binary().unwrap_or_default())
        .arg("-h")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().replace(" version", ""))
        })
        .unwrap_or_else(|| "mosquitto".into())
}

/// Where Node-RED is: `$WASMFLOW_NODE_RED` (its `red.js`), else where `scripts/setup.sh --bench`
/// installs it.
fn node_red() -> Option<PathBuf> {
    let p = std::env::var_os("WASMFLOW_NODE_RED").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/wasmflow/node-red/node_modules/node-red/red.js"))
    })?;
    p.is_file().then_some(p)
}

/// The Node-RED flow the bench runs: MQTT in → a function doing graph-simple's conversion
/// (°F → °C, the `temperature` map's record, numbers formatted as serde_json does) → MQTT out,
/// MQTT 5 with a persistent session, user properties carried from input to output.
fn node_red_flow(port: u16, q: u8, name: &str) -> String {
    let func = r#"let t;
try { t = JSON.parse(msg.payload).temperature; } catch (e) { return msg; }
if (!t || t.unit !== "F" || typeof t.value !== "number") { return msg; }
const c = (t.value - 32) * 5 / 9;
const num = (x) => Number.isInteger(x) ? x.toFixed(1) : String(x);
msg.payload = '{"temperature":{"value":' + num(c) + ',"count":0,"max":0.0,"min":0.0,"average":0.0,"last":0.0,"unit":"C","overtemp":false}}';
return msg;"#;
    serde_json::json!([
        {"id": "tab", "type": "tab", "label": "graph-simple"},
        {"id": "broker", "type": "mqtt-broker", "name": "mosquitto", "broker": "127.0.0.1", "port": port.to_string(),
         "clientid": format!("bench-{name}-q{q}"), "autoConnect": true, "usetls": false, "protocolVersion": "5",
         "keepalive": "30", "cleansession": false, "sessionExpiry": "86400", "autoUnsubscribe": false},
        {"id": "in", "type": "mqtt in", "z": "tab", "topic": topic(q, name, "in"), "qos": q.to_string(),
         "datatype": "utf8", "broker": "broker", "nl": false, "rap": true, "rh": 0, "inputs": 0, "wires": [["map"]]},
        {"id": "map", "type": "function", "z": "tab", "name": "temperature map", "func": func, "outputs": 1,
         "wires": [["out"]]},
        {"id": "out", "type": "mqtt out", "z": "tab", "topic": topic(q, name, "out"), "qos": q.to_string(),
         "retain": "false", "broker": "broker", "wires": []}
    ])
    .to_string()
}

/// Headless Node-RED: no editor, no HTTP nodes, no telemetry, warnings only.
const NODE_RED_SETTINGS: &str = r#"module.exports = {
    uiHost: "127.0.0.1",
    uiPort: 0,
    httpAdminRoot: false,
    httpNodeRoot: false,
    flowFile: "flows.json",
    credentialSecret: false,
    diagnostics: { enabled: false },
    runtimeState: { enabled: false },
    telemetry: { enabled: false },
    logging: { console: { level: "warn", metrics: false, audit: false } },
};
"#;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--native-relay") {
        let a = args
            .get(i + 1..i + 6)
            .context("--native-relay PORT IN OUT QOS CLIENT_ID")?;
        let port = a[0].parse().with_context(|| format!("--native-relay port {}", a[0]))?;
        let qos = a[3].parse().with_context(|| format!("--native-relay QoS {}", a[3]))?;
        return native_relay(port, &a[1], &a[2], qos, &a[4]);
    }
    if args.iter().any(|a| a == "--list") {
        return Ok(()); // `cargo bench -- --list`: nothing to list
    }
    let quick = quick();
    let setup = Setup {
        rate: arg("--rate", "WASMFLOW_BENCH_RATE", 2000)?.max(1),
        secs: arg("--seconds", "WASMFLOW_BENCH_SECONDS", if quick { 3 } else { 10 })?.max(1),
        rounds: arg("--rounds", "WASMFLOW_BENCH_ROUNDS", if quick { 3 } else { 5 })?.max(1),
        full_n: arg(
            "--full-speed",
            "WASMFLOW_BENCH_FULL_SPEED",
            if quick { 5000 } else { 10_000 },
        )?,
        full_rounds: arg("--full-rounds", "WASMFLOW_BENCH_FULL_ROUNDS", if quick { 1 } else { 3 })?.max(1),
        broker_nagle: args.iter().any(|a| a == "--broker-nagle"),
    };
    let Setup {
        rate,
        secs,
        rounds,
        full_n,
        full_rounds,
        ..
    } = setup;
    // Where `wasmflow run` will look for the graph's module (`$WASMFLOW_MODULES`, else
    // target/modules of this repository); fail early with what to run.
    let modules = std::env::var_os("WASMFLOW_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(wasmflow_runtime::default_modules_dir);
    if !modules.join("temperature.wasm").is_file() {
        bail!(
            "{} is missing: run scripts/build-components.sh",
            modules.join("temperature.wasm").display()
        );
    }
    let node_red = node_red();
    let baseline = std::env::var_os("WASMFLOW_BENCH_BASELINE").map(PathBuf::from);
    let mut kinds = vec![Kind::Wasmflow, Kind::Native];
    match &node_red {
        Some(_) if !args.iter().any(|a| a == "--no-node-red") => kinds.push(Kind::NodeRed),
        Some(_) => {}
        None => eprintln!("Node-RED is not installed (scripts/setup.sh --bench): its rows are left out"),
    }
    if baseline.is_some() {
        kinds.push(Kind::Baseline);
    }
    LazyLock::force(&EPOCH);

    let broker = Mosquitto::start(!setup.broker_nagle)?;
    eprintln!("mosquitto on 127.0.0.1:{}", broker.port);
    let mut bench = Bench {
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
        expected: Arc::new(expected_outputs()?),
        broker,
        tps: ticks_per_sec(),
        runs: 0,
    };
    let work = tempfile::tempdir()?;
    let port = bench.broker.port;
    let url = format!("mqtt://127.0.0.1:{port}");
    let command = |kind: Kind, q: u8| -> Result<Command> {
        let name = kind.name();
        Ok(match kind {
            Kind::Wasmflow | Kind::Baseline => {
                let bin = match (kind, &baseline) {
                    (Kind::Baseline, Some(b)) => b.clone(),
                    _ => PathBuf::from(env!("CARGO_BIN_EXE_wasmflow")),
                };
                let mut c = Command::new(bin);
                c.current_dir(repo())
                    .args(["run", "compose/tests/azure-compat/graph-simple.yaml", "--mqtt", &url])
                    .args(["--source", &topic(q, name, "in"), "--sink", &topic(q, name, "out")])
                    .args(["--qos", &q.to_string(), "--client-id", &format!("bench-{name}-q{q}")])
                    .arg("--data-dir")
                    .arg(work.path().join(format!("data-{name}")))
                    .env_remove("WASMFLOW_MQTT")
                    .env_remove("WASMFLOW_KAFKA")
                    .env("RUST_LOG", "warn");
                c
            }
            Kind::Native => {
                let mut c = Command::new(std::env::current_exe()?);
                c.args([
                    "--native-relay",
                    &port.to_string(),
                    &topic(q, name, "in"),
                    &topic(q, name, "out"),
                    &q.to_string(),
                    &format!("bench-{name}-q{q}"),
                ]);
                c
            }
            Kind::NodeRed => {
                let red = node_red.clone().context("Node-RED is not installed")?;
                let dir = work.path().join(format!("node-red-q{q}"));
                std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                std::fs::write(dir.join("settings.js"), NODE_RED_SETTINGS)?;
                std::fs::write(dir.join("flows.json"), node_red_flow(port, q, name))?;
                let mut c = Command::new("node");
                c.arg(red)
                    .arg("--settings")
                    .arg(dir.join("settings.js"))
                    .arg("--userDir")
                    .arg(&dir)
                    .arg(dir.join("flows.json"));
                c
            }
        })
    };
    let round = Load::Rate {
        rate,
        secs: secs as f64 / rounds as f64,
    };
    let mut rows = Vec::new();
    for q in [0u8, 1] {
        let mut relays = kinds
            .iter()
            .map(|&k| Relay::start(k.name(), q, command(k, q)?, work.path()))
            .collect::<Result<Vec<_>>>()?;
        for r in relays.iter_mut() {
            eprintln!("QoS {q}: waiting for the {} relay …", r.name);
            bench.wait_ready(r)?;
            // Warm-up: a second at the measured rate, discarded.
            bench.measure(r, Load::Rate { rate, secs: 1.0 }, &mut Row::new(r, round))?;
        }
        let total = Load::Rate {
            rate,
            secs: secs as f64,
        };
        let mut fixed: Vec<Row> = relays.iter().map(|r| Row::new(r, total)).collect();
        for k in 0..rounds {
            eprintln!(
                "QoS {q}: round {}/{rounds}, {rate} msg/s for {:.1} s per relay …",
                k + 1,
                secs as f64 / rounds as f64
            );
            // Taking turns, the order rotating, so a burst of load elsewhere hits all alike.
            for j in 0..relays.len() {
                let j = (j + k + q as usize) % relays.len();
                bench.measure(&mut relays[j], round, &mut fixed[j])?;
            }
        }
        for r in &fixed {
            eprintln!(
                "  {}: {} received, {} lost, CPU {:.1} µs/msg, latency ms p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
                r.relay,
                r.received,
                r.lost(),
                r.cpu_us_per_msg(),
                r.pct_ms(0.50),
                r.pct_ms(0.90),
                r.pct_ms(0.99),
                r.pct_ms(0.999),
                r.pct_ms(1.0)
            );
        }
        rows.extend(fixed);
        if q == 1 && full_n > 0 {
            let load = Load::Full { n: full_n };
            let mut full: Vec<Row> = relays
                .iter()
                .map(|r| {
                    Row::new(
                        r,
                        Load::Full {
                            n: full_n * full_rounds,
                        },
                    )
                })
                .collect();
            for k in 0..full_rounds {
                for j in 0..relays.len() {
                    let j = (j + k + 1) % relays.len();
                    let r = &mut relays[j];
                    eprintln!(
                        "QoS {q}: {} at full speed, {full_n} messages (round {}/{full_rounds}) …",
                        r.name,
                        k + 1
                    );
                    let mut once = Row::new(r, load);
                    bench.measure(r, load, &mut once)?;
                    eprintln!(
                        "  {} msgs/s, {} lost, CPU {:.1} µs/msg",
                        fmt_int(once.msgs_per_s()),
                        once.lost(),
                        once.cpu_us_per_msg()
                    );
                    full[j].add(once);
                }
            }
            rows.extend(full);
        }
    }
    print_tables(&rows, &kinds, &setup);
    Ok(())
}
