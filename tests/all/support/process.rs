//! A `wasmflow run` child process for end-to-end tests: killed (SIGKILL) when dropped, its log
//! in a file the test can show when it fails; and [`OutputExt`] for commands run to completion.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::repo;

pub struct Wasmflow {
    child: Child,
    log: PathBuf,
}

impl Wasmflow {
    /// `wasmflow run ARGS --data-dir DATA_DIR`, from the repository root, with `RUST_LOG=info`.
    pub fn start(data_dir: &Path, args: &[&str]) -> Self {
        let log = data_dir.join(format!("wasmflow-{}.log", std::process::id()));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_wasmflow"))
            .arg("run")
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .current_dir(repo())
            .env_remove("WASMFLOW_MODULES")
            .env_remove("WASMFLOW_MQTT")
            .env_remove("WASMFLOW_KAFKA")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start wasmflow");
        Self { child, log }
    }

    /// `wasmflow run GRAPH --listen 127.0.0.1:PORT --source in --sink out EXTRA…` on the embedded
    /// broker (a free port), once its source subscribed; and that port.
    pub fn on_embedded_broker(data_dir: &Path, graph: &str, extra: &[&str]) -> (Self, u16) {
        let port = super::mosquitto::free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec![graph, "--listen", &listen, "--source", "in", "--sink", "out"];
        args.extend_from_slice(extra);
        let mut wf = Self::start(data_dir, &args);
        wf.wait_for_log("MQTT source subscribed", Duration::from_secs(60));
        (wf, port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit on its own.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return Some(s);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log contains `text`; fails the test if the process exits first or
    /// `timeout` passes.
    pub fn wait_for_log(&mut self, text: &str, timeout: Duration) {
        let until = Instant::now() + timeout;
        while !self.log().contains(text) {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                panic!("wasmflow exited ({s}) before logging `{text}`:\n{}", self.log());
            }
            assert!(Instant::now() < until, "no `{text}` after {timeout:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` (`HUP`, `TERM`, …) with `kill`.
    pub fn signal(&self, signal: &str) {
        let ok = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -{signal} {}", self.child.id());
    }

    /// SIGKILL: no shutdown code runs, as in a crash or power loss.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Wasmflow {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Checks a finished command's [`Output`]: one failure message with everything needed to see why
/// the command failed (what it was, its exit status, stdout and stderr), instead of each test
/// printing some of it.
pub trait OutputExt {
    /// The output, if the command succeeded; otherwise fails the test naming `what`.
    fn succeeded(self, what: impl Display) -> Output;
}

impl OutputExt for Output {
    #[track_caller]
    fn succeeded(self, what: impl Display) -> Output {
        assert!(self.status.success(), "{what}: {}", describe(&self));
        self
    }
}

/// A finished command's exit status, stdout and stderr, for a failure message.
pub fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
