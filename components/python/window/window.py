"""`window-py`: the Rust `window` sample's delay, written in Python in the platform's style (the
`delay_impl` bindings of world `delay-impl`, a class `Delay(exports.Delay)`); wasmflow's own.

A `wasm-graph:processor@1.1.0` delay built by componentize-py
(scripts/build-components.sh -> target/modules/window-py.wasm). It moves every item to the end
of its 10 s tumbling window: the next 10 s boundary strictly after the item's time, at
millisecond precision (an item exactly on a boundary moves to the next one), counter 0, node id
kept, exactly as components/samples/window does.

The bindings (`delay_impl`) are generated at build time into the build directory, never
committed.
"""

from delay_impl import exports, imports
from delay_impl.imports import types
from delay_impl.imports.hybrid_logical_clock import HybridLogicalClock, Timespec

CONTEXT = "window-py/delay"
WINDOW_MILLIS = 10_000


def next_boundary(secs, nanos):
    """(secs, nanos) of the next window boundary strictly after the time, in whole milliseconds."""
    millis = secs * 1000 + nanos // 1_000_000
    end = (millis // WINDOW_MILLIS + 1) * WINDOW_MILLIS
    return end // 1000, (end % 1000) * 1_000_000


class Delay(exports.Delay):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        imports.logger.log(imports.logger.Level.INFO, CONTEXT, f"{WINDOW_MILLIS} ms tumbling windows")
        return True

    def process(self, data: types.DataModel, timestamp: HybridLogicalClock) -> HybridLogicalClock:
        secs, nanos = next_boundary(timestamp.timestamp.secs, timestamp.timestamp.nanos)
        return HybridLogicalClock(timestamp=Timespec(secs=secs, nanos=nanos), counter=0, node_id=timestamp.node_id)
