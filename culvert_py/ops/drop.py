"""Removing an index: its schema entry first, then its table, state, build plan."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

from culvert_py.errors import SchemaError
from culvert_py.ops.common import _index_def, _plan_name, check_job_arguments
from culvert_py.ops.plan import _discard_plan
from culvert_py.schema import IndexDef, Schema

if TYPE_CHECKING:
    from culvert_py.client import Client

log = logging.getLogger(__name__)


def drop_index(client: Client, table: str, index: str, *, grace_seconds: float = 5.0) -> None:
    """Remove an index: from the applied schema first, then its table and meta rows.

    The schema change is re-planned on top of concurrent ones, so a change another client
    applies meanwhile is kept.

    :param client: the client
    :param table: the table name
    :param index: the index name
    :param grace_seconds: wait this long between the schema change and dropping the table,
        so that writer batches begun under the old schema do not fail writing to it
    :raises ArgumentError: a malformed argument (a non-string name, negative grace_seconds)
    :raises SchemaError: unknown table or index, or the schema kept changing concurrently
    """
    check_job_arguments(table, index, grace_seconds=grace_seconds)
    meta = client.meta
    dropped: list[IndexDef] = []

    def change(applied: Schema | None, _states: dict) -> tuple[Schema, dict]:
        if applied is None:
            raise SchemaError(f"no schema applied to {client.store.url}")
        definition = applied.table(table)
        dropped[:] = [_index_def(definition, index)]
        remaining = {n: i for n, i in definition.indexes.items() if n != index}
        tables = dict(applied.tables)
        tables[table] = dataclasses.replace(definition, indexes=remaining)
        return Schema(tables), {}

    meta.update(change, f"{table}.{index}: dropping the index")
    idx = dropped[0]
    if grace_seconds > 0:
        time.sleep(grace_seconds)
    client.store.delete_table(idx.hbase_table)
    meta.delete_state(table, index)
    _discard_plan(meta, _plan_name(table, index))
    log.info("%s: dropped", idx.path)
