//! End to end through a real mosquitto (started by the tests on a free loopback port): the
//! `wasmflow` binary bound with `--mqtt/--source/--sink`, real modules from `target/modules`.

use std::time::Duration;

use crate::support::mosquitto::{user_prop, Client, Mosquitto};
use crate::support::process::Wasmflow;
use crate::support::{module, OutputExt};

/// Waits until the run says the graph is bound (subscribed), then one round trip more for the
/// subscription to follow the connection.
/// Until the source's subscription is active: what is published before would be lost to a
/// session the broker does not know yet.
fn wait_bound(wf: &mut Wasmflow) {
    wf.wait_for_log("MQTT source subscribed", Duration::from_secs(60));
}

pub(crate) const SIMPLE: &str = "compose/tests/azure-compat/graph-simple.yaml";

/// `wasmflow run ARGS`, which must give up with exit code 1 within `within`; its log.
fn run_failing(args: &[&str], within: Duration) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut wf = Wasmflow::start(data.path(), args);
    let status = wf
        .wait(within)
        .unwrap_or_else(|| panic!("still running after {within:?}:\n{}", wf.log()));
    assert_eq!(status.code(), Some(1), "{}", wf.log());
    wf.log()
}

/// `wasmflow run GRAPH --mqtt URL --source in --sink out EXTRA…`, once bound; the data directory
/// lives as long as the process.
fn run_in_out(graph: &str, url: &str, extra: &[&str]) -> (tempfile::TempDir, Wasmflow) {
    let data = tempfile::tempdir().unwrap();
    let mut args = vec![graph, "--mqtt", url, "--source", "in", "--sink", "out"];
    args.extend_from_slice(extra);
    let mut wf = Wasmflow::start(data.path(), &args);
    wait_bound(&mut wf);
    (data, wf)
}

fn fahrenheit(v: f64) -> String {
    format!("{{\"temperature\":{{\"value\":{v},\"unit\":\"F\"}}}}")
}

fn celsius_of(p: &rumqttc::v5::mqttbytes::v5::Publish) -> f64 {
    let v: serde_json::Value = serde_json::from_slice(&p.payload).expect("JSON payload");
    assert_eq!(v["temperature"]["unit"], "C", "{v}");
    v["temperature"]["value"].as_f64().expect("a number")
}

#[test]
fn a_graph_converts_what_it_reads_from_wildcard_topics_and_carries_properties() {
    module("temperature");
    let broker = Mosquitto::start();
    let data = tempfile::tempdir().unwrap();
    let url = broker.url();
    let mut wf = Wasmflow::start(
        data.path(),
        &[
            SIMPLE,
            "--mqtt",
            &url,
            "--source",
            "sensor/+/raw",
            "--sink",
            "sensor/processed",
        ],
    );
    wait_bound(&mut wf);
    let c = Client::connect(broker.port, "test-collector", &["sensor/processed"]);
    c.publish(
        "sensor/a/raw",
        &fahrenheit(212.0),
        vec![("seq", "1"), ("__ts", "000001700000000:00000:sensor-a")],
        Some("application/json"),
    );
    c.publish(
        "sensor/b/raw",
        &fahrenheit(32.0),
        vec![("seq", "2"), ("__ts", "not a timestamp")],
        None,
    );
    c.publish("other/topic", &fahrenheit(50.0), vec![("seq", "3")], None);
    let got = c.wait_for(2, Duration::from_secs(20));
    assert_eq!(got.len(), 2, "two messages match sensor/+/raw: {got:?}\n{}", wf.log());
    std::thread::sleep(Duration::from_millis(300));
    let got = c.received.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "other/topic must not be read: {got:?}");
    let by_seq = |s: &str| {
        got.iter()
            .find(|p| user_prop(p, "seq") == Some(s))
            .expect("seq carried")
    };
    let a = by_seq("1");
    assert_eq!(celsius_of(a), 100.0);
    assert_eq!(&a.topic[..], b"sensor/processed");
    assert_eq!(
        user_prop(a, "__ts"),
        Some("000001700000000:00000:sensor-a"),
        "event time kept"
    );
    assert_eq!(
        a.properties.as_ref().and_then(|p| p.content_type.as_deref()),
        Some("application/json")
    );
    let b = by_seq("2");
    assert_eq!(celsius_of(b), 0.0);
    let ts = user_prop(b, "__ts").expect("__ts written");
    assert_ne!(ts, "not a timestamp", "a malformed __ts is replaced by arrival time");
    let ms: u64 = ts.split(':').next().unwrap().parse().expect("ms");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(now.abs_diff(ms) < 60_000, "arrival time, got {ts}");
    assert!(
        wf.log().contains("using arrival time"),
        "the malformed __ts is logged:\n{}",
        wf.log()
    );
}

