//! Native relays for the end-to-end benches: graph-simple's logic (`temperature::map`, the rlib
//! its component is built from) between two topics, with plain clients and no WebAssembly. A
//! bench re-executes its own binary with `--native-kafka …` or `--native-mqtt …` to run one as
//! a child process ([`child_mode`]). Each prints `partitions assigned: …` (Kafka) or
//! `subscribed` (MQTT) on standard error when it is ready, as `wasmflow run` logs it.
//!
//! * Kafka: a `StreamConsumer` in a group (offsets stored after the output's delivery report,
//!   auto-committed), a `FutureProducer` with `acks=all` and idempotence: wasmflow's contract.
//! * MQTT: a rumqttc v5 client on the (shared) subscription at QoS 1 with manual acks, and a
//!   second one publishing at QoS 1; an input is acknowledged once its output is handed to the
//!   client (wasmflow waits for the output's PUBACK), so it does a little less than wasmflow.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientContext;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

/// Runs a native relay when the command line asks for one (`--native-kafka BOOTSTRAP IN OUT
/// GROUP`, `--native-mqtt PORT FILTER OUT CLIENT_ID`); `None` when it does not.
pub fn child_mode() -> Option<Result<()>> {
    let args: Vec<String> = std::env::args().collect();
    let at = |flag: &str| args.iter().position(|a| a == flag).map(|i| &args[i + 1..]);
    if let Some(a) = at("--native-kafka") {
        return Some(match a {
            [bs, input, output, group, ..] => kafka(bs, input, output, group),
            _ => Err(anyhow!("--native-kafka BOOTSTRAP IN OUT GROUP")),
        });
    }
    if let Some(a) = at("--native-mqtt") {
        return Some(match a {
            [port, filter, output, id, ..] => port
                .parse()
                .context("--native-mqtt PORT")
                .and_then(|p| mqtt(p, filter, output, id)),
            _ => Err(anyhow!("--native-mqtt PORT FILTER OUT CLIENT_ID")),
        });
    }
    None
}

fn map(payload: &[u8]) -> Result<Vec<u8>> {
    Ok(match temperature::map(payload).map_err(|e| anyhow!(e))? {
        temperature::MapOutcome::Unchanged => payload.to_vec(),
        temperature::MapOutcome::Replaced(b) => b,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Logs this member's share of the group's partitions on each rebalance.
struct AssignLog;

impl ClientContext for AssignLog {}

impl ConsumerContext for AssignLog {
    fn post_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let mut parts: Vec<String> = tpl
                .elements()
                .iter()
                .map(|e| format!("{}[{}]", e.topic(), e.partition()))
                .collect();
            parts.sort();
            eprintln!("partitions assigned: {}", parts.join(" "));
        }
    }
}

fn kafka(bootstrap: &str, input: &str, output: &str, group: &str) -> Result<()> {
    runtime()?.block_on(async {
        let consumer: StreamConsumer<AssignLog> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "10")
            .set("session.timeout.ms", "6000")
            .create_with_context(AssignLog)?;
        let consumer = Arc::new(consumer);
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create()?;
        consumer.subscribe(&[input])?;
        loop {
            let m = consumer.recv().await?;
            let out = map(m.payload().unwrap_or_default())?;
            let mut headers = OwnedHeaders::new();
            if let Some(h) = m.headers() {
                for h in h.iter() {
                    headers = headers.insert(Header {
                        key: h.key,
                        value: h.value,
                    });
                }
            }
            let mut record = FutureRecord::to(output).payload(&out).headers(headers);
            if let Some(k) = m.key() {
                record = record.key(k);
            }
            let delivery = producer.send_result(record).map_err(|(e, _)| e)?;
            let (c, topic, partition, offset) = (consumer.clone(), m.topic().to_owned(), m.partition(), m.offset());
            tokio::spawn(async move {
                if let Ok(Ok(_)) = delivery.await {
                    let _ = c.store_offset(&topic, partition, offset);
                }
            });
        }
    })
}

fn mqtt(port: u16, filter: &str, output: &str, id: &str) -> Result<()> {
    let options = |id: &str| {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30))
            .set_clean_start(false)
            .set_session_expiry_interval(Some(3600))
            .set_outgoing_inflight_upper_limit(100);
        o
    };
    runtime()?.block_on(async {
        let mut src_opts = options(id);
        src_opts.set_manual_acks(true);
        let (src, mut src_el) = AsyncClient::new(src_opts, 4096);
        let (out, mut out_el) = AsyncClient::new(options(&format!("{id}-out")), 4096);
        tokio::spawn(async move {
            loop {
                if let Err(e) = out_el.poll().await {
                    eprintln!("native relay: sink connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        src.subscribe(filter, QoS::AtLeastOnce).await?;
        loop {
            match src_el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let payload = map(&p.payload)?;
                    let properties = PublishProperties {
                        user_properties: p
                            .properties
                            .as_ref()
                            .map(|x| x.user_properties.clone())
                            .unwrap_or_default(),
                        ..Default::default()
                    };
                    out.publish_with_properties(output, QoS::AtLeastOnce, false, payload, properties)
                        .await?;
                    src.ack(&p).await?;
                }
                Ok(Event::Incoming(Packet::SubAck(s))) => {
                    if s.return_codes
                        .iter()
                        .any(|c| !matches!(c, rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)))
                    {
                        bail!("the broker refused the subscription to {filter}");
                    }
                    eprintln!("subscribed");
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("native relay: source connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}
