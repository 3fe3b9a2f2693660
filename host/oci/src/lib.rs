//! OCI registries: push and pull modules, composed graphs and graph definitions, and run
//! straight from a registry.
//!
//! Why: Azure IoT Operations deploys graphs from a registry — a graph definition artifact whose
//! operations name modules relative to the same registry. wasmflow speaks the same formats so
//! one registry serves both:
//! - components (modules, composed graphs): the CNCF wasm artifact, as `oci-wasm` writes it
//!   (config `application/vnd.wasm.config.v0+json`, see [`wasm_config`]; one `application/wasm`
//!   layer); the platform's CI layer type `application/vnd.wasm.content.layer.v1+wasm` is
//!   accepted on pull;
//! - graph definitions: config `application/vnd.microsoft.aio.graph.v1+yaml`, one
//!   `application/yaml` layer, as `oras push` makes them in the platform's documentation.
//!
//! Pulls land in a content-addressed [`cache`] under the data directory; every blob's digest is
//! checked before it is stored, so the cache never holds bytes other than those its digest
//! names. Digest references are served from the cache without asking the registry; tags are
//! resolved again on every pull (a run falls back to the tag's last digest when the registry
//! cannot be reached).

#![warn(missing_docs)]

pub mod auth;
pub mod cache;
mod error;
pub mod manifest;
pub mod progress;
pub mod reference;
pub mod target;
pub mod wasm_config;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest, OCI_IMAGE_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use sha2::{Digest, Sha256};

pub use auth::Credentials;
pub use cache::Cache;
pub use error::OciError;
pub use manifest::{
    ArtifactKind, GRAPH_CONFIG_MEDIA_TYPE, GRAPH_LAYER_MEDIA_TYPE, WASM_CONFIG_MEDIA_TYPE,
    WASM_CONTENT_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE,
};
pub use progress::{NoProgress, Progress, Transfer};
pub use wasm_config::WasmConfig;

/// Transfers at least this large show a progress bar.
pub const PROGRESS_THRESHOLD: u64 = 4 << 20;
/// Manifest types asked for; registry 2.8 answers 404 without an OCI `Accept` header.
const ACCEPT: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// How to reach registries: which to use for relative references, plain HTTP, credentials,
/// and how long to wait.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Registry (`host[:port]`) for references that name none.
    pub registry: Option<String>,
    /// Plain HTTP for every registry (loopback registries get it without asking).
    pub insecure: bool,
    /// Explicit credentials.
    pub credentials: Credentials,
    /// How long to wait for a registry.
    pub timeouts: Timeouts,
}

/// Bounds on waiting for a registry, so one that accepts a connection and never answers
/// fails a pull instead of hanging it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open a connection.
    pub connect: std::time::Duration,
    /// Between two reads of a response (a transfer that keeps moving is never cut).
    pub read: std::time::Duration,
}

impl Timeouts {
    /// The default connect timeout, in seconds (also `--registry-connect-timeout-secs`'s).
    pub const CONNECT_SECS: u64 = 10;
    /// The default read timeout, in seconds (also `--registry-read-timeout-secs`'s).
    pub const READ_SECS: u64 = 30;
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: std::time::Duration::from_secs(Self::CONNECT_SECS),
            read: std::time::Duration::from_secs(Self::READ_SECS),
        }
    }
}

/// A pushed artifact.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The reference pushed to, as written back to the user.
    pub reference: String,
    /// The manifest digest: `…@<digest>` pins exactly this artifact.
    pub digest: String,
    /// What was pushed.
    pub kind: ArtifactKind,
    /// Layer size in bytes.
    pub size: u64,
}

/// A pulled (or cache-served) artifact.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference asked for.
    pub reference: String,
    /// Manifest digest it resolved to.
    pub digest: String,
    /// What it holds.
    pub kind: ArtifactKind,
    /// The layer's content in the cache (a file with the extension the loaders expect).
    pub path: PathBuf,
    /// Whether the registry was asked (false: served from the cache).
    pub fetched: bool,
}

/// What a pull may do when the registry cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagPolicy {
    /// Resolve the tag again and fail when the registry is down (`wasmflow pull`).
    Resolve,
    /// Resolve the tag again, but use its last cached digest when the registry is unreachable
    /// (`wasmflow run`: a graph keeps starting offline).
    CachedWhenUnreachable,
}

