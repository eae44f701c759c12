"""Index and primary key layouts: salt, order, self-delimiting primary keys."""

from __future__ import annotations

import math
import multiprocessing
import re
import struct
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from culvert_py.codecs import CODECS
from culvert_py.errors import ArgumentError, EncodingError, SchemaError
from culvert_py.layout import (
    DELETED,
    MAX_KEY_BYTES,
    IndexKeys,
    data_column,
    decode_primary_key,
    decode_row,
    encode_key,
    encode_row,
    is_deleted,
    key_tuple,
    new_version,
    primary_key,
    stored_columns,
    version_column,
)
from culvert_py.schema import TableDef, parse_schema

SCHEMA = parse_schema(
    {
        "tables": {
            "t": {
                "row_key": ["a", "b"],
                "salt_buckets": 8,
                "columns": {"a": "str", "b": "int", "x": "int", "s": "str", "d": "datetime"},
                "indexes": {
                    "by_x": {"kind": "range", "columns": ["x", "s"]},
                    "by_x_value": {"kind": "range", "columns": ["x"], "salt": "value"},
                    "words": {"kind": "text", "columns": ["s"]},
                    "newest": {"kind": "range", "columns": ["d"], "descending": ["d"]},
                },
            }
        }
    }
)
T = SCHEMA.table("t")


def keys(name: str) -> IndexKeys:
    return IndexKeys(T, T.indexes[name])


@given(st.text(), st.integers(-(2**63), 2**63 - 1))
@settings(max_examples=200)
def test_primary_key_round_trips(a, b):
    pk = primary_key(T, {"a": a, "b": b})
    assert decode_primary_key(T, pk) == {"a": a, "b": b}
    assert encode_key(T, (a, b)) == pk == encode_key(T, {"a": a, "b": b, "x": 1})


def test_key_errors_name_the_table_and_columns():
    with pytest.raises(EncodingError, match="row key column 'b' is missing"):
        primary_key(T, {"a": "x"})
    with pytest.raises(
        ArgumentError, match=r"^t: key 'only-one': a composite key is a tuple \(a, b\)"
    ):
        key_tuple(T, "only-one")
    with pytest.raises(
        ArgumentError, match=r"^t: key \('a', 'not an int'\): column 'b': expected int"
    ):
        encode_key(T, ("a", "not an int"))


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (["a", 1], r"key \['a', 1\]: a composite key is a tuple \(a, b\) or a row dict, got list"),
        (("a",), r"key \('a',\): expected a tuple of 2 values \(a, b\), got 1"),
        (("a", 1, 2), r"expected a tuple of 2 values \(a, b\), got 3"),
        (("a", 1.5), r"column 'b': expected int, got float 1.5"),
        (("a", None), r"row key column 'b' is missing or null"),
        ({"a": "x"}, r"row key column 'b' is missing or null"),
        (("x" * 40_000, 1), r"row key takes 40,\d{3} bytes, more than HBase's 32,767"),
    ],
)
def test_malformed_user_keys_are_argument_errors_saying_the_expected_form(key, message):
    with pytest.raises(ArgumentError, match=message) as err:
        encode_key(T, key)
    assert str(err.value).startswith("t: key ") and "\n" not in str(err.value)


def test_one_column_key_refuses_a_list_and_points_to_the_many_methods():
    one = parse_schema({"tables": {"u": {"row_key": ["id"], "columns": {"id": "str"}}}}).table("u")
    assert encode_key(one, "k") == encode_key(one, ("k",)) == encode_key(one, {"id": "k"})
    with pytest.raises(ArgumentError, match=r"got a list of 2 \(several keys: get_many"):
        encode_key(one, ["a", "b"])
    with pytest.raises(ArgumentError, match=r"column 'id': expected str, got float 1\.5"):
        encode_key(one, 1.5)


