"""Index build, rebuild, verify, repair and drop, on both stores, under concurrent writers."""

from __future__ import annotations

import itertools
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from culvert_py.build import (
    PLAN_DOC,
    RANGE_DOC,
    _split_region,
    build_index,
    drop_index,
    rebuild_index,
    verify_index,
)
from culvert_py.client import Client
from culvert_py.encoding import encode_value
from culvert_py.keys import (
    COVERED_PREFIX,
    STATE_COLUMN,
    UNVERIFIED,
    VERIFIED,
    IndexKeys,
    encode_key,
)
from culvert_py.meta import ACTIVE, BUILDING
from culvert_py.schema import Schema, parse_schema, schema_to_dict
from culvert_py.store.base import Region, RowMutation

NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", None]
CITIES = ["Oslo", "Lima", "Pune", None]
GRACE = 0.2  # writers here run one short batch at a time


def person(rng: random.Random, i: int) -> dict:
    return {
        "id": f"p{i:04d}",
        "name": rng.choice(NAMES),
        "age": rng.choice([None, *range(18, 60)]),
        "score": rng.choice([None, -1.5, 0.0, 2.5]),
        "city": rng.choice(CITIES),
        "joined": datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(1000)),
        "active": rng.choice([True, False]),
        "bio": rng.choice(["likes graphs", "writes compilers", None]),
    }


def add_by_name(db, people) -> str:
    """Apply a schema adding ``by_name`` (term on name, covering city); returns its state."""
    data = schema_to_dict(Schema({people.name: people.definition}))
    indexes = data["tables"][people.name]["indexes"]
    indexes["by_name"] = {"kind": "term", "columns": ["name"], "include": ["city"]}
    report = db.apply_schema(parse_schema(data))
    people.refresh()
    return report["indexes"][f"{people.name}.by_name"]


def index_contents(store, people, index: str) -> dict[bytes, dict]:
    table = store.table(people.definition.indexes[index].hbase_table)
    return dict(table.scan())


def assert_lookups_exact(people, index: str, column: str, values) -> None:
    """Plain and covered lookups of each value equal a brute-force scan of the rows."""
    spec = people.definition.indexes[index]
    shown = {"id", *spec.columns, *spec.include}
    rows = list(people.scan_rows())
    for value in values:
        want = {r["id"]: r for r in rows if r.get(column) == value}
        got = {r["id"]: r for r in people.lookup(index, value)}
        assert got == want, f"{index} = {value!r}"
        covered = {r["id"]: r for r in people.lookup(index, value, covered=True)}
        projected = {k: {c: v for c, v in r.items() if c in shown} for k, r in want.items()}
        assert covered == projected, f"{index} = {value!r}, covered"


def assert_clean(report) -> None:
    assert (report.missing, report.orphan, report.wrong_covered) == (0, 0, 0), report.summary()
    assert report.clean


def test_new_index_builds_in_two_shards_and_is_active_only_after_both(db, people, monkeypatch):
    rng = random.Random(1)
    # Rows last written long before the index existed (one call per batch for them), some
    # rewritten just before and after it was added (one call per row timestamp).
    hour_ago = time.time_ns() - 3600 * 10**9
    monkeypatch.setattr(time, "time_ns", lambda: hour_ago)
    people.put_many([person(rng, i) for i in range(400)])
    people.delete_many([f"p{i:04d}" for i in range(0, 400, 10)])  # tombstones are skipped
    monkeypatch.undo()
    people.put_many([person(rng, i) for i in range(1, 400, 37)])
    assert add_by_name(db, people) == BUILDING
    people.put_many([person(rng, i) for i in range(3, 400, 41)])

    first = build_index(
        db, people.name, "by_name", shard=(0, 2), grace_seconds=GRACE, workers=3, batch_size=40
    )
    assert first.state_after == BUILDING
    people.refresh()
    assert people.states["by_name"] == BUILDING
    second = build_index(
        db, people.name, "by_name", shard=(1, 2), grace_seconds=GRACE, workers=3, batch_size=40
    )
    assert second.state_after == ACTIVE
    assert first.rows_scanned + second.rows_scanned == 400
    live = len(list(people.scan_rows()))
    assert first.entries_written + second.entries_written == live
    people.refresh()
    assert people.states["by_name"] == ACTIVE
    key = f"{people.name}.by_name"
    assert db.meta.load_doc(PLAN_DOC, key) is None
    assert db.meta.load_docs(RANGE_DOC, key + ".") == {}

    report = verify_index(db, people.name, "by_name", workers=4)
    assert_clean(report)
    assert (report.rows_checked, report.entries_checked, report.unverified_ok) == (live, live, 0)
    assert_lookups_exact(people, "by_name", "name", NAMES)
    again = build_index(db, people.name, "by_name")  # an ACTIVE index: nothing to do
    assert (again.rows_scanned, again.state_after) == (0, ACTIVE)


