//! From documents as written ([`crate::syntax`]) to the validated [`Deployment`].
//!
//! Every check names the resource, node and field it is about. Checks that need other
//! resources (does `endpointRef` name one?) belong to `resolve`, which also knows the run's
//! flags; what can be decided from one resource alone is decided here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::error::{Origin, ResourceError, Unsupported};
use crate::model::*;
use crate::syntax::{self, Document};
use crate::{SUPPORTED_API_VERSIONS, SUPPORTED_KINDS};

/// One parsed document and where it came from.
pub(crate) struct Parsed {
    pub origin: Origin,
    pub document: Document,
}

/// Builds the deployment from every document of a run. Unsupported kinds are collected and
/// reported together, before anything else is checked.
pub(crate) fn deployment(docs: Vec<Parsed>) -> Result<Deployment, ResourceError> {
    let unsupported: Vec<Unsupported> = docs
        .iter()
        .filter(|d| {
            !SUPPORTED_KINDS.contains(&d.document.kind.as_str())
                || !SUPPORTED_API_VERSIONS.contains(&d.document.api_version.as_str())
        })
        .map(|d| Unsupported {
            origin: d.origin.clone(),
            api_version: d.document.api_version.clone(),
        })
        .collect();
    if !unsupported.is_empty() {
        return Err(ResourceError::Unsupported(unsupported));
    }
    let mut out = Deployment::default();
    let mut graph_names = BTreeSet::new();
    for d in docs {
        let Parsed { origin, document } = d;
        let duplicate = || ResourceError::Resource {
            at: Box::new(origin.clone()),
            reason: format!("a second {} of this name; names are unique per kind", origin.kind),
        };
        match document.kind.as_str() {
            "DataflowGraph" => {
                if !graph_names.insert(origin.name.clone()) {
                    return Err(duplicate());
                }
                let spec: syntax::DataflowGraphSpec = spec_of(&origin, document.spec)?;
                out.graphs.push(graph(origin, spec, &mut out.warnings)?);
            }
            "DataflowEndpoint" => {
                if out.endpoints.contains_key(&origin.name) {
                    return Err(duplicate());
                }
                let spec: syntax::DataflowEndpointSpec = spec_of(&origin, document.spec)?;
                let kind = endpoint(&origin, &document.metadata, spec, &mut out.warnings)?;
                out.endpoints.insert(origin.name.clone(), Endpoint { origin, kind });
            }
            _ => {
                if out.registries.contains_key(&origin.name) {
                    return Err(duplicate());
                }
                let spec: syntax::RegistryEndpointSpec = spec_of(&origin, document.spec)?;
                out.registries.insert(origin.name.clone(), registry(origin, spec)?);
            }
        }
    }
    Ok(out)
}

/// Reads `spec` into its type; an error names the field by its path in the document.
fn spec_of<T: DeserializeOwned>(origin: &Origin, spec: serde_yaml_ng::Value) -> Result<T, ResourceError> {
    // The node a field path points into, for the message (`nodes[2]…` → that node's name).
    let node_names: Vec<Option<String>> = spec
        .get("nodes")
        .and_then(|n| n.as_sequence())
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| n.get("name").and_then(|v| v.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    serde_path_to_error::deserialize(spec).map_err(|e| {
        let path = e.path().to_string();
        let node = path
            .strip_prefix("nodes[")
            .and_then(|rest| rest.split(']').next())
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| node_names.get(i).cloned().flatten());
        ResourceError::Field {
            at: Box::new(origin.clone()),
            node,
            field: if path == "." {
                "spec".into()
            } else {
                format!("spec.{path}")
            },
            reason: e.into_inner().to_string(),
        }
    })
}

fn field(at: &Origin, node: Option<&str>, field: impl Into<String>, reason: impl Into<String>) -> ResourceError {
    ResourceError::Field {
        at: Box::new(at.clone()),
        node: node.map(str::to_owned),
        field: field.into(),
        reason: reason.into(),
    }
}

/// `Enabled`/`Disabled`, any case, as the platform takes them.
fn enabled(at: &Origin, path: &str, value: Option<&str>, default: bool) -> Result<bool, ResourceError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("enabled") => Ok(true),
        Some("disabled") => Ok(false),
        Some(_) => Err(field(
            at,
            None,
            path,
            format!("`{}`: expected Enabled or Disabled", value.unwrap_or_default()),
        )),
    }
}