/// A registry client with its cache. Synchronous: it drives its transfers on the process's
/// tokio runtime (`rt`), blocking the calling thread, which must not be one of its workers.
pub struct Oci {
    options: RegistryOptions,
    cache: Cache,
    rt: tokio::runtime::Handle,
    progress: std::sync::Arc<dyn Progress>,
    clients: HashMap<String, Client>,
}

impl Oci {
    /// A client caching under `data_dir`, running its transfers on `rt`, reporting none.
    pub fn new(data_dir: &Path, mut options: RegistryOptions, rt: tokio::runtime::Handle) -> Result<Self, OciError> {
        // Checked only when it is the one [`auth::for_registry`] will use.
        if options.credentials.username.is_none() {
            if let Some(token) = options.credentials.token.as_mut() {
                *token = auth::bearer_token(token).map_err(OciError::BadToken)?;
            }
        }
        Ok(Oci {
            options,
            cache: Cache::new(data_dir),
            rt,
            progress: std::sync::Arc::new(NoProgress),
            clients: HashMap::new(),
        })
    }

    /// Reports transfers of [`PROGRESS_THRESHOLD`] bytes or more to `progress` (the CLI draws
    /// them as bars).
    pub fn with_progress(mut self, progress: std::sync::Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// The registry options in force.
    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Parses `reference` against the `--registry` default.
    pub fn parse(&self, reference: &str) -> Result<Reference, OciError> {
        reference::parse(reference, self.options.registry.as_deref())
    }

    fn scheme(&self, registry: &str) -> &'static str {
        if self.options.insecure || reference::is_loopback(registry) {
            "http"
        } else {
            "https"
        }
    }

