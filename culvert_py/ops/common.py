"""What every index operation shares: the index handle, its state, a task runner, checks."""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from typing import TYPE_CHECKING

from culvert_py.errors import ArgumentError, CulvertError, EncodingError, SchemaError
from culvert_py.layout import (
    STATE_COLUMN,
    IndexKeys,
    decode_primary_key,
    decode_row,
    entries_of,
    version_column,
)
from culvert_py.meta import ACTIVE, Meta
from culvert_py.ops.ranges import split_key_ranges
from culvert_py.schema import IndexDef, TableDef
from culvert_py.stats import load_stats
from culvert_py.store.base import CAP_CHECK_AND_MUTATE, RowMutation, Table
from culvert_py.write import IndexWriter

if TYPE_CHECKING:
    from culvert_py.client import Client

log = logging.getLogger(__name__)

#: ``progress(done, total or None)``, called on the caller's thread after each batch.
Progress = Callable[[int, "int | None"], None]
#: A unit of work of :func:`_run_tasks`: ``task(stop event, report(n))``.
Task = Callable[[threading.Event, Callable[[int], None]], None]

#: Key ranges per worker a scan aims at, so that uneven ranges still keep workers busy.
RANGES_PER_WORKER = 4
#: Most processes one build may be split over (``shard=(i, n)`` takes ``n`` up to this).
MAX_SHARDS = 4096


class BadCells:
    """Cells of an adopted table that did not decode under their codec: counts per column
    and a bounded sample, shared by the threads of one operation.

    :param sample_size: how many ``(row, column, raw, reason)`` samples to keep
    """

    def __init__(self, sample_size: int = 1000) -> None:
        self.counts: dict[str, int] = {}
        self.sample: list[dict] = []
        self._size = sample_size
        self._lock = threading.Lock()

    def add(self, pk: bytes, bad: list[tuple[str, bytes, str]]) -> None:
        """Count the undecodable cells ``bad`` of the row ``pk``."""
        with self._lock:
            for column, raw, reason in bad:
                self.counts[column] = self.counts.get(column, 0) + 1
                if len(self.sample) < self._size:
                    self.sample.append(
                        {"row": pk.hex(), "column": column, "raw": raw.hex(), "reason": reason}
                    )

    def write(self, path: str) -> None:
        """Write the sample as JSON Lines to ``path`` (nothing when there is nothing)."""
        if not self.sample:
            return
        with open(path, "w", encoding="utf-8") as out:
            for item in self.sample:
                out.write(json.dumps(item) + "\n")


class IndexTarget:
    """One index with everything the operations need: definitions, tables, entry function."""

    def __init__(self, client: Client, table: str, index: str, executor: Executor) -> None:
        self.meta: Meta = client.meta
        self.definition = client.schema().table(table)
        self.index = _index_def(self.definition, index)
        self.path = self.index.path
        self.name = _plan_name(table, index)
        self.keys = IndexKeys(self.definition, self.index)
        store = client.store
        self.store = store
        self.conditional = CAP_CHECK_AND_MUTATE in store.capabilities
        # The write protocol for this one index (repair runs it for single rows).
        self.writer = IndexWriter(store, self.definition, [self.index], executor, self.conditional)
        self.read_columns: list[bytes] = list(self.writer.read_columns)
        self._read_set = set(self.read_columns)
        self.vcol = version_column(self.definition)
        self.primary: Table = store.table(self.definition.hbase_table)
        self.entries_table: Table = store.table(self.index.hbase_table)
        self.bad_cells = BadCells()

    def entries(self, row: dict | None, pk: bytes) -> dict[bytes, dict]:
        """``{entry key: {covered column: value or None}}`` of ``row``: exactly what the
        writers write (the one :func:`~culvert_py.layout.entries_of`)."""
        return entries_of(self.definition, self.index, row, pk, self.keys)

    def row_state(self, pk: bytes, cells: dict) -> tuple[dict | None, int | None, bytes | None]:
        """``(row or None, version timestamp or None, version cell value)`` of read cells.

        The version timestamp is the ``_v`` cell's; without one, the newest timestamp among
        the columns a writer reads (its next write goes above exactly those).

        A cell of an adopted table that does not decode under its codec reads as NULL and
        is counted in :attr:`bad_cells` (with a sample for the rejects file).

        :raises EncodingError: for cells of a native table that do not decode, naming the row
        """
        bad: list | None = [] if self.definition.existing else None
        try:
            row = decode_row(self.definition, cells, bad=bad, pk=pk)
        except EncodingError as exc:
            raise EncodingError(f"{self.definition.name}: row {pk!r}: {exc}") from exc
        if bad:
            self.bad_cells.add(pk, bad)
        version = cells.get(self.vcol)
        if version is not None:
            return row, version[1], version[0]
        stamps = [ts for col, (_, ts) in cells.items() if col in self._read_set]
        return row, (max(stamps) if stamps else None), None

    def describe(self, key: bytes) -> str:
        """An entry key as readable text: ``('Oslo',) -> id='u1'``."""
        try:
            values, pk = self.keys.decode(key)
            parts = decode_primary_key(self.definition, pk)
        except CulvertError:
            return f"undecodable key {key.hex()}"
        return f"{tuple(values)!r} -> " + ", ".join(f"{k}={v!r}" for k, v in parts.items())

    def key_ranges(self, wanted: int, sample: int) -> list[tuple[bytes, bytes]]:
        """The primary table's key ranges for ``wanted`` parallel scans (see
        :func:`~culvert_py.ops.ranges.split_key_ranges`)."""
        regions = self.store.regions(self.definition.hbase_table)
        # Rows of an adopted table need not carry a version cell: probe whole rows there.
        probe = None if self.definition.existing else self.vcol
        return split_key_ranges(regions, self.primary, probe, wanted, sample)

    def estimates(self) -> tuple[int | None, int | None]:
        """``(primary rows, index entries)`` from stored statistics, when there are any."""
        stats = load_stats(self.meta, self.definition.name)
        if stats is None:
            return None, None
        entries = stats.indexes.get(self.index.name)
        return stats.rows, (entries.entries if entries is not None else None)


