"""Checking an index against its primary table in both directions, optionally repairing it.

Verify checks both directions in parallel: every live row's expected entries exist
(*missing* otherwise), and every entry belongs to its row (*orphan* otherwise: a stale value,
a deleted row, a row the ``where`` clause excludes, or an undecodable key) with the row's
covered values when verified (*wrong_covered* otherwise). Unverified entries that match their
row are correct (readers check them) and only counted.

Writers may be active: a suspect is read again (row first, then entry) and counts only when
the problem persists while the row's version stays the same. An unowned entry *not older*
than its row may belong to a write still in flight: written before its row (step 2 of the
write protocol), or departing at the row's own timestamp with its delete (step 4) still to
come. Such an entry counts as *in_flight* until it is ``settle_seconds`` old, then as an
orphan. An unowned entry older than its row is stale for certain: the row's last writer read
the row first and removed every entry it had.

Only *verified* orphans are errors (covered readers trust them). Unverified ones are garbage
that readers check and drop: a crashed writer's, or a lost write race's (a writer whose
version check failed has already marked entries in step 2 and retries with other ones).
They are counted apart and deleted by repair (see :mod:`culvert_py.ops.repair`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from culvert_py.clock import now_ms
from culvert_py.errors import ArgumentError, EncodingError
from culvert_py.layout import STATE_COLUMN, VERIFIED
from culvert_py.ops.common import (
    RANGES_PER_WORKER,
    IndexTarget,
    Progress,
    Task,
    _check_seconds,
    _is_int,
    _run_tasks,
    check_job_arguments,
)
from culvert_py.ops.repair import (
    PlainDeletes,
    _delete_plain,
    _entry_fix,
    _Fix,
    _missing_fix,
    _touch_repair,
)
from culvert_py.ops.report import VerifyReport
from culvert_py.store.base import Table, chunks

if TYPE_CHECKING:
    from culvert_py.client import Client

log = logging.getLogger(__name__)

#: Reads of a suspect entry or row before it is counted as in flight instead.
RECHECK_ROUNDS = 3
#: Default age after which an entry newer than its row is an orphan, not a write in flight.
SETTLE_SECONDS = 60.0

#: Kinds of entry that are no error: they are counted (``ok`` not even that), never repaired.
_FINE = ("ok", "unverified_ok", "in_flight")


def verify_index(
    client: Client,
    table: str,
    index: str,
    *,
    repair: bool = False,
    workers: int = 8,
    sample: int = 10,
    progress: Progress | None = None,
    batch_size: int = 1000,
    settle_seconds: float = SETTLE_SECONDS,
    rejects: str | None = None,
) -> VerifyReport:
    """Check an index against its primary table in both directions; optionally repair.

    Safe while writers are active: only problems that persist on a second read count, and
    repairs use the write protocol (see :mod:`culvert_py.ops.repair`).

    :param client: the client
    :param table: the table name
    :param index: the index name
    :param repair: fix what is found: write missing and wrong entries verified, delete orphans
    :param workers: scans at once (primary key ranges and index salt buckets)
    :param sample: offending entries kept per kind in :attr:`VerifyReport.samples`
    :param progress: called on the caller's thread after each batch with (rows plus entries
        checked, estimated total or ``None``)
    :param batch_size: rows or entries per scan batch and per batched read
    :param settle_seconds: age after which an entry its row does not own, not older than
        the row, is an orphan rather than a write in flight
    :param rejects: where to write a sample of an adopted table's undecodable cells (as
        :func:`~culvert_py.ops.build_index` does); they are counted in the report either way
    :return: a :class:`VerifyReport`
    :raises ArgumentError: a malformed argument (``workers=0``, ``sample=-1``, ...), before
        anything is read
    :raises SchemaError: unknown table or index
    :raises StoreError: when the store fails (after retries)
    """
    check_job_arguments(
        table,
        index,
        workers=workers,
        batch_size=batch_size,
        flags={"repair": repair},
        progress=progress,
    )
    if not _is_int(sample) or sample < 0:
        raise ArgumentError(f"{table}.{index}: sample={sample!r:.60}: expected an integer >= 0")
    _check_seconds(table, index, "settle_seconds", settle_seconds)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="culvert-verify") as pool:
        target = IndexTarget(client, table, index, pool)
        checker = RangeChecker(target, repair, sample, settle_seconds, batch_size)
        ranges = target.key_ranges(RANGES_PER_WORKER * workers, batch_size)
        tasks = [checker.forward_task(r) for r in ranges]
        tasks += [checker.backward_task(b) for b in range(target.index.buckets)]
        rows, entries = target.estimates()
        total = rows + entries if rows is not None and entries is not None else None
        _run_tasks(pool, tasks, progress, 0, total)
    report = checker.report
    report.seconds = time.monotonic() - started
    report.bad_cells = dict(target.bad_cells.counts)
    if rejects is not None:
        target.bad_cells.write(rejects)
    log.info("%s: %s", target.path, report.summary().splitlines()[0])
    return report


@dataclass
class _Suspect:
    """An entry (backward) or a row (forward) that looked wrong, read again until settled.

    :ivar key: the entry key (backward), ``None`` for a forward row check
    :ivar pk: the primary key, ``None`` for an undecodable entry key
    :ivar identity: ``(version value, version ts)`` of the row when suspected
    """

    key: bytes | None
    pk: bytes | None
    identity: tuple | None = None


class RangeChecker:
    """Checks (and repairs) batches of rows and entries; shared by every verify task."""

    def __init__(
        self,
        target: IndexTarget,
        repair: bool,
        sample: int,
        settle_seconds: float,
        batch_size: int,
    ) -> None:
        self.target = target
        self.repair = repair
        self.sample = sample
        self.settle_ms = int(settle_seconds * 1000)
        self.batch_size = batch_size
        self.report = VerifyReport()
        self._lock = threading.Lock()

    def _count(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self.report, name, getattr(self.report, name) + n)

    def _confirmed(self, kind: str, key: bytes) -> None:
        with self._lock:
            setattr(self.report, kind, getattr(self.report, kind) + 1)
            samples = self.report.samples.setdefault(kind, [])
            if len(samples) < self.sample:
                samples.append(self.target.describe(key))
            if not samples:
                del self.report.samples[kind]

    # -- tasks ---------------------------------------------------------------------------

    def forward_task(self, bounds: tuple[bytes, bytes]) -> Task:
        """A task checking the rows of one primary key range."""
        start, end = bounds
        return self._scan_task(
            self.target.primary,
            dict(start=start or None, stop=end or None, columns=self.target.read_columns),
            self.check_rows,
        )

    def backward_task(self, bucket: int) -> Task:
        """A task checking the entries of one salt bucket of the index table."""
        return self._scan_task(
            self.target.entries_table, dict(prefix=bytes([bucket])), self.check_entries
        )

    def _scan_task(
        self, table: Table, scan: dict, check: Callable[[list[tuple[bytes, dict]]], None]
    ) -> Task:
        def task(stop: threading.Event, report: Callable[[int], None]) -> None:
            scanner = table.scan(**scan, batch_size=self.batch_size, include_timestamp=True)
            try:
                for batch in chunks(scanner, self.batch_size):
                    if stop.is_set():
                        return
                    check(batch)
                    report(len(batch))
            finally:
                scanner.close()  # type: ignore[attr-defined]

        return task

    # -- forward: every live row has its entries -------------------------------------------

    def check_rows(self, batch: list[tuple[bytes, dict]]) -> None:
        """Look up the entries a batch of primary rows should have; settle what is missing."""
        target = self.target
        expected: dict[bytes, bytes] = {}
        identity: dict[bytes, tuple] = {}
        live = 0
        for pk, cells in batch:
            row, ts, version = target.row_state(pk, cells)
            if row is None:
                continue
            live += 1
            identity[pk] = (version, ts)
            for key in target.entries(row, pk):
                expected[key] = pk
        found = target.entries_table.get_many(list(expected), columns=[STATE_COLUMN])
        suspects = {pk for key, pk in expected.items() if key not in found}
        self._count(rows_checked=live)
        if suspects:
            self._settle_rows([_Suspect(None, pk, identity[pk]) for pk in sorted(suspects)])

    def _settle_rows(self, suspects: list[_Suspect]) -> None:
        target = self.target
        fixes: list[_Fix] = []
        for _round in range(RECHECK_ROUNDS):
            if not suspects:
                break
            rows = target.primary.get_many([s.pk for s in suspects], include_timestamp=True)
            states = {}
            wanted: list[bytes] = []
            for s in suspects:
                cells = rows.get(s.pk, {})
                states[s.pk] = (cells, *target.row_state(s.pk, cells))
                wanted += list(target.entries(states[s.pk][1], s.pk))
            found = target.entries_table.get_many(wanted, include_timestamp=True)
            again = []
            for s in suspects:
                cells, row, ts, version = states[s.pk]
                entries = target.entries(row, s.pk)
                missing = [k for k in entries if k not in found]
                if not missing:
                    continue  # a writer had it in hand: resolved
                if (version, ts) != s.identity:
                    again.append(_Suspect(None, s.pk, (version, ts)))
                    continue
                seen = max([ts or 0, *(t for _, t in cells.values())])
                for key in missing:
                    self._confirmed("missing", key)
                    fixes.append(_missing_fix(s.pk, version, seen, key, entries[key]))
            suspects = again
        self._count(in_flight=len(suspects))
        if self.repair and fixes:
            self._count(repaired=_touch_repair(target, fixes))

    # -- backward: every entry belongs to its row --------------------------------------------

    def check_entries(self, batch: list[tuple[bytes, dict]]) -> None:
        """Check a batch of index entries against their rows; settle what looks wrong."""
        target = self.target
        pks: dict[bytes, bytes | None] = {}
        for key, _ in batch:
            try:
                pks[key] = target.keys.decode(key)[1]
            except EncodingError:
                pks[key] = None
        wanted = sorted({pk for pk in pks.values() if pk is not None})
        rows = target.primary.get_many(wanted, columns=target.read_columns, include_timestamp=True)
        suspects = []
        for key, cells in batch:
            pk = pks[key]
            row_cells = rows.get(pk, {}) if pk is not None else {}
            kind, identity = self._classify(key, pk, cells, row_cells)
            if kind in _FINE:
                self._count(**({kind: 1} if kind != "ok" else {}))
            else:
                suspects.append(_Suspect(key, pk, identity))
        self._count(entries_checked=len(batch))
        if suspects:
            self._settle_entries(suspects)

    def _classify(
        self, key: bytes, pk: bytes | None, entry: dict, row_cells: dict
    ) -> tuple[str, tuple | None]:
        """``(kind, row identity)``: ``ok``, ``unverified_ok``, ``wrong_covered``, ``orphan``,
        ``unverified_orphan`` or ``in_flight``."""
        if pk is None:
            return "orphan", None  # no writer makes such a key
        row, ts, version = self.target.row_state(pk, row_cells)
        identity = (version, ts)
        owned = self.target.entries(row, pk)
        verified = entry.get(STATE_COLUMN, (None, 0))[0] == VERIFIED
        if key in owned:
            if not verified:
                return "unverified_ok", identity
            for column, value in owned[key].items():
                if entry.get(column, (None, 0))[0] != value:
                    return "wrong_covered", identity
            return "ok", identity
        entry_ts = max(t for _, t in entry.values())
        # Readers trust only verified entries without a check: an unverified orphan is
        # garbage, not an error.
        orphan = "orphan" if verified else "unverified_orphan"
        if ts is not None and ts > entry_ts:
            # The row's last writer read the row before writing above this entry, so it
            # knew every entry of the old row: one it did not remove is stale.
            return orphan, identity
        if now_ms() - entry_ts > self.settle_ms:
            return orphan, identity
        # At the row's own timestamp: the departing entry of the row's last write, whose
        # step 4 has not landed yet. Above it: an entry written before its row, as the
        # protocol does. Either may also be what a crashed writer left; age tells.
        return "in_flight", identity

    def _settle_entries(self, suspects: list[_Suspect]) -> None:
        target = self.target
        fixes: list[_Fix] = []
        plain_deletes: PlainDeletes = {}
        for _round in range(RECHECK_ROUNDS):
            if not suspects:
                break
            # Row first, entry second: an entry read after the row reflects at least step 2
            # of the write that made that row version (its departing entries marked).
            rows = target.primary.get_many(
                sorted({s.pk for s in suspects if s.pk is not None}), include_timestamp=True
            )
            entries = target.entries_table.get_many(
                [s.key for s in suspects if s.key is not None], include_timestamp=True
            )
            again = []
            for s in suspects:
                key = s.key
                assert key is not None
                entry = entries.get(key)
                if not entry:
                    continue  # deleted meanwhile (a writer moved the row on)
                row_cells = rows.get(s.pk, {}) if s.pk is not None else {}
                kind, identity = self._classify(key, s.pk, entry, row_cells)
                if kind in _FINE:
                    if kind != "ok":
                        self._count(**{kind: 1})
                    continue
                if identity != s.identity:
                    again.append(_Suspect(key, s.pk, identity))
                    continue
                self._confirmed(kind, key)
                fix = _entry_fix(target, kind, key, s.pk, entry, row_cells, plain_deletes)
                if fix is not None:
                    fixes.append(fix)
            suspects = again
        self._count(in_flight=len(suspects))
        if not self.repair:
            return
        self._count(repaired=_delete_plain(target, plain_deletes))
        if fixes:
            self._count(repaired=_touch_repair(target, fixes))
