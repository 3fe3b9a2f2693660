//! The Kafka-protocol peer the Kafka tests and the `kafka` bench talk to: librdkafka's mock
//! cluster (in this process: fault injection, nothing to install), or **tansu**, a
//! Kafka-compatible broker (crate `tansu`, Apache-2.0) run as a process of its own on a free
//! loopback port, with memory storage. `scripts/setup.sh --bench` installs tansu under
//! `~/.cache/wasmflow/tansu` (`$WASMFLOW_TANSU` names another binary); it takes ≈ 30 min to
//! build once, which is why `make test` (and so CI) uses the mock and `make test-kafka-broker`
//! runs the same tests against tansu (`WASMFLOW_TEST_KAFKA=tansu`). Shared with the bench by
//! `#[path]`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// A running peer; dropping it stops tansu (the mock goes with its owner).
pub enum KafkaPeer {
    /// librdkafka's mock cluster, in this process.
    Mock(MockCluster<'static, DefaultProducerContext>),
    /// A tansu process.
    Tansu {
        child: Child,
        bootstrap: String,
        version: String,
    },
}

impl KafkaPeer {
    /// The installed tansu, if any.
    pub fn tansu_binary() -> Option<PathBuf> {
        let p = std::env::var_os("WASMFLOW_TANSU")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/wasmflow/tansu/bin/tansu")))?;
        p.is_file().then_some(p)
    }

    /// The mock cluster.
    pub fn mock() -> Result<Self, String> {
        MockCluster::new(1)
            .map(KafkaPeer::Mock)
            .map_err(|e| format!("librdkafka mock cluster: {e}"))
    }

    /// tansu on a free loopback port, once it listens.
    pub fn tansu() -> Result<Self, String> {
        let bin = Self::tansu_binary()
            .ok_or("tansu is not installed: run scripts/setup.sh --bench (or set WASMFLOW_TANSU)")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("a free port: {e}"))?
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let version = Command::new(&bin)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "tansu".into());
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let peer = KafkaPeer::Tansu {
            child,
            bootstrap: format!("127.0.0.1:{port}"),
            version,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > until {
                return Err(format!("tansu did not listen on {port} within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(peer)
    }

    /// `bootstrap.servers` for clients of this peer.
    pub fn bootstrap_servers(&self) -> String {
        match self {
            KafkaPeer::Mock(c) => c.bootstrap_servers(),
            KafkaPeer::Tansu { bootstrap, .. } => bootstrap.clone(),
        }
    }

    /// The mock, for the tests that inject faults (tansu cannot).
    pub fn as_mock(&self) -> Option<&MockCluster<'static, DefaultProducerContext>> {
        match self {
            KafkaPeer::Mock(c) => Some(c),
            KafkaPeer::Tansu { .. } => None,
        }
    }

    /// For tables and logs: which peer, and which version of it.
    pub fn describe(&self) -> String {
        match self {
            KafkaPeer::Mock(_) => "librdkafka's mock cluster (in this process)".into(),
            KafkaPeer::Tansu { version, .. } => format!("{version} (memory storage, its own process)"),
        }
    }

    /// One partition each.
    pub fn create_topics(&self, topics: &[&str]) -> Result<(), String> {
        topics.iter().try_for_each(|t| self.create_topic(t, 1))
    }

    /// A topic of `partitions` partitions. The admin call runs on a thread of its own, so it can
    /// be made from inside a tokio test too.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), String> {
        match self {
            KafkaPeer::Mock(c) => c
                .create_topic(topic, partitions, 1)
                .map_err(|e| format!("creating topic {topic}: {e}")),
            KafkaPeer::Tansu { bootstrap, .. } => {
                let (bootstrap, topic) = (bootstrap.clone(), topic.to_owned());
                std::thread::spawn(move || create_on_broker(&bootstrap, &topic, partitions))
                    .join()
                    .map_err(|_| "creating a topic: the admin thread panicked".to_owned())?
            }
        }
    }
}

fn create_on_broker(bootstrap: &str, topic: &str, partitions: i32) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| format!("admin client: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("admin runtime: {e}"))?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = rt
        .block_on(admin.create_topics([&new], &AdminOptions::new()))
        .map_err(|e| format!("creating topic {topic}: {e}"))?;
    results
        .into_iter()
        .try_for_each(|r| r.map(drop).map_err(|(t, e)| format!("creating topic {t}: {e}")))
}

impl Drop for KafkaPeer {
    fn drop(&mut self) {
        if let KafkaPeer::Tansu { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
