"""The ``check_and_mutate_many`` contract, on every write path: SQLite, HBase through
Thrift2 (one call per row) and HBase through the checkAndMutate sidecar (batched).

Outcomes and the rows left behind are compared with a brute-force model of the contract
(check one cell, then deletes masking every version at or below the timestamp, then puts),
item by item.
"""

from __future__ import annotations

import itertools
import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from culvert_py.errors import ArgumentError, StoreError
from culvert_py.store.base import CAP_CHECK_AND_MUTATE_MANY, RowMutation
from tests.conftest import WRITE_PATHS, open_kind


@pytest.fixture(params=WRITE_PATHS)
def store(request, tmp_path):
    """Every write path: SQLite, HBase through Thrift2, HBase through the sidecar."""
    yield from open_kind(request, tmp_path)


@pytest.fixture
def table(make_table):
    return make_table(families=("f", "g"))


def sidecar_calls(store) -> int:
    return sum(calls for _, _, calls in getattr(store, "sidecar_report", list)())


def model_apply(cells: dict, mutation: RowMutation) -> dict:
    """The row after ``mutation`` at a timestamp above every cell it holds: its deletes mask
    the older cells and its own puts of the same cells, then the other puts land."""
    columns, families = set(), set()
    for col in mutation.deletes:
        if b":" not in col or col.endswith(b":"):
            families.add(col.split(b":")[0] + b":")
        else:
            columns.add(col)

    def masked(col: bytes) -> bool:
        return col in columns or any(col.startswith(f) for f in families)

    out = {c: v for c, v in cells.items() if not masked(c)}
    out.update((c, v) for c, v in mutation.puts.items() if not masked(c))
    return out


def test_equal_absent_and_mismatch_in_one_batch(store, table):
    table.put_many([(b"eq", {b"f:v": b"1", b"f:x": b"old"}), (b"ne", {b"f:v": b"1"})], 10)
    items = [
        (b"eq", b"f:v", b"1", RowMutation(b"eq", {b"f:v": b"2"}, [b"f:x"])),
        (b"ne", b"f:v", b"9", RowMutation(b"ne", {b"f:v": b"3"})),
        (b"new", b"f:v", None, RowMutation(b"new", {b"f:v": b"1", b"g:y": b"y"})),
        (b"ne2", b"f:v", b"1", RowMutation(b"ne2", {b"f:v": b"4"})),  # absent, expected 1
    ]
    before = sidecar_calls(store)
    assert table.check_and_mutate_many(items, 20) == [True, False, True, False]
    assert table.get_many([b"eq", b"ne", b"new", b"ne2"]) == {
        b"eq": {b"f:v": b"2"},
        b"ne": {b"f:v": b"1"},
        b"new": {b"f:v": b"1", b"g:y": b"y"},
    }
    # Present now: an absent-cell condition fails, an equal one applies.
    again = [
        (b"new", b"f:v", None, RowMutation(b"new", {b"f:v": b"5"})),
        (b"eq", b"f:v", b"2", RowMutation(b"eq", {b"f:v": b"6"})),
    ]
    assert table.check_and_mutate_many(again, 30) == [False, True]
    if CAP_CHECK_AND_MUTATE_MANY in store.capabilities and hasattr(store, "sidecar_report"):
        assert sidecar_calls(store) == before + 2  # one call per batch, not per row
    assert table.check_and_mutate_many([], 40) == []


