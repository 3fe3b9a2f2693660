//! Sending OTLP: one export request of metrics or logs to a collector, over gRPC (the generated
//! tonic clients of `opentelemetry-proto`) or HTTP with protobuf bodies (`POST <url>/v1/metrics`,
//! `/v1/logs`, `application/x-protobuf`, reqwest), with TLS (a CA, a client certificate), headers
//! (authentication) and a connect and a request timeout. The answer is classified as the OTLP
//! specification says a client must: done, worth retrying, or refused for good.

use std::path::PathBuf;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;
use tonic::transport::Channel;

/// Default connect timeout (also `--otlp-connect-timeout-secs`'s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default request timeout: the OTLP exporters' default (also `--otlp-timeout-secs`'s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How OTLP travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318).
    HttpProtobuf,
}

/// PEM files for TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the collector's certificate; the system's roots when `None`.
    pub ca: Option<PathBuf>,
    /// A client certificate, for mutual TLS.
    pub cert: Option<PathBuf>,
    /// Its key.
    pub key: Option<PathBuf>,
}

/// Where and how to export.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// `http://host:port` or `https://host:port` (TLS), optionally with a base path.
    pub url: String,
    /// gRPC or HTTP/protobuf.
    pub protocol: Protocol,
    /// CA and client certificate for `https://`.
    pub tls: TlsFiles,
    /// Sent with every request (`authorization: Bearer …`).
    pub headers: Vec<(String, String)>,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How long one export may take.
    pub request_timeout: Duration,
}

/// Why an export did not succeed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ExportError {
    /// The configuration cannot work (a bad URL, an unreadable certificate).
    #[error("OTLP exporter for {url}: {reason}")]
    Config {
        /// The collector.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Unreachable, overloaded or slow: the same request may succeed later.
    #[error("OTLP export to {url} failed, will retry: {reason}")]
    Retryable {
        /// The collector.
        url: String,
        /// The transport's or collector's reason.
        reason: String,
    },
    /// The collector refused the request and would refuse it again.
    #[error("OTLP export to {url} refused: {reason}")]
    Refused {
        /// The collector.
        url: String,
        /// The collector's reason.
        reason: String,
        /// Refused as malformed (the data will never be taken), as opposed to unauthorised.
        invalid_data: bool,
    },
}

/// A connection to one collector (connected on first use). Clones share it: a gRPC channel
/// multiplexes every clone's requests over one HTTP/2 connection, an HTTP client one pool.
#[derive(Clone)]
pub struct Exporter {
    url: String,
    request_timeout: Duration,
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Grpc {
        channel: Channel,
        headers: tonic::metadata::MetadataMap,
    },
    Http {
        client: reqwest::Client,
        headers: http::HeaderMap,
    },
}

