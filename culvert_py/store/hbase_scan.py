"""Thrift1 scans that survive the gateway losing their server-side scanner.

A scan is a generator: its ``finally`` closes the server-side scanner, so exhausting it,
closing it (``scan.close()``, or a ``with contextlib.closing(...)``) or dropping it releases
the scanner at once instead of holding it until its lease expires — happybase's pattern.

Each batch is fetched with whichever pooled connection is free: Thrift1 scanner ids belong to
the gateway, not to a socket. When the gateway no longer knows the scanner (its lease expired
while the caller paused, the gateway restarted) or its retries run out, the scan opens a new
scanner just after the last row it handed out, so no row repeats or goes missing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from culvert_py.errors import TransientStoreError
from culvert_py.store.gateway import Gateway, RetriesExhaustedError, ScannerLostError
from culvert_py.store.hbase_structs import cells, scan_spec

log = logging.getLogger(__name__)

#: Times in a row a scan reopens after losing its scanner before it gives up.
MAX_REOPENS = 10


def scan_rows(
    gateway: Gateway,
    table: str,
    start: bytes,
    stop: bytes | None,
    columns: list[bytes] | None,
    flt: bytes | None,
    batch_size: int,
    limit: int | None,
    include_timestamp: bool,
) -> Iterator[tuple[bytes, dict]]:
    """Yield ``(row, cells)`` of ``table`` from ``start`` to ``stop``, ``batch_size`` per call.

    Nothing is sent before the first row is asked for.

    :param columns: Thrift1 column names, as ``hbase_structs.thrift_columns`` makes them;
        ``None`` for all
    :param flt: a filter-language string as bytes, or ``None``
    :param limit: stop after this many rows (``None``: no limit)
    :raises TransientStoreError: when the scanner is lost :data:`MAX_REOPENS` times in a row
    :raises StoreError: when HBase refuses the scan
    """
    bname = table.encode()
    next_start = start
    remaining = limit
    scanner_id: int | None = None
    losses = 0
    try:
        while remaining is None or remaining > 0:
            want = batch_size if remaining is None else min(batch_size, remaining)
            if scanner_id is None:
                spec = scan_spec(next_start, stop, columns, batch_size, flt)
                scanner_id = gateway.call(
                    f"open scanner on {table!r}",
                    lambda c, spec=spec: c.client.scannerOpenWithScan(bname, spec, {}),
                )
                log.debug("opened scanner %d on %r at %r", scanner_id, table, next_start)
            try:
                results = gateway.call(
                    f"scan {table!r}",
                    lambda c, sid=scanner_id, n=want: c.client.scannerGetList(sid, n),
                )
            except (ScannerLostError, RetriesExhaustedError) as exc:
                losses += 1
                if losses >= MAX_REOPENS:
                    raise TransientStoreError(
                        f"scan {table!r}: scanner lost {losses} times in a row: {exc}"
                    ) from exc
                # Reopen after the last row handed out: nothing repeats, nothing is lost.
                log.info("scanner on %r lost (%s); reopening", table, exc)
                scanner_id = None
                continue
            losses = 0
            for result in results:
                # Set before the yield: the caller may pause there long enough to lose the
                # scanner, and the reopen must start just after this row.
                next_start = result.row + b"\x00"
                if remaining is not None:
                    remaining -= 1
                yield result.row, cells(result, include_timestamp)
            if len(results) < want:
                return
    finally:
        if scanner_id is not None:
            sid = scanner_id
            gateway.call_once(
                f"close scanner {sid} on {table!r}", lambda c: c.client.scannerClose(sid)
            )
