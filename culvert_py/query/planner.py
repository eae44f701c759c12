"""Predicate + schema + statistics → a plan tree; and ``explain`` of that tree.

Planning, in order:

1. **Bind and normalise** the predicate (:func:`~culvert_py.query.expr.bind`,
   :func:`~culvert_py.query.expr.normalize`): NOT pushed to the leaves, AND/OR flattened,
   IN turned into ORs of equalities, constants folded.
2. **Constraints per column.** Every leaf that an ordered index can answer becomes a set of
   byte intervals over the column's *encoded* values: ``a = 5`` one point, ``a > 5`` a
   half-open interval, ``a LIKE 'ab%'`` the interval of all encodings starting with the
   prefix, ``a IS NULL`` the one-byte NULL encoding, an OR of such leaves on one column their
   union, merged into disjoint intervals (so an index scan's key ranges never overlap and
   no entry is read twice). A conjunction intersects them; an empty intersection
   (``a > 5 AND a < 3``, ``a = 1 AND a = 2``) makes the whole conjunction empty without
   touching the store.
   Because the encoding is order-preserving, merging ranges in byte space is exact.
3. **Access paths.** For each ACTIVE index: point constraints on a leftmost prefix of its
   columns, then at most one interval column, become key ranges (IN-lists multiply out);
   a text index answers CONTAINS on its column. Each candidate gets an estimate from the
   statistics (:mod:`culvert_py.stats`): entries via MCVs and ``prefix_ndv`` for points, the
   equi-depth histogram for ranges.
4. **Choice by cost.** ``full scan = rows``; ``index = entries + 3 × fetched rows`` (a
   batched random get costs about three scanned rows here); a covered index — every column
   the query needs is in the entry — fetches nothing; an intersection of the two most
   selective accesses scans both and fetches the estimated overlap. The cheapest wins.
   Without statistics an index is preferred to a full scan, equality to range, and explain
   says the plan is a guess.
5. **OR** of conjunctions that no single index answers becomes a union of branch plans; a
   row found by branch *i* is dropped if an earlier branch also matches it, so no memory of
   seen keys is needed. If any branch needs a full scan, the whole OR is one full scan.
6. **Full scan** pushes what it can of the predicate to the region servers as a filter
   string (:mod:`culvert_py.query.filters`); the executor re-checks every row anyway.
7. **Order.** One query has one order whatever the plan: the order column's value with NULL
   smallest (NULLs first ascending, last descending), ties by primary key ascending. An
   index scan provides it when its key order is exactly that (:meth:`Planner._provides_order`;
   a descending one reads its NULL entries last); otherwise the executor sorts.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from culvert_py.encoding import decode_tuple, encode_str_prefix, encode_value, prefix_successor
from culvert_py.errors import ArgumentError, QueryError
from culvert_py.layout import IndexKeys
from culvert_py.query.expr import (
    FALSE,
    TRUE,
    And,
    Between,
    Compare,
    Contains,
    Expr,
    IsNull,
    Or,
    Prefix,
    bind,
    columns_of,
    normalize,
)
from culvert_py.schema import IndexDef, TableDef

#: ``use_index=NO_INDEX`` forces a full scan.
NO_INDEX = "NO_INDEX"

#: Cost of fetching one primary row by key, in units of one scanned row.
FETCH_COST = 3.0
#: Fraction of a point prefix assumed to satisfy a further range (no 2-D histograms).
SUBRANGE_FRACTION = 0.3
#: An IN-list on several index columns multiplies out; past this many ranges, stop extending.
MAX_RANGES = 256

_NULL = b"\x00"
_NOT_NULL_START = b"\x01"  # every non-null encoding starts above the NULL byte


# -- plan nodes ----------------------------------------------------------------------------


@dataclass
class KeyRange:
    """A range of index keys after the salt byte: ``start <= key[1:] < stop``.

    :ivar buckets: the salt buckets to scan (one for a value-salted point lookup)
    """

    start: bytes
    stop: bytes | None
    buckets: list[int]
    text: str


@dataclass
class Node:
    """Common fields of plan nodes; ``actual`` is filled by ``explain(analyze=True)``."""

    est_rows: float | None = field(default=None, init=False)
    actual_rows: int = field(default=0, init=False)
    rpcs: int = field(default=0, init=False)
    seconds: float = field(default=0.0, init=False)


@dataclass
class IndexScan(Node):
    """Scan ``ranges`` of one index over its salt buckets in parallel, merged in key order."""

    index: IndexDef
    ranges: list[KeyRange]
    covered: bool
    answers: Expr  # the part of the predicate these ranges express
    est_entries: float | None = None
    #: distinct values of each leading index column pinned by equality (IN-lists > 1)
    point_counts: list[int] = field(default_factory=list)
    #: entries read by an analyzed run (``actual_rows`` counts the rows that passed)
    entries_read: int = 0


@dataclass
class Intersect(Node):
    """Stream ``driver``; keep only keys that every probe access also returned."""

    driver: IndexScan
    probes: list[IndexScan]


@dataclass
class FullScan(Node):
    """Scan the whole primary table, region by region in parallel."""

    filter: bytes | None
    filter_complete: bool


@dataclass
class Union(Node):
    """OR expansion: branch ``i`` emits rows matching it and no earlier branch."""

    branches: list[Plan]


@dataclass
class Empty(Node):
    """The predicate is a contradiction: nothing to read."""

    reason: str


Source = IndexScan | Intersect | FullScan | Union | Empty


@dataclass
class Plan(Node):
    """A complete plan: where rows come from, and what happens to them after.

    :ivar predicate: the bound, normalised predicate every row is checked against
    :ivar columns: the columns returned (``None``: all)
    :ivar sort: ``(column, descending)`` when rows must be sorted client-side
    """

    table: TableDef
    source: Source
    predicate: Expr
    columns: tuple[str, ...] | None
    order_by: tuple[str, bool] | None
    sort: tuple[str, bool] | None
    limit: int | None
    notes: list[str]

    def fingerprint(self) -> str:
        """Identifies the query a cursor belongs to."""
        text = f"{self.table.name}|{self.predicate!r}|{self.order_by}|{_shape(self.source)}"
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def _shape(source: Source) -> str:
    match source:
        case IndexScan(index=index, ranges=ranges):
            return f"I({index.name}:{len(ranges)})"
        case Intersect(driver=driver, probes=probes):
            return "X(" + ",".join(_shape(s) for s in [driver, *probes]) + ")"
        case FullScan():
            return "F"
        case Union(branches=branches):
            return "U(" + ",".join(_shape(b.source) for b in branches) + ")"
    return "E"


# -- column constraints as byte intervals ---------------------------------------------------


@dataclass(frozen=True)
class _Interval:
    """Encoded values ``start <= enc < stop`` (``stop`` None: unbounded); ``point`` when it
    holds exactly the encodings of one value (so the next index column can follow)."""

    start: bytes
    stop: bytes | None
    point: bool


def _leaf_intervals(leaf: Expr, typ: str, desc: bool) -> list[_Interval] | None:
    """Byte intervals of one indexable leaf for a column of ``typ``; ``None``: not indexable."""

    def enc(v):
        return encode_value(v, typ, descending=desc)

    def point(v) -> _Interval:
        e = enc(v)
        return _Interval(e, prefix_successor(e), True)

    match leaf:
        case Compare(op="=", value=v):
            return [point(v)]
        case IsNull(negated=False):
            return [_Interval(_NULL, _NOT_NULL_START, True)]
        case IsNull(negated=True):
            return [_Interval(_NOT_NULL_START, None, False)]
        case Compare(op=op, value=v) if op in ("<", "<=", ">", ">="):
            low = op in (">", ">=")
            inclusive = op in ("<=", ">=")
            e = enc(v)
            # In a descending encoding a lower value bound is an upper byte bound.
            if low != desc:
                start = e if inclusive else prefix_successor(e)
                return [_Interval(start or b"\xff", None, False)]
            stop = prefix_successor(e) if inclusive else e
            return [_Interval(_NOT_NULL_START, stop, False)]
        case Between(low=lo, high=hi):
            a, b = (enc(hi), enc(lo)) if desc else (enc(lo), enc(hi))
            return [_Interval(a, prefix_successor(b), a == b)]
        case Prefix(prefix=p) if typ == "str":
            e = encode_str_prefix(p, descending=desc)
            return [_Interval(e, prefix_successor(e), False)]
    return None


def _intersect(a: list[_Interval], b: list[_Interval]) -> list[_Interval]:
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
            out.append(_Interval(start, stop, is_point))
        # Drop whichever ends first: it cannot meet anything later in the other list.
        if y.stop is None or (x.stop is not None and x.stop <= y.stop):
            i += 1
        else:
            j += 1
    return _merge(out)


def _merge(intervals: list[_Interval]) -> list[_Interval]:
    """Sort and coalesce into disjoint intervals in byte order: overlapping intervals merge
    (a point inside a range disappears into it), and so do adjacent ones unless both are
    points (keeping ``a IN (1, 2)`` two points lets the next index column follow them).

    A merged interval is a point only when it is exactly one point's interval; empty
    intervals (``BETWEEN 5 AND 3``) are dropped.
    """
    out: list[_Interval] = []
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
                out[-1] = _Interval(last.start, stop, is_point)
                continue
        out.append(iv)
    return out


def _column_of(leaf: Expr) -> str | None:
    match leaf:
        case Compare(column=c) | Between(column=c) | Prefix(column=c) | IsNull(column=c):
            return c
    return None


def _column_constraints(
    conjuncts: Sequence[Expr], column: str, typ: str, desc: bool, memo: dict | None = None
) -> list[_Interval] | None:
    """Intervals of ``column`` implied by the conjunction; ``None`` when unconstrained.

    :param memo: intervals of conjuncts already computed in this planning run (an IN-list
        of thousands of values is then encoded once, not once per index and column)
    """
    result: list[_Interval] | None = None
    for conjunct in conjuncts:
        leaves = conjunct.children if isinstance(conjunct, Or) else (conjunct,)
        if any(_column_of(leaf) != column for leaf in leaves):
            continue
        key = (id(conjunct), typ, desc)
        if memo is not None and key in memo and memo[key][0] is conjunct:
            union = memo[key][1]
        else:
            parts = [_leaf_intervals(leaf, typ, desc) for leaf in leaves]
            union = None
            if all(p is not None for p in parts):
                union = _merge([iv for p in parts for iv in p])  # type: ignore[union-attr]
            if memo is not None:
                memo[key] = (conjunct, union)  # the conjunct pins its id while cached
        if union is None:
            continue
        result = union if result is None else _intersect(result, union)
    return result


# -- planning ------------------------------------------------------------------------------


class Planner:
    """Plans queries over one table.

    :param table: the table definition
    :param states: index name → state; only ``ACTIVE`` indexes are used
    :param stats: the table's :class:`~culvert_py.stats.TableStats`, or ``None``
    :param filter_pushdown: whether the store evaluates filter strings (HBase)
    """

    def __init__(self, table: TableDef, states: Mapping[str, str], stats, filter_pushdown: bool):
        self.table = table
        self.stats = stats
        self.filter_pushdown = filter_pushdown
        self.states = dict(states)
        self.active = {n: i for n, i in table.indexes.items() if states.get(n) == "ACTIVE"}
        self.keys = {n: IndexKeys(table, i) for n, i in table.indexes.items()}
        self._where: dict[str, Expr] = {}
        self._intervals: dict = {}  # see _column_constraints; one planning run's worth

    def plan(
        self,
        where: Expr | str | None,
        columns: Sequence[str] | None = None,
        order_by: str | tuple[str, bool] | None = None,
        limit: int | None = None,
        use_index: str | None = None,
    ) -> Plan:
        """Plan a query.

        :param where: a predicate, its text form, or ``None`` for every row
        :param columns: columns to return (default all)
        :param order_by: a column name, or ``(column, descending)``
        :param limit: at most this many rows
        :param use_index: force an index by name, or :data:`NO_INDEX` for a full scan
        :raises ArgumentError: an argument of the wrong type or shape (``columns="id"``,
            ``order_by=("age",)``, ``limit=-1``, ``use_index=5``)
        :raises QueryError: unknown columns, type mismatches, syntax errors, unusable hints
        """
        name = self.table.name
        if where is not None and not isinstance(where, str | Expr):
            raise ArgumentError(
                f"{name}: where={where!r:.60}: expected a predicate (col('age') >= 30), "
                "its text form, or None"
            )
        if columns is not None:
            if isinstance(columns, str | bytes) or not isinstance(columns, Iterable):
                hint = f"; for one column pass [{columns!r}]" if isinstance(columns, str) else ""
                raise ArgumentError(
                    f"{name}: columns={columns!r:.60}: expected a list of column names{hint}"
                )
            columns = tuple(columns)
            bad = [c for c in columns if not isinstance(c, str)]
            if bad:
                raise ArgumentError(f"{name}: columns: expected column names, got {bad[0]!r:.60}")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ArgumentError(f"{name}: limit={limit!r:.60}: expected an integer >= 0 or None")
        if use_index is not None and not isinstance(use_index, str):
            raise ArgumentError(
                f"{name}: use_index={use_index!r:.60}: expected an index name or {NO_INDEX!r}"
            )
        types = dict(self.table.columns)
        predicate = self._bind(where, types)
        if columns is not None:
            for c in columns:
                if c not in types:
                    raise QueryError(f"unknown column {c!r} in columns (known: {', '.join(types)})")
        order = self._order(order_by, types, name)
        if use_index not in (None, NO_INDEX) and use_index not in self.table.indexes:
            raise QueryError(
                f"{self.table.name}: unknown index {use_index!r} in use_index "
                f"(known: {', '.join(self.table.indexes) or 'none'})"
            )
        notes: list[str] = []
        if self.stats is None:
            notes.append("no statistics: estimates are guesses (run `culvert stats --refresh`)")
        needed = set(columns if columns is not None else types) | set(columns_of(predicate))
        if order:
            needed.add(order[0])
        source = self._plan_source(predicate, needed, use_index, order, notes)
        sort = order if order and not self._provides_order(source, order) else None
        if order and sort is None and order[1] and isinstance(source, IndexScan):
            self._nulls_last(source, order[0])
        plan = Plan(self.table, source, predicate, columns, order, sort, limit, notes)
        plan.est_rows = source.est_rows
        if limit is not None and plan.est_rows is not None:
            plan.est_rows = min(plan.est_rows, limit)
        return plan

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _bind(where, types) -> Expr:
        if where is None:
            return TRUE
        if isinstance(where, str):
            from culvert_py.query.parse import parse

            return normalize(parse(where, types))
        if not isinstance(where, Expr):
            raise QueryError(f"where must be a predicate or a string, got {where!r}")
        return normalize(bind(where, types))

    @staticmethod
    def _order(order_by, types, table: str) -> tuple[str, bool] | None:
        if order_by is None:
            return None
        if isinstance(order_by, str):
            column, desc = order_by, False
        elif (
            isinstance(order_by, tuple | list)
            and len(order_by) == 2
            and isinstance(order_by[0], str)
            and isinstance(order_by[1], bool)
        ):
            column, desc = order_by
        else:
            raise ArgumentError(
                f"{table}: order_by={order_by!r:.60}: expected a column name or "
                "(column, descending) with descending True or False"
            )
        if column not in types:
            raise QueryError(f"unknown column {column!r} in order_by (known: {', '.join(types)})")
        return column, desc

    def _table_rows(self) -> float | None:
        return None if self.stats is None else float(self.stats.rows)

    def _plan_source(self, predicate, needed, use_index, order, notes) -> Source:
        self._intervals = {}
        if predicate == FALSE:
            return self._empty("the predicate is always false")
        if use_index == NO_INDEX:
            notes.append("full scan forced by use_index=NO_INDEX")
            return self._full_scan(predicate)
        if isinstance(predicate, Or):
            return self._plan_or(predicate, needed, use_index, order, notes)
        conjuncts = list(predicate.children) if isinstance(predicate, And) else [predicate]
        return self._plan_conjunction(conjuncts, predicate, needed, use_index, order, notes)

    def _empty(self, reason: str) -> Empty:
        node = Empty(reason)
        node.est_rows = 0
        return node

    def _full_scan(self, predicate: Expr) -> FullScan:
        flt, complete = None, predicate == TRUE
        if self.filter_pushdown and predicate != TRUE:
            from culvert_py.query.filters import to_filter_string

            flt, complete = to_filter_string(predicate, self.table)
            if isinstance(flt, str):
                flt = flt.encode()
        node = FullScan(flt, complete)
        node.est_rows = self._table_rows()
        return node

    def _plan_or(self, predicate: Or, needed, use_index, order, notes) -> Source:
        # One column's disjunction (a < 3 OR a > 90, a IN (...)) is one multi-range access.
        single = self._plan_conjunction([predicate], predicate, needed, use_index, order, [])
        if not isinstance(single, FullScan):
            return single
        branches = []
        for child in _group_by_column(predicate.children):
            conjuncts = list(child.children) if isinstance(child, And) else [child]
            source = self._plan_conjunction(conjuncts, child, needed, use_index, None, [])
            if isinstance(source, FullScan):
                notes.append(f"OR branch {str(child)!r} has no usable index: one full scan")
                return self._full_scan(predicate)
            branch = Plan(self.table, source, child, None, None, None, None, [])
            branch.est_rows = source.est_rows
            branches.append(branch)
        node = Union(branches)
        ests = [b.est_rows for b in branches]
        node.est_rows = None if None in ests else sum(ests)  # type: ignore[arg-type]
        return node

    def _plan_conjunction(self, conjuncts, predicate, needed, use_index, order, notes) -> Source:
        if self._contradiction(conjuncts):
            return self._empty("contradictory constraints on one column")
        candidates = [
            scan
            for name, index in self._candidate_indexes(use_index).items()
            if (scan := self._access(index, conjuncts, needed)) is not None
        ]
        if use_index:
            if not candidates:
                raise QueryError(
                    f"use_index={use_index!r}: the index cannot answer any part of "
                    f"{str(predicate)!r}"
                )
            return candidates[0]
        if not candidates:
            notes.append("no ACTIVE index answers this predicate: full scan")
            return self._full_scan(predicate)
        return self._cheapest(candidates, predicate, order, notes)

    def _candidate_indexes(self, use_index) -> dict[str, IndexDef]:
        if use_index:
            state = self.states.get(use_index, "of unknown state")
            if state != "ACTIVE":
                # Not ACTIVE means incomplete: a forced scan would silently miss rows.
                action = "rebuild" if state == "DISABLED" else "build"
                raise QueryError(
                    f"use_index={use_index!r}: index {self.table.name}.{use_index} is {state}, "
                    f"not ACTIVE, so it may miss rows; run `culvert index {action} "
                    f"{self.table.name} {use_index}` first, or drop the hint"
                )
            return {use_index: self.table.indexes[use_index]}
        return self.active

    def _contradiction(self, conjuncts) -> bool:
        for column, typ in self.table.columns.items():
            intervals = _column_constraints(conjuncts, column, typ, False, self._intervals)
            if intervals is not None and not intervals:
                return True
        return False

    def _implies_where(self, index: IndexDef, conjuncts) -> bool:
        """A partial index holds only rows matching its ``where``: usable only when the
        query's conjunction contains every conjunct of it (a syntactic implication)."""
        if not index.where:
            return True
        where = self._where.get(index.name)
        if where is None:
            from culvert_py.query.parse import parse

            where = normalize(parse(index.where, dict(self.table.columns)))
            self._where[index.name] = where
        needed = where.children if isinstance(where, And) else (where,)
        return all(part in conjuncts for part in needed)

    def _access(self, index: IndexDef, conjuncts, needed) -> IndexScan | None:
        if not self._implies_where(index, conjuncts):
            return None
        keys = self.keys[index.name]
        if index.kind == "text":
            return self._text_access(index, keys, conjuncts)
        answered: list[Expr] = []
        point_counts: list[int] = []
        # (key prefix of the point columns so far, encoded first value: the value salt's basis)
        prefixes: list[tuple[bytes, bytes | None]] = [(b"", None)]
        ranges: list[tuple[bytes, bytes | None, bytes | None]] | None = None
        for position, column in enumerate(index.columns):
            typ, desc = keys.types[position], keys.descending[position]
            intervals = _column_constraints(conjuncts, column, typ, desc, self._intervals)
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
        every_bucket = list(range(index.buckets))
        key_ranges = [
            KeyRange(start, stop, self._buckets(index, keys, first, every_bucket), text)
            for start, stop, first in ranges
        ]
        _check_disjoint(key_ranges, index)
        covered = needed <= (set(self.table.row_key) | set(index.columns) | set(index.include))
        scan = IndexScan(index, key_ranges, covered, answers)
        scan.point_counts = point_counts
        scan.est_entries = self._estimate(index, key_ranges, len(point_counts), bool(point_counts))
        scan.est_rows = scan.est_entries
        return scan

    def _text_access(self, index: IndexDef, keys: IndexKeys, conjuncts) -> IndexScan | None:
        column = index.columns[0]
        best: IndexScan | None = None
        for conjunct in conjuncts:
            if isinstance(conjunct, Contains) and conjunct.column == column:
                token = encode_value(conjunct.word, "str")
                rng = KeyRange(
                    token, prefix_successor(token), list(range(index.buckets)), str(conjunct)
                )
                scan = IndexScan(index, [rng], False, conjunct)
                scan.est_entries = self._estimate(index, [rng], 1, True)
                scan.est_rows = scan.est_entries
                if best is None or _lt(scan.est_entries, best.est_entries):
                    best = scan
        return best

    @staticmethod
    def _buckets(index: IndexDef, keys: IndexKeys, first: bytes | None, every: list[int]):
        """The salt buckets of a range whose first index column is pinned to ``first``."""
        if index.salt == "value" and first is not None:
            return [keys.bucket_of(first, b"")]
        return every

    def _estimate(self, index: IndexDef, ranges: list[KeyRange], pinned: int, points: bool):
        """Estimated entries in ``ranges``; ``pinned`` leading columns are equality points."""
        if self.stats is None or index.name not in self.stats.indexes:
            return None
        stats = self.stats.indexes[index.name]
        total = 0.0
        keys = self.keys[index.name]
        for r in ranges:
            first_len = _first_value_length(keys, r.start)
            if points and first_len is not None:
                k = max(1, min(pinned, len(stats.prefix_ndv)))
                est = stats.rows_equal(r.start if k > 1 else r.start[:first_len], k)
                # A further range on the next column after the points.
                if r.stop != prefix_successor(r.start):
                    est *= SUBRANGE_FRACTION
                total += est
            else:
                total += stats.rows_between(r.start, r.stop)
        return total

    def _cheapest(self, candidates: list[IndexScan], predicate, order, notes) -> Source:
        rows = self._table_rows()
        if any(c.est_entries is None for c in candidates):
            # Without statistics: the most constrained access (equality first) wins.
            candidates.sort(key=lambda c: (-_bound_columns(c), len(c.ranges)))
            best = candidates[0]
            return self._prefer_order(best, candidates, order)

        def cost(scan: IndexScan) -> float:
            return scan.est_entries + (0 if scan.covered else FETCH_COST * scan.est_entries)

        candidates.sort(key=cost)
        best: Source = candidates[0]
        best_cost = cost(candidates[0])
        a = candidates[0]
        # Intersecting only helps with an access that constrains other columns.
        others = [c for c in candidates[1:] if not columns_of(c.answers) <= columns_of(a.answers)]
        if others and rows:
            b = others[0]
            driver, probe = (a, b) if a.est_entries <= b.est_entries else (b, a)
            overlap = a.est_entries * b.est_entries / max(rows, 1)
            both = a.est_entries + b.est_entries + FETCH_COST * overlap
            if both < best_cost * 0.8:
                node = Intersect(driver, [probe])
                node.est_rows = overlap
                best, best_cost = node, both
        if rows is not None and rows < best_cost:
            notes.append(f"full scan ({rows:.0f} rows) is cheaper than any index")
            # Built only when chosen: its filter string renders the whole predicate.
            return self._full_scan(predicate)
        if isinstance(best, IndexScan):
            return self._prefer_order(best, candidates, order, cost)
        return best

    def _prefer_order(self, best: IndexScan, candidates, order, cost=None) -> IndexScan:
        """Take an index that yields ``order`` when it costs at most twice the best."""
        if order is None or self._provides_order(best, order):
            return best
        for c in candidates:
            if self._provides_order(c, order) and (cost is None or cost(c) <= 2 * cost(best)):
                return c
        return best

    def _provides_order(self, source: Source, order: tuple[str, bool]) -> bool:
        """Whether ``source`` streams rows in exactly the query order: by ``order``'s column
        (NULL smallest), ties by primary key ascending.

        An index scan's ranges run in key order and every entry key ends with the primary
        key, so it does when the column has the requested direction in the index, every
        index column before it is pinned to one value (so the column decides) and so is
        every column after it (so the primary key breaks ties). A descending scan yields it
        once :meth:`_nulls_last` has moved its NULL entries (byte 0x00, first) to the end.
        """
        if isinstance(source, Empty):
            return True
        if not isinstance(source, IndexScan) or source.index.kind == "text":
            return False
        column, desc = order
        index = source.index
        if column not in index.columns:
            return False
        position = index.columns.index(column)
        if self.keys[index.name].descending[position] != desc:
            return False
        counts = source.point_counts
        before = len(counts) >= position and all(n == 1 for n in counts[:position])
        after = position == len(index.columns) - 1 or (
            len(counts) == len(index.columns) and all(n == 1 for n in counts[position + 1 :])
        )
        return before and after

    def _nulls_last(self, scan: IndexScan, column: str) -> None:
        """Reorder ``scan``'s ranges so the NULL entries of ``column`` come after the others.

        NULL is byte 0x00 in both directions, so a descending index stores it first while
        the query order (NULL smallest) wants it last. Every column before ``column`` is
        pinned to one value (:meth:`_provides_order`), so all ranges share that prefix and
        the NULL part is one key interval. Resuming still works: a cursor is (range number,
        key) and each range is still scanned in key order.
        """
        keys = self.keys[scan.index.name]
        position = scan.index.columns.index(column)
        values, nulls = [], []
        for r in scan.ranges:
            _, length = decode_tuple(
                r.start, keys.types[:position], descending=keys.descending[:position]
            )
            # Below the prefix's NULL byte there are no keys: that part joins the NULL piece.
            null_stop = r.start[:length] + _NOT_NULL_START
            if r.start < null_stop:
                stop = null_stop if r.stop is None else min(r.stop, null_stop)
                nulls.append(KeyRange(r.start, stop, r.buckets, r.text))
            start = max(r.start, null_stop)
            if r.stop is None or start < r.stop:
                values.append(KeyRange(start, r.stop, r.buckets, r.text))
        _check_disjoint(values, scan.index)
        _check_disjoint(nulls, scan.index)
        scan.ranges = values + nulls


