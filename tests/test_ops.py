"""Index build, rebuild, verify, repair and drop, on both stores, under concurrent writers.

Plus the pieces underneath, tested alone: the key-range splitter (properties over arbitrary
key sets), the task runner, and verify/repair against each kind of damage made behind the
library's back, checked with the brute-force oracle.
"""

from __future__ import annotations

import bisect
import itertools
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from culvert_py.client import Client
from culvert_py.clock import now_ms
from culvert_py.encoding import encode_value
from culvert_py.layout import (
    COVERED_PREFIX,
    STATE_COLUMN,
    UNVERIFIED,
    VERIFIED,
    IndexKeys,
    encode_key,
)
from culvert_py.meta import ACTIVE, BUILDING
from culvert_py.ops import (
    PLAN_DOC,
    RANGE_DOC,
    build_index,
    drop_index,
    rebuild_index,
    verify_index,
)
from culvert_py.ops.common import _run_tasks
from culvert_py.ops.ranges import (
    MAX_RANGES,
    _common_prefix,
    _last_key_prefix,
    _split_points,
    _split_region,
    split_key_ranges,
)
from culvert_py.schema import Schema, parse_schema, schema_to_dict
from culvert_py.store.base import Region, RowMutation
from culvert_py.write import IndexWriter
from tests.oracle import assert_indexes_exact

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


# --------------------------------------------------------------------------- key ranges

VCOL = b"f:_v"


class SortedKeys:
    """A table of bare keys, all the range splitter sees of one: ordered, bounded scans.

    ``open`` counts scanners begun and not yet closed or exhausted.
    """

    def __init__(self, keys) -> None:
        self.keys = sorted(set(keys))
        self.open = 0

    def scan(self, start=None, stop=None, columns=None, limit=None, batch_size=1000, **_):
        assert columns == [VCOL] and (limit is None or limit >= 1) and batch_size >= 1
        after = self.keys[bisect.bisect_left(self.keys, start or b"") :]
        chosen = [k for k in after if stop is None or k < stop][:limit]

        def rows():
            self.open += 1
            try:
                for key in chosen:
                    yield key, {VCOL: b"x"}
            finally:
                self.open -= 1

        return rows()


def inside(key: bytes, bounds: tuple[bytes, bytes]) -> bool:
    start, end = bounds
    return start <= key and (not end or key < end)


def assert_partition(ranges, start: bytes, end: bytes) -> None:
    """``ranges`` cover ``[start, end)`` exactly, in order, disjoint and none empty."""
    assert ranges[0][0] == start and ranges[-1][1] == end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges)), ranges
    assert all(e for _, e in ranges[:-1]) and all(s for s, _ in ranges[1:]), ranges
    assert all(not e or s < e for s, e in ranges), ranges


PREFIXES = st.sampled_from([b"", b"user", b"\x00", b"\xff\xff", b"k\x00\xff"])
KEY = st.builds(lambda p, s: p + s, PREFIXES, st.binary(max_size=6)).filter(bool)
KEYS = st.lists(KEY, max_size=150)
BOUND = st.one_of(st.just(b""), KEY)


@st.composite
def regions(draw) -> Region:
    """A region, ``start <= key < end``; ``b""`` leaves a side unbounded."""
    start, end = sorted([draw(BOUND), draw(BOUND)])
    if start == end or draw(st.booleans()):
        end = b""
    return Region(start, end)


@given(st.binary(max_size=8), st.binary(max_size=8))
def test_common_prefix_is_the_longest_start_two_strings_share(a, b):
    n = _common_prefix(a, b)
    assert a[:n] == b[:n]
    assert n == min(len(a), len(b)) or a[n] != b[n]


def number(key: bytes, at: int, pad: bytes) -> int:
    """The four bytes of ``key`` from ``at`` on (padded with ``pad``), as a number."""
    return int.from_bytes(key[at : at + 4].ljust(4, pad), "big")


@given(st.binary(max_size=8), st.binary(max_size=8), st.integers(1, 64))
def test_split_points_are_evenly_spaced_between_first_and_last(first, last, pieces):
    points = _split_points(first, last, pieces)
    common = _common_prefix(first, last)
    n = common + 4
    assert points == sorted(points)
    assert all(first[:n] <= p < last[:n].ljust(n, b"\xff") for p in points)
    assert all(p[:common] == first[:common] for p in points)
    if first <= last and pieces > 1:
        assert len(points) == pieces - 1
        # As numbers over the four bytes after the common prefix, the gaps from first to
        # last differ by at most one.
        spaced = [number(first, common, b"\x00")]
        spaced += [number(p, common, b"\x00") for p in points]
        spaced += [number(last, common, b"\xff")]
        gaps = [b - a for a, b in itertools.pairwise(spaced)]
        assert min(gaps) >= 0 and max(gaps) - min(gaps) <= 1
    else:
        assert len(points) in (0, pieces - 1)


