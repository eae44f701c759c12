"""The storage contract, run unchanged against SQLite and the real HBase.

This suite is the specification of :mod:`culvert_py.store.base`; the HBase run is what
proves the SQLite store honours HBase semantics.
"""

from __future__ import annotations

import threading

import pytest

from culvert_py.errors import ArgumentError, CapabilityError, StoreError
from culvert_py.store.base import CAP_SERVER_FILTER, Region, RowMutation

TRICKY_KEYS = [
    b"\x00",
    b"\x00\x00",
    b"\x00\x01",
    b"\x01",
    b"a",
    b"a\x00",
    b"a\x00\xff",
    b"a\x7f",
    b"a\x80",
    b"a\xff",
    b"ab",
    b"\x7f",
    b"\x80",
    b"\xfe\xff",
    b"\xff",
    b"\xff\x00",
    b"\xff\xff",
]


def rows_of(table, **scan_args):
    return [row for row, _ in table.scan(**scan_args)]


def test_rows_sort_by_unsigned_bytes_including_nul_and_ff(make_table):
    table = make_table()
    shuffled = sorted(TRICKY_KEYS, key=lambda k: k[::-1])
    table.put_many(((k, {b"f:v": k}) for k in shuffled), timestamp=1)
    assert rows_of(table) == sorted(TRICKY_KEYS)
    assert table.get_many(TRICKY_KEYS) == {k: {b"f:v": k} for k in TRICKY_KEYS}


def test_empty_values_are_kept_and_absent_cells_and_rows_are_left_out(make_table):
    table = make_table(families=("f", "g"))
    table.put_many([(b"r1", {b"f:empty": b"", b"g:x": b"1"}), (b"r2", {b"f:a": b"2"})], 5)
    got = table.get_many([b"r1", b"r2", b"missing"])
    assert got == {b"r1": {b"f:empty": b"", b"g:x": b"1"}, b"r2": {b"f:a": b"2"}}
    assert table.get_many([b"r1"], columns=[b"f:empty"]) == {b"r1": {b"f:empty": b""}}
    assert table.get_many([b"r2"], columns=[b"g:"]) == {}
    assert table.get_many([b"r1", b"r2"], columns=[b"g:"]) == {b"r1": {b"g:x": b"1"}}
    assert table.get_many([]) == {}


def test_include_timestamp_returns_value_and_timestamp(make_table):
    table = make_table()
    table.put_many([(b"r", {b"f:a": b"x"})], 1234567)
    assert table.get_many([b"r"], include_timestamp=True) == {b"r": {b"f:a": (b"x", 1234567)}}
    assert list(table.scan(include_timestamp=True)) == [(b"r", {b"f:a": (b"x", 1234567)})]


def test_large_batches_of_ten_thousand_rows(make_table):
    table = make_table()
    keys = [b"row%06d" % i for i in range(10_000)]
    written = table.put_many(((k, {b"f:a": k[3:], b"f:b": b"x" * 20}) for k in keys), 7)
    assert written == 10_000
    scanned = list(table.scan(batch_size=2500))
    assert [r for r, _ in scanned] == keys
    assert all(cells == {b"f:a": r[3:], b"f:b": b"x" * 20} for r, cells in scanned)
    got = table.get_many(keys[::-1])
    assert len(got) == 10_000 and got[keys[1234]] == {b"f:a": b"001234", b"f:b": b"x" * 20}
    assert table.delete_many(keys[:5000], 8) == 5000
    assert rows_of(table) == keys[5000:]


def test_newest_timestamp_wins_whatever_the_arrival_order(make_table):
    table = make_table()
    table.put_many([(b"r", {b"f:a": b"new"})], 30)
    table.put_many([(b"r", {b"f:a": b"old"})], 20)
    assert table.get_many([b"r"], include_timestamp=True) == {b"r": {b"f:a": (b"new", 30)}}
    table.put_many([(b"r", {b"f:a": b"newer"})], 31)
    assert table.get_many([b"r"]) == {b"r": {b"f:a": b"newer"}}


