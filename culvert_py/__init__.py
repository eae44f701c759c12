"""culvert_py: secondary indexes over Apache HBase.

The public API is small on purpose: :func:`connect` for a client, :func:`col` to build
predicates, and the errors.
"""

from culvert_py.client import connect
from culvert_py.errors import (
    ArgumentError,
    CapabilityError,
    ConsistencyError,
    CulvertError,
    EncodingError,
    LoadError,
    QueryError,
    SchemaError,
    StoreError,
)
from culvert_py.predicate import col

__all__ = [
    "ArgumentError",
    "CapabilityError",
    "ConsistencyError",
    "CulvertError",
    "EncodingError",
    "LoadError",
    "QueryError",
    "SchemaError",
    "StoreError",
    "col",
    "connect",
]
