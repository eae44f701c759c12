"""Whether a stored row has outlived its table's lifespan at a given moment.

Expiry is judged when a row is read, never left to HBase's per-cell TTL: a row's untouched
cells would expire before its rewritten ones (a half row), and index entries that a write
leaves unchanged are not rewritten, so they would vanish while their row lives. Here a row
expires whole, at one deadline computed from two things every read of it can see:

- ``ttl``: the time of its last write, which the version cell carries (every write through
  the protocol rewrites it, whatever columns change; a repair touch keeps the time);
- ``age_off``: the value of the age-off column.

An index entry is only ever used after its row is read (tables with a lifespan have no
trusted covered entries), so an entry is visible exactly while its row is.

:class:`AgeOff` is the change an age-off job hands the write protocol for each expired row
it found: the protocol judges expiry again at the write's own timestamp (see
:mod:`culvert_py.write`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from culvert_py.layout import data_column, decode_row, version_column
from culvert_py.lifespan import Lifespan
from culvert_py.schema import TableDef

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def written_at(version: bytes | None) -> int | None:
    """The time (ms) of the write that set a version cell value; ``None`` without one."""
    if not version or len(version) < 8:
        return None
    return int.from_bytes(version[:8], "big")


def epoch_ms(value: object, lifespan: Lifespan) -> int | None:
    """An age-off column value as epoch milliseconds (floored); ``None`` for NULL."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value - _EPOCH) // _MS
    return int(value) * lifespan.unit  # type: ignore[call-overload]


def column_value(ms: int, lifespan: Lifespan, typ: str) -> object:
    """The smallest age-off column value whose epoch milliseconds are at least ``ms``."""
    if typ == "datetime":
        return _EPOCH + ms * _MS
    return -(-ms // lifespan.unit)


def expires_at(lifespan: Lifespan, version: bytes | None, row: Mapping | None) -> int | None:
    """The moment (ms) a row stops being live; ``None`` when it never expires.

    :param version: the row's version cell value (for ``ttl``)
    :param row: the row as decoded (for ``age_off``; it must hold the age-off column)
    """
    deadlines = []
    if lifespan.ttl_ms is not None:
        written = written_at(version)
        if written is not None:
            deadlines.append(written + lifespan.ttl_ms)
    if lifespan.column is not None and row is not None:
        value = epoch_ms(row.get(lifespan.column), lifespan)
        if value is not None:
            deadlines.append(value + lifespan.after_ms)  # type: ignore[operator]
    return min(deadlines) if deadlines else None


def is_expired(lifespan: Lifespan, version: bytes | None, row: Mapping | None, now: int) -> bool:
    """Whether a row with this version cell value and these values is dead at ``now``."""
    deadline = expires_at(lifespan, version, row)
    return deadline is not None and deadline <= now


def alive(table: TableDef, row: dict | None, cells: Mapping, now: int | None) -> dict | None:
    """``row`` if it is live at ``now``, else ``None`` (``now=None``: no expiry judged).

    :param row: the row :func:`~culvert_py.layout.decode_row` made of ``cells``
    :param cells: the cells it was read from (values or ``(value, timestamp)`` pairs)
    """
    if row is None or now is None or table.lifespan is None:
        return row
    version = cells.get(version_column(table))
    if isinstance(version, tuple):
        version = version[0]
    return None if is_expired(table.lifespan, version, row, now) else row


def expiry_cells(table: TableDef) -> list[bytes]:
    """The cells a read must include to judge expiry: the version cell, the age-off column."""
    cells = [version_column(table)]
    if table.lifespan is not None and table.lifespan.column is not None:
        cells.append(data_column(table, table.lifespan.column))
    return cells


def live_rows(
    table: TableDef, found: Mapping, pks: list[bytes], now: int, columns=None
) -> list[dict | None]:
    """The rows of ``pks`` in ``found`` (a ``get_many`` answer), ``None`` for absent or expired
    ones, each cut to ``columns`` (the expiry cells a read adds are not the caller's)."""
    rows = [alive(table, decode_row(table, found.get(pk, {}), pk=pk), found.get(pk, {}), now)
            for pk in pks]  # fmt: skip
    if columns is None:
        return rows
    return [r if r is None else {c: v for c, v in r.items() if c in columns} for r in rows]


class AgeOff:
    """A change that deletes its row only if the row is expired when written (age-off).

    One instance serves as the change of every row of a job and counts what became of them.

    :ivar deleted: rows it deleted
    :ivar skipped: rows that were no longer expired (rewritten) or gone when written
    """

    def __init__(self) -> None:
        self.deleted = 0
        self.skipped = 0
        self._lock = threading.Lock()

    def count(self, deleted: int = 0, skipped: int = 0) -> None:
        """Add to the counters (from any thread)."""
        with self._lock:
            self.deleted += deleted
            self.skipped += skipped
