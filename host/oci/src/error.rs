//! What can go wrong talking to a registry or the cache.

use std::path::PathBuf;

/// What went wrong talking to a registry or the cache; each message names the reference.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The text cannot name an artifact: no registry host and no `--registry`, a digest that is
    /// not `sha256:<64 hex>`, or a push to a digest rather than a tag. Nothing was sent.
    #[error("`{reference}` is not a registry reference: {reason}")]
    InvalidReference {
        /// As the user wrote it (trimmed); for a push, with the registry filled in.
        reference: String,
        /// Why, and where there is a fix, what to write instead.
        reason: String,
    },
    /// The connection failed or timed out. With [`crate::TagPolicy::CachedWhenUnreachable`] a tag
    /// pulled before is served from the cache instead; this is returned only when there is no
    /// cached digest to fall back to.
    #[error("cannot reach registry {registry} for {reference} over {scheme}: {detail}{hint}")]
    Unreachable {
        /// `host[:port]`.
        registry: String,
        /// `registry/repository:tag` or `…@digest`, as `reference::display` writes it.
        reference: String,
        /// `http` or `https`: plain HTTP only with `--insecure` or for loopback registries.
        scheme: &'static str,
        /// The client error with its sources.
        detail: String,
        /// A suggestion to try `--insecure` after an HTTPS failure; empty otherwise.
        hint: &'static str,
    },
    /// HTTP 401/403, a registry `UNAUTHORIZED`/`DENIED` code, or a token service that refused
    /// the credentials.
    #[error("registry {registry} refused {reference}: not authorized ({detail}); credentials tried: {tried} — {hint}")]
    Unauthorized {
        /// `host[:port]`.
        registry: String,
        /// `registry/repository:tag` or `…@digest`, as `reference::display` writes it.
        reference: String,
        /// What the registry or its token service answered.
        detail: String,
        /// Where the credentials came from (`auth::for_registry`; `auth::ANONYMOUS` when there
        /// were none), never the credentials themselves.
        tried: &'static str,
        /// What to do next, from `auth::hint`.
        hint: &'static str,
    },
    /// The registry answered that it has no such repository, tag or digest. Unlike
    /// [`OciError::Unreachable`], never replaced by a cached digest.
    #[error("{reference} is not in the registry (no such repository, tag or digest)")]
    NotFound {
        /// `registry/repository:tag` or `…@digest`, as `reference::display` writes it.
        reference: String,
    },
    /// Content did not hash to the digest it was asked for; nothing was cached.
    #[error("digest mismatch for {reference}: expected {expected}, the registry sent content hashing to {actual}; refused and not cached")]
    DigestMismatch {
        /// The reference; for a layer, followed by ` (layer <digest>)`.
        reference: String,
        /// The digest the reference or manifest names.
        expected: String,
        /// `sha256:<hex>` of what arrived.
        actual: String,
    },
    /// The manifest is not an OCI image manifest, or its config and layers are not those of a
    /// wasm component or a graph definition (exactly one matching layer).
    #[error("{reference} is not a wasm component or graph definition artifact: {detail}")]
    UnsupportedArtifact {
        /// `registry/repository:tag` or `…@digest`, as `reference::display` writes it.
        reference: String,
        /// What the manifest holds instead.
        detail: String,
    },
    /// A digest the cache cannot hold (it keeps `sha256:` blobs only); the digest as given.
    #[error("unsupported digest `{0}` (only sha256:<64 hex> is accepted)")]
    UnsupportedDigest(String),
    /// A file to push is neither a wasm component nor a valid graph definition.
    #[error("{file}: {detail}")]
    BadFile {
        /// The file as given to [`crate::Oci::push`].
        file: PathBuf,
        /// Why it was refused (a graph definition's validation error included).
        detail: String,
    },
    /// Reading a file to push, or reading or writing the cache.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or cache directory.
        path: PathBuf,
        /// The underlying error (part of the message, not a `source`: printed once).
        error: std::io::Error,
    },
    /// Any other failure of a registry request.
    #[error("registry {registry} failed on {reference}: {detail}")]
    Registry {
        /// `host[:port]`.
        registry: String,
        /// `registry/repository:tag` or `…@digest`, as `reference::display` writes it.
        reference: String,
        /// The client error with its sources.
        detail: String,
    },
    /// `WASMFLOW_REGISTRY_TOKEN` cannot go in an HTTP header (empty, or a control character);
    /// the reason, which never repeats the token. Checked by [`crate::Oci::new`] (when no username
    /// is given, so the token is what would be sent), before any request.
    #[error("WASMFLOW_REGISTRY_TOKEN cannot be used as a bearer token: {0}")]
    BadToken(String),
    /// A pull that may not ask the registry found nothing cached. No code in this crate
    /// returns it at present.
    #[error("{reference} is not cached and the registry was not asked (offline)")]
    NotCached {
        /// `registry/repository:tag` or `…@digest`, as `reference::display` writes it.
        reference: String,
    },
}
