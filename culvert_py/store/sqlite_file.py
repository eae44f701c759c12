"""The one connection a SQLite store has to its file, opened only after the file is checked.

:class:`~culvert_py.store.sqlite.SQLiteStore` keeps the storage contract; everything it asks
of SQLite goes through :meth:`SQLiteFile.transact`, and everything about the file itself —
whether it may be opened, whether it holds a culvert layout, how long to wait for it — lives
here.

Opening checks the file at the door: a directory, a missing parent directory, a file that is
not a SQLite database, another application's database, a file without write permission —
each is a one-line :class:`StoreError`. A file opened with ``read_only=True``
(``sqlite:///path.db?mode=ro``) is read through a ``mode=ro`` URI, so a file the process may
not write can still be read.

Concurrency. One store object holds one connection, guarded by a lock: threads of one
process queue on the lock, never on SQLite. One connection (not one per thread) because an
in-memory database exists only inside its connection, because SQLite admits one writer at a
time anyway, and because ``close()`` then has exactly one thing to close. Several processes
(two ``culvert load`` runs, build shards, API workers) may open one file: the file is in WAL
mode, so readers never block the writer; every write is one transaction that takes the write
lock up front (``BEGIN IMMEDIATE``), so a read-compare-write such as ``check_and_mutate`` is
atomic across processes, and no read-then-write transaction can fail half-way on a lock
upgrade. While another process holds the lock, SQLite's busy handler waits up to a second per
statement, then the whole transaction (or read) is retried with jittered backoff; after
``timeout`` seconds in all (:data:`DEFAULT_TIMEOUT`, or ``sqlite:///path.db?timeout=S``)
:class:`TransientStoreError` names the file and the wait.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from culvert_py.errors import ArgumentError, StoreError, TransientStoreError

log = logging.getLogger(__name__)

#: The store's own tables, created when a file is opened for the first time.
_TABLES = {
    "tables": """CREATE TABLE IF NOT EXISTS tables (
        id INTEGER PRIMARY KEY,
        name TEXT UNIQUE NOT NULL,
        families TEXT NOT NULL,
        splits TEXT NOT NULL
    )""",
    "cells": """CREATE TABLE IF NOT EXISTS cells (
        tbl INTEGER NOT NULL,
        row BLOB NOT NULL,
        col BLOB NOT NULL,
        ts INTEGER NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (tbl, row, col)
    ) WITHOUT ROWID""",
    "tombstones": """CREATE TABLE IF NOT EXISTS tombstones (
        tbl INTEGER NOT NULL,
        row BLOB NOT NULL,
        col BLOB NOT NULL,
        ts INTEGER NOT NULL,
        PRIMARY KEY (tbl, row, col)
    ) WITHOUT ROWID""",
}

#: Seconds a store waits, in total, for another process to release the database file.
DEFAULT_TIMEOUT = 30.0

#: Seconds SQLite's busy handler waits per statement before the transaction is retried whole.
_BUSY_SLICE = 1.0

#: First and longest pause between retries of a transaction that found the file locked.
_BACKOFF_FIRST = 0.005
_BACKOFF_MAX = 0.25

_T = TypeVar("_T")


class SQLiteFile:
    """One guarded connection to a culvert SQLite database file (or to memory).

    :param path: database file path (created with the store's tables if absent), or ``":memory:"``
    :param read_only: open an existing file for reading only
    :param timeout: seconds to wait in total for other processes holding the file's lock
        before :meth:`transact` raises :class:`TransientStoreError`
    :raises StoreError: when ``path`` cannot be opened as a culvert store: a directory, a
        missing parent directory, not a SQLite database, another application's database, a
        file without write permission (unless ``read_only``), or a missing file (if
        ``read_only``); the message names the path and the reason on one line
    :raises ArgumentError: for a non-positive ``timeout`` or a read-only in-memory database
    """

    def __init__(self, path: str, read_only: bool, timeout: float) -> None:
        number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        if not number or not 0 < timeout < math.inf:  # the comparison is also false for nan
            raise ArgumentError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if read_only and path == ":memory:":
            raise ArgumentError("an in-memory SQLite store cannot be read-only")
        self.path = path
        self.read_only = read_only
        self.timeout = float(timeout)
        self._lock = threading.RLock()
        self._closed = False
        self._db = _connect(path, read_only, min(self.timeout, _BUSY_SLICE))
        try:
            self._setup()
        except BaseException:
            self._db.close()
            raise

    def transact(self, work: Callable[[sqlite3.Connection], _T], write: bool, failure: str) -> _T:
        """Run ``work(db)`` under the lock — inside one ``BEGIN IMMEDIATE`` transaction when
        ``write`` — retrying it whole while another process holds the file.

        :param work: the reads (and writes) to run; called again on each retry
        :param write: take the write lock up front and commit after ``work``
        :param failure: what failed, for the message of a non-transient error
        :returns: what ``work`` returned
        :raises StoreError: ``failure`` and SQLite's reason, for an error retrying cannot fix,
            or when the file has been closed
        :raises TransientStoreError: when the file stayed locked for ``self.timeout`` seconds
        """
        start = time.monotonic()
        delay = _BACKOFF_FIRST
        attempts = 0
        while True:
            attempts += 1
            with self._lock:
                if self._closed:
                    raise StoreError(f"{failure}: the store is closed")
                db = self._db
                try:
                    if write:
                        db.execute("BEGIN IMMEDIATE")
                    result = work(db)
                    if write:
                        db.execute("COMMIT")
                    return result
                except sqlite3.Error as exc:
                    _rollback(db)
                    if not _is_busy(exc):
                        raise StoreError(f"{failure}: {exc}") from exc
                    # The traceback's frames hold ``work``'s unfinished cursors, and an
                    # unfinished cursor keeps its read lock: held through the pause, it
                    # would block the very writer this process is waiting for.
                    traceback.clear_frames(exc.__traceback__)
                    busy = exc.with_traceback(None)
                except BaseException:
                    _rollback(db)
                    raise
            # The pause is taken outside the lock: other threads' reads need not wait for it.
            waited = time.monotonic() - start
            if waited >= self.timeout:
                raise TransientStoreError(
                    f"SQLite store {self.path!r} stayed locked by another connection: gave up "
                    f"after waiting {waited:.1f} s ({attempts} attempts, timeout "
                    f"{self.timeout:g} s)"
                ) from busy
            log.debug("%s is busy (%s); retry %d after %.1f s", self.path, busy, attempts, waited)
            time.sleep(min(delay * random.uniform(0.5, 1.0), self.timeout - waited))
            delay = min(delay * 2, _BACKOFF_MAX)

    def close(self) -> None:
        """Close the connection; later transactions raise :class:`StoreError`."""
        with self._lock:
            if not self._closed:
                self._db.close()
                self._closed = True

    def __enter__(self) -> SQLiteFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the layout check at the door --------------------------------------------------

    def _setup(self) -> None:
        cannot = f"cannot open SQLite store {self.path!r}"
        if self.read_only:
            try:
                missing = self.transact(self._check_layout, False, cannot)
            except StoreError as exc:
                hint = _read_only_wal_hint(self.path)
                if hint is None:
                    raise
                raise StoreError(f"{cannot} read-only: {hint}") from exc
            if missing:
                raise StoreError(
                    f"{cannot} read-only: it is not a culvert store yet "
                    f"(missing tables: {', '.join(missing)})"
                )
            return
        # The layout is checked before anything is written: another application's database
        # must be refused untouched, not switched to WAL mode or given our tables.
        missing = self.transact(self._check_layout, False, cannot)
        if self.path != ":memory:":
            self.transact(
                lambda db: db.execute("PRAGMA journal_mode=WAL").fetchall(), False, cannot
            )
            self._db.execute("PRAGMA synchronous=NORMAL")
        if missing:

            def create(db: sqlite3.Connection) -> None:
                # Re-checked under the write lock: another process may have created the
                # tables (or they may be somebody else's) since the first look.
                for name in self._check_layout(db):
                    db.execute(_TABLES[name])

            self.transact(create, True, cannot)

    def _check_layout(self, db: sqlite3.Connection) -> list[str]:
        """Return which of our tables are missing; raise if the file holds another layout."""
        cannot = f"cannot open SQLite store {self.path!r}"
        names = [
            r[0].lower()
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            )
        ]
        ours = [n for n in _TABLES if n in names]
        if names and not ours:
            shown = ", ".join(sorted(names)[:5]) + (", …" if len(names) > 5 else "")
            raise StoreError(
                f"{cannot}: it is another application's SQLite database (tables: {shown}), "
                "not a culvert store"
            )
        expected = _expected_layout()
        for name in ours:
            got = _layout(db, name)
            if got != expected[name]:
                raise StoreError(
                    f"{cannot}: its table {name!r} is not a culvert table (columns "
                    f"{', '.join(c[0] for c in got)}; expected "
                    f"{', '.join(c[0] for c in expected[name])})"
                )
        return [n for n in _TABLES if n not in names]


def _connect(path: str, read_only: bool, busy_timeout: float) -> sqlite3.Connection:
    """Open the connection after checking ``path`` the way a user would want it explained.

    :raises StoreError: ``cannot open SQLite store 'path': reason``, on one line
    """
    options = {"check_same_thread": False, "isolation_level": None, "timeout": busy_timeout}
    if path == ":memory:":
        return sqlite3.connect(path, **options)
    cannot = f"cannot open SQLite store {path!r}"
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise StoreError(f"{cannot}: it is a directory, not a database file")
    if not os.path.isdir(parent):
        what = "is not a directory" if os.path.exists(parent) else "does not exist"
        raise StoreError(f"{cannot}: directory {parent!r} {what}")
    exists = os.path.exists(path)
    if exists and not os.access(path, os.R_OK):
        raise StoreError(f"{cannot}: no permission to read the file")
    if read_only:
        if not exists:
            raise StoreError(f"{cannot} read-only: the file does not exist")
        target, uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro", True
    else:
        # SQLite would quietly open such a file read-only and fail at the first write, after
        # a load has done part of its work: refuse now and say how to read it instead.
        if exists and not os.access(path, os.W_OK):
            raise StoreError(
                f"{cannot}: the file is read-only (no write permission); "
                f"open sqlite:///{path}?mode=ro to read it"
            )
        if not exists and not os.access(parent, os.W_OK | os.X_OK):
            raise StoreError(f"{cannot}: cannot create it, directory {parent!r} is not writable")
        target, uri = path, False
    try:
        return sqlite3.connect(target, uri=uri, **options)
    except sqlite3.Error as exc:
        raise StoreError(f"{cannot}: {exc}") from exc


def _read_only_wal_hint(path: str) -> str | None:
    """Why a read-only open of a WAL-mode file failed, when it is the usual reason."""
    parent = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError:
        return None
    # Bytes 18-19 of the header are 2, 2 in WAL mode: readers then need the -shm file, which
    # only a writable directory lets SQLite create.
    if header[18:20] != b"\x02\x02" or os.path.exists(path + "-shm"):
        return None
    if os.access(parent, os.W_OK | os.X_OK):
        return None
    return (
        f"it is in WAL mode, so SQLite must create {path + '-shm'!r} beside it, but directory "
        f"{parent!r} is not writable"
    )


def _is_busy(exc: sqlite3.Error) -> bool:
    # Extended codes (SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED_SHAREDCACHE …) keep the primary
    # code in their low byte.
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return "locked" in str(exc) or "busy" in str(exc)
    return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _rollback(db: sqlite3.Connection) -> None:
    # SQLite rolls back by itself on some errors; then ROLLBACK fails and nothing is open.
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


def _layout(db: sqlite3.Connection, table: str) -> list[tuple]:
    """``(name, type, not null, primary-key position)`` of each column of ``table``."""
    return [
        (name, ctype.upper(), notnull, pk)
        for _, name, ctype, notnull, _, pk in db.execute(f"PRAGMA table_info({table})")
    ]


def _expected_layout() -> dict[str, list[tuple]]:
    # Derived from the DDL itself, so the check cannot drift from what we create.
    scratch = sqlite3.connect(":memory:")
    try:
        for ddl in _TABLES.values():
            scratch.execute(ddl)
        return {name: _layout(scratch, name) for name in _TABLES}
    finally:
        scratch.close()
