"""Whole-table index operations: build, rebuild, verify with repair, drop.

They run while writers are active, each a protocol of its own: :mod:`~culvert_py.ops.build`
(grace period, sweep, plan, scan, finish; rebuild), :mod:`~culvert_py.ops.builder` (the
timestamps entries are written at), :mod:`~culvert_py.ops.verify` (what counts as a
problem under concurrent writes), :mod:`~culvert_py.ops.repair` (fixing one without losing
a write), :mod:`~culvert_py.ops.drop`, :mod:`~culvert_py.ops.sync` (adopted tables: catching
up with other applications' writes). Each takes a :class:`~culvert_py.client.Client`:

    from culvert_py.ops import build_index, verify_index
    build_index(db, "people", "by_name", workers=8)
    report = verify_index(db, "people", "by_name", repair=True)
"""

from culvert_py.ops.build import build_index, rebuild_index
from culvert_py.ops.common import MAX_SHARDS, Progress
from culvert_py.ops.drop import drop_index
from culvert_py.ops.infer import InferredColumn, InferredSchema, infer_schema, to_toml
from culvert_py.ops.plan import PLAN_DOC, RANGE_DOC
from culvert_py.ops.report import BuildReport, VerifyReport
from culvert_py.ops.sync import SyncReport, sync_index
from culvert_py.ops.verify import SETTLE_SECONDS, verify_index

__all__ = [
    "MAX_SHARDS",
    "PLAN_DOC",
    "RANGE_DOC",
    "SETTLE_SECONDS",
    "BuildReport",
    "InferredColumn",
    "InferredSchema",
    "Progress",
    "SyncReport",
    "VerifyReport",
    "build_index",
    "drop_index",
    "infer_schema",
    "rebuild_index",
    "sync_index",
    "to_toml",
    "verify_index",
]
