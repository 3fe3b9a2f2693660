//! One suite of state-store semantics (`../shared/OPERATOR-ABI.md`), run against both backends:
//! `embedded::…` on the redb store, `redis::…` on a real `redis-server` started per test on a
//! free loopback port. Then what only the Redis backend has: several clients (processes) on one
//! server, the server going away and coming back, passwords, TLS, timeouts.

use std::time::Duration;

use wasmflow_state_store::{GetResponse, SetCondition, SetResponse, StateStore, StateStoreError};
use wasmflow_wire::Hlc;

#[cfg(feature = "redis")]
#[path = "../../../tests/all/support/redis.rs"]
mod redis_server;

use SetCondition::{OnlyIfDoesNotExist as Nx, OnlyIfEqualOrDoesNotExist as Lock, Unconditional as Any};

fn value(s: &StateStore, key: &[u8]) -> Option<Vec<u8>> {
    s.get(key).unwrap().value
}

fn set_get_del_roundtrip(s: &StateStore) {
    assert_eq!(
        s.get(b"k").unwrap(),
        GetResponse {
            value: None,
            version: None
        }
    );
    let r = s.set(b"k", b"v", None, Any, None).unwrap();
    assert!(r.done && r.version.is_some());
    let g = s.get(b"k").unwrap();
    assert_eq!(g.value.as_deref(), Some(&b"v"[..]));
    assert_eq!(g.version, r.version, "get answers the version the set handed out");
    // Binary keys and values survive as they are.
    let (k, v) = (&[0u8, 255, 10, 13][..], &[1u8, 0, 2, 254][..]);
    s.set(k, v, None, Any, None).unwrap();
    assert_eq!(value(s, k).as_deref(), Some(v));
    assert_eq!(s.del(b"k", None).unwrap().deleted, 1);
    assert_eq!(s.del(b"k", None).unwrap().deleted, 0);
    assert_eq!(value(s, b"k"), None);
}

fn conditions_refuse_without_error(s: &StateStore) {
    assert!(s.set(b"k", b"first", None, Nx, None).unwrap().done);
    assert_eq!(
        s.set(b"k", b"second", None, Nx, None).unwrap(),
        SetResponse {
            done: false,
            version: None
        }
    );
    assert!(!s.set(b"k", b"other", None, Lock, None).unwrap().done);
    assert_eq!(
        value(s, b"k").as_deref(),
        Some(&b"first"[..]),
        "refusals change nothing"
    );
    assert!(
        s.set(b"k", b"first", None, Lock, None).unwrap().done,
        "same value renews"
    );
    assert!(s.set(b"k", b"third", None, Any, None).unwrap().done);
    assert_eq!(value(s, b"k").as_deref(), Some(&b"third"[..]));
}

fn lock_primitive_renews_for_holder_and_refuses_others(s: &StateStore) {
    let a = s.set(b"lock", b"A", None, Lock, None).unwrap();
    assert!(a.done);
    let b = s.set(b"lock", b"B", None, Lock, None).unwrap();
    assert_eq!(
        b,
        SetResponse {
            done: false,
            version: None
        }
    );
    let renew = s.set(b"lock", b"A", None, Lock, None).unwrap();
    assert!(renew.done);
    assert!(
        renew.version > a.version,
        "versions increase: {:?} vs {:?}",
        renew.version,
        a.version
    );
    assert!(!s.set(b"lock", b"A", None, Nx, None).unwrap().done);
}

fn older_fencing_token_is_refused(s: &StateStore) {
    let old = s.set(b"lock", b"A", None, Lock, None).unwrap().version.unwrap();
    let new = s.set(b"lock", b"A", None, Lock, None).unwrap().version.unwrap();
    assert!(new > old);
    s.set(b"counter", b"1", Some(&new), Any, None).unwrap();
    let err = s.set(b"counter", b"2", Some(&old), Any, None).unwrap_err();
    assert!(matches!(err, StateStoreError::StaleFencingToken { .. }), "{err}");
    assert!(
        err.to_string().contains(&new.to_string()),
        "names the key's token: {err}"
    );
    assert!(
        matches!(
            s.set(b"counter", b"3", None, Any, None),
            Err(StateStoreError::StaleFencingToken { .. })
        ),
        "no token at all is refused too"
    );
    assert!(matches!(
        s.del(b"counter", None),
        Err(StateStoreError::StaleFencingToken { .. })
    ));
    assert!(matches!(
        s.vdel(b"counter", b"1", Some(&old)),
        Err(StateStoreError::StaleFencingToken { .. })
    ));
    assert_eq!(value(s, b"counter").as_deref(), Some(&b"1"[..]), "nothing changed");
    // The same token, or a newer one, passes; the fence stays with the key.
    assert!(s.set(b"counter", b"4", Some(&new), Any, None).unwrap().done);
    assert!(matches!(
        s.set(b"counter", b"5", Some(&old), Any, None),
        Err(StateStoreError::StaleFencingToken { .. })
    ));
    assert_eq!(s.del(b"counter", Some(&new)).unwrap().deleted, 1);
    // Gone, the key takes any writer again.
    assert!(s.set(b"counter", b"6", None, Any, None).unwrap().done);
}