def test_deletes_of_columns_and_families_mask_older_cells_and_the_items_own_put(store, table):
    table.put_many([(b"r", {b"f:v": b"v1", b"f:a": b"1", b"g:b": b"2", b"g:c": b"3"})], 100)
    table.put_many([(b"s", {b"f:v": b"v1", b"g:b": b"2"})], 100)
    items = [
        (b"r", b"f:v", b"v1", RowMutation(b"r", {b"f:v": b"v2", b"g:b": b"new"}, [b"g:"])),
        (b"s", b"f:v", b"v1", RowMutation(b"s", {b"f:v": b"v2"}, [b"g:b", b"f:v"])),
    ]
    assert table.check_and_mutate_many(items, 200) == [True, True]
    # g: deleted at 200 masks the put of g:b at 200; f:v deleted at 200 masks its own put.
    assert table.get_many([b"r", b"s"]) == {b"r": {b"f:v": b"v2", b"f:a": b"1"}}
    # A later put is not masked.
    assert table.check_and_mutate_many(
        [(b"s", b"f:v", None, RowMutation(b"s", {b"f:v": b"v3"}))], 201
    ) == [True]
    assert table.get_many([b"s"]) == {b"s": {b"f:v": b"v3"}}


def test_rows_across_every_region_of_a_presplit_table(store, make_table):
    splits = [b"d", b"h", b"p", b"t"]
    table = make_table(families=("f",), split_keys=splits)
    rows = [bytes([c]) + b"%03d" % i for c in b"abdhkpsz" for i in range(25)]
    table.put_many(((r, {b"f:v": b"0"}) for r in rows[::2]), 5)
    items = [
        (r, b"f:v", b"0" if i % 2 == 0 else None, RowMutation(r, {b"f:v": b"1"}))
        for i, r in enumerate(rows)
    ]
    items += [(b"m-miss", b"f:v", b"0", RowMutation(b"m-miss", {b"f:v": b"1"}))]
    assert table.check_and_mutate_many(items, 6) == [True] * len(rows) + [False]
    assert table.get_many(rows) == {r: {b"f:v": b"1"} for r in rows}
    assert len(store.regions(table.name)) == len(splits) + 1


BAD_ITEMS = {
    "other row": (b"r9", b"f:v", b"x", RowMutation(b"other", {b"f:a": b"1"})),
    "no put": (b"r9", b"f:v", b"x", RowMutation(b"r9", {}, [b"f:b"])),
    "absent with deletes": (b"r9", b"f:v", None, RowMutation(b"r9", {b"f:a": b"1"}, [b"f:b"])),
    "value not bytes": (b"r9", b"f:v", b"x", RowMutation(b"r9", {b"f:a": "text"})),
    "put without qualifier": (b"r9", b"f:v", b"x", RowMutation(b"r9", {b"f:": b"1"})),
    "expected not bytes": (b"r9", b"f:v", "x", RowMutation(b"r9", {b"f:a": b"1"})),
    "empty row": (b"", b"f:v", b"x", RowMutation(b"", {b"f:a": b"1"})),
    "column without family": (b"r9", b":v", b"x", RowMutation(b"r9", {b"f:a": b"1"})),
    "row twice": (b"r0", b"f:v", b"0", RowMutation(b"r0", {b"f:v": b"2"})),
}


@pytest.mark.parametrize("bad", BAD_ITEMS, ids=list(BAD_ITEMS))
def test_a_bad_item_fails_the_whole_batch_before_anything_is_written(store, table, bad):
    table.put_many([(b"r0", {b"f:v": b"0"})], 1)
    good = (b"r0", b"f:v", b"0", RowMutation(b"r0", {b"f:v": b"1"}))
    with pytest.raises(ArgumentError):
        table.check_and_mutate_many([good, BAD_ITEMS[bad]], 2)
    with pytest.raises(ArgumentError):
        table.check_and_mutate_many([good], -1)
    assert table.get_many([b"r0"]) == {b"r0": {b"f:v": b"0"}}


def test_unknown_family_and_missing_table_are_store_errors(store, table):
    with pytest.raises(StoreError):
        table.check_and_mutate_many([(b"r", b"f:v", None, RowMutation(b"r", {b"nope:a": b"1"}))], 1)
    missing = store.table(f"missing_{uuid.uuid4().hex[:8]}")
    with pytest.raises(StoreError):
        missing.check_and_mutate_many([(b"r", b"f:v", None, RowMutation(b"r", {b"f:a": b"1"}))], 1)
    # The store still works afterwards (a refused request leaves its connection usable).
    ok = [(b"r", b"f:v", None, RowMutation(b"r", {b"f:v": b"1"}))]
    assert table.check_and_mutate_many(ok, 2) == [True]


