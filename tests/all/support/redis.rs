//! A real `redis-server` (Debian's package, installed by scripts/setup.sh) for tests and
//! benchmarks: started on a free loopback port with its configuration on the command line
//! (no persistence, so a restart starts empty), stopped and started again on the same port,
//! killed when dropped. Optionally with a password, or TLS only (a CA and server certificate
//! made by the `openssl` CLI: `pki.rs`). Included with `#[path]` by the tests that need it (the
//! state-store crate's suite, `tests/all`).
#![allow(dead_code)]

#[path = "pki.rs"]
pub mod pki;
use pki::make_pki;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub fn redis_server_binary() -> PathBuf {
    for p in [
        "/usr/bin/redis-server",
        "/usr/local/bin/redis-server",
        "/usr/sbin/redis-server",
    ] {
        if Path::new(p).is_file() {
            return p.into();
        }
    }
    panic!("redis-server is not installed: run scripts/setup.sh (apt-get install redis-server)");
}

/// How the server is set up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `requirepass`: clients must AUTH with it.
    pub password: Option<String>,
    /// TLS only, with a fresh CA and server certificate (for `localhost` and 127.0.0.1).
    pub tls: bool,
}

pub struct RedisServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    child: Option<Child>,
    /// The CA that signed the server certificate, with `tls`.
    pub ca: Option<PathBuf>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::with(Options::default())
    }

    pub fn with(options: Options) -> Self {
        redis_server_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut args: Vec<String> = [
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend(["--dir".into(), dir.path().display().to_string()]);
        args.extend(["--logfile".into(), dir.path().join("redis.log").display().to_string()]);
        if let Some(p) = &options.password {
            args.extend(["--requirepass".into(), p.clone()]);
        }
        let mut ca = None;
        if options.tls {
            let pki = make_pki(dir.path());
            args.extend(["--port".into(), "0".into(), "--tls-port".into(), port.to_string()]);
            for (flag, file) in [
                ("--tls-cert-file", "server.crt"),
                ("--tls-key-file", "server.key"),
                ("--tls-ca-cert-file", "ca.crt"),
            ] {
                args.extend([flag.into(), pki.join(file).display().to_string()]);
            }
            args.extend(["--tls-auth-clients".into(), "no".into()]);
            ca = Some(pki.join("ca.crt"));
        } else {
            args.extend(["--port".into(), port.to_string()]);
        }
        let mut r = Self {
            port,
            dir,
            args,
            child: None,
            ca,
        };
        r.resume();
        r
    }

    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port, with the same configuration (and, having no
    /// persistence, empty).
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let child = Command::new(redis_server_binary())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < until,
                "redis-server did not listen on {} within 10 s:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the server (SIGKILL): its clients see their connections drop.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `redis-cli` against this server, for checks made independently of the code under test.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--no-auth-warning"]);
        if let Some(ca) = &self.ca {
            cmd.arg("--tls").arg("--cacert").arg(ca);
        }
        if let Some(i) = self.args.iter().position(|a| a == "--requirepass") {
            cmd.args(["-a", &self.args[i + 1]]);
        }
        let out = cmd.args(args).output().expect("run redis-cli");
        assert!(
            out.status.success(),
            "redis-cli {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
