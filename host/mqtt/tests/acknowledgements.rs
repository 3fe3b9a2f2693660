//! The source acknowledges what the runtime finishes out of order without losing its
//! connection: against the embedded broker (rumqttd drops a client whose PUBACK is not for its
//! oldest unacknowledged publication, and then delivers everything again).

use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use tokio::sync::{mpsc, watch};
use wasmflow_mqtt::broker::EmbeddedBroker;
use wasmflow_mqtt::{MqttConfig, MqttSource};
use wasmflow_transport::{Inbound, Source};

fn free_addr() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address")
}

async fn publish(url_port: u16, payloads: &[&str]) {
    let mut o = rumqttc::v5::MqttOptions::new("publisher", "127.0.0.1", url_port);
    o.set_keep_alive(Duration::from_secs(5));
    let (c, mut el) = rumqttc::v5::AsyncClient::new(o, 16);
    for p in payloads {
        c.publish("in", QoS::AtLeastOnce, false, p.as_bytes().to_vec())
            .await
            .expect("queued");
    }
    let mut acked = 0;
    while acked < payloads.len() {
        if let rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::PubAck(_)) =
            el.poll().await.expect("the broker answers")
        {
            acked += 1;
        }
    }
}

async fn next(rx: &mut mpsc::Receiver<Inbound>, within: Duration) -> Option<Inbound> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_finished_in_reverse_order_are_not_delivered_again() {
    let broker = EmbeddedBroker::start(free_addr(), &tokio::runtime::Handle::current()).expect("broker");
    let source = MqttSource::new(
        MqttConfig::new(&broker.url(), "in-order").expect("config"),
        vec!["in".into()],
    )
    .expect("source");
    let (tx, mut rx) = mpsc::channel(16);
    let (stop, shutdown) = watch::channel(false);
    let run = tokio::spawn(Box::new(source).run(tx, shutdown));
    // The subscription is made once the source connected: wait for it by publishing until
    // something arrives.
    let mut first = None;
    for _ in 0..50 {
        publish(broker.addr().port(), &["0"]).await;
        if let Some(m) = next(&mut rx, Duration::from_millis(200)).await {
            first = Some(m);
            break;
        }
    }
    first.expect("the source subscribed").ack.ack();
    while next(&mut rx, Duration::from_millis(300)).await.is_some() {}

    publish(broker.addr().port(), &["1", "2", "3"]).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next(&mut rx, Duration::from_secs(5)).await.expect("three messages"));
    }
    let payloads: Vec<_> = got.iter().map(|m| m.input.payload.to_vec()).collect();
    assert_eq!(payloads, [b"1", b"2", b"3"]);
    for m in got.into_iter().rev() {
        m.ack.ack();
    }
    publish(broker.addr().port(), &["4"]).await;
    let m = next(&mut rx, Duration::from_secs(5)).await.expect("the fourth");
    assert_eq!(&m.input.payload[..], b"4", "nothing was delivered again before it");
    m.ack.ack();
    let again = next(&mut rx, Duration::from_secs(2)).await;
    assert!(
        again.is_none(),
        "delivered again: {:?}",
        again.map(|m| String::from_utf8_lossy(&m.input.payload).into_owned())
    );
    stop.send(true).expect("stop");
    run.await.expect("joined").expect("the source ends cleanly");
}
