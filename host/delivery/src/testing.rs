//! What the unit tests of this crate share.

use wasmflow_runtime::graph::Held;
use wasmflow_runtime::item::{Body, Item};
use wasmflow_wire::Hlc;

/// A window entry `id` derived from `parents`, with a small message in it.
pub fn held(id: u64, parents: Vec<u64>) -> Held {
    Held {
        id,
        operation: "window".into(),
        input: 0,
        item: Item {
            ts: Hlc {
                secs: 1,
                nanos: 2,
                counter: 3,
                node_id: "n".into(),
            },
            body: Body::Message {
                topic: b"t".to_vec().into(),
                content_type: Some("application/json".into()),
                payload: b"{}".to_vec().into(),
                properties: vec![("a".into(), "b".into())],
                schema: None,
            },
        },
        parents,
    }
}
