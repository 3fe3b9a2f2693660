//! The resources once validated: types in which what wasmflow cannot run cannot be written.
//!
//! A [`DataflowGraph`] has at least one source, exactly one graph node and one destination,
//! already connected in that order (the only shape wasmflow runs: see `validate`); an
//! [`Endpoint`] is one of the three kinds a graph can use, with the settings of that kind
//! only; an authentication method wasmflow cannot perform off-cluster is not a variant.
//! `validate` builds these from [`crate::syntax`]; `resolve` turns them into what a run needs.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Origin;

/// Everything the files of one run define.
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    /// In the order they were read.
    pub graphs: Vec<DataflowGraph>,
    /// `DataflowEndpoint` resources by name.
    pub endpoints: BTreeMap<String, Endpoint>,
    /// `RegistryEndpoint` resources by name.
    pub registries: BTreeMap<String, RegistryEndpoint>,
    /// Settings read but not acted on (each names its resource and field).
    pub warnings: Vec<String>,
}

/// Whether a graph runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Started (the default).
    Enabled,
    /// Loaded and validated, not started.
    Disabled,
}

/// Where a graph's open windows are kept (`requestDiskPersistence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// `Enabled`: written to the window journal before their inputs are acknowledged.
    Disk,
    /// `Disabled` (the default): in memory; their inputs stay unacknowledged until the window's
    /// output is delivered.
    Memory,
}

/// A `DataflowGraph`: sources → one graph → one destination.
#[derive(Debug, Clone)]
pub struct DataflowGraph {
    /// The resource; its name is the graph's name in logs, metrics and the journal.
    pub origin: Origin,
    /// Whether it runs.
    pub mode: Mode,
    /// Where its windows are kept.
    pub persistence: Persistence,
    /// `profileRef`, informational.
    pub profile: Option<String>,
    /// Every Source node, each connected to the graph node.
    pub sources: Vec<SourceNode>,
    /// The Graph node.
    pub processor: GraphNode,
    /// The Destination node the graph node is connected to.
    pub destination: DestinationNode,
}

impl DataflowGraph {
    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.origin.name
    }
}

/// A Source node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceNode {
    /// The node's name.
    pub name: String,
    /// `endpointRef`: a `DataflowEndpoint` by name, or [`DEFAULT_ENDPOINT`].
    pub endpoint: String,
    /// `dataSources`: topic filters (MQTT) or topics (Kafka); never empty.
    pub data_sources: Vec<String>,
    /// The schema of its connection to the graph node.
    pub schema: Option<SchemaRef>,
}

/// The Graph node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    /// The node's name.
    pub name: String,
    /// `registryEndpointRef`.
    pub registry: String,
    /// `artifact`.
    pub artifact: Artifact,
    /// `configuration`, in order: each becomes a `-c key=value` for every operation.
    pub configuration: Vec<(String, String)>,
    /// The schema of its connection to the destination.
    pub schema: Option<SchemaRef>,
}

/// A graph definition artifact: `name:tag` or `name@sha256:…`, relative to a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// As written.
    pub written: String,
    /// The repository path (`graph-simple`, `org/graph-simple`).
    pub repository: String,
}

impl Artifact {
    /// The last segment of the repository: the file name (`<name>.yaml`) a local modules
    /// directory holds it under.
    pub fn file_stem(&self) -> &str {
        self.repository.rsplit('/').next().unwrap_or(&self.repository)
    }
}

/// The Destination node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationNode {
    /// The node's name.
    pub name: String,
    /// `endpointRef`.
    pub endpoint: String,
    /// `dataDestination`: the topic every output is published on.
    pub topic: String,
}

/// `nodeConnections[].from.schema` with `serializationFormat: Json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRef {
    /// `schemaRef` as written.
    pub name: String,
    /// `from → to`, naming the connection in messages and metrics.
    pub connection: String,
}

