"""Specification of culvert_py.encoding: byte order is value order, and every encoding decodes."""

import math
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from culvert_py.encoders import cell_decoder
from culvert_py.encoding import (
    COLUMN_TYPES,
    check_value,
    decode_tuple,
    decode_value,
    encode_str_prefix,
    encode_tuple,
    encode_value,
    prefix_successor,
)
from culvert_py.errors import EncodingError

_SETTINGS = settings(max_examples=300, deadline=None)
# Tests parametrised over the six types run six times; 150 examples each keeps the suite fast.
_PER_TYPE = settings(max_examples=150, deadline=None)
_TYPES = sorted(COLUMN_TYPES)

# Few-character alphabets make equal prefixes, embedded NULs and 0xFF bytes common, which is
# where escaping and termination go wrong; the full ranges catch everything else.
_STRS = st.one_of(
    st.text(alphabet="\x00\x01\xffab", max_size=6),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
)
_BYTES = st.one_of(
    st.lists(st.sampled_from([0x00, 0x01, 0x61, 0xFE, 0xFF]), max_size=6).map(bytes),
    st.binary(max_size=12),
)
_OFFSETS = st.builds(
    timezone,
    st.timedeltas(
        min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
    ),
)
_DATETIMES = st.one_of(
    # One day of margin keeps every offset's UTC instant inside datetime.min..max.
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_OFFSETS),
    st.sampled_from([datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)]),
)
_VALUES = {
    "int": st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.sampled_from([-(2**63), -1, 0, 1, 2**63 - 1]),
    ),
    "float": st.one_of(
        st.floats(),
        st.sampled_from([-math.inf, -0.0, 0.0, 5e-324, math.inf, math.nan]),
        st.integers(min_value=-(2**70), max_value=2**70),
    ),
    "str": _STRS,
    "bytes": _BYTES,
    "bool": st.booleans(),
    "datetime": _DATETIMES,
}


def _nullable(type_name: str) -> st.SearchStrategy:
    return st.one_of(st.none(), _VALUES[type_name])


def _key(value: object) -> tuple:
    """Oracle: Python's order, NULL first, -0.0 == 0.0, NaN after +inf and equal to NaN."""
    if value is None:
        return (0,)
    if isinstance(value, float) and math.isnan(value):
        return (2,)
    return (1, value)


def _cmp(left: object, right: object) -> int:
    return (left > right) - (left < right)


def _cmp_values(left: object, right: object, descending: bool) -> int:
    """Oracle comparison of two column values; NULL stays first when descending."""
    if left is None or right is None:
        return _cmp(left is not None, right is not None)
    return -_cmp(_key(left), _key(right)) if descending else _cmp(_key(left), _key(right))


def _same(decoded: object, expected: object) -> bool:
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(decoded, float) and math.isnan(decoded)
    return type(decoded) is type(expected) and decoded == expected


def _float_bits(bits: int) -> float:
    return struct.unpack(">d", struct.pack(">Q", bits))[0]


# --------------------------------------------------------------------------- order


@pytest.mark.parametrize("type_name", _TYPES)
@_PER_TYPE
@given(data=st.data())
def test_byte_order_is_value_order_whatever_follows(type_name, data):
    values = data.draw(st.lists(_nullable(type_name), min_size=2, max_size=8))
    # A trailing primary key must never change the order of distinct values.
    tails = data.draw(st.lists(st.binary(max_size=3), min_size=len(values), max_size=len(values)))
    # The oracle compares what is stored: an int in a float column is stored as float(int).
    stored = [check_value(v, type_name) for v in values]
    for descending in (False, True):
        encoded = [encode_value(v, type_name, descending=descending) for v in values]
        for left, left_enc, left_tail in zip(stored, encoded, tails, strict=True):
            for right, right_enc, right_tail in zip(stored, encoded, tails, strict=True):
                expected = _cmp_values(left, right, descending)
                assert _cmp(left_enc, right_enc) == expected, (left, right, descending)
                if expected:
                    assert _cmp(left_enc + left_tail, right_enc + right_tail) == expected


