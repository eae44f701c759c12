"""The entries a row owns, against the layout's definition spelled out with the slow encoders.

:func:`entries_of` and :meth:`IndexKeys.entry_key` take short paths (one-column indexes, the
salt inlined, resolved encoders for covered cells). The oracle here builds each entry from the
layout's words alone — ``salt | encode_tuple(values) | pk``, the salt ``mmh3`` of the first
encoded value or of the primary key, covered cells through :func:`encode_value` — and both
must agree on every row, wrong types included (same error, same message).
"""

from __future__ import annotations

from datetime import UTC, datetime

import mmh3
from hypothesis import given, settings
from hypothesis import strategies as st

from culvert_py.encoding import encode_tuple, encode_value
from culvert_py.entries import COVERED_PREFIX, IndexKeys, entries_of
from culvert_py.errors import CulvertError
from culvert_py.schema import parse_schema
from culvert_py.text import tokenize

COLUMNS = {"k": "str", "s": "str", "i": "int", "f": "float", "b": "bytes", "d": "datetime"}
INDEXES = {
    "by_s": {"kind": "term", "columns": ["s"]},
    "by_i_desc": {"kind": "range", "columns": ["i"], "descending": ["i"]},
    "by_i_s": {"kind": "range", "columns": ["i", "s"], "include": ["f", "b"]},
    "by_d_value": {"kind": "range", "columns": ["d"], "salt": "value", "buckets": 5},
    "by_f_covering": {"kind": "term", "columns": ["f"], "include": ["s", "d"], "buckets": 1},
    "words": {"kind": "text", "columns": ["s"], "include": ["i"]},
}
TABLE = parse_schema(
    {"tables": {"t": {"row_key": ["k"], "columns": COLUMNS, "indexes": INDEXES}}}
).table("t")

# Values of every column type, and some of the wrong type for any column.
_ANY = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.integers(-(2**64), 2**64),
    st.floats(),
    st.binary(max_size=6),
    st.datetimes(timezones=st.just(UTC)),
    st.booleans(),
)
_TYPED = {
    "s": st.one_of(st.none(), st.text(max_size=12)),
    "i": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    "f": st.one_of(st.none(), st.floats()),
    "b": st.one_of(st.none(), st.binary(max_size=8)),
    "d": st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
}


def expected_entries(index_name: str, row: dict, pk: bytes) -> dict:
    """The entries of ``row`` in the index, from the layout's definition."""
    index = TABLE.indexes[index_name]
    covered = {
        COVERED_PREFIX + c.encode(): None
        if row.get(c) is None
        else encode_value(row[c], COLUMNS[c], column=f"t.{c}")
        for c in index.include
    }
    if index.kind == "text":
        text = row.get("s")
        tuples = [] if text is None else [(token,) for token in tokenize(text)]
        types, descending = ["str"], [False]
    else:
        tuples = [tuple(row.get(c) for c in index.columns)]
        types = [COLUMNS[c] for c in index.columns]
        descending = [c in index.descending for c in index.columns]
    out = {}
    for values in tuples:
        encoded = encode_tuple(values, types, descending=descending, columns=index.columns)
        first = encode_value(values[0], types[0], descending=descending[0])
        basis = first if index.salt == "value" else pk
        salt = bytes((mmh3.hash(basis, signed=False) % index.buckets,))
        out[salt + encoded + pk] = covered
    return out


def outcome(fn):
    try:
        return fn()
    except CulvertError as exc:  # a wrong type: the same error, the same message
        return (type(exc).__name__, str(exc))


@settings(max_examples=400, deadline=None)
@given(
    index_name=st.sampled_from(sorted(INDEXES)),
    row=st.fixed_dictionaries({}, optional=_TYPED),
    wrong=st.dictionaries(st.sampled_from(sorted(_TYPED)), _ANY, max_size=2),
    pk=st.binary(min_size=1, max_size=12),
)
def test_entries_are_the_layouts_definition(index_name, row, wrong, pk):
    row = {**row, **wrong}
    index = TABLE.indexes[index_name]
    ours = outcome(lambda: entries_of(TABLE, index, row, pk, IndexKeys(TABLE, index)))
    assert ours == outcome(lambda: expected_entries(index_name, row, pk))


@settings(max_examples=200, deadline=None)
@given(s=st.text(max_size=12), i=st.integers(-(2**63), 2**63 - 1), pk=st.binary(min_size=1))
def test_entry_key_of_a_prefix_of_the_columns_is_the_prefix_encoded(s, i, pk):
    keys = IndexKeys(TABLE, TABLE.indexes["by_i_s"])
    full, prefix = keys.entry_key((i, s), pk), keys.entry_key((i,), pk)
    first = encode_value(i, "int")
    salt = bytes((mmh3.hash(pk, signed=False) % 8,))
    assert prefix == salt + first + pk
    assert full == salt + first + encode_value(s, "str") + pk


def test_an_absent_row_owns_no_entries_and_a_naive_datetime_is_refused():
    index = TABLE.indexes["by_d_value"]
    assert entries_of(TABLE, index, None, b"k") == {}
    naive = datetime(2020, 1, 1)
    assert outcome(lambda: entries_of(TABLE, index, {"d": naive}, b"k")) == outcome(
        lambda: expected_entries("by_d_value", {"d": naive}, b"k")
    )
