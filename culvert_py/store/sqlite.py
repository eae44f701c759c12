"""The embedded store: the storage contract on stdlib sqlite3, for demos and tests.

It is a real second implementation of :mod:`culvert_py.store.base`, not a mock: the
contract suite runs against it and against HBase unchanged. One version per cell is kept
(the newest), plus delete markers per cell and per family, which is exactly what a
``VERSIONS => 1`` HBase table returns. Tables and their split keys are recorded so that
``regions()`` answers as HBase would, and the builder can parallelise over them.

All access goes through one connection guarded by a lock: SQLite serialises writers anyway,
and this keeps ``check_and_mutate`` atomic without relying on SQLite's busy handling.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence

from culvert_py.errors import CapabilityError, StoreError
from culvert_py.store.base import (
    CAP_CHECK_AND_MUTATE,
    CAP_PRESPLIT,
    Region,
    RowMutation,
    check_conditional,
    chunks,
    family_of,
    normalise_column,
    prefix_stop,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tables (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    families TEXT NOT NULL,
    splits TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cells (
    tbl INTEGER NOT NULL,
    row BLOB NOT NULL,
    col BLOB NOT NULL,
    ts INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (tbl, row, col)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tombstones (
    tbl INTEGER NOT NULL,
    row BLOB NOT NULL,
    col BLOB NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (tbl, row, col)
) WITHOUT ROWID;
"""

# Rows per SQL statement batch; SQLite's parameter limit is 32766 in modern builds.
_IN_CHUNK = 500


