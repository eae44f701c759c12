"""Byte-interval algebra over a column's encoded values: what a conjunction allows it to be.

Every leaf that an ordered index can answer becomes a set of byte intervals over the column's
*encoded* values: ``a = 5`` one point, ``a > 5`` a half-open interval, ``a LIKE 'ab%'`` the
interval of all encodings starting with the prefix, ``a IS NULL`` the one-byte NULL encoding,
an OR of such leaves on one column their union, merged into disjoint intervals (so an index
scan's key ranges never overlap and no entry is read twice). A conjunction intersects them;
an empty intersection (``a > 5 AND a < 3``) makes the whole conjunction empty without
touching the store. Because the encoding is order-preserving, merging in byte space is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from culvert_py.encoding import encode_str_prefix, encode_value, prefix_successor
from culvert_py.predicate import Between, Compare, Expr, IsNull, Or, Prefix

NULL = b"\x00"
#: Every non-null encoding starts above the NULL byte.
NOT_NULL_START = b"\x01"


@dataclass(frozen=True)
class Interval:
    """Encoded values ``start <= enc < stop`` (``stop`` None: unbounded); ``point`` when it
    holds exactly the encodings of one value (so the next index column can follow)."""

    start: bytes
    stop: bytes | None
    point: bool


def leaf_intervals(leaf: Expr, typ: str, desc: bool) -> list[Interval] | None:
    """Byte intervals of one indexable leaf for a column of ``typ``; ``None``: not indexable."""

    def enc(v):
        return encode_value(v, typ, descending=desc)

    def point(v) -> Interval:
        e = enc(v)
        return Interval(e, prefix_successor(e), True)

    match leaf:
        case Compare(op="=", value=v):
            return [point(v)]
        case IsNull(negated=False):
            return [Interval(NULL, NOT_NULL_START, True)]
        case IsNull(negated=True):
            return [Interval(NOT_NULL_START, None, False)]
        case Compare(op=op, value=v) if op in ("<", "<=", ">", ">="):
            low = op in (">", ">=")
            inclusive = op in ("<=", ">=")
            e = enc(v)
            # In a descending encoding a lower value bound is an upper byte bound.
            if low != desc:
                start = e if inclusive else prefix_successor(e)
                return [Interval(start or b"\xff", None, False)]
            stop = prefix_successor(e) if inclusive else e
            return [Interval(NOT_NULL_START, stop, False)]
        case Between(low=lo, high=hi):
            a, b = (enc(hi), enc(lo)) if desc else (enc(lo), enc(hi))
            return [Interval(a, prefix_successor(b), a == b)]
        case Prefix(prefix=p) if typ == "str":
            e = encode_str_prefix(p, descending=desc)
            return [Interval(e, prefix_successor(e), False)]
    return None


def intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """The intersection of two sorted, disjoint interval lists (one sweep: an IN-list of
    thousands of values intersected with a range stays linear)."""
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        x, y = a[i], b[j]
        start = max(x.start, y.start)
        stops = [s for s in (x.stop, y.stop) if s is not None]
        stop = min(stops) if stops else None
        if stop is None or start < stop:
            # A point stays a point when intersected with anything that contains it.
            is_point = (x.point and (x.start, x.stop) == (start, stop)) or (
                y.point and (y.start, y.stop) == (start, stop)
            )
            out.append(Interval(start, stop, is_point))
        # Drop whichever ends first: it cannot meet anything later in the other list.
        if y.stop is None or (x.stop is not None and x.stop <= y.stop):
            i += 1
        else:
            j += 1
    return merge(out)


def merge(intervals: list[Interval]) -> list[Interval]:
    """Sort and coalesce into disjoint intervals in byte order: overlapping intervals merge
    (a point inside a range disappears into it), and so do adjacent ones unless both are
    points (keeping ``a IN (1, 2)`` two points lets the next index column follow them).

    A merged interval is a point only when it is exactly one point's interval; empty
    intervals (``BETWEEN 5 AND 3``) are dropped.
    """
    out: list[Interval] = []
    live = (iv for iv in set(intervals) if iv.stop is None or iv.start < iv.stop)
    for iv in sorted(live, key=lambda i: (i.start, i.stop is None, i.stop or b"", i.point)):
        if out:
            last = out[-1]
            overlaps = last.stop is None or iv.start < last.stop
            adjacent = iv.start == last.stop and not (last.point and iv.point)
            if overlaps or adjacent:
                stop = None if last.stop is None or iv.stop is None else max(last.stop, iv.stop)
                bounds = (last.start, stop)
                is_point = (last.point and (last.start, last.stop) == bounds) or (
                    iv.point and (iv.start, iv.stop) == bounds
                )
                out[-1] = Interval(last.start, stop, is_point)
                continue
        out.append(iv)
    return out


def column_of(leaf: Expr) -> str | None:
    match leaf:
        case Compare(column=c) | Between(column=c) | Prefix(column=c) | IsNull(column=c):
            return c
    return None


def column_constraints(
    conjuncts: Sequence[Expr], column: str, typ: str, desc: bool, memo: dict | None = None
) -> list[Interval] | None:
    """Intervals of ``column`` implied by the conjunction; ``None`` when unconstrained.

    :param memo: intervals of conjuncts already computed in this planning run (an IN-list
        of thousands of values is then encoded once, not once per index and column)
    """
    result: list[Interval] | None = None
    for conjunct in conjuncts:
        leaves = conjunct.children if isinstance(conjunct, Or) else (conjunct,)
        if any(column_of(leaf) != column for leaf in leaves):
            continue
        key = (id(conjunct), typ, desc)
        if memo is not None and key in memo and memo[key][0] is conjunct:
            union = memo[key][1]
        else:
            parts = [leaf_intervals(leaf, typ, desc) for leaf in leaves]
            union = None
            if all(p is not None for p in parts):
                union = merge([iv for p in parts for iv in p])  # type: ignore[union-attr]
            if memo is not None:
                memo[key] = (conjunct, union)  # the conjunct pins its id while cached
        if union is None:
            continue
        result = union if result is None else intersect(result, union)
    return result


__all__ = [
    "NOT_NULL_START",
    "NULL",
    "Interval",
    "column_constraints",
    "column_of",
    "intersect",
    "leaf_intervals",
    "merge",
]
