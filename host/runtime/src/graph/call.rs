//! Calls into the live instance: one typed entry point per operation, each call bounded by the
//! epoch deadline and sampled into the latency histogram, its failure told apart as a rejection
//! (`process` returned `Err`) or a trap.

use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use wasmflow_wire::Hlc;
use wasmtime::component::TypedFunc;
use wasmtime::Store;

use crate::bindings::{DataModel, HybridLogicalClock, OperatorError};
use crate::item::Item;
use crate::store::HostState;

/// Tick length of the epoch clock that bounds operator calls. Its thread wakes once a tick
/// whether or not a call runs, which an idle process pays for (at 10 ms: a hundred wake-ups a
/// second, ≈ 1 µs per message at 2,000 msg/s); a call is cut off less than two ticks after its
/// timeout ([`ticks`]).
pub const EPOCH_TICK: Duration = Duration::from_millis(50);

/// One operator call in this many is timed into `operator_latency_seconds`. Timing every call
/// costs two clock reads and the histogram's lock per call, and graphs that share series (the
/// same graph run on several threads) would take turns on that lock; one in 16 still fills the
/// buckets within a second at any rate worth a histogram.
pub const LATENCY_SAMPLE: u32 = 16;

/// Epoch ticks in a call's deadline: the timeout rounded up to whole ticks, and one more, since
/// a call starts part-way through a tick. So a call is never cut off before its timeout, and
/// less than two ticks after it. Capped at half the epoch counter's range: wasmtime adds the
/// deadline to the current epoch unchecked.
pub fn ticks(call_timeout: Duration) -> u64 {
    let whole = call_timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
    u64::try_from(whole)
        .unwrap_or(u64::MAX)
        .saturating_add(1)
        .min(u64::MAX / 2)
}

pub(super) type SourceFn = TypedFunc<(Option<String>, HybridLogicalClock), ((HybridLogicalClock, Option<String>),)>;
pub(super) type SinkFn = TypedFunc<(HybridLogicalClock,), (String,)>;
pub(super) type ConcatenateFn = TypedFunc<(Vec<(u32, DataModel)>,), (Vec<DataModel>,)>;
pub(super) type MapFn = TypedFunc<(DataModel,), (Result<DataModel, OperatorError>,)>;
pub(super) type FilterFn = TypedFunc<(DataModel,), (Result<bool, OperatorError>,)>;
pub(super) type BranchFn = TypedFunc<(HybridLogicalClock, DataModel), (Result<bool, OperatorError>,)>;
pub(super) type AccumulateFn = TypedFunc<(DataModel, Vec<DataModel>), (Result<DataModel, OperatorError>,)>;
pub(super) type DelayFn = TypedFunc<(DataModel, HybridLogicalClock), (Result<HybridLogicalClock, OperatorError>,)>;

/// The typed entry points of one operation in the live instance.
pub(super) enum OpFuncs {
    Source(SourceFn),
    Sink(SinkFn),
    /// wasmflow's own source plumbing (an operation without a module): the router runs the
    /// same Rust the component is built from (`wasmflow_source::event_time`) instead of a
    /// cross-component call per message. The component stays in the composition, so the
    /// artifact is complete for any host; this host knows what it does and skips the call.
    NativeSource,
    /// wasmflow's own sink plumbing, likewise (`wasmflow_sink::ts_value`).
    NativeSink,
    Concatenate(ConcatenateFn),
    Map(MapFn),
    Filter(FilterFn),
    Branch(BranchFn),
    Accumulate(AccumulateFn),
    Delay(DelayFn),
}

/// Why an operator call did not produce a value.
pub(super) enum CallFailure {
    /// `process` returned `Err`: the item is dropped on this path.
    Rejected(String),
    /// The call trapped (panic, out-of-bounds, interrupted loop, memory limit).
    Trapped(String),
}

