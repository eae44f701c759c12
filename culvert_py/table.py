"""One indexed table: rows in, rows out, every index kept consistent on the way.

:class:`IndexedTable` is what :meth:`culvert_py.client.Client.table` hands out; it holds the
table's definition, index states and writer for the current schema generation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, NamedTuple

from culvert_py.ageoff import AgeOffReport, age_off
from culvert_py.arguments import check_columns, check_count, check_flag, check_iterable
from culvert_py.encoding import encode_value
from culvert_py.errors import ArgumentError, EncodingError, SchemaError
from culvert_py.expiry import alive, expiry_cells, live_rows
from culvert_py.layout import decode_row, encode_key, primary_key, stored_columns, version_column
from culvert_py.load.job import load_dataframe
from culvert_py.meta import ACTIVE, DISABLED
from culvert_py.query.aggregate_api import AggregateMethods
from culvert_py.query.executor import QueryExecutor, QueryResult
from culvert_py.query.explain import explain_lines, plan_structure
from culvert_py.query.plan import Plan
from culvert_py.query.planner import Planner
from culvert_py.query.probe import Prober
from culvert_py.schema import IndexDef, TableDef
from culvert_py.stats.keeper import StatsKeeper
from culvert_py.store.base import CAP_CHECK_AND_MUTATE, CAP_SERVER_FILTER, chunks
from culvert_py.write import IndexWriter

#: Rows per write batch: one store call per protocol step per batch.
DEFAULT_BATCH_SIZE = 1000

#: Seconds a query may plan with the schema it last read before checking the generation.
QUERY_SCHEMA_MAX_AGE = 1.0


class Explanation(NamedTuple):
    """What :meth:`IndexedTable.explain` returns: the plan as text and as plain dicts."""

    text: str
    plan: dict

    def __str__(self) -> str:
        return self.text


class IndexedTable(AggregateMethods):
    """A primary table and its indexes; every write keeps the indexes consistent.

    Rows are plain dicts of typed values (``int``, ``float``, ``str``, ``bytes``, ``bool``,
    aware ``datetime``); a missing or ``None`` column is NULL. Keys are the row-key value (a
    scalar for a one-column row key, a tuple otherwise) or a row dict.
    """

    def __init__(self, client: Any, name: str) -> None:
        # ``client`` is the Client that made this table (its store, meta, pools): duck-typed,
        # since the client module sits above this one.
        self.client = client
        self.store = client.store
        self.name = name
        self._lock = threading.Lock()
        self._generation = -1
        self._checked = 0.0
        self._load()

    # -- schema and index states ---------------------------------------------------------

    def _load(self) -> None:
        generation, schema, states = self.client.meta.load()
        if schema is None:
            raise SchemaError(
                f"no schema applied to {self.store.url}; run `culvert schema apply FILE`"
            )
        definition = schema.table(self.name)
        self.definition: TableDef = definition
        self.states: dict[str, str] = {
            i: states.get((self.name, i), ACTIVE) for i in definition.indexes
        }
        maintained = [i for name, i in definition.indexes.items() if self.states[name] != DISABLED]
        self._writer = IndexWriter(
            self.store,
            definition,
            maintained,
            self.client.executor,
            conditional=CAP_CHECK_AND_MUTATE in self.store.capabilities,
            clock=self.client.clock,
        )
        self._primary = self.store.table(definition.hbase_table)
        self._generation = generation
        client = self.client
        auto = getattr(client, "auto_stats", True)
        self._keeper = StatsKeeper(client.meta, self.store, definition, client.executor, auto)

    def refresh(self, max_age: float = 0.0) -> None:
        """Re-read the schema and index states if another client changed them.

        :param max_age: skip the check (one small read) when the last one is younger than
            this many seconds; writers pass 0 (they must see a new BUILDING index at their
            next batch), queries a second (a plan using a just-disabled index fails loudly,
            it never returns wrong rows)
        """
        now = time.monotonic()
        if max_age and now - self._checked < max_age:
            return
        self._checked = now
        if self.client.meta.generation() != self._generation:
            with self._lock:
                self._load()

    @property
    def writer(self) -> IndexWriter:
        """The :class:`IndexWriter` for the current schema generation."""
        return self._writer

    # -- writes --------------------------------------------------------------------------

    def put(self, row: Mapping[str, object]) -> None:
        """Insert or update one row (see :meth:`put_many`).

        :param row: a row dict with every row-key column
        :raises ArgumentError: when ``row`` is not a dict (a list, a string, ...)
        """
        if not isinstance(row, Mapping):
            raise ArgumentError(
                f"{self.name}: put: expected a row dict of column values, got "
                f"{type(row).__name__} {row!r:.60} (several rows: put_many)"
            )
        self.put_many([row])

    def put_many(
        self,
        rows: Iterable[Mapping[str, object]],
        bulk: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> int:
        """Insert or update rows, keeping every index consistent.

        A row updates only the columns it names (``None`` sets a column to NULL); columns it
        leaves out keep their values. Several rows with one key in a batch merge in order.

        :param rows: row dicts, each with every row-key column
        :param bulk: fast when the keys are new, still exact when they are not: per batch,
            one read of the rows' version cells (instead of their indexed values) finds the
            keys that already hold a row; those take the full protocol, the new ones skip
            the per-row version check. Meant for loads: it assumes no other writer creates
            the same keys meanwhile. Rows that existed are logged (INFO)
        :param batch_size: rows per batch (one store call per step per batch)
        :return: the number of rows written
        :raises ArgumentError: when ``rows`` is not an iterable of dicts (checked per batch,
            before the batch is sent), or for a malformed ``bulk`` or ``batch_size``
        :raises SchemaError: for an unknown column
        :raises EncodingError: for a value of the wrong type, a missing row-key column, or a
            row or index entry key longer than :data:`~culvert_py.layout.MAX_KEY_BYTES`
        """
        check_iterable(self.name, "put_many", "rows", rows, "row dicts", "put(row)")
        check_flag(self.name, "bulk", bulk)
        check_count(self.name, "batch_size", batch_size, 1)

        known = self.definition.columns

        def changes_of(batch: list) -> dict[bytes, dict | None]:
            changes: dict[bytes, dict | None] = {}
            for row in batch:
                if type(row) is not dict and not isinstance(row, Mapping):  # a dict: no ABC check
                    raise ArgumentError(
                        f"{self.name}: put_many: expected row dicts, got "
                        f"{type(row).__name__} {row!r:.60}"
                    )
                # Checked here, not when the row is encoded: by then the batch's new index
                # entries are already written (unverified, harmless, but a change).
                if not known.keys() >= row.keys():
                    unknown = [c for c in row if c not in known]
                    raise SchemaError(
                        f"{self.name}: unknown column {unknown[0]!r} (known: {', '.join(known)})"
                    )
                pk = primary_key(self.definition, row)
                merged = changes.get(pk) or {}
                merged.update(row)
                changes[pk] = merged
            return changes

        return self.write_batches(map(changes_of, chunks(rows, batch_size)), bulk)

    def put_dataframe(self, data: object, **options: Any):
        """Write a pandas DataFrame or Arrow table as a Parquet load does: typed per column,
        bad rows to a rejects file, checkpoints, progress (options and errors: see
        :func:`~culvert_py.load.job.load_dataframe`); returns its :class:`LoadReport`.

        :param data: a ``pandas.DataFrame`` or ``pyarrow.Table`` whose columns name columns
        """
        return load_dataframe(self, data, **options)

    def delete(self, key: object) -> None:
        """Delete one row by key (a no-op for an absent row).

        :param key: the row-key value, a tuple for a composite key, or a row dict
        :raises ArgumentError: for a key of the wrong form or type
        """
        self.delete_many([key])

    def delete_many(self, keys: Iterable[object], batch_size: int = DEFAULT_BATCH_SIZE) -> int:
        """Delete rows by key, removing their index entries.

        :param keys: keys as :meth:`delete` takes them
        :param batch_size: keys per batch
        :return: the number of keys processed
        :raises ArgumentError: for a malformed key (checked per batch, before the batch is
            sent) or ``batch_size``, or ``keys`` that is a string or a dict
        """
        check_iterable(self.name, "delete_many", "keys", keys, "keys", "delete(key)")
        check_count(self.name, "batch_size", batch_size, 1)
        batches = (
            {encode_key(self.definition, k): None for k in batch}
            for batch in chunks(keys, batch_size)
        )
        return self.write_batches(batches)

    def write_batches(
        self,
        batches: Iterable[Mapping[bytes, dict | None]],
        bulk: bool = False,
        on_written: Callable[[int, int], None] | None = None,
    ) -> int:
        """Write batches of changes by the protocol, several in flight at once.

        While one batch waits on HBase, the next is encoded and sent: the window holds up to
        ``client.pipeline_depth`` batches not yet reported, and waits for the oldest when it
        is full. A batch that shares a key with one in flight waits for it, so changes given
        later still win, as in a serial write. The schema is re-read before each batch, so a
        new BUILDING index is maintained from the next batch on.

        Every batch sent is waited for before the call returns or raises: no write runs on
        behind the caller. The first error (of a batch, of ``batches`` or of ``on_written``)
        is the one raised, with its type, so callers catch what they always caught; the
        failures of the other batches in flight are attached to it as notes
        (:meth:`BaseException.add_note`), never dropped.

        :param batches: ``{primary key: partial row, or None to delete}`` dicts, one per
            batch, as :meth:`~culvert_py.write.IndexWriter.write` takes them; an empty one is
            reported in its turn, not sent
        :param bulk: bulk mode for every batch (see :meth:`put_many`)
        :param on_written: called as ``on_written(number, existed)`` in the caller's thread
            once batch ``number`` (0-based) and every batch before it are written; ``existed``
            is how many of its keys bulk mode found holding a row (0 without ``bulk``). For
            checkpoints: a batch reported is durable, and so is everything before it
        :return: the number of keys written (distinct keys per batch)
        :raises ArgumentError: for ``batches`` that is not an iterable of dicts, a malformed
            ``bulk``, or an ``on_written`` that is not callable
        :raises StoreError: when the store fails (after retries)
        :raises EncodingError: for a value of the wrong type, or an oversized key
        :raises ConsistencyError: when rows kept changing under the writer
        """
        check_iterable(self.name, "write_batches", "batches", batches, "change dicts", "[changes]")
        check_flag(self.name, "bulk", bulk)
        if on_written is not None and not callable(on_written):
            raise ArgumentError(
                f"{self.name}: write_batches: on_written={on_written!r:.60}: expected a "
                "callable or None"
            )
        window: list[tuple[int, set, Future | None]] = []  # oldest first

        def report(number: int, future: Future | None) -> None:
            existed = future.result() if future is not None else 0
            if on_written is not None:
                on_written(number, existed)

        count = 0
        try:
            for number, changes in enumerate(batches):
                if not isinstance(changes, Mapping):
                    raise ArgumentError(
                        f"{self.name}: write_batches: batch {number}: expected a dict of "
                        f"changes by primary key, got {type(changes).__name__} {changes!r:.60}"
                    )
                keys = set(changes)
                for _, other_keys, future in window:
                    # Wait for a batch writing the same keys; surface a failed batch before
                    # sending more.
                    if future is not None and (future.done() or not keys.isdisjoint(other_keys)):
                        future.result()
                while len(window) >= self.client.pipeline_depth:
                    oldest, _, future = window.pop(0)
                    report(oldest, future)
                future = None
                if changes:
                    self.refresh()
                    writer = self._writer
                    future = self.client.batch_executor.submit(writer.write, changes, bulk)
                window.append((number, keys, future))
                count += len(changes)
                while window and (window[0][2] is None or window[0][2].done()):
                    oldest, _, future = window.pop(0)
                    report(oldest, future)
            while window:
                oldest, _, future = window.pop(0)
                report(oldest, future)
        except BaseException as exc:
            for number, _, future in window:
                error = future.exception() if future is not None else None
                if error is not None and error is not exc:
                    exc.add_note(f"batch {number} failed too: {type(error).__name__}: {error}")
            raise
        self._keeper.written(count)  # may collect statistics again (see StatsKeeper)
        return count

    # -- queries -------------------------------------------------------------------------

    def query(
        self,
        where: object = None,
        columns: Sequence[str] | None = None,
        order_by: str | tuple[str, bool] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        use_index: str | None = None,
    ) -> QueryResult:
        """Rows matching ``where``, through the cheapest plan (parallel index scans).

        :param where: a predicate (``col("age") >= 30``), its text form
            (``"age >= 30 AND city = 'Oslo'"``), or ``None`` for every row
        :param columns: columns to return (default: all)
        :param order_by: a column, or ``(column, descending)``. One order whatever the plan:
            NULL is the smallest value (ascending: NULLs first; descending: NULLs last) and
            ties are broken by the row key ascending (byte order of the encoded primary key),
            so ``limit`` and cursors give the same rows on every plan. Served by an index when
            its key order is exactly that, else sorted client-side
        :param limit: at most this many rows
        :param cursor: ``result.cursor`` of a previous page of the same query
        :param use_index: force an ACTIVE index by name, or ``"NO_INDEX"`` for a full scan
        :return: a lazy iterator of row dicts; its ``cursor`` resumes after the last row
            returned (``None`` when nothing is left)
        :raises QueryError: unknown columns, type mismatches, syntax errors, bad cursors, a
            forced index that is not ACTIVE (it would miss rows)
        """
        plan = self.plan(where, columns, order_by, limit, use_index)
        pool, clock = self.client.executor, self.client.clock
        return QueryExecutor(self.store, self.definition, pool, clock).run(plan, cursor)

    def plan(self, where=None, columns=None, order_by=None, limit=None, use_index=None) -> Plan:
        """The :class:`~culvert_py.query.planner.Plan` :meth:`query` would run.

        :raises ArgumentError: for a malformed argument (``columns="id"``, ``limit=-1``, ...)
        :raises QueryError: unknown columns or index, type mismatches, syntax errors
        """
        self.refresh(max_age=QUERY_SCHEMA_MAX_AGE)
        if isinstance(use_index, str) and self.states.get(use_index, ACTIVE) != ACTIVE:
            self.refresh()  # a forced index must be ACTIVE: refuse on fresh states only
        prober = Prober(self.store, self.client.executor, getattr(self.client, "probe_cache", None))
        return Planner(
            self.definition,
            self.states,
            self._keeper.fresh(),
            CAP_SERVER_FILTER in self.store.capabilities,
            prober,
        ).plan(where, columns, order_by, limit, use_index)

    def explain(
        self,
        where: object = None,
        columns: Sequence[str] | None = None,
        order_by: str | tuple[str, bool] | None = None,
        limit: int | None = None,
        use_index: str | None = None,
        analyze: bool = False,
    ) -> Explanation:
        """Explain the plan of a query: access path, index, key ranges, buckets, estimates.

        :param analyze: also run the query and report actual rows, RPCs and time per node
        :return: ``Explanation(text, plan)``: a readable tree and the same as plain dicts
        :raises ArgumentError: for a malformed argument (as :meth:`query`)
        :raises QueryError: as :meth:`query`
        """
        check_flag(self.name, "analyze", analyze)
        plan = self.plan(where, columns, order_by, limit, use_index)
        if analyze:
            pool, clock = self.client.executor, self.client.clock
            for _ in QueryExecutor(self.store, self.definition, pool, clock).run(plan):
                pass
        return Explanation("\n".join(explain_lines(plan, analyze)), plan_structure(plan))

    def stats(self):
        """The table's stored statistics (cached until :meth:`refresh_stats` or a schema change)."""
        return self._keeper.current()

    def refresh_stats(self):
        """Collect statistics of the table and its indexes now (a scan of each) and save them."""
        return self._keeper.refresh()

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: object, columns: Sequence[str] | None = None) -> dict | None:
        """The row with ``key``, or ``None``.

        :param key: the row-key value, a tuple for a composite key, or a row dict
        :param columns: only these columns (default: all)
        :raises ArgumentError: for a key of the wrong form or type, or ``columns`` that is
            not a list of names
        :raises SchemaError: for an unknown column
        """
        return self.get_many([key], columns)[0]

    def get_many(self, keys: Iterable[object], columns: Sequence[str] | None = None) -> list:
        """Rows for ``keys`` in the same order, ``None`` for absent ones; batched reads.

        :raises ArgumentError: as :meth:`get`, or ``keys`` that is a string or a dict
        :raises SchemaError: for an unknown column
        """
        check_iterable(self.name, "get_many", "keys", keys, "keys", "get(key)")
        columns = check_columns(self.name, columns)
        pks = [encode_key(self.definition, k) for k in keys]
        return self._fetch(pks, columns)

    def _fetch(self, pks: list[bytes], columns: Sequence[str] | None = None) -> list:
        cols = None
        if columns is not None:
            for c in columns:
                self.definition.column_type(c)
            cols = stored_columns(self.definition, columns)
            cols += [version_column(self.definition), *expiry_cells(self.definition)]
        found = self._primary.get_many(pks, columns=cols)
        return live_rows(self.definition, found, pks, self.client.clock(), columns)

    def scan_rows(self, batch_size: int = 1000) -> Iterator[dict]:
        """Every live row of the primary table, in row-key order (a full scan).

        :raises ArgumentError: for ``batch_size`` below 1 (when iteration starts)
        """
        check_count(self.name, "batch_size", batch_size, 1)
        now = self.client.clock()
        for pk, cells in self._primary.scan(batch_size=batch_size):
            row = alive(self.definition, decode_row(self.definition, cells, pk=pk), cells, now)
            if row is not None:
                yield row

    def lookup(self, index: str, *values: object, covered: bool = False) -> list[dict]:
        """Rows whose indexed values start with ``values``, through ``index`` only.

        A query forced onto one index (the same executor as :meth:`query`): every entry is
        checked against its current primary row; with ``covered=True`` only the row key,
        indexed and included columns are returned, and verified entries are answered from
        the index alone. ``None`` looks up NULLs; a text index takes one word.

        :param index: the index name
        :param values: leading values of the indexed columns (a word for a text index)
        :raises ArgumentError: for no values, more values than the index has columns, a
            value its column cannot hold, or a text index given anything but one str word
        :raises SchemaError: for an unknown index
        """
        from culvert_py.predicate import And, Contains, col

        if not isinstance(index, str):
            raise ArgumentError(f"{self.name}: lookup: index={index!r:.60}: expected an index name")
        check_flag(self.name, "covered", covered)
        idx = self.index(index)
        _check_lookup_values(idx, values, self.definition)
        if idx.kind == "text":
            parts = [Contains(idx.columns[0], str(values[0]))]
        else:
            parts = [
                col(c).is_null() if v is None else col(c) == v
                for c, v in zip(idx.columns, values, strict=False)
            ]
        if idx.where:
            from culvert_py.predicate import parse

            parts.append(parse(idx.where, dict(self.definition.columns)))
        where = parts[0] if len(parts) == 1 else And(tuple(parts))
        columns = None
        if covered:
            columns = [c for c in self.definition.columns if c in self._covered_columns(idx)]
        return list(self.query(where, columns=columns, use_index=index))

    def age_off(self, dry_run: bool = False, workers: int = 8) -> AgeOffReport:
        """Remove the rows past the table's lifespan through the write protocol: see
        :func:`culvert_py.ageoff.age_off` (parameters, report, errors)."""
        return age_off(self, dry_run=dry_run, workers=workers)

    def _covered_columns(self, idx: IndexDef) -> set[str]:
        """Columns a covered read of ``idx`` returns: row key, indexed (not for text), included."""
        names = set(self.definition.row_key) | set(idx.include)
        return names if idx.kind == "text" else names | set(idx.columns)

    def index(self, name: str) -> IndexDef:
        """The definition of index ``name`` of this table.

        :raises SchemaError: for an index the table does not have, naming the known ones
        """
        try:
            return self.definition.indexes[name]
        except KeyError as exc:
            known = ", ".join(self.definition.indexes) or "none"
            raise SchemaError(f"{self.name}: unknown index {name!r} (known: {known})") from exc


def _check_lookup_values(index: IndexDef, values: tuple, table: TableDef) -> None:
    if index.kind == "text":
        if len(values) != 1 or not isinstance(values[0], str):
            raise ArgumentError(
                f"{index.path}: lookup: a text index takes one str word, got {values!r:.60}"
            )
        return
    if not 1 <= len(values) <= len(index.columns):
        wanted = "1 value" if len(index.columns) == 1 else f"1 to {len(index.columns)} values"
        raise ArgumentError(
            f"{index.path}: lookup: expected {wanted} for ({', '.join(index.columns)}), "
            f"got {len(values)}"
        )
    for column, value in zip(index.columns, values, strict=False):
        if value is None:
            continue
        try:
            encode_value(value, table.columns[column], column=column)
        except EncodingError as exc:
            raise ArgumentError(f"{index.path}: lookup: {exc}") from exc