def test_one_size_limit_for_row_keys_and_entry_keys():
    assert len(primary_key(T, {"a": "x" * (MAX_KEY_BYTES - 40), "b": 1})) <= MAX_KEY_BYTES
    with pytest.raises(EncodingError, match=r"^t: row key takes [\d,]+ bytes, more than HBase's"):
        primary_key(T, {"a": "x" * MAX_KEY_BYTES, "b": 1})
    pk = primary_key(T, {"a": "a", "b": 1})
    k = keys("by_x")
    k.entry_key((1, "s" * (MAX_KEY_BYTES - 40)), pk)
    with pytest.raises(
        EncodingError, match=r"^t\.by_x: entry key takes [\d,]+ bytes.*x, s too long"
    ):
        k.entry_key((1, "s" * MAX_KEY_BYTES), pk)
    # A primary key that fits can still make an entry key that does not: salt + values + pk.
    big_pk = primary_key(T, {"a": "x" * (MAX_KEY_BYTES - 15), "b": 1})
    with pytest.raises(EncodingError, match=r"^t\.words: entry key takes"):
        keys("words").entry_keys({"s": "short words"}, big_pk)


@given(st.integers(-(2**63), 2**63 - 1), st.text(), st.text(), st.integers(0, 1000))
@settings(max_examples=200)
def test_entry_key_decodes_to_values_and_primary_key(x, s, a, b):
    pk = primary_key(T, {"a": a, "b": b})
    k = keys("by_x")
    key = k.entry_key((x, s), pk)
    assert 0 <= key[0] < 8
    assert k.decode(key) == ((x, s), pk)


@given(st.lists(st.tuples(st.integers(-100, 100), st.text(max_size=3)), min_size=2, max_size=30))
@settings(max_examples=100)
def test_within_a_bucket_entries_sort_by_value_then_primary_key(pairs):
    k = keys("by_x")
    entries = [
        k.entry_key((x, s), primary_key(T, {"a": s, "b": i})) for i, (x, s) in enumerate(pairs)
    ]
    for bucket in range(8):
        in_bucket = sorted(e for e in entries if e[0] == bucket)
        decoded = [k.decode(e)[0] for e in in_bucket]
        assert decoded == sorted(decoded)


def test_row_salt_spreads_one_value_over_every_bucket():
    k = keys("by_x")
    buckets = {k.entry_key((7, "same"), primary_key(T, {"a": "k", "b": i}))[0] for i in range(400)}
    assert buckets == set(range(8))


def test_value_salt_puts_one_value_in_one_bucket():
    k = keys("by_x_value")
    buckets = {k.entry_key((7,), primary_key(T, {"a": "k", "b": i}))[0] for i in range(400)}
    assert len(buckets) == 1


def test_descending_index_sorts_newest_first():
    k = keys("newest")
    pk = primary_key(T, {"a": "a", "b": 1})
    old = k.encode_values((datetime(2000, 1, 1, tzinfo=UTC),))
    new = k.encode_values((datetime(2020, 1, 1, tzinfo=UTC),))
    assert new < old
    assert k.decode(k.entry_key((datetime(2020, 1, 1, tzinfo=UTC),), pk))[1] == pk


def test_text_index_has_one_entry_per_distinct_word():
    k = keys("words")
    pk = primary_key(T, {"a": "a", "b": 1})
    found = sorted(k.decode(e)[0][0] for e in k.entry_keys({"s": "Tea, tea and HBase"}, pk))
    assert found == ["and", "hbase", "tea"]
    assert k.entry_keys({"s": None}, pk) == []


def test_split_keys_are_the_bucket_boundaries():
    assert keys("by_x").split_keys() == [bytes([i]) for i in range(1, 8)]


# -- adopted tables -------------------------------------------------------------------------

#: One column per (type, codec) of every codec; values each codec holds exactly.
_CODEC_VALUES = {
    ("int", "int64"): st.integers(-(2**63), 2**63 - 1),
    ("int", "int32"): st.integers(-(2**31), 2**31 - 1),
    ("int", "int16"): st.integers(-(2**15), 2**15 - 1),
    ("int", "text"): st.integers(-(2**63), 2**63 - 1),
    ("float", "float64"): st.floats(allow_nan=False).map(lambda f: f + 0.0),
    ("float", "float32"): st.floats(width=32, allow_nan=False).map(lambda f: f + 0.0),
    ("float", "text"): st.floats(allow_nan=False).map(lambda f: f + 0.0),
    ("str", "utf8"): st.text(),
    ("bytes", "raw"): st.binary(),
    ("bool", "bool"): st.booleans(),
    ("bool", "text"): st.booleans(),
    ("datetime", "epoch_millis"): st.integers(-(10**13), 10**13).map(
        lambda ms: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    ),
    ("datetime", "epoch_seconds"): st.integers(-(10**10), 10**10).map(
        lambda s: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=s)
    ),
    ("datetime", "iso8601"): st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
}
_COLUMNS = {f"{t}_{c}": (t, c) for t, c in _CODEC_VALUES}

