"""One shard of a build plan, scanned into verified index entries at safe timestamps.

Entries are written at a timestamp no higher than the version timestamp of their row (the
``_v`` cell's; for rows never written through culvert_py, their newest indexed cell's),
never at "now". A writer that changes the row after we read it writes at a higher timestamp
and deletes the old entry there, and that delete masks our put whenever it arrives. An entry
written at "now" could outlive that delete and resurrect a stale value.

The store takes one timestamp per ``mutate_many`` call, and one call per distinct row
timestamp would cost one RPC per row on tables written row by row. Entry keys end with the
primary key, so only writers of that row ever put cells or delete markers on its entries,
always at or below the row's version timestamp. A row last written before the index became
``BUILDING`` (less :data:`CLOCK_MARGIN_MS`, for writers whose clocks lag) was never written
by a maintaining writer, so its entries carry no cells at all, and any timestamp up to its
version will do. Those rows go in one call, at the lowest version timestamp among them. Rows
written since then may have a maintaining write with delete markers below their version,
for example a changeover write that moved the row off a value and a non-maintaining one that
moved it back. Those rows are written at their own version timestamps, one call per distinct
timestamp. There are few of them: they are the rows live writers touched, and a writer's
batch shares one timestamp.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from concurrent.futures import Executor

from culvert_py.layout import VERIFIED, new_version, shadow_of
from culvert_py.meta import ACTIVE, BUILDING
from culvert_py.ops.common import (
    IndexTarget,
    Progress,
    Task,
    _entry_mutation,
    _run_tasks,
    index_state,
)
from culvert_py.ops.plan import RANGE_DOC, BuildPlan, Checkpoint, _discard_plan, _load_plan
from culvert_py.ops.sync import record_build_mark
from culvert_py.stats import IndexSummary
from culvert_py.store.base import RowMutation, chunks

log = logging.getLogger(__name__)

#: How far a writer's clock may lag the one that set the index BUILDING (HBase itself
#: refuses region servers more than 30 s off); see the module docstring.
CLOCK_MARGIN_MS = 300_000


class RangeBuilder:
    """Runs one shard of a plan: scans its ranges, writes entries, saves checkpoints."""

    def __init__(
        self, target: IndexTarget, plan: BuildPlan, shard: tuple[int, int], batch_size: int
    ) -> None:
        self.target = target
        self.plan = plan
        self.shard = shard
        self.batch_size = batch_size
        self.prefix = f"{target.name}.{plan.id}."
        #: Rows with a version at or above this may have had a maintaining writer.
        self.recent_from = plan.since - CLOCK_MARGIN_MS
        self._lock = threading.Lock()
        self.rows = 0
        self.entries = 0
        #: Statistics of every entry this run wrote, and the live rows it read: those of the
        #: whole index when :attr:`complete` (one shard, nothing built before).
        self.summary = IndexSummary(target.keys)
        self.live = 0
        self.complete = False

    def _range_name(self, number: int) -> str:
        return f"{self.prefix}{number:05d}"

    def run(self, pool: Executor, resume: bool, progress: Progress | None) -> tuple[int, int]:
        """Build this shard's unfinished ranges; returns ``(rows, entries)`` of this run."""
        i, n = self.shard
        docs = self.target.meta.load_docs(RANGE_DOC, self.prefix)
        mine = [r for r in range(len(self.plan.ranges)) if r % n == i]
        checkpoints = {}
        for r in mine:
            name = self._range_name(r)
            found = Checkpoint.from_doc(name, docs.get(name))
            if not resume:  # start over, but above the stored version's timestamp
                found = Checkpoint(name, ts=found.ts)
            checkpoints[r] = found
        done_before = sum(c.rows for c in checkpoints.values())
        estimate, _ = self.target.estimates()
        total = None if estimate is None else math.ceil(estimate / n)
        tasks = [self._task(r, c) for r, c in checkpoints.items() if not c.done]
        self.complete = n == 1 and len(tasks) == len(self.plan.ranges) and not done_before
        _run_tasks(pool, tasks, progress, done_before, total)
        return self.rows, self.entries

    def _task(self, number: int, checkpoint: Checkpoint) -> Task:
        def task(stop: threading.Event, report: Callable[[int], None]) -> None:
            self._build_range(number, checkpoint, stop, report)

        return task

    def _build_range(
        self,
        number: int,
        checkpoint: Checkpoint,
        stop: threading.Event,
        report: Callable[[int], None],
    ) -> None:
        target = self.target
        start, end = self.plan.ranges[number]
        if checkpoint.after is not None:
            start = checkpoint.after + b"\x00"  # the smallest key after it
        summary = IndexSummary(target.keys)  # this range's, merged when it is done
        live = 0
        scanner = target.primary.scan(
            start=start or None,
            stop=end or None,
            columns=target.read_columns,
            batch_size=self.batch_size,
            include_timestamp=True,
        )
        try:
            for batch in chunks(scanner, self.batch_size):
                if stop.is_set():
                    return
                by_ts, shadows, alive = self._mutations(batch)
                for ts, group in by_ts.items():
                    target.entries_table.mutate_many(group, ts)
                    for mutation in group:  # statistics in the same pass (see finish)
                        summary.add(mutation.row)
                # After the entries: a shadow never claims entries that are not there.
                if shadows:  # one batched call: each row's shadow at its own timestamp
                    target.primary.put_many_at(shadows)
                written = sum(len(group) for group in by_ts.values())
                live += alive
                checkpoint.after = batch[-1][0]
                checkpoint.rows += len(batch)
                checkpoint.entries += written
                self._save(checkpoint)
                with self._lock:
                    self.rows += len(batch)
                    self.entries += written
                report(len(batch))
        finally:
            scanner.close()  # type: ignore[attr-defined]
        checkpoint.done = True
        self._save(checkpoint)
        with self._lock:
            self.summary.merge(summary)
            self.live += live

    def _mutations(self, batch: list[tuple[bytes, dict]]) -> tuple[dict, list, int]:
        """The verified entries of a batch of rows, by the timestamp to write them at (see
        the module docstring); on an adopted table, ``(row, cells, timestamp)`` of the version
        cells (with their shadow) of the rows that have none yet; and how many rows are live.

        A version cell goes at the row's own newest timestamp: a writer that changed the row
        since wrote its own above it, and the newest one is what every reader sees.
        """
        target = self.target
        adopted = target.definition.existing
        recent: dict[int, list[RowMutation]] = {}
        shadows: list[tuple[bytes, dict, int]] = []
        old: list[RowMutation] = []
        lowest: int | None = None
        alive = 0
        for pk, cells in batch:
            row, ts, _ = target.row_state(pk, cells)
            if row is None or ts is None:
                continue  # a tombstone: the row is deleted
            alive += 1
            if adopted and target.vcol not in cells:
                version = new_version(ts) + shadow_of(target.definition, row)
                shadows.append((pk, {target.vcol: version}, ts))
            entries = target.entries(row, pk)
            mutations = [_entry_mutation(k, c, VERIFIED) for k, c in entries.items()]
            if not mutations:
                continue
            if ts >= self.recent_from:
                recent.setdefault(ts, []).extend(mutations)
            else:
                lowest = ts if lowest is None else min(lowest, ts)
                old += mutations
        if lowest is not None:
            recent.setdefault(lowest, []).extend(old)
        return recent, shadows, alive

    def _save(self, checkpoint: Checkpoint) -> None:
        checkpoint.ts = self.target.meta.save_doc(
            RANGE_DOC, checkpoint.name, checkpoint.to_json(), not_before=checkpoint.ts + 1
        )  # type: ignore[assignment]

    def finish(self) -> str:
        """Activate the index when every range of the plan is done; returns the state."""
        target = self.target
        meta = target.meta
        docs = meta.load_docs(RANGE_DOC, self.prefix)
        for r in range(len(self.plan.ranges)):
            if not Checkpoint.from_doc("", docs.get(self._range_name(r))).done:
                return BUILDING  # another shard still has ranges to build
        found = _load_plan(meta, target.name)
        state, since = index_state(meta, target.index.table, target.index.name)
        if found is None or found.id != self.plan.id or since != self.plan.since:
            # The plan was replaced or the index reset while we built: not ours to finish.
            log.warning("%s: the build plan changed while building; not activating", target.path)
            return state
        if state == BUILDING:
            if target.definition.existing:
                record_build_mark(meta, target.definition.name, self.plan.since)
            meta.set_state(target.index.table, target.index.name, ACTIVE)
            state = ACTIVE
        _discard_plan(meta, target.name)
        return state
