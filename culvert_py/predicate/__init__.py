"""The predicate language alone: the tree, its evaluation, its text syntax.

Below the schema in the layer order: a predicate needs only the encoding's order rules
and the tokenizer, never a table definition (binding takes plain ``{column: type}``).

* :mod:`~culvert_py.predicate.literal` — the values a predicate compares with, spelt as text
* :mod:`~culvert_py.predicate.tree` — the frozen nodes (``Compare`` … ``Not``, ``TRUE``/``FALSE``)
* :mod:`~culvert_py.predicate.builder` — ``col("age") >= 30``
* :mod:`~culvert_py.predicate.evaluate` — three-valued evaluation on one row
* :mod:`~culvert_py.predicate.bind` — checking against column types
* :mod:`~culvert_py.predicate.normal` — the normal form the planner reads
* :mod:`~culvert_py.predicate.parse` — the text syntax (a SQL WHERE subset)
"""

from culvert_py.encoding import sort_key
from culvert_py.predicate.bind import Locate, bind
from culvert_py.predicate.builder import Col, col
from culvert_py.predicate.evaluate import columns_of, evaluate, matches
from culvert_py.predicate.literal import KEYWORDS, Value
from culvert_py.predicate.normal import normalize
from culvert_py.predicate.parse import parse
from culvert_py.predicate.tree import (
    FALSE,
    TRUE,
    And,
    Between,
    Compare,
    Const,
    Contains,
    Expr,
    In,
    IsNull,
    Not,
    Or,
    Prefix,
    to_text,
)

__all__ = [
    "FALSE",
    "KEYWORDS",
    "TRUE",
    "And",
    "Between",
    "Col",
    "Compare",
    "Const",
    "Contains",
    "Expr",
    "In",
    "IsNull",
    "Locate",
    "Not",
    "Or",
    "Prefix",
    "Value",
    "bind",
    "col",
    "columns_of",
    "evaluate",
    "matches",
    "normalize",
    "parse",
    "sort_key",
    "to_text",
]