@pytest.mark.parametrize("type_name", _TYPES)
@_PER_TYPE
@given(data=st.data())
def test_sorted_values_equal_decoded_sorted_encodings(type_name, data):
    values = data.draw(st.lists(_nullable(type_name), max_size=20))
    expected = sorted((check_value(v, type_name) for v in values), key=_key)
    encodings = sorted(encode_value(v, type_name) for v in values)
    decoded = [decode_value(e, type_name)[0] for e in encodings]
    assert all(_same(d, e) for d, e in zip(decoded, expected, strict=True))


@_SETTINGS
@given(data=st.data())
def test_tuples_compare_like_python_tuples_then_primary_key(data):
    type_names = data.draw(st.lists(st.sampled_from(_TYPES), min_size=1, max_size=4))
    directions = data.draw(
        st.lists(st.booleans(), min_size=len(type_names), max_size=len(type_names))
    )
    left = [data.draw(_nullable(t)) for t in type_names]
    # Reusing the left element often makes the later elements and the key decide.
    right = [
        data.draw(st.one_of(st.just(v), _nullable(t)))
        for v, t in zip(left, type_names, strict=True)
    ]
    left_pk, right_pk = data.draw(st.binary(max_size=4)), data.draw(st.binary(max_size=4))

    expected = 0
    for lv, rv, t, desc in zip(left, right, type_names, directions, strict=True):
        expected = _cmp_values(check_value(lv, t), check_value(rv, t), desc)
        if expected:
            break
    if not expected:
        expected = _cmp(left_pk, right_pk)

    left_key = encode_tuple(left, type_names, descending=directions) + left_pk
    right_key = encode_tuple(right, type_names, descending=directions) + right_pk
    assert _cmp(left_key, right_key) == expected


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("type_name", _TYPES)
@_PER_TYPE
@given(data=st.data())
def test_decode_returns_the_normalised_value_and_the_end_offset(type_name, data):
    value = data.draw(_nullable(type_name))
    descending = data.draw(st.booleans())
    prefix, suffix = data.draw(st.binary(max_size=3)), data.draw(st.binary(max_size=3))
    encoded = encode_value(value, type_name, descending=descending)
    decoded, end = decode_value(
        prefix + encoded + suffix, type_name, len(prefix), descending=descending
    )
    assert _same(decoded, check_value(value, type_name))
    assert end == len(prefix) + len(encoded)
    # Decoding is canonical: re-encoding gives back the very same bytes.
    assert encode_value(decoded, type_name, descending=descending) == encoded


@pytest.mark.parametrize("type_name", _TYPES)
@_PER_TYPE
@given(data=st.data())
def test_concatenated_encodings_decode_one_after_another(type_name, data):
    values = data.draw(st.lists(_nullable(type_name), max_size=6))
    directions = data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    primary_key = data.draw(st.binary(max_size=8))
    blob = b"".join(
        encode_value(v, type_name, descending=d) for v, d in zip(values, directions, strict=True)
    )
    offset = 0
    for value, desc in zip(values, directions, strict=True):
        decoded, offset = decode_value(blob + primary_key, type_name, offset, descending=desc)
        assert _same(decoded, check_value(value, type_name))
    assert offset == len(blob)
    assert (blob + primary_key)[offset:] == primary_key


@_SETTINGS
@given(data=st.data())
def test_mixed_tuples_round_trip(data):
    type_names = data.draw(st.lists(st.sampled_from(_TYPES), max_size=6))
    directions = data.draw(
        st.lists(st.booleans(), min_size=len(type_names), max_size=len(type_names))
    )
    values = [data.draw(_nullable(t)) for t in type_names]
    encoded = encode_tuple(values, type_names, descending=directions)
    decoded, end = decode_tuple(encoded + b"\xffpk", type_names, descending=directions)
    assert end == len(encoded)
    expected = [check_value(v, t) for v, t in zip(values, type_names, strict=True)]
    assert all(_same(d, e) for d, e in zip(decoded, expected, strict=True))


def test_tuple_descending_accepts_one_bool_for_all_elements():
    values, types = (1, "a"), ("int", "str")
    assert encode_tuple(values, types, descending=True) == b"".join(
        encode_value(v, t, descending=True) for v, t in zip(values, types, strict=True)
    )
    decoded, _ = decode_tuple(encode_tuple(values, types, descending=True), types, descending=True)
    assert decoded == (1, "a")
    assert encode_tuple(values, types) == encode_tuple(values, types, descending=False)


# --------------------------------------------------------------------------- edge cases