    fn client(&mut self, registry: &str) -> Client {
        let protocol = if self.scheme(registry) == "http" {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        self.clients
            .entry(registry.to_string())
            .or_insert_with(|| {
                // reqwest is built without a crypto provider of its own (Cargo.toml): rustls needs
                // one process-wide (ring, as the MQTT client installs it); a second install is harmless.
                let _ = rustls::crypto::ring::default_provider().install_default();
                Client::new(ClientConfig {
                    protocol,
                    connect_timeout: Some(self.options.timeouts.connect),
                    read_timeout: Some(self.options.timeouts.read),
                    ..Default::default()
                })
            })
            .clone()
    }

    /// Turns a client error into one that says what to do.
    fn classify(&self, e: OciDistributionError, r: &Reference, tried: &'static str) -> OciError {
        let registry = r.resolve_registry().to_string();
        let reference = reference::display(r);
        let unauthorized = |detail: String| OciError::Unauthorized {
            registry: registry.clone(),
            reference: reference.clone(),
            detail,
            tried,
            hint: auth::hint(tried),
        };
        match e {
            OciDistributionError::RequestError(ref re) if re.is_connect() || re.is_timeout() => {
                let scheme = self.scheme(&registry);
                OciError::Unreachable {
                    registry: registry.clone(),
                    reference,
                    scheme,
                    detail: error_chain(re),
                    hint: if scheme == "https" {
                        " (is it a plain-HTTP registry? pass --insecure)"
                    } else {
                        ""
                    },
                }
            }
            OciDistributionError::RequestError(ref re)
                if matches!(re.status().map(|s| s.as_u16()), Some(401 | 403)) =>
            {
                unauthorized(error_chain(re))
            }
            OciDistributionError::RequestError(ref re) if re.status().map(|s| s.as_u16()) == Some(404) => {
                OciError::NotFound { reference }
            }
            OciDistributionError::UnauthorizedError { url } => unauthorized(format!("HTTP 401 from {url}")),
            OciDistributionError::AuthenticationFailure(m) => unauthorized(format!(
                "authentication failed: its token service refused {}{}",
                if tried == auth::ANONYMOUS {
                    "anonymous access"
                } else {
                    "the credentials"
                },
                token_service_reason(&m)
            )),
            OciDistributionError::ServerError {
                code: 401 | 403, url, ..
            } => unauthorized(format!("HTTP 401/403 from {url}")),
            OciDistributionError::ServerError { code: 404, .. }
            | OciDistributionError::ImageManifestNotFoundError(_) => OciError::NotFound { reference },
            OciDistributionError::RegistryError { ref envelope, ref url } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|x| &x.code).collect();
                if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    unauthorized(format!("{envelope} from {url}"))
                } else if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                            | OciErrorCode::BlobUnknown
                    )
                }) {
                    OciError::NotFound { reference }
                } else {
                    OciError::Registry {
                        registry,
                        reference,
                        detail: e.to_string(),
                    }
                }
            }
            OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
                expected,
                actual,
            }) => OciError::DigestMismatch {
                reference,
                expected,
                actual,
            },
            other => OciError::Registry {
                registry,
                reference,
                detail: error_chain(&other),
            },
        }
    }

    /// Pushes a component (`.wasm`: module or composed graph) or a graph definition (YAML) and
    /// returns the manifest digest.
    pub fn push(&mut self, file: &Path, reference: &str) -> Result<Pushed, OciError> {
        let bytes = std::fs::read(file).map_err(|error| OciError::Io {
            path: file.to_path_buf(),
            error,
        })?;
        let r = self.parse(reference)?;
        let shown = reference::display(&r);
        if r.digest().is_some() {
            return Err(OciError::InvalidReference {
                reference: shown,
                reason: "push to a tag (`:tag`); the digest is what the push prints".into(),
            });
        }
        let (kind, layer, config) = artifact(file, bytes)?;
        let size = layer.data.len() as u64;
        let mut manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, None);
        manifest.media_type = Some(OCI_IMAGE_MEDIA_TYPE.to_string());
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| OciError::BadFile {
            file: file.to_path_buf(),
            detail: format!("encoding the manifest: {e}"),
        })?;
        let digest = cache::sha256_digest(&manifest_bytes);

        let registry = r.resolve_registry().to_string();
        let client = self.client(&registry);
        let (auth, tried) = auth::for_registry(&self.options.credentials, &registry);
        let layer_digest = manifest.layers[0].digest.clone();
        let progress = self.progress.clone();
        let result: Result<(), OciDistributionError> = self.rt.block_on(async {
            client.store_auth_if_needed(&registry, &auth).await;
            authorize(&client, &r, &auth, RegistryOperation::Push).await?;
            push_blob(&*progress, &client, &r, layer.data.clone(), &layer_digest, &shown).await?;
            push_blob(
                &*progress,
                &client,
                &r,
                config.data.clone(),
                &manifest.config.digest,
                &shown,
            )
            .await?;
            client
                .push_manifest_raw(&r, manifest_bytes, http_header(OCI_IMAGE_MEDIA_TYPE))
                .await?;
            Ok(())
        });
        result.map_err(|e| self.classify(e, &r, tried))?;
        Ok(Pushed {
            reference: shown,
            digest,
            kind,
            size,
        })
    }

    /// Pulls `reference` into the cache (or finds it there) and returns the cached file.
    pub fn pull(&mut self, reference: &str, policy: TagPolicy) -> Result<Pulled, OciError> {
        let r = self.parse(reference)?;
        self.pull_parsed(&r, policy)
    }

    /// [`Oci::pull`] for a reference already parsed (module references of a pulled graph are
    /// parsed against that graph's registry).
    pub fn pull_parsed(&mut self, r: &Reference, policy: TagPolicy) -> Result<Pulled, OciError> {
        let r = r.clone();
        let shown = reference::display(&r);
        let registry = r.resolve_registry().to_string();
        let client = self.client(&registry);
        let (auth, tried) = auth::for_registry(&self.options.credentials, &registry);
        let mut fetched = false;
        // Whether this pull already holds the registry's token (see `authorize`).
        let mut authorized = false;

        // The manifest: by digest from the cache when there, else from the registry.
        let (manifest_digest, manifest_bytes) = match r.digest() {
            Some(d) if self.cache.blob(d)?.is_some() => {
                let path = self.cache.blob_path(d)?;
                let bytes = std::fs::read(&path).map_err(|error| OciError::Io { path, error })?;
                (d.to_string(), bytes)
            }
            _ => {
                let got = self.rt.block_on(async {
                    client.store_auth_if_needed(&registry, &auth).await;
                    authorize(&client, &r, &auth, RegistryOperation::Pull).await?;
                    client.pull_manifest_raw(&r, &auth, ACCEPT).await
                });
                match got {
                    Ok((bytes, _)) => {
                        fetched = true;
                        authorized = true;
                        let actual = cache::sha256_digest(&bytes);
                        let digest = r.digest().map_or_else(|| actual.clone(), str::to_string);
                        self.cache.put(&digest, &bytes, &shown)?;
                        if r.digest().is_none() {
                            self.cache.set_tag(&shown, &digest)?;
                        }
                        (digest, bytes.to_vec())
                    }
                    Err(e) => {
                        let e = self.classify(e, &r, tried);
                        let cached = match (&e, policy, r.digest()) {
                            (OciError::Unreachable { .. }, TagPolicy::CachedWhenUnreachable, None) => {
                                self.cache.tag(&shown)
                            }
                            _ => None,
                        };
                        let Some(digest) = cached.filter(|d| matches!(self.cache.blob(d), Ok(Some(_)))) else {
                            return Err(e);
                        };
                        tracing::warn!("{e}; using {shown}@{digest} from the cache");
                        let path = self.cache.blob_path(&digest)?;
                        let bytes = std::fs::read(&path).map_err(|error| OciError::Io { path, error })?;
                        (digest, bytes)
                    }
                }
            }
        };

        let (kind, layer) = manifest::classify(&manifest_bytes, &shown)?;
        if self.cache.blob(&layer.digest)?.is_none() {
            let result = self.rt.block_on(async {
                client.store_auth_if_needed(&registry, &auth).await;
                if !authorized {
                    authorize(&client, &r, &auth, RegistryOperation::Pull)
                        .await
                        .map_err(Downloaded::Oci)?;
                }
                download(&*self.progress, &client, &r, &layer, &self.cache, &shown).await
            });
            match result {
                Ok(()) => fetched = true,
                Err(Downloaded::Oci(e)) => return Err(self.classify(e, &r, tried)),
                Err(Downloaded::Local(e)) => return Err(e),
            }
        }
        let path = self.cache.file_with_extension(&layer.digest, kind.extension())?;
        Ok(Pulled {
            reference: shown,
            digest: manifest_digest,
            kind,
            path,
            fetched,
        })
    }
}

