"""The value types a column can hold, checked the way every encoder needs.

:func:`check_value` admits a value for one of :data:`COLUMN_TYPES` and returns it normalised:
the value :mod:`culvert_py.encoding` stores and decoding gives back. Why the rules are what
they are (``bool`` is no ``int``, a naive datetime is refused, every NaN is one value, ``-0.0``
is ``0.0``) is set out in :mod:`culvert_py.encoding`, whose byte order they serve. Every
refusal is an :class:`~culvert_py.errors.EncodingError` naming the column and the value.
"""

import math
import numbers
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from culvert_py.errors import EncodingError

#: The type names a column may declare; :func:`check_value` says what each admits.
COLUMN_TYPES: frozenset[str] = frozenset({"int", "float", "str", "bytes", "bool", "datetime"})

_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 63) - 1

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATETIME_MIN_US = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_DATETIME_MAX_US = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)

_REPR_LIMIT = 60


def check_type_name(type_name: object, column: str | None = None) -> None:
    """Refuse a type name that is not one of :data:`COLUMN_TYPES`.

    :param type_name: the name to check
    :param column: column name used in the error message
    :raises EncodingError: naming the type and the known ones
    """
    if not isinstance(type_name, str) or type_name not in COLUMN_TYPES:
        known = ", ".join(sorted(COLUMN_TYPES))
        raise EncodingError(f"{_where(column)}unknown column type {type_name!r} (known: {known})")


def check_value(value: object, type_name: str, column: str | None = None) -> object:
    """Validate a value for a column type and return it normalised, without encoding it.

    Normalised means the value the encoding stores and decoding returns: ``int`` for int
    columns, ``float`` for float columns (``-0.0`` becomes ``0.0``, any NaN becomes
    ``math.nan``), ``bytes`` for bytes-like values, an aware UTC ``datetime``.

    :param value: the value, or ``None`` for NULL (always valid, returned unchanged)
    :param type_name: one of :data:`COLUMN_TYPES`
    :param column: column name used in error messages
    :returns: the normalised value
    :raises EncodingError: unknown type name, wrong Python type (``bool`` is not an ``int``),
        int out of 64-bit range, lone surrogate in a str, naive or out-of-range datetime
    """
    check_type_name(type_name, column)
    if value is None:
        return None
    return _CHECKS[type_name](value, column)


def short_repr(value: object) -> str:
    """``repr(value)`` as error messages show it: cut to 60 characters, never failing.

    :param value: any object
    :returns: its repr, or a placeholder for an int too long to print
    """
    try:
        text = repr(value)
    except ValueError:  # ints beyond sys.get_int_max_str_digits() refuse to print
        return f"<{type(value).__name__} too long to show>"
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _where(column: str | None) -> str:
    return f"column {column!r}: " if column is not None else ""


def _wrong_type(value: object, type_name: str, column: str | None) -> EncodingError:
    return EncodingError(
        f"{_where(column)}expected {type_name}, got {type(value).__name__} {short_repr(value)}"
    )


def _check_int(value: object, column: str | None) -> int:
    # numbers.Integral admits numpy integers; bool is an Integral too, but True is not a number
    # a user meant to store in an int column.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _wrong_type(value, "int", column)
    result = int(value)
    if not _INT_MIN <= result <= _INT_MAX:
        raise EncodingError(
            f"{_where(column)}int {short_repr(result)} out of range [-2**63, 2**63 - 1]"
        )
    return result


def _check_float(value: object, column: str | None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _wrong_type(value, "float", column)
    try:
        result = float(value)
    except OverflowError as exc:
        raise EncodingError(
            f"{_where(column)}{type(value).__name__} {short_repr(value)} too large for float"
        ) from exc
    if math.isnan(result):
        return math.nan
    # -0.0 == 0.0 in Python, so both must have one encoding; 0.0 + 0.0 would keep -0.0.
    return 0.0 if result == 0.0 else result


def _check_str(value: object, column: str | None) -> str:
    if not isinstance(value, str):
        raise _wrong_type(value, "str", column)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise EncodingError(
                f"{_where(column)}str {short_repr(value)} contains lone surrogate "
                f"U+{ord(value[exc.start]):04X} at index {exc.start}, which UTF-8 cannot encode"
            ) from exc
    return value


def _check_bytes(value: object, column: str | None) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise _wrong_type(value, "bytes", column)
    return bytes(value)


def _check_bool(value: object, column: str | None) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type(value, "bool", column)
    return value


def _datetime_micros(value: datetime) -> int:
    # Aware subtraction works on the instant without building an intermediate datetime, so it
    # cannot overflow near datetime.min/max the way value.astimezone(UTC) can.
    return (value - _EPOCH) // timedelta(microseconds=1)


def _check_datetime(value: object, column: str | None) -> datetime:
    if not isinstance(value, datetime):
        raise _wrong_type(value, "datetime", column)
    if value.utcoffset() is None:
        raise EncodingError(
            f"{_where(column)}naive datetime {value.isoformat()!r} has no timezone; "
            "attach one, e.g. value.replace(tzinfo=datetime.timezone.utc)"
        )
    micros = _datetime_micros(value)
    if not _DATETIME_MIN_US <= micros <= _DATETIME_MAX_US:
        raise EncodingError(
            f"{_where(column)}datetime {value.isoformat()!r} is outside "
            "datetime.min..datetime.max once converted to UTC"
        )
    return _EPOCH + timedelta(microseconds=micros)


_CHECKS: dict[str, Callable[[object, str | None], object]] = {
    "int": _check_int,
    "float": _check_float,
    "str": _check_str,
    "bytes": _check_bytes,
    "bool": _check_bool,
    "datetime": _check_datetime,
}