def _ascending(type_name: str, values: list) -> None:
    encoded = [encode_value(v, type_name) for v in values]
    assert encoded == sorted(encoded) and len(set(encoded)) == len(encoded), values
    descending = [encode_value(v, type_name, descending=True) for v in values]
    assert descending[1:] == sorted(descending[1:], reverse=True)


def test_null_sorts_first_in_both_directions():
    for type_name in _TYPES:
        assert encode_value(None, type_name) == b"\x00"
        assert encode_value(None, type_name, descending=True) == b"\x00"
        assert decode_value(b"\x00", type_name, descending=True) == (None, 1)


def test_int_extremes_order():
    _ascending("int", [None, -(2**63), -(2**62), -1, 0, 1, 2**62, 2**63 - 1])


def test_float_order_runs_from_minus_inf_to_nan():
    tiny = 5e-324
    _ascending(
        "float",
        [None, -math.inf, -1.7976931348623157e308, -1.0, -tiny, 0.0, tiny, 1.0, math.inf, math.nan],
    )


def test_minus_zero_is_stored_as_zero():
    assert encode_value(-0.0, "float") == encode_value(0.0, "float")
    assert math.copysign(1.0, decode_value(encode_value(-0.0, "float"), "float")[0]) == 1.0
    assert math.copysign(1.0, check_value(-0.0, "float")) == 1.0


def test_every_nan_is_one_canonical_nan():
    nans = [math.nan, -math.nan, _float_bits(0x7FF0000000000001), _float_bits(0xFFFFFFFFFFFFFFFF)]
    assert all(math.isnan(n) for n in nans)
    assert len({encode_value(n, "float") for n in nans}) == 1
    assert encode_value(math.inf, "float") < encode_value(math.nan, "float")


def test_int_is_accepted_for_float_column():
    assert encode_value(3, "float") == encode_value(3.0, "float")
    assert _same(check_value(2**53, "float"), 2.0**53)


def test_str_edge_cases_order():
    _ascending(
        "str",
        [None, "", "\x00", "\x00\x00", "\x00\xff", "\x01", "a", "a\x00", "a\x00\x00", "a\x01",
         "ab", "\x7f", "\x80", "\xff", "\u07ff", "\u0800", "\uffff", "\U00010000", "\U0010ffff"],
    )  # fmt: skip


def test_bytes_edge_cases_order():
    _ascending(
        "bytes",
        [None, b"", b"\x00", b"\x00\x00", b"\x00\x01", b"\x00\xff", b"\x01", b"a", b"a\x00",
         b"ab", b"\xfe", b"\xff", b"\xff\x00", b"\xff\xff"],
    )  # fmt: skip


def test_bool_false_before_true():
    _ascending("bool", [None, False, True])


def test_datetime_extremes_keep_microseconds():
    lowest = datetime.min.replace(tzinfo=UTC)
    highest = datetime.max.replace(tzinfo=UTC)
    values = [
        lowest,
        lowest + timedelta(microseconds=1),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        highest - timedelta(microseconds=1),
        highest,
    ]
    _ascending("datetime", [None, *values])
    for value in values:
        assert decode_value(encode_value(value, "datetime"), "datetime")[0] == value


def test_datetime_is_converted_to_utc():
    paris_noon = datetime(2024, 6, 1, 12, 0, 0, 250, tzinfo=timezone(timedelta(hours=2)))
    utc_ten = datetime(2024, 6, 1, 10, 0, 0, 250, tzinfo=UTC)
    assert encode_value(paris_noon, "datetime") == encode_value(utc_ten, "datetime")
    decoded = decode_value(encode_value(paris_noon, "datetime"), "datetime")[0]
    assert decoded == utc_ten and decoded.tzinfo is UTC
    assert check_value(paris_noon, "datetime").tzinfo is UTC


def test_check_value_normalises_bytes_like_and_none():
    assert _same(check_value(bytearray(b"ab"), "bytes"), b"ab")
    assert _same(check_value(memoryview(b"ab"), "bytes"), b"ab")
    assert all(check_value(None, t) is None for t in _TYPES)


# --------------------------------------------------------------------------- prefixes


