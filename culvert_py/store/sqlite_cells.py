"""Cells of the embedded store: the contract's row operations as SQL statements.

The schema (tables ``cells`` and ``tombstones``) is :mod:`culvert_py.store.sqlite_file`'s;
the store contract's semantics on it (delete masks, newest timestamp wins) are here, for
:mod:`culvert_py.store.sqlite`.
"""

from __future__ import annotations

import sqlite3

from culvert_py.errors import StoreError
from culvert_py.store.base import (
    RowMutation,
    check_put,
    check_row,
    family_of,
    normalise_column,
    prefix_successor,
)

__all__ = ["apply_mutation", "check_family", "group_cells", "prepare", "read_rows"]


def apply_mutation(
    db: sqlite3.Connection, tid: int, row: bytes, puts: dict, deletes: list, ts: int
) -> None:
    """Apply one row's prepared puts and deletes at ``ts`` (deletes mask puts ``<= ts``)."""
    # Deletes first: a put and a delete of one cell at one timestamp leaves the delete
    # winning, as HBase does (the marker masks puts <= its timestamp).
    for col in deletes:
        if col.endswith(b":"):
            db.execute(
                "DELETE FROM cells WHERE tbl=? AND row=? AND col>=? AND col<? AND ts<=?",
                (tid, row, col, prefix_successor(col), ts),
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
        db.execute("SELECT col, ts FROM tombstones WHERE tbl=? AND row=?", (tid, row)).fetchall()
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


def read_rows(
    db: sqlite3.Connection, tid: int, rows: list, cols, include_timestamp: bool, times=None
):
    """``{row: cells}`` of ``rows`` restricted to ``cols`` (``None``: all), of the cells with
    ``times[0] <= ts < times[1]`` when ``times`` is given."""
    marks = ",".join("?" * len(rows))
    sql = f"SELECT row, col, value, ts FROM cells WHERE tbl=? AND row IN ({marks})"
    args: list = [tid, *rows]
    if times is not None:
        sql += " AND ts >= ? AND ts < ?"
        args += times
    found = db.execute(sql + " ORDER BY row, col", args).fetchall()
    return group_cells(found, cols, include_timestamp)


def group_cells(found: list, cols, include_timestamp: bool) -> dict:
    """``(row, col, value, ts)`` tuples as ``{row: cells}``, keeping the columns ``cols``."""
    out: dict[bytes, dict] = {}
    for row, col, value, ts in found:
        if cols is not None and not any(
            col == c or (c.endswith(b":") and col.startswith(c)) for c in cols
        ):
            continue
        out.setdefault(row, {})[col] = (value, ts) if include_timestamp else value
    return out


def prepare(m: RowMutation, families: list[bytes], table: str) -> tuple[bytes, dict, list]:
    """``(row, puts, deletes)`` of ``m``, checked, with whole families as ``b"f:"``.

    :raises ArgumentError: for a malformed row, column or value
    :raises StoreError: for a family the table does not have
    """
    check_row(m.row, table)
    puts = {}
    for col, value in m.puts.items():
        col = check_put(col, value, table)
        check_family(col, families, table)
        puts[col] = value
    deletes = []
    for col in m.deletes:
        col = normalise_column(col)
        check_family(col, families, table)
        deletes.append(col if b":" in col else col + b":")
    return m.row, puts, deletes


def check_family(col: bytes, families: list[bytes], table: str) -> None:
    """:raises StoreError: when ``col`` names a family the table does not have."""
    if family_of(col) not in families:
        known = ", ".join(f.decode() for f in families)
        raise StoreError(f"table {table!r}: unknown column family in {col!r} (families: {known})")