fn vdel_only_deletes_a_matching_value(s: &StateStore) {
    s.set(b"k", b"mine", None, Any, None).unwrap();
    assert_eq!(s.vdel(b"k", b"theirs", None).unwrap().deleted, -1);
    assert_eq!(value(s, b"k").as_deref(), Some(&b"mine"[..]));
    assert_eq!(s.vdel(b"k", b"mine", None).unwrap().deleted, 1);
    assert_eq!(s.vdel(b"k", b"mine", None).unwrap().deleted, 0);
}

fn expired_keys_vanish(s: &StateStore) {
    s.set(b"k", b"v", None, Any, Some(Duration::from_millis(100))).unwrap();
    assert!(value(s, b"k").is_some());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(value(s, b"k"), None);
    assert_eq!(s.del(b"k", None).unwrap().deleted, 0);
    assert!(s.set(b"k", b"w", None, Nx, None).unwrap().done);
    // A set without expiry clears an earlier one.
    s.set(b"k2", b"v", None, Any, Some(Duration::from_millis(100))).unwrap();
    s.set(b"k2", b"v", None, Any, None).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(value(s, b"k2").as_deref(), Some(&b"v"[..]));
    // An expired lock is free for the next holder, and its fence went with it.
    let t = s
        .set(b"lock", b"A", None, Lock, Some(Duration::from_millis(100)))
        .unwrap()
        .version
        .unwrap();
    s.set(b"fenced", b"1", Some(&t), Any, Some(Duration::from_millis(100)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.set(b"lock", b"B", None, Lock, None).unwrap().done);
    assert!(s.set(b"fenced", b"2", None, Any, None).unwrap().done);
}

fn seeds_from_json(s: &StateStore) {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.json");
    std::fs::write(&seed, r#"{"overtemp":"true","n":3}"#).unwrap();
    assert_eq!(s.seed_from_json(&seed).unwrap(), 2);
    assert_eq!(value(s, b"overtemp").as_deref(), Some(&b"true"[..]));
    assert_eq!(value(s, b"n").as_deref(), Some(&b"3"[..]));
    std::fs::write(&seed, "[1]").unwrap();
    let err = s.seed_from_json(&seed).unwrap_err().to_string();
    assert!(err.contains("seed.json") && err.contains("JSON object"), "{err}");
}

/// The lock protocol the enrichment operator runs, from four threads at once (clones of one
/// handle, or handles of their own: `handles` gives each thread its store): take the lock, read
/// the count, write it plus one under the fencing token, release. Every increment that
/// reported success is in the final count (none lost to a lost update), and the fencing tokens
/// handed out increase strictly in the order the count says the holders went.
fn lock_serialises_increments(handles: &[StateStore]) {
    const ROUNDS: usize = 60;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let s = handles[t % handles.len()].clone();
            std::thread::spawn(move || {
                let me = format!("holder-{t}");
                let mut counted: Vec<(u64, Hlc)> = Vec::new();
                let mut attempts = 0;
                while counted.len() < ROUNDS {
                    attempts += 1;
                    assert!(attempts < 100_000, "thread {t} never got the lock");
                    let lock = s
                        .set(b"lock", me.as_bytes(), None, Lock, Some(Duration::from_secs(10)))
                        .unwrap();
                    if !lock.done {
                        continue;
                    }
                    let token = lock.version.unwrap();
                    let n: u64 = value(&s, b"count").map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap());
                    s.set(b"count", (n + 1).to_string().as_bytes(), Some(&token), Any, None)
                        .unwrap();
                    assert_eq!(s.vdel(b"lock", me.as_bytes(), Some(&token)).unwrap().deleted, 1);
                    counted.push((n + 1, token));
                }
                counted
            })
        })
        .collect();
    let mut all: Vec<(u64, Hlc)> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let total = (ROUNDS * 4) as u64;
    assert_eq!(
        value(&handles[0], b"count").as_deref(),
        Some(total.to_string().as_bytes())
    );
    all.sort_by_key(|(n, _)| *n);
    let counts: Vec<u64> = all.iter().map(|(n, _)| *n).collect();
    assert_eq!(counts, (1..=total).collect::<Vec<_>>(), "every increment once");
    for w in all.windows(2) {
        assert!(
            w[0].1 < w[1].1,
            "tokens increase with the count: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
}

macro_rules! suite {
    ($make:expr) => {
        #[test]
        fn set_get_del_roundtrip() {
            super::set_get_del_roundtrip(&$make.0)
        }
        #[test]
        fn conditions_refuse_without_error() {
            super::conditions_refuse_without_error(&$make.0)
        }
        #[test]
        fn lock_primitive_renews_for_holder_and_refuses_others() {
            super::lock_primitive_renews_for_holder_and_refuses_others(&$make.0)
        }
        #[test]
        fn older_fencing_token_is_refused() {
            super::older_fencing_token_is_refused(&$make.0)
        }
        #[test]
        fn vdel_only_deletes_a_matching_value() {
            super::vdel_only_deletes_a_matching_value(&$make.0)
        }
        #[test]
        fn expired_keys_vanish() {
            super::expired_keys_vanish(&$make.0)
        }
        #[test]
        fn seeds_from_json() {
            super::seeds_from_json(&$make.0)
        }
        #[test]
        fn lock_serialises_increments_across_threads() {
            let s = $make;
            super::lock_serialises_increments(std::slice::from_ref(&s.0))
        }
    };
}

mod embedded {
    use super::*;

    fn store() -> (StateStore, ()) {
        (StateStore::in_memory().unwrap(), ())
    }

    suite!(store());

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let version = {
            let s = StateStore::open(&path).unwrap();
            s.set(b"overtemp", b"true", None, Any, None).unwrap().version
        };
        let s = StateStore::open(&path).unwrap();
        assert_eq!(
            s.get(b"overtemp").unwrap(),
            GetResponse {
                value: Some(b"true".to_vec()),
                version
            }
        );
        assert!(s.describe().starts_with("embedded (") && s.describe().contains("state.redb"));
    }

    #[test]
    fn a_second_process_cannot_open_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let _first = StateStore::open(&path).unwrap();
        let err = StateStore::open(&path).err().expect("the file is taken").to_string();
        assert!(err.contains("state.redb"), "{err}");
    }

    /// A data directory that cannot be made is named (a file stands where its parent would be).
    #[test]
    fn a_folder_that_cannot_be_made_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("data");
        std::fs::write(&blocker, b"a file, not a folder").unwrap();
        let err = StateStore::open(&blocker.join("state").join("state.redb"))
            .err()
            .expect("no folder under a file")
            .to_string();
        assert!(
            err.contains(&format!("creating {}", blocker.join("state").display())),
            "{err}"
        );
    }
}

