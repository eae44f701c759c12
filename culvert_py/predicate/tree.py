"""The predicate tree: frozen nodes compared by value, printed in the text syntax.

Build predicates with :func:`~culvert_py.predicate.col` and combine them with ``&`` (and),
``|`` (or) and ``~`` (not)::

    (col("origin") == "JFK") & (col("dep_delay") > 120) | col("tail").is_null()

The parentheses around comparisons are needed: Python's ``&`` and ``|`` bind tighter than
``==``. Predicates have no truth value, so ``and``/``or``/``not`` and chained comparisons
(``1 < col("x") < 5``) raise :class:`~culvert_py.errors.QueryError` instead of silently
dropping half of the predicate. The nodes are frozen, hashable dataclasses compared by value,
so the same predicate built twice, or parsed from text, is equal.

Values are ``int``, ``float``, ``str``, ``bytes``, ``bool`` or timezone-aware ``datetime``
(stored converted to UTC); ``None`` is not a value: ask :meth:`Col.is_null` instead.

**Text.** ``str(predicate)`` and :func:`to_text` write the syntax of
:mod:`culvert_py.predicate.parse`; ``parse(to_text(p)) == p`` for every predicate ``p``.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from culvert_py.errors import QueryError
from culvert_py.predicate.literal import (
    Value,
    _like_text,
    _literal,
    _literal_text,
    _name_text,
    _string_text,
)
from culvert_py.text import normalize_token

_OP_TEST: dict[str, Callable[[int], bool]] = {
    "=": lambda c: c == 0,
    "!=": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}
_NO_TRUTH_VALUE = (
    "a predicate has no truth value: use & | ~ not and/or/not, with parentheses around "
    "comparisons, e.g. (col('a') == 1) & (col('b') == 2), and col(...).between(low, high) "
    "rather than a chained comparison"
)


def _check_column(column: object) -> str:
    if not isinstance(column, str) or not column:
        raise QueryError(f"column name must be a non-empty str, got {column!r}")
    return column


class Expr:
    """Base class of every predicate node; combine nodes with ``&``, ``|`` and ``~``."""

    __slots__ = ()

    def __and__(self, other: "Expr") -> "And":
        return _junction_of(And, self, other, "&")

    def __or__(self, other: "Expr") -> "Or":
        return _junction_of(Or, self, other, "|")

    def __rand__(self, other: object) -> "And":
        raise QueryError(_combine_message(other, "&"))

    def __ror__(self, other: object) -> "Or":
        raise QueryError(_combine_message(other, "|"))

    def __invert__(self) -> "Not":
        return Not(self)

    def __bool__(self) -> bool:
        raise QueryError(_NO_TRUTH_VALUE)

    def __str__(self) -> str:
        return _render(self)


def _combine_message(other: object, symbol: str) -> str:
    return (
        f"cannot combine a predicate with {type(other).__name__} {other!r} using {symbol}: "
        "both sides must be predicates, and comparisons need parentheses, e.g. "
        f"(col('a') == 1) {symbol} (col('b') == 2)"
    )


def _junction_of(cls: "type[And] | type[Or]", left: Expr, right: object, symbol: str) -> Any:
    if not isinstance(right, Expr):
        raise QueryError(_combine_message(right, symbol))
    children = left.children if isinstance(left, cls) else (left,)
    children += right.children if isinstance(right, cls) else (right,)
    return cls(children)


@dataclass(frozen=True, slots=True)
class Compare(Expr):
    """``column op value``, with ``op`` one of ``= != < <= > >=`` (``<>`` is read as ``!=``)."""

    column: str
    op: str
    value: Value

    def __post_init__(self) -> None:
        _check_column(self.column)
        op = "!=" if self.op == "<>" else self.op
        if op not in _OP_TEST:
            raise QueryError(f"unknown comparison operator {self.op!r} (known: = != < <= > >=)")
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "value", _literal(self.value, self.column))


@dataclass(frozen=True, slots=True)
class Between(Expr):
    """``low <= column <= high`` (inclusive at both ends; empty when ``low > high``)."""

    column: str
    low: Value
    high: Value

    def __post_init__(self) -> None:
        _check_column(self.column)
        object.__setattr__(self, "low", _literal(self.low, self.column))
        object.__setattr__(self, "high", _literal(self.high, self.column))


@dataclass(frozen=True, slots=True)
class In(Expr):
    """``column`` equals one of ``values`` (at least one)."""

    column: str
    values: tuple[Value, ...]

    def __post_init__(self) -> None:
        _check_column(self.column)
        if isinstance(self.values, str | bytes) or not isinstance(self.values, Iterable):
            raise QueryError(
                f"column {self.column!r}: IN needs a collection of values, got {self.values!r}"
            )
        values = tuple(_literal(v, self.column) for v in self.values)
        if not values:
            raise QueryError(f"column {self.column!r}: IN needs at least one value")
        object.__setattr__(self, "values", values)


@dataclass(frozen=True, slots=True)
class Prefix(Expr):
    """The str ``column`` starts with ``prefix`` (``LIKE 'prefix%'``)."""

    column: str
    prefix: str

    def __post_init__(self) -> None:
        _check_column(self.column)
        if not isinstance(self.prefix, str):
            raise QueryError(
                f"column {self.column!r}: a prefix must be a str, got "
                f"{type(self.prefix).__name__} {self.prefix!r}"
            )


@dataclass(frozen=True, slots=True)
class Contains(Expr):
    """The str ``column`` has ``word`` among its tokens (:func:`culvert_py.text.tokenize`).

    ``word`` is stored normalised (:func:`culvert_py.text.normalize_token`).
    """

    column: str
    word: str

    def __post_init__(self) -> None:
        _check_column(self.column)
        try:
            word = normalize_token(self.word)
        except QueryError as exc:
            raise QueryError(f"CONTAINS on column {self.column!r}: {exc}") from exc
        object.__setattr__(self, "word", word)


@dataclass(frozen=True, slots=True)
class IsNull(Expr):
    """``column IS NULL`` (missing or ``None``), or ``IS NOT NULL`` when ``negated``."""

    column: str
    negated: bool = False

    def __post_init__(self) -> None:
        _check_column(self.column)
        if not isinstance(self.negated, bool):
            raise QueryError(f"IsNull.negated must be a bool, got {self.negated!r}")


@dataclass(frozen=True, slots=True)
class Const(Expr):
    """A predicate that is always true or always false (``TRUE`` / ``FALSE``)."""

    value: bool

    def __post_init__(self) -> None:
        if not isinstance(self.value, bool):
            raise QueryError(f"Const.value must be a bool, got {self.value!r}")


def _check_children(kind: str, children: object) -> tuple[Expr, ...]:
    if not isinstance(children, Iterable):
        raise QueryError(f"{kind} needs a tuple of predicates, got {children!r}")
    result = tuple(children)
    for child in result:
        if not isinstance(child, Expr):
            raise QueryError(f"{kind}: {child!r} is not a predicate")
    if len(result) < 2:
        raise QueryError(
            f"{kind} needs at least two predicates, got {len(result)}; "
            "use the predicate itself, or TRUE/FALSE for none"
        )
    return result


@dataclass(frozen=True, slots=True)
class And(Expr):
    """All of ``children`` (at least two)."""

    children: tuple[Expr, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "children", _check_children("AND", self.children))


@dataclass(frozen=True, slots=True)
class Or(Expr):
    """Any of ``children`` (at least two)."""

    children: tuple[Expr, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "children", _check_children("OR", self.children))


@dataclass(frozen=True, slots=True)
class Not(Expr):
    """The negation of ``child`` (unknown stays unknown)."""

    child: Expr

    def __post_init__(self) -> None:
        if not isinstance(self.child, Expr):
            raise QueryError(f"NOT: {self.child!r} is not a predicate")


TRUE: Const = Const(True)
FALSE: Const = Const(False)


def _render(expr: Expr) -> str:
    def lit(value: Value) -> str:
        return _literal_text(value)

    def grouped(child: Expr) -> str:
        text = _render(child)
        return f"({text})" if isinstance(child, And | Or) else text

    match expr:
        case Compare(column, op, value):
            return f"{_name_text(column)} {op} {lit(value)}"
        case Between(column, low, high):
            return f"{_name_text(column)} BETWEEN {lit(low)} AND {lit(high)}"
        case In(column, values):
            return f"{_name_text(column)} IN ({', '.join(lit(v) for v in values)})"
        case Prefix(column, prefix):
            return f"{_name_text(column)} {_like_text(prefix)}"
        case Contains(column, word):
            return f"CONTAINS({_name_text(column)}, {_string_text(word)})"
        case IsNull(column, negated):
            return f"{_name_text(column)} IS {'NOT ' if negated else ''}NULL"
        case Const(value):
            return "TRUE" if value else "FALSE"
        case Not(child):
            return f"NOT {grouped(child)}"
        case And(children):
            return " AND ".join(grouped(c) for c in children)
        case Or(children):
            return " OR ".join(grouped(c) for c in children)
    raise QueryError(f"not a predicate: {expr!r}")


def to_text(expr: Expr) -> str:
    """Write a predicate in the text syntax, so that ``parse(to_text(e)) == e``.

    Column names that are not plain identifiers or are keywords are double-quoted; ``+inf``
    is written ``1e999`` and NaN ``NaN``; a prefix holding ``%`` or ``_`` gets an ``ESCAPE``
    clause. Nested AND/OR are parenthesised, so the parsed tree has the same shape.
    ``str(expr)`` is the same text.

    :param expr: the predicate
    :returns: the text
    :raises QueryError: ``expr`` is not a predicate
    """
    if not isinstance(expr, Expr):
        raise QueryError(f"not a predicate: {expr!r}")
    return _render(expr)
