"""The column reference whose operators build predicates: ``col("age") >= 30``."""

from collections.abc import Iterable

from culvert_py.errors import QueryError
from culvert_py.predicate.literal import Value
from culvert_py.predicate.tree import (
    FALSE,
    Between,
    Compare,
    Contains,
    Expr,
    In,
    IsNull,
    Prefix,
    _check_column,
)


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
