//! The router inside a graph composed with its router (world `wasmflow:graph/router-node`).
//!
//! A graph composed this way exports one `wasmflow:graph/graph` interface. Its host pushes an
//! item in; this router calls each operation it reaches through the graph's generated
//! dispatcher (`wasmflow:graph/operators`, one component-to-component call per operation), and
//! hands back only what leaves the graph: items at sinks, items arriving at windows (the host
//! holds those, so a trap loses nothing pending), and rejections. It is the host router's
//! routing (`host/runtime/src/graph`) moved inside the component, with the same rules: a
//! branch's arm picks its edges, the last edge of a fan-out gets the item and earlier ones a
//! copy, a delay may not move time back, a map's result carries its own time (a bare payload
//! keeps the time it came with).
//!
//! The logic here is generic over [`Operations`] and unit-tested natively; `component` (wasm32
//! only) implements it over the generated bindings.

pub mod topology;

use wasmflow_guest::hlc::{stable_order, Hlc, OrderKey};

pub use topology::{Edge, Kind, Topology};

/// The calls the router makes, and what it needs to know about the values it moves.
pub trait Operations {
    /// An item's value (the WIT `data-model`).
    type Value;

    /// Operation `op`'s `process` of a map.
    fn map(&mut self, op: u32, value: Self::Value) -> Result<Self::Value, String>;
    /// … of a filter.
    fn filter(&mut self, op: u32, value: Self::Value) -> Result<bool, String>;
    /// … of a branch.
    fn branch(&mut self, op: u32, ts: &Hlc, value: Self::Value) -> Result<bool, String>;
    /// … of a delay: the item's new time.
    fn delay(&mut self, op: u32, value: Self::Value, ts: &Hlc) -> Result<Hlc, String>;
    /// … of an accumulate.
    fn accumulate(&mut self, op: u32, staged: Self::Value, items: Vec<Self::Value>) -> Result<Self::Value, String>;
    /// A copy of `value` for another path (operators take their argument by value).
    fn duplicate(&mut self, value: &Self::Value) -> Self::Value;
    /// The empty message an accumulate starts from.
    fn empty_message(&mut self, ts: &Hlc) -> Self::Value;
    /// The time `value` carries (a message's or snapshot's timestamp); `None` for a bare payload.
    fn time_of(&self, value: &Self::Value) -> Option<Hlc>;
    /// Writes `ts` into `value`'s timestamp, when it has one.
    fn set_time(&mut self, value: &mut Self::Value, ts: &Hlc);
}

/// What a call hands back to the host, in the order it happened.
#[derive(Debug, PartialEq)]
pub enum Event<V> {
    /// An item reached sink `op`.
    Output { op: u32, ts: Hlc, value: V },
    /// An item reached window `op` on its input `input`.
    Held { op: u32, input: u32, ts: Hlc, value: V },
    /// Operation `op` rejected an item; `value` is the item it was given, when asked to keep it.
    Rejected {
        op: u32,
        ts: Hlc,
        error: String,
        value: Option<V>,
    },
}

/// Items an operation took in, passed on and dropped since the counts were last taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub received: u64,
    pub emitted: u64,
    pub dropped: u64,
}

/// Orders items without a timestamp (bare payloads) before every stamped item, as the
/// concatenate plumbing does.
const UNSTAMPED: OrderKey = (0, 0, 0);

/// The routing state of one graph: its topology and the counts since they were last taken.
pub struct Router {
    topology: Topology,
    counts: Vec<Counts>,
}

/// One call's work: where events go and whether rejected items are kept.
struct Call<'a, O: Operations> {
    ops: &'a mut O,
    topology: &'a Topology,
    counts: &'a mut [Counts],
    keep_rejected: bool,
    events: Vec<Event<O::Value>>,
}

impl Router {
    /// A router for `topology`.
    pub fn new(topology: Topology) -> Self {
        let counts = vec![Counts::default(); topology.kinds.len()];
        Self { topology, counts }
    }

    /// The graph it routes.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Routes `value` (at time `ts`) from source `source` as far as it goes.
    pub fn push<O: Operations>(
        &mut self,
        ops: &mut O,
        source: u32,
        ts: Hlc,
        value: O::Value,
        keep_rejected: bool,
    ) -> Result<Vec<Event<O::Value>>, String> {
        match self.topology.kind(source) {
            Some(Kind::Source) => {}
            other => return Err(format!("operation {source} is not a source ({other:?})")),
        }
        let mut call = self.call(ops, keep_rejected);
        call.forward(source, None, ts, value)?;
        Ok(call.events)
    }

