//! One MQTT connection, MQTT 5 or 3.1.1, seen through MQTT 5's types.
//!
//! rumqttc has a client per protocol version with types of its own. The source and sink are
//! written once, against MQTT 5's packets; a 3.1.1 connection's packets are lifted into them
//! here (no properties, every acknowledgement a success) and what they send is lowered (user
//! properties and content type dropped: 3.1.1 has nowhere to put them).

use bytes::Bytes;
use rumqttc::v5;
use rumqttc::v5::mqttbytes::v5::{
    ConnAck, ConnectReturnCode, Disconnect, DisconnectReasonCode, Filter, Packet, PingResp, PubAck, PubAckReason,
    Publish, PublishProperties, SubAck, SubscribeReasonCode,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::Event;
// The 3.1.1 types are rumqttc's top-level ones.
use rumqttc as v4;

/// The protocol version spoken to the broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MqttVersion {
    /// MQTT 5: user properties (`__ts`), content type, session expiry, reason codes.
    #[default]
    V5,
    /// MQTT 3.1.1, for brokers that speak nothing newer: payloads only, so event time is the
    /// arrival time and outputs go without `__ts`.
    V311,
}

/// The sending half of a connection.
#[derive(Clone)]
pub(super) enum Client {
    V5(v5::AsyncClient),
    V311(rumqttc::AsyncClient),
}

/// The connection itself, polled for what happens on it.
#[allow(clippy::large_enum_variant)] // one per connection, made once: boxing buys nothing
pub(super) enum EventLoop {
    V5(v5::EventLoop),
    V311(rumqttc::EventLoop),
}

/// Why a poll failed: the broker refused the connection (do not retry), or it was lost.
#[derive(Debug)]
pub(super) enum PollError {
    Refused(String),
    Lost(String),
}

impl std::fmt::Display for PollError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PollError::Refused(why) | PollError::Lost(why) => f.write_str(why),
        }
    }
}

impl EventLoop {
    pub(super) async fn poll(&mut self) -> Result<Event, PollError> {
        match self {
            EventLoop::V5(el) => el.poll().await.map_err(|e| match e {
                v5::ConnectionError::ConnectionRefused(code) => PollError::Refused(format!("{code:?}")),
                e => PollError::Lost(e.to_string()),
            }),
            EventLoop::V311(el) => match el.poll().await {
                Ok(rumqttc::Event::Incoming(p)) => Ok(Event::Incoming(lift(p))),
                Ok(rumqttc::Event::Outgoing(o)) => Ok(Event::Outgoing(o)),
                Err(rumqttc::ConnectionError::ConnectionRefused(code)) => Err(PollError::Refused(format!("{code:?}"))),
                Err(e) => Err(PollError::Lost(e.to_string())),
            },
        }
    }
}

/// What acknowledging a received publication needs of it: its packet id and QoS. Kept apart
/// from the publication so an acknowledgement waiting for a graph does not hold its payload.
#[derive(Debug, Clone, Copy)]
pub(super) struct AckOf {
    pub pkid: u16,
    pub qos: QoS,
}

impl AckOf {
    pub(super) fn of(p: &Publish) -> Self {
        Self {
            pkid: p.pkid,
            qos: p.qos,
        }
    }

    fn v5(self) -> Publish {
        let mut p = Publish::new("", self.qos, Bytes::new(), None);
        p.pkid = self.pkid;
        p
    }

    fn v4(self) -> v4::Publish {
        let mut p = v4::Publish::new("", lower_qos(self.qos), Vec::new());
        p.pkid = self.pkid;
        p
    }
}

impl Client {
    pub(super) async fn ack(&self, a: AckOf) -> Result<(), String> {
        match self {
            Client::V5(c) => c.ack(&a.v5()).await.map_err(|e| e.to_string()),
            Client::V311(c) => c.ack(&a.v4()).await.map_err(|e| e.to_string()),
        }
    }

    /// Queues the acknowledgement without waiting; `false` when the request channel is full.
    pub(super) fn try_ack(&self, a: AckOf) -> bool {
        match self {
            Client::V5(c) => c.try_ack(&a.v5()).is_ok(),
            Client::V311(c) => c.try_ack(&a.v4()).is_ok(),
        }
    }

