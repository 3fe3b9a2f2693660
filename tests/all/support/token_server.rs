//! A stand-in for a registry token service (the Docker "token authentication" protocol that
//! `registry:2` speaks with `auth: token`), written for the tests: no real one — such as
//! cesanta's `docker_auth` — can be installed here from Debian, crates.io, PyPI or npm.
//!
//! It serves `GET /token?service=…&scope=repository:NAME:ACTIONS` over plain HTTP/1.1 on a free
//! loopback port, checks HTTP Basic credentials against its users (401 otherwise, anonymous
//! included), and answers `{"token", "access_token", "expires_in"}` with an RS256 JWT granting
//! the requested actions the user is allowed. The JWT is signed by a key and self-signed
//! certificate made with the `openssl` CLI; the certificate goes in the registry's
//! `rootcertbundle` and, DER-encoded, in the token's `x5c` header, as distribution verifies it.
//! Every request is recorded so a test can tell that the bearer path was really taken.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

use super::pki::openssl;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};

/// The registry's `auth.token.service`: the token's audience.
pub const SERVICE: &str = "wasmflow-test";
/// The registry's `auth.token.issuer`.
pub const ISSUER: &str = "wasmflow-test-issuer";

/// A user of the token service and the actions it may be granted on any repository.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password: String,
    pub actions: Vec<String>,
}

impl User {
    pub fn new(name: &str, password: &str, actions: &[&str]) -> Self {
        User {
            name: name.into(),
            password: password.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }
}

/// One request the token service answered.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The Basic-auth user, if any was sent.
    pub user: Option<String>,
    /// The `service` query parameter.
    pub service: Option<String>,
    /// The `scope` query parameters, decoded.
    pub scopes: Vec<String>,
    /// The HTTP status answered (200: a token was issued).
    pub status: u16,
}

/// The key and certificate tokens are signed with.
struct Signer {
    key: RsaKeyPair,
    cert_der: Vec<u8>,
    rng: SystemRandom,
    jti: AtomicU64,
}

impl Signer {
    /// A new RSA key and self-signed certificate made by `openssl` in `dir`; the PEM
    /// certificate is left at `dir/token-signer.crt` for the registry's `rootcertbundle`.
    fn generate(dir: &Path) -> Self {
        let key_pem = dir.join("token-signer.key");
        let cert_pem = dir.join("token-signer.crt");
        let key_der = dir.join("token-signer.pk8");
        let cert_der = dir.join("token-signer.der");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            "2",
            "-subj",
            "/CN=wasmflow-test-token-signer",
            "-keyout",
            path(&key_pem),
            "-out",
            path(&cert_pem),
        ]);
        openssl(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            path(&key_pem),
            "-outform",
            "DER",
            "-out",
            path(&key_der),
        ]);
        openssl(&[
            "x509",
            "-in",
            path(&cert_pem),
            "-outform",
            "DER",
            "-out",
            path(&cert_der),
        ]);
        let key = RsaKeyPair::from_pkcs8(&std::fs::read(&key_der).unwrap()).expect("openssl's PKCS#8 RSA key");
        Signer {
            key,
            cert_der: std::fs::read(&cert_der).unwrap(),
            rng: SystemRandom::new(),
            jti: AtomicU64::new(0),
        }
    }

    /// An RS256 JWT for `subject` granting `access` (`(repository, actions)`), valid for `ttl`.
    fn token(&self, subject: &str, access: &[(String, Vec<String>)], ttl: Duration) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5c": [STANDARD.encode(&self.cert_der)],
        });
        let access: Vec<serde_json::Value> = access
            .iter()
            .map(|(name, actions)| serde_json::json!({"type": "repository", "name": name, "actions": actions}))
            .collect();
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + ttl.as_secs(),
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{}-{}", std::process::id(), self.jti.fetch_add(1, Ordering::Relaxed)),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, signing_input.as_bytes(), &mut signature)
            .expect("RS256 signature");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Shared {
    signer: Signer,
    users: Vec<User>,
    requests: Mutex<Vec<TokenRequest>>,
}

