"""The Python API: a :class:`Client` over a store, and :class:`IndexedTable` for rows.

with culvert_py.connect("hbase://127.0.0.1:9090") as db:
    db.apply_schema("schemas/examples/people.toml")
    people = db.table("people")
    people.put({"id": "u1", "name": "Ada", "age": 36, "city": "London"})
    people.get("u1")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from culvert_py.errors import SchemaError, StoreError
from culvert_py.keys import (
    INDEX_FAMILY,
    IndexKeys,
    data_column,
    encode_key,
    primary_key,
    version_column,
)
from culvert_py.maintain import IndexWriter, decode_row
from culvert_py.meta import ACTIVE, BUILDING, DISABLED, SCHEMA_RETRIES, Meta, SchemaConflict
from culvert_py.query.executor import QueryExecutor, QueryResult
from culvert_py.query.planner import Plan, Planner, explain_lines, plan_structure
from culvert_py.schema import (
    IndexDef,
    Schema,
    TableDef,
    load_schema,
    merge_schemas,
    plan_changes,
)
from culvert_py.store import default_url, open_store
from culvert_py.store.base import CAP_CHECK_AND_MUTATE, CAP_SERVER_FILTER, Store, chunks

#: Rows per write batch: one store call per protocol step per batch.
DEFAULT_BATCH_SIZE = 1000

#: HFile block size of primary tables. Index plans fetch primary rows by random get, and
#: a get reads a whole block: 16 KiB instead of HBase's 64 KiB cuts that read by four at a
#: small cost to full scans. Index tables keep the default: they are only ever scanned.
PRIMARY_BLOCK_SIZE = 16 * 1024

#: Seconds a query may plan with the schema it last read before checking the generation.
QUERY_SCHEMA_MAX_AGE = 1.0

_UNSET = object()


class Explanation(NamedTuple):
    """What :meth:`IndexedTable.explain` returns: the plan as text and as plain dicts."""

    text: str
    plan: dict

    def __str__(self) -> str:
        return self.text


def connect(url: str | None = None, workers: int = 16, pipeline_depth: int = 4) -> Client:
    """Open a client on the store at ``url``.

    :param url: a store URL (see :func:`culvert_py.store.open_store`); default: env
        ``CULVERT_STORE``, else ``sqlite:///culvert.db``
    :param workers: threads for parallel store calls (index scans, conditional writes)
    :param pipeline_depth: write batches in flight at once in ``put_many``
    :return: a :class:`Client`; use it as a context manager
    :raises StoreError: when the store is unreachable or the URL malformed
    """
    return Client(open_store(url or default_url()), workers=workers, pipeline_depth=pipeline_depth)


class Client:
    """A store plus the applied schema; hands out :class:`IndexedTable` objects.

    :param store: an open store
    :param workers: threads for parallel store calls
    :param close_store: close ``store`` when the client closes
    :param pipeline_depth: write batches in flight at once in ``put_many``
    """

    def __init__(
        self,
        store: Store,
        workers: int = 16,
        close_store: bool = True,
        pipeline_depth: int = 4,
    ) -> None:
        if workers < 1 or pipeline_depth < 1:
            raise ValueError(
                f"workers and pipeline_depth must be >= 1, got {workers}, {pipeline_depth}"
            )
        self.pipeline_depth = pipeline_depth
        # Batches run on their own pool: a batch waits on store calls that run on
        # ``executor``, so sharing one pool could deadlock when it is full of batches.
        self.batch_executor = ThreadPoolExecutor(
            max_workers=pipeline_depth, thread_name_prefix="culvert-batch"
        )
        self.store = store
        self._close_store = close_store
        self.meta = Meta(store)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="culvert")
        self._tables: dict[str, IndexedTable] = {}
        self._lock = threading.Lock()

    def apply_schema(self, source: Schema | str | Path) -> dict[str, object]:
        """Create or extend tables and indexes to match a schema (file path or :class:`Schema`).

        New tables get their primary table and pre-split index tables; their indexes start
        ACTIVE when the primary table is empty, BUILDING otherwise (they need a build). A new
        index on an existing table starts BUILDING: writers maintain it from their next
        batch, queries ignore it until a build makes it ACTIVE.

        :return: ``{"created": [store tables], "indexes": {"table.index": state}}``
        :raises SchemaError: for an invalid schema or an incompatible change
        """
        schema = source if isinstance(source, Schema) else load_schema(source)
        self.meta.ensure()
        for _attempt in range(SCHEMA_RETRIES):
            generation, applied, _ = self.meta.load()
            changes = plan_changes(applied, schema)
            created = self._create_store_tables(schema)
            new_states = {}
            for index in changes["new_indexes"] + [
                i for t in changes["new_tables"] for i in t.indexes.values()
            ]:
                populated = self._has_rows(schema.tables[index.table])
                new_states[(index.table, index.name)] = BUILDING if populated else ACTIVE
            try:
                self.meta.save(generation, merge_schemas(applied, schema), new_states)
            except SchemaConflict:
                continue  # another client applied or dropped meanwhile: plan again on top
            with self._lock:
                self._tables.clear()
            return {
                "created": created,
                "indexes": {f"{t}.{i}": s for (t, i), s in sorted(new_states.items())},
            }
        raise SchemaError(f"the applied schema kept changing; gave up after {SCHEMA_RETRIES} tries")

    def _create_store_tables(self, schema: Schema) -> list[str]:
        """Create the primary and pre-split index tables ``schema`` needs; return new names."""
        existing = set(self.store.list_tables())
        wanted = []
        for table in schema.tables.values():
            wanted.append((table.hbase_table, [table.family], [], 1, PRIMARY_BLOCK_SIZE))
            for index in table.indexes.values():
                splits = IndexKeys(table, index).split_keys()
                wanted.append((index.hbase_table, [INDEX_FAMILY], splits, 1, None))
        missing = [spec for spec in wanted if spec[0] not in existing]

        def create(spec) -> None:
            try:
                self.store.create_table(*spec)
            except StoreError:
                if not self.store.table_exists(spec[0]):  # lost a creation race: fine
                    raise

        # Table creation is synchronous and slow on HBase (region assignment): in parallel.
        list(self.executor.map(create, missing))
        return [spec[0] for spec in missing]

    def _has_rows(self, table: TableDef) -> bool:
        return any(True for _ in self.store.table(table.hbase_table).scan(limit=1))

    def drop_table(self, name: str) -> None:
        """Drop a table, its index tables and its entry in the applied schema.

        :raises SchemaError: for a table the applied schema does not have
        """
        for _attempt in range(SCHEMA_RETRIES):
            generation, applied, _ = self.meta.load()
            if applied is None:
                raise SchemaError(f"no schema applied to {self.store.url}")
            table = applied.table(name)
            names = [i.hbase_table for i in table.indexes.values()] + [table.hbase_table]
            list(self.executor.map(self.store.delete_table, names))
            remaining = {n: t for n, t in applied.tables.items() if n != name}
            try:
                self.meta.replace(generation, Schema(remaining))
            except SchemaConflict:
                continue
            with self._lock:
                self._tables.pop(name, None)
            return
        raise SchemaError(f"the applied schema kept changing; gave up after {SCHEMA_RETRIES} tries")

    def schema(self) -> Schema:
        """The applied schema.

        :raises SchemaError: when none was applied yet
        """
        _, schema, _ = self.meta.load()
        if schema is None:
            raise SchemaError(f"no schema applied to {self.store.url}; run `culvert schema apply`")
        return schema

    def table(self, name: str) -> IndexedTable:
        """The :class:`IndexedTable` named ``name`` (cached per client).

        :raises SchemaError: for a table the applied schema does not have
        """
        with self._lock:
            table = self._tables.get(name)
        if table is None:
            table = IndexedTable(self, name)
            with self._lock:
                self._tables[name] = table
        return table

    def close(self) -> None:
        """Stop the thread pool and close the store."""
        self.batch_executor.shutdown(wait=True)
        self.executor.shutdown(wait=True)
        if self._close_store:
            self.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class IndexedTable:
    """A primary table and its indexes; every write keeps the indexes consistent.

    Rows are plain dicts of typed values (``int``, ``float``, ``str``, ``bytes``, ``bool``,
    aware ``datetime``); a missing or ``None`` column is NULL. Keys are the row-key value (a
    scalar for a one-column row key, a tuple otherwise) or a row dict.
    """

    def __init__(self, client: Client, name: str) -> None:
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
            where=_where_predicates(definition, maintained),
        )
        self._primary = self.store.table(definition.hbase_table)
        self._generation = generation
        self._stats = _UNSET

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
        """Insert or update one row (see :meth:`put_many`)."""
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
        :param bulk: insert-only mode for loads into keys that do not exist yet: skips the
            read of current values and the per-row version check, so it is faster, but an
            existing row's old index entries would NOT be removed
        :param batch_size: rows per batch (one store call per step per batch)
        :return: the number of rows written
        :raises SchemaError: for an unknown column
        :raises EncodingError: for a value of the wrong type or a missing row-key column
        """

        def changes_of(batch: list) -> dict[bytes, dict | None]:
            changes: dict[bytes, dict | None] = {}
            for row in batch:
                pk = primary_key(self.definition, row)
                merged = changes.get(pk) or {}
                merged.update(row)
                changes[pk] = merged
            return changes

        return self._write_batches(map(changes_of, chunks(rows, batch_size)), bulk)

    def delete(self, key: object) -> None:
        """Delete one row by key (a no-op for an absent row)."""
        self.delete_many([key])

    def delete_many(self, keys: Iterable[object], batch_size: int = DEFAULT_BATCH_SIZE) -> int:
        """Delete rows by key, removing their index entries.

        :return: the number of keys processed
        """
        batches = (
            {encode_key(self.definition, k): None for k in batch}
            for batch in chunks(keys, batch_size)
        )
        return self._write_batches(batches, bulk=False)

    def _write_batches(self, batches: Iterable[dict], bulk: bool) -> int:
        """Write batches through the protocol, several in flight at once.

        While one batch waits on HBase, the next is encoded and sent: up to
        ``client.pipeline_depth`` batches overlap. A batch that shares a key with one still
        in flight waits for it, so rows given later still win, as in a serial write.

        :return: the number of rows (distinct keys per batch) written
        """
        in_flight: list[tuple[set, Future]] = []
        count = 0
        try:
            for changes in batches:
                keys = set(changes)
                for other_keys, future in in_flight:
                    if not keys.isdisjoint(other_keys):
                        future.result()
                in_flight = [(k, f) for k, f in in_flight if not f.done()]
                while len(in_flight) >= self.client.pipeline_depth:
                    in_flight.pop(0)[1].result()
                for _, future in in_flight:
                    if future.done():
                        future.result()  # surface a failed batch before sending more
                self.refresh()
                writer = self._writer
                in_flight.append(
                    (keys, self.client.batch_executor.submit(writer.write, changes, bulk))
                )
                count += len(changes)
        finally:
            # Every batch sent is waited for, even when one failed: no write runs on after
            # the call returns or raises.
            errors = []
            for _, future in in_flight:
                try:
                    future.result()
                except BaseException as exc:  # collected and re-raised below
                    errors.append(exc)
            if errors:
                raise errors[0]
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
        :param order_by: a column, or ``(column, descending)``; served by an index when one
            yields that order, else sorted client-side
        :param limit: at most this many rows
        :param cursor: ``result.cursor`` of a previous page of the same query
        :param use_index: force an index by name, or ``"NO_INDEX"`` for a full scan
        :return: a lazy iterator of row dicts; its ``cursor`` resumes after the last row
            returned (``None`` when nothing is left)
        :raises QueryError: unknown columns, type mismatches, syntax errors, bad cursors
        """
        plan = self.plan(where, columns, order_by, limit, use_index)
        return QueryExecutor(self, self.client.executor).run(plan, cursor)

    def plan(self, where=None, columns=None, order_by=None, limit=None, use_index=None) -> Plan:
        """The :class:`~culvert_py.query.planner.Plan` :meth:`query` would run."""
        self.refresh(max_age=QUERY_SCHEMA_MAX_AGE)
        return Planner(
            self.definition,
            self.states,
            self.stats(),
            CAP_SERVER_FILTER in self.store.capabilities,
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
        """
        plan = self.plan(where, columns, order_by, limit, use_index)
        if analyze:
            for _ in QueryExecutor(self, self.client.executor).run(plan):
                pass
        return Explanation("\n".join(explain_lines(plan, analyze)), plan_structure(plan))

    def stats(self):
        """The table's statistics (cached until :meth:`refresh_stats` or a schema change)."""
        if self._stats is _UNSET:
            from culvert_py.stats import load_stats

            self._stats = load_stats(self.client.meta, self.name)
        return self._stats

    def refresh_stats(self):
        """Collect statistics of the table and its indexes now (a scan of each) and save them."""
        from culvert_py.stats import refresh_stats

        self._stats = refresh_stats(self.client, self.name)
        return self._stats

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: object, columns: Sequence[str] | None = None) -> dict | None:
        """The row with ``key``, or ``None``.

        :param columns: only these columns (default: all)
        """
        return self.get_many([key], columns)[0]

    def get_many(self, keys: Iterable[object], columns: Sequence[str] | None = None) -> list:
        """Rows for ``keys`` in the same order, ``None`` for absent ones; batched reads."""
        pks = [encode_key(self.definition, k) for k in keys]
        return self._fetch(pks, columns)

    def _fetch(self, pks: list[bytes], columns: Sequence[str] | None = None) -> list:
        cols = None
        if columns is not None:
            for c in columns:
                self.definition.column_type(c)
            cols = [data_column(self.definition, c) for c in columns]
            cols.append(version_column(self.definition))
        found = self._primary.get_many(pks, columns=cols)
        return [decode_row(self.definition, found.get(pk, {})) for pk in pks]

    def scan_rows(self, batch_size: int = 1000) -> Iterator[dict]:
        """Every live row of the primary table, in row-key order (a full scan)."""
        for _, cells in self._primary.scan(batch_size=batch_size):
            row = decode_row(self.definition, cells)
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
        :raises SchemaError: for an unknown index
        """
        from culvert_py.query.expr import And, Contains, col

        idx = self._index(index)
        if idx.kind == "text":
            parts = [Contains(idx.columns[0], str(values[0]))]
        else:
            parts = [
                col(c).is_null() if v is None else col(c) == v
                for c, v in zip(idx.columns, values, strict=False)
            ]
        if idx.where:
            from culvert_py.query.parse import parse

            parts.append(parse(idx.where, dict(self.definition.columns)))
        where = parts[0] if len(parts) == 1 else And(tuple(parts))
        columns = None
        if covered:
            columns = [c for c in self.definition.columns if c in self._covered_columns(idx)]
        return list(self.query(where, columns=columns, use_index=index))

    def _covered_columns(self, idx: IndexDef) -> set[str]:
        """Columns a covered read of ``idx`` returns: row key, indexed (not for text), included."""
        names = set(self.definition.row_key) | set(idx.include)
        return names if idx.kind == "text" else names | set(idx.columns)

    def _index(self, name: str) -> IndexDef:
        try:
            return self.definition.indexes[name]
        except KeyError:
            known = ", ".join(self.definition.indexes) or "none"
            raise SchemaError(f"{self.name}: unknown index {name!r} (known: {known})") from None


def _where_predicates(table: TableDef, indexes: Iterable[IndexDef]) -> dict:
    from culvert_py.query.parse import parse

    return {i.name: parse(i.where, dict(table.columns)) for i in indexes if i.where}
