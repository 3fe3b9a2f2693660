//! The platform's deployment resources, read as the seed documents print them: `DataflowGraph`
//! (Source node → Graph node pulling an artifact → Destination node), `DataflowEndpoint` (MQTT,
//! Kafka, OpenTelemetry) and `RegistryEndpoint`, in Kubernetes YAML, several documents in a file
//! and several files in a run.
//!
//! Why a crate: `wasmflow run dataflow-graph.yaml` must take the platform's files as written,
//! and say exactly what is wrong with one (file, resource, node, field) without starting
//! anything. Three stages, each its own module, each using only those before it:
//! [`syntax`] (serde types of the documents as written), [`model`] (validated types, built by
//! `validate`, in which what wasmflow cannot run cannot be written), and [`resolve`](mod@resolve) (model +
//! the run's flags → which endpoint every node uses, where every artifact comes from, which
//! files stand for the secrets the endpoints name). Pulling, composing and connecting are the
//! callers' (`wasmflow-delivery`, the CLI).
//!
//! [`parse`] is total: it never panics, whatever the text (the fuzz target).

#![warn(missing_docs)]

pub mod error;
pub mod model;
pub mod resolve;
pub mod syntax;
mod validate;

use std::path::{Path, PathBuf};

pub use error::{Origin, ResourceError, Unsupported};
pub use model::Deployment;
pub use resolve::{resolve, ResolveOptions};
pub use validate::OTLP_PROTOCOL_ANNOTATION;

use validate::Parsed;

/// The kinds a run takes.
pub const SUPPORTED_KINDS: &[&str] = &["DataflowGraph", "DataflowEndpoint", "RegistryEndpoint"];

/// The API versions of those kinds: the seed's `v1beta1` and the platform's `v1`.
pub const SUPPORTED_API_VERSIONS: &[&str] = &[
    "connectivity.iotoperations.azure.com/v1beta1",
    "connectivity.iotoperations.azure.com/v1",
];

/// Resource files are a few kilobytes; anything past this is not one.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Parses and validates one text as a file of resources (the fuzz target: never panics).
pub fn parse(text: &str) -> Result<Deployment, ResourceError> {
    validate::deployment(documents("<input>", text)?)
}

/// Reads, parses and validates resource files together: references between them
/// (`endpointRef`, `registryEndpointRef`) are checked by [`resolve()`].
pub fn load(files: &[PathBuf]) -> Result<Deployment, ResourceError> {
    let mut docs = Vec::new();
    for f in files {
        let label = f.display().to_string();
        let text = read(f, &label)?;
        docs.extend(documents(&label, &text)?);
    }
    let d = validate::deployment(docs)?;
    if d.graphs.is_empty() {
        return Err(ResourceError::NoGraph {
            files: files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(d)
}

/// Whether `path` holds resources (a YAML document with `apiVersion` and `kind`, or a Bicep
/// file, which [`load`] refuses saying so) rather than a graph definition. Unreadable or
/// unparsable files are not resources: the graph loader reports them as it always has.
pub fn is_resource_file(path: &Path) -> bool {
    if path.extension().and_then(|e| e.to_str()) == Some("bicep") {
        return true;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    if text.len() > MAX_FILE_BYTES {
        return false;
    }
    let first = serde_yaml_ng::Deserializer::from_str(&text)
        .map(<serde_yaml_ng::Value as serde::Deserialize>::deserialize)
        .find(|v| !matches!(v, Ok(serde_yaml_ng::Value::Null)));
    match first {
        Some(Ok(v)) => v.get("apiVersion").is_some() && v.get("kind").is_some(),
        Some(Err(_)) => looks_like_bicep(&text),
        None => false,
    }
}

fn read(path: &Path, label: &str) -> Result<String, ResourceError> {
    let bytes = std::fs::read(path).map_err(|e| ResourceError::Read {
        file: label.to_owned(),
        reason: e.to_string(),
    })?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ResourceError::TooLarge {
            file: label.to_owned(),
            size: bytes.len(),
            limit: MAX_FILE_BYTES,
        });
    }
    if path.extension().and_then(|e| e.to_str()) == Some("bicep") {
        return Err(ResourceError::Bicep { file: label.to_owned() });
    }
    String::from_utf8(bytes).map_err(|e| ResourceError::Read {
        file: label.to_owned(),
        reason: format!("not UTF-8 text ({e})"),
    })
}

/// Bicep's declarations begin a line with a keyword YAML has no use for in that place.
fn looks_like_bicep(text: &str) -> bool {
    text.lines().map(str::trim_start).any(|l| {
        ["param ", "resource ", "targetScope ", "var ", "module "]
            .iter()
            .any(|k| l.starts_with(k))
    })
}

/// The documents of one file, each with its origin; empty documents (a trailing `---`) skipped.
fn documents(file: &str, text: &str) -> Result<Vec<Parsed>, ResourceError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(ResourceError::TooLarge {
            file: file.to_owned(),
            size: text.len(),
            limit: MAX_FILE_BYTES,
        });
    }
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let document = i + 1;
        let value = match <serde_yaml_ng::Value as serde::Deserialize>::deserialize(doc) {
            Ok(v) => v,
            Err(_) if looks_like_bicep(text) => {
                return Err(ResourceError::Bicep { file: file.to_owned() });
            }
            Err(e) => {
                return Err(ResourceError::Syntax {
                    file: file.to_owned(),
                    document,
                    reason: e.to_string(),
                })
            }
        };
        if value.is_null() {
            continue;
        }
        let d: syntax::Document = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            ResourceError::Syntax {
                file: file.to_owned(),
                document,
                reason: if path == "." {
                    format!("not a Kubernetes resource: {}", e.into_inner())
                } else {
                    format!("field `{path}`: {}", e.into_inner())
                },
            }
        })?;
        out.push(Parsed {
            origin: Origin {
                file: file.to_owned(),
                document,
                kind: d.kind.clone(),
                name: d.metadata.name.clone(),
            },
            document: d,
        });
    }
    Ok(out)
}