fn graph(
    at: Origin,
    spec: syntax::DataflowGraphSpec,
    warnings: &mut Vec<String>,
) -> Result<DataflowGraph, ResourceError> {
    let mode = if enabled(&at, "spec.mode", spec.mode.as_deref(), true)? {
        Mode::Enabled
    } else {
        Mode::Disabled
    };
    let persistence = if enabled(
        &at,
        "spec.requestDiskPersistence",
        spec.request_disk_persistence.as_deref(),
        false,
    )? {
        Persistence::Disk
    } else {
        Persistence::Memory
    };

    // Nodes by name, each checked against its type.
    #[derive(Clone)]
    enum Kind {
        Source(SourceNode),
        Graph(GraphNode),
        Destination(DestinationNode),
    }
    let mut nodes: BTreeMap<String, Kind> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (i, n) in spec.nodes.into_iter().enumerate() {
        let path = |rest: &str| format!("spec.nodes[{i}].{rest}");
        let name = n.name.clone();
        if name.trim().is_empty() {
            return Err(field(&at, None, path("name"), "a node needs a name"));
        }
        if nodes.contains_key(&name) {
            return Err(field(
                &at,
                Some(&name),
                path("name"),
                "a second node of this name; node names are unique",
            ));
        }
        let node = Some(name.as_str());
        // A node carries the settings of its own type only.
        let own = match n.node_type.to_ascii_lowercase().as_str() {
            "source" => Some("sourceSettings"),
            "graph" => Some("graphSettings"),
            "destination" => Some("destinationSettings"),
            _ => None,
        };
        let present = [
            ("sourceSettings", n.source_settings.is_some()),
            ("graphSettings", n.graph_settings.is_some()),
            ("destinationSettings", n.destination_settings.is_some()),
        ];
        let stray = own.and_then(|own| present.iter().find(|(s, p)| *p && *s != own));
        if let Some((settings, _)) = stray {
            return Err(field(
                &at,
                node,
                path(settings),
                format!("a {} node takes no {settings}", n.node_type),
            ));
        }
        let kind = match n.node_type.to_ascii_lowercase().as_str() {
            "source" => {
                let s = n
                    .source_settings
                    .ok_or_else(|| field(&at, node, path("sourceSettings"), "a Source node needs sourceSettings"))?;
                if s.data_sources.is_empty() {
                    return Err(field(
                        &at,
                        node,
                        path("sourceSettings.dataSources"),
                        "lists no topic to read",
                    ));
                }
                if let Some(j) = s.data_sources.iter().position(|t| t.trim().is_empty()) {
                    return Err(field(
                        &at,
                        node,
                        path(&format!("sourceSettings.dataSources[{j}]")),
                        "an empty topic",
                    ));
                }
                if let Some(asset) = &s.asset_ref {
                    warnings.push(format!(
                        "{at}, node `{name}`: sourceSettings.assetRef `{asset}` is ignored (assets live in Azure Device Registry)"
                    ));
                }
                Kind::Source(SourceNode {
                    name: name.clone(),
                    endpoint: s.endpoint_ref,
                    data_sources: s.data_sources,
                    schema: None,
                })
            }
            "graph" => {
                let g = n
                    .graph_settings
                    .ok_or_else(|| field(&at, node, path("graphSettings"), "a Graph node needs graphSettings"))?;
                let artifact =
                    artifact(&g.artifact).map_err(|why| field(&at, node, path("graphSettings.artifact"), why))?;
                let mut configuration = Vec::new();
                for (j, kv) in g.configuration.into_iter().enumerate() {
                    if kv.key.trim().is_empty() {
                        return Err(field(
                            &at,
                            node,
                            path(&format!("graphSettings.configuration[{j}].key")),
                            "an empty key",
                        ));
                    }
                    configuration.push((kv.key, kv.value.0));
                }
                Kind::Graph(GraphNode {
                    name: name.clone(),
                    registry: g.registry_endpoint_ref,
                    artifact,
                    configuration,
                    schema: None,
                })
            }
            "destination" => {
                let d = n.destination_settings.ok_or_else(|| {
                    field(
                        &at,
                        node,
                        path("destinationSettings"),
                        "a Destination node needs destinationSettings",
                    )
                })?;
                if d.output_schema_settings.is_some() {
                    return Err(field(
                        &at,
                        node,
                        path("destinationSettings.outputSchemaSettings"),
                        "serializes for storage endpoints, which wasmflow does not have (it publishes to MQTT, Kafka and OpenTelemetry)",
                    ));
                }
                if d.data_destination.trim().is_empty() {
                    return Err(field(
                        &at,
                        node,
                        path("destinationSettings.dataDestination"),
                        "an empty topic",
                    ));
                }
                Kind::Destination(DestinationNode {
                    name: name.clone(),
                    endpoint: d.endpoint_ref,
                    topic: d.data_destination,
                })
            }
            other => {
                return Err(field(
                    &at,
                    node,
                    path("nodeType"),
                    format!("`{other}`: expected Source, Graph or Destination"),
                ))
            }
        };
        order.push(name.clone());
        nodes.insert(name, kind);
    }

    // The one node of a kind, in spec order: `none` when there is none, `second` when there are more.
    let exactly_one = |is: fn(&Kind) -> bool, none: &str, second: &str| -> Result<String, ResourceError> {
        let mut of_kind = order.iter().filter(|n| is(&nodes[*n]));
        match (of_kind.next(), of_kind.next()) {
            (Some(one), None) => Ok(one.clone()),
            (None, _) => Err(field(&at, None, "spec.nodes", none)),
            (Some(_), Some(extra)) => Err(field(&at, Some(extra), "spec.nodes", second)),
        }
    };
    let processor_name = exactly_one(
        |k| matches!(k, Kind::Graph(_)),
        "no Graph node: a DataflowGraph runs one graph artifact",
        "a second Graph node: wasmflow runs one Graph node per DataflowGraph; chain graphs through a topic with two DataflowGraphs",
    )?;
    let destination_name = exactly_one(
        |k| matches!(k, Kind::Destination(_)),
        "no Destination node: outputs would have nowhere to go",
        "a second Destination node: wasmflow publishes a graph's outputs to one destination; give each destination its own DataflowGraph",
    )?;

    // Connections: every source → the graph node, the graph node → the destination.
    let mut connected_sources = BTreeSet::new();
    let mut output_connected = false;
    for (i, c) in spec.node_connections.iter().enumerate() {
        let path = |rest: &str| format!("spec.nodeConnections[{i}].{rest}");
        for (end, name) in [("from.name", &c.from.name), ("to.name", &c.to.name)] {
            if !nodes.contains_key(name) {
                return Err(field(
                    &at,
                    None,
                    path(end),
                    format!(
                        "names node `{name}`, which is not in spec.nodes (nodes: {})",
                        order.join(", ")
                    ),
                ));
            }
        }
        let schema = match &c.from.schema {
            None => None,
            Some(s) => {
                match s
                    .serialization_format
                    .as_deref()
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    None | Some("json") => {}
                    Some(other) => {
                        return Err(field(
                            &at,
                            None,
                            path("from.schema.serializationFormat"),
                            format!("`{other}`: wasmflow checks Json schemas between nodes"),
                        ))
                    }
                }
                Some(SchemaRef {
                    name: s.schema_ref.clone(),
                    connection: format!("{} → {}", c.from.name, c.to.name),
                })
            }
        };
        let shape = (&nodes[&c.from.name], &nodes[&c.to.name]);
        match shape {
            (Kind::Source(_), Kind::Graph(_)) => {
                if !connected_sources.insert(c.from.name.clone()) {
                    return Err(field(&at, None, path("from.name"), format!("`{}` is connected twice", c.from.name)));
                }
                if let Some(Kind::Source(s)) = nodes.get_mut(&c.from.name) {
                    s.schema = schema;
                }
            }
            (Kind::Graph(_), Kind::Destination(_)) => {
                if output_connected {
                    return Err(field(&at, None, path("from.name"), format!("`{}` is connected twice", c.from.name)));
                }
                output_connected = true;
                if let Some(Kind::Graph(g)) = nodes.get_mut(&c.from.name) {
                    g.schema = schema;
                }
            }
            _ => {
                return Err(field(
                    &at,
                    None,
                    path("from.name"),
                    format!(
                        "`{}` → `{}`: wasmflow connects Source nodes to the Graph node and the Graph node to the Destination node",
                        c.from.name, c.to.name
                    ),
                ))
            }
        }
    }
    let sources: Vec<SourceNode> = order
        .iter()
        .filter_map(|n| match &nodes[n] {
            Kind::Source(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    if sources.is_empty() {
        return Err(field(
            &at,
            None,
            "spec.nodes",
            "no Source node: the graph would receive nothing",
        ));
    }
    if let Some(s) = sources.iter().find(|s| !connected_sources.contains(&s.name)) {
        return Err(field(
            &at,
            Some(&s.name),
            "spec.nodeConnections",
            format!("no connection from `{}` to `{processor_name}`", s.name),
        ));
    }
    if !output_connected {
        return Err(field(
            &at,
            Some(&processor_name),
            "spec.nodeConnections",
            format!("no connection from `{processor_name}` to `{destination_name}`"),
        ));
    }
    let Some(Kind::Graph(processor)) = nodes.remove(&processor_name) else {
        unreachable!("the Graph node was found above")
    };
    let Some(Kind::Destination(destination)) = nodes.remove(&destination_name) else {
        unreachable!("the Destination node was found above")
    };
    Ok(DataflowGraph {
        origin: at,
        mode,
        persistence,
        profile: spec.profile_ref,
        sources,
        processor,
        destination,
    })
}

/// `name:tag` or `name@sha256:…`, relative to the registry endpoint (no host of its own).
fn artifact(written: &str) -> Result<Artifact, String> {
    let w = written.trim();
    let repository = match w.split_once('@') {
        Some((repo, digest)) if digest.starts_with("sha256:") => repo,
        Some(_) => return Err(format!("`{written}`: a digest is written `name@sha256:<hex>`")),
        None => match w.rsplit_once(':') {
            Some((repo, tag)) if !tag.is_empty() && !tag.contains('/') => repo,
            _ => return Err(format!("`{written}`: expected `name:version` (graph-simple:1.0.0)")),
        },
    };
    if repository.is_empty() {
        return Err(format!("`{written}`: no artifact name before the version"));
    }
    let first = repository.split('/').next().unwrap_or_default();
    if first.contains('.') || first.contains(':') || first == "localhost" {
        return Err(format!(
            "`{written}` names a registry host (`{first}`); artifacts are relative to the registry endpoint: put the host in the RegistryEndpoint"
        ));
    }
    Ok(Artifact {
        written: w.to_owned(),
        repository: repository.to_owned(),
    })
}

fn endpoint(
    at: &Origin,
    meta: &syntax::Metadata,
    spec: syntax::DataflowEndpointSpec,
    warnings: &mut Vec<String>,
) -> Result<EndpointKind, ResourceError> {
    if let Some(key) = spec.other.keys().next() {
        return Err(field(
            at,
            None,
            format!("spec.{key}"),
            format!(
                "endpoint type `{}`: wasmflow runs Mqtt, Kafka and OpenTelemetry endpoints",
                spec.endpoint_type
            ),
        ));
    }
    let missing = |settings: &str| {
        field(
            at,
            None,
            format!("spec.{settings}"),
            format!("an endpoint of type {} needs {settings}", spec.endpoint_type),
        )
    };
    match spec.endpoint_type.as_str() {
        "Mqtt" => {
            mqtt(at, spec.mqtt_settings.ok_or_else(|| missing("mqttSettings"))?, warnings).map(EndpointKind::Mqtt)
        }
        "Kafka" => kafka(
            at,
            spec.kafka_settings.ok_or_else(|| missing("kafkaSettings"))?,
            warnings,
        )
        .map(EndpointKind::Kafka),
        "OpenTelemetry" => otel(
            at,
            meta,
            spec.open_telemetry_settings
                .ok_or_else(|| missing("openTelemetrySettings"))?,
        )
        .map(EndpointKind::OpenTelemetry),
        other => Err(field(
            at,
            None,
            "spec.endpointType",
            format!("`{other}`: wasmflow runs Mqtt, Kafka and OpenTelemetry endpoints"),
        )),
    }
}

/// The host, present and not a documentation placeholder.
fn host(at: &Origin, path: &str, host: Option<String>) -> Result<String, ResourceError> {
    let h = host
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| field(at, None, path, "no host"))?;
    if is_placeholder(&h) {
        return Err(field(
            at,
            None,
            path,
            format!("`{h}` is a placeholder from the documentation: put the real host there"),
        ));
    }
    Ok(h)
}

/// `<YOUR_ACR_NAME>.azurecr.io`: angle brackets never appear in a host.
pub(crate) fn is_placeholder(text: &str) -> bool {
    text.contains('<') && text.contains('>')
}

/// TLS from `tls.mode` (and the client certificate of X509 authentication).
fn tls(
    at: &Origin,
    settings: &str,
    tls: Option<&syntax::Tls>,
    client_secret: Option<String>,
    default_enabled: bool,
) -> Result<Option<Tls>, ResourceError> {
    let on = enabled(
        at,
        &format!("spec.{settings}.tls.mode"),
        tls.and_then(|t| t.mode.as_deref()),
        default_enabled,
    )?;
    if !on {
        if client_secret.is_some() {
            return Err(field(
                at,
                None,
                format!("spec.{settings}.authentication.method"),
                "X509Certificate authenticates over TLS, and tls.mode is Disabled",
            ));
        }
        return Ok(None);
    }
    Ok(Some(Tls {
        ca_config_map: tls.and_then(|t| t.trusted_ca_certificate_config_map_ref.clone()),
        client_secret,
    }))
}

/// Methods that need an Azure or Kubernetes identity, which does not exist off-cluster.
fn cluster_identity(at: &Origin, path: &str, method: &str) -> ResourceError {
    field(
        at,
        None,
        path,
        format!("`{method}` authenticates with an identity of an Azure IoT Operations cluster, which a wasmflow run does not have; use Anonymous or X509Certificate (with --secret)"),
    )
}

fn mqtt(at: &Origin, s: syntax::MqttSettings, warnings: &mut Vec<String>) -> Result<MqttEndpoint, ResourceError> {
    let host = host(at, "spec.mqttSettings.host", s.host)?;
    if let Some(p) = s.protocol.as_deref().filter(|p| !p.eq_ignore_ascii_case("mqtt")) {
        return Err(field(
            at,
            None,
            "spec.mqttSettings.protocol",
            format!("`{p}`: wasmflow speaks MQTT over TCP (or TLS), not WebSockets"),
        ));
    }
    let path = "spec.mqttSettings.authentication.method";
    let client_secret = match &s.authentication {
        None => None,
        Some(a) => match a.method.as_str() {
            "Anonymous" => None,
            "X509Certificate" => Some(secret_ref(
                at,
                "spec.mqttSettings.authentication",
                a.x509_certificate_settings.as_ref(),
            )?),
            m @ ("ServiceAccountToken" | "SystemAssignedManagedIdentity" | "UserAssignedManagedIdentity") => {
                return Err(cluster_identity(at, path, m))
            }
            m => {
                return Err(field(
                    at,
                    None,
                    path,
                    format!("`{m}`: expected Anonymous or X509Certificate"),
                ))
            }
        },
    };
    if let Some(q) = s.qos.filter(|q| *q > 1) {
        return Err(field(
            at,
            None,
            "spec.mqttSettings.qos",
            format!("{q}: expected 0 or 1"),
        ));
    }
    for (set, what) in [
        (s.cloud_event_attributes.as_ref(), "cloudEventAttributes"),
        (s.retain.as_ref().filter(|r| !r.eq_ignore_ascii_case("never")), "retain"),
    ] {
        if let Some(v) = set {
            warnings.push(format!(
                "{at}: mqttSettings.{what} `{v}` is ignored (outputs are published without retain, payloads as the graph made them)"
            ));
        }
    }
    Ok(MqttEndpoint {
        host,
        tls: tls(at, "mqttSettings", s.tls.as_ref(), client_secret, false)?,
        client_id_prefix: s.client_id_prefix,
        qos: s.qos,
        session_expiry_secs: s.session_expiry_seconds,
        keep_alive_secs: s.keep_alive_seconds,
        max_inflight: s.max_inflight_messages,
    })
}

fn secret_ref(at: &Origin, path: &str, s: Option<&syntax::SecretRefSettings>) -> Result<String, ResourceError> {
    s.map(|s| s.secret_ref.clone())
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| {
            field(
                at,
                None,
                format!("{path}.x509CertificateSettings.secretRef"),
                "names no secret",
            )
        })
}

