"""The Python API entry point: a :class:`Client` over a store, handing out tables.

with culvert_py.connect("hbase://127.0.0.1:9090") as db:
    db.apply_schema("schemas/examples/people.toml")
    people = db.table("people")
    people.put({"id": "u1", "name": "Ada", "age": 36, "city": "London"})
    people.get("u1")
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from culvert_py.arguments import (
    check_count,
    check_name,
)
from culvert_py.clock import Clock, now_ms
from culvert_py.errors import ArgumentError, SchemaError, StoreError
from culvert_py.layout import TableSpec, store_tables, table_families
from culvert_py.meta import ACTIVE, BUILDING, Meta
from culvert_py.query.probe import ProbeCache
from culvert_py.schema import (
    Schema,
    TableDef,
    load_schema,
    merge_schemas,
    plan_changes,
)
from culvert_py.stats import load_stats, refresh_stats
from culvert_py.store import default_url, open_store
from culvert_py.store.base import Store
from culvert_py.table import IndexedTable

#: Rows per write batch: one store call per protocol step per batch.
DEFAULT_BATCH_SIZE = 1000

#: Seconds a query may plan with the schema it last read before checking the generation.
QUERY_SCHEMA_MAX_AGE = 1.0

_UNSET = object()


def connect(url: str | None = None, workers: int = 16, pipeline_depth: int = 4) -> Client:
    """Open a client on the store at ``url``.

    :param url: a store URL (see :func:`culvert_py.store.open_store`); default: env
        ``CULVERT_STORE``, else ``sqlite:///culvert.db``
    :param workers: threads for parallel store calls (index scans, conditional writes)
    :param pipeline_depth: write batches in flight at once in ``put_many``
    :return: a :class:`Client`; use it as a context manager
    :raises ArgumentError: for a URL that is not a string, or ``workers`` or
        ``pipeline_depth`` below 1
    :raises StoreError: when the store is unreachable or the URL malformed
    """
    if url is not None and not isinstance(url, str):
        raise ArgumentError(f"url={url!r:.60}: expected a store URL string or None")
    check_count("connect", "workers", workers, 1)
    check_count("connect", "pipeline_depth", pipeline_depth, 1)
    return Client(open_store(url or default_url()), workers=workers, pipeline_depth=pipeline_depth)


class Client:
    """A store plus the applied schema; hands out :class:`IndexedTable` objects.

    :param store: an open store
    :param workers: threads for parallel store calls
    :param close_store: close ``store`` when the client closes
    :param pipeline_depth: write batches in flight at once in ``put_many``
    :param auto_stats: collect a table's statistics again when this client's writes, a
        build or a schema apply make them stale (see :mod:`culvert_py.stats.keeper`)
    :param clock: milliseconds "now" for row timestamps and age-off (a test's
        :class:`~culvert_py.clock.ManualClock`); the meta table keeps the system clock
    :raises ArgumentError: for ``workers`` or ``pipeline_depth`` below 1
    """

    def __init__(
        self,
        store: Store,
        workers: int = 16,
        close_store: bool = True,
        pipeline_depth: int = 4,
        auto_stats: bool = True,
        clock: Clock = now_ms,
    ) -> None:
        check_count("Client", "workers", workers, 1)
        self.clock = clock
        check_count("Client", "pipeline_depth", pipeline_depth, 1)
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
        self.auto_stats = auto_stats
        # Planning probes measured by this client, reused for a few seconds.
        self.probe_cache = ProbeCache()

    def apply_schema(self, source: Schema | str | Path) -> dict[str, object]:
        """Create or extend tables and indexes to match a schema (file path or :class:`Schema`).

        New tables get their primary table and pre-split index tables; their indexes start
        ACTIVE when the primary table is empty, BUILDING otherwise (they need a build). A new
        index on an existing table starts BUILDING: writers maintain it from their next
        batch, queries ignore it until a build makes it ACTIVE.

        :return: ``{"created": [store tables], "indexes": {"table.index": state}}``
        :raises ArgumentError: for a source that is neither a Schema nor a path
        :raises SchemaError: for an invalid schema or an incompatible change
        """
        if not isinstance(source, Schema | str | Path):
            raise ArgumentError(
                f"apply_schema: source={source!r:.60}: expected a Schema or a schema file path"
            )
        schema = source if isinstance(source, Schema) else load_schema(source)
        self.meta.ensure()
        created = self._create_store_tables(schema)
        new_states: dict = {}

        def change(applied: Schema | None, _states: dict) -> tuple[Schema, dict]:
            changes = plan_changes(applied, schema)
            new_states.clear()
            for index in changes["new_indexes"] + [
                i for t in changes["new_tables"] for i in t.indexes.values()
            ]:
                populated = self._has_rows(schema.tables[index.table])
                new_states[(index.table, index.name)] = BUILDING if populated else ACTIVE
            return merge_schemas(applied, schema), dict(new_states)

        self.meta.update(change, "schema apply")
        with self._lock:
            self._tables.clear()
        if self.auto_stats:
            building = {t for (t, _), state in new_states.items() if state == BUILDING}
            self._collect_populated(schema, skip=building)
        return {
            "created": created,
            "indexes": {f"{t}.{i}": s for (t, i), s in sorted(new_states.items())},
        }

    def _create_store_tables(self, schema: Schema) -> list[str]:
        """Create the primary and pre-split index tables ``schema`` needs; return new names."""
        existing = set(self.store.list_tables())
        for table in schema.tables.values():
            if table.existing:
                self._check_adopted(table, existing)
        wanted = [spec for t in schema.tables.values() for spec in store_tables(t)]
        missing = [spec for spec in wanted if spec.name not in existing]

        def create(spec: TableSpec) -> None:
            try:
                self.store.create_table(*spec)
            except StoreError:
                if not self.store.table_exists(spec.name):  # lost a creation race: fine
                    raise

        # Table creation is synchronous and slow on HBase (region assignment): in parallel.
        list(self.executor.map(create, missing))
        return [spec.name for spec in missing]

    def _check_adopted(self, table: TableDef, existing: set[str]) -> None:
        """An adopted table is the application's: it must exist with the named families
        (culvert_py never creates, alters or drops it)."""
        if table.hbase_table not in existing:
            raise SchemaError(
                f"tables.{table.name}: existing table {table.hbase_table!r} not found in "
                f"{self.store.url}; an adopted table is never created (check hbase_table)"
            )
        have = set(self.store.families(table.hbase_table))
        missing = [f for f in table_families(table) if f not in have]
        if missing:
            raise SchemaError(
                f"tables.{table.name}: table {table.hbase_table!r} has no column family "
                f"{', '.join(map(repr, missing))} (it has: {', '.join(sorted(have)) or 'none'})"
            )

    def _collect_populated(self, schema: Schema, skip: set[str]) -> None:
        """Statistics of the populated tables of ``schema`` that have none.

        Tables in ``skip`` (given a new index to build) are left to their build, which
        collects them in the scan it makes anyway: collecting here too would scan a large
        adopted table twice, and make ``schema apply`` as slow as a build."""
        for table in schema.tables.values():
            if table.name in skip:
                continue
            if self._has_rows(table) and load_stats(self.meta, table.name) is None:
                refresh_stats(self.meta, self.store, table, self.executor)

    def _has_rows(self, table: TableDef) -> bool:
        return any(True for _ in self.store.table(table.hbase_table).scan(limit=1))

    def drop_table(self, name: str) -> None:
        """Drop a table, its index tables and its entry in the applied schema.

        :raises ArgumentError: for a name that is not a non-empty string
        :raises SchemaError: for a table the applied schema does not have
        """
        check_name("drop_table", name)
        dropped: list[TableDef] = []

        def change(applied: Schema | None, _states: dict) -> tuple[Schema, dict]:
            if applied is None:
                raise SchemaError(f"no schema applied to {self.store.url}")
            dropped[:] = [applied.table(name)]
            return Schema({n: t for n, t in applied.tables.items() if n != name}), {}

        self.meta.update(change, f"drop {name}")
        table = dropped[0]
        names = [i.hbase_table for i in table.indexes.values()]
        if not table.existing:  # an adopted table is detached: its rows stay the application's
            names.append(table.hbase_table)
        list(self.executor.map(self.store.delete_table, names))
        # A table re-created under this name must not plan with the old one's statistics
        # or inherit its index states.
        self.meta.forget_table(name, list(table.indexes))
        with self._lock:
            self._tables.pop(name, None)

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

        :raises ArgumentError: for a name that is not a non-empty string
        :raises SchemaError: for a table the applied schema does not have
        """
        check_name("table", name)
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