def test_racing_batches_serialise_every_row(store, table):
    rows = [b"c%02d" % i for i in range(20)]
    table.put_many(((r, {b"f:n": b"0"}) for r in rows), 1)
    wins = [0] * 4
    ts = itertools.count(2)
    lock = threading.Lock()

    def writer(me: int) -> None:
        for _ in range(8):
            current = table.get_many(rows, columns=[b"f:n"])
            with lock:
                stamp = next(ts)
            items = []
            for row, cells in sorted(current.items()):
                n = cells[b"f:n"]
                items.append((row, b"f:n", n, RowMutation(row, {b"f:n": b"%d" % (int(n) + 1)})))
            wins[me] += sum(table.check_and_mutate_many(items, stamp))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    final = table.get_many(rows, columns=[b"f:n"])
    # Every applied item added exactly one to its row: no lost or doubled update.
    assert sum(int(c[b"f:n"]) for c in final.values()) == sum(wins) > 0


CELL = st.sampled_from([b"f:v", b"f:a", b"g:b"])
VALUE = st.sampled_from([b"", b"0", b"1", b"\x00\xff"])
# The check cell is never empty: HBase reads an empty value as "absent" in a condition
# (see the contract), which SQLite does not model.
ROW_STATE = st.dictionaries(CELL, VALUE, max_size=3).map(
    lambda d: {c: v for c, v in d.items() if c != b"f:v" or v}
)
DELETES = st.lists(st.sampled_from([b"f:a", b"g:b", b"g:", b"g", b"f:v"]), max_size=2, unique=True)


@st.composite
def batches(draw):
    """``[(row state before, expected choice, puts, deletes)]`` for a few rows."""
    out = []
    for _ in range(draw(st.integers(1, 6))):
        before = draw(ROW_STATE)
        choice = draw(st.sampled_from(["equal", "absent", "mismatch"]))
        puts = draw(st.dictionaries(CELL, VALUE, min_size=1, max_size=2))
        out.append((before, choice, puts, [] if choice == "absent" else draw(DELETES)))
    return out


_example = itertools.count()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=batches())
def test_outcomes_and_rows_equal_a_brute_force_model(store, table, batch):
    n = next(_example)
    rows = [b"m%04d-%d" % (n, i) for i in range(len(batch))]
    table.put_many(((r, b[0]) for r, b in zip(rows, batch, strict=True) if b[0]), 10)
    items, want, final = [], [], {}
    for row, (before, choice, puts, deletes) in zip(rows, batch, strict=True):
        current = before.get(b"f:v")
        expected = {"equal": current, "absent": None, "mismatch": b"other"}[choice]
        if choice == "equal" and current is None:
            expected = b"1"  # the cell is absent: an equality check fails
        mutation = RowMutation(row, puts, deletes)
        items.append((row, b"f:v", expected, mutation))
        applies = current == expected
        want.append(applies)
        after = model_apply(before, mutation) if applies else before
        if after:
            final[row] = after
    assert table.check_and_mutate_many(items, 20) == want
    assert table.get_many(rows) == final


def test_an_item_the_sidecar_protocol_cannot_carry_is_written_all_the_same(store, table):
    # A 70 kB qualifier does not fit the sidecar's u16 column length: that batch goes
    # through Thrift2, with the same outcome.
    wide = b"f:" + b"q" * 70_000
    items = [
        (b"wide", b"f:v", None, RowMutation(b"wide", {b"f:v": b"1", wide: b"x"})),
        (b"narrow", b"f:v", b"9", RowMutation(b"narrow", {b"f:v": b"1"})),
    ]
    assert table.check_and_mutate_many(items, 3) == [True, False]
    assert table.get_many([b"wide", b"narrow"]) == {b"wide": {b"f:v": b"1", wide: b"x"}}
