"""Key ranges of a primary table for parallel scans, cut from its regions.

Regions are what HBase gives for free, but a table of one region (every freshly created
primary table) would be scanned by one thread. No row counts are available without a scan,
so a region is cut by key-space width instead: find its first key, find the last key's
leading bytes by bisection (a few dozen ``limit=1`` scans), and cut the space between them
evenly, as numbers over the four bytes after their common prefix. The pieces always cover
the region exactly; only their balance depends on how evenly keys spread, and a pool of
``4 × workers`` pieces keeps workers busy when they do not.

Ranges are ``(start, end)`` pairs, ``start <= key < end``, with ``b""`` for an unbounded
end, as in :class:`~culvert_py.store.base.Region`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from culvert_py.encoding import prefix_successor
from culvert_py.store.base import Region, Table

#: Upper bound on the ranges of a plan (one checkpoint row each).
MAX_RANGES = 1024
#: Bytes after the common prefix of the first and last key that split points resolve.
_WIDTH = 4


def split_key_ranges(
    regions: Sequence[Region], table: Table, vcol: bytes | None, wanted: int, sample: int
) -> list[tuple[bytes, bytes]]:
    """The table's regions, each split further when there are fewer than ``wanted``.

    :param regions: the table's regions, in key order (``store.regions(name)``)
    :param table: the table, probed by :func:`_split_region`
    :param vcol: a column every row has (the version cell): probes read only it; ``None``
        when rows need not have one (an adopted table): probes then read whole rows
    :param wanted: how many ranges to aim at (at most :data:`MAX_RANGES`)
    :param sample: a region with fewer rows than this is left whole
    :return: ranges in key order that cover every region exactly
    """
    wanted = min(wanted, MAX_RANGES)
    pieces = max(1, math.ceil(wanted / max(1, len(regions))))
    ranges: list[tuple[bytes, bytes]] = []
    for region in regions:
        if pieces == 1:
            ranges.append((region.start, region.end))
        else:
            ranges += _split_region(table, vcol, region, pieces, sample)
    return ranges


def _split_region(
    table: Table, vcol: bytes | None, region: Region, pieces: int, sample: int
) -> list[tuple[bytes, bytes]]:
    """Split a region into about ``pieces`` key ranges of similar key-space width.

    :return: ranges in key order, disjoint, each non-empty, covering ``region`` exactly
    """
    start, end = region.start, region.end
    head = _keys(table, vcol, start or None, end or None, sample)
    if len(head) < sample:
        return [(start, end)]  # one batch's worth of rows or fewer: not worth splitting
    first = head[0]
    last = _last_key_prefix(table, vcol, first, end)
    points = [p for p in _split_points(first, last, pieces) if p > first and (not end or p < end)]
    bounds = [start, *sorted(set(points)), end]
    return list(itertools.pairwise(bounds))


def _last_key_prefix(table: Table, vcol: bytes | None, first: bytes, end: bytes) -> bytes:
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
        return bool(_keys(table, vcol, lo, hi, 1))

    found = b""
    while len(found) < 32:
        stop = prefix_successor(found) if found else None
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


def _keys(table: Table, vcol: bytes | None, start: bytes | None, stop: bytes | None, limit: int):
    """The first ``limit`` keys of ``[start, stop)``, the scanner closed before returning."""
    columns = None if vcol is None else [vcol]
    scanner = table.scan(start, stop, columns=columns, limit=limit, batch_size=min(limit, 1000))
    try:
        return [key for key, _ in scanner]
    finally:
        scanner.close()  # type: ignore[attr-defined]


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix of two byte strings."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _split_points(first: bytes, last: bytes, pieces: int) -> list[bytes]:
    """``pieces - 1`` keys evenly spaced between ``first`` and ``last`` (4-byte resolution).

    :return: keys in ascending order (equal neighbours when the space is narrower than
        ``pieces``), each at least ``first`` cut four bytes past the common prefix and below
        ``last`` cut there and padded with ``0xff`` to that length; none when the cut
        ``last`` is not above the cut ``first``
    """
    common = _common_prefix(first, last)
    low = int.from_bytes(first[common : common + _WIDTH].ljust(_WIDTH, b"\x00"), "big")
    high = int.from_bytes(last[common : common + _WIDTH].ljust(_WIDTH, b"\xff"), "big")
    if high <= low:
        return []
    head = first[:common]
    return [
        head + (low + (high - low) * k // pieces).to_bytes(_WIDTH, "big") for k in range(1, pieces)
    ]