/// Gets the registry's token for `op` on `r` before the requests that need it, so that a token
/// service refusing the credentials is reported as such. Left to itself, `oci-client` fetches
/// the token lazily and drops that failure, sends the request without credentials, and all the
/// user sees is the registry's bare 401. The token is cached in `client` for the requests that
/// follow; a registry without a bearer challenge (anonymous, HTTP Basic) costs one `GET /v2/`.
async fn authorize(
    client: &Client,
    r: &Reference,
    auth: &RegistryAuth,
    op: RegistryOperation,
) -> Result<(), OciDistributionError> {
    client.auth(r, auth, op).await.map(|_| ())
}

/// `: <what the token service said>`, shortened; empty when it said nothing.
fn token_service_reason(body: &str) -> String {
    const MAX: usize = 300;
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    match body.char_indices().nth(MAX) {
        Some((cut, _)) => format!(": {}…", &body[..cut]),
        None => format!(": {body}"),
    }
}

/// The message of an error and its sources (reqwest hides the useful part in `source()`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = inner.source();
    }
    s
}

fn http_header(v: &'static str) -> http::HeaderValue {
    http::HeaderValue::from_static(v)
}

/// The layer and config for `file`: a component ([`wasm_config`]) or a graph definition.
fn artifact(file: &Path, bytes: Vec<u8>) -> Result<(ArtifactKind, ImageLayer, Config), OciError> {
    let bad = |detail: String| OciError::BadFile {
        file: file.to_path_buf(),
        detail,
    };
    if bytes.starts_with(b"\0asm") {
        let (wasm_config, layer) =
            WasmConfig::for_component(bytes).map_err(|e| bad(format!("not a wasm component: {e}")))?;
        let config = wasm_config.to_config().map_err(|e| bad(e.to_string()))?;
        return Ok((ArtifactKind::Component, layer, config));
    }
    // A graph definition: checked before it is published, so a registry holds only valid ones.
    let text =
        std::str::from_utf8(&bytes).map_err(|_| bad("neither a wasm component nor a YAML graph definition".into()))?;
    wasmflow_compose::parse_graph(file, text).map_err(|e| bad(format!("not a valid graph definition: {e}")))?;
    let mut annotations = std::collections::BTreeMap::new();
    if let Some(name) = file.file_name().and_then(|n| n.to_str()) {
        annotations.insert("org.opencontainers.image.title".to_string(), name.to_string());
    }
    let layer = ImageLayer::new(bytes, GRAPH_LAYER_MEDIA_TYPE.to_string(), Some(annotations));
    let config = Config::new(b"{}".to_vec(), GRAPH_CONFIG_MEDIA_TYPE.to_string(), None);
    Ok((ArtifactKind::GraphDefinition, layer, config))
}

