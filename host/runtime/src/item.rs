//! Items as the router holds them between calls: host-owned values, independent of any store,
//! so items waiting in open windows survive when a trapped graph instance is rebuilt.
//! They are lowered into WIT values (with fresh buffer handles) for each call.

use wasmtime::component::ResourceTable;

use crate::bindings::{
    BufferOrBytes, BufferOrString, DataModel, HybridLogicalClock, InlineSchema, Message, MessageProperties,
    MessageSchema, Snapshot, Timespec, Timestamp,
};
use crate::buffer::{new_buffer, take_buffer};
use wasmflow_wire::Hlc;

pub use wasmflow_transport::Bytes;

/// A message schema reference carried with an item.
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    /// WIT `registry-reference`: a name, as the `schema-registry` interface looks it up.
    Registry(String),
    /// The schema itself, carried in the message.
    Inline {
        /// The schema's name.
        name: String,
        /// The schema text.
        content: String,
    },
}

/// The three shapes of the data model.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Bytes alone: no topic, content type or properties. A sink emits them with only `__ts`.
    Raw(Bytes),
    /// A broker message, the shape every source produces.
    Message {
        /// Bytes, since an operator may set any; a sink rejects one that is not UTF-8 (the
        /// item's error, not the graph's).
        topic: Bytes,
        /// `None` when the message carries none.
        content_type: Option<String>,
        /// The message body; a call receives it as a `buffer` handle ([`lower_payload`]).
        payload: Bytes,
        /// User properties in order, duplicates kept; `__ts` among them as it arrived (the sink
        /// writes the item's event time over it).
        properties: Vec<(String, String)>,
        /// `None` from sources; only operators set one, and a sink drops it.
        schema: Option<Schema>,
    },
    /// An image frame. A sink emits the frame as the payload, its shape as `snapshot-format`,
    /// `snapshot-width` and `snapshot-height` user properties.
    Snapshot {
        /// Pixel format name, not checked by the host (the sample operators use `rgb24`).
        format: String,
        /// In pixels.
        width: u32,
        /// In pixels.
        height: u32,
        /// The pixels; the host does not check its length against format and size.
        frame: Bytes,
    },
}

/// An item and its event time (for `Raw`, which has no timestamp field, the time it inherited).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Event time: what windows close on, and the `__ts` a sink writes.
    pub ts: Hlc,
    /// The value, in one of the WIT `data-model` shapes.
    pub body: Body,
}

fn lower_str(s: &str) -> BufferOrString {
    BufferOrString::String(s.to_owned())
}

fn lift_str(table: &mut ResourceTable, v: BufferOrString) -> wasmtime::Result<String> {
    Ok(match v {
        BufferOrString::String(s) => s,
        BufferOrString::Buffer(b) => String::from_utf8_lossy(&take_buffer(table, b)?).into_owned(),
    })
}

fn lift_bytes(table: &mut ResourceTable, v: BufferOrBytes) -> wasmtime::Result<Bytes> {
    Ok(match v {
        BufferOrBytes::Bytes(b) => b.into(),
        BufferOrBytes::Buffer(b) => take_buffer(table, b)?,
    })
}

/// A payload (a message's, a raw item's, a snapshot's frame) as an operator call receives it:
/// always a `buffer` handle, as the platform hands it (the operator ABI: "the host hands
/// payloads in as buffers"). Operators written for the platform rely on it: its Python samples
/// call `read()` on the payload without looking at the variant, which fails on inline `bytes`
/// (an `AttributeError`, so a trap on every message).
/// Inline bytes saved an operator that reads a small payload the `buffer.read` call and the
/// handle's drop (BENCHMARKS.md, "What changed", item 9, says what it cost to give that up).
pub fn lower_payload(table: &mut ResourceTable, payload: &Bytes) -> wasmtime::Result<BufferOrBytes> {
    Ok(BufferOrBytes::Buffer(new_buffer(table, payload.clone())?))
}

fn lower_ts(ts: &Hlc) -> Timestamp {
    Timestamp {
        timestamp: Timespec {
            secs: ts.secs,
            nanos: ts.nanos,
        },
        counter: ts.counter,
        node_id: lower_str(&ts.node_id),
    }
}

fn lift_ts(table: &mut ResourceTable, t: Timestamp) -> wasmtime::Result<Hlc> {
    Ok(Hlc {
        secs: t.timestamp.secs,
        nanos: t.timestamp.nanos,
        counter: t.counter,
        node_id: lift_str(table, t.node_id)?,
    })
}

impl Item {
    /// The empty message an accumulate starts from (`staged` of its first call).
    pub fn empty_message(ts: Hlc) -> Self {
        Item {
            ts,
            body: Body::Message {
                topic: Bytes::from(&[][..]),
                content_type: None,
                payload: Bytes::from(&[][..]),
                properties: vec![],
                schema: None,
            },
        }
    }

    /// The item's event time as the WIT clock record.
    pub fn hlc(&self) -> HybridLogicalClock {
        (&self.ts).into()
    }

    /// Moves the item to a new event time (what a `delay` does).
    pub fn set_ts(&mut self, ts: Hlc) {
        self.ts = ts;
    }

    /// The payload bytes, whatever the shape (a snapshot's frame).
    pub fn payload(&self) -> &Bytes {
        match &self.body {
            Body::Raw(b) => b,
            Body::Message { payload, .. } => payload,
            Body::Snapshot { frame, .. } => frame,
        }
    }

