"""`filter-py`: a temperature threshold filter, wasmflow's own, written in the platform's Python
style (the `filter_impl` bindings of world `filter-impl`, a class `Filter(exports.Filter)`).

A `wasm-graph:processor@1.1.0` filter built by componentize-py
(scripts/build-components.sh -> target/modules/filter-py.wasm). A temperature reading
`{"temperature":{"value":v,"unit":"F"|"C"}}` passes when it is at least `temperature_threshold`
degrees Celsius (a parameter, default 20; a °F reading is converted first); every other payload,
JSON or not, passes, so the filter only ever drops cold readings.

The bindings (`filter_impl`) are generated at build time into the build directory, never
committed.
"""

import json

from filter_impl import exports, imports
from filter_impl.imports import types

CONTEXT = "filter-py/filter"
DEFAULT_THRESHOLD = 20.0

# The threshold `init` read. Module state, not an attribute: componentize-py makes a new
# `Filter` object for each call, so what `init` keeps on `self` is gone when `process` runs.
_threshold = DEFAULT_THRESHOLD


def payload_bytes(payload):
    """The bytes of a `BufferOrBytes` (a host buffer is read)."""
    if isinstance(payload, types.BufferOrBytes_Buffer):
        return payload.value.read()
    return payload.value


def celsius(reading):
    """The reading in °C, or None when it is no temperature reading."""
    if not isinstance(reading, dict):
        return None
    temperature = reading.get("temperature")
    if not isinstance(temperature, dict):
        return None
    value = temperature.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if str(temperature.get("unit", "C")).upper() == "F":
        return (value - 32) * 5.0 / 9.0
    return float(value)


class Filter(exports.Filter):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        global _threshold
        _threshold = DEFAULT_THRESHOLD
        for key, value in configuration.properties:
            if key == "temperature_threshold":
                try:
                    _threshold = float(value)
                except ValueError:
                    imports.logger.log(
                        imports.logger.Level.ERROR,
                        CONTEXT,
                        f"temperature_threshold must be a number of degrees Celsius, got {value!r}",
                    )
                    return False
        imports.logger.log(imports.logger.Level.INFO, CONTEXT, f"passing readings of at least {_threshold} °C")
        return True

    def process(self, message: types.DataModel) -> bool:
        if isinstance(message, types.DataModel_Message):
            payload = message.value.payload
        elif isinstance(message, types.DataModel_BufferOrBytes):
            payload = message.value
        else:
            return True  # a snapshot is no reading
        try:
            reading = json.loads(payload_bytes(payload))
        except ValueError:
            return True  # not JSON: not a reading this filter judges
        value = celsius(reading)
        return value is None or value >= _threshold
