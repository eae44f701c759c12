"""Chooses how a query reads its rows: access paths from the predicate, picked by cost.

Planning, in order:

1. **Bind and normalise** the predicate (:func:`~culvert_py.predicate.bind`,
   :func:`~culvert_py.predicate.normalize`): NOT pushed to the leaves, AND/OR flattened,
   IN turned into ORs of equalities, constants folded.
2. **Constraints per column** (:mod:`culvert_py.query.intervals`): each indexable leaf
   becomes byte intervals over the column's encoded values, merged per OR and intersected
   per AND; an empty intersection (``a > 5 AND a < 3``) is answered without the store.
3. **Access paths** (:mod:`culvert_py.query.access`): for each ACTIVE index, the key ranges
   it can read for the conjunction, with an entry estimate from the statistics.
4. **Choice by cost.** ``full scan = rows``; ``index = entries + 3 × fetched rows`` (a
   batched random get costs about three scanned rows here); a covered index — every column
   the query needs is in the entry — fetches nothing; an intersection of the two most
   selective accesses scans both and fetches the estimated overlap. The cheapest wins.
   Without fresh statistics (none, stale, or none of an index) the entries of each access,
   and the table's rows, are measured by a bounded key-only probe
   (:mod:`culvert_py.query.probe`) and the same costs decide; explain shows the probe and
   its cost. With no prober either, an index is preferred to a full scan, equality to
   range, and explain says the plan is a guess.
5. **OR** of conjunctions that no single index answers becomes a union of branch plans; a
   row found by branch *i* is dropped if an earlier branch also matches it, so no memory of
   seen keys is needed. If any branch needs a full scan, the whole OR is one full scan.
6. **Full scan** pushes what it can of the predicate to the region servers as a filter
   string (:mod:`culvert_py.query.hbase_filter`); the executor re-checks every row anyway.
7. **Order.** One query has one order whatever the plan: the order column's value with NULL
   smallest (NULLs first ascending, last descending), ties by primary key ascending. An
   index scan provides it when its key order is exactly that (:meth:`Planner._provides_order`;
   a descending one reads its NULL entries last); otherwise the executor sorts.

The plan nodes live in :mod:`culvert_py.query.plan`, their rendering in
:mod:`culvert_py.query.explain`.

The statistics object is duck-typed (:class:`culvert_py.stats.TableStats` in practice, which
sits on this floor and so is never imported here): it has ``rows`` (live rows of the table)
and ``indexes``, a mapping of index name to an object with ``prefix_ndv`` (a sequence),
``rows_equal(encoded_prefix, k) -> float`` and ``rows_between(lo, hi) -> float``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from culvert_py.encoding import decode_tuple
from culvert_py.errors import ArgumentError, QueryError
from culvert_py.layout import IndexKeys
from culvert_py.meta import ACTIVE, DISABLED
from culvert_py.predicate import (
    FALSE,
    TRUE,
    And,
    Expr,
    Or,
    bind,
    columns_of,
    normalize,
    parse,
)
from culvert_py.query.access import check_disjoint, range_access, text_access
from culvert_py.query.hbase_filter import to_filter_string
from culvert_py.query.intervals import NOT_NULL_START, column_constraints, column_of
from culvert_py.query.plan import (
    NO_INDEX,
    Empty,
    FullScan,
    IndexScan,
    Intersect,
    KeyRange,
    Plan,
    Source,
    Union,
)
from culvert_py.query.probe import Prober, ProbeReport
from culvert_py.schema import IndexDef, TableDef

#: Cost of fetching one primary row by key, in units of one scanned row.
FETCH_COST = 3.0


class Planner:
    """Plans queries over one table.

    :param table: the table definition
    :param states: index name → state; only ``ACTIVE`` indexes are used
    :param stats: the table's :class:`~culvert_py.stats.TableStats`, or ``None``
    :param filter_pushdown: whether the store evaluates filter strings (HBase)
    :param prober: measures accesses the statistics cannot estimate (``None``: guess)
    """

    def __init__(
        self,
        table: TableDef,
        states: Mapping[str, str],
        stats,
        filter_pushdown: bool,
        prober: Prober | None = None,
    ):
        self.table = table
        self.prober = prober
        self._probes: list[ProbeReport] = []
        self._probed_rows: float | None = None
        self._bounds: set[int] = set()  # ids of scans whose probed entries are lower bounds
        self.stats = stats
        self.filter_pushdown = filter_pushdown
        self.states = dict(states)
        self.active = {n: i for n, i in table.indexes.items() if states.get(n) == ACTIVE}
        self.keys = {n: IndexKeys(table, i) for n, i in table.indexes.items()}
        self._where: dict[str, Expr] = {}
        self._intervals: dict = {}  # see column_constraints; one planning run's worth

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
        self._probes, self._probed_rows, self._bounds = [], None, set()
        if self.stats is None and self.prober is None:
            notes.append("no statistics: estimates are guesses (run `culvert stats --refresh`)")
        elif self.stats is None:
            notes.append("no fresh statistics: accesses estimated by bounded probes")
        needed = set(columns if columns is not None else types) | set(columns_of(predicate))
        if order:
            needed.add(order[0])
        source = self._plan_source(predicate, needed, use_index, order, notes)
        sort = order if order and not self._provides_order(source, order) else None
        if order and sort is None and order[1] and isinstance(source, IndexScan):
            self._nulls_last(source, order[0])
        plan = Plan(self.table, source, predicate, columns, order, sort, limit, notes)
        plan.probes = self._probes
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
            return normalize(parse(where, types))
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
        return self._probed_rows if self.stats is None else float(self.stats.rows)

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
        # An adopted table's cells are another application's bytes under its own names: a
        # filter in culvert's encoding would drop every row, so its rows are checked here.
        if self.filter_pushdown and predicate != TRUE and not self.table.existing:
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
            if state != ACTIVE:
                # Not ACTIVE means incomplete: a forced scan would silently miss rows.
                action = "rebuild" if state == DISABLED else "build"
                raise QueryError(
                    f"use_index={use_index!r}: index {self.table.name}.{use_index} is {state}, "
                    f"not ACTIVE, so it may miss rows; run `culvert index {action} "
                    f"{self.table.name} {use_index}` first, or drop the hint"
                )
            return {use_index: self.table.indexes[use_index]}
        return self.active

    def _contradiction(self, conjuncts) -> bool:
        for column, typ in self.table.columns.items():
            intervals = column_constraints(conjuncts, column, typ, False, self._intervals)
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
            where = normalize(parse(index.where, dict(self.table.columns)))
            self._where[index.name] = where
        needed = where.children if isinstance(where, And) else (where,)
        return all(part in conjuncts for part in needed)

    def _access(self, index: IndexDef, conjuncts, needed) -> IndexScan | None:
        if not self._implies_where(index, conjuncts):
            return None
        keys = self.keys[index.name]
        if index.kind == "text":
            return text_access(keys, conjuncts, self.stats)
        return range_access(keys, conjuncts, needed, self.stats, self._intervals)

    def _cheapest(self, candidates: list[IndexScan], predicate, order, notes) -> Source:
        if self.prober is not None:
            self._probe([c for c in candidates if c.est_entries is None])
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
        # A probe's lower bound would make an intersection look cheaper than it is.
        others = [
            c
            for c in candidates[1:]
            if not columns_of(c.answers) <= columns_of(a.answers) and id(c) not in self._bounds
        ]
        if others and rows and id(a) not in self._bounds:
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

    def _probe(self, scans: list[IndexScan]) -> None:
        """Measure ``scans`` (and the table's rows, when unknown) by a bounded probe."""
        rows_index = None
        if self.stats is None and self._probed_rows is None:
            # One entry per row: its size is the table's (a partial or text index is not).
            complete = [i for i in self.active.values() if i.kind != "text" and not i.where]
            rows_index = complete[0] if complete else None
        if not scans and rows_index is None:
            return
        assert self.prober is not None
        report = self.prober.measure(scans, FETCH_COST, rows_index)
        for scan, (_, estimate) in zip(scans, report.estimates, strict=True):
            scan.est_entries = scan.est_rows = estimate.entries
            if not estimate.exact:
                self._bounds.add(id(scan))
        if report.rows is not None:
            self._probed_rows = report.rows.entries
        self._probes.append(report)

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
            null_stop = r.start[:length] + NOT_NULL_START
            if r.start < null_stop:
                stop = null_stop if r.stop is None else min(r.stop, null_stop)
                nulls.append(KeyRange(r.start, stop, r.buckets, r.text))
            start = max(r.start, null_stop)
            if r.stop is None or start < r.stop:
                values.append(KeyRange(start, r.stop, r.buckets, r.text))
        check_disjoint(values, scan.index)
        check_disjoint(nulls, scan.index)
        scan.ranges = values + nulls


def _group_by_column(children) -> list[Expr]:
    """OR branches with leaves on one column merged (``a = 1 OR a = 2 OR b = 3`` gives two
    branches), so an IN-list is one multi-range access instead of one branch per value."""
    groups: dict[str, list[Expr]] = {}
    out: list[Expr | str] = []
    for child in children:
        column = column_of(child)
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


def _bound_columns(scan: IndexScan) -> int:
    return len(columns_of(scan.answers))


__all__ = ["FETCH_COST", "Planner"]
