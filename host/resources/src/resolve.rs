//! From a validated [`Deployment`] and the run's flags to what a run connects to: which
//! endpoint each node uses (`default` is the run's local broker when no resource defines it),
//! where each graph artifact comes from (a registry reference, or a local file with
//! `--modules`), and which files stand for the Kubernetes secrets and ConfigMaps the endpoints
//! name (`--secret NAME=PATH`). Nothing is pulled or connected here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Origin, ResourceError};
use crate::model::*;
use crate::validate::is_placeholder;

/// The run's flags that resolution depends on.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// `--registry HOST`: graph artifacts are pulled from HOST, whatever their registry
    /// endpoint says (a local registry standing in for the site's).
    pub registry: Option<String>,
    /// `--modules DIR`: an artifact `name:version` is `DIR/name.yaml` when that file exists
    /// (its modules are then looked up in DIR too).
    pub modules_dir: Option<PathBuf>,
    /// `--secret NAME=PATH`: the files of a Kubernetes secret or ConfigMap an endpoint names.
    pub secrets: BTreeMap<String, PathBuf>,
}

/// What one run does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// One per DataflowGraph, in the order read (disabled ones included, to be validated).
    pub graphs: Vec<GraphPlan>,
    /// The endpoints the enabled graphs use, by name: each is connected once, whatever number
    /// of graphs use it.
    pub endpoints: BTreeMap<String, Connection>,
}

/// One graph of the run.
#[derive(Debug, Clone)]
pub struct GraphPlan {
    /// The resource.
    pub graph: DataflowGraph,
    /// Where its graph definition comes from.
    pub artifact: ArtifactLocation,
    /// Endpoint name → the topic filters this graph reads there.
    pub sources: BTreeMap<String, Vec<String>>,
    /// Endpoint name of its destination.
    pub destination: String,
}

impl GraphPlan {
    /// The configuration of the graph node, as `-c key=value` overrides for every operation.
    pub fn configuration(&self) -> &[(String, String)] {
        &self.graph.processor.configuration
    }
}

/// Where a graph artifact comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactLocation {
    /// A graph definition file on this machine (`--modules`).
    Local(PathBuf),
    /// A registry reference; its modules come from the same registry.
    Registry {
        /// `host[:port]/name:version`.
        reference: String,
        /// `host[:port]`.
        registry: String,
        /// The registry speaks plain HTTP.
        plain_http: bool,
        /// What named the registry, for messages: ``RegistryEndpoint `name` `` or `--registry`.
        via: String,
    },
}

/// An endpoint ready to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// `default` with no resource: the run's local broker (`--mqtt`, else the embedded one).
    DefaultBroker,
    /// An MQTT broker.
    Mqtt(MqttConnection),
    /// A Kafka cluster.
    Kafka(KafkaConnection),
    /// An OpenTelemetry collector.
    OpenTelemetry(OtelConnection),
}

/// TLS files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate (PEM); the system's roots when `None`.
    pub ca: Option<PathBuf>,
    /// The client certificate (PEM), for mutual TLS.
    pub cert: Option<PathBuf>,
    /// Its key (PEM).
    pub key: Option<PathBuf>,
}

/// An MQTT broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConnection {
    /// `mqtt://host:port` or `mqtts://host:port`.
    pub url: String,
    /// The source's client id; the sink appends `-out`.
    pub client_id: String,
    /// With `mqtts://`.
    pub tls: Option<TlsFiles>,
    /// 0 or 1 (default 1).
    pub qos: Option<u8>,
    /// Session expiry, seconds.
    pub session_expiry_secs: Option<u32>,
    /// Keep-alive.
    pub keep_alive: Option<Duration>,
    /// Publications in flight.
    pub max_inflight: Option<u16>,
}

/// A Kafka cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConnection {
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Consumer group; `wasmflow-<endpoint name>` unless the resource names one.
    pub group: String,
    /// librdkafka properties (security, batching, compression); values `file:PATH` are read
    /// from there.
    pub properties: Vec<(String, String)>,
}

/// An OpenTelemetry collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtelConnection {
    /// The endpoint's name (metric labels, messages).
    pub name: String,
    /// `http://…` or `https://…`.
    pub url: String,
    /// gRPC or HTTP/protobuf.
    pub protocol: OtlpProtocol,
    /// With `https://`.
    pub tls: Option<TlsFiles>,
    /// The collector expects a bearer token (`ServiceAccountToken`).
    pub token_expected: bool,
    /// Longest wait before an export.
    pub latency: Duration,
    /// Most messages in one export.
    pub max_messages: usize,
}

fn field(at: &Origin, node: Option<&str>, field: &str, reason: String) -> ResourceError {
    ResourceError::Field {
        at: Box::new(at.clone()),
        node: node.map(str::to_owned),
        field: field.to_owned(),
        reason,
    }
}

