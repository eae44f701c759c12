"""Application codecs: Java's Bytes.toBytes byte for byte, text as the shell writes it."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from culvert_py.codecs import CODECS, ROW_KEY_CODECS, codec_for
from culvert_py.errors import EncodingError
from culvert_py.values import check_value

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_AWARE = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
_FLOAT = st.floats(allow_nan=True, allow_infinity=True)

#: Every codec with the values it holds exactly.
VALUES = {
    ("int", "int64"): st.integers(-(2**63), 2**63 - 1),
    ("int", "int32"): st.integers(-(2**31), 2**31 - 1),
    ("int", "int16"): st.integers(-(2**15), 2**15 - 1),
    ("int", "text"): st.integers(-(2**63), 2**63 - 1),
    ("float", "float64"): _FLOAT,
    ("float", "float32"): st.floats(width=32),
    ("float", "text"): _FLOAT,
    ("str", "utf8"): st.text(),
    ("bytes", "raw"): st.binary(),
    ("bool", "bool"): st.booleans(),
    ("bool", "text"): st.booleans(),
    ("datetime", "epoch_millis"): _AWARE.map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
    ),
    ("datetime", "epoch_seconds"): _AWARE.map(lambda d: d.replace(microsecond=0)),
    ("datetime", "iso8601"): _AWARE,
}


def test_every_codec_is_covered_and_the_first_is_the_default():
    assert set(VALUES) == {(t, c) for t, codecs in CODECS.items() for c in codecs}
    assert [CODECS[t][0] for t in ("int", "float", "str", "bytes", "bool", "datetime")] == [
        "int64",
        "float64",
        "utf8",
        "raw",
        "bool",
        "epoch_millis",
    ]
    assert ROW_KEY_CODECS == ("utf8", "raw", "int32", "int64")


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b and type(a) is type(b)


@pytest.mark.parametrize(("type_name", "codec"), sorted(VALUES))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_codec_round_trips_the_values_it_holds(type_name, codec, data):
    value = data.draw(VALUES[type_name, codec])
    c = codec_for(type_name, codec)
    encoded = c.encode(value)
    assert isinstance(encoded, bytes)
    back = c.decode(encoded)
    expected = 0.0 if isinstance(value, float) and value == 0.0 else value
    assert _same(back, expected)
    assert c.encode(back) == encoded


@pytest.mark.parametrize(
    ("type_name", "codec", "value", "data"),
    [
        ("int", "int32", 36, b"\x00\x00\x00$"),
        ("int", "int64", 36, b"\x00\x00\x00\x00\x00\x00\x00$"),
        ("int", "int64", -1, b"\xff" * 8),
        ("int", "int16", -2, b"\xff\xfe"),
        ("int", "int32", -(2**31), b"\x80\x00\x00\x00"),
        ("int", "text", -42, b"-42"),
        ("float", "float64", 1.5, struct.pack(">d", 1.5)),
        ("float", "float32", 1.5, struct.pack(">f", 1.5)),
        ("float", "text", 1.5, b"1.5"),
        ("float", "text", math.inf, b"Infinity"),
        ("float", "text", -math.inf, b"-Infinity"),
        ("float", "text", math.nan, b"NaN"),
        ("str", "utf8", "ø", "ø".encode()),
        ("bytes", "raw", b"\x00\xff", b"\x00\xff"),
        ("bool", "bool", True, b"\xff"),
        ("bool", "bool", False, b"\x00"),
        ("bool", "text", True, b"true"),
        (
            "datetime",
            "epoch_millis",
            _EPOCH + timedelta(milliseconds=1500),
            struct.pack(">q", 1500),
        ),
        ("datetime", "epoch_seconds", _EPOCH - timedelta(seconds=1), struct.pack(">q", -1)),
        ("datetime", "iso8601", datetime(2024, 5, 1, 12, tzinfo=UTC), b"2024-05-01T12:00:00+00:00"),
    ],
)
def test_bytes_are_exactly_what_java_and_the_shell_write(type_name, codec, value, data):
    c = codec_for(type_name, codec)
    assert c.encode(value) == data
    assert _same(c.decode(data), value)


@pytest.mark.parametrize(
    ("type_name", "codec", "data", "value"),
    [
        ("bool", "bool", b"\x01", True),  # Bytes.toBoolean: any byte but 0x00 is true
        ("bool", "text", b"TRUE", True),
        ("bool", "text", b"False", False),
        ("int", "text", b"+7", 7),
        ("int", "text", b"007", 7),
        ("float", "text", b"1.0E20", 1e20),
        ("float", "text", b"-0.0", 0.0),
        ("float", "float64", struct.pack(">d", -0.0), 0.0),
        ("datetime", "iso8601", b"2024-05-01T12:00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        (
            "datetime",
            "iso8601",
            b"2024-05-01T14:00:00+02:00",
            datetime(2024, 5, 1, 12, tzinfo=UTC),
        ),
    ],
)
def test_other_writers_spellings_decode_to_one_value(type_name, codec, data, value):
    back = codec_for(type_name, codec).decode(data)
    assert _same(back, value)
    if isinstance(back, datetime):
        assert back.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("type_name", "codec", "data", "reason"),
    [
        ("int", "int32", b"\x00\x00\x01", "expected 4 byte(s), got 3"),
        ("int", "int64", b"", "expected 8 byte(s), got 0"),
        ("int", "int16", b"\x00" * 4, "expected 2 byte(s), got 4"),
        ("int", "text", b"4x2", "not a decimal integer"),
        ("int", "text", b" 42", "not a decimal integer"),
        ("int", "text", b"", "not a decimal integer"),
        ("int", "text", b"9" * 30, "out of int64 range"),
        ("int", "text", b"9223372036854775808", "out of int64 range"),
        ("float", "float64", b"\x00" * 4, "expected 8 byte(s), got 4"),
        ("float", "float32", b"\x00" * 8, "expected 4 byte(s), got 8"),
        ("float", "text", b"one", "not a decimal number"),
        ("float", "text", "١".encode(), "not ASCII text"),
        ("str", "utf8", b"\xff\xfe", "not valid UTF-8"),
        ("bool", "bool", b"", "expected 1 byte(s), got 0"),
        ("bool", "bool", b"\x00\x00", "expected 1 byte(s), got 2"),
        ("bool", "text", b"yes", "expected 'true' or 'false'"),
        ("datetime", "epoch_millis", b"\x00" * 4, "expected 8 byte(s), got 4"),
        ("datetime", "epoch_seconds", struct.pack(">q", 2**62), "outside datetime's range"),
        ("datetime", "iso8601", b"yesterday", "not an ISO-8601 date-time"),
    ],
)
def test_bytes_that_do_not_decode_say_why_on_one_line(type_name, codec, data, reason):
    with pytest.raises(EncodingError) as err:
        codec_for(type_name, codec).decode(data)
    message = str(err.value)
    assert message.startswith(f"{codec}: ")
    assert reason in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("type_name", "codec", "value", "reason"),
    [
        ("int", "int32", 2**40, "int32 cannot hold int 1099511627776: out of range"),
        ("int", "int16", -(2**15) - 1, "int16 cannot hold int -32769: out of range"),
        ("int", "int64", 2**63, "out of range"),
        ("float", "float32", 1e300, "float32 cannot hold float 1e+300: out of range"),
        ("float", "float32", 0.1, "not exactly representable"),
        (
            "datetime",
            "epoch_millis",
            _EPOCH + timedelta(microseconds=1),
            "it holds whole milliseconds only",
        ),
        ("datetime", "epoch_seconds", _EPOCH + timedelta(milliseconds=1), "whole seconds only"),
        ("datetime", "iso8601", datetime(2024, 1, 1), "naive datetime"),
        ("int", "int64", True, "expected int, got bool"),
        ("bool", "bool", 1, "expected bool, got int"),
        ("str", "utf8", "\ud800", "lone surrogate"),
    ],
)
def test_values_a_codec_cannot_hold_exactly_are_refused(type_name, codec, value, reason):
    with pytest.raises(EncodingError) as err:
        codec_for(type_name, codec).encode(value, column="users.x")
    assert reason in str(err.value)
    assert str(err.value).startswith("column 'users.x': ")


def test_encode_keeps_the_instant_of_an_aware_datetime():
    local = datetime(2024, 5, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    for codec in CODECS["datetime"]:
        c = codec_for("datetime", codec)
        assert c.decode(c.encode(local)) == local


def test_unknown_codecs_name_the_known_ones():
    with pytest.raises(EncodingError, match=r"'int8' is not a codec of int \(known: int64, "):
        codec_for("int", "int8")
    with pytest.raises(EncodingError, match="unknown column type 'decimal'"):
        codec_for("decimal", "text")


@pytest.mark.parametrize(("type_name", "codec"), sorted(VALUES))
@settings(max_examples=60, deadline=None)
@given(data=st.one_of(st.binary(max_size=10), st.sampled_from([b"-0", b"nan", b"-0.0"])))
def test_decoded_values_are_already_normalised_for_any_bytes(type_name, codec, data):
    # Decoders skip check_value where they normalise themselves: any bytes that decode must
    # give exactly what check_value would make of them (-0.0, NaN, UTC datetimes).
    try:
        value = codec_for(type_name, codec).decode(data)
    except EncodingError:
        return
    normal = check_value(value, type_name)
    assert type(normal) is type(value)
    assert normal == value or (value != value and normal != normal)
    if type_name == "float":
        assert math.copysign(1.0, value) == math.copysign(1.0, normal)
    if type_name == "datetime":
        assert value.utcoffset() == timedelta(0)