@settings(max_examples=300, deadline=None)
@given(KEYS, regions())
def test_the_last_key_prefix_starts_the_last_key_of_the_range(keys, region):
    table = SortedKeys(keys)
    owned = [k for k in table.keys if inside(k, region)]
    if not owned:
        return
    found = _last_key_prefix(table, VCOL, owned[0], region.end)  # type: ignore[arg-type]
    assert owned[-1].startswith(found)
    assert table.open == 0


@settings(max_examples=300, deadline=None)
@given(KEYS, regions(), st.integers(2, 40), st.integers(1, 20))
def test_a_split_region_is_covered_by_ordered_disjoint_ranges(keys, region, pieces, sample):
    table = SortedKeys(keys)
    ranges = _split_region(table, VCOL, region, pieces, sample)  # type: ignore[arg-type]
    assert_partition(ranges, region.start, region.end)
    assert len(ranges) <= pieces
    for key in table.keys:
        if inside(key, region):
            assert sum(inside(key, r) for r in ranges) == 1, key
    owned = [k for k in table.keys if inside(k, region)]
    if len(owned) < sample:
        assert ranges == [tuple(region)]  # too few rows to be worth splitting
    assert table.open == 0  # every probe scan was closed


@settings(max_examples=200, deadline=None)
@given(KEYS, st.lists(KEY, max_size=6, unique=True), st.integers(1, 2 * 1024), st.integers(1, 8))
def test_key_ranges_over_regions_cover_the_whole_key_space(keys, splits, wanted, sample):
    bounds = [b"", *sorted(splits), b""]
    regions_ = [Region(a, b) for a, b in itertools.pairwise(bounds)]
    table = SortedKeys(keys)
    ranges = split_key_ranges(regions_, table, VCOL, wanted, sample)  # type: ignore[arg-type]
    assert_partition(ranges, b"", b"")
    starts = {s for s, _ in ranges}
    assert all(r.start in starts for r in regions_)  # ranges never straddle a region
    # At least the regions, at most the cap (give or take rounding, one per region).
    assert len(regions_) <= len(ranges) <= MAX_RANGES + len(regions_)
    if wanted <= len(regions_):
        assert ranges == [tuple(r) for r in regions_]
    assert table.open == 0


def test_key_ranges_of_a_presplit_table_partition_its_rows(make_table, store):
    table = make_table(families=("f",), split_keys=[b"user3", b"user6"])
    rng = random.Random(12)
    keys = sorted({f"user{rng.randrange(10**6):06d}".encode() for _ in range(900)})
    table.put_many(((k, {VCOL: b"x"}) for k in keys), 1)
    regions_ = store.regions(table.name)
    assert len(regions_) == 3
    ranges = split_key_ranges(regions_, table, VCOL, 24, 50)
    assert_partition(ranges, b"", b"")
    assert len(ranges) >= 12
    # Each range scanned on its own: together, every row exactly once.
    seen = [k for s, e in ranges for k, _ in table.scan(s or None, e or None, columns=[VCOL])]
    assert seen == keys


# --------------------------------------------------------------------------- the task runner


def counting_task(n: int, log: list):
    def task(stop: threading.Event, report) -> None:
        for _ in range(n):
            report(1)
        log.append(n)

    return task


def patient_task(finished: list, started: threading.Event | None = None):
    """Reports batches until told to stop (or 5 s pass), then records that it saw the stop."""

    def task(stop: threading.Event, report) -> None:
        if started is not None:
            started.set()
        deadline = time.monotonic() + 5
        while not stop.is_set() and time.monotonic() < deadline:
            report(1)
            time.sleep(0.001)
        finished.append(stop.is_set())

    return task


def test_the_task_runner_reports_every_batch_on_the_callers_thread():
    ran: list[int] = []
    calls: list[tuple[int, int | None, int]] = []

    def progress(done: int, total: int | None) -> None:
        calls.append((done, total, threading.get_ident()))

    with ThreadPoolExecutor(max_workers=3) as pool:
        tasks = [counting_task(n, ran) for n in (3, 5, 0, 2)]
        _run_tasks(pool, tasks, progress, 10, 99)
    assert sorted(ran) == [0, 2, 3, 5]
    assert [done for done, _, _ in calls] == list(range(11, 21))  # counted on from ``done``
    assert {(total, ident) for _, total, ident in calls} == {(99, threading.get_ident())}


