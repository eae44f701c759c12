"""Removing the rows past a table's lifespan, through the write protocol.

Queries already hide expired rows (:mod:`culvert_py.expiry`); an age-off job reclaims their
space, the rows and every index entry they own. It runs in two parts:

1. **Find** the rows expired at one moment ``now`` (the client's clock, read once):

   - an ``age_off`` column with an ACTIVE, full (not partial) range index leading with it:
     one range scan of the index for ``column < cutoff``, the expired part only, each
     entry checked against its row as every query does (salt buckets in parallel);
   - otherwise (a ``ttl``, whose time of last write no index holds, or no such index): a
     scan of the primary table reading only the version cell and the age-off column,
     one scan per region in parallel.

2. **Delete** them as :class:`~culvert_py.expiry.AgeOff` changes, batched and pipelined
   like any write (conditional row writes in parallel over the pool). The writer judges
   expiry again at its own write timestamp on the row it has just read, and its version
   check makes that row the one it deletes: a row rewritten since step 1 found it (an
   update that moved its ``ttl`` or its age-off value) is left alone and counted as
   ``skipped``.

A job that stops halfway is resumed by running it again: what it deleted is gone (from
the index too, so an index-driven rerun does not even read it), the rest is found again,
and a crash inside a batch leaves only what the write protocol already makes harmless.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from culvert_py.arguments import check_count, check_flag
from culvert_py.errors import SchemaError
from culvert_py.expiry import AgeOff, column_value, expiry_cells, is_expired
from culvert_py.layout import decode_row, primary_key, version_column
from culvert_py.lifespan import format_duration
from culvert_py.meta import ACTIVE
from culvert_py.predicate import col
from culvert_py.query.executor import QueryExecutor
from culvert_py.query.explain import explain_lines
from culvert_py.schema import IndexDef, TableDef

_DELETE_STEP = (
    "delete: batches of conditional deletes through the write protocol (expiry judged again "
    "on each row as read; a row rewritten since is kept)"
)
#: Rows per delete batch (one store call per protocol step per batch).
BATCH_SIZE = 1000


@dataclass
class AgeOffReport:
    """What an age-off run found and did.

    :ivar table: the table
    :ivar plan: how expired rows were found, one line per step (the index scan's explain)
    :ivar dry_run: nothing was deleted
    :ivar now: the moment (ms since the epoch) expiry was judged at
    :ivar examined: rows (or entries' rows) read to find them
    :ivar expired: rows found expired
    :ivar deleted: rows deleted
    :ivar skipped: rows found expired that were live again (rewritten) when deleted, or gone
    :ivar seconds: wall time
    :ivar index: the index whose expired part was scanned (``None``: a table scan)
    """

    table: str
    plan: list[str]
    dry_run: bool
    now: int
    examined: int = 0
    expired: int = 0
    deleted: int = 0
    skipped: int = 0
    seconds: float = 0.0
    index: str | None = None

    @property
    def rows_per_second(self) -> float:
        """Rows deleted (found, on a dry run) per second."""
        done = self.expired if self.dry_run else self.deleted
        return done / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        if self.dry_run:
            return (
                f"{self.table}: age-off dry run: {self.expired:,} expired row(s) of "
                f"{self.examined:,} examined in {self.seconds:.1f} s; nothing deleted"
            )
        return (
            f"{self.table}: age-off: {self.deleted:,} row(s) deleted of {self.expired:,} found "
            f"expired ({self.examined:,} examined; {self.skipped:,} rewritten meanwhile, kept) "
            f"in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s)"
        )


def age_off(
    table: Any, dry_run: bool = False, workers: int = 8, batch_size: int = BATCH_SIZE
) -> AgeOffReport:
    """Delete the rows of ``table`` that are past its ``ttl`` or ``age_off`` now.

    Safe next to live writers: a row rewritten after it was found expired survives.

    :param table: an :class:`~culvert_py.table.IndexedTable`
    :param dry_run: only find them, and say how (``report.plan``)
    :param workers: parallel region scans when no index can find them
    :param batch_size: rows per delete batch
    :return: an :class:`AgeOffReport`
    :raises ArgumentError: for a malformed ``dry_run``, ``workers`` or ``batch_size``
    :raises SchemaError: when the table declares neither ``ttl`` nor ``age_off``
    """
    check_flag(table.name, "dry_run", dry_run)
    check_count(table.name, "workers", workers, 1)
    check_count(table.name, "batch_size", batch_size, 1)
    table.refresh()
    definition: TableDef = table.definition
    lifespan = definition.lifespan
    if lifespan is None:
        raise SchemaError(
            f"{table.name}: no ttl or age_off in its schema; nothing ever expires (add "
            'ttl = "90d" or age_off = { column = ..., after = ... } and apply it)'
        )
    started = time.perf_counter()
    now = table.client.clock()
    index = _age_off_index(definition, table.states)
    report = AgeOffReport(table.name, [], dry_run, now, index=index.name if index else None)
    if index is not None:
        found = _from_index(table, index, now, report)
    else:
        found = _from_scan(table, now, workers, batch_size, report)
    change = AgeOff()
    batches = _batches(found, batch_size, report, change)
    try:
        if dry_run:
            for _ in batches:
                pass
        else:
            table.write_batches(batches)
    finally:
        found.close()  # a failed write must not leave region scans running behind us
    report.deleted, report.skipped = change.deleted, change.skipped
    report.seconds = time.perf_counter() - started
    return report


def _age_off_index(definition: TableDef, states: dict[str, str]) -> IndexDef | None:
    """An ACTIVE full range index leading with the age-off column, when there is one and no
    ttl (which only a scan can judge) is declared."""
    lifespan = definition.lifespan
    if lifespan is None or lifespan.column is None or lifespan.ttl_ms is not None:
        return None
    for index in definition.indexes.values():
        if (
            index.kind == "range"
            and index.columns[0] == lifespan.column
            and index.where is None  # a partial index does not hold every row
            and states.get(index.name, ACTIVE) == ACTIVE
        ):
            return index
    return None


def _from_index(table: Any, index: IndexDef, now: int, report: AgeOffReport) -> Iterator[bytes]:
    """Primary keys of the expired rows, from a range scan of ``index``'s expired part."""
    definition: TableDef = table.definition
    lifespan = definition.lifespan
    assert lifespan is not None and lifespan.column is not None
    cutoff = column_value(
        now - lifespan.after_ms + 1, lifespan, definition.columns[lifespan.column]
    )
    where = col(lifespan.column) < cutoff
    plan = table.plan(where, use_index=index.name)
    report.plan = [
        f"find: range scan of index {index.path} for {where}, the expired part only "
        f"(a row expires when {lifespan.column} + {format_duration(lifespan.after_ms)} <= now)",
        *explain_lines(plan),
        _DELETE_STEP,
    ]
    # clock=None: this query must see the expired rows every other query hides.
    executor = QueryExecutor(table.store, definition, table.client.executor, clock=None)
    for row in executor.run(plan):
        report.examined += 1
        if is_expired(lifespan, None, row, now):
            yield primary_key(definition, row)


def _from_scan(
    table: Any, now: int, workers: int, batch_size: int, report: AgeOffReport
) -> Iterator[bytes]:
    """Primary keys of the expired rows, from parallel region scans of their expiry cells."""
    definition: TableDef = table.definition
    lifespan = definition.lifespan
    assert lifespan is not None
    why = "ttl: no index holds the time of a row's last write"
    if lifespan.ttl_ms is None:
        why = f"no ACTIVE full range index leads with {lifespan.column}"
    regions = table.store.regions(definition.hbase_table)
    report.plan = [
        f"find: full scan of {definition.hbase_table} reading only "
        f"{', '.join(c.decode() for c in expiry_cells(definition))} ({why}); "
        f"{len(regions)} region(s), {min(workers, len(regions))} in parallel",
        _DELETE_STEP,
    ]
    primary = table.store.table(definition.hbase_table)
    columns = expiry_cells(definition)
    vcol = version_column(definition)
    results: queue.Queue = queue.Queue(maxsize=4 * workers)
    stop = threading.Event()
    lock = threading.Lock()

    def scan(start: bytes, end: bytes) -> None:
        try:
            expired, seen = [], 0
            for pk, cells in primary.scan(start, end or None, columns=columns, batch_size=1000):
                if stop.is_set():
                    return
                seen += 1
                row = decode_row(definition, cells, pk=pk)
                if row is not None and is_expired(lifespan, cells.get(vcol), row, now):
                    expired.append(pk)
                if len(expired) >= batch_size:
                    results.put(expired)
                    expired = []
            results.put(expired)
            with lock:
                report.examined += seen
        except BaseException as exc:  # handed to the consumer, which raises it
            results.put(exc)
        finally:
            results.put(None)

    pool = ThreadPoolExecutor(max_workers=min(workers, len(regions)) or 1)
    futures = [pool.submit(scan, region.start, region.end) for region in regions]
    try:
        running = len(regions)
        while running:
            item = results.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield from item
    finally:
        stop.set()
        # A consumer that stopped early leaves scanners blocked on a full queue: drain it
        # until they have all returned, so nothing runs on behind the caller.
        while not all(f.done() for f in futures):
            with contextlib.suppress(queue.Empty):
                results.get(timeout=0.05)
        pool.shutdown(wait=True)


def _batches(
    found: Iterator[bytes], batch_size: int, report: AgeOffReport, change: AgeOff
) -> Iterator[dict[bytes, AgeOff]]:
    """``{pk: change}`` batches of ``found``, counting them as expired."""
    batch: dict[bytes, AgeOff] = {}
    for pk in found:
        report.expired += 1
        batch[pk] = change
        if len(batch) >= batch_size:
            yield batch
            batch = {}
    if batch:
        yield batch
