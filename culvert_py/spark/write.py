"""Writing a Spark DataFrame into an indexed table, partition by partition.

Each partition is one task: it types its rows by the table's schema (see
:mod:`culvert_py.spark.rows`) and writes them through the write protocol with
:meth:`~culvert_py.table.IndexedTable.write_batches`, on the client of its executor process
(:func:`~culvert_py.spark.session.executor_client`). A bad row becomes a reject with its
reason and never fails the task. A task Spark retries writes its rows again: the protocol
makes a repeated write of the same values a no-op for every reader, and ``bulk`` mode still
finds the keys the failed attempt wrote and writes those safely, so retries and speculative
duplicates converge to the same table.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from culvert_py.arguments import check_count, check_name
from culvert_py.client import DEFAULT_BATCH_SIZE, connect
from culvert_py.errors import ArgumentError
from culvert_py.load.records import Reject
from culvert_py.schema import TableDef
from culvert_py.spark.rows import RowTyper, reject_text
from culvert_py.spark.session import check_url, executor_client
from culvert_py.store.base import chunks

#: Write modes: the full protocol, or the loader's bulk mode for mostly new keys.
MODES = ("safe", "bulk")
#: Schema of the rejects DataFrame.
REJECTS_SCHEMA = "partition int, row string, reason string"


@dataclass
class TaskFigures:
    """What one partition's task did (of its successful attempt).

    :ivar partition: the partition number
    :ivar rows: Spark rows read
    :ivar written: distinct keys written
    :ivar rejected: rows rejected
    :ivar existed: keys bulk mode found holding a row (written safely)
    :ivar seconds: the task's wall time
    :ivar pid: the executor process that ran it
    """

    partition: int
    rows: int
    written: int
    rejected: int
    existed: int
    seconds: float
    pid: int


@dataclass
class WriteReport:
    """What :func:`write` did.

    :ivar rows: rows of the DataFrame
    :ivar written: keys written (distinct per batch)
    :ivar rejected: bad rows, each with its reason in :attr:`rejects`
    :ivar existed: keys bulk mode found already holding a row
    :ivar seconds: wall time of the job
    :ivar tasks: one :class:`TaskFigures` per partition
    :ivar rejects: a DataFrame ``(partition, row, reason)`` of the bad rows, materialised
        (reading it never writes again)
    :ivar rejects_path: where the rejects were written as JSON, when asked
    """

    rows: int
    written: int
    rejected: int
    existed: int
    seconds: float
    tasks: list[TaskFigures] = field(default_factory=list)
    rejects: object = None
    rejects_path: str | None = None

    @property
    def rows_per_second(self) -> float:
        """Rows per second of wall time."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for humans."""
        where = f"; rejects in {self.rejects_path}" if self.rejects_path and self.rejected else ""
        existed = f" ({self.existed:,} existed)" if self.existed else ""
        return (
            f"read {self.rows:,} / loaded {self.written:,}{existed} / rejected "
            f"{self.rejected:,} / {self.seconds:.2f} s / {self.rows_per_second:,.0f} rows/s "
            f"in {len(self.tasks)} Spark task(s){where}"
        )


