//! Test certificates made with the `openssl` CLI: a CA, and a server (`localhost`, 127.0.0.1)
//! and a client (`wasmflow`) certificate it signed. Used by the TLS tests of the MQTT, Redis
//! and OTLP peers (`redis.rs` includes it with `#[path]` for the state-store crate's suite).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Makes `ca.crt`/`ca.key`, `server.crt`/`server.key` and `client.crt`/`client.key` in
/// `dir/pki`; returns that folder.
pub fn make_pki(dir: &Path) -> PathBuf {
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki).expect("pki dir");
    let p = |f: &str| pki.join(f).display().to_string();
    std::fs::write(pki.join("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").expect("san.ext");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.crt"),
        "-days",
        "2",
        "-subj",
        "/CN=wasmflow test CA",
    ]);
    for (name, cn) in [("server", "localhost"), ("client", "wasmflow")] {
        let (key, csr, crt) = (
            p(&format!("{name}.key")),
            p(&format!("{name}.csr")),
            p(&format!("{name}.crt")),
        );
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &p("ca.crt"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("san.ext"),
            "-out",
            &crt,
        ]);
    }
    pki
}

/// Runs the `openssl` CLI with `args`, failing the test with its standard error if it fails;
/// also how `token_server.rs` makes its JWT signing key.
pub fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is missing: install the Debian package openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
