//! `wasmflow push`/`pull`/`run REF` against a real OCI registry: Debian's `docker-registry`
//! (distribution 2.8, the `registry:2` server), started by each test on a free loopback port
//! with its own config and storage. What wasmflow pushed is read back by an independent client
//! (`curl`, plain HTTP) and compared byte for byte; tampering is done in the registry's own
//! storage directory, so the registry itself serves the wrong bytes.
//! Bearer-token auth runs the registry with `auth: token` against a stand-in token service
//! written for these tests (`common/token_server.rs`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::token_server::{TokenServer, User};
use crate::support::{module, repo, text, OutputExt};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha2::{Digest, Sha256};

const MANIFEST_ACCEPT: &str = "Accept: application/vnd.oci.image.manifest.v1+json";
const USER: &str = "wasmflow";
const PASSWORD: &str = "s3cret-pw";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// How a test registry authenticates its clients.
enum Auth<'a> {
    /// Anyone may push and pull.
    Anonymous,
    /// HTTP Basic against an htpasswd file holding `USER`/`PASSWORD`.
    Htpasswd,
    /// Bearer tokens issued by this token service (`auth: token`).
    Token(&'a TokenServer),
}

/// A registry process of our own; killed (by its pid) when dropped.
pub(crate) struct Registry {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// `127.0.0.1:<port>`.
    pub(crate) host: String,
}

impl Registry {
    pub(crate) fn start() -> Self {
        Self::start_with(Auth::Anonymous)
    }

    fn start_with(auth: Auth) -> Self {
        Self::start_on("127.0.0.1", auth)
    }

