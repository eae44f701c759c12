"""Whole-table index operations: build, rebuild, verify (with repair) and drop.

**Build.** A new index on a populated table starts ``BUILDING``: every writer maintains it
from its next batch on (writers re-read the schema generation once per batch), queries ignore
it. The builder then fills in the rows written before that:

1. **Grace period.** A batch that began under the previous generation does not maintain the
   index, and may still be writing. The build waits until ``grace_seconds`` have passed since
   the index's state cell was written, so that every batch still running maintains it. A
   non-maintaining write that lands after the scan read its row would leave our entry stale
   for good, since no later writer knows about that entry.
2. **Sweep.** Entries that maintaining writers wrote during the changeover can still be
   invalidated by a non-maintaining batch that finished later (its row moved on without
   removing them). So after the grace period the index table is checked once against its
   rows, as :func:`verify_index` does with repair on. It holds only changeover entries (the
   table is new or was just recreated), so this is cheap.
3. **Plan.** The primary table's key ranges (its regions, each split further by probing when
   there are fewer regions than ``4 × workers``; see :func:`_split_region`) are computed once
   and stored in the meta table. Every shard and every resumed run uses the same ranges,
   even if regions split in the meantime. ``shard=(i, n)`` takes ranges ``r`` with
   ``r % n == i``.
4. **Scan.** ``workers`` ranges at a time, each one store scan reading only the columns the
   index needs plus the version cell, with timestamps. The **verified** entries of a batch of
   live rows are written in batched ``mutate_many`` calls (see *Timestamps*), then the
   range's checkpoint (last primary key done, counts) is saved. ``resume=True`` continues
   after the checkpoint; rows after it that a killed run had written are written again,
   which is harmless because the puts are identical.
5. **Finish.** A shard records each finished range. The shard that finds every range of the
   plan done sets the index ``ACTIVE`` and deletes the plan and its checkpoints.

*Timestamps.* Entries are written at a timestamp no higher than the version timestamp of
their row (the ``_v`` cell's; for rows never written through culvert_py, their newest
indexed cell's), never at "now". A writer that changes the row after we read it writes at a
higher timestamp and deletes the old entry there, and that delete masks our put whenever it
arrives. An entry written at "now" could outlive that delete and resurrect a stale value.

The store takes one timestamp per ``mutate_many`` call, and one call per distinct row
timestamp would cost one RPC per row on tables written row by row. Entry keys end with the
primary key, so only writers of that row ever put cells or delete markers on its entries,
always at or below the row's version timestamp. A row last written before the index became
``BUILDING`` (less :data:`CLOCK_MARGIN_MS`, for writers whose clocks lag) was never written
by a maintaining writer, so its entries carry no cells at all, and any timestamp up to its
version will do. Those rows go in one call, at the lowest version timestamp among them. Rows
written since then may have a maintaining write with delete markers below their version,
for example a changeover write that moved the row off a value and a non-maintaining one that
moved it back. Those rows are written at their own version timestamps, one call per distinct
timestamp. There are few of them: they are the rows live writers touched, and a writer's
batch shares one timestamp.

**Rebuild** sets the index ``DISABLED`` (writers stop maintaining it, queries stop using it),
waits the grace period, drops the index table and creates it again pre-split, sets it
``BUILDING`` and builds. The table is recreated, not emptied with deletes: a delete marker at
"now" would mask every entry the build then writes at older row timestamps.

**Verify** checks both directions in parallel: every live row's expected entries exist
(*missing* otherwise), and every entry belongs to its row (*orphan* otherwise: a stale value,
a deleted row, a row the ``where`` clause excludes, or an undecodable key) with the row's
covered values when verified (*wrong_covered* otherwise). Unverified entries that match their
row are correct (readers check them) and only counted. Writers may be active: a suspect is
read again (row first, then entry) and counts only when the problem persists while the
row's version stays the same. An unowned entry *not older* than its row may belong to a
write still in flight: written before its row (step 2), or departing at the row's own
timestamp with its delete (step 4) still to come. Such an entry counts as *in_flight* until
it is ``settle_seconds`` old, then as an orphan. An unowned entry older than its row is
stale for certain: the row's last writer read the row first and removed every entry it had.
Only *verified* orphans are errors (covered readers trust them). Unverified ones are garbage
that readers check and drop: a crashed writer's, or a lost write race's (a writer whose
version check failed has already marked entries in step 2 and retries with other ones).
They are counted apart and deleted by repair.

**Repair** of an orphan not newer than its row deletes it at its own timestamp. Every later
writer of the row writes above the row's version, so no legitimate put is masked. Every other
repair must write above cells that may be newer than the row: a missing entry's delete marker,
a bad covered cell, an in-flight entry. It runs the write protocol for that one row: put the
entry unverified at a fresh ``T``, **touch** the row (check-and-mutate its version cell to a
new version at ``T``, data untouched), then mark the entry verified or delete it at ``T``. A
writer that read the old version loses its version check and retries above ``T``, so nothing
it writes can be masked by the repair, and nothing the repair writes can outlive a newer write.
On a store without check-and-mutate, the touch is a plain write, which is safe only when no
writer touches the same rows (the store's own guarantee in that case).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from culvert_py.errors import CulvertError, EncodingError, SchemaError, StoreError
from culvert_py.keys import (
    INDEX_FAMILY,
    STATE_COLUMN,
    UNVERIFIED,
    VERIFIED,
    IndexKeys,
    decode_primary_key,
    version_column,
)
from culvert_py.maintain import DELETED, LIVE, IndexWriter, decode_row, new_version
from culvert_py.meta import (
    ACTIVE,
    BUILDING,
    DISABLED,
    SCHEMA_RETRIES,
    Meta,
    SchemaConflict,
)
from culvert_py.schema import Schema
from culvert_py.store.base import (
    CAP_CHECK_AND_MUTATE,
    Region,
    RowMutation,
    Table,
    chunks,
    prefix_stop,
)

if TYPE_CHECKING:
    from culvert_py.client import Client

log = logging.getLogger(__name__)

#: Meta document kind of build plans, named ``<table>.<index>``.
PLAN_DOC = "build"
#: Meta document kind of per-range checkpoints, ``<table>.<index>.<plan id>.<range>``.
RANGE_DOC = "build-range"
#: Key ranges per worker a plan aims at, so that uneven ranges still keep workers busy.
RANGES_PER_WORKER = 4
#: Upper bound on the ranges of a plan (one checkpoint row each).
MAX_RANGES = 1024
#: How far a writer's clock may lag the one that set the index BUILDING (HBase itself
#: refuses region servers more than 30 s off); see "Timestamps" in the module docstring.
CLOCK_MARGIN_MS = 300_000
#: Reads of a suspect entry or row before it is counted as in flight instead.
RECHECK_ROUNDS = 3
#: Default age after which an entry newer than its row is an orphan, not a write in flight.
SETTLE_SECONDS = 60.0

Progress = Callable[[int, "int | None"], None]


# --------------------------------------------------------------------------- reports


@dataclass
class BuildReport:
    """What :func:`build_index` did in this run.

    :ivar rows_scanned: primary rows read by this run (tombstones included)
    :ivar entries_written: index entries written by this run
    :ivar seconds: wall time of the run, grace period included
    :ivar shard: ``(i, n)``, the share of the plan this run took
    :ivar state_after: the index state when the run ended
    :ivar stale_removed: changeover entries the sweep repaired (see the module docstring)
    """

    rows_scanned: int
    entries_written: int
    seconds: float
    shard: tuple[int, int]
    state_after: str
    stale_removed: int = 0

    @property
    def rows_per_second(self) -> float:
        """Rows scanned per second of wall time."""
        return self.rows_scanned / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for humans."""
        i, n = self.shard
        stale = f", {self.stale_removed:,} stale entries repaired" if self.stale_removed else ""
        return (
            f"{self.rows_scanned:,} rows, {self.entries_written:,} entries in "
            f"{self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s), shard {i}/{n}"
            f"{stale}; index {self.state_after}"
        )


