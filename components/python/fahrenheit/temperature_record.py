"""The temperature record, read and written byte for byte as the Rust samples do.

A port of the parts of `components/sample-common/src/records.rs` and
`components/samples/temperature/src/lib.rs` (`map`) that the Python map needs, with no WIT
imports, so it is unit-tested by plain CPython (`python3 -m unittest` in this directory).

Reading follows serde's derived `Deserialize` on serde_json 1.0.154 (the version
components/Cargo.lock pins), so that a payload is a temperature here exactly when it is one for
the Rust map:

* the payload is `{"temperature": RECORD, ...}` (other top-level keys ignored) or, as serde also
  accepts for a struct, the one-element array `[RECORD]`;
* RECORD is an object with the fields `value` (number or null), `count` (integer in
  [0, 2^64)), `max`, `min`, `average`, `last` (numbers), `unit` (`"F"` or `"C"`, or serde's
  `{"F": null}` spelling of an enum variant; required) and
  `overtemp` (boolean), all but `unit` optional, unknown fields ignored, or the array of those
  fields in that order (7 or 8 elements);
* a repeated known field, a key that is not valid Unicode, `NaN`/`Infinity`, or a number out of
  the f64 range where a field uses it makes the payload "not a temperature".

Writing follows serde_json's compact output: fields in the order `value, count, max, min,
average, last, unit, overtemp` (`value` only when present), floats as zmij (serde_json's float
formatter) writes them, non-finite floats as `null`.

Known difference: a payload nested deeper than MAX_DEPTH (500) levels is not read here (it
passes unchanged), while serde_json skips an unknown field of any depth. CPython's json parser
recurses once per level, and inside the component it exhausts the wasm stack (a trap) at
between 1000 and 1500 levels: the limit keeps every payload from trapping the operator.
"""

import json
import math
import re

FAHRENHEIT = "F"
CELSIUS = "C"

# Deepest nesting of arrays and objects read (see the module's docstring).
MAX_DEPTH = 500

_TWO_64 = 1 << 64
_STATS = ("max", "min", "average", "last")


class NotATemperature(ValueError):
    """The payload is not a temperature record (the Rust map leaves such payloads alone)."""


def fahrenheit_to_celsius(value):
    """Exactly `(v - 32) * 5 / 9` in this order, as records.rs computes it (1209 -> 653.888...9)."""
    return (value - 32.0) * 5.0 / 9.0


# --- reading -----------------------------------------------------------------------------------


class _Object(dict):
    """A JSON object that remembers which keys it saw more than once (serde refuses a repeated
    field where json.loads would keep the last one)."""

    __slots__ = ("repeated",)


def _object(pairs):
    obj = _Object()
    obj.repeated = set()
    for key, value in pairs:
        if key in obj:
            obj.repeated.add(key)
        obj[key] = value
    return obj


def _parse_int(text):
    # serde_json reads `-0` as the float -0.0 (so it is no u64 and keeps its sign as a value).
    if text == "-0":
        return -0.0
    try:
        return int(text)
    except ValueError:
        # More digits than Python converts (4300): far outside f64 anyway.
        return -math.inf if text.startswith("-") else math.inf


def _refuse_constant(name):
    raise NotATemperature(f"{name} is not JSON")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object,
    parse_int=_parse_int,
    parse_constant=_refuse_constant,
)


def _has_surrogate(text):
    # A lone surrogate, from a `\ud800` escape or from an invalid UTF-8 byte decoded with
    # surrogateescape: serde_json refuses both in a key it reads (ignored string values pass).
    return any("\ud800" <= c <= "\udfff" for c in text)


def _number(value, field):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NotATemperature(f"`{field}` is not a number")
    try:
        value = float(value)
    except OverflowError:
        raise NotATemperature(f"`{field}` is out of the f64 range") from None
    if not math.isfinite(value):
        raise NotATemperature(f"`{field}` is out of the f64 range")
    return value


def _count(value):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _TWO_64:
        raise NotATemperature("`count` is not a u64")
    return value


def _unit(value):
    # serde_json also reads a unit enum variant from its externally tagged form `{"F": null}`.
    if isinstance(value, _Object) and len(value) == 1 and not value.repeated:
        (value, payload), = value.items()
        if payload is not None:
            raise NotATemperature("`unit` is neither \"F\" nor \"C\"")
    if not isinstance(value, str) or value not in (FAHRENHEIT, CELSIUS):
        raise NotATemperature("`unit` is neither \"F\" nor \"C\"")
    return value


def _overtemp(value):
    if not isinstance(value, bool):
        raise NotATemperature("`overtemp` is not a boolean")
    return value


def _optional_number(value, field):
    return None if value is None else _number(value, field)


# Field readers in declaration (and array) order; `unit` has no default.
_FIELDS = (
    ("value", lambda v: _optional_number(v, "value"), None),
    ("count", _count, 0),
    ("max", lambda v: _number(v, "max"), 0.0),
    ("min", lambda v: _number(v, "min"), 0.0),
    ("average", lambda v: _number(v, "average"), 0.0),
    ("last", lambda v: _number(v, "last"), 0.0),
    ("unit", _unit, None),
    ("overtemp", _overtemp, False),
)
_FIELD_NAMES = frozenset(name for name, _, _ in _FIELDS)


