"""Per-index statistics that let the planner estimate how many entries an index access reads.

What is collected, per index (see :class:`IndexStats`) and per table (:class:`TableStats`):

* ``entries``: every entry of the index table, counted exactly. Entries a crashed writer left
  unverified are counted too: they cost a scan like any other entry.
* ``prefix_ndv``: distinct values of the first ``k`` indexed columns, ``k = 1..n``, over the
  entries whose first value is not NULL (NULL has its own count, ``null_entries``). Estimated
  with a **KMV sketch** (the k = 1024 minimum 64-bit mmh3 hashes of the encoded prefix bytes):
  exact below 1024 distinct values, about 3 % standard error above.
* ``mcv``: the most common non-NULL first values with their counts, found with a
  **Misra-Gries** summary of 64 counters. A count is the occurrences seen while the value
  was tracked: a lower bound, at most ``entries / 65`` below the truth, and exact for a value
  tracked from its first occurrence on, which a heavy hitter nearly always is (and every
  value is when the column has at most 64 distinct values). A value is listed when it is
  more common than 1.25 times the average value (PostgreSQL's rule: a value no more common
  than average is estimated as well by the average), at most 16 of them; when the summary is
  exact and holds at most 16 values, all of them are listed, so every equality estimate is
  exact.
* ``histogram``: equi-depth bucket boundaries (32 buckets, 33 boundaries) over the encoded
  first values of the non-NULL entries **that are not MCVs**, as PostgreSQL does: the MCVs
  are accounted for exactly and the histogram describes the rest, so one hot value does not
  flatten the histogram around it. Built from a **bottom-k sample** of 4096 entries (the
  entries with the smallest mmh3 hash of their key: a uniform sample without replacement that
  is deterministic and merges across buckets by keeping the smallest hashes).
* ``rows`` of the primary table: live rows, tombstones (version cell flagged deleted)
  excluded, counted exactly by a scan of the version cells alone (so a row never written
  through culvert_py, which has no version cell, is not counted).

Every sketch is bounded whatever the table size and mergeable, so each salt bucket (and each
region of the primary table) is scanned by its own task, in parallel, and the per-bucket
summaries are merged as they finish. Within a bucket entries arrive sorted by value, so equal
first values come in runs and the heavy-hitter summary is fed one weighted update per run.

Estimates (:meth:`IndexStats.rows_equal`, :meth:`IndexStats.rows_between`) work on the
encoded bytes exactly as they appear in the entry keys, so they know nothing of types and
the planner needs no decoding: a descending column is just bytes in the other order. An
equality on a composite prefix divides the first value's entries by the fan-out expected for
that many entries (see :meth:`IndexStats.rows_equal`), not by the average fan-out, so a hot
first value is not mistaken for a selective one.
Statistics are stored as one JSON document per table in the meta table (``version: 1``); a
document that cannot be read back is treated as missing, with a warning, so a planner never
fails a query because of its statistics.
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Executor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mmh3

from culvert_py.encoding import decode_value
from culvert_py.errors import CulvertError, EncodingError
from culvert_py.keys import STATE_COLUMN, IndexKeys, version_column
from culvert_py.maintain import is_deleted
from culvert_py.meta import Meta
from culvert_py.schema import IndexDef, TableDef
from culvert_py.store.base import Region, Store, Table

if TYPE_CHECKING:
    from culvert_py.client import Client

log = logging.getLogger(__name__)

#: Hashes kept by each distinct-value sketch.
KMV_K = 1024
#: Counters of the heavy-hitter summary.
HEAVY_HITTER_COUNTERS = 64
#: Most common values kept per index, at most.
MCV_SIZE = 16
#: A value is an MCV when at least this many times more common than the average value.
MCV_MIN_RATIO = 1.25
#: Hashes kept per MCV by the sketches of its distinct prefixes (its fan-out).
FANOUT_K = 64
#: Entries sampled per index for the histogram.
SAMPLE_SIZE = 4096
#: Buckets of the equi-depth histogram (one more boundary than buckets).
HISTOGRAM_BUCKETS = 32
#: Share of the non-MCV entries assumed inside a range when there is no histogram to ask.
DEFAULT_RANGE_FRACTION = 1 / 3

_FORMAT_VERSION = 1
_SCAN_BATCH = 2000
# Separate seeds: the salt hashes the primary key with mmh3 seed 0, and a sample correlated
# with the salt (or with the distinct-value hashes) would not be uniform.
_NDV_SEED = 0x6E6476
_SAMPLE_SEED = 0x73616D
_HASH_SPACE = 1 << 64
_NULL = 0x00  # the one-byte encoding of NULL, in both directions


def _hash64(data: bytes, seed: int) -> int:
    return mmh3.hash64(data, seed, signed=False)[0]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


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
            raise CulvertError(f"unreadable statistics document: {exc!r}") from None


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


# --------------------------------------------------------------------------- sketches


class _KMV:
    """Distinct-count sketch: the ``k`` smallest distinct 64-bit hashes seen."""

    def __init__(self, k: int = KMV_K) -> None:
        self.k = k
        self._heap: list[int] = []  # negated, so heap[0] is minus the largest hash kept
        self._kept: set[int] = set()

    def add(self, h: int) -> None:
        if len(self._heap) >= self.k and h >= -self._heap[0]:
            return
        if h in self._kept:
            return
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, -h)
        else:
            self._kept.discard(-heapq.heappushpop(self._heap, -h))
        self._kept.add(h)

    def merge(self, other: _KMV) -> None:
        for h in other._kept:
            self.add(h)

    def estimate(self) -> int:
        """Exact below ``k`` distinct hashes, else ``(k - 1) / kth smallest`` (normalised)."""
        if len(self._heap) < self.k:
            return len(self._heap)
        return round((self.k - 1) * _HASH_SPACE / (-self._heap[0] + 1))


class _MisraGries:
    """Heavy hitters (Misra-Gries) with weighted updates.

    :attr:`counts` are the classic Misra-Gries counters, which decide what is evicted.
    :attr:`seen` holds, per tracked item, the occurrences actually observed while it was
    tracked: also a lower bound of its true count, never below its counter, and exact for an
    item tracked from its first occurrence on (which a heavy hitter nearly always is). Both
    are off by at most :attr:`error`, which never exceeds ``total weight / (capacity + 1)``.
    """

    def __init__(self, capacity: int = HEAVY_HITTER_COUNTERS) -> None:
        self.capacity = capacity
        self.counts: dict[bytes, int] = {}
        self.seen: dict[bytes, int] = {}
        self.error = 0

    def add(self, item: bytes, weight: int = 1) -> bool:
        """Count ``weight`` occurrences of ``item``; returns whether it is tracked now."""
        counts = self.counts
        if item in counts:
            counts[item] += weight
            self.seen[item] += weight
            return True
        if len(counts) < self.capacity:
            counts[item] = weight
            self.seen[item] = weight
            return True
        cut = min(min(counts.values()), weight)
        self.error += cut
        self._keep({v: c - cut for v, c in counts.items() if c > cut})
        if weight == cut:
            return False
        # Some counter reached zero, so there is room.
        self.counts[item] = weight - cut
        self.seen[item] = weight
        return True

    def merge(self, other: _MisraGries) -> None:
        # Agarwal et al., "Mergeable summaries": add, then subtract the (capacity+1)-th
        # largest counter; the error bound stays total / (capacity + 1).
        combined = dict(self.counts)
        seen = dict(self.seen)
        for item, count in other.counts.items():
            combined[item] = combined.get(item, 0) + count
            seen[item] = seen.get(item, 0) + other.seen[item]
        self.seen = seen
        cut = 0
        if len(combined) > self.capacity:
            cut = sorted(combined.values(), reverse=True)[self.capacity]
            combined = {v: c - cut for v, c in combined.items() if c > cut}
        self._keep(combined)
        self.error += other.error + cut

    def _keep(self, counts: dict[bytes, int]) -> None:
        self.counts = counts
        self.seen = {v: self.seen[v] for v in counts}


class _BottomSample:
    """Uniform sample without replacement: the ``size`` items of smallest priority (a hash)."""

    def __init__(self, size: int = SAMPLE_SIZE) -> None:
        self.size = size
        self._heap: list[tuple[int, bytes]] = []  # (-priority, value): heap[0] is the largest

    def add(self, priority: int, value: bytes) -> None:
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, (-priority, value))
        elif priority < -self._heap[0][0]:
            heapq.heapreplace(self._heap, (-priority, value))

    def merge(self, other: _BottomSample) -> None:
        for negated, value in other._heap:
            self.add(-negated, value)

    def values(self) -> list[bytes]:
        return [value for _, value in self._heap]


class _IndexSummary:
    """Bounded summary of a stream of entry keys of one index; mergeable.

    Besides the sketches of the module docstring it keeps, for each value the heavy-hitter
    summary tracks, a small KMV of its distinct ``k``-prefixes (``k >= 2``): the fan-out of
    the values that end up MCVs. A run of equal first values gathers its prefix hashes first
    and hands them over when the run ends, if its value is tracked then.
    """

    def __init__(self, keys: IndexKeys) -> None:
        self.name = keys.index.name
        self._columns = list(zip(keys.types, keys.descending, strict=True))
        self.entries = 0
        self.nulls = 0
        self.ndv = [_KMV() for _ in self._columns]
        self.heavy = _MisraGries()
        self.fanout: dict[bytes, list[_KMV]] = {}
        self.sample = _BottomSample()
        self._previous = [b""] * len(self._columns)
        self._run_value = b""
        self._run_length = 0
        self._run_hashes: list[list[int]] = [[] for _ in self._columns[1:]]

    def add(self, key: bytes) -> None:
        """Count one entry key (``salt | values | pk``).

        :raises EncodingError: when the key does not decode as the index's columns
        """
        self.entries += 1
        if len(key) < 2:
            raise EncodingError(f"index {self.name}: entry key {key!r} is too short")
        if key[1] == _NULL:
            self.nulls += 1
            return
        offset = 1
        for k, (type_name, descending) in enumerate(self._columns):
            _, offset = decode_value(key, type_name, offset, descending=descending)
            prefix = key[1:offset]
            # Within a bucket entries arrive sorted, so a repeated prefix follows its twin.
            if prefix == self._previous[k]:
                continue
            self._previous[k] = prefix
            h = _hash64(prefix, _NDV_SEED)
            self.ndv[k].add(h)
            if k == 0:
                self._flush_run()
                self._run_value = prefix
            else:
                hashes = self._run_hashes[k - 1]
                hashes.append(h)
                if len(hashes) > 4 * FANOUT_K:  # a long run: only the smallest can matter
                    hashes[:] = sorted(set(hashes))[:FANOUT_K]
        self._run_length += 1
        self.sample.add(_hash64(key, _SAMPLE_SEED), self._run_value)

    def _flush_run(self) -> None:
        if not self._run_length:
            return
        value = self._run_value
        if self.heavy.add(value, self._run_length) and self._run_hashes:
            sketches = self.fanout.get(value)
            if sketches is None:
                sketches = self.fanout[value] = [_KMV(FANOUT_K) for _ in self._run_hashes]
            for sketch, hashes in zip(sketches, self._run_hashes, strict=True):
                for h in hashes:
                    sketch.add(h)
        for hashes in self._run_hashes:
            hashes.clear()
        self._run_length = 0
        if len(self.fanout) > 4 * self.heavy.capacity:
            self._prune_fanout()

    def _prune_fanout(self) -> None:
        self.fanout = {v: f for v, f in self.fanout.items() if v in self.heavy.counts}

    def merge(self, other: _IndexSummary) -> None:
        """Fold a summary of other entries of the same index into this one."""
        other._flush_run()
        self._flush_run()
        self.entries += other.entries
        self.nulls += other.nulls
        for mine, theirs in zip(self.ndv, other.ndv, strict=True):
            mine.merge(theirs)
        self.heavy.merge(other.heavy)
        for value, theirs in other.fanout.items():
            if value not in self.heavy.counts:
                continue
            if value in self.fanout:
                for mine_k, theirs_k in zip(self.fanout[value], theirs, strict=True):
                    mine_k.merge(theirs_k)
            else:
                self.fanout[value] = theirs
        self._prune_fanout()
        self.sample.merge(other.sample)

    def result(self, updated_ms: int) -> IndexStats:
        """The :class:`IndexStats` of everything added and merged."""
        self._flush_run()
        non_null = self.entries - self.nulls
        ndv: list[int] = []
        for sketch in self.ndv:
            # A longer prefix has at least as many distinct values; no more than entries.
            ndv.append(min(max(sketch.estimate(), ndv[-1] if ndv else 0), non_null))
        mcv = self._mcv(non_null, ndv[0] if ndv else 0)
        if ndv:
            ndv = [max(n, len(mcv)) for n in ndv]
        common = {value for value, _ in mcv}
        rest = sorted(v for v in self.sample.values() if v not in common)
        return IndexStats(
            index=self.name,
            entries=self.entries,
            prefix_ndv=tuple(ndv),
            null_entries=self.nulls,
            mcv=mcv,
            histogram=_equi_depth(rest, HISTOGRAM_BUCKETS),
            updated_ms=updated_ms,
            mcv_prefix_ndv=tuple(self._mcv_fanout(value, count, ndv) for value, count in mcv),
        )

    def _mcv(self, non_null: int, ndv: int) -> tuple[tuple[bytes, int], ...]:
        ranked = sorted(self.heavy.seen.items(), key=lambda item: (-item[1], item[0]))
        if self.heavy.error == 0 and len(ranked) <= MCV_SIZE:
            return tuple(ranked)  # exact and complete
        threshold = MCV_MIN_RATIO * non_null / ndv if ndv else 0.0
        return tuple((v, c) for v, c in ranked if c > threshold)[:MCV_SIZE]

    def _mcv_fanout(self, value: bytes, count: int, ndv: list[int]) -> tuple[int, ...]:
        sketches = self.fanout.get(value)
        fanouts: list[int] = []
        for k in range(1, len(ndv)):
            if sketches is None:  # tracked only through a merge: assume the average fan-out
                estimate = round(ndv[k] / max(ndv[0], 1))
            else:
                estimate = sketches[k - 1].estimate()
            # Between the previous prefix length's fan-out and the value's entry count.
            fanouts.append(min(max(estimate, fanouts[-1] if fanouts else 1), count, ndv[k]))
        return tuple(fanouts)


def _equi_depth(ordered: list[bytes], buckets: int) -> tuple[bytes, ...]:
    """Boundaries splitting sorted ``ordered`` into ``buckets`` equal parts (fewer if short)."""
    if not ordered:
        return ()
    if len(ordered) == 1:
        return (ordered[0], ordered[0])
    count = min(buckets, len(ordered) - 1)
    last = len(ordered) - 1
    return tuple(ordered[round(i * last / count)] for i in range(count + 1))


# --------------------------------------------------------------------------- collection


def collect_stats(store: Store, table: TableDef, executor: Executor | None = None) -> TableStats:
    """Scan every index table and the primary table of ``table`` and summarise them.

    One scan per salt bucket of each index (reading only the state cell, to keep cells
    small) and one per region of the primary table (reading only the version cell), all in
    parallel on ``executor``. Memory stays bounded whatever the table size: each scan feeds
    fixed-size sketches, merged as the scans finish.

    :param store: the store holding the tables
    :param table: the table definition; every index in it is summarised, whatever its state
    :param executor: thread pool to run the scans on; ``None`` runs them one after another
    :return: the statistics
    :raises StoreError: when a table cannot be scanned (e.g. an index table is missing)
    :raises EncodingError: for an entry key that does not decode as the index's columns
    """
    started = _now_ms()
    lock = threading.Lock()
    summaries: dict[str, _IndexSummary] = {}
    tasks: list[Callable[[], None]] = []
    for name, index in table.indexes.items():
        keys = IndexKeys(table, index)
        summaries[name] = _IndexSummary(keys)
        handle = store.table(index.hbase_table)
        for bucket in range(index.buckets):
            tasks.append(
                lambda h=handle, k=keys, b=bucket, into=summaries[name]: _scan_bucket(
                    h, k, b, into, lock
                )
            )
    live = [0]
    primary = store.table(table.hbase_table)
    vcol = version_column(table)
    for region in store.regions(table.hbase_table):

        def count(region: Region = region) -> None:
            n = _count_live(primary, region, vcol)
            with lock:
                live[0] += n

        tasks.append(count)
    _run_all(tasks, executor)
    stats = TableStats(
        table=table.name,
        rows=live[0],
        indexes={name: s.result(started) for name, s in summaries.items()},
        updated_ms=started,
    )
    log.debug(
        "%s: statistics of %d rows and %d indexes in %d ms",
        table.name,
        stats.rows,
        len(stats.indexes),
        _now_ms() - started,
    )
    return stats


def _scan_bucket(
    handle: Table, keys: IndexKeys, bucket: int, into: _IndexSummary, lock: threading.Lock
) -> None:
    summary = _IndexSummary(keys)
    index: IndexDef = keys.index
    for key, _ in handle.scan(
        prefix=bytes([bucket]), columns=[STATE_COLUMN], batch_size=_SCAN_BATCH
    ):
        try:
            summary.add(key)
        except EncodingError as exc:
            raise EncodingError(f"{index.path}: entry {key!r}: {exc}") from None
    with lock:
        into.merge(summary)


def _count_live(primary: Table, region: Region, vcol: bytes) -> int:
    n = 0
    for _, cells in primary.scan(
        start=region.start or None,
        stop=region.end or None,
        columns=[vcol],
        batch_size=_SCAN_BATCH,
    ):
        if not is_deleted(cells.get(vcol)):
            n += 1
    return n


def _run_all(tasks: list[Callable[[], None]], executor: Executor | None) -> None:
    """Run ``tasks``; on the first failure cancel those not started and raise it."""
    if executor is None:
        for task in tasks:
            task()
        return
    futures = [executor.submit(task) for task in tasks]
    done, pending = wait(futures, return_when=FIRST_EXCEPTION)
    failed = [f for f in done if f.exception() is not None]
    if failed:
        for future in pending:
            future.cancel()
        wait(pending)  # no scan may still run once we return
        raise failed[0].exception()  # type: ignore[misc]


# --------------------------------------------------------------------------- meta table


def refresh_stats(client: Client, table_name: str) -> TableStats:
    """Collect the statistics of a table on the client's thread pool and store them.

    :param client: the client (its store, schema, thread pool and meta table are used)
    :param table_name: the table
    :return: the statistics just stored
    :raises SchemaError: for a table the applied schema does not have
    :raises StoreError: when a table cannot be scanned or the meta table written
    """
    definition = client.schema().table(table_name)
    stats = collect_stats(client.store, definition, client.executor)
    client.meta.save_stats(table_name, stats.to_json())
    return stats


def load_stats(client_or_meta: Client | Meta, table_name: str) -> TableStats | None:
    """The stored statistics of a table.

    :param client_or_meta: a client, or the :class:`~culvert_py.meta.Meta` of a store
    :param table_name: the table
    :return: the statistics, or ``None`` when never collected or unreadable (logged)
    :raises StoreError: when the meta table cannot be read
    """
    meta = client_or_meta if isinstance(client_or_meta, Meta) else client_or_meta.meta
    document = meta.load_stats(table_name)
    if document is None:
        return None
    try:
        return TableStats.from_json(document)
    except CulvertError as exc:
        log.warning("%s: ignoring stored statistics: %s; run `culvert stats`", table_name, exc)
        return None
