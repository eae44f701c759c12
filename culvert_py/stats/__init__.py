"""The statistics a planner estimates access costs from, per table.

:mod:`~culvert_py.stats.sketches` holds the bounded summaries, :mod:`~culvert_py.stats.model`
the figures and their stored form, :mod:`~culvert_py.stats.collect` the parallel scans that
gather them and the meta-table reads and writes, :mod:`~culvert_py.stats.keeper` when they
are collected again without being asked.
"""

from culvert_py.stats.collect import (
    IndexSummary,
    collect_stats,
    load_stats,
    refresh_index_stats,
    refresh_stats,
    save_index_summary,
)
from culvert_py.stats.keeper import StatsKeeper
from culvert_py.stats.model import IndexStats, TableStats

__all__ = [
    "IndexStats",
    "IndexSummary",
    "StatsKeeper",
    "TableStats",
    "collect_stats",
    "load_stats",
    "refresh_index_stats",
    "refresh_stats",
    "save_index_summary",
]