/// The runtime's own series of one operation.
pub(super) struct NodeStats {
    /// The operation, for its call's span.
    pub operation: std::sync::Arc<str>,
    pub messages_in: Counter,
    pub messages_out: Counter,
    pub dropped: Counter,
    pub errors: Counter,
    pub traps: Counter,
    pub latency: Histogram,
    /// Calls of this operation so far: every [`LATENCY_SAMPLE`]th is timed.
    pub calls: u32,
}

/// A live instance: its store and each operation's entry point.
pub(super) struct Live {
    pub store: Store<HostState>,
    pub funcs: Vec<OpFuncs>,
    /// The epoch deadline of one call.
    pub ticks: u64,
    /// The graph's own router, when it runs with `--router composed`.
    pub router: Option<super::composed::RouterFuncs>,
}

impl Live {
    /// Runs `f` under the call deadline, timing one call in [`LATENCY_SAMPLE`].
    pub fn timed<R>(
        &mut self,
        stats: &mut NodeStats,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallFailure> {
        let _span =
            tracing::info_span!(target: wasmflow_transport::TRACE_TARGET, "operation", name = &*stats.operation)
                .entered();
        self.store.set_epoch_deadline(self.ticks);
        let mark = self.store.data().stderr_mark();
        let sampled = stats.calls.is_multiple_of(LATENCY_SAMPLE);
        stats.calls = stats.calls.wrapping_add(1);
        let r = if sampled {
            let started = Instant::now();
            let r = f(&mut self.store);
            stats.latency.observe(started.elapsed().as_secs_f64());
            r
        } else {
            f(&mut self.store)
        };
        r.map_err(|t| CallFailure::Trapped(with_stderr(describe_trap(&t), &self.store.data().stderr_since(mark))))
    }

    /// Runs `f` (a call into the graph's router) under the call deadline; a trap is described
    /// with what the modules wrote to standard error meanwhile.
    pub fn routed<R>(&mut self, f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>) -> Result<R, String> {
        self.store.set_epoch_deadline(self.ticks);
        let mark = self.store.data().stderr_mark();
        f(&mut self.store).map_err(|t| with_stderr(describe_trap(&t), &self.store.data().stderr_since(mark)))
    }

    fn lower(&mut self, item: &Item) -> Result<DataModel, CallFailure> {
        item.lower(&mut self.store.data_mut().table)
            .map_err(|e| CallFailure::Trapped(e.to_string()))
    }

    fn lift(&mut self, dm: DataModel, ts: &Hlc) -> Result<Item, CallFailure> {
        Item::lift(&mut self.store.data_mut().table, dm, ts)
            .map_err(|e| CallFailure::Rejected(format!("unusable result: {e}")))
    }

    pub fn map(&mut self, op: usize, stats: &mut NodeStats, item: &Item) -> Result<Item, CallFailure> {
        let OpFuncs::Map(f) = &self.funcs[op] else {
            unreachable!("kind checked by caller")
        };
        let f = *f;
        let arg = self.lower(item)?;
        let (r,) = self.timed(stats, |s| f.call(s, (arg,)))?;
        let dm = r.map_err(|e| CallFailure::Rejected(e.message))?;
        self.lift(dm, &item.ts)
    }

    pub fn filter(&mut self, op: usize, stats: &mut NodeStats, item: &Item) -> Result<bool, CallFailure> {
        let OpFuncs::Filter(f) = &self.funcs[op] else {
            unreachable!("kind checked by caller")
        };
        let f = *f;
        let arg = self.lower(item)?;
        let (r,) = self.timed(stats, |s| f.call(s, (arg,)))?;
        r.map_err(|e| CallFailure::Rejected(e.message))
    }

    pub fn branch(&mut self, op: usize, stats: &mut NodeStats, item: &Item) -> Result<bool, CallFailure> {
        let OpFuncs::Branch(f) = &self.funcs[op] else {
            unreachable!("kind checked by caller")
        };
        let f = *f;
        let arg = self.lower(item)?;
        let hlc = item.hlc();
        let (r,) = self.timed(stats, |s| f.call(s, (hlc, arg)))?;
        r.map_err(|e| CallFailure::Rejected(e.message))
    }

    pub fn delay(&mut self, op: usize, stats: &mut NodeStats, item: &Item) -> Result<Hlc, CallFailure> {
        let OpFuncs::Delay(f) = &self.funcs[op] else {
            unreachable!("kind checked by caller")
        };
        let f = *f;
        let arg = self.lower(item)?;
        let hlc = item.hlc();
        let (r,) = self.timed(stats, |s| f.call(s, (arg, hlc)))?;
        let new = r.map_err(|e| CallFailure::Rejected(e.message))?;
        let new = Hlc::from(&new);
        if new < item.ts {
            return Err(CallFailure::Rejected(format!(
                "delay moved the timestamp back from {} to {new}",
                item.ts
            )));
        }
        Ok(new)
    }

    pub fn accumulate(
        &mut self,
        op: usize,
        stats: &mut NodeStats,
        ts: &Hlc,
        items: &[Item],
    ) -> Result<Item, CallFailure> {
        let OpFuncs::Accumulate(f) = &self.funcs[op] else {
            unreachable!("kind checked by caller")
        };
        let f = *f;
        let staged = self.lower(&Item::empty_message(ts.clone()))?;
        let mut args = Vec::with_capacity(items.len());
        for i in items {
            args.push(self.lower(i)?);
        }
        let (r,) = self.timed(stats, |s| f.call(s, (staged, args)))?;
        let dm = r.map_err(|e| CallFailure::Rejected(e.message))?;
        self.lift(dm, ts)
    }

    pub fn concatenate(
        &mut self,
        op: usize,
        stats: &mut NodeStats,
        ts: &Hlc,
        batch: Vec<(u32, Item)>,
    ) -> Result<Vec<Item>, CallFailure> {
        let OpFuncs::Concatenate(f) = &self.funcs[op] else {
            unreachable!("kind checked by caller")
        };
        let f = *f;
        let mut args = Vec::with_capacity(batch.len());
        for (ix, i) in &batch {
            args.push((*ix, self.lower(i)?));
        }
        let (r,) = self.timed(stats, |s| f.call(s, (args,)))?;
        r.into_iter().map(|dm| self.lift(dm, ts)).collect()
    }
}

/// A trap report with what the module wrote to standard error during the call (a Rust
/// operator's panic message is there, not in the trap).
pub fn with_stderr(trap: String, stderr: &str) -> String {
    if stderr.is_empty() {
        trap
    } else {
        format!("{trap}; the module wrote: {stderr}")
    }
}

/// A trap as one line: the trap code and the guest's backtrace frames when present.
pub fn describe_trap(e: &wasmtime::Error) -> String {
    let mut s = String::new();
    if let Some(t) = e.downcast_ref::<wasmtime::Trap>() {
        s.push_str(&t.to_string());
    } else {
        s.push_str(&e.to_string());
    }
    if let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        let frames: Vec<String> = bt
            .frames()
            .iter()
            .take(4)
            .filter_map(|f| f.func_name().map(str::to_owned))
            .collect();
        if !frames.is_empty() {
            s.push_str(" at ");
            s.push_str(&frames.join(" ← "));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call that starts just before the clock ticks has one tick fewer than its deadline
    /// counts, and one that starts just after has them all.
    #[test]
    fn a_call_is_cut_off_after_its_timeout_and_within_two_ticks() {
        for ms in [0, 1, 49, 50, 51, 100, 300, 5_000, 3_600_000] {
            let timeout = Duration::from_millis(ms);
            let n = u32::try_from(ticks(timeout)).expect("a small deadline");
            assert!(EPOCH_TICK * (n - 1) >= timeout, "{ms} ms: {n} ticks cut it short");
            assert!(EPOCH_TICK * n < timeout + 2 * EPOCH_TICK, "{ms} ms: {n} ticks run on");
        }
        assert_eq!(ticks(Duration::MAX), u64::MAX / 2, "room left for the current epoch");
    }
}
