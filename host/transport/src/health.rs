//! Whether a process is ready for work, as an orchestrator asks (`/readyz` of `run --metrics`):
//! one named check per connection it depends on (each broker connection, the state store), all
//! of which must pass.
//!
//! A check is either a [`HealthFlag`] its owner keeps current (an MQTT connection knows when it
//! is connected: set on CONNACK, cleared when the connection is lost) or a probe run when asked
//! (a Kafka cluster's metadata, a Redis `PING`), for what only knows by asking. Clones of a
//! [`Health`] share its checks: the CLI makes one, hands clones to the transports' settings and
//! to the metrics endpoint.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::BoxFuture;

/// A probe: asks now, answers `Err(reason)` when what it checks is not usable.
type Probe = Arc<dyn Fn() -> BoxFuture<Result<(), String>> + Send + Sync>;

#[derive(Clone)]
enum Check {
    Flag(HealthFlag),
    Probe(Probe),
}

/// The checks of one process; see the module doc.
#[derive(Clone, Default)]
pub struct Health {
    checks: Arc<Mutex<Vec<(String, Check)>>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.lock().iter().map(|(n, _)| n.clone()).collect();
        f.debug_struct("Health").field("checks", &names).finish()
    }
}

/// How long one probe may take before it counts as failing.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What [`Health::report`] found: each check by name, `Err` with the reason when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// In the order the checks were added.
    pub checks: Vec<(String, Result<(), String>)>,
}

impl Report {
    /// Every check passed (also when there are none).
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|(_, r)| r.is_ok())
    }
}

impl std::fmt::Display for Report {
    /// One line per check: `ok NAME` or `failing NAME: REASON`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, r) in &self.checks {
            match r {
                Ok(()) => writeln!(f, "ok {name}")?,
                Err(why) => writeln!(f, "failing {name}: {why}")?,
            }
        }
        Ok(())
    }
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Check)>> {
        self.checks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A check named `name` that its owner sets; it starts failing ("not connected yet").
    pub fn flag(&self, name: impl Into<String>) -> HealthFlag {
        let flag = HealthFlag(Arc::new(Mutex::new(Err("not connected yet".into()))));
        self.lock().push((name.into(), Check::Flag(flag.clone())));
        flag
    }

    /// A check named `name` that runs `probe` each time readiness is asked, at most
    /// [`PROBE_TIMEOUT`].
    pub fn probe<F>(&self, name: impl Into<String>, probe: F)
    where
        F: Fn() -> BoxFuture<Result<(), String>> + Send + Sync + 'static,
    {
        self.lock().push((name.into(), Check::Probe(Arc::new(probe))));
    }

    /// Runs every check in turn (a process has a handful; each probe is bounded by
    /// [`PROBE_TIMEOUT`]).
    pub async fn report(&self) -> Report {
        let checks = self.lock().clone();
        let mut out = Vec::with_capacity(checks.len());
        for (name, check) in checks {
            let r = match check {
                Check::Flag(f) => f.get(),
                Check::Probe(p) => match tokio::time::timeout(PROBE_TIMEOUT, p()).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
                },
            };
            out.push((name, r));
        }
        Report { checks: out }
    }
}

/// One check's state, set by what it describes.
#[derive(Clone, Debug)]
pub struct HealthFlag(Arc<Mutex<Result<(), String>>>);

impl HealthFlag {
    /// Connected (or otherwise usable).
    pub fn up(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Ok(());
    }

    /// Not usable, and why.
    pub fn down(&self, reason: impl Into<String>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Err(reason.into());
    }

    fn get(&self) -> Result<(), String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_only_when_every_check_passes() {
        let h = Health::default();
        assert!(h.report().await.ready(), "nothing to check: ready");
        let mqtt = h.flag("mqtt source mqtt://b:1883");
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let u = up.clone();
        h.clone().probe("state redis://r:6379", move || {
            let ok = u.load(std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move {
                if ok {
                    Ok(())
                } else {
                    Err("connection refused".into())
                }
            })
        });
        let r = h.report().await;
        assert!(!r.ready());
        assert_eq!(
            r.to_string(),
            "failing mqtt source mqtt://b:1883: not connected yet\nok state redis://r:6379\n"
        );
        mqtt.up();
        assert!(h.report().await.ready());
        up.store(false, std::sync::atomic::Ordering::SeqCst);
        let r = h.report().await;
        assert_eq!(r.checks[1].1, Err("connection refused".to_owned()));
        mqtt.down("lost");
        assert_eq!(r.checks.len(), 2);
        assert_eq!(h.report().await.checks[0].1, Err("lost".to_owned()));
    }

    #[tokio::test]
    async fn a_probe_that_hangs_fails_after_the_timeout() {
        let h = Health::default();
        h.probe("hung", || Box::pin(std::future::pending()));
        let r = h.report().await;
        assert!(matches!(&r.checks[0].1, Err(why) if why.contains("no answer")), "{r}");
    }
}