/// The token service: a thread accepting connections on a loopback port; stopped when dropped.
pub struct TokenServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl TokenServer {
    /// Starts the service for `users`, with a signing key and certificate of its own.
    pub fn start(users: Vec<User>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let shared = Arc::new(Shared {
            signer: Signer::generate(dir.path()),
            users,
            requests: Mutex::new(Vec::new()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = shared.clone();
                    std::thread::spawn(move || serve(stream, &shared));
                }
            })
        };
        TokenServer {
            addr,
            shared,
            stop,
            thread: Some(thread),
            dir,
        }
    }

    /// The registry's `auth.token.realm`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The PEM certificate for the registry's `auth.token.rootcertbundle`.
    pub fn cert_bundle(&self) -> PathBuf {
        self.dir.path().join("token-signer.crt")
    }

    /// The registry's `auth:` section (YAML, at the top level of its config) for this service.
    pub fn registry_auth_config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.realm(),
            self.cert_bundle().display()
        )
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// A token signed by this service's key, as it would issue it, but made directly: for a
    /// client given a ready bearer token. `access` is `(repository, actions)`.
    pub fn mint(&self, subject: &str, access: &[(&str, &[&str])]) -> String {
        let access: Vec<(String, Vec<String>)> = access
            .iter()
            .map(|(name, actions)| (name.to_string(), actions.iter().map(|a| a.to_string()).collect()))
            .collect();
        self.shared.signer.token(subject, &access, Duration::from_secs(300))
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request on `stream` and closes it.
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return;
    }
    let mut authorization = None;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.trim_end().is_empty() => break,
            Ok(_) => {
                if let Some((name, value)) = line.split_once(':') {
                    if name.trim().eq_ignore_ascii_case("authorization") {
                        authorization = Some(value.trim().to_string());
                    }
                }
            }
        }
    }
    let (status, body) = answer(&request_line, authorization.as_deref(), shared);
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 401 {
        response.push_str(&format!("WWW-Authenticate: Basic realm=\"{SERVICE}\"\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&body);
    let mut stream = &stream;
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

/// The status and JSON body for one request; records it.
fn answer(request_line: &str, authorization: Option<&str>, shared: &Shared) -> (u16, String) {
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut service = None;
    let mut scopes = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decode(k).as_str() {
            "service" => service = Some(percent_decode(v)),
            "scope" => scopes.extend(percent_decode(v).split(' ').map(str::to_string)),
            _ => {}
        }
    }
    let basic = authorization
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())));
    let user = basic.as_ref().map(|(u, _)| u.clone());
    let known = basic
        .as_ref()
        .and_then(|(u, p)| shared.users.iter().find(|x| &x.name == u && &x.password == p));

    let (status, body) = if path != "/token" {
        (404, r#"{"details":"not found"}"#.to_string())
    } else if service.as_deref() != Some(SERVICE) {
        (
            400,
            format!(
                r#"{{"details":"unknown service {:?}"}}"#,
                service.clone().unwrap_or_default()
            ),
        )
    } else if let Some(known) = known {
        // Each requested repository scope gets the requested actions this user may have.
        let access: Vec<(String, Vec<String>)> = scopes
            .iter()
            .filter_map(|s| {
                let rest = s.strip_prefix("repository:")?;
                let (name, actions) = rest.rsplit_once(':')?;
                let granted = actions
                    .split(',')
                    .filter(|a| known.actions.iter().any(|k| k == a))
                    .map(str::to_string)
                    .collect();
                Some((name.to_string(), granted))
            })
            .collect();
        let token = shared.signer.token(&known.name, &access, Duration::from_secs(300));
        (
            200,
            serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string(),
        )
    } else if basic.is_none() {
        (401, r#"{"details":"authentication required"}"#.to_string())
    } else {
        (401, r#"{"details":"incorrect username or password"}"#.to_string())
    };
    shared.requests.lock().unwrap().push(TokenRequest {
        user,
        service,
        scopes,
        status,
    });
    (status, body)
}

/// Decodes `%XX` escapes and `+` (a query string as `application/x-www-form-urlencoded`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
