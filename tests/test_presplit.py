"""Salted, pre-split primary tables (``primary_buckets``): regions, spread, fixed once applied."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from culvert_py.errors import SchemaError
from culvert_py.layout import decode_primary_key, encode_key, store_tables
from culvert_py.schema import parse_schema
from tests.conftest import PEOPLE_TOML, people_table
from tests.oracle import assert_indexes_exact


def spec(**extra) -> dict:
    table = {"row_key": ["id", "n"], "columns": {"id": "str", "n": "int"}, **extra}
    return {"tables": {"t": table}}


@pytest.fixture
def salted(db):
    yield from people_table(db, primary_buckets=4)


def test_primary_table_has_its_declared_regions(store, db, salted):
    assert len(store.regions(salted.definition.hbase_table)) == 4
    for index in salted.definition.indexes.values():
        assert len(store.regions(index.hbase_table)) == index.buckets
    unsalted = next(people_table(db))
    assert len(store.regions(unsalted.definition.hbase_table)) == 1
    db.drop_table(unsalted.name)


def test_increasing_keys_spread_over_every_primary_region(store, salted):
    rows = [{"id": f"k{i:06d}", "age": i % 7, "city": "Oslo"} for i in range(400)]
    salted.put_many(rows, bulk=True)
    primary = store.table(salted.definition.hbase_table)
    counts = [
        sum(1 for _ in primary.scan(start=r.start or None, stop=r.end or None))
        for r in store.regions(salted.definition.hbase_table)
    ]
    assert sum(counts) == 400
    assert min(counts) > 400 / 4 / 2, counts  # mmh3 spreads them: ~100 each
    assert salted.get("k000123") == {"id": "k000123", "age": 123 % 7, "city": "Oslo"}
    assert assert_indexes_exact(salted, rows) > 0
    salted.delete_many([f"k{i:06d}" for i in range(0, 400, 2)])
    assert assert_indexes_exact(salted, rows) > 0
    assert sorted(r["id"] for r in salted.scan_rows()) == [f"k{i:06d}" for i in range(1, 400, 2)]


def test_store_tables_split_the_primary_table_at_the_salt_bytes():
    table = parse_schema(spec(primary_buckets=3)).table("t")
    assert store_tables(table)[0].split_keys == [b"\x01", b"\x02"]
    assert store_tables(parse_schema(spec()).table("t"))[0].split_keys == []


@given(st.text(max_size=20), st.integers(-(2**63), 2**63 - 1), st.integers(2, 256))
def test_salted_keys_decode_to_their_values(text, n, buckets):
    table = parse_schema(spec(primary_buckets=buckets)).table("t")
    key = encode_key(table, (text, n))
    assert key[0] < buckets
    assert key[1:] == encode_key(parse_schema(spec()).table("t"), (text, n))
    assert decode_primary_key(table, key) == {"id": text, "n": n}


@pytest.mark.parametrize("bad", [0, 257, True, "8"])
def test_primary_buckets_must_be_a_bucket_count(bad):
    with pytest.raises(SchemaError, match=r"t\.primary_buckets: expected an integer"):
        parse_schema(spec(primary_buckets=bad))


def test_adopted_tables_keep_their_own_row_keys():
    adopted = spec(existing=True, primary_buckets=4)
    adopted["tables"]["t"]["columns"] = {"id": "str", "n": {"type": "int", "cell": "d:n"}}
    adopted["tables"]["t"]["row_key"] = ["id"]
    with pytest.raises(SchemaError, match=r"t\.primary_buckets: an adopted table"):
        parse_schema(adopted)


def test_primary_buckets_are_fixed_once_applied(db, salted):
    with open(PEOPLE_TOML, "rb") as f:
        people = tomllib.load(f)["tables"]["people"]
    for buckets in (1, 8):  # its keys would all move
        changed = {**people, "primary_buckets": buckets}
        with pytest.raises(SchemaError, match="primary_buckets"):
            db.apply_schema(parse_schema({"tables": {salted.name: changed}}))
