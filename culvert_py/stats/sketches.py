"""Bounded, mergeable sketches: distinct values (KMV), heavy hitters, a bottom-k sample.

Each is fixed-size whatever the stream length and merges with another of its kind, so every
salt bucket (and every region) can be summarised by its own task in parallel.
"""

from __future__ import annotations

import heapq

import mmh3

#: Hashes kept by each distinct-value sketch.
KMV_K = 1024
#: Counters of the heavy-hitter summary.
HEAVY_HITTER_COUNTERS = 64
#: Entries sampled per index for the histogram.
SAMPLE_SIZE = 4096

_HASH_SPACE = 1 << 64


def hash64(data: bytes, seed: int) -> int:
    """The unsigned 64-bit mmh3 hash of ``data`` under ``seed``."""
    return mmh3.hash64(data, seed, signed=False)[0]


class KMV:
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

    def merge(self, other: KMV) -> None:
        for h in other._kept:
            self.add(h)

    def estimate(self) -> int:
        """Exact below ``k`` distinct hashes, else ``(k - 1) / kth smallest`` (normalised)."""
        if len(self._heap) < self.k:
            return len(self._heap)
        return round((self.k - 1) * _HASH_SPACE / (-self._heap[0] + 1))


class MisraGries:
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

    def merge(self, other: MisraGries) -> None:
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


class BottomSample:
    """Uniform sample without replacement: the ``size`` items of smallest priority (a hash)."""

    def __init__(self, size: int = SAMPLE_SIZE) -> None:
        self.size = size
        self._heap: list[tuple[int, bytes]] = []  # (-priority, value): heap[0] is the largest

    def add(self, priority: int, value: bytes) -> None:
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, (-priority, value))
        elif priority < -self._heap[0][0]:
            heapq.heapreplace(self._heap, (-priority, value))

    def merge(self, other: BottomSample) -> None:
        for negated, value in other._heap:
            self.add(-negated, value)

    def values(self) -> list[bytes]:
        return [value for _, value in self._heap]


def equi_depth(ordered: list[bytes], buckets: int) -> tuple[bytes, ...]:
    """Boundaries splitting sorted ``ordered`` into ``buckets`` equal parts (fewer if short)."""
    if not ordered:
        return ()
    if len(ordered) == 1:
        return (ordered[0], ordered[0])
    count = min(buckets, len(ordered) - 1)
    last = len(ordered) - 1
    return tuple(ordered[round(i * last / count)] for i in range(count + 1))


# --------------------------------------------------------------------------- collection
