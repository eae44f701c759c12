"""The write protocol: how a batch of row changes reaches the indexes before the rows.

HBase is atomic per row only, so one logical write (a primary row plus its index entries in
other tables) is a read and three write steps, as in Phoenix's consistent global indexes.
All steps of one attempt share one timestamp ``T``:

1. **Read** the rows' current indexed values and version cells (batched ``get_many``).
   ``T = max(clock, newest cell read + 1, previous attempt's T + 1)``, so a write always
   supersedes what it replaced, even across skewed client clocks.
2. **Unverified**: put each new or changed entry with state ``u`` (and its covered values),
   and mark each entry that is going away ``u`` too.
3. **Primary**: write the row, conditioned on its version cell still holding what step 1
   read (``check_and_mutate``: one atomic row write that also sets the new version; the
   batch's rows go in chunks through ``check_and_mutate_many``, chunks in parallel). A row
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

Bulk mode (loads of new keys) replaces step 1 by one batched read of the version cells
alone, and writes the keys that hold no live row without the version check (there are no old
entries to remove; ``T`` still exceeds a tombstone's timestamp). Keys that hold a live row
take the full protocol, so a bulk write is exact whatever the keys; it is fast only when they
are new, and assumes no other writer creates the same keys meanwhile.

Age-off (tables with a lifespan, :mod:`culvert_py.expiry`) is judged at ``T`` on the rows
step 1 read. A put onto an expired row is an insert: the dead row's other cells are
deleted in the same conditional row write and its entries removed, so nothing of it comes
back. A change given as an :class:`AgeOff` deletes the row only if it is still expired at
``T``: a row rewritten since an age-off job found it expired is left alone, and the version
check of step 3 makes sure the row deleted is the very row judged.

A native table with no maintained index skips step 1 and the version check for every key:
there is nothing the check protects. One batched read of the version cells gives ``T``
(above a tombstone or a fast clock's write) and one batched write applies the batch; each
cell carries ``T`` and deletes mask what lies at or below it, so racing writers leave the
row of the one with the highest ``T``, whole. A writer sees a new BUILDING index at its next
batch; the build's grace period covers a batch in flight, as it does for conditional ones.

A store without ``check_and_mutate`` (HBase with no Thrift2 gateway) runs step 3 as a plain
batched write: correct for one writer per row at a time, which the store's capability report
says.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass

from culvert_py.clock import Clock, now_ms
from culvert_py.errors import ConsistencyError
from culvert_py.expiry import AgeOff, is_expired
from culvert_py.layout import (
    DELETED,
    STATE_COLUMN,
    UNVERIFIED,
    VERIFIED,
    VERSION_BYTES,
    IndexKeys,
    data_column,
    decode_primary_key,
    decode_row,
    decode_shadow,
    encode_row,
    entries_of,
    is_deleted,
    new_version,
    shadow_of,
    stored_columns,
    table_families,
    version_column,
)
from culvert_py.predicate import columns_of
from culvert_py.schema import IndexDef, TableDef
from culvert_py.store.base import RowMutation, Store

log = logging.getLogger(__name__)

#: Attempts per row before a write gives up on a row that keeps changing under it.
MAX_ATTEMPTS = 50
# The cells of most entry mutations, shared by all of them (never mutated: a store only reads
# a mutation). A batch makes several per row, and each dict allocated per row is garbage-
# collector work: the collector ran about 20% of a bulk load's client CPU.
_UNVERIFIED_CELLS = {STATE_COLUMN: UNVERIFIED}
_VERIFIED_CELLS = {STATE_COLUMN: VERIFIED}
# What step 4 deletes of an entry that went away: its whole family.
_WHOLE_ENTRY = (b"i:",)

#: The fewest conditional writes per ``check_and_mutate_many`` call when a batch is spread
#: over the executor (smaller chunks cost more calls than the parallelism saves).
_MIN_CHUNK = 50


@dataclass(slots=True)  # one per row: no per-instance __dict__ to allocate and collect
class _Change:
    pk: bytes
    values: dict | None  # the given columns (None: delete the row)
    old: dict | None = None  # the row's indexed columns before (None: absent)
    version: bytes | None = None  # its version cell before
    encoded: tuple[dict, list] = ({}, [])  # encode_row(values): checked before any write
    current: dict | None = None  # the row as it is now (None: absent)
    new: dict | None = None  # the row after this change (None: deleted)
    entries_changed: bool = False  # whether any index entry of the row moves
    entry_writes: int = 0  # entries written or removed for it
    age_off: AgeOff | None = None  # delete only if expired at T (values is then None)
    revive: bool = False  # a put onto an expired row: an insert that clears the dead row


class IndexWriter:
    """Applies batches of row changes to one table and its maintained indexes.

    :param store: the store
    :param table: the table definition
    :param indexes: the indexes to maintain (BUILDING and ACTIVE ones)
    :param executor: thread pool for parallel store calls (never used re-entrantly)
    :param conditional: use ``check_and_mutate`` for step 3 (serialises concurrent writers)
    :param clock: where ``T`` comes from, and the moment age-off is judged at
    """

    def __init__(
        self,
        store: Store,
        table: TableDef,
        indexes: Iterable[IndexDef],
        executor: Executor,
        conditional: bool,
        clock: Clock = now_ms,
    ) -> None:
        self.store = store
        self.clock = clock
        self.table = table
        self.indexes = list(indexes)
        self.keys = {i.name: IndexKeys(table, i) for i in self.indexes}
        self.executor = executor
        self.conditional = conditional
        self.primary = store.table(table.hbase_table)
        self.index_tables = {i.name: store.table(i.hbase_table) for i in self.indexes}
        self.vcol = version_column(table)
        needed = set()
        if table.existing:
            # Another application's row need not hold any indexed cell: read every declared
            # one, so a row is seen (and indexed with its NULLs) whatever it holds.
            needed = {c for c in table.columns if c not in table.row_key}
        for index in self.indexes:
            needed |= set(index.columns) | set(index.include)
            if index.predicate is not None:
                needed |= columns_of(index.predicate)
        if table.lifespan is not None and table.lifespan.column is not None:
            needed.add(table.lifespan.column)  # expiry is judged on the row step 1 reads
        self.read_columns = [*stored_columns(table, sorted(needed)), self.vcol]
        self._last_ts = 0
        self._ts_lock = threading.Lock()
        #: Totals over this writer's life: index entries written or removed, and rows
        #: whose primary row was written (a sync reports them).
        self.entries_written = 0
        self.rows_written = 0
        #: Called with "read", "unverified", "primary", "verified" after each step; tests
        #: use it to inject crashes at every step boundary, tracing to time the steps.
        self.on_step: Callable[[str], None] | None = None

    # -- public -------------------------------------------------------------------------

    def write(self, changes: Mapping[bytes, dict | None], bulk: bool = False) -> int:
        """Apply ``{primary key: partial row, or None to delete}`` by the protocol.

        :param changes: the changes; a partial row updates only the columns it names (a
            ``None`` value sets that column to NULL); an :class:`AgeOff` deletes the row if
            it is expired when written
        :param bulk: fast mode for new keys: one read of the version cells finds the keys
            that hold a live row, which take the full protocol; the others skip step 1 and
            the version check. Exact either way (see the module doc)
        :return: the number of keys bulk mode found holding a live row (0 without ``bulk``)
        :raises ConsistencyError: when a row kept changing under the writer
        """
        # Every value is encoded (so type-checked) before step 2: a bad value must fail the
        # batch before it leaves unverified entries behind.
        pending = [
            _Change(pk, None, age_off=values)
            if isinstance(values, AgeOff)
            else _Change(pk, values, encoded=encode_row(self.table, values) if values else ({}, []))
            for pk, values in changes.items()
        ]
        existed = 0
        if not self.indexes and not self.table.existing and self.table.lifespan is None and pending:
            # No index, so nothing to keep consistent with the rows: one read of the version
            # cells (for T) and one plain batched write, whatever the keys hold. (A lifespan
            # needs each row read: a put onto an expired row clears what is left of it.)
            found = self._versions(pending)
            floor = max((ts for _, ts in found.values()), default=0)
            self._attempt(pending, True, floor)
            return sum(1 for v, _ in found.values() if not is_deleted(v)) if bulk else 0
        if bulk and (self.table.existing or any(c.age_off for c in pending)):
            # Another application's rows may exist under any key: read them all. An age-off
            # change must read its row to judge it.
            bulk = False
        if bulk and pending:
            fresh, pending, floor = self._split_existing(pending)
            existed = len(pending)
            if fresh:
                self._attempt(fresh, True, floor)  # no version check, so nothing comes back
            if existed:
                log.info(
                    "%s: %d of %d bulk row(s) already existed; written by the full protocol",
                    self.table.name,
                    existed,
                    existed + len(fresh),
                )
        for _attempt in range(MAX_ATTEMPTS):
            if not pending:
                return existed
            pending = self._attempt(pending, False)
        raise ConsistencyError(
            f"{self.table.name}: {len(pending)} row(s) changed concurrently {MAX_ATTEMPTS} "
            "times in a row; giving up on them"
        )

    # -- one attempt ---------------------------------------------------------------------

    def _split_existing(self, batch: list[_Change]) -> tuple[list, list, int]:
        """``(new keys, keys holding a live row, newest tombstone timestamp)`` of a bulk batch.

        One batched read of the version cells only: a row written through culvert_py always
        has one, and its old index entries are what a bulk write of it would leave behind.
        """
        found = self._versions(batch)
        fresh, existing, floor = [], [], 0
        for change in batch:
            cell = found.get(change.pk)
            if cell is not None and not is_deleted(cell[0]):
                existing.append(change)
            else:
                fresh.append(change)
                if cell is not None:
                    # A deleted row has no entries, but its tombstone masks writes below it.
                    floor = max(floor, cell[1])
        return fresh, existing, floor

    def _versions(self, batch: list[_Change]) -> dict[bytes, tuple[bytes, int]]:
        """``{key: (version cell, its timestamp)}`` of the keys of ``batch`` that have one."""
        found = self.primary.get_many(
            [c.pk for c in batch], columns=[self.vcol], include_timestamp=True
        )
        vcol = self.vcol
        return {pk: cells[vcol] for pk, cells in found.items() if vcol in cells}

    def _attempt(self, batch: list[_Change], bulk: bool, floor: int = 0) -> list[_Change]:
        newest = floor
        if not bulk:
            current = self.primary.get_many(
                [c.pk for c in batch], columns=self.read_columns, include_timestamp=True
            )
            for change in batch:
                cells = current.get(change.pk, {})
                newest = max([newest, *(ts for _, ts in cells.values())])
                version = cells.get(self.vcol)
                change.version = version[0] if version else None
                change.current = decode_row(self.table, cells, pk=change.pk)
                change.old = self._indexed_row(change)
        self._step("read")
        with self._ts_lock:  # batches of one writer may run concurrently (put_many pipeline)
            ts = max(self.clock(), newest + 1, self._last_ts + 1)
            self._last_ts = ts
        if not bulk and self.table.lifespan is not None:
            batch = self._judge_expiry(batch, ts)
            if not batch:
                return []

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
        with self._ts_lock:
            self.entries_written += sum(c.entry_writes for c in won)
            self.rows_written += sum(1 for c in won if not self._settled(c))
        for change in won:
            if change.age_off is not None:
                change.age_off.count(deleted=1)
        won_ids = {id(c) for c in won}
        lost = [c for c in batch if id(c) not in won_ids]
        if lost:
            log.debug("%s: %d row(s) lost a version race; retrying", self.table.name, len(lost))
        return lost

    def _judge_expiry(self, batch: list[_Change], ts: int) -> list[_Change]:
        """The changes to write at ``ts``: age-off deletes of rows still expired, and every
        other change, a put onto an expired row marked as an insert (``revive``)."""
        lifespan = self.table.lifespan
        assert lifespan is not None
        out = []
        for change in batch:
            change.revive = False
            dead = change.current is not None and is_expired(
                lifespan, change.version, change.current, ts
            )
            if change.age_off is not None and not dead:
                change.age_off.count(skipped=1)  # rewritten (or deleted) since it was found
                continue
            if dead and change.values is not None:
                change.current, change.revive = None, True
            out.append(change)
        return out

    def _indexed_row(self, change: _Change) -> dict | None:
        """The row as the indexes hold it: the row itself on a native table; on an adopted
        one, its shadow (other applications may have changed the row since)."""
        if not self.table.existing:
            return change.current
        shadow = decode_shadow(self.table, change.version)
        if shadow is None:
            return None  # culvert_py never indexed this row: it owns no entries
        return {**decode_primary_key(self.table, change.pk), **shadow}

    def _plan_entries(self, change: _Change, unverified: dict, verified: dict) -> None:
        old_row = change.old
        if change.values is None:
            new_row = None
        else:
            base = change.current if change.current is not None or change.revive else old_row
            # A new row is its values as given (only ever read from here on): no copy.
            new_row = change.values if base is None else {**base, **change.values}
        change.new = new_row
        table, pk = self.table, change.pk
        for index in self.indexes:
            keys = self.keys[index.name]
            before = entries_of(table, index, old_row, pk, keys) if old_row is not None else {}
            after = entries_of(table, index, new_row, pk, keys) if new_row is not None else {}
            step2 = unverified[index.name]
            step4 = []
            for key, covered in after.items():
                if before and before.get(key) == covered:
                    continue  # unchanged entry: nothing to do
                if covered:
                    puts = {STATE_COLUMN: UNVERIFIED, **{c: v for c, v in covered.items() if v}}
                    nulls = [c for c, v in covered.items() if v is None]
                else:  # no covered cells (most indexes): the one state cell
                    puts, nulls = _UNVERIFIED_CELLS, ()
                step2.append(RowMutation(key, puts, nulls))
                step4.append(RowMutation(key, _VERIFIED_CELLS, ()))
            if before:
                for key in before.keys() - after.keys():
                    step2.append(RowMutation(key, _UNVERIFIED_CELLS, ()))
                    step4.append(RowMutation(key, {}, _WHOLE_ENTRY))
            if step4:
                verified[index.name][pk] = step4
                change.entries_changed = True
                change.entry_writes += len(step4)

    def _index_writes(self, per_index: dict[str, list[RowMutation]], ts: int):
        for name, muts in per_index.items():
            if muts:
                yield lambda n=name, m=muts: self.index_tables[n].mutate_many(m, ts)

    def _write_primary(self, batch: list[_Change], ts: int, bulk: bool) -> list[_Change]:
        # A sync touches rows with no change of their own: one whose entries and shadow
        # already agree with it needs no write at all (so a sync settles instead of
        # rewriting the rows it touched last time).
        idle = [c for c in batch if self._settled(c)]
        if idle:
            settled = {id(c) for c in idle}
            busy = [c for c in batch if id(c) not in settled]
            return idle + (self._write_primary(busy, ts, bulk) if busy else [])
        mutations = {c.pk: self._primary_mutation(c, ts) for c in batch}
        if bulk or not self.conditional:
            self.primary.mutate_many(mutations.values(), ts)
            return batch

        vcol = self.vcol
        expected = [c.version for c in batch]
        results = [True] * len(batch)
        # A row culvert_py never wrote has no version cell, and the store's absent-cell
        # condition takes puts only (HBase 2.6 Thrift2): such a row with deletes is claimed
        # with a version cell first (one round for all of them), then written conditioned
        # on that claim.
        unclaimed = [
            i for i, c in enumerate(batch) if c.version is None and mutations[c.pk].deletes
        ]
        if unclaimed:
            claims = {i: new_version(ts) for i in unclaimed}
            claimed = self._conditional_many(
                [
                    (batch[i].pk, vcol, None, RowMutation(batch[i].pk, {vcol: claims[i]}))
                    for i in claims
                ],
                ts,
            )
            for i, ok in zip(unclaimed, claimed, strict=True):
                expected[i], results[i] = claims[i], ok
        todo = [i for i in range(len(batch)) if results[i]]
        written = self._conditional_many(
            [(batch[i].pk, vcol, expected[i], mutations[batch[i].pk]) for i in todo], ts
        )
        for i, ok in zip(todo, written, strict=True):
            results[i] = ok
        lost = [c.pk for c, ok in zip(batch, results, strict=True) if not ok]
        if lost:
            # A retried RPC whose first try did apply reports "condition failed": the
            # version cell then holds exactly what we wrote (the random part is ours), and
            # the write won after all; a whole-row delete won when no version is left.
            now = self.primary.get_many(lost, columns=[self.vcol])
            for i, change in enumerate(batch):
                if not results[i]:
                    written = mutations[change.pk].puts.get(self.vcol)
                    found = now.get(change.pk, {}).get(self.vcol)
                    gone = change.values is None and self.table.existing and found is None
                    results[i] = found == written or gone
                    if results[i]:
                        log.debug(
                            "%s: row %r: a retried conditional write had applied (its reply "
                            "was lost); not applied again",
                            self.table.name,
                            change.pk,
                        )
        return [c for c, ok in zip(batch, results, strict=True) if ok]

    def _conditional_many(self, items: list, ts: int) -> list[bool]:
        """``check_and_mutate_many`` of ``items`` in chunks, the chunks in parallel over the
        executor: a chunk is one batched call (a sidecar's), and small enough that
        ``workers`` of them keep every region server busy."""
        if not items:
            return []
        workers = getattr(self.executor, "_max_workers", 8)
        size = max(_MIN_CHUNK, -(-len(items) // workers))
        if size >= len(items):
            return self.primary.check_and_mutate_many(items, ts)
        parts = [items[i : i + size] for i in range(0, len(items), size)]
        done: list = [None] * len(parts)

        def run(n: int) -> None:
            done[n] = self.primary.check_and_mutate_many(parts[n], ts)

        self._parallel(lambda n=n: run(n) for n in range(len(parts)))
        return [ok for part in done for ok in part]

    def _settled(self, change: _Change) -> bool:
        return (
            change.values == {}
            and self.table.existing
            and not change.entries_changed
            and change.version is not None
            and change.version[VERSION_BYTES:] == shadow_of(self.table, change.new)
        )

    def _primary_mutation(self, change: _Change, ts: int) -> RowMutation:
        table = self.table
        if change.values is None:
            if table.existing:
                # The application must not see a ghost row: an adopted row goes entirely,
                # version cell included (its families as the schema names them).
                # The tombstone put is masked by the family deletes at the same timestamp
                # (a delete hides puts at or below it): the row goes atomically, and the
                # conditional write still carries the put the contract asks for.
                families = [f.encode() + b":" for f in table_families(table)]
                return RowMutation(change.pk, {self.vcol: new_version(ts, DELETED)}, families)
            deletes = [data_column(table, c) for c in table.columns]
            return RowMutation(change.pk, {self.vcol: new_version(ts, DELETED)}, deletes)
        puts, deletes = change.encoded
        if change.revive:
            # The dead row's cells must not come back as the new row's: clear every column
            # this put does not set (the key columns hold the same values under one key).
            cleared = {data_column(table, c) for c in table.columns if c not in table.row_key}
            deletes = [*deletes, *sorted(cleared - set(puts) - set(deletes))]
        version = new_version(ts)
        if table.existing:
            version += shadow_of(table, change.new)
        return RowMutation(change.pk, {**puts, self.vcol: version}, deletes)

    def _parallel(self, calls) -> None:
        futures = [self.executor.submit(call) for call in calls]
        for future in futures:
            future.result()

    def _step(self, name: str) -> None:
        if self.on_step is not None:
            self.on_step(name)
