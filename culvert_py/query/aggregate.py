"""Aggregate plans: whether a count, min, max or distinct is answered from index entries.

An aggregate reads only the columns it needs: those of the predicate and the one it folds
(``group_by`` of a count, the column of min, max or distinct). It is answered from the index
entries alone when one access holds all of them, with the exactness rules of a covered read
(:mod:`culvert_py.query.executor`): a verified entry is trusted, an unverified one is
checked against its row, and on an adopted table no entry is trusted (every one is checked).
The access is, in order of preference:

1. the planner's own index scan for the predicate, when its entries hold those columns;
2. otherwise a scan of *every* entry of an index that holds one entry per row (term or
   range, not partial unless the query contains its ``where``) and those columns, preferring
   the one whose first column is the folded column (its entries come in that column's order,
   each bucket read in key order and the buckets merged);
3. otherwise the planner's plan as a query runs it: rows are fetched, and the plan says why.

Conjuncts an entry's existence already proves are not re-checked on covered rows: a partial
index's ``where`` and the ``CONTAINS`` of a text index (its key range is exactly the word's
encoding, and the consistency check proves it for every entry checked against its row).

min and max plan over the non-NULL values (``column IS NOT NULL`` is added), preferring an
index that orders by the column; on an index whose first column it is, each bucket is read
from the wanted end and stops at its first passing entry (:mod:`culvert_py.query.extreme`).
A distinct plans as ``ORDER BY column`` and stops at its limit when an index gives that
order. The fold itself is :mod:`culvert_py.query.fold`.
"""

from __future__ import annotations

from dataclasses import dataclass

from culvert_py.errors import ArgumentError, QueryError
from culvert_py.predicate import TRUE, And, Expr, IsNull, columns_of, normalize, parse
from culvert_py.query.plan import Empty, FullScan, IndexScan, KeyRange, Plan
from culvert_py.query.planner import FETCH_COST, Planner
from culvert_py.schema import IndexDef

#: The aggregates, by name.
KINDS = ("count", "min", "max", "distinct")
INDEX_PATH = "index entries"
ROWS_PATH = "rows"


@dataclass
class AggregatePlan:
    """An aggregate and the rows plan that feeds it.

    :ivar kind: one of :data:`KINDS`
    :ivar column: the folded column (``group_by`` of a count; ``None`` for a plain count)
    :ivar plan: the plan whose rows are folded (its ``columns`` are the folded column only)
    :ivar path: :data:`INDEX_PATH` or :data:`ROWS_PATH`
    :ivar reason: why that path, for explain
    :ivar ordered: rows arrive in the folded column's order (NULL first), so min, max and a
        limited distinct stop early
    :ivar limit: at most this many distinct values
    :ivar result: the answer, once run
    :ivar where: the whole predicate (``plan.predicate`` is what is left to check on rows)
    """

    kind: str
    column: str | None
    plan: Plan
    path: str
    reason: str
    ordered: bool = False
    limit: int | None = None
    result: object = None
    where: Expr = TRUE


def plan_aggregate(
    planner: Planner,
    kind: str,
    where: Expr | str | None = None,
    column: str | None = None,
    limit: int | None = None,
) -> AggregatePlan:
    """Plan an aggregate of ``planner``'s table.

    :param planner: a planner of the table, with its index states and statistics
    :param kind: ``"count"``, ``"min"``, ``"max"`` or ``"distinct"``
    :param where: a predicate, its text form, or ``None`` for every row
    :param column: the column to fold (``group_by`` for a count; required otherwise)
    :param limit: for a distinct: at most this many values (``None``: all)
    :return: the :class:`AggregatePlan`
    :raises ArgumentError: for an unknown ``kind``, a ``column`` that is not a name, a
        ``limit`` that is not an integer >= 0, or a ``limit`` on anything but distinct
    :raises QueryError: for an unknown column, and as :meth:`Planner.plan` for ``where``
    """
    table = planner.table
    if kind not in KINDS:
        raise ArgumentError(f"{table.name}: aggregate {kind!r:.60}: expected one of {KINDS}")
    what = "group_by" if kind == "count" else "column"
    if column is not None or kind != "count":
        if not isinstance(column, str):
            raise ArgumentError(f"{table.name}: {kind}: {what}={column!r:.60}: expected a name")
        if column not in table.columns:
            raise QueryError(
                f"{table.name}: {kind}: unknown column {column!r} in {what} "
                f"(known: {', '.join(table.columns)})"
            )
    if limit is not None:
        if kind != "distinct":
            raise ArgumentError(f"{table.name}: {kind}: limit applies to distinct only")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ArgumentError(
                f"{table.name}: distinct: limit={limit!r:.60}: expected an integer >= 0 or None"
            )
    columns = [column] if column is not None else []
    order = None
    if kind in ("min", "max"):
        order = (column, kind == "max")
        base = planner.plan(where, columns)
        # min and max ignore NULLs, as in SQL; saying so lets the index skip them too.
        not_null = IsNull(column, negated=True)
        where = normalize(And((base.predicate, not_null)))
    elif kind == "distinct":
        order = (column, False)
    plan = planner.plan(where, columns, order)
    where_text = plan.predicate
    agg = _choose(planner, kind, column, plan, order)
    agg.limit, agg.where = limit, where_text
    plan.limit = None  # the fold stops by itself; a row limit would cut groups short
    return agg


