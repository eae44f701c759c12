"""The smallest or largest value of an index's first column, from the end of each bucket.

Within one salt bucket an index's entries are in key order, and the first column decides
that order, so a bucket's extreme is its first entry from the wanted end (after the
``IS NOT NULL`` the aggregate adds, NULL entries are outside the ranges): read forward for
the low end, with a reversed scan for the high end (a descending column swaps them). Each
bucket is read on the pool in parallel, a few entries per call, and stops at its first
entry that passes the same checks as a covered read: a verified entry is trusted, an
unverified one is checked against its row (the row must own exactly that entry), and the
rest of the predicate is checked on the row either way. The answer is the best of the
buckets' answers. A bucket whose first entries fail reads on, so the answer stays exact.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Executor

from culvert_py.layout import STATE_COLUMN, VERIFIED, IndexKeys, covered_row, decode_row, entries_of
from culvert_py.predicate import matches, sort_key
from culvert_py.query.plan import IndexScan, Plan
from culvert_py.schema import TableDef
from culvert_py.store import Store

#: Entries per call from a bucket's end once its first entry failed the checks.
END_BATCH = 64


def extreme_scan(plan: Plan, column: str) -> bool:
    """Whether ``plan``'s source can answer the extreme of ``column`` from bucket ends: a
    covered scan of an ordered index whose first column is ``column``."""
    source = plan.source
    return (
        isinstance(source, IndexScan)
        and source.covered
        and source.index.kind != "text"
        and source.index.columns[0] == column
    )


def extreme_value(
    store: Store, definition: TableDef, pool: Executor, plan: Plan, column: str, largest: bool
) -> object:
    """The smallest (or ``largest``) value of ``column`` over ``plan``'s rows, read from the
    ends of the salt buckets of its index scan (see :func:`extreme_scan`).

    Fills the scan node's analyze counters (``rpcs``, ``entries_read``, ``actual_rows``).

    :return: the value, or ``None`` when no entry passes
    :raises StoreError: when the store fails (after retries)
    """
    node: IndexScan = plan.source  # type: ignore[assignment]
    keys = IndexKeys(definition, node.index)
    # Reading towards the high end of the value order means towards the high end of the
    # key order, unless the column is descending in the index.
    backwards = largest != keys.descending[0]
    buckets = sorted({b for r in node.ranges for b in r.buckets})
    started = time.perf_counter()
    futures = [
        pool.submit(_bucket_end, store, definition, keys, plan, node, b, backwards) for b in buckets
    ]
    found = []
    for future in futures:
        value, entries, rpcs = future.result()
        node.entries_read += entries
        node.rpcs += rpcs
        if value is not None:
            found.append(value)
    node.seconds += time.perf_counter() - started
    node.actual_rows = plan.actual_rows = len(found)
    if not found:
        return None
    pick = max if largest else min
    return pick(found, key=sort_key)


def _bucket_end(store, definition, keys: IndexKeys, plan: Plan, node, bucket: int, backwards):
    """``(first passing value, entries read, rpcs)`` of one bucket from its wanted end."""
    index_table = store.table(node.index.hbase_table)
    primary = store.table(definition.hbase_table)
    salt = bytes([bucket])
    column = node.index.columns[0]
    entries = rpcs = 0
    ranges = [r for r in node.ranges if bucket in r.buckets]
    for rng in reversed(ranges) if backwards else ranges:
        low = salt + rng.start
        high = salt + rng.stop if rng.stop is not None else _next_salt(bucket)
        # One entry first (it usually passes), then on in batches from just past it.
        for size, limit in ((1, 1), (END_BATCH, None)):
            read = index_table.scan_reverse if backwards else index_table.scan
            scan = read(low, high, batch_size=size, limit=limit)
            try:
                for batch in _batches(scan, size):
                    rpcs += 1
                    entries += len(batch)
                    rows, fetches = _passing_rows(definition, keys, node, primary, batch, plan)
                    rpcs += fetches
                    for row in rows:
                        return row.get(column), entries, rpcs
                    if backwards:
                        high = batch[-1][0]  # exclusive: continue below the last entry read
                    else:
                        low = batch[-1][0] + b"\x00"
            finally:
                close = getattr(scan, "close", None)
                if close is not None:
                    close()  # release the server-side scanner now, not at its lease's end
    return None, entries, rpcs


def _passing_rows(definition, keys, node, primary, batch, plan) -> tuple[list, int]:
    """The rows of ``batch``'s entries that pass, in entry order; and the fetches made."""
    decoded = []
    untrusted = []
    for key, cells in batch:
        values, pk = keys.decode(key)
        # The covered-read rule of the executor: trust a verified entry (never on an
        # adopted table, whose rows change behind the index; such plans are not covered).
        trusted = node.covered and cells.get(STATE_COLUMN) == VERIFIED
        decoded.append((key, cells, values, pk, trusted))
        if not trusted:
            untrusted.append(pk)
    fetched = primary.get_many(untrusted) if untrusted else {}
    out = []
    for key, cells, values, pk, trusted in decoded:
        if trusted:
            row = covered_row(definition, node.index, values, pk, cells)
        else:
            row = decode_row(definition, fetched.get(pk, {}), pk=pk)
            if key not in entries_of(definition, node.index, row, pk, keys):
                continue
        if matches(plan.predicate, row):
            out.append(row)
    return out, int(bool(untrusted))


def _batches(scan: Iterator, size: int) -> Iterator[list]:
    batch: list = []
    for item in scan:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _next_salt(bucket: int) -> bytes | None:
    return bytes([bucket + 1]) if bucket < 255 else None


__all__ = ["END_BATCH", "extreme_scan", "extreme_value"]
