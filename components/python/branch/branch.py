"""`branch-py`: routes temperature readings to arm True and everything else to arm False;
wasmflow's own, written in the platform's Python style (the `branch_impl` bindings of world
`branch-impl`, a class `Branch(exports.Branch)`), with the semantics of the platform's
temperature/humidity branch sample.

A `wasm-graph:processor@1.1.0` branch built by componentize-py
(scripts/build-components.sh -> target/modules/branch-py.wasm). A payload is a temperature
reading when it is a JSON object whose `temperature` holds a numeric `value`.

The bindings (`branch_impl`) are generated at build time into the build directory, never
committed.
"""

import json

from branch_impl import exports, imports
from branch_impl.imports import types

CONTEXT = "branch-py/branch"


def payload_bytes(payload):
    """The bytes of a `BufferOrBytes` (a host buffer is read)."""
    if isinstance(payload, types.BufferOrBytes_Buffer):
        return payload.value.read()
    return payload.value


def is_temperature(data):
    try:
        reading = json.loads(data)
    except ValueError:
        return False
    temperature = reading.get("temperature") if isinstance(reading, dict) else None
    value = temperature.get("value") if isinstance(temperature, dict) else None
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Branch(exports.Branch):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        imports.logger.log(imports.logger.Level.INFO, CONTEXT, "temperatures to arm True, the rest to arm False")
        return True

    def process(self, timestamp, message: types.DataModel) -> bool:
        if isinstance(message, types.DataModel_Message):
            return is_temperature(payload_bytes(message.value.payload))
        if isinstance(message, types.DataModel_BufferOrBytes):
            return is_temperature(payload_bytes(message.value))
        return False
