"""Evaluation of a predicate on one row, with SQL's three-valued logic.

**Three-valued logic.** :func:`evaluate` follows SQL: a missing column or a ``None`` value is
NULL, and any comparison, BETWEEN, IN, LIKE or CONTAINS with a NULL operand is *unknown*
(``None``). NOT unknown is unknown; AND is false if any operand is false, else unknown if
any is unknown, else true; OR is the dual. IS [NOT] NULL is never unknown. A row matches
(:func:`matches`) only when the predicate is true, so ``~(col("age") > 3)`` does not match a
row without an age, exactly as an index on ``age`` (which has no entry for it to scan) says.

**Order.** Comparisons use :func:`~culvert_py.encoding.sort_key`, the order of the encoding
layer and so of every index range scan: ints and floats compare as numbers, ``-0.0 == 0.0``,
and NaN equals NaN and sorts above ``+inf``. Values of different types (a str with an int, a
bool with an int) are not comparable; :func:`~culvert_py.predicate.bind` rejects such
predicates up front.
"""

import numbers
from collections.abc import Mapping
from datetime import datetime

from culvert_py.encoding import sort_key
from culvert_py.errors import QueryError
from culvert_py.predicate.literal import Value, _describe
from culvert_py.predicate.tree import (
    _OP_TEST,
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
from culvert_py.text import tokenize


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, numbers.Real):
        return "number"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if isinstance(value, str):
        return "str"
    if isinstance(value, datetime):
        return "datetime"
    return type(value).__name__


def _compare(column: str, actual: object, literal: Value) -> int:
    """-1, 0 or 1 as the row's value sorts before, with or after the literal."""
    if _kind(actual) != _kind(literal):
        raise QueryError(
            f"cannot compare column {column!r} holding {type(actual).__name__} {actual!r} "
            f"with {_describe(literal)}"
        )
    if isinstance(actual, bytearray | memoryview):
        actual = bytes(actual)
    a, b = sort_key(actual), sort_key(literal)  # type: ignore[arg-type]
    try:
        return (a > b) - (a < b)
    except TypeError as exc:  # e.g. a naive datetime in the row
        raise QueryError(
            f"cannot compare column {column!r} holding {actual!r} with {_describe(literal)}: {exc}"
        ) from exc


def _text_value(column: str, actual: object, operator: str) -> str:
    if not isinstance(actual, str):
        raise QueryError(
            f"{operator} needs a str, but column {column!r} holds "
            f"{type(actual).__name__} {actual!r}"
        )
    return actual


def evaluate(expr: Expr, row: Mapping[str, object]) -> bool | None:
    """Evaluate a predicate on one row with SQL's three-valued logic.

    :param expr: the predicate
    :param row: column name → value; a missing column or ``None`` is NULL
    :returns: ``True``, ``False``, or ``None`` for unknown (a NULL operand decided it)
    :raises QueryError: the row holds a value that cannot be compared with the predicate's
        literal (a str where an int is expected): :func:`bind` the predicate to catch this
        before any row is read
    """
    match expr:
        case Compare(column, op, value):
            actual = row.get(column)
            return None if actual is None else _OP_TEST[op](_compare(column, actual, value))
        case And(children):
            unknown = False
            for child in children:
                result = evaluate(child, row)
                if result is False:
                    return False
                unknown = unknown or result is None
            return None if unknown else True
        case Or(children):
            unknown = False
            for child in children:
                result = evaluate(child, row)
                if result is True:
                    return True
                unknown = unknown or result is None
            return None if unknown else False
        case Not(child):
            result = evaluate(child, row)
            return None if result is None else not result
        case IsNull(column, negated):
            return (row.get(column) is None) != negated
        case Between(column, low, high):
            actual = row.get(column)
            if actual is None:
                return None
            return _compare(column, actual, low) >= 0 and _compare(column, actual, high) <= 0
        case In(column, values):
            actual = row.get(column)
            if actual is None:
                return None
            return any(_compare(column, actual, v) == 0 for v in values)
        case Prefix(column, prefix):
            actual = row.get(column)
            if actual is None:
                return None
            return _text_value(column, actual, "LIKE").startswith(prefix)
        case Contains(column, word):
            actual = row.get(column)
            if actual is None:
                return None
            return word in tokenize(_text_value(column, actual, "CONTAINS"))
        case Const(value):
            return value
    raise QueryError(f"not a predicate: {expr!r}")


def matches(expr: Expr, row: Mapping[str, object]) -> bool:
    """Whether a row satisfies a predicate (unknown does not satisfy it, as in SQL's WHERE).

    :param expr: the predicate
    :param row: column name → value; a missing column or ``None`` is NULL
    :returns: ``evaluate(expr, row) is True``
    :raises QueryError: as :func:`evaluate`
    """
    return evaluate(expr, row) is True


def _children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, And | Or):
        return expr.children
    if isinstance(expr, Not):
        return (expr.child,)
    return ()


def columns_of(expr: Expr) -> frozenset[str]:
    """The columns a predicate reads.

    :param expr: the predicate
    :returns: the column names
    :raises QueryError: ``expr`` is not a predicate
    """
    if not isinstance(expr, Expr):
        raise QueryError(f"not a predicate: {expr!r}")
    found: set[str] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        column = getattr(node, "column", None)
        if column is not None:
            found.add(column)
        stack.extend(_children(node))
    return frozenset(found)
