//! The Redis-protocol backend (Redis, Valkey): one hash per key, every conditional write and
//! fenced delete a Lua script run atomically on the server, versions from the server's clock.
//!
//! Layout, for whoever looks with `redis-cli`: key `K` is a hash with field `v` (the value),
//! `s`/`ns`/`c` (its version: seconds, nanoseconds in whole milliseconds, counter: as the
//! embedded store's, so a version prints exactly in the `__ts` form) and, once written under a fencing
//! token, `fs`/`fns`/`fc` (that token); expiry is the key's own TTL. [`CLOCK_KEY`] holds the
//! last version handed out, so versions (and so fencing tokens) increase strictly across every
//! process that uses the server, whatever their own clocks say.
//!
//! The client is the `redis` crate's `ConnectionManager` (one multiplexed connection that
//! reconnects by itself after a failure) on the process's tokio runtime; a call from a graph's
//! thread is sent there and waited for, at most the read timeout.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use wasmflow_wire::Hlc;

use crate::{to_hlc, DelResponse, GetResponse, SetCondition, SetResponse, StateStoreError, Version};

/// The hash holding the last version handed out (reserved: operators should not use this key).
pub const CLOCK_KEY: &str = "wasmflow:state:clock";

/// Shared by both scripts: `older(a, b)` compares two versions given as three numbers each.
const OLDER: &str = r#"
local function older(s, ns, c, s2, ns2, c2)
  if s ~= s2 then return s < s2 end
  if ns ~= ns2 then return ns < ns2 end
  return c < c2
end
local function stale(cur, given, gs, gns, gc)
  if not cur[2] then return false end
  return (not given) or older(gs, gns, gc, tonumber(cur[2]), tonumber(cur[3]), tonumber(cur[4]))
end
"#;

/// KEYS: key, clock. ARGV: value, condition (`nx`/`eq`/`any`), expiry in ms (0: none),
/// fence given (`1`/`0`), fence s, ns, c.
/// Answers `{"stale", fs, fns, fc}`, `{"refused"}` or `{"done", s, ns, c}`.
const SET: &str = r#"
local key, clock = KEYS[1], KEYS[2]
local cur = redis.call('HMGET', key, 'v', 'fs', 'fns', 'fc')
local exists = cur[1] ~= false
local given = ARGV[4] == '1'
if exists and stale(cur, given, tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])) then
  return {'stale', cur[2], cur[3], cur[4]}
end
if exists and (ARGV[2] == 'nx' or (ARGV[2] == 'eq' and cur[1] ~= ARGV[1])) then
  return {'refused'}
end
local t = redis.call('TIME')
local s, ns, c = tonumber(t[1]), math.floor(tonumber(t[2]) / 1000) * 1000000, 0
local last = redis.call('HMGET', clock, 's', 'ns', 'c')
if last[1] then
  local ls, lns, lc = tonumber(last[1]), tonumber(last[2]), tonumber(last[3])
  if not (s > ls or (s == ls and ns > lns)) then s, ns, c = ls, lns, lc + 1 end
end
s, ns, c = string.format('%d', s), string.format('%d', ns), string.format('%d', c)
redis.call('HSET', clock, 's', s, 'ns', ns, 'c', c)
local fs, fns, fc = cur[2], cur[3], cur[4]
if given then fs, fns, fc = ARGV[5], ARGV[6], ARGV[7] end
redis.call('DEL', key)
if fs then
  redis.call('HSET', key, 'v', ARGV[1], 's', s, 'ns', ns, 'c', c, 'fs', fs, 'fns', fns, 'fc', fc)
else
  redis.call('HSET', key, 'v', ARGV[1], 's', s, 'ns', ns, 'c', c)
end
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
return {'done', s, ns, c}
"#;

/// KEYS: key. ARGV: value given (`1`/`0`), value, fence given (`1`/`0`), fence s, ns, c.
/// Answers `{"absent"}`, `{"stale", fs, fns, fc}`, `{"mismatch"}` or `{"deleted"}`.
const DEL: &str = r#"
local key = KEYS[1]
local cur = redis.call('HMGET', key, 'v', 'fs', 'fns', 'fc')
if not cur[1] then return {'absent'} end
if stale(cur, ARGV[3] == '1', tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])) then
  return {'stale', cur[2], cur[3], cur[4]}
end
if ARGV[1] == '1' and cur[1] ~= ARGV[2] then return {'mismatch'} end
redis.call('DEL', key)
return {'deleted'}
"#;