ADOPTED = parse_schema(
    {
        "tables": {
            "a": {
                "existing": True,
                "family": "f",
                "row_key": ["id"],
                "columns": {
                    "id": "str",
                    **{
                        n: {"type": t, "cell": f"q{i}", "codec": c}
                        for i, (n, (t, c)) in enumerate(_COLUMNS.items())
                    },
                },
            },
            "composite": {
                "existing": True,
                "row_key": ["region", "n", "user"],
                "row_key_delimiter": "#",
                "columns": {"region": "str", "n": "int", "user": "str", "x": "int"},
            },
            "longs": {
                "existing": True,
                "row_key": ["id"],
                "row_key_codec": "int64",
                "columns": {"id": "int", "x": {"type": "int", "cell": "other:x", "codec": "int32"}},
            },
            "ints": {
                "existing": True,
                "row_key": ["id"],
                "columns": {"id": "int", "x": "int"},
            },
        }
    }
)
A = ADOPTED.table("a")


def test_every_codec_has_a_column_of_the_adopted_test_table():
    assert {(t, c) for t, cs in CODECS.items() for c in cs} == set(_COLUMNS.values())
    assert all(A.codecs[n] == c for n, (_, c) in _COLUMNS.items())


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_adopted_rows_round_trip_through_their_codecs(data):
    row = {"id": data.draw(st.text(min_size=1))}
    for name, spec in _COLUMNS.items():
        value = data.draw(st.none() | _CODEC_VALUES[spec])
        if value is not None:
            row[name] = value
    pk = primary_key(A, row)
    assert pk == row["id"].encode()
    puts, deletes = encode_row(A, row)
    assert deletes == [] and set(puts) == {data_column(A, c) for c in row if c != "id"}
    assert all(cell.startswith(b"f:q") for cell in puts)  # the declared cells, no key cell
    assert decode_row(A, puts, pk=pk) == (row if puts else None)  # no cell, no version: none
    assert decode_row(A, {**puts, version_column(A): new_version(1)}, pk=pk) == row


def test_adopted_cells_are_java_bytes_in_their_declared_cells():
    t = ADOPTED.table("longs")
    puts, deletes = encode_row(t, {"id": 7, "x": 36})
    assert puts == {b"other:x": b"\x00\x00\x00$"} and deletes == []
    assert encode_row(t, {"x": None}) == ({}, [b"other:x"])
    assert encode_row(A, {"bool_bool": True})[0] == {b"f:q9": b"\xff"}
    assert encode_row(A, {"float_float64": 1.5})[0] == {b"f:q4": struct.pack(">d", 1.5)}
    assert version_column(t) == b"d:_culvert" and version_column(T) == b"d:_v"


def test_undecodable_cells_read_as_null_and_are_reported():
    pk = b"u1"
    cells = {
        data_column(A, "int_int32"): b"\x00\x01",
        data_column(A, "str_utf8"): b"\xff",
        data_column(A, "int_text"): (b"42", 123),
        b"f:undeclared": b"whatever",
    }
    bad: list = []
    assert decode_row(A, cells, bad, pk=pk) == {"id": "u1", "int_text": 42}
    assert [(c, raw) for c, raw, _ in bad] == [("int_int32", b"\x00\x01"), ("str_utf8", b"\xff")]
    assert "expected 4 byte(s), got 2" in bad[0][2] and "not valid UTF-8" in bad[1][2]
    assert decode_row(A, cells, pk=pk) == {"id": "u1", "int_text": 42}  # no list: still NULL