@dataclass
class VerifyReport:
    """What :func:`verify_index` found (and repaired).

    :ivar rows_checked: live primary rows whose expected entries were looked up
    :ivar entries_checked: entries of the index table checked against their rows
    :ivar missing: entries a live row should have and the index lacks
    :ivar orphan: entries no row owns (stale value, deleted row, undecodable key …)
    :ivar wrong_covered: verified entries whose covered values differ from the row's
    :ivar unverified_ok: unverified entries that match their row (correct; readers check them)
    :ivar repaired: problems fixed (with ``repair=True``)
    :ivar samples: a few offending entries per kind, as readable text
    :ivar seconds: wall time
    :ivar in_flight: entries their row does not own, not older than it and younger than the
        settle time, or suspects whose row kept changing: writes in progress, not errors
    :ivar unverified_orphan: unverified entries no row owns: what a crashed writer or the
        losing attempt of a write race leaves behind; readers check and drop them, so they
        cost scan time but are not errors (repair deletes them)
    """

    rows_checked: int = 0
    entries_checked: int = 0
    missing: int = 0
    orphan: int = 0
    wrong_covered: int = 0
    unverified_ok: int = 0
    repaired: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    in_flight: int = 0
    unverified_orphan: int = 0

    @property
    def clean(self) -> bool:
        """Whether no problem was found (before any repair)."""
        return not (self.missing or self.orphan or self.wrong_covered)

    def summary(self) -> str:
        """One line for humans, then one line per sample."""
        checked = (
            f"{self.rows_checked:,} rows and {self.entries_checked:,} entries checked "
            f"in {self.seconds:.1f} s"
        )
        notes = [f"{n:,} {what}" for n, what in self._notes() if n]
        if self.clean:
            head = f"clean: {checked}"
        else:
            problems = [
                f"{self.missing:,} missing",
                f"{self.orphan:,} orphan",
                f"{self.wrong_covered:,} wrong covered",
            ]
            head = f"{', '.join(problems)}: {checked}"
        lines = [head + (f" ({'; '.join(notes)})" if notes else "")]
        for kind, keys in self.samples.items():
            lines += [f"  {kind}: {k}" for k in keys]
        return "\n".join(lines)

    def _notes(self) -> list[tuple[int, str]]:
        return [
            (self.repaired, "repaired"),
            (self.unverified_ok, "unverified but matching"),
            (self.unverified_orphan, "unverified orphans"),
            (self.in_flight, "in flight"),
        ]


# --------------------------------------------------------------------------- public API


def build_index(
    client: Client,
    table: str,
    index: str,
    *,
    workers: int = 8,
    shard: tuple[int, int] = (0, 1),
    resume: bool = False,
    grace_seconds: float = 5.0,
    progress: Progress | None = None,
    batch_size: int = 1000,
) -> BuildReport:
    """Fill a ``BUILDING`` index from its primary table, then make it ``ACTIVE``.

    Safe while writers are active (see the module docstring). An ``ACTIVE`` index is left
    alone (a report of zero rows), so a repeated build is harmless.

    :param client: the client
    :param table: the table name
    :param index: the index name
    :param workers: key ranges scanned at once
    :param shard: ``(i, n)``: this process builds ranges ``r % n == i`` of the shared plan;
        every shard must be run, with the same ``n``; the last to finish activates the index
    :param resume: continue this shard's ranges after their checkpoints; without it they
        start over (the plan, once made, is kept either way until the build completes)
    :param grace_seconds: how long a writer batch may run; the scan starts that long after
        the index became ``BUILDING``
    :param progress: called on the caller's thread after each batch with (rows done by this
        shard, including earlier runs when resuming; estimated total, or ``None``); an
        exception it raises stops the build, which ``resume=True`` then continues
    :param batch_size: rows per scan batch, index write and checkpoint
    :return: a :class:`BuildReport`
    :raises SchemaError: unknown table or index, an index that is ``DISABLED`` (rebuild it),
        or a resume with another shard count than the build under way
    :raises StoreError: when the store fails (after retries); ``resume=True`` continues
    """
    _check_arguments(workers, shard, grace_seconds, batch_size)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="culvert-build") as pool:
        target = _Index(client, table, index, pool)
        state, since = _state(client.meta, table, index)
        if state == ACTIVE:
            log.info("%s: already ACTIVE; nothing to build", target.path)
            return BuildReport(0, 0, time.monotonic() - started, shard, ACTIVE)
        if state != BUILDING:
            raise SchemaError(
                f"{target.path}: the index is {state}, not BUILDING; rebuild it "
                f"(`culvert index rebuild {table} {index}`)"
            )
        plan, stale = _plan(target, since, shard[1], resume, grace_seconds, workers, batch_size)
        builder = _Builder(target, plan, shard, batch_size)
        rows, entries = builder.run(pool, resume, progress)
        state_after = builder.finish()
    report = BuildReport(rows, entries, time.monotonic() - started, shard, state_after, stale)
    log.info("%s: %s", target.path, report.summary())
    return report


