"""The plan tree a query runs as: its node types, from key ranges up to the whole plan.

A :class:`Plan` wraps one *source* node (:class:`IndexScan`, :class:`Intersect`,
:class:`FullScan`, :class:`Union` or :class:`Empty`) with what happens to its rows after:
the residual predicate, the returned columns, a client-side sort, a limit. The planner
(:mod:`culvert_py.query.planner`) builds them, the executor runs them, and
:mod:`culvert_py.query.explain` renders them; ``explain(analyze=True)`` fills the actual
counts of each node.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from culvert_py.predicate import Expr
from culvert_py.schema import IndexDef, TableDef

#: ``use_index=NO_INDEX`` forces a full scan.
NO_INDEX = "NO_INDEX"


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
    #: probes that measured accesses while planning (:class:`~culvert_py.query.probe.ProbeReport`)
    probes: list = field(default_factory=list, init=False)

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


def source_nodes(source: Source) -> list[Node]:
    """Every node of a source tree (for totals of an analyzed run)."""
    match source:
        case Intersect(driver=driver, probes=probes):
            return [source, *(n for s in [driver, *probes] for n in source_nodes(s))]
        case Union(branches=branches):
            return [source, *(n for b in branches for n in source_nodes(b.source))]
    return [source]


__all__ = [
    "NO_INDEX",
    "Empty",
    "FullScan",
    "IndexScan",
    "Intersect",
    "KeyRange",
    "Node",
    "Plan",
    "Source",
    "Union",
    "source_nodes",
]
