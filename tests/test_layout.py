"""Index and primary key layouts: salt, order, self-delimiting primary keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from culvert_py.errors import ArgumentError, EncodingError
from culvert_py.layout import (
    MAX_KEY_BYTES,
    IndexKeys,
    decode_primary_key,
    encode_key,
    key_tuple,
    primary_key,
)
from culvert_py.schema import parse_schema

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
