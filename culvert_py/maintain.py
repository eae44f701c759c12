"""The write protocol: a batch of row changes becomes index and primary mutations.

HBase is atomic per row only, so one logical write (a primary row plus its index entries in
other tables) is a read and three write steps, as in Phoenix's consistent global indexes.
All steps of one attempt share one timestamp ``T``:

1. **Read** the rows' current indexed values and version cells (batched ``get_many``).
   ``T = max(clock, newest cell read + 1, previous attempt's T + 1)``, so a write always
   supersedes what it replaced, even across skewed client clocks.
2. **Unverified**: put each new or changed entry with state ``u`` (and its covered values),
   and mark each entry that is going away ``u`` too.
3. **Primary**: write the row, conditioned on its version cell still holding what step 1
   read (``check_and_mutate``: one atomic row write that also sets the new version). A row
   whose condition failed was changed by a concurrent writer: it goes back to step 1.
4. **Verified**: mark the new entries ``v`` and delete the departed ones, at ``T``.

Why this is exact for readers (a query checks every entry it uses against the primary row,
except covered queries, which trust ``v`` entries and check ``u`` ones):

- An entry exists before its row does (step 2 precedes step 3): readers never miss a row.
- A crash after step 2 leaves ``u`` entries that match no row: readers drop them.
- A crash after step 3 leaves the old entries marked ``u``: covered readers re-check them.
- A ``v`` entry is written only after its own row write won the version check. Any later
  writer of the row read *that* row (its version check guarantees it), so it knows the entry
  and removes it at a later timestamp; a slow step 4 arriving afterwards is masked by that
  delete. So a verified entry never disagrees with its row.
- Deleting a row keeps its version cell as a tombstone (flag ``D``) instead of deleting
  everything: the next writer reads the tombstone's timestamp and writes above it. Without
  it, a writer with a lagging clock could write *below* the delete marker and lose data.

Unchanged entries (same key, same covered values) are not rewritten, so updating a column
no index mentions costs no index writes at all.

Bulk mode (insert-only loads) skips step 1 and the version check: it is only correct for
keys that do not exist yet, because without the read the old entries of an existing row are
never removed. A store without ``check_and_mutate`` (HBase with no Thrift2 gateway) runs
step 3 as a plain batched write: correct for one writer per row at a time, which the
store's capability report says.
"""

from __future__ import annotations

import functools
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass

from culvert_py.encoding import cell_decoder, encode_value
from culvert_py.errors import ConsistencyError, SchemaError
from culvert_py.keys import (
    COVERED_PREFIX,
    STATE_COLUMN,
    UNVERIFIED,
    VERIFIED,
    IndexKeys,
    data_column,
    version_column,
)
from culvert_py.query.expr import Expr, columns_of, matches
from culvert_py.schema import IndexDef, TableDef
from culvert_py.store.base import RowMutation, Store

log = logging.getLogger(__name__)

LIVE = b"L"
DELETED = b"D"
_VERSION = struct.Struct(">Q8sc")

#: Attempts per row before a write gives up on a row that keeps changing under it.
MAX_ATTEMPTS = 50


def new_version(ts: int, flag: bytes = LIVE) -> bytes:
    """A version cell value: timestamp, 8 random bytes (unique per write), live/deleted flag.

    The random part lets a writer recognise its own write after an ambiguous failure.
    """
    return _VERSION.pack(ts, os.urandom(8), flag)


def is_deleted(version: bytes | None) -> bool:
    """Whether a version cell value marks a deleted row (a tombstone)."""
    return version is not None and version[-1:] == DELETED


def decode_row(table: TableDef, cells: Mapping[bytes, bytes]) -> dict[str, object] | None:
    """Turn primary-table cells into a typed row dict; ``None`` for an absent or deleted row.

    Cells may be plain values or ``(value, timestamp)`` pairs. A live row read with a column
    subset may come back as an empty dict (it exists; the columns read are all NULL).
    """
    if not cells:
        return None
    version = cells.get(version_column(table))
    if isinstance(version, tuple):
        version = version[0]
    if is_deleted(version):
        return None
    decoders = _row_decoders(table.name, table.family, tuple(table.columns.items()))
    row: dict[str, object] = {}
    for column, raw in cells.items():
        known = decoders.get(column)
        if known is None:
            continue  # the version cell, or a column written by someone else
        name, decode = known
        row[name] = decode(raw[0] if isinstance(raw, tuple) else raw)
    return row


@functools.lru_cache(maxsize=64)
def _row_decoders(table: str, family: str, columns: tuple) -> dict[bytes, tuple]:
    """``{b"family:column": (column, decoder)}`` for one table definition."""
    return {f"{family}:{name}".encode(): (name, cell_decoder(typ)) for name, typ in columns}