fn kafka(at: &Origin, s: syntax::KafkaSettings, warnings: &mut Vec<String>) -> Result<KafkaEndpoint, ResourceError> {
    let bootstrap = host(at, "spec.kafkaSettings.host", s.host)?;
    let path = "spec.kafkaSettings.authentication.method";
    let (mut sasl, mut client_secret) = (None, None);
    if let Some(a) = &s.authentication {
        match a.method.as_str() {
            "Anonymous" => {}
            "Sasl" => {
                let ss = a.sasl_settings.as_ref().ok_or_else(|| {
                    field(
                        at,
                        None,
                        "spec.kafkaSettings.authentication.saslSettings",
                        "the Sasl method needs saslSettings",
                    )
                })?;
                let mechanism = match ss.sasl_type.as_str() {
                    "Plain" => "PLAIN",
                    "ScramSha256" => "SCRAM-SHA-256",
                    "ScramSha512" => "SCRAM-SHA-512",
                    other => {
                        return Err(field(
                            at,
                            None,
                            "spec.kafkaSettings.authentication.saslSettings.saslType",
                            format!("`{other}`: expected Plain, ScramSha256 or ScramSha512"),
                        ))
                    }
                };
                sasl = Some(Sasl {
                    mechanism,
                    secret: ss.secret_ref.clone(),
                });
            }
            "X509Certificate" => {
                client_secret = Some(secret_ref(
                    at,
                    "spec.kafkaSettings.authentication",
                    a.x509_certificate_settings.as_ref(),
                )?)
            }
            m @ ("SystemAssignedManagedIdentity" | "UserAssignedManagedIdentity" | "ServiceAccountToken") => {
                return Err(cluster_identity(at, path, m))
            }
            m => {
                return Err(field(
                    at,
                    None,
                    path,
                    format!("`{m}`: expected Anonymous, Sasl or X509Certificate"),
                ))
            }
        }
    }
    if let Some(acks) = s.kafka_acks.as_deref().filter(|a| !a.eq_ignore_ascii_case("all")) {
        return Err(field(
            at,
            None,
            "spec.kafkaSettings.kafkaAcks",
            format!("`{acks}`: wasmflow's sink always waits for every in-sync replica (All), which its delivery guarantee rests on"),
        ));
    }
    let mut properties = Vec::new();
    if let Some(b) = &s.batching {
        if enabled(at, "spec.kafkaSettings.batching.mode", b.mode.as_deref(), true)? {
            for (key, value) in [
                ("linger.ms", b.latency_ms),
                ("batch.size", b.max_bytes),
                ("batch.num.messages", b.max_messages),
            ] {
                if let Some(v) = value {
                    properties.push((key.to_owned(), v.to_string()));
                }
            }
        }
    }
    if let Some(c) = &s.compression {
        let codec = match c.to_ascii_lowercase().as_str() {
            "none" => "none",
            "gzip" => "gzip",
            "snappy" => "snappy",
            "lz4" => "lz4",
            _ => {
                return Err(field(
                    at,
                    None,
                    "spec.kafkaSettings.compression",
                    format!("`{c}`: expected None, Gzip, Snappy or Lz4"),
                ))
            }
        };
        properties.push(("compression.type".to_owned(), codec.to_owned()));
    }
    for (set, what) in [
        (s.partition_strategy.as_ref(), "partitionStrategy"),
        (s.cloud_event_attributes.as_ref(), "cloudEventAttributes"),
    ] {
        if let Some(v) = set {
            warnings.push(format!(
                "{at}: kafkaSettings.{what} `{v}` is ignored (records keep the key of the input they derive from)"
            ));
        }
    }
    Ok(KafkaEndpoint {
        bootstrap,
        group: s.consumer_group_id,
        tls: tls(at, "kafkaSettings", s.tls.as_ref(), client_secret, false)?,
        sasl,
        properties,
    })
}

