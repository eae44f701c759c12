"""The normal form of a predicate: NOT at the leaves, flat AND/OR, constants folded.

:func:`normalize` returns an equivalent predicate (same
:func:`~culvert_py.predicate.evaluate` result on every row, NULLs included) in which NOT
appears only directly above a LIKE prefix or CONTAINS leaf, IN is an OR of equalities, AND/OR
have no AND/OR child of their own kind nor duplicate children, and TRUE/FALSE appear only as
the whole predicate.
"""

from collections.abc import Iterable

from culvert_py.errors import QueryError
from culvert_py.predicate.tree import (
    FALSE,
    TRUE,
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

# NOT (a op b) is (a negated-op b), also when a is NULL: both sides are then unknown. It holds
# because sort_key is a total order on the values of one column type (NaN included).
_NEGATED_OP = {"=": "!=", "!=": "=", "<": ">=", ">=": "<", "<=": ">", ">": "<="}


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