#[cfg(feature = "redis")]
mod redis {
    use super::redis_server::{Options, RedisServer};
    use super::*;
    use std::time::Instant;
    use wasmflow_state_store::RedisConfig;

    /// The runtime the store's client runs on (the process's one runtime, in `wasmflow`).
    fn runtime() -> &'static tokio::runtime::Runtime {
        static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
        RT.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
        })
    }

    fn config(url: &str) -> RedisConfig {
        let mut c = RedisConfig::new(url).unwrap();
        c.connect_timeout = Duration::from_secs(2);
        c.read_timeout = Duration::from_millis(500);
        c
    }

    fn connect(server: &RedisServer) -> StateStore {
        StateStore::connect_redis(config(&server.url()), runtime().handle()).unwrap()
    }

    fn store() -> (StateStore, RedisServer) {
        let server = RedisServer::start();
        (connect(&server), server)
    }

    suite!(store());

    /// Two processes, as far as the server can tell: two clients with connections of their
    /// own. Fencing tokens handed to either increase strictly, and the lock protocol run from
    /// both keeps every increment.
    #[test]
    fn two_clients_share_one_lock_and_one_clock() {
        let server = RedisServer::start();
        let (a, b) = (connect(&server), connect(&server));
        let mut last = None;
        for i in 0..200 {
            let s = if i % 2 == 0 { &a } else { &b };
            let v = s.set(b"lock", b"x", None, Lock, None).unwrap().version.unwrap();
            assert!(last.as_ref().is_none_or(|l| &v > l), "{v} after {last:?}");
            last = Some(v);
        }
        assert!(a.del(b"lock", None).unwrap().deleted == 1);
        lock_serialises_increments(&[a, b]);
    }

    /// What an operator outside wasmflow sees: the layout is a hash per key, readable with
    /// redis-cli (an independent client).
    #[test]
    fn values_are_hashes_another_client_can_read() {
        let server = RedisServer::start();
        let s = connect(&server);
        let v = s
            .set(b"overtemp", b"true", None, Any, Some(Duration::from_secs(60)))
            .unwrap();
        assert_eq!(server.cli(&["HGET", "overtemp", "v"]), "true");
        let version = v.version.unwrap();
        assert_eq!(server.cli(&["HGET", "overtemp", "s"]), version.secs.to_string());
        let ttl: i64 = server.cli(&["PTTL", "overtemp"]).parse().unwrap();
        assert!((1..=60_000).contains(&ttl), "{ttl}");
        // Versions come from the server's clock.
        let now: u64 = server.cli(&["TIME"]).lines().next().unwrap().parse().unwrap();
        assert!(version.secs.abs_diff(now) <= 2, "{version} vs server time {now}");
    }

    #[test]
    fn a_key_of_another_kind_is_a_protocol_error_naming_it() {
        let server = RedisServer::start();
        let s = connect(&server);
        server.cli(&["RPUSH", "alist", "x"]);
        let err = s.get(b"alist").unwrap_err();
        assert!(matches!(err, StateStoreError::Protocol { .. }), "{err:?}");
        assert!(err.to_string().contains("alist"), "{err}");
        let err = s.set(b"alist", b"v", None, Any, None).unwrap_err();
        assert!(err.to_string().contains("alist"), "{err}");
    }

    /// Issue 17: Redis goes away mid-run. Calls fail with an error (not a hang) within the read
    /// timeout; once the server is back, calls succeed again on a new connection, without the
    /// caller doing anything.
    #[test]
    fn the_server_going_away_fails_calls_and_the_client_reconnects() {
        let mut server = RedisServer::start();
        let s = connect(&server);
        s.set(b"k", b"v", None, Any, None).unwrap();
        server.stop();
        for _ in 0..3 {
            let started = Instant::now();
            let err = s.get(b"k").unwrap_err();
            assert!(
                matches!(
                    err,
                    StateStoreError::Unavailable { .. } | StateStoreError::Timeout { .. }
                ),
                "{err:?}"
            );
            assert!(err.to_string().contains(&server.url()), "{err}");
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "took {:?}",
                started.elapsed()
            );
        }
        server.resume();
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            match s.set(b"k", b"again", None, Any, None) {
                Ok(r) => {
                    assert!(r.done);
                    break;
                }
                Err(e) => assert!(Instant::now() < until, "no reconnect within 10 s: {e}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(server.cli(&["HGET", "k", "v"]), "again");
        runtime().block_on(s.check()).expect("healthy again");
    }

    #[test]
    fn an_unreachable_server_fails_at_connect_naming_it() {
        let url = format!("redis://127.0.0.1:{}", redis_server::free_port());
        let started = Instant::now();
        let err = StateStore::connect_redis(config(&url), runtime().handle())
            .err()
            .expect("nothing listens there");
        assert!(matches!(err, StateStoreError::Unavailable { .. }), "{err:?}");
        assert!(err.to_string().contains(&url), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }

    /// A peer that accepts connections and never answers (a hung server): connecting gives up
    /// after the connect timeout instead of hanging.
    #[test]
    fn a_silent_peer_fails_within_the_connect_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let held = std::thread::spawn(move || listener.incoming().take(4).flatten().collect::<Vec<_>>());
        let started = Instant::now();
        let err = StateStore::connect_redis(config(&url), runtime().handle())
            .err()
            .expect("a silent peer is no server");
        assert!(err.to_string().contains(&url), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "took {:?}",
            started.elapsed()
        );
        drop(held);
    }

    #[test]
    fn a_password_protected_server_needs_the_password() {
        let server = RedisServer::with(Options {
            password: Some("s3cret".into()),
            ..Default::default()
        });
        let err = StateStore::connect_redis(config(&server.url()), runtime().handle())
            .and_then(|s| s.get(b"k").map(|_| s))
            .err()
            .expect("no password, no access");
        assert!(err.to_string().contains(&server.url()), "{err}");
        let mut c = config(&server.url());
        c.password = Some("s3cret".into());
        let s = StateStore::connect_redis(c, runtime().handle()).unwrap();
        assert!(s.set(b"k", b"v", None, Any, None).unwrap().done);
        assert_eq!(server.cli(&["HGET", "k", "v"]), "v");
    }

    #[test]
    fn tls_with_a_private_ca() {
        let server = RedisServer::with(Options {
            tls: true,
            ..Default::default()
        });
        let mut c = config(&server.url());
        c.ca = server.ca.clone();
        let s = StateStore::connect_redis(c, runtime().handle()).unwrap();
        assert!(s.set(b"k", b"over tls", None, Any, None).unwrap().done);
        assert_eq!(server.cli(&["HGET", "k", "v"]), "over tls");
        // Without the CA the server's certificate is not trusted.
        let err = StateStore::connect_redis(config(&server.url()), runtime().handle())
            .err()
            .expect("an untrusted certificate");
        assert!(err.to_string().contains(&server.url()), "{err}");
    }
}