    fn start_on(ip: &str, auth: Auth) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port();
        let host = format!("{ip}:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("storage").display()
        );
        match auth {
            Auth::Anonymous => {}
            Auth::Token(server) => config.push_str(&server.registry_auth_config()),
            Auth::Htpasswd => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", USER, PASSWORD])
                    .output()
                    .expect("htpasswd is missing: install the Debian package apache2-utils (scripts/setup.sh does)")
                    .succeeded("htpasswd");
                std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: wasmflow-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                ));
            }
        }
        let config_file = dir.path().join("config.yml");
        std::fs::write(&config_file, config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is missing: install the Debian package docker-registry (scripts/setup.sh does)");
        let registry = Registry {
            child: Some(child),
            dir,
            host,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(&registry.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {}",
                registry.host
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn reference(&self, path: &str) -> String {
        format!("{}/{path}", self.host)
    }

    /// The registry's own file for a blob (distribution's filesystem layout).
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// GET over plain HTTP with curl: the independent client.
    fn curl(&self, path: &str, headers: &[&str]) -> Vec<u8> {
        let mut cmd = Command::new("curl");
        cmd.args(["-sSf", "-L"]);
        for h in headers {
            cmd.args(["-H", h]);
        }
        let out = cmd
            .arg(format!("http://{}{path}", self.host))
            .output()
            .expect("curl is missing: install the Debian package curl (scripts/setup.sh does)")
            .succeeded(format_args!("curl {path}"));
        out.stdout
    }

    /// The manifest as the registry stores it, parsed, and its bytes' digest.
    fn manifest(&self, repo: &str, tag: &str) -> (serde_json::Value, String) {
        let bytes = self.curl(&format!("/v2/{repo}/manifests/{tag}"), &[MANIFEST_ACCEPT]);
        (serde_json::from_slice(&bytes).unwrap(), sha256(&bytes))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A data directory and an empty Docker config directory of the test's own.
pub(crate) struct Client {
    data: tempfile::TempDir,
    docker: tempfile::TempDir,
}

impl Client {
    pub(crate) fn new() -> Self {
        Client {
            data: tempfile::tempdir().unwrap(),
            docker: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wasmflow"));
        c.args(args)
            .current_dir(repo())
            .env("WASMFLOW_DATA_DIR", self.data.path())
            .env("DOCKER_CONFIG", self.docker.path())
            .env("RUST_LOG", "info")
            .env_remove("WASMFLOW_MODULES")
            .env_remove("WASMFLOW_REGISTRY")
            .env_remove("WASMFLOW_REGISTRY_USERNAME")
            .env_remove("WASMFLOW_REGISTRY_PASSWORD")
            .env_remove("WASMFLOW_REGISTRY_TOKEN");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run wasmflow")
    }

    /// Runs and expects success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).succeeded(format_args!("wasmflow {args:?}"));
        text(&out.stdout)
    }

    /// Runs and expects failure; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "wasmflow {args:?} should fail; stdout: {}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    fn cached_blob(&self, digest: &str) -> PathBuf {
        self.data
            .path()
            .join("oci/blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    }
}

fn digest_line(stdout: &str) -> String {
    let d = stdout.trim().to_string();
    assert!(d.starts_with("sha256:") && d.len() == 71, "not a digest: {stdout:?}");
    d
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `push FILE REFERENCE` as USER with `password` given on the command line.
fn push_as_user<'a>(file: &'a Path, reference: &'a str, password: &'a str) -> [&'a str; 7] {
    [
        "push",
        path_str(file),
        reference,
        "--registry-username",
        USER,
        "--registry-password",
        password,
    ]
}

#[test]
fn a_pushed_module_is_a_standard_wasm_artifact_and_pulls_back_byte_identical() {
    let registry = Registry::start();
    let client = Client::new();
    let file = module("temperature");
    let original = std::fs::read(&file).unwrap();
    let reference = registry.reference("org/repo/temperature:1.0.0");

    let digest = digest_line(&client.ok(&["push", path_str(&file), &reference]));

    // An independent client reads what the registry holds.
    let (manifest, manifest_digest) = registry.manifest("org/repo/temperature", "1.0.0");
    assert_eq!(manifest_digest, digest, "the printed digest is the manifest's");
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.wasm.config.v0+json");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    let layer_digest = layers[0]["digest"].as_str().unwrap().to_string();
    let blob = registry.curl(&format!("/v2/org/repo/temperature/blobs/{layer_digest}"), &[]);
    assert!(blob == original, "the registry's blob is not the pushed file");
    let config: serde_json::Value = serde_json::from_slice(&registry.curl(
        &format!(
            "/v2/org/repo/temperature/blobs/{}",
            manifest["config"]["digest"].as_str().unwrap()
        ),
        &[],
    ))
    .unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");

    // wasmflow pulls it back into a fresh cache and to a file.
    let puller = Client::new();
    let out = puller.data.path().join("pulled.wasm");
    let pulled = puller.ok(&["pull", &reference, "-o", path_str(&out)]);
    assert_eq!(digest_line(&pulled), digest);
    assert!(std::fs::read(&out).unwrap() == original, "pulled bytes differ");
    assert!(std::fs::read(puller.cached_blob(&layer_digest)).unwrap() == original);
}

#[test]
fn a_graph_definition_is_pushed_as_the_platform_does_and_pulled_back() {
    let registry = Registry::start();
    let client = Client::new();
    let file = repo().join("graphs/temperature.yaml");
    let original = std::fs::read(&file).unwrap();
    let reference = registry.reference("graphs/temperature:1.0.0");
    let digest = digest_line(&client.ok(&["push", path_str(&file), &reference]));

    let (manifest, manifest_digest) = registry.manifest("graphs/temperature", "1.0.0");
    assert_eq!(manifest_digest, digest);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.microsoft.aio.graph.v1+yaml"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(layers[0]["mediaType"], "application/yaml");
    assert_eq!(
        layers[0]["annotations"]["org.opencontainers.image.title"],
        "temperature.yaml"
    );
    let blob = registry.curl(
        &format!("/v2/graphs/temperature/blobs/{}", layers[0]["digest"].as_str().unwrap()),
        &[],
    );
    assert_eq!(blob, original);

    let out = client.data.path().join("graph.yaml");
    assert_eq!(
        digest_line(&client.ok(&["pull", &reference, "-o", path_str(&out)])),
        digest
    );
    assert_eq!(std::fs::read(&out).unwrap(), original);

    // A graph from a registry may not reach into this machine's files.
    let local_ref = std::fs::read_to_string(repo().join("compose/tests/azure-compat/graph-simple.yaml"))
        .unwrap()
        .replace(
            "azure-samples/explore-iot-operations/temperature:1.0.0",
            path_str(&module("temperature")),
        );
    assert!(local_ref.contains("temperature.wasm"));
    let local_file = client.data.path().join("local-ref.yaml");
    std::fs::write(&local_file, local_ref).unwrap();
    let local_reference = registry.reference("graphs/local-ref:1");
    client.ok(&["push", path_str(&local_file), &local_reference]);
    let e = client.fails(&["run", &local_reference, "--input", "-"]);
    assert!(e.contains("may only reference modules in a registry"), "{e}");

    // A file that is neither a component nor a valid graph definition is not published.
    let bad = client.data.path().join("bad.yaml");
    std::fs::write(&bad, "operations: [}\n").unwrap();
    let e = client.fails(&["push", path_str(&bad), &registry.reference("graphs/bad:1")]);
    assert!(
        e.contains("bad.yaml") && e.contains("not a valid graph definition"),
        "{e}"
    );
}

/// temperature.yaml with module references no local modules directory answers, so a run that
/// succeeds must have fetched them from the registry.
fn registry_graph(registry: &Registry, client: &Client) -> String {
    let celsius = registry.reference("acme/ops/celsius:2.0.0");
    let windowing = registry.reference("acme/ops/windowing:1.0.0");
    let defaults = wasmflow_runtime::default_modules_dir();
    assert!(!defaults.join("celsius.wasm").exists() && !defaults.join("windowing.wasm").exists());
    client.ok(&["push", path_str(&module("temperature")), &celsius]);
    client.ok(&["push", path_str(&module("window")), &windowing]);
    let yaml = std::fs::read_to_string(repo().join("graphs/temperature.yaml"))
        .unwrap()
        .replace(
            "azure-samples/explore-iot-operations/temperature:1.0.0",
            "acme/ops/celsius:2.0.0",
        )
        .replace(
            "azure-samples/explore-iot-operations/window:1.0.0",
            "acme/ops/windowing:1.0.0",
        );
    assert!(yaml.contains("acme/ops/celsius:2.0.0") && yaml.contains("acme/ops/windowing:1.0.0"));
    let file = client.data.path().join("acme.yaml");
    std::fs::write(&file, yaml).unwrap();
    let reference = registry.reference("acme/graphs/temperature:1.0.0");
    client.ok(&["push", path_str(&file), &reference]);
    reference
}

fn assert_celsius_output(stdout: &str) {
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    // (1209 °F − 32) × 5/9
    assert_eq!(
        lines[0]["payload"]["temperature"]["value"],
        serde_json::json!(653.8888888888889)
    );
    assert_eq!(lines[0]["payload"]["temperature"]["unit"], "C");
}

#[test]
fn a_graph_runs_straight_from_the_registry_and_then_offline() {
    let mut registry = Registry::start();
    let client = Client::new();
    let reference = registry_graph(&registry, &client);
    let input = client.data.path().join("in.jsonl");
    std::fs::write(&input, "{\"temperature\":{\"value\":1209,\"unit\":\"F\"}}\n").unwrap();

    let runner = Client::new();
    assert_celsius_output(&runner.ok(&["run", &reference, "--input", path_str(&input)]));

    // compose takes the same reference.
    let composed = runner.data.path().join("composed.wasm");
    runner.ok(&["compose", &reference, "-o", path_str(&composed)]);
    assert_celsius_output(&runner.ok(&["run", path_str(&composed), "--input", path_str(&input)]));

    // A composed graph pushed and run by digest.
    let graph_digest = digest_line(&client.ok(&["push", path_str(&composed), &registry.reference("acme/composed:1")]));
    let by_digest = registry.reference(&format!("acme/composed@{graph_digest}"));
    assert_celsius_output(&runner.ok(&["run", &by_digest, "--input", path_str(&input)]));

    // Registry gone: the tag's cached digest and the digest reference still run.
    registry.stop();
    let out = runner
        .run(&["run", &reference, "--input", path_str(&input)])
        .succeeded("wasmflow run, registry gone");
    assert_celsius_output(&text(&out.stdout));
    assert!(text(&out.stderr).contains("from the cache"), "{}", text(&out.stderr));
    assert_celsius_output(&runner.ok(&["run", &by_digest, "--input", path_str(&input)]));
}

#[test]
fn relative_module_references_of_a_local_graph_use_the_registry_flag() {
    let registry = Registry::start();
    let client = Client::new();
    registry_graph(&registry, &client);
    let input = client.data.path().join("in.jsonl");
    std::fs::write(&input, "{\"temperature\":{\"value\":1209,\"unit\":\"F\"}}\n").unwrap();
    let graph = client.data.path().join("acme.yaml");
    // Without --registry the modules are looked for locally, and are not there.
    let e = client.fails(&["run", path_str(&graph), "--input", path_str(&input)]);
    assert!(
        e.contains("is not found locally") && e.contains("--registry HOST"),
        "{e}"
    );
    let out = client.ok(&[
        "run",
        path_str(&graph),
        "--registry",
        &registry.host,
        "--input",
        path_str(&input),
    ]);
    assert_celsius_output(&out);
}

#[test]
fn a_registry_graph_whose_modules_cannot_be_fetched_names_the_graph_operation_and_module() {
    let registry = Registry::start();
    let client = Client::new();
    let graph_ref = registry_graph(&registry, &client);
    let yaml = std::fs::read_to_string(client.data.path().join("acme.yaml")).unwrap();
    // The same graph with its map's module replaced, pushed under `tag`; running it must fail.
    let run_with_map = |module: &str, tag: &str| {
        let file = client.data.path().join(format!("{tag}.yaml"));
        std::fs::write(&file, yaml.replace("acme/ops/celsius:2.0.0", module)).unwrap();
        let reference = registry.reference(&format!("acme/graphs/broken:{tag}"));
        client.ok(&["push", path_str(&file), &reference]);
        (
            reference.clone(),
            Client::new().fails(&["run", &reference, "--input", "-"]),
        )
    };
    let map = "operation `module-temperature/map`";

    let (reference, e) = run_with_map("acme/ops/missing:1.0.0", "missing");
    assert!(
        e.contains(&format!(
            "graph definition {reference}: module `acme/ops/missing:1.0.0` of {map}: "
        )) && e.contains("is not in the registry"),
        "{e}"
    );
    let (reference, e) = run_with_map("acme/graphs/temperature:1.0.0", "graph");
    assert!(
        e.contains(&format!(
            "graph definition {reference}: module `acme/graphs/temperature:1.0.0` of {map}: {graph_ref} is a graph definition, not a wasm module"
        )),
        "{e}"
    );
    let (reference, e) = run_with_map("celsius.wasm", "file");
    assert!(
        e.contains(&format!(
            "graph definition {reference}: {map} names the local file `celsius.wasm`"
        )),
        "{e}"
    );
}

#[test]
fn digests_are_pinned_tags_move_and_cached_digests_pull_offline() {
    let mut registry = Registry::start();
    let client = Client::new();
    let reference = registry.reference("org/pinned:latest");
    let first = digest_line(&client.ok(&["push", path_str(&module("temperature")), &reference]));
    let second = digest_line(&client.ok(&["push", path_str(&module("window")), &reference]));
    assert_ne!(first, second);

    let puller = Client::new();
    let out = puller.data.path().join("out.wasm");
    let pinned = registry.reference(&format!("org/pinned@{first}"));
    assert_eq!(digest_line(&puller.ok(&["pull", &pinned, "-o", path_str(&out)])), first);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(module("temperature")).unwrap()
    );
    // The tag is resolved again: it now names the second push.
    assert_eq!(
        digest_line(&puller.ok(&["pull", &reference, "-o", path_str(&out)])),
        second
    );
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(module("window")).unwrap());

    registry.stop();
    let pulled = puller
        .run(&["pull", &pinned, "-o", path_str(&out)])
        .succeeded("wasmflow pull, registry gone");
    assert!(text(&pulled.stderr).contains("cached"), "{}", text(&pulled.stderr));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(module("temperature")).unwrap()
    );
    // `pull` by tag always asks the registry, which is down.
    let e = puller.fails(&["pull", &reference]);
    assert!(e.contains(&format!("cannot reach registry {}", registry.host)), "{e}");
}

#[test]
fn a_tampered_blob_is_refused_and_never_cached() {
    let registry = Registry::start();
    let client = Client::new();
    let reference = registry.reference("graphs/tampered:1");
    let file = repo().join("graphs/temperature.yaml");
    client.ok(&["push", path_str(&file), &reference]);
    let (manifest, _) = registry.manifest("graphs/tampered", "1");
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_string();

    // Same length, one byte changed, in the registry's own storage: it serves the wrong bytes.
    let stored = registry.blob_file(&layer);
    let mut bytes = std::fs::read(&stored).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&stored, &bytes).unwrap();

    let puller = Client::new();
    let e = puller.fails(&["pull", &reference]);
    assert!(e.contains("digest mismatch") && e.contains(&layer), "{e}");
    assert!(e.contains(&sha256(&bytes)), "the message names what was received: {e}");
    assert!(
        !puller.cached_blob(&layer).exists(),
        "a mismatching blob must not be cached"
    );
    let tmp = puller.data.path().join("oci/tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0),
        0,
        "no partial download left"
    );
    // And a second attempt fails the same way rather than using anything left behind.
    assert!(puller.fails(&["pull", &reference]).contains("digest mismatch"));
}

#[test]
fn a_missing_tag_and_a_registry_that_is_down_are_named() {
    let registry = Registry::start();
    let client = Client::new();
    let e = client.fails(&["pull", &registry.reference("org/nothing:1.0.0")]);
    assert!(
        e.contains(&format!("{}/org/nothing:1.0.0 is not in the registry", registry.host)),
        "{e}"
    );
    client.ok(&[
        "push",
        path_str(&module("temperature")),
        &registry.reference("org/something:1"),
    ]);
    let e = client.fails(&["pull", &registry.reference("org/something:2")]);
    assert!(e.contains("org/something:2 is not in the registry"), "{e}");

    let down = format!("127.0.0.1:{}", free_port());
    let e = client.fails(&["pull", &format!("{down}/org/x:1")]);
    assert!(
        e.contains(&format!("cannot reach registry {down} for {down}/org/x:1 over http")),
        "{e}"
    );
    let e = client.fails(&["run", &format!("{down}/org/graph:1"), "--input", "-"]);
    assert!(e.contains(&format!("cannot reach registry {down}")), "{e}");

    // A relative reference without --registry is not sent anywhere.
    let e = client.fails(&["pull", "org/repo/temperature:1.0.0"]);
    assert!(e.contains("names no registry host"), "{e}");
}

#[test]
fn credentials_from_flags_environment_and_docker_config() {
    let registry = Registry::start_with(Auth::Htpasswd);
    let client = Client::new();
    let file = module("temperature");
    let reference = registry.reference("private/temperature:1");

    let e = client.fails(&["push", path_str(&file), &reference]);
    assert!(
        e.contains("not authorized") && e.contains("credentials tried: no credentials"),
        "{e}"
    );
    let e = client.fails(&push_as_user(&file, &reference, "wrong"));
    assert!(
        e.contains(&format!("registry {} refused", registry.host)) && e.contains("not authorized"),
        "{e}"
    );

    let digest = digest_line(&client.ok(&push_as_user(&file, &reference, PASSWORD)));

    // Environment variables.
    let puller = Client::new();
    let out = puller
        .command(&["pull", &reference])
        .env("WASMFLOW_REGISTRY_USERNAME", USER)
        .env("WASMFLOW_REGISTRY_PASSWORD", PASSWORD)
        .output()
        .unwrap()
        .succeeded("wasmflow pull, credentials from the environment");
    assert_eq!(digest_line(&text(&out.stdout)), digest);

    // A Docker config.json, as `docker login` writes it.
    let puller = Client::new();
    assert!(puller.fails(&["pull", &reference]).contains("not authorized"));
    let auth = BASE64.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        puller.docker.path().join("config.json"),
        format!("{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}", registry.host),
    )
    .unwrap();
    let out = puller.data.path().join("t.wasm");
    assert_eq!(
        digest_line(&puller.ok(&["pull", &reference, "-o", path_str(&out)])),
        digest
    );
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&file).unwrap());
}