/// How to reach a Redis-protocol server (`run --state redis://…`).
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://HOST[:PORT][/DB]` or `rediss://…` (TLS), with no password in it.
    url: String,
    /// An ACL user name (`AUTH user password`); `None` with a password is Redis's `default` user.
    pub username: Option<String>,
    /// Never from the command line: the CLI reads it from a file or the environment.
    pub password: Option<String>,
    /// A PEM CA certificate that signed the server's certificate (`rediss://` with a private
    /// CA); `None` trusts the system's roots.
    pub ca: Option<PathBuf>,
    /// How long connecting (at start, and each reconnect) may take.
    pub connect_timeout: Duration,
    /// How long one call may wait for its answer before it fails with a timeout.
    pub read_timeout: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("ca", &self.ca)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

/// Default of [`RedisConfig::connect_timeout`] (`--state-connect-timeout-secs`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`RedisConfig::read_timeout`] (`--state-read-timeout-ms`).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_millis(2000);

impl RedisConfig {
    /// Checks `url`: scheme `redis` or `rediss`, a host, an optional port and database number,
    /// and no password (passwords never go on the command line).
    pub fn new(url: &str) -> Result<Self, StateStoreError> {
        let bad = |reason: &str| StateStoreError::Config {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(&format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err(bad("the scheme must be redis:// or rediss:// (TLS)"));
        }
        if parsed.password().is_some() {
            return Err(bad(
                "a password in the URL would show in `ps` and shell history: give it in --state-password-file or WASMFLOW_STATE_PASSWORD",
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        let path = parsed.path().trim_start_matches('/');
        if !path.is_empty() && path.parse::<u16>().is_err() {
            return Err(bad("the path must be a database number (`/0`)"));
        }
        if parsed.query().is_some() {
            return Err(bad("query parameters are not taken; use the --state-… flags"));
        }
        let username = Some(parsed.username()).filter(|u| !u.is_empty()).map(str::to_owned);
        Ok(Self {
            url: url.to_owned(),
            username,
            password: None,
            ca: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
        })
    }

    /// The URL for messages (it never holds a secret).
    pub fn display_url(&self) -> &str {
        &self.url
    }

    fn client(&self) -> Result<redis::Client, StateStoreError> {
        // rustls needs one process-wide crypto provider (ring, as the MQTT client installs it);
        // a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let bad = |reason: String| StateStoreError::Config {
            url: self.url.clone(),
            reason,
        };
        let mut info: redis::ConnectionInfo =
            redis::IntoConnectionInfo::into_connection_info(self.url.as_str()).map_err(|e| bad(e.to_string()))?;
        let mut redis_info = info.redis_settings().clone();
        if let Some(u) = &self.username {
            redis_info = redis_info.set_username(u);
        }
        if let Some(p) = &self.password {
            redis_info = redis_info.set_password(p);
        }
        info = info.set_redis_settings(redis_info);
        match &self.ca {
            None => redis::Client::open(info).map_err(|e| bad(e.to_string())),
            Some(ca) => {
                let root_cert = std::fs::read(ca).map_err(|e| bad(format!("reading the CA {}: {e}", ca.display())))?;
                redis::Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(root_cert),
                    },
                )
                .map_err(|e| bad(e.to_string()))
            }
        }
    }
}

/// `url` with any password replaced, for an error about the URL itself.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("…"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The connected backend.
pub(crate) struct RedisStore {
    conn: ConnectionManager,
    rt: tokio::runtime::Handle,
    url: String,
    read_timeout: Duration,
    set: Arc<Script>,
    del: Arc<Script>,
    /// Last call reached the server: flips log one line per outage, not one per call.
    healthy: AtomicBool,
}

impl RedisStore {
    pub(crate) fn connect(config: RedisConfig, rt: &tokio::runtime::Handle) -> Result<Self, StateStoreError> {
        let client = config.client()?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.read_timeout))
            // Reconnects are retried briefly; a call never waits longer than the read timeout
            // anyway, and the next call after a failed reconnect starts another.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let url = config.url.clone();
        let connect = async move {
            tokio::time::timeout(
                config.connect_timeout,
                ConnectionManager::new_with_config(client, manager),
            )
            .await
        };
        let conn = match rt.block_on(connect) {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(StateStoreError::Unavailable {
                    url,
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(StateStoreError::Unavailable {
                    url,
                    reason: format!("no connection within {:?}", config.connect_timeout),
                })
            }
        };
        Ok(Self {
            conn,
            rt: rt.clone(),
            url,
            read_timeout: config.read_timeout,
            set: Arc::new(Script::new(&format!("{OLDER}{SET}"))),
            del: Arc::new(Script::new(&format!("{OLDER}{DEL}"))),
            healthy: AtomicBool::new(true),
        })
    }