    /// Lowers into a WIT value; payloads and topics become new buffer handles sharing the same bytes.
    pub fn lower(&self, table: &mut ResourceTable) -> wasmtime::Result<DataModel> {
        self.lower_with(table, false)
    }

    /// [`Item::lower`], the topic as bytes when `inline_topic`: what a graph's own router gets,
    /// since it copies items for filters and fan-outs, and a copy of a handle is a call back
    /// into the host to read it.
    pub fn lower_with(&self, table: &mut ResourceTable, inline_topic: bool) -> wasmtime::Result<DataModel> {
        Ok(match &self.body {
            Body::Raw(b) => DataModel::BufferOrBytes(lower_payload(table, b)?),
            Body::Message {
                topic,
                content_type,
                payload,
                properties,
                schema,
            } => DataModel::Message(Message {
                timestamp: lower_ts(&self.ts),
                // A buffer, like the payload: most operators pass the topic through untouched,
                // and a handle costs no allocation inside the guest (a `list<u8>` does).
                topic: if inline_topic {
                    BufferOrBytes::Bytes(topic.to_vec())
                } else {
                    BufferOrBytes::Buffer(new_buffer(table, topic.clone())?)
                },
                content_type: content_type.as_deref().map(lower_str),
                payload: lower_payload(table, payload)?,
                properties: MessageProperties {
                    user_properties: properties.iter().map(|(k, v)| (lower_str(k), lower_str(v))).collect(),
                },
                schema: schema.as_ref().map(|s| match s {
                    Schema::Registry(r) => MessageSchema::RegistryReference(lower_str(r)),
                    Schema::Inline { name, content } => MessageSchema::Inline(InlineSchema {
                        name: lower_str(name),
                        content: lower_str(content),
                    }),
                }),
            }),
            Body::Snapshot {
                format,
                width,
                height,
                frame,
            } => DataModel::Snapshot(Snapshot {
                timestamp: lower_ts(&self.ts),
                format: lower_str(format),
                width: *width,
                height: *height,
                frame: lower_payload(table, frame)?,
            }),
        })
    }

    /// Lifts a WIT value an operator returned, taking back any buffer handles it holds. A raw
    /// value keeps `inherited_ts`, the time of the item it came from.
    pub fn lift(table: &mut ResourceTable, v: DataModel, inherited_ts: &Hlc) -> wasmtime::Result<Item> {
        Ok(match v {
            DataModel::BufferOrBytes(b) => Item {
                ts: inherited_ts.clone(),
                body: Body::Raw(lift_bytes(table, b)?),
            },
            DataModel::Message(m) => {
                let ts = lift_ts(table, m.timestamp)?;
                let mut properties = Vec::with_capacity(m.properties.user_properties.len());
                for (k, v) in m.properties.user_properties {
                    properties.push((lift_str(table, k)?, lift_str(table, v)?));
                }
                let schema = match m.schema {
                    None => None,
                    Some(MessageSchema::RegistryReference(r)) => Some(Schema::Registry(lift_str(table, r)?)),
                    Some(MessageSchema::Inline(i)) => Some(Schema::Inline {
                        name: lift_str(table, i.name)?,
                        content: lift_str(table, i.content)?,
                    }),
                };
                let content_type = match m.content_type {
                    Some(c) => Some(lift_str(table, c)?),
                    None => None,
                };
                Item {
                    ts,
                    body: Body::Message {
                        topic: lift_bytes(table, m.topic)?,
                        content_type,
                        payload: lift_bytes(table, m.payload)?,
                        properties,
                        schema,
                    },
                }
            }
            DataModel::Snapshot(s) => Item {
                ts: lift_ts(table, s.timestamp)?,
                body: Body::Snapshot {
                    format: lift_str(table, s.format)?,
                    width: s.width,
                    height: s.height,
                    frame: lift_bytes(table, s.frame)?,
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ts() -> Hlc {
        Hlc {
            secs: 10,
            nanos: 5,
            counter: 2,
            node_id: "n".into(),
        }
    }

    fn message(payload: Bytes) -> Item {
        Item {
            ts: ts(),
            body: Body::Message {
                topic: Arc::from(&b"t"[..]),
                content_type: Some("application/json".into()),
                payload,
                properties: vec![("k".into(), "v".into())],
                schema: Some(Schema::Registry("s".into())),
            },
        }
    }

    /// Small or large, a payload crosses as a handle to the host's bytes, never copied.
    #[test]
    fn a_message_round_trips_through_wit_its_payload_a_handle() {
        for payload in [Bytes::from(&b"{\"x\":1}"[..]), vec![7u8; 150_000].into()] {
            let item = message(payload.clone());
            let mut table = ResourceTable::new();
            let wit = item.lower(&mut table).unwrap();
            let DataModel::Message(m) = &wit else {
                panic!("lowered as {wit:?}")
            };
            assert!(matches!(m.payload, BufferOrBytes::Buffer(_)), "a handle, not bytes");
            let back = Item::lift(&mut table, wit, &Hlc::now("other")).unwrap();
            assert_eq!(back, item);
            assert!(Arc::ptr_eq(back.payload(), &payload), "payload shared, not copied");
            assert!(table.is_empty(), "every handle taken back");
        }
    }

    #[test]
    fn raw_items_inherit_time() {
        let mut table = ResourceTable::new();
        let back = Item::lift(
            &mut table,
            DataModel::BufferOrBytes(BufferOrBytes::Bytes(vec![1, 2])),
            &ts(),
        )
        .unwrap();
        assert_eq!(
            back,
            Item {
                ts: ts(),
                body: Body::Raw(Arc::from(&[1u8, 2][..]))
            }
        );
    }
}