    /// Runs a window's released batch through window `op` at time `ts`, then onwards.
    pub fn close<O: Operations>(
        &mut self,
        ops: &mut O,
        op: u32,
        ts: Hlc,
        batch: Vec<(u32, Hlc, O::Value)>,
        keep_rejected: bool,
    ) -> Result<Vec<Event<O::Value>>, String> {
        let kind = self.topology.kind(op);
        let mut call = self.call(ops, keep_rejected);
        match kind {
            Some(Kind::Accumulate) => {
                let staged = call.ops.empty_message(&ts);
                let values = batch.into_iter().map(|(_, _, v)| v).collect();
                match call.ops.accumulate(op, staged, values) {
                    Ok(value) => {
                        let ts = call.ops.time_of(&value).unwrap_or(ts);
                        call.counts[op as usize].emitted += 1;
                        call.forward(op, None, ts, value)?;
                    }
                    Err(error) => call.events.push(Event::Rejected {
                        op,
                        ts,
                        error,
                        value: None,
                    }),
                }
            }
            Some(Kind::Concatenate) => {
                let keys: Vec<OrderKey> = batch
                    .iter()
                    .map(|(_, _, v)| call.ops.time_of(v).map_or(UNSTAMPED, |t| t.order_key()))
                    .collect();
                let mut slots: Vec<Option<(u32, Hlc, O::Value)>> = batch.into_iter().map(Some).collect();
                for i in stable_order(&keys) {
                    let Some((_, _, value)) = slots[i].take() else { continue };
                    let item_ts = call.ops.time_of(&value).unwrap_or_else(|| ts.clone());
                    call.counts[op as usize].emitted += 1;
                    call.forward(op, None, item_ts, value)?;
                }
            }
            other => return Err(format!("operation {op} is not a window ({other:?})")),
        }
        Ok(call.events)
    }

    /// What each operation counted since the last call (then zero again).
    pub fn take_counts(&mut self) -> Vec<Counts> {
        let zero = vec![Counts::default(); self.counts.len()];
        std::mem::replace(&mut self.counts, zero)
    }

    fn call<'a, O: Operations>(&'a mut self, ops: &'a mut O, keep_rejected: bool) -> Call<'a, O> {
        Call {
            ops,
            topology: &self.topology,
            counts: &mut self.counts,
            keep_rejected,
            events: Vec::new(),
        }
    }
}

impl<O: Operations> Call<'_, O> {
    /// Sends the item along the edges out of `from` that `arm` takes (all when `None`): the
    /// last one gets the item itself, earlier ones a copy.
    fn forward(&mut self, from: u32, arm: Option<bool>, ts: Hlc, value: O::Value) -> Result<(), String> {
        let edges = self.topology.edges_from(from);
        let takes = |e: &Edge| arm.is_none() || e.arm == arm;
        let Some(last) = edges.iter().rposition(takes) else {
            return Ok(());
        };
        for e in edges[..last].iter().filter(|e| takes(e)) {
            let copy = self.ops.duplicate(&value);
            self.deliver(e.to, e.input, ts.clone(), copy)?;
        }
        let e = edges[last];
        self.deliver(e.to, e.input, ts, value)
    }

    /// Runs the item through operation `op` and onwards.
    fn deliver(&mut self, op: u32, input: u32, ts: Hlc, value: O::Value) -> Result<(), String> {
        let kind = self
            .topology
            .kind(op)
            .ok_or_else(|| format!("a connection leads to operation {op}, which the graph does not have"))?;
        let ix = op as usize;
        match kind {
            Kind::Accumulate | Kind::Concatenate => {
                self.events.push(Event::Held { op, input, ts, value });
                return Ok(());
            }
            Kind::Sink => {
                self.events.push(Event::Output { op, ts, value });
                return Ok(());
            }
            Kind::Source => return Err(format!("a connection leads into source operation {op}")),
            _ => {}
        }
        self.counts[ix].received += 1;
        match kind {
            Kind::Map => {
                let kept = self.keep_rejected.then(|| self.ops.duplicate(&value));
                match self.ops.map(op, value) {
                    Ok(next) => {
                        let ts = self.ops.time_of(&next).unwrap_or(ts);
                        self.emit(op, None, ts, next)
                    }
                    Err(error) => self.reject(op, ts, error, kept),
                }
            }
            Kind::Filter => {
                let copy = self.ops.duplicate(&value);
                match self.ops.filter(op, value) {
                    Ok(true) => self.emit(op, None, ts, copy),
                    Ok(false) => {
                        self.counts[ix].dropped += 1;
                        Ok(())
                    }
                    Err(error) => self.reject(op, ts, error, Some(copy)),
                }
            }
            Kind::Branch => {
                let copy = self.ops.duplicate(&value);
                match self.ops.branch(op, &ts, value) {
                    Ok(arm) => self.emit(op, Some(arm), ts, copy),
                    Err(error) => self.reject(op, ts, error, Some(copy)),
                }
            }
            Kind::Delay => {
                let mut copy = self.ops.duplicate(&value);
                match self.ops.delay(op, value, &ts) {
                    Ok(new) if new < ts => {
                        let error = format!("delay moved the timestamp back from {ts} to {new}");
                        self.reject(op, ts, error, Some(copy))
                    }
                    Ok(new) => {
                        self.ops.set_time(&mut copy, &new);
                        self.emit(op, None, new, copy)
                    }
                    Err(error) => self.reject(op, ts, error, Some(copy)),
                }
            }
            Kind::Accumulate | Kind::Concatenate | Kind::Sink | Kind::Source => unreachable!("handled above"),
        }
    }

    fn emit(&mut self, op: u32, arm: Option<bool>, ts: Hlc, value: O::Value) -> Result<(), String> {
        self.counts[op as usize].emitted += 1;
        self.forward(op, arm, ts, value)
    }

    fn reject(&mut self, op: u32, ts: Hlc, error: String, value: Option<O::Value>) -> Result<(), String> {
        let value = if self.keep_rejected { value } else { None };
        self.events.push(Event::Rejected { op, ts, error, value });
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(test)]
mod tests;
