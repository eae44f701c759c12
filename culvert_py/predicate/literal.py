"""The literals of the predicate language: their canonical values, their spelling as text.

A literal is an ``int``, ``float``, ``str``, ``bytes``, ``bool`` or timezone-aware ``datetime``
(stored converted to UTC); ``None`` is not a value: a predicate asks ``IS NULL`` instead.
:func:`_literal` makes equal literals equal Python values with equal hashes (bytes-like made
``bytes``, NaN, ``-0.0`` and datetimes canonical); :func:`_literal_text` writes one as the
text syntax of :mod:`culvert_py.predicate.parse` reads it back.
"""

import math
import numbers
import re
from datetime import UTC, datetime
from typing import TypeAlias

from culvert_py.errors import QueryError

Value: TypeAlias = int | float | str | bytes | bool | datetime
"""A literal a predicate compares with."""

KEYWORDS: frozenset[str] = frozenset(
    {
        "AND",
        "OR",
        "NOT",
        "BETWEEN",
        "IN",
        "LIKE",
        "ESCAPE",
        "IS",
        "NULL",
        "TRUE",
        "FALSE",
        "CONTAINS",
        "TIMESTAMP",
        "NAN",
    }
)
"""Words reserved by the text syntax (any case); a column so named is written double-quoted."""

_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPE_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "float",
    str: "string",
    bytes: "bytes",
    datetime: "timestamp",
}


def _literal(value: object, column: str) -> Value:
    """``value`` as a predicate literal: validated, bytes-like made bytes, NaN, -0.0 and
    datetimes canonical (so equal literals are equal nodes with equal hashes)."""
    if value is None:
        raise QueryError(
            f"column {column!r}: None (NULL) is not a value to compare with; "
            "use col(...).is_null() or .is_not_null() (IS NULL / IS NOT NULL)"
        )
    if isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return math.nan
        return 0.0 if number == 0.0 else number
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise QueryError(
                f"column {column!r}: naive datetime {value.isoformat()!r} has no timezone; "
                "attach one, e.g. value.replace(tzinfo=datetime.timezone.utc)"
            )
        try:
            # fold only disambiguates local wall times; in UTC it would just differ in repr.
            return value.astimezone(UTC).replace(fold=0)
        except OverflowError as exc:
            raise QueryError(
                f"column {column!r}: datetime {value.isoformat()!r} is out of range in UTC"
            ) from exc
    raise QueryError(
        f"column {column!r}: cannot compare with {type(value).__name__} {value!r}; "
        "expected int, float, str, bytes, bool or an aware datetime"
    )


def _describe(value: Value) -> str:
    """``string 'x'``, ``integer 3``: a literal as an error message names it."""
    kind = _TYPE_NAMES.get(type(value), type(value).__name__)
    return f"{kind} {_literal_text(value)}"


def _name_text(name: str) -> str:
    if _BARE_NAME.fullmatch(name) and name.upper() not in KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def _string_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _literal_text(value: Value) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            # A numeral too large for a float reads back as infinity.
            return "1e999" if value > 0 else "-1e999"
        return repr(value)
    if isinstance(value, str):
        return _string_text(value)
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    if isinstance(value, datetime):
        text = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return f"TIMESTAMP '{text}'"
    raise QueryError(f"{type(value).__name__} {value!r} has no literal in the text syntax")


def _like_text(prefix: str) -> str:
    if "%" not in prefix and "_" not in prefix:
        return f"LIKE {_string_text(prefix + '%')}"
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"LIKE {_string_text(escaped + '%')} ESCAPE '\\'"