/// A user the stand-in token service grants `pull` only.
const READER: &str = "reader";
const READER_PASSWORD: &str = "r3ad-only";

/// A token service with `USER` (pull and push) and `READER` (pull), and a registry trusting it.
fn token_registry() -> (TokenServer, Registry) {
    let tokens = TokenServer::start(vec![
        User::new(USER, PASSWORD, &["pull", "push"]),
        User::new(READER, READER_PASSWORD, &["pull"]),
    ]);
    let registry = Registry::start_with(Auth::Token(&tokens));
    // The registry really is in token mode: it sends clients to the token service.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-"])
        .arg(format!("http://{}/v2/", registry.host))
        .output()
        .expect("curl");
    let headers = text(&out.stdout).to_ascii_lowercase();
    assert!(
        headers.starts_with("http/1.1 401")
            && headers.contains(&format!(
                "www-authenticate: bearer realm=\"{}\",service=\"{}\"",
                tokens.realm(),
                crate::support::token_server::SERVICE
            )),
        "{headers}"
    );
    (tokens, registry)
}

/// The requests the token service answered since `before` of them.
fn token_requests_since(tokens: &TokenServer, before: usize) -> Vec<crate::support::token_server::TokenRequest> {
    tokens.requests().split_off(before)
}

/// Bearer-token auth end to end: `push` and `pull` against a registry configured with
/// `auth: token` (the scheme of Docker Hub, ACR, GHCR…). The registry answers 401 with a
/// `Bearer realm=…,service=…` challenge; wasmflow takes the username and password (flags, or
/// the environment) to the token service, gets a JWT for `repository:NAME:pull,push` (or
/// `:pull`) and presents it. Proves: the right credentials push (the manifest digest is printed,
/// and is the registry's) and pull back by digest into a fresh cache, byte-identical; a wrong
/// password, or none, fails with a message naming the registry and saying the token service
/// refused authentication; a user granted only `pull` pulls but cannot push; and the token
/// service was really asked, with the right service and scopes, so the bearer path was taken
/// (not HTTP Basic against the registry). The token service is `common/token_server.rs`, a
/// stand-in written for the test (RS256 JWTs signed with a key and certificate made by
/// `openssl`, as distribution verifies them): no real one, such as `docker_auth`, can be
/// installed here from Debian, crates.io, PyPI or npm.
#[test]
fn token_auth_push_and_pull_with_username_and_password() {
    let (tokens, registry) = token_registry();
    let client = Client::new();
    let file = module("temperature");
    let original = std::fs::read(&file).unwrap();
    let repository = "private/temperature";
    let reference = registry.reference(&format!("{repository}:1"));
    let refused = format!("registry {} refused {reference}: not authorized", registry.host);

    // No credentials: the token service refuses anonymous access.
    let e = client.fails(&["push", path_str(&file), &reference]);
    assert!(
        e.contains(&refused)
            && e.contains("authentication failed: its token service refused anonymous access")
            && e.contains("credentials tried: no credentials"),
        "{e}"
    );

    // A wrong password: refused by the token service, and said so.
    let before = tokens.requests().len();
    let e = client.fails(&push_as_user(&file, &reference, "wrong"));
    assert!(
        e.contains(&refused)
            && e.contains("authentication failed: its token service refused the credentials")
            && e.contains("incorrect username or password")
            && e.contains("credentials tried: --registry-username/--registry-password"),
        "{e}"
    );
    let seen = token_requests_since(&tokens, before);
    assert!(
        !seen.is_empty() && seen.iter().all(|r| r.user.as_deref() == Some(USER) && r.status == 401),
        "{seen:?}"
    );

    // The right ones: a token for pull and push is fetched and the push succeeds.
    let before = tokens.requests().len();
    let digest = digest_line(&client.ok(&push_as_user(&file, &reference, PASSWORD)));
    let seen = token_requests_since(&tokens, before);
    let push_scope = format!("repository:{repository}:pull,push");
    assert!(
        seen.iter().any(|r| r.status == 200
            && r.user.as_deref() == Some(USER)
            && r.service.as_deref() == Some(crate::support::token_server::SERVICE)
            && r.scopes == [push_scope.clone()]),
        "no token for {push_scope} was issued: {seen:?}"
    );
    assert!(seen.iter().all(|r| r.status == 200), "{seen:?}");

    // The independent client, with a token of its own, finds the manifest the digest names.
    let bearer = format!(
        "Authorization: Bearer {}",
        tokens.mint("curl", &[(repository, &["pull"])])
    );
    let manifest = registry.curl(&format!("/v2/{repository}/manifests/1"), &[MANIFEST_ACCEPT, &bearer]);
    assert_eq!(
        sha256(&manifest),
        digest,
        "the printed digest is the registry's manifest's"
    );

    // Pulled back by digest into a fresh cache, credentials from the environment.
    let puller = Client::new();
    let target = puller.data.path().join("pulled.wasm");
    let by_digest = registry.reference(&format!("{repository}@{digest}"));
    let before = tokens.requests().len();
    let out = puller
        .command(&["pull", &by_digest, "-o", path_str(&target)])
        .env("WASMFLOW_REGISTRY_USERNAME", USER)
        .env("WASMFLOW_REGISTRY_PASSWORD", PASSWORD)
        .output()
        .unwrap()
        .succeeded("wasmflow pull, credentials from the environment");
    assert!(text(&out.stderr).contains("pulled"), "{}", text(&out.stderr));
    assert_eq!(digest_line(&text(&out.stdout)), digest);
    assert!(std::fs::read(&target).unwrap() == original, "pulled bytes differ");
    let seen = token_requests_since(&tokens, before);
    let pull_scope = format!("repository:{repository}:pull");
    assert!(
        seen.iter()
            .any(|r| r.status == 200 && r.user.as_deref() == Some(USER) && r.scopes == [pull_scope.clone()]),
        "no token for {pull_scope} was issued: {seen:?}"
    );

    // A user granted only `pull`: pulls by tag, but its push is refused by the registry.
    let reader = Client::new();
    let creds = ["--registry-username", READER, "--registry-password", READER_PASSWORD];
    let mut args = vec!["pull", reference.as_str()];
    args.extend(creds);
    assert_eq!(digest_line(&reader.ok(&args)), digest);
    let other = registry.reference(&format!("{repository}:reader"));
    let mut args = vec!["push", path_str(&file), other.as_str()];
    args.extend(creds);
    let e = reader.fails(&args);
    assert!(
        e.contains(&format!("registry {} refused {other}: not authorized", registry.host))
            && e.contains("credentials tried: --registry-username/--registry-password"),
        "{e}"
    );
}

