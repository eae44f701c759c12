"""How long a table's rows live, as its schema declares it (``ttl``, ``age_off``).

Two declarations, either or both on a native table::

    [tables.events]
    ttl = "90d"                                        # by the time of the row's last write
    age_off = { column = "event_time", after = "30d" } # by a column's value

A duration is a whole number and one unit: ``90d``, ``12h``, ``30m``, ``45s``. The age-off
column is a ``datetime`` column or an ``int`` column holding Unix epoch time, in
milliseconds unless ``unit = "s"`` says seconds. A row whose age-off column is NULL never
ages off by it. When both are declared, a row expires as soon as either says so.

Only the declaration lives here; what "expired" means for a stored row is
:mod:`culvert_py.expiry`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from culvert_py.errors import SchemaError

#: Milliseconds per duration unit.
UNITS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000}
#: Epoch units an ``int`` age-off column may hold, in milliseconds per unit.
EPOCH_UNITS = {"ms": 1, "s": 1_000}
#: The longest lifetime accepted (a thousand years): longer ones are typos.
MAX_DURATION_MS = 1000 * 366 * UNITS["d"]
#: Column types an age-off column may have.
AGE_OFF_TYPES = ("datetime", "int")

_DURATION = re.compile(r"^([0-9]+)([dhms])$")
_AGE_OFF_KEYS = {"column", "after", "unit"}


@dataclass(frozen=True)
class Lifespan:
    """A table's age-off rules.

    :ivar ttl_ms: rows expire this long after their last write (``None``: no ttl)
    :ivar column: rows expire by this column's value (``None``: no age-off column)
    :ivar after_ms: ... this long after the value
    :ivar unit: milliseconds per unit of an ``int`` age-off column (1 or 1000)
    """

    ttl_ms: int | None = None
    column: str | None = None
    after_ms: int | None = None
    unit: int = 1


def parse_duration(value: Any, path: str) -> int:
    """Milliseconds of a duration such as ``"90d"``, ``"12h"``, ``"30m"`` or ``"45s"``.

    :param path: the dotted schema path, for the message
    :raises SchemaError: for anything else, a zero, or more than a thousand years
    """
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise SchemaError(
            f"{path}: expected a duration like '90d', '12h', '30m' or '45s', got {value!r}"
        )
    ms = int(match.group(1)) * UNITS[match.group(2)]
    if not 0 < ms <= MAX_DURATION_MS:
        raise SchemaError(f"{path}: {value!r}: a duration must be above 0 and at most 1000 years")
    return ms


def format_duration(ms: int) -> str:
    """The shortest schema text of ``ms`` milliseconds (the largest unit dividing it)."""
    for unit, size in UNITS.items():
        if ms % size == 0:
            return f"{ms // size}{unit}"
    raise AssertionError(ms)  # parse_duration only makes whole seconds


def parse_lifespan(
    table: str, spec: Mapping[str, Any], columns: Mapping[str, str], existing: bool
) -> Lifespan | None:
    """The :class:`Lifespan` a table's ``ttl`` and ``age_off`` keys declare (``None``: none).

    :param table: the table name, for messages
    :param spec: the table's schema section
    :param columns: its columns and types
    :param existing: whether it is an adopted table (which cannot age off)
    :raises SchemaError: naming the dotted path of the bad key
    """
    if "ttl" not in spec and "age_off" not in spec:
        return None
    if existing:
        key = "ttl" if "ttl" in spec else "age_off"
        raise SchemaError(
            f"{table}.{key}: an adopted table (existing = true) cannot age off: other "
            "applications write its rows without culvert_py's version cell"
        )
    ttl = parse_duration(spec["ttl"], f"{table}.ttl") if "ttl" in spec else None
    if "age_off" not in spec:
        return Lifespan(ttl_ms=ttl)
    path = f"{table}.age_off"
    age_off = spec["age_off"]
    if not isinstance(age_off, Mapping):
        raise SchemaError(f'{path}: expected {{ column = "NAME", after = "90d" }}, got {age_off!r}')
    for key in age_off:
        if key not in _AGE_OFF_KEYS:
            raise SchemaError(
                f"{path}: unknown key {key!r} (known: {', '.join(sorted(_AGE_OFF_KEYS))})"
            )
    column = age_off.get("column")
    if column not in columns:
        raise SchemaError(f"{path}.column: unknown column {column!r} (known: {', '.join(columns)})")
    if columns[column] not in AGE_OFF_TYPES:
        raise SchemaError(
            f"{path}.column: {column!r} is {columns[column]}; an age-off column is a datetime "
            "or an int of epoch time"
        )
    if "after" not in age_off:
        raise SchemaError(f"{path}.after: required (a duration like '90d')")
    after = parse_duration(age_off["after"], f"{path}.after")
    unit = age_off.get("unit", "ms")
    if columns[column] == "datetime" and "unit" in age_off:
        raise SchemaError(f"{path}.unit: only an int column takes a unit; {column!r} is datetime")
    if unit not in EPOCH_UNITS:
        raise SchemaError(
            f"{path}.unit: expected one of {', '.join(EPOCH_UNITS)} (epoch milliseconds or "
            f"seconds), got {unit!r}"
        )
    return Lifespan(ttl, column, after, EPOCH_UNITS[unit])


def lifespan_to_dict(lifespan: Lifespan | None) -> dict[str, Any]:
    """The schema keys that :func:`parse_lifespan` reads back into ``lifespan``."""
    if lifespan is None:
        return {}
    out: dict[str, Any] = {}
    if lifespan.ttl_ms is not None:
        out["ttl"] = format_duration(lifespan.ttl_ms)
    if lifespan.column is not None:
        out["age_off"] = {"column": lifespan.column, "after": format_duration(lifespan.after_ms)}
        if lifespan.unit != 1:
            out["age_off"]["unit"] = "s"
    return out