/// `program` (`mosquitto_sub` or `mosquitto_pub`) pointed at `topic` on the local broker at `port`.
fn mosquitto_client(program: &str, port: u16, topic: &str) -> std::process::Command {
    let mut c = std::process::Command::new(program);
    c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", topic]);
    c
}

/// `mosquitto_sub` waiting for one message on `topic` at `port`, printing it as `FORMAT`.
fn mosquitto_sub(port: u16, topic: &str, extra: &[&str]) -> std::process::Child {
    mosquitto_client("mosquitto_sub", port, topic)
        .args(["-C", "1", "-W", "60"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (apt-get install mosquitto-clients)")
}

fn mosquitto_pub(port: u16, topic: &str, message: &str, extra: &[&str]) {
    mosquitto_client("mosquitto_pub", port, topic)
        .args(["-m", message, "-q", "1"])
        .args(extra)
        .output()
        .expect("mosquitto_pub")
        .succeeded("mosquitto_pub");
}

fn stdout_of(child: std::process::Child) -> String {
    let out = child
        .wait_with_output()
        .expect("mosquitto_sub ran")
        .succeeded("mosquitto_sub");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Issue 4's bare-machine promise: `wasmflow run graphs/temperature.yaml` with no broker starts
/// its own, and the README's `mosquitto_pub`/`mosquitto_sub` lines work against it, MQTT 3.1.1
/// (the clients' default) and MQTT 5 side by side. rumqttd alone would kill the 3.1.1
/// subscriber's connection on the first message carrying `__ts` (src/broker.rs).
#[test]
fn with_no_broker_an_embedded_one_serves_mqtt_3_and_5_clients() {
    module("temperature");
    module("window");
    let data = tempfile::tempdir().unwrap();
    let port = crate::support::mosquitto::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut wf = Wasmflow::start(
        data.path(),
        &["graphs/temperature.yaml", "--listen", &listen, "--idle-ms", "200"],
    );
    wait_bound(&mut wf);
    assert!(wf.log().contains("embedded MQTT broker"), "{}", wf.log());
    let v311 = mosquitto_sub(port, "wasmflow/out", &[]);
    let v5 = mosquitto_sub(port, "wasmflow/out", &["-V", "mqttv5", "-F", "%P %p"]);
    std::thread::sleep(Duration::from_millis(500));
    // Event time 1_700_000_004_000 ms falls in the 10 s window ending at 1_700_000_010_000.
    mosquitto_pub(
        port,
        "wasmflow/in",
        &fahrenheit(1209.0),
        &[
            "-V",
            "mqttv5",
            "-D",
            "PUBLISH",
            "user-property",
            "__ts",
            "1700000004000:0:test",
        ],
    );
    let expected = (1209.0 - 32.0) * 5.0 / 9.0;
    let plain = stdout_of(v311);
    let v: serde_json::Value = serde_json::from_str(plain.trim()).expect("one JSON line");
    assert_eq!(v["temperature"]["unit"], "C", "{plain}\n{}", wf.log());
    assert_eq!(v["temperature"]["value"].as_f64(), Some(expected), "{plain}");
    let with_props = stdout_of(v5);
    let (props, payload) = with_props.trim().split_once(' ').expect("properties, then payload");
    assert!(
        props.starts_with("__ts:001700000010000:"),
        "the window's end is the event time: {with_props}"
    );
    assert_eq!(payload, plain.trim(), "both versions get the same payload");
    // A 3.1.1 publisher (no properties) is read too: arrival time, same conversion.
    let again = mosquitto_sub(port, "wasmflow/out", &[]);
    std::thread::sleep(Duration::from_millis(500));
    mosquitto_pub(port, "wasmflow/in", &fahrenheit(32.0), &[]);
    let v: serde_json::Value = serde_json::from_str(stdout_of(again).trim()).expect("JSON");
    assert_eq!(v["temperature"]["value"].as_f64(), Some(0.0), "{v}");
}

#[test]
fn an_unreachable_broker_at_start_is_a_clear_error() {
    module("temperature");
    let port = crate::support::mosquitto::free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let log = run_failing(
        &[SIMPLE, "--mqtt", &url, "--connect-timeout-secs", "2"],
        Duration::from_secs(60),
    );
    assert!(
        log.contains(&format!("cannot connect to {url}")) && log.contains("gave up after"),
        "{log}"
    );
}

pub(crate) fn reading(i: usize) -> String {
    fahrenheit(32.0 + (i % 1000) as f64)
}

/// Waits until every seq in `0..n` arrived at `c` (or `timeout`); returns (missing, duplicates).
pub(crate) fn await_all(c: &Client, n: usize, timeout: Duration) -> (Vec<usize>, usize) {
    let until = std::time::Instant::now() + timeout;
    loop {
        let (seen, dups) = c.seqs();
        if seen.len() >= n || std::time::Instant::now() >= until {
            let missing: Vec<usize> = (0..n).filter(|i| !seen.contains(i)).collect();
            return (missing, dups);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (a) of the delivery guarantee: `kill -9` of the runtime at a random moment while 10,000
/// QoS 1 messages flow, then a restart on the same data directory and client id: every
/// input's output arrives at least once. Duplicates are counted and reported.
#[test]
fn kill_9_mid_stream_then_restart_loses_nothing() {
    module("temperature");
    let broker = Mosquitto::start();
    let data = tempfile::tempdir().unwrap();
    let url = broker.url();
    let args = [
        SIMPLE,
        "--mqtt",
        &url,
        "--source",
        "in/+",
        "--sink",
        "out",
        "--client-id",
        "wf-kill",
    ];
    let mut wf = Wasmflow::start(data.path(), &args);
    wait_bound(&mut wf);
    let collector = Client::connect(broker.port, "kill-collector", &["out"]);
    let publisher = Client::connect(broker.port, "kill-publisher", &[]);
    const N: usize = 10_000;
    publisher.publish_many("in/a", N, 5, reading);
    // A random moment while messages flow (2,000 ms of publishing at 5/ms).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let at = Duration::from_millis(100 + nanos % 1500);
    std::thread::sleep(at);
    let before = collector.seqs().0.len();
    wf.kill9();
    eprintln!("killed after {at:?}: {before} outputs had arrived");
    assert_eq!(
        publisher.wait_pubacks(N, Duration::from_secs(60)),
        N,
        "the broker took every input"
    );
    let mut wf = Wasmflow::start(data.path(), &args);
    let (missing, dups) = await_all(&collector, N, Duration::from_secs(90));
    eprintln!(
        "kill -9 at {at:?}: {} of {N} inputs arrived, {dups} duplicates",
        N - missing.len()
    );
    assert!(
        missing.is_empty(),
        "{} inputs lost (first: {:?})\nwasmflow log:\n{}\nmosquitto log:\n{}",
        missing.len(),
        &missing[..missing.len().min(10)],
        wf.log(),
        broker.log()
    );
    assert!(wf.wait(Duration::from_millis(10)).is_none(), "still running");
}

/// (b): the broker stops for 5 s mid-stream and comes back (with its persisted sessions): the
/// runtime reconnects with backoff and nothing is lost.
#[test]
fn a_broker_restart_mid_stream_loses_nothing() {
    module("temperature");
    let mut broker = Mosquitto::start();
    let data = tempfile::tempdir().unwrap();
    let url = broker.url();
    let mut wf = Wasmflow::start(
        data.path(),
        &[
            SIMPLE,
            "--mqtt",
            &url,
            "--source",
            "in/+",
            "--sink",
            "out",
            "--client-id",
            "wf-restart",
        ],
    );
    wait_bound(&mut wf);
    let collector = Client::connect(broker.port, "restart-collector", &["out"]);
    let publisher = Client::connect(broker.port, "restart-publisher", &[]);
    const N: usize = 4_000;
    publisher.publish_many("in/a", N, 1, reading);
    std::thread::sleep(Duration::from_millis(1500));
    broker.stop();
    std::thread::sleep(Duration::from_secs(5));
    broker.resume();
    let (missing, dups) = await_all(&collector, N, Duration::from_secs(60));
    eprintln!(
        "broker restart: {} of {N} arrived, {dups} duplicates",
        N - missing.len()
    );
    let log = wf.log();
    assert!(
        missing.is_empty(),
        "{} lost (first: {:?})\nwasmflow log:\n{log}\nmosquitto log:\n{}",
        missing.len(),
        &missing[..missing.len().min(10)],
        broker.log()
    );
    assert!(log.contains("MQTT source reconnected"), "{log}");
    assert!(log.contains("retrying in"), "backoff is logged: {log}");
}

/// Issue 18, read timeout: a broker that keeps the connection open but stops answering (here a
/// proxy that swallows everything on the connections it carries) is taken for gone after the
/// keep-alive (`--mqtt-keep-alive-secs 5`: a ping unanswered by the next one), and the run
/// reconnects; the reading sent into the silence arrives through the new connection. With the
/// default 30 s it would take a minute, past this test's bound.
#[test]
fn a_broker_that_goes_silent_is_left_after_the_read_timeout() {
    module("temperature");
    let broker = Mosquitto::start();
    let proxy = crate::support::proxy::SilentProxy::start(broker.port);
    let url = format!("mqtt://127.0.0.1:{}", proxy.port);
    let (_data, wf) = run_in_out(
        SIMPLE,
        &url,
        &["--mqtt-keep-alive-secs", "5", "--client-id", "wf-silent"],
    );
    let c = Client::connect(broker.port, "silent-test", &["out"]);
    c.publish("in", &fahrenheit(212.0), vec![], None);
    assert_eq!(c.wait_for(1, Duration::from_secs(20)).len(), 1, "{}", wf.log());
    let before = proxy.accepted();
    proxy.silence_existing();
    c.publish("in", &fahrenheit(32.0), vec![], None);
    let got = c.wait_for(2, Duration::from_secs(40));
    let log = wf.log();
    assert_eq!(got.len(), 2, "the second reading arrives after a reconnect:\n{log}");
    assert!(celsius_of(&got[1]).abs() < 1e-9, "{:?}", got[1]);
    assert!(proxy.accepted() > before, "a new connection was made:\n{log}");
    assert!(log.contains("MQTT source reconnected"), "{log}");
}

/// Issue 4: `--mqtt-version 3.1.1` for brokers that speak nothing newer. mosquitto logs each
/// client's protocol (`p2` is 3.1.1, `p5` is 5), so the test sees what was spoken.
#[test]
fn mqtt_3_1_1_is_spoken_when_asked() {
    module("temperature");
    let broker = Mosquitto::with_config(
        crate::support::mosquitto::Limits::default(),
        "allow_anonymous true\nlog_type notice",
    );
    let (_data, wf) = run_in_out(SIMPLE, &broker.url(), &["--mqtt-version", "3.1.1"]);
    let sub = mosquitto_sub(broker.port, "out", &[]);
    std::thread::sleep(Duration::from_millis(500));
    mosquitto_pub(broker.port, "in", &fahrenheit(212.0), &[]);
    let v: serde_json::Value = serde_json::from_str(stdout_of(sub).trim()).expect("JSON");
    assert_eq!(v["temperature"]["value"].as_f64(), Some(100.0), "{v}\n{}", wf.log());
    let log = broker.log();
    let ours: Vec<&str> = log.lines().filter(|l| l.contains(" as wasmflow-")).collect();
    assert_eq!(ours.len(), 2, "the source and the sink connected once each:\n{log}");
    assert!(ours.iter().all(|l| l.contains("(p2,")), "both speak 3.1.1:\n{log}");
}

/// Issue 4: a shared subscription (`$share/GROUP/…`) splits the readings between two runtimes;
/// without it each would convert every reading and the sink would see each twice.
#[test]
fn two_runtimes_on_a_shared_subscription_convert_each_reading_once() {
    module("temperature");
    let broker = Mosquitto::start();
    let url = broker.url();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = |id: &'static str| {
        [
            SIMPLE,
            "--mqtt",
            &url,
            "--source",
            "$share/wf/sensor/+/raw",
            "--sink",
            "out",
            "--client-id",
            id,
        ]
        .map(str::to_owned)
    };
    let (a1, a2) = (args("wf-a"), args("wf-b"));
    let mut w1 = Wasmflow::start(d1.path(), &a1.each_ref().map(String::as_str));
    let mut w2 = Wasmflow::start(d2.path(), &a2.each_ref().map(String::as_str));
    wait_bound(&mut w1);
    wait_bound(&mut w2);
    let c = Client::connect(broker.port, "test-shared", &["out"]);
    const N: usize = 40;
    for i in 0..N {
        c.publish("sensor/x/raw", &reading(i), vec![("seq", &i.to_string())], None);
    }
    let (missing, dups) = await_all(&c, N, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    let got = c.received.lock().unwrap().len();
    assert!(missing.is_empty(), "missing {missing:?}\n{}\n{}", w1.log(), w2.log());
    assert_eq!((got, dups), (N, 0), "each reading converted once");
}

/// Issue 4, bad input: an item the operator rejects goes to `--dead-letter-topic` with the error
/// and the operation in user properties, and the graph goes on with the next one.
#[test]
fn a_rejected_item_goes_to_the_dead_letter_topic() {
    let h = crate::support::Harness::new();
    let graph = crate::support::faulty_map_graph(&h);
    let broker = Mosquitto::start();
    let graph = graph.to_str().expect("UTF-8 path");
    let (_data, wf) = run_in_out(graph, &broker.url(), &["--dead-letter-topic", "dead"]);
    let c = Client::connect(broker.port, "test-dead-letters", &["out", "dead"]);
    c.publish("in", r#"{"fault":"err"}"#, vec![("seq", "1")], None);
    c.publish("in", r#"{"reading":2}"#, vec![("seq", "2")], None);
    let got = c.wait_for(2, Duration::from_secs(20));
    assert_eq!(got.len(), 2, "{got:?}\n{}", wf.log());
    let dead = got.iter().find(|p| &p.topic[..] == b"dead").expect("a dead letter");
    assert_eq!(&dead.payload[..], br#"{"fault":"err"}"#, "the item as it came");
    assert_eq!(user_prop(dead, "seq"), Some("1"));
    assert_eq!(user_prop(dead, "operation"), Some("faulty/map"));
    assert!(user_prop(dead, "error").is_some_and(|e| !e.is_empty()), "{dead:?}");
    let out = got.iter().find(|p| &p.topic[..] == b"out").expect("the good item");
    assert_eq!(user_prop(out, "seq"), Some("2"));
}

/// On the embedded broker, an operator that panics: its message (written to the module's
/// standard error, which once crashed the run from inside the runtime) goes with the dead
/// letter, the run goes on, the dead letters share the sink's connection (two connections with
/// one client id threw each other off the broker in a loop), and nothing comes out twice.
#[test]
fn a_panicking_operator_on_the_embedded_broker_is_a_dead_letter_with_its_message() {
    let h = crate::support::Harness::new();
    let graph = crate::support::faulty_map_graph(&h);
    let data = tempfile::tempdir().unwrap();
    let (mut wf, port) = Wasmflow::on_embedded_broker(
        data.path(),
        graph.to_str().expect("UTF-8 path"),
        &["--dead-letter-topic", "dead"],
    );
    let c = Client::connect(port, "test-panics", &["out", "dead"]);
    c.publish("in", r#"{"reading":1}"#, vec![("seq", "1")], None);
    c.publish("in", r#"{"fault":"panic"}"#, vec![("seq", "2")], None);
    c.publish("in", r#"{"reading":3}"#, vec![("seq", "3")], None);
    let got = c.wait_for(3, Duration::from_secs(30));
    assert_eq!(got.len(), 3, "{got:?}\n{}", wf.log());
    let dead = got.iter().find(|p| &p.topic[..] == b"dead").expect("a dead letter");
    assert_eq!(user_prop(dead, "seq"), Some("2"));
    let error = user_prop(dead, "error").unwrap_or_default();
    assert!(error.contains(faulty::PANIC_MESSAGE), "{error}");
    let outs: Vec<_> = got
        .iter()
        .filter(|p| &p.topic[..] == b"out")
        .map(|p| user_prop(p, "seq"))
        .collect();
    assert_eq!(outs, [Some("1"), Some("3")]);
    let more = c.wait_for(4, Duration::from_secs(2));
    assert_eq!(more.len(), 3, "nothing delivered twice: {more:?}");
    let log = wf.log();
    assert!(!log.contains("Duplicate client_id"), "{log}");
    assert!(wf.wait(Duration::from_millis(1)).is_none(), "still running:\n{log}");
}

/// Runs `program args` and fails the test with its stderr if it fails.
fn run_tool(program: &str, args: &[&str]) {
    std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
        .succeeded(format_args!("{program} {args:?}"));
}

/// A directory mosquitto (which drops to its own user) can read.
fn secrets_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    d
}

fn readable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
}

/// Issue 4: username and password, the password from a file (never the command line); a wrong
/// one is refused at once with the broker's reason, not retried until the timeout.
#[test]
fn a_password_from_a_file_logs_in_and_a_wrong_one_is_a_clear_error() {
    module("temperature");
    let secrets = secrets_dir();
    let passwd = secrets.path().join("passwd");
    let passwd_s = passwd.to_str().unwrap();
    run_tool("mosquitto_passwd", &["-b", "-c", passwd_s, "wasmflow", "s3cret"]);
    run_tool("mosquitto_passwd", &["-b", passwd_s, "tester", "t3st"]);
    readable(&passwd);
    let broker = Mosquitto::with_config(
        crate::support::mosquitto::Limits::default(),
        &format!("allow_anonymous false\npassword_file {passwd_s}"),
    );
    let url = broker.url();
    let good = secrets.path().join("good");
    std::fs::write(&good, "s3cret\n").unwrap();
    let login = |file: &std::path::Path| {
        let file = file.to_str().expect("UTF-8 path").to_owned();
        [
            "--mqtt-username".to_owned(),
            "wasmflow".into(),
            "--mqtt-password-file".into(),
            file,
        ]
    };
    let good_login = login(&good);
    let (_data, wf) = run_in_out(SIMPLE, &url, &good_login.each_ref().map(String::as_str));
    let creds = ["-u", "tester", "-P", "t3st"];
    let sub = mosquitto_sub(broker.port, "out", &creds);
    std::thread::sleep(Duration::from_millis(500));
    mosquitto_pub(broker.port, "in", &fahrenheit(212.0), &creds);
    let v: serde_json::Value = serde_json::from_str(stdout_of(sub).trim()).expect("JSON");
    assert_eq!(v["temperature"]["value"].as_f64(), Some(100.0), "{v}");
    drop(wf);

    let bad = secrets.path().join("bad");
    std::fs::write(&bad, "guess").unwrap();
    let bad_login = login(&bad);
    let mut args = vec![SIMPLE, "--mqtt", &url];
    args.extend(bad_login.iter().map(String::as_str));
    // Refused at once, not after the 10 s of retries an unreachable broker gets.
    let log = run_failing(&args, Duration::from_secs(8));
    assert!(
        log.contains(&format!("cannot connect to {url}")) && log.contains("refused"),
        "{log}"
    );
    assert!(!log.contains("guess"), "the password is never logged:\n{log}");
}

/// Issue 4: TLS with the site's CA and a client certificate (mutual TLS), files made by
/// `openssl` for the test; without the client certificate the broker refuses the connection.
#[test]
fn mutual_tls_with_a_ca_file_and_a_client_certificate() {
    module("temperature");
    let secrets = secrets_dir();
    let pki = crate::support::pki::make_pki(secrets.path());
    let p = |f: &str| pki.join(f).to_str().unwrap().to_owned();
    for f in ["ca.crt", "server.crt", "server.key", "client.crt", "client.key"] {
        readable(&pki.join(f));
    }
    let broker = Mosquitto::with_config(
        crate::support::mosquitto::Limits::default(),
        &format!(
            "allow_anonymous true\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true",
            p("ca.crt"),
            p("server.crt"),
            p("server.key")
        ),
    );
    let url = format!("mqtts://127.0.0.1:{}", broker.port);
    let (ca, cert, key) = (p("ca.crt"), p("client.crt"), p("client.key"));
    let (_data, wf) = run_in_out(
        SIMPLE,
        &url,
        &["--mqtt-ca", &ca, "--mqtt-cert", &cert, "--mqtt-key", &key],
    );
    let tls = ["--cafile", &ca, "--cert", &cert, "--key", &key, "--insecure"];
    let sub = mosquitto_sub(broker.port, "out", &tls);
    std::thread::sleep(Duration::from_millis(500));
    mosquitto_pub(broker.port, "in", &fahrenheit(32.0), &tls);
    let v: serde_json::Value = serde_json::from_str(stdout_of(sub).trim()).expect("JSON");
    assert_eq!(v["temperature"]["value"].as_f64(), Some(0.0), "{v}");
    drop(wf);

    // Without the client certificate the broker refuses the handshake.
    let log = run_failing(
        &[SIMPLE, "--mqtt", &url, "--mqtt-ca", &ca, "--connect-timeout-secs", "2"],
        Duration::from_secs(30),
    );
    assert!(log.contains(&format!("cannot connect to {url}")), "{log}");
}
