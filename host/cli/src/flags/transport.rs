//! `run` flags that bind a graph to brokers (`--mqtt`, `--source`, `--sink`, …). Parsing only:
//! `wasmflow_delivery` connects and runs.

use std::path::PathBuf;
#[cfg(any(feature = "mqtt", feature = "kafka"))]
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use wasmflow_delivery::Binding;
#[cfg(feature = "mqtt")]
use wasmflow_mqtt::{read_secret, MqttConfig, MqttVersion, TlsFiles, PASSWORD_ENV};

#[derive(Args, Debug, Clone)]
pub struct TransportArgs {
    /// MQTT broker (`mqtt://host:1883`, `mqtts://host:8883`). Without it (and without
    /// `--kafka` or `--input`), an embedded broker listens on `--listen`.
    #[arg(long, env = "WASMFLOW_MQTT", value_name = "URL")]
    pub mqtt: Option<String>,
    /// Where the embedded MQTT broker listens (MQTT 3.1.1 and 5 on one port) when no `--mqtt`
    /// or `--kafka` is given.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// Topic filter the graph's source reads (`+`/`#` wildcards, `$share/GROUP/…`); repeatable.
    /// Prefix `mqtt:` or `kafka:` when both brokers are configured.
    #[arg(long = "source", value_name = "[mqtt:|kafka:]FILTER")]
    pub sources: Vec<String>,
    /// Topic the graph's sinks publish to.
    #[arg(long, value_name = "[mqtt:|kafka:]TOPIC")]
    pub sink: Option<String>,
    /// Topic for items operators reject, with `error` and `operation` user properties (off by default).
    #[arg(long, value_name = "[mqtt:|kafka:]TOPIC")]
    pub dead_letter_topic: Option<String>,
    /// MQTT protocol version: 5, or 3.1.1 for brokers that speak nothing newer (no user
    /// properties: event time is the arrival time and outputs go without `__ts`).
    #[arg(long, default_value = "5", value_parser = ["5", "3.1.1"])]
    pub mqtt_version: String,
    /// MQTT QoS for subscriptions and publications (0 or 1).
    #[arg(long, default_value_t = 1)]
    pub qos: u8,
    /// MQTT client id (the sink adds `-out`); a persistent session is resumed by it.
    /// Default: `wasmflow-<graph name>`.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// How long the broker keeps the session while wasmflow is away, in seconds.
    #[arg(long, default_value_t = 86_400)]
    pub session_expiry_secs: u32,
    /// Connect timeout: at start, how long to keep trying to reach the broker (MQTT or Kafka)
    /// before failing, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub connect_timeout_secs: u64,
    /// MQTT read timeout: after this many seconds of silence the client pings the broker, and a
    /// broker that has not answered by the next ping is taken for gone and reconnected (with
    /// backoff; nothing unacknowledged is lost). Also the MQTT keep-alive the broker enforces.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(5..=3600))]
    pub mqtt_keep_alive_secs: u64,
    /// MQTT user name.
    #[arg(long, env = "WASMFLOW_MQTT_USERNAME", value_name = "USER")]
    pub mqtt_username: Option<String>,
    /// File holding the MQTT password (else the WASMFLOW_MQTT_PASSWORD environment variable).
    #[arg(long, value_name = "FILE")]
    pub mqtt_password_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the broker's certificate (TLS).
    #[arg(long, value_name = "FILE")]
    pub mqtt_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, value_name = "FILE")]
    pub mqtt_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(long, value_name = "FILE")]
    pub mqtt_key: Option<PathBuf>,
    /// This process's name among the instances running the graph: the `instance` label of its
    /// metrics and, with a shared subscription (`$share/…`) and no `--client-id`, part of its
    /// MQTT client id (each instance needs a persistent session of its own). Default: the
    /// host name (in Kubernetes, the pod's name).
    #[arg(long, env = "WASMFLOW_INSTANCE", value_name = "NAME")]
    pub instance: Option<String>,
    /// The Kafka flags.
    #[cfg(feature = "kafka")]
    #[command(flatten)]
    pub kafka: super::kafka::KafkaArgs,
}