@_SETTINGS
@given(data=st.data())
def test_str_prefix_matches_exactly_the_strings_that_start_with_it(data):
    prefix = data.draw(_STRS)
    text = data.draw(st.one_of(_STRS, _STRS.map(lambda rest: prefix + rest)))
    for desc in (False, True):
        start = encode_str_prefix(prefix, descending=desc)
        encoded = encode_value(text, "str", descending=desc)
        assert text.startswith(prefix) == encoded.startswith(start)
        # ... so the scan [start, prefix_successor(start)) returns exactly those strings.
        stop = prefix_successor(start)
        assert text.startswith(prefix) == (start <= encoded and (stop is None or encoded < stop))


@_SETTINGS
@given(key=st.binary(max_size=6), suffix=st.binary(max_size=6))
def test_prefix_successor_is_above_every_extension(key, suffix):
    successor = prefix_successor(key)
    if successor is None:
        assert key.strip(b"\xff") == b""
    else:
        assert key + suffix < successor
        # Minimal: the successor's own predecessor in the prefix's range is an extension.
        assert successor[:-1] == key.rstrip(b"\xff")[:-1]


def test_prefix_successor_examples():
    assert prefix_successor(b"ab") == b"ac"
    assert prefix_successor(b"a\xff\xff") == b"b"
    assert prefix_successor(b"\xff\xff") is None
    assert prefix_successor(b"") is None


# --------------------------------------------------------------------------- errors

_WRONG_TYPES = [
    ("int", "x"),
    ("int", True),
    ("int", 1.0),
    ("int", b"1"),
    ("float", "1.0"),
    ("float", False),
    ("str", b"x"),
    ("str", 1),
    ("bytes", "x"),
    ("bytes", 1),
    ("bool", 1),
    ("bool", "true"),
    ("datetime", datetime(2024, 1, 1).date()),
    ("datetime", "2024-01-01T00:00:00Z"),
    ("datetime", 0),
]


@pytest.mark.parametrize(("type_name", "value"), _WRONG_TYPES)
def test_wrong_python_type_is_rejected_naming_the_column(type_name, value):
    with pytest.raises(EncodingError, match=rf"^column 'c': expected {type_name}, got"):
        encode_value(value, type_name, column="c")
    with pytest.raises(EncodingError, match=rf"^column 'c': expected {type_name}, got"):
        check_value(value, type_name, column="c")
    with pytest.raises(EncodingError, match=rf"^expected {type_name}, got"):
        encode_value(value, type_name)


def test_wrong_type_message_shows_the_value():
    with pytest.raises(EncodingError) as info:
        encode_value("x", "int", column="age")
    assert str(info.value) == "column 'age': expected int, got str 'x'"


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**5000], ids=["max+1", "min-1", "huge"])
def test_int_outside_64_bits_is_rejected(value):
    with pytest.raises(EncodingError, match=r"^column 'n': int .* out of range"):
        encode_value(value, "int", column="n")


def test_int_too_large_for_float_is_rejected():
    with pytest.raises(EncodingError, match=r"^column 'x': int .* too large for float"):
        encode_value(10**400, "float", column="x")


def test_naive_datetime_is_rejected():
    with pytest.raises(EncodingError, match=r"^column 'ts': naive datetime .* no timezone"):
        encode_value(datetime(2024, 1, 1), "datetime", column="ts")


@pytest.mark.parametrize(
    "value",
    [
        datetime.min.replace(tzinfo=timezone(timedelta(hours=1))),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-1))),
    ],
)
def test_datetime_outside_range_in_utc_is_rejected(value):
    with pytest.raises(EncodingError, match=r"^column 'ts': datetime .* outside"):
        encode_value(value, "datetime", column="ts")


def test_lone_surrogate_is_rejected():
    with pytest.raises(EncodingError, match=r"^column 's': .*lone surrogate U\+D800 at index 1"):
        encode_value("a\ud800", "str", column="s")
    with pytest.raises(EncodingError, match="lone surrogate"):
        encode_str_prefix("\udfff")


def test_unknown_type_name_is_rejected():
    with pytest.raises(EncodingError, match=r"^column 'c': unknown column type 'decimal'"):
        encode_value(1, "decimal", column="c")
    with pytest.raises(EncodingError, match="unknown column type"):
        decode_value(b"\x00", "decimal")