def source_nodes(source: Source) -> list[Node]:
    """Every node of a source tree (for totals of an analyzed run)."""
    match source:
        case Intersect(driver=driver, probes=probes):
            return [source, *(n for s in [driver, *probes] for n in source_nodes(s))]
        case Union(branches=branches):
            return [source, *(n for b in branches for n in source_nodes(b.source))]
    return [source]


def _group_by_column(children) -> list[Expr]:
    """OR branches with leaves on one column merged (``a = 1 OR a = 2 OR b = 3`` gives two
    branches), so an IN-list is one multi-range access instead of one branch per value."""
    groups: dict[str, list[Expr]] = {}
    out: list[Expr | str] = []
    for child in children:
        column = _column_of(child)
        if column is None:
            out.append(child)
            continue
        if column not in groups:
            groups[column] = []
            out.append(column)
        groups[column].append(child)
    return [
        (groups[c][0] if len(groups[c]) == 1 else Or(tuple(groups[c]))) if isinstance(c, str) else c
        for c in out
    ]


def _leaves(expr: Expr):
    if isinstance(expr, And | Or):
        for c in expr.children:
            yield from _leaves(c)
    else:
        yield expr


def _is_single_point(leaf: Expr) -> bool:
    return (isinstance(leaf, Compare) and leaf.op == "=") or (
        isinstance(leaf, IsNull) and not leaf.negated
    )