def test_delete_masks_older_puts_even_ones_that_arrive_later(make_table):
    table = make_table()
    table.put_many([(b"r", {b"f:a": b"1", b"f:b": b"1"})], 10)
    table.delete_many([b"r"], 20, columns=[b"f:a"])
    assert table.get_many([b"r"]) == {b"r": {b"f:b": b"1"}}
    table.put_many([(b"r", {b"f:a": b"late"})], 15)  # older than the delete: masked
    table.put_many([(b"r", {b"f:a": b"at"})], 20)  # equal to the delete: masked
    assert table.get_many([b"r"]) == {b"r": {b"f:b": b"1"}}
    table.put_many([(b"r", {b"f:a": b"after"})], 21)  # newer: visible
    assert table.get_many([b"r"]) == {b"r": {b"f:a": b"after", b"f:b": b"1"}}


def test_delete_does_not_mask_newer_existing_cells(make_table):
    table = make_table()
    table.put_many([(b"r", {b"f:a": b"newer"})], 50)
    table.delete_many([b"r"], 40)
    assert table.get_many([b"r"]) == {b"r": {b"f:a": b"newer"}}


def test_whole_row_and_family_deletes_mask_every_column(make_table):
    table = make_table(families=("f", "g"))
    table.put_many([(b"r", {b"f:a": b"1", b"f:b": b"2", b"g:c": b"3"})], 10)
    table.mutate_many([RowMutation(b"r", {}, [b"f:"])], 11)
    assert table.get_many([b"r"]) == {b"r": {b"g:c": b"3"}}
    table.put_many([(b"r", {b"f:z": b"late"})], 11)  # new column, but masked by the family
    assert table.get_many([b"r"]) == {b"r": {b"g:c": b"3"}}
    table.delete_many([b"r"], 12)
    assert table.get_many([b"r"]) == {}
    assert rows_of(table) == []
    table.put_many([(b"r", {b"g:c": b"back"})], 13)
    assert table.get_many([b"r"]) == {b"r": {b"g:c": b"back"}}


def test_put_and_delete_of_one_cell_at_one_timestamp_delete_wins(make_table):
    table = make_table()
    table.mutate_many([RowMutation(b"r", {b"f:a": b"x", b"f:b": b"y"}, [b"f:a"])], 5)
    assert table.get_many([b"r"]) == {b"r": {b"f:b": b"y"}}


def test_scan_start_stop_prefix_limit_columns(make_table):
    table = make_table(families=("f", "g"))
    keys = [b"a1", b"a2", b"a3", b"b1", b"b2", b"b\xff", b"b\xff\x01", b"c"]
    table.put_many(((k, {b"f:x": k, b"g:y": b"y"}) for k in keys), 1)
    table.put_many([(b"d", {b"g:y": b"only g"})], 1)
    assert rows_of(table, start=b"a2", stop=b"b2") == [b"a2", b"a3", b"b1"]
    assert rows_of(table, start=b"b") == [b"b1", b"b2", b"b\xff", b"b\xff\x01", b"c", b"d"]
    assert rows_of(table, stop=b"a3") == [b"a1", b"a2"]
    assert rows_of(table, prefix=b"b") == [b"b1", b"b2", b"b\xff", b"b\xff\x01"]
    assert rows_of(table, prefix=b"b\xff") == [b"b\xff", b"b\xff\x01"]
    assert rows_of(table, prefix=b"zz") == []
    assert rows_of(table, limit=3) == [b"a1", b"a2", b"a3"]
    assert rows_of(table, prefix=b"b", limit=2, batch_size=1) == [b"b1", b"b2"]
    assert rows_of(table, batch_size=2) == [*keys, b"d"]
    assert list(table.scan(prefix=b"a", columns=[b"g:y"])) == [
        (k, {b"g:y": b"y"}) for k in (b"a1", b"a2", b"a3")
    ]
    # Rows holding none of the requested columns are not returned at all.
    assert rows_of(table, columns=[b"f:"]) == keys
    with pytest.raises(ValueError):
        list(table.scan(prefix=b"a", start=b"a"))


def test_scan_is_lazy_and_sees_rows_in_key_order_across_batches(make_table):
    table = make_table()
    table.put_many(((b"k%03d" % i, {b"f:a": b"1"}) for i in range(50)), 1)
    it = table.scan(batch_size=7)
    first = [next(it)[0] for _ in range(10)]
    assert first == [b"k%03d" % i for i in range(10)]
    assert [r for r, _ in it] == [b"k%03d" % i for i in range(10, 50)]