impl Exporter {
    /// Builds the client; must be called within a tokio runtime (gRPC channels start a task).
    pub fn new(config: &ExportConfig) -> Result<Self, ExportError> {
        let url = config.url.trim_end_matches('/').to_owned();
        let bad = |reason: String| ExportError::Config {
            url: url.clone(),
            reason,
        };
        let read = |p: &PathBuf| std::fs::read(p).map_err(|e| bad(format!("reading {}: {e}", p.display())));
        let secure = url.starts_with("https://");
        if !secure && !url.starts_with("http://") {
            return Err(bad("expected http://host:port or https://host:port".into()));
        }
        let (scheme, rest) = url.split_once("://").unwrap_or_default();
        if let Some((_, host)) = rest.split('/').next().unwrap_or_default().rsplit_once('@') {
            // The URL shows in logs and `ps`: said without what is before `@`.
            return Err(ExportError::Config {
                url: format!("{scheme}://…@{host}"),
                reason: "credentials do not go in the URL, which shows in logs and `ps`; send them in a header (`--otlp-header authorization=env:VAR`, or the endpoint's authentication)".into(),
            });
        }
        let transport = match config.protocol {
            Protocol::Grpc => {
                let mut endpoint = Channel::from_shared(url.clone())
                    .map_err(|e| bad(e.to_string()))?
                    .connect_timeout(config.connect_timeout)
                    .timeout(config.request_timeout);
                if secure {
                    let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
                    if let Some(ca) = &config.tls.ca {
                        tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?));
                    }
                    if let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) {
                        tls = tls.identity(tonic::transport::Identity::from_pem(read(cert)?, read(key)?));
                    }
                    endpoint = endpoint.tls_config(tls).map_err(|e| bad(format!("TLS: {e}")))?;
                }
                let mut headers = tonic::metadata::MetadataMap::new();
                for (k, v) in &config.headers {
                    let key = tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                        .map_err(|_| bad(format!("header `{k}`: not a header name")))?;
                    let value = v
                        .parse()
                        .map_err(|_| bad(format!("header `{k}`: its value cannot be sent in a header")))?;
                    headers.insert(key, value);
                }
                Transport::Grpc {
                    channel: endpoint.connect_lazy(),
                    headers,
                }
            }
            Protocol::HttpProtobuf => {
                // reqwest is built without a crypto provider of its own (Cargo.toml): rustls needs
                // one process-wide (ring, as the MQTT client installs it); a second install is harmless.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let mut builder = reqwest::Client::builder()
                    .connect_timeout(config.connect_timeout)
                    .timeout(config.request_timeout);
                if let Some(ca) = &config.tls.ca {
                    let cert = reqwest::Certificate::from_pem(&read(ca)?).map_err(|e| bad(format!("CA: {e}")))?;
                    builder = builder.add_root_certificate(cert);
                }
                if let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) {
                    let mut pem = read(cert)?;
                    pem.extend(read(key)?);
                    builder = builder.identity(
                        reqwest::Identity::from_pem(&pem).map_err(|e| bad(format!("client certificate: {e}")))?,
                    );
                }
                let mut headers = http::HeaderMap::new();
                for (k, v) in &config.headers {
                    let key = http::HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| bad(format!("header `{k}`: not a header name")))?;
                    let value = http::HeaderValue::from_str(v)
                        .map_err(|_| bad(format!("header `{k}`: its value cannot be sent in a header")))?;
                    headers.insert(key, value);
                }
                Transport::Http {
                    client: builder.build().map_err(|e| bad(e.to_string()))?,
                    headers,
                }
            }
        };
        Ok(Self {
            url,
            request_timeout: config.request_timeout,
            transport,
        })
    }

    /// The collector, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How long one export may take (the SDK's exporters are given it too).
    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The connection, for the OpenTelemetry SDK's exporter (the `telemetry` module).
    pub(crate) fn into_parts(self) -> Parts {
        match self.transport {
            Transport::Grpc { channel, headers } => Parts::Grpc { channel, headers },
            Transport::Http { client, headers } => Parts::Http {
                client: SdkHttpClient(client),
                headers: headers
                    .iter()
                    .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
                    .collect(),
            },
        }
    }

    /// Exports metrics; `Ok` carries the collector's partial-success message, if any.
    pub async fn metrics(&self, req: ExportMetricsServiceRequest) -> Result<Option<String>, ExportError> {
        let answer = match &self.transport {
            Transport::Http { .. } => return self.post("/v1/metrics", req.encode_to_vec()).await,
            Transport::Grpc { .. } => {
                self.grpc(req, |c, r| async move { MetricsServiceClient::new(c).export(r).await })
                    .await?
            }
        };
        Ok(answer
            .partial_success
            .filter(|p| p.rejected_data_points > 0 || !p.error_message.is_empty())
            .map(|p| format!("{} data points rejected: {}", p.rejected_data_points, p.error_message)))
    }

    /// Exports log records; `Ok` carries the collector's partial-success message, if any.
    pub async fn logs(&self, req: ExportLogsServiceRequest) -> Result<Option<String>, ExportError> {
        let answer = match &self.transport {
            Transport::Http { .. } => return self.post("/v1/logs", req.encode_to_vec()).await,
            Transport::Grpc { .. } => {
                self.grpc(req, |c, r| async move { LogsServiceClient::new(c).export(r).await })
                    .await?
            }
        };
        Ok(answer
            .partial_success
            .filter(|p| p.rejected_log_records > 0 || !p.error_message.is_empty())
            .map(|p| format!("{} log records rejected: {}", p.rejected_log_records, p.error_message)))
    }

    /// One gRPC export through `call` (a generated client's `export`): the request carries
    /// this exporter's headers, and a failure is classified by its status.
    async fn grpc<Req, Resp, Fut>(
        &self,
        req: Req,
        call: impl FnOnce(Channel, tonic::Request<Req>) -> Fut,
    ) -> Result<Resp, ExportError>
    where
        Fut: std::future::Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let Transport::Grpc { channel, headers } = &self.transport else {
            unreachable!("grpc is called for gRPC exporters")
        };
        let mut r = tonic::Request::new(req);
        *r.metadata_mut() = headers.clone();
        call(channel.clone(), r)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| self.status(s))
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> Result<Option<String>, ExportError> {
        let Transport::Http { client, headers } = &self.transport else {
            unreachable!("post is called for HTTP exporters")
        };
        let url = format!("{}{path}", self.url);
        let answer = client
            .post(&url)
            .headers(headers.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .send()
            .await
            .map_err(|e| ExportError::Retryable {
                url: url.clone(),
                reason: error_chain(&e),
            })?;
        let status = answer.status();
        if status.is_success() {
            return Ok(None);
        }
        let text = answer.text().await.unwrap_or_default();
        let reason = format!("HTTP {status}: {}", text.trim());
        Err(match status.as_u16() {
            429 | 502 | 503 | 504 => ExportError::Retryable { url, reason },
            401 | 403 => ExportError::Refused {
                url,
                reason,
                invalid_data: false,
            },
            _ => ExportError::Refused {
                url,
                reason,
                invalid_data: true,
            },
        })
    }

    /// gRPC codes as the OTLP specification classifies them.
    fn status(&self, s: tonic::Status) -> ExportError {
        use tonic::Code;
        let url = self.url.clone();
        let reason = format!("{:?}: {}", s.code(), s.message());
        match s.code() {
            Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::OutOfRange
            | Code::Unavailable
            | Code::DataLoss
            | Code::ResourceExhausted
            | Code::Unknown => ExportError::Retryable { url, reason },
            Code::Unauthenticated | Code::PermissionDenied => ExportError::Refused {
                url,
                reason,
                invalid_data: false,
            },
            _ => ExportError::Refused {
                url,
                reason,
                invalid_data: true,
            },
        }
    }
}

/// An exporter's connection, taken apart for the OpenTelemetry SDK's exporter.
pub(crate) enum Parts {
    Grpc {
        channel: Channel,
        headers: tonic::metadata::MetadataMap,
    },
    Http {
        client: SdkHttpClient,
        headers: std::collections::HashMap<String, String>,
    },
}

/// `opentelemetry-http`'s client trait over the reqwest this crate already uses (that crate
/// implements it only for an older reqwest, which would be a second HTTP stack to build).
#[derive(Debug, Clone)]
pub(crate) struct SdkHttpClient(reqwest::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for SdkHttpClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let answer = self.0.execute(request).await?;
        let mut out = http::Response::builder().status(answer.status());
        if let Some(h) = out.headers_mut() {
            *h = answer.headers().clone();
        }
        Ok(out.body(answer.bytes().await?)?)
    }
}

/// An error with its causes, which is where reqwest puts what happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