def _bound_columns(scan: IndexScan) -> int:
    return len(columns_of(scan.answers))


def _lt(a: float | None, b: float | None) -> bool:
    return b is None or (a is not None and a < b)


def _first_value_length(keys: IndexKeys, data: bytes) -> int | None:
    from culvert_py.encoding import decode_value
    from culvert_py.errors import EncodingError

    try:
        _, end = decode_value(data, keys.types[0], 0, descending=keys.descending[0])
    except EncodingError:
        return None
    return end


def _check_disjoint(ranges: list[KeyRange], index: IndexDef) -> None:
    """The executor returns every entry of every range, so a row appears once per access only
    if no two ranges share a key: they must be disjoint and in key order."""
    for before, after in itertools.pairwise(ranges):
        if before.stop is None or after.start < before.stop:
            raise AssertionError(
                f"{index.path}: overlapping or unordered key ranges "
                f"[{before.start.hex()}..{before.stop.hex() if before.stop else '-'}) and "
                f"[{after.start.hex()}..{after.stop.hex() if after.stop else '-'})"
            )


def _conjoin(parts: list[Expr]) -> Expr:
    unique = list(dict.fromkeys(parts))
    if not unique:
        return TRUE
    return unique[0] if len(unique) == 1 else And(tuple(unique))