/// Where the embedded broker listens by default (MQTT's port, loopback only).
const DEFAULT_LISTEN: &str = "127.0.0.1:1883";

impl TransportArgs {
    /// The binding these flags describe, for the graph named `graph`; `mqtt_url` is the broker
    /// to use (the embedded one when `--mqtt` was not given).
    pub fn binding(&self, graph: &str, mqtt_url: Option<&str>) -> Result<Binding> {
        #[cfg(not(any(feature = "mqtt", feature = "kafka")))]
        let _ = graph;
        #[allow(unused_mut)] // with neither transport built in
        let mut b = Binding::default();
        #[cfg(not(feature = "mqtt"))]
        if let Some(url) = mqtt_url {
            anyhow::bail!("{url}: this wasmflow was built without MQTT (the `mqtt` feature)");
        }
        #[cfg(feature = "mqtt")]
        if let Some(url) = mqtt_url {
            let shared = self
                .sources
                .iter()
                .any(|s| wasmflow_delivery::scale::shared_subscription(s.strip_prefix("mqtt:").unwrap_or(s)).is_some());
            let id = match &self.client_id {
                Some(id) => id.clone(),
                None if shared => format!("{}-{}", default_client_id(graph), slug(&self.instance())),
                None => default_client_id(graph),
            };
            let mut c = MqttConfig::new(url, &id)?;
            c.qos = self.qos;
            if self.mqtt_version == "3.1.1" {
                c.version = MqttVersion::V311;
            }
            c.session_expiry_secs = self.session_expiry_secs;
            c.connect_timeout = Duration::from_secs(self.connect_timeout_secs);
            c.keep_alive = Duration::from_secs(self.mqtt_keep_alive_secs);
            c.username = self.mqtt_username.clone();
            c.password = read_secret(self.mqtt_password_file.as_deref(), PASSWORD_ENV)?;
            if self.mqtt_ca.is_some() || self.mqtt_cert.is_some() || c.tls.is_some() {
                c.tls = Some(TlsFiles {
                    ca: self.mqtt_ca.clone(),
                    client_cert: self.mqtt_cert.clone(),
                    client_key: self.mqtt_key.clone(),
                });
            }
            b.mqtt = Some(c);
        }
        #[cfg(feature = "kafka")]
        {
            b.kafka = self.kafka.config(
                &default_client_id(graph),
                Duration::from_secs(self.connect_timeout_secs),
            )?;
        }
        let sources = if self.sources.is_empty() {
            vec![DEFAULT_SOURCE.to_owned()]
        } else {
            self.sources.clone()
        };
        for s in &sources {
            b.sources.push(b.endpoint(s)?);
        }
        b.sink = Some(b.endpoint(self.sink.as_deref().unwrap_or(DEFAULT_SINK))?);
        if let Some(d) = &self.dead_letter_topic {
            b.dead_letter = Some(b.endpoint(d)?);
        }
        Ok(b)
    }
}

/// Topics used when none are given (the README's mosquitto lines use them).
pub const DEFAULT_SOURCE: &str = "wasmflow/in";
pub const DEFAULT_SINK: &str = "wasmflow/out";

/// A stable client id from the graph's name: letters, digits and `-` only.
#[cfg(any(feature = "mqtt", feature = "kafka"))]
fn default_client_id(graph: &str) -> String {
    format!("wasmflow-{}", slug(graph))
}

/// Lower-case letters, digits and `-` only (client ids and group names brokers all accept).
#[cfg(any(feature = "mqtt", feature = "kafka"))]
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

impl TransportArgs {
    /// `--instance`, else the host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`), else
    /// `wasmflow`.
    pub fn instance(&self) -> String {
        self.instance
            .clone()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "wasmflow".into())
    }
}

impl TransportArgs {
    /// The Kafka brokers, when `--kafka` was given.
    pub fn kafka_brokers(&self) -> Option<&str> {
        #[cfg(feature = "kafka")]
        return self.kafka.kafka.as_deref();
        #[cfg(not(feature = "kafka"))]
        None
    }
}
