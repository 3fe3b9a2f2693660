"""`fahrenheit-py`: the temperature map of the Rust `temperature` sample, written in Python.

A `wasm-graph:processor@1.1.0` operator of world `map-impl`, built by componentize-py
(scripts/build-components.sh -> target/modules/fahrenheit-py.wasm). It converts
`{"temperature":{"value":v,"unit":"F"}}` to a full record in °C, with the same output bytes as
the Rust map (`temperature_record.py` says how), re-writes a °C record the same way, and passes
every other payload exactly as it came (a host buffer stays a buffer, never read twice).

The bindings (`map_impl`) are generated at build time into the build directory, never committed.
"""

import json

from map_impl import exports, imports
from map_impl.imports import types
from map_impl.imports.logger import Level

import temperature_record

CONTEXT = "fahrenheit-py/map"


def _describe(configuration):
    pairs = [f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in configuration.properties]
    noun = "property" if len(pairs) == 1 else "properties"
    return f"{len(pairs)} {noun}: [{', '.join(pairs)}]"


def _map_payload(payload):
    """The payload (a BufferOrBytes) after the map: the original one when it is unchanged."""
    if isinstance(payload, types.BufferOrBytes_Buffer):
        data = payload.value.read()
    else:
        data = payload.value
    converted = temperature_record.convert(data)
    if converted is None:
        return payload
    return types.BufferOrBytes_Bytes(value=converted)


class Map(exports.Map):
    def init(self, configuration: types.ModuleConfiguration) -> bool:
        imports.logger.log(Level.INFO, CONTEXT, f"init with {_describe(configuration)}")
        return True

    def process(self, message: types.DataModel) -> types.DataModel:
        if isinstance(message, types.DataModel_Message):
            message.value.payload = _map_payload(message.value.payload)
        elif isinstance(message, types.DataModel_BufferOrBytes):
            message.value = _map_payload(message.value)
        # A snapshot is no temperature: it passes as it came.
        return message
