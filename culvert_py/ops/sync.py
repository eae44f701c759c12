"""Catching an adopted table's indexes up with the rows other applications changed.

Other applications keep writing an adopted table behind culvert_py's back. A sync finds the
rows whose cells were written since its watermark (an HBase time-range scan: the region
servers skip store files older than the range) and runs the write protocol on each with no
change of its own. The protocol derives the entries the row had from its shadow (what
culvert_py indexed, kept in its version cell) and the entries it should have from the row
as it is now, writes the difference and updates the shadow; a row whose shadow already
matches is left untouched, so a sync converges instead of rewriting what it touched.

**Freshness contract.** After a sync that started at ``T``, every change whose cells were
written at a timestamp of at least ``W - margin`` is reflected in the indexes, where ``W`` is
the start of the sync before it (the watermark; the moment the indexes became BUILDING for
the first sync). The margin (default 60 s) covers clocks of other writers' hosts that lag
this one. A row deleted by another writer leaves no cell to find: its entries stay until
``culvert index verify --repair`` (queries check every entry against its row and drop them,
so they are never returned).

Safe next to culvert_py writers, other syncs and builds: all of them change a row only
through the one protocol, conditioned on its version cell.

The time-range scan runs once per region of the primary table, in parallel, each feeding
its changed rows to the protocol as it goes: region servers filter their cells by time
concurrently, and one region's scan overlaps another's protocol round trips.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from culvert_py.arguments import check_count
from culvert_py.clock import now_ms
from culvert_py.errors import ArgumentError, SchemaError
from culvert_py.layout import data_column
from culvert_py.meta import DISABLED
from culvert_py.store.base import CAP_CHECK_AND_MUTATE, chunks
from culvert_py.write import IndexWriter

if TYPE_CHECKING:
    from culvert_py.client import Client

log = logging.getLogger(__name__)

#: Meta document kind of sync watermarks, one per table.
SYNC_DOC = "sync"
#: Default allowance for other writers' clocks lagging this host's.
MARGIN_SECONDS = 60.0

_ALL_TIME = 2**63 - 2


@dataclass
class SyncReport:
    """What :func:`sync_index` did.

    :ivar rows_examined: rows with cells written since the watermark (minus the margin)
    :ivar entries_changed: index entries written or removed
    :ivar rows_changed: rows whose entries or shadow had to move
    :ivar since_ms: the lower bound of the time-range scan (ms since the epoch)
    :ivar watermark_ms: the new watermark: when this sync started
    :ivar lag_seconds: how far behind the indexes were: from the lower bound to the start
    :ivar seconds: wall time
    """

    rows_examined: int = 0
    entries_changed: int = 0
    rows_changed: int = 0
    since_ms: int = 0
    watermark_ms: int = 0
    lag_seconds: float = 0.0
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for humans."""
        return (
            f"{self.rows_examined:,} rows examined, {self.rows_changed:,} changed, "
            f"{self.entries_changed:,} entries written or removed in {self.seconds:.1f} s; "
            f"lag was {self.lag_seconds:.1f} s"
        )


def sync_index(
    client: Client,
    table: str,
    index: str | None = None,
    *,
    margin_seconds: float = MARGIN_SECONDS,
    workers: int = 8,
    batch_size: int = 1000,
) -> SyncReport:
    """Re-derive the entries of the rows of an adopted table changed since the last sync.

    Every maintained index of the table is caught up at once (the shadow is per row, so
    one index cannot be synced alone); ``index``, when given, must name one of them.

    :param client: the client
    :param table: an adopted (``existing = true``) table
    :param index: optionally, an index of it (checked, see above)
    :param margin_seconds: how far before the watermark the scan starts
    :param workers: parallel store calls
    :param batch_size: rows per protocol batch
    :return: a :class:`SyncReport`
    :raises ArgumentError: for a malformed argument
    :raises SchemaError: for an unknown table or index, or a table that is not adopted
    """
    check_count("sync_index", "workers", workers, 1)
    check_count("sync_index", "batch_size", batch_size, 1)
    if isinstance(margin_seconds, bool) or not isinstance(margin_seconds, int | float):
        raise ArgumentError(f"sync_index: margin_seconds={margin_seconds!r:.60}: expected seconds")
    if not 0 <= margin_seconds < 10**9:
        raise ArgumentError(f"sync_index: margin_seconds={margin_seconds!r}: expected >= 0")
    started = time.monotonic()
    meta = client.meta
    generation, schema, states = meta.load()
    if schema is None:
        raise SchemaError(f"no schema applied to {client.store.url}")
    definition = schema.table(table)
    if index is not None and index not in definition.indexes:
        known = ", ".join(definition.indexes) or "none"
        raise SchemaError(f"{table}: unknown index {index!r} (known: {known})")
    if not definition.existing:
        raise SchemaError(
            f"{table}: sync is for adopted tables (existing = true); culvert_py writes every "
            "change of a native table itself"
        )
    maintained = [i for n, i in definition.indexes.items() if states.get((table, n)) != DISABLED]
    start = now_ms()
    since = max(0, _watermark(client, table) - int(margin_seconds * 1000))
    report = SyncReport(since_ms=since, watermark_ms=start, lag_seconds=(start - since) / 1000)
    store = client.store
    columns = [
        data_column(definition, c) for c in definition.columns if c not in definition.row_key
    ]
    primary = store.table(definition.hbase_table)
    ranges = [(r.start or None, r.end or None) for r in store.regions(definition.hbase_table)]
    # The writer's pool runs store calls only; the range scans, which wait on the writer,
    # get threads of their own, so neither can starve the other.
    with (
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="culvert-sync") as pool,
        ThreadPoolExecutor(
            max_workers=max(1, min(len(ranges), workers)), thread_name_prefix="culvert-sync-scan"
        ) as scans,
    ):
        writer = IndexWriter(
            store, definition, maintained, pool, CAP_CHECK_AND_MUTATE in store.capabilities
        )

        def sync_range(bounds: tuple[bytes | None, bytes | None]) -> int:
            # Only the application's cells count as changes: culvert_py's own version cell
            # writes would otherwise bring every synced row back next time.
            scanner = primary.scan(
                start=bounds[0],
                stop=bounds[1],
                columns=columns,
                time_range=(since, _ALL_TIME),
                batch_size=batch_size,
            )
            examined = 0
            try:
                for batch in chunks((pk for pk, _ in scanner), batch_size):
                    writer.write({pk: {} for pk in batch})
                    examined += len(batch)
            finally:
                scanner.close()  # type: ignore[attr-defined]
            return examined

        report.rows_examined = sum(scans.map(sync_range, ranges or [(None, None)]))
        report.entries_changed = writer.entries_written
        report.rows_changed = writer.rows_written
    meta.save_doc(SYNC_DOC, table, json.dumps({"watermark_ms": start, "generation": generation}))
    report.seconds = time.monotonic() - started
    log.info("%s: sync: %s", table, report.summary())
    return report


def _watermark(client: Client, table: str) -> int:
    """Where the last sync started; a build leaves its BUILDING mark as the first one (it
    reads every row written before that). 0 (every row) when there is neither."""
    found = client.meta.load_doc(SYNC_DOC, table)
    return int(json.loads(found[0])["watermark_ms"]) if found is not None else 0


def record_build_mark(meta, table: str, since_ms: int) -> None:
    """After a build of an adopted table: the first sync starts from its BUILDING mark
    (kept only when no sync watermark exists yet; an older one stays, being safer)."""
    meta.save_doc(SYNC_DOC, table, json.dumps({"watermark_ms": since_ms}), create=True)