# -- explain -------------------------------------------------------------------------------


def explain_lines(plan: Plan, analyze: bool = False) -> list[str]:
    """The plan as an indented tree, one line per node."""
    lines: list[str] = []

    def est(node: Node) -> str:
        text = "est ?" if node.est_rows is None else f"est {node.est_rows:,.0f}"
        if analyze:
            text += (
                f" | actual {node.actual_rows:,} rows, {node.rpcs} rpcs, "
                f"{node.seconds * 1000:.1f} ms"
            )
        return text

    def add(depth: int, text: str) -> None:
        lines.append(("   " * (depth - 1) + "└─ " if depth else "") + text)

    def walk(source: Source, depth: int) -> None:
        match source:
            case IndexScan():
                idx = source.index
                mode = "covered, no primary fetch" if source.covered else "then fetch rows"
                buckets = sorted({b for r in source.ranges for b in r.buckets})
                add(
                    depth,
                    f"IndexScan {idx.hbase_table} [{idx.kind}] on {source.answers!s}"
                    f" ({mode}) — {len(source.ranges)} range(s) x {len(buckets)} bucket(s)"
                    f" in parallel; {est(source)}"
                    + (f", {source.entries_read:,} entries read" if analyze else ""),
                )
                for r in source.ranges[:4]:
                    add(
                        depth + 1,
                        f"keys [{r.start.hex() or '-'} .. {r.stop.hex() if r.stop else '-'})"
                        f" buckets {_span(r.buckets)}",
                    )
                if len(source.ranges) > 4:
                    add(depth + 1, f"... {len(source.ranges) - 4} more ranges")
            case Intersect():
                add(depth, f"Intersect (stream driver, probe keys kept in memory); {est(source)}")
                walk(source.driver, depth + 1)
                for p in source.probes:
                    walk(p, depth + 1)
            case FullScan():
                flt = source.filter.decode(errors="replace") if source.filter else "none"
                done = "complete" if source.filter_complete else "partial; rest checked here"
                add(
                    depth,
                    f"FullScan {plan.table.hbase_table} (every region in parallel); "
                    f"server filter: {flt} ({done}); {est(source)}",
                )
            case Union():
                add(
                    depth,
                    f"Union (OR expansion, a row is kept by its first matching branch); "
                    f"{est(source)}",
                )
                for branch in source.branches:
                    add(depth + 1, f"branch {branch.predicate!s}")
                    walk(branch.source, depth + 2)
            case Empty():
                add(depth, f"Empty: {source.reason}")

    head = f"Query {plan.table.name} where {plan.predicate!s}"
    if plan.order_by:
        head += f" order by {plan.order_by[0]}{' desc' if plan.order_by[1] else ''}"
    if plan.limit is not None:
        head += f" limit {plan.limit}"
    lines.append(f"{head}; {est(plan)}")
    depth = 1
    if plan.sort:
        add(depth, f"Sort by {plan.sort[0]}{' desc' if plan.sort[1] else ''} (client-side)")
        depth += 1
    add(depth, "Check every row against the whole predicate (residual + consistency)")
    walk(plan.source, depth + 1)
    lines += [f"note: {n}" for n in plan.notes]
    return lines


