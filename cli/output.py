"""Rendering rows for the terminal: aligned tables, JSON Lines and CSV, typed values."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime

FORMATS = ("table", "jsonl", "csv")

_MAX_CELL = 40


def json_value(value: object) -> object:
    """A value as JSON shows it: numbers, booleans, null; datetimes ISO-8601 with Z; bytes
    as hex; non-finite floats as the strings "inf", "-inf", "nan" (JSON has no literal)."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def text_value(value: object) -> str:
    """A value as one table or CSV cell (empty for NULL)."""
    if value is None:
        return ""
    value = json_value(value)
    return "true" if value is True else "false" if value is False else str(value)


def render_rows(rows: Iterable[dict], columns: Sequence[str], fmt: str) -> Iterable[str]:
    """Lines of output for ``rows`` (each dict may lack NULL columns)."""
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps({c: json_value(row.get(c)) for c in columns}, ensure_ascii=False)
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="")
        writer.writerow(columns)
        yield buffer.getvalue()
        for row in rows:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow([text_value(row.get(c)) for c in columns])
            yield buffer.getvalue()
    else:
        yield from _table(list(rows), columns)


def _table(rows: list[dict], columns: Sequence[str]) -> Iterable[str]:
    cells = [[_clip(text_value(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    yield "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    yield "  ".join("-" * w for w in widths)
    for row in cells:
        yield "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()


def _clip(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"
