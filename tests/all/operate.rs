//! Issue 17, item 5: what an orchestrator and its operator see of a `wasmflow run` process. Its
//! `--metrics` address answers `/healthz` (alive) and `/readyz` (200 only while every broker
//! connection and the state store answer, 503 naming what does not), and every metric carries
//! its `--instance`. Against a real mosquitto and a real `redis-server`, stopped and started
//! under it; asked with a plain HTTP client (`support::http`).

use std::time::{Duration, Instant};

use crate::support::http::get;
use crate::support::mosquitto::{free_port, Client, Mosquitto};
use crate::support::process::Wasmflow;
use crate::support::redis::RedisServer;

/// Asks `/readyz` until `ready` is what it answers (and the body satisfies `body`), at most
/// `within`; returns the last body.
fn await_readiness(addr: &str, ready: bool, body: impl Fn(&str) -> bool, within: Duration, wf: &Wasmflow) -> String {
    let until = Instant::now() + within;
    loop {
        let (status, text) = get(addr, "/readyz").expect("/readyz answers");
        if (status == 200) == ready && body(&text) {
            return text;
        }
        assert!(
            Instant::now() < until,
            "/readyz still {status} after {within:?}:\n{text}\n{}",
            wf.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn readyz_follows_the_broker_and_the_state_store_and_metrics_name_the_instance() {
    crate::support::module("temperature");
    let mut broker = Mosquitto::start();
    let mut redis = RedisServer::start();
    let (url, state) = (broker.url(), redis.url());
    let addr = format!("127.0.0.1:{}", free_port());
    let data = tempfile::tempdir().unwrap();
    let mut wf = Wasmflow::start(
        data.path(),
        &[
            crate::kafka::SIMPLE,
            "--mqtt",
            &url,
            "--source",
            "in",
            "--sink",
            "out",
            "--state",
            &state,
            "--metrics",
            &addr,
            "--instance",
            "edge-7",
        ],
    );
    wf.wait_for_log("MQTT source subscribed", Duration::from_secs(60));
    assert_eq!(get(&addr, "/healthz").map(|(s, _)| s), Some(200));
    let ready = await_readiness(&addr, true, |_| true, Duration::from_secs(10), &wf);
    for check in [
        format!("ok mqtt source {url}"),
        format!("ok mqtt sink {url}"),
        format!("ok state store redis ({state})"),
    ] {
        assert!(ready.contains(&check), "{check}:\n{ready}");
    }

    // One reading through, so the per-node series exist; every sample names the instance.
    let client = Client::connect(broker.port, "operate-out", &["out"]);
    client.publish("in", r#"{"temperature":{"value":212,"unit":"F"}}"#, vec![], None);
    assert_eq!(client.wait_for(1, Duration::from_secs(30)).len(), 1, "{}", wf.log());
    let (status, metrics) = get(&addr, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200);
    let samples: Vec<&str> = metrics.lines().filter(|l| l.starts_with("wasmflow_")).collect();
    assert!(
        samples.iter().any(|l| l.starts_with("wasmflow_messages_in_total")),
        "{metrics}"
    );
    for l in &samples {
        assert!(l.contains("instance=\"edge-7\""), "{l}");
    }

    redis.stop();
    let down = await_readiness(&addr, false, |_| true, Duration::from_secs(10), &wf);
    assert!(down.contains(&format!("failing state store redis ({state})")), "{down}");
    assert_eq!(get(&addr, "/healthz").map(|(s, _)| s), Some(200), "alive all the same");
    redis.resume();
    await_readiness(&addr, true, |_| true, Duration::from_secs(20), &wf);

    broker.stop();
    let down = await_readiness(
        &addr,
        false,
        |b| b.contains("failing mqtt source"),
        Duration::from_secs(20),
        &wf,
    );
    assert!(down.contains("failing mqtt sink"), "{down}");
    broker.resume();
    await_readiness(&addr, true, |_| true, Duration::from_secs(30), &wf);
    let _ = wf.wait(Duration::from_millis(10));
}
