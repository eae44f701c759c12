"""HBase scans that survive the gateway losing their server-side scanner.

A scan is a generator: its ``finally`` closes the server-side scanner, so exhausting it,
closing it (``scan.close()``, or a ``with contextlib.closing(...)``) or dropping it releases
the scanner at once instead of holding it until its lease expires — happybase's pattern.

Plain scans go through Thrift1; time-range scans through Thrift2, whose ``TScan`` carries
``setTimeRange(min, max)`` (Thrift1's has only an upper bound: without a Thrift2 gateway the
lower bound is applied here, client-side). Both page alike: each batch is fetched with
whichever pooled connection to the scanner's gateway is free, since scanner ids belong to
the gateway, not to a socket. When the gateway no longer knows the scanner (its lease
expired while the caller paused, the gateway restarted), is marked down while others answer,
or its retries run out, the scan opens a new scanner (on any gateway) just after the last
row it handed out, so no row repeats or goes missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import closing

from culvert_py.errors import TransientStoreError
from culvert_py.store.gateway import Gateway, RetriesExhaustedError, ScannerLostError, Target
from culvert_py.store.hbase_structs import cells, scan_spec, thrift2_cells, thrift2_scan_spec

log = logging.getLogger(__name__)

#: Times in a row a scan reopens after losing its scanner before it gives up.
MAX_REOPENS = 10

#: A server-side scanner: the gateway that holds it, and its id there.
_Scanner = tuple[Target, int]


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
    max_timestamp: int | None = None,
) -> Iterator[tuple[bytes, dict]]:
    """Yield ``(row, cells)`` of ``table`` from ``start`` to ``stop``, ``batch_size`` per call,
    through a Thrift1 scanner.

    Nothing is sent before the first row is asked for.

    :param columns: Thrift1 column names, as ``hbase_structs.thrift_columns`` makes them;
        ``None`` for all
    :param flt: a filter-language string as bytes, or ``None``
    :param limit: stop after this many rows (``None``: no limit)
    :param max_timestamp: only cells with a timestamp below it (``None``: all)
    :raises TransientStoreError: when the scanner is lost :data:`MAX_REOPENS` times in a row
    :raises StoreError: when HBase refuses the scan
    """
    bname = table.encode()

    def open_at(first: bytes) -> _Scanner:
        spec = scan_spec(first, stop, columns, batch_size, flt, max_timestamp)
        return gateway.open(
            f"open scanner on {table!r}", lambda c: c.client.scannerOpenWithScan(bname, spec, {})
        )

    def fetch(scanner: _Scanner, n: int) -> list:
        at, sid = scanner
        return gateway.call_at(at, f"scan {table!r}", lambda c: c.client.scannerGetList(sid, n))

    def close(scanner: _Scanner) -> None:
        at, sid = scanner
        gateway.call_once(
            f"close scanner {sid} on {table!r}", lambda c: c.client.scannerClose(sid), at
        )

    return _paged(
        table,
        start,
        batch_size,
        limit,
        open_at,
        fetch,
        close,
        lambda result: (result.row, cells(result, include_timestamp)),
    )


def scan_rows_thrift2(
    gateway: Gateway,
    table: str,
    start: bytes,
    stop: bytes | None,
    columns: list | None,
    flt: bytes | None,
    batch_size: int,
    limit: int | None,
    include_timestamp: bool,
    time_range: tuple[int, int] | None,
) -> Iterator[tuple[bytes, dict]]:
    """:func:`scan_rows` through a Thrift2 scanner, which can bound timestamps from below too.

    :param columns: Thrift2 ``TColumn`` structs, as ``hbase_structs.thrift2_columns`` makes
        them; ``None`` for all
    :param time_range: ``(min, max)``: only cells with ``min <= timestamp < max``; rows
        without one are not returned (``None``: all)
    :raises CapabilityError: when there is no Thrift2 gateway (at the first ``next()``)
    :raises TransientStoreError: when the scanner is lost :data:`MAX_REOPENS` times in a row
    :raises StoreError: when HBase refuses the scan
    """
    bname = table.encode()

    def open_at(first: bytes) -> _Scanner:
        spec = thrift2_scan_spec(first, stop, columns, batch_size, flt, time_range)
        return gateway.open(
            f"open scanner on {table!r}", lambda c: c.openScanner(bname, spec), thrift2=True
        )

    def fetch(scanner: _Scanner, n: int) -> list:
        at, sid = scanner
        return gateway.call_at(at, f"scan {table!r}", lambda c: c.getScannerRows(sid, n))

    def close(scanner: _Scanner) -> None:
        at, sid = scanner
        gateway.call_once(f"close scanner {sid} on {table!r}", lambda c: c.closeScanner(sid), at)

    return _paged(
        table,
        start,
        batch_size,
        limit,
        open_at,
        fetch,
        close,
        lambda result: (result.row, thrift2_cells(result, include_timestamp)),
    )


def scan_rows_once(
    gateway: Gateway,
    table: str,
    start: bytes,
    stop: bytes | None,
    columns: list | None,
    flt: bytes | None,
    limit: int,
    include_timestamp: bool,
    time_range: tuple[int, int] | None,
) -> Iterator[tuple[bytes, dict]]:
    """Yield the first ``limit`` rows of ``start <= row < stop`` read by one Thrift2 call,
    ``getScannerResults``, which opens, reads and closes a scanner on the gateway.

    For bounded scans (a planner's probe, a query's first ``limit`` entries): one round trip
    instead of a scanner's three (open, read, close), and no server-side scanner to lose or
    leak. The call is a read, so a failed one is simply retried on any gateway. Nothing is
    sent before the first row is asked for.

    :param columns: Thrift2 ``TColumn`` structs, or ``None`` for all
    :raises CapabilityError: when there is no Thrift2 gateway (at the first ``next()``)
    :raises StoreError: when HBase refuses the scan
    """
    spec = thrift2_scan_spec(start, stop, columns, limit, flt, time_range)
    results = gateway.call_thrift2(
        f"scan {table!r} (first {limit} rows)",
        lambda c: c.getScannerResults(table.encode(), spec, limit),
    )
    for result in results:
        yield result.row, thrift2_cells(result, include_timestamp)


def scan_rows_first_call(
    gateway: Gateway,
    table: str,
    start: bytes,
    stop: bytes | None,
    columns: list | None,
    flt: bytes | None,
    batch_size: int,
    limit: int | None,
    include_timestamp: bool,
    time_range: tuple[int, int] | None,
    rest: Callable[[bytes, int | None], Iterator[tuple[bytes, dict]]],
) -> Iterator[tuple[bytes, dict]]:
    """Yield the rows of a scan whose first batch is read by one call
    (:func:`scan_rows_once`), and the rest, if any, by ``rest(start, limit)``: a paged scan
    from just after the last row of that batch, for the rows still wanted.

    Most index scans of a query are selective (a few entries per salt bucket): their whole
    answer fits the first batch, so each costs one round trip instead of a scanner's three.
    A longer scan pays one call more than a scanner alone would.

    :param columns: Thrift2 ``TColumn`` structs, or ``None`` for all
    :param rest: opens the paged scan that continues this one
    """
    first = batch_size if limit is None else min(batch_size, limit)
    last = None
    n = 0
    for row, found in scan_rows_once(
        gateway, table, start, stop, columns, flt, first, include_timestamp, time_range
    ):
        last, n = row, n + 1
        yield row, found
    if n < first or (limit is not None and limit <= first):
        return
    assert last is not None
    yield from rest(last + b"\x00", None if limit is None else limit - first)


def scan_rows_since(
    gateway: Gateway,
    table: str,
    start: bytes,
    stop: bytes | None,
    columns: list[bytes] | None,
    flt: bytes | None,
    batch_size: int,
    limit: int | None,
    include_timestamp: bool,
    time_range: tuple[int, int],
) -> Iterator[tuple[bytes, dict]]:
    """A time-range scan over Thrift1 alone: the server bounds timestamps from above, this
    generator drops the cells below ``min`` and the rows left without a cell.

    The result equals a Thrift2 time-range scan's: the newest version below ``max`` is the
    one HBase would return, unless it is below ``min`` too, and then so is every older one.
    It reads every row with a cell below ``max``, so it is slower; a ``flt`` also sees the
    cells below ``min``.

    Arguments as :func:`scan_rows`.
    """
    low, high = time_range
    rows = scan_rows(gateway, table, start, stop, columns, flt, batch_size, None, True, high)
    return _at_or_after(rows, low, limit, include_timestamp)


def _at_or_after(
    rows: Iterator[tuple[bytes, dict]], low: int, limit: int | None, include_timestamp: bool
) -> Iterator[tuple[bytes, dict]]:
    emitted = 0
    with closing(rows):  # type: ignore[type-var]
        if limit is not None and limit <= 0:
            return
        for row, found in rows:
            kept = {col: cell for col, cell in found.items() if cell[1] >= low}
            if not kept:
                continue
            yield row, kept if include_timestamp else {col: v for col, (v, _) in kept.items()}
            emitted += 1
            if emitted == limit:
                return


def scan_rows_reversed(
    gateway: Gateway,
    table: str,
    start: bytes,
    stop: bytes | None,
    columns: list[bytes] | None,
    batch_size: int,
    limit: int | None,
) -> Iterator[tuple[bytes, dict]]:
    """Yield ``(row, cells)`` of ``start <= row < stop`` in descending key order, through a
    reversed Thrift1 scanner.

    A reversed ``TScan`` starts at ``startRow`` *inclusive* and stops before ``stopRow``, the
    opposite of what this range needs at both ends, and Thrift1 has no inclusive-bound flags.
    So the scanner starts at ``stop`` and a row equal to it is dropped here; and it stops
    before a key just below ``start`` (``start`` with its last byte decremented, at most one
    batch of rows below ``start`` is read) and rows below ``start`` are dropped here. A lost
    scanner reopens at the last row handed out, which is dropped the same way.

    :param columns: Thrift1 column names; ``None`` for all
    :raises TransientStoreError: when the scanner is lost :data:`MAX_REOPENS` times in a row
    :raises StoreError: when HBase refuses the scan
    """
    bname = table.encode()
    below = None
    if start:
        below = start[:-1] + bytes([start[-1] - 1]) if start[-1] else start[:-1]
    upper, remaining, losses = stop, limit, 0
    scanner_id: int | None = None

    def open_at(first: bytes | None) -> int:
        spec = scan_spec(first or b"", below, columns, batch_size, None)
        spec.reversed = True
        return gateway.call(
            f"open reversed scanner on {table!r}",
            lambda c: c.client.scannerOpenWithScan(bname, spec, {}),
        )

    try:
        while remaining is None or remaining > 0:
            want = batch_size if remaining is None else min(batch_size, remaining)
            if scanner_id is None:
                scanner_id = open_at(upper)
            try:
                results = gateway.call(
                    f"reverse scan {table!r}",
                    lambda c, sid=scanner_id, n=want: c.client.scannerGetList(sid, n),
                )
            except (ScannerLostError, RetriesExhaustedError) as exc:
                losses += 1
                if losses >= MAX_REOPENS:
                    raise TransientStoreError(
                        f"reverse scan {table!r}: scanner lost {losses} times in a row: {exc}"
                    ) from exc
                log.info("reversed scanner on %r lost (%s); reopening", table, exc)
                scanner_id = None
                continue
            losses = 0
            for result in results:
                if upper is not None and result.row >= upper:
                    continue
                if result.row < start:
                    return
                upper = result.row
                if remaining is not None:
                    remaining -= 1
                yield result.row, cells(result, False)
                if remaining == 0:
                    return
            if len(results) < want:
                return
    finally:
        if scanner_id is not None:
            sid = scanner_id
            gateway.call_once(
                f"close scanner {sid} on {table!r}", lambda c: c.client.scannerClose(sid)
            )


def _paged(
    table: str,
    start: bytes,
    batch_size: int,
    limit: int | None,
    open_at: Callable[[bytes], _Scanner],
    fetch: Callable[[_Scanner, int], list],
    close: Callable[[_Scanner], None],
    row_of: Callable[[object], tuple[bytes, dict]],
) -> Iterator[tuple[bytes, dict]]:
    next_start = start
    remaining = limit
    scanner_id: _Scanner | None = None
    losses = 0
    try:
        while remaining is None or remaining > 0:
            want = batch_size if remaining is None else min(batch_size, remaining)
            if scanner_id is None:
                scanner_id = open_at(next_start)
                log.debug(
                    "opened scanner %d on %r at %r (%s)",
                    scanner_id[1],
                    table,
                    next_start,
                    scanner_id[0].name,
                )
            try:
                results = fetch(scanner_id, want)
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
                row, found = row_of(result)
                # Set before the yield: the caller may pause there long enough to lose the
                # scanner, and the reopen must start just after this row.
                next_start = row + b"\x00"
                if remaining is not None:
                    remaining -= 1
                yield row, found
            if len(results) < want:
                return
    finally:
        if scanner_id is not None:
            close(scanner_id)
