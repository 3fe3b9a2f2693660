//! Telling registry references from file paths, and making module references absolute.
//!
//! The rule (documented in the README): a path that exists on this machine always wins.
//! Otherwise a target is a registry reference when it pins a digest (`…@sha256:<64 hex>`), or
//! when its first `/`-separated segment names a registry host — it contains a `.` or a `:`
//! (a port), or is `localhost` — as Docker decides it (`127.0.0.1:5000/org/graph:1.0.0`,
//! `myacr.azurecr.io/graphs/temperature:1.0.0`). A relative reference (`org/repo/temperature:1.0.0`)
//! is taken against a registry given with `--registry`, or, for the modules of a graph
//! definition pulled from a registry, against that graph's registry, as Azure IoT Operations does.
//! There is no implicit default registry (no Docker Hub).

use oci_client::Reference;

use crate::cache;
use crate::error::OciError;

/// Whether the first path segment of `s` names a registry host (Docker's rule).
fn has_registry_host(s: &str) -> bool {
    match s.split_once('/') {
        Some((first, rest)) => !rest.is_empty() && (first.contains('.') || first.contains(':') || first == "localhost"),
        None => false,
    }
}

/// Whether `target` (which does not exist as a local path) should be read as a registry
/// reference; `default_registry` is the `--registry` host, if any.
pub fn looks_like_reference(target: &str, default_registry: Option<&str>) -> bool {
    let t = target.trim();
    if t.is_empty() || t.ends_with(".yaml") || t.ends_with(".yml") || t.ends_with(".wasm") {
        return false;
    }
    t.contains("@sha256:") || has_registry_host(t) || (default_registry.is_some() && t.contains('/'))
}

/// Parses a registry reference, prefixing `default_registry` when `reference` has no host.
///
/// A reference without a host and without a default registry is refused rather than sent to
/// Docker Hub, which `oci-client` would otherwise assume.
pub fn parse(reference: &str, default_registry: Option<&str>) -> Result<Reference, OciError> {
    let r = reference.trim();
    if let Some((scheme, rest)) = r.split_once("://") {
        // A URL is not a reference; its user name or password (before an `@` in the part up to
        // the first `/`; a digest's `@` comes after it) is not repeated.
        let authority = rest.split('/').next().unwrap_or_default();
        let shown = match authority.rsplit_once('@') {
            Some((userinfo, _)) => format!("{scheme}://…{}", &rest[userinfo.len()..]),
            None => r.to_owned(),
        };
        return Err(OciError::InvalidReference {
            reference: shown,
            reason: "a reference has no scheme: write host[:port]/repository[:tag|@sha256:…] (--insecure for plain \
                     HTTP), and give credentials with --registry-username and WASMFLOW_REGISTRY_PASSWORD"
                .into(),
        });
    }
    let full = if has_registry_host(r) {
        r.to_string()
    } else {
        match default_registry {
            Some(host) => {
                let host = host.trim_end_matches('/');
                let full = format!("{host}/{}", r.trim_start_matches('/'));
                // Else the reference grammar would read the host as the first part of a Docker
                // Hub repository (`registry/org/repo` is `docker.io/registry/org/repo`).
                if !has_registry_host(&full) {
                    return Err(OciError::InvalidReference {
                        reference: r.to_string(),
                        reason: format!(
                            "the registry `{host}` is not a host name a reference can carry: it needs a `.` or a \
                             port (`{host}:5000`), or to be `localhost`"
                        ),
                    });
                }
                full
            }
            None => return Err(OciError::InvalidReference {
                reference: r.to_string(),
                reason:
                    "it names no registry host; write host[:port]/repository[:tag|@sha256:…] or pass --registry HOST"
                        .into(),
            }),
        }
    };
    let parsed: Reference = full
        .parse()
        .map_err(|e: oci_client::ParseError| OciError::InvalidReference {
            reference: r.to_string(),
            reason: e.to_string(),
        })?;
    if let Some(d) = parsed.digest() {
        if cache::sha256_hex(d).is_err() {
            return Err(OciError::InvalidReference {
                reference: r.to_string(),
                reason: format!("digest `{d}` is not sha256:<64 hex digits>"),
            });
        }
    }
    Ok(parsed)
}

