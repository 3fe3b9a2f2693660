//! A stand-in for the OpenTelemetry Collector's OTLP receiver (the collector itself cannot be
//! installed here): the OTLP/gRPC `MetricsService`, `LogsService` and `TraceService` served by tonic from the
//! OpenTelemetry project's own protobuf definitions (`opentelemetry-proto`), and OTLP/HTTP
//! (`POST /v1/metrics`, `/v1/logs`, protobuf bodies) served by hyper and decoded with the same
//! definitions. It keeps every request with its headers, and can answer "unavailable" (gRPC
//! UNAVAILABLE, HTTP 503) to the next N requests, as a collector that is restarting does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use prost::Message;
use tonic::codegen::tokio_stream::StreamExt as _;

/// What the receiver got.
#[derive(Default)]
pub struct Received {
    /// Metrics requests with the headers (lower-case names) they came with.
    pub metrics: Vec<(Vec<(String, String)>, ExportMetricsServiceRequest)>,
    /// Logs requests with their headers.
    pub logs: Vec<(Vec<(String, String)>, ExportLogsServiceRequest)>,
    /// Trace requests (gRPC).
    pub traces: Vec<ExportTraceServiceRequest>,
    /// Requests to refuse as unavailable before taking any.
    pub unavailable: usize,
    /// Requests refused so.
    pub refused: usize,
    /// Connections accepted on the gRPC listener.
    pub grpc_connections: usize,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Received>>);

impl Shared {
    /// `false`: answer "unavailable".
    fn admit(&self) -> bool {
        let mut r = self.0.lock().unwrap();
        if r.unavailable > 0 {
            r.unavailable -= 1;
            r.refused += 1;
            return false;
        }
        true
    }
}

fn grpc_headers(m: &tonic::metadata::MetadataMap) -> Vec<(String, String)> {
    m.clone()
        .into_headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect()
}

#[tonic::async_trait]
impl MetricsService for Shared {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        if !self.admit() {
            return Err(tonic::Status::unavailable("restarting"));
        }
        let headers = grpc_headers(request.metadata());
        self.0.lock().unwrap().metrics.push((headers, request.into_inner()));
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Shared {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        if !self.admit() {
            return Err(tonic::Status::unavailable("restarting"));
        }
        let headers = grpc_headers(request.metadata());
        self.0.lock().unwrap().logs.push((headers, request.into_inner()));
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Shared {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().traces.push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// The receiver: a gRPC and an HTTP listener on loopback, on a runtime of its own.
pub struct Receiver {
    /// `http://127.0.0.1:<port>` of OTLP/gRPC.
    pub grpc: String,
    /// `http://127.0.0.1:<port>` of OTLP/HTTP.
    pub http: String,
    shared: Shared,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A receiver whose gRPC listener speaks TLS with the certificate `pki/server.crt` (for
    /// `localhost`, signed by `pki/ca.crt`: `support::pki::make_pki`).
    pub fn start_tls(pki: &std::path::Path) -> Self {
        // The test binary links two rustls providers (the product links one), so rustls
        // cannot pick one for the server by itself.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let read = |f: &str| std::fs::read(pki.join(f)).expect("a PEM file");
        Self::start_with(Some(tonic::transport::Identity::from_pem(
            read("server.crt"),
            read("server.key"),
        )))
    }

    fn start_with(tls: Option<tonic::transport::Identity>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio");
        let shared = Shared::default();
        let (grpc, http) = rt.block_on(async {
            let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let grpc: SocketAddr = grpc_listener.local_addr().unwrap();
            let mut server = tonic::transport::Server::builder();
            if let Some(identity) = tls.clone() {
                server = server
                    .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                    .expect("TLS");
            }
            let router = server
                .add_service(MetricsServiceServer::new(shared.clone()))
                .add_service(LogsServiceServer::new(shared.clone()))
                .add_service(TraceServiceServer::new(shared.clone()));
            let counted = shared.clone();
            let incoming = tonic::transport::server::TcpIncoming::from(grpc_listener).map(move |accepted| {
                if accepted.is_ok() {
                    counted.0.lock().unwrap().grpc_connections += 1;
                }
                accepted
            });
            tokio::spawn(router.serve_with_incoming(incoming));
            let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let http: SocketAddr = http_listener.local_addr().unwrap();
            let state = shared.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = http_listener.accept().await else {
                        continue;
                    };
                    let state = state.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let state = state.clone();
                            async move { Ok::<_, std::convert::Infallible>(http_export(&state, req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            (grpc, http)
        });
        let scheme = if tls.is_some() {
            "https://localhost"
        } else {
            "http://127.0.0.1"
        };
        Self {
            grpc: format!("{scheme}:{}", grpc.port()),
            http: format!("http://{http}"),
            shared,
            _rt: rt,
        }
    }

    /// Answers "unavailable" to the next `n` requests.
    pub fn refuse_next(&self, n: usize) {
        self.shared.0.lock().unwrap().unavailable = n;
    }

    /// Runs `f` on what was received so far.
    pub fn with<T>(&self, f: impl FnOnce(&Received) -> T) -> T {
        f(&self.shared.0.lock().unwrap())
    }

    /// Waits until `done` holds of what was received (or `timeout`; then returns false).
    pub fn wait(&self, timeout: Duration, done: impl Fn(&Received) -> bool) -> bool {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self.with(&done) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

async fn http_export(
    state: &Shared,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<bytes::Bytes>> {
    let answer = |status: u16| {
        let mut r = hyper::Response::new(Full::new(bytes::Bytes::new()));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        r
    };
    if req.method() != hyper::Method::POST {
        return answer(405);
    }
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    if !headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "application/x-protobuf")
    {
        return answer(415);
    }
    let path = req.uri().path().to_owned();
    let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return answer(400);
    };
    if !state.admit() {
        return answer(503);
    }
    match path.as_str() {
        "/v1/metrics" => match ExportMetricsServiceRequest::decode(body) {
            Ok(m) => state.0.lock().unwrap().metrics.push((headers, m)),
            Err(_) => return answer(400),
        },
        "/v1/logs" => match ExportLogsServiceRequest::decode(body) {
            Ok(l) => state.0.lock().unwrap().logs.push((headers, l)),
            Err(_) => return answer(400),
        },
        _ => return answer(404),
    }
    answer(200)
}

/// Attributes as `(key, string value)` pairs.
pub fn attributes(kv: &[KeyValue]) -> Vec<(String, String)> {
    kv.iter()
        .map(|a| {
            let v = match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            (a.key.clone(), v)
        })
        .collect()
}

/// Every metric of every request, flattened.
pub fn metrics(r: &Received) -> Vec<opentelemetry_proto::tonic::metrics::v1::Metric> {
    r.metrics
        .iter()
        .flat_map(|(_, req)| req.resource_metrics.iter())
        .flat_map(|rm| rm.scope_metrics.iter())
        .flat_map(|sm| sm.metrics.iter().cloned())
        .collect()
}

/// Every span of every trace request, flattened.
pub fn spans(r: &Received) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
    r.traces
        .iter()
        .flat_map(|req| req.resource_spans.iter())
        .flat_map(|rs| rs.scope_spans.iter())
        .flat_map(|ss| ss.spans.iter().cloned())
        .collect()
}