def test_a_failing_task_stops_the_others_and_is_raised_once_they_returned():
    finished: list[bool] = []
    started = threading.Event()

    def failing(stop: threading.Event, report) -> None:
        started.wait(5)
        raise ValueError("boom")

    with ThreadPoolExecutor(max_workers=2) as pool:
        with pytest.raises(ValueError, match="boom"):
            _run_tasks(pool, [patient_task(finished, started), failing], None, 0, None)
        assert finished == [True]  # stopped by the failure, and done before the raise
    ran: list[int] = []
    with ThreadPoolExecutor(max_workers=1) as pool, pytest.raises(ValueError):
        _run_tasks(pool, [failing, counting_task(1, ran)], None, 0, None)
    assert ran == []  # a task not yet begun when one failed never begins


def test_a_progress_callback_that_raises_stops_every_task():
    finished: list[bool] = []

    def impatient(done: int, total: int | None) -> None:
        if done >= 5:
            raise RuntimeError("enough")

    with ThreadPoolExecutor(max_workers=2) as pool:
        with pytest.raises(RuntimeError, match="enough"):
            _run_tasks(pool, [patient_task(finished), patient_task(finished)], impatient, 0, 9)
        assert finished == [True, True]


# --------------------------------------------------------------------------- damage, repair

COUNTS = ("missing", "orphan", "wrong_covered", "unverified_orphan", "in_flight")


def counts(report) -> dict[str, int]:
    return {kind: getattr(report, kind) for kind in COUNTS}


def damage_rows() -> list[dict]:
    """24 people; ``p0001`` … odd ones inactive (``active_by_score`` leaves them out)."""
    rng = random.Random(11)
    rows = [person(rng, i) for i in range(24)]
    for i, r in enumerate(rows):
        r.update(age=30 + i % 4, name=["Grace", "Ada"][i % 2], score=float(i % 3))
        r["active"] = i % 2 == 0
    return rows


class Behind:
    """Writes to one index table behind the library's back, through the store API."""

    def __init__(self, people, store, index: str) -> None:
        self.definition = people.definition
        spec = self.definition.indexes[index]
        self.keys = IndexKeys(self.definition, spec)
        self.table = store.table(spec.hbase_table)

    def key(self, values: tuple, row_id: str) -> bytes:
        return self.keys.entry_key(values, encode_key(self.definition, row_id))

    def put(self, key: bytes, cells: dict, ts: int) -> None:
        self.table.mutate_many([RowMutation(key, cells)], ts)


def name_cell(name: str) -> dict:
    return {COVERED_PREFIX + b"name": encode_value(name, "str")}


@dataclass
class Damage:
    """One kind of damage: how it is made, what verify must call it, whether readers see it.

    ``harm(people, store, rows)`` damages the index and returns the values it made up, as
    history rows, so that the oracle probes them.
    """

    name: str
    index: str
    kind: str
    visible: bool
    harm: Callable[..., list[dict]]


def _missing(people, store, rows):
    behind = Behind(people, store, "by_age")
    behind.table.delete_many([behind.key((rows[1]["age"],), "p0001")], now_ms())
    return []


def _stale_value(people, store, rows):
    behind = Behind(people, store, "by_age")
    behind.put(behind.key((99,), "p0002"), {STATE_COLUMN: VERIFIED, **name_cell("Ada")}, 1)
    return [{"id": "p0002", "age": 99}]