def rebuild_index(
    client: Client,
    table: str,
    index: str,
    *,
    workers: int = 8,
    shard: tuple[int, int] = (0, 1),
    resume: bool = False,
    grace_seconds: float = 5.0,
    progress: Progress | None = None,
    batch_size: int = 1000,
) -> BuildReport:
    """Empty an index and build it again: ``DISABLED``, recreate its table, build.

    While it runs, queries do not use the index. With ``resume=True`` and a rebuild under
    way (the index is ``BUILDING`` with a stored plan), it only resumes the build. With
    shards, run this on one process; start :func:`build_index` with the same ``n`` on the
    others once the index is ``BUILDING`` again.

    Parameters, return value and errors are those of :func:`build_index`.
    """
    _check_arguments(workers, shard, grace_seconds, batch_size)
    meta = client.meta
    definition = client.schema().table(table)
    idx = _index_def(definition, index)
    name = _plan_name(table, index)
    state, _ = _state(meta, table, index)
    same = dict(
        workers=workers,
        shard=shard,
        grace_seconds=grace_seconds,
        progress=progress,
        batch_size=batch_size,
    )
    if resume and state == BUILDING and meta.load_doc(PLAN_DOC, name) is not None:
        return build_index(client, table, index, resume=True, **same)  # type: ignore[arg-type]
    meta.delete_doc(PLAN_DOC, name)
    meta.delete_docs(RANGE_DOC, name + ".")
    if state != DISABLED:
        _set_state(meta, table, index, DISABLED)
    _, since = _state(meta, table, index)
    # Batches that began before DISABLED still write to the index table: let them finish
    # before it is dropped, or their entries would land in the new table or fail.
    _wait_grace(idx.path, since, grace_seconds)
    store = client.store
    store.delete_table(idx.hbase_table)
    try:
        store.create_table(idx.hbase_table, [INDEX_FAMILY], IndexKeys(definition, idx).split_keys())
    except StoreError:
        if not store.table_exists(idx.hbase_table):  # a concurrent rebuild made it: fine
            raise
    _set_state(meta, table, index, BUILDING)
    return build_index(client, table, index, resume=False, **same)  # type: ignore[arg-type]


def verify_index(
    client: Client,
    table: str,
    index: str,
    *,
    repair: bool = False,
    workers: int = 8,
    sample: int = 10,
    progress: Progress | None = None,
    batch_size: int = 1000,
    settle_seconds: float = SETTLE_SECONDS,
) -> VerifyReport:
    """Check an index against its primary table in both directions; optionally repair.

    Safe while writers are active: only problems that persist on a second read count, and
    repairs use the write protocol (see the module docstring).

    :param client: the client
    :param table: the table name
    :param index: the index name
    :param repair: fix what is found: write missing and wrong entries verified, delete orphans
    :param workers: scans at once (primary key ranges and index salt buckets)
    :param sample: offending entries kept per kind in :attr:`VerifyReport.samples`
    :param progress: called on the caller's thread after each batch with (rows plus entries
        checked, estimated total or ``None``)
    :param batch_size: rows or entries per scan batch and per batched read
    :param settle_seconds: age after which an entry its row does not own, not older than
        the row, is an orphan rather than a write in flight
    :return: a :class:`VerifyReport`
    :raises SchemaError: unknown table or index
    :raises StoreError: when the store fails (after retries)
    """
    _check_arguments(workers, (0, 1), 0.0, batch_size)
    if sample < 0 or settle_seconds < 0:
        raise ValueError(f"sample and settle_seconds must be >= 0, got {sample}, {settle_seconds}")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="culvert-verify") as pool:
        target = _Index(client, table, index, pool)
        checker = _Checker(target, repair, sample, settle_seconds, batch_size)
        ranges = _key_ranges(target, RANGES_PER_WORKER * workers, batch_size)
        tasks = [checker.forward_task(r) for r in ranges]
        tasks += [checker.backward_task(b) for b in range(target.index.buckets)]
        rows, entries = _estimates(client.meta, target)
        total = rows + entries if rows is not None and entries is not None else None
        _run_tasks(pool, tasks, progress, 0, total)
    report = checker.report
    report.seconds = time.monotonic() - started
    log.info("%s: %s", target.path, report.summary().splitlines()[0])
    return report


def drop_index(client: Client, table: str, index: str, *, grace_seconds: float = 5.0) -> None:
    """Remove an index: from the applied schema first, then its table and meta rows.

    :param client: the client
    :param table: the table name
    :param index: the index name
    :param grace_seconds: wait this long between the schema change and dropping the table,
        so that writer batches begun under the old schema do not fail writing to it
    :raises SchemaError: unknown table or index, or the schema kept changing concurrently
    """
    meta = client.meta
    for _attempt in range(SCHEMA_RETRIES):
        generation, applied, _ = meta.load()
        if applied is None:
            raise SchemaError(f"no schema applied to {client.store.url}")
        definition = applied.table(table)
        idx = _index_def(definition, index)
        remaining = {n: i for n, i in definition.indexes.items() if n != index}
        tables = dict(applied.tables)
        tables[table] = dataclasses.replace(definition, indexes=remaining)
        try:
            meta.replace(generation, Schema(tables))
        except SchemaConflict:
            continue  # another client changed the schema meanwhile: drop on top of it
        break
    else:
        raise SchemaError(
            f"{table}.{index}: the applied schema kept changing; gave up after "
            f"{SCHEMA_RETRIES} tries"
        )
    if grace_seconds > 0:
        time.sleep(grace_seconds)
    client.store.delete_table(idx.hbase_table)
    meta.delete_state(table, index)
    name = _plan_name(table, index)
    meta.delete_doc(PLAN_DOC, name)
    meta.delete_docs(RANGE_DOC, name + ".")
    log.info("%s: dropped", idx.path)


