"""Index operations as Spark jobs: the build plan's key ranges become Spark partitions.

**Build.** The driver does what one ``culvert index build`` process does before its scan:
it checks the index is ``BUILDING``, waits the grace period, sweeps, and makes (or takes up)
the stored plan of :mod:`culvert_py.ops.plan`. Each range of the plan is then one Spark
task, which scans it into verified entries exactly as a build shard does
(:class:`~culvert_py.ops.builder.RangeBuilder`), saving the range's checkpoint after each batch.
A task is idempotent under Spark's retries and speculative duplicates:

- an attempt resumes after the range's checkpoint, and every entry it writes again is the
  same put at the same timestamp (at or below its row's version, so a later writer's delete
  still masks it);
- the driver, not the tasks, decides the build is complete: when every task of the job has
  succeeded it marks each range done and activates the index
  (:meth:`~culvert_py.ops.builder.RangeBuilder.finish`), so a duplicate still saving a stale
  checkpoint cannot hold the index back; a plan it writes under is deleted with the plan.

**Verify and repair.** Partitions are the primary table's key ranges (rows against entries)
and the index's salt buckets (entries against rows), the two halves of
:func:`~culvert_py.ops.verify_index`. Each task checks (and repairs) its part and returns
its counts; the driver adds them up. Repairs run the write protocol, so a retried task
repairs what is left and finds the rest clean.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields

from culvert_py.arguments import check_count, check_flag
from culvert_py.client import connect
from culvert_py.errors import SchemaError
from culvert_py.meta import ACTIVE, BUILDING
from culvert_py.ops.build import plan_build
from culvert_py.ops.builder import RangeBuilder
from culvert_py.ops.common import RANGES_PER_WORKER, IndexTarget, check_job_arguments, index_state
from culvert_py.ops.plan import RANGE_DOC, BuildPlan, Checkpoint
from culvert_py.ops.report import BuildReport, VerifyReport
from culvert_py.ops.verify import SETTLE_SECONDS, RangeChecker
from culvert_py.spark.session import check_url, executor_client

#: ``hook(partition, rows done so far)``, called in a task after each saved batch.
TaskHook = Callable[[int, int], None]


def build_index(
    spark,
    url: str,
    table: str,
    index: str,
    *,
    grace_seconds: float = 5.0,
    batch_size: int = 1000,
    partitions: int | None = None,
    on_batch: TaskHook | None = None,
) -> BuildReport:
    """Fill a ``BUILDING`` index as a Spark job, one task per key range of its plan.

    An ``ACTIVE`` index is left alone (a report of zero rows). A build interrupted on any
    scheduler (a Spark job, ``culvert index build``) continues from its checkpoints, as long
    as its plan has one shard.

    :param spark: a :class:`pyspark.sql.SparkSession`
    :param url: the store URL, as every executor reaches it
    :param table: the table name
    :param index: the index name
    :param grace_seconds: as for :func:`~culvert_py.ops.build_index`
    :param batch_size: rows per scan batch, index write and checkpoint
    :param partitions: key ranges to aim at; default ``4 ×`` Spark's default parallelism
    :param on_batch: called in each task as ``on_batch(range number, rows done)`` after each
        checkpointed batch (monitoring; tests fail a task on purpose with it)
    :return: a :class:`~culvert_py.ops.BuildReport` of the whole job (shard ``(0, 1)``),
        with ``tasks``: ``(range number, rows, entries, seconds)`` of each range's task
    :raises ArgumentError: a malformed argument, before anything is read
    :raises SchemaError: unknown table or index, an index that is ``DISABLED``, a build under
        way with several shards
    """
    url = check_url(url)
    workers = _workers(spark, partitions)
    check_job_arguments(table, index, grace_seconds=grace_seconds, batch_size=batch_size)
    started = time.monotonic()
    with connect(url, workers=4) as client, ThreadPoolExecutor(4) as pool:
        target = IndexTarget(client, table, index, pool)
        state, since = index_state(client.meta, table, index)
        if state == ACTIVE:
            return BuildReport(0, 0, time.monotonic() - started, (0, 1), ACTIVE)
        if state != BUILDING:
            raise SchemaError(
                f"{target.path}: the index is {state}, not {BUILDING}; rebuild it "
                f"(`culvert index rebuild {table} {index}`)"
            )
        # workers // RANGES_PER_WORKER: plan_build aims at RANGES_PER_WORKER ranges per worker.
        per = max(1, -(-workers // RANGES_PER_WORKER))
        plan, stale = plan_build(target, since, 1, True, grace_seconds, per, batch_size)
        task = _BuildTask(url, table, index, plan, batch_size, on_batch)
        numbers = list(range(len(plan.ranges)))
        rdd = spark.sparkContext.parallelize(numbers, max(1, len(numbers)))
        results = rdd.mapPartitions(task).collect()
        builder = RangeBuilder(target, plan, (0, 1), batch_size)
        _mark_done(target, builder, results)
        state_after = builder.finish()
    rows = sum(r[1] for r in results)
    entries = sum(r[2] for r in results)
    report = BuildReport(rows, entries, time.monotonic() - started, (0, 1), state_after, stale)
    report.tasks = results  # type: ignore[attr-defined]
    return report


def _workers(spark, partitions: int | None) -> int:
    if partitions is None:
        return RANGES_PER_WORKER * spark.sparkContext.defaultParallelism
    check_count("spark", "partitions", partitions, 1)
    return partitions


def _mark_done(target: IndexTarget, builder: RangeBuilder, results: list[tuple]) -> None:
    """Record every range the job built as done, above whatever a straggler saved."""
    docs = target.meta.load_docs(RANGE_DOC, builder.prefix)
    for number, rows, _entries, _seconds in results:
        name = builder._range_name(number)
        stored = Checkpoint.from_doc(name, docs.get(name))
        done = Checkpoint(name, stored.after, True, stored.rows or rows, stored.entries, stored.ts)
        builder._save(done)


class _BuildTask:
    """What each build partition runs: its ranges of the plan, resumed from checkpoints."""

    def __init__(
        self,
        url: str,
        table: str,
        index: str,
        plan: BuildPlan,
        batch_size: int,
        on_batch: TaskHook | None,
    ) -> None:
        self.url, self.table, self.index = url, table, index
        self.plan_json = plan.to_json()
        self.batch_size = batch_size
        self.on_batch = on_batch

    def __call__(self, numbers):
        client = executor_client(self.url)
        target = IndexTarget(client, self.table, self.index, client.executor)
        plan = BuildPlan.from_json(self.plan_json)
        builder = RangeBuilder(target, plan, (0, 1), self.batch_size)
        for number in numbers:
            started = time.perf_counter()
            name = builder._range_name(number)
            checkpoint = Checkpoint.from_doc(name, target.meta.load_doc(RANGE_DOC, name))
            before = builder.rows, builder.entries
            if not checkpoint.done:
                done = [checkpoint.rows]

                def report(n: int, number=number, done=done) -> None:
                    done[0] += n
                    if self.on_batch is not None:
                        self.on_batch(number, done[0])

                builder._build_range(number, checkpoint, threading.Event(), report)
            rows, entries = builder.rows - before[0], builder.entries - before[1]
            yield number, rows, entries, time.perf_counter() - started


def verify_index(
    spark,
    url: str,
    table: str,
    index: str,
    *,
    repair: bool = False,
    sample: int = 10,
    batch_size: int = 1000,
    settle_seconds: float = SETTLE_SECONDS,
    partitions: int | None = None,
) -> VerifyReport:
    """Check an index against its primary table as a Spark job; optionally repair it.

    Partitions: the primary table's key ranges (``partitions`` of them, default ``4 ×``
    Spark's default parallelism) plus one per salt bucket of the index.

    :param spark: a :class:`pyspark.sql.SparkSession`
    :param url: the store URL, as every executor reaches it
    :param table: the table name
    :param index: the index name
    :param repair: fix what is found (see :func:`~culvert_py.ops.verify_index`)
    :param sample: offending entries kept per kind (per task; the report keeps ``sample``)
    :param batch_size: rows or entries per scan batch
    :param settle_seconds: as for :func:`~culvert_py.ops.verify_index`
    :param partitions: primary key ranges to aim at
    :return: a :class:`~culvert_py.ops.VerifyReport` summed over the tasks
    :raises ArgumentError: a malformed argument, before anything is read
    :raises SchemaError: unknown table or index
    """
    url = check_url(url)
    wanted = _workers(spark, partitions)
    check_job_arguments(table, index, batch_size=batch_size, flags={"repair": repair})
    check_flag(f"{table}.{index}", "repair", repair)
    started = time.monotonic()
    with connect(url, workers=4) as client, ThreadPoolExecutor(4) as pool:
        target = IndexTarget(client, table, index, pool)
        ranges = target.key_ranges(wanted, batch_size)
        parts = [("rows", r) for r in ranges]
        parts += [("entries", b) for b in range(target.index.buckets)]
    task = _CheckTask(url, table, index, repair, sample, batch_size, settle_seconds)
    rdd = spark.sparkContext.parallelize(parts, len(parts))
    reports = rdd.mapPartitions(task).collect()
    total = _sum(reports, sample)
    total.seconds = time.monotonic() - started
    return total


def repair_index(spark, url: str, table: str, index: str, **options) -> VerifyReport:
    """:func:`verify_index` with ``repair=True``; the same parameters otherwise."""
    return verify_index(spark, url, table, index, repair=True, **options)


class _CheckTask:
    """What each verify partition runs: one key range of rows, or one bucket of entries."""

    def __init__(self, url, table, index, repair, sample, batch_size, settle_seconds) -> None:
        self.url, self.table, self.index = url, table, index
        self.repair, self.sample = repair, sample
        self.batch_size, self.settle_seconds = batch_size, settle_seconds

    def __call__(self, parts):
        client = executor_client(self.url)
        for kind, where in parts:
            target = IndexTarget(client, self.table, self.index, client.executor)
            checker = RangeChecker(
                target, self.repair, self.sample, self.settle_seconds, self.batch_size
            )
            task = checker.forward_task(where) if kind == "rows" else checker.backward_task(where)
            task(threading.Event(), lambda n: None)
            checker.report.bad_cells = dict(target.bad_cells.counts)
            yield checker.report


def _sum(reports: list[VerifyReport], sample: int) -> VerifyReport:
    """One report of many: counts added, samples and bad-cell counts merged."""
    total = VerifyReport()
    for report in reports:
        for f in fields(VerifyReport):
            value = getattr(report, f.name)
            if isinstance(value, int):
                setattr(total, f.name, getattr(total, f.name) + value)
        for kind, keys in report.samples.items():
            kept = total.samples.setdefault(kind, [])
            kept += keys[: max(0, sample - len(kept))]
        for column, n in report.bad_cells.items():
            total.bad_cells[column] = total.bad_cells.get(column, 0) + n
    return total
