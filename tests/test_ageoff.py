"""Age-off on both stores with a controllable clock: rows and their entries expire together,
queries equal a brute-force oracle at every moment, ``age_off`` removes exactly the expired
rows through the write protocol, next to live writers."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from culvert_py.client import Client
from culvert_py.clock import ManualClock
from culvert_py.errors import ArgumentError, SchemaError
from culvert_py.ops import verify_index
from culvert_py.schema import parse_schema
from tests.oracle import assert_indexes_exact

COLUMNS = {"id": "str", "kind": "str", "t": "int", "n": "int", "at": "datetime"}
INDEXES = {
    "by_kind": {"kind": "term", "columns": ["kind"], "include": ["n"]},
    "by_t": {"kind": "range", "columns": ["t"]},
    "by_n": {"kind": "range", "columns": ["n"], "include": ["kind"]},
    "by_at": {"kind": "range", "columns": ["at"]},
}
SECOND = 1000


@pytest.fixture
def aging(store):
    """``(client, clock, make)``: a client on a :class:`ManualClock`, and ``make(**lifespan)``
    creating a uniquely named table with that ``ttl`` / ``age_off`` (dropped afterwards)."""
    clock = ManualClock()
    client = Client(store, workers=8, close_store=False, clock=clock)
    made: list[str] = []

    def make(**lifespan):
        name = f"ao_{uuid.uuid4().hex[:10]}"
        spec = {"row_key": ["id"], "salt_buckets": 2, "columns": COLUMNS, "indexes": INDEXES}
        client.apply_schema(parse_schema({"tables": {name: {**spec, **lifespan}}}))
        made.append(name)
        return client.table(name)

    yield client, clock, make
    for name in made:
        client.drop_table(name)
    client.close()


def _ids(rows) -> set:
    return {r["id"] for r in rows}


def _entries(table) -> int:
    """Entries physically held by every index table of ``table``."""
    return sum(
        sum(1 for _ in table.store.table(i.hbase_table).scan())
        for i in table.definition.indexes.values()
    )


def _assert_clean(client, table, racing: bool = False) -> None:
    """Verify finds no problem; without ``racing`` writers, not even harmless leftovers (the
    test clock runs ahead of verify's, so an orphan newer than its row would read as a write
    in flight: none may be there)."""
    for name in table.definition.indexes:
        report = verify_index(client, table.name, name)
        assert report.clean, f"{name}: {report}"
        if not racing:
            assert report.in_flight == report.unverified_orphan == 0, f"{name}: {report}"


class Oracle:
    """What a table holds, from its writes alone: rows, the time each was last written."""

    def __init__(self, ttl_ms: int | None, after_ms: int | None) -> None:
        self.ttl_ms, self.after_ms = ttl_ms, after_ms
        self.rows: dict[str, tuple[dict, int]] = {}
        self.history: list[dict] = []

    def deadline(self, row: dict, written: int) -> float:
        deadlines = [float("inf")]
        if self.ttl_ms is not None:
            deadlines.append(written + self.ttl_ms)
        if self.after_ms is not None and row.get("t") is not None:
            deadlines.append(row["t"] + self.after_ms)
        return min(deadlines)

    def live(self, now: int) -> dict[str, dict]:
        return {k: r for k, (r, w) in self.rows.items() if self.deadline(r, w) > now}

    def put(self, row: dict, now: int) -> None:
        # A put onto an expired row is an insert: nothing of the dead row comes back.
        base = self.live(now).get(row["id"]) or {}
        merged = {k: v for k, v in {**base, **row}.items() if v is not None}  # NULL: no key
        self.rows[row["id"]] = (merged, now)
        self.history.append(self.rows[row["id"]][0])

    def delete(self, key: str) -> None:
        self.rows.pop(key, None)


def _assert_matches(table, oracle: Oracle, now: int, ids) -> None:
    """Every access path answers what the oracle says is live at ``now``."""
    live = oracle.live(now)
    assert {r["id"]: r for r in table.query()} == live, "full scan"
    assert {r["id"]: r for r in table.scan_rows()} == live, "scan_rows"
    assert table.get_many(ids) == [live.get(i) for i in ids], "get_many"
    assert table.get_many(ids, columns=["id", "n"]) == [
        None if i not in live else {c: v for c, v in live[i].items() if c in ("id", "n")}
        for i in ids
    ], "get_many columns"
    for kind in ("a", "b"):
        want = {k for k, r in live.items() if r.get("kind") == kind}
        assert _ids(table.query(f"kind = '{kind}'")) == want, f"by_kind {kind}"
        covered = list(table.query(f"kind = '{kind}'", columns=["id", "kind", "n"]))
        assert {r["id"]: r.get("n") for r in covered} == {k: live[k].get("n") for k in want}
    assert _ids(table.query("n >= 5", columns=["id", "n", "kind"])) == {
        k for k, r in live.items() if r.get("n") is not None and r["n"] >= 5
    }, "by_n covered"
    assert _ids(table.query(f"t < {now}")) == {
        k for k, r in live.items() if r.get("t") is not None and r["t"] < now
    }, "by_t"


# -- rows and entries expire together -------------------------------------------------


def test_rows_and_entries_expire_together_at_the_ttl(aging):
    client, clock, make = aging
    table = make(ttl="10s")
    start = clock()
    table.put_many([{"id": f"r{i}", "kind": "ab"[i % 2], "n": i, "t": i} for i in range(40)])
    entries = _entries(table)
    assert entries == 40 * len(INDEXES)
    clock.advance(10 * SECOND - 1)  # the last moment they live
    assert len(list(table.query("kind = 'a'"))) == 20
    assert len(table.lookup("by_n", 3, covered=True)) == 1
    clock.advance(1)  # written at start, ttl 10 s: dead from start + 10 s on
    assert clock() == start + 10 * SECOND
    assert list(table.query()) == []
    assert list(table.query("kind = 'a'")) == []
    assert list(table.query("n >= 0", columns=["id", "n", "kind"])) == []  # covered: no trust
    assert table.lookup("by_n", 3, covered=True) == []
    assert table.get("r3") is None
    assert _entries(table) == entries  # nothing deleted yet: hidden, exactly, at read time
    _assert_clean(client, table)  # rows and entries still agree, expired or not

    report = table.age_off()
    assert (report.expired, report.deleted, report.skipped) == (40, 40, 0)
    assert report.index is None and "full scan" in report.plan[0]  # a ttl needs a scan
    assert _entries(table) == 0
    _assert_clean(client, table)
    assert table.age_off().expired == 0  # a rerun finds nothing left


def test_a_row_updated_just_before_its_expiry_lives_on_with_its_entries(aging):
    client, clock, make = aging
    table = make(ttl="10s")
    table.put_many([{"id": f"r{i}", "kind": "a", "n": i, "t": 7} for i in range(10)])
    clock.advance(10 * SECOND - 1)
    # r1's update touches no indexed column: none of its entries is rewritten, yet they
    # must live on with it; r2's update moves one entry and leaves the others as they are.
    table.put_many([{"id": "r1", "at": None}, {"id": "r2", "n": 50}])
    clock.advance(1)
    assert _ids(table.query("kind = 'a'")) == {"r1", "r2"}
    assert _ids(table.query("t = 7")) == {"r1", "r2"}
    assert _ids(table.query("n >= 0", columns=["id", "n"])) == {"r1", "r2"}
    assert table.get("r2") == {"id": "r2", "kind": "a", "n": 50, "t": 7}
    history = [*table.scan_rows(), {"id": "r2", "kind": "a", "n": 2, "t": 7}]
    assert_indexes_exact(table, history)
    report = table.age_off()
    assert (report.expired, report.deleted) == (8, 8)
    assert _entries(table) == 2 * len(INDEXES)
    _assert_clean(client, table)
    clock.advance(10 * SECOND - 2)  # they were written 1 ms before the others expired
    assert _ids(table.query("kind = 'a'")) == {"r1", "r2"}
    clock.advance(1)
    assert list(table.query("kind = 'a'")) == []


def test_a_put_onto_an_expired_row_is_an_insert(aging):
    client, clock, make = aging
    table = make(ttl="10s")
    table.put({"id": "r1", "kind": "a", "n": 1, "t": 1})
    clock.advance(10 * SECOND)
    table.put({"id": "r1", "n": 2})  # the dead row's kind and t must not come back
    assert table.get("r1") == {"id": "r1", "n": 2}
    assert list(table.query("kind = 'a'")) == []
    assert _ids(table.query("kind IS NULL")) == {"r1"}
    _assert_clean(client, table)


def test_age_off_by_a_column_range_scans_only_the_expired_part_of_its_index(aging):
    client, clock, make = aging
    table = make(age_off={"column": "at", "after": "1d"})
    now = datetime.fromtimestamp(clock() / 1000, UTC)
    rows = [
        {"id": f"r{i:02}", "kind": "ab"[i % 2], "at": now - timedelta(hours=i)} for i in range(48)
    ]
    rows.append({"id": "never", "kind": "a", "at": None})  # NULL: never ages off
    table.put_many(rows)
    expired = {f"r{i:02}" for i in range(24, 48)}  # at + 1 day <= now
    assert _ids(table.query("kind = 'a' OR kind = 'b'")) == _ids(rows) - expired

    dry = table.age_off(dry_run=True)
    assert dry.index == "by_at" and "range scan of index" in dry.plan[0]
    assert any("IndexScan" in line and "by_at" in line for line in dry.plan)
    # The range scan reads the expired part only: every row it examined was expired.
    assert (dry.examined, dry.expired, dry.deleted) == (24, 24, 0)
    assert len(list(table.scan_rows())) == 25 and _entries(table) == 49 * len(INDEXES)

    # A row whose age-off value moves forward just before its expiry lives on.
    clock.advance(3600 * SECOND)  # r23 is now expired too...
    table.put({"id": "r23", "at": now})  # ...and rewritten: it lives on with a new value
    table.put({"id": "r30", "at": now})  # expired earlier: an insert, kind NULL
    report = table.age_off()
    assert report.index == "by_at"
    assert (report.examined, report.deleted) == (23, 23)
    assert _ids(table.scan_rows()) == {f"r{i:02}" for i in range(23)} | {"r23", "r30", "never"}
    assert table.get("r30") == {"id": "r30", "at": now}
    _assert_clean(client, table)


def test_age_off_refuses_a_table_without_a_lifespan_and_bad_arguments(aging):
    _, _, make = aging
    table = make()
    with pytest.raises(SchemaError, match="no ttl or age_off"):
        table.age_off()
    for bad in ({"dry_run": "yes"}, {"workers": 0}, {"workers": 2.5}):
        with pytest.raises(ArgumentError):  # checked at the door, before the schema
            table.age_off(**bad)


# -- a query at any moment equals the oracle ------------------------------------------

IDS = [f"r{i}" for i in range(4)]
_PUT = st.tuples(
    st.just("put"),
    st.sampled_from(IDS),
    st.fixed_dictionaries(
        {},
        optional={
            "kind": st.sampled_from(["a", "b", None]),
            "n": st.integers(0, 9) | st.none(),
            "t": st.integers(-12, 3) | st.none(),  # offset in seconds from "now"
        },
    ),
)
_OPS = st.one_of(
    _PUT,
    _PUT,  # puts twice as often: rows must exist (and expire) to be interesting
    st.tuples(st.just("delete"), st.sampled_from(IDS)),
    # Steps around the deadlines (5 s, 10 s; every op adds 1 ms), to land on them often.
    st.tuples(
        st.just("advance"),
        st.sampled_from([1, 4_998, 4_999, 5_000, 9_998, 9_999, 10_000, 11_000])
        | st.integers(0, 12 * SECOND),
    ),
    st.tuples(st.just("ageoff")),
)
EXAMPLES = {"sqlite": 25, "hbase": 4}


@pytest.mark.parametrize("rules", ["ttl", "age_off", "both"])
def test_queries_equal_the_oracle_as_the_clock_steps(aging, request, rules):
    client, clock, make = aging
    lifespan = {
        "ttl": {"ttl": "10s"},
        "age_off": {"age_off": {"column": "t", "after": "5s"}},
        "both": {"ttl": "10s", "age_off": {"column": "t", "after": "5s"}},
    }[rules]
    table = make(**lifespan)
    ttl = 10 * SECOND if rules != "age_off" else None
    after = 5 * SECOND if rules != "ttl" else None
    kind = request.node.callspec.params["store"]

    @settings(
        max_examples=EXAMPLES[kind],
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(_OPS, min_size=4, max_size=14 if kind == "hbase" else 25))
    def run(ops):
        oracle = Oracle(ttl, after)
        for op in ops:
            now = clock()
            if op[0] == "put":
                row = {"id": op[1], **op[2]}
                if row.get("t") is not None:
                    row["t"] = now + row["t"] * SECOND
                table.put(row)
                oracle.put(row, now)
            elif op[0] == "delete":
                table.delete(op[1])
                oracle.delete(op[1])
            elif op[0] == "advance":
                clock.advance(op[1])
            else:
                report = table.age_off()
                assert report.deleted == report.expired == len(oracle.rows) - len(oracle.live(now))
                oracle.rows = {k: v for k, v in oracle.rows.items() if k in oracle.live(now)}
            # Each write at its own millisecond: its timestamp is exactly the clock's.
            clock.advance(1)
            _assert_matches(table, oracle, clock(), IDS)
        table.age_off()
        _assert_clean(client, table)
        assert _entries(table) == len(oracle.live(clock())) * len(INDEXES)
        table.delete_many(IDS)  # the next example starts from an empty table
        # The cleanup wrote at two timestamps (age-off, then the deletes): step past both,
        # so the next example's first write is stamped exactly with the clock again.
        clock.advance(10)

    run()


# -- next to live writers -------------------------------------------------------------


def test_a_row_rewritten_after_it_was_found_expired_survives(aging, store):
    client, clock, make = aging
    table = make(ttl="10s")
    table.put_many([{"id": f"r{i}", "kind": "a", "n": i} for i in range(20)])
    clock.advance(10 * SECOND)
    other = Client(store, workers=4, close_store=False, clock=clock)
    try:
        rival = other.table(table.name)
        fired = []

        def rewrite_between_read_and_delete(step: str) -> None:
            # After the age-off batch read r3 (expired) and before its conditional delete,
            # another client rewrites r3: the delete must lose its version check.
            if step == "read" and not fired:
                fired.append(step)
                rival.put({"id": "r3", "kind": "b", "n": 99})

        table.writer.on_step = rewrite_between_read_and_delete
        report = table.age_off()
        table.writer.on_step = None
    finally:
        other.close()
    assert fired
    assert (report.expired, report.deleted, report.skipped) == (20, 19, 1)
    assert table.get("r3") == {"id": "r3", "kind": "b", "n": 99}
    assert _ids(table.query("kind = 'b'")) == {"r3"} and _entries(table) == len(INDEXES)
    _assert_clean(client, table)


def test_age_off_next_to_a_concurrent_writer(aging, store):
    client, clock, make = aging
    table = make(ttl="10s")
    keys = [f"r{i:03}" for i in range(300)]
    table.put_many([{"id": k, "kind": "a", "n": 1} for k in keys])
    clock.advance(10 * SECOND)  # every row expired; the clock stands still from here
    rewritten: dict[str, int] = {}
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        with Client(store, workers=4, close_store=False, clock=clock) as other:
            rival = other.table(table.name)
            deadline = time.monotonic() + 60
            round_ = 0
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    round_ += 1
                    batch = keys[(round_ * 7) % 290 :][:10]
                    rival.put_many([{"id": k, "n": round_} for k in batch])
                    rewritten.update(dict.fromkeys(batch, round_))
            except BaseException as exc:
                errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while not rewritten and thread.is_alive():
            time.sleep(0.01)
        report = table.age_off()
    finally:
        stop.set()
        thread.join(timeout=90)
    assert not thread.is_alive() and not errors, errors
    assert rewritten and report.deleted <= 300
    # Whatever the interleaving, a rewritten row is an insert of what was last written
    # (it had expired), and every other row is gone.
    want = {k: {"id": k, "n": n} for k, n in rewritten.items()}
    assert {r["id"]: r for r in table.scan_rows()} == want
    assert _ids(table.query("kind IS NULL")) == set(want)
    assert table.age_off().expired == 0
    # Racing writers may leave unverified entries no row owns (readers drop them, verify
    # counts them as harmless); every index still answers exactly.
    _assert_clean(client, table, racing=True)
    assert_indexes_exact(table, [*want.values(), {"id": "x", "kind": "a", "n": 1}])
    reports = [verify_index(client, table.name, i) for i in table.definition.indexes]
    assert [r.rows_checked for r in reports] == [len(want)] * len(INDEXES)