    pub(super) async fn subscribe_many(&self, filters: Vec<Filter>) -> Result<(), String> {
        match self {
            Client::V5(c) => c.subscribe_many(filters).await.map_err(|e| e.to_string()),
            Client::V311(c) => c
                .subscribe_many(
                    filters
                        .into_iter()
                        .map(|f| v4::SubscribeFilter::new(f.path, lower_qos(f.qos))),
                )
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Publishes through a clone of the client, so the future owns everything it needs.
    pub(super) async fn publish(
        self,
        topic: String,
        qos: QoS,
        payload: Bytes,
        properties: PublishProperties,
    ) -> Result<(), String> {
        match self {
            Client::V5(c) => c
                .publish_with_properties(topic, qos, false, payload, properties)
                .await
                .map_err(|e| e.to_string()),
            Client::V311(c) => c
                .publish(topic, lower_qos(qos), false, payload.to_vec())
                .await
                .map_err(|e| e.to_string()),
        }
    }

    pub(super) fn try_disconnect(&self) {
        let _ = match self {
            Client::V5(c) => c.try_disconnect().map_err(|e| e.to_string()),
            Client::V311(c) => c.try_disconnect().map_err(|e| e.to_string()),
        };
    }
}

fn lower_qos(q: QoS) -> v4::QoS {
    match q {
        QoS::AtMostOnce => v4::QoS::AtMostOnce,
        QoS::AtLeastOnce => v4::QoS::AtLeastOnce,
        QoS::ExactlyOnce => v4::QoS::ExactlyOnce,
    }
}

fn lift_qos(q: v4::QoS) -> QoS {
    match q {
        v4::QoS::AtMostOnce => QoS::AtMostOnce,
        v4::QoS::AtLeastOnce => QoS::AtLeastOnce,
        v4::QoS::ExactlyOnce => QoS::ExactlyOnce,
    }
}

/// A 3.1.1 packet as the MQTT 5 packet the source and sink understand. Packets they ignore
/// become a PINGRESP, which they ignore too.
fn lift(p: v4::Packet) -> Packet {
    match p {
        v4::Packet::Publish(p) => Packet::Publish(Publish {
            dup: p.dup,
            qos: lift_qos(p.qos),
            retain: p.retain,
            topic: Bytes::from(p.topic),
            pkid: p.pkid,
            payload: p.payload,
            properties: None,
        }),
        v4::Packet::ConnAck(c) => Packet::ConnAck(ConnAck {
            session_present: c.session_present,
            code: ConnectReturnCode::Success,
            properties: None,
        }),
        v4::Packet::SubAck(s) => Packet::SubAck(SubAck {
            pkid: s.pkid,
            return_codes: s
                .return_codes
                .into_iter()
                .map(|c| match c {
                    v4::SubscribeReasonCode::Success(q) => SubscribeReasonCode::Success(lift_qos(q)),
                    v4::SubscribeReasonCode::Failure => SubscribeReasonCode::Failure,
                })
                .collect(),
            properties: None,
        }),
        v4::Packet::PubAck(a) => Packet::PubAck(PubAck {
            pkid: a.pkid,
            reason: PubAckReason::Success,
            properties: None,
        }),
        v4::Packet::Disconnect => Packet::Disconnect(Disconnect {
            reason_code: DisconnectReasonCode::NormalDisconnection,
            properties: None,
        }),
        _ => Packet::PingResp(PingResp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_3_1_1_publication_is_lifted_without_properties() {
        let mut p = v4::Publish::new("sensor/a", v4::QoS::AtLeastOnce, b"{}".to_vec());
        p.pkid = 7;
        match lift(v4::Packet::Publish(p)) {
            Packet::Publish(p) => {
                assert_eq!((&p.topic[..], p.pkid, p.qos), (&b"sensor/a"[..], 7, QoS::AtLeastOnce));
                assert!(p.properties.is_none());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_3_1_1_subscription_stays_refused() {
        let s = v4::SubAck::new(1, vec![v4::SubscribeReasonCode::Failure]);
        match lift(v4::Packet::SubAck(s)) {
            Packet::SubAck(s) => assert_eq!(s.return_codes, vec![SubscribeReasonCode::Failure]),
            other => panic!("{other:?}"),
        }
    }
}
