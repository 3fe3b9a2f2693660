//! The resources as written: serde types of the platform's Kubernetes YAML, field for field.
//!
//! A document is read in two steps. [`Document`] takes the envelope every Kubernetes resource
//! has (`apiVersion`, `kind`, `metadata`) and keeps `spec` as YAML, so a kind wasmflow does not
//! run is still recognised and named. Then the spec of a known kind is read into its type
//! below. These types list every field the platform documents for the kind (also those wasmflow
//! ignores or refuses, which the model decides on) and `deny_unknown_fields`, so a misspelt
//! field is an error naming it rather than a setting silently lost.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The envelope of one YAML document.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// `connectivity.iotoperations.azure.com/v1` or `…/v1beta1` for the kinds wasmflow runs.
    pub api_version: String,
    /// `DataflowGraph`, `DataflowEndpoint`, `RegistryEndpoint`, …
    pub kind: String,
    /// Name, namespace, labels and annotations.
    pub metadata: Metadata,
    /// Read into the kind's spec type once the kind is known.
    #[serde(default)]
    pub spec: serde_yaml_ng::Value,
}

/// Kubernetes object metadata; only the name matters to wasmflow. Other fields Kubernetes
/// writes (`uid`, `resourceVersion`, …) are allowed, so `kubectl get -o yaml` output reads too.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// The name other resources refer to it by (`endpointRef`, `registryEndpointRef`).
    pub name: String,
    /// Informational: every resource of a run shares one namespace, whatever is written.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Annotations; `wasmflow/otlp-protocol` on an OpenTelemetry endpoint is read.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `spec` of a `DataflowGraph`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataflowGraphSpec {
    /// `Enabled` or `Disabled`, any case; `Enabled` when absent.
    #[serde(default)]
    pub mode: Option<String>,
    /// The dataflow profile (instance count, resources); informational here.
    #[serde(default)]
    pub profile_ref: Option<String>,
    /// `Enabled` or `Disabled`, any case; `Disabled` when absent.
    #[serde(default)]
    pub request_disk_persistence: Option<String>,
    /// Source, Graph and Destination nodes.
    #[serde(default)]
    pub nodes: Vec<Node>,
    /// Edges between the nodes.
    #[serde(default)]
    pub node_connections: Vec<NodeConnection>,
}

/// One entry of `nodes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Node {
    /// `Source`, `Graph` or `Destination`.
    pub node_type: String,
    /// Unique in the graph; connections name it.
    pub name: String,
    /// For `Source`.
    #[serde(default)]
    pub source_settings: Option<SourceSettings>,
    /// For `Graph`.
    #[serde(default)]
    pub graph_settings: Option<GraphSettings>,
    /// For `Destination`.
    #[serde(default)]
    pub destination_settings: Option<DestinationSettings>,
}

/// `sourceSettings` of a Source node.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceSettings {
    /// A `DataflowEndpoint` by name; `default` is the local broker.
    pub endpoint_ref: String,
    /// MQTT topic filters or Kafka topics.
    #[serde(default)]
    pub data_sources: Vec<String>,
    /// An Azure Device Registry asset (schema inference on the platform); not used here.
    #[serde(default)]
    pub asset_ref: Option<String>,
}

/// `graphSettings` of a Graph node.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GraphSettings {
    /// A `RegistryEndpoint` by name.
    pub registry_endpoint_ref: String,
    /// `name:tag` (or `name@sha256:…`) of the graph definition in that registry.
    pub artifact: String,
    /// Parameters for the graph's operations.
    #[serde(default)]
    pub configuration: Vec<KeyValue>,
}

/// One `configuration` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValue {
    /// The parameter key.
    pub key: String,
    /// Its value; a YAML number or boolean is taken as written (`precision: 2` is `"2"`).
    pub value: Scalar,
}

/// A YAML scalar read as the text it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde_yaml_ng::Value;
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Scalar(s)),
            Value::Number(n) => Ok(Scalar(n.to_string())),
            Value::Bool(b) => Ok(Scalar(b.to_string())),
            Value::Null => Ok(Scalar(String::new())),
            _ => Err(serde::de::Error::custom(
                "expected a string, number or boolean (a configuration value is one scalar)",
            )),
        }
    }
}

