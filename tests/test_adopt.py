"""Adopted tables on both stores: cells another application wrote, indexed, queried, synced.

The "other application" here writes raw cells through the store API with Java's encodings
spelled out by :mod:`struct` (``Bytes.toBytes(int)`` is ``>i`` …), so the oracle decodes
them independently of culvert_py's codecs. tests/test_adopt_java.py does the same with a
real Java program on HBase's own client jars.
"""

from __future__ import annotations

import json
import random
import struct
import uuid
from datetime import UTC, datetime

import pytest

from culvert_py import ops
from culvert_py.client import Client
from culvert_py.clock import now_ms
from culvert_py.errors import SchemaError
from culvert_py.query.plan import NO_INDEX, IndexScan
from culvert_py.schema import parse_schema

CITIES = ["Oslo", "Lima", "Pune", "Kyiv"]


def adopted_schema(name: str, hbase: str) -> object:
    return parse_schema(
        {
            "tables": {
                name: {
                    "existing": True,
                    "hbase_table": hbase,
                    "family": "info",
                    "row_key": ["user_id"],
                    "row_key_codec": "utf8",
                    "salt_buckets": 4,
                    "columns": {
                        "user_id": "str",
                        "email": {"type": "str", "cell": "info:email"},
                        "age": {"type": "int", "cell": "info:age", "codec": "int32"},
                        "balance": {"type": "float", "cell": "info:bal", "codec": "float64"},
                        "visits": {"type": "int", "cell": "n", "codec": "text"},
                        "signup": {"type": "datetime", "cell": "info:ts", "codec": "epoch_millis"},
                        "active": {"type": "bool", "cell": "x:on", "codec": "bool"},
                        "city": {"type": "str", "cell": "x:city"},
                    },
                    "indexes": {
                        "by_email": {"kind": "term", "columns": ["email"]},
                        "by_age": {"kind": "range", "columns": ["age"], "include": ["city"]},
                        "by_city_age": {"kind": "range", "columns": ["city", "age"]},
                        "active_by_balance": {
                            "kind": "range",
                            "columns": ["balance"],
                            "where": "active = true",
                        },
                    },
                }
            }
        }
    )


def java_cells(row: dict) -> dict[bytes, bytes]:
    """What a Java service writes for ``row``, by hand: the test's own reading of Bytes."""
    cells = {}
    if row.get("email") is not None:
        cells[b"info:email"] = row["email"].encode()
    if row.get("age") is not None:
        cells[b"info:age"] = struct.pack(">i", row["age"])
    if row.get("balance") is not None:
        cells[b"info:bal"] = struct.pack(">d", row["balance"])
    if row.get("visits") is not None:
        cells[b"info:n"] = str(row["visits"]).encode()
    if row.get("signup") is not None:
        cells[b"info:ts"] = struct.pack(">q", int(row["signup"].timestamp() * 1000))
    if row.get("active") is not None:
        cells[b"x:on"] = b"\xff" if row["active"] else b"\x00"
    if row.get("city") is not None:
        cells[b"x:city"] = row["city"].encode()
    return cells


def make_row(i: int, rnd: random.Random) -> dict:
    return {
        "user_id": f"u{i:04d}",
        "email": f"user{i}@example.org" if rnd.random() > 0.1 else None,
        "age": rnd.randint(-5, 90) if rnd.random() > 0.1 else None,
        "balance": round(rnd.uniform(-100, 1000), 2),
        "visits": rnd.randint(0, 500),
        "signup": datetime.fromtimestamp(rnd.randint(1_500_000_000, 1_800_000_000), UTC),
        "active": rnd.random() > 0.4,
        "city": rnd.choice(CITIES),
    }


def oracle_rows(raw: dict[bytes, dict[bytes, bytes]]) -> dict[str, dict]:
    """Decode the raw table independently; an undecodable cell is NULL."""

    def unpack(fmt: str, data: bytes):
        return struct.unpack(fmt, data)[0] if len(data) == struct.calcsize(fmt) else None

    out = {}
    for key, cells in raw.items():
        row = {"user_id": key.decode()}
        if b"info:email" in cells:
            row["email"] = cells[b"info:email"].decode()
        if b"info:age" in cells:
            row["age"] = unpack(">i", cells[b"info:age"])
        if b"info:bal" in cells:
            row["balance"] = unpack(">d", cells[b"info:bal"])
        if b"info:n" in cells:
            text = cells[b"info:n"].decode(errors="replace")
            row["visits"] = int(text) if text.lstrip("-").isdigit() else None
        if b"info:ts" in cells:
            ms = unpack(">q", cells[b"info:ts"])
            row["signup"] = None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
        if b"x:on" in cells:
            on = cells[b"x:on"]
            row["active"] = None if len(on) != 1 else on != b"\x00"
        if b"x:city" in cells:
            row["city"] = cells[b"x:city"].decode()
        out[row["user_id"]] = {k: v for k, v in row.items() if v is not None}
    return out


