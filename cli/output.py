"""Rendering of result rows: aligned tables, JSON Lines, CSV; Parquet files of them."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from datetime import datetime

FORMATS = ("table", "jsonl", "csv")
#: What ``culvert query --format`` takes: Parquet only into a file (``--output``).
QUERY_FORMATS = (*FORMATS, "parquet")

_MAX_CELL = 40
#: Characters that make a CSV field need quotes (RFC 4180, plus a lone CR).
_SPECIAL = re.compile(r'[",\r\n]')


def json_value(value: object) -> object:
    """A value as JSON shows it: numbers, booleans, null; datetimes ISO-8601 with Z; bytes
    as hex; non-finite floats as the strings "inf", "-inf", "nan" (JSON has no literal for
    them, and strings are what every JSON parser reads; ``culvert load`` takes them back)."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def text_value(value: object, null: str | None = None) -> str:
    """A value as one table or CSV cell (``null``, default empty, for NULL)."""
    if value is None:
        return null or ""
    value = json_value(value)
    return "true" if value is True else "false" if value is False else str(value)


def csv_field(value: object, null: str | None = None) -> str:
    """A value as one CSV field, which ``culvert load`` (given the same ``null``) and any
    RFC 4180 reader read back as the same text.

    NULL is ``null`` unquoted (default: the empty field). Every other value is quoted when
    its text holds a quote, comma, CR or LF, has surrounding whitespace, is empty or equals
    ``null``: the loader never reads a quoted field as NULL, so ``""`` is the empty string
    and ``"NA"`` the text NA, whatever the token.
    """
    if value is None:
        return null or ""
    text = text_value(value)
    if text == "" or text == null or text != text.strip() or _SPECIAL.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def render_rows(
    rows: Iterable[dict], columns: Sequence[str], fmt: str, null: str | None = None
) -> Iterable[str]:
    """Lines of output for ``rows`` (each dict may lack NULL columns).

    :param rows: row dicts
    :param columns: the columns to show, in order
    :param fmt: one of :data:`FORMATS`; ``jsonl`` and ``csv`` load back with ``culvert load``
        into the same values (NaN and infinities are JSON strings, bytes hex, datetimes
        ISO-8601 in UTC)
    :param null: how ``csv`` and ``table`` show NULL (default: empty); JSON has ``null``
    :return: one string per record; a CSV record may span lines (a quoted line break)
    """
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps({c: json_value(row.get(c)) for c in columns}, ensure_ascii=False)
    elif fmt == "csv":
        yield ",".join(csv_field(c) for c in columns)
        for row in rows:
            yield ",".join(csv_field(row.get(c), null) for c in columns)
    else:
        yield from _table(list(rows), columns, null)


def _table(rows: list[dict], columns: Sequence[str], null: str | None) -> Iterable[str]:
    cells = [[_clip(text_value(r.get(c), null)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    yield "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    yield "  ".join("-" * w for w in widths)
    for row in cells:
        yield "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()


def _clip(text: str) -> str:
    # One cell, one line: a CR would also send the terminal back over the row.
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def write_output(result, columns: Sequence[str], fmt: str, null: str | None, path: str) -> int:
    """Write a query's rows to the file ``path`` in ``fmt`` (``parquet`` too); return the count.

    Parquet is written one record batch at a time, typed from the schema
    (:mod:`culvert_py.frames`), and reads back with ``culvert load`` into the same rows.

    :param result: the query's :class:`~culvert_py.query.executor.QueryResult`
    :param columns: the columns, in order (the text formats; Parquet takes the query's)
    :param fmt: one of :data:`QUERY_FORMATS`
    :param null: how ``csv`` and ``table`` show NULL
    :param path: the output file (replaced)
    :raises CulvertError: when the file cannot be written
    """
    from culvert_py.errors import CulvertError
    from culvert_py.frames import arrow_schema, iter_batches, write_parquet

    try:
        if fmt == "parquet":
            schema = arrow_schema(result.plan.table, columns)
            return write_parquet(iter_batches(result, schema), schema, path)
        count = 0
        with open(path, "w", encoding="utf-8", newline="") as out:

            def counted(rows: Iterable[dict]) -> Iterable[dict]:
                nonlocal count
                for row in rows:
                    count += 1
                    yield row

            for line in render_rows(counted(result), columns, fmt, null):
                out.write(line + "\n")
        return count
    except OSError as exc:
        raise CulvertError(f"--output {path!r}: cannot write: {exc.strerror or exc}") from exc