/// `destinationSettings` of a Destination node.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationSettings {
    /// A `DataflowEndpoint` by name; `default` is the local broker.
    pub endpoint_ref: String,
    /// The topic outputs are published to.
    pub data_destination: String,
    /// Serialization for storage endpoints; refused (wasmflow has none).
    #[serde(default)]
    pub output_schema_settings: Option<serde_yaml_ng::Value>,
}

/// One `nodeConnections` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConnection {
    /// Where items come from, and the schema they must follow.
    pub from: ConnectionFrom,
    /// Where they go.
    pub to: ConnectionTo,
}

/// `nodeConnections[].from`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionFrom {
    /// A node name.
    pub name: String,
    /// Items on this connection must follow this schema.
    #[serde(default)]
    pub schema: Option<ConnectionSchema>,
}

/// `nodeConnections[].to`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionTo {
    /// A node name.
    pub name: String,
}

/// `nodeConnections[].from.schema`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionSchema {
    /// The schema by name (`sensor-input-schema:1`).
    pub schema_ref: String,
    /// `Json` (the one wasmflow checks); `Delta`, `Parquet`, … are refused.
    #[serde(default)]
    pub serialization_format: Option<String>,
}

/// `spec` of a `DataflowEndpoint`. Unknown fields land in `other` (serde cannot both flatten and
/// deny them), where the model refuses them by name.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataflowEndpointSpec {
    /// `Mqtt`, `Kafka`, `OpenTelemetry` (and the platform's storage kinds, refused).
    pub endpoint_type: String,
    /// With `Mqtt`.
    #[serde(default)]
    pub mqtt_settings: Option<MqttSettings>,
    /// With `Kafka`.
    #[serde(default)]
    pub kafka_settings: Option<KafkaSettings>,
    /// With `OpenTelemetry`.
    #[serde(default)]
    pub open_telemetry_settings: Option<OpenTelemetrySettings>,
    /// Settings of the storage kinds (`dataLakeStorageSettings`, …), kept only to name them.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml_ng::Value>,
}

/// `mqttSettings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MqttSettings {
    /// `host:port`.
    #[serde(default)]
    pub host: Option<String>,
    /// `Mqtt` or `WebSockets` (refused).
    #[serde(default)]
    pub protocol: Option<String>,
    /// TLS mode and trusted CA.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// How to authenticate.
    #[serde(default)]
    pub authentication: Option<Authentication>,
    /// Client ids are this prefix and the endpoint's name.
    #[serde(default)]
    pub client_id_prefix: Option<String>,
    /// 0 or 1.
    #[serde(default)]
    pub qos: Option<u8>,
    /// `Keep` or `Never`; outputs are published without retain either way.
    #[serde(default)]
    pub retain: Option<String>,
    /// How long the broker keeps the session while wasmflow is away.
    #[serde(default)]
    pub session_expiry_seconds: Option<u32>,
    /// MQTT keep-alive.
    #[serde(default)]
    pub keep_alive_seconds: Option<u64>,
    /// Publications in flight at once.
    #[serde(default)]
    pub max_inflight_messages: Option<u16>,
    /// CloudEvents handling; not implemented (ignored with a warning).
    #[serde(default)]
    pub cloud_event_attributes: Option<String>,
}