def test_what_an_adopted_row_is_and_is_not():
    vcol = version_column(A)
    assert decode_row(A, {}) is None
    assert decode_row(A, {b"f:undeclared": b"x"}, pk=b"u1") is None  # nothing culvert_py sees
    assert decode_row(A, {vcol: new_version(5)}, pk=b"u1") == {"id": "u1"}
    assert decode_row(A, {vcol: new_version(5, DELETED), b"f:q0": b"\0" * 8}) is None
    assert decode_row(A, {b"f:q0": b"\0" * 8}) == {"int_int64": 0}  # no version cell: live
    t = ADOPTED.table("longs")
    bad: list = []
    assert decode_row(t, {b"other:x": b"\0\0\0\1"}, bad, pk=b"short") == {"x": 1}
    assert bad[0][:2] == ("id", b"short") and "expected 8 byte(s), got 5" in bad[0][2]


def test_the_version_flag_is_read_at_its_offset_so_a_tail_may_follow():
    assert len(new_version(1)) == 17
    assert new_version(1, DELETED, b"shadow").endswith(b"Dshadow")
    assert is_deleted(new_version(1, DELETED, b"shadow"))
    assert not is_deleted(new_version(1, tail=b"D"))
    assert not is_deleted(None)


def test_adopted_row_key_columns_have_no_cell():
    assert stored_columns(A, ["id", "int_int32"]) == [b"f:q1"]
    assert stored_columns(T, ["a", "x"]) == [b"d:a", b"d:x"]
    with pytest.raises(SchemaError, match="column 'id' has no cell"):
        data_column(A, "id")


@given(
    st.text().filter(lambda s: "#" not in s),
    st.integers(-(2**63), 2**63 - 1),
    st.text().filter(lambda s: "#" not in s),
)
@settings(max_examples=200)
def test_composite_delimited_keys_round_trip(region, n, user):
    t = ADOPTED.table("composite")
    key = encode_key(t, (region, n, user))
    assert key == f"{region}#{n}#{user}".encode()
    assert decode_primary_key(t, key) == {"region": region, "n": n, "user": user}


def test_composite_keys_refuse_a_part_holding_the_delimiter_and_foreign_spellings():
    t = ADOPTED.table("composite")
    with pytest.raises(ArgumentError, match="contains the row key delimiter '#'"):
        encode_key(t, ("e#u", 1, "u1"))
    with pytest.raises(EncodingError, match="contains the row key delimiter"):
        primary_key(t, {"region": "eu", "n": 1, "user": "a#b"})
    for key, reason in [
        (b"eu#1", "2 part(s) between '#', expected 3"),
        (b"eu#1#u1#x", "4 part(s)"),
        (b"eu#one#u1", "not a decimal integer"),
        (b"eu#01#u1", "'01' is not the decimal form of an int key"),
        (b"\xff#1#u1", "not valid UTF-8"),
    ]:
        with pytest.raises(EncodingError, match=re.escape(reason)):
            decode_primary_key(t, key)


@given(st.integers(-(2**63), 2**63 - 1))
def test_int64_row_keys_are_javas_bytes_to_bytes_long(n):
    t = ADOPTED.table("longs")
    key = encode_key(t, n)
    assert key == struct.pack(">q", n)
    assert decode_primary_key(t, key) == {"id": n}
    ints = ADOPTED.table("ints")  # utf8 of an int key: its decimal text
    assert encode_key(ints, n) == str(n).encode()
    assert decode_primary_key(ints, str(n).encode()) == {"id": n}


def test_adopted_keys_keep_the_size_limit():
    with pytest.raises(ArgumentError, match="MAX_KEY_BYTES"):
        encode_key(A, "x" * (MAX_KEY_BYTES + 1))
    assert math.isfinite(len(encode_key(A, "x" * MAX_KEY_BYTES)))


def test_native_rows_are_unchanged_by_the_new_parameters():
    row = {"a": "k", "b": 1, "x": 5}
    puts, _ = encode_row(T, row)
    cells = {**puts, version_column(T): new_version(3)}
    pk = primary_key(T, row)
    assert decode_row(T, cells) == decode_row(T, cells, [], pk=pk) == row
    assert isinstance(T, TableDef) and not T.existing


def test_version_random_parts_differ_across_a_fork():
    """A forked writer (a Spark or multiprocessing worker) must not repeat its parent's
    random parts: the generator is seeded again in the child."""
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        child = pool.apply(_random_parts, (200,))
    parent = _random_parts(200)
    assert len(set(parent)) == len(set(child)) == 200
    assert not set(parent) & set(child)


def _random_parts(n: int) -> list[bytes]:
    return [new_version(7)[8:16] for _ in range(n)]
