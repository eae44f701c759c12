"""The predicate language alone: the tree, its evaluation, its text syntax.

Below the schema in the layer order: a predicate needs only the encoding's order rules
and the tokenizer, never a table definition (binding takes plain ``{column: type}``).
"""

from culvert_py.query.expr import (
    FALSE,
    TRUE,
    And,
    Between,
    Col,
    Compare,
    Const,
    Contains,
    Expr,
    In,
    IsNull,
    Not,
    Or,
    Prefix,
    bind,
    col,
    columns_of,
    evaluate,
    matches,
    normalize,
    sort_key,
    to_text,
)
from culvert_py.query.parse import parse

__all__ = [
    "FALSE",
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
    "Not",
    "Or",
    "Prefix",
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