/// `kafkaSettings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap servers, `host:port[,host:port…]`.
    #[serde(default)]
    pub host: Option<String>,
    /// Consumer group of the source.
    #[serde(default)]
    pub consumer_group_id: Option<String>,
    /// TLS mode and trusted CA.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// How to authenticate.
    #[serde(default)]
    pub authentication: Option<Authentication>,
    /// Producer batching.
    #[serde(default)]
    pub batching: Option<KafkaBatching>,
    /// `None`, `Gzip`, `Snappy`, `Lz4`.
    #[serde(default)]
    pub compression: Option<String>,
    /// `Enabled`/`Disabled`; headers ↔ user properties are always carried here.
    #[serde(default)]
    pub copy_mqtt_properties: Option<String>,
    /// `All` only: wasmflow's sink always waits for every replica.
    #[serde(default)]
    pub kafka_acks: Option<String>,
    /// `Default`, `Static`, `Topic`, `Property`; not implemented (ignored with a warning).
    #[serde(default)]
    pub partition_strategy: Option<String>,
    /// CloudEvents handling; not implemented (ignored with a warning).
    #[serde(default)]
    pub cloud_event_attributes: Option<String>,
}

/// `kafkaSettings.batching`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaBatching {
    /// `Enabled` or `Disabled`.
    #[serde(default)]
    pub mode: Option<String>,
    /// librdkafka `linger.ms`.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// librdkafka `batch.size`.
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// librdkafka `batch.num.messages`.
    #[serde(default)]
    pub max_messages: Option<u64>,
}

/// `openTelemetrySettings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenTelemetrySettings {
    /// The collector: `http://host:4317`, `https://host:4317` or `host:port`.
    #[serde(default)]
    pub host: Option<String>,
    /// TLS mode and trusted CA.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// How to authenticate.
    #[serde(default)]
    pub authentication: Option<Authentication>,
    /// When an export is sent.
    #[serde(default)]
    pub batching: Option<OpenTelemetryBatching>,
}

/// `openTelemetrySettings.batching`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenTelemetryBatching {
    /// Longest wait before a batch is exported.
    #[serde(default)]
    pub latency_seconds: Option<u64>,
    /// Most messages in one export.
    #[serde(default)]
    pub max_messages: Option<u64>,
}

/// `tls` of an endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tls {
    /// `Enabled` or `Disabled`.
    #[serde(default)]
    pub mode: Option<String>,
    /// A ConfigMap holding the CA certificate (PEM).
    #[serde(default)]
    pub trusted_ca_certificate_config_map_ref: Option<String>,
}

/// `authentication` of an endpoint: the method and the settings of each method.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Authentication {
    /// `Anonymous`, `X509Certificate`, `Sasl`, `ServiceAccountToken`,
    /// `SystemAssignedManagedIdentity`, `UserAssignedManagedIdentity`, `ArtifactPullSecret`.
    pub method: String,
    /// With `Anonymous` (empty).
    #[serde(default)]
    pub anonymous_settings: Option<serde_yaml_ng::Value>,
    /// With `X509Certificate`.
    #[serde(default)]
    pub x509_certificate_settings: Option<SecretRefSettings>,
    /// With `Sasl`.
    #[serde(default)]
    pub sasl_settings: Option<SaslSettings>,
    /// With `ArtifactPullSecret`.
    #[serde(default)]
    pub artifact_pull_secret_settings: Option<SecretRefSettings>,
    /// With `ServiceAccountToken`.
    #[serde(default)]
    pub service_account_token_settings: Option<serde_yaml_ng::Value>,
    /// With `SystemAssignedManagedIdentity`.
    #[serde(default)]
    pub system_assigned_managed_identity_settings: Option<serde_yaml_ng::Value>,
    /// With `UserAssignedManagedIdentity`.
    #[serde(default)]
    pub user_assigned_managed_identity_settings: Option<serde_yaml_ng::Value>,
}

/// Settings that name a Kubernetes secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRefSettings {
    /// The secret's name.
    pub secret_ref: String,
}

/// `saslSettings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SaslSettings {
    /// `Plain`, `ScramSha256` or `ScramSha512`.
    pub sasl_type: String,
    /// A secret with `username` and `password` keys.
    pub secret_ref: String,
}

/// `spec` of a `RegistryEndpoint`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryEndpointSpec {
    /// `myregistry.azurecr.io`, `https://myregistry.azurecr.io`, `localhost:5000`.
    pub host: String,
    /// How to authenticate.
    #[serde(default)]
    pub authentication: Option<Authentication>,
}