/// A ready bearer token (`WASMFLOW_REGISTRY_TOKEN`, e.g. from `az acr login --expose-token`)
/// against the same `auth: token` registry: it is presented as it is, never exchanged (the
/// token service is not asked), and push and pull by digest work with it, a trailing newline
/// (from a file or a command's output) ignored; a token for another repository, or one that is
/// no token at all, is refused with a message naming the registry and the variable; one with a
/// control character inside is refused up front with a message, not a panic. The token is minted by the stand-in token service's key
/// (`common/token_server.rs`), as the real service would have issued it.
#[test]
fn token_auth_with_a_pre_issued_bearer_token() {
    let (tokens, registry) = token_registry();
    let file = module("window");
    let repository = "private/window";
    let reference = registry.reference(&format!("{repository}:1"));
    let token = tokens.mint(USER, &[(repository, &["pull", "push"])]);

    let client = Client::new();
    let out = client
        .command(&["push", path_str(&file), &reference])
        .env("WASMFLOW_REGISTRY_TOKEN", format!("{token}\n"))
        .output()
        .unwrap()
        .succeeded("wasmflow push, WASMFLOW_REGISTRY_TOKEN");
    let digest = digest_line(&text(&out.stdout));

    let puller = Client::new();
    let target = puller.data.path().join("pulled.wasm");
    let by_digest = registry.reference(&format!("{repository}@{digest}"));
    let out = puller
        .command(&["pull", &by_digest, "-o", path_str(&target)])
        .env("WASMFLOW_REGISTRY_TOKEN", &token)
        .output()
        .unwrap()
        .succeeded("wasmflow pull, WASMFLOW_REGISTRY_TOKEN");
    assert_eq!(digest_line(&text(&out.stdout)), digest);
    assert!(
        std::fs::read(&target).unwrap() == std::fs::read(&file).unwrap(),
        "pulled bytes differ"
    );
    let seen = tokens.requests();
    assert!(seen.is_empty(), "a ready token must not be exchanged: {seen:?}");

    // Refused: a token for another repository, and a string that is no token.
    let elsewhere = tokens.mint(USER, &[("private/other", &["pull", "push"])]);
    for bad in [elsewhere.as_str(), "not-a-token"] {
        let e = Client::new()
            .command(&["pull", &reference])
            .env("WASMFLOW_REGISTRY_TOKEN", bad)
            .output()
            .unwrap();
        assert!(!e.status.success(), "a bad token pulled: {}", text(&e.stdout));
        let e = text(&e.stderr);
        assert!(
            e.contains(&format!(
                "registry {} refused {reference}: not authorized",
                registry.host
            )) && e.contains("credentials tried: WASMFLOW_REGISTRY_TOKEN")
                && e.contains("check WASMFLOW_REGISTRY_TOKEN"),
            "{e}"
        );
    }

    // A control character inside: no header can carry it, and it is said so before any request.
    let out = Client::new()
        .command(&["pull", &reference])
        .env("WASMFLOW_REGISTRY_TOKEN", format!("{}\n{}", &token[..20], &token[20..]))
        .output()
        .unwrap();
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("WASMFLOW_REGISTRY_TOKEN cannot be used as a bearer token: it holds a control character")
            && !e.contains(&token[..20]),
        "{e}"
    );
}

