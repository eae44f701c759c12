"""Predicates over rows: the tree, its text syntax, and (elsewhere) their planning and execution.

* :mod:`culvert_py.query.expr` — the predicate tree (``col('age') >= 30``), three-valued
  evaluation, binding to a table's column types, normalisation and rendering back to text.
* :mod:`culvert_py.query.parse` — the text syntax used by the CLI and schema files
  (``origin = 'JFK' AND dep_delay > 120``), parsed into that tree.

Nothing is re-exported here: import from the submodules.
"""