def _choose(planner: Planner, kind: str, column, plan: Plan, order) -> AggregatePlan:
    table = planner.table
    conjuncts = _conjuncts(plan.predicate)
    source = plan.source
    ordered = order is not None and plan.sort is None
    plan.sort = None  # the fold compares values itself; no client-side sort of all rows
    if table.existing:
        return AggregatePlan(
            kind, column, plan, ROWS_PATH,
            "adopted table: other applications change its rows, so no index entry is "
            "trusted and every row is read",
            ordered,
        )  # fmt: skip
    if isinstance(source, Empty):
        reason = "nothing to read: the predicate is always false"
        return AggregatePlan(kind, column, plan, INDEX_PATH, reason, True)
    read = _read(plan.predicate, column)
    if isinstance(source, IndexScan):
        residual = _covered_residual(planner, source.index, conjuncts, column, source.answers)
        if residual is not None:
            source.covered = True
            plan.predicate = residual
            reason = f"index {source.index.name} holds every column read ({read})"
            return AggregatePlan(kind, column, plan, INDEX_PATH, reason, ordered)
    whole = _whole_index(planner, conjuncts, column, order)
    if whole is not None:
        scan, residual, in_order = whole
        fetched = (source.est_rows or 0) * (1 + FETCH_COST)
        if isinstance(source, FullScan) or (
            scan.est_entries is not None and source.est_rows is not None
            and scan.est_entries < fetched
        ):  # fmt: skip
            plan.source, plan.predicate = scan, residual
            plan.notes = [n for n in plan.notes if "full scan" not in n]
            reason = (
                f"every entry of index {scan.index.name} (it holds every row and every "
                f"column read: {read})"
            )
            return AggregatePlan(kind, column, plan, INDEX_PATH, reason, in_order)
    if isinstance(source, IndexScan):
        reason = (
            f"index {source.index.name} answers the predicate but its entries lack "
            f"{_missing(source.index, planner, conjuncts, column)}: rows are fetched"
        )
    elif isinstance(source, FullScan):
        reason = f"no ACTIVE index holds every row and every column read ({read}): full scan"
    else:
        reason = (
            f"no one index holds every column read ({read}): rows are fetched through "
            f"the {type(source).__name__.lower()} plan"
        )
    return AggregatePlan(kind, column, plan, ROWS_PATH, reason, ordered)


def _whole_index(planner: Planner, conjuncts, column, order):
    """``(scan of every entry, residual predicate, ordered)`` of the best index that holds
    one entry per row of the query and every column it reads, or ``None``."""
    best = None
    for index in planner.active.values():
        if index.kind == "text":
            continue  # one entry per word: not one per row
        implied = _implied(planner, index, conjuncts)
        if implied is None:
            continue
        residual = _covered_residual(planner, index, conjuncts, column, None)
        if residual is None:
            continue
        keys = planner.keys[index.name]
        first = index.columns[0] == column
        in_order = first and order is not None and keys.descending[0] == order[1]
        rank = (not in_order, not first, len(index.columns) + len(index.include))
        if best is None or rank < best[0]:
            best = (rank, index, residual, in_order)
    if best is None:
        return None
    _, index, residual, in_order = best
    everything = KeyRange(b"", None, list(range(index.buckets)), "every entry")
    scan = IndexScan(index, [everything], True, TRUE)
    stats = planner.stats
    if stats is not None and index.name in stats.indexes:
        scan.est_entries = float(stats.indexes[index.name].entries)
    scan.est_rows = scan.est_entries
    return scan, residual, in_order


def _implied(planner: Planner, index: IndexDef, conjuncts) -> list[Expr] | None:
    """The conjuncts a partial index's entries prove (``[]`` for a full index), or ``None``
    when the query does not contain its ``where`` (the index may miss rows it wants)."""
    if not index.where:
        return []
    where = normalize(parse(index.where, dict(planner.table.columns)))
    parts = list(where.children) if isinstance(where, And) else [where]
    return parts if all(p in conjuncts for p in parts) else None


def _covered_residual(planner: Planner, index: IndexDef, conjuncts, column, answers):
    """The predicate left to check on rows made from ``index``'s entries, or ``None`` when
    those rows lack a column it or the fold reads."""
    implied = _implied(planner, index, conjuncts)
    if implied is None:
        return None
    if index.kind == "text":
        implied = [*implied, answers]
    residual = [c for c in conjuncts if c not in implied]
    held = set(planner.table.row_key) | set(index.include)
    if index.kind != "text":
        held |= set(index.columns)
    needs = set().union(*(columns_of(c) for c in residual))
    if column is not None:
        needs.add(column)
    if not needs <= held:
        return None
    return TRUE if not residual else residual[0] if len(residual) == 1 else And(tuple(residual))


def _missing(index: IndexDef, planner: Planner, conjuncts, column) -> str:
    held = set(planner.table.row_key) | set(index.include)
    if index.kind != "text":
        held |= set(index.columns)
    needs = set().union(*(columns_of(c) for c in conjuncts)) | ({column} if column else set())
    return ", ".join(sorted(needs - held)) or "nothing"


def _read(predicate: Expr, column) -> str:
    names = set(columns_of(predicate)) | ({column} if column else set())
    return ", ".join(sorted(names)) or "none"


def _conjuncts(predicate: Expr) -> list[Expr]:
    if predicate == TRUE:
        return []
    return list(predicate.children) if isinstance(predicate, And) else [predicate]


__all__ = ["INDEX_PATH", "KINDS", "ROWS_PATH", "AggregatePlan", "plan_aggregate"]
