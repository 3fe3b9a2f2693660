//! Connection schemas: a JSON schema every item on a connection between two nodes of a
//! DataflowGraph must follow (`nodeConnections[].from.schema`). An item that does not is not
//! passed on: it goes to the dead-letter destination with the schema's name and its first
//! violation, and is counted per connection; then it is done (its input acknowledged), as a
//! rejected item always is.
//!
//! The platform only hands such schemas to modules; checking them is wasmflow's option, taken
//! where a connection names one.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use wasmflow_transport::{Ack, BoxFuture, Completion, Outbound, Sink, TransportError};

use crate::pump::Route;

/// The check of one connection.
pub struct ConnectionCheck {
    /// `schemaRef` as written.
    schema: String,
    /// `from → to`.
    connection: String,
    /// The DataflowGraph, for the log.
    graph: String,
    validator: jsonschema::Validator,
    /// Items that failed, for this connection.
    violations: Counter,
    /// Where failing items go; dropped (logged and counted) when `None`.
    dead_letter: Option<Route>,
}

impl ConnectionCheck {
    /// Compiles `schema` (JSON schema text) for the connection `connection` of `graph`; failing
    /// items are counted in `violations` and dropped until [`ConnectionCheck::with_dead_letter`].
    pub fn new(
        graph: &str,
        schema_ref: &str,
        connection: &str,
        schema: &str,
        violations: Counter,
    ) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(schema).map_err(|e| format!("schema `{schema_ref}` is not JSON: {e}"))?;
        let validator = jsonschema::validator_for(&value)
            .map_err(|e| format!("schema `{schema_ref}` is not a valid JSON schema: {e}"))?;
        Ok(Self {
            schema: schema_ref.to_owned(),
            connection: connection.to_owned(),
            graph: graph.to_owned(),
            validator,
            violations,
            dead_letter: None,
        })
    }

    /// The same check, sending failing items to `dead_letter`.
    pub fn with_dead_letter(self, dead_letter: Option<Route>) -> Self {
        Self { dead_letter, ..self }
    }

    /// The connection, `from → to`.
    pub fn connection(&self) -> &str {
        &self.connection
    }

    /// The first way `payload` breaks the schema, or `None` when it follows it.
    pub fn violation(&self, payload: &[u8]) -> Option<String> {
        let value: serde_json::Value = match serde_json::from_slice(payload) {
            Ok(v) => v,
            Err(e) => return Some(format!("the payload is not JSON: {e}")),
        };
        let first = self.validator.iter_errors(&value).next()?;
        let at = first.instance_path.to_string();
        Some(if at.is_empty() {
            first.to_string()
        } else {
            format!("at `{at}`: {first}")
        })
    }

    /// Handles an item that failed with `violation`: counted, logged, and published to the
    /// dead-letter destination with `error`, `schema` and `connection` user properties. The
    /// future completes when the item is done (dead letter acknowledged, or dropped).
    pub fn reject(&self, msg: Outbound, violation: String) -> BoxFuture<Result<(), TransportError>> {
        match self.dead_letter(msg, violation) {
            Some((route, msg)) => route.sink.send(msg),
            None => Box::pin(async { Ok(()) }),
        }
    }

    /// Counts and logs an item that failed with `violation`, and makes its dead letter and the
    /// route it takes; `None` without a dead-letter destination, which drops the item.
    fn dead_letter(&self, mut msg: Outbound, violation: String) -> Option<(Route, Outbound)> {
        self.violations.inc();
        tracing::warn!(
            graph = %self.graph,
            connection = %self.connection,
            schema = %self.schema,
            "an item breaks the connection's schema: {violation}"
        );
        let route = self.dead_letter.clone()?;
        msg.topic = route.topic.clone();
        msg.user_properties.extend([
            ("error".to_owned(), violation),
            ("schema".to_owned(), self.schema.clone()),
            ("connection".to_owned(), self.connection.clone()),
        ]);
        Some((route, msg))
    }

    /// An inbound message on a source connection that failed: rejected, and acknowledged once
    /// its dead letter is done (a dead letter that cannot be published leaves it with its
    /// broker, to come again).
    pub fn reject_inbound(&self, m: wasmflow_transport::Inbound, violation: String, rt: &tokio::runtime::Handle) {
        let msg = Outbound {
            topic: m.input.topic.clone(),
            payload: m.input.payload,
            content_type: m.input.content_type,
            user_properties: m.input.user_properties,
            key: m.key,
        };
        let done = self.reject(msg, violation);
        let ack: Ack = m.ack;
        rt.spawn(async move {
            match done.await {
                Ok(()) => ack.ack(),
                Err(e) => tracing::error!("a dead letter could not be published; its input stays unacknowledged: {e}"),
            }
        });
    }
}

/// A sink that checks what reaches it against a connection's schema first: the Graph node's
/// outputs on their way to the Destination node.
pub struct CheckedSink {
    /// Where outputs that follow the schema go.
    pub inner: Arc<dyn Sink>,
    /// The check of the connection.
    pub check: Arc<ConnectionCheck>,
}

impl Sink for CheckedSink {
    fn send(&self, msg: Outbound) -> BoxFuture<Result<(), TransportError>> {
        match self.check.violation(&msg.payload) {
            None => self.inner.send(msg),
            Some(v) => self.check.reject(msg, v),
        }
    }

