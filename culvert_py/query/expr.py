"""The predicate tree: what a query asks of a row.

Build predicates with :func:`col` and combine them with ``&`` (and), ``|`` (or) and ``~``
(not)::

    (col("origin") == "JFK") & (col("dep_delay") > 120) | col("tail").is_null()

The parentheses around comparisons are needed: Python's ``&`` and ``|`` bind tighter than
``==``. Predicates have no truth value, so ``and``/``or``/``not`` and chained comparisons
(``1 < col("x") < 5``) raise :class:`~culvert_py.errors.QueryError` instead of silently
dropping half of the predicate. The nodes are frozen, hashable dataclasses compared by value,
so the same predicate built twice, or parsed from text, is equal.

Values are ``int``, ``float``, ``str``, ``bytes``, ``bool`` or timezone-aware ``datetime``
(stored converted to UTC); ``None`` is not a value: ask :meth:`Col.is_null` instead.

**Three-valued logic.** :func:`evaluate` follows SQL: a missing column or a ``None`` value is
NULL, and any comparison, BETWEEN, IN, LIKE or CONTAINS with a NULL operand is *unknown*
(``None``). NOT unknown is unknown; AND is false if any operand is false, else unknown if
any is unknown, else true; OR is the dual. IS [NOT] NULL is never unknown. A row matches
(:func:`matches`) only when the predicate is true, so ``~(col("age") > 3)`` does not match a
row without an age, exactly as an index on ``age`` (which has no entry for it to scan) says.

**Order.** Comparisons use :func:`sort_key`, the order of the encoding layer and so of every
index range scan: ints and floats compare as numbers, ``-0.0 == 0.0``, and NaN equals NaN and
sorts above ``+inf``. Values of different types (a str with an int, a bool with an int) are
not comparable; :func:`bind` rejects such predicates up front.

**Normal form.** :func:`normalize` returns an equivalent predicate (same :func:`evaluate`
result on every row, NULLs included) in which NOT appears only directly above a LIKE prefix or
CONTAINS leaf, IN is an OR of equalities, AND/OR have no AND/OR child of their own kind nor
duplicate children, and TRUE/FALSE appear only as the whole predicate.

**Text.** ``str(predicate)`` and :func:`to_text` write the syntax of
:mod:`culvert_py.query.parse`; ``parse(to_text(p)) == p`` for every predicate ``p``.
"""

import difflib
import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

from culvert_py.encoding import COLUMN_TYPES, check_value
from culvert_py.errors import EncodingError, QueryError
from culvert_py.text import normalize_token, tokenize

Value: TypeAlias = int | float | str | bytes | bool | datetime
"""A literal a predicate compares with."""

COMPARISON_OPS: tuple[str, ...] = ("=", "!=", "<", "<=", ">", ">=")

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

# NOT (a op b) is (a negated-op b), also when a is NULL: both sides are then unknown. It holds
# because sort_key is a total order on the values of one column type (NaN included).
_NEGATED_OP = {"=": "!=", "!=": "=", "<": ">=", ">=": "<", "<=": ">", ">": "<="}
_OP_TEST: dict[str, Callable[[int], bool]] = {
    "=": lambda c: c == 0,
    "!=": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NO_TRUTH_VALUE = (
    "a predicate has no truth value: use & | ~ not and/or/not, with parentheses around "
    "comparisons, e.g. (col('a') == 1) & (col('b') == 2), and col(...).between(low, high) "
    "rather than a chained comparison"
)
_KNOWN_SHOWN = 20
_TYPE_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "float",
    str: "string",
    bytes: "bytes",
    datetime: "timestamp",
}


# --------------------------------------------------------------------------- validation


def _check_column(column: object) -> str:
    if not isinstance(column, str) or not column:
        raise QueryError(f"column name must be a non-empty str, got {column!r}")
    return column


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
        except OverflowError:
            raise QueryError(
                f"column {column!r}: datetime {value.isoformat()!r} is out of range in UTC"
            ) from None
    raise QueryError(
        f"column {column!r}: cannot compare with {type(value).__name__} {value!r}; "
        "expected int, float, str, bytes, bool or an aware datetime"
    )