/// The annotation that picks OTLP/HTTP over gRPC for an OpenTelemetry endpoint.
pub const OTLP_PROTOCOL_ANNOTATION: &str = "wasmflow/otlp-protocol";

fn otel(at: &Origin, meta: &syntax::Metadata, s: syntax::OpenTelemetrySettings) -> Result<OtelEndpoint, ResourceError> {
    let host = host(at, "spec.openTelemetrySettings.host", s.host)?;
    let path = "spec.openTelemetrySettings.authentication.method";
    let (mut token_expected, mut client_secret) = (false, None);
    if let Some(a) = &s.authentication {
        match a.method.as_str() {
            "Anonymous" => {}
            "ServiceAccountToken" => token_expected = true,
            "X509Certificate" => {
                client_secret = Some(secret_ref(
                    at,
                    "spec.openTelemetrySettings.authentication",
                    a.x509_certificate_settings.as_ref(),
                )?)
            }
            m => {
                return Err(field(
                    at,
                    None,
                    path,
                    format!("`{m}`: expected Anonymous, ServiceAccountToken or X509Certificate"),
                ))
            }
        }
    }
    // The platform's host carries its scheme; without one, tls.mode decides.
    let tls_mode = enabled(
        at,
        "spec.openTelemetrySettings.tls.mode",
        s.tls.as_ref().and_then(|t| t.mode.as_deref()),
        false,
    )?;
    let url = if host.starts_with("http://") || host.starts_with("https://") {
        host
    } else if host.contains("://") {
        return Err(field(
            at,
            None,
            "spec.openTelemetrySettings.host",
            format!("`{host}`: expected http://host:port or https://host:port"),
        ));
    } else if tls_mode {
        format!("https://{host}")
    } else {
        format!("http://{host}")
    };
    let secure = url.starts_with("https://");
    if !secure && client_secret.is_some() {
        return Err(field(
            at,
            None,
            path,
            "X509Certificate authenticates over TLS, and the host is http://",
        ));
    }
    let protocol = match meta.annotations.get(OTLP_PROTOCOL_ANNOTATION).map(String::as_str) {
        None | Some("grpc") => OtlpProtocol::Grpc,
        Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
        Some(other) => {
            return Err(field(
                at,
                None,
                format!("metadata.annotations.{OTLP_PROTOCOL_ANNOTATION}"),
                format!("`{other}`: expected grpc or http/protobuf"),
            ))
        }
    };
    let batching = s.batching.unwrap_or(syntax::OpenTelemetryBatching {
        latency_seconds: None,
        max_messages: None,
    });
    let max_messages = batching.max_messages.unwrap_or(100_000);
    if max_messages == 0 {
        return Err(field(
            at,
            None,
            "spec.openTelemetrySettings.batching.maxMessages",
            "0: a batch holds at least one message",
        ));
    }
    Ok(OtelEndpoint {
        url,
        protocol,
        tls: secure.then(|| Tls {
            ca_config_map: s.tls.and_then(|t| t.trusted_ca_certificate_config_map_ref),
            client_secret,
        }),
        token_expected,
        latency: Duration::from_secs(batching.latency_seconds.unwrap_or(60)),
        max_messages: usize::try_from(max_messages).unwrap_or(usize::MAX),
    })
}

