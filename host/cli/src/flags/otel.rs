//! OTLP flags (`--otlp`, `--otlp-header`, timeouts), shared by wasmflow's own metrics export and
//! the run's OpenTelemetry endpoints. Parsing only: `wasmflow_otel` exports.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use wasmflow_otel::export::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};
use wasmflow_otel::{ExportConfig, Protocol, TlsFiles};

#[derive(Args, Debug, Clone)]
pub struct OtlpArgs {
    /// Export wasmflow's own metrics (per-operation counts) and traces (--otlp-trace-ratio) over
    /// OTLP to this collector, on one connection, beside --metrics: `http://host:4317` (gRPC)
    /// or, with --otlp-protocol http/protobuf, `http://host:4318`; `https://` for TLS.
    #[arg(long, env = "WASMFLOW_OTLP", value_name = "URL")]
    pub otlp: Option<String>,
    /// How --otlp talks to its collector.
    #[arg(long, default_value = "grpc", value_parser = ["grpc", "http/protobuf"])]
    pub otlp_protocol: String,
    /// The CA that signed an `https://` --otlp collector's certificate (PEM; else the system's
    /// roots).
    #[arg(long, value_name = "FILE")]
    pub otlp_ca: Option<std::path::PathBuf>,
    /// A client certificate (PEM) for mutual TLS with the --otlp collector; with --otlp-key.
    #[arg(long, value_name = "FILE", requires = "otlp_key")]
    pub otlp_cert: Option<std::path::PathBuf>,
    /// The key of --otlp-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "otlp_cert")]
    pub otlp_key: Option<std::path::PathBuf>,
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
    /// The share of messages --otlp exports traces of (a `message` span per input, an
    /// `operation` span per operator call), 0 to 1, sampled by trace id.
    #[arg(long, value_name = "RATIO", default_value_t = 0.01, value_parser = ratio)]
    pub otlp_trace_ratio: f64,
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

    /// Where and how `--otlp` exports wasmflow's own metrics and traces, when given.
    pub fn own_telemetry(&self) -> Result<Option<ExportConfig>> {
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
            tls: TlsFiles {
                ca: self.otlp_ca.clone(),
                cert: self.otlp_cert.clone(),
                key: self.otlp_key.clone(),
            },
            headers: self.headers()?,
            connect_timeout,
            request_timeout,
        }))
    }
}

fn ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("`{s}`: a number from 0 to 1")),
    }
}
