"""Runs a plan: parallel salted scans, merge/intersect/union, batched fetch, check, limit.

Every index access runs one scan per salt bucket, each fetching its next batch in the
background on the client's thread pool, and a heap merge streams the buckets in key order.
Candidate primary keys are fetched in batches (several batches in flight), and every row is
checked against the whole predicate *and* against the entry it came from (the row's current
values must produce exactly that entry key): this one check is the residual filter, drops
stale entries left by crashed or racing writers, and makes each row appear once per access.
Covered plans trust verified entries and fetch only unverified ones (not on a table with a
lifespan: there every row is read, and a row expired at the moment the query started is
dropped with all its entries, see :mod:`culvert_py.expiry`).

Memory stays bounded by batch sizes: nothing materialises an index scan, except the probe
side of an intersection (the smaller one by estimate) and a client-side sort.

A plan with a ``limit`` (and no client-side sort) first reads only as much as it asks for:
each scan's first batch and the first primary fetch hold ``limit`` entries, and only when
those leave rows missing (stale entries, a residual predicate) do the full-size, prefetching
batches start, after the last key read. Positions, cursors and order are the same either way.

Positions and cursors: :mod:`culvert_py.query.cursor`.

Analyze counters (``rpcs``) are bumped from pool threads, so they go through one lock per
executor; ``entries_read`` and ``actual_rows`` are counted on the consuming thread.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future

import culvert_py.frames as frames
from culvert_py.clock import Clock, now_ms
from culvert_py.expiry import alive
from culvert_py.layout import (
    STATE_COLUMN,
    VERIFIED,
    IndexKeys,
    covered_row,
    decode_row,
    entries_of,
    primary_key,
    stored_columns,
    version_column,
)
from culvert_py.predicate import columns_of, matches, sort_key
from culvert_py.query.cursor import decode_cursor, encode_cursor
from culvert_py.query.plan import (
    Empty,
    FullScan,
    IndexScan,
    Intersect,
    Node,
    Plan,
    Union,
    source_nodes,
)
from culvert_py.schema import TableDef
from culvert_py.store import Store

#: Rows per scanner batch and per primary fetch.
SCAN_BATCH = 1000
FETCH_BATCH = 256
#: Primary fetches in flight at once.
FETCH_AHEAD = 4


class QueryResult:
    """A lazy iterator of row dicts, with the cursor of the next page.

    :ivar plan: the executed :class:`~culvert_py.query.planner.Plan` (with actual counts
        once iterated)
    """

    def __init__(self, plan: Plan, rows: Iterator[tuple[object, dict]]) -> None:
        self.plan = plan
        self._rows = rows
        self._last_position: object = None
        self._returned = 0
        self._exhausted = False
        self._started = time.perf_counter()

    def __iter__(self) -> QueryResult:
        return self

    def __next__(self) -> dict:
        limit = self.plan.limit
        if limit is not None and self._returned >= limit:
            self._finish(exhausted=False)
            raise StopIteration
        try:
            position, row = next(self._rows)
        except StopIteration:
            self._finish(exhausted=True)
            raise
        self._last_position = position
        self._returned += 1
        self.plan.actual_rows = self._returned
        columns = self.plan.columns
        return row if columns is None else {c: row[c] for c in columns if c in row}

    def _finish(self, exhausted: bool) -> None:
        if exhausted:
            self._exhausted = True
        self.plan.seconds = time.perf_counter() - self._started
        self.plan.rpcs = sum(node.rpcs for node in source_nodes(self.plan.source))

    @property
    def cursor(self) -> str | None:
        """Opaque token resuming after the last row returned; ``None`` when nothing is left."""
        if self._exhausted or self._last_position is None:
            return None
        return encode_cursor(self.plan, self._last_position)

    # Arrow and pandas: the optional extra ``dataframe``, typed by culvert_py.frames.

    def iter_batches(self, batch_size: int = frames.DEFAULT_BATCH_ROWS) -> Iterator:
        """The rows not yet returned, as ``pyarrow.RecordBatch`` es of ``batch_size`` rows,
        typed from the schema (see :mod:`culvert_py.frames`); lazy like the rows.

        :param batch_size: rows per batch
        :raises ArgumentError: for a ``batch_size`` below 1
        :raises MissingDependencyError: without pyarrow (``pip install culvert_py[dataframe]``)
        """
        schema = frames.arrow_schema(self.plan.table, self.plan.columns)
        return frames.iter_batches(self, schema, batch_size)

    def to_arrow(self, batch_size: int = frames.DEFAULT_BATCH_ROWS):
        """The rows not yet returned as one ``pyarrow.Table``, built batch by batch.

        :param batch_size: rows per record batch (the table's chunks)
        :raises MissingDependencyError: without pyarrow
        """
        schema = frames.arrow_schema(self.plan.table, self.plan.columns)
        return frames.to_arrow(frames.iter_batches(self, schema, batch_size), schema)

    def to_pandas(self, batch_size: int = frames.DEFAULT_BATCH_ROWS):
        """The rows not yet returned as a ``pandas.DataFrame`` with nullable dtypes
        (``Int64``, ``Float64``, ``boolean``, ``datetime64[us, UTC]``; see
        :mod:`culvert_py.frames`).

        :param batch_size: rows per record batch while converting
        :raises MissingDependencyError: without pyarrow and pandas
        """
        return frames.to_pandas(self.to_arrow(batch_size))


class QueryExecutor:
    """Executes plans over one table's primary and index tables.

    :param store: the store holding the table and its indexes
    :param definition: the table definition
    :param pool: the thread pool that scans and fetches run on
    :param clock: the moment age-off is judged at is read from it when a run starts;
        ``None`` returns expired rows too (what an age-off job looks for)
    """

    def __init__(
        self, store: Store, definition: TableDef, pool: Executor, clock: Clock | None = now_ms
    ) -> None:
        self.definition = definition
        self._clock = clock
        self._now: int | None = None
        self.store = store
        self.pool = pool
        self._rpc_lock = threading.Lock()

    def _count_rpc(self, node: Node) -> None:
        """One more RPC of ``node``; safe from any thread of the pool."""
        with self._rpc_lock:
            node.rpcs += 1

    def run(self, plan: Plan, cursor: str | None = None) -> QueryResult:
        """Start executing ``plan`` (lazily) and return the result iterator."""
        position = decode_cursor(plan, cursor)
        if self._clock is not None and self.definition.lifespan is not None:
            self._now = self._clock()
        if plan.sort is not None:
            rows = self._sorted(plan, position)
        else:
            wanted = None if plan.limit is None else max(1, min(plan.limit, FETCH_BATCH))
            rows = self._source_rows(plan, plan.source, plan.predicate, position, wanted=wanted)
        return QueryResult(plan, rows)

    # -- sources -------------------------------------------------------------------------

    def _source_rows(
        self, plan: Plan, source, predicate, position, whole=False, wanted: int | None = None
    ) -> Iterator[tuple]:
        """``(position, row)`` of ``source``; ``whole``: full rows even from covered entries;
        ``wanted``: how many rows the consumer will likely take (``None``: all of them)."""
        match source:
            case Empty():
                return iter(())
            case FullScan():
                return self._timed(source, self._full_scan(source, predicate, position, wanted))
            case IndexScan():
                rows = self._index_rows(source, None, predicate, position, whole, wanted)
                return self._timed(source, rows)
            case Intersect():
                rows = self._intersect(source, predicate, position, whole, wanted)
                return self._timed(source, rows)
            case Union():
                return self._timed(source, self._union(plan, source, position, wanted))
        raise AssertionError(source)

    def _timed(self, node: Node, rows: Iterator) -> Iterator:
        while True:
            t0 = time.perf_counter()
            try:
                item = next(rows)
            except StopIteration:
                node.seconds += time.perf_counter() - t0
                return
            node.seconds += time.perf_counter() - t0
            node.actual_rows += 1
            yield item

    def _full_scan(self, node: FullScan, predicate, position, wanted) -> Iterator[tuple]:
        start = bytes.fromhex(position[1]) + b"\x00" if position else b""
        primary = self.store.table(self.definition.hbase_table)
        regions = [
            r for r in self.store.regions(self.definition.hbase_table) if not r.end or r.end > start
        ]
        count = functools.partial(self._count_rpc, node)
        now = self._now
        scans = [
            _PrefetchScan(
                primary, max(r.start, start), r.end or None, node.filter, self.pool, count, wanted
            )
            for r in regions
        ]
        for scan in scans:  # region order is key order
            for pk, cells in scan:
                row = alive(self.definition, decode_row(self.definition, cells, pk=pk), cells, now)
                if row is not None and matches(predicate, row):
                    yield ["f", pk.hex()], row

    def _index_entries(
        self, node: IndexScan, position, wanted: int | None = None
    ) -> Iterator[tuple[int, bytes, dict]]:
        """``(range number, key, cells)`` of every entry in the ranges, in key order;
        ``wanted``: the size of each scan's first batch (see the module docstring)."""
        table = self.store.table(node.index.hbase_table)
        first_range, after = 0, b""
        if position:
            first_range, after = position[0], bytes.fromhex(position[1]) + b"\x00"
        count = functools.partial(self._count_rpc, node)
        for number, rng in enumerate(node.ranges):
            if number < first_range:
                continue
            lower = max(rng.start, after) if number == first_range else rng.start
            if rng.stop is not None and lower >= rng.stop:
                continue
            streams = []
            for bucket in rng.buckets:
                salt = bytes([bucket])
                stop = salt + rng.stop if rng.stop is not None else _next_salt(bucket)
                scan = _PrefetchScan(table, salt + lower, stop, None, self.pool, count, wanted)
                streams.append(scan)
            for key, cells in heapq.merge(*streams, key=lambda item: item[0][1:]):
                node.entries_read += 1
                yield number, key, cells

    def _index_rows(
        self, node: IndexScan, keep, predicate, position, whole, wanted=None
    ) -> Iterator[tuple]:
        """Rows through ``node``: checked against their entry and the predicate."""
        keys = IndexKeys(self.definition, node.index)
        entries = self._index_entries(node, position, wanted)
        if wanted is not None:
            # One fetch of as many entries as rows are wanted before anything runs ahead:
            # a LIMIT query that gets its rows from them reads nothing more.
            first = list(itertools.islice(entries, wanted))
            yield from self._checked(self._resolve(node, keys, first, keep, whole), predicate)
            if len(first) < wanted:
                return
        pending: deque = deque()
        for chunk in _chunks(entries, FETCH_BATCH):
            pending.append(self.pool.submit(self._resolve, node, keys, chunk, keep, whole))
            if len(pending) >= FETCH_AHEAD:
                yield from self._checked(pending.popleft(), predicate)
        while pending:
            yield from self._checked(pending.popleft(), predicate)

    def _checked(self, found: Future | list, predicate) -> Iterator[tuple]:
        for position, row in found.result() if isinstance(found, Future) else found:
            if matches(predicate, row):
                yield position, row

    def _resolve(self, node: IndexScan, keys: IndexKeys, chunk, keep, whole) -> list[tuple]:
        """Turn a chunk of entries into ``(position, row)`` of live entries, in order."""
        decoded = []
        to_fetch = []
        for number, key, cells in chunk:
            values, pk = keys.decode(key)
            if keep is not None and pk not in keep:
                continue
            # On an adopted table other applications change rows behind the index: no entry
            # is trusted, every one is checked against its row as it is now.
            trusted = (
                node.covered
                and not whole
                and not self.definition.existing
                and self.definition.lifespan is None
                and cells.get(STATE_COLUMN) == VERIFIED
            )
            decoded.append((number, key, cells, values, pk, trusted))
            if not trusted:
                to_fetch.append(pk)
        fetched = self._fetch_rows(node, to_fetch) if to_fetch else {}
        out = []
        for number, key, cells, values, pk, trusted in decoded:
            if trusted:
                row = covered_row(self.definition, node.index, values, pk, cells)
            else:
                got = fetched.get(pk, {})
                row = decode_row(self.definition, got, pk=pk)
                row = alive(self.definition, row, got, self._now)
                # The consistency check: the row as it is now must own exactly this entry.
                if key not in entries_of(self.definition, node.index, row, pk, keys):
                    continue
            out.append(([number, key[1:].hex()], row))
        return out

    def _fetch_rows(self, node: IndexScan, pks: list[bytes]) -> dict[bytes, dict]:
        """The cells of the rows ``pks`` (absent rows left out), for the consistency check.

        An adopted row's version cell carries its shadow, about the row's size again, and the
        check needs none of it: only the declared cells are read. A row that comes back
        without any was deleted, or holds NULL in every column: its version cell (read for
        those rows alone) tells which.
        """
        table = self.store.table(self.definition.hbase_table)
        self._count_rpc(node)
        if not self.definition.existing:
            return table.get_many(pks)
        definition = self.definition
        fetched = table.get_many(pks, columns=stored_columns(definition, definition.cells))
        missing = [pk for pk in pks if pk not in fetched]
        if missing:
            self._count_rpc(node)
            fetched.update(table.get_many(missing, columns=[version_column(definition)]))
        return fetched

    def _intersect(self, node: Intersect, predicate, position, whole, wanted) -> Iterator[tuple]:
        keep: set[bytes] | None = None
        for probe in node.probes:
            keys = IndexKeys(self.definition, probe.index)
            found = set()
            for _, key, _ in self._index_entries(probe, None):
                found.add(keys.decode(key)[1])
            keep = found if keep is None else keep & found
        rows = self._index_rows(node.driver, keep or set(), predicate, position, whole, wanted)
        yield from self._timed(node.driver, rows)

    def _union(self, plan: Plan, node: Union, position, wanted) -> Iterator[tuple]:
        first, inner = (position[0], position[1]) if position else (0, None)
        for number, branch in enumerate(node.branches):
            if number < first:
                continue
            earlier = [b.predicate for b in node.branches[:number]]
            # A covered row lacking a column an earlier predicate reads would fail that test
            # for want of a value and come twice: such a branch fetches whole rows.
            needs = set().union(*(columns_of(p) for p in earlier))
            whole = not needs <= _columns_held(self.definition, branch.source)
            start = inner if number == first else None
            rows = self._source_rows(plan, branch.source, branch.predicate, start, whole, wanted)
            for pos, row in rows:
                # Expansion without a seen-set: a row an earlier branch matches was (or will
                # be) returned by that branch.
                if not any(matches(p, row) for p in earlier):
                    yield [number, pos], row

    def _sorted(self, plan: Plan, position) -> Iterator[tuple]:
        """Rows in the query order: the column's value (NULL smallest), then primary key."""
        column, desc = plan.sort  # type: ignore[misc]
        rows = [row for _, row in self._source_rows(plan, plan.source, plan.predicate, None)]
        rows.sort(key=lambda r: primary_key(self.definition, r))
        # A stable sort (reverse=True keeps ties in their order too) leaves equal values in
        # primary-key order, as an index that yields the order returns them.
        rows.sort(key=lambda r: _value_order(r.get(column)), reverse=desc)
        skip = position[1] if position else 0
        for offset, row in enumerate(rows):
            if offset >= skip:
                yield ["s", offset + 1], row


def _columns_held(definition, source) -> set[str]:
    """The columns the rows of ``source`` hold (when not NULL): a covered index's rows hold
    only what its entries store."""
    match source:
        case IndexScan(covered=True, index=index):
            return set(definition.row_key) | set(index.columns) | set(index.include)
        case Intersect(driver=driver):
            return _columns_held(definition, driver)
    return set(definition.columns)


def _value_order(value: object) -> tuple:
    """Sort key of a column value with NULL below every value."""
    return (0,) if value is None else (1, sort_key(value))  # type: ignore[arg-type]


class _PrefetchScan:
    """One store scan whose next batch is always being fetched in the background.

    The batches run on the shared pool as short tasks that never wait on the consumer, so
    many concurrent scans cannot starve the pool. ``count()`` is called once per RPC, from
    whichever thread makes it.

    With ``first``, the first batch is a scan of at most ``first`` rows and nothing runs
    ahead of it; only a consumer that wants more opens the full-size scan, just after the
    last key it read.
    """

    def __init__(
        self,
        table,
        start: bytes,
        stop: bytes | None,
        flt,
        pool: Executor,
        count: Callable[[], None],
        first: int | None = None,
    ):
        self._table, self._stop, self._filter = table, stop, flt
        self._pool = pool
        self._count = count
        self._buffer: deque = deque()
        self._size = SCAN_BATCH if first is None else first
        self._it = self._open(start, self._size, first)
        self._ahead = first is None  # whether the next batch is fetched before it is asked for
        self._more = False  # a short first batch was full: the rest is still to be scanned
        self._future: Future | None = pool.submit(self._fetch)

    def _open(self, start: bytes, size: int, limit: int | None = None) -> Iterator:
        self._count()  # opening the scanner
        return iter(
            self._table.scan(
                start=start, stop=self._stop, filter=self._filter, batch_size=size, limit=limit
            )
        )

    def _fetch(self) -> list:
        batch = list(itertools.islice(self._it, self._size))
        self._count()
        return batch

    def __iter__(self) -> _PrefetchScan:
        return self

    def __next__(self) -> tuple[bytes, dict]:
        while not self._buffer:
            if self._more:  # past the short first batch: the full-size scan, prefetching
                self._more, self._ahead, self._size = False, True, SCAN_BATCH
                self._future = self._pool.submit(self._fetch)
            if self._future is None:
                raise StopIteration
            batch = self._future.result()
            full = len(batch) == self._size
            if not self._ahead:
                self._future = None
                if full:
                    self._more = True
                    self._it = self._open(batch[-1][0] + b"\x00", SCAN_BATCH)
            else:
                self._future = self._pool.submit(self._fetch) if full else None
            self._buffer.extend(batch)
        return self._buffer.popleft()


def _next_salt(bucket: int) -> bytes | None:
    return bytes([bucket + 1]) if bucket < 255 else None


def _chunks(items, size: int):
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