def encode_row(table: TableDef, row: Mapping[str, object]) -> tuple[dict, list]:
    """Encode a (partial) row: ``({column: bytes}, [columns to delete because None])``.

    :raises SchemaError: for a column the table does not declare
    :raises EncodingError: for a value of the wrong type, naming the column
    """
    puts, deletes = {}, []
    for name, value in row.items():
        typ = table.columns.get(name)
        if typ is None:
            raise SchemaError(
                f"{table.name}: unknown column {name!r} (known: {', '.join(table.columns)})"
            )
        if value is None:
            deletes.append(data_column(table, name))
        else:
            puts[data_column(table, name)] = encode_value(value, typ, column=f"{table.name}.{name}")
    return puts, deletes


@dataclass
class _Change:
    pk: bytes
    values: dict | None  # the given columns (None: delete the row)
    old: dict | None = None  # the row's indexed columns before (None: absent)
    version: bytes | None = None  # its version cell before


class IndexWriter:
    """Applies batches of row changes to one table and its maintained indexes.

    :param store: the store
    :param table: the table definition
    :param indexes: the indexes to maintain (BUILDING and ACTIVE ones)
    :param executor: thread pool for parallel store calls (never used re-entrantly)
    :param conditional: use ``check_and_mutate`` for step 3 (serialises concurrent writers)
    :param where: parsed ``where`` predicates of partial indexes, by index name
    """

    def __init__(
        self,
        store: Store,
        table: TableDef,
        indexes: Iterable[IndexDef],
        executor: Executor,
        conditional: bool,
        where: Mapping[str, Expr] | None = None,
    ) -> None:
        self.store = store
        self.table = table
        self.indexes = list(indexes)
        self.keys = {i.name: IndexKeys(table, i) for i in self.indexes}
        self.executor = executor
        self.conditional = conditional
        self.where = dict(where or {})
        self.primary = store.table(table.hbase_table)
        self.index_tables = {i.name: store.table(i.hbase_table) for i in self.indexes}
        self.vcol = version_column(table)
        needed = set()
        for index in self.indexes:
            needed |= set(index.columns) | set(index.include)
        for predicate in self.where.values():
            needed |= columns_of(predicate)
        self.read_columns = [data_column(table, c) for c in sorted(needed)] + [self.vcol]
        self._last_ts = 0
        self._ts_lock = threading.Lock()
        #: Called with "read", "unverified", "primary", "verified" after each step; tests
        #: use it to inject crashes at every step boundary, tracing to time the steps.
        self.on_step: Callable[[str], None] | None = None

    # -- public -------------------------------------------------------------------------

    def write(self, changes: Mapping[bytes, dict | None], bulk: bool = False) -> None:
        """Apply ``{primary key: partial row, or None to delete}`` by the protocol.

        :param changes: the changes; a partial row updates only the columns it names (a
            ``None`` value sets that column to NULL)
        :param bulk: insert-only mode: skip step 1 and the version check (new keys only)
        :raises ConsistencyError: when a row kept changing under the writer
        """
        pending = [_Change(pk, values) for pk, values in changes.items()]
        for _attempt in range(MAX_ATTEMPTS):
            if not pending:
                return
            pending = self._attempt(pending, bulk)
        raise ConsistencyError(
            f"{self.table.name}: {len(pending)} row(s) changed concurrently {MAX_ATTEMPTS} "
            "times in a row; giving up on them"
        )

    # -- one attempt ---------------------------------------------------------------------

    def _attempt(self, batch: list[_Change], bulk: bool) -> list[_Change]:
        newest = 0
        if not bulk:
            current = self.primary.get_many(
                [c.pk for c in batch], columns=self.read_columns, include_timestamp=True
            )
            for change in batch:
                cells = current.get(change.pk, {})
                newest = max([newest, *(ts for _, ts in cells.values())])
                version = cells.get(self.vcol)
                change.version = version[0] if version else None
                change.old = decode_row(self.table, cells)
        self._step("read")
        with self._ts_lock:  # batches of one writer may run concurrently (put_many pipeline)
            ts = max(time.time_ns() // 1_000_000, newest + 1, self._last_ts + 1)
            self._last_ts = ts

        unverified: dict[str, list[RowMutation]] = {i.name: [] for i in self.indexes}
        verified: dict[str, dict[bytes, list]] = {i.name: {} for i in self.indexes}
        for change in batch:
            self._plan_entries(change, unverified, verified)

        self._parallel(self._index_writes(unverified, ts))
        self._step("unverified")

        won = self._write_primary(batch, ts, bulk)
        self._step("primary")

        final: list = []
        for name, per_row in verified.items():
            muts = [m for change in won for m in per_row.get(change.pk, [])]
            if muts:
                final.append((name, muts))
        self._parallel(
            (lambda n=name, m=muts: self.index_tables[n].mutate_many(m, ts)) for name, muts in final
        )
        self._step("verified")
        won_ids = {id(c) for c in won}
        lost = [c for c in batch if id(c) not in won_ids]
        if lost:
            log.debug("%s: %d row(s) lost a version race; retrying", self.table.name, len(lost))
        return lost

    def _plan_entries(self, change: _Change, unverified: dict, verified: dict) -> None:
        old_row = change.old
        if change.values is None:
            new_row = None
        else:
            new_row = dict(old_row or {})
            new_row.update(change.values)
        for index in self.indexes:
            keys = self.keys[index.name]
            before = self._entries(index, keys, old_row, change.pk)
            after = self._entries(index, keys, new_row, change.pk)
            step2, step4 = [], []
            for key, covered in after.items():
                if before.get(key) == covered:
                    continue  # unchanged entry: nothing to do
                puts = {STATE_COLUMN: UNVERIFIED, **{c: v for c, v in covered.items() if v}}
                nulls = [c for c, v in covered.items() if v is None]
                step2.append(RowMutation(key, puts, nulls))
                step4.append(RowMutation(key, {STATE_COLUMN: VERIFIED}))
            for key in before.keys() - after.keys():
                step2.append(RowMutation(key, {STATE_COLUMN: UNVERIFIED}))
                step4.append(RowMutation(key, {}, [b"i:"]))
            unverified[index.name] += step2
            if step4:
                verified[index.name][change.pk] = step4

    def _entries(self, index: IndexDef, keys: IndexKeys, row, pk: bytes) -> dict[bytes, dict]:
        """``{entry key: {covered column: encoded value or None}}`` of ``row`` in ``index``."""
        if row is None:
            return {}
        where = self.where.get(index.name)
        if where is not None and not matches(where, row):
            return {}
        covered = {
            COVERED_PREFIX + c.encode(): (
                None
                if row.get(c) is None
                else encode_value(row[c], self.table.columns[c], column=f"{self.table.name}.{c}")
            )
            for c in index.include
        }
        return {key: covered for key in keys.entry_keys(row, pk)}

    def _index_writes(self, per_index: dict[str, list[RowMutation]], ts: int):
        for name, muts in per_index.items():
            if muts:
                yield lambda n=name, m=muts: self.index_tables[n].mutate_many(m, ts)

    def _write_primary(self, batch: list[_Change], ts: int, bulk: bool) -> list[_Change]:
        mutations = {}
        for change in batch:
            if change.values is None:
                deletes = [data_column(self.table, c) for c in self.table.columns]
                mutations[change.pk] = RowMutation(
                    change.pk, {self.vcol: new_version(ts, DELETED)}, deletes
                )
            else:
                puts, deletes = encode_row(self.table, change.values)
                puts[self.vcol] = new_version(ts)
                mutations[change.pk] = RowMutation(change.pk, puts, deletes)
        if bulk or not self.conditional:
            self.primary.mutate_many(mutations.values(), ts)
            return batch

        def conditional_write(change: _Change) -> bool:
            mutation = mutations[change.pk]
            if change.version is None:
                # No version cell: the row was never written through culvert_py, so there is
                # nothing to delete, and the store's absent-cell condition takes puts only.
                mutation = RowMutation(mutation.row, mutation.puts)
            return self.primary.check_and_mutate(change.pk, self.vcol, change.version, mutation, ts)

        results = list(self.executor.map(conditional_write, batch))
        lost = [c.pk for c, ok in zip(batch, results, strict=True) if not ok]
        if lost:
            # A retried RPC whose first try did apply reports "condition failed": the
            # version cell then holds exactly what we wrote (the random part is ours), and
            # the write won after all.
            now = self.primary.get_many(lost, columns=[self.vcol])
            for i, change in enumerate(batch):
                if not results[i]:
                    written = mutations[change.pk].puts[self.vcol]
                    results[i] = now.get(change.pk, {}).get(self.vcol) == written
        return [c for c, ok in zip(batch, results, strict=True) if ok]

    def _parallel(self, calls) -> None:
        futures = [self.executor.submit(call) for call in calls]
        for future in futures:
            future.result()

    def _step(self, name: str) -> None:
        if self.on_step is not None:
            self.on_step(name)
