"""The embedded store: the storage contract kept in one stdlib sqlite3 database.

It is a real second implementation of :mod:`culvert_py.store.base`, not a mock: the
contract suite runs against it and against HBase unchanged. One version per cell is kept
(the newest), plus delete markers per cell and per family, which is exactly what a
``VERSIONS => 1`` HBase table returns. Tables and their split keys are recorded so that
``regions()`` answers as HBase would, and the builder can parallelise over them.

Every read and write here is one call of :meth:`SQLiteFile.transact
<culvert_py.store.sqlite_file.SQLiteFile.transact>`: a write is one ``BEGIN IMMEDIATE``
transaction, so ``check_and_mutate`` reads, compares and applies under the file's write
lock, atomically across threads and processes. Opening the file, checking it at the door
and waiting for other processes' locks are :mod:`culvert_py.store.sqlite_file`'s job; a
store opened read-only (``sqlite:///path.db?mode=ro``) has its writes refused.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence

from culvert_py.errors import ArgumentError, CapabilityError, StoreError
from culvert_py.store.base import (
    CAP_CHECK_AND_MUTATE,
    CAP_PRESPLIT,
    Region,
    RowMutation,
    check_conditional,
    check_create,
    check_distinct_rows,
    check_scan,
    check_time_range,
    check_timestamp,
    chunks,
    normalise_column,
    prefix_successor,
)
from culvert_py.store.sqlite_cells import (
    apply_mutation,
    prepare,
    read_rows,
)
from culvert_py.store.sqlite_file import DEFAULT_TIMEOUT, SQLiteFile

__all__ = ["DEFAULT_TIMEOUT", "SQLiteStore", "SQLiteTable"]

# Rows per SQL statement batch; SQLite's parameter limit is 32766 in modern builds.
_IN_CHUNK = 500


class SQLiteStore:
    """The storage contract over one SQLite database file (or memory).

    :param path: database file path (created with its tables if absent), or ``":memory:"``
    :param read_only: open an existing file for reading only; writes raise :class:`StoreError`
    :param timeout: seconds to wait in total for other processes holding the file's lock
        before an operation raises :class:`TransientStoreError`
    :raises StoreError: when ``path`` cannot be opened as a culvert store: a directory, a
        missing parent directory, not a SQLite database, another application's database, a
        file without write permission (unless ``read_only``), or a missing file (if
        ``read_only``); the message names the path and the reason on one line
    :raises ArgumentError: for a non-positive ``timeout`` or a read-only in-memory store
    """

    capabilities = frozenset({CAP_CHECK_AND_MUTATE, CAP_PRESPLIT})

    def __init__(
        self, path: str = ":memory:", read_only: bool = False, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self._file = SQLiteFile(path, read_only, timeout)
        self.path = path
        self.read_only = read_only
        self.timeout = self._file.timeout
        self.url = "sqlite://" if path == ":memory:" else f"sqlite:///{path}"
        options = ["mode=ro"] if read_only else []
        if timeout != DEFAULT_TIMEOUT:
            options.append(f"timeout={timeout:g}")
        if options:
            self.url += "?" + "&".join(options)

    # -- store -------------------------------------------------------------------------

    def table(self, name: str) -> SQLiteTable:
        """Return a handle on table ``name``; a missing table fails on first use."""
        return SQLiteTable(self, name)

    def create_table(
        self,
        name: str,
        families: Sequence[str],
        split_keys: Sequence[bytes] = (),
        max_versions: int = 1,
        block_size: int | None = None,
    ) -> None:
        """Create ``name`` with ``families``; ``split_keys`` are recorded as region bounds.

        ``max_versions`` is accepted for parity with HBase; one version is kept.

        :raises StoreError: if the table exists, the arguments are invalid or the store is
            read-only
        :raises TransientStoreError: if other processes kept the file locked too long
        """
        check_create(name, families, split_keys)
        self._check_writable(f"create table {name!r}")
        record = (name, json.dumps(list(families)), json.dumps(sorted(k.hex() for k in split_keys)))

        def insert(db: sqlite3.Connection) -> bool:
            try:
                db.execute("INSERT INTO tables (name, families, splits) VALUES (?, ?, ?)", record)
            except sqlite3.IntegrityError:
                return False
            return True

        if not self._file.transact(insert, True, self._failure(f"create table {name!r}")):
            raise StoreError(f"table {name!r} already exists in {self.url}")

    def delete_table(self, name: str) -> None:
        """Drop ``name`` and its data; a no-op when it does not exist.

        :raises StoreError: if the store is read-only
        """
        self._check_writable(f"delete table {name!r}")

        def drop(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT id FROM tables WHERE name = ?", (name,)).fetchone()
            if row is None:
                return
            for stmt in (
                "DELETE FROM cells WHERE tbl = ?",
                "DELETE FROM tombstones WHERE tbl = ?",
                "DELETE FROM tables WHERE id = ?",
            ):
                db.execute(stmt, (row[0],))

        self._file.transact(drop, True, self._failure(f"delete table {name!r}"))

    def table_exists(self, name: str) -> bool:
        """Whether ``name`` exists."""
        return self._file.transact(
            lambda db: (
                db.execute("SELECT 1 FROM tables WHERE name = ?", (name,)).fetchone() is not None
            ),
            False,
            self._failure("list tables"),
        )

    def list_tables(self) -> list[str]:
        """All table names, sorted."""
        return self._file.transact(
            lambda db: [r[0] for r in db.execute("SELECT name FROM tables ORDER BY name")],
            False,
            self._failure("list tables"),
        )

    def regions(self, name: str) -> list[Region]:
        """Region bounds derived from the split keys given at creation."""
        splits = [bytes.fromhex(k) for k in json.loads(self._meta(name)[2])]
        bounds = [b"", *splits, b""]
        return [Region(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]

    def describe(self) -> str:
        """The store's URL and SQLite library version."""
        mode = "embedded, read-only" if self.read_only else "embedded"
        return f"{self.url} (SQLite {sqlite3.sqlite_version}, {mode})"

    def close(self) -> None:
        """Close the database connection."""
        self._file.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals used by SQLiteTable -------------------------------------------------

    def _failure(self, what: str) -> str:
        return f"cannot {what} in SQLite store {self.path!r}"

    def _check_writable(self, what: str) -> None:
        if self.read_only:
            raise StoreError(
                f"cannot {what}: SQLite store {self.path!r} is read-only (opened with mode=ro)"
            )

    def families(self, name: str) -> list[str]:
        """The column families ``name`` was created with, sorted."""
        return sorted(f.decode() for f in self._meta(name)[1])

    def _meta(self, name: str) -> tuple[int, list[bytes], str]:
        row = self._file.transact(
            lambda db: db.execute(
                "SELECT id, families, splits FROM tables WHERE name = ?", (name,)
            ).fetchone(),
            False,
            self._failure(f"read table {name!r}"),
        )
        if row is None:
            raise StoreError(f"table {name!r} does not exist in {self.url}")
        return row[0], [f.encode() for f in json.loads(row[1])], row[2]


