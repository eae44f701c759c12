"""A table written by a real Java program with ``Bytes.toBytes``: adopted, indexed, queried
exactly, kept in sync after more Java writes, and written back so Java reads its own values.

The Java side is hbase/foreign/ForeignRows.java on HBase's own client jars (tests/foreign.py
drives it). The oracle is the list of rows the test had Java write, not anything read back
through culvert_py.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest

from culvert_py import ops
from culvert_py.client import Client
from culvert_py.schema import parse_schema
from tests.foreign import java_create, java_delete, java_get, java_put

pytestmark = pytest.mark.hbase

CELLS = [  # (column, family, qualifier, codec, type)
    ("email", "info", "email", "utf8", "str"),
    ("age", "info", "age", "int32", "int"),
    ("score", "info", "score", "int64", "int"),
    ("rank", "info", "rank", "int16", "int"),
    ("balance", "info", "bal", "float64", "float"),
    ("ratio", "info", "ratio", "float32", "float"),
    ("visits", "info", "n", "text", "int"),
    ("signup", "info", "ts", "epoch_millis", "datetime"),
    ("seen", "info", "seen", "epoch_seconds", "datetime"),
    ("active", "info", "on", "bool", "bool"),
]


def schema_for(name: str, hbase: str):
    columns = {"user_id": "str"}
    for column, family, qualifier, codec, typ in CELLS:
        columns[column] = {"type": typ, "cell": f"{family}:{qualifier}", "codec": codec}
    return parse_schema(
        {
            "tables": {
                name: {
                    "existing": True,
                    "hbase_table": hbase,
                    "family": "info",
                    "row_key": ["user_id"],
                    "salt_buckets": 4,
                    "columns": columns,
                    "indexes": {
                        "by_email": {"kind": "term", "columns": ["email"]},
                        "by_age": {"kind": "range", "columns": ["age"]},
                        "by_balance": {"kind": "range", "columns": ["balance"]},
                        "by_signup": {"kind": "range", "columns": ["signup"]},
                        "active_by_score": {
                            "kind": "range",
                            "columns": ["score"],
                            "where": "active = true",
                        },
                    },
                }
            }
        }
    )


def person(i: int, rnd: random.Random) -> dict:
    return {
        "user_id": f"j{i:04d}",
        "email": f"p{i}@corp.example",
        "age": rnd.randint(-3, 99),
        "score": rnd.randint(-(2**40), 2**40),
        "rank": rnd.randint(-300, 300),
        "balance": rnd.uniform(-1e6, 1e6),
        "ratio": rnd.choice([0.5, 0.25, -2.0, 1.0]),
        "visits": rnd.randint(0, 10_000),
        "signup": datetime.fromtimestamp(
            rnd.randint(1_400_000_000_000, 1_800_000_000_000) / 1000, UTC
        ),
        "seen": datetime.fromtimestamp(rnd.randint(1_400_000_000, 1_800_000_000), UTC),
        "active": rnd.random() < 0.5,
    }


def to_java(row: dict) -> dict:
    cells = []
    for column, family, qualifier, codec, _ in CELLS:
        value = row[column]
        if codec == "epoch_millis":
            value = round(value.timestamp() * 1000)
        elif codec == "epoch_seconds":
            value = round(value.timestamp())
        cells.append({"family": family, "qualifier": qualifier, "codec": codec, "value": value})
    return {"row": row["user_id"], "cells": cells}


QUERIES = [
    ("email = 'p17@corp.example'", lambda r: r["email"] == "p17@corp.example"),
    ("age BETWEEN 18 AND 30", lambda r: 18 <= r["age"] <= 30),
    ("balance < 0", lambda r: r["balance"] < 0),
    (
        "signup >= TIMESTAMP '2020-01-01T00:00:00Z'",
        lambda r: r["signup"] >= datetime(2020, 1, 1, tzinfo=UTC),
    ),
    ("active = true AND score > 0", lambda r: r["active"] and r["score"] > 0),
    ("age < 10 OR age > 90", lambda r: r["age"] < 10 or r["age"] > 90),
]


def assert_exact(table, rows: dict[str, dict]) -> None:
    for where, match in QUERIES:
        want = {k for k, r in rows.items() if match(r)}
        got = [r["user_id"] for r in table.query(where)]
        assert len(got) == len(set(got)), where
        assert set(got) == want, f"{where}: differs from what Java wrote"
    for key in rnd_keys(rows):
        got = table.get(key)
        assert got == rows[key], f"{key}: culvert_py reads another value than Java wrote"


def rnd_keys(rows: dict) -> list[str]:
    return sorted(rows)[:: max(1, len(rows) // 20)]


@pytest.fixture
def java_table(hbase_store):
    name = f"javausers_{uuid.uuid4().hex[:8]}"
    java_create(name, ["info"])
    yield name
    hbase_store.delete_table(name)


def test_a_java_written_table_is_adopted_queried_synced_and_written_back(
    hbase_store, java_table, tmp_path
):
    rnd = random.Random(11)
    rows = {r["user_id"]: r for r in (person(i, rnd) for i in range(400))}
    java_put(java_table, [to_java(r) for r in rows.values()])

    with Client(hbase_store, workers=8, close_store=False) as client:
        name = f"ju_{uuid.uuid4().hex[:8]}"
        client.apply_schema(schema_for(name, java_table))
        try:
            for index in client.table(name).definition.indexes:
                report = ops.build_index(client, name, index, grace_seconds=0)
                assert report.state_after == "ACTIVE" and not report.bad_cells
            table = client.table(name)
            assert_exact(table, rows)

            # More Java writes behind culvert_py's back: updates, inserts, a delete.
            for i in range(0, 60, 3):
                rows[f"j{i:04d}"] = {**person(i, rnd), "user_id": f"j{i:04d}"}
            for i in range(400, 430):
                rows[f"j{i:04d}"] = person(i, rnd)
            changed = [rows[f"j{i:04d}"] for i in [*range(0, 60, 3), *range(400, 430)]]
            java_put(java_table, [to_java(r) for r in changed])
            java_delete(java_table, ["j0100"])
            del rows["j0100"]
            sync = ops.sync_index(client, name)
            assert sync.rows_examined >= len(changed)
            assert_exact(table, rows)
            for index in table.definition.indexes:
                ops.verify_index(client, name, index, repair=True, settle_seconds=0)
                assert ops.verify_index(client, name, index, settle_seconds=0).clean

            # culvert_py writes; the Java service reads back exactly what it would have written.
            mine = person(9000, rnd)
            table.put(mine)
            table.put({"user_id": "j0001", "age": 41, "active": False})
            rows[mine["user_id"]] = mine
            rows["j0001"] = {**rows["j0001"], "age": 41, "active": False}
            spec = [{"family": f, "qualifier": q, "codec": c} for _, f, q, c, _ in CELLS]
            for key in [mine["user_id"], "j0001"]:
                (read,) = java_get(java_table, [{"row": key, "cells": spec}])
                by_name = {c["qualifier"]: c["value"] for c in read["cells"]}
                expect = to_java(rows[key])["cells"]
                for cell in expect:
                    got = by_name[cell["qualifier"]]
                    if cell["codec"] == "float32":
                        assert abs(got - cell["value"]) < 1e-6
                    elif cell["codec"] == "text":  # the shell's decimal text, as Java reads it
                        assert got == str(cell["value"]), (key, cell["qualifier"])
                    else:
                        assert got == cell["value"], (key, cell["qualifier"])
            assert_exact(table, rows)
        finally:
            client.drop_table(name)
    assert hbase_store.table_exists(java_table), "dropping the culvert table detaches it"