# --------------------------------------------------------------------------- the index


class _Index:
    """One index with everything the operations need: definitions, tables, entry function."""

    def __init__(self, client: Client, table: str, index: str, executor) -> None:
        from culvert_py.query.parse import parse

        self.client = client
        self.meta: Meta = client.meta
        self.definition = client.schema().table(table)
        self.index = _index_def(self.definition, index)
        self.path = self.index.path
        self.name = _plan_name(table, index)
        self.keys = IndexKeys(self.definition, self.index)
        store = client.store
        self.conditional = CAP_CHECK_AND_MUTATE in store.capabilities
        where = {}
        if self.index.where:
            where[index] = parse(self.index.where, dict(self.definition.columns))
        # The entry function of the write protocol itself, for this one index: whatever
        # the writers compute is, by construction, what the build writes and verify expects.
        self.writer = IndexWriter(
            store, self.definition, [self.index], executor, self.conditional, where
        )
        self.read_columns: list[bytes] = list(self.writer.read_columns)
        self._read_set = set(self.read_columns)
        self.vcol = version_column(self.definition)
        self.primary: Table = store.table(self.definition.hbase_table)
        self.entries_table: Table = store.table(self.index.hbase_table)

    def entries(self, row: dict | None, pk: bytes) -> dict[bytes, dict]:
        """``{entry key: {covered column: value or None}}`` of ``row``."""
        if row is None:
            return {}
        return self.writer._entries(self.index, self.keys, row, pk)

    def row_state(self, pk: bytes, cells: dict) -> tuple[dict | None, int | None, bytes | None]:
        """``(row or None, version timestamp or None, version cell value)`` of read cells.

        The version timestamp is the ``_v`` cell's; without one, the newest timestamp among
        the columns a writer reads (its next write goes above exactly those).
        """
        try:
            row = decode_row(self.definition, cells)
        except EncodingError as exc:
            raise EncodingError(f"{self.definition.name}: row {pk!r}: {exc}") from None
        version = cells.get(self.vcol)
        if version is not None:
            return row, version[1], version[0]
        stamps = [ts for col, (_, ts) in cells.items() if col in self._read_set]
        return row, (max(stamps) if stamps else None), None

    def describe(self, key: bytes) -> str:
        """An entry key as readable text: ``('Oslo',) -> id='u1'``."""
        try:
            values, pk = self.keys.decode(key)
            parts = decode_primary_key(self.definition, pk)
        except CulvertError:
            return f"undecodable key {key.hex()}"
        return f"{tuple(values)!r} -> " + ", ".join(f"{k}={v!r}" for k, v in parts.items())


def _entry_mutation(key: bytes, covered: dict, state: bytes) -> RowMutation:
    puts = {STATE_COLUMN: state, **{c: v for c, v in covered.items() if v is not None}}
    return RowMutation(key, puts, [c for c, v in covered.items() if v is None])


# --------------------------------------------------------------------------- build


@dataclass
class _Plan:
    id: str
    since: int  # timestamp of the BUILDING state the plan was made for
    shards: int
    ranges: list[tuple[bytes, bytes]]

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": 1,
                "id": self.id,
                "since": self.since,
                "shards": self.shards,
                "ranges": [[s.hex(), e.hex()] for s, e in self.ranges],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> _Plan:
        data = json.loads(text)
        ranges = [(bytes.fromhex(s), bytes.fromhex(e)) for s, e in data["ranges"]]
        return cls(data["id"], data["since"], data["shards"], ranges)


@dataclass
class _Checkpoint:
    name: str
    after: bytes | None = None  # last primary key whose entries are written
    done: bool = False
    rows: int = 0
    entries: int = 0
    ts: int = 0  # timestamp of the stored version: the next save goes above it

    def to_json(self) -> str:
        after = None if self.after is None else self.after.hex()
        return json.dumps(
            {"after": after, "done": self.done, "rows": self.rows, "entries": self.entries}
        )

    @classmethod
    def from_doc(cls, name: str, doc: tuple[str, int] | None) -> _Checkpoint:
        if doc is None:
            return cls(name)
        data = json.loads(doc[0])
        after = None if data["after"] is None else bytes.fromhex(data["after"])
        return cls(name, after, data["done"], data["rows"], data["entries"], doc[1])


def _plan(
    target: _Index,
    since: int,
    shards: int,
    resume: bool,
    grace_seconds: float,
    workers: int,
    batch_size: int,
) -> tuple[_Plan, int]:
    """The plan under way, or a new one (after the grace period and the sweep).

    :return: ``(plan, entries the sweep repaired)``
    """
    meta = target.meta
    found = meta.load_doc(PLAN_DOC, target.name)
    plan = _Plan.from_json(found[0]) if found else None
    if plan is not None and plan.since != since:
        log.info("%s: discarding a plan made before the index was last reset", target.path)
        plan = _discard_plan(target)
    if plan is not None and plan.shards != shards:
        if resume:
            raise SchemaError(
                f"{target.path}: the build under way has {plan.shards} shard(s); resume "
                f"it with shard=(i, {plan.shards}), or start over without resume"
            )
        log.warning(
            "%s: replacing a %d-shard build plan with a %d-shard one",
            target.path,
            plan.shards,
            shards,
        )
        plan = _discard_plan(target)
    if plan is not None:
        return plan, 0
    _wait_grace(target.path, since, grace_seconds)
    stale = _sweep(target, workers, batch_size)
    ranges = _key_ranges(target, RANGES_PER_WORKER * workers * shards, batch_size)
    new = _Plan(uuid.uuid4().hex, since, shards, ranges)
    if meta.save_doc(PLAN_DOC, target.name, new.to_json(), create=True) is not None:
        log.info("%s: build plan of %d key ranges", target.path, len(ranges))
        return new, stale
    # Another shard made its plan first (after its own grace period and sweep): use it.
    found = meta.load_doc(PLAN_DOC, target.name)
    if found is None:
        raise SchemaError(f"{target.path}: the build plan vanished; a concurrent rebuild?")
    winner = _Plan.from_json(found[0])
    if winner.shards != shards or winner.since != since:
        raise SchemaError(
            f"{target.path}: a concurrent build made a plan with {winner.shards} shard(s)"
        )
    return winner, stale


