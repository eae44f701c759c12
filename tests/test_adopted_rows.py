"""The shadow of adopted rows: precomputed per definition, byte-identical to its definition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from culvert_py.adopted_rows import decode_shadow, shadow_of
from culvert_py.encoding import encode_tuple
from culvert_py.schema import parse_schema
from culvert_py.values import check_value

SCHEMA = parse_schema(
    {
        "tables": {
            "users": {
                "existing": True,
                "family": "info",
                "row_key": ["user_id"],
                "columns": {
                    "user_id": "str",
                    "email": "str",
                    "age": {"type": "int", "codec": "int32"},
                    "balance": {"type": "float", "codec": "text"},
                    "photo": "bytes",
                    "active": "bool",
                    "signup": {"type": "datetime", "codec": "iso8601"},
                },
            }
        }
    }
)
TABLE = SCHEMA.tables["users"]

#: Values a write accepts, including spellings check_value normalises.
_VALUES = {
    "email": st.text(),
    "age": st.integers(-(2**31), 2**31 - 1),
    "balance": st.one_of(st.floats(), st.just(-0.0), st.integers(-(2**53), 2**53)),
    "photo": st.one_of(st.binary(), st.binary().map(bytearray)),
    "active": st.booleans(),
    "signup": st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]),
    ),
}
_ROWS = st.fixed_dictionaries(
    {"user_id": st.text()}, optional={c: st.none() | s for c, s in _VALUES.items()}
)


def reference_shadow(row: dict) -> bytes:
    """The shadow as its format defines it: (name, type, value) of each non-NULL column."""
    names = sorted(c for c in TABLE.columns if c not in TABLE.row_key and row.get(c) is not None)
    values, types = [], []
    for name in names:
        values += [name, TABLE.columns[name], row[name]]
        types += ["str", "str", TABLE.columns[name]]
    return encode_tuple(values, types)


@settings(max_examples=150, deadline=None)
@given(row=_ROWS)
def test_the_precomputed_shadow_equals_its_definition_and_reads_back(row):
    shadow = shadow_of(TABLE, row)
    assert shadow == reference_shadow(row)
    normal = {
        c: check_value(v, TABLE.columns[c])
        for c, v in row.items()
        if c not in TABLE.row_key and v is not None
    }
    back = decode_shadow(TABLE, shadow)
    assert back.keys() == normal.keys()
    for column, value in normal.items():
        assert back[column] == value or (value != value and back[column] != back[column])


def test_an_empty_or_absent_row_has_an_empty_shadow():
    assert shadow_of(TABLE, None) == b"" == shadow_of(TABLE, {})
    assert decode_shadow(TABLE, b"") == {}