def test_writes_during_a_build_and_a_verify_are_not_lost(db, people, store):
    rng = random.Random(2)
    people.put_many([person(rng, i) for i in range(500)])
    stop = threading.Event()
    errors: list[BaseException] = []
    batches = [0]

    def write(seed: int) -> None:
        # Other clients, as other processes would be: they learn of the new index from the
        # schema generation, like any writer. Three of them race on the same rows.
        other = Client(store, workers=4, close_store=False)
        try:
            table = other.table(people.name)
            wr = random.Random(seed)
            while not stop.is_set():
                table.put_many([person(wr, wr.randrange(300)) for _ in range(12)], batch_size=4)
                table.delete_many([f"p{wr.randrange(300):04d}" for _ in range(3)])
                batches[0] += 1
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            other.close()

    writers = [threading.Thread(target=write, args=(seed,)) for seed in range(3)]
    for writer in writers:
        writer.start()
    try:
        time.sleep(0.3)
        assert add_by_name(db, people) == BUILDING
        report = build_index(
            db, people.name, "by_name", grace_seconds=GRACE, workers=4, batch_size=25
        )
        assert report.state_after == ACTIVE
        # Verify while the writers still run: only persisting problems may count.
        assert_clean(verify_index(db, people.name, "by_name", workers=4, batch_size=25))
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert errors == []
    assert batches[0] > 10  # the writers really ran through the build
    assert_clean(verify_index(db, people.name, "by_name", workers=4))
    assert_lookups_exact(people, "by_name", "name", NAMES)


def test_entries_made_stale_by_a_batch_under_the_old_schema_are_swept(db, people):
    rng = random.Random(8)
    people.put_many([person(rng, i) for i in range(100)])
    old_writer = people.writer  # a batch begun before the index existed still uses this
    add_by_name(db, people)
    people.put_many(
        [{"id": "p0001", "name": "Ada", "city": "Oslo"}, {"id": "p0002", "name": "Ada"}]
    )
    # The old batch lands after the new writer's: it neither removes (Ada, p0001) nor
    # updates the city covered by (Ada, p0002).
    old_writer.write(
        {
            encode_key(people.definition, "p0001"): {"name": "Grace"},
            encode_key(people.definition, "p0002"): {"city": "Lima"},
        }
    )
    report = build_index(db, people.name, "by_name", grace_seconds=GRACE, workers=2)
    assert (report.state_after, report.stale_removed) == (ACTIVE, 2)
    assert_clean(verify_index(db, people.name, "by_name"))
    assert_lookups_exact(people, "by_name", "name", NAMES)


def test_a_killed_build_resumes_to_the_entries_of_a_clean_build(db, people, store):
    rng = random.Random(4)
    people.put_many([person(rng, i) for i in range(500)])
    add_by_name(db, people)
    calls = []

    class Killed(Exception):
        pass

    def die_after_three(done: int, total: int | None) -> None:
        calls.append(done)
        if len(calls) == 3:
            raise Killed

    with pytest.raises(Killed):
        build_index(
            db,
            people.name,
            "by_name",
            grace_seconds=GRACE,
            workers=2,
            batch_size=50,
            progress=die_after_three,
        )
    people.refresh()
    assert people.states["by_name"] == BUILDING
    assert db.meta.load_doc(PLAN_DOC, f"{people.name}.by_name") is not None

    seen = []
    resumed = build_index(
        db,
        people.name,
        "by_name",
        resume=True,
        workers=2,
        batch_size=50,
        progress=lambda done, total: seen.append(done),
    )
    assert resumed.state_after == ACTIVE
    assert 0 < resumed.rows_scanned < 500
    assert seen[-1] == 500  # progress counts the rows done before the kill too
    assert_clean(verify_index(db, people.name, "by_name"))
    after_resume = index_contents(store, people, "by_name")

    rebuilt = rebuild_index(db, people.name, "by_name", grace_seconds=GRACE, workers=4)
    assert (rebuilt.rows_scanned, rebuilt.state_after) == (500, ACTIVE)
    assert index_contents(store, people, "by_name") == after_resume
    assert len(after_resume) == 500