def _describe(value: Value) -> str:
    """``string 'x'``, ``integer 3``: a literal as an error message names it."""
    kind = _TYPE_NAMES.get(type(value), type(value).__name__)
    return f"{kind} {_literal_text(value)}"


# --------------------------------------------------------------------------- the tree


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
            raise QueryError(f"CONTAINS on column {self.column!r}: {exc}") from None
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


# --------------------------------------------------------------------------- col()


class Col:
    """A column reference whose comparisons and methods build predicates.

    ``col("age") >= 30`` is ``Compare("age", ">=", 30)``. A column reference is not itself a
    predicate: it has no truth value and cannot be combined with ``&``, ``|`` or ``~``.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        """:param name: the column name
        :raises QueryError: ``name`` is not a non-empty str
        """
        self.name = _check_column(name)

    def __repr__(self) -> str:
        return f"col({self.name!r})"

    def _compare(self, op: str, value: object) -> Compare:
        if value is None:
            fix = ".is_not_null()" if op == "!=" else ".is_null()"
            raise QueryError(
                f"cannot compare column {self.name!r} with None: SQL comparisons with NULL are "
                f"never true; use col({self.name!r}){fix}"
            )
        if isinstance(value, Col | Expr):
            raise QueryError(
                f"cannot compare column {self.name!r} with {value!r}: a column can only be "
                "compared with a value"
            )
        return Compare(self.name, op, value)  # type: ignore[arg-type]

    def __eq__(self, value: object) -> Compare:  # type: ignore[override]
        """``column = value``; ``== None`` raises (use :meth:`is_null`)."""
        return self._compare("=", value)

    def __ne__(self, value: object) -> Compare:  # type: ignore[override]
        """``column != value``; ``!= None`` raises (use :meth:`is_not_null`)."""
        return self._compare("!=", value)

    def __lt__(self, value: object) -> Compare:
        return self._compare("<", value)

    def __le__(self, value: object) -> Compare:
        return self._compare("<=", value)

    def __gt__(self, value: object) -> Compare:
        return self._compare(">", value)

    def __ge__(self, value: object) -> Compare:
        return self._compare(">=", value)

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        raise QueryError(
            f"{self!r} is a column, not a predicate: compare it, e.g. {self!r} == 1, "
            f"or test {self!r}.is_not_null()"
        )

    def _not_a_predicate(self, *_: object) -> Expr:
        raise QueryError(
            f"{self!r} is a column, not a predicate; comparisons combined with & | ~ need "
            "parentheses, e.g. (col('a') == 1) & (col('b') == 2)"
        )

    __and__ = __rand__ = __or__ = __ror__ = __invert__ = _not_a_predicate

    def between(self, low: Value, high: Value) -> Between:
        """``low <= column <= high``, inclusive at both ends.

        :param low: the smallest matching value
        :param high: the largest matching value (``low > high`` matches nothing)
        :returns: a :class:`Between` predicate
        :raises QueryError: a bound is ``None`` or not a supported value
        """
        return Between(self.name, low, high)

    def isin(self, values: Iterable[Value]) -> Expr:
        """The column equals one of ``values``.

        :param values: the values; an empty collection matches no row (:data:`FALSE`)
        :returns: an :class:`In` predicate, or :data:`FALSE` for no values
        :raises QueryError: ``values`` is a str/bytes or not iterable, or holds ``None`` or an
            unsupported value
        """
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise QueryError(
                f"{self!r}.isin() needs a collection of values, got {values!r}; "
                "for a single value use =="
            )
        values = tuple(values)
        return In(self.name, values) if values else FALSE

    def startswith(self, prefix: str) -> Prefix:
        """The str column starts with ``prefix`` (``LIKE 'prefix%'``).

        :param prefix: the prefix; ``""`` matches every non-NULL value
        :returns: a :class:`Prefix` predicate
        :raises QueryError: ``prefix`` is not a str
        """
        return Prefix(self.name, prefix)

    def contains(self, word: str) -> Contains:
        """The str column contains ``word`` as a token (``CONTAINS(column, 'word')``).

        :param word: one word; matched case-insensitively after Unicode normalisation
        :returns: a :class:`Contains` predicate holding the normalised word
        :raises QueryError: ``word`` is not exactly one word (see
            :func:`culvert_py.text.normalize_token`)
        """
        return Contains(self.name, word)

    def is_null(self) -> IsNull:
        """``column IS NULL``: the column is missing or ``None``.

        :returns: an :class:`IsNull` predicate
        """
        return IsNull(self.name)

    def is_not_null(self) -> IsNull:
        """``column IS NOT NULL``: the column has a value.

        :returns: an :class:`IsNull` predicate with ``negated=True``
        """
        return IsNull(self.name, negated=True)


def col(name: str) -> Col:
    """A reference to column ``name``, for building predicates: ``col("age") >= 30``.

    :param name: the column name
    :returns: a :class:`Col`
    :raises QueryError: ``name`` is not a non-empty str
    """
    return Col(name)


# --------------------------------------------------------------------------- evaluation


def sort_key(value: Value) -> tuple[bool, Any]:
    """A key that orders values of one column type as index range scans order them.

    Ints and floats compare as numbers (``-0.0 == 0.0``); NaN is equal to NaN and greater than
    every other number, ``+inf`` included, as in :mod:`culvert_py.encoding`. Other types keep
    Python's order. Keys of values of different types are not meant to be compared.

    :param value: a non-NULL value
    :returns: a key for ``sorted`` and comparisons
    """
    if isinstance(value, float) and math.isnan(value):
        return (True, 0)
    return (False, value)


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
        ) from None


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


# --------------------------------------------------------------------------- binding

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
            raise QueryError(f"{exc}{self.at(node, part)}") from None

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
                    raise QueryError(f"{exc}{self.at(node, 0)}") from None
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


# --------------------------------------------------------------------------- normalisation


def _junction(cls: type[And] | type[Or], children: Iterable[Expr]) -> Expr:
    """``cls`` of already-normal ``children``: flattened, deduplicated, constants folded."""
    absorbing, neutral = (FALSE, TRUE) if cls is And else (TRUE, FALSE)
    flat: list[Expr] = []
    for child in children:
        if isinstance(child, cls):
            flat.extend(child.children)
        elif child == absorbing:
            return absorbing
        elif child != neutral:
            flat.append(child)
    unique = tuple(dict.fromkeys(flat))
    if not unique:
        return neutral
    return unique[0] if len(unique) == 1 else cls(unique)


def _push_not(expr: Expr, negate: bool) -> Expr:
    match expr:
        case Not(child):
            return _push_not(child, not negate)
        case And(children) | Or(children):
            # De Morgan holds in three-valued logic too.
            flip = isinstance(expr, And) == negate
            return _junction(Or if flip else And, (_push_not(c, negate) for c in children))
        case Compare(column, op, value):
            return Compare(column, _NEGATED_OP[op], value) if negate else expr
        case Between(column, low, high):
            if not negate:
                return expr
            return _junction(Or, (Compare(column, "<", low), Compare(column, ">", high)))
        case In(column, values):
            op = "!=" if negate else "="
            leaves = (Compare(column, op, v) for v in values)
            return _junction(And if negate else Or, leaves)
        case IsNull(column, negated):
            return IsNull(column, negated != negate)
        case Const(value):
            return Const(value != negate)
        case Prefix() | Contains():
            # No leaf says "does not start with": the negation stays a NOT over the leaf.
            return Not(expr) if negate else expr
    raise QueryError(f"not a predicate: {expr!r}")


def normalize(expr: Expr) -> Expr:
    """An equivalent predicate in normal form (see the module docstring).

    NOT is pushed down to the leaves (``NOT a < 5`` → ``a >= 5``, ``NOT a IS NULL`` →
    ``a IS NOT NULL``, ``NOT a IN (1, 2)`` → ``a != 1 AND a != 2``, ``NOT a BETWEEN 1 AND 5``
    → ``a < 1 OR a > 5``) with De Morgan's laws, IN becomes an OR of equalities, nested
    AND/OR are flattened, duplicate children removed (first kept) and TRUE/FALSE folded.
    Every rewrite keeps three-valued results: ``evaluate(normalize(e), row) ==
    evaluate(e, row)`` for every row, NULLs included.

    :param expr: the predicate
    :returns: the normal form; applying :func:`normalize` again returns it unchanged
    :raises QueryError: ``expr`` is not a predicate
    """
    return _push_not(expr, False)


# --------------------------------------------------------------------------- rendering


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