/// Resolves every graph and the endpoints the enabled ones use.
pub fn resolve(d: &Deployment, options: &ResolveOptions) -> Result<Plan, ResourceError> {
    let mut plan = Plan {
        graphs: Vec::new(),
        endpoints: BTreeMap::new(),
    };
    for g in &d.graphs {
        let at = &g.origin;
        let mut sources: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &g.sources {
            let path = "sourceSettings.endpointRef";
            let c = connection(d, &s.endpoint, options).map_err(|why| field(at, Some(&s.name), path, why))?;
            if matches!(c, Connection::OpenTelemetry(_)) {
                return Err(field(
                    at,
                    Some(&s.name),
                    path,
                    format!(
                        "`{}` is an OpenTelemetry endpoint, and those are destinations only",
                        s.endpoint
                    ),
                ));
            }
            if let (Connection::Kafka(_), Some(t)) = (&c, s.data_sources.iter().find(|t| t.starts_with('^'))) {
                return Err(field(
                    at,
                    Some(&s.name),
                    "sourceSettings.dataSources",
                    format!("`{t}`: Kafka dataSources are topic names"),
                ));
            }
            sources
                .entry(s.endpoint.clone())
                .or_default()
                .extend(s.data_sources.iter().cloned());
            if g.mode == Mode::Enabled {
                plan.endpoints.insert(s.endpoint.clone(), c);
            }
        }
        let dest = &g.destination;
        let c = connection(d, &dest.endpoint, options)
            .map_err(|why| field(at, Some(&dest.name), "destinationSettings.endpointRef", why))?;
        if g.mode == Mode::Enabled {
            plan.endpoints.insert(dest.endpoint.clone(), c);
        }
        plan.graphs.push(GraphPlan {
            graph: g.clone(),
            artifact: artifact(d, g, options)?,
            sources,
            destination: dest.endpoint.clone(),
        });
    }
    Ok(plan)
}