    fn error(&self, e: RedisError) -> StateStoreError {
        if e.is_timeout() {
            StateStoreError::Timeout {
                url: self.url.clone(),
                after: self.read_timeout,
            }
        } else if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            StateStoreError::Unavailable {
                url: self.url.clone(),
                reason: e.to_string(),
            }
        } else {
            self.protocol(e.to_string())
        }
    }

    fn protocol(&self, reason: String) -> StateStoreError {
        StateStoreError::Protocol {
            url: self.url.clone(),
            reason,
        }
    }

    /// Runs `f` on the runtime and waits for it here, at most the read timeout (plus a margin,
    /// should the runtime itself be gone); logs once when the server is lost and once when it
    /// is back.
    fn call<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, RedisError>> + Send + 'static,
    ) -> Result<T, StateStoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let timeout = self.read_timeout;
        self.rt.spawn(async move {
            let _ = tx.send(tokio::time::timeout(timeout, f).await);
        });
        let timed_out = || StateStoreError::Timeout {
            url: self.url.clone(),
            after: timeout,
        };
        let r = match rx.recv_timeout(timeout + Duration::from_secs(1)) {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(self.error(e)),
            Ok(Err(_elapsed)) => Err(timed_out()),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(timed_out()),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(StateStoreError::Unavailable {
                url: self.url.clone(),
                reason: "the process is shutting down".into(),
            }),
        };
        match &r {
            Err(e @ (StateStoreError::Unavailable { .. } | StateStoreError::Timeout { .. })) => {
                if self.healthy.swap(false, Ordering::Relaxed) {
                    tracing::warn!("{e}; state-store calls fail until it answers again (reconnecting)");
                }
            }
            _ => {
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!("state store {} answers again", self.url);
                }
            }
        }
        r
    }

    pub(crate) async fn ping(&self) -> Result<(), StateStoreError> {
        let mut conn = self.conn.clone();
        let pinged = tokio::time::timeout(self.read_timeout, async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await;
        match pinged {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.error(e)),
            Err(_) => Err(StateStoreError::Timeout {
                url: self.url.clone(),
                after: self.read_timeout,
            }),
        }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<GetResponse, StateStoreError> {
        let mut conn = self.conn.clone();
        let cmd = {
            let mut c = redis::cmd("HMGET");
            c.arg(key).arg("v").arg("s").arg("ns").arg("c");
            c
        };
        let fields: Vec<Option<Vec<u8>>> = self
            .call(async move { cmd.query_async(&mut conn).await })
            .map_err(|e| self.about_key(e, key))?;
        let [value, s, ns, c] = <[Option<Vec<u8>>; 4]>::try_from(fields)
            .map_err(|f| self.protocol(format!("HMGET answered {} fields, not 4", f.len())))?;
        let Some(value) = value else {
            return Ok(GetResponse::ABSENT);
        };
        let version = self.version(key, [s, ns, c])?;
        Ok(GetResponse {
            value: Some(value),
            version: Some(to_hlc(version)),
        })
    }

    pub(crate) fn set(
        &self,
        key: &[u8],
        value: &[u8],
        fence: Option<&Hlc>,
        cond: SetCondition,
        expires: Option<Duration>,
    ) -> Result<SetResponse, StateStoreError> {
        let condition = match cond {
            SetCondition::OnlyIfDoesNotExist => "nx",
            SetCondition::OnlyIfEqualOrDoesNotExist => "eq",
            SetCondition::Unconditional => "any",
        };
        // A sub-millisecond expiry still expires (0 would mean "never").
        let ttl_ms = expires.map_or(0, |d| d.as_millis().clamp(1, i64::MAX as u128) as i64);
        let mut args = vec![
            value.to_vec(),
            condition.as_bytes().to_vec(),
            ttl_ms.to_string().into_bytes(),
        ];
        args.extend(fence_args(fence));
        let answer = self.script(&self.set, vec![key.to_vec(), CLOCK_KEY.as_bytes().to_vec()], args, key)?;
        match answer.split_first() {
            Some((tag, rest)) if tag == b"done" => Ok(SetResponse {
                done: true,
                version: Some(to_hlc(self.version(key, rest.iter().cloned().map(Some))?)),
            }),
            Some((tag, _)) if tag == b"refused" => Ok(SetResponse::REFUSED),
            Some((tag, rest)) if tag == b"stale" => Err(self.stale(key, rest, fence)),
            _ => Err(self.unexpected(key, &answer)),
        }
    }

    pub(crate) fn delete(
        &self,
        key: &[u8],
        expect: Option<&[u8]>,
        fence: Option<&Hlc>,
    ) -> Result<DelResponse, StateStoreError> {
        let mut args = vec![
            if expect.is_some() { b"1".to_vec() } else { b"0".to_vec() },
            expect.unwrap_or_default().to_vec(),
        ];
        args.extend(fence_args(fence));
        let answer = self.script(&self.del, vec![key.to_vec()], args, key)?;
        let deleted = match answer.split_first() {
            Some((tag, _)) if tag == b"deleted" => 1,
            Some((tag, _)) if tag == b"absent" => 0,
            Some((tag, _)) if tag == b"mismatch" => -1,
            Some((tag, rest)) if tag == b"stale" => return Err(self.stale(key, rest, fence)),
            _ => return Err(self.unexpected(key, &answer)),
        };
        Ok(DelResponse { deleted })
    }

    /// Runs one of the scripts (by its SHA, loading it first when the server does not have
    /// it: after a restart, say) and returns its answer as byte strings.
    fn script(
        &self,
        script: &Arc<Script>,
        keys: Vec<Vec<u8>>,
        args: Vec<Vec<u8>>,
        key: &[u8],
    ) -> Result<Vec<Vec<u8>>, StateStoreError> {
        let (script, mut conn) = (script.clone(), self.conn.clone());
        self.call(async move {
            let mut inv = script.prepare_invoke();
            for k in &keys {
                inv.key(k.as_slice());
            }
            for a in &args {
                inv.arg(a.as_slice());
            }
            inv.invoke_async(&mut conn).await
        })
        .map_err(|e| self.about_key(e, key))
    }

    /// A protocol error (a key of another type, say) names the key.
    fn about_key(&self, e: StateStoreError, key: &[u8]) -> StateStoreError {
        match e {
            StateStoreError::Protocol { url, reason } => StateStoreError::Protocol {
                url,
                reason: format!("key `{}`: {reason}", String::from_utf8_lossy(key)),
            },
            other => other,
        }
    }

    fn version(
        &self,
        key: &[u8],
        fields: impl IntoIterator<Item = Option<Vec<u8>>>,
    ) -> Result<Version, StateStoreError> {
        let mut it = fields.into_iter().map(|f| {
            f.and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<u64>().ok())
        });
        match (it.next().flatten(), it.next().flatten(), it.next().flatten()) {
            (Some(s), Some(ns), Some(c)) if ns < 1_000_000_000 => Ok((s, ns as u32, c)),
            _ => Err(self.protocol(format!(
                "key `{}` holds no readable version (not written by wasmflow?)",
                String::from_utf8_lossy(key)
            ))),
        }
    }

    fn stale(&self, key: &[u8], current: &[Vec<u8>], given: Option<&Hlc>) -> StateStoreError {
        match self.version(key, current.iter().cloned().map(Some)) {
            Ok(cur) => match crate::check_fence(cur, given) {
                Err(e) => e,
                // The server and this client disagree on the rule: report what came back.
                Ok(()) => self.unexpected(key, current),
            },
            Err(e) => e,
        }
    }

    fn unexpected(&self, key: &[u8], answer: &[Vec<u8>]) -> StateStoreError {
        let shown: Vec<String> = answer.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
        self.protocol(format!(
            "unexpected script answer {shown:?} for key `{}`",
            String::from_utf8_lossy(key)
        ))
    }
}