def test_tuple_errors_name_the_column_and_lengths():
    with pytest.raises(EncodingError, match=r"^column 'b': expected int, got str"):
        encode_tuple([1, "x"], ["int", "int"], columns=["a", "b"])
    with pytest.raises(EncodingError, match="expected 2 values"):
        encode_tuple([1], ["int", "int"])
    with pytest.raises(EncodingError, match="descending: expected 2 entries, got 1"):
        encode_tuple([1, 2], ["int", "int"], descending=[True])
    with pytest.raises(EncodingError, match="columns: expected 2 entries"):
        encode_tuple([1, 2], ["int", "int"], columns=["a"])


@pytest.mark.parametrize("type_name", _TYPES)
@_PER_TYPE
@given(data=st.data())
def test_every_truncation_is_rejected_with_its_offset(type_name, data):
    value = data.draw(_VALUES[type_name])
    descending = data.draw(st.booleans())
    prefix = data.draw(st.binary(max_size=3))
    encoded = prefix + encode_value(value, type_name, descending=descending)
    for cut in range(len(prefix), len(encoded)):
        with pytest.raises(EncodingError, match=rf"^truncated {type_name} at offset {len(prefix)}"):
            decode_value(encoded[:cut], type_name, len(prefix), descending=descending)


@pytest.mark.parametrize("type_name", _TYPES)
def test_wrong_type_or_direction_header_is_rejected(type_name):
    other = "str" if type_name != "str" else "int"
    sample = {"int": 1, "float": 1.0, "str": "a", "bytes": b"a", "bool": True}
    value = sample.get(type_name, datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(EncodingError, match=rf"^malformed {type_name} at offset 2: header"):
        decode_value(b"zz" + encode_value(value, type_name), type_name, 2, descending=True)
    with pytest.raises(EncodingError, match=rf"^malformed {other} at offset 0: header"):
        decode_value(encode_value(value, type_name), other)


@pytest.mark.parametrize(
    ("data", "type_name", "descending", "message"),
    [
        (b"\x40a\x00\x02", "str", False, r"malformed str at offset 0: byte 0x00 at offset 2"),
        (b"\xbf\x9e\xff\x05", "str", True, r"malformed str at offset 0: byte 0xff at offset 2"),
        (b"\x40\xc3\x28\x00\x01", "str", False, r"malformed str at offset 0: invalid UTF-8"),
        (b"\x40\xed\xa0\x80\x00\x01", "str", False, r"malformed str at offset 0: invalid UTF-8"),
        (b"\x50\x00", "bytes", False, r"truncated bytes at offset 0: no terminator"),
        (b"\x10\x02", "bool", False, r"malformed bool at offset 0: bool byte 0x02"),
        (b"\x30\x7f" + b"\xff" * 7, "float", False, r"malformed float at offset 0: -0.0"),
        (b"\x30\xff\xf8" + b"\x00" * 5 + b"\x01", "float", False, r"non-canonical NaN"),
        (b"\x30\x00\x07" + b"\xff" * 6, "float", False, r"non-canonical NaN"),
        (b"\x60" + b"\xff" * 8, "datetime", False, r"malformed datetime at offset 0: .* range"),
        (b"\x60" + b"\x00" * 8, "datetime", False, r"malformed datetime at offset 0: .* range"),
        (b"", "int", False, r"truncated int at offset 0: no header byte"),
    ],
)
def test_malformed_bytes_are_rejected_with_their_offset(data, type_name, descending, message):
    with pytest.raises(EncodingError, match=message):
        decode_value(data, type_name, descending=descending)


def test_decode_offset_outside_the_data_is_rejected():
    with pytest.raises(EncodingError, match=r"truncated int at offset 9"):
        decode_value(encode_value(1, "int"), "int", 9)
    with pytest.raises(EncodingError, match=r"truncated int at offset -1"):
        decode_value(encode_value(1, "int"), "int", -1)
    with pytest.raises(EncodingError, match=r"cannot decode str"):
        decode_value("\x00", "int")


@pytest.mark.parametrize("type_name", sorted(COLUMN_TYPES))
def test_cell_decoder_agrees_with_decode_value(type_name):
    decode = cell_decoder(type_name)

    @settings(max_examples=150, deadline=None)
    @given(_VALUES[type_name])
    def check(value):
        data = encode_value(value, type_name)
        assert _same(decode(data), decode_value(data, type_name)[0])

    check()
    with pytest.raises(EncodingError):
        decode(b"\x7f\x00")
