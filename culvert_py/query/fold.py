"""Runs an aggregate plan: its rows folded into a count, groups, an extreme or values.

The rows come from the executor exactly as a query's do (covered rows from trusted entries,
fetched rows checked against their entries and the predicate), so an aggregate is as exact
as the query it stands for. Groups and distinct values are keyed by the order the index
keeps (NULL lowest, ``-0.0`` equal to ``0.0``, NaN equal to NaN and above every number),
so every path gives the same answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from culvert_py.predicate import sort_key
from culvert_py.query.aggregate import INDEX_PATH, AggregatePlan
from culvert_py.query.executor import QueryExecutor
from culvert_py.query.explain import explain_lines
from culvert_py.query.extreme import extreme_scan, extreme_value
from culvert_py.query.plan import source_nodes


def run_aggregate(executor: QueryExecutor, agg: AggregatePlan) -> object:
    """Run ``agg`` and return its answer (also kept in ``agg.result``).

    :param executor: an executor over the aggregate's table
    :param agg: the plan, from :func:`~culvert_py.query.aggregate.plan_aggregate`
    :return: an ``int`` for a count; ``{value: count}`` in value order (NULL first) for a
        grouped count; the value or ``None`` (no non-NULL value) for min and max; the list
        of distinct values in value order (NULL first) for distinct
    :raises StoreError: when the store fails (after retries)
    """
    plan = agg.plan
    started = time.perf_counter()
    if agg.kind in ("min", "max") and agg.path == INDEX_PATH and extreme_scan(plan, agg.column):
        largest = agg.kind == "max"
        agg.result = extreme_value(
            executor.store, executor.definition, executor.pool, plan, agg.column, largest
        )
    else:
        agg.result = _FOLDS[agg.kind](agg, executor.run(plan))
    plan.seconds = time.perf_counter() - started
    plan.rpcs = sum(node.rpcs for node in source_nodes(plan.source))
    return agg.result


def aggregate_lines(agg: AggregatePlan, analyze: bool = False) -> list[str]:
    """The aggregate's explain text: which path and why, then the rows plan under it.

    :param agg: the plan (run first for ``analyze``)
    :param analyze: include actual rows, RPCs and time per node
    """
    what = agg.kind if agg.column is None else f"{agg.kind}({agg.column})"
    if agg.kind == "count" and agg.column is not None:
        what = f"count group by {agg.column}"
    if agg.limit is not None:
        what += f" limit {agg.limit}"
    head = f"Aggregate {what} of {agg.plan.table.name} where {agg.where!s} from {agg.path}"
    head += f": {agg.reason}"
    if agg.kind in ("min", "max") and agg.path == INDEX_PATH and extreme_scan(agg.plan, agg.column):
        end = "high" if agg.kind == "max" else "low"
        head += f"; reads each bucket from its {end} end and stops at the first entry that passes"
    elif agg.ordered and agg.limit is not None:
        head += "; rows arrive in column order, so it stops at the limit"
    if analyze:
        head += f" | result {_shown(agg.result)}"
    return [head, *("   " + line for line in explain_lines(agg.plan, analyze))]


def _count(agg: AggregatePlan, rows: Iterator[dict]) -> object:
    if agg.column is None:
        return sum(1 for _ in rows)
    column = agg.column
    groups: dict[tuple, list] = {}
    for row in rows:
        value = row.get(column)
        group = groups.get(key := _order(value))
        if group is None:
            groups[key] = [value, 1]
        else:
            group[1] += 1
    return {value: n for _, (value, n) in sorted(groups.items())}


def _extreme(agg: AggregatePlan, rows: Iterator[dict]) -> object:
    column, largest = agg.column, agg.kind == "max"
    best, best_key = None, None
    for row in rows:
        value = row.get(column)
        if value is None:
            continue
        if agg.ordered:
            return value  # the first non-NULL value in the requested order
        key = sort_key(value)
        if best_key is None or (key > best_key if largest else key < best_key):
            best, best_key = value, key
    return best


def _distinct(agg: AggregatePlan, rows: Iterator[dict]) -> object:
    column, limit = agg.column, agg.limit
    if limit == 0:
        return []
    seen: dict[tuple, object] = {}
    for row in rows:
        value = row.get(column)
        seen.setdefault(_order(value), value)
        if agg.ordered and limit is not None and len(seen) >= limit:
            break  # values arrive in order: the first ``limit`` distinct ones are the answer
    values = [v for _, v in sorted(seen.items())]
    return values if limit is None else values[:limit]


_FOLDS = {"count": _count, "min": _extreme, "max": _extreme, "distinct": _distinct}


def _order(value: object) -> tuple:
    """The key of a value in index order: NULL below every value."""
    return (0,) if value is None else (1, sort_key(value))


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


__all__ = ["aggregate_lines", "run_aggregate"]