def _check_keys(obj, known):
    for key in obj:
        if _has_surrogate(key):
            raise NotATemperature("a key is not valid Unicode")
    repeated = obj.repeated & known
    if repeated:
        raise NotATemperature(f"duplicate field `{sorted(repeated)[0]}`")


def _record(raw):
    """A temperature record (a dict with every field) from its JSON object or array form."""
    if isinstance(raw, _Object):
        _check_keys(raw, _FIELD_NAMES)
        if "unit" not in raw:
            raise NotATemperature("missing field `unit`")
        return {
            name: read(raw[name]) if name in raw else default
            for name, read, default in _FIELDS
        }
    if isinstance(raw, list):
        if not 7 <= len(raw) <= len(_FIELDS):
            raise NotATemperature("a record array has 7 or 8 elements")
        return {
            name: read(raw[i]) if i < len(raw) else default
            for i, (name, read, default) in enumerate(_FIELDS)
        }
    raise NotATemperature("the record is neither an object nor an array")


# A JSON string (whose brackets do not nest) or a bracket.
_NESTING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[][{}]', re.DOTALL)


def _too_deep(text):
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    for token in _NESTING.finditer(text):
        c = token.group()
        if c == "[" or c == "{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif c == "]" or c == "}":
            depth -= 1
    return False


def parse_temperature(payload):
    """The record of a temperature payload (bytes), or NotATemperature saying why not."""
    # serde_json validates UTF-8 only where it reads a string; surrogateescape keeps invalid
    # bytes inside ignored strings readable and turns them into surrogates elsewhere.
    text = bytes(payload).decode("utf-8", "surrogateescape")
    if _too_deep(text):
        raise NotATemperature(f"nested deeper than {MAX_DEPTH} levels")
    try:
        top = _DECODER.decode(text)
    except NotATemperature:
        raise
    except (ValueError, RecursionError) as e:
        raise NotATemperature(f"not JSON: {e}") from None
    if isinstance(top, _Object):
        _check_keys(top, {"temperature"})
        if "temperature" not in top:
            raise NotATemperature("missing field `temperature`")
        return _record(top["temperature"])
    if isinstance(top, list):
        if len(top) != 1:
            raise NotATemperature("a payload array has exactly one element")
        return _record(top[0])
    raise NotATemperature("the payload is neither an object nor an array")


# --- writing -----------------------------------------------------------------------------------


def format_f64(value):
    """A float as serde_json 1.0.154 writes it (zmij): the shortest round-trip digits, like
    Python's repr, laid out as `12.5`, `100.0`, `0.00001`, `1e+16`, `1.5e-7`; non-finite values
    as `null`."""
    if not math.isfinite(value):
        return "null"
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    text = repr(value)
    sign = ""
    if text.startswith("-"):
        sign, text = "-", text[1:]
    mantissa, _, exp = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    exponent = int(exp or "0") - len(fraction)  # value = digits * 10**exponent
    trimmed = digits.rstrip("0")
    exponent += len(digits) - len(trimmed)
    digits = trimmed
    point = len(digits) - 1 + exponent  # decimal exponent of the first digit
    if -5 <= point <= 15:
        if exponent >= 0:
            return f"{sign}{digits}{'0' * exponent}.0"
        if point >= 0:
            return f"{sign}{digits[:point + 1]}.{digits[point + 1:]}"
        return f"{sign}0.{'0' * (-point - 1)}{digits}"
    mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'+' if point >= 0 else '-'}{abs(point)}"


def dump_temperature(record):
    """`{"temperature":{...}}` in the Rust field order, compact, as UTF-8 bytes."""
    fields = []
    if record["value"] is not None:
        fields.append(f'"value":{format_f64(record["value"])}')
    fields.append(f'"count":{record["count"]}')
    for name in _STATS:
        fields.append(f'"{name}":{format_f64(record[name])}')
    fields.append(f'"unit":"{record["unit"]}"')
    fields.append(f'"overtemp":{"true" if record["overtemp"] else "false"}')
    return ('{"temperature":{' + ",".join(fields) + "}}").encode("utf-8")


# --- the map -----------------------------------------------------------------------------------


def to_celsius(record):
    """The record in °C. Statistics of a °F record are converted only when it summarises
    readings (`count > 0`): unknown statistics stay 0.0 (as the Rust map does)."""
    if record["unit"] == FAHRENHEIT:
        record = dict(record)
        if record["value"] is not None:
            record["value"] = fahrenheit_to_celsius(record["value"])
        if record["count"] > 0:
            for name in _STATS:
                record[name] = fahrenheit_to_celsius(record[name])
        record["unit"] = CELSIUS
    return record


def convert(payload):
    """The map on payload bytes: the new payload for a temperature (a °F one converted to °C, a
    °C one re-written as a full record), `None` for anything else (left exactly as it came)."""
    try:
        record = parse_temperature(payload)
    except NotATemperature:
        return None
    return dump_temperature(to_celsius(record))
