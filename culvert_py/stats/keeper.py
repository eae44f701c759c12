"""Freshness of one table's statistics, kept without being asked.

A :class:`StatsKeeper` belongs to one :class:`~culvert_py.table.IndexedTable`. It loads the
stored statistics once, counts the rows its client writes, and collects them again
(:func:`~culvert_py.stats.collect.refresh_stats`) at the end of the write call that makes
them stale: :data:`STALE_SHARE` of the table's rows written since they were collected, or
:data:`MIN_ROWS` written into a table that has none. A load is one write call, so it pays
for one collection at its end; small writes pay nothing until their sum matters, and the
collection (a key-only scan of every index) costs a fraction of writing that many rows
through the protocol, so the cost per row written stays bounded.

:meth:`StatsKeeper.fresh` is what the planner plans with: ``None`` when the statistics are
missing or stale, which makes it measure accesses by probes
(:mod:`culvert_py.query.probe`) instead. Statistics of fewer than :data:`MIN_ROWS` rows are
never trusted: another client may have filled the table since, and probing a small table
is cheap and exact. Writes by other clients are not counted; their own keepers refresh the
shared document when they make it stale.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Executor

from culvert_py.meta import Meta
from culvert_py.schema import TableDef
from culvert_py.stats.collect import load_stats, refresh_stats
from culvert_py.stats.model import TableStats
from culvert_py.store.base import Store

log = logging.getLogger(__name__)

#: Share of a table's rows written since collection that makes its statistics stale.
STALE_SHARE = 0.2
#: Rows a table needs for its statistics to be trusted (and written to make them due).
MIN_ROWS = 1000

_UNSET = object()


class StatsKeeper:
    """Loads, counts against and refreshes the statistics of one table.

    :param meta: the meta table of ``store``
    :param store: the store holding the table and its indexes
    :param table: the table definition (of the current schema generation)
    :param executor: thread pool the collection scans run on
    :param auto: collect again when writes make the statistics stale (``False``: only
        :meth:`refresh` does)
    """

    def __init__(
        self, meta: Meta, store: Store, table: TableDef, executor: Executor, auto: bool = True
    ) -> None:
        self.meta = meta
        self.store = store
        self.table = table
        self.executor = executor
        self.auto = auto
        self.written_since = 0
        self._stats: object = _UNSET
        self._lock = threading.Lock()

    def current(self) -> TableStats | None:
        """The stored statistics (read once, then cached), fresh or not.

        :raises StoreError: when the meta table cannot be read
        """
        if self._stats is _UNSET:
            self._stats = load_stats(self.meta, self.table.name)
        return self._stats  # type: ignore[return-value]

    def fresh(self) -> TableStats | None:
        """The statistics when they can be planned with, else ``None`` (missing or stale)."""
        stats = self.current()
        if stats is None or stats.rows < MIN_ROWS or self._stale(stats):
            return None
        return stats

    def _stale(self, stats: TableStats | None) -> bool:
        if stats is None:
            return self.written_since >= MIN_ROWS
        return self.written_since > max(STALE_SHARE * stats.rows, MIN_ROWS * STALE_SHARE)

    def written(self, rows: int) -> None:
        """Count ``rows`` written by this client; collect again if that made them stale.

        :param rows: rows (keys) written or deleted
        :raises StoreError: when the collection fails (the rows are written regardless)
        """
        with self._lock:
            self.written_since += rows
            due = self.auto and self._stale(self.current())
            if due:  # one collection however many writers cross the line together
                log.info(
                    "%s: statistics stale after %d rows written; collecting",
                    self.table.name,
                    self.written_since,
                )
                self.written_since = 0
        if due:
            self._collect()

    def refresh(self) -> TableStats:
        """Collect the statistics now, store them, and start counting writes again.

        :return: the statistics just stored
        :raises StoreError: when a table cannot be scanned or the meta table written
        """
        with self._lock:
            self.written_since = 0
        return self._collect()

    def _collect(self) -> TableStats:
        stats = refresh_stats(self.meta, self.store, self.table, self.executor)
        with self._lock:
            self._stats = stats
        return stats


__all__ = ["MIN_ROWS", "STALE_SHARE", "StatsKeeper"]
