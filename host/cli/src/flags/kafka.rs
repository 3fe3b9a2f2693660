//! `run` flags for the Kafka transport (`--kafka`, `-X`, `--kafka-config`, `--kafka-group`).
//! Parsing only: `wasmflow_kafka` connects.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::Args;
use wasmflow_kafka::{KafkaConfig, KafkaSettings};

#[derive(Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (`host:9092[,host:9092…]`). With `--mqtt` too, name Kafka topics
    /// `kafka:TOPIC` in `--source`/`--sink`.
    #[arg(long, env = "WASMFLOW_KAFKA", value_name = "BROKERS")]
    pub kafka: Option<String>,
    /// A librdkafka property, passed through (`-X security.protocol=SASL_SSL`); a value
    /// `env:NAME` or `file:PATH` is read from there, so secrets stay off the command line.
    #[arg(short = 'X', long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_properties: Vec<String>,
    /// A file of librdkafka properties, one `key=value` a line (TLS/SASL settings, secrets).
    #[arg(long, env = "WASMFLOW_KAFKA_CONFIG", value_name = "FILE")]
    pub kafka_config: Option<PathBuf>,
    /// Consumer group of the graph's Kafka source (default: `wasmflow-<graph name>`); a restart
    /// in the same group resumes at the last committed offset.
    #[arg(long, value_name = "ID")]
    pub kafka_group: Option<String>,
    /// Read timeout: a broker that does not answer a request within this many milliseconds is
    /// treated as gone and the request retried (librdkafka's `socket.timeout.ms`; `-X` wins).
    /// The connect timeout is `--connect-timeout-secs`.
    #[arg(long, value_name = "MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(10..=300_000))]
    pub kafka_read_timeout_ms: u64,
}

impl KafkaArgs {
    /// The Kafka side of the binding, if `--kafka` was given; `default_group` names the group
    /// when `--kafka-group` does not.
    pub fn config(&self, default_group: &str, connect_timeout: Duration) -> Result<Option<KafkaConfig>> {
        let Some(brokers) = &self.kafka else {
            return Ok(None);
        };
        let mut settings = KafkaSettings::new(brokers);
        settings.connect_timeout = connect_timeout;
        settings.read_timeout = Duration::from_millis(self.kafka_read_timeout_ms);
        if let Some(file) = &self.kafka_config {
            // One line: the error names the file and line already.
            settings
                .properties_file(file)
                .map_err(|e| anyhow!("--kafka-config: {e}"))?;
        }
        for (i, p) in self.kafka_properties.iter().enumerate() {
            settings.property(p).map_err(|e| anyhow!("-X #{}: {e}", i + 1))?;
        }
        Ok(Some(KafkaConfig {
            settings,
            group_id: self.kafka_group.clone().unwrap_or_else(|| default_group.to_owned()),
        }))
    }
}