/// A valid component several MiB large: a module plus a big custom section.
fn large_component(dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(module("temperature")).unwrap();
    let name = b"padding";
    let payload: Vec<u8> = (0..6u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    bytes.push(0);
    let mut len = section.len() as u32;
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend_from_slice(&section);
    let file = dir.join("large.wasm");
    std::fs::write(&file, bytes).unwrap();
    file
}

#[test]
fn large_artifacts_go_in_chunks_with_progress_and_arrive_intact() {
    let registry = Registry::start();
    let client = Client::new();
    let file = large_component(client.data.path());
    let reference = registry.reference("org/large:1");
    let out = client
        .run(&["push", path_str(&file), &reference])
        .succeeded("wasmflow push");
    assert!(text(&out.stderr).contains("uploading"), "{}", text(&out.stderr));

    let puller = Client::new();
    let target = puller.data.path().join("large.wasm");
    let out = puller
        .run(&["pull", &reference, "-o", path_str(&target)])
        .succeeded("wasmflow pull");
    assert!(text(&out.stderr).contains("downloading"), "{}", text(&out.stderr));
    assert!(
        std::fs::read(&target).unwrap() == std::fs::read(&file).unwrap(),
        "large artifact differs"
    );
}

#[test]
fn modules_pushed_with_the_platform_ci_layer_type_are_accepted() {
    // Pushed by curl as the platform's samples CI does with oras: an empty OCI config and one
    // `application/vnd.wasm.content.layer.v1+wasm` layer.
    let registry = Registry::start();
    let wasm = std::fs::read(module("temperature")).unwrap();
    let config = b"{}".to_vec();
    // Distribution 2.8 takes a monolithic upload as POST (a session) then PUT ?digest= with the bytes.
    let upload = |bytes: &[u8], name: &str| {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(name);
        std::fs::write(&f, bytes).unwrap();
        let out = Command::new("curl")
            .args(["-sSf", "-X", "POST", "-o", "/dev/null", "-w", "%header{location}"])
            .arg(format!("http://{}/v2/ci/temperature/blobs/uploads/", registry.host))
            .output()
            .expect("curl")
            .succeeded("upload session");
        let location = text(&out.stdout);
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = if location.starts_with("http") {
            location.clone()
        } else {
            format!("http://{}{location}", registry.host)
        };
        Command::new("curl")
            .args([
                "-sSf",
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
            ])
            .arg(format!("@{}", f.display()))
            .arg(format!("{url}{sep}digest={}", sha256(bytes)))
            .output()
            .expect("curl")
            .succeeded(format_args!("blob upload to {url}"));
    };
    upload(&wasm, "m.wasm");
    upload(&config, "config.json");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.wasm.content.layer.v1+wasm", "digest": sha256(&wasm), "size": wasm.len()}],
    })
    .to_string();
    let dir = tempfile::tempdir().unwrap();
    let mf = dir.path().join("manifest.json");
    std::fs::write(&mf, &manifest).unwrap();
    Command::new("curl")
        .args([
            "-sSf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
        ])
        .arg(format!("@{}", mf.display()))
        .arg(format!("http://{}/v2/ci/temperature/manifests/1.0.0", registry.host))
        .output()
        .unwrap()
        .succeeded("manifest");

    let client = Client::new();
    let target = client.data.path().join("t.wasm");
    let digest = digest_line(&client.ok(&[
        "pull",
        &registry.reference("ci/temperature:1.0.0"),
        "-o",
        path_str(&target),
    ]));
    assert_eq!(digest, sha256(manifest.as_bytes()));
    assert_eq!(std::fs::read(&target).unwrap(), wasm);
}