QUERIES = [
    ("email = 'user7@example.org'", lambda r: r.get("email") == "user7@example.org"),
    ("age BETWEEN 20 AND 30", lambda r: r.get("age") is not None and 20 <= r["age"] <= 30),
    ("age < 0 OR age > 85", lambda r: r.get("age") is not None and (r["age"] < 0 or r["age"] > 85)),
    ("age IS NULL", lambda r: r.get("age") is None),
    ("city = 'Oslo' AND age >= 50", lambda r: r.get("city") == "Oslo" and r.get("age", -1) >= 50),
    (
        "active = true AND balance > 500",
        lambda r: r.get("active") is True and r.get("balance", -1e9) > 500,
    ),
]


def check_queries(table, raw: dict) -> None:
    expected_rows = oracle_rows(raw)
    for where, match in QUERIES:
        want = {k for k, r in expected_rows.items() if match(r)}
        got = [r["user_id"] for r in table.query(where)]
        assert len(got) == len(set(got)), f"{where}: duplicates"
        assert set(got) == want, f"{where}: differs from the oracle"
        # Covered-looking reads are checked against the rows too on an adopted table.
        covered = {r["user_id"] for r in table.query(where, columns=["user_id", "age"])}
        assert covered == want, f"{where} (columns): differs from the oracle"
        # A full scan too: HBase must not be handed a filter in culvert's own encoding.
        scanned = {r["user_id"] for r in table.query(where, use_index="NO_INDEX")}
        assert scanned == want, f"{where} (full scan): differs from the oracle"


def raw_rows(store, name: str) -> dict[bytes, dict[bytes, bytes]]:
    version = b"info:_culvert"
    return {
        k: {c: v for c, v in cells.items() if c != version}
        for k, cells in store.table(name).scan()
        if any(c != version for c in cells)
    }


@pytest.fixture
def foreign(store):
    """A table another application owns, with 300 rows in Java's encodings."""
    name = f"app_{uuid.uuid4().hex[:10]}"
    store.create_table(name, ["info", "x"])
    rnd = random.Random(7)
    rows = [make_row(i, rnd) for i in range(300)]
    ts = now_ms() - 10_000
    store.table(name).put_many(((r["user_id"].encode(), java_cells(r)) for r in rows), ts)
    # Cells no codec can read: they must read as NULL and be reported, never crash a build.
    store.table(name).put_many(
        [(b"u0003", {b"info:age": b"\x01\x02"}), (b"u0004", {b"info:n": b"forty"})], ts
    )
    yield name
    store.delete_table(name)


@pytest.fixture
def adopted(store, foreign, tmp_path):
    client = Client(store, workers=8, close_store=False)
    name = f"users_{uuid.uuid4().hex[:8]}"
    report = client.apply_schema(adopted_schema(name, foreign))
    assert foreign not in report["created"], "an adopted table is never created"
    assert set(report["indexes"].values()) == {"BUILDING"}
    yield client, name, foreign
    client.drop_table(name)
    client.close()


def build_all(client, name, tmp_path) -> dict:
    bad = {}
    for index in client.table(name).definition.indexes:
        rejects = tmp_path / f"{index}.rejects.jsonl"
        report = ops.build_index(client, name, index, grace_seconds=0, rejects=str(rejects))
        assert report.state_after == "ACTIVE"
        bad = report.bad_cells or bad
    return bad


def test_an_adopted_table_is_indexed_queried_exactly_and_left_as_it_was(store, adopted, tmp_path):
    client, name, foreign = adopted
    before = raw_rows(store, foreign)
    bad = build_all(client, name, tmp_path)
    assert bad == {"age": 1, "visits": 1}
    sample = [json.loads(x) for x in (tmp_path / "by_age.rejects.jsonl").read_text().splitlines()]
    assert {(s["row"], s["column"]) for s in sample} >= {(b"u0003".hex(), "age")}
    # The application's cells are untouched: culvert_py only added its version cell.
    assert raw_rows(store, foreign) == before
    assert store.families(foreign) == ["info", "x"]
    table = client.table(name)
    check_queries(table, before)
    for index in table.definition.indexes:
        assert ops.verify_index(client, name, index, settle_seconds=0).clean