fn registry(at: Origin, spec: syntax::RegistryEndpointSpec) -> Result<RegistryEndpoint, ResourceError> {
    let written = spec.host.trim();
    let (host, plain_http) = match written.split_once("://") {
        None => (written, false),
        Some(("https", h)) => (h, false),
        Some(("http", h)) => (h, true),
        Some(_) => {
            return Err(field(
                &at,
                None,
                "spec.host",
                format!("`{written}`: expected host[:port] or https://host[:port]"),
            ))
        }
    };
    let host = host.trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        return Err(field(
            &at,
            None,
            "spec.host",
            format!("`{written}`: expected host[:port]"),
        ));
    }
    let method = spec
        .authentication
        .map(|a| a.method)
        .unwrap_or_else(|| "Anonymous".to_owned());
    match method.as_str() {
        "SystemAssignedManagedIdentity" | "UserAssignedManagedIdentity" | "ArtifactPullSecret" | "Anonymous" => {}
        other => {
            return Err(field(
                &at,
                None,
                "spec.authentication.method",
                format!("`{other}`: expected SystemAssignedManagedIdentity, UserAssignedManagedIdentity, ArtifactPullSecret or Anonymous"),
            ))
        }
    }
    Ok(RegistryEndpoint {
        host: host.to_owned(),
        plain_http,
        method,
        origin: at,
    })
}