class SQLiteTable:
    """One table of a :class:`SQLiteStore`; see :class:`culvert_py.store.base.Table`."""

    def __init__(self, store: SQLiteStore, name: str) -> None:
        self._store = store
        self.name = name

    def _tid_families(self) -> tuple[int, list[bytes]]:
        tid, families, _ = self._store._meta(self.name)
        return tid, families

    # -- writes ------------------------------------------------------------------------

    def mutate_many(self, mutations: Iterable[RowMutation], timestamp: int) -> int:
        """Apply row mutations at ``timestamp``, one transaction per batch; see the contract.

        :raises StoreError: for an invalid mutation or a read-only store (or
            :class:`TransientStoreError` if other processes kept the file locked too long)
        """
        check_timestamp(timestamp)
        return self._write((m, timestamp) for m in mutations)

    def put_many_at(self, rows: Iterable[tuple[bytes, Mapping[bytes, bytes], int]]) -> int:
        """Write ``(row, cells, timestamp)`` triples, each at its own timestamp (the contract)."""
        timed = [(RowMutation(row, cells), ts) for row, cells, ts in rows]
        for _, ts in timed:
            check_timestamp(ts)
        return self._write(timed)

    def _write(self, timed: Iterable[tuple[RowMutation, int]]) -> int:
        what = f"write to table {self.name!r}"
        self._store._check_writable(what)
        (tid, families), failure, count = self._tid_families(), self._store._failure(what), 0
        for batch in chunks(timed, _IN_CHUNK):
            prepared = [(*prepare(m, families, self.name), ts) for m, ts in batch]

            def apply(db: sqlite3.Connection, prepared: list = prepared) -> None:
                for row, puts, deletes, ts in prepared:
                    apply_mutation(db, tid, row, puts, deletes, ts)

            self._store._file.transact(apply, True, failure)
            count += len(prepared)
        return count

    def put_many(self, rows: Iterable[tuple[bytes, Mapping[bytes, bytes]]], timestamp: int) -> int:
        """Write ``(row, cells)`` pairs at ``timestamp``; returns the row count."""
        return self.mutate_many((RowMutation(row, cells) for row, cells in rows), timestamp)

    def delete_many(
        self, rows: Iterable[bytes], timestamp: int, columns: Sequence[bytes] | None = None
    ) -> int:
        """Delete whole rows, or ``columns`` of them, at ``timestamp``."""
        if columns is None:
            _, families = self._tid_families()
            columns = [f + b":" for f in families]
        cols = tuple(columns)
        return self.mutate_many((RowMutation(row, {}, cols) for row in rows), timestamp)

    def check_and_mutate(
        self,
        row: bytes,
        column: bytes,
        expected: bytes | None,
        mutation: RowMutation,
        timestamp: int,
    ) -> bool:
        """Atomically check one cell and apply ``mutation``; see the contract.

        The read, the comparison and the write are one ``BEGIN IMMEDIATE`` transaction, so
        no other thread or process can write the row in between.

        :raises StoreError: for an invalid mutation or a read-only store
        :raises TransientStoreError: if other processes kept the file locked too long
        """
        return self.check_and_mutate_many([(row, column, expected, mutation)], timestamp)[0]

    def check_and_mutate_many(
        self,
        items: Sequence[tuple[bytes, bytes, bytes | None, RowMutation]],
        timestamp: int,
    ) -> list[bool]:
        """:meth:`check_and_mutate` of many rows, ``500`` per ``BEGIN IMMEDIATE`` transaction
        (each item still checked and applied on its own); see the contract.

        :raises ArgumentError: for any malformed item, before anything is written
        :raises StoreError: for an unknown family or a read-only store
        """
        check_timestamp(timestamp)
        what = f"write to table {self.name!r}"
        self._store._check_writable(what)
        tid, families = self._tid_families()
        items = list(items)
        check_distinct_rows(items)
        prepared = []
        for row, column, expected, mutation in items:
            check_conditional(row, expected, mutation)
            if expected is not None and type(expected) is not bytes:
                raise ArgumentError(
                    f"check_and_mutate: expected must be bytes or None, got {expected!r}"
                )
            column = normalise_column(column)
            prepared.append((column, expected, prepare(mutation, families, self.name)))
        applied: list[bool] = []

        def check_then_apply(db: sqlite3.Connection, batch: list) -> list[bool]:
            columns = sorted({column for column, _, _ in batch})
            rows = read_rows(db, tid, [p[0] for _, _, p in batch], columns, False)
            done = []
            for column, expected, (row, puts, deletes) in batch:
                if rows.get(row, {}).get(column) != expected:
                    done.append(False)
                    continue
                apply_mutation(db, tid, row, puts, deletes, timestamp)
                done.append(True)
            return done

        for batch in chunks(prepared, _IN_CHUNK):
            applied += self._store._file.transact(
                lambda db, b=batch: check_then_apply(db, b), True, self._store._failure(what)
            )
        return applied

    # -- reads -------------------------------------------------------------------------

    def get_many(
        self,
        rows: Iterable[bytes],
        columns: Sequence[bytes] | None = None,
        include_timestamp: bool = False,
    ) -> dict[bytes, dict]:
        """Read many rows; returns ``{row: cells}`` for the rows that exist."""
        tid, _ = self._tid_families()
        cols = [normalise_column(c) for c in columns] if columns is not None else None
        failure = self._store._failure(f"read table {self.name!r}")
        out: dict[bytes, dict] = {}
        for batch in chunks(dict.fromkeys(rows), _IN_CHUNK):
            out.update(
                self._store._file.transact(
                    lambda db, batch=batch: read_rows(db, tid, batch, cols, include_timestamp),
                    False,
                    failure,
                )
            )
        return out

    def scan(
        self,
        start: bytes | None = None,
        stop: bytes | None = None,
        prefix: bytes | None = None,
        columns: Sequence[bytes] | None = None,
        filter: str | bytes | None = None,
        batch_size: int = 1000,
        limit: int | None = None,
        include_timestamp: bool = False,
        time_range: tuple[int, int] | None = None,
    ) -> Iterator[tuple[bytes, dict]]:
        """Iterate rows in key order, ``batch_size`` rows per query; see the contract.

        A ``time_range`` is a condition on ``ts`` in both queries of a page, so rows without
        a cell in the range never count towards a page.
        """
        if filter is not None:
            raise CapabilityError(
                f"{self._store.url}: server-side filter strings need HBase; "
                "evaluate the predicate client-side instead"
            )
        start, stop = check_scan(start, stop, prefix, batch_size)
        time_range = check_time_range(time_range)
        start, stop = start or b"", stop or None
        cols = [normalise_column(c) for c in columns] if columns is not None else None
        tid, _ = self._tid_families()
        return self._scan_rows(
            tid, start, stop, cols, batch_size, limit, include_timestamp, time_range
        )

    def scan_reverse(
        self,
        start: bytes | None = None,
        stop: bytes | None = None,
        columns: Sequence[bytes] | None = None,
        batch_size: int = 1000,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, dict]]:
        """Iterate rows in descending key order, ``batch_size`` per query; see the contract."""
        start, stop = check_scan(start, stop, None, batch_size)
        cols = [normalise_column(c) for c in columns] if columns is not None else None
        tid, _ = self._tid_families()
        return self._scan_reversed(tid, start or b"", stop or None, cols, batch_size, limit)

    def _scan_reversed(self, tid, start, upper, cols, batch_size, limit):
        emitted = 0
        failure = self._store._failure(f"reverse scan table {self.name!r}")
        while limit is None or emitted < limit:
            want = batch_size if limit is None else min(batch_size, limit - emitted)
            sql = "SELECT DISTINCT row FROM cells WHERE tbl=? AND row >= ?"
            args: list = [tid, start]
            if upper is not None:
                sql += " AND row < ?"
                args.append(upper)
            if cols is not None:  # a family is a column prefix, as in _scan_rows
                clauses = []
                for col in cols:
                    clauses.append("(col >= ? AND col < ?)" if col.endswith(b":") else "col = ?")
                    args += [col, prefix_successor(col)] if col.endswith(b":") else [col]
                sql += " AND (" + " OR ".join(clauses) + ")"
            sql += " ORDER BY row DESC LIMIT ?"
            args.append(want)

            def page(db: sqlite3.Connection, sql: str = sql, args: list = args) -> tuple:
                keys = [r[0] for r in db.execute(sql, args).fetchall()]
                return keys, (read_rows(db, tid, keys, cols, False, None) if keys else {})

            keys, rows = self._store._file.transact(page, False, failure)
            for key in keys:
                if key in rows:
                    yield key, rows[key]
                    emitted += 1
            if len(keys) < want:
                return
            upper = keys[-1]

    def _scan_rows(self, tid, start, stop, cols, batch_size, limit, include_timestamp, times):
        emitted = 0
        lower, inclusive = start, True
        failure = self._store._failure(f"scan table {self.name!r}")
        while limit is None or emitted < limit:
            # Page by distinct row keys, then read their cells: keeps each query bounded
            # and lets concurrent writers proceed between pages, like an HBase scanner.
            op = ">=" if inclusive else ">"
            sql = f"SELECT DISTINCT row FROM cells WHERE tbl=? AND row {op} ?"
            args: list = [tid, lower]
            if stop is not None:
                sql += " AND row < ?"
                args.append(stop)
            if times is not None:
                sql += " AND ts >= ? AND ts < ?"
                args += times
            want = batch_size if limit is None else min(batch_size, limit - emitted)
            if cols is not None:
                # Only rows that have one of the wanted columns count towards the page.
                clauses = []
                for col in cols:
                    if col.endswith(b":"):
                        clauses.append("(col >= ? AND col < ?)")
                        args += [col, prefix_successor(col)]
                    else:
                        clauses.append("col = ?")
                        args.append(col)
                sql += " AND (" + " OR ".join(clauses) + ")"
            sql += " ORDER BY row LIMIT ?"
            args.append(want)

            def page(db: sqlite3.Connection, sql: str = sql, args: list = args) -> tuple:
                keys = [r[0] for r in db.execute(sql, args).fetchall()]
                if not keys:
                    return keys, {}
                return keys, read_rows(db, tid, keys, cols, include_timestamp, times)

            keys, rows = self._store._file.transact(page, False, failure)
            if not keys:
                return
            for key in keys:
                if key in rows:
                    yield key, rows[key]
                    emitted += 1
            if len(keys) < want:
                return
            lower, inclusive = keys[-1], False