def _discard_plan(target: _Index) -> None:
    target.meta.delete_doc(PLAN_DOC, target.name)
    target.meta.delete_docs(RANGE_DOC, target.name + ".")


def _sweep(target: _Index, workers: int, batch_size: int) -> int:
    checker = _Checker(target, True, 0, SETTLE_SECONDS, batch_size)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="culvert-sweep") as pool:
        tasks = [checker.backward_task(b) for b in range(target.index.buckets)]
        _run_tasks(pool, tasks, None, 0, None)
    report = checker.report
    if report.repaired:
        log.info("%s: sweep repaired %d changeover entries", target.path, report.repaired)
    return report.repaired


class _Builder:
    """Runs one shard of a plan: scans its ranges, writes entries, saves checkpoints."""

    def __init__(
        self, target: _Index, plan: _Plan, shard: tuple[int, int], batch_size: int
    ) -> None:
        self.target = target
        self.plan = plan
        self.shard = shard
        self.batch_size = batch_size
        self.prefix = f"{target.name}.{plan.id}."
        #: Rows with a version at or above this may have had a maintaining writer.
        self.recent_from = plan.since - CLOCK_MARGIN_MS
        self._lock = threading.Lock()
        self.rows = 0
        self.entries = 0

    def _range_name(self, number: int) -> str:
        return f"{self.prefix}{number:05d}"

    def run(self, pool: ThreadPoolExecutor, resume: bool, progress: Progress | None):
        """Build this shard's unfinished ranges; returns ``(rows, entries)`` of this run."""
        i, n = self.shard
        docs = self.target.meta.load_docs(RANGE_DOC, self.prefix)
        mine = [r for r in range(len(self.plan.ranges)) if r % n == i]
        checkpoints = {}
        for r in mine:
            name = self._range_name(r)
            found = _Checkpoint.from_doc(name, docs.get(name))
            if not resume:  # start over, but above the stored version's timestamp
                found = _Checkpoint(name, ts=found.ts)
            checkpoints[r] = found
        done_before = sum(c.rows for c in checkpoints.values())
        estimate, _ = _estimates(self.target.meta, self.target)
        total = None if estimate is None else math.ceil(estimate / n)
        tasks = [self._task(r, c) for r, c in checkpoints.items() if not c.done]
        _run_tasks(pool, tasks, progress, done_before, total)
        return self.rows, self.entries

    def _task(self, number: int, checkpoint: _Checkpoint):
        def task(stop: threading.Event, report: Callable[[int], None]) -> None:
            self._build_range(number, checkpoint, stop, report)

        return task

    def _build_range(
        self,
        number: int,
        checkpoint: _Checkpoint,
        stop: threading.Event,
        report: Callable[[int], None],
    ) -> None:
        target = self.target
        start, end = self.plan.ranges[number]
        if checkpoint.after is not None:
            start = checkpoint.after + b"\x00"  # the smallest key after it
        scanner = target.primary.scan(
            start=start or None,
            stop=end or None,
            columns=target.read_columns,
            batch_size=self.batch_size,
            include_timestamp=True,
        )
        try:
            for batch in chunks(scanner, self.batch_size):
                if stop.is_set():
                    return
                by_ts = self._mutations(batch)
                for ts, group in by_ts.items():
                    target.entries_table.mutate_many(group, ts)
                written = sum(len(group) for group in by_ts.values())
                checkpoint.after = batch[-1][0]
                checkpoint.rows += len(batch)
                checkpoint.entries += written
                self._save(checkpoint)
                with self._lock:
                    self.rows += len(batch)
                    self.entries += written
                report(len(batch))
        finally:
            close = getattr(scanner, "close", None)
            if close is not None:
                close()
        checkpoint.done = True
        self._save(checkpoint)

    def _mutations(self, batch: list[tuple[bytes, dict]]) -> dict[int, list[RowMutation]]:
        """The verified entries of a batch of rows, by the timestamp to write them at
        (see "Timestamps" in the module docstring)."""
        recent: dict[int, list[RowMutation]] = {}
        old: list[RowMutation] = []
        lowest: int | None = None
        for pk, cells in batch:
            row, ts, _ = self.target.row_state(pk, cells)
            if row is None or ts is None:
                continue  # a tombstone: the row is deleted
            entries = self.target.entries(row, pk)
            mutations = [_entry_mutation(k, c, VERIFIED) for k, c in entries.items()]
            if not mutations:
                continue
            if ts >= self.recent_from:
                recent.setdefault(ts, []).extend(mutations)
            else:
                lowest = ts if lowest is None else min(lowest, ts)
                old += mutations
        if lowest is not None:
            recent.setdefault(lowest, []).extend(old)
        return recent

    def _save(self, checkpoint: _Checkpoint) -> None:
        checkpoint.ts = self.target.meta.save_doc(
            RANGE_DOC, checkpoint.name, checkpoint.to_json(), not_before=checkpoint.ts + 1
        )  # type: ignore[assignment]

    def finish(self) -> str:
        """Activate the index when every range of the plan is done; returns the state."""
        target = self.target
        meta = target.meta
        docs = meta.load_docs(RANGE_DOC, self.prefix)
        for r in range(len(self.plan.ranges)):
            if not _Checkpoint.from_doc("", docs.get(self._range_name(r))).done:
                return BUILDING  # another shard still has ranges to build
        found = meta.load_doc(PLAN_DOC, target.name)
        state, since = _state(meta, target.index.table, target.index.name)
        if (
            found is None
            or _Plan.from_json(found[0]).id != self.plan.id
            or since != (self.plan.since)
        ):
            # The plan was replaced or the index reset while we built: not ours to finish.
            log.warning("%s: the build plan changed while building; not activating", target.path)
            return state
        if state == BUILDING:
            _set_state(meta, target.index.table, target.index.name, ACTIVE)
            state = ACTIVE
        _discard_plan(target)
        return state


# --------------------------------------------------------------------------- key ranges


