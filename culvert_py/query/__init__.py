"""The query room: a predicate's plan, from the choice of access path to the rows it returns.

* :mod:`~culvert_py.query.planner` — the :class:`~culvert_py.query.planner.Planner`: access
  paths (:mod:`~culvert_py.query.access`) over byte intervals
  (:mod:`~culvert_py.query.intervals`), chosen by cost.
* :mod:`~culvert_py.query.plan` — the plan nodes.
* :mod:`~culvert_py.query.explain` — plans as text or plain dicts.
* :mod:`~culvert_py.query.hbase_filter` — the part of a predicate HBase region servers filter.
* :mod:`~culvert_py.query.executor` — runs a plan against a store;
  :mod:`~culvert_py.query.cursor` — the cursors that resume it.

The predicate language itself is :mod:`culvert_py.predicate`. Nothing is re-exported here:
import from the submodules.
"""