def _deleted_row(people, store, rows):
    # A writer that does not know by_age yet (a batch of the previous schema generation)
    # deletes the row: every other index follows, the by_age entry stays behind.
    definition = people.definition
    others = [i for name, i in definition.indexes.items() if name != "by_age"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        old = IndexWriter(store, definition, others, pool, people.writer.conditional)
        old.write({encode_key(definition, "p0003"): None})
    return []


def _no_such_row(people, store, rows):
    behind = Behind(people, store, "by_age")
    behind.put(behind.key((77,), "nobody"), {STATE_COLUMN: VERIFIED, **name_cell("Eve")}, 1)
    return [{"id": "nobody", "age": 77}]


def _undecodable(people, store, rows):
    Behind(people, store, "by_age").put(bytes([1]) + b"\xee\xee", {STATE_COLUMN: VERIFIED}, 1)
    return []


def _excluded_by_where(people, store, rows):
    behind = Behind(people, store, "active_by_score")
    behind.put(behind.key((rows[1]["score"],), "p0001"), {STATE_COLUMN: VERIFIED}, 1)
    return []


def _wrong_covered(people, store, rows):
    behind = Behind(people, store, "by_age")
    behind.put(behind.key((rows[5]["age"],), "p0005"), name_cell("Mallory"), now_ms())
    return []


def _stale_unverified(people, store, rows):
    behind = Behind(people, store, "by_age")
    behind.put(behind.key((98,), "p0006"), {STATE_COLUMN: UNVERIFIED}, 1)
    return [{"id": "p0006", "age": 98}]


DAMAGE = [
    Damage("missing entry", "by_age", "missing", True, _missing),
    Damage("stale value", "by_age", "orphan", True, _stale_value),
    Damage("deleted row", "by_age", "orphan", True, _deleted_row),
    Damage("row never written", "by_age", "orphan", True, _no_such_row),
    Damage("undecodable key", "by_age", "orphan", False, _undecodable),
    # Lookups of the partial index do not return this one: only verify sees it.
    Damage("row the where clause excludes", "active_by_score", "orphan", False, _excluded_by_where),
    Damage("wrong covered value", "by_age", "wrong_covered", True, _wrong_covered),
    # Readers check unverified entries against their row, so this one is garbage, no error.
    Damage("stale unverified entry", "by_age", "unverified_orphan", False, _stale_unverified),
]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda d: d.name)
def test_verify_names_each_kind_of_damage_and_repair_undoes_it(db, people, store, damage):
    rows = damage_rows()
    people.put_many(rows)
    history = rows + damage.harm(people, store, rows)
    ids = [r["id"] for r in rows]
    data = people.get_many(ids)

    found = verify_index(db, people.name, damage.index, workers=2)
    assert counts(found) == {**dict.fromkeys(COUNTS, 0), damage.kind: 1}, found.summary()
    assert found.clean == (damage.kind == "unverified_orphan")
    assert [len(v) for v in found.samples.values()] == [1] and damage.kind in found.samples
    if damage.visible:  # the oracle sees it too: the damage is real, not verify's opinion
        with pytest.raises(AssertionError):
            assert_indexes_exact(people, history)

    fixed = verify_index(db, people.name, damage.index, workers=2, repair=True)
    assert (counts(fixed), fixed.repaired) == (counts(found), 1)
    after = verify_index(db, people.name, damage.index, workers=2)
    assert counts(after) == dict.fromkeys(COUNTS, 0) and after.repaired == 0, after.summary()
    assert people.get_many(ids) == data  # repair touches rows, never their data
    assert_indexes_exact(people, history)


def test_an_unowned_entry_newer_than_its_row_is_in_flight_until_it_settles(db, people, store):
    rows = damage_rows()
    people.put_many(rows)
    time.sleep(0.05)
    behind = Behind(people, store, "by_age")
    # Verified, newer than its row, owned by no row: what a write in progress can look like.
    behind.put(
        behind.key((97,), "p0004"), {STATE_COLUMN: VERIFIED, **name_cell("Ada")}, now_ms() - 10
    )
    history = [*rows, {"id": "p0004", "age": 97}]
    ids = [r["id"] for r in rows]
    data = people.get_many(ids)

    young = verify_index(db, people.name, "by_age", workers=2)
    assert (young.in_flight, young.orphan, young.clean) == (1, 0, True)
    settled = verify_index(db, people.name, "by_age", workers=2, settle_seconds=0)
    assert (settled.in_flight, settled.orphan, settled.clean) == (0, 1, False)
    # Newer than its row: a delete at the entry's timestamp could mask a writer's put, so
    # the repair touches the row through the write protocol.
    fixed = verify_index(db, people.name, "by_age", workers=2, settle_seconds=0, repair=True)
    assert (fixed.orphan, fixed.repaired) == (1, 1)
    assert counts(verify_index(db, people.name, "by_age", workers=2)) == dict.fromkeys(COUNTS, 0)
    assert people.get_many(ids) == data
    assert_indexes_exact(people, history)
    people.put_many([{"id": "p0004", "age": 97, "name": "Ada"}])  # writers carry on
    assert_indexes_exact(people, [*history, {"id": "p0004", "age": 97}])


def test_repair_of_a_clean_index_writes_nothing(db, people, store):
    people.put_many(damage_rows())
    before = index_contents(store, people, "by_age")
    report = verify_index(db, people.name, "by_age", workers=2, repair=True)
    assert_clean(report)
    assert (report.repaired, report.rows_checked, report.entries_checked) == (0, 24, 24)
    assert index_contents(store, people, "by_age") == before


# --------------------------------------------------------------------------- drop


def test_drop_index_lands_on_top_of_a_schema_change_made_meanwhile(db, people, store, monkeypatch):
    other = Client(store, workers=2, close_store=False)
    load = db.meta.load
    generations: list[int] = []

    def load_then_lose_a_race():
        found = load()
        generations.append(found[0])
        if len(generations) == 1:  # another client applies a change after our read
            add_by_name(other, other.table(people.name))
        return found

    monkeypatch.setattr(db.meta, "load", load_then_lose_a_race)
    try:
        drop_index(db, people.name, "by_city", grace_seconds=0)
    finally:
        other.close()
    monkeypatch.undo()
    assert len(generations) == 2 and generations[1] > generations[0]
    _, applied, _ = db.meta.load()
    assert applied is not None
    indexes = applied.table(people.name).indexes
    assert "by_city" not in indexes and "by_name" in indexes  # the other change is kept
    assert not store.table_exists(people.definition.indexes["by_city"].hbase_table)