def _key_ranges(target: _Index, wanted: int, sample: int) -> list[tuple[bytes, bytes]]:
    """The primary table's regions, each split further when there are fewer than ``wanted``.

    ``b""`` bounds mean unbounded, as in :class:`~culvert_py.store.base.Region`.
    """
    client = target.client
    regions: list[Region] = client.store.regions(target.definition.hbase_table)
    wanted = min(wanted, MAX_RANGES)
    pieces = max(1, math.ceil(wanted / max(1, len(regions))))
    ranges: list[tuple[bytes, bytes]] = []
    for region in regions:
        if pieces == 1:
            ranges.append((region.start, region.end))
        else:
            ranges += _split_region(target.primary, target.vcol, region, pieces, sample)
    return ranges


def _split_region(
    table: Table, vcol: bytes, region: Region, pieces: int, sample: int
) -> list[tuple[bytes, bytes]]:
    """Split a region into about ``pieces`` key ranges of similar key-space width.

    Regions are what HBase gives for free, but a table of one region (every freshly created
    primary table) would be scanned by one thread. No row counts are available without a
    scan, so: find the first key, find the last key's leading bytes by bisection (a few
    dozen ``limit=1`` scans), and cut the space between them evenly, as numbers over the
    four bytes after their common prefix. The pieces always cover the region exactly; only
    their balance depends on how evenly keys spread, and a pool of ``4 × workers`` pieces
    keeps workers busy when they do not.
    """
    start, end = region.start, region.end
    head = [k for k, _ in table.scan(start or None, end or None, columns=[vcol], limit=sample)]
    if len(head) < sample:
        return [(start, end)]  # one batch's worth of rows or fewer: not worth splitting
    first = head[0]
    last = _last_key_prefix(table, vcol, first, end)
    points = [p for p in _split_points(first, last, pieces) if p > first and (not end or p < end)]
    bounds = [start, *sorted(set(points)), end]
    return list(itertools.pairwise(bounds))


