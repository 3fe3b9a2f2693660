//! The embedded MQTT broker (`rumqttd`): what `wasmflow run GRAPH` talks to when no broker URL
//! is given, so a graph runs on a bare machine and `mosquitto_pub`/`mosquitto_sub` can feed and
//! watch it.
//!
//! One listener speaks both MQTT 3.1.1 and MQTT 5, chosen per connection from the protocol
//! level of its CONNECT ([`EitherProtocol`]). rumqttd's own listeners speak one version each,
//! and its 3.1.1 writer panics on a message that carries MQTT 5 properties (every message
//! wasmflow publishes carries `__ts`), which kills the subscriber's connection; here such
//! properties are dropped on the way to a 3.1.1 client, as MQTT 5 §3.3.2.3 leaves them
//! unforwardable to it anyway. A 3.1.1 subscriber therefore gets the payload without `__ts`.
//!
//! rumqttd has no shutdown: the broker lives until the process exits.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rumqttd::protocol::{self, v4::V4, v5::V5, Packet, Protocol};
use rumqttd::{ConnectionSettings, LinkType, Router, RouterConfig, Server, ServerSettings};

use wasmflow_transport::TransportError;

/// The address the embedded broker listens on by default (MQTT's registered port, loopback only).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:1883";

/// Largest payload the embedded broker accepts: room for camera snapshots, not for files.
const MAX_PAYLOAD: usize = 4 << 20;

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts the broker on `addr` and returns once it accepts connections. A port already in
    /// use is an error that says so (usually another broker: point `--mqtt` at it instead).
    /// The broker runs on the process's runtime `rt`, driven from a thread of its own (its
    /// server future is not `Send`, so it cannot be spawned onto the workers).
    pub fn start(addr: SocketAddr, rt: &tokio::runtime::Handle) -> Result<Self, TransportError> {
        // rumqttd binds inside its own task and only logs a failure: probe first for a clear error.
        TcpListener::bind(addr).map_err(|e| {
            TransportError::Config(format!(
                "the embedded MQTT broker cannot listen on {addr}: {e} \
                 (is another broker running there? use it with --mqtt mqtt://{addr}, \
                 or choose another address with --listen)"
            ))
        })?;
        let router_tx = Router::new(0, router_config()).spawn();
        let mut server = Server::new(server_settings(addr), router_tx, EitherProtocol::default());
        let rt = rt.clone();
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                if let Err(e) = rt.block_on(server.start(LinkType::Remote)) {
                    tracing::error!("embedded MQTT broker stopped: {e}");
                }
            })
            .map_err(|e| TransportError::Config(format!("starting the embedded MQTT broker: {e}")))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(TransportError::Config(format!(
                    "the embedded MQTT broker did not start listening on {addr} within 5 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Self { addr })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The broker URL for [`crate::MqttConfig::new`].
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }
}

/// Limits sized for one edge node: a few thousand clients, bounded memory per topic filter.
fn router_config() -> RouterConfig {
    RouterConfig {
        max_connections: 10_000,
        max_outgoing_packet_count: 200,
        max_segment_size: 2 * MAX_PAYLOAD,
        max_segment_count: 4,
        ..Default::default()
    }
}

fn server_settings(listen: SocketAddr) -> ServerSettings {
    ServerSettings {
        name: "wasmflow".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: MAX_PAYLOAD,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    }
}

/// rumqttd's codec for one connection, MQTT 3.1.1 or 5 as its CONNECT asks. rumqttd clones the
/// server's value for every connection, so the choice made on the first packet is per client.
#[derive(Debug, Clone, Copy, Default)]
pub struct EitherProtocol {
    version: Option<Version>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V311,
    V5,
}

impl Protocol for EitherProtocol {
    fn read_mut(&mut self, stream: &mut BytesMut, max_size: usize) -> Result<Packet, protocol::Error> {
        let version = match self.version {
            Some(v) => v,
            None => {
                let v = connect_version(&stream[..])?;
                self.version = Some(v);
                v
            }
        };
        match version {
            Version::V311 => V4.read_mut(stream, max_size),
            Version::V5 => V5.read_mut(stream, max_size),
        }
    }

    fn write(&self, packet: Packet, buffer: &mut BytesMut) -> Result<usize, protocol::Error> {
        match self.version {
            Some(Version::V5) => V5.write(packet, buffer),
            _ => V4.write(without_properties(packet), buffer),
        }
    }
}

/// The MQTT version a connection's first packet (a CONNECT) asks for. The protocol level sits
/// after the fixed header (type byte and 1–4 length bytes) and the protocol name (`00 04 MQTT`).
fn connect_version(stream: &[u8]) -> Result<Version, protocol::Error> {
    let Some(&first) = stream.first() else {
        return Err(protocol::Error::InsufficientBytes(2));
    };
    if first >> 4 != 1 {
        // Not a CONNECT: let the 3.1.1 codec reject it.
        return Ok(Version::V311);
    }
    let length_bytes = stream[1..].iter().take(4).position(|b| b & 0x80 == 0);
    let Some(length_bytes) = length_bytes.map(|p| p + 1) else {
        return Err(protocol::Error::InsufficientBytes(1));
    };
    let level_at = 1 + length_bytes + 6;
    match stream.get(level_at) {
        None => Err(protocol::Error::InsufficientBytes(level_at + 1 - stream.len())),
        Some(5) => Ok(Version::V5),
        Some(_) => Ok(Version::V311),
    }
}

/// `packet` with its MQTT 5 properties dropped, for a 3.1.1 client.
fn without_properties(packet: Packet) -> Packet {
    match packet {
        Packet::Connect(c, _, will, _, login) => Packet::Connect(c, None, will, None, login),
        Packet::ConnAck(p, _) => Packet::ConnAck(p, None),
        Packet::Publish(p, _) => Packet::Publish(p, None),
        Packet::PubAck(p, _) => Packet::PubAck(p, None),
        Packet::Subscribe(p, _) => Packet::Subscribe(p, None),
        Packet::SubAck(p, _) => Packet::SubAck(p, None),
        Packet::PubRec(p, _) => Packet::PubRec(p, None),
        Packet::PubRel(p, _) => Packet::PubRel(p, None),
        Packet::PubComp(p, _) => Packet::PubComp(p, None),
        Packet::Unsubscribe(p, _) => Packet::Unsubscribe(p, None),
        Packet::UnsubAck(p, _) => Packet::UnsubAck(p, None),
        Packet::Disconnect(p, _) => Packet::Disconnect(p, None),
        p @ (Packet::PingReq(_) | Packet::PingResp(_)) => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_header(level: u8) -> Vec<u8> {
        vec![0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', level, 0x02]
    }

    #[test]
    fn the_connect_packet_chooses_the_version() {
        assert_eq!(connect_version(&connect_header(5)).ok(), Some(Version::V5));
        assert_eq!(connect_version(&connect_header(4)).ok(), Some(Version::V311));
    }

    #[test]
    fn a_partial_connect_asks_for_more_bytes() {
        let header = connect_header(5);
        for cut in 0..9 {
            assert!(
                matches!(connect_version(&header[..cut]), Err(protocol::Error::InsufficientBytes(n)) if n > 0),
                "{cut} bytes"
            );
        }
    }

    #[test]
    fn a_long_remaining_length_is_skipped() {
        // A two-byte remaining length (200 = 0xC8 0x01) moves the level one byte on.
        let header = [0x10, 0xC8, 0x01, 0x00, 0x04, b'M', b'Q', b'T', b'T', 5];
        assert_eq!(connect_version(&header).ok(), Some(Version::V5));
    }
}
