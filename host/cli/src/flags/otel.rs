//! OTLP flags (`--otlp`, `--otlp-header`, timeouts), shared by wasmflow's own metrics export and
//! the run's OpenTelemetry endpoints. Parsing only: `wasmflow_otel` exports.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use wasmflow_otel::export::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};
use wasmflow_otel::{ExportConfig, Protocol, TlsFiles};

#[derive(Args, Debug, Clone)]
pub struct OtlpArgs {
    /// Export wasmflow's own metrics (per-operation counts) over OTLP to this collector, beside
    /// --metrics: `http://host:4317` (gRPC) or, with --otlp-protocol http/protobuf,
    /// `http://host:4318`; `https://` for TLS.
    #[arg(long, env = "WASMFLOW_OTLP", value_name = "URL")]
    pub otlp: Option<String>,
    /// How --otlp talks to its collector.
    #[arg(long, default_value = "grpc", value_parser = ["grpc", "http/protobuf"])]
    pub otlp_protocol: String,
    /// A header sent with every OTLP export (--otlp and OpenTelemetry endpoints), `NAME=VALUE`;
    /// a VALUE `env:VAR` or `file:PATH` is read from there (`authorization=env:OTLP_TOKEN`).
    #[arg(long = "otlp-header", value_name = "NAME=VALUE")]
    pub otlp_headers: Vec<String>,
    /// Connect timeout of OTLP exports, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_CONNECT_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub otlp_connect_timeout_secs: u64,
    /// Request timeout of one OTLP export, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub otlp_timeout_secs: u64,
    /// How often --otlp exports, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub otlp_interval_secs: u64,
}

impl OtlpArgs {
    /// The headers, their `env:`/`file:` values read.
    pub fn headers(&self) -> Result<Vec<(String, String)>> {
        self.otlp_headers
            .iter()
            .map(|h| {
                let (k, v) = h
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--otlp-header {h}: expected NAME=VALUE"))?;
                let value = wasmflow_transport::secret::Value::parse(v)
                    .read()
                    .with_context(|| format!("--otlp-header {k}"))?;
                Ok((k.trim().to_owned(), value))
            })
            .collect()
    }

    /// The connect and request timeouts.
    pub fn timeouts(&self) -> (Duration, Duration) {
        (
            Duration::from_secs(self.otlp_connect_timeout_secs),
            Duration::from_secs(self.otlp_timeout_secs),
        )
    }

    /// Where `--otlp` exports, when given.
    pub fn own_metrics(&self) -> Result<Option<ExportConfig>> {
        let Some(url) = &self.otlp else {
            return Ok(None);
        };
        let (connect_timeout, request_timeout) = self.timeouts();
        Ok(Some(ExportConfig {
            url: url.clone(),
            protocol: if self.otlp_protocol == "grpc" {
                Protocol::Grpc
            } else {
                Protocol::HttpProtobuf
            },
            tls: TlsFiles::default(),
            headers: self.headers()?,
            connect_timeout,
            request_timeout,
        }))
    }
}