def test_verify_counts_each_kind_of_damage_and_repair_undoes_it(db, people, store):
    rng = random.Random(5)
    rows = [person(rng, i) for i in range(200)]
    for i, r in enumerate(rows[:40]):
        r["age"], r["name"] = 30 + i % 5, "Ada"
    people.put_many(rows)
    definition = people.definition
    keys = IndexKeys(definition, definition.indexes["by_age"])
    table = store.table(definition.indexes["by_age"].hbase_table)

    def entry(i: int, age) -> bytes:
        return keys.entry_key((age,), encode_key(definition, f"p{i:04d}"))

    now = time.time_ns() // 1_000_000
    # Missing: entries deleted behind the library's back.
    table.delete_many([entry(i, rows[i]["age"]) for i in range(3)], now)
    # Orphans: stale values of live rows, and a row that never existed, written long ago.
    stale = {STATE_COLUMN: VERIFIED, COVERED_PREFIX + b"name": encode_value("Ada", "str")}
    table.mutate_many([RowMutation(entry(i, 99), stale) for i in (3, 4)], 1)
    ghost = keys.entry_key((77,), encode_key(definition, "nobody"))
    table.mutate_many([RowMutation(ghost, stale)], 1)
    # Garbage: an unverified stale entry, as a lost write race leaves. Not an error.
    table.mutate_many([RowMutation(entry(7, 98), {STATE_COLUMN: UNVERIFIED})], 1)
    # Wrong covered values on verified entries, written just now.
    wrong = {COVERED_PREFIX + b"name": encode_value("Mallory", "str")}
    table.mutate_many([RowMutation(entry(i, rows[i]["age"]), wrong) for i in (5, 6)], now)
    # A write in flight: an unverified entry of a row not written yet. Not an error.
    pending = keys.entry_key((55,), encode_key(definition, "soon"))
    table.mutate_many([RowMutation(pending, {STATE_COLUMN: UNVERIFIED})], now)

    found = verify_index(db, people.name, "by_age", workers=4, sample=2)
    assert (found.missing, found.orphan, found.wrong_covered) == (3, 3, 2), found.summary()
    assert (found.unverified_orphan, found.in_flight, found.repaired) == (1, 1, 0)
    assert not found.clean
    assert {k: len(v) for k, v in found.samples.items()} == {
        "missing": 2,
        "orphan": 2,
        "wrong_covered": 2,
        "unverified_orphan": 1,
    }
    assert sorted(found.samples["wrong_covered"]) == ["(30,) -> id='p0005'", "(31,) -> id='p0006'"]
    assert "3 missing, 3 orphan, 2 wrong covered" in found.summary()

    before = people.get_many([r["id"] for r in rows])
    fixed = verify_index(db, people.name, "by_age", repair=True, workers=4)
    assert fixed.repaired == 9
    assert people.get_many([r["id"] for r in rows]) == before  # repair changes no data
    after = verify_index(db, people.name, "by_age", workers=4)
    assert_clean(after)
    assert (after.unverified_orphan, after.in_flight) == (0, 1)  # young: left to its writer
    assert_lookups_exact(people, "by_age", "age", [30, 31, 32, 33, 34, 99, 98, 77, 55, None])
    # Writers carry on normally over touched rows.
    people.put_many([{"id": f"p{i:04d}", "age": 41} for i in range(7)])
    assert_clean(verify_index(db, people.name, "by_age", workers=4))


def test_drop_index_removes_its_table_state_and_schema_entry(db, people, store):
    rng = random.Random(6)
    people.put_many([person(rng, i) for i in range(50)])
    hbase_table = people.definition.indexes["by_city"].hbase_table
    drop_index(db, people.name, "by_city", grace_seconds=0)
    assert not store.table_exists(hbase_table)
    assert "by_city" not in db.schema().table(people.name).indexes
    assert db.meta.state_since(people.name, "by_city") is None
    people.put_many([person(rng, i) for i in range(50, 60)])  # writers drop it too
    assert len(list(people.scan_rows())) == 60
    with pytest.raises(Exception, match="unknown index"):
        drop_index(db, people.name, "by_city", grace_seconds=0)


def test_a_single_region_is_split_into_balanced_ranges_covering_it(make_table):
    table = make_table(families=("f",))
    rng = random.Random(7)
    keys = sorted({f"user{rng.randrange(10**6):06d}".encode() for _ in range(3000)})
    table.put_many(((k, {b"f:_v": b"x"}) for k in keys), 1)
    ranges = _split_region(table, b"f:_v", Region(b"", b""), 8, 100)
    assert ranges[0][0] == b"" and ranges[-1][1] == b""
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [sum(1 for k in keys if s <= k and (not e or k < e)) for s, e in ranges]
    assert sum(sizes) == len(keys)
    assert len(ranges) >= 6 and max(sizes) < 3 * len(keys) / len(ranges)