def test_check_and_mutate_applies_only_when_the_cell_matches(make_table):
    table = make_table()
    mut = RowMutation(b"r", {b"f:v": b"1", b"f:data": b"a"})
    assert table.check_and_mutate(b"r", b"f:v", None, mut, 10) is True
    assert table.check_and_mutate(b"r", b"f:v", None, mut, 11) is False  # now present
    wrong = RowMutation(b"r", {b"f:v": b"2", b"f:data": b"b"})
    assert table.check_and_mutate(b"r", b"f:v", b"9", wrong, 12) is False
    assert table.get_many([b"r"], include_timestamp=True) == {
        b"r": {b"f:v": (b"1", 10), b"f:data": (b"a", 10)}
    }
    both = RowMutation(b"r", {b"f:v": b"2", b"f:new": b"n"}, [b"f:data"])
    assert table.check_and_mutate(b"r", b"f:v", b"1", both, 13) is True
    assert table.get_many([b"r"], include_timestamp=True) == {
        b"r": {b"f:v": (b"2", 13), b"f:new": (b"n", 13)}
    }


def test_check_and_mutate_validates_its_arguments(make_table):
    table = make_table()
    with pytest.raises(ArgumentError, match="puts only"):
        table.check_and_mutate(b"r", b"f:v", None, RowMutation(b"r", {b"f:a": b"1"}, [b"f:b"]), 1)
    with pytest.raises(ArgumentError, match="at least one put"):
        table.check_and_mutate(b"r", b"f:v", b"x", RowMutation(b"r", {}, [b"f:b"]), 1)
    with pytest.raises(ArgumentError, match="mutation row"):
        table.check_and_mutate(b"r", b"f:v", b"x", RowMutation(b"other", {b"f:a": b"1"}), 1)
    assert table.get_many([b"r"]) == {}


