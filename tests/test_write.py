"""The write protocol: crashes at every step, racing writers, updates — indexes stay exact.

Every check compares index lookups with a brute-force scan of the primary table
(tests/oracle.py), on SQLite and on the real HBase, before any repair.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime

import pytest

from culvert_py.layout import STATE_COLUMN, UNVERIFIED, VERIFIED
from tests.conftest import WRITE_PATHS, open_kind, own_meta_table, people_table
from tests.oracle import assert_indexes_exact

CITIES = [None, "Oslo", "Lima", "Zürich", "it's", "São Paulo"]
BIOS = [None, "", "Loves HBase", "loves tea and HBase", "Tea, tea, TEA!", "Ünïcode wörds"]
DATES = [None, datetime(2013, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, tzinfo=UTC)]


def person(i: int, rnd: random.Random) -> dict:
    return {
        "id": f"p{i:04d}",
        "name": rnd.choice([None, "Ada", "Grace", "Linus"]),
        "age": rnd.choice([None, -5, 0, 17, 30, 65]),
        "score": rnd.choice([None, -1.5, 0.0, 2.5, float("inf")]),
        "city": rnd.choice(CITIES),
        "joined": rnd.choice(DATES),
        "active": rnd.choice([None, True, False]),
        "bio": rnd.choice(BIOS),
    }


own_meta = pytest.fixture(scope="module", autouse=True)(own_meta_table)


@pytest.fixture(params=WRITE_PATHS)
def store(request, tmp_path):
    """Every write path: SQLite, HBase through Thrift2, HBase through the sidecar."""
    yield from open_kind(request, tmp_path)


@pytest.fixture
def people(request, db):
    """The people table; with ``indirect`` parametrisation, its primary table salted and
    pre-split into that many buckets (the same protocol over other row keys)."""
    yield from people_table(db, getattr(request, "param", 1))


#: The exactness tests run on an unsalted and on a salted, pre-split primary table.
LAYOUTS = pytest.mark.parametrize("people", [1, 4], ids=["unsalted", "salted"], indirect=True)


class Crash(Exception):
    """Stands for a writer process dying between two steps."""


def crash_after(step: str):
    def hook(name: str) -> None:
        if name == step:
            raise Crash(step)

    return hook


@LAYOUTS
@pytest.mark.parametrize("step", ["read", "unverified", "primary"])
def test_crash_after_each_step_leaves_lookups_exact(people, step):
    rnd = random.Random(step)
    history = [person(i, rnd) for i in range(120)]
    people.put_many(history)
    assert_indexes_exact(people, history)

    updates = [person(i, rnd) for i in range(0, 60)]
    people.writer.on_step = crash_after(step)
    with pytest.raises(Crash):
        people.put_many(updates)
    with pytest.raises(Crash):
        people.delete_many([f"p{i:04d}" for i in range(60, 80)])
    people.writer.on_step = None
    history += updates
    # Half-written batches: lookups through every index are still exact, covered ones too.
    assert assert_indexes_exact(people, history) > 20

    # The next writer of the same rows repairs nothing by hand and everything converges.
    again = [person(i, rnd) for i in range(0, 80, 2)]
    people.put_many(again)
    people.delete_many([f"p{i:04d}" for i in range(1, 80, 4)])
    assert_indexes_exact(people, history + again)


def test_crash_after_primary_leaves_old_entries_unverified(people, store):
    people.put({"id": "a", "age": 30, "name": "Ada"})
    people.writer.on_step = crash_after("primary")
    with pytest.raises(Crash):
        people.put({"id": "a", "age": 31})
    people.writer.on_step = None
    index = people.definition.indexes["by_age"]
    entries = dict(store.table(index.hbase_table).scan())
    states = sorted(cells[STATE_COLUMN] for cells in entries.values())
    assert states == [UNVERIFIED, UNVERIFIED]  # old (31 is not there yet) and new, both 'u'
    assert people.lookup("by_age", 30) == []
    assert people.lookup("by_age", 30, covered=True) == []
    assert people.lookup("by_age", 31, covered=True) == [{"id": "a", "age": 31, "name": "Ada"}]


def test_successful_write_leaves_only_verified_entries(people, store):
    people.put_many([{"id": f"r{i}", "age": i, "city": "Oslo", "bio": "a b"} for i in range(5)])
    people.put_many([{"id": f"r{i}", "age": i + 10} for i in range(5)])
    for index in people.definition.indexes.values():
        for _, cells in store.table(index.hbase_table).scan():
            assert cells[STATE_COLUMN] == VERIFIED
    ages = store.table(people.definition.indexes["by_age"].hbase_table)
    assert len(list(ages.scan())) == 5  # old age entries are gone, not just unverified


def race_eight_writers(table, keys: int, seconds: float) -> tuple[list[dict], list]:
    """Eight threads put and delete random rows among ``keys`` for ``seconds`` at once.

    :returns: every row written, in no particular order (the first ``keys`` rows first),
        and the exceptions the threads raised
    """
    rnd = random.Random(8)
    history = [person(i, rnd) for i in range(keys)]
    table.put_many(history)
    lock = threading.Lock()
    errors: list[BaseException] = []
    deadline = time.monotonic() + seconds

    def hammer(seed: int) -> None:
        r = random.Random(seed)
        try:
            while time.monotonic() < deadline:
                batch = [person(r.randrange(keys), r) for _ in range(r.randint(1, 8))]
                table.put_many(batch)
                with lock:
                    history.extend(batch)
                if r.random() < 0.1:
                    table.delete(f"p{r.randrange(keys):04d}")
        except BaseException as exc:  # surfaced by the caller: a thread's failure fails it
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return history, errors


@LAYOUTS
def test_eight_threads_racing_on_the_same_hundred_rows(people):
    history, errors = race_eight_writers(people, 100, 4.0)
    assert errors == []
    assert len(history) > 300  # the race really ran
    assert_indexes_exact(people, history)


def test_updates_change_null_out_and_restore_indexed_values(people):
    row = {"id": "u1", "name": "Ada", "age": 36, "city": "London", "bio": "Counts numbers"}
    people.put(row)
    history = [row]
    assert [r["id"] for r in people.lookup("by_age", 36)] == ["u1"]
    steps = [
        {"id": "u1", "age": 37, "city": "Paris", "bio": "Writes programs"},
        {"id": "u1", "age": None, "city": None, "bio": None},
        {"id": "u1", "age": 36, "city": "London", "bio": "Counts numbers"},
    ]
    for change in steps:
        people.put(change)
        history.append(change)
        assert_indexes_exact(people, history)
    assert people.get("u1") == row
    assert people.lookup("by_age", None) == []
    assert [r["id"] for r in people.lookup("bio_words", "COUNTS")] == ["u1"]
    assert people.lookup("bio_words", "programs") == []


def test_deletes_remove_every_entry_and_reinsert_works(people, store):
    people.put({"id": "d1", "age": 5, "city": "Oslo", "bio": "x y z", "score": 1.0, "active": True})
    people.delete("d1")
    assert people.get("d1") is None
    for index in people.definition.indexes.values():
        assert list(store.table(index.hbase_table).scan()) == []
    people.delete("never-existed")
    people.put({"id": "d1", "age": 6})
    assert people.get("d1") == {"id": "d1", "age": 6}
    assert [r["id"] for r in people.lookup("by_age", 6)] == ["d1"]


def test_covered_values_follow_updates_of_included_columns(people):
    people.put({"id": "c1", "age": 40, "name": "Grace"})
    assert people.lookup("by_age", 40, covered=True) == [{"id": "c1", "age": 40, "name": "Grace"}]
    people.put({"id": "c1", "name": "Hopper"})  # only the included column changes
    assert people.lookup("by_age", 40, covered=True) == [{"id": "c1", "age": 40, "name": "Hopper"}]
    people.put({"id": "c1", "name": None})
    assert people.lookup("by_age", 40, covered=True) == [{"id": "c1", "age": 40}]


def test_partial_index_follows_its_where_clause(people):
    people.put({"id": "s1", "score": 9.5, "active": True})
    people.put({"id": "s2", "score": 9.5, "active": False})
    people.put({"id": "s3", "score": 9.5})
    assert [r["id"] for r in people.lookup("active_by_score", 9.5)] == ["s1"]
    people.put({"id": "s1", "active": False})
    people.put({"id": "s2", "active": True})
    assert [r["id"] for r in people.lookup("active_by_score", 9.5)] == ["s2"]


def test_unchanged_indexed_values_cost_no_index_writes(people, store):
    people.put({"id": "n1", "age": 1, "city": "Oslo", "score": 1.0, "active": True, "bio": "b"})
    before = {
        i.name: list(store.table(i.hbase_table).scan(include_timestamp=True))
        for i in people.definition.indexes.values()
    }
    people.put({"id": "n1", "joined": datetime(2020, 1, 1, tzinfo=UTC)})  # by_city_joined only
    after = {
        i.name: list(store.table(i.hbase_table).scan(include_timestamp=True))
        for i in people.definition.indexes.values()
    }
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"by_city_joined"}


def test_bulk_mode_writes_new_rows_with_verified_entries(people, store):
    rows = [{"id": f"b{i}", "age": i % 3, "city": "Oslo"} for i in range(50)]
    people.put_many(rows, bulk=True)
    assert_indexes_exact(people, rows)
    for _, cells in store.table(people.definition.indexes["by_age"].hbase_table).scan():
        assert cells[STATE_COLUMN] == VERIFIED


@LAYOUTS
def test_writes_supersede_rows_written_with_a_clock_in_the_future(people, monkeypatch):
    # A row written by a client whose clock ran an hour fast must still be updated and
    # deleted correctly by a client with the right time (T = newest read + 1).
    future = time.time_ns() + 3600 * 10**9
    monkeypatch.setattr(time, "time_ns", lambda: future)
    people.put({"id": "f1", "age": 1})
    monkeypatch.undo()
    people.put({"id": "f1", "age": 2})
    assert people.get("f1") == {"id": "f1", "age": 2}
    assert [r["id"] for r in people.lookup("by_age", 2)] == ["f1"]
    assert people.lookup("by_age", 1) == []
    people.delete("f1")
    people.put({"id": "f1", "age": 3})
    assert people.get("f1") == {"id": "f1", "age": 3}
