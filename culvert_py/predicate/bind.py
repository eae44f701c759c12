"""Binding of a predicate to a table's column types, with its literals coerced."""

import difflib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeAlias

from culvert_py.encoding import COLUMN_TYPES, check_value
from culvert_py.errors import EncodingError, QueryError
from culvert_py.predicate.literal import Value, _describe
from culvert_py.predicate.tree import (
    And,
    Between,
    Compare,
    Const,
    Contains,
    Expr,
    In,
    IsNull,
    Not,
    Or,
    Prefix,
)

_KNOWN_SHOWN = 20

Locate: TypeAlias = Callable[[Expr, str | int], str | None]
"""``locate(node, part)`` → ``"line:column"`` of a node's ``"column"`` or of its value number
``part`` (0 for the only value; 0 and 1 for BETWEEN's bounds; the index in an IN list), or None."""


class _Binder:
    """One :func:`bind` call: the table's columns and where to point errors."""

    def __init__(self, column_types: Mapping[str, str], locate: Locate | None) -> None:
        if not isinstance(column_types, Mapping):
            raise QueryError(
                f"column types must be a mapping of name to type, got {column_types!r}"
            )
        for name, type_name in column_types.items():
            if type_name not in COLUMN_TYPES:
                raise QueryError(
                    f"column {name!r} has unknown type {type_name!r} "
                    f"(known: {', '.join(sorted(COLUMN_TYPES))})"
                )
        self.types = column_types
        self.locate = locate

    def at(self, node: Expr, part: str | int) -> str:
        where = self.locate(node, part) if self.locate is not None else None
        return f" at {where}" if where else ""

    def column(self, node: Expr, column: str) -> str:
        type_name = self.types.get(column)
        if type_name is not None:
            return type_name
        names = list(self.types)
        close = difflib.get_close_matches(column, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        shown = ", ".join(names[:_KNOWN_SHOWN]) + (", …" if len(names) > _KNOWN_SHOWN else "")
        raise QueryError(
            f"unknown column {column!r}{self.at(node, 'column')} ({hint}known: {shown or 'none'})"
        )

    def value(self, node: Expr, column: str, type_name: str, value: Value, part: int) -> Value:
        fits = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, int | float) and not isinstance(value, bool),
            "str": isinstance(value, str),
            "bytes": isinstance(value, bytes),
            "bool": isinstance(value, bool),
            "datetime": isinstance(value, datetime),
        }[type_name]
        if not fits:
            raise QueryError(
                f"cannot compare {type_name} column {column!r} with {_describe(value)}"
                f"{self.at(node, part)}"
            )
        if type_name == "float" and isinstance(value, int):
            # An int the float column cannot hold exactly would silently match a neighbour.
            try:
                exact = float(value) == value
            except OverflowError:
                exact = False
            if not exact:
                raise QueryError(
                    f"integer {value} has no exact float value to compare with float column "
                    f"{column!r}{self.at(node, part)}"
                )
        try:
            return check_value(value, type_name, column)  # type: ignore[return-value]
        except EncodingError as exc:
            raise QueryError(f"{exc}{self.at(node, part)}") from exc

    def text_column(self, node: Expr, column: str, operator: str, purpose: str) -> None:
        type_name = self.column(node, column)
        if type_name != "str":
            raise QueryError(
                f"cannot use {operator} on {type_name} column {column!r}"
                f"{self.at(node, 'column')} ({purpose} needs a str column)"
            )

    def bind(self, node: Expr) -> Expr:
        match node:
            case Compare(column, op, value):
                type_name = self.column(node, column)
                return Compare(column, op, self.value(node, column, type_name, value, 0))
            case Between(column, low, high):
                type_name = self.column(node, column)
                return Between(
                    column,
                    self.value(node, column, type_name, low, 0),
                    self.value(node, column, type_name, high, 1),
                )
            case In(column, values):
                type_name = self.column(node, column)
                return In(
                    column,
                    tuple(self.value(node, column, type_name, v, i) for i, v in enumerate(values)),
                )
            case Prefix(column, prefix):
                self.text_column(node, column, "LIKE", "prefix matching")
                try:
                    check_value(prefix, "str", column)
                except EncodingError as exc:
                    raise QueryError(f"{exc}{self.at(node, 0)}") from exc
                return node
            case Contains(column, _):
                self.text_column(node, column, "CONTAINS", "text search")
                return node
            case IsNull(column, _):
                self.column(node, column)
                return node
            case And(children):
                return And(tuple(self.bind(c) for c in children))
            case Or(children):
                return Or(tuple(self.bind(c) for c in children))
            case Not(child):
                return Not(self.bind(child))
            case Const():
                return node
        raise QueryError(f"not a predicate: {node!r}")


def bind(expr: Expr, column_types: Mapping[str, str], *, locate: Locate | None = None) -> Expr:
    """Check a predicate against a table's columns and coerce its literals to their types.

    An int literal compared with a float column becomes a float (when it has an exact float
    value); every other literal must already have the column's type: a bool is not an int,
    an int is not a bool, a str is not a datetime. LIKE and CONTAINS need str columns.
    Literals are normalised as the encoding stores them (``-0.0`` → ``0.0``, datetimes in
    UTC), so the bound predicate can be turned into index keys directly.

    :param expr: the predicate
    :param column_types: column name → type name (see :data:`culvert_py.encoding.COLUMN_TYPES`)
    :param locate: for error messages: ``locate(node, part)`` gives the ``line:column`` of the
        offending part of a node of ``expr`` (see :data:`Locate`); the parser passes one
    :returns: an equal-shaped predicate with coerced literals
    :raises QueryError: an unknown column, a literal of the wrong type or out of the
        column type's range, LIKE/CONTAINS on a non-str column, or an unknown column type in
        ``column_types``; the message names the column and the literal
    """
    return _Binder(column_types, locate).bind(expr)