def write(
    df,
    url: str,
    table: str,
    mode: str = "safe",
    *,
    rejects: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[int, int], None] | None = None,
) -> WriteReport:
    """Write a DataFrame's rows into ``table`` by the write protocol, one task per partition.

    Columns are the table's (by name; a subset is a partial update, the row-key columns are
    required); values are typed by the schema, strings by the CSV rules. Bad rows never fail
    the job: they come back in :attr:`WriteReport.rejects` with their reasons.

    :param df: a :class:`pyspark.sql.DataFrame`
    :param url: the store URL, as every executor reaches it
    :param table: the table name
    :param mode: ``"safe"`` (the full protocol) or ``"bulk"`` (fast for new keys, still
        exact for existing ones; see :meth:`~culvert_py.table.IndexedTable.put_many`)
    :param rejects: also write the rejects as JSON files under this path (overwritten)
    :param batch_size: rows per write batch (one store call per protocol step per batch)
    :param on_batch: called in the task as ``on_batch(partition, batch number)`` after each
        batch is written (a hook for monitoring, or for tests that fail a task on purpose)
    :return: a :class:`WriteReport`
    :raises ArgumentError: a malformed argument, before anything is written
    :raises SchemaError: an unknown table, a DataFrame column the table lacks, a missing
        row-key column, or a column whose Spark type cannot hold its values
    """
    url = check_url(url)
    check_name("spark.write", table)
    if mode not in MODES:
        raise ArgumentError(f"{table}: mode={mode!r:.60}: expected one of {', '.join(MODES)}")
    check_count(table, "batch_size", batch_size, 1)
    if rejects is not None and (not isinstance(rejects, str) or not rejects):
        raise ArgumentError(f"{table}: rejects={rejects!r:.60}: expected a path or None")
    if on_batch is not None and not callable(on_batch):
        raise ArgumentError(f"{table}: on_batch={on_batch!r:.60}: expected a callable or None")
    from pyspark import StorageLevel

    started = time.monotonic()
    with connect(url, workers=1) as client:
        definition = client.table(table).definition
    fields = [(f.name, f.dataType.simpleString()) for f in df.schema.fields]
    RowTyper(definition, fields)  # refuses a DataFrame every row of which would fail
    task = _WriteTask(url, definition, fields, mode == "bulk", batch_size, on_batch)
    out = df.rdd.mapPartitionsWithIndex(task).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        tasks = [TaskFigures(*item[1:]) for item in out.filter(_is_done).collect()]
        spark = df.sparkSession
        bad = spark.createDataFrame(out.filter(_is_reject).map(lambda r: r[1:]), REJECTS_SCHEMA)
        # Cut the lineage: reading the rejects later must not run the writes again.
        bad = bad.localCheckpoint(eager=True)
    finally:
        out.unpersist()
    report = WriteReport(
        rows=sum(t.rows for t in tasks),
        written=sum(t.written for t in tasks),
        rejected=sum(t.rejected for t in tasks),
        existed=sum(t.existed for t in tasks),
        seconds=0.0,
        tasks=sorted(tasks, key=lambda t: t.partition),
        rejects=bad,
    )
    if rejects is not None:
        bad.write.mode("overwrite").json(rejects)
        report.rejects_path = rejects
    report.seconds = time.monotonic() - started
    return report


def _is_done(item: tuple) -> bool:
    return item[0] == "done"


def _is_reject(item: tuple) -> bool:
    return item[0] == "reject"


class _WriteTask:
    """The function each partition runs (pickled to the executors with what it needs)."""

    def __init__(
        self,
        url: str,
        definition: TableDef,
        fields: list[tuple[str, str]],
        bulk: bool,
        batch_size: int,
        on_batch: Callable[[int, int], None] | None,
    ) -> None:
        self.url = url
        self.definition = definition
        self.fields = fields
        self.bulk = bulk
        self.batch_size = batch_size
        self.on_batch = on_batch

    def __call__(self, partition: int, rows: Iterator) -> Iterator[tuple]:
        started = time.perf_counter()
        target = executor_client(self.url).table(self.definition.name)
        typer = RowTyper(self.definition, self.fields)
        bad: list[tuple] = []
        seen = [0, 0]  # rows read, keys bulk mode found existing

        def batches() -> Iterator[dict]:
            for chunk in chunks(rows, self.batch_size):
                changes: dict[bytes, dict] = {}
                for spark_row in chunk:
                    values = spark_row.asDict()
                    seen[0] += 1
                    try:
                        pk, row = typer.row(values)
                    except Reject as exc:
                        bad.append(("reject", partition, reject_text(values), str(exc)))
                        continue
                    if pk in changes:
                        changes[pk].update(row)  # later rows win, as in put_many
                    else:
                        changes[pk] = row
                yield changes

        def written(number: int, existed: int) -> None:
            seen[1] += existed
            if self.on_batch is not None:
                self.on_batch(partition, number)

        count = target.write_batches(batches(), bulk=self.bulk, on_written=written)
        yield from bad
        seconds = time.perf_counter() - started
        yield ("done", partition, seen[0], count, len(bad), seen[1], seconds, os.getpid())
