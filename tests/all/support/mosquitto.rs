//! A real mosquitto broker for tests and benchmarks: started on a free loopback port with an
//! explicit configuration (so its limits are the test's, not the package default's), stopped
//! and restarted on the same port, killed when dropped. Plus small rumqttc clients to publish
//! and collect. Included with `#[path]` by the tests and benches that need it.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub fn mosquitto_binary() -> PathBuf {
    for p in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"] {
        if Path::new(p).is_file() {
            return p.into();
        }
    }
    panic!("mosquitto is not installed: run scripts/setup.sh (apt-get install mosquitto mosquitto-clients)");
}

/// The broker limits the tests rely on, written out instead of trusting the package defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// QoS 1 messages in flight to one client (mosquitto's default is 20).
    pub max_inflight: u32,
    /// Messages queued for one client beyond those in flight (default 1000; 0 = unlimited).
    pub max_queued: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_inflight: 20,
            max_queued: 100_000,
        }
    }
}

pub struct Mosquitto {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Mosquitto {
    pub fn start() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        Self::with_config(limits, "allow_anonymous true\n")
    }

    /// A broker whose listener is followed by `security` (mosquitto.conf lines: TLS files,
    /// `allow_anonymous`, `password_file`; files readable by the `mosquitto` user).
    pub fn with_config(limits: Limits, security: &str) -> Self {
        mosquitto_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        // Started as root, mosquitto drops to the `mosquitto` user: it must still be able to
        // write its persistence file and log here.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        }
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let mut f = std::fs::File::create(&conf).expect("mosquitto.conf");
        write!(
            f,
            "listener {port} 127.0.0.1\n\
             {security}\n\
             persistence true\n\
             persistence_location {dir}/\n\
             max_inflight_messages {inflight}\n\
             max_queued_messages {queued}\n\
             max_queued_bytes 0\n\
             log_dest file {dir}/mosquitto.log\n\
             log_type error\n\
             log_type warning\n",
            dir = dir.path().display(),
            inflight = limits.max_inflight,
            queued = limits.max_queued,
        )
        .expect("write mosquitto.conf");
        let mut m = Self { port, dir, child: None };
        m.resume();
        m
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Starts (again) with the same configuration, port and persistence file.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "mosquitto is already running");
        let child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < until,
                "mosquitto did not listen on {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the broker the way a service manager does (SIGTERM): it saves its sessions and
    /// queued messages to the persistence file first.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A test client on its own small tokio runtime.
pub struct Client {
    pub rt: tokio::runtime::Runtime,
    pub client: AsyncClient,
    pub received: Arc<Mutex<Vec<Publish>>>,
    /// PUBACKs received for this client's publications: the broker took responsibility.
    pub pubacks: Arc<std::sync::atomic::AtomicUsize>,
}

impl Client {
    /// Connects with a persistent session (so nothing is lost while the broker restarts) and
    /// subscribes to `filters` at QoS 1.
    pub fn connect(port: u16, id: &str, filters: &[&str]) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio");
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30))
            .set_clean_start(false)
            .set_session_expiry_interval(Some(3600));
        o.set_outgoing_inflight_upper_limit(100);
        let (client, mut el) = AsyncClient::new(o, 10_000);
        let received = Arc::new(Mutex::new(Vec::new()));
        let pubacks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (sub_tx, sub_rx) = std::sync::mpsc::channel();
        {
            let received = received.clone();
            let pubacks = pubacks.clone();
            let n = filters.len();
            rt.spawn(async move {
                let mut subacks = 0;
                loop {
                    match el.poll().await {
                        Ok(Event::Incoming(Packet::Publish(p))) => received.lock().unwrap().push(p),
                        Ok(Event::Incoming(Packet::PubAck(_))) => {
                            pubacks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            subacks += 1;
                            if subacks == n {
                                let _ = sub_tx.send(());
                            }
                        }
                        Ok(Event::Incoming(Packet::ConnAck(_))) if n == 0 => {
                            let _ = sub_tx.send(());
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            });
        }
        for f in filters {
            rt.block_on(client.subscribe(*f, QoS::AtLeastOnce)).expect("subscribe");
        }
        sub_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("connected and subscribed within 10 s");
        Self {
            rt,
            client,
            received,
            pubacks,
        }
    }

    pub fn publish(&self, topic: &str, payload: &str, props: Vec<(&str, &str)>, content_type: Option<&str>) {
        let properties = PublishProperties {
            user_properties: props.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            content_type: content_type.map(str::to_owned),
            ..Default::default()
        };
        self.rt
            .block_on(self.client.publish_with_properties(
                topic,
                QoS::AtLeastOnce,
                false,
                payload.as_bytes().to_vec(),
                properties,
            ))
            .expect("publish");
    }

    /// Publishes `n` QoS 1 messages on a task of its own (`payload(i)`, user property `seq=i`),
    /// `per_ms` of them per millisecond at most (0: as fast as possible).
    pub fn publish_many(&self, topic: &str, n: usize, per_ms: usize, payload: fn(usize) -> String) {
        let (client, topic) = (self.client.clone(), topic.to_owned());
        self.rt.spawn(async move {
            let start = tokio::time::Instant::now();
            for i in 0..n {
                if per_ms > 0 && i % per_ms == 0 {
                    tokio::time::sleep_until(start + Duration::from_millis((i / per_ms) as u64)).await;
                }
                let properties = PublishProperties {
                    user_properties: vec![("seq".into(), i.to_string())],
                    ..Default::default()
                };
                client
                    .publish_with_properties(
                        topic.clone(),
                        QoS::AtLeastOnce,
                        false,
                        payload(i).into_bytes(),
                        properties,
                    )
                    .await
                    .expect("publish");
            }
        });
    }

    /// Waits until the broker acknowledged `n` of this client's publications.
    pub fn wait_pubacks(&self, n: usize, timeout: Duration) -> usize {
        let until = Instant::now() + timeout;
        loop {
            let got = self.pubacks.load(std::sync::atomic::Ordering::SeqCst);
            if got >= n || Instant::now() >= until {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Distinct `seq` values received, and how many arrived more than once.
    pub fn seqs(&self) -> (std::collections::BTreeSet<usize>, usize) {
        let mut seen = std::collections::BTreeSet::new();
        let mut dups = 0;
        for p in self.received.lock().unwrap().iter() {
            if let Some(s) = user_prop(p, "seq").and_then(|s| s.parse().ok()) {
                if !seen.insert(s) {
                    dups += 1;
                }
            }
        }
        (seen, dups)
    }

    /// Waits until at least `n` messages arrived (or `timeout`); returns what arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Publish> {
        let until = Instant::now() + timeout;
        loop {
            let got = self.received.lock().unwrap().clone();
            if got.len() >= n || Instant::now() >= until {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A user property of a received message.
pub fn user_prop<'a>(p: &'a Publish, key: &str) -> Option<&'a str> {
    p.properties
        .as_ref()?
        .user_properties
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}
