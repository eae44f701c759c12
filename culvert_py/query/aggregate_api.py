"""The aggregate methods of an indexed table, mixed into :class:`~culvert_py.table.IndexedTable`.

Thin: each method plans with :func:`~culvert_py.query.aggregate.plan_aggregate` and runs
with :func:`~culvert_py.query.fold.run_aggregate`. The table is duck-typed (it sits above
this floor): ``definition``, ``states``, ``store``, ``client``, ``stats()``, ``refresh()``.
"""

from __future__ import annotations

from typing import Any

from culvert_py.arguments import check_flag
from culvert_py.query.aggregate import AggregatePlan, plan_aggregate
from culvert_py.query.executor import QueryExecutor
from culvert_py.query.fold import aggregate_lines, run_aggregate
from culvert_py.query.planner import Planner
from culvert_py.store.base import CAP_SERVER_FILTER

#: Seconds an aggregate may plan with the schema it last read (as a query does).
SCHEMA_MAX_AGE = 1.0


class AggregateMethods:
    """``count``, ``min``, ``max``, ``distinct`` and ``explain_aggregate`` of a table.

    Each is answered from index entries when one index holds every column it reads (see
    :mod:`culvert_py.query.aggregate`), otherwise from the rows; the answer is the same.
    """

    definition: Any
    states: Any
    store: Any
    client: Any

    def count(self, where: object = None, group_by: str | None = None) -> Any:
        """The number of rows matching ``where``, or ``{value: count}`` by ``group_by``.

        :param where: a predicate, its text form, or ``None`` for every row
        :param group_by: a column: count per value (NULL is a group of its own)
        :return: an ``int``, or a dict in value order (NULL first)
        :raises ArgumentError: for a malformed argument
        :raises QueryError: unknown columns, type mismatches, syntax errors
        """
        return self._aggregate("count", where, group_by)

    def min(self, column: str, where: object = None) -> Any:
        """The smallest non-NULL value of ``column`` among rows matching ``where``.

        :return: the value, or ``None`` when no matching row has one
        :raises ArgumentError: for a malformed argument
        :raises QueryError: unknown columns, type mismatches, syntax errors
        """
        return self._aggregate("min", where, column)

    def max(self, column: str, where: object = None) -> Any:
        """The largest non-NULL value of ``column`` among rows matching ``where`` (NaN is
        above every number, as in index order).

        :return: the value, or ``None`` when no matching row has one
        :raises ArgumentError: for a malformed argument
        :raises QueryError: unknown columns, type mismatches, syntax errors
        """
        return self._aggregate("max", where, column)

    def distinct(self, column: str, where: object = None, limit: int | None = None) -> list:
        """The distinct values of ``column`` among rows matching ``where``, in value order.

        :param limit: at most this many (the smallest ones); ``None`` for all
        :return: a list, NULL first when a matching row has none
        :raises ArgumentError: for a malformed argument
        :raises QueryError: unknown columns, type mismatches, syntax errors
        """
        return self._aggregate("distinct", where, column, limit)  # type: ignore[return-value]

    def explain_aggregate(
        self,
        kind: str,
        column: str | None = None,
        where: object = None,
        limit: int | None = None,
        analyze: bool = False,
    ) -> str:
        """Which path an aggregate takes (index entries or rows) and why, with its plan.

        :param kind: ``"count"``, ``"min"``, ``"max"`` or ``"distinct"``
        :param column: the folded column (``group_by`` for a count)
        :param analyze: also run it and report the result and actuals per node
        :return: the explain text
        :raises ArgumentError: for a malformed argument
        :raises QueryError: unknown columns, type mismatches, syntax errors
        """
        check_flag(self.definition.name, "analyze", analyze)
        agg = self.plan_aggregate(kind, where, column, limit)
        if analyze:
            run_aggregate(self._executor(), agg)
        return "\n".join(aggregate_lines(agg, analyze))

    def plan_aggregate(
        self, kind: str, where: object = None, column: str | None = None, limit=None
    ) -> AggregatePlan:
        """The :class:`~culvert_py.query.aggregate.AggregatePlan` of an aggregate.

        :raises ArgumentError: for a malformed argument
        :raises QueryError: unknown columns, type mismatches, syntax errors
        """
        self.refresh(max_age=SCHEMA_MAX_AGE)  # type: ignore[attr-defined]
        planner = Planner(
            self.definition,
            self.states,
            self.stats(),  # type: ignore[attr-defined]
            CAP_SERVER_FILTER in self.store.capabilities,
        )
        return plan_aggregate(planner, kind, where, column, limit)

    def _aggregate(self, kind, where, column, limit=None) -> Any:
        return run_aggregate(self._executor(), self.plan_aggregate(kind, where, column, limit))

    def _executor(self) -> QueryExecutor:
        return QueryExecutor(self.store, self.definition, self.client.executor)


__all__ = ["SCHEMA_MAX_AGE", "AggregateMethods"]
