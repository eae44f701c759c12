"""Filling an index from its primary table: build, rebuild.

**Build.** A new index on a populated table starts ``BUILDING``: every writer maintains it
from its next batch on (writers re-read the schema generation once per batch), queries ignore
it. The builder then fills in the rows written before that:

1. **Grace period.** A batch that began under the previous generation does not maintain the
   index, and may still be writing. The build waits until ``grace_seconds`` have passed since
   the index's state cell was written, so that every batch still running maintains it. A
   non-maintaining write that lands after the scan read its row would leave our entry stale
   for good, since no later writer knows about that entry.
2. **Sweep.** Entries that maintaining writers wrote during the changeover can still be
   invalidated by a non-maintaining batch that finished later (its row moved on without
   removing them). So after the grace period the index table is checked once against its
   rows, as :func:`~culvert_py.ops.verify_index` does with repair on. It holds only
   changeover entries (the table is new or was just recreated), so this is cheap.
3. **Plan.** The primary table's key ranges (its regions, each split further when there are
   fewer regions than ``4 × workers``; see :mod:`culvert_py.ops.ranges`) are computed once
   and stored in the meta table (see :mod:`culvert_py.ops.plan`). ``shard=(i, n)`` takes
   ranges ``r`` with ``r % n == i``.
4. **Scan.** ``workers`` ranges at a time, each one store scan reading only the columns the
   index needs plus the version cell, with timestamps. The **verified** entries of a batch of
   live rows are written in batched ``mutate_many`` calls, at timestamps no higher than their
   rows' (see :mod:`culvert_py.ops.builder`), then the range's checkpoint (last primary key
   done, counts) is saved. ``resume=True`` continues after the checkpoint; rows after it that
   a killed run had written are written again, which is harmless because the puts are
   identical.
5. **Finish.** A shard records each finished range. The shard that finds every range of the
   plan done sets the index ``ACTIVE`` and deletes the plan and its checkpoints.

**Rebuild** sets the index ``DISABLED`` (writers stop maintaining it, queries stop using it),
waits the grace period, drops the index table and creates it again pre-split, sets it
``BUILDING`` and builds. The table is recreated, not emptied with deletes: a delete marker at
"now" would mask every entry the build then writes at older row timestamps.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from culvert_py.errors import SchemaError, StoreError
from culvert_py.layout import INDEX_FAMILY, IndexKeys
from culvert_py.meta import ACTIVE, BUILDING, DISABLED
from culvert_py.ops.builder import RangeBuilder
from culvert_py.ops.common import (
    RANGES_PER_WORKER,
    IndexTarget,
    Progress,
    _index_def,
    _plan_name,
    _run_tasks,
    _wait_grace,
    check_job_arguments,
    index_state,
)
from culvert_py.ops.plan import PLAN_DOC, BuildPlan, _discard_plan, _load_plan
from culvert_py.ops.report import BuildReport
from culvert_py.ops.verify import SETTLE_SECONDS, RangeChecker
from culvert_py.stats import refresh_index_stats, save_index_summary

if TYPE_CHECKING:
    from culvert_py.client import Client

log = logging.getLogger(__name__)


def build_index(
    client: Client,
    table: str,
    index: str,
    *,
    workers: int = 8,
    shard: tuple[int, int] = (0, 1),
    resume: bool = False,
    grace_seconds: float = 5.0,
    progress: Progress | None = None,
    batch_size: int = 1000,
    rejects: str | None = None,
) -> BuildReport:
    """Fill a ``BUILDING`` index from its primary table, then make it ``ACTIVE``.

    Safe while writers are active (see the module docstring). An ``ACTIVE`` index is left
    alone (a report of zero rows), so a repeated build is harmless.

    :param client: the client
    :param table: the table name
    :param index: the index name
    :param workers: key ranges scanned at once
    :param shard: ``(i, n)``: this process builds ranges ``r % n == i`` of the shared plan;
        every shard must be run, with the same ``n``; the last to finish activates the index
    :param resume: continue this shard's ranges after their checkpoints; without it they
        start over (the plan, once made, is kept either way until the build completes)
    :param grace_seconds: how long a writer batch may run; the scan starts that long after
        the index became ``BUILDING``
    :param progress: called on the caller's thread after each batch with (rows done by this
        shard, including earlier runs when resuming; estimated total, or ``None``); an
        exception it raises stops the build, which ``resume=True`` then continues
    :param batch_size: rows per scan batch, index write and checkpoint
    :param rejects: where to write a sample of the adopted table's cells that did not
        decode under their codec (JSON Lines: row key, column, raw bytes as hex, reason)
    :return: a :class:`~culvert_py.ops.BuildReport`
    :raises ArgumentError: a malformed argument (``workers=0``, ``shard=(2, 2)``, more than
        :data:`~culvert_py.ops.MAX_SHARDS` shards, a negative ``grace_seconds``), before
        anything is read
    :raises SchemaError: unknown table or index, an index that is ``DISABLED`` (rebuild it),
        or a resume with another shard count than the build under way
    :raises StoreError: when the store fails (after retries); ``resume=True`` continues
    """
    check_job_arguments(
        table,
        index,
        workers=workers,
        shard=shard,
        grace_seconds=grace_seconds,
        batch_size=batch_size,
        flags={"resume": resume},
        progress=progress,
    )
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="culvert-build") as pool:
        target = IndexTarget(client, table, index, pool)
        state, since = index_state(client.meta, table, index)
        if state == ACTIVE:
            log.info("%s: already %s; nothing to build", target.path, ACTIVE)
            return BuildReport(0, 0, time.monotonic() - started, shard, ACTIVE)
        if state != BUILDING:
            raise SchemaError(
                f"{target.path}: the index is {state}, not {BUILDING}; rebuild it "
                f"(`culvert index rebuild {table} {index}`)"
            )
        plan, stale = plan_build(
            target, since, shard[1], resume, grace_seconds, workers, batch_size
        )
        builder = RangeBuilder(target, plan, shard, batch_size)
        rows, entries = builder.run(pool, resume, progress)
        state_after = builder.finish()
        if state_after == ACTIVE and getattr(client, "auto_stats", True):
            # The planner should know the new index from the first query on: from this
            # pass when it built everything, else by one key-only scan of the index.
            definition, store = target.definition, client.store
            if builder.complete:
                save_index_summary(client.meta, store, definition, builder.summary, builder.live)
            else:
                refresh_index_stats(client.meta, store, definition, [index], pool)
    report = BuildReport(rows, entries, time.monotonic() - started, shard, state_after, stale)
    report.bad_cells = dict(target.bad_cells.counts)
    if rejects is not None:
        target.bad_cells.write(rejects)
    log.info("%s: %s", target.path, report.summary())
    return report


def rebuild_index(
    client: Client,
    table: str,
    index: str,
    *,
    workers: int = 8,
    shard: tuple[int, int] = (0, 1),
    resume: bool = False,
    grace_seconds: float = 5.0,
    progress: Progress | None = None,
    batch_size: int = 1000,
    rejects: str | None = None,
) -> BuildReport:
    """Empty an index and build it again: ``DISABLED``, recreate its table, build.

    While it runs, queries do not use the index. With ``resume=True`` and a rebuild under
    way (the index is ``BUILDING`` with a stored plan), it only resumes the build. With
    shards, run this on one process; start :func:`build_index` with the same ``n`` on the
    others once the index is ``BUILDING`` again.

    Parameters, return value and errors are those of :func:`build_index`.
    """
    check_job_arguments(
        table,
        index,
        workers=workers,
        shard=shard,
        grace_seconds=grace_seconds,
        batch_size=batch_size,
        flags={"resume": resume},
        progress=progress,
    )
    meta = client.meta
    definition = client.schema().table(table)
    idx = _index_def(definition, index)
    name = _plan_name(table, index)
    state, _ = index_state(meta, table, index)
    same = dict(
        workers=workers,
        shard=shard,
        grace_seconds=grace_seconds,
        progress=progress,
        batch_size=batch_size,
        rejects=rejects,
    )
    if resume and state == BUILDING and meta.load_doc(PLAN_DOC, name) is not None:
        return build_index(client, table, index, resume=True, **same)  # type: ignore[arg-type]
    _discard_plan(meta, name)
    if state != DISABLED:
        meta.set_state(table, index, DISABLED)
    _, since = index_state(meta, table, index)
    # Batches that began before DISABLED still write to the index table: let them finish
    # before it is dropped, or their entries would land in the new table or fail.
    _wait_grace(idx.path, since, grace_seconds)
    store = client.store
    store.delete_table(idx.hbase_table)
    try:
        store.create_table(idx.hbase_table, [INDEX_FAMILY], IndexKeys(definition, idx).split_keys())
    except StoreError:
        if not store.table_exists(idx.hbase_table):  # a concurrent rebuild made it: fine
            raise
    meta.set_state(table, index, BUILDING)
    return build_index(client, table, index, resume=False, **same)  # type: ignore[arg-type]


def plan_build(
    target: IndexTarget,
    since: int,
    shards: int,
    resume: bool,
    grace_seconds: float,
    workers: int,
    batch_size: int,
) -> tuple[BuildPlan, int]:
    """The plan under way, or a new one (after the grace period and the sweep).

    :return: ``(plan, entries the sweep repaired)``
    :raises SchemaError: a resume with another shard count than the plan under way, or a
        concurrent build or rebuild that made or removed the plan meanwhile
    """
    meta = target.meta
    plan = _load_plan(meta, target.name)
    if plan is not None and plan.since != since:
        log.info("%s: discarding a plan made before the index was last reset", target.path)
        _discard_plan(meta, target.name)
        plan = None
    if plan is not None and plan.shards != shards:
        if resume:
            raise SchemaError(
                f"{target.path}: the build under way has {plan.shards} shard(s); resume "
                f"it with shard=(i, {plan.shards}), or start over without resume"
            )
        log.warning(
            "%s: replacing a %d-shard build plan with a %d-shard one",
            target.path,
            plan.shards,
            shards,
        )
        _discard_plan(meta, target.name)
        plan = None
    if plan is not None:
        return plan, 0
    _wait_grace(target.path, since, grace_seconds)
    stale = _sweep(target, workers, batch_size)
    ranges = target.key_ranges(RANGES_PER_WORKER * workers * shards, batch_size)
    new = BuildPlan(uuid.uuid4().hex, since, shards, ranges)
    if meta.save_doc(PLAN_DOC, target.name, new.to_json(), create=True) is not None:
        log.info("%s: build plan of %d key ranges", target.path, len(ranges))
        return new, stale
    # Another shard made its plan first (after its own grace period and sweep): use it.
    winner = _load_plan(meta, target.name)
    if winner is None:
        raise SchemaError(f"{target.path}: the build plan vanished; a concurrent rebuild?")
    if winner.shards != shards or winner.since != since:
        raise SchemaError(
            f"{target.path}: a concurrent build made a plan with {winner.shards} shard(s)"
        )
    return winner, stale


def _sweep(target: IndexTarget, workers: int, batch_size: int) -> int:
    """Step 2: check the index table against its rows once, repairing; returns the repairs."""
    checker = RangeChecker(target, True, 0, SETTLE_SECONDS, batch_size)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="culvert-sweep") as pool:
        tasks = [checker.backward_task(b) for b in range(target.index.buckets)]
        _run_tasks(pool, tasks, None, 0, None)
    report = checker.report
    if report.repaired:
        log.info("%s: sweep repaired %d changeover entries", target.path, report.repaired)
    return report.repaired