def _entry_mutation(key: bytes, covered: dict, state: bytes) -> RowMutation:
    """The put of one entry in ``state`` with its covered values (``None``: delete it)."""
    puts = {STATE_COLUMN: state, **{c: v for c, v in covered.items() if v is not None}}
    return RowMutation(key, puts, [c for c, v in covered.items() if v is None])


def _run_tasks(
    pool: Executor,
    tasks: list[Task],
    progress: Progress | None,
    done: int,
    total: int | None,
) -> None:
    """Run tasks on ``pool``; call ``progress`` on this thread as they report batches.

    A task gets a stop event (checked between batches) and a ``report(n)`` callback. The
    first failure, of a task or of ``progress``, stops the others after their current batch
    and is raised once every task has returned, so nothing runs on after this returns.

    :param done: the count ``progress`` starts from (work done by earlier runs)
    :param total: passed to ``progress`` as is
    :raises BaseException: the first failure, of a task or of ``progress``
    """
    events: queue.Queue = queue.Queue()
    stop = threading.Event()

    def run(task: Task) -> None:
        try:
            if not stop.is_set():
                task(stop, events.put)
        except BaseException:
            stop.set()
            raise
        finally:
            events.put(None)

    futures: list[Future] = [pool.submit(run, t) for t in tasks]
    running = len(futures)
    try:
        while running:
            item = events.get()
            if item is None:
                running -= 1
            elif progress is not None:
                done += item
                progress(done, total)
    except BaseException:
        stop.set()
        raise
    finally:
        wait(futures)
    for future in futures:
        future.result()


def index_state(meta: Meta, table: str, index: str) -> tuple[str, int]:
    """``(state, since ms)``; an index without a state row is ACTIVE, as clients read it."""
    found = meta.state_since(table, index)
    return found if found is not None else (ACTIVE, 0)


def _wait_grace(path: str, since_ms: int, grace_seconds: float) -> None:
    """Sleep until ``grace_seconds`` have passed since ``since_ms``."""
    delay = since_ms / 1000 + grace_seconds - time.time()
    if delay > 0:
        log.info("%s: waiting %.1f s for writer batches under the old schema", path, delay)
        time.sleep(delay)


def _index_def(definition: TableDef, index: str) -> IndexDef:
    """The definition of ``index`` of the table.

    :raises SchemaError: for an unknown index, naming the known ones
    """
    try:
        return definition.indexes[index]
    except KeyError as exc:
        known = ", ".join(definition.indexes) or "none"
        raise SchemaError(f"{definition.name}: unknown index {index!r} (known: {known})") from exc


def _plan_name(table: str, index: str) -> str:
    """The name of an index's build plan and the prefix of its checkpoints."""
    return f"{table}.{index}"


def check_job_arguments(
    table: object,
    index: object,
    *,
    workers: object = 1,
    shard: object = (0, 1),
    grace_seconds: object = 0.0,
    batch_size: object = 1,
    flags: dict[str, object] | None = None,
    progress: object = None,
) -> None:
    """Refuse a malformed argument of a public function before anything is read or written.

    :raises ArgumentError: naming the argument, its value and the expected form
    """
    for what, value in (("table", table), ("index", index)):
        if not isinstance(value, str) or not value:
            raise ArgumentError(f"{what}={value!r:.60}: expected a {what} name")
    path = f"{table}.{index}"
    for what, value in (("workers", workers), ("batch_size", batch_size)):
        if not _is_int(value) or value < 1:  # type: ignore[operator]
            raise ArgumentError(f"{path}: {what}={value!r:.60}: expected an integer >= 1")
    if not (
        isinstance(shard, tuple | list)
        and len(shard) == 2
        and all(_is_int(x) for x in shard)
        and 0 <= shard[0] < shard[1] <= MAX_SHARDS
    ):
        raise ArgumentError(
            f"{path}: shard={shard!r:.60}: expected (i, n) with 0 <= i < n <= {MAX_SHARDS}"
        )
    _check_seconds(table, index, "grace_seconds", grace_seconds)
    for what, value in (flags or {}).items():
        if not isinstance(value, bool):
            raise ArgumentError(f"{path}: {what}={value!r:.60}: expected True or False")
    if progress is not None and not callable(progress):
        raise ArgumentError(f"{path}: progress={progress!r:.60}: expected a callable or None")


def _check_seconds(table: object, index: object, what: str, value: object) -> None:
    """Refuse anything but a finite number of seconds >= 0 (booleans included).

    :raises ArgumentError: naming the argument and its value
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ArgumentError(
            f"{table}.{index}: {what}={value!r:.60}: expected a finite number of seconds >= 0"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
