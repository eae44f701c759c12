"""A query's answer as a Spark DataFrame, one partition per salt bucket or key range.

The driver plans the query with culvert_py's planner (:meth:`IndexedTable.plan`), exactly
as :meth:`~culvert_py.table.IndexedTable.query` would, then cuts the plan's source into
pieces that partition its rows:

- an index scan into one piece per key range and salt bucket (ranges are disjoint and a
  row's entry lies in one bucket, so every row comes from exactly one piece);
- an intersection into the pieces of its driving scan (each piece keeps every probe);
- a full scan into the primary table's key ranges (see :mod:`culvert_py.ops.ranges`);
- a union (OR) into the pieces of each branch; a piece of branch *i* keeps the earlier
  branches' predicates (their sources emptied), so the executor still drops a row an
  earlier branch returns, as it does without Spark.

Each piece is one Spark task: the executor process runs the cut plan with the ordinary
:class:`~culvert_py.query.executor.QueryExecutor` (its residual check, consistency check
and covered reads unchanged) on its own pooled client.
"""

from __future__ import annotations

from dataclasses import replace

from culvert_py.arguments import check_columns, check_name
from culvert_py.client import connect
from culvert_py.layout import version_column
from culvert_py.ops.ranges import split_key_ranges
from culvert_py.query.executor import QueryExecutor
from culvert_py.query.plan import (
    Empty,
    FullScan,
    IndexScan,
    Intersect,
    KeyRange,
    Plan,
    Source,
    Union,
)
from culvert_py.spark.rows import spark_schema
from culvert_py.spark.session import check_url, executor_client
from culvert_py.store.base import Region

#: Key ranges a full scan aims at per unit of Spark's default parallelism.
RANGES_PER_CORE = 4
#: Rows a region must have before a full scan splits it further.
SPLIT_SAMPLE = 1000

#: A piece of a plan: its source, and for a full scan the primary key bounds it reads.
Piece = tuple[Source, tuple[bytes, bytes] | None]


def read(spark, url: str, table: str, where=None, columns=None):
    """The rows of ``table`` matching ``where``, as a DataFrame computed by Spark tasks.

    The query is planned once, on the driver, by culvert_py's planner (indexes, ranges,
    intersections, unions, residual predicate); Spark only runs the pieces. Columns get
    the Spark types of :data:`~culvert_py.spark.rows.SPARK_TYPES`; datetimes are UTC.
    The DataFrame is lazy: each action reads the store again.

    :param spark: a :class:`pyspark.sql.SparkSession`
    :param url: the store URL, as every executor reaches it
    :param table: the table name
    :param where: a predicate or its text form, as :meth:`IndexedTable.query` takes it
    :param columns: the columns to return (default: all, in schema order)
    :return: a :class:`pyspark.sql.DataFrame`
    :raises ArgumentError: a malformed argument
    :raises SchemaError: an unknown table
    :raises QueryError: unknown columns, type mismatches, syntax errors (from the planner)
    """
    url = check_url(url)
    check_name("spark.read", table)
    columns = check_columns(table, columns)
    with connect(url, workers=4) as client:
        target = client.table(table)
        plan = target.plan(where, columns)
        wanted = RANGES_PER_CORE * spark.sparkContext.defaultParallelism
        pieces = _pieces(plan.source, lambda: _primary_ranges(client, plan, wanted))
    names = list(plan.columns or plan.table.columns)
    schema = spark_schema(plan.table, names)
    if not pieces:
        return spark.createDataFrame([], schema)
    task = _ReadTask(url, plan, names)
    rdd = spark.sparkContext.parallelize(pieces, len(pieces)).mapPartitions(task)
    return spark.createDataFrame(rdd, schema)


def _primary_ranges(client, plan: Plan, wanted: int) -> list[tuple[bytes, bytes]]:
    definition = plan.table
    store = client.store
    regions = store.regions(definition.hbase_table)
    probe = None if definition.existing else version_column(definition)
    primary = store.table(definition.hbase_table)
    return split_key_ranges(regions, primary, probe, wanted, SPLIT_SAMPLE)


def _pieces(source: Source, primary_ranges) -> list[Piece]:
    """The pieces of a plan's source (see the module docstring)."""
    match source:
        case Empty():
            return []
        case IndexScan(ranges=ranges):
            return [
                (replace(source, ranges=[KeyRange(r.start, r.stop, [b], r.text)]), None)
                for r in ranges
                for b in r.buckets
            ]
        case Intersect(driver=driver):
            return [(replace(source, driver=d), None) for d, _ in _pieces(driver, primary_ranges)]
        case FullScan():
            return [(source, bounds) for bounds in primary_ranges()]
        case Union(branches=branches):
            out: list[Piece] = []
            for number, branch in enumerate(branches):
                # Earlier branches keep their predicates (the executor drops what they
                # return) but read nothing here: they have pieces of their own.
                earlier = [
                    replace(b, source=Empty("read by its own pieces")) for b in branches[:number]
                ]
                for piece, bounds in _pieces(branch.source, primary_ranges):
                    cut = [*earlier, replace(branch, source=piece)]
                    out.append((replace(source, branches=cut), bounds))
            return out
    raise AssertionError(source)


class _RangeStore:
    """A store whose primary table seems to be one region: ``bounds``.

    The executor's full scan reads every region of the primary table; this view makes it
    read one key range, so that a full scan is partitioned without a second scan path.
    """

    def __init__(self, store, primary: str, bounds: tuple[bytes, bytes]) -> None:
        self._store = store
        self._primary = primary
        self._bounds = bounds

    def regions(self, name: str) -> list[Region]:
        """One region for the primary table; the real regions of any other."""
        if name == self._primary:
            return [Region(*self._bounds)]
        return self._store.regions(name)

    def __getattr__(self, name: str):
        return getattr(self._store, name)


class _ReadTask:
    """What each read partition runs: its pieces of the plan, as tuples in column order."""

    def __init__(self, url: str, plan: Plan, names: list[str]) -> None:
        self.url = url
        self.plan = plan
        self.names = names

    def __call__(self, pieces):
        client = executor_client(self.url)
        definition = self.plan.table
        for source, bounds in pieces:
            store = client.store
            if bounds is not None:
                store = _RangeStore(store, definition.hbase_table, bounds)
            executor = QueryExecutor(store, definition, client.executor)
            for row in executor.run(replace(self.plan, source=source)):
                yield tuple(row.get(name) for name in self.names)
