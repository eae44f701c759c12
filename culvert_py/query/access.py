"""Index access paths of one conjunction: the key ranges an index reads, with estimates.

For an ordered index, point constraints on a leftmost prefix of its columns, then at most
one interval column, become key ranges (IN-lists multiply out, up to :data:`MAX_RANGES`);
a text index answers CONTAINS on its column. Each access gets an entry estimate from the
statistics: MCVs and ``prefix_ndv`` for points, the equi-depth histogram for ranges.

``stats`` is duck-typed, as described in :mod:`culvert_py.query.planner`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from culvert_py.encoding import decode_value, encode_value, prefix_successor
from culvert_py.errors import EncodingError
from culvert_py.layout import IndexKeys
from culvert_py.predicate import TRUE, And, Contains, Expr, columns_of
from culvert_py.query.intervals import column_constraints
from culvert_py.query.plan import IndexScan, KeyRange
from culvert_py.schema import IndexDef

#: Fraction of a point prefix assumed to satisfy a further range (no 2-D histograms).
SUBRANGE_FRACTION = 0.3
#: An IN-list on several index columns multiplies out; past this many ranges, stop extending.
MAX_RANGES = 256


def range_access(
    keys: IndexKeys, conjuncts: Sequence[Expr], needed: set[str], stats, memo: dict
) -> IndexScan | None:
    """The scan of an ordered index answering what it can of a conjunction.

    :param keys: the key layout of the index
    :param conjuncts: the conjunction's parts (bound, normalised)
    :param needed: every column the query reads (decides whether the index covers it)
    :param stats: the table's statistics, or ``None``
    :param memo: interval cache of this planning run (see :func:`column_constraints`)
    :return: the scan, or ``None`` when the index answers no part of the conjunction
    """
    index = keys.index
    answered: list[Expr] = []
    point_counts: list[int] = []
    # (key prefix of the point columns so far, encoded first value: the value salt's basis)
    prefixes: list[tuple[bytes, bytes | None]] = [(b"", None)]
    ranges: list[tuple[bytes, bytes | None, bytes | None]] | None = None
    for position, column in enumerate(index.columns):
        typ, desc = keys.types[position], keys.descending[position]
        intervals = column_constraints(conjuncts, column, typ, desc, memo)
        if intervals is None:
            break
        if len(prefixes) > 1 and len(prefixes) * len(intervals) > MAX_RANGES:
            break  # multiplying out would make too many ranges: the rest is residual
        answered += [c for c in conjuncts if columns_of(c) == {column}]
        if all(iv.point for iv in intervals):
            point_counts.append(len(intervals))
            prefixes = [
                (p + iv.start, iv.start if position == 0 else first)
                for p, first in prefixes
                for iv in intervals
            ]
            continue
        ranges = [
            (p + iv.start, p + iv.stop if iv.stop is not None else prefix_successor(p), first)
            for p, first in prefixes
            for iv in intervals
        ]
        break
    if not answered:
        return None
    if ranges is None:
        ranges = [(p, prefix_successor(p), first) for p, first in prefixes]
    answers = _conjoin(answered)
    text = str(answers)  # once: rendering it per range made planning IN-lists quadratic
    key_ranges = [
        KeyRange(start, stop, _buckets(keys, first), text) for start, stop, first in ranges
    ]
    check_disjoint(key_ranges, index)
    # An adopted table's entries are never trusted (other writers change its rows), so
    # nothing there is covered: the plan pays, and explain shows, the fetch. Nor on a table
    # with a lifespan: whether an entry's row has expired is read from the row.
    covered = not keys.table.existing and keys.table.lifespan is None and needed <= (
        set(keys.table.row_key) | set(index.columns) | set(index.include)
    )
    scan = IndexScan(index, key_ranges, covered, answers)
    scan.point_counts = point_counts
    scan.est_entries = estimate_entries(
        keys, stats, key_ranges, len(point_counts), bool(point_counts)
    )
    scan.est_rows = scan.est_entries
    return scan


def text_access(keys: IndexKeys, conjuncts: Sequence[Expr], stats) -> IndexScan | None:
    """The scan of a text index for the most selective CONTAINS on its column.

    :param keys: the key layout of the text index
    :param conjuncts: the conjunction's parts (bound, normalised)
    :param stats: the table's statistics, or ``None``
    :return: the scan, or ``None`` when no conjunct is a CONTAINS on the indexed column
    """
    index = keys.index
    column = index.columns[0]
    best: IndexScan | None = None
    for conjunct in conjuncts:
        if isinstance(conjunct, Contains) and conjunct.column == column:
            token = encode_value(conjunct.word, "str")
            rng = KeyRange(
                token, prefix_successor(token), list(range(index.buckets)), str(conjunct)
            )
            scan = IndexScan(index, [rng], False, conjunct)
            scan.est_entries = estimate_entries(keys, stats, [rng], 1, True)
            scan.est_rows = scan.est_entries
            if best is None or _lt(scan.est_entries, best.est_entries):
                best = scan
    return best


def estimate_entries(
    keys: IndexKeys, stats, ranges: list[KeyRange], pinned: int, points: bool
) -> float | None:
    """Estimated entries of an index in ``ranges``.

    :param keys: the key layout of the index
    :param stats: the table's statistics, or ``None``
    :param ranges: the key ranges (after the salt byte)
    :param pinned: how many leading index columns are pinned by equality
    :param points: whether the ranges start with equality points
    :return: the estimate, or ``None`` without statistics of this index
    """
    index = keys.index
    if stats is None or index.name not in stats.indexes:
        return None
    figures = stats.indexes[index.name]
    total = 0.0
    for r in ranges:
        first_len = _first_value_length(keys, r.start)
        if points and first_len is not None:
            k = max(1, min(pinned, len(figures.prefix_ndv)))
            est = figures.rows_equal(r.start if k > 1 else r.start[:first_len], k)
            # A further range on the next column after the points.
            if r.stop != prefix_successor(r.start):
                est *= SUBRANGE_FRACTION
            total += est
        else:
            total += figures.rows_between(r.start, r.stop)
    return total


def check_disjoint(ranges: list[KeyRange], index: IndexDef) -> None:
    """Assert that ``ranges`` are disjoint and in key order.

    The executor returns every entry of every range, so a row appears once per access only
    if no two ranges share a key.

    :raises AssertionError: naming the index and the first two ranges that overlap
    """
    for before, after in itertools.pairwise(ranges):
        if before.stop is None or after.start < before.stop:
            raise AssertionError(
                f"{index.path}: overlapping or unordered key ranges "
                f"[{before.start.hex()}..{before.stop.hex() if before.stop else '-'}) and "
                f"[{after.start.hex()}..{after.stop.hex() if after.stop else '-'})"
            )


def _buckets(keys: IndexKeys, first: bytes | None) -> list[int]:
    """The salt buckets of a range whose first index column is pinned to ``first``."""
    if keys.index.salt == "value" and first is not None:
        return [keys.bucket_of(first, b"")]
    return list(range(keys.index.buckets))


def _lt(a: float | None, b: float | None) -> bool:
    return b is None or (a is not None and a < b)


def _first_value_length(keys: IndexKeys, data: bytes) -> int | None:
    try:
        _, end = decode_value(data, keys.types[0], 0, descending=keys.descending[0])
    except EncodingError:
        return None
    return end


def _conjoin(parts: list[Expr]) -> Expr:
    unique = list(dict.fromkeys(parts))
    if not unique:
        return TRUE
    return unique[0] if len(unique) == 1 else And(tuple(unique))


__all__ = [
    "MAX_RANGES",
    "SUBRANGE_FRACTION",
    "check_disjoint",
    "estimate_entries",
    "range_access",
    "text_access",
]