def test_check_and_mutate_serialises_two_racing_threads(make_table):
    table = make_table()
    table.put_many([(b"counter", {b"f:n": b"0"})], 1)
    per_thread = 40
    lost_races = [0, 0]

    def increment(slot: int) -> None:
        done = 0
        while done < per_thread:
            current = table.get_many([b"counter"], include_timestamp=True)[b"counter"][b"f:n"]
            value, ts = current
            new = str(int(value) + 1).encode()
            mut = RowMutation(b"counter", {b"f:n": new, b"f:last": bytes([slot])})
            if table.check_and_mutate(b"counter", b"f:n", value, mut, ts + 1):
                done += 1
            else:
                lost_races[slot] += 1

    threads = [threading.Thread(target=increment, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Every successful CAS incremented exactly once: no lost update, no double apply.
    assert table.get_many([b"counter"])[b"counter"][b"f:n"] == str(2 * per_thread).encode()


def test_presplit_table_has_one_region_per_bucket(store, make_table):
    splits = [bytes([i * 32]) for i in range(1, 8)]
    table = make_table(split_keys=list(reversed(splits)))
    regions = store.regions(table.name)
    assert len(regions) == len(splits) + 1
    bounds = [b"", *splits, b""]
    assert regions == [Region(bounds[i], bounds[i + 1]) for i in range(len(splits) + 1)]
    # Data lands and scans across region boundaries in order.
    keys = [bytes([i]) + b"k" for i in range(0, 256, 5)]
    table.put_many(((k, {b"f:a": k}) for k in keys), 1)
    assert rows_of(table, batch_size=4) == keys


def test_unsplit_table_has_one_unbounded_region(store, make_table):
    table = make_table()
    assert store.regions(table.name) == [Region(b"", b"")]


def test_server_side_filter_strings(store, make_table):
    table = make_table()
    table.put_many(
        [
            (b"r1", {b"f:city": b"JFK", b"f:n": b"1"}),
            (b"r2", {b"f:city": b"LAX", b"f:n": b"2"}),
            (b"r3", {b"f:city": b"it's (quoted)", b"f:n": b"3"}),
        ],
        1,
    )
    flt = "SingleColumnValueFilter('f', 'city', =, 'binary:JFK', true, true)"
    if CAP_SERVER_FILTER not in store.capabilities:
        with pytest.raises(CapabilityError, match="filter"):
            list(table.scan(filter=flt))
        return
    assert rows_of(table, filter=flt) == [b"r1"]
    quoted = "SingleColumnValueFilter('f', 'city', =, 'binary:it''s (quoted)', true, true)"
    assert rows_of(table, filter=quoted) == [b"r3"]
    assert rows_of(table, filter="PrefixFilter('r2')") == [b"r2"]


def test_table_admin(store, make_table):
    table = make_table()
    assert store.table_exists(table.name)
    assert table.name in store.list_tables()
    with pytest.raises(StoreError, match="already exists"):
        store.create_table(table.name, ["f"])
    store.delete_table(table.name)
    assert not store.table_exists(table.name)
    store.delete_table(table.name)  # no-op when absent


def test_unknown_family_and_missing_table_are_store_errors(store, make_table):
    table = make_table()
    with pytest.raises(StoreError):
        table.put_many([(b"r", {b"nofamily:a": b"1"})], 1)
    missing = store.table("no_such_table_culvert")
    with pytest.raises(StoreError):
        missing.get_many([b"r"])


def test_many_threads_share_one_store(make_table):
    table = make_table()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                key = b"t%02d-%03d" % (n, i)
                table.put_many([(key, {b"f:a": key})], 1)
                assert table.get_many([key]) == {key: {b"f:a": key}}
            assert len(rows_of(table, prefix=b"t%02d-" % n)) == 20
        except BaseException as exc:  # collected: assertion in a thread must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(rows_of(table)) == 160


def test_invalid_arguments_fail_eagerly(make_table):
    table = make_table()
    with pytest.raises(ArgumentError, match="timestamp"):
        table.put_many([(b"r", {b"f:a": b"1"})], -1)
    with pytest.raises(ArgumentError, match="bytes"):
        table.put_many([(b"r", {b"f:a": "text"})], 1)
    with pytest.raises(ArgumentError, match="row key"):
        table.put_many([(b"", {b"f:a": b"1"})], 1)


def test_check_and_mutate_serialises_writers_on_separate_connections(store, make_table):
    # A second store object on the same store: its own connection, as another process has.
    from culvert_py.store import open_store

    table = make_table()
    table.put_many([(b"counter", {b"f:n": b"0"})], 1)
    per_writer = 40
    errors: list[BaseException] = []
    with open_store(store.url) as other:
        tables = [table, other.table(table.name)]

        def increment(slot: int) -> None:
            mine = tables[slot]
            try:
                done = 0
                while done < per_writer:
                    cells = mine.get_many([b"counter"], include_timestamp=True)[b"counter"]
                    value, ts = cells[b"f:n"]
                    new = RowMutation(b"counter", {b"f:n": b"%d" % (int(value) + 1)})
                    if mine.check_and_mutate(b"counter", b"f:n", value, new, ts + 1):
                        done += 1
            except BaseException as exc:  # collected: an error in a thread must fail the test
                errors.append(exc)

        threads = [threading.Thread(target=increment, args=(slot,)) for slot in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert table.get_many([b"counter"])[b"counter"][b"f:n"] == b"%d" % (2 * per_writer)


def test_families_lists_what_the_table_was_created_with(store, make_table):
    table = make_table(families=("b", "a"))
    assert store.families(table.name) == ["a", "b"]
    from culvert_py.errors import StoreError

    with pytest.raises(StoreError, match="does not exist"):
        store.families(f"{table.name}_missing")


# -- time-range scans ------------------------------------------------------------------

#: ``{row: {column: (value, timestamp)}}``: every cell written once, at 10, 20 or 30.
TIMED = {
    b"k1": {b"f:a": (b"1a", 10), b"f:b": (b"1b", 20), b"g:x": (b"1x", 30)},
    b"k2": {b"f:a": (b"2a", 30), b"g:x": (b"2x", 10)},
    b"k3": {b"f:a": (b"3a", 20), b"g:x": (b"3x", 20)},
    b"k4": {b"f:b": (b"4b", 10)},
    b"k5": {b"g:y": (b"5y", 20), b"f:a": (b"5a", 30)},
    b"m6": {b"f:a": (b"6a", 20)},
    b"m7": {b"f:b": (b"7b", 30)},
}


def timed_table(make_table):
    table = make_table(families=("f", "g"))
    for ts in (30, 10, 20):  # not in timestamp order: order of arrival must not matter
        rows = [
            (row, {col: value for col, (value, t) in cells.items() if t == ts})
            for row, cells in TIMED.items()
        ]
        table.put_many([(row, cells) for row, cells in rows if cells], ts)
    return table


def timed_oracle(low, high, columns=None, start=b"", stop=None, include_timestamp=False):
    """The time-range scan of :data:`TIMED`, computed independently of any store."""
    out = []
    for row in sorted(TIMED):
        if row < start or (stop is not None and row >= stop):
            continue
        cells = {
            col: (value, ts) if include_timestamp else value
            for col, (value, ts) in sorted(TIMED[row].items())
            if low <= ts < high
            and (columns is None or any(col == c or col.startswith(c + b":") for c in columns))
        }
        if cells:
            out.append((row, cells))
    return out


def test_time_range_scan_returns_only_cells_in_the_range(make_table):
    table = timed_table(make_table)
    got = list(table.scan(time_range=(15, 30)))
    assert got == [
        (b"k1", {b"f:b": b"1b"}),
        (b"k3", {b"f:a": b"3a", b"g:x": b"3x"}),
        (b"k5", {b"g:y": b"5y"}),
        (b"m6", {b"f:a": b"6a"}),
    ]
    assert got == timed_oracle(15, 30)
    for low, high in [(0, 11), (10, 11), (11, 20), (10, 30), (20, 31), (30, 2**63 - 1)]:
        for batch_size in (1, 2, 1000):
            scan = table.scan(time_range=(low, high), batch_size=batch_size)
            assert list(scan) == timed_oracle(low, high), (low, high, batch_size)


def test_time_range_scan_combines_with_every_other_scan_argument(make_table):
    table = timed_table(make_table)
    r = (15, 30)
    assert list(table.scan(time_range=r, columns=[b"f:a"])) == timed_oracle(*r, [b"f:a"])
    assert list(table.scan(time_range=r, columns=[b"g:"])) == timed_oracle(*r, [b"g"])
    both = [b"f:b", b"g:"]
    assert list(table.scan(time_range=r, columns=both)) == timed_oracle(*r, [b"f:b", b"g"])
    assert list(table.scan(time_range=r, prefix=b"m")) == timed_oracle(*r, start=b"m", stop=b"n")
    assert list(table.scan(time_range=r, start=b"k2", stop=b"m6")) == timed_oracle(
        *r, start=b"k2", stop=b"m6"
    )
    assert list(table.scan(time_range=(0, 15), start=b"k2")) == timed_oracle(0, 15, start=b"k2")
    # limit counts returned rows: k2 and k4 have no cell in range and do not use it up.
    assert list(table.scan(time_range=r, limit=2)) == timed_oracle(*r)[:2]
    assert list(table.scan(time_range=r, limit=3, batch_size=1)) == timed_oracle(*r)[:3]
    assert list(table.scan(time_range=r, limit=0)) == []
    assert list(table.scan(time_range=r, include_timestamp=True, columns=[b"f:"])) == (
        timed_oracle(*r, [b"f"], include_timestamp=True)
    )
    # A row whose only in-range cells are outside the columns asked for is left out.
    assert list(table.scan(time_range=(25, 35), columns=[b"g:y"])) == []


def test_time_range_scan_over_all_time_equals_a_plain_scan(make_table):
    table = timed_table(make_table)
    everything = (0, 2**63 - 1)
    assert list(table.scan(time_range=everything)) == list(table.scan())
    assert list(table.scan(time_range=everything, include_timestamp=True)) == list(
        table.scan(include_timestamp=True)
    )
    assert list(table.scan(time_range=everything, include_timestamp=True)) == (
        timed_oracle(0, 2**63 - 1, include_timestamp=True)
    )


def test_empty_time_range_returns_nothing(make_table):
    table = timed_table(make_table)
    for ts in (0, 10, 20, 2**63 - 1):
        assert list(table.scan(time_range=(ts, ts))) == []


def test_time_range_scan_honours_delete_masks(make_table):
    table = timed_table(make_table)
    table.delete_many([b"k3"], 25, columns=[b"f:a"])
    table.delete_many([b"m6"], 25)
    assert list(table.scan(time_range=(15, 30))) == [
        (b"k1", {b"f:b": b"1b"}),
        (b"k3", {b"g:x": b"3x"}),
        (b"k5", {b"g:y": b"5y"}),
    ]


@pytest.mark.parametrize(
    "bad",
    [(30, 15), (-1, 5), (0, 2**63), (1.0, 2), (True, 5), (1, 2, 3), (5,), "0,9", 7, (b"1", 2)],
)
def test_malformed_time_ranges_are_refused_at_the_call(make_table, bad):
    table = make_table()
    with pytest.raises(ArgumentError, match="time_range"):
        table.scan(time_range=bad)  # refused before the first next()


def test_check_and_mutate_deletes_whole_families_and_masks_its_own_put(store, make_table):
    from culvert_py.store.base import RowMutation

    table = make_table(families=("f", "g"))
    table.put_many([(b"r", {b"f:a": b"1", b"g:b": b"2", b"f:v": b"v1"})], 100)
    mutation = RowMutation(b"r", {b"f:v": b"v2"}, [b"f:", b"g:"])
    assert table.check_and_mutate(b"r", b"f:v", b"v1", mutation, 200)
    # Every cell of both families is gone, the put at the delete's timestamp included.
    assert table.get_many([b"r"]) == {}
    table.put_many([(b"r", {b"f:a": b"3"})], 300)
    assert table.get_many([b"r"]) == {b"r": {b"f:a": b"3"}}


def test_scan_reverse_is_the_forward_scan_backwards(make_table):
    table = make_table(families=("f", "g"))
    table.put_many([(k, {b"f:a": k, b"g:b": b"x"}) for k in TRICKY_KEYS], 5)
    table.put_many([(b"only-g", {b"g:b": b"y"})], 5)
    everything = sorted([*TRICKY_KEYS, b"only-g"])
    assert [r for r, _ in table.scan_reverse()] == everything[::-1]
    bounds = [None, b"", b"\x00\x01", b"a\x00", b"\x80", b"\xff\xff\x00"]
    for start in bounds:
        for stop in bounds:
            want = [r for r in everything if (not start or r >= start) and (not stop or r < stop)]
            for batch_size, limit in [(1, None), (3, 2), (1000, None)]:
                got = table.scan_reverse(start, stop, batch_size=batch_size, limit=limit)
                keys = [r for r, _ in got]
                assert keys == want[::-1][:limit], (start, stop, batch_size, limit)
    rows = dict(table.scan_reverse(b"a", b"b", columns=[b"f:a"]))
    assert rows == {k: {b"f:a": k} for k in everything if b"a" <= k < b"b" and k != b"only-g"}
    assert [r for r, _ in table.scan_reverse(columns=[b"g:"], limit=1)] == [everything[-1]]
    with pytest.raises(ArgumentError):
        table.scan_reverse(batch_size=0)


def test_put_many_at_writes_each_row_at_its_own_timestamp(make_table):
    table = make_table(families=("f", "g"))
    table.delete_many([b"r2"], 25, columns=[b"f:a"])
    rows = [(b"r%d" % i, {b"f:a": b"v%d" % i, b"g:b": b""}, 10 + 10 * i) for i in range(1, 1201)]
    assert table.put_many_at(iter(rows)) == 1200  # more rows than one batched call takes
    got = table.get_many([r for r, _, _ in rows], include_timestamp=True)
    want = {r: {c: (v, ts) for c, v in cells.items()} for r, cells, ts in rows}
    del want[b"r2"][b"f:a"]  # written at 30 > 25: visible
    want[b"r2"][b"f:a"] = (b"v2", 30)
    assert got == want
    table.put_many_at([(b"r1", {b"f:a": b"older"}, 15)])  # below the row's 20: hidden
    assert table.get_many([b"r1"])[b"r1"][b"f:a"] == b"v1"
    table.delete_many([b"r3"], 40)  # masks r3's cells at 40 and below
    table.put_many_at([(b"r3", {b"f:a": b"masked"}, 35), (b"r4", {b"f:a": b"new"}, 60)])
    assert b"r3" not in table.get_many([b"r3"])
    assert table.get_many([b"r4"], include_timestamp=True)[b"r4"][b"f:a"] == (b"new", 60)
    assert table.put_many_at([]) == 0


@pytest.mark.parametrize("bad", [-1, True, 1.5, None, 2**63])
def test_put_many_at_refuses_a_bad_timestamp_before_writing(make_table, bad):
    table = make_table()
    with pytest.raises(ArgumentError, match="timestamp"):
        table.put_many_at([(b"ok", {b"f:a": b"1"}, 5), (b"bad", {b"f:a": b"1"}, bad)])
    assert table.get_many([b"ok", b"bad"]) == {}
