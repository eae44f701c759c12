"""Collection of statistics by parallel scans of a table with every index of it.

What is collected, per index (see :class:`IndexStats`) and per table (:class:`TableStats`):

* ``entries``: every entry of the index table, counted exactly. Entries a crashed writer left
  unverified are counted too: they cost a scan like any other entry.
* ``prefix_ndv``: distinct values of the first ``k`` indexed columns, ``k = 1..n``, over the
  entries whose first value is not NULL (NULL has its own count, ``null_entries``). Estimated
  with a **KMV sketch** (the k = 1024 minimum 64-bit mmh3 hashes of the encoded prefix bytes):
  exact below 1024 distinct values, about 3 % standard error above.
* ``mcv``: the most common non-NULL first values with their counts, found with a
  **Misra-Gries** summary of 64 counters. A count is the occurrences seen while the value
  was tracked: a lower bound, at most ``entries / 65`` below the truth, and exact for a value
  tracked from its first occurrence on, which a heavy hitter nearly always is (and every
  value is when the column has at most 64 distinct values). A value is listed when it is
  more common than 1.25 times the average value (PostgreSQL's rule: a value no more common
  than average is estimated as well by the average), at most 16 of them; when the summary is
  exact and holds at most 16 values, all of them are listed, so every equality estimate is
  exact.
* ``histogram``: equi-depth bucket boundaries (32 buckets, 33 boundaries) over the encoded
  first values of the non-NULL entries **that are not MCVs**, as PostgreSQL does: the MCVs
  are accounted for exactly and the histogram describes the rest, so one hot value does not
  flatten the histogram around it. Built from a **bottom-k sample** of 4096 entries (the
  entries with the smallest mmh3 hash of their key: a uniform sample without replacement that
  is deterministic and merges across buckets by keeping the smallest hashes).
* ``rows`` of the primary table: live rows, tombstones (version cell flagged deleted)
  excluded, counted exactly by a scan of the version cells alone (so a row never written
  through culvert_py, which has no version cell, is not counted).

Every sketch is bounded whatever the table size and mergeable, so each salt bucket (and each
region of the primary table) is scanned by its own task, in parallel, and the per-bucket
summaries are merged as they finish. Within a bucket entries arrive sorted by value, so equal
first values come in runs and the heavy-hitter summary is fed one weighted update per run.

Estimates (:meth:`IndexStats.rows_equal`, :meth:`IndexStats.rows_between`) work on the
encoded bytes exactly as they appear in the entry keys, so they know nothing of types and
the planner needs no decoding: a descending column is just bytes in the other order. An
equality on a composite prefix divides the first value's entries by the fan-out expected for
that many entries (see :meth:`IndexStats.rows_equal`), not by the average fan-out, so a hot
first value is not mistaken for a selective one.
Statistics are stored as one JSON document per table in the meta table (``version: 1``); a
document that cannot be read back is treated as missing, with a warning, so a planner never
fails a query because of its statistics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from concurrent.futures import FIRST_EXCEPTION, Executor, wait

from culvert_py.clock import now_ms
from culvert_py.encoding import decode_value
from culvert_py.errors import CulvertError, EncodingError
from culvert_py.layout import (
    STATE_COLUMN,
    IndexKeys,
    data_column,
    is_deleted,
    version_column,
)
from culvert_py.meta import Meta
from culvert_py.schema import IndexDef, TableDef
from culvert_py.stats.model import IndexStats, TableStats
from culvert_py.stats.sketches import KMV, BottomSample, MisraGries, equi_depth, hash64
from culvert_py.store.base import Region, Store, Table

log = logging.getLogger(__name__)

#: Most common values kept per index, at most.
MCV_SIZE = 16
#: A value is an MCV when at least this many times more common than the average value.
MCV_MIN_RATIO = 1.25
#: Hashes kept per MCV by the sketches of its distinct prefixes (its fan-out).
FANOUT_K = 64
#: Buckets of the equi-depth histogram (one more boundary than buckets).
HISTOGRAM_BUCKETS = 32

_SCAN_BATCH = 2000
# Separate seeds: the salt hashes the primary key with mmh3 seed 0, and a sample correlated
# with the salt (or with the distinct-value hashes) would not be uniform.
_NDV_SEED = 0x6E6476
_SAMPLE_SEED = 0x73616D
_NULL = 0x00  # the one-byte encoding of NULL, in both directions


class IndexSummary:
    """Bounded summary of a stream of entry keys of one index; mergeable.

    Keys may come in any order (a build feeds them in primary-key order); sorted runs, as a
    bucket scan gives them, are only cheaper to summarise.

    Besides the sketches of the module docstring it keeps, for each value the heavy-hitter
    summary tracks, a small KMV of its distinct ``k``-prefixes (``k >= 2``): the fan-out of
    the values that end up MCVs. A run of equal first values gathers its prefix hashes first
    and hands them over when the run ends, if its value is tracked then.
    """

    def __init__(self, keys: IndexKeys) -> None:
        self.name = keys.index.name
        self._columns = list(zip(keys.types, keys.descending, strict=True))
        self.entries = 0
        self.nulls = 0
        self.ndv = [KMV() for _ in self._columns]
        self.heavy = MisraGries()
        self.fanout: dict[bytes, list[KMV]] = {}
        self.sample = BottomSample()
        self._previous = [b""] * len(self._columns)
        self._run_value = b""
        self._run_length = 0
        self._run_hashes: list[list[int]] = [[] for _ in self._columns[1:]]

    def add(self, key: bytes) -> None:
        """Count one entry key (``salt | values | pk``).

        :raises EncodingError: when the key does not decode as the index's columns
        """
        self.entries += 1
        if len(key) < 2:
            raise EncodingError(f"index {self.name}: entry key {key!r} is too short")
        if key[1] == _NULL:
            self.nulls += 1
            return
        offset = 1
        for k, (type_name, descending) in enumerate(self._columns):
            _, offset = decode_value(key, type_name, offset, descending=descending)
            prefix = key[1:offset]
            # Within a bucket entries arrive sorted, so a repeated prefix follows its twin.
            if prefix == self._previous[k]:
                continue
            self._previous[k] = prefix
            h = hash64(prefix, _NDV_SEED)
            self.ndv[k].add(h)
            if k == 0:
                self._flush_run()
                self._run_value = prefix
            else:
                hashes = self._run_hashes[k - 1]
                hashes.append(h)
                if len(hashes) > 4 * FANOUT_K:  # a long run: only the smallest can matter
                    hashes[:] = sorted(set(hashes))[:FANOUT_K]
        self._run_length += 1
        self.sample.add(hash64(key, _SAMPLE_SEED), self._run_value)

    def _flush_run(self) -> None:
        if not self._run_length:
            return
        value = self._run_value
        if self.heavy.add(value, self._run_length) and self._run_hashes:
            sketches = self.fanout.get(value)
            if sketches is None:
                sketches = self.fanout[value] = [KMV(FANOUT_K) for _ in self._run_hashes]
            for sketch, hashes in zip(sketches, self._run_hashes, strict=True):
                for h in hashes:
                    sketch.add(h)
        for hashes in self._run_hashes:
            hashes.clear()
        self._run_length = 0
        if len(self.fanout) > 4 * self.heavy.capacity:
            self._prune_fanout()

    def _prune_fanout(self) -> None:
        self.fanout = {v: f for v, f in self.fanout.items() if v in self.heavy.counts}

    def merge(self, other: IndexSummary) -> None:
        """Fold a summary of other entries of the same index into this one."""
        other._flush_run()
        self._flush_run()
        self.entries += other.entries
        self.nulls += other.nulls
        for mine, theirs in zip(self.ndv, other.ndv, strict=True):
            mine.merge(theirs)
        self.heavy.merge(other.heavy)
        for value, theirs in other.fanout.items():
            if value not in self.heavy.counts:
                continue
            if value in self.fanout:
                for mine_k, theirs_k in zip(self.fanout[value], theirs, strict=True):
                    mine_k.merge(theirs_k)
            else:
                self.fanout[value] = theirs
        self._prune_fanout()
        self.sample.merge(other.sample)

    def result(self, updated_ms: int) -> IndexStats:
        """The :class:`IndexStats` of everything added and merged."""
        self._flush_run()
        non_null = self.entries - self.nulls
        ndv: list[int] = []
        for sketch in self.ndv:
            # A longer prefix has at least as many distinct values; no more than entries.
            ndv.append(min(max(sketch.estimate(), ndv[-1] if ndv else 0), non_null))
        mcv = self._mcv(non_null, ndv[0] if ndv else 0)
        if ndv:
            ndv = [max(n, len(mcv)) for n in ndv]
        common = {value for value, _ in mcv}
        rest = sorted(v for v in self.sample.values() if v not in common)
        return IndexStats(
            index=self.name,
            entries=self.entries,
            prefix_ndv=tuple(ndv),
            null_entries=self.nulls,
            mcv=mcv,
            histogram=equi_depth(rest, HISTOGRAM_BUCKETS),
            updated_ms=updated_ms,
            mcv_prefix_ndv=tuple(self._mcv_fanout(value, count, ndv) for value, count in mcv),
        )

    def _mcv(self, non_null: int, ndv: int) -> tuple[tuple[bytes, int], ...]:
        ranked = sorted(self.heavy.seen.items(), key=lambda item: (-item[1], item[0]))
        if self.heavy.error == 0 and len(ranked) <= MCV_SIZE:
            return tuple(ranked)  # exact and complete
        threshold = MCV_MIN_RATIO * non_null / ndv if ndv else 0.0
        return tuple((v, c) for v, c in ranked if c > threshold)[:MCV_SIZE]

    def _mcv_fanout(self, value: bytes, count: int, ndv: list[int]) -> tuple[int, ...]:
        sketches = self.fanout.get(value)
        fanouts: list[int] = []
        for k in range(1, len(ndv)):
            if sketches is None:  # tracked only through a merge: assume the average fan-out
                estimate = round(ndv[k] / max(ndv[0], 1))
            else:
                estimate = sketches[k - 1].estimate()
            # Between the previous prefix length's fan-out and the value's entry count.
            fanouts.append(min(max(estimate, fanouts[-1] if fanouts else 1), count, ndv[k]))
        return tuple(fanouts)


def collect_stats(
    store: Store,
    table: TableDef,
    executor: Executor | None = None,
    indexes: Collection[str] | None = None,
    rows: int | None = None,
) -> TableStats:
    """Scan every index table and the primary table of ``table`` and summarise them.

    One scan per salt bucket of each index (reading only the state cell, to keep cells
    small) and one per region of the primary table (reading only the version cell), all in
    parallel on ``executor``. Memory stays bounded whatever the table size: each scan feeds
    fixed-size sketches, merged as the scans finish.

    :param store: the store holding the tables
    :param table: the table definition; every index in it is summarised, whatever its state
    :param executor: thread pool to run the scans on; ``None`` runs them one after another
    :param indexes: summarise only these indexes (``None``: all)
    :param rows: the live rows, when the caller counted them (a build's pass): the primary
        table is then not scanned
    :return: the statistics
    :raises StoreError: when a table cannot be scanned (e.g. an index table is missing)
    :raises EncodingError: for an entry key that does not decode as the index's columns
    """
    started = now_ms()
    lock = threading.Lock()
    summaries: dict[str, IndexSummary] = {}
    tasks: list[Callable[[], None]] = []
    for name, index in table.indexes.items():
        if indexes is not None and name not in indexes:
            continue
        keys = IndexKeys(table, index)
        summaries[name] = IndexSummary(keys)
        handle = store.table(index.hbase_table)
        for bucket in range(index.buckets):
            tasks.append(
                lambda h=handle, k=keys, b=bucket, into=summaries[name]: _scan_bucket(
                    h, k, b, into, lock
                )
            )
    live = [0 if rows is None else rows]
    primary = store.table(table.hbase_table)
    vcol = version_column(table)
    # Native rows all carry a version cell; an adopted table's rows need not (other
    # applications wrote them), so there a row counts when it has any declared cell.
    columns = [vcol]
    if table.existing:
        columns += [data_column(table, c) for c in table.columns if c not in table.row_key]
    for region in store.regions(table.hbase_table) if rows is None else []:

        def count(region: Region = region) -> None:
            n = _count_live(primary, region, vcol, columns)
            with lock:
                live[0] += n

        tasks.append(count)
    _run_all(tasks, executor)
    stats = TableStats(
        table=table.name,
        rows=live[0],
        indexes={name: s.result(started) for name, s in summaries.items()},
        updated_ms=started,
    )
    log.debug(
        "%s: statistics of %d rows and %d indexes in %d ms",
        table.name,
        stats.rows,
        len(stats.indexes),
        now_ms() - started,
    )
    return stats


def _scan_bucket(
    handle: Table, keys: IndexKeys, bucket: int, into: IndexSummary, lock: threading.Lock
) -> None:
    summary = IndexSummary(keys)
    index: IndexDef = keys.index
    for key, _ in handle.scan(
        prefix=bytes([bucket]), columns=[STATE_COLUMN], batch_size=_SCAN_BATCH
    ):
        try:
            summary.add(key)
        except EncodingError as exc:
            raise EncodingError(f"{index.path}: entry {key!r}: {exc}") from exc
    with lock:
        into.merge(summary)


def _count_live(primary: Table, region: Region, vcol: bytes, columns: list[bytes]) -> int:
    n = 0
    for _, cells in primary.scan(
        start=region.start or None,
        stop=region.end or None,
        columns=columns,
        batch_size=_SCAN_BATCH,
    ):
        if not is_deleted(cells.get(vcol)):
            n += 1
    return n


def _run_all(tasks: list[Callable[[], None]], executor: Executor | None) -> None:
    """Run ``tasks``; on the first failure cancel those not started and raise it."""
    if executor is None:
        for task in tasks:
            task()
        return
    futures = [executor.submit(task) for task in tasks]
    done, pending = wait(futures, return_when=FIRST_EXCEPTION)
    failed = [f for f in done if f.exception() is not None]
    if failed:
        for future in pending:
            future.cancel()
        wait(pending)  # no scan may still run once we return
        raise failed[0].exception()  # type: ignore[misc]


# --------------------------------------------------------------------------- meta table


def refresh_stats(
    meta: Meta, store: Store, table: TableDef, executor: Executor | None = None
) -> TableStats:
    """Collect the statistics of a table and store them in the meta table.

    :param meta: the meta table of ``store``
    :param store: the store holding the table and its indexes
    :param table: the table definition
    :param executor: thread pool to scan on (``None``: one scan after another)
    :return: the statistics just stored
    :raises StoreError: when a table cannot be scanned or the meta table written
    """
    stats = collect_stats(store, table, executor)
    meta.save_stats(table.name, stats.to_json())
    return stats


def refresh_index_stats(
    meta: Meta,
    store: Store,
    table: TableDef,
    indexes: Collection[str],
    executor: Executor | None = None,
) -> TableStats:
    """Collect the statistics of some indexes (and the table's rows) into the stored ones.

    What a build calls when it has filled an index: the other indexes keep their stored
    figures, so only the new index table and the primary table's version cells are read.
    Without stored statistics every index is collected.

    :param meta: the meta table of ``store``
    :param store: the store holding the table and its indexes
    :param table: the table definition
    :param indexes: names of the indexes to collect
    :param executor: thread pool to scan on (``None``: one scan after another)
    :return: the statistics just stored
    :raises StoreError: when a table cannot be scanned or the meta table written
    """
    stored = load_stats(meta, table.name)
    if stored is None:
        return refresh_stats(meta, store, table, executor)
    fresh = collect_stats(store, table, executor, indexes)
    kept = {n: s for n, s in stored.indexes.items() if n in table.indexes and n not in indexes}
    stats = TableStats(table.name, fresh.rows, kept | dict(fresh.indexes), fresh.updated_ms)
    meta.save_stats(table.name, stats.to_json())
    return stats


def save_index_summary(
    meta: Meta,
    store: Store,
    table: TableDef,
    summary: IndexSummary,
    rows: int,
    executor: Executor | None = None,
) -> TableStats:
    """Store the statistics of one index summarised by whoever wrote its entries (a build).

    The other indexes keep their stored figures; without stored statistics they are
    collected now.

    :param meta: the meta table of ``store``
    :param store: the store holding the table and its indexes
    :param table: the table definition
    :param summary: every entry of the index, added and merged
    :param rows: live rows of the primary table, as counted by the same pass
    :param executor: thread pool for the other indexes' scans, if they must be collected
    :return: the statistics just stored
    :raises StoreError: when a table cannot be scanned or the meta table written
    """
    started = now_ms()
    stored = load_stats(meta, table.name)
    others = [n for n in table.indexes if n != summary.name]
    if stored is None:  # the row count is this pass's: only the other indexes are scanned
        stored = collect_stats(store, table, executor, others, rows=rows)
    kept = {n: s for n, s in stored.indexes.items() if n in others}
    stats = TableStats(table.name, rows, kept | {summary.name: summary.result(started)}, started)
    meta.save_stats(table.name, stats.to_json())
    return stats


def load_stats(meta: Meta, table_name: str) -> TableStats | None:
    """The stored statistics of a table.

    :param meta: the :class:`~culvert_py.meta.Meta` of a store
    :param table_name: the table
    :return: the statistics, or ``None`` when never collected or unreadable (logged)
    :raises StoreError: when the meta table cannot be read
    """
    document = meta.load_stats(table_name)
    if document is None:
        return None
    try:
        return TableStats.from_json(document)
    except CulvertError as exc:
        log.warning("%s: ignoring stored statistics: %s; run `culvert stats`", table_name, exc)
        return None