/// A transfer worth reporting: [`PROGRESS_THRESHOLD`] bytes or more.
fn transfer(progress: &dyn Progress, len: u64, verb: &str, what: &str) -> Option<Box<dyn Transfer>> {
    if len < PROGRESS_THRESHOLD {
        return None;
    }
    tracing::info!("{verb} {what} ({:.1} MiB)", len as f64 / (1 << 20) as f64);
    Some(progress.start(verb, what, len))
}

/// Uploads one blob unless the registry has it; large ones in chunks, with progress.
async fn push_blob(
    progress: &dyn Progress,
    client: &Client,
    r: &Reference,
    data: bytes::Bytes,
    digest: &str,
    shown: &str,
) -> Result<(), OciDistributionError> {
    if client.blob_exists(r, digest).await? {
        tracing::debug!("{shown}: blob {digest} already in the registry");
        return Ok(());
    }
    match transfer(progress, data.len() as u64, "uploading", shown) {
        None => {
            client.push_blob(r, data, digest).await?;
        }
        Some(bar) => {
            const CHUNK: usize = 1 << 20;
            let chunks: Vec<bytes::Bytes> = (0..data.len())
                .step_by(CHUNK)
                .map(|i| data.slice(i..(i + CHUNK).min(data.len())))
                .collect();
            let bar: std::sync::Arc<dyn Transfer> = bar.into();
            let b = bar.clone();
            let stream = futures_util::stream::iter(chunks).map(move |c| {
                b.advance(c.len() as u64);
                Ok(c)
            });
            client.push_blob_stream(r, stream, digest).await?;
            bar.finish();
        }
    }
    Ok(())
}

enum Downloaded {
    Oci(OciDistributionError),
    Local(OciError),
}

/// Streams a layer into a temporary file, checks its digest, then moves it into the cache.
async fn download(
    progress: &dyn Progress,
    client: &Client,
    r: &Reference,
    layer: &OciDescriptor,
    cache: &Cache,
    shown: &str,
) -> Result<(), Downloaded> {
    let target = cache.blob_path(&layer.digest).map_err(Downloaded::Local)?;
    let mut tmp = cache.temp_file().map_err(Downloaded::Local)?;
    let mut stream = client.pull_blob_stream(r, layer).await.map_err(Downloaded::Oci)?;
    let bar = transfer(
        progress,
        stream.content_length.unwrap_or(layer.size.max(0) as u64),
        "downloading",
        shown,
    );
    let mut hasher = Sha256::new();
    let mut stream_error = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                hasher.update(&c);
                tmp.write_all(&c).map_err(|error| {
                    Downloaded::Local(OciError::Io {
                        path: tmp.path().to_path_buf(),
                        error,
                    })
                })?;
                if let Some(b) = &bar {
                    b.advance(c.len() as u64);
                }
            }
            Err(e) => {
                stream_error = Some(e);
                break;
            }
        }
    }
    if let Some(b) = bar {
        b.finish();
    }
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if actual != layer.digest {
        // Checked whatever the stream said: a tampered blob is refused, and `tmp` is deleted.
        return Err(Downloaded::Local(OciError::DigestMismatch {
            reference: format!("{shown} (layer {})", layer.digest),
            expected: layer.digest.clone(),
            actual,
        }));
    }
    if let Some(e) = stream_error {
        return Err(Downloaded::Oci(OciDistributionError::IoError(e)));
    }
    cache.commit(tmp, &target).map_err(Downloaded::Local)?;
    Ok(())
}