def _last_key_prefix(table: Table, vcol: bytes, first: bytes, end: bytes) -> bytes:
    """Leading bytes of the last key in ``[first, end)``, found byte by byte by bisection.

    Stops three bytes past the common prefix with ``first``: enough to cut the range into
    thousands of pieces.
    """

    def exists(lo: bytes, hi: bytes | None) -> bool:
        lo = max(lo, first)
        if end and (hi is None or hi > end):
            hi = end
        if hi is not None and lo >= hi:
            return False
        return any(True for _ in table.scan(lo, hi, columns=[vcol], limit=1, batch_size=1))

    found = b""
    while len(found) < 32:
        stop = prefix_stop(found) if found else None
        if not exists(found + b"\x00", stop):
            break  # the last key is ``found`` itself
        lo, hi = 0, 255  # invariant: a key starts with found + lo
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if exists(found + bytes([mid]), stop):
                lo = mid
            else:
                hi = mid - 1
        found += bytes([lo])
        if len(found) >= _common_prefix(first, found) + 3:
            break
    return found


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix of two byte strings."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _split_points(first: bytes, last: bytes, pieces: int) -> list[bytes]:
    """``pieces - 1`` keys evenly spaced between ``first`` and ``last`` (4-byte resolution)."""
    common = _common_prefix(first, last)
    width = 4
    low = int.from_bytes(first[common : common + width].ljust(width, b"\x00"), "big")
    high = int.from_bytes(last[common : common + width].ljust(width, b"\xff"), "big")
    if high <= low:
        return []
    head = first[:common]
    return [
        head + (low + (high - low) * k // pieces).to_bytes(width, "big") for k in range(1, pieces)
    ]


# --------------------------------------------------------------------------- verify


@dataclass
class _Suspect:
    """An entry (backward) or a row (forward) that looked wrong, read again until settled."""

    key: bytes | None  # the entry key (backward) — None for a forward row check
    pk: bytes | None  # the primary key; None for an undecodable entry key
    identity: tuple | None = None  # (version value, version ts) of the row when suspected


@dataclass
class _Fix:
    """One confirmed problem and what the touch-protocol repair writes for it."""

    kind: str
    pk: bytes
    version: bytes | None
    live: bool
    seen_ts: int
    unverified: list[RowMutation]  # step 2, before the touch
    final: list[RowMutation]  # step 4, after it


class _Checker:
    """Checks (and repairs) batches of rows and entries; shared by every verify task."""

    def __init__(
        self,
        target: _Index,
        repair: bool,
        sample: int,
        settle_seconds: float,
        batch_size: int,
    ) -> None:
        self.target = target
        self.repair = repair
        self.sample = sample
        self.settle_ms = int(settle_seconds * 1000)
        self.batch_size = batch_size
        self.report = VerifyReport()
        self._lock = threading.Lock()

    def _count(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self.report, name, getattr(self.report, name) + n)

    def _confirmed(self, kind: str, key: bytes) -> None:
        with self._lock:
            setattr(self.report, kind, getattr(self.report, kind) + 1)
            samples = self.report.samples.setdefault(kind, [])
            if len(samples) < self.sample:
                samples.append(self.target.describe(key))
            if not samples:
                del self.report.samples[kind]

    # -- tasks ---------------------------------------------------------------------------

    def forward_task(self, bounds: tuple[bytes, bytes]):
        def task(stop: threading.Event, report: Callable[[int], None]) -> None:
            start, end = bounds
            scanner = self.target.primary.scan(
                start=start or None,
                stop=end or None,
                columns=self.target.read_columns,
                batch_size=self.batch_size,
                include_timestamp=True,
            )
            try:
                for batch in chunks(scanner, self.batch_size):
                    if stop.is_set():
                        return
                    self.check_rows(batch)
                    report(len(batch))
            finally:
                _close(scanner)

        return task

    def backward_task(self, bucket: int):
        def task(stop: threading.Event, report: Callable[[int], None]) -> None:
            scanner = self.target.entries_table.scan(
                prefix=bytes([bucket]), batch_size=self.batch_size, include_timestamp=True
            )
            try:
                for batch in chunks(scanner, self.batch_size):
                    if stop.is_set():
                        return
                    self.check_entries(batch)
                    report(len(batch))
            finally:
                _close(scanner)

        return task

    # -- forward: every live row has its entries -------------------------------------------

    def check_rows(self, batch: list[tuple[bytes, dict]]) -> None:
        target = self.target
        expected: dict[bytes, bytes] = {}
        identity: dict[bytes, tuple] = {}
        live = 0
        for pk, cells in batch:
            row, ts, version = target.row_state(pk, cells)
            if row is None:
                continue
            live += 1
            identity[pk] = (version, ts)
            for key in target.entries(row, pk):
                expected[key] = pk
        found = target.entries_table.get_many(list(expected), columns=[STATE_COLUMN])
        suspects = {pk for key, pk in expected.items() if key not in found}
        self._count(rows_checked=live)
        if suspects:
            self._settle_rows([_Suspect(None, pk, identity[pk]) for pk in sorted(suspects)])

    def _settle_rows(self, suspects: list[_Suspect]) -> None:
        target = self.target
        fixes: list[_Fix] = []
        for _round in range(RECHECK_ROUNDS):
            if not suspects:
                break
            rows = target.primary.get_many([s.pk for s in suspects], include_timestamp=True)
            states = {}
            wanted: list[bytes] = []
            for s in suspects:
                cells = rows.get(s.pk, {})
                states[s.pk] = (cells, *target.row_state(s.pk, cells))
                wanted += list(target.entries(states[s.pk][1], s.pk))
            found = target.entries_table.get_many(wanted, include_timestamp=True)
            again = []
            for s in suspects:
                cells, row, ts, version = states[s.pk]
                entries = target.entries(row, s.pk)
                missing = [k for k in entries if k not in found]
                if not missing:
                    continue  # a writer had it in hand: resolved
                if (version, ts) != s.identity:
                    again.append(_Suspect(None, s.pk, (version, ts)))
                    continue
                seen = max([ts or 0, *(t for _, t in cells.values())])
                for key in missing:
                    self._confirmed("missing", key)
                    fixes.append(
                        _Fix(
                            "missing",
                            s.pk,
                            version,
                            True,
                            seen,
                            [_entry_mutation(key, entries[key], UNVERIFIED)],
                            [RowMutation(key, {STATE_COLUMN: VERIFIED})],
                        )
                    )
            suspects = again
        self._count(in_flight=len(suspects))
        if self.repair and fixes:
            self._touch_repair(fixes)

    # -- backward: every entry belongs to its row --------------------------------------------

    def check_entries(self, batch: list[tuple[bytes, dict]]) -> None:
        target = self.target
        pks: dict[bytes, bytes | None] = {}
        for key, _ in batch:
            try:
                pks[key] = target.keys.decode(key)[1]
            except EncodingError:
                pks[key] = None
        wanted = sorted({pk for pk in pks.values() if pk is not None})
        rows = target.primary.get_many(wanted, columns=target.read_columns, include_timestamp=True)
        suspects = []
        for key, cells in batch:
            pk = pks[key]
            row_cells = rows.get(pk, {}) if pk is not None else {}
            kind, identity = self._classify(key, pk, cells, row_cells)
            if kind in ("ok", "unverified_ok", "in_flight"):
                self._count(**({kind: 1} if kind != "ok" else {}))
            else:
                suspects.append(_Suspect(key, pk, identity))
        self._count(entries_checked=len(batch))
        if suspects:
            self._settle_entries(suspects)

    def _classify(
        self, key: bytes, pk: bytes | None, entry: dict, row_cells: dict
    ) -> tuple[str, tuple | None]:
        """``(kind, row identity)``: ``ok``, ``unverified_ok``, ``wrong_covered``, ``orphan``,
        ``unverified_orphan`` or ``in_flight``."""
        if pk is None:
            return "orphan", None  # no writer makes such a key
        row, ts, version = self.target.row_state(pk, row_cells)
        identity = (version, ts)
        owned = self.target.entries(row, pk)
        if key in owned:
            if entry.get(STATE_COLUMN, (None, 0))[0] != VERIFIED:
                return "unverified_ok", identity
            for column, value in owned[key].items():
                if entry.get(column, (None, 0))[0] != value:
                    return "wrong_covered", identity
            return "ok", identity
        entry_ts = max(t for _, t in entry.values())
        # Readers trust only verified entries without a check: an unverified orphan is
        # garbage, not an error.
        orphan = (
            "orphan" if entry.get(STATE_COLUMN, (None, 0))[0] == VERIFIED else ("unverified_orphan")
        )
        if ts is not None and ts > entry_ts:
            # The row's last writer read the row before writing above this entry, so it
            # knew every entry of the old row: one it did not remove is stale.
            return orphan, identity
        if _now_ms() - entry_ts > self.settle_ms:
            return orphan, identity
        # At the row's own timestamp: the departing entry of the row's last write, whose
        # step 4 has not landed yet. Above it: an entry written before its row, as the
        # protocol does. Either may also be what a crashed writer left; age tells.
        return "in_flight", identity

    def _settle_entries(self, suspects: list[_Suspect]) -> None:
        target = self.target
        fixes: list[_Fix] = []
        plain_deletes: dict[int, list[bytes]] = {}
        for _round in range(RECHECK_ROUNDS):
            if not suspects:
                break
            # Row first, entry second: an entry read after the row reflects at least step 2
            # of the write that made that row version (its departing entries marked).
            rows = target.primary.get_many(
                sorted({s.pk for s in suspects if s.pk is not None}), include_timestamp=True
            )
            entries = target.entries_table.get_many(
                [s.key for s in suspects],
                include_timestamp=True,  # type: ignore[misc]
            )
            again = []
            for s in suspects:
                key = s.key
                assert key is not None
                entry = entries.get(key)
                if not entry:
                    continue  # deleted meanwhile (a writer moved the row on)
                row_cells = rows.get(s.pk, {}) if s.pk is not None else {}
                kind, identity = self._classify(key, s.pk, entry, row_cells)
                if kind in ("ok", "unverified_ok", "in_flight"):
                    if kind != "ok":
                        self._count(**{kind: 1})
                    continue
                if identity != s.identity:
                    again.append(_Suspect(key, s.pk, identity))
                    continue
                self._confirmed(kind, key)
                fix = self._fix(kind, key, s.pk, entry, row_cells, plain_deletes)
                if fix is not None:
                    fixes.append(fix)
            suspects = again
        self._count(in_flight=len(suspects))
        if not self.repair:
            return
        for ts, keys in plain_deletes.items():
            target.entries_table.delete_many(keys, ts)
            self._count(repaired=len(keys))
        if fixes:
            self._touch_repair(fixes)

    def _fix(
        self,
        kind: str,
        key: bytes,
        pk: bytes | None,
        entry: dict,
        row_cells: dict,
        plain_deletes: dict[int, list[bytes]],
    ) -> _Fix | None:
        entry_ts = max(t for _, t in entry.values())
        if pk is None:
            plain_deletes.setdefault(entry_ts, []).append(key)
            return None
        row, ts, version = self.target.row_state(pk, row_cells)
        if kind != "wrong_covered" and ts is not None and ts >= entry_ts:
            # Every later writer of the row writes above its version, so a delete at the
            # entry's own timestamp cannot mask anything one of them writes.
            plain_deletes.setdefault(entry_ts, []).append(key)
            return None
        seen = max([entry_ts, *(t for _, t in row_cells.values())])
        # ``row_cells`` is the whole row, so a row never written through culvert_py (no
        # version cell) decodes as live and its touch does not turn it into a tombstone.
        live = row is not None
        if kind != "wrong_covered":  # an orphan of either state
            return _Fix(kind, pk, version, live, seen, [], [RowMutation(key, {}, [b"i:"])])
        covered = self.target.entries(row, pk)[key]
        return _Fix(
            kind,
            pk,
            version,
            live,
            seen,
            [_entry_mutation(key, covered, UNVERIFIED)],
            [RowMutation(key, {STATE_COLUMN: VERIFIED})],
        )

    def _touch_repair(self, fixes: list[_Fix]) -> None:
        """Repair through the write protocol: entry unverified, touch the row, finish.

        See the module docstring for why the touch (a version check-and-mutate that
        changes no data) makes writing above the row's version safe.
        """
        target = self.target
        ts = max(_now_ms(), max(f.seen_ts for f in fixes) + 1)
        step2 = [m for f in fixes for m in f.unverified]
        if step2:
            target.entries_table.mutate_many(step2, ts)
        by_row: dict[bytes, list[_Fix]] = {}
        for f in fixes:
            by_row.setdefault(f.pk, []).append(f)
        won: list[_Fix] = []
        for pk, row_fixes in by_row.items():
            f = row_fixes[0]
            touch = RowMutation(pk, {target.vcol: new_version(ts, LIVE if f.live else DELETED)})
            if not target.conditional:
                target.primary.mutate_many([touch], ts)
                won += row_fixes
            elif target.primary.check_and_mutate(pk, target.vcol, f.version, touch, ts):
                won += row_fixes
            else:
                log.debug("%s: row %r changed while repairing; left to its writer", target.path, pk)
        step4 = [m for f in won for m in f.final]
        if step4:
            target.entries_table.mutate_many(step4, ts)
        self._count(repaired=len(won))


# --------------------------------------------------------------------------- helpers


def _run_tasks(
    pool: ThreadPoolExecutor,
    tasks: list[Callable[[threading.Event, Callable[[int], None]], None]],
    progress: Progress | None,
    done: int,
    total: int | None,
) -> None:
    """Run tasks on ``pool``; call ``progress`` on this thread as they report batches.

    A task gets a stop event (checked between batches) and a ``report(n)`` callback. The
    first failure, of a task or of ``progress``, stops the others after their current batch
    and is raised once every task has returned, so nothing runs on after this returns.
    """
    events: queue.Queue = queue.Queue()
    stop = threading.Event()

    def run(task) -> None:
        try:
            if not stop.is_set():
                task(stop, events.put)
        except BaseException:
            stop.set()
            raise
        finally:
            events.put(None)

    futures: list[Future] = [pool.submit(run, t) for t in tasks]
    running = len(futures)
    try:
        while running:
            item = events.get()
            if item is None:
                running -= 1
            elif progress is not None:
                done += item
                progress(done, total)
    except BaseException:
        stop.set()
        raise
    finally:
        wait(futures)
    for future in futures:
        future.result()


def _close(scanner: Iterable) -> None:
    close = getattr(scanner, "close", None)
    if close is not None:
        close()


def _state(meta: Meta, table: str, index: str) -> tuple[str, int]:
    """``(state, since ms)``; an index without a state row is ACTIVE, as clients read it."""
    found = meta.state_since(table, index)
    return found if found is not None else (ACTIVE, 0)


def _set_state(meta: Meta, table: str, index: str, state: str) -> None:
    for _attempt in range(SCHEMA_RETRIES):
        try:
            meta.set_state(table, index, state)
            return
        except SchemaConflict:
            continue  # another client bumped the generation meanwhile: set it on top
    raise SchemaError(
        f"{table}.{index}: could not set state {state}: the applied schema kept changing"
    )


def _wait_grace(path: str, since_ms: int, grace_seconds: float) -> None:
    delay = since_ms / 1000 + grace_seconds - time.time()
    if delay > 0:
        log.info("%s: waiting %.1f s for writer batches under the old schema", path, delay)
        time.sleep(delay)


def _estimates(meta: Meta, target: _Index) -> tuple[int | None, int | None]:
    """``(primary rows, index entries)`` from stored statistics, when there are any."""
    from culvert_py.stats import load_stats

    stats = load_stats(meta, target.definition.name)
    if stats is None:
        return None, None
    entries = stats.indexes.get(target.index.name)
    return stats.rows, (entries.entries if entries is not None else None)


def _index_def(definition, index: str):
    try:
        return definition.indexes[index]
    except KeyError:
        known = ", ".join(definition.indexes) or "none"
        raise SchemaError(f"{definition.name}: unknown index {index!r} (known: {known})") from None


def _plan_name(table: str, index: str) -> str:
    return f"{table}.{index}"


def _check_arguments(
    workers: int, shard: tuple[int, int], grace_seconds: float, batch_size: int
) -> None:
    i, n = shard
    if workers < 1 or batch_size < 1:
        raise ValueError(f"workers and batch_size must be >= 1, got {workers}, {batch_size}")
    if not 0 <= i < n:
        raise ValueError(f"shard {shard!r}: expected (i, n) with 0 <= i < n")
    if grace_seconds < 0:
        raise ValueError(f"grace_seconds must be >= 0, got {grace_seconds}")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