def _span(buckets: list[int]) -> str:
    if len(buckets) > 2 and buckets == list(range(buckets[0], buckets[-1] + 1)):
        return f"{buckets[0]}-{buckets[-1]}"
    return ",".join(map(str, buckets))


def plan_structure(plan: Plan) -> dict:
    """The plan as plain dicts (for JSON output and tests)."""

    def node(source: Source) -> dict:
        base = {
            "est_rows": source.est_rows,
            "actual_rows": source.actual_rows,
            "rpcs": source.rpcs,
            "ms": round(source.seconds * 1000, 3),
        }
        match source:
            case IndexScan():
                return base | {
                    "type": "IndexScan",
                    "index": source.index.name,
                    "kind": source.index.kind,
                    "covered": source.covered,
                    "entries_read": source.entries_read,
                    "answers": str(source.answers),
                    "ranges": [
                        {
                            "start": r.start.hex(),
                            "stop": r.stop.hex() if r.stop else None,
                            "buckets": r.buckets,
                        }
                        for r in source.ranges
                    ],
                }
            case Intersect():
                return base | {
                    "type": "Intersect",
                    "driver": node(source.driver),
                    "probes": [node(p) for p in source.probes],
                }
            case FullScan():
                return base | {
                    "type": "FullScan",
                    "filter": source.filter.decode(errors="replace") if source.filter else None,
                    "filter_complete": source.filter_complete,
                }
            case Union():
                return base | {
                    "type": "Union",
                    "branches": [
                        {"predicate": str(b.predicate), "source": node(b.source)}
                        for b in source.branches
                    ],
                }
            case Empty():
                return base | {"type": "Empty", "reason": source.reason}
        raise AssertionError(source)

    return {
        "table": plan.table.name,
        "predicate": str(plan.predicate),
        "columns": list(plan.columns) if plan.columns else None,
        "order_by": plan.order_by,
        "sort": plan.sort,
        "limit": plan.limit,
        "est_rows": plan.est_rows,
        "actual_rows": plan.actual_rows,
        "ms": round(plan.seconds * 1000, 3),
        "source": node(plan.source),
        "notes": plan.notes,
    }


__all__ = [
    "NO_INDEX",
    "Empty",
    "FullScan",
    "IndexScan",
    "Intersect",
    "KeyRange",
    "Plan",
    "Planner",
    "Union",
    "explain_lines",
    "plan_structure",
]
