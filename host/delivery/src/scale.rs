//! Running a graph as one of several processes (instances): how a [`Binding`] splits the work
//! among them, said in one line at start ([`describe`]); which graphs may be split that way
//! ([`check_windows`]); and reporting the binding's connections to a [`Health`].
//!
//! The split is the brokers': a Kafka consumer group hands each instance some of the topic's
//! partitions (and moves them to the survivors when one leaves), an MQTT shared subscription
//! (`$share/GROUP/filter`) hands each message to one subscriber of the group. A window holds
//! what reached *this* instance, so a windowed graph is only split where that part is
//! meaningful: by Kafka partition, which producers choose by key (one sensor's readings, one
//! partition, one instance). A shared subscription hands messages out with no regard for what
//! they are, so a windowed graph on one is refused.

use wasmflow_compose::{Manifest, OperationKind};
use wasmflow_transport::health::Health;

use crate::error::{DeliveryError, Result};
use crate::{Binding, TransportKind};

/// `$share/GROUP/FILTER` → `(GROUP, FILTER)`; `None` for a plain filter.
pub fn shared_subscription(filter: &str) -> Option<(&str, &str)> {
    let rest = filter.strip_prefix("$share/")?;
    let (group, filter) = rest.split_once('/')?;
    (!group.is_empty() && !filter.is_empty()).then_some((group, filter))
}

/// Whether any MQTT source of the binding is a shared subscription.
pub fn has_shared_subscription(binding: &Binding) -> bool {
    binding
        .sources
        .iter()
        .any(|e| e.transport == TransportKind::Mqtt && shared_subscription(&e.topic).is_some())
}

/// How this instance takes its part of the input, in one line: the shared subscriptions and
/// their groups, the plain subscriptions (every instance gets every message), the Kafka group
/// (its partitions are logged on each rebalance: `kafka: partitions assigned: …`).
pub fn describe(binding: &Binding) -> String {
    let mut parts = Vec::new();
    for e in &binding.sources {
        match e.transport {
            TransportKind::Mqtt => parts.push(match shared_subscription(&e.topic) {
                Some((group, filter)) => {
                    format!("MQTT shared subscription `{}` (group `{group}` on `{filter}`: the broker hands each message to one instance)", e.topic)
                }
                None => format!("MQTT subscription `{}` (not shared: every instance receives every message)", e.topic),
            }),
            TransportKind::Kafka => {}
        }
    }
    let kafka: Vec<&str> = binding
        .sources
        .iter()
        .filter(|e| e.transport == TransportKind::Kafka)
        .map(|e| e.topic.as_str())
        .collect();
    if !kafka.is_empty() {
        parts.push(format!(
            "Kafka consumer group `{}` on {kafka:?} (partitions as the group assigns them)",
            kafka_group(binding)
        ));
    }
    parts.join("; ")
}

#[cfg(feature = "kafka")]
fn kafka_group(binding: &Binding) -> &str {
    binding.kafka.as_ref().map_or("?", |k| k.group_id.as_str())
}

#[cfg(not(feature = "kafka"))]
fn kafka_group(_binding: &Binding) -> &str {
    "?"
}

/// The graph's window operations (accumulate, concatenate), by name.
pub fn windows(manifest: &Manifest) -> Vec<&str> {
    manifest
        .operations
        .iter()
        .filter(|o| matches!(o.kind, OperationKind::Accumulate | OperationKind::Concatenate))
        .map(|o| o.name.as_str())
        .collect()
}

/// Refuses a windowed graph on an MQTT shared subscription (see the module doc); says why and
/// what to do instead.
pub fn check_windows(manifest: &Manifest, binding: &Binding) -> Result<()> {
    let windows = windows(manifest);
    let shared = binding
        .sources
        .iter()
        .find(|e| e.transport == TransportKind::Mqtt && shared_subscription(&e.topic).is_some());
    if let (Some(first), Some(source)) = (windows.first(), shared) {
        return Err(DeliveryError::Binding(format!(
            "graph `{}` has windows (`{first}`{}) and reads the shared subscription `{}`: the broker hands each instance \
             an arbitrary part of the stream, so each window would hold an arbitrary part of its items. Run one instance \
             on a plain subscription, or read Kafka with the items keyed (each instance then windows the keys of the \
             partitions it is assigned); README, \"Scaling out\"",
            manifest.name,
            if windows.len() > 1 { format!(" and {} more", windows.len() - 1) } else { String::new() },
            source.topic
        )));
    }
    Ok(())
}

impl Binding {
    /// Has the binding's connections report to `health` (`/readyz`): each MQTT connection
    /// whether it is connected, each Kafka client whether the cluster answers.
    pub fn report_health_to(&mut self, health: &Health) {
        let _ = health;
        #[cfg(feature = "mqtt")]
        if let Some(m) = &mut self.mqtt {
            m.health = health.clone();
        }
        #[cfg(feature = "kafka")]
        if let Some(k) = &mut self.kafka {
            k.settings.health = health.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Endpoint;

    fn binding(sources: &[(TransportKind, &str)]) -> Binding {
        Binding {
            sources: sources
                .iter()
                .map(|(t, s)| Endpoint {
                    transport: *t,
                    topic: (*s).into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn manifest(kinds: &[OperationKind]) -> Manifest {
        let ops = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| serde_json::json!({"name": format!("op{i}"), "kind": k, "export": format!("op{i}-x")}))
            .collect::<Vec<_>>();
        serde_json::from_value(serde_json::json!({
            "format": 1, "name": "g", "operations": ops, "connections": []
        }))
        .expect("a manifest")
    }

    #[test]
    fn shared_subscriptions_are_recognised() {
        assert_eq!(shared_subscription("$share/g/sensors/+"), Some(("g", "sensors/+")));
        assert_eq!(shared_subscription("sensors/+"), None);
        assert_eq!(shared_subscription("$share/g"), None);
        assert_eq!(shared_subscription("$share//x"), None);
    }

    #[test]
    fn the_start_line_names_the_share() {
        let b = binding(&[(TransportKind::Mqtt, "$share/wf/in"), (TransportKind::Mqtt, "plain/#")]);
        let line = describe(&b);
        assert!(
            line.contains("MQTT shared subscription `$share/wf/in` (group `wf`"),
            "{line}"
        );
        assert!(line.contains("`plain/#` (not shared"), "{line}");
        assert!(has_shared_subscription(&b));
        assert!(!has_shared_subscription(&binding(&[(TransportKind::Mqtt, "plain/#")])));
    }

    #[test]
    fn windows_on_a_shared_subscription_are_refused_naming_them() {
        use OperationKind::*;
        let windowed = manifest(&[Source, Map, Accumulate, Sink]);
        let shared = binding(&[(TransportKind::Mqtt, "$share/wf/in")]);
        let err = check_windows(&windowed, &shared).unwrap_err().to_string();
        assert!(
            err.contains("`op2`") && err.contains("$share/wf/in") && err.contains("Kafka"),
            "{err}"
        );
        check_windows(&windowed, &binding(&[(TransportKind::Mqtt, "in")])).expect("a plain subscription");
        check_windows(&manifest(&[Source, Map, Sink]), &shared).expect("no windows");
    }
}