/// Where `g`'s artifact comes from: `--modules DIR/<name>.yaml` when that file exists, else
/// `--registry`, else its RegistryEndpoint's host.
pub fn artifact(
    d: &Deployment,
    g: &DataflowGraph,
    options: &ResolveOptions,
) -> Result<ArtifactLocation, ResourceError> {
    let node = &g.processor;
    let at = &g.origin;
    if let Some(dir) = &options.modules_dir {
        let file = dir.join(format!("{}.yaml", node.artifact.file_stem()));
        if file.is_file() {
            return Ok(ArtifactLocation::Local(file));
        }
    }
    if let Some(registry) = &options.registry {
        return Ok(ArtifactLocation::Registry {
            reference: format!("{registry}/{}", node.artifact.written),
            registry: registry.clone(),
            plain_http: false,
            via: "--registry".into(),
        });
    }
    let path = "graphSettings.registryEndpointRef";
    let Some(r) = d.registries.get(&node.registry) else {
        let defined = if d.registries.is_empty() {
            "no RegistryEndpoint is among the files".to_owned()
        } else {
            format!(
                "RegistryEndpoints: {}",
                d.registries.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        let local = match &options.modules_dir {
            Some(dir) => format!("{} has no {}.yaml", dir.display(), node.artifact.file_stem()),
            None => format!("or --modules DIR holding {}.yaml", node.artifact.file_stem()),
        };
        return Err(field(
            at,
            Some(&node.name),
            path,
            format!(
                "`{}` is not defined ({defined}); give its RegistryEndpoint file, --registry HOST, {local}",
                node.registry
            ),
        ));
    };
    if is_placeholder(&r.host) {
        return Err(field(
            at,
            Some(&node.name),
            path,
            format!(
                "RegistryEndpoint `{}` ({}) has the documentation's placeholder host `{}`: put your registry's host there, or give --registry HOST",
                r.origin.name, r.origin.file, r.host
            ),
        ));
    }
    Ok(ArtifactLocation::Registry {
        reference: format!("{}/{}", r.host, node.artifact.written),
        registry: r.host.clone(),
        plain_http: r.plain_http,
        via: format!("RegistryEndpoint `{}`", r.origin.name),
    })
}

/// What `endpointRef: name` names, or why it names nothing (for endpoints a run uses beyond its
/// graphs' nodes, such as the dead-letter topic's).
pub fn connection(d: &Deployment, name: &str, options: &ResolveOptions) -> Result<Connection, String> {
    let Some(e) = d.endpoints.get(name) else {
        if name == DEFAULT_ENDPOINT {
            return Ok(Connection::DefaultBroker);
        }
        let defined: Vec<&str> = d.endpoints.keys().map(String::as_str).collect();
        return Err(format!(
            "`{name}` is not defined ({}); `{DEFAULT_ENDPOINT}` is the local broker",
            if defined.is_empty() {
                "no DataflowEndpoint is among the files".to_owned()
            } else {
                format!("DataflowEndpoints: {}", defined.join(", "))
            }
        ));
    };
    let secrets = Secrets {
        at: &e.origin,
        map: &options.secrets,
    };
    let client_id = |prefix: &Option<String>| {
        let id: String = format!("{}-{name}", prefix.as_deref().unwrap_or("wasmflow"))
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        id
    };
    Ok(match &e.kind {
        EndpointKind::Mqtt(m) => {
            let tls = m
                .tls
                .as_ref()
                .map(|t| secrets.tls(t, "spec.mqttSettings"))
                .transpose()?;
            Connection::Mqtt(MqttConnection {
                url: format!("{}://{}", if tls.is_some() { "mqtts" } else { "mqtt" }, m.host),
                client_id: client_id(&m.client_id_prefix),
                tls,
                qos: m.qos,
                session_expiry_secs: m.session_expiry_secs,
                keep_alive: m.keep_alive_secs.map(Duration::from_secs),
                max_inflight: m.max_inflight,
            })
        }
        EndpointKind::Kafka(k) => {
            let mut properties = k.properties.clone();
            let file = |p: &Path| format!("file:{}", p.display());
            let protocol = match (&k.tls, &k.sasl) {
                (None, None) => "PLAINTEXT",
                (Some(_), None) => "SSL",
                (None, Some(_)) => "SASL_PLAINTEXT",
                (Some(_), Some(_)) => "SASL_SSL",
            };
            properties.push(("security.protocol".into(), protocol.into()));
            if let Some(t) = &k.tls {
                let files = secrets.tls(t, "spec.kafkaSettings")?;
                for (key, path) in [
                    ("ssl.ca.location", &files.ca),
                    ("ssl.certificate.location", &files.cert),
                    ("ssl.key.location", &files.key),
                ] {
                    if let Some(p) = path {
                        properties.push((key.into(), p.display().to_string()));
                    }
                }
            }
            if let Some(s) = &k.sasl {
                let dir = secrets.dir(&s.secret, "spec.kafkaSettings.authentication.saslSettings.secretRef")?;
                properties.push(("sasl.mechanism".into(), s.mechanism.into()));
                properties.push(("sasl.username".into(), file(&dir.join("username"))));
                properties.push(("sasl.password".into(), file(&dir.join("password"))));
            }
            Connection::Kafka(KafkaConnection {
                bootstrap: k.bootstrap.clone(),
                group: k.group.clone().unwrap_or_else(|| client_id(&None)),
                properties,
            })
        }
        EndpointKind::OpenTelemetry(o) => Connection::OpenTelemetry(OtelConnection {
            name: name.to_owned(),
            url: o.url.clone(),
            protocol: o.protocol,
            tls: o
                .tls
                .as_ref()
                .map(|t| secrets.tls(t, "spec.openTelemetrySettings"))
                .transpose()?,
            token_expected: o.token_expected,
            latency: o.latency,
            max_messages: o.max_messages,
        }),
    })
}

/// Kubernetes secrets and ConfigMaps by name → the files `--secret` gave for them.
struct Secrets<'a> {
    at: &'a Origin,
    map: &'a BTreeMap<String, PathBuf>,
}

impl Secrets<'_> {
    fn path(&self, name: &str, field: &str) -> Result<&PathBuf, String> {
        self.map.get(name).ok_or_else(|| {
            format!(
                "{}: field `{field}` names `{name}`: give its files with --secret {name}=PATH (a directory holding its keys as files, as Kubernetes mounts it)",
                self.at
            )
        })
    }

    fn dir(&self, name: &str, field: &str) -> Result<PathBuf, String> {
        let p = self.path(name, field)?;
        if !p.is_dir() {
            return Err(format!(
                "{}: field `{field}`: --secret {name}={} is not a directory of key files",
                self.at,
                p.display()
            ));
        }
        Ok(p.clone())
    }

    /// The CA of a ConfigMap (its one `.crt`/`.pem` file, or the file given) and the client
    /// certificate of a `kubernetes.io/tls` secret (`tls.crt`, `tls.key`).
    fn tls(&self, t: &Tls, settings: &str) -> Result<TlsFiles, String> {
        let mut files = TlsFiles::default();
        if let Some(cm) = &t.ca_config_map {
            let field = format!("{settings}.tls.trustedCaCertificateConfigMapRef");
            let p = self.path(cm, &field)?;
            files.ca = Some(if p.is_dir() {
                let pems: Vec<PathBuf> = std::fs::read_dir(p)
                    .map_err(|e| format!("{}: field `{field}`: reading {}: {e}", self.at, p.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| matches!(f.extension().and_then(|x| x.to_str()), Some("crt" | "pem")))
                    .collect();
                match pems.as_slice() {
                    [one] => one.clone(),
                    _ => {
                        return Err(format!(
                            "{}: field `{field}`: {} holds {} .crt/.pem files; give the CA file itself with --secret {cm}=FILE",
                            self.at,
                            p.display(),
                            pems.len()
                        ))
                    }
                }
            } else {
                p.clone()
            });
        }
        if let Some(s) = &t.client_secret {
            let dir = self.dir(
                s,
                &format!("{settings}.authentication.x509CertificateSettings.secretRef"),
            )?;
            files.cert = Some(dir.join("tls.crt"));
            files.key = Some(dir.join("tls.key"));
        }
        Ok(files)
    }
}