/// Whether plain HTTP is used for `registry` without being asked: loopback hosts only.
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.split(':').next().unwrap_or(registry)
    };
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// `registry/repository:tag` or `registry/repository@digest`, the way a user writes it (the
/// tag index key, and what messages show).
pub fn display(r: &Reference) -> String {
    let mut s = format!("{}/{}", r.registry(), r.repository());
    if let Some(t) = r.tag() {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = r.digest() {
        s.push('@');
        s.push_str(d);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_are_told_from_paths() {
        assert!(looks_like_reference("127.0.0.1:5000/org/graph:1.0.0", None));
        assert!(looks_like_reference("localhost/org/graph", None));
        assert!(looks_like_reference("myacr.azurecr.io/graphs/t:1", None));
        assert!(looks_like_reference(&format!("org/graph@{D}"), None));
        assert!(!looks_like_reference("org/repo/temperature:1.0.0", None));
        assert!(looks_like_reference("org/repo/temperature:1.0.0", Some("reg.io")));
        assert!(!looks_like_reference("graphs/missing.yaml", Some("reg.io")));
        assert!(!looks_like_reference("graph.wasm", None));
    }

    #[test]
    fn relative_references_take_the_default_registry() {
        let r = parse("org/repo/temperature:1.0.0", Some("127.0.0.1:5000")).unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "org/repo/temperature");
        assert_eq!(r.tag(), Some("1.0.0"));
        assert_eq!(display(&r), "127.0.0.1:5000/org/repo/temperature:1.0.0");
        let r = parse("reg.io/a/b:2", Some("127.0.0.1:5000")).unwrap();
        assert_eq!(r.registry(), "reg.io", "an absolute reference keeps its own registry");
        let e = parse("org/repo/temperature:1.0.0", None).unwrap_err().to_string();
        assert!(e.contains("names no registry host"), "{e}");
        let e = parse("reg.io/a@sha256:abc", None).unwrap_err().to_string();
        assert!(e.contains("reg.io/a@sha256:abc"), "{e}");
    }

    #[test]
    fn a_url_is_refused_without_its_credentials() {
        for url in [
            "http://user:hunter2@reg.io/org/graph:1",
            "https://hunter2@localhost:5000/g:1",
        ] {
            let e = parse(url, None).unwrap_err().to_string();
            assert!(e.contains("://…@") && e.contains("has no scheme"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        for url in ["https://reg.io/org/graph:1", "http://reg.io/org/graph@sha256:0"] {
            let e = parse(url, None).unwrap_err().to_string();
            assert!(e.contains(&format!("`{url}`")), "a digest's `@` is no password: {e}");
        }
    }

    /// Found by the fuzz target `oci_reference` (tests/fuzz/corpus/oci_reference/
    /// default-registry-no-host): with `--registry 100`, `org/repo:1` went to Docker Hub as
    /// `docker.io/100/org/repo:1`, since a first segment without `.` or `:` is no host.
    #[test]
    fn a_default_registry_that_is_no_host_name_is_refused_not_sent_to_docker_hub() {
        for host in ["100", "registry", "my-registry/"] {
            let e = parse("org/repo:1", Some(host)).unwrap_err().to_string();
            assert!(e.contains("is not a host name") && e.contains(":5000"), "{host}: {e}");
        }
        for host in ["registry:5000", "registry.local", "localhost", "reg.io/namespace"] {
            let r = parse("org/repo:1", Some(host)).unwrap();
            assert_eq!(r.registry(), host.split('/').next().unwrap(), "{host}");
        }
    }

    #[test]
    fn only_loopback_is_plain_http_by_default() {
        for r in ["localhost:5000", "127.0.0.1:41234", "[::1]:5000", "localhost"] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["reg.io", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
