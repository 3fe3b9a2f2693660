"""Native tests of the Python map's logic: `python3 -m unittest` in this directory (make test).

Expected outputs are the Rust map's (components/samples/temperature/src/lib.rs tests and
serde_json 1.0.154 as pinned by components/Cargo.lock); tests/all/python_operator.rs checks the
built component against the Rust module in the same graph.
"""

import math
import unittest

from temperature_record import MAX_DEPTH, convert, format_f64


def converted(payload):
    out = convert(payload)
    assert out is not None, f"{payload!r} was left unchanged"
    return out.decode("utf-8")


class MapTest(unittest.TestCase):
    def test_converts_fahrenheit_to_a_full_celsius_record(self):
        self.assertEqual(
            converted(b'{"temperature":{"value":1209,"unit":"F"}}'),
            '{"temperature":{"value":653.8888888888889,"count":0,"max":0.0,"min":0.0,'
            '"average":0.0,"last":0.0,"unit":"C","overtemp":false}}',
        )

    def test_reserializes_celsius(self):
        self.assertEqual(
            converted(b'{"temperature":{"unit":"C","value":21.5}}'),
            '{"temperature":{"value":21.5,"count":0,"max":0.0,"min":0.0,"average":0.0,'
            '"last":0.0,"unit":"C","overtemp":false}}',
        )

    def test_converts_statistics_of_a_fahrenheit_summary(self):
        self.assertEqual(
            converted(
                b'{"temperature":{"count":2,"max":212,"min":32,"average":122,"last":212,"unit":"F"}}'
            ),
            '{"temperature":{"count":2,"max":100.0,"min":0.0,"average":50.0,"last":100.0,'
            '"unit":"C","overtemp":false}}',
        )

    def test_leaves_other_payloads_alone(self):
        for payload in [
            b'{"humidity":{"value":40}}',
            b"not json",
            b"\x89PNG\r\n\x1a\n\0\0",
            b"",
            b'{"temperature":{"value":3,"unit":"K"}}',
            b'{"temperature":{"value":3}}',
            b'{"temperature":{"value":"hot","unit":"C"}}',
            b'{"temperature":{"value":true,"unit":"C"}}',
            b'{"temperature":{"value":NaN,"unit":"C"}}',
            b'{"temperature":{"value":1e400,"unit":"C"}}',
            b'{"temperature":{"value":1,"value":2,"unit":"C"}}',
            b'{"temperature":{"count":1.0,"unit":"C"}}',
            b'{"temperature":{"count":-1,"unit":"C"}}',
            b'{"temperature":{"count":18446744073709551616,"unit":"C"}}',
            b'{"temperature":{"max":null,"unit":"C"}}',
            b'{"temperature":{"overtemp":1,"unit":"C"}}',
            b'{"temperature":{"value":1,"unit":"C","\xff":0}}',
            b'\xef\xbb\xbf{"temperature":{"value":1,"unit":"C"}}',
            b'{"temperature":{"value":1,"unit":"C"}} trailing',
        ]:
            with self.subTest(payload=payload):
                self.assertIsNone(convert(payload))

    def test_reads_what_serde_reads(self):
        record = '{"temperature":{"value":-17.22222222222222,"count":0,"max":0.0,"min":0.0,' \
            '"average":0.0,"last":0.0,"unit":"C","overtemp":false}}'
        for payload in [
            b'{"temperature":{"value":1,"unit":"F"},"other":[1,{"x":null}]}',
            b'{"temperature":{"value":1,"unit":"F","extra":1e400,"more":"\xff"}}',
            b'{"temperature":{"value":1,"unit":"F","x":1,"x":2}}',
            b'{"temperature":{"value":1,"unit":{"F":null}}}',
            b'{"temperature":[1,0,0,0,0,0,"F"]}',
            b'[{"value":1,"unit":"F"}]',
            b' \r\n{"temperature":{"unit":"F","value":1.0}}\t',
        ]:
            with self.subTest(payload=payload):
                self.assertEqual(converted(payload), record)

    def test_nesting_is_read_up_to_max_depth(self):
        def nested(depth, open_, empty, close):
            # The record itself is two levels deep, `empty` one more.
            inner = open_ * (depth - 3) + empty + close * (depth - 3)
            return ('{"temperature":{"value":1,"unit":"F","x":' + inner + "}}").encode()

        for open_, empty, close in (("[", "[]", "]"), ('{"a":', "{}", "}")):
            with self.subTest(open=open_):
                self.assertIsNotNone(convert(nested(MAX_DEPTH, open_, empty, close)))
                self.assertIsNone(convert(nested(MAX_DEPTH + 1, open_, empty, close)))
        # Brackets inside strings do not nest.
        strings = '"[{\\\"[",' * (2 * MAX_DEPTH)
        self.assertIsNotNone(
            convert(('{"temperature":{"value":1,"unit":"F","x":[' + strings + "0]}}").encode())
        )
        self.assertIsNone(convert(b"[" * 100_000 + b"]" * 100_000))

    def test_negative_zero_keeps_its_sign(self):
        self.assertIn('"value":-0.0,', converted(b'{"temperature":{"value":-0,"unit":"C"}}'))

    def test_overflowing_conversion_writes_null(self):
        self.assertIn(
            '"value":null,',
            converted(b'{"temperature":{"value":-1.7976931348623157e308,"unit":"F"}}'),
        )


class FloatFormatTest(unittest.TestCase):
    def test_like_serde_json(self):
        for value, text in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (653.8888888888889, "653.8888888888889"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (1e-5, "0.00001"),
            (1.5e-7, "1.5e-7"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e20, "1.2345e+20"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (math.inf, "null"),
            (math.nan, "null"),
        ]:
            with self.subTest(value=value):
                self.assertEqual(format_f64(value), text)


if __name__ == "__main__":
    unittest.main()
