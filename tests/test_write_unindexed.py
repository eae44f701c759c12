"""Writes to a table with no index: no version check, yet exact once indexes are built.

A table without indexes has nothing to keep consistent with its rows, so the writer skips
the conditional primary write (one read of the version cells, one batched write). These
tests run the crash, racing-writers and skewed-clock drills of tests/test_write.py on such a
table, on SQLite and on the real HBase, check the rows against a model, then add three of
the people indexes, build them, and compare every lookup with a brute-force scan
(tests/oracle.py)."""

from __future__ import annotations

import random
import time
import tomllib

import pytest

from culvert_py.ops import build_index
from culvert_py.schema import parse_schema
from tests.conftest import PEOPLE_TOML, WRITE_PATHS, open_kind, own_meta_table, people_table
from tests.oracle import assert_indexes_exact
from tests.test_write import Crash, crash_after, person, race_eight_writers

own_meta = pytest.fixture(scope="module", autouse=True)(own_meta_table)


@pytest.fixture(params=WRITE_PATHS)
def store(request, tmp_path):
    """Every write path: SQLite, HBase through Thrift2, HBase through the sidecar."""
    yield from open_kind(request, tmp_path)


@pytest.fixture(params=[1, 4], ids=["unsalted", "salted"])
def bare(request, db):
    """The people table without its indexes (primary table unsalted, or in 4 buckets)."""
    yield from people_table(db, request.param, indexed=False)


#: The people indexes the drills build afterwards: covered, composite, text.
BUILT = ("by_age", "by_city_joined", "bio_words")


def add_indexes_and_build(db, table):
    """Apply some people indexes to ``table`` and build each; return the refreshed table."""
    with open(PEOPLE_TOML, "rb") as f:
        spec = tomllib.load(f)["tables"]["people"]
    spec["indexes"] = {name: spec["indexes"][name] for name in BUILT}
    if table.definition.primary_buckets > 1:
        spec["primary_buckets"] = table.definition.primary_buckets
    db.apply_schema(parse_schema({"tables": {table.name: spec}}))
    for index in spec["indexes"]:
        build_index(db, table.name, index, workers=2, grace_seconds=0)
    return db.table(table.name)


@pytest.mark.parametrize("step", ["read", "unverified", "primary"])
def test_crash_after_each_step_without_indexes_then_builds_are_exact(db, bare, step):
    rnd = random.Random(step)
    history = [person(i, rnd) for i in range(80)]
    bare.put_many(history)
    crashed = [person(i, rnd) for i in range(0, 40)]
    bare.writer.on_step = crash_after(step)
    with pytest.raises(Crash):
        bare.put_many(crashed)
    with pytest.raises(Crash):
        bare.delete_many([f"p{i:04d}" for i in range(40, 50)])
    bare.writer.on_step = None
    again = [person(i, rnd) for i in range(0, 60, 2)]
    bare.put_many(again)
    bare.delete_many([f"p{i:04d}" for i in range(1, 60, 4)])
    # The model: a batch that crashed after its primary step was written, else not.
    reached = step == "primary"
    model = {r["id"]: r for r in history + (crashed if reached else [])}
    for i in range(40, 50) if reached else ():
        model.pop(f"p{i:04d}")
    model |= {r["id"]: r for r in again}
    for i in range(1, 60, 4):
        model.pop(f"p{i:04d}", None)
    model = {k: {c: v for c, v in r.items() if v is not None} for k, r in model.items()}
    assert {r["id"]: r for r in bare.scan_rows()} == model
    history += crashed
    indexed = add_indexes_and_build(db, bare)
    assert assert_indexes_exact(indexed, history + again) > 20


def test_eight_threads_without_indexes_leave_whole_rows_then_builds_are_exact(db, bare):
    history, errors = race_eight_writers(bare, 60, 3.0)
    assert errors == []
    assert len(history) > 150  # the race really ran
    written: dict[str, list[dict]] = {}
    for row in history:
        written.setdefault(row["id"], []).append({k: v for k, v in row.items() if v is not None})
    for row in bare.scan_rows():
        # Every cell of one write carries its timestamp: a row is one write, never a mix.
        assert row in written[row["id"]], f"{row['id']}: {row} is no row any writer wrote"
    assert_indexes_exact(add_indexes_and_build(db, bare), history)


def test_writes_without_indexes_supersede_a_clock_in_the_future(db, bare, monkeypatch):
    future = time.time_ns() + 3600 * 10**9
    monkeypatch.setattr(time, "time_ns", lambda: future)
    bare.put({"id": "f1", "age": 1, "city": "Oslo"})
    bare.put({"id": "f2", "age": 1})
    bare.delete("f2")
    monkeypatch.undo()
    bare.put({"id": "f1", "age": 2})
    assert bare.get("f1") == {"id": "f1", "age": 2, "city": "Oslo"}
    bare.put({"id": "f2", "age": 3})  # above the tombstone the fast clock left
    assert bare.get("f2") == {"id": "f2", "age": 3}
    bare.delete("f1")
    assert bare.get("f1") is None
    indexed = add_indexes_and_build(db, bare)
    assert [r["id"] for r in indexed.lookup("by_age", 3)] == ["f2"]
    assert indexed.lookup("by_age", 2) == [] and indexed.lookup("by_age", 1) == []
