//! Registry references (`wasmflow_oci::reference`): what `pull`, `push` and `run REF` take on
//! the command line, and what a pulled graph definition names its modules with.
//!
//! The input is `DEFAULT\nREFERENCE` (or a reference alone): a parsed reference goes to the
//! registry it names, or to the default for one that names none (never to an implicit one),
//! shows as text that parses back to itself, and pins only `sha256:<64 hex>` digests; any
//! digest the cache accepts is a file inside the cache.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wasmflow_oci::{cache, reference, Cache};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (default, target) = match text.split_once('\n') {
        Some((d, t)) => (Some(d), t),
        None => (None, text),
    };
    let _ = reference::looks_like_reference(target, default);
    let _ = reference::is_loopback(target);
    match reference::parse(target, default) {
        Err(e) => {
            // The error names the reference; of a URL with a user name or password
            // (`scheme://user:pass@host/…`), only what follows them.
            let t = target.trim();
            let userinfo = t
                .split_once("://")
                .and_then(|(_, rest)| rest.split('/').next().unwrap_or_default().rsplit_once('@'));
            let named = match userinfo {
                Some((user, _)) => &t[t.find("://").map_or(0, |i| i + 3) + user.len()..],
                None => t,
            };
            assert!(e.to_string().contains(named), "the error names the reference: {e}");
        }
        Ok(r) => {
            let shown = reference::display(&r);
            let again = reference::parse(&shown, None).unwrap_or_else(|e| panic!("{target:?} shows as {shown:?}: {e}"));
            assert_eq!(reference::display(&again), shown);
            // The registry written first in the reference, or else the default's.
            // (`index.docker.io` is Docker Hub's old name; the grammar writes it `docker.io`.)
            let host = |s: &str| match s.trim().split('/').next().unwrap_or_default() {
                "index.docker.io" => "docker.io".to_owned(),
                h => h.to_owned(),
            };
            assert!(
                r.registry() == host(target) || default.is_some_and(|d| r.registry() == host(d)),
                "{target:?} (default {default:?}) goes to {}",
                r.registry()
            );
            if let Some(d) = r.digest() {
                assert!(cache::sha256_hex(d).is_ok(), "{d}");
            }
        }
    }
    let root = Path::new("/nonexistent/wasmflow-fuzz");
    if let Ok(p) = Cache::new(root).blob_path(target) {
        assert_eq!(
            p.parent(),
            Some(root.join("oci/blobs/sha256").as_path()),
            "{}",
            p.display()
        );
    }
});