/// The endpoint name that means the local broker when no resource defines it.
pub const DEFAULT_ENDPOINT: &str = "default";

/// A `DataflowEndpoint`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The resource.
    pub origin: Origin,
    /// What it connects to.
    pub kind: EndpointKind,
}

/// The three kinds of endpoint a data flow graph can use.
#[derive(Debug, Clone)]
pub enum EndpointKind {
    /// An MQTT broker: source or destination.
    Mqtt(MqttEndpoint),
    /// A Kafka cluster: source or destination.
    Kafka(KafkaEndpoint),
    /// An OpenTelemetry collector: destination only.
    OpenTelemetry(OtelEndpoint),
}

impl EndpointKind {
    /// For messages: `MQTT`, `Kafka`, `OpenTelemetry`.
    pub fn label(&self) -> &'static str {
        match self {
            EndpointKind::Mqtt(_) => "MQTT",
            EndpointKind::Kafka(_) => "Kafka",
            EndpointKind::OpenTelemetry(_) => "OpenTelemetry",
        }
    }
}

/// TLS towards an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// `trustedCaCertificateConfigMapRef`: a ConfigMap with the CA (PEM); the system's roots
    /// when `None`.
    pub ca_config_map: Option<String>,
    /// `X509Certificate` authentication: a `kubernetes.io/tls` secret (`tls.crt`, `tls.key`).
    pub client_secret: Option<String>,
}

/// `mqttSettings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttEndpoint {
    /// `host:port`.
    pub host: String,
    /// `Some` when `tls.mode` is `Enabled`.
    pub tls: Option<Tls>,
    /// Client ids are `<prefix>-<endpoint name>` (the sink adds `-out`).
    pub client_id_prefix: Option<String>,
    /// 0 or 1.
    pub qos: Option<u8>,
    /// Seconds the broker keeps the session.
    pub session_expiry_secs: Option<u32>,
    /// Seconds of silence before a ping.
    pub keep_alive_secs: Option<u64>,
    /// Publications in flight at once.
    pub max_inflight: Option<u16>,
}

/// `kafkaSettings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaEndpoint {
    /// Bootstrap servers.
    pub bootstrap: String,
    /// `consumerGroupId`.
    pub group: Option<String>,
    /// `Some` when `tls.mode` is `Enabled`.
    pub tls: Option<Tls>,
    /// SASL, when the method is `Sasl`.
    pub sasl: Option<Sasl>,
    /// librdkafka properties the settings translate to (batching, compression).
    pub properties: Vec<(String, String)>,
}

/// SASL for Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sasl {
    /// librdkafka's `sasl.mechanism`: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`.
    pub mechanism: &'static str,
    /// A secret with `username` and `password` keys.
    pub secret: String,
}

/// How OTLP travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (the collector's port 4317): the platform's.
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318), chosen by the `wasmflow/otlp-protocol`
    /// annotation.
    HttpProtobuf,
}

/// `openTelemetrySettings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtelEndpoint {
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    /// gRPC or HTTP/protobuf.
    pub protocol: OtlpProtocol,
    /// `Some` for `https://`.
    pub tls: Option<Tls>,
    /// The method was `ServiceAccountToken`: the collector expects a bearer token, which the
    /// run's `--otlp-header` supplies.
    pub token_expected: bool,
    /// Longest wait before an export (`batching.latencySeconds`, default 60 s).
    pub latency: Duration,
    /// Most messages in one export (`batching.maxMessages`, default 100,000).
    pub max_messages: usize,
}

/// A `RegistryEndpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEndpoint {
    /// The resource.
    pub origin: Origin,
    /// `host[:port]`, without a scheme.
    pub host: String,
    /// Written `http://…`: the registry speaks plain HTTP.
    pub plain_http: bool,
    /// The authentication method as written (`SystemAssignedManagedIdentity`, …), for the
    /// log: wasmflow presents the machine's own registry credentials whatever it is.
    pub method: String,
}
