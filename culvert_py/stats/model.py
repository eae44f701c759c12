"""The statistics a planner estimates from, with their stored JSON form.

:class:`IndexStats` answers "how many entries does this access read" from the encoded bytes
alone; :class:`TableStats` groups one table's. How each figure is collected is told in
:mod:`culvert_py.stats.collect`.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from culvert_py.errors import CulvertError

#: Share of the non-MCV entries assumed inside a range when there is no histogram to ask.
DEFAULT_RANGE_FRACTION = 1 / 3

_FORMAT_VERSION = 1
_NULL = 0x00  # the one-byte encoding of NULL, in both directions


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class IndexStats:
    """Statistics of one index; see the module docstring for how each is estimated.

    :ivar index: the index name
    :ivar entries: entries in the index table (exact)
    :ivar prefix_ndv: distinct values of the first ``k`` indexed columns, ``k = 1..n``, over
        entries whose first value is not NULL (a text index: distinct tokens)
    :ivar null_entries: entries whose first value is NULL (exact)
    :ivar mcv: ``(encoded first value, entries)`` of the most common values, most common
        first; the bytes are exactly those of the entry keys
    :ivar histogram: equi-depth boundaries over the encoded first values of the non-NULL,
        non-MCV entries, ascending; empty when there are none
    :ivar updated_ms: when collection started (milliseconds since the epoch)
    :ivar mcv_prefix_ndv: for each MCV, in the same order, the distinct values of its first
        ``k`` columns, ``k = 2..n`` (empty tuples for a one-column index): how many
        combinations a hot first value fans out to
    """

    index: str
    entries: int
    prefix_ndv: tuple[int, ...]
    null_entries: int
    mcv: tuple[tuple[bytes, int], ...]
    histogram: tuple[bytes, ...]
    updated_ms: int
    mcv_prefix_ndv: tuple[tuple[int, ...], ...] = ()

    @property
    def _mcv_mass(self) -> int:
        return sum(count for _, count in self.mcv)

    @property
    def _rest(self) -> int:
        """Non-NULL entries not accounted for by an MCV: what the histogram describes."""
        return max(self.entries - self.null_entries - self._mcv_mass, 0)

    @property
    def _rest_values(self) -> int:
        return (self.prefix_ndv[0] if self.prefix_ndv else 0) - len(self.mcv)

    def rows_equal(self, encoded_first: bytes, k: int = 1) -> float:
        """Estimate the entries whose first ``k`` values equal a given prefix.

        ``k = 1``: the MCV count when the value is an MCV, ``null_entries`` for NULL, else the
        average of the other values, ``(entries - nulls - MCV entries) / (ndv - MCVs)``.

        ``k > 1``: an MCV's entries divided by its own number of distinct ``k``-prefixes
        (``mcv_prefix_ndv``); any other first value (or NULL) gets the average entries per
        ``k``-prefix of the non-MCV values. Dividing by the average fan-out of *all* values,
        ``prefix_ndv[k-1] / prefix_ndv[0]``, would be wrong both ways for a hot first value:
        ``(hot city, timestamp)`` is one entry, not the city's share of the average, and
        ``(hot city, bool)`` is half the city.

        The result is at least 1 when the index has non-NULL entries: statistics age, and a
        zero would make any access look free.

        :param encoded_first: the encoded first ``k`` values, as in the entry keys (no salt);
            for ``k > 1`` only its first value is looked at, so any bytes that begin with the
            encoded first value will do (the start key of a prefix scan, say)
        :param k: how many leading values are fixed
        :return: the estimated number of entries
        :raises ValueError: when ``k`` is not between 1 and the number of indexed columns
        """
        if not 1 <= k <= len(self.prefix_ndv):
            raise ValueError(
                f"{self.index}: k={k} is not a prefix length of this index "
                f"(1..{len(self.prefix_ndv)})"
            )
        null = encoded_first[:1] == bytes([_NULL])
        if not null:
            for i, (value, count) in enumerate(self.mcv):
                # Encodings are prefix-free: at most one MCV begins the given prefix.
                if encoded_first == value if k == 1 else encoded_first.startswith(value):
                    return max(count / self._mcv_fanout(i, k), 1.0)
        others = self._rest_values
        per_value = self._rest / others if others > 0 else 0.0
        estimate = float(self.null_entries) if null else per_value
        if k > 1:
            # Entries per k-prefix among the non-MCV values: their share of the k-prefixes
            # is what the MCVs leave of prefix_ndv[k-1].
            mcv_prefixes = sum(self._mcv_fanout(i, k) for i in range(len(self.mcv)))
            prefixes = max(self.prefix_ndv[k - 1] - mcv_prefixes, others, 1)
            estimate /= max(prefixes / max(others, 1), 1.0)
        if null or self.entries == self.null_entries:
            return estimate
        return max(estimate, 1.0)

    def _mcv_fanout(self, i: int, k: int) -> float:
        """Distinct ``k``-prefixes of the ``i``-th MCV (the average fan-out if not known)."""
        if k == 1:
            return 1.0
        if i < len(self.mcv_prefix_ndv):
            return float(max(self.mcv_prefix_ndv[i][k - 2], 1))
        return max(self.prefix_ndv[k - 1] / max(self.prefix_ndv[0], 1), 1.0)

    def rows_between(self, lo: bytes | None, hi: bytes | None) -> float:
        """Estimate the entries whose encoded first value ``v`` satisfies ``lo <= v < hi``.

        NULL entries are never counted. MCVs in the range count exactly; the other non-NULL
        entries are spread over the histogram, equally per bucket, and linearly inside a
        bucket (reading the 8 bytes after the boundaries' common prefix as integers).

        :param lo: inclusive lower bound, or ``None`` for none
        :param hi: exclusive upper bound, or ``None`` for none
        :return: the estimated number of entries (0.0 for an empty range)
        """
        if lo is not None and hi is not None and hi <= lo:
            return 0.0
        total = float(
            sum(c for v, c in self.mcv if (lo is None or v >= lo) and (hi is None or v < hi))
        )
        rest = self._rest
        if not rest:
            return total
        if len(self.histogram) < 2:
            unbounded = lo is None and hi is None
            return total + rest * (1.0 if unbounded else DEFAULT_RANGE_FRACTION)
        below_hi = 1.0 if hi is None else self._fraction_below(hi)
        below_lo = 0.0 if lo is None else self._fraction_below(lo)
        return total + rest * max(below_hi - below_lo, 0.0)

    def _fraction_below(self, x: bytes) -> float:
        """Share of the histogram's entries whose value is ``< x``."""
        bounds = self.histogram
        if x <= bounds[0]:
            return 0.0
        if x > bounds[-1]:
            return 1.0
        i = bisect_left(bounds, x)  # bounds[i - 1] < x <= bounds[i]
        return (i - 1 + _interpolate(bounds[i - 1], bounds[i], x)) / (len(bounds) - 1)


@dataclass(frozen=True)
class TableStats:
    """Statistics of one table and each of its indexes.

    :ivar table: the table name
    :ivar rows: live rows of the primary table (tombstones excluded)
    :ivar indexes: :class:`IndexStats` by index name
    :ivar updated_ms: when collection started (milliseconds since the epoch)
    """

    table: str
    rows: int
    indexes: Mapping[str, IndexStats]
    updated_ms: int

    def to_json(self) -> str:
        """The JSON document stored in the meta table (bytes as hex, keys sorted).

        :return: the document text
        """
        document = {
            "version": _FORMAT_VERSION,
            "table": self.table,
            "rows": self.rows,
            "updated_ms": self.updated_ms,
            "indexes": {name: _index_to_dict(s) for name, s in self.indexes.items()},
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TableStats:
        """Read a document written by :meth:`to_json`.

        :param text: the document
        :return: the statistics
        :raises CulvertError: when the text is not such a document (or of another version)
        """
        try:
            document = json.loads(text)
            if document.get("version") != _FORMAT_VERSION:
                raise ValueError(
                    f"format version {document.get('version')!r}, expected {_FORMAT_VERSION}"
                )
            return cls(
                table=str(document["table"]),
                rows=int(document["rows"]),
                indexes={
                    str(name): _index_from_dict(str(name), data)
                    for name, data in document["indexes"].items()
                },
                updated_ms=int(document["updated_ms"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CulvertError(f"unreadable statistics document: {exc!r}") from exc


def _index_to_dict(stats: IndexStats) -> dict[str, Any]:
    return {
        "entries": stats.entries,
        "prefix_ndv": list(stats.prefix_ndv),
        "null_entries": stats.null_entries,
        "mcv": [[value.hex(), count] for value, count in stats.mcv],
        "histogram": [bound.hex() for bound in stats.histogram],
        "updated_ms": stats.updated_ms,
        "mcv_prefix_ndv": [list(fanouts) for fanouts in stats.mcv_prefix_ndv],
    }


def _index_from_dict(name: str, data: Mapping[str, Any]) -> IndexStats:
    return IndexStats(
        index=name,
        entries=int(data["entries"]),
        prefix_ndv=tuple(int(n) for n in data["prefix_ndv"]),
        null_entries=int(data["null_entries"]),
        mcv=tuple((bytes.fromhex(v), int(c)) for v, c in data["mcv"]),
        histogram=tuple(bytes.fromhex(b) for b in data["histogram"]),
        updated_ms=int(data["updated_ms"]),
        mcv_prefix_ndv=tuple(tuple(int(n) for n in f) for f in data["mcv_prefix_ndv"]),
    )


def _interpolate(low: bytes, high: bytes, x: bytes) -> float:
    """Where ``low < x <= high`` lies between them, from 0 to 1.

    Byte strings are read as numbers from their first differing byte on: every value in
    between shares the common prefix, and 8 bytes resolve any realistic spread.
    """
    p = 0
    for a, b in zip(low, high, strict=False):
        if a != b:
            break
        p += 1

    def number(data: bytes) -> int:
        return int.from_bytes(data[p : p + 8].ljust(8, b"\x00"), "big")

    start, end = number(low), number(high)
    if end <= start:
        return 0.5
    return min(max((number(x) - start) / (end - start), 0.0), 1.0)