/// This machine's address on its default route (no packet is sent: a UDP "connect" only picks it).
fn non_loopback_ip() -> String {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    socket
        .connect("10.255.255.255:9")
        .expect("this test needs a non-loopback network interface");
    let ip = socket.local_addr().unwrap().ip();
    assert!(!ip.is_loopback(), "no non-loopback address: {ip}");
    ip.to_string()
}

#[test]
fn plain_http_beyond_loopback_only_when_asked() {
    let registry = Registry::start_on(&non_loopback_ip(), Auth::Anonymous);
    let client = Client::new();
    let file = module("temperature");
    let reference = registry.reference("org/insecure:1");
    let e = client.fails(&["push", path_str(&file), &reference]);
    assert!(
        e.contains(&format!(
            "cannot reach registry {} for {reference} over https",
            registry.host
        )) && e.contains("pass --insecure"),
        "{e}"
    );
    let digest = digest_line(&client.ok(&["push", path_str(&file), &reference, "--insecure"]));
    let out = client.data.path().join("i.wasm");
    assert_eq!(
        digest_line(&client.ok(&["pull", &reference, "--insecure", "-o", path_str(&out)])),
        digest
    );
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&file).unwrap());
}

/// A registry that accepts the connection and never answers: the pull fails after the read
/// timeout, naming the registry, instead of hanging (before, it hung forever).
#[test]
fn a_registry_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and hold every connection, answering nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    let d = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmflow"))
        .args([
            "pull",
            &format!("127.0.0.1:{port}/graphs/silent:1.0.0"),
            "--registry-read-timeout-secs",
            "1",
        ])
        .env("WASMFLOW_DATA_DIR", d.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("pull still waiting on a silent registry after 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "names the registry: {err}");
}