class SQLiteStore:
    """The storage contract over one SQLite database file (or memory).

    :param path: database file path, or ``":memory:"``
    """

    capabilities = frozenset({CAP_CHECK_AND_MUTATE, CAP_PRESPLIT})

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self.url = "sqlite://" if path == ":memory:" else f"sqlite:///{path}"
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {path!r}: {exc}") from exc
        self._lock = threading.RLock()
        with self._lock:
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        self._closed = False

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

        :raises StoreError: if the table exists or the arguments are invalid
        """
        _validate_create(name, families, split_keys)
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO tables (name, families, splits) VALUES (?, ?, ?)",
                    (
                        name,
                        json.dumps(list(families)),
                        json.dumps(sorted(k.hex() for k in split_keys)),
                    ),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"table {name!r} already exists in {self.url}") from None

    def delete_table(self, name: str) -> None:
        """Drop ``name`` and its data; a no-op when it does not exist."""
        with self._lock:
            row = self._db.execute("SELECT id FROM tables WHERE name = ?", (name,)).fetchone()
            if row is None:
                return
            self._db.execute("BEGIN")
            for stmt in (
                "DELETE FROM cells WHERE tbl = ?",
                "DELETE FROM tombstones WHERE tbl = ?",
                "DELETE FROM tables WHERE id = ?",
            ):
                self._db.execute(stmt, (row[0],))
            self._db.execute("COMMIT")

    def table_exists(self, name: str) -> bool:
        """Whether ``name`` exists."""
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM tables WHERE name = ?", (name,)).fetchone()
                is not None
            )

    def list_tables(self) -> list[str]:
        """All table names, sorted."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT name FROM tables ORDER BY name")]

    def regions(self, name: str) -> list[Region]:
        """Region bounds derived from the split keys given at creation."""
        splits = [bytes.fromhex(k) for k in json.loads(self._meta(name)[2])]
        bounds = [b"", *splits, b""]
        return [Region(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]

    def describe(self) -> str:
        """The store's URL and SQLite library version."""
        return f"{self.url} (SQLite {sqlite3.sqlite_version}, embedded)"

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            if not self._closed:
                self._db.close()
                self._closed = True

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals used by SQLiteTable -------------------------------------------------

    def _meta(self, name: str) -> tuple[int, list[bytes], str]:
        with self._lock:
            row = self._db.execute(
                "SELECT id, families, splits FROM tables WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            raise StoreError(f"table {name!r} does not exist in {self.url}")
        return row[0], [f.encode() for f in json.loads(row[1])], row[2]


class SQLiteTable:
    """One table of a :class:`SQLiteStore`; see :class:`culvert_py.store.base.Table`."""

    def __init__(self, store: SQLiteStore, name: str) -> None:
        self._store = store
        self._db = store._db
        self._lock = store._lock
        self.name = name

    def _tid_families(self) -> tuple[int, list[bytes]]:
        tid, families, _ = self._store._meta(self.name)
        return tid, families

    # -- writes ------------------------------------------------------------------------

    def mutate_many(self, mutations: Iterable[RowMutation], timestamp: int) -> int:
        """Apply row mutations at ``timestamp``; see the contract."""
        _check_timestamp(timestamp)
        tid, families = self._tid_families()
        count = 0
        for batch in chunks(mutations, _IN_CHUNK):
            prepared = [_prepare(m, families, self.name) for m in batch]
            with self._lock:
                self._db.execute("BEGIN")
                try:
                    for row, puts, deletes in prepared:
                        self._apply(tid, row, puts, deletes, timestamp)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
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
        """Atomically check one cell and apply ``mutation``; see the contract."""
        _check_timestamp(timestamp)
        check_conditional(row, expected, mutation)
        column = normalise_column(column)
        tid, families = self._tid_families()
        prepared = _prepare(mutation, families, self.name)
        with self._lock:
            current = self._read_rows(tid, [row], [column], False).get(row, {}).get(column)
            if current != expected:
                return False
            self._db.execute("BEGIN")
            try:
                self._apply(tid, *prepared, timestamp)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return True

    def _apply(self, tid: int, row: bytes, puts: dict, deletes: list, ts: int) -> None:
        # Deletes first: a put and a delete of one cell at one timestamp leaves the delete
        # winning, as HBase does (the marker masks puts <= its timestamp).
        db = self._db
        for col in deletes:
            if col.endswith(b":"):
                db.execute(
                    "DELETE FROM cells WHERE tbl=? AND row=? AND col>=? AND col<? AND ts<=?",
                    (tid, row, col, prefix_stop(col), ts),
                )
            else:
                db.execute(
                    "DELETE FROM cells WHERE tbl=? AND row=? AND col=? AND ts<=?",
                    (tid, row, col, ts),
                )
            db.execute(
                "INSERT INTO tombstones VALUES (?,?,?,?) ON CONFLICT(tbl,row,col) "
                "DO UPDATE SET ts = max(ts, excluded.ts)",
                (tid, row, col, ts),
            )
        if not puts:
            return
        masks = dict(
            db.execute(
                "SELECT col, ts FROM tombstones WHERE tbl=? AND row=?", (tid, row)
            ).fetchall()
        )
        for col, value in puts.items():
            family_mask = masks.get(family_of(col) + b":", -1)
            if ts <= max(masks.get(col, -1), family_mask):
                continue
            db.execute(
                "INSERT INTO cells VALUES (?,?,?,?,?) ON CONFLICT(tbl,row,col) DO UPDATE SET "
                "ts = excluded.ts, value = excluded.value WHERE excluded.ts >= cells.ts",
                (tid, row, col, ts, value),
            )

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
        out: dict[bytes, dict] = {}
        for batch in chunks(dict.fromkeys(rows), _IN_CHUNK):
            with self._lock:
                out.update(self._read_rows(tid, batch, cols, include_timestamp))
        return out

    def _read_rows(self, tid: int, rows: list[bytes], cols, include_timestamp: bool) -> dict:
        marks = ",".join("?" * len(rows))
        found = self._db.execute(
            f"SELECT row, col, value, ts FROM cells WHERE tbl=? AND row IN ({marks}) "
            "ORDER BY row, col",
            (tid, *rows),
        ).fetchall()
        return _group(found, cols, include_timestamp)

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
    ) -> Iterator[tuple[bytes, dict]]:
        """Iterate rows in key order, ``batch_size`` rows per query; see the contract."""
        if filter is not None:
            raise CapabilityError(
                f"{self._store.url}: server-side filter strings need HBase; "
                "evaluate the predicate client-side instead"
            )
        start, stop = _scan_bounds(start, stop, prefix)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        cols = [normalise_column(c) for c in columns] if columns is not None else None
        tid, _ = self._tid_families()
        return self._scan_rows(tid, start, stop, cols, batch_size, limit, include_timestamp)

    def _scan_rows(self, tid, start, stop, cols, batch_size, limit, include_timestamp):
        emitted = 0
        lower, inclusive = start, True
        while limit is None or emitted < limit:
            # Page by distinct row keys, then read their cells: keeps each query bounded
            # and lets concurrent writers proceed between pages, like an HBase scanner.
            op = ">=" if inclusive else ">"
            sql = f"SELECT DISTINCT row FROM cells WHERE tbl=? AND row {op} ?"
            args: list = [tid, lower]
            if stop is not None:
                sql += " AND row < ?"
                args.append(stop)
            want = batch_size if limit is None else min(batch_size, limit - emitted)
            if cols is not None:
                # Only rows that have one of the wanted columns count towards the page.
                clauses = []
                for col in cols:
                    if col.endswith(b":"):
                        clauses.append("(col >= ? AND col < ?)")
                        args += [col, prefix_stop(col)]
                    else:
                        clauses.append("col = ?")
                        args.append(col)
                sql += " AND (" + " OR ".join(clauses) + ")"
            sql += " ORDER BY row LIMIT ?"
            args.append(want)
            with self._lock:
                keys = [r[0] for r in self._db.execute(sql, args).fetchall()]
                if not keys:
                    return
                rows = self._read_rows(tid, keys, cols, include_timestamp)
            for key in keys:
                if key in rows:
                    yield key, rows[key]
                    emitted += 1
            if len(keys) < want:
                return
            lower, inclusive = keys[-1], False


def _group(found: list, cols, include_timestamp: bool) -> dict:
    out: dict[bytes, dict] = {}
    for row, col, value, ts in found:
        if cols is not None and not any(
            col == c or (c.endswith(b":") and col.startswith(c)) for c in cols
        ):
            continue
        out.setdefault(row, {})[col] = (value, ts) if include_timestamp else value
    return out


def _scan_bounds(start, stop, prefix) -> tuple[bytes, bytes | None]:
    if prefix is not None:
        if start is not None or stop is not None:
            raise ValueError("scan: give either prefix or start/stop, not both")
        return prefix, prefix_stop(prefix)
    return start or b"", stop or None


def _prepare(m: RowMutation, families: list[bytes], table: str) -> tuple[bytes, dict, list]:
    if not isinstance(m.row, bytes) or not m.row:
        raise StoreError(f"table {table!r}: row key must be non-empty bytes, got {m.row!r}")
    puts = {}
    for col, value in m.puts.items():
        col = normalise_column(col)
        _check_family(col, families, table)
        if not isinstance(value, bytes):
            raise StoreError(
                f"table {table!r}: value of {col!r} must be bytes, got {type(value).__name__}"
            )
        puts[col] = value
    deletes = []
    for col in m.deletes:
        col = normalise_column(col)
        _check_family(col, families, table)
        deletes.append(col if b":" in col else col + b":")
    return m.row, puts, deletes


def _check_family(col: bytes, families: list[bytes], table: str) -> None:
    if family_of(col) not in families:
        known = ", ".join(f.decode() for f in families)
        raise StoreError(f"table {table!r}: unknown column family in {col!r} (families: {known})")


def _check_timestamp(ts: int) -> None:
    if not isinstance(ts, int) or isinstance(ts, bool) or not 0 <= ts < 2**63 - 1:
        raise ValueError(f"timestamp must be an int in [0, 2**63-1), got {ts!r}")


def _validate_create(name: str, families: Sequence[str], split_keys: Sequence[bytes]) -> None:
    if not name or not isinstance(name, str):
        raise StoreError(f"table name must be a non-empty string, got {name!r}")
    if not families:
        raise StoreError(f"table {name!r}: at least one column family is required")
    if any(not isinstance(k, bytes) or not k for k in split_keys):
        raise StoreError(f"table {name!r}: split keys must be non-empty bytes")
    if len(set(split_keys)) != len(split_keys):
        raise StoreError(f"table {name!r}: duplicate split keys")