    /// An output takes its sink's own path, batched with the rest until [`Sink::end_batch`]:
    /// the inner sink's when it follows the schema, the dead-letter route's when it breaks it
    /// (whose batch the pump ends with its own dead-letter route, the same one).
    fn send_with(&self, msg: Outbound, done: Completion) {
        match self.check.violation(&msg.payload) {
            None => self.inner.send_with(msg, done),
            Some(v) => match self.check.dead_letter(msg, v) {
                Some((route, msg)) => route.sink.send_with(msg, done),
                None => done(Ok(())),
            },
        }
    }

    fn end_batch(&self) {
        self.inner.end_batch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Keeps what it is sent.
    #[derive(Default)]
    struct Keep(Mutex<Vec<Outbound>>);

    impl Sink for Keep {
        fn send(&self, msg: Outbound) -> BoxFuture<Result<(), TransportError>> {
            self.0.lock().unwrap().push(msg);
            Box::pin(async { Ok(()) })
        }
    }

    fn outbound(payload: &str) -> Outbound {
        Outbound {
            topic: "out".into(),
            payload: Arc::from(payload.as_bytes()),
            content_type: None,
            user_properties: vec![],
            key: None,
        }
    }

    const SCHEMA: &str = r#"{"type":"object","required":["temperature"],"properties":{"temperature":{"type":"object","required":["value"],"properties":{"value":{"type":"number"}}}}}"#;

    #[tokio::test]
    async fn a_failing_item_goes_to_the_dead_letter_with_schema_and_first_violation() {
        let (good, dead) = (Arc::new(Keep::default()), Arc::new(Keep::default()));
        let counter = Counter::default();
        let check = ConnectionCheck::new("g", "sensor-input-schema:1", "proc → dest", SCHEMA, counter.clone())
            .unwrap()
            .with_dead_letter(Some(Route {
                sink: dead.clone(),
                topic: "dead".into(),
            }));
        let sink = CheckedSink {
            inner: good.clone(),
            check: Arc::new(check),
        };
        sink.send(outbound(r#"{"temperature":{"value":21.5}}"#)).await.unwrap();
        sink.send(outbound(r#"{"temperature":{"value":"hot"}}"#)).await.unwrap();
        sink.send(outbound("not json")).await.unwrap();
        assert_eq!(good.0.lock().unwrap().len(), 1);
        let dead = dead.0.lock().unwrap();
        assert_eq!(dead.len(), 2);
        assert_eq!(counter.get(), 2);
        let props = |m: &Outbound, k: &str| {
            m.user_properties
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(dead[0].topic, "dead");
        assert_eq!(props(&dead[0], "schema"), "sensor-input-schema:1");
        assert_eq!(props(&dead[0], "connection"), "proc → dest");
        let error = props(&dead[0], "error");
        assert!(error.starts_with("at `/temperature/value`:"), "{error}");
        assert!(error.contains("\"hot\""), "{error}");
        assert!(props(&dead[1], "error").starts_with("the payload is not JSON"));
    }

    /// Records the pump's path through it; its `send` is not that path.
    #[derive(Default)]
    struct Batching {
        calls: Mutex<Vec<&'static str>>,
        held: Mutex<Vec<Completion>>,
    }

    impl Sink for Batching {
        fn send(&self, _: Outbound) -> BoxFuture<Result<(), TransportError>> {
            unreachable!("a checked sink on the pump's path calls send_with")
        }

        fn send_with(&self, _: Outbound, done: Completion) {
            self.calls.lock().unwrap().push("send_with");
            self.held.lock().unwrap().push(done);
        }

        fn end_batch(&self) {
            self.calls.lock().unwrap().push("end_batch");
            for done in self.held.lock().unwrap().drain(..) {
                done(Ok(()));
            }
        }
    }

    /// Behind a schema check, outputs still reach a batching sink (Kafka's) by its own path and
    /// leave when the pump ends the batch, not one produce request per output; so do dead
    /// letters, by the dead-letter route's path, with no task each.
    #[test]
    fn a_checked_sink_keeps_its_inner_sinks_batches() {
        let (inner, dead) = (Arc::new(Batching::default()), Arc::new(Batching::default()));
        let check = ConnectionCheck::new("g", "s:1", "proc → dest", SCHEMA, Counter::default())
            .unwrap()
            .with_dead_letter(Some(Route {
                sink: dead.clone(),
                topic: "dead".into(),
            }));
        let sink = CheckedSink {
            inner: inner.clone(),
            check: Arc::new(check),
        };
        let done = Arc::new(Mutex::new(Vec::new()));
        for (i, payload) in [
            r#"{"temperature":{"value":21.5}}"#,
            "not json",
            r#"{"temperature":{"value":3}}"#,
        ]
        .into_iter()
        .enumerate()
        {
            let done = done.clone();
            sink.send_with(
                outbound(payload),
                Box::new(move |r| done.lock().unwrap().push((i, r.is_ok()))),
            );
        }
        assert!(done.lock().unwrap().is_empty(), "held until the batch ends");
        sink.end_batch();
        assert_eq!(*inner.calls.lock().unwrap(), ["send_with", "send_with", "end_batch"]);
        assert_eq!(*done.lock().unwrap(), [(0, true), (2, true)]);
        // The pump ends the dead-letter route's batch itself.
        dead.end_batch();
        assert_eq!(*dead.calls.lock().unwrap(), ["send_with", "end_batch"]);
        assert_eq!(*done.lock().unwrap(), [(0, true), (2, true), (1, true)]);
    }

    #[test]
    fn a_schema_that_is_not_one_is_refused() {
        let e = ConnectionCheck::new("g", "s:1", "a → b", "{\"type\": 5}", Counter::default()).err();
        assert!(e.is_some_and(|e| e.contains("schema `s:1` is not a valid JSON schema")));
    }
}