def test_writes_through_culvert_are_what_the_application_would_write(store, adopted, tmp_path):
    client, name, foreign = adopted
    build_all(client, name, tmp_path)
    table = client.table(name)
    row = make_row(9001, random.Random(1))
    table.put(row)
    cells = store.table(foreign).get_many([row["user_id"].encode()])[row["user_id"].encode()]
    assert {c: v for c, v in cells.items() if c != b"info:_culvert"} == java_cells(row)
    table.put({"user_id": "u0001", "age": 44, "city": None})
    cells = store.table(foreign).get_many([b"u0001"])[b"u0001"]
    assert cells[b"info:age"] == struct.pack(">i", 44) and b"x:city" not in cells
    table.delete("u0002")
    assert store.table(foreign).get_many([b"u0002"]) == {}, "a delete leaves no ghost row"
    check_queries(table, raw_rows(store, foreign))
    for index in table.definition.indexes:
        assert ops.verify_index(client, name, index, settle_seconds=0).clean


def test_sync_catches_up_with_foreign_updates_inserts_and_deletes(store, adopted, tmp_path):
    client, name, foreign = adopted
    build_all(client, name, tmp_path)
    table = client.table(name)
    rnd = random.Random(3)
    raw = store.table(foreign)
    ts = now_ms()
    updated = {f"u{i:04d}": make_row(i, rnd) for i in range(10, 40)}
    inserted = {f"u{i:04d}": make_row(i, rnd) for i in range(1000, 1020)}
    raw.put_many(((k.encode(), java_cells(r)) for k, r in {**updated, **inserted}.items()), ts)
    raw.delete_many([b"u0050", b"u0051"], ts)
    report = ops.sync_index(client, name)
    assert report.rows_examined >= len(updated) + len(inserted)
    assert report.entries_changed > 0
    check_queries(table, raw_rows(store, foreign))
    # Deletes by another writer leave entries behind that sync cannot see; repair does.
    verify = ops.verify_index(client, name, "by_age", settle_seconds=0)
    assert verify.missing == 0 and verify.wrong_covered == 0
    assert verify.orphan <= 2
    ops.verify_index(client, name, "by_age", repair=True, settle_seconds=0)
    for index in table.definition.indexes:
        ops.verify_index(client, name, index, repair=True, settle_seconds=0)
        assert ops.verify_index(client, name, index, settle_seconds=0).clean
    # A second sync finds nothing new to change: it settles.
    again = ops.sync_index(client, name)
    assert again.entries_changed == 0
    check_queries(table, raw_rows(store, foreign))


def test_apply_refuses_a_missing_table_or_family_and_drop_detaches(store, foreign):
    client = Client(store, workers=4, close_store=False)
    name = f"users_{uuid.uuid4().hex[:8]}"
    with pytest.raises(SchemaError, match="not found"):
        client.apply_schema(adopted_schema(name, f"{foreign}_missing"))
    other = f"app_{uuid.uuid4().hex[:10]}"
    store.create_table(other, ["info"])  # no family x
    try:
        with pytest.raises(SchemaError, match="no column family 'x'"):
            client.apply_schema(adopted_schema(name, other))
    finally:
        store.delete_table(other)
    client.apply_schema(adopted_schema(name, foreign))
    index_tables = [i.hbase_table for i in client.table(name).definition.indexes.values()]
    client.drop_table(name)
    assert store.table_exists(foreign), "dropping an adopted table detaches it"
    assert not any(store.table_exists(t) for t in index_tables)
    assert len(raw_rows(store, foreign)) == 300
    client.close()


def test_a_row_null_in_every_column_is_still_found_through_an_index(store, adopted, tmp_path):
    # Index reads of adopted rows skip the version cell: a row with no declared cell left
    # must still be told apart from a deleted one (by its version cell, read for it alone).
    client, name, foreign = adopted
    build_all(client, name, tmp_path)
    table = client.table(name)
    table.put({"user_id": "u9999", "email": "gone@example.org", "age": 41})
    table.put({"user_id": "u9999", "email": None, "age": None})
    assert store.table(foreign).get_many([b"u9999"]) != {}, "the version cell is left"
    plan = table.plan("age IS NULL", use_index="by_age")
    assert isinstance(plan.source, IndexScan)
    found = [r["user_id"] for r in table.query("age IS NULL", use_index="by_age")]
    assert "u9999" in found
    assert found == [r["user_id"] for r in table.query("age IS NULL", use_index=NO_INDEX)]
    table.delete("u9999")
    assert "u9999" not in [r["user_id"] for r in table.query("age IS NULL", use_index="by_age")]