/// The three numbers of a fencing token after a `1`, or `0` and three zeros.
fn fence_args(fence: Option<&Hlc>) -> [Vec<u8>; 4] {
    match fence {
        Some(f) => [
            b"1".to_vec(),
            f.secs.to_string().into_bytes(),
            f.nanos.to_string().into_bytes(),
            f.counter.to_string().into_bytes(),
        ],
        None => [b"0".to_vec(), b"0".to_vec(), b"0".to_vec(), b"0".to_vec()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_passwords_refused() {
        let ok = RedisConfig::new("redis://127.0.0.1:6379/2").unwrap();
        assert_eq!(ok.display_url(), "redis://127.0.0.1:6379/2");
        assert_eq!(ok.username, None);
        let user = RedisConfig::new("rediss://svc@redis.example:6380").unwrap();
        assert_eq!(user.username.as_deref(), Some("svc"));
        let err = RedisConfig::new("redis://svc:hunter2@127.0.0.1:6379")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--state-password-file") && !err.contains("hunter2"),
            "{err}"
        );
        for (bad, why) in [
            ("http://127.0.0.1:6379", "scheme"),
            ("redis://127.0.0.1:6379/x", "database number"),
            ("redis://127.0.0.1:6379/0?protocol=resp3", "query"),
            ("not a url", "not a URL"),
        ] {
            let err = RedisConfig::new(bad).unwrap_err().to_string();
            assert!(err.contains(why) && err.contains("--state"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_config_never_prints_its_password() {
        let mut c = RedisConfig::new("redis://127.0.0.1:6379").unwrap();
        c.password = Some("hunter2".into());
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
