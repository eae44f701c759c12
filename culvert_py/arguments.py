"""Checks of public arguments, shared by every entry point so each refuses alike.

Each raises :class:`~culvert_py.errors.ArgumentError` naming where (the method) and the
value, before anything is read or written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from culvert_py.errors import ArgumentError


def check_count(where: str, name: str, value: object, minimum: int) -> None:
    """Refuse anything but an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ArgumentError(f"{where}: {name}={value!r:.60}: expected an integer >= {minimum}")


def check_flag(where: str, name: str, value: object) -> None:
    """Refuse anything but ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise ArgumentError(f"{where}: {name}={value!r:.60}: expected True or False")


def check_name(where: str, name: object) -> None:
    """Refuse a table name that is not a non-empty string."""
    if not isinstance(name, str) or not name:
        raise ArgumentError(f"{where}: name={name!r:.60}: expected a table name")


def check_iterable(table: str, method: str, name: str, value, items: str, one: str) -> None:
    """Refuse what iterates but is not a collection of items: a str, bytes or one dict."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ArgumentError(
            f"{table}: {method}: {name}={value!r:.60}: expected an iterable of {items} "
            f"(for one: {one})"
        )


def check_columns(table: str, columns: object) -> list[str] | None:
    """``columns`` as a list of names; a lone string is refused, not read as its letters."""
    if columns is None:
        return None
    if isinstance(columns, str | bytes) or not isinstance(columns, Iterable):
        hint = f"; for one column pass [{columns!r}]" if isinstance(columns, str) else ""
        raise ArgumentError(f"{table}: columns={columns!r:.60}: expected a list of names{hint}")
    names = list(columns)
    for name in names:
        if not isinstance(name, str):
            raise ArgumentError(f"{table}: columns: expected column names, got {name!r:.60}")
    return names
