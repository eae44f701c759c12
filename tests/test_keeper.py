"""Statistics kept fresh without being asked: by material writes, builds, schema apply."""

from __future__ import annotations

import json
import random
import uuid

from culvert_py.client import Client
from culvert_py.load import load_file
from culvert_py.meta import ACTIVE, BUILDING
from culvert_py.ops import build_index
from culvert_py.schema import parse_schema
from culvert_py.stats import collect_stats
from culvert_py.stats.keeper import MIN_ROWS, STALE_SHARE
from tests.test_probe import INDEXES, ROWS, _rows, _schema


def _same_figures(a, b) -> None:
    """Two statistics of one index agree (the sketches are exact at this size)."""
    assert (a.entries, a.null_entries, a.prefix_ndv) == (b.entries, b.null_entries, b.prefix_ndv)
    assert dict(a.mcv) == dict(b.mcv)


def test_build_collects_the_new_index_in_its_own_pass(db):
    name = f"built_{uuid.uuid4().hex[:10]}"
    spec = _schema(name)
    city = spec["tables"][name]["indexes"].pop("by_city")
    db.apply_schema(parse_schema(spec))
    table = db.table(name)
    try:
        rows = _rows(random.Random(9))[:1500]
        table.put_many(rows)
        table.delete_many([r["id"] for r in rows[:100]])  # tombstones are not rows
        assert "by_city" not in table.stats().indexes
        spec["tables"][name]["indexes"]["by_city"] = city
        assert db.apply_schema(parse_schema(spec))["indexes"] == {f"{name}.by_city": BUILDING}
        report = build_index(db, name, "by_city", grace_seconds=0.0, workers=3, batch_size=200)
        assert report.state_after == ACTIVE
        table.refresh()
        stored = table.stats()
        assert stored.rows == 1400
        scanned = collect_stats(db.store, table.definition, db.executor)
        _same_figures(stored.indexes["by_city"], scanned.indexes["by_city"])
        assert set(stored.indexes) == set(INDEXES)
    finally:
        db.drop_table(name)


def test_writes_that_change_a_table_materially_collect_statistics(db):
    name = f"fresh_{uuid.uuid4().hex[:10]}"
    db.apply_schema(parse_schema(_schema(name)))
    table = db.table(name)
    try:
        rows = _rows(random.Random(5))
        table.put_many(rows[: MIN_ROWS - 1])
        assert table.stats() is None  # too few rows to matter
        table.put_many(rows[MIN_ROWS - 1 : 2000])
        first = table.stats()
        assert first is not None and first.rows == 2000
        assert set(first.indexes) == set(INDEXES)
        small = int(STALE_SHARE * 2000) - 10
        table.put_many(rows[2000 : 2000 + small])
        assert table.stats().rows == 2000  # not stale yet: nothing collected
        table.put_many(rows[2000 + small :])
        assert table.stats().rows == ROWS
        assert table.plan("status = 'void'").probes == []  # fresh: planned from statistics
    finally:
        db.drop_table(name)


def test_schema_apply_on_a_populated_table_collects_statistics(store):
    quiet = Client(store, workers=8, close_store=False, auto_stats=False)
    name = f"applied_{uuid.uuid4().hex[:10]}"
    spec = _schema(name)
    try:
        quiet.apply_schema(parse_schema(spec))
        quiet.table(name).put_many(_rows(random.Random(2))[:1200])
        assert quiet.table(name).stats() is None  # automatic statistics were off
        with Client(store, workers=8, close_store=False) as client:
            client.apply_schema(parse_schema(spec))  # nothing to build: apply collects them
            stats = client.table(name).stats()
            assert stats is not None and stats.rows == 1200
            assert stats.indexes["by_status"].entries == 1200
    finally:
        quiet.drop_table(name)
        quiet.close()


def test_schema_apply_leaves_statistics_to_the_build_it_makes_pending(store):
    """A new index on a populated table is BUILDING: its build scans every row anyway and
    collects the table's statistics then, so the apply does not scan the table first."""
    quiet = Client(store, workers=8, close_store=False, auto_stats=False)
    name = f"pending_{uuid.uuid4().hex[:10]}"
    spec = _schema(name)
    city = spec["tables"][name]["indexes"].pop("by_city")
    try:
        quiet.apply_schema(parse_schema(spec))
        rows = _rows(random.Random(2))[:1200]
        quiet.table(name).put_many(rows)
        spec["tables"][name]["indexes"]["by_city"] = city
        with Client(store, workers=8, close_store=False) as client:
            applied = client.apply_schema(parse_schema(spec))
            assert applied["indexes"] == {f"{name}.by_city": BUILDING}
            assert client.table(name).stats() is None
            report = build_index(client, name, "by_city", grace_seconds=0.0, workers=3)
            assert report.state_after == ACTIVE
            client.table(name).refresh()
            stats = client.table(name).stats()
            assert stats is not None and stats.rows == 1200
            assert stats.indexes["by_status"].entries == 1200
            assert stats.indexes["by_city"].entries == sum(r["city"] is not None for r in rows)
    finally:
        quiet.drop_table(name)
        quiet.close()


def test_a_load_collects_statistics_once_at_its_end(db, tmp_path):
    name = f"loaded_{uuid.uuid4().hex[:10]}"
    db.apply_schema(parse_schema(_schema(name)))
    table = db.table(name)
    try:
        rows = _rows(random.Random(4))[:1500]
        path = tmp_path / "rows.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        report = load_file(table, path, bulk=True, batch_size=250)
        assert report.loaded == 1500
        stats = table.stats()
        assert stats is not None and stats.rows == 1500
        assert stats.indexes["by_flag"].null_entries == sum(r["flag"] is None for r in rows)
        assert table.plan("status = 'void'").probes == []
    finally:
        db.drop_table(name)
